//! HTTP surface of the server: the first slice of the REST API (health of hosts and
//! services, classifier dry run, accepting a changed agent certificate) and the web UI
//! (`crate::ui`, merged here). `router(state)` builds everything, so handler tests use
//! `oneshot` and the end-to-end tests serve the same router on a real socket.

pub mod alerts;
pub mod auth;
pub mod error;
pub mod metrics;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use prophasis_classifier::{NoHistory, Sample};
use prophasis_model::{Health, HostId, ResultType};
use serde::{Deserialize, Serialize};

use crate::actions::Actions;
use crate::app::Core;
use crate::ui::{self, UiState};
use auth::{AuthUser, CredentialCache};
use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    /// Every configuration change goes through here (shared with the UI and the CLI).
    pub actions: Actions,
    pub credentials: Arc<CredentialCache>,
    /// An argon2 hash of nothing anyone knows, checked for unknown user names.
    pub dummy_hash: String,
    /// Templates, login throttling and live state of the web UI.
    pub ui: Arc<UiState>,
}

impl AppState {
    pub fn new(core: Core) -> AppState {
        let dummy_hash = auth::hash_password(&format!("{:x}", rand::random::<u128>()))
            .expect("argon2 hashing works");
        let ui = Arc::new(UiState::new());
        ui::live::spawn_sampler(core.clone(), Arc::downgrade(&ui));
        let credentials: Arc<CredentialCache> = Arc::default();
        AppState {
            actions: Actions::new(core.clone(), credentials.clone()),
            core,
            credentials,
            dummy_hash,
            ui,
        }
    }
}

/// Largest request body the API accepts.
pub const MAX_BODY: usize = 1 << 20;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/health/hosts", get(host_health))
        .route("/api/v1/health/services", get(service_health))
        .route("/api/v1/classifiers/dry-run", post(dry_run))
        .route(
            "/api/v1/hosts/{id}/accept-certificate",
            post(accept_certificate),
        )
        .merge(alerts::routes())
        .merge(ui::routes())
        .fallback(|| async { ApiError::not_found("no such page or API route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ui::session::guard,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct HostHealth {
    pub id: HostId,
    pub name: String,
    pub address: String,
    pub health: Health,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ServiceHealth {
    pub id: i64,
    pub name: String,
    pub health: Health,
}

fn hosts_worst_first(state: &AppState) -> Vec<HostHealth> {
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
    out.sort_by(|a, b| b.health.cmp(&a.health).then_with(|| a.name.cmp(&b.name)));
    out
}

async fn host_health(_user: AuthUser, State(state): State<AppState>) -> Json<Vec<HostHealth>> {
    Json(hosts_worst_first(&state))
}

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
    out.sort_by(|a, b| b.health.cmp(&a.health).then_with(|| a.name.cmp(&b.name)));
    Json(out)
}

#[derive(Debug, Deserialize)]
pub struct DryRunRequest {
    pub code: String,
    /// Numbers, or `null` / `"none"` for a result without a value.
    pub values: Vec<serde_json::Value>,
    pub messages: Vec<String>,
    pub result_types: Vec<String>,
    #[serde(default)]
    pub timestamps: Option<Vec<i64>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DryRunResponse {
    pub classification: prophasis_model::Classification,
    pub diagnostics: Vec<prophasis_classifier::Diagnostic>,
}

/// Most results a dry run takes.
const MAX_DRY_RUN_RESULTS: usize = 10_000;

async fn dry_run(
    user: AuthUser,
    State(state): State<AppState>,
    Json(req): Json<DryRunRequest>,
) -> Result<Json<DryRunResponse>, ApiError> {
    user.require_admin()?;
    if req.values.len() > MAX_DRY_RUN_RESULTS {
        return Err(ApiError::invalid(
            "values",
            format!("at most {MAX_DRY_RUN_RESULTS} results"),
        ));
    }
    let values = req
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) if s == "none" => Ok(None),
            serde_json::Value::Number(n) => Ok(n.as_f64()),
            _ => Err(ApiError::invalid(
                format!("values[{i}]"),
                "must be a number, null or \"none\"",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let result_types = req
        .result_types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            ResultType::parse(t).ok_or_else(|| {
                ApiError::invalid(
                    format!("result_types[{i}]"),
                    "must be plugin, connection_error, connection_timeout, authentication_error, request_error or command_unsuccessful",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let inputs: Vec<Sample> = prophasis_classifier::samples_from_columns(
        &values,
        &req.messages,
        &result_types,
        req.timestamps.as_deref(),
        prophasis_store::now_millis(),
    )
    .map_err(|e| ApiError::invalid("values", e.to_string()))?;
    let engines = state.core.engines.clone();
    let code = req.code;
    let outcome = tokio::task::spawn_blocking(move || {
        engines.with(|e| e.dry_run(&code, &inputs, &NoHistory))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(DryRunResponse {
        classification: outcome.classification,
        diagnostics: outcome.diagnostics,
    }))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AcceptedCertificate {
    pub host_id: HostId,
    pub tls_fingerprint: String,
}

/// Pins the certificate a host's agent presented when it was refused (after a reinstall).
async fn accept_certificate(
    user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<HostId>,
) -> Result<Json<AcceptedCertificate>, ApiError> {
    user.require_admin()?;
    let mut host = state.core.store.get_host(id).await?;
    let Some(fp) = state.core.runner.refused_fingerprint(id) else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no_refused_certificate",
            "this host's agent has not presented a different certificate; nothing to accept",
        ));
    };
    host.tls_fingerprint = Some(fp.clone());
    state.core.store.update_host(&host).await?;
    state.core.reload().await?;
    state.core.syslog.log(
        prophasis_model::LogCategory::Dispatch,
        format!("Accepted the new certificate of {}", host.name),
        format!("{} pinned SHA-256 {fp}", user.name),
    );
    Ok(Json(AcceptedCertificate {
        host_id: id,
        tls_fingerprint: fp,
    }))
}
