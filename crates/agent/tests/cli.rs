//! The real binary: `setup --non-interactive` output and re-runs, `run` serving what setup
//! printed, and curl as a client (the way an operator or a script talks to an agent).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_prophasis-agent");

fn setup(config: &Path, extra: &[&str]) -> (Option<String>, String, String) {
    let out = Command::new(BIN)
        .args(["setup", "--non-interactive", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "setup failed: {stdout}\n{stderr}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    let is_hex64 = |s: &str| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let key = line("key: ");
    if let Some(k) = &key {
        assert!(is_hex64(k), "key {k:?}");
    }
    let fp = line("fingerprint: ").expect("a fingerprint line");
    assert!(is_hex64(&fp), "fingerprint {fp:?}");
    (key, fp, stdout)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str], port: u16) -> Agent {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the agent did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Agent(child)
}

async fn ping(port: u16, key: &str) -> (u16, String) {
    let resp = client()
        .get(format!("https://127.0.0.1:{port}/ping"))
        .basic_auth("core", Some(key))
        .send()
        .await
        .unwrap();
    let cert = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .map(prophasis_agent::tls::fingerprint)
        .unwrap();
    (resp.status().as_u16(), cert)
}

#[tokio::test]
async fn setup_then_run_the_binary() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("etc/agent.toml");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();

    let (key, fp, out) = setup(&config, &["--listen", &listen, "--data-dir", data_s]);
    let key = key.expect("first setup prints a key");
    assert!(out.contains(&format!("listen: {listen}")));
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(&key), "the key itself must not be stored");

    // Re-run: no new key, same certificate, changed policy kept.
    let (again, fp2, _) = setup(&config, &["--signature-policy", "enforce"]);
    assert_eq!(again, None);
    assert_eq!(fp2, fp);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("signature_policy = \"enforce\""));
    assert!(text.contains(&listen));

    // The default command is `run`.
    {
        let _agent = start(&["--config", config.to_str().unwrap()], port);
        let (status, served_fp) = ping(port, &key).await;
        assert_eq!(status, 200);
        assert_eq!(
            served_fp, fp,
            "the agent presents the certificate setup printed"
        );
        assert_eq!(ping(port, "0".repeat(64).as_str()).await.0, 401);
    }

    // Rotating the key: a new one works, the old one no longer does.
    let (rotated, fp3, _) = setup(&config, &["--rotate-key"]);
    let rotated = rotated.expect("--rotate-key prints the new key");
    assert_ne!(rotated, key);
    assert_eq!(fp3, fp);
    let _agent = start(&["run", "--config", config.to_str().unwrap()], port);
    assert_eq!(ping(port, &rotated).await.0, 200);
    assert_eq!(ping(port, &key).await.0, 401);

    // curl, pinning the certificate setup wrote.
    let cert = dir.path().join("etc/agent-cert.pem");
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--cacert"])
        .arg(&cert)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-u", &format!("core:{rotated}")])
        .arg(format!("https://localhost:{port}/ping"))
        .output()
        .expect("curl must be installed (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ping: prophasis_protocol::api::Ping = serde_json::from_slice(&out.stdout).unwrap();
    assert!(ping.pong);
}

#[test]
fn setup_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let out = Command::new(BIN)
        .args(["setup", "--non-interactive", "--config"])
        .arg(&config)
        .args(["--signature-policy", "sometimes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!config.exists());
    let out = Command::new(BIN)
        .args(["setup", "--non-interactive", "--config"])
        .arg(&config)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prophasis-agent setup"));
}

#[test]
fn curl_installs_and_runs_a_plugin() {
    let agent = TestAgent::start();
    let src = tempfile::tempdir().unwrap();
    let pdir = src.path().join("com.example.curl");
    write_plugin(
        &pdir,
        script_manifest("com.example.curl", "json", None),
        &[("run.sh", "#!/bin/sh\necho \"{\\\"value\\\": 42, \\\"message\\\": \\\"hi $PROPHASIS_ARG_WHO\\\"}\"\n")],
    );
    let pkg = src.path().join("p.tar.gz");
    std::fs::write(&pkg, prophasis_protocol::package::pack_dir(&pdir).unwrap()).unwrap();
    let auth = format!("core:{}", agent.key);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "-k", "-u", &auth])
            .args(args)
            .output()
            .expect("curl must be installed (apt-get install curl)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let url = agent.url("/plugins/com.example.curl");
    let pkg_arg = format!("package=@{}", pkg.display());
    // The agent serves from its own thread, so blocking on curl here is fine.
    let (ok, body) = curl(&["-X", "PUT", "-F", &pkg_arg, &url]);
    assert!(ok, "{body}");
    assert!(body.contains("\"version\":1"), "{body}");
    let (ok, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        "{\"args\": {\"who\": \"curl\"}}",
        &format!("{url}/run"),
    ]);
    assert!(ok);
    assert_eq!(body, "{\"value\":42.0,\"message\":\"hi curl\"}");
}
