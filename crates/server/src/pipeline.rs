//! From a raw answer to stored, classified, health-changing result.
//!
//! Results arrive from the dispatcher on a channel and are handled in batches: each is
//! classified (on a blocking thread: classifiers never run on the async workers) with the
//! last n results of its host and plugin, the batch is written in one transaction (rollups
//! included), and then health is updated and transitions are sent on. Storing before
//! updating health means a transition is never announced for a result that was lost.
//!
//! The last results of each (host, plugin) are kept in memory, loaded from the store on
//! first use, so classifying does not read the database for every result.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prophasis_classifier::{resolve, EnginePool, HistoryError, HistorySource, Sample};
use prophasis_model::{CheckResult, HostId, LogCategory, Millis, PluginId, ResultType};
use prophasis_store::Store;
use tokio::sync::mpsc;

use crate::catalog::{Catalog, Job};
use crate::health::{HealthState, Transition};
use crate::metrics::Metrics;
use crate::syslog::SysLog;

/// What the dispatcher learned from one run, before classification.
#[derive(Debug, Clone)]
pub struct RawResult {
    pub job: Job,
    pub timestamp: Millis,
    pub value: Option<f64>,
    pub message: String,
    pub result_type: ResultType,
}

/// Most results a batch takes; one batch is one transaction.
pub const MAX_BATCH: usize = 2000;
/// How long the first result of a batch waits for company.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Most results kept per (host, plugin) in memory, whatever classifiers ask for.
pub const MAX_CACHED: usize = 1000;

/// Shared pieces the pipeline works with.
#[derive(Clone)]
pub struct PipelineDeps {
    pub store: Arc<Store>,
    pub catalog: Arc<RwLock<Arc<Catalog>>>,
    pub health: Arc<RwLock<HealthState>>,
    pub engines: Arc<EnginePool>,
    pub syslog: SysLog,
    pub metrics: Arc<Metrics>,
    pub transitions: mpsc::UnboundedSender<Transition>,
}

#[derive(Default)]
struct Recent {
    samples: VecDeque<Sample>,
    /// How many results were asked of the store when this entry was loaded: a classifier
    /// asking for more needs a reload.
    loaded: usize,
}

/// The last results of each (host, plugin), shared with classification threads.
#[derive(Default, Clone)]
pub struct RecentResults {
    inner: Arc<Mutex<HashMap<(HostId, PluginId), Recent>>>,
}

impl RecentResults {
    /// The last `n` results (oldest first), loading from the store when not enough are
    /// known. Call from a blocking thread: a miss waits for the store.
    fn last(
        &self,
        store: &Store,
        host: HostId,
        plugin: &str,
        n: usize,
    ) -> Result<Vec<Sample>, String> {
        let n = n.min(MAX_CACHED);
        if n == 0 {
            return Ok(Vec::new());
        }
        {
            let map = self.inner.lock().expect("recent results lock");
            if let Some(r) = map.get(&(host, plugin.to_string())) {
                if r.loaded >= n || r.samples.len() >= n {
                    let skip = r.samples.len().saturating_sub(n);
                    return Ok(r.samples.iter().skip(skip).cloned().collect());
                }
            }
        }
        let loaded = tokio::runtime::Handle::current()
            .block_on(store.last_results(host, plugin, n as u32))
            .map_err(|e| format!("could not read recent results: {e}"))?;
        let samples: VecDeque<Sample> = loaded.iter().map(Sample::from).collect();
        let out: Vec<Sample> = samples.iter().cloned().collect();
        let mut map = self.inner.lock().expect("recent results lock");
        let entry = map.entry((host, plugin.to_string())).or_default();
        // Results added while the store was read are newer than what it returned.
        let newer: Vec<Sample> = entry
            .samples
            .iter()
            .filter(|s| out.last().is_none_or(|l| s.timestamp > l.timestamp))
            .cloned()
            .collect();
        entry.samples = samples;
        entry.samples.extend(newer);
        entry.loaded = n;
        Ok(out)
    }

    fn push(&self, host: HostId, plugin: &str, sample: Sample, keep: usize) {
        let mut map = self.inner.lock().expect("recent results lock");
        let entry = map.entry((host, plugin.to_string())).or_default();
        entry.samples.push_back(sample);
        let keep = keep.clamp(1, MAX_CACHED).max(entry.loaded.min(MAX_CACHED));
        while entry.samples.len() > keep {
            entry.samples.pop_front();
        }
    }

    /// Forgets a host (deleted or reconfigured).
    pub fn forget_host(&self, host: HostId) {
        self.inner
            .lock()
            .expect("recent results lock")
            .retain(|(h, _), _| *h != host);
    }
}

/// `history(plugin_id, n)` for classifiers: other plugins of the same host.
struct HostHistory<'a> {
    recent: &'a RecentResults,
    store: &'a Store,
    host: HostId,
}

impl HistorySource for HostHistory<'_> {
    fn history(&self, plugin_id: &str, n: usize) -> Result<Vec<Sample>, HistoryError> {
        self.recent
            .last(self.store, self.host, plugin_id, n)
            .map_err(HistoryError)
    }
}

/// Starts the pipeline; send raw results into the returned channel. Two stages run side by
/// side — classifying batch n+1 while batch n is written — and keep the order of results.
/// When `stop` turns true both stages finish what they hold and what is queued, then end;
/// the returned handle completes when the last result is stored.
pub fn start(
    deps: PipelineDeps,
    recent: RecentResults,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (mpsc::Sender<RawResult>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<RawResult>(65_536);
    let (classified_tx, mut classified_rx) = mpsc::channel::<Vec<CheckResult>>(4);
    let store_deps = deps.clone();
    let storing = tokio::spawn(async move {
        while let Some(results) = classified_rx.recv().await {
            store_and_apply(&store_deps, results).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                r = rx.recv() => r,
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(r)) => batch.push(r),
                    _ => break,
                }
            }
            let _ = classified_tx
                .send(classify(&deps, &recent, batch).await)
                .await;
        }
        // Shutting down: nothing queued is lost.
        let mut rest = Vec::new();
        while let Ok(r) = rx.try_recv() {
            rest.push(r);
        }
        for chunk in rest.chunks(MAX_BATCH) {
            let _ = classified_tx
                .send(classify(&deps, &recent, chunk.to_vec()).await)
                .await;
        }
    });
    (tx, storing)
}

/// Classifies, stores and applies one batch.
pub async fn process(deps: &PipelineDeps, recent: &RecentResults, batch: Vec<RawResult>) {
    let results = classify(deps, recent, batch).await;
    store_and_apply(deps, results).await;
}

/// Classifies a batch on a blocking thread. Never loses a result: if classification
/// itself fails, the results are kept as `unknown`.
pub async fn classify(
    deps: &PipelineDeps,
    recent: &RecentResults,
    batch: Vec<RawResult>,
) -> Vec<CheckResult> {
    let catalog = deps.catalog.read().expect("catalog lock").clone();
    let classify_deps = (deps.clone(), recent.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let (deps, recent) = classify_deps;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            classify_batch(&deps, &recent, &catalog, &batch)
        })) {
            Ok(results) => results,
            Err(_) => {
                deps.syslog.log(
                    LogCategory::Classification,
                    "Classification failed",
                    format!(
                        "classifying {} results failed; they are stored as unknown",
                        batch.len()
                    ),
                );
                batch.iter().map(unknown).collect()
            }
        }
    })
    .await;
    joined.unwrap_or_else(|e| {
        deps.syslog.log(
            LogCategory::Classification,
            "Classification failed",
            format!("a classification thread failed: {e}"),
        );
        Vec::new()
    })
}

/// A raw result kept without a classification.
fn unknown(raw: &RawResult) -> CheckResult {
    CheckResult {
        host_id: raw.job.host_id,
        plugin_id: raw.job.plugin_id.clone(),
        check_id: Some(raw.job.check_id),
        timestamp: raw.timestamp,
        value: raw.value,
        message: raw.message.clone(),
        result_type: raw.result_type,
        classification: prophasis_model::Classification::Unknown,
    }
}

/// Writes classified results (retrying), then updates health and sends transitions:
/// a transition is never announced for a result that was not stored.
pub async fn store_and_apply(deps: &PipelineDeps, results: Vec<CheckResult>) {
    if results.is_empty() {
        return;
    }
    // Storage: retried, because a result that is not stored is a hole in the graphs and
    // in the classifiers' history.
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        match deps.store.insert_results(&results).await {
            Ok(()) => {
                deps.metrics
                    .store_batches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                deps.metrics.store_micros.fetch_add(
                    started.elapsed().as_micros() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                break;
            }
            Err(e) => {
                attempt += 1;
                deps.metrics
                    .store_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                deps.syslog.log(
                    LogCategory::Storage,
                    "Storing results failed",
                    format!(
                        "{} results could not be written (attempt {attempt}): {e}",
                        results.len()
                    ),
                );
                if attempt >= 5 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }

    let mut transitions = Vec::new();
    {
        let mut health = deps.health.write().expect("health lock");
        for r in &results {
            transitions.extend(health.apply(r));
        }
    }
    for t in transitions {
        let _ = deps.transitions.send(t);
    }
}

fn classify_batch(
    deps: &PipelineDeps,
    recent: &RecentResults,
    catalog: &Catalog,
    batch: &[RawResult],
) -> Vec<CheckResult> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = Vec::with_capacity(batch.len());
    let run = deps.engines.with(|engine| {
        for raw in batch {
            let job = &raw.job;
            deps.metrics.observe_lateness(raw.timestamp - job.slot);
            if raw.result_type != ResultType::Plugin {
                deps.metrics.failed_runs.fetch_add(1, Relaxed);
            }
            let sample = Sample {
                value: raw.value,
                message: raw.message.clone(),
                result_type: raw.result_type,
                timestamp: raw.timestamp,
            };
            let classification = match catalog.plugins.get(&job.plugin_id) {
                None => prophasis_model::Classification::Unknown,
                Some(plugin) => {
                    let chosen = resolve(
                        plugin,
                        &catalog.overrides,
                        Some(job.check_id),
                        job.host_id,
                        catalog.groups_of(job.host_id),
                    );
                    let n = chosen.n_historical.max(1) as usize;
                    let mut inputs =
                        match recent.last(&deps.store, job.host_id, &job.plugin_id, n - 1) {
                            Ok(v) => v,
                            Err(e) => {
                                deps.syslog
                                    .log(LogCategory::Storage, "Reading history failed", e);
                                Vec::new()
                            }
                        };
                    inputs.push(sample.clone());
                    let history = HostHistory {
                        recent,
                        store: &deps.store,
                        host: job.host_id,
                    };
                    let outcome = engine.classify(chosen.code, &inputs, &history);
                    if !outcome.diagnostics.is_empty() {
                        deps.metrics.classification_errors.fetch_add(1, Relaxed);
                        let host = catalog
                            .hosts
                            .get(&job.host_id)
                            .map_or("?", |h| h.name.as_str());
                        let detail: Vec<String> =
                            outcome.diagnostics.iter().map(|d| d.to_string()).collect();
                        deps.syslog.log(
                            LogCategory::Classification,
                            format!("Classifier of {} failed", plugin.id),
                            format!(
                                "on host {host}: {}; the result was classified unknown",
                                detail.join("; ")
                            ),
                        );
                    }
                    recent.push(job.host_id, &job.plugin_id, sample, n);
                    outcome.classification
                }
            };
            deps.metrics.results.fetch_add(1, Relaxed);
            out.push(CheckResult {
                host_id: job.host_id,
                plugin_id: job.plugin_id.clone(),
                check_id: Some(job.check_id),
                timestamp: raw.timestamp,
                value: raw.value,
                message: raw.message.clone(),
                result_type: raw.result_type,
                classification,
            });
        }
    });
    if let Err(e) = run {
        deps.syslog.log(
            LogCategory::Classification,
            "Classifier engine unavailable",
            e.to_string(),
        );
        // Without an engine nothing can be classified: store the results as unknown rather
        // than lose them.
        out = batch.iter().map(unknown).collect();
    }
    out
}
