//! What a notification says. One shape for every module and for the outbox: it is
//! serialized into the outbox row when the transition is evaluated, so what is delivered
//! after a restart is exactly what was decided before it. This JSON is also the documented
//! webhook payload.

use prophasis_model::transition::{Entity, Transition};
use prophasis_model::{Alert, AlertId, CheckId, Health, Millis, PluginId};
use serde::{Deserialize, Serialize};

/// Why a notification exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The entity's health changed.
    Transition,
    /// The entity is still in a to-state and the alert asks to be reminded.
    Renotify,
    /// The entity changes too often: this one notification replaces the many.
    Flapping,
    /// Sent from the "send test" button.
    Test,
}

/// The webhook payload and the source of every module's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub alert_id: AlertId,
    pub alert_name: String,
    /// `{"type": "host", "id": 3}` or `{"type": "service", "id": 4}`.
    pub entity: Entity,
    /// `host` or `service`.
    pub entity_type: String,
    pub entity_name: String,
    pub plugin: Option<PluginId>,
    pub check: Option<CheckId>,
    /// The check's name, when the check still exists.
    #[serde(default)]
    pub check_name: Option<String>,
    pub old: Health,
    pub new: Health,
    pub value: Option<f64>,
    pub message: String,
    /// Milliseconds since the Unix epoch, and the same as RFC 3339 (UTC).
    pub at: Millis,
    pub time: String,
    /// The entity's page in the web UI.
    pub link: String,
    /// One line: what a subject, an SMS or a chat message says.
    pub summary: String,
}

impl Notification {
    pub fn new(
        kind: NotificationKind,
        alert: &Alert,
        t: &Transition,
        entity_name: &str,
        base_url: &str,
    ) -> Notification {
        let (entity_type, path) = match t.entity {
            Entity::Host(id) => ("host", format!("hosts/{id}")),
            Entity::Service(id) => ("service", format!("services/{id}")),
        };
        let cause = t.cause.as_ref();
        let prefix = match kind {
            NotificationKind::Transition => "",
            NotificationKind::Renotify => "[still] ",
            NotificationKind::Flapping => "[flapping] ",
            NotificationKind::Test => "[test] ",
        };
        let summary = format!(
            "{prefix}{}: {entity_type} {entity_name} {} -> {}{}",
            alert.name,
            t.old,
            t.new,
            cause
                .map(|c| format!(" ({})", c.plugin_id))
                .unwrap_or_default()
        );
        Notification {
            kind,
            alert_id: alert.id,
            alert_name: alert.name.clone(),
            entity: t.entity,
            entity_type: entity_type.into(),
            entity_name: entity_name.into(),
            plugin: cause.map(|c| c.plugin_id.clone()),
            check: cause.and_then(|c| c.check_id),
            check_name: None,
            old: t.old,
            new: t.new,
            value: cause.and_then(|c| c.value),
            message: cause.map(|c| c.message.clone()).unwrap_or_default(),
            at: t.at,
            time: crate::time::rfc3339(t.at),
            link: format!("{}/{path}", base_url.trim_end_matches('/')),
            summary,
        }
    }

    /// A plain-text body, several lines, for email, scripts and push messages.
    pub fn text(&self) -> String {
        let mut s = format!(
            "Alert: {}\n{}: {}\nHealth: {} -> {}\n",
            self.alert_name, self.entity_type, self.entity_name, self.old, self.new
        );
        if let Some(p) = &self.plugin {
            s += &format!("Plugin: {p}\n");
        }
        match (self.check, &self.check_name) {
            (Some(c), Some(name)) => s += &format!("Check: {name} ({c})\n"),
            (Some(c), None) => s += &format!("Check: {c}\n"),
            _ => {}
        }
        if let Some(v) = self.value {
            s += &format!("Value: {v}\n");
        }
        if !self.message.is_empty() {
            s += &format!("Message: {}\n", self.message);
        }
        s += &format!("Time: {}\nLink: {}\n", self.time, self.link);
        if self.kind == NotificationKind::Flapping {
            s += "The health of this entity changes too often: further changes are not notified until it settles.\n";
        }
        s
    }
}
