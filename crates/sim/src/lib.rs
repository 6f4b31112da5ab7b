//! An agent simulator for load tests: many virtual agents on loopback, each speaking the
//! real agent API (`prophasis_protocol::api`) over HTTPS, with scripted behaviour.
//!
//! It exists so the server's scheduler, dispatcher and storage can be measured against
//! thousands of hosts on one machine. It is for LOAD only, never instead of the real
//! `prophasis-agent` in end-to-end tests: it runs no plugins, checks no signatures and
//! stores nothing on disk.
//!
//! Start it in-process from a test or benchmark (inside a tokio runtime):
//!
//! ```no_run
//! # async fn demo() -> Result<(), prophasis_sim::SimError> {
//! use prophasis_sim::{Behaviour, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { agents: 100, ..SimConfig::default() }).await?;
//! for a in sim.agents() {
//!     println!("{} key {} pin {}", a.addr, a.key, sim.fingerprint());
//! }
//! sim.set_behaviour(3, Behaviour { reject_key: true, ..Behaviour::default() })?;
//! assert!(sim.stats(0).max_runs_in_flight <= 1);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! To measure the server's CPU without the simulator's, start it on a
//! [`SimRuntime`] (its own threads, with a CPU meter):
//! `let sim = rt.handle().spawn(Simulator::start(config)).await??;` then
//! `rt.cpu_time()`.
//!
//! Or run it out of process with the `prophasis-sim` binary, which writes the same agent
//! list as JSON.

pub mod behaviour;
pub mod net;
pub mod runtime;
pub mod tls;

mod agent;
mod service;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prophasis_protocol::api::InstalledPlugin;
use rand::RngCore;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use agent::AgentStats;
pub use behaviour::{Behaviour, ErrorRule, Latency, Scenario, Values};
pub use net::{raise_nofile_limit, ListenerMode, Spread};
pub use runtime::SimRuntime;

use agent::AgentState;

/// Why the simulator could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("invalid behaviour: {0}")]
    Behaviour(String),
    #[error("invalid scenario: {0}")]
    Scenario(String),
    #[error("cannot make the TLS certificate: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no agent {0}")]
    NoAgent(usize),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub agents: usize,
    /// The first agent's address; must be in 127.0.0.0/8.
    pub base_addr: Ipv4Addr,
    /// 0 picks a free port (one for all agents with a shared listener, one per agent
    /// otherwise), which lets tests run side by side.
    pub port: u16,
    pub spread: Spread,
    pub listeners: ListenerMode,
    /// One key for every agent, or `None` for a random 256-bit hex key per agent.
    pub key: Option<String>,
    /// Behaviour of every agent, unless the scenario's overrides say otherwise.
    pub scenario: Scenario,
    /// Plugins every agent reports as installed from the start, so a load test can skip
    /// plugin distribution.
    pub preinstalled: Vec<InstalledPlugin>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            agents: 1,
            base_addr: Ipv4Addr::new(127, 0, 1, 1),
            port: 0,
            spread: Spread::Addresses,
            listeners: ListenerMode::Auto,
            key: None,
            scenario: Scenario::default(),
            preinstalled: Vec::new(),
        }
    }
}

/// One virtual agent as the server must register it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimAgent {
    pub index: usize,
    pub addr: SocketAddr,
    pub key: String,
}

/// Counters summed (or, for the maxima, maximised) over every agent.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TotalStats {
    pub requests: u64,
    pub unauthorized: u64,
    pub connections: u64,
    pub runs: u64,
    pub runs_not_found: u64,
    pub errors_injected: u64,
    pub hangs: u64,
    pub installs: u64,
    /// The highest `max_in_flight` of any one agent.
    pub max_in_flight_per_agent: u64,
    /// The highest `max_runs_in_flight` of any one agent.
    pub max_runs_in_flight_per_agent: u64,
    /// TCP connections open right now, over all agents.
    pub open_connections: u64,
}

/// State every connection task needs.
pub(crate) struct Inner {
    pub agents: Vec<Arc<AgentState>>,
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub http: hyper::server::conn::http1::Builder,
    pub started: Instant,
    pub root: CancellationToken,
    pub open_connections: AtomicU64,
}

/// A running simulator. Dropping it stops every agent; [`Simulator::shutdown`] also
/// waits for the listening sockets to be closed.
pub struct Simulator {
    inner: Arc<Inner>,
    agents: Vec<SimAgent>,
    fingerprint: String,
    cert_der: Vec<u8>,
    mode: ListenerMode,
    shared_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Simulator {
    /// Binds every agent's socket and starts serving on the current tokio runtime.
    /// Raises the soft open-file limit to the hard one first.
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        if config.agents == 0 {
            return Err(SimError::Config("at least one agent is needed".into()));
        }
        config.scenario.default.validate()?;
        for (_, b) in &config.scenario.overrides {
            b.validate()?;
        }
        let nofile = raise_nofile_limit().unwrap_or(1024);
        let mode = net::resolve_mode(config.listeners, config.spread, config.agents, nofile)?;
        let plan = net::plan(config.agents, config.base_addr, config.port, config.spread)?;
        let identity = tls::generate(config.agents)?;
        let root = CancellationToken::new();

        let mut keys = Vec::with_capacity(config.agents);
        let mut states = Vec::with_capacity(config.agents);
        for i in 0..config.agents {
            let key = config.key.clone().unwrap_or_else(random_key);
            let state = AgentState::new(i, &key, config.scenario.behaviour_for(i).clone(), &root);
            for p in &config.preinstalled {
                state.install(p.clone());
            }
            keys.push(key);
            states.push(Arc::new(state));
        }
        let mut http = hyper::server::conn::http1::Builder::new();
        // Servers keep one connection per host for minutes between checks; hyper's
        // header timeout needs a timer and would close those idle connections.
        http.keep_alive(true);
        let inner = Arc::new(Inner {
            agents: states,
            acceptor: tokio_rustls::TlsAcceptor::from(identity.config),
            http,
            started: Instant::now(),
            root,
            open_connections: AtomicU64::new(0),
        });

        let mut agents = Vec::with_capacity(config.agents);
        let mut shared_task = None;
        match mode {
            ListenerMode::Shared => {
                let wildcard = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
                let listener = net::bind(wildcard, 4096).map_err(|source| SimError::Bind {
                    addr: wildcard,
                    source,
                })?;
                let port = listener
                    .local_addr()
                    .map(|a| a.port())
                    .unwrap_or(config.port);
                let mut by_ip = HashMap::with_capacity(plan.len());
                for (i, a) in plan.iter().enumerate() {
                    by_ip.insert(*a.ip(), i);
                    agents.push(SimAgent {
                        index: i,
                        addr: SocketAddr::from((*a.ip(), port)),
                        key: keys[i].clone(),
                    });
                }
                shared_task = Some(tokio::spawn(net::accept_shared(
                    inner.clone(),
                    listener,
                    by_ip,
                )));
            }
            _ => {
                // Bind everything before serving anything, so a failure leaves nothing
                // half started.
                let mut listeners = Vec::with_capacity(plan.len());
                for a in &plan {
                    let addr = SocketAddr::V4(*a);
                    let l =
                        net::bind(addr, 1024).map_err(|source| SimError::Bind { addr, source })?;
                    listeners.push(l);
                }
                for (i, l) in listeners.into_iter().enumerate() {
                    let addr = l.local_addr().unwrap_or(SocketAddr::V4(plan[i]));
                    agents.push(SimAgent {
                        index: i,
                        addr,
                        key: keys[i].clone(),
                    });
                    let agent = inner.agents[i].clone();
                    let token = agent.connection_token();
                    let task = tokio::spawn(net::accept_per_agent(
                        inner.clone(),
                        agent.clone(),
                        l,
                        token,
                    ));
                    *agent.listener_task.lock().expect("task lock") = Some(task);
                }
            }
        }
        Ok(Simulator {
            inner,
            agents,
            fingerprint: identity.fingerprint,
            cert_der: identity.cert_der,
            mode,
            shared_task: Mutex::new(shared_task),
        })
    }

    /// Every agent, in index order.
    pub fn agents(&self) -> &[SimAgent] {
        &self.agents
    }

    /// Lowercase hex SHA-256 of the certificate every agent presents: the pin.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The certificate every agent presents, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// `PerAgent` or `Shared`: what `Auto` became.
    pub fn listener_mode(&self) -> ListenerMode {
        self.mode
    }

    fn agent(&self, i: usize) -> Result<&Arc<AgentState>, SimError> {
        self.inner.agents.get(i).ok_or(SimError::NoAgent(i))
    }

    /// Agent `i`'s counters. Panics when there is no agent `i`, like slice indexing.
    pub fn stats(&self, i: usize) -> AgentStats {
        self.inner.agents[i].stats()
    }

    /// Counters over all agents.
    pub fn total_stats(&self) -> TotalStats {
        let mut t = TotalStats {
            open_connections: self.inner.open_connections.load(Relaxed),
            ..TotalStats::default()
        };
        for a in &self.inner.agents {
            let c = &a.counters;
            t.requests += c.requests.load(Relaxed);
            t.unauthorized += c.unauthorized.load(Relaxed);
            t.connections += c.connections.load(Relaxed);
            t.runs_not_found += c.runs_not_found.load(Relaxed);
            t.errors_injected += c.errors_injected.load(Relaxed);
            t.hangs += c.hangs.load(Relaxed);
            t.installs += c.installs.load(Relaxed);
            t.max_in_flight_per_agent =
                t.max_in_flight_per_agent.max(c.max_in_flight.load(Relaxed));
            t.max_runs_in_flight_per_agent = t
                .max_runs_in_flight_per_agent
                .max(c.max_runs_in_flight.load(Relaxed));
            t.runs += a
                .plugins
                .lock()
                .expect("plugins lock")
                .values()
                .map(|p| p.runs)
                .sum::<u64>();
        }
        t
    }

    /// Replaces agent `i`'s behaviour; requests already running keep the old one.
    pub fn set_behaviour(&self, i: usize, behaviour: Behaviour) -> Result<(), SimError> {
        behaviour.validate()?;
        *self.agent(i)?.behaviour.write().expect("behaviour lock") = Arc::new(behaviour);
        Ok(())
    }

    /// Replaces every agent's behaviour.
    pub fn set_behaviour_all(&self, behaviour: Behaviour) -> Result<(), SimError> {
        behaviour.validate()?;
        let b = Arc::new(behaviour);
        for a in &self.inner.agents {
            *a.behaviour.write().expect("behaviour lock") = b.clone();
        }
        Ok(())
    }

    /// Marks `plugin` installed on agent `i`, as if the server had pushed it.
    pub fn install(&self, i: usize, plugin: InstalledPlugin) -> Result<(), SimError> {
        self.agent(i)?.install(plugin);
        Ok(())
    }

    /// Takes agent `i` down for `down_for`, as a host reboot would: its connections are
    /// closed at once, and until it is back a new connection is refused (per-agent
    /// listener) or reset (shared listener). Returns once it is down; it comes back by
    /// itself. Installed plugins and counters survive, like an agent's data folder.
    pub async fn restart(&self, i: usize, down_for: Duration) -> Result<(), SimError> {
        let agent = self.agent(i)?.clone();
        let old = {
            let mut g = agent.generation.lock().expect("generation lock");
            std::mem::replace(&mut *g, self.inner.root.child_token())
        };
        if self.mode == ListenerMode::Shared {
            *agent.down_until.lock().expect("down lock") = Some(Instant::now() + down_for);
            old.cancel();
            return Ok(());
        }
        old.cancel();
        let task = agent.listener_task.lock().expect("task lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let addr = self.agents[i].addr;
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(down_for) => {}
                _ = inner.root.cancelled() => return,
            }
            loop {
                match net::bind(addr, 1024) {
                    Ok(l) => {
                        let token = agent.connection_token();
                        let task = tokio::spawn(net::accept_per_agent(
                            inner.clone(),
                            agent.clone(),
                            l,
                            token,
                        ));
                        *agent.listener_task.lock().expect("task lock") = Some(task);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("agent {i} cannot listen again on {addr}: {e}; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                            _ = inner.root.cancelled() => return,
                        }
                    }
                }
            }
        });
        Ok(())
    }

    /// The agent list as a benchmark script imports it:
    /// `{"fingerprint": …, "listener_mode": …, "agents": [{"index", "addr", "key", "fingerprint"}]}`.
    pub fn agents_json(&self) -> serde_json::Value {
        let agents: Vec<serde_json::Value> = self
            .agents
            .iter()
            .map(|a| {
                serde_json::json!({
                    "index": a.index,
                    "addr": a.addr.to_string(),
                    "host": a.addr.ip().to_string(),
                    "port": a.addr.port(),
                    "key": a.key,
                    "fingerprint": self.fingerprint,
                })
            })
            .collect();
        serde_json::json!({
            "fingerprint": self.fingerprint,
            "listener_mode": self.mode,
            "agents": agents,
        })
    }

    /// Stops every agent and waits until no socket is listening any more.
    pub async fn shutdown(self) {
        self.inner.root.cancel();
        let shared = self.shared_task.lock().expect("task lock").take();
        if let Some(t) = shared {
            let _ = t.await;
        }
        for a in &self.inner.agents {
            let t = a.listener_task.lock().expect("task lock").take();
            if let Some(t) = t {
                let _ = t.await;
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.inner.root.cancel();
    }
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests and benchmarks share one simulator between tasks behind an `Arc`.
    #[test]
    fn simulator_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Simulator>();
        shareable::<SimRuntime>();
    }

    #[tokio::test]
    async fn start_refuses_bad_configurations() {
        let none = Simulator::start(SimConfig {
            agents: 0,
            ..SimConfig::default()
        })
        .await;
        assert!(matches!(none, Err(SimError::Config(_))));
        let bad = Simulator::start(SimConfig {
            scenario: Scenario {
                default: Behaviour {
                    hang_rate: -1.0,
                    ..Behaviour::default()
                },
                overrides: vec![],
            },
            ..SimConfig::default()
        })
        .await;
        assert!(matches!(bad, Err(SimError::Behaviour(_))));
        let sim = Simulator::start(SimConfig {
            base_addr: Ipv4Addr::new(127, 0, 70, 1),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        assert!(matches!(
            sim.set_behaviour(5, Behaviour::default()),
            Err(SimError::NoAgent(5))
        ));
        let json = sim.agents_json();
        assert_eq!(json["agents"][0]["host"], "127.0.70.1");
        assert_eq!(json["agents"][0]["fingerprint"], sim.fingerprint());
        sim.shutdown().await;
    }
}
