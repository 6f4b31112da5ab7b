//! The Lua API a classifier sees: input arrays, "none", every helper (table-driven, with
//! "none" and empty arrays), history(), the compile cache and dry runs.

mod common;

use std::collections::HashMap;

use common::*;
use prophasis_classifier::{
    samples_from_columns, Engine, EngineConfig, HistoryError, HistorySource, InputError, NoHistory,
    Sample,
};
use prophasis_model::{Classification, ResultType};

/// (Lua expression, expected value as a Lua expression). `nil` compares as nil; numbers
/// compare with a tolerance.
const CASES: &[(&str, &str)] = &[
    // arrayContains: finds "none" too, since that is how a classifier asks for it.
    ("arrayContains({1, 2, 3}, 2)", "true"),
    ("arrayContains({1, 2, 3}, 4)", "false"),
    ("arrayContains({}, 1)", "false"),
    ("arrayContains({1, 'none'}, 'none')", "true"),
    (
        "arrayContains({'plugin', 'connection_error'}, 'connection_error')",
        "true",
    ),
    // arrayMax / arrayMin skip "none"; nothing numeric gives nil.
    ("arrayMax({1, 5, 3})", "5"),
    ("arrayMax({'none', 2, 'none'})", "2"),
    ("arrayMax({-1, -5})", "-1"),
    ("arrayMax({})", "nil"),
    ("arrayMax({'none', 'none'})", "nil"),
    ("arrayMin({4, 1.5, 3})", "1.5"),
    ("arrayMin({'none', 7})", "7"),
    ("arrayMin({})", "nil"),
    // arrayAvg divides by the number of real values (the original's was broken).
    ("arrayAvg({1, 2, 3, 4})", "2.5"),
    ("arrayAvg({'none', 2, 4})", "3"),
    ("arrayAvg({2, 'none', 'none', 4, 'none'})", "3"),
    ("arrayAvg({5})", "5"),
    ("arrayAvg({})", "nil"),
    ("arrayAvg({'none'})", "nil"),
    // arraySum
    ("arraySum({1, 2, 'none', 3})", "6"),
    ("arraySum({})", "0"),
    ("arraySum({'none'})", "0"),
    // arrayCount: without a value counts entries that are not "none"; with one, that value.
    ("arrayCount({1, 'none', 2})", "2"),
    ("arrayCount({})", "0"),
    ("arrayCount({1, 2, 1}, 1)", "2"),
    ("arrayCount({'none', 'none', 3}, 'none')", "2"),
    ("arrayCount({}, 'plugin')", "0"),
    // arrayLast: newest entry that is not "none".
    ("arrayLast({1, 2, 'none'})", "2"),
    ("arrayLast({'a', 'b'})", "'b'"),
    ("arrayLast({'none'})", "nil"),
    ("arrayLast({})", "nil"),
    // percentile: linear interpolation between closest ranks, "none" skipped.
    ("percentile({1, 2, 3, 4, 5}, 50)", "3"),
    ("percentile({1, 2, 3, 4}, 50)", "2.5"),
    ("percentile({3, 1, 2}, 25)", "1.5"),
    ("percentile({10, 'none', 20}, 0)", "10"),
    ("percentile({10, 'none', 20}, 100)", "20"),
    ("percentile({10, 20, 30, 40}, 90)", "37"),
    ("percentile({5}, 90)", "5"),
    ("percentile({}, 50)", "nil"),
    ("percentile({'none'}, 50)", "nil"),
    // slope: per second, least squares, timestamps in milliseconds.
    ("slope({0, 60, 120}, {0, 60000, 120000})", "1"),
    ("slope({'none', 10, 20}, {0, 1000, 2000})", "10"),
    ("slope({1, 2, 4}, {0, 1000, 2000})", "1.5"),
    ("slope({3, 3, 3}, {0, 1000, 2000})", "0"),
    ("slope({10, 0}, {1700000000000, 1700000010000})", "-1"),
    ("slope({5}, {0})", "nil"),
    ("slope({}, {})", "nil"),
    ("slope({1, 2}, {5000, 5000})", "nil"),
    ("slope({'none', 'none'}, {0, 1000})", "nil"),
];

#[test]
fn helpers_behave_as_documented() {
    let mut e = engine();
    for (expr, want) in CASES {
        let code = format!(
            "local got, want = {expr}, {want}\n\
             if type(got) == 'number' and type(want) == 'number' then\n\
               if math.abs(got - want) < 1e-9 then return 'ok' end\n\
             elseif got == want then return 'ok' end\n\
             error('got ' .. tostring(got))"
        );
        let out = run(&mut e, &code, &[]);
        assert_eq!(
            out.classification,
            Classification::Ok,
            "{expr} should be {want}: {out:?}"
        );
    }
}

#[test]
fn helpers_refuse_non_arrays_with_a_diagnostic() {
    let mut e = engine();
    for f in [
        "arrayContains",
        "arrayMax",
        "arrayMin",
        "arrayAvg",
        "arraySum",
        "arrayCount",
        "arrayLast",
    ] {
        let out = run(&mut e, &format!("local x = {f}(nil, 1)"), &[]);
        assert_unknown(&out, &format!("{f}: expected an array, got nil"));
    }
    assert_unknown(
        &run(&mut e, "local x = percentile({1}, 'x')", &[]),
        "p must be a number",
    );
    assert_unknown(
        &run(&mut e, "local x = slope({1}, 5)", &[]),
        "slope: expected an array",
    );
}

#[test]
fn inputs_arrive_oldest_first_with_none_for_missing_values() {
    let mut e = engine();
    let inputs = vec![
        Sample {
            value: Some(1.5),
            message: "first".into(),
            result_type: ResultType::Plugin,
            timestamp: 1_000,
        },
        Sample {
            value: None,
            message: "".into(),
            result_type: ResultType::ConnectionTimeout,
            timestamp: 2_000,
        },
        Sample {
            value: Some(3.0),
            message: "third".into(),
            result_type: ResultType::CommandUnsuccessful,
            timestamp: 3_000,
        },
    ];
    let code = r#"
        assert(#values == 3 and #messages == 3 and #result_types == 3 and #timestamps == 3)
        assert(values[1] == 1.5 and values[2] == "none" and values[3] == 3)
        assert(messages[1] == "first" and messages[2] == "" and messages[3] == "third")
        assert(result_types[1] == "plugin" and result_types[2] == "connection_timeout")
        assert(result_types[3] == "command_unsuccessful")
        assert(timestamps[1] == 1000 and timestamps[3] == 3000 and math.type(timestamps[2]) == "integer")
        if arrayContains(values, "none") then return "unknown" end
        return "ok"
    "#;
    let out = run(&mut e, code, &inputs);
    assert_eq!(out.classification, Classification::Unknown);
    assert!(
        out.diagnostics.is_empty(),
        "a deliberate unknown has no diagnostic: {out:?}"
    );
    // No inputs at all: empty arrays, not nil.
    let out = run(
        &mut e,
        "assert(#values == 0 and #result_types == 0) return 'minor'",
        &[],
    );
    assert_eq!(out.classification, Classification::Minor, "{out:?}");
}

#[test]
fn every_allowed_classification_maps() {
    let mut e = engine();
    for c in Classification::ALL {
        let out = run(&mut e, &format!("return '{c}'"), &[]);
        assert_eq!(out.classification, c);
        assert!(out.diagnostics.is_empty());
    }
    for bad in ["degraded", "no_data", "Critical", " ok"] {
        assert_unknown(
            &run(&mut e, &format!("return '{bad}'"), &[]),
            "expected one of",
        );
    }
}

struct FailingHistory;
impl HistorySource for FailingHistory {
    fn history(&self, _: &str, _: usize) -> Result<Vec<Sample>, HistoryError> {
        Err(HistoryError("database is down".into()))
    }
}

#[test]
fn history_reads_other_plugins_of_the_same_host() {
    let mut e = Engine::new(EngineConfig {
        max_history: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    let mut src: HashMap<String, Vec<Sample>> = HashMap::new();
    src.insert(
        "org.prophasis.cpu_load".into(),
        nums(&[0.2, 0.5, 2.5, 3.0, 3.5, 4.0]),
    );
    let code = r#"
        local load, msgs, types, times = history("org.prophasis.cpu_load", 3)
        assert(#load == 3 and #msgs == 3 and #types == 3 and #times == 3)
        assert(load[1] == 3.0 and load[3] == 4.0 and types[3] == "plugin")
        local capped = history("org.prophasis.cpu_load", 100)
        assert(#capped == 4, "n is capped by max_history")
        local none = history("org.prophasis.nothing", 5)
        assert(#none == 0)
        if values[#values] > 70 and arrayAvg(load) > 2 then return "critical" end
        return "ok"
    "#;
    let out = e.classify(code, &nums(&[75.0]), &src);
    assert_eq!(out.classification, Classification::Critical, "{out:?}");

    let out = e.classify(code, &nums(&[75.0]), &FailingHistory);
    assert_unknown(&out, "database is down");
    assert_eq!(out.diagnostics[0].line, Some(2));

    let many = "for i = 1, 20 do history('x', 1) end return 'ok'";
    assert_unknown(&e.classify(many, &[], &NoHistory), "more than 8 calls");
}

#[test]
fn compiled_code_is_cached_by_content_and_bounded() {
    let mut e = Engine::new(EngineConfig {
        cache_capacity: 3,
        ..EngineConfig::default()
    })
    .unwrap();
    let inputs = nums(&[1.0]);
    for _ in 0..5 {
        assert_eq!(
            run(&mut e, "return 'ok'", &inputs).classification,
            Classification::Ok
        );
    }
    assert_eq!(e.cached(), 1);
    // Changed code takes effect on the next call.
    assert_eq!(
        run(&mut e, "return 'minor'", &inputs).classification,
        Classification::Minor
    );
    assert_eq!(e.cached(), 2);
    for i in 0..10 {
        run(&mut e, &format!("return 'ok' -- {i}"), &inputs);
    }
    assert_eq!(e.cached(), 3);
    // Syntax errors are cached too and still reported every time.
    for _ in 0..2 {
        assert_unknown(&run(&mut e, "return (", &inputs), "unexpected symbol");
    }
    assert_eq!(e.check("return 'ok'"), Ok(()));
    assert_eq!(e.check("if then").unwrap_err().line, Some(1));
}

#[test]
fn dry_run_matches_classify() {
    let mut e = engine();
    let code = "if arrayMax(values) > 10 then return 'major' end return 'ok'";
    let inputs = samples_from_columns(
        &[Some(3.0), None, Some(12.0)],
        &["a".into(), "b".into(), "c".into()],
        &[
            ResultType::Plugin,
            ResultType::ConnectionError,
            ResultType::Plugin,
        ],
        None,
        1_700_000_000_000,
    )
    .unwrap();
    assert_eq!(inputs[0].timestamp, 1_700_000_000_000 - 120_000);
    let a = e.dry_run(code, &inputs, &NoHistory);
    let b = e.classify(code, &inputs, &NoHistory);
    assert_eq!(a, b);
    assert_eq!(a.classification, Classification::Major);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"classification": "major", "diagnostics": []})
    );

    let err = samples_from_columns(&[Some(1.0)], &[], &[ResultType::Plugin], None, 0).unwrap_err();
    assert_eq!(
        err,
        InputError::LengthMismatch {
            field: "messages",
            got: 0,
            want: 1
        }
    );
}

#[test]
fn string_library_works_through_the_sandbox() {
    let mut e = engine();
    let code = r##"
        local m = messages[1]
        local state, rest = m:match("^(%u+):%s*(.*)$")
        assert(state == "WARNING" and rest == "/ 85% used")
        assert(string.find(m, "85%", 1, true) == 12)
        assert(select(2, m:gsub("%d", "#")) == 2)
        local words = {}
        for w in string.gmatch("a b  c", "%a") do words[#words + 1] = w end
        assert(#words == 3)
        assert(("x"):rep(3, ",") == "x,x,x" and string.format("%.1f", 2.25) == "2.2")
        assert(utf8.len("héllo") == 5 and table.concat({1, 2}, "-") == "1-2")
        local t = {3, 1, 2}; table.sort(t); assert(t[1] == 1)
        local n = 0; for k in pairs(math) do n = n + 1 end; assert(n > 10)
        return "ok"
    "##;
    let inputs = vec![Sample {
        value: Some(85.0),
        message: "WARNING: / 85% used".into(),
        result_type: ResultType::Plugin,
        timestamp: 0,
    }];
    let out = run(&mut e, code, &inputs);
    assert_eq!(out.classification, Classification::Ok, "{out:?}");
}

#[test]
fn pool_serves_threads_and_reuses_engines() {
    let pool = std::sync::Arc::new(prophasis_classifier::EnginePool::new(
        EngineConfig::default(),
        2,
    ));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let code = "if values[1] > 1 then return 'major' end return 'ok'";
                let out = pool.classify(code, &nums(&[i as f64]), &NoHistory).unwrap();
                assert_eq!(
                    out.classification,
                    if i > 1 {
                        Classification::Major
                    } else {
                        Classification::Ok
                    }
                );
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // An engine handed back keeps its compiled code.
    let cached = pool.with(|e| e.cached()).unwrap();
    assert_eq!(cached, 1);
}
