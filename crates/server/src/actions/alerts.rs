//! Alerts, maintenance windows and acknowledgements: the alerting engine runs beside the
//! core, so each change here asks it to re-read its rules at once.

use prophasis_alerting::modules::{self, FieldError};
use prophasis_alerting::{AlertSettings, MaintenanceWindow};
use prophasis_model::{Alert, AlertId, LogCategory, Validate, ValidationError};
use prophasis_store::Acknowledgement;
use serde::{Deserialize, Serialize};

use super::{ActionError, Actions, Actor, Result};

impl From<FieldError> for ActionError {
    fn from(e: FieldError) -> Self {
        ActionError::Invalid(ValidationError::new(e.field, e.message))
    }
}

/// An alert as people edit it: the alert rule plus its noise settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertSettingsBody {
    #[serde(flatten)]
    pub alert: Alert,
    #[serde(default)]
    pub settings: AlertSettings,
}

impl AlertSettingsBody {
    /// The same alert with its module's secret options replaced by a mask, for showing.
    pub fn masked(mut self) -> AlertSettingsBody {
        self.alert.options = modules::mask_secrets(&self.alert.module, &self.alert.options);
        self
    }
}

impl Actions {
    async fn alert_changed(&self, actor: &Actor, title: &str, detail: String) {
        self.audit(LogCategory::Alerting, actor, title, detail)
            .await;
        prophasis_alerting::request_reload();
    }

    /// An alert and its settings, secrets unmasked (callers mask before showing).
    pub async fn alert_with_settings(&self, id: AlertId) -> Result<AlertSettingsBody> {
        let alert = self.store.get_alert(id).await?;
        let settings = self
            .store
            .list_alert_settings()
            .await?
            .into_iter()
            .find(|(a, _)| *a == id)
            .and_then(|(_, v)| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Ok(AlertSettingsBody { alert, settings })
    }

    fn check_alert(body: &AlertSettingsBody) -> Result<()> {
        body.alert.validate()?;
        modules::validate(&body.alert.module, &body.alert.options)?;
        body.settings.validate()?;
        Ok(())
    }

    async fn save_settings(&self, id: AlertId, settings: &AlertSettings) -> Result<()> {
        let value = serde_json::to_value(settings)
            .map_err(|e| ActionError::invalid("settings", e.to_string()))?;
        self.store.set_alert_settings(id, &value).await?;
        Ok(())
    }

    pub async fn create_alert(
        &self,
        actor: &Actor,
        body: &AlertSettingsBody,
    ) -> Result<AlertSettingsBody> {
        actor.require_admin()?;
        Self::check_alert(body)?;
        let id = self.store.create_alert(&body.alert).await?;
        self.save_settings(id, &body.settings).await?;
        self.alert_changed(actor, "Alert added", format!("alert {:?}", body.alert.name))
            .await;
        self.alert_with_settings(id).await
    }

    /// Updates an alert. A secret option sent back masked, as it was shown, keeps its
    /// stored value.
    pub async fn update_alert(
        &self,
        actor: &Actor,
        body: &AlertSettingsBody,
    ) -> Result<AlertSettingsBody> {
        actor.require_admin()?;
        let stored = self.store.get_alert(body.alert.id).await?;
        let mut body = body.clone();
        if stored.module == body.alert.module {
            modules::keep_secrets(&body.alert.module, &mut body.alert.options, &stored.options);
        }
        Self::check_alert(&body)?;
        self.store.update_alert(&body.alert).await?;
        self.save_settings(body.alert.id, &body.settings).await?;
        self.alert_changed(
            actor,
            "Alert changed",
            format!("alert {:?}", body.alert.name),
        )
        .await;
        self.alert_with_settings(body.alert.id).await
    }

    pub async fn delete_alert(&self, actor: &Actor, id: AlertId) -> Result<()> {
        actor.require_admin()?;
        let alert = self.store.get_alert(id).await?;
        self.store.delete_alert(id).await?;
        self.alert_changed(actor, "Alert deleted", format!("alert {:?}", alert.name))
            .await;
        Ok(())
    }

    /// Sends a test notification through the alert's module; `Ok(Err(..))` is a delivery
    /// failure to show to the person who asked.
    pub async fn test_alert(
        &self,
        actor: &Actor,
        id: AlertId,
        base_url: &str,
    ) -> Result<std::result::Result<(), String>> {
        actor.require_admin()?;
        let alert = self.store.get_alert(id).await?;
        Ok(prophasis_alerting::engine::send_test(&alert, base_url)
            .await
            .map_err(|e| e.to_string()))
    }

    pub async fn create_maintenance_window(
        &self,
        actor: &Actor,
        window: &MaintenanceWindow,
    ) -> Result<MaintenanceWindow> {
        actor.require_admin()?;
        window.validate()?;
        let value = window_value(window)?;
        let id = self.store.create_maintenance_window(&value).await?;
        self.alert_changed(actor, "Maintenance window added", format!("window {id}"))
            .await;
        Ok(MaintenanceWindow {
            id,
            ..window.clone()
        })
    }

    pub async fn update_maintenance_window(
        &self,
        actor: &Actor,
        window: &MaintenanceWindow,
    ) -> Result<MaintenanceWindow> {
        actor.require_admin()?;
        window.validate()?;
        let value = window_value(window)?;
        self.store
            .update_maintenance_window(window.id, &value)
            .await?;
        self.alert_changed(
            actor,
            "Maintenance window changed",
            format!("window {}", window.id),
        )
        .await;
        Ok(window.clone())
    }

    pub async fn delete_maintenance_window(&self, actor: &Actor, id: i64) -> Result<()> {
        actor.require_admin()?;
        self.store.delete_maintenance_window(id).await?;
        self.alert_changed(actor, "Maintenance window deleted", format!("window {id}"))
            .await;
        Ok(())
    }

    /// The stored maintenance windows; a definition this binary cannot read is skipped
    /// and logged rather than failing the whole list.
    pub async fn maintenance_windows(&self) -> Result<Vec<MaintenanceWindow>> {
        let rows = self.store.list_maintenance_windows().await?;
        Ok(rows
            .into_iter()
            .filter_map(
                |(id, v)| match serde_json::from_value::<MaintenanceWindow>(v) {
                    Ok(w) => Some(MaintenanceWindow { id, ..w }),
                    Err(e) => {
                        tracing::warn!(id, "unreadable maintenance window: {e}");
                        None
                    }
                },
            )
            .collect())
    }

    /// Any logged-in user may acknowledge: it silences reminders and changes no
    /// configuration.
    pub async fn acknowledge(
        &self,
        actor: &Actor,
        entity: prophasis_model::transition::Entity,
        comment: &str,
    ) -> Result<Acknowledgement> {
        if comment.len() > 2000 {
            return Err(ActionError::invalid(
                "comment",
                "must be at most 2000 characters",
            ));
        }
        let mut ack = Acknowledgement {
            id: 0,
            entity,
            who: actor.name.clone(),
            at: prophasis_store::now_millis(),
            comment: comment.to_string(),
            cleared_at: None,
        };
        ack.id = self.store.add_acknowledgement(&ack).await?;
        Ok(ack)
    }
}

fn window_value(window: &MaintenanceWindow) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(window)
        .map_err(|e| ActionError::invalid("body", format!("not a maintenance window: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    Ok(v)
}
