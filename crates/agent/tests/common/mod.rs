//! Shared helpers: an agent started in-process on 127.0.0.1:0 in its own thread and
//! runtime (as in production: one current-thread runtime), and an HTTPS client for it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use prophasis_agent::config::AgentConfig;
use prophasis_agent::setup::{setup, SetupOptions};

pub struct TestAgent {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub key: String,
    pub fingerprint: String,
    pub config: AgentConfig,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestAgent {
    pub fn start() -> TestAgent {
        TestAgent::start_with(|_| {})
    }

    /// Sets up a fresh agent in a temporary folder, lets `tweak` adjust the configuration,
    /// and serves it.
    pub fn start_with(tweak: impl FnOnce(&mut AgentConfig)) -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let outcome = setup(&SetupOptions {
            config_path: dir.path().join("agent.toml"),
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.path().join("data")),
            signature_policy: Some("verify-if-present".into()),
            ..Default::default()
        })
        .expect("setup");
        let mut config = outcome.config;
        tweak(&mut config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let cfg = config.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                prophasis_agent::server::serve_with_shutdown(cfg, listener, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = addr_rx.recv().unwrap();
        TestAgent {
            dir,
            addr,
            key: outcome.key.unwrap(),
            fingerprint: outcome.fingerprint,
            config,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.addr.port(), path)
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.config.plugins_dir()
    }

    /// Places a plugin folder directly in the plugin directory (as an install would).
    pub fn place_plugin(&self, manifest: serde_json::Value, files: &[(&str, &str)]) {
        let id = manifest["id"].as_str().unwrap().to_string();
        write_plugin(&self.plugins_dir().join(id), manifest, files);
    }

    pub fn client(&self) -> reqwest::Client {
        client()
    }

    /// GET with the right key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client()
            .get(self.url(path))
            .basic_auth("core", Some(&self.key))
            .send()
            .await
            .unwrap()
    }

    /// POST /plugins/{id}/run with optional args.
    pub async fn run(&self, id: &str, args: Option<serde_json::Value>) -> reqwest::Response {
        let mut req = self
            .client()
            .post(self.url(&format!("/plugins/{id}/run")))
            .basic_auth("core", Some(&self.key));
        if let Some(a) = args {
            req = req.json(&serde_json::json!({ "args": a }));
        }
        req.send().await.unwrap()
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a plugin folder: the manifest, a classifier, and the given files (made
/// executable when their name ends in `.sh`).
pub fn write_plugin(dir: &Path, manifest: serde_json::Value, files: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("classifier.lua"), "return \"ok\"\n").unwrap();
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        if name.ends_with(".sh") {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// A manifest running `run.sh` in the given mode.
pub fn script_manifest(id: &str, mode: &str, timeout: Option<f64>) -> serde_json::Value {
    let mut m = serde_json::json!({
        "id": id,
        "name": format!("Test {id}"),
        "version": 1,
        "default_classifier": "classifier.lua",
        "entry": "run.sh",
        "mode": mode,
    });
    if let Some(t) = timeout {
        m["timeout"] = serde_json::json!(t);
    }
    m
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTPS client that accepts the agent's self-signed certificate; tests that care
/// about the pin compare the presented certificate's fingerprint themselves.
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .unwrap()
}

/// Fails with a clear message when the Debian monitoring-plugins are not installed.
pub fn nagios_plugin(name: &str) -> PathBuf {
    let p = PathBuf::from("/usr/lib/nagios/plugins").join(name);
    assert!(
        p.exists(),
        "{} is missing: install the Debian packages monitoring-plugins-basic and monitoring-plugins-standard (apt-get install -y monitoring-plugins-basic monitoring-plugins-standard)",
        p.display()
    );
    p
}

/// True while a process with this pid exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}
