//! The running server core: wires the scheduler, dispatcher, pipeline and health together
//! around one store, and reloads them when the configuration changes.
//!
//! Transitions leave through the channel the caller passes in (alerting plugs in there);
//! nothing in here knows about alert modules.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prophasis_classifier::{EngineConfig, EnginePool};
use prophasis_model::rules::Latest;
use prophasis_model::{IntervalId, LogCategory};
use prophasis_store::{now_millis, Store, StoreError};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::catalog::{Catalog, Job};
use crate::config::Config;
use crate::dispatch::agent_client::Timeouts;
use crate::dispatch::queue::DispatchQueue;
use crate::dispatch::runner::AgentRunner;
use crate::health::{HealthState, Transition};
use crate::metrics::Metrics;
use crate::pipeline::{self, PipelineDeps, RecentResults};
use crate::scheduler::SlotQueue;
use crate::syslog::SysLog;

/// Handles to the running core, shared with the web layer.
#[derive(Clone)]
pub struct Core {
    pub store: Arc<Store>,
    pub catalog: Arc<RwLock<Arc<Catalog>>>,
    pub health: Arc<RwLock<HealthState>>,
    pub engines: Arc<EnginePool>,
    pub syslog: SysLog,
    pub metrics: Arc<Metrics>,
    pub runner: Arc<AgentRunner>,
    pub dispatch: DispatchQueue<Job>,
    recent: RecentResults,
    reload: Arc<Notify>,
}

/// The background tasks, for an orderly shutdown.
pub struct Tasks {
    stop: watch::Sender<bool>,
    scheduler: JoinHandle<()>,
    pipeline: JoinHandle<()>,
}

pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        instructions: config.classifier.instruction_limit,
        memory_bytes: (config.classifier.memory_limit_mib as usize) << 20,
        wall_clock: Duration::from_millis(config.classifier.timeout_ms),
        ..EngineConfig::default()
    }
}

impl Core {
    /// Loads the configuration and the latest classifications, and starts the tasks.
    pub async fn start(
        store: Arc<Store>,
        config: &Config,
        transitions: mpsc::UnboundedSender<Transition>,
    ) -> Result<(Core, Tasks), StoreError> {
        let catalog = Catalog::load(&store).await?;
        let mut latest = Latest::new();
        for l in store.latest_classifications().await? {
            latest
                .entry(l.host_id)
                .or_default()
                .insert(l.plugin_id, l.classification);
        }
        let health = HealthState::new(catalog.topology.clone(), &catalog.host_ids(), latest);
        let catalog = Arc::new(RwLock::new(Arc::new(catalog)));
        let health = Arc::new(RwLock::new(health));
        let syslog = SysLog::start(store.clone());
        let metrics = Arc::new(Metrics::default());
        let engines = Arc::new(EnginePool::new(engine_config(config), 4));
        let recent = RecentResults::default();
        let (stop, stop_rx) = watch::channel(false);

        let deps = PipelineDeps {
            store: store.clone(),
            catalog: catalog.clone(),
            health: health.clone(),
            engines: engines.clone(),
            syslog: syslog.clone(),
            metrics: metrics.clone(),
            transitions,
        };
        let (results, pipeline) = pipeline::start(deps, recent.clone(), stop_rx.clone());
        let timeouts = Timeouts {
            connect: Duration::from_secs(config.dispatch.connect_timeout_seconds),
            request: Duration::from_secs(config.dispatch.request_timeout_seconds),
        };
        let runner = Arc::new(AgentRunner::new(
            store.clone(),
            catalog.clone(),
            syslog.clone(),
            results,
            metrics.clone(),
            timeouts,
        ));
        let dispatch = DispatchQueue::start(runner.clone(), config.dispatch.max_in_flight);
        let reload = Arc::new(Notify::new());
        let core = Core {
            store,
            catalog,
            health,
            engines,
            syslog,
            metrics,
            runner,
            dispatch,
            recent,
            reload,
        };
        let scheduler = tokio::spawn(scheduler_loop(
            core.clone(),
            (config.scheduler.max_lateness_seconds * 1000) as i64,
            stop_rx,
        ));
        Ok((
            core,
            Tasks {
                stop,
                scheduler,
                pipeline,
            },
        ))
    }

    /// Reloads the configuration after a change made through the UI, API or CLI; takes
    /// effect for the next slot without a restart.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let catalog = Catalog::load(&self.store).await?;
        let hosts = catalog.host_ids();
        let transitions = self.health.write().expect("health lock").reconfigure(
            catalog.topology.clone(),
            &hosts,
            now_millis(),
        );
        let keep: HashSet<_> = hosts.iter().copied().collect();
        for t in &transitions {
            tracing::debug!(?t, "transition after a configuration change");
        }
        self.runner.forget_hosts(&keep);
        *self.catalog.write().expect("catalog lock") = Arc::new(catalog);
        self.reload.notify_one();
        Ok(())
    }

    pub fn current_catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    /// Forgets cached results of a host whose data was deleted.
    pub fn forget_host_results(&self, host: prophasis_model::HostId) {
        self.recent.forget_host(host);
    }
}

impl Tasks {
    /// Stops scheduling, lets running checks finish (up to `grace`), and writes every
    /// queued result before returning.
    pub async fn shutdown(self, core: &Core, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = self.scheduler.await;
        let deadline = tokio::time::Instant::now() + grace;
        while !core.dispatch.depth().await.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let unfinished: usize = core.dispatch.depth().await.values().sum();
        if unfinished > 0 {
            core.syslog.log(
                LogCategory::System,
                "Shutdown interrupted checks",
                format!("{unfinished} checks were still queued or running when the server stopped"),
            );
        }
        let _ = self.pipeline.await;
    }
}

/// Sleeps until the next slot (or a configuration change), fires due slots into the
/// dispatcher, and persists next-run times before firing.
async fn scheduler_loop(core: Core, max_lateness: i64, mut stop: watch::Receiver<bool>) {
    let mut queue = SlotQueue::new();
    let persisted = match core.store.next_runs().await {
        Ok(p) => p,
        Err(e) => {
            core.syslog.log(
                LogCategory::Scheduler,
                "Could not read next-run times",
                format!("{e}; starting from the next slots"),
            );
            Default::default()
        }
    };
    let mut known: HashSet<IntervalId> = HashSet::new();
    let mut first = true;
    loop {
        // (Re)build the queue from the catalog: unchanged intervals keep their next slot.
        {
            let catalog = core.current_catalog();
            let now = now_millis();
            let mut seen = HashSet::new();
            for s in catalog.schedules.values() {
                for iv in &s.intervals {
                    let persisted_next = if first {
                        persisted.get(&iv.id).copied()
                    } else {
                        None
                    };
                    queue.upsert(s.id, iv.clone(), persisted_next, now);
                    seen.insert(iv.id);
                }
            }
            for gone in known.difference(&seen) {
                queue.remove(*gone);
            }
            known = seen;
            first = false;
        }
        loop {
            let wait = match queue.next_wakeup() {
                Some(at) => Duration::from_millis((at - now_millis()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = core.reload.notified() => break,
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = now_millis();
            let due = queue.pop_due(now, max_lateness);
            for (interval, next) in &due.next_runs {
                if let Err(e) = core.store.set_next_run(*interval, Some(*next)).await {
                    core.syslog.log(
                        LogCategory::Scheduler,
                        "Could not save a next-run time",
                        e.to_string(),
                    );
                }
            }
            use std::sync::atomic::Ordering::Relaxed;
            for s in &due.skipped {
                core.metrics.slots_skipped.fetch_add(1, Relaxed);
                let name = core
                    .current_catalog()
                    .schedules
                    .get(&s.schedule_id)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                core.syslog.log(
                    LogCategory::Scheduler,
                    format!("Schedule {name} skipped a slot"),
                    format!(
                        "the slot due {} ms ago was later than the maximum lateness of {} s and was skipped; the next slot is still scheduled",
                        now - s.at,
                        max_lateness / 1000
                    ),
                );
            }
            let catalog = core.current_catalog();
            for s in &due.fire {
                core.metrics.slots_fired.fetch_add(1, Relaxed);
                for job in catalog.jobs_for_slot(s.schedule_id, s.at) {
                    core.dispatch.submit(job.host_id, job);
                }
            }
        }
    }
}
