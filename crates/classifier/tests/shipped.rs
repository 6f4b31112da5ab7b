//! The classifiers shipped in plugins/<name>/classifier.lua, each on healthy, borderline
//! and failing inputs.

mod common;

use common::*;
use prophasis_classifier::Sample;
use prophasis_model::{Classification, ResultType};
use Classification::*;

fn shipped(name: &str) -> String {
    let path = format!(
        "{}/../../plugins/{name}/classifier.lua",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A result of type "plugin" with a message.
fn ok_msg(value: Option<f64>, message: &str) -> Sample {
    Sample {
        value,
        message: message.into(),
        result_type: ResultType::Plugin,
        timestamp: 0,
    }
}

fn failed(t: ResultType) -> Sample {
    Sample {
        value: None,
        message: "no answer".into(),
        result_type: t,
        timestamp: 0,
    }
}

/// Gives the samples increasing timestamps one minute apart.
fn timed(mut s: Vec<Sample>) -> Vec<Sample> {
    for (i, x) in s.iter_mut().enumerate() {
        x.timestamp = 1_700_000_000_000 + i as i64 * 60_000;
    }
    s
}

fn check(name: &str, cases: Vec<(&str, Vec<Sample>, Classification)>) {
    let code = shipped(name);
    let mut e = engine();
    for (what, inputs, want) in cases {
        let out = run(&mut e, &code, &inputs);
        assert!(out.diagnostics.is_empty(), "{name}/{what}: {out:?}");
        assert_eq!(out.classification, want, "{name}/{what}");
    }
}

#[test]
fn cpu_load() {
    check(
        "cpu_load",
        vec![
            ("idle", nums(&[0.1, 0.2, 0.1, 0.3, 0.2]), Ok),
            (
                "just below one per CPU",
                nums(&[0.5, 0.9, 0.95, 0.99, 0.99]),
                Ok,
            ),
            ("busy", nums(&[0.5, 0.6, 0.7, 0.8, 1.2]), Minor),
            (
                "single spike is only minor",
                nums(&[0.2, 0.3, 0.2, 0.4, 5.0]),
                Minor,
            ),
            (
                "two high results are not yet sustained",
                nums(&[0.2, 0.3, 0.2, 2.0, 2.0]),
                Minor,
            ),
            (
                "sustained high load",
                nums(&[0.2, 0.3, 1.6, 2.0, 1.8]),
                Major,
            ),
            (
                "sustained overload",
                nums(&[3.5, 4.0, 3.1, 3.2, 3.9]),
                Critical,
            ),
            (
                "overload sustained only twice",
                nums(&[1.6, 1.7, 1.6, 3.5, 4.0]),
                Major,
            ),
            (
                "dip breaks the run",
                nums(&[2.0, 2.0, 0.5, 2.0, 2.0]),
                Minor,
            ),
            (
                "missing value",
                samples(&[Some(0.1), Some(0.2), None]),
                Unknown,
            ),
            (
                "agent unreachable",
                vec![ok_msg(Some(0.1), ""), failed(ResultType::ConnectionTimeout)],
                Unknown,
            ),
            ("no results", vec![], Unknown),
        ],
    );
}

#[test]
fn memory_usage() {
    check(
        "memory_usage",
        vec![
            ("normal", nums(&[40.0, 42.0, 41.0]), Ok),
            ("just below minor", nums(&[84.9]), Ok),
            ("tight", nums(&[70.0, 86.0]), Minor),
            ("very tight", nums(&[80.0, 93.0]), Major),
            ("one burst above critical", nums(&[60.0, 98.0]), Major),
            ("exhausted twice in a row", nums(&[97.5, 99.0]), Critical),
            ("exhausted, first reading", nums(&[99.0]), Critical),
            ("missing value", samples(&[Some(50.0), None]), Unknown),
            (
                "error result",
                vec![failed(ResultType::CommandUnsuccessful)],
                Unknown,
            ),
        ],
    );
}

#[test]
fn heartbeat() {
    let up = || ok_msg(Some(1.0), "");
    check(
        "heartbeat",
        vec![
            ("answering", vec![up(), up(), up()], Ok),
            (
                "recovered after one miss",
                vec![failed(ResultType::ConnectionError), up(), up()],
                Ok,
            ),
            (
                "connection refused",
                vec![up(), up(), failed(ResultType::ConnectionError)],
                Critical,
            ),
            (
                "timeout",
                vec![up(), failed(ResultType::ConnectionTimeout)],
                Critical,
            ),
            (
                "wrong key",
                vec![failed(ResultType::AuthenticationError)],
                Critical,
            ),
            (
                "bad request",
                vec![up(), failed(ResultType::RequestError)],
                Critical,
            ),
            (
                "flapping",
                vec![
                    failed(ResultType::ConnectionTimeout),
                    failed(ResultType::ConnectionTimeout),
                    up(),
                ],
                Minor,
            ),
            ("odd value", vec![ok_msg(None, "")], Unknown),
            ("no results", vec![], Unknown),
        ],
    );
}

#[test]
fn raid_md() {
    check(
        "raid_md",
        vec![
            (
                "clean",
                vec![ok_msg(Some(0.0), "md0: active raid1 [2/2] [UU]")],
                Ok,
            ),
            (
                "resync after unclean shutdown",
                vec![ok_msg(Some(0.0), "md0: resync 12.5%")],
                Minor,
            ),
            (
                "rebuilding a replaced disk",
                vec![ok_msg(Some(1.0), "md0 degraded [2/1] [U_], recovery 40.1%")],
                Major,
            ),
            (
                "degraded",
                vec![
                    ok_msg(Some(0.0), "md0: [UU]"),
                    ok_msg(Some(1.0), "md0 degraded [2/1] [U_]"),
                ],
                Critical,
            ),
            (
                "two disks gone",
                vec![ok_msg(
                    Some(2.0),
                    "md0 degraded, md1 degraded, md1 recovery 5%",
                )],
                Critical,
            ),
            (
                "missing value",
                vec![ok_msg(None, "cannot read /proc/mdstat")],
                Unknown,
            ),
            (
                "unreachable",
                vec![failed(ResultType::ConnectionError)],
                Unknown,
            ),
        ],
    );
}

#[test]
fn disk_usage() {
    check(
        "disk_usage",
        vec![
            (
                "plenty free",
                timed(nums(&[40.0, 40.0, 40.1, 40.1, 40.1])),
                Ok,
            ),
            (
                "just below minor, steady",
                timed(nums(&[79.9, 79.9, 79.9])),
                Ok,
            ),
            ("getting full", timed(nums(&[81.0, 81.0, 81.5])), Minor),
            ("nearly full", timed(nums(&[91.0, 91.0, 91.0])), Major),
            ("full", timed(nums(&[96.0])), Critical),
            // 10 points a minute from 50 %: full in 5 minutes.
            ("filling fast", timed(nums(&[30.0, 40.0, 50.0])), Major),
            ("only two points: no trend", timed(nums(&[40.0, 60.0])), Ok),
            ("shrinking", timed(nums(&[85.0, 75.0, 70.0])), Ok),
            (
                "missing value",
                timed(samples(&[Some(50.0), None])),
                Unknown,
            ),
            ("error", vec![failed(ResultType::RequestError)], Unknown),
        ],
    );
}

#[test]
fn nagios_disk() {
    let m = |s: &str| ok_msg(Some(1.0), s);
    check(
        "nagios_disk",
        vec![
            (
                "ok",
                vec![m("OK: DISK OK - free space: / 71425MiB (76%)")],
                Ok,
            ),
            (
                "warning",
                vec![
                    m("OK: DISK OK"),
                    m("WARNING: DISK WARNING - free space: / 900MiB (15%)"),
                ],
                Minor,
            ),
            (
                "lasting warning",
                vec![m("WARNING: a"), m("WARNING: b"), m("WARNING: c")],
                Major,
            ),
            (
                "critical",
                vec![
                    m("WARNING: a"),
                    m("CRITICAL: DISK CRITICAL - free space: / 90MiB (2%)"),
                ],
                Critical,
            ),
            (
                "plugin unknown",
                vec![m("UNKNOWN: check_disk not found")],
                Unknown,
            ),
            ("garbled", vec![m("DISK OK - no state prefix")], Unknown),
            (
                "unreachable",
                vec![m("OK: x"), failed(ResultType::ConnectionTimeout)],
                Unknown,
            ),
            ("no results", vec![], Unknown),
        ],
    );
}

#[test]
fn shipped_classifiers_compile_and_stay_far_below_the_limits() {
    for name in [
        "cpu_load",
        "memory_usage",
        "heartbeat",
        "raid_md",
        "disk_usage",
        "nagios_disk",
    ] {
        let mut e = prophasis_classifier::Engine::new(prophasis_classifier::EngineConfig {
            // A shipped classifier on n = 100 must fit in 1% of the default budget.
            instructions: 10_000,
            ..Default::default()
        })
        .unwrap();
        let inputs: Vec<Sample> = (0..100)
            .map(|i| ok_msg(Some(1.0 + i as f64 / 100.0), "WARNING: x"))
            .collect();
        let out = run(&mut e, &shipped(name), &timed(inputs));
        assert!(out.diagnostics.is_empty(), "{name}: {out:?}");
    }
}
