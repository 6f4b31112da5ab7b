//! HTTP surface of the server: for now the first slice of the REST API (health of hosts
//! and services, classifier dry run, accepting a changed agent certificate) and a plain
//! status page. `router(state)` builds everything, so handler tests use `oneshot` and the
//! end-to-end tests serve the same router on a real socket.

pub mod alerts;
pub mod auth;
pub mod error;
pub mod metrics;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use prophasis_classifier::{NoHistory, Sample};
use prophasis_model::{Health, HostId, ResultType};
use serde::{Deserialize, Serialize};

use crate::actions::Actions;
use crate::app::Core;
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
}

impl AppState {
    pub fn new(core: Core) -> AppState {
        let dummy_hash = auth::hash_password(&format!("{:x}", rand::random::<u128>()))
            .expect("argon2 hashing works");
        let credentials: Arc<CredentialCache> = Arc::default();
        AppState {
            actions: Actions::new(core.clone(), credentials.clone()),
            core,
            credentials,
            dummy_hash,
        }
    }
}

/// Largest request body the API accepts.
pub const MAX_BODY: usize = 1 << 20;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/health/hosts", get(host_health))
        .route("/api/v1/health/services", get(service_health))
        .route("/api/v1/classifiers/dry-run", post(dry_run))
        .route(
            "/api/v1/hosts/{id}/accept-certificate",
            post(accept_certificate),
        )
        .merge(alerts::routes())
        .fallback(|| async { ApiError::not_found("no such page or API route") })
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A plain page so a newcomer sees something at the URL quickstart prints; the full web UI
/// replaces it.
async fn status_page(_user: AuthUser, State(state): State<AppState>) -> impl IntoResponse {
    let rows: String = hosts_worst_first(&state)
        .iter()
        .map(|h| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&h.name),
                escape(&h.address),
                h.health,
                h.health
            )
        })
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"10\"><title>Prophasis</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1rem;max-width:60rem}}table{{border-collapse:collapse;width:100%}}\
         td,th{{padding:.4rem;border-bottom:1px solid #ddd;text-align:left}}.ok{{color:#075}}.critical,.major{{color:#b00;font-weight:bold}}\
         .minor,.degraded,.unknown{{color:#a60}}</style></head><body><h1>Prophasis</h1>\
         <p>Host health, worst first (refreshes every 10 s). The API is under <code>/api/v1</code>, e.g. \
         <code>/api/v1/health/hosts</code> with HTTP Basic auth.</p>\
         <table><thead><tr><th>Host</th><th>Address</th><th>Health</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(body))
}
