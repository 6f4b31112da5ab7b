//! Keeping open pages current without a reload, and the "recent transitions" of the
//! overview.
//!
//! A sampler task compares the health snapshot with the previous one every
//! [`SAMPLE_EVERY`]; each change of a host's or a service's health goes into a bounded
//! ring of recent transitions and bumps a version number. Pages poll `/ui/api/live`
//! (small JSON: the version, every host's and service's health, the unread log count);
//! `static/app.js` updates the health badges in place and says how fresh the data is. An
//! open host page also polls its plugins' newest results, which move without any change
//! of health.
//! Sampling instead of tapping the transition channel keeps the UI out of the core's
//! wiring; a change that reverts within one sample interval is not listed (alerting still
//! sees it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prophasis_model::{Classification, Health, HostId, Millis, ResultType};
use prophasis_store::now_millis;
use serde::Serialize;

use super::session::SessionUser;
use super::{UiError, UiState};
use crate::app::Core;
use crate::web::AppState;

pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Transitions kept for the overview.
pub const RECENT: usize = 200;
/// The unread count is read from the store at most this often.
const UNREAD_EVERY: Millis = 5_000;

/// One change of health seen by the sampler.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeenTransition {
    /// `host` or `service`.
    pub kind: &'static str,
    pub id: i64,
    pub old: Health,
    pub new: Health,
    pub at: Millis,
}

#[derive(Default)]
pub struct Live {
    version: AtomicU64,
    unread: AtomicI64,
    unread_read_at: AtomicI64,
    /// When the sampler last looked (ms); pages show the age of the data from it.
    sampled_at: AtomicI64,
    recent: Mutex<VecDeque<SeenTransition>>,
}

impl Live {
    /// Changes every time any health changes.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn unread(&self) -> i64 {
        self.unread.load(Ordering::Relaxed)
    }

    pub fn set_unread(&self, n: i64) {
        self.unread.store(n, Ordering::Relaxed);
        self.unread_read_at.store(now_millis(), Ordering::Relaxed);
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<SeenTransition> {
        self.recent
            .lock()
            .expect("recent lock")
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    fn record(&self, t: Vec<SeenTransition>) {
        if t.is_empty() {
            return;
        }
        let mut ring = self.recent.lock().expect("recent lock");
        for x in t {
            if ring.len() == RECENT {
                ring.pop_front();
            }
            ring.push_back(x);
        }
        self.version.fetch_add(1, Ordering::Relaxed);
    }
}

type Healths = (HashMap<i64, Health>, HashMap<i64, Health>);

fn snapshot(core: &Core) -> Healths {
    let h = core.health.read().expect("health lock");
    let s = h.snapshot();
    (s.hosts.clone(), s.services.clone())
}

fn diff(
    kind: &'static str,
    old: &HashMap<i64, Health>,
    new: &HashMap<i64, Health>,
    at: Millis,
) -> Vec<SeenTransition> {
    let mut out: Vec<SeenTransition> = new
        .iter()
        .filter_map(|(&id, &h)| {
            let was = old.get(&id).copied().unwrap_or(Health::NoData);
            (was != h).then_some(SeenTransition {
                kind,
                id,
                old: was,
                new: h,
                at,
            })
        })
        .collect();
    out.sort_by_key(|t| t.id);
    out
}

/// Starts the sampler; it stops by itself when the UI state is dropped.
pub fn spawn_sampler(core: Core, ui: Weak<UiState>) {
    tokio::spawn(async move {
        let mut last = snapshot(&core);
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(ui) = ui.upgrade() else { return };
            let now = now_millis();
            let next = snapshot(&core);
            let mut t = diff("host", &last.0, &next.0, now);
            t.extend(diff("service", &last.1, &next.1, now));
            ui.live.record(t);
            ui.live.sampled_at.store(now, Ordering::Relaxed);
            last = next;
            if now - ui.live.unread_read_at.load(Ordering::Relaxed) >= UNREAD_EVERY {
                match core.store.unread_log_count().await {
                    Ok(n) => ui.live.set_unread(n),
                    Err(e) => tracing::debug!("unread log count: {e}"),
                }
            }
        }
    });
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/api/live", get(live))
        .route("/ui/api/hosts/{id}/latest", get(host_latest))
}

/// The newest result of each plugin of a host, for the plugin panels of an open host page:
/// `app.js` polls it with `/ui/api/live` and, when a plugin's timestamp moves, rewrites the
/// panel's latest line and classification and redraws its chart. The health version alone
/// would miss new results that do not change health.
#[derive(Serialize)]
struct HostLatest {
    plugins: HashMap<String, PanelLatest>,
}

#[derive(Serialize)]
struct PanelLatest {
    timestamp: Millis,
    /// "3 s ago", as the page renders it.
    ago: String,
    value: Option<f64>,
    message: String,
    classification: Classification,
    result_type: ResultType,
}

async fn host_latest(
    _user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<HostId>,
) -> Result<impl IntoResponse, UiError> {
    // A host that does not exist is a 404, not an empty answer.
    state.core.store.get_host(id).await?;
    let now = now_millis();
    let plugins = state
        .core
        .store
        .latest_results_for_host(id)
        .await?
        .into_iter()
        .map(|r| {
            let panel = PanelLatest {
                timestamp: r.timestamp,
                ago: ago(now, r.timestamp),
                value: r.value,
                message: r.message,
                classification: r.classification,
                result_type: r.result_type,
            };
            (r.plugin_id, panel)
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(HostLatest { plugins }),
    ))
}

#[derive(Serialize)]
struct LiveState {
    version: u64,
    /// When the health was last sampled (ms since the epoch).
    sampled_at: Millis,
    now: Millis,
    unread: i64,
    hosts: HashMap<i64, Health>,
    services: HashMap<i64, Health>,
}

async fn live(_user: SessionUser, State(state): State<AppState>) -> impl IntoResponse {
    let (hosts, services) = snapshot(&state.core);
    let live = &state.ui.live;
    let sampled = live.sampled_at.load(Ordering::Relaxed);
    let now = now_millis();
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(LiveState {
            version: live.version(),
            // Before the first sample the snapshot read here is the freshest there is.
            sampled_at: if sampled == 0 { now } else { sampled },
            now,
            unread: live.unread(),
            hosts,
            services,
        }),
    )
}

/// "3 s ago", "5 min ago", "2 h ago", "4 d ago".
pub fn ago(now: Millis, then: Millis) -> String {
    let s = ((now - then).max(0)) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// UTC date and time, `2026-11-26 13:05:09 UTC` (the browser shows local time where it
/// can: elements with `data-time` are rewritten by `app.js`).
pub fn datetime(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_well() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(datetime(1_795_698_309_000), "2026-11-26 13:05:09 UTC");
        assert_eq!(ago(10_000, 7_000), "3 s ago");
        assert_eq!(ago(400_000, 0), "6 min ago");
        assert_eq!(ago(0, 5), "0 s ago");
    }

    #[test]
    fn the_ring_is_bounded_and_newest_first() {
        let live = Live::default();
        for i in 0..(RECENT as i64 + 10) {
            live.record(vec![SeenTransition {
                kind: "host",
                id: i,
                old: Health::Ok,
                new: Health::Critical,
                at: i,
            }]);
        }
        let r = live.recent();
        assert_eq!(r.len(), RECENT);
        assert_eq!(r[0].id, RECENT as i64 + 9);
        assert_eq!(live.version(), RECENT as u64 + 10);
    }
}
