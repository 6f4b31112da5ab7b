//! Running one job on its host's agent: make sure the agent has the plugin's current
//! version (pushing the package if not), run it, and hand the answer — or the failure, as
//! a result type — to the pipeline.
//!
//! Which plugin versions each agent has is remembered per host after one `GET /plugins`,
//! so a check costs one request when nothing changed. An agent that answers
//! `plugin_not_found` (reinstalled, or its folder cleaned) is asked again and re-pushed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use prophasis_model::{Host, HostId, LogCategory, PluginId, ResultType};
use prophasis_protocol::api::{ErrorCode, RunRequest};
use prophasis_store::{now_millis, Store};
use tokio::sync::mpsc;

use super::agent_client::{AgentClient, AgentError, Timeouts};
use super::queue::Runner;
use crate::catalog::{Catalog, Job};
use crate::pipeline::RawResult;
use crate::syslog::SysLog;

/// What identifies a usable client: a change of any of these needs a new one.
#[derive(Clone, PartialEq, Eq)]
struct ClientKey {
    address: String,
    port: u16,
    key: String,
    pin: Option<String>,
}

impl ClientKey {
    fn of(host: &Host) -> ClientKey {
        ClientKey {
            address: host.address.clone(),
            port: host.port,
            key: host.auth_key.clone(),
            pin: host.tls_fingerprint.clone(),
        }
    }
}

/// State shared by every run.
pub struct AgentRunner {
    pub store: Arc<Store>,
    pub catalog: Arc<RwLock<Arc<Catalog>>>,
    pub syslog: SysLog,
    pub results: mpsc::Sender<RawResult>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub timeouts: Timeouts,
    clients: Mutex<HashMap<HostId, (ClientKey, AgentClient)>>,
    /// Plugin versions each agent is known to have.
    installed: Mutex<HashMap<HostId, HashMap<PluginId, f64>>>,
    /// Fingerprints refused per host, offered to an administrator to accept.
    refused: Mutex<HashMap<HostId, String>>,
}

impl AgentRunner {
    pub fn new(
        store: Arc<Store>,
        catalog: Arc<RwLock<Arc<Catalog>>>,
        syslog: SysLog,
        results: mpsc::Sender<RawResult>,
        metrics: Arc<crate::metrics::Metrics>,
        timeouts: Timeouts,
    ) -> Self {
        AgentRunner {
            store,
            catalog,
            syslog,
            results,
            metrics,
            timeouts,
            clients: Mutex::default(),
            installed: Mutex::default(),
            refused: Mutex::default(),
        }
    }

    /// The fingerprint a host's agent presented last time it was refused, if any.
    pub fn refused_fingerprint(&self, host: HostId) -> Option<String> {
        self.refused
            .lock()
            .expect("refused lock")
            .get(&host)
            .cloned()
    }

    fn client(&self, host: &Host) -> Result<AgentClient, AgentError> {
        let key = ClientKey::of(host);
        let mut clients = self.clients.lock().expect("clients lock");
        if let Some((k, c)) = clients.get(&host.id) {
            if *k == key {
                return Ok(c.clone());
            }
        }
        let client = AgentClient::new(
            &host.address,
            host.port,
            &host.auth_key,
            host.tls_fingerprint.as_deref(),
            self.timeouts,
        )?;
        clients.insert(host.id, (key, client.clone()));
        Ok(client)
    }

    async fn run_job(&self, job: &Job) -> Result<(Option<f64>, String), AgentError> {
        let catalog = self.catalog.read().expect("catalog lock").clone();
        let Some(host) = catalog.hosts.get(&job.host_id) else {
            return Err(AgentError::new(
                ResultType::RequestError,
                "host was deleted",
            ));
        };
        let client = self.client(host)?;
        let outcome = self.ensure_and_run(&client, &catalog, host, job).await;
        self.after_request(&client, host, &outcome).await;
        outcome
    }

    async fn ensure_and_run(
        &self,
        client: &AgentClient,
        catalog: &Catalog,
        host: &Host,
        job: &Job,
    ) -> Result<(Option<f64>, String), AgentError> {
        let request = RunRequest {
            args: job.args.clone(),
        };
        for attempt in 0..2 {
            self.ensure_plugin(client, catalog, host, &job.plugin_id)
                .await?;
            match client.run(&job.plugin_id, &request).await {
                Ok(r) => return Ok((r.value, r.message)),
                Err(e) if e.code == Some(ErrorCode::PluginNotFound) && attempt == 0 => {
                    // The agent lost the plugin: forget what we knew and push again.
                    self.installed
                        .lock()
                        .expect("installed lock")
                        .remove(&host.id);
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn ensure_plugin(
        &self,
        client: &AgentClient,
        catalog: &Catalog,
        host: &Host,
        plugin_id: &str,
    ) -> Result<(), AgentError> {
        let Some(plugin) = catalog.plugins.get(plugin_id) else {
            return Err(AgentError::new(
                ResultType::RequestError,
                format!("plugin {plugin_id} was deleted"),
            ));
        };
        let known = self
            .installed
            .lock()
            .expect("installed lock")
            .get(&host.id)
            .map(|m| m.get(plugin_id).copied());
        let have = match known {
            Some(v) => v,
            None => {
                let list = client.plugins().await?;
                let map: HashMap<PluginId, f64> = list
                    .plugins
                    .into_iter()
                    .map(|p| (p.id, p.version))
                    .collect();
                let v = map.get(plugin_id).copied();
                self.installed
                    .lock()
                    .expect("installed lock")
                    .insert(host.id, map);
                v
            }
        };
        if have.is_some_and(|v| v >= plugin.version) {
            return Ok(());
        }
        let package = self.store.plugin_package(plugin_id).await.map_err(|e| {
            AgentError::new(
                ResultType::RequestError,
                format!("could not read the package of {plugin_id}: {e}"),
            )
        })?;
        match client
            .install(plugin_id, package.archive, package.signature)
            .await
        {
            Ok(()) => {
                self.metrics
                    .plugin_pushes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.installed
                    .lock()
                    .expect("installed lock")
                    .entry(host.id)
                    .or_default()
                    .insert(plugin_id.to_string(), plugin.version);
                tracing::info!(host = %host.name, plugin = plugin_id, version = plugin.version, "plugin pushed");
                Ok(())
            }
            Err(e) => {
                let mut e = e;
                if matches!(
                    e.code,
                    Some(
                        ErrorCode::SignatureRequired
                            | ErrorCode::SignatureInvalid
                            | ErrorCode::BadPackage
                    )
                ) {
                    self.syslog.log(
                        LogCategory::Distribution,
                        format!("Agent on {} refused plugin {plugin_id}", host.name),
                        format!("{}. Upload a package the agent accepts (signed by a key in its trusted keys folder when it enforces signatures).", e.message),
                    );
                    e.message = format!(
                        "the agent refused plugin {plugin_id} version {}: {}",
                        plugin.version, e.message
                    );
                }
                Err(e)
            }
        }
    }

    /// Persists a fingerprint learned on first use; reports a refused certificate once.
    async fn after_request(
        &self,
        client: &AgentClient,
        host: &Host,
        outcome: &Result<(Option<f64>, String), AgentError>,
    ) {
        if let Some(fp) = client.take_learned_fingerprint() {
            let mut pinned = host.clone();
            pinned.tls_fingerprint = Some(fp.clone());
            match self.store.update_host(&pinned).await {
                Ok(()) => {
                    self.syslog.log(
                        LogCategory::Dispatch,
                        format!("Pinned the certificate of {}", host.name),
                        format!("trusted on first use: SHA-256 {fp}"),
                    );
                    // Keep the client: its pin is already this fingerprint.
                    self.clients
                        .lock()
                        .expect("clients lock")
                        .insert(host.id, (ClientKey::of(&pinned), client.clone()));
                }
                Err(e) => self.syslog.log(
                    LogCategory::Storage,
                    "Could not store a certificate pin",
                    e.to_string(),
                ),
            }
        }
        let mut refused = self.refused.lock().expect("refused lock");
        match outcome {
            Err(
                e @ AgentError {
                    refused_fingerprint: Some(seen),
                    ..
                },
            ) => {
                if refused.insert(host.id, seen.clone()).is_none() {
                    self.syslog.log(
                        LogCategory::Dispatch,
                        format!("Certificate of {} changed", host.name),
                        e.message.clone(),
                    );
                }
            }
            Ok(_) => {
                refused.remove(&host.id);
            }
            Err(_) => {}
        }
    }

    /// Forgets clients and plugin knowledge of hosts that changed or went away.
    pub fn forget_hosts(&self, keep: &HashSet<HostId>) {
        self.clients
            .lock()
            .expect("clients lock")
            .retain(|h, _| keep.contains(h));
        self.installed
            .lock()
            .expect("installed lock")
            .retain(|h, _| keep.contains(h));
    }
}

impl Runner<Job> for Arc<AgentRunner> {
    async fn run(&self, job: Job) {
        let outcome = self.run_job(&job).await;
        let raw = match outcome {
            Ok((value, message)) => RawResult {
                job,
                timestamp: now_millis(),
                value,
                message,
                result_type: ResultType::Plugin,
            },
            Err(e) => RawResult {
                job,
                timestamp: now_millis(),
                value: None,
                message: e.message,
                result_type: e.result_type,
            },
        };
        // Waiting here when the pipeline is behind slows dispatch down instead of piling up.
        let _ = self.results.send(raw).await;
    }
}
