//! Current health of hosts, host groups and services, worst first, from the core's
//! in-memory state (no database read per request).

use axum::extract::State;
use axum::Json;
use prophasis_model::{worst_first, Health, HostGroupId, HostId, ServiceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::auth::AuthUser;
use crate::web::error::CommonErrors;
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(host_health))
        .routes(routes!(host_group_health))
        .routes(routes!(service_health))
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct HostHealth {
    pub id: HostId,
    pub name: String,
    pub address: String,
    pub health: Health,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct HostGroupHealth {
    pub id: HostGroupId,
    pub name: String,
    pub health: Health,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ServiceHealth {
    pub id: ServiceId,
    pub name: String,
    pub health: Health,
}

pub(crate) fn hosts_worst_first(state: &AppState) -> Vec<HostHealth> {
    let catalog = state.core.current_catalog();
    let health = state.core.health.read().expect("health lock");
    let mut out: Vec<HostHealth> = catalog
        .hosts
        .values()
        .map(|h| HostHealth {
            id: h.id,
            name: h.name.clone(),
            address: h.address.clone(),
            health: health.host(h.id),
        })
        .collect();
    out.sort_by(|a, b| worst_first((a.health, &a.name), (b.health, &b.name)));
    out
}

/// Every host's health, worst first.
#[utoipa::path(get, path = "/api/v1/health/hosts", tag = "health",
    responses((status = 200, body = Vec<HostHealth>), CommonErrors))]
async fn host_health(_user: AuthUser, State(state): State<AppState>) -> Json<Vec<HostHealth>> {
    Json(hosts_worst_first(&state))
}

/// Every host group's health (the worst of its hosts, recursively), worst first.
#[utoipa::path(get, path = "/api/v1/health/host-groups", tag = "health",
    responses((status = 200, body = Vec<HostGroupHealth>), CommonErrors))]
async fn host_group_health(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Json<Vec<HostGroupHealth>> {
    let catalog = state.core.current_catalog();
    let health = state.core.health.read().expect("health lock");
    let snapshot = health.snapshot();
    let mut out: Vec<HostGroupHealth> = catalog
        .groups
        .iter()
        .map(|g| HostGroupHealth {
            id: g.id,
            name: g.name.clone(),
            health: snapshot
                .groups
                .get(&g.id)
                .copied()
                .unwrap_or(Health::NoData),
        })
        .collect();
    out.sort_by(|a, b| worst_first((a.health, &a.name), (b.health, &b.name)));
    Json(out)
}

/// Every service's health, worst first.
#[utoipa::path(get, path = "/api/v1/health/services", tag = "health",
    responses((status = 200, body = Vec<ServiceHealth>), CommonErrors))]
async fn service_health(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Json<Vec<ServiceHealth>> {
    let catalog = state.core.current_catalog();
    let health = state.core.health.read().expect("health lock");
    let mut out: Vec<ServiceHealth> = catalog
        .services
        .iter()
        .map(|s| ServiceHealth {
            id: s.id,
            name: s.name.clone(),
            health: health.service(s.id),
        })
        .collect();
    out.sort_by(|a, b| worst_first((a.health, &a.name), (b.health, &b.name)));
    Json(out)
}
