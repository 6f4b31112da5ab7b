-- Builds the frozen global table every classifier run reads through.
--
-- Runs once per engine, with the raw libraries in `raw` (see sandbox.rs). It returns G:
-- a table of the allowed base functions, read-only proxies of the allowed libraries and the
-- helpers. Runs never see G itself (their environment's metatable hides it), only what it
-- holds, and every table it holds is a read-only proxy, so one run cannot change what another
-- run sees.
local raw = ...

local type, error, select, tostring, tonumber = raw.type, raw.error, raw.select, raw.tostring, raw.tonumber
local next, rawget, rawequal, rawlen = raw.next, raw.rawget, raw.rawequal, raw.rawlen
local getmetatable, setmetatable, pcall, xpcall = raw.getmetatable, raw.setmetatable, raw.pcall, raw.xpcall
local string, table, math, utf8 = raw.string, raw.table, raw.math, raw.utf8
local aborted = raw.aborted
local floor, huge, mtype = math.floor, math.huge, math.type
local sort = table.sort

-- The shared string metatable must be unchangeable: `getmetatable("")` returns false, so
-- neither it nor its __index (the real string table) can be reached or changed.
local smt = getmetatable("")
smt.__metatable = false

-- The real string table is what `("x"):find(...)` uses, so it is hardened in place:
-- dump would expose bytecode; the pattern functions and rep are replaced by versions that
-- respect the run's limits (the instruction hook never fires inside C functions).
string.dump = nil
local c_find, rust_find = string.find, raw.find
string.find, string.match, string.gmatch, string.gsub = rust_find, raw.match, raw.gmatch, raw.gsub
string.rep = raw.rep

-- Fast path: a plain search (explicit, or a pattern without special characters) on small
-- strings goes to C's find, whose worst case (#s * #p byte comparisons) is then bounded
-- and tiny; a call into Rust costs more than that. Everything else takes the bounded
-- Rust matcher. The specials check itself is a single-class pattern: linear.
local PLAIN_C_LIMIT = 1 << 16
string.find = function(s, p, init, plain)
    if type(s) == "string" and type(p) == "string" and #s * #p <= PLAIN_C_LIMIT
        and (plain or not c_find(p, "[%^%$%*%+%?%.%(%[%%%-]")) then
        return c_find(s, p, init, plain)
    end
    return rust_find(s, p, init, plain)
end

-- table.move loops in C over its whole range even when the tables are empty.
local move = table.move
local MOVE_LIMIT = 100000
local moved = {}
for k, v in next, table do moved[k] = v end
moved.move = function(a1, f, e, t, a2)
    local nf, ne = tonumber(f), tonumber(e)
    if nf and ne and ne - nf >= MOVE_LIMIT then
        error("table.move: too many elements (limit " .. MOVE_LIMIT .. ")", 2)
    end
    return move(a1, f, e, t, a2)
end

local function readonly(name)
    return function()
        error("attempt to modify read-only table '" .. name .. "'", 2)
    end
end

-- A read-only view of `real`: reads go through __index, writes fail, pairs() works, and
-- neither getmetatable nor pairs hands out `real` itself.
local function proxy(name, real)
    local p = {}
    setmetatable(p, {
        __index = real,
        __newindex = readonly(name),
        __metatable = false,
        __pairs = function()
            local k
            return function()
                local v
                k, v = next(real, k)
                return k, v
            end, p, nil
        end,
        __len = function() return 0 end,
    })
    return p
end

local mathlib = {}
for k, v in next, math do mathlib[k] = v end
-- The generator state is shared by all runs on the engine: seeding it would let one run
-- change what another sees, and classifiers should be deterministic anyway.
mathlib.random, mathlib.randomseed = nil, nil

local G = {}

-- Limit errors must not be swallowed by pcall: once the run is over its instruction, time
-- or memory limit, the error is raised again.
local function pass(ok, ...)
    if not ok then
        local e = ...
        if aborted() or rawequal(e, "not enough memory") then
            error(e, 0)
        end
    end
    return ok, ...
end

G.pcall = function(f, ...)
    return pass(pcall(f, ...))
end
G.xpcall = function(f, handler, ...)
    return pass(xpcall(f, handler, ...))
end

-- A finalizer would run during garbage collection, outside any run's limits.
G.setmetatable = function(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
        error("setmetatable: __gc metamethods are not allowed in classifiers", 2)
    end
    return setmetatable(t, mt)
end

for _, k in next, {
    "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
    "rawequal", "rawget", "rawlen", "getmetatable", "_VERSION",
} do
    G[k] = raw[k]
end

G.string = proxy("string", string)
G.table = proxy("table", moved)
G.math = proxy("math", mathlib)
G.utf8 = proxy("utf8", utf8)

----------------------------------------------------------------------------------------
-- Helpers. "none" marks a missing value; numeric helpers skip it (and anything else that
-- is not a number). Errors use level 2 so the diagnostic points at the classifier's line.
----------------------------------------------------------------------------------------

local NONE = "none"

local function check_array(fname, arr)
    if type(arr) ~= "table" then
        error(fname .. ": expected an array, got " .. type(arr), 3)
    end
end

function G.arrayContains(arr, value)
    check_array("arrayContains", arr)
    for i = 1, #arr do
        if arr[i] == value then return true end
    end
    return false
end

function G.arrayCount(arr, ...)
    check_array("arrayCount", arr)
    local n = 0
    if select("#", ...) > 0 then
        local value = ...
        for i = 1, #arr do
            if arr[i] == value then n = n + 1 end
        end
    else
        for i = 1, #arr do
            if arr[i] ~= NONE then n = n + 1 end
        end
    end
    return n
end

function G.arrayLast(arr)
    check_array("arrayLast", arr)
    for i = #arr, 1, -1 do
        local v = arr[i]
        if v ~= NONE then return v end
    end
    return nil
end

function G.arrayMax(arr)
    check_array("arrayMax", arr)
    local m
    for i = 1, #arr do
        local v = arr[i]
        if type(v) == "number" and (m == nil or v > m) then m = v end
    end
    return m
end

function G.arrayMin(arr)
    check_array("arrayMin", arr)
    local m
    for i = 1, #arr do
        local v = arr[i]
        if type(v) == "number" and (m == nil or v < m) then m = v end
    end
    return m
end

function G.arraySum(arr)
    check_array("arraySum", arr)
    local s = 0
    for i = 1, #arr do
        local v = arr[i]
        if type(v) == "number" then s = s + v end
    end
    return s
end

function G.arrayAvg(arr)
    check_array("arrayAvg", arr)
    local s, n = 0, 0
    for i = 1, #arr do
        local v = arr[i]
        if type(v) == "number" then
            s = s + v
            n = n + 1
        end
    end
    if n == 0 then return nil end
    return s / n
end

function G.percentile(arr, p)
    check_array("percentile", arr)
    if type(p) ~= "number" or p ~= p or p < 0 or p > 100 then
        error("percentile: p must be a number from 0 to 100, got " .. tostring(p), 2)
    end
    local xs, n = {}, 0
    for i = 1, #arr do
        local v = arr[i]
        if type(v) == "number" then
            n = n + 1
            xs[n] = v
        end
    end
    if n == 0 then return nil end
    sort(xs)
    -- Linear interpolation between closest ranks (numpy's default, Excel's PERCENTILE.INC).
    local rank = p / 100 * (n - 1) + 1
    local lo = floor(rank)
    local frac = rank - lo
    if lo >= n then return xs[n] end
    return xs[lo] + frac * (xs[lo + 1] - xs[lo])
end

function G.slope(values, timestamps)
    check_array("slope", values)
    check_array("slope", timestamps)
    -- Two passes over the arrays instead of copying them: this runs for every result.
    -- Times are seconds relative to the first point, which keeps the sums small and precise.
    local n, sx, sy, t0 = 0, 0, 0, nil
    for i = 1, #values do
        local v, t = values[i], timestamps[i]
        if type(v) == "number" and type(t) == "number" then
            t0 = t0 or t
            n = n + 1
            sx = sx + (t - t0) / 1000
            sy = sy + v
        end
    end
    if n < 2 then return nil end
    local mx, my = sx / n, sy / n
    local sxy, sxx = 0, 0
    for i = 1, #values do
        local v, t = values[i], timestamps[i]
        if type(v) == "number" and type(t) == "number" then
            local dx = (t - t0) / 1000 - mx
            sxy = sxy + dx * (v - my)
            sxx = sxx + dx * dx
        end
    end
    if sxx == 0 then return nil end
    return sxy / sxx
end

-- Only reached when a classifier finds `history` without naming it (the engine passes the
-- real one to code that contains the word).
function G.history()
    error("history: not available to this classifier (the word 'history' must appear in its code)", 2)
end

-- The per-run entry point, called once per classification with the compiled classifier
-- and freshly built input arrays. Each run gets a new environment table: whatever the code
-- assigns to globals lands there and is garbage when the run ends. The classifier is
-- compiled with `local _ENV = ...` in front, so the environment is simply its argument.
local ENV_MT = { __index = G, __metatable = false }

local function runner(f, history, values, messages, result_types, timestamps)
    local env = setmetatable({
        values = values,
        messages = messages,
        result_types = result_types,
        timestamps = timestamps,
        history = history,
    }, ENV_MT)
    env._G = env
    return f(env)
end

return G, runner
