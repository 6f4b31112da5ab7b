-- Disk usage. value = percent used of a mount point (0-100).
-- Fixed thresholds, plus a look at the trend: a disk filling fast enough to be full within
-- an hour is at least major, whatever its level now.
local MINOR, MAJOR, CRITICAL = 80, 90, 95
local FULL_WITHIN_SECONDS = 3600

local n = #values
if n == 0 then return "unknown" end
if result_types[n] ~= "plugin" or values[n] == "none" then return "unknown" end

local used = values[n]
if used >= CRITICAL then return "critical" end

if arrayCount(values) >= 3 then
  local per_second = slope(values, timestamps)
  if per_second ~= nil and per_second > 0 and (100 - used) / per_second < FULL_WITHIN_SECONDS then
    return "major"
  end
end

if used >= MAJOR then return "major" end
if used >= MINOR then return "minor" end
return "ok"
