//! What the web UI keeps in the database: login sessions (so a restart or a second server
//! node does not log everyone out) and the custom dashboards users compose.
//!
//! A session is found by the SHA-256 of its random id: the id itself only ever exists in
//! the browser's cookie. The store treats hashes, CSRF tokens and dashboard layouts as
//! opaque strings; their meaning belongs to the server's `ui` module.

use prophasis_model::{Millis, UserId, ValidationError};
use serde::{Deserialize, Serialize};

use crate::{pg, sqlite, Backend, Result, Store, StoreError};

/// A logged-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    /// Hex SHA-256 of the session id in the cookie.
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created: Millis,
    pub expires: Millis,
}

/// A named page of panels; `layout` is the UI's JSON description of the panels in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    /// Who made it; `None` once that user is deleted.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    pub layout: serde_json::Value,
    #[serde(default)]
    pub updated: Millis,
}

/// Longest dashboard name.
pub const MAX_DASHBOARD_NAME: usize = 100;

impl Dashboard {
    fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(ValidationError::new("name", "a dashboard needs a name").into());
        }
        if name.chars().count() > MAX_DASHBOARD_NAME {
            return Err(ValidationError::new(
                "name",
                format!("at most {MAX_DASHBOARD_NAME} characters"),
            )
            .into());
        }
        if !self.layout.is_object() && !self.layout.is_array() {
            return Err(ValidationError::new("layout", "must be a JSON object or array").into());
        }
        Ok(())
    }
}

impl Store {
    // --- Web sessions --------------------------------------------------------------------

    /// Stores a new session; the user must exist.
    pub async fn create_web_session(&self, session: &WebSession) -> Result<()> {
        dispatch!(self, create_web_session(session))
    }
    /// The session with this id hash, if it exists and has not expired at `now`.
    pub async fn get_web_session(&self, id_hash: &str, now: Millis) -> Result<Option<WebSession>> {
        dispatch!(self, get_web_session(id_hash, now))
    }
    /// Moves a session's expiry (sliding renewal).
    pub async fn renew_web_session(&self, id_hash: &str, expires: Millis) -> Result<()> {
        dispatch!(self, renew_web_session(id_hash, expires))
    }
    /// Logs a session out; `false` when there was no such session.
    pub async fn delete_web_session(&self, id_hash: &str) -> Result<bool> {
        dispatch!(self, delete_web_session(id_hash))
    }
    /// Logs a user out everywhere (after a password or role change); returns how many.
    pub async fn delete_user_web_sessions(&self, user: UserId) -> Result<u64> {
        dispatch!(self, delete_user_web_sessions(user))
    }
    /// Removes sessions that expired before `now`; returns how many.
    pub async fn delete_expired_web_sessions(&self, now: Millis) -> Result<u64> {
        dispatch!(self, delete_expired_web_sessions(now))
    }

    // --- Dashboards ----------------------------------------------------------------------

    /// Stores a new dashboard (its `id` is ignored) and returns its id.
    pub async fn create_dashboard(&self, dashboard: &Dashboard) -> Result<i64> {
        dashboard.validate()?;
        dispatch!(self, create_dashboard(dashboard))
    }
    /// Replaces name and layout (the owner stays).
    pub async fn update_dashboard(&self, dashboard: &Dashboard) -> Result<()> {
        dashboard.validate()?;
        dispatch!(self, update_dashboard(dashboard))
    }
    pub async fn get_dashboard(&self, id: i64) -> Result<Dashboard> {
        dispatch!(self, get_dashboard(id))?.ok_or_else(|| StoreError::not_found("dashboard", id))
    }
    /// Every dashboard, by name.
    pub async fn list_dashboards(&self) -> Result<Vec<Dashboard>> {
        dispatch!(self, list_dashboards())
    }
    pub async fn delete_dashboard(&self, id: i64) -> Result<()> {
        dispatch!(self, delete_dashboard(id))
    }
}
