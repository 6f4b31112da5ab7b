//! The `prophasis` binary as scripts and newcomers use it: the contract lines of
//! `quickstart` (DESIGN.md), a restart that reuses the data, Ctrl-C, and `check-config`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_prophasis");

/// Kills the quickstart if a test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_quickstart(data: &std::path::Path) -> (Running, Vec<String>) {
    let mut child = Command::new(BIN)
        .args([
            "quickstart",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("prophasis runs");
    let mut lines = Vec::new();
    let reader = BufReader::new(child.stdout.take().unwrap());
    for line in reader.lines() {
        let line = line.unwrap();
        let done = line.starts_with("Prophasis is running");
        lines.push(line);
        if done {
            break;
        }
    }
    (Running(child), lines)
}

/// GET with HTTP Basic auth: status and JSON body.
fn get(url: &str, user: &str, password: &str) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    })
}

fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| l.strip_prefix(key))
}

fn interrupt(running: &mut Running) {
    let child = &mut running.0;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc_kill(child.id() as i32, 2) };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "quickstart exited with {status} after Ctrl-C"
            );
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "quickstart did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn quickstart_prints_the_contract_lines_shows_live_data_and_reuses_its_data() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, lines) = start_quickstart(data.path());
    let url = value(&lines, "url: ")
        .unwrap_or_else(|| panic!("no url line in {lines:?}"))
        .to_string();
    let user = value(&lines, "user: ")
        .expect("user line on first start")
        .to_string();
    let password = value(&lines, "password: ")
        .expect("password line on first start")
        .to_string();
    assert_eq!(user, "admin");
    assert!(password.len() >= 16);

    let start = Instant::now();
    let health = loop {
        let (status, body) = get(&format!("{url}api/v1/health/hosts"), &user, &password);
        assert_eq!(status, 200);
        assert_eq!(body[0]["name"], "localhost");
        let h = body[0]["health"].as_str().unwrap().to_string();
        if h != "no_data" {
            break h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no data from the local agent after 30 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        ["ok", "minor", "major", "critical", "unknown"].contains(&health.as_str()),
        "{health}"
    );
    interrupt(&mut child);

    // Again on the same data: same admin, no credentials printed.
    let (mut child, lines) = start_quickstart(data.path());
    assert!(value(&lines, "url: ").is_some());
    assert!(
        value(&lines, "password: ").is_none(),
        "credentials are printed only on the first start: {lines:?}"
    );
    let url = value(&lines, "url: ").unwrap();
    let (status, _) = get(&format!("{url}api/v1/health/hosts"), &user, &password);
    assert_eq!(status, 200, "the first start's password still works");
    interrupt(&mut child);
}

#[test]
fn check_config_accepts_a_good_file_and_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:8047\"\n[dispatch]\nmax_in_flight = 64\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("listen: 127.0.0.1:8047"), "{stdout}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[scheduler]\nmax_lateness_seconds = 0\n").unwrap();
    let out = Command::new(BIN)
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("scheduler.max_lateness_seconds"),
        "{stderr}"
    );
}

#[test]
fn plugin_pack_builds_a_package_from_a_reference_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("cpu.tar.gz");
    let plugin = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/cpu_load");
    let out = Command::new(BIN)
        .args(["plugin", "pack", plugin, "-o", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = std::fs::read(&out_file).unwrap();
    let manifest = prophasis_protocol::package::read_manifest(&archive).unwrap();
    assert_eq!(manifest.id, "org.prophasis.cpu_load");
}
