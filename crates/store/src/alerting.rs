//! What alerting keeps in the database: the durable outbox of notifications with every
//! delivery attempt (so a notification survives a crash and its history can be shown),
//! per-alert noise settings, maintenance windows and acknowledgements.
//!
//! The store holds settings, notification payloads and maintenance windows as JSON: their
//! shapes belong to the alerting crate, which validates them, and the store only has to
//! keep them whole.

use prophasis_model::transition::Entity;
use prophasis_model::{AlertId, Millis};
use serde::{Deserialize, Serialize};

use crate::{pg, sqlite, Backend, Result, Store};

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Every allowed attempt failed.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<DeliveryState> {
        match s {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            other => Err(crate::StoreError::Corrupt(format!(
                "delivery state {other:?}"
            ))),
        }
    }
}

/// One notification in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: i64,
    /// `None` for a test send, which belongs to no stored alert.
    pub alert_id: Option<AlertId>,
    pub created: Millis,
    pub payload: serde_json::Value,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt: Millis,
    pub last_error: Option<String>,
    pub finished: Option<Millis>,
}

/// One try at sending a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub outbox_id: i64,
    pub time: Millis,
    pub ok: bool,
    pub error: Option<String>,
}

/// "Someone has seen this problem": stops re-notification until the health changes,
/// which clears it (`cleared_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    #[serde(default)]
    pub id: i64,
    pub entity: Entity,
    #[serde(default)]
    pub who: String,
    #[serde(default)]
    pub at: Millis,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub cleared_at: Option<Millis>,
}

/// What the outcome of a delivery attempt does to its notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome<'a> {
    pub at: Millis,
    pub ok: bool,
    pub error: Option<&'a str>,
    pub state: DeliveryState,
    /// When the next attempt is due (only meaningful while pending).
    pub next_attempt: Millis,
}

impl Store {
    // --- Alert settings ------------------------------------------------------------------

    /// Replaces the alerting settings of an alert (noise control), kept as JSON.
    pub async fn set_alert_settings(
        &self,
        alert: AlertId,
        settings: &serde_json::Value,
    ) -> Result<()> {
        dispatch!(self, set_alert_settings(alert, settings))
    }
    /// Settings of every alert that has some.
    pub async fn list_alert_settings(&self) -> Result<Vec<(AlertId, serde_json::Value)>> {
        dispatch!(self, list_alert_settings())
    }

    // --- Outbox --------------------------------------------------------------------------

    /// Adds a pending notification, due at `at`; durable when this returns.
    pub async fn enqueue_notification(
        &self,
        alert: Option<AlertId>,
        payload: &serde_json::Value,
        at: Millis,
    ) -> Result<i64> {
        dispatch!(self, enqueue_notification(alert, payload, at))
    }
    /// Pending notifications due at `now`, oldest first.
    pub async fn due_notifications(&self, now: Millis, limit: i64) -> Result<Vec<OutboxEntry>> {
        dispatch!(self, due_notifications(now, limit))
    }
    /// Takes a due notification for one attempt: it is not due again before `until`, so
    /// a second server on the same database does not send it too, and a sender that
    /// dies mid-attempt leaves it to be retried after `until`. `false`: someone else
    /// has it, or it is no longer due.
    pub async fn claim_notification(&self, id: i64, now: Millis, until: Millis) -> Result<bool> {
        dispatch!(self, claim_notification(id, now, until))
    }
    /// Records one attempt and its effect on the notification, in one transaction.
    pub async fn record_delivery_attempt(
        &self,
        id: i64,
        outcome: &AttemptOutcome<'_>,
    ) -> Result<()> {
        dispatch!(self, record_delivery_attempt(id, outcome))
    }
    /// Deletes delivered and failed notifications (with their attempts) finished before
    /// the given time; pending ones always stay. Returns how many went.
    pub async fn prune_notifications(&self, finished_before: Millis) -> Result<u64> {
        dispatch!(self, prune_notifications(finished_before))
    }
    pub async fn get_notification(&self, id: i64) -> Result<OutboxEntry> {
        dispatch!(self, get_notification(id))
    }
    /// Newest first, optionally only one alert's.
    pub async fn list_notifications(
        &self,
        alert: Option<AlertId>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>> {
        dispatch!(self, list_notifications(alert, limit))
    }
    /// Oldest first.
    /// How many notifications are in each delivery state, every state listed (zero
    /// included), for `/metrics`.
    pub async fn notification_counts(&self) -> Result<Vec<(DeliveryState, i64)>> {
        let found: Vec<(DeliveryState, i64)> = dispatch!(self, notification_counts())?;
        Ok([
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .map(|s| {
            let n = found.iter().find(|(f, _)| *f == s).map_or(0, |(_, n)| *n);
            (s, n)
        })
        .collect())
    }

    pub async fn delivery_attempts(&self, outbox_id: i64) -> Result<Vec<DeliveryAttempt>> {
        dispatch!(self, delivery_attempts(outbox_id))
    }

    // --- Maintenance windows -------------------------------------------------------------

    pub async fn create_maintenance_window(&self, definition: &serde_json::Value) -> Result<i64> {
        dispatch!(self, create_maintenance_window(definition))
    }
    pub async fn update_maintenance_window(
        &self,
        id: i64,
        definition: &serde_json::Value,
    ) -> Result<()> {
        dispatch!(self, update_maintenance_window(id, definition))
    }
    pub async fn list_maintenance_windows(&self) -> Result<Vec<(i64, serde_json::Value)>> {
        dispatch!(self, list_maintenance_windows())
    }
    pub async fn delete_maintenance_window(&self, id: i64) -> Result<()> {
        dispatch!(self, delete_maintenance_window(id))
    }

    // --- Acknowledgements ----------------------------------------------------------------

    /// Stores an acknowledgement (its `id` and `cleared_at` are ignored) and returns its id.
    pub async fn add_acknowledgement(&self, ack: &Acknowledgement) -> Result<i64> {
        dispatch!(self, add_acknowledgement(ack))
    }
    /// Newest first; with `active_only`, those not cleared yet.
    pub async fn list_acknowledgements(&self, active_only: bool) -> Result<Vec<Acknowledgement>> {
        dispatch!(self, list_acknowledgements(active_only))
    }
    /// Clears the entity's active acknowledgements (its health changed); returns how many.
    pub async fn clear_acknowledgements(&self, entity: Entity, at: Millis) -> Result<u64> {
        dispatch!(self, clear_acknowledgements(entity, at))
    }
}
