//! The alerting engine: evaluates each health transition against the alerts, applies
//! noise control, writes notifications to the outbox in the database, and delivers them.
//!
//! # Why an outbox
//! A notification is written to the database before any attempt to send it, and its row
//! leaves the `pending` state only once an attempt is recorded. So a crash or a restart
//! mid-delivery loses nothing: the next engine started on the database finds the row due
//! and sends it. The price is at-least-once delivery: a send that succeeded just before a
//! crash, whose attempt was not yet recorded, is sent again.
//!
//! Before each attempt the worker claims the row for the send timeout plus a margin
//! (`Store::claim_notification`), so several servers on one PostgreSQL database do not
//! send the same notification twice, and a row whose sender died mid-attempt is due again
//! when the claim runs out (the restarted server resumes it then).
//!
//! Failed attempts are retried with exponential backoff ([`RetryPolicy`]) up to a limit;
//! every attempt is recorded, and a notification that finally fails writes a system-log
//! entry (category `alerting`) so an administrator learns that alerts are not arriving.
//!
//! Flapping, re-notification timers and the last known service health live in memory:
//! after a restart they start empty, which can cost one extra notification, never one
//! less.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prophasis_model::rules::Topology;
use prophasis_model::transition::{Entity, Transition};
use prophasis_model::{
    Alert, AlertId, CheckId, Health, HostId, LogCategory, Millis, ServiceId, SystemLogMessage,
};
use prophasis_store::{now_millis, AttemptOutcome, DeliveryState, OutboxEntry, Store, StoreError};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::modules::{self, SendError};
use crate::noise::{in_maintenance, AlertSettings, FlapTracker, MaintenanceWindow};
use crate::notification::{Notification, NotificationKind};
use crate::rules;

/// Notifications sent at the same time by one worker.
const PARALLEL_SENDS: usize = 8;

/// How failed sends are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Delay before the next attempt after `failed` failed attempts (1 or more).
    pub fn delay(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where the web UI is reached, for the links in notifications.
    pub base_url: String,
    pub retry: RetryPolicy,
    /// How often the delivery worker looks for due notifications when not woken.
    pub poll: Duration,
    /// How often alerts, settings, topology and maintenance windows are re-read.
    pub reload_every: Duration,
    /// How often re-notification timers are checked.
    pub renotify_tick: Duration,
    /// Each send is abandoned (and counted as failed) after this long.
    pub send_timeout: Duration,
    /// Delivered and failed notifications are kept this long, then deleted.
    pub keep_history: Duration,
}

impl EngineOptions {
    pub fn new(base_url: impl Into<String>) -> Self {
        EngineOptions {
            base_url: base_url.into(),
            retry: RetryPolicy::default(),
            // Enqueuing wakes the worker at once; polling only finds retries that came
            // due, so it can be slow and keep an idle server idle.
            poll: Duration::from_secs(5),
            // Writes through the API reload at once; this is the safety net for other
            // changes (a reload reads the whole topology, so not too often).
            reload_every: Duration::from_secs(60),
            renotify_tick: Duration::from_secs(5),
            send_timeout: Duration::from_secs(120),
            keep_history: Duration::from_secs(30 * 86_400),
        }
    }
}

/// What evaluation needs from the configuration, re-read as a whole.
#[derive(Default)]
struct Config {
    alerts: Vec<Alert>,
    settings: HashMap<AlertId, AlertSettings>,
    topology: Topology,
    windows: Vec<MaintenanceWindow>,
    hosts: HashMap<HostId, String>,
    services: HashMap<ServiceId, String>,
    checks: HashMap<CheckId, String>,
}

impl Config {
    /// Builds the notification with the names this configuration knows.
    fn notification(
        &self,
        kind: NotificationKind,
        alert: &Alert,
        t: &Transition,
        base_url: &str,
    ) -> Notification {
        let mut n = Notification::new(kind, alert, t, &self.entity_name(t.entity), base_url);
        n.check_name = n.check.and_then(|c| self.checks.get(&c).cloned());
        n
    }

    fn entity_name(&self, e: Entity) -> String {
        match e {
            Entity::Host(id) => self
                .hosts
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("host {id}")),
            Entity::Service(id) => self
                .services
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("service {id}")),
        }
    }
}

/// A problem that may be notified again.
struct Reminder {
    transition: Transition,
    last_sent: Millis,
}

#[derive(Default)]
struct State {
    flaps: FlapTracker,
    flapping: HashSet<(AlertId, Entity)>,
    reminders: HashMap<(AlertId, Entity), Reminder>,
    service_health: HashMap<ServiceId, Health>,
}

struct Inner {
    store: Arc<Store>,
    opts: EngineOptions,
    config: RwLock<Arc<Config>>,
    state: Mutex<State>,
    wake: Notify,
    /// Alerts whose notifications are being sent.
    in_flight: Mutex<HashSet<Option<AlertId>>>,
    last_prune: Mutex<Millis>,
}

/// The running engine; dropping it stops its tasks (pending notifications stay in the
/// outbox for the next start).
pub struct Alerting {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Alerting {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Alerting {
    /// Starts with default options: evaluation of `transitions`, the delivery worker
    /// (which first sends whatever the outbox holds), periodic reload and re-notification.
    pub async fn start(
        store: Arc<Store>,
        transitions: mpsc::UnboundedReceiver<Transition>,
        base_url: String,
    ) -> Alerting {
        Alerting::start_with(store, Some(transitions), EngineOptions::new(base_url)).await
    }

    /// As [`Alerting::start`]; without `transitions`, only [`Alerting::handle`] feeds it.
    pub async fn start_with(
        store: Arc<Store>,
        transitions: Option<mpsc::UnboundedReceiver<Transition>>,
        opts: EngineOptions,
    ) -> Alerting {
        let inner = Arc::new(Inner {
            store,
            opts,
            config: RwLock::new(Arc::default()),
            state: Mutex::default(),
            wake: Notify::new(),
            in_flight: Mutex::default(),
            last_prune: Mutex::default(),
        });
        if let Err(e) = inner.reload().await {
            tracing::error!("alerting: reading the alerts failed: {e}");
        }
        let mut tasks = Vec::new();
        if let Some(mut rx) = transitions {
            let i = inner.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(t) = rx.recv().await {
                    i.handle(t).await;
                }
            }));
        }
        let i = inner.clone();
        tasks.push(tokio::spawn(async move {
            // Owned by this task: stopping the engine aborts the sends in flight too.
            let mut sends = tokio::task::JoinSet::new();
            loop {
                i.start_due(&mut sends).await;
                tokio::select! {
                    _ = i.wake.notified() => {}
                    _ = tokio::time::sleep(i.opts.poll) => {}
                    Some(_) = sends.join_next(), if !sends.is_empty() => {}
                }
            }
        }));
        let i = inner.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(i.opts.reload_every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = RELOADS.notified() => {}
                }
                if let Err(e) = i.reload().await {
                    tracing::warn!("alerting: reloading the configuration failed: {e}");
                }
                i.prune().await;
            }
        }));
        let i = inner.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(i.opts.renotify_tick);
            loop {
                tick.tick().await;
                i.renotify_due(now_millis()).await;
            }
        }));
        Alerting { inner, tasks }
    }

    /// Re-reads alerts, settings, topology and maintenance windows (after an edit).
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.inner.reload().await
    }

    /// Evaluates one transition (the task started with a receiver calls this).
    pub async fn handle(&self, t: Transition) {
        self.inner.handle(t).await
    }

    /// One pass of the delivery worker; returns how many notifications it tried.
    pub async fn deliver_due(&self) -> usize {
        self.inner.deliver_due().await
    }

    /// Sends reminders that are due at `now`.
    pub async fn renotify_due(&self, now: Millis) {
        self.inner.renotify_due(now).await
    }

    /// The health of services when the engine starts (from the core), so hold-back
    /// works before every service has had a transition. A health already learned from a
    /// transition is kept.
    pub fn seed_service_health(&self, healths: impl IntoIterator<Item = (ServiceId, Health)>) {
        let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        for (s, h) in healths {
            st.service_health.entry(s).or_insert(h);
        }
    }

    pub fn base_url(&self) -> &str {
        &self.inner.opts.base_url
    }
}

static RELOADS: std::sync::LazyLock<Notify> = std::sync::LazyLock::new(Notify::new);

/// Asks every engine in this process to re-read its configuration now, rather than at its
/// next periodic reload: the API calls it after an edit of alerts or maintenance windows.
pub fn request_reload() {
    RELOADS.notify_waiters();
}

/// Sends a test notification through the alert's module at once (no outbox), so the
/// "send test" button reports the module's own error.
pub async fn send_test(alert: &Alert, base_url: &str) -> Result<(), SendError> {
    modules::validate(&alert.module, &alert.options)?;
    let entity = match (alert.scope.hosts.first(), alert.scope.services.first()) {
        (Some(h), _) => Entity::Host(*h),
        (None, Some(s)) => Entity::Service(*s),
        _ if alert.scope.all_services && !alert.scope.all_hosts => Entity::Service(0),
        _ => Entity::Host(0),
    };
    let t = Transition {
        entity,
        old: alert.from_states.first().copied().unwrap_or(Health::Ok),
        new: alert.to_states.first().copied().unwrap_or(Health::Critical),
        at: now_millis(),
        cause: None,
    };
    let mut n = Notification::new(NotificationKind::Test, alert, &t, "test entity", base_url);
    n.message = "This is a test notification from Prophasis.".into();
    modules::send(&alert.module, &n, &alert.options).await
}

impl Inner {
    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn reload(&self) -> Result<(), StoreError> {
        let s = &self.store;
        let alerts = s.list_alerts().await?;
        let mut settings = HashMap::new();
        for (id, v) in s.list_alert_settings().await? {
            match serde_json::from_value::<AlertSettings>(v) {
                Ok(set) => {
                    settings.insert(id, set);
                }
                Err(e) => tracing::warn!("alerting: settings of alert {id} ignored: {e}"),
            }
        }
        let mut windows = Vec::new();
        for (id, v) in s.list_maintenance_windows().await? {
            match serde_json::from_value::<MaintenanceWindow>(v) {
                Ok(mut w) => {
                    w.id = id;
                    windows.push(w);
                }
                Err(e) => tracing::warn!("alerting: maintenance window {id} ignored: {e}"),
            }
        }
        let checks = s.list_checks().await?;
        let topology = Topology::new(
            &s.list_host_groups().await?,
            &checks,
            &s.list_services().await?,
        );
        let hosts = s
            .list_hosts()
            .await?
            .into_iter()
            .map(|h| (h.id, h.name))
            .collect();
        let services = s
            .list_services()
            .await?
            .into_iter()
            .map(|x| (x.id, x.name))
            .collect();
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Config {
            alerts,
            settings,
            topology,
            windows,
            hosts,
            services,
            checks: checks.into_iter().map(|c| (c.id, c.name)).collect(),
        });
        Ok(())
    }

    /// Keeps the delivery history for `keep_history`, at most once an hour.
    async fn prune(&self) {
        let now = now_millis();
        {
            let mut last = self.last_prune.lock().unwrap_or_else(|e| e.into_inner());
            if now - *last < 3_600_000 {
                return;
            }
            *last = now;
        }
        let before = now - self.opts.keep_history.as_millis() as i64;
        match self.store.prune_notifications(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("alerting: {n} old notifications removed from the history"),
            Err(e) => tracing::warn!("alerting: pruning the delivery history failed: {e}"),
        }
    }

    async fn handle(&self, t: Transition) {
        if t.old == t.new {
            return;
        }
        let cfg = self.config();
        if let Err(e) = self.store.clear_acknowledgements(t.entity, t.at).await {
            tracing::warn!("alerting: clearing acknowledgements failed: {e}");
        }
        let fired = rules::matching(&cfg.alerts, &t, &cfg.topology);
        let in_maint = in_maintenance(&cfg.windows, t.entity, &cfg.topology, t.at);
        let recovery = t.old.is_problem() && !t.new.is_problem();
        let mut out: Vec<Notification> = Vec::new();
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.flaps.record(t.entity, t.at);
            st.reminders.retain(|(_, e), _| *e != t.entity);
            let dependency_down = match t.entity {
                Entity::Host(h) => cfg
                    .topology
                    .services_affected_by(h)
                    .iter()
                    .any(|s| st.service_health.get(s).is_some_and(|h| h.is_problem())),
                Entity::Service(_) => false,
            };
            if let Entity::Service(s) = t.entity {
                st.service_health.insert(s, t.new);
            }
            for alert in fired {
                let settings = cfg.settings.get(&alert.id).cloned().unwrap_or_default();
                let key = (alert.id, t.entity);
                let mut kind = NotificationKind::Transition;
                if settings.flap_threshold > 0 {
                    let window = settings.flap_window_seconds as i64 * 1000;
                    let count = st.flaps.count(t.entity, t.at, window);
                    if count > settings.flap_threshold as usize {
                        if !st.flapping.insert(key) {
                            tracing::debug!(alert = alert.id, "alerting: flapping, not notified");
                            continue;
                        }
                        kind = NotificationKind::Flapping;
                    } else {
                        st.flapping.remove(&key);
                    }
                }
                if in_maint {
                    tracing::debug!(alert = alert.id, "alerting: in maintenance, not notified");
                    continue;
                }
                if settings.hold_when_dependency_down && !recovery && dependency_down {
                    tracing::debug!(
                        alert = alert.id,
                        "alerting: a service of this host is down, held back"
                    );
                    continue;
                }
                if kind == NotificationKind::Transition
                    && settings.renotify_every_seconds > 0
                    && t.new.is_problem()
                {
                    st.reminders.insert(
                        key,
                        Reminder {
                            transition: t.clone(),
                            last_sent: t.at,
                        },
                    );
                }
                out.push(cfg.notification(kind, alert, &t, &self.opts.base_url));
            }
        }
        self.enqueue(out).await;
    }

    async fn enqueue(&self, notifications: Vec<Notification>) {
        if notifications.is_empty() {
            return;
        }
        for n in notifications {
            let payload = match serde_json::to_value(&n) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("alerting: notification not serializable: {e}");
                    continue;
                }
            };
            // The outbox is the promise: when this fails there is nothing durable to
            // retry from, so say so loudly.
            if let Err(e) = self
                .store
                .enqueue_notification(Some(n.alert_id), &payload, now_millis())
                .await
            {
                tracing::error!(
                    "alerting: writing a notification to the outbox failed, it is lost: {e}"
                );
                let _ = self
                    .store
                    .add_log(&SystemLogMessage {
                        id: 0,
                        time: now_millis(),
                        category: LogCategory::Alerting,
                        title: format!("Notification for alert {} lost", n.alert_name),
                        message: format!(
                            "Writing it to the outbox failed: {e}. It said: {}",
                            n.summary
                        ),
                        read: false,
                    })
                    .await;
            }
        }
        self.wake.notify_one();
    }

    async fn renotify_due(&self, now: Millis) {
        let cfg = self.config();
        let due: Vec<((AlertId, Entity), Transition)> = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.reminders.retain(|(a, _), _| {
                cfg.settings
                    .get(a)
                    .is_some_and(|s| s.renotify_every_seconds > 0)
                    && cfg.alerts.iter().any(|x| x.id == *a && x.enabled)
            });
            st.reminders
                .iter()
                .filter(|((a, _), r)| {
                    let every = cfg.settings[a].renotify_every_seconds as i64 * 1000;
                    now - r.last_sent >= every
                })
                .map(|(k, r)| (*k, r.transition.clone()))
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let acked: HashSet<Entity> = match self.store.list_acknowledgements(true).await {
            Ok(a) => a.into_iter().map(|a| a.entity).collect(),
            Err(e) => {
                tracing::warn!("alerting: reading acknowledgements failed: {e}");
                return;
            }
        };
        let mut out = Vec::new();
        for ((alert_id, entity), t) in due {
            if acked.contains(&entity) || in_maintenance(&cfg.windows, entity, &cfg.topology, now) {
                continue;
            }
            let Some(alert) = cfg.alerts.iter().find(|a| a.id == alert_id) else {
                continue;
            };
            let mut n =
                cfg.notification(NotificationKind::Renotify, alert, &t, &self.opts.base_url);
            n.at = now;
            n.time = crate::time::rfc3339(now);
            out.push(n);
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = st.reminders.get_mut(&(alert_id, entity)) {
                r.last_sent = now;
            }
        }
        self.enqueue(out).await;
    }

    /// One pass that waits for its sends (tests, and `Alerting::deliver_due`).
    async fn deliver_due(self: &Arc<Self>) -> usize {
        let mut sends = tokio::task::JoinSet::new();
        let n = self.start_due(&mut sends).await;
        while sends.join_next().await.is_some() {}
        n
    }

    /// Starts sending the due notifications: one task per alert, so one slow peer (an
    /// SMTP server timing out) does not hold up the others, while one alert's
    /// notifications still go out in order (a "down" must not arrive after the "up" that
    /// followed it). An alert with a send in flight is left for a later pass. Returns how
    /// many notifications were started.
    async fn start_due(self: &Arc<Self>, sends: &mut tokio::task::JoinSet<()>) -> usize {
        let due = match self.store.due_notifications(now_millis(), 100).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("alerting: reading the outbox failed: {e}");
                return 0;
            }
        };
        let mut by_alert: Vec<(Option<AlertId>, Vec<OutboxEntry>)> = Vec::new();
        for row in due {
            match by_alert.iter_mut().find(|(a, _)| *a == row.alert_id) {
                Some((_, rows)) => rows.push(row),
                None => by_alert.push((row.alert_id, vec![row])),
            }
        }
        let mut started = 0;
        for (alert, rows) in by_alert {
            if sends.len() >= PARALLEL_SENDS {
                break;
            }
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(alert)
            {
                continue;
            }
            started += rows.len();
            let me = self.clone();
            sends.spawn(async move {
                for row in rows {
                    me.deliver(row).await;
                }
                me.in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&alert);
            });
        }
        started
    }

    async fn alert(&self, id: AlertId) -> Result<Option<Alert>, StoreError> {
        if let Some(a) = self.config().alerts.iter().find(|a| a.id == id) {
            return Ok(Some(a.clone()));
        }
        match self.store.get_alert(id).await {
            Ok(a) => Ok(Some(a)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn deliver(&self, row: OutboxEntry) {
        let now = now_millis();
        let lease = self.opts.send_timeout.as_millis() as i64 + 5_000;
        match self
            .store
            .claim_notification(row.id, now, now + lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!("alerting: claiming notification {} failed: {e}", row.id);
                return;
            }
        }
        let result: Result<(), (String, bool)> = async {
            let n: Notification = serde_json::from_value(row.payload.clone())
                .map_err(|e| (format!("the stored notification is unreadable: {e}"), true))?;
            let id = row.alert_id.unwrap_or(n.alert_id);
            let alert = match self.alert(id).await {
                Ok(Some(a)) => a,
                Ok(None) => return Err(("the alert was deleted".to_string(), true)),
                Err(e) => return Err((format!("reading the alert failed: {e}"), false)),
            };
            let timeout = self.opts.send_timeout;
            match tokio::time::timeout(timeout, modules::send(&alert.module, &n, &alert.options))
                .await
            {
                Err(_) => Err((SendError::Timeout(timeout).to_string(), false)),
                Ok(Err(e @ (SendError::Options(_) | SendError::UnknownModule(_)))) => {
                    Err((e.to_string(), true))
                }
                Ok(Err(e)) => Err((e.to_string(), false)),
                Ok(Ok(())) => Ok(()),
            }
        }
        .await;
        let now = now_millis();
        let attempts = row.attempts as u32 + 1;
        let retry = self.opts.retry;
        let outcome = match &result {
            Ok(()) => AttemptOutcome {
                at: now,
                ok: true,
                error: None,
                state: DeliveryState::Delivered,
                next_attempt: now,
            },
            Err((e, permanent)) => {
                let give_up = *permanent || attempts >= retry.max_attempts;
                AttemptOutcome {
                    at: now,
                    ok: false,
                    error: Some(e),
                    state: if give_up {
                        DeliveryState::Failed
                    } else {
                        DeliveryState::Pending
                    },
                    next_attempt: now + retry.delay(attempts).as_millis() as i64,
                }
            }
        };
        if let Err(e) = self.store.record_delivery_attempt(row.id, &outcome).await {
            // The row stays pending and is tried again: at least once, never lost.
            tracing::error!("alerting: recording a delivery attempt failed: {e}");
            return;
        }
        if let Err((e, _)) = &result {
            tracing::warn!(
                notification = row.id,
                attempt = attempts,
                "alerting: delivery failed: {e}"
            );
            if outcome.state == DeliveryState::Failed {
                let summary = row
                    .payload
                    .get("summary")
                    .and_then(|s| s.as_str())
                    .unwrap_or("");
                let _ = self
                    .store
                    .add_log(&SystemLogMessage {
                        id: 0,
                        time: now,
                        category: LogCategory::Alerting,
                        title: format!("Notification {} could not be delivered", row.id),
                        message: format!("After {attempts} attempt(s): {e}. It said: {summary}"),
                        read: false,
                    })
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let p = RetryPolicy {
            max_attempts: 10,
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(300),
        };
        let delays: Vec<u64> = (1..=6).map(|k| p.delay(k).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 300, 300]);
        assert_eq!(p.delay(100).as_secs(), 300);
    }
}
