//! Sandbox escape attempts and limit breaches: each must end in `unknown` with a
//! diagnostic, quickly, and leave the engine as it was (memory back to baseline, no
//! change visible to the next run).

mod common;

use std::time::{Duration, Instant};

use common::*;
use prophasis_classifier::{Engine, EngineConfig};
use prophasis_model::Classification;

/// Every attempt: (what, code, words the diagnostic must contain; `a|b` = either).
const ATTEMPTS: &[(&str, &str, &str)] = &[
    ("os.execute", "os.execute('touch /tmp/pwned') return 'ok'", "global 'os'"),
    ("io.open", "io.open('/etc/passwd') return 'ok'", "global 'io'"),
    ("require", "require('os') return 'ok'", "global 'require'"),
    ("load", "load('return 1')() return 'ok'", "global 'load'"),
    ("loadstring", "loadstring('return 1')() return 'ok'", "global 'loadstring'"),
    ("dofile", "dofile('/etc/passwd') return 'ok'", "global 'dofile'"),
    ("loadfile", "loadfile('/etc/passwd') return 'ok'", "global 'loadfile'"),
    ("debug.getinfo", "debug.getinfo(1) return 'ok'", "global 'debug'"),
    ("string.dump", "string.dump(function() end) return 'ok'", "field 'dump'"),
    ("string.dump as method", "local s = ''\nreturn s.dump(print)", "field 'dump'"),
    ("collectgarbage", "collectgarbage('collect') return 'ok'", "global 'collectgarbage'"),
    ("rawset on a library", "rawset(string, 'upper', 1) return 'ok'", "global 'rawset'"),
    ("package", "package.loaded.os.exit() return 'ok'", "global 'package'"),
    ("coroutine that never ends",
     "local co = coroutine.wrap(function() while true do end end) co() return 'ok'",
     "global 'coroutine'"),
    ("string metatable __index",
     "getmetatable('').__index = {upper = function() return 'pwned' end} return 'ok'",
     "attempt to index a boolean value"),
    ("string metatable replaced", "setmetatable('', {}) return 'ok'", "bad argument #1 to 'setmetatable'"),
    ("environment metatable", "setmetatable(_ENV, nil) return 'ok'", "cannot change a protected metatable"),
    ("library table write", "string.upper = function() return 'pwned' end return 'ok'",
     "read-only table 'string'"),
    ("math write", "math.pi = 3 return 'ok'", "read-only table 'math'"),
    ("table.insert into a library", "table.insert(table, 1) return 'ok'", "read-only table 'table'"),
    ("library proxy metatable", "getmetatable(string).__index.upper = nil return 'ok'",
     "attempt to index a boolean value"),
    ("pairs does not hand out the real table",
     "local _, t = pairs(string)\nt.upper = nil return 'ok'", "read-only table 'string'"),
    ("__gc finalizer", "setmetatable({}, {__gc = function() while true do end end}) return 'ok'",
     "__gc metamethods are not allowed"),
    ("random seeding", "math.randomseed(1) return 'ok'", "field 'randomseed'"),
    ("binary chunk", "\x1bLua\x54\x00", "binary chunk|unexpected symbol"),
    ("infinite loop", "while true do end", "limit"),
    ("infinite loop under pcall",
     "while true do pcall(function() while true do end end) end", "limit"),
    ("nested pcall recursion",
     "local function f() while true do pcall(f) end end\nf()", "limit"),
    ("memory bomb (table)", "local t = {}\nfor i = 1, 1e9 do t[i] = {i} end", "limit"),
    ("memory bomb (string doubling)", "local s = 'x'\nfor i = 1, 64 do s = s .. s end", "memory limit"),
    ("memory bomb under pcall",
     "local keep = {}\nwhile true do pcall(function() keep[#keep + 1] = ('x'):rep(1e6) .. #keep end) end",
     "limit"),
    ("deep recursion", "local function f(n) return f(n + 1) + 1 end\nreturn f(1)", "stack overflow|limit"),
    ("huge string.rep", "return ('x'):rep(1e12)", "resulting string too large"),
    ("huge string.rep via library", "return string.rep('abc', 2^40, ',')", "resulting string too large"),
    ("empty string.rep loops in C", "local s = string.rep('', 1e15)\nreturn #s .. 'ok'", "returned \"0ok\""),
    ("table.move over a huge range", "table.move({}, 1, math.maxinteger, 2) return 'ok'", "too many elements"),
    ("backtracking find", "return ('a'):rep(20000):find('.-.-.-.-.-b')", "limit"),
    ("backtracking match", "return string.match(('a'):rep(20000), '(.*)(.*)(.*)b')", "limit"),
    ("backtracking gsub", "return (('a'):rep(20000):gsub('a*a*a*b', 'x'))", "limit"),
    ("backtracking gmatch",
     "for w in ('a'):rep(20000):gmatch('.-.-.-b') do end return 'ok'", "limit"),
    ("naive plain search worst case",
     // Finishes (and returns nothing) on an idle machine; on a loaded one the wall-clock
     // limit may stop it first, which is just as safe.
     "local s = ('a'):rep(2e6)\nlocal i = s:find(('a'):rep(1e5) .. 'b', 1, true)",
     "returned nothing|time limit"),
    ("gsub with a looping callback",
     "return (('abc'):gsub('%w', function() while true do end end))", "limit"),
];

/// Time a stopped run may take in this (unoptimized) test build.
const MAX_STOP: Duration = Duration::from_millis(500);

#[test]
fn every_escape_attempt_ends_in_unknown_and_leaves_the_engine_clean() {
    let mut e = engine();
    let inputs = nums(&[1.0, 2.0, 3.0]);
    // Warm up: compile a classifier and run it so caches and lazily made objects exist.
    assert_eq!(
        run(&mut e, "return ('ok'):lower()", &inputs).classification,
        Classification::Ok
    );
    e.collect_garbage();
    let baseline = e.used_memory();
    for (what, code, needle) in ATTEMPTS {
        let started = Instant::now();
        let out = run(&mut e, code, &inputs);
        let took = started.elapsed();
        assert_eq!(
            out.classification,
            Classification::Unknown,
            "{what}: {out:?}"
        );
        assert_eq!(out.diagnostics.len(), 1, "{what}: {out:?}");
        // Alternatives are separated by '|': which limit fires first depends on the build.
        assert!(
            needle
                .split('|')
                .any(|n| out.diagnostics[0].message.contains(n)),
            "{what}: diagnostic {:?} lacks {needle:?}",
            out.diagnostics[0]
        );
        assert!(took < MAX_STOP, "{what}: took {took:?}");

        // The engine is still healthy and unchanged: string methods, libraries and
        // globals are what they were.
        let check = run(
            &mut e,
            "assert(('ab'):upper() == 'AB' and string.upper('x') == 'X')\n\
             assert(math.pi > 3.14 and table.concat({'a','b'}) == 'ab')\n\
             assert(getmetatable('') == false and type(string.find) == 'function')\n\
             assert(pwned == nil and keep == nil and s == nil)\n\
             return 'ok'",
            &inputs,
        );
        assert_eq!(
            check.classification,
            Classification::Ok,
            "after {what}: {check:?}"
        );
        e.collect_garbage();
        let used = e.used_memory();
        // Each attempt adds one compiled chunk to the cache; anything a bomb allocated is gone.
        assert!(
            used < baseline + 64 * 1024,
            "{what}: memory {used} vs baseline {baseline}"
        );
    }
}

#[test]
fn globals_set_by_one_run_are_not_seen_by_the_next() {
    let mut e = engine();
    let inputs = nums(&[1.0]);
    let writer = "leaked = 'yes'\n_G.leaked2 = 'yes'\n_ENV.leaked3 = 'yes'\n\
                  arrayAvg = function() return 1e9 end\nvalues = {'x'}\nreturn 'ok'";
    assert_eq!(
        run(&mut e, writer, &inputs).classification,
        Classification::Ok
    );
    let reader = "if leaked or leaked2 or leaked3 then return 'critical' end\n\
                  if arrayAvg({1, 3}) ~= 2 then return 'major' end\n\
                  if values[1] ~= 1 then return 'minor' end\nreturn 'ok'";
    let out = run(&mut e, reader, &inputs);
    assert_eq!(out.classification, Classification::Ok, "{out:?}");
    // The same compiled chunk run twice also starts clean the second time.
    let counter = "count = (count or 0) + 1\nif count > 1 then return 'critical' end return 'ok'";
    for _ in 0..3 {
        assert_eq!(
            run(&mut e, counter, &inputs).classification,
            Classification::Ok
        );
    }
}

#[test]
fn infinite_loop_stops_at_instruction_limit_even_without_a_deadline() {
    let mut e = Engine::new(EngineConfig {
        instructions: 200_000,
        wall_clock: Duration::from_secs(3600),
        ..EngineConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let out = run(
        &mut e,
        "local i = 0\nwhile true do\n  i = i + 1\nend",
        &nums(&[1.0]),
    );
    assert_unknown(&out, "instruction limit of 200000 exceeded");
    assert!(matches!(out.diagnostics[0].line, Some(2..=3)), "{out:?}");
    assert!(started.elapsed() < MAX_STOP);
}

#[test]
fn wall_clock_bound_stops_a_run_the_instruction_limit_allows() {
    let mut e = Engine::new(EngineConfig {
        instructions: u64::MAX / 2,
        wall_clock: Duration::from_millis(20),
        ..EngineConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let out = run(&mut e, "while true do end", &nums(&[1.0]));
    assert_unknown(&out, "time limit of 20 ms exceeded");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(20) && took < MAX_STOP,
        "{took:?}"
    );
    // Backtracking in the pattern matcher is bounded by the clock too.
    let out = run(
        &mut e,
        "return ('a'):rep(30000):find('.-.-.-.-.-b')",
        &nums(&[1.0]),
    );
    assert_unknown(&out, "time limit");
}

#[test]
fn memory_bomb_stops_at_the_configured_limit() {
    let mut e = Engine::new(EngineConfig {
        memory_bytes: 2 << 20,
        instructions: u64::MAX / 2,
        wall_clock: Duration::from_secs(10),
        ..EngineConfig::default()
    })
    .unwrap();
    e.collect_garbage();
    let baseline = e.used_memory();
    let out = run(
        &mut e,
        "local t = {}\nfor i = 1, 1e9 do t[i] = i end",
        &nums(&[1.0]),
    );
    assert_unknown(&out, "memory limit of 2097152 bytes exceeded");
    e.collect_garbage();
    assert!(e.used_memory() < baseline + 16 * 1024);
    // Just under the limit is allowed.
    let out = run(
        &mut e,
        "local s = ('x'):rep(1500000) return #s > 0 and 'ok' or 'major'",
        &nums(&[1.0]),
    );
    assert_eq!(out.classification, Classification::Ok, "{out:?}");
}

#[test]
fn pcall_still_works_for_ordinary_errors() {
    let mut e = engine();
    let code = "local ok, err = pcall(function() error('boom') end)\n\
                if ok or not tostring(err):find('boom') then return 'major' end\n\
                local ok2, v = xpcall(function() return 5 end, function(m) return m end)\n\
                if ok2 and v == 5 then return 'ok' end return 'minor'";
    let out = run(&mut e, code, &nums(&[1.0]));
    assert_eq!(out.classification, Classification::Ok, "{out:?}");
}

#[test]
fn errors_point_at_the_classifier_line() {
    let mut e = engine();
    let cases: &[(&str, Option<u32>, &str)] = &[
        (
            "local x\n\nreturn x.y",
            Some(3),
            "attempt to index a nil value",
        ),
        ("return 'ok' +", Some(1), "unexpected symbol near <eof>"),
        ("\n\nerror('custom failure')", Some(3), "custom failure"),
        (
            "local v = arrayMax(nil)",
            Some(1),
            "arrayMax: expected an array, got nil",
        ),
        (
            "\nlocal p = percentile(values, 101)",
            Some(2),
            "p must be a number from 0 to 100",
        ),
        ("\nlocal i = ('x'):find('%')", Some(2), "malformed pattern"),
        ("return 'warning'", None, "returned \"warning\""),
        ("local x = 1", None, "returned nothing"),
        ("return 3", None, "returned a integer"),
        ("return 'OK'", None, "returned \"OK\""),
    ];
    for (code, line, needle) in cases {
        let out = run(&mut e, code, &nums(&[1.0]));
        assert_unknown(&out, needle);
        assert_eq!(out.diagnostics[0].line, *line, "{code:?}: {out:?}");
    }
}

#[test]
fn overlong_code_is_refused_before_compiling() {
    let mut e = Engine::new(EngineConfig {
        max_code_bytes: 100,
        ..EngineConfig::default()
    })
    .unwrap();
    let code = format!("return 'ok' -- {}", "x".repeat(200));
    assert_unknown(&run(&mut e, &code, &nums(&[1.0])), "the limit is 100");
}
