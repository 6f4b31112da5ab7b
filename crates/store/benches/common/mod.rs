//! Pieces of the storage benchmark kept apart from its phases: the time units, the plugin
//! and the results it stores, and process CPU time.

use std::time::Duration;

use prophasis_model::*;

pub const MINUTE: i64 = 60_000;
pub const DAY: i64 = 24 * 60 * MINUTE;

pub fn plugin(id: &str) -> Plugin {
    Plugin {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        version: 1.0,
        n_historical: 10,
        classifier: "return \"ok\"".into(),
        view: "value_graph".into(),
        view_source: None,
        manifest: serde_json::json!({}),
    }
}

pub fn result(host: HostId, plugin: &str, ts: Millis, i: i64) -> CheckResult {
    let value = (i % 1000) as f64 / 10.0;
    CheckResult {
        host_id: host,
        plugin_id: plugin.into(),
        check_id: None,
        timestamp: ts,
        value: Some(value),
        message: format!("{value:.1} %"),
        result_type: ResultType::Plugin,
        classification: if i % 97 == 0 {
            Classification::Minor
        } else {
            Classification::Ok
        },
    }
}

/// CPU time of this process (all threads, sqlx's SQLite workers included): on a machine
/// shared with other builds, wall time alone says more about the neighbours than about us.
pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
