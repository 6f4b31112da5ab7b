//! Hosts. The agent key is write-only: no response carries it, and an update with an empty
//! or missing key keeps the stored one. The pinned certificate fingerprint is the
//! server's to record (trust on first use, or `accept-certificate`), never a client's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use prophasis_model::{Host, HostId, DEFAULT_AGENT_PORT};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, PathParam};
use super::{actor, DeleteImpactView};
use crate::web::auth::AuthUser;
use crate::web::error::{ApiError, CommonErrors};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_hosts, create_host))
        .routes(routes!(get_host, update_host, delete_host))
        .routes(routes!(host_delete_impact))
}

/// A host as the API shows it: everything but the agent key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostView {
    pub id: HostId,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub description: String,
    /// SHA-256 (hex) of the agent certificate pinned on first contact.
    pub tls_fingerprint: Option<String>,
    pub enabled: bool,
}

impl From<Host> for HostView {
    fn from(h: Host) -> Self {
        HostView {
            id: h.id,
            name: h.name,
            address: h.address,
            port: h.port,
            description: h.description,
            tls_fingerprint: h.tls_fingerprint,
            enabled: h.enabled,
        }
    }
}

/// A host as the API takes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct HostInput {
    pub name: String,
    /// DNS name or IP address of the agent.
    pub address: String,
    #[serde(default = "default_port")]
    #[schema(default = 4048)]
    pub port: u16,
    #[serde(default)]
    pub description: String,
    /// The key `prophasis-agent setup` printed. Required on create; empty on update keeps
    /// the stored key. Never returned.
    #[serde(default)]
    #[schema(write_only)]
    pub auth_key: String,
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub enabled: bool,
}

fn default_port() -> u16 {
    DEFAULT_AGENT_PORT
}

fn default_true() -> bool {
    true
}

/// Every host.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts",
    responses((status = 200, body = Vec<HostView>), CommonErrors))]
async fn list_hosts(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<HostView>>, ApiError> {
    let hosts = state.core.store.list_hosts().await?;
    Ok(Json(hosts.into_iter().map(HostView::from).collect()))
}

/// One host.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "hosts",
    params(("id" = i64, Path, description = "The host's id")),
    responses((status = 200, body = HostView), CommonErrors))]
async fn get_host(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostId>,
) -> Result<Json<HostView>, ApiError> {
    Ok(Json(state.core.store.get_host(id).await?.into()))
}

/// Adds a host (admins only).
#[utoipa::path(post, path = "/api/v1/hosts", tag = "hosts",
    request_body = HostInput,
    responses((status = 201, body = HostView, description = "The stored host"), CommonErrors))]
async fn create_host(
    user: AuthUser,
    State(state): State<AppState>,
    Body(input): Body<HostInput>,
) -> Result<(StatusCode, Json<HostView>), ApiError> {
    let host = Host {
        id: 0,
        name: input.name,
        address: input.address,
        port: input.port,
        description: input.description,
        auth_key: input.auth_key,
        tls_fingerprint: None,
        enabled: input.enabled,
    };
    let stored = state.actions.create_host(&actor(&user), &host).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// Replaces a host's settings (admins only); an empty `auth_key` keeps the stored key.
#[utoipa::path(put, path = "/api/v1/hosts/{id}", tag = "hosts",
    params(("id" = i64, Path, description = "The host's id")),
    request_body = HostInput,
    responses((status = 200, body = HostView, description = "The stored host"), CommonErrors))]
async fn update_host(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostId>,
    Body(input): Body<HostInput>,
) -> Result<Json<HostView>, ApiError> {
    let actor = actor(&user);
    if actor.role != prophasis_model::Role::Admin {
        return Err(ApiError::forbidden());
    }
    let stored = state.core.store.get_host(id).await?;
    let host = Host {
        id,
        name: input.name,
        address: input.address,
        port: input.port,
        description: input.description,
        auth_key: input.auth_key,
        tls_fingerprint: stored.tls_fingerprint,
        enabled: input.enabled,
    };
    Ok(Json(state.actions.update_host(&actor, &host).await?.into()))
}

/// Deletes a host with its results (admins only).
#[utoipa::path(delete, path = "/api/v1/hosts/{id}", tag = "hosts",
    params(("id" = i64, Path, description = "The host's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_host(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_host(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting this host would take with it, by kind.
#[utoipa::path(get, path = "/api/v1/hosts/{id}/delete-impact", tag = "hosts",
    params(("id" = i64, Path, description = "The host's id")),
    responses((status = 200, body = DeleteImpactView), CommonErrors))]
async fn host_delete_impact(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostId>,
) -> Result<Json<DeleteImpactView>, ApiError> {
    state.core.store.get_host(id).await?;
    Ok(Json(state.actions.host_delete_impact(id).await?.into()))
}
