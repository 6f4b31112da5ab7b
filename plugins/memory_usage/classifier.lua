-- Memory usage. value = percent of memory in use (0-100).
-- Caches make 80 % normal; above MINOR the machine is getting tight. Critical needs two
-- results in a row so one short allocation burst does not page anyone.
local MINOR, MAJOR, CRITICAL = 85, 92, 97

local n = #values
if n == 0 then return "unknown" end
if result_types[n] ~= "plugin" or values[n] == "none" then return "unknown" end

local now = values[n]
local before = values[n - 1]
if now >= CRITICAL and (type(before) ~= "number" or before >= CRITICAL) then
  -- With no earlier value to compare, trust the single reading.
  return "critical"
end
if now >= MAJOR then return "major" end
if now >= MINOR then return "minor" end
return "ok"
