//! Health transitions: a change of a host's or a service's health, with the result that
//! caused it. The core produces them; alerting consumes them. They live here, with the
//! other domain types, so that neither side has to know the other.

use serde::{Deserialize, Serialize};

use crate::entities::{CheckId, HostId, Millis, PluginId, ResultType, ServiceId};
use crate::health::{Classification, Health};

/// What a transition is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Entity {
    Host(HostId),
    Service(ServiceId),
}

/// The result that caused a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub host_id: HostId,
    pub plugin_id: PluginId,
    pub check_id: Option<CheckId>,
    pub value: Option<f64>,
    pub message: String,
    pub result_type: ResultType,
    pub classification: Classification,
}

/// A change of health of a host or a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub entity: Entity,
    pub old: Health,
    pub new: Health,
    pub at: Millis,
    /// `None` when the change came from a configuration change rather than a result.
    pub cause: Option<Cause>,
}
