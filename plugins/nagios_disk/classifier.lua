-- check_disk run in Nagios mode. The agent sets message to "<STATE>: <plugin text>" where
-- STATE comes from the exit code (OK, WARNING, CRITICAL, UNKNOWN); value = first perfdata
-- value. check_disk already applied its own thresholds, so the state is what counts.
-- WARNING is minor, and major once it has lasted WARNING_SUSTAIN results in a row.
local WARNING_SUSTAIN = 3
local STATES = { "OK", "WARNING", "CRITICAL", "UNKNOWN" }
local PREFIXES = { "OK:", "WARNING:", "CRITICAL:", "UNKNOWN:" }

local n = #messages
if n == 0 then return "unknown" end
if result_types[n] ~= "plugin" then return "unknown" end

-- The state prefix of result i, or nil. A prefix comparison is all that is needed (and is
-- cheaper than a pattern match, which matters when it runs for every result).
local function state_of(i)
  if result_types[i] ~= "plugin" then return nil end
  local message = messages[i]
  for k = 1, #PREFIXES do
    local prefix = PREFIXES[k]
    if string.sub(message, 1, #prefix) == prefix then return STATES[k] end
  end
  return nil
end

local state = state_of(n)
if state == "OK" then return "ok" end
if state == "CRITICAL" then return "critical" end
if state == "WARNING" then
  local run = 0
  for i = n, 1, -1 do
    if state_of(i) ~= "WARNING" then break end
    run = run + 1
  end
  if run >= WARNING_SUSTAIN then return "major" end
  return "minor"
end
-- UNKNOWN, or a message this classifier does not understand.
return "unknown"
