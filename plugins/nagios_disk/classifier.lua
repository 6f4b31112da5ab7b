-- check_disk run in Nagios mode. The agent sets message to "<STATE>: <plugin text>" where
-- STATE comes from the exit code (OK, WARNING, CRITICAL, UNKNOWN); value = first perfdata
-- value. check_disk already applied its own thresholds, so the state is what counts.
-- WARNING is minor, and major once it has lasted WARNING_SUSTAIN results in a row.
local WARNING_SUSTAIN = 3

local n = #messages
if n == 0 then return "unknown" end
if result_types[n] ~= "plugin" then return "unknown" end

local function state_of(i)
  if result_types[i] ~= "plugin" then return nil end
  return string.match(messages[i] or "", "^(%u+):")
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
