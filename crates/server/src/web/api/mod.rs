//! The REST API under `/api/v1` (DESIGN.md contract): every entity with list, get,
//! create, update, delete and delete impact; health; results from the rollups; API
//! tokens; the system log; and the OpenAPI document describing all of it.
//!
//! Every route is registered through `utoipa_axum`'s `routes!`, which takes the handler's
//! `#[utoipa::path]` documentation with it, so a route cannot be served without being in
//! `/api/v1/openapi.json` (and `tests/api_openapi.rs` checks the document against the
//! router). Writes go through [`crate::actions::Actions`], like the web UI's and the
//! CLI's; reads use the store or the current catalog.

pub mod classifiers;
pub mod entities;
pub mod extract;
pub mod health;
pub mod hosts;
pub mod openapi;
pub mod plugins;
pub mod results;
pub mod syslog;
pub mod users;

use std::collections::BTreeMap;

use prophasis_store::DeleteImpact;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::auth::AuthUser;
use super::AppState;
use crate::actions::Actor;

/// Every documented API route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::routes())
        .merge(classifiers::routes())
        .merge(hosts::routes())
        .merge(entities::routes())
        .merge(plugins::routes())
        .merge(users::routes())
        .merge(results::routes())
        .merge(syslog::routes())
        .merge(super::alerts::routes())
        .merge(openapi::routes())
}

/// The person behind a request, as the actions layer names them.
pub fn actor(user: &AuthUser) -> Actor {
    Actor::user(user.id, user.name.clone(), user.role)
}

/// What a delete would take with it: row counts by kind, every kind listed (zero too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeleteImpactView {
    pub counts: BTreeMap<String, i64>,
}

impl From<DeleteImpact> for DeleteImpactView {
    fn from(d: DeleteImpact) -> Self {
        DeleteImpactView {
            counts: d.0.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }
}
