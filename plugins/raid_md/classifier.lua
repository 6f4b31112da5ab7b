-- Linux md RAID. value = number of failed or missing member disks across all md arrays;
-- the message names degraded arrays and says "resync" or "recovery" while rebuilding.
local n = #values
if n == 0 then return "unknown" end
if result_types[n] ~= "plugin" or values[n] == "none" then return "unknown" end

local missing = values[n]
local message = string.lower(messages[n] or "")
local rebuilding = string.find(message, "recover", 1, true) ~= nil
  or string.find(message, "resync", 1, true) ~= nil
  or string.find(message, "rebuild", 1, true) ~= nil

if missing >= 2 then return "critical" end
if missing >= 1 then
  -- A replacement disk is being rebuilt: redundancy is coming back, but until it has,
  -- one more failure loses data.
  if rebuilding then return "major" end
  return "critical"
end
-- All members present but a resync is running (e.g. after an unclean shutdown).
if rebuilding then return "minor" end
return "ok"
