//! Plugin execution through the API: JSON-mode output errors, timeouts that kill the
//! whole process tree, leftovers, and Nagios mode with the real Debian monitoring-plugins.

mod common;

use std::time::{Duration, Instant};

use common::*;
use prophasis_protocol::api::{ErrorBody, ErrorCode, RunResponse};
use serde_json::json;

async fn run_error(agent: &TestAgent, id: &str) -> (u16, ErrorBody) {
    let resp = agent.run(id, None).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn script(agent: &TestAgent, id: &str, mode: &str, timeout: Option<f64>, body: &str) {
    agent.place_plugin(
        script_manifest(id, mode, timeout),
        &[("run.sh", &format!("#!/bin/sh\n{body}\n"))],
    );
}

#[tokio::test]
async fn json_mode_output_errors_say_what_is_wrong() {
    let agent = TestAgent::start();
    let cases = [
        (
            "com.t.text",
            "echo hello",
            ErrorCode::BadOutput,
            "not valid JSON",
        ),
        (
            "com.t.empty",
            "true",
            ErrorCode::BadOutput,
            "printed nothing",
        ),
        (
            "com.t.nomsg",
            "echo '{\"value\": 1}'",
            ErrorCode::BadOutput,
            "`message` is missing",
        ),
        (
            "com.t.strval",
            "echo '{\"value\": \"1\", \"message\": \"m\"}'",
            ErrorCode::BadOutput,
            "must be a number",
        ),
        (
            "com.t.two",
            "echo '{\"value\": 1, \"message\": \"a\"}'; echo '{\"value\": 2, \"message\": \"b\"}'",
            ErrorCode::BadOutput,
            "not valid JSON",
        ),
        (
            "com.t.huge",
            "head -c 200000 /dev/zero | tr '\\0' a",
            ErrorCode::BadOutput,
            "more than 64 KiB",
        ),
        (
            "com.t.exit",
            "echo 'disk on fire' >&2; exit 4",
            ErrorCode::PluginFailed,
            "code 4 (JSON-mode plugins must exit 0); stderr: disk on fire",
        ),
        (
            "com.t.signal",
            "kill -9 $$",
            ErrorCode::PluginFailed,
            "signal 9",
        ),
    ];
    for (id, body, _, _) in &cases {
        script(&agent, id, "json", None, body);
    }
    for (id, _, code, needle) in cases {
        let (status, body) = run_error(&agent, id).await;
        assert_eq!(body.error.code, code, "{id}: {}", body.error.message);
        assert_eq!(status, 502, "{id}");
        assert!(
            body.error.message.contains(needle),
            "{id}: {:?} lacks {needle:?}",
            body.error.message
        );
    }

    // An entry that is not executable, or missing.
    agent.place_plugin(
        script_manifest("com.t.noexec", "json", None),
        &[("run.txt", "")],
    );
    let (_, body) = run_error(&agent, "com.t.noexec").await;
    assert_eq!(body.error.code, ErrorCode::PluginFailed);
    assert!(
        body.error.message.contains("does not exist"),
        "{}",
        body.error.message
    );
    let dir = agent.plugins_dir().join("com.t.noexec");
    std::fs::write(dir.join("run.sh"), "#!/bin/sh\n").unwrap();
    let (_, body) = run_error(&agent, "com.t.noexec").await;
    assert!(
        body.error.message.contains("not executable"),
        "{}",
        body.error.message
    );

    // Still serving after all of that.
    assert_eq!(agent.get("/ping").await.status(), 200);
}

fn wait_gone(pid: i32) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// True once no process is left in process group `pgid`.
fn wait_group_gone(pgid: i32) -> bool {
    let in_group = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // Fields after the command: state, ppid, pgrp.
            let f: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            f.get(2) == Some(&pgid.to_string().as_str()) && !matches!(f.first(), Some(&"Z" | &"X"))
        })
    };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        if !in_group() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn read_pid(path: &std::path::Path) -> i32 {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "no pid in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn timeout_kills_the_whole_process_tree() {
    let agent = TestAgent::start();
    let pidfile = agent.dir.path().join("grandchild.pid");
    // The grandchild detaches its output so only the group kill can reach it.
    script(
        &agent,
        "com.t.hang",
        "json",
        Some(1.0),
        &format!(
            "sleep 100 >/dev/null 2>&1 &\necho $! > {}\nsleep 100",
            pidfile.display()
        ),
    );
    let t = Instant::now();
    let (status, body) = run_error(&agent, "com.t.hang").await;
    let took = t.elapsed();
    assert_eq!((status, body.error.code), (504, ErrorCode::PluginTimeout));
    assert!(
        body.error.message.contains("timeout of 1 s"),
        "{}",
        body.error.message
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    let pid = read_pid(&pidfile);
    assert!(wait_gone(pid), "grandchild {pid} survived the timeout");

    // A plugin that exits normally but leaves a helper behind: the helper is killed too.
    let pidfile2 = agent.dir.path().join("leftover.pid");
    script(
        &agent,
        "com.t.leak",
        "json",
        None,
        &format!(
            "sleep 100 >/dev/null 2>&1 &\necho $! > {}\necho '{{\"value\": 1, \"message\": \"done\"}}'",
            pidfile2.display()
        ),
    );
    let resp = agent.run("com.t.leak", None).await;
    assert_eq!(resp.status(), 200);
    let pid = read_pid(&pidfile2);
    assert!(wait_gone(pid), "leftover {pid} survived");
}

/// Issue #3: a plugin still running at its timeout, whose helper shares its stdout, was
/// reported as "exited but a process it started kept its output open". It never exited:
/// the answer must be the plain timeout.
#[tokio::test]
async fn a_running_plugin_with_a_helper_on_its_stdout_times_out_plainly() {
    let agent = TestAgent::start();
    let pidfile = agent.dir.path().join("group.pid");
    // The plugin's own pid is its process group's id.
    script(
        &agent,
        "com.t.bgkeep",
        "json",
        Some(1.0),
        &format!("echo $$ > {}\nsleep 30 & sleep 30", pidfile.display()),
    );
    let t = Instant::now();
    let (status, body) = run_error(&agent, "com.t.bgkeep").await;
    let took = t.elapsed();
    assert_eq!((status, body.error.code), (504, ErrorCode::PluginTimeout));
    let m = &body.error.message;
    assert!(
        m.contains("ran longer than its timeout of 1 s and was stopped"),
        "{m}"
    );
    assert!(!m.contains("exited"), "{m}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let pgid = read_pid(&pidfile);
    assert!(
        wait_group_gone(pgid),
        "processes of group {pgid} survived the timeout"
    );

    // The case the other message is for: the plugin's own process is gone, only a helper
    // holds stdout open.
    script(
        &agent,
        "com.t.bgonly",
        "json",
        Some(1.0),
        &format!("sleep 30 & echo $! > {}", pidfile.display()),
    );
    let _ = std::fs::remove_file(&pidfile);
    let (status, body) = run_error(&agent, "com.t.bgonly").await;
    assert_eq!((status, body.error.code), (504, ErrorCode::PluginTimeout));
    assert!(
        body.error.message.contains("kept its output open"),
        "{}",
        body.error.message
    );
    let pid = read_pid(&pidfile);
    assert!(wait_gone(pid), "helper {pid} survived the timeout");
}

#[tokio::test]
async fn agent_maximum_caps_the_manifest_timeout() {
    let agent = TestAgent::start_with(|c| {
        c.default_timeout_secs = 0.5;
        c.max_timeout_secs = 1.0;
    });
    script(&agent, "com.t.slow", "json", Some(60.0), "sleep 30");
    script(&agent, "com.t.slow2", "json", None, "sleep 30");
    let t = Instant::now();
    let (_, body) = run_error(&agent, "com.t.slow").await;
    assert_eq!(body.error.code, ErrorCode::PluginTimeout);
    assert!(t.elapsed() < Duration::from_secs(3));
    let t = Instant::now();
    let (_, body) = run_error(&agent, "com.t.slow2").await;
    assert_eq!(body.error.code, ErrorCode::PluginTimeout);
    assert!(
        body.error.message.contains("0.5 s"),
        "{}",
        body.error.message
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_hanging_plugin_does_not_block_other_requests() {
    let agent = TestAgent::start();
    script(&agent, "com.t.hang", "json", Some(3.0), "sleep 10");
    let slow = agent.run("com.t.hang", None);
    let fast = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        for _ in 0..5 {
            assert_eq!(agent.get("/ping").await.status(), 200);
        }
        t.elapsed()
    };
    let (slow, fast) = tokio::join!(slow, fast);
    assert_eq!(slow.status(), 504);
    assert!(fast < Duration::from_secs(2), "pings took {fast:?}");
}

/// A package wrapping one of Debian's monitoring-plugins.
fn nagios(agent: &TestAgent, id: &str, plugin: &str) {
    let path = nagios_plugin(plugin);
    script(
        agent,
        id,
        "nagios",
        Some(20.0),
        &format!("exec {} \"$@\"", path.display()),
    );
}

async fn run_ok(agent: &TestAgent, id: &str, args: serde_json::Value) -> RunResponse {
    let resp = agent.run(id, Some(args)).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{id}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn nagios_mode_with_real_monitoring_plugins() {
    let agent = TestAgent::start();
    nagios(&agent, "org.monitoring-plugins.load", "check_load");
    nagios(&agent, "org.monitoring-plugins.disk", "check_disk");
    nagios(&agent, "org.monitoring-plugins.procs", "check_procs");
    nagios(&agent, "org.monitoring-plugins.users", "check_users");

    let loadavg: f64 = std::fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let r = run_ok(
        &agent,
        "org.monitoring-plugins.load",
        json!({"warning": "1000,1000,1000", "critical": "2000,2000,2000"}),
    )
    .await;
    assert_eq!(r.exit_code, Some(0));
    assert!(r.message.starts_with("OK: LOAD OK"), "{}", r.message);
    let v = r.value.expect("load1 from perfdata");
    assert!((v - loadavg).abs() < 5.0, "{v} vs {loadavg}");

    let r = run_ok(
        &agent,
        "org.monitoring-plugins.load",
        json!({"warning": "0,0,0", "critical": "1000,1000,1000"}),
    )
    .await;
    assert_eq!(r.exit_code, Some(1));
    assert!(r.message.starts_with("WARNING: "), "{}", r.message);

    // Bad thresholds: the plugin itself answers UNKNOWN (exit 3).
    let r = run_ok(
        &agent,
        "org.monitoring-plugins.load",
        json!({"warning": "abc"}),
    )
    .await;
    assert_eq!(r.exit_code, Some(3));
    assert!(r.message.starts_with("UNKNOWN: "), "{}", r.message);

    // Arguments go in name order: critical, path, warning (check_disk wants a threshold
    // before --path).
    let r = run_ok(
        &agent,
        "org.monitoring-plugins.disk",
        json!({"critical": "100%", "path": "/", "warning": "100%"}),
    )
    .await;
    assert_eq!(r.exit_code, Some(2));
    assert!(
        r.message.starts_with("CRITICAL: DISK CRITICAL"),
        "{}",
        r.message
    );
    assert!(r.value.unwrap() > 0.0);

    let r = run_ok(
        &agent,
        "org.monitoring-plugins.procs",
        json!({"warning": "100000", "critical": "200000"}),
    )
    .await;
    assert_eq!(r.exit_code, Some(0));
    assert!(r.message.starts_with("OK: PROCS OK"), "{}", r.message);
    assert!(r.value.unwrap() >= 1.0);

    let r = run_ok(
        &agent,
        "org.monitoring-plugins.users",
        json!({"warning": "1000", "critical": "2000"}),
    )
    .await;
    assert_eq!(r.exit_code, Some(0));
    assert!(r.message.starts_with("OK: USERS OK"), "{}", r.message);
    assert!(r.value.is_some());
}

#[tokio::test]
async fn nagios_mode_edge_cases() {
    let agent = TestAgent::start();
    script(
        &agent,
        "com.t.multi",
        "nagios",
        None,
        "printf 'DISK WARNING - low\\n/ 10%% free\\n/var 5%% free | /=90%%;80;95\\n/var=95%%;80;95\\n'; exit 1",
    );
    let r = run_ok(&agent, "com.t.multi", json!({})).await;
    assert_eq!(r.exit_code, Some(1));
    assert_eq!(
        r.message,
        "WARNING: DISK WARNING - low\n/ 10% free\n/var 5% free"
    );
    assert_eq!(r.value, Some(90.0));

    script(
        &agent,
        "com.t.code7",
        "nagios",
        None,
        "echo 'weird'; exit 7",
    );
    let (status, body) = run_error(&agent, "com.t.code7").await;
    assert_eq!((status, body.error.code), (502, ErrorCode::PluginFailed));
    assert!(
        body.error.message.contains("code 7"),
        "{}",
        body.error.message
    );

    script(
        &agent,
        "com.t.killed",
        "nagios",
        None,
        "echo 'x'; kill -9 $$",
    );
    let (_, body) = run_error(&agent, "com.t.killed").await;
    assert_eq!(body.error.code, ErrorCode::PluginFailed);
}
