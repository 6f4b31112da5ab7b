//! The state of one virtual agent: its key, behaviour, installed plugins and counters.
//!
//! Counters are what load tests assert on (requests seen, runs per plugin, installs,
//! the most requests ever in flight at once), so they are updated on every request with
//! atomics, and the per-plugin state sits behind one mutex per agent that only that
//! agent's requests contend for.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use hyper::header::HeaderValue;
use prophasis_protocol::api::{self, InstalledPlugin};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, Values};

/// A snapshot of one agent's counters.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AgentStats {
    /// Every HTTP request, including refused ones.
    pub requests: u64,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// TCP connections accepted (a server that reuses connections keeps this low).
    pub connections: u64,
    /// Run requests for an installed (or, with `run_uninstalled`, any) plugin, by id.
    pub runs: BTreeMap<String, u64>,
    /// Run requests answered `plugin_not_found`.
    pub runs_not_found: u64,
    /// Runs answered with an injected error.
    pub errors_injected: u64,
    /// Runs that were made to hang.
    pub hangs: u64,
    /// Successful `PUT /plugins/{id}`.
    pub installs: u64,
    /// Of those, how many carried a `signature` part.
    pub signed_installs: u64,
    /// Requests being handled right now.
    pub in_flight: u64,
    /// The most requests this agent ever had in flight at once (any kind, counted from
    /// the request head being read to the answer being handed to the connection).
    pub max_in_flight: u64,
    /// The most run requests this agent ever had in flight at once.
    pub max_runs_in_flight: u64,
    /// Installed plugins, by id.
    pub installed: Vec<InstalledPlugin>,
}

impl AgentStats {
    pub fn total_runs(&self) -> u64 {
        self.runs.values().sum()
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub unauthorized: AtomicU64,
    pub connections: AtomicU64,
    pub runs_not_found: AtomicU64,
    pub errors_injected: AtomicU64,
    pub hangs: AtomicU64,
    pub installs: AtomicU64,
    pub signed_installs: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    pub runs_in_flight: AtomicU64,
    pub max_runs_in_flight: AtomicU64,
}

#[derive(Default)]
pub(crate) struct PluginState {
    pub installed: Option<InstalledPlugin>,
    pub runs: u64,
    pub cursor: usize,
    pub walk: Option<f64>,
}

pub(crate) struct AgentState {
    pub index: usize,
    /// The exact `Authorization` header a correct client sends, so the common case is
    /// one byte comparison and no decoding.
    pub expected_auth: HeaderValue,
    /// `core:<key>`, for clients that spell the header differently (e.g. `basic`).
    pub credentials: Vec<u8>,
    pub ping_body: Bytes,
    pub behaviour: RwLock<Arc<Behaviour>>,
    pub plugins: Mutex<HashMap<String, PluginState>>,
    pub counters: Counters,
    /// Cancelled to drop every connection of this agent (restart); replaced by a fresh
    /// child of the simulator's root token afterwards.
    pub generation: Mutex<CancellationToken>,
    /// In shared-listener mode, connections arriving before this instant are reset.
    pub down_until: Mutex<Option<Instant>>,
    /// In per-agent-listener mode, the accept loop, so a restart can wait for the
    /// listening socket to be closed.
    pub listener_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl AgentState {
    pub fn new(index: usize, key: &str, behaviour: Behaviour, root: &CancellationToken) -> Self {
        let credentials = format!("{}:{key}", api::AUTH_USER).into_bytes();
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&credentials)
        );
        let ping = api::Ping {
            pong: true,
            agent_version: format!("{}-sim", env!("CARGO_PKG_VERSION")),
            facts: api::HostFacts {
                hostname: format!("sim-{index}"),
                os: "linux".into(),
                kernel: "6.1.0-sim".into(),
                arch: std::env::consts::ARCH.into(),
                uptime_seconds: 86_400,
                cpu_count: 2,
                memory_bytes: 4 << 30,
            },
        };
        AgentState {
            index,
            expected_auth: HeaderValue::from_str(&header).expect("base64 is a valid header"),
            credentials,
            ping_body: Bytes::from(serde_json::to_vec(&ping).expect("ping serialises")),
            behaviour: RwLock::new(Arc::new(behaviour)),
            plugins: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            generation: Mutex::new(root.child_token()),
            down_until: Mutex::new(None),
            listener_task: Mutex::new(None),
        }
    }

    pub fn behaviour(&self) -> Arc<Behaviour> {
        self.behaviour.read().expect("behaviour lock").clone()
    }

    pub fn connection_token(&self) -> CancellationToken {
        self.generation.lock().expect("generation lock").clone()
    }

    pub fn authorized(&self, header: Option<&HeaderValue>) -> bool {
        let Some(h) = header else { return false };
        if h == self.expected_auth {
            return true;
        }
        let bytes = h.as_bytes();
        if bytes.len() < 6 || !bytes[..6].eq_ignore_ascii_case(b"basic ") {
            return false;
        }
        base64::engine::general_purpose::STANDARD
            .decode(bytes[6..].trim_ascii())
            .is_ok_and(|c| c == self.credentials)
    }

    pub fn stats(&self) -> AgentStats {
        let c = &self.counters;
        let plugins = self.plugins.lock().expect("plugins lock");
        let mut installed: Vec<InstalledPlugin> = plugins
            .values()
            .filter_map(|p| p.installed.clone())
            .collect();
        installed.sort_by(|a, b| a.id.cmp(&b.id));
        AgentStats {
            requests: c.requests.load(Relaxed),
            unauthorized: c.unauthorized.load(Relaxed),
            connections: c.connections.load(Relaxed),
            runs: plugins
                .iter()
                .filter(|(_, p)| p.runs > 0)
                .map(|(id, p)| (id.clone(), p.runs))
                .collect(),
            runs_not_found: c.runs_not_found.load(Relaxed),
            errors_injected: c.errors_injected.load(Relaxed),
            hangs: c.hangs.load(Relaxed),
            installs: c.installs.load(Relaxed),
            signed_installs: c.signed_installs.load(Relaxed),
            in_flight: c.in_flight.load(Relaxed),
            max_in_flight: c.max_in_flight.load(Relaxed),
            max_runs_in_flight: c.max_runs_in_flight.load(Relaxed),
            installed,
        }
    }

    pub fn install(&self, plugin: InstalledPlugin) {
        let mut plugins = self.plugins.lock().expect("plugins lock");
        let id = plugin.id.clone();
        plugins.entry(id).or_default().installed = Some(plugin);
    }
}

/// Counts one request in flight for as long as it lives, so a request whose future is
/// dropped (client gone, restart) is counted out too.
pub(crate) struct InFlight<'a> {
    current: &'a AtomicU64,
}

impl<'a> InFlight<'a> {
    pub fn enter(current: &'a AtomicU64, max: &AtomicU64) -> Self {
        let now = current.fetch_add(1, Relaxed) + 1;
        max.fetch_max(now, Relaxed);
        InFlight { current }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.current.fetch_sub(1, Relaxed);
    }
}

/// The next value of `values` for one plugin of one agent, advancing its script or walk.
pub(crate) fn next_value(
    values: &Values,
    state: &mut PluginState,
    agent_index: usize,
    since_start_s: f64,
    rng: &mut impl rand::Rng,
) -> Option<f64> {
    match values {
        Values::Constant(v) => *v,
        Values::Sine {
            mean,
            amplitude,
            period_s,
        } => {
            // Golden-ratio phases spread agents evenly over the cycle.
            let phase = (agent_index as f64 * 0.618_033_988_75).fract();
            let angle = std::f64::consts::TAU * (since_start_s / period_s + phase);
            Some(mean + amplitude * angle.sin())
        }
        Values::RandomWalk {
            start,
            step,
            min,
            max,
        } => {
            let v = match state.walk {
                None => start.clamp(*min, *max),
                Some(prev) => {
                    let delta = if *step > 0.0 {
                        rng.gen_range(-step..=*step)
                    } else {
                        0.0
                    };
                    (prev + delta).clamp(*min, *max)
                }
            };
            state.walk = Some(v);
            Some(v)
        }
        Values::Script(script) => {
            let v = script
                .get(state.cursor % script.len().max(1))
                .copied()
                .flatten();
            state.cursor = state.cursor.wrapping_add(1);
            v
        }
    }
}
