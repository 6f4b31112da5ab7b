-- Heartbeat. value = 1 when the agent answered. The signal is the result type: anything
-- but "plugin" in the newest result (connection refused, timeout, bad key, ...) means the
-- agent could not be reached, which is critical.
local n = #result_types
if n == 0 then return "unknown" end
if result_types[n] ~= "plugin" then return "critical" end
if values[n] ~= 1 then return "unknown" end

-- Answering now, but failing more than half of the recent checks: a flapping link or an
-- agent that keeps restarting. Worth a look, not a page.
local failed = n - arrayCount(result_types, "plugin")
if n >= 3 and failed * 2 > n then return "minor" end
return "ok"
