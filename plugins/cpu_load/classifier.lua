-- CPU load. value = 1-minute load average / number of CPUs (1.0 = every CPU busy).
-- A single spike is normal (a backup, a build), so major and critical need the load to
-- stay high for SUSTAIN results in a row; one high result is at most minor.
local MINOR, MAJOR, CRITICAL = 1.0, 1.5, 3.0
local SUSTAIN = 3

local n = #values
if n == 0 then return "unknown" end
-- No fresh measurement: the heartbeat plugin reports connectivity, not this one.
if result_types[n] ~= "plugin" or values[n] == "none" then return "unknown" end

-- How many of the newest results, counting back, are at or above the threshold.
local function run_length(threshold)
  local count = 0
  for i = n, 1, -1 do
    local v = values[i]
    if type(v) ~= "number" or result_types[i] ~= "plugin" or v < threshold then break end
    count = count + 1
  end
  return count
end

if run_length(CRITICAL) >= SUSTAIN then return "critical" end
if run_length(MAJOR) >= SUSTAIN then return "major" end
if values[n] >= MINOR then return "minor" end
return "ok"
