//! Alerting for Prophasis: turns health transitions into notifications and delivers them
//! without losing any.
//!
//! - [`rules`] decides, purely, which alerts a transition fires.
//! - [`modules`] are the ways out (email, webhook, syslog, script, Pushbullet, Twilio),
//!   each declaring the schema of its options so the API and UI can render and validate
//!   its form without knowing it.
//! - [`noise`] holds what keeps people from drowning: maintenance windows, per-alert
//!   settings for re-notification, flapping and dependency hold-back.
//! - [`engine`] runs it: evaluation of each transition, the durable outbox in the
//!   database and the delivery worker that retries with backoff and records every attempt.
//!
//! This crate knows the domain and the store, never the web server: the server feeds it
//! transitions and calls it from its handlers.

pub mod engine;
pub mod modules;
pub mod noise;
pub mod notification;
pub mod rules;
mod time;

pub use engine::{request_reload, Alerting, EngineOptions, RetryPolicy};
pub use modules::{FieldError, ModuleInfo, OptionSpec, OptionType, SendError};
pub use noise::{AlertSettings, MaintenanceTarget, MaintenanceWindow, WindowSchedule};
pub use notification::{Notification, NotificationKind};

/// reqwest is built without a crypto provider (ring, never aws-lc-rs): install ring once
/// for the process before the first HTTPS client is made.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
