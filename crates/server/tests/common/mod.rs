//! Shared pieces of the end-to-end tests: a real `prophasis-agent` served in-process on
//! loopback, plugin folders packed as real packages, and the whole server on SQLite.

#![allow(dead_code)]

pub mod reply;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prophasis::config::Config;
use prophasis::serve::Running;
use prophasis_model::{Check, CheckResult, Host, HostId, Interval, Schedule};
use prophasis_store::Store;
use tokio::sync::oneshot;

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("prophasis-e2e-")
        .tempdir()
        .expect("temp dir")
}

/// A real agent, served in this process.
pub struct Agent {
    pub addr: SocketAddr,
    pub key: String,
    pub fingerprint: String,
    pub config_path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Agent {
    /// Sets up an agent in `dir` (new key and certificate the first time) and serves it on
    /// `port` (0: any free port).
    pub async fn start(dir: &Path, port: u16) -> Agent {
        Agent::start_with(dir, port, false).await
    }

    pub async fn start_with(dir: &Path, port: u16, new_certificate: bool) -> Agent {
        Agent::start_with_policy(dir, port, new_certificate, "verify-if-present").await
    }

    pub async fn start_with_policy(
        dir: &Path,
        port: u16,
        new_certificate: bool,
        policy: &str,
    ) -> Agent {
        let config_path = dir.join("agent.toml");
        let first = !config_path.exists();
        let setup = prophasis_agent::setup::setup(&prophasis_agent::setup::SetupOptions {
            config_path: config_path.clone(),
            listen: Some(format!("127.0.0.1:{port}")),
            data_dir: Some(dir.to_path_buf()),
            signature_policy: Some(policy.into()),
            rotate_key: first,
            new_certificate,
            default_timeout_secs: Some(5.0),
            max_timeout_secs: Some(5.0),
            ..Default::default()
        })
        .expect("agent setup");
        let key = match setup.key {
            Some(k) => {
                std::fs::write(dir.join("key.txt"), &k).unwrap();
                k
            }
            None => std::fs::read_to_string(dir.join("key.txt")).unwrap(),
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind agent");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = setup.config.clone();
        let task = tokio::spawn(async move {
            let _ = prophasis_agent::server::serve_with_shutdown(config, listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        Agent {
            addr,
            key,
            fingerprint: setup.fingerprint,
            config_path,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops serving; the port is free again when this returns.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(mut t) = self.task.take() {
            // Graceful: running requests finish, kept-alive connections are closed.
            if tokio::time::timeout(std::time::Duration::from_secs(10), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }

    pub fn host(&self, name: &str) -> Host {
        Host {
            id: 0,
            name: name.into(),
            address: "127.0.0.1".into(),
            port: self.addr.port(),
            description: String::new(),
            auth_key: self.key.clone(),
            tls_fingerprint: Some(self.fingerprint.clone()),
            enabled: true,
        }
    }
}

/// Writes a plugin folder (a shell script run in JSON mode) and returns its package.
pub fn script_plugin(
    dir: &Path,
    id: &str,
    version: f64,
    script: &str,
    classifier: &str,
    timeout: f64,
) -> Vec<u8> {
    let p = dir.join(format!("{id}-{version}"));
    std::fs::create_dir_all(&p).unwrap();
    let manifest = serde_json::json!({
        "id": id,
        "name": id,
        "version": version,
        "default_n_historical": 3,
        "default_classifier": "classifier.lua",
        "entry": "run.sh",
        "timeout": timeout,
    });
    std::fs::write(p.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(p.join("run.sh"), format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::write(p.join("classifier.lua"), classifier).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    prophasis_protocol::package::pack_dir(&p).expect("pack plugin")
}

/// A classifier: ok below 50, critical from 50, unknown without a value.
pub const THRESHOLD_CLASSIFIER: &str = r#"
local v = values[#values]
if v == "none" or v == nil then return "unknown" end
if v >= 50 then return "critical" end
return "ok"
"#;

pub fn config(data: &Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_path_buf(),
        ..Config::default()
    };
    c.dispatch.request_timeout_seconds = 3;
    c.dispatch.connect_timeout_seconds = 2;
    c.scheduler.max_lateness_seconds = 5;
    c.classifier.timeout_ms = 200;
    c
}

pub async fn open_store(data: &Path) -> Arc<Store> {
    Arc::new(
        Store::open(&format!("sqlite://{}", data.join("prophasis.db").display()))
            .await
            .expect("open store"),
    )
}

pub async fn start_server(data: &Path, store: Arc<Store>) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    prophasis::serve::start(&config(data), store, None)
        .await
        .expect("server starts")
}

/// A check of `hosts` × `plugins` and a schedule firing it every `period` seconds.
pub async fn schedule_check(
    store: &Store,
    name: &str,
    hosts: Vec<HostId>,
    plugins: Vec<String>,
    period: i64,
) -> i64 {
    let check = store
        .create_check(&Check {
            id: 0,
            name: name.into(),
            hosts,
            plugins,
            ..Default::default()
        })
        .await
        .expect("create check");
    let now = prophasis_store::now_millis();
    store
        .create_schedule(&Schedule {
            id: 0,
            name: format!("{name} schedule"),
            description: String::new(),
            checks: vec![check],
            intervals: vec![Interval {
                id: 0,
                start: now - now % 1000,
                period_seconds: period,
            }],
        })
        .await
        .expect("create schedule")
}

/// Waits until `f` returns `Some`, or fails the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn results(store: &Store, host: HostId, plugin: &str) -> Vec<CheckResult> {
    store
        .last_results(host, plugin, 1000)
        .await
        .expect("read results")
}

/// A TCP relay in front of an agent. Killing it drops every connection at once, requests
/// in flight included — what the server sees when an agent's process dies.
pub struct Relay {
    pub port: u16,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let registry = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Relay { port, tasks }
    }

    pub fn kill(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// What most end-to-end tests start from: a data folder and its store, one real agent
/// registered as a host, and a folder for plugin sources.
pub struct Scene {
    pub data: tempfile::TempDir,
    pub store: Arc<Store>,
    pub agent: Agent,
    pub host: HostId,
    pub plugins: tempfile::TempDir,
    _agent_dir: tempfile::TempDir,
}

impl Scene {
    pub async fn new(host_name: &str) -> Scene {
        Scene::with_policy(host_name, "verify-if-present").await
    }

    /// With the agent's signature policy set (`off`, `verify-if-present`, `enforce`).
    pub async fn with_policy(host_name: &str, policy: &str) -> Scene {
        let data = tempdir();
        let store = open_store(data.path()).await;
        let agent_dir = tempdir();
        let agent = Agent::start_with_policy(agent_dir.path(), 0, false, policy).await;
        let host = store
            .create_host(&agent.host(host_name))
            .await
            .expect("create host");
        Scene {
            data,
            store,
            agent,
            host,
            plugins: tempdir(),
            _agent_dir: agent_dir,
        }
    }

    /// Installs a script plugin (version 1) and runs it on the scene's host every `period`
    /// seconds, in a check named after the plugin.
    pub async fn schedule_script(
        &self,
        id: &str,
        script: &str,
        classifier: &str,
        timeout: f64,
        period: i64,
    ) {
        let package = script_plugin(self.plugins.path(), id, 1.0, script, classifier, timeout);
        prophasis::plugins::install_package(&self.store, package, None)
            .await
            .expect("install plugin");
        schedule_check(&self.store, id, vec![self.host], vec![id.into()], period).await;
    }

    pub async fn start_server(&self) -> Running {
        start_server(self.data.path(), self.store.clone()).await
    }

    /// Results of a plugin on the scene's host, oldest first.
    pub async fn results(&self, plugin: &str) -> Vec<CheckResult> {
        results(&self.store, self.host, plugin).await
    }

    /// Waits for the first result of a plugin on the scene's host.
    pub async fn first_result(&self, plugin: &str) -> CheckResult {
        eventually(Duration::from_secs(10), "a first result", || async {
            self.results(plugin).await.into_iter().next()
        })
        .await
    }
}

/// Waits for the newest system log message of a category.
pub async fn log_entry(
    store: &Store,
    category: prophasis_model::LogCategory,
) -> prophasis_model::SystemLogMessage {
    eventually(Duration::from_secs(5), "a system log entry", || async {
        let filter = prophasis_store::LogFilter {
            category: Some(category),
            ..Default::default()
        };
        store
            .list_log(&filter)
            .await
            .expect("read the system log")
            .into_iter()
            .next()
    })
    .await
}
