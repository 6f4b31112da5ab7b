//! The `prophasis-sim` binary: flags, the agent list file, and a scripted agent answering.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::client;
use prophasis_protocol::api::{ErrorBody, ErrorCode, RunResponse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_its_agents_and_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("agents.json");
    let scenario = dir.path().join("scenario.json");
    std::fs::write(
        &scenario,
        r#"{"default": {"values": {"constant": 5}}, "agents": {"1": {"values": {"script": [7]}}}}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_prophasis-sim"))
        .args(["--agents", "3", "--base-addr", "127.0.50.1", "--port", "0"])
        .args(["--key", "sekrit", "--preinstall", "com.example.pre:2"])
        .args([
            "--error-rate",
            "0",
            "--latency-ms",
            "0..1",
            "--stats-every",
            "0",
        ])
        .arg("--scenario")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line is printed once everything listens.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("fingerprint: "), "{line}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let fp = list["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(line.trim(), format!("fingerprint: {fp}"));
    let agents = list["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    assert_eq!(agents[2]["host"], "127.0.50.3");
    assert_eq!(agents[2]["key"], "sekrit");
    assert_eq!(agents[2]["fingerprint"], fp.as_str());

    let http = client(&fp, Duration::from_secs(5));
    let run = |i: usize, plugin: &str| {
        let addr = agents[i]["addr"].as_str().unwrap().to_string();
        http.post(format!("https://{addr}/plugins/{plugin}/run"))
            .basic_auth("core", Some("sekrit"))
            .send()
    };
    let r: RunResponse = run(0, "com.example.pre")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r.value, Some(5.0));
    let r: RunResponse = run(1, "com.example.pre")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r.value, Some(7.0));
    let e: ErrorBody = run(0, "com.example.absent")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e.error.code, ErrorCode::PluginNotFound);

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_flags_are_refused_with_a_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_prophasis-sim"))
        .args(["--agents", "2", "--base-addr", "10.0.0.1", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.0/8"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_prophasis-sim"))
        .args(["--latency-ms", "fast"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
