//! The classifier dry run (the UI's "test" button runs the same code) and accepting an
//! agent's changed certificate.

use axum::extract::State;
use axum::Json;
use prophasis_classifier::{NoHistory, Sample};
use prophasis_model::{Classification, HostId, ResultType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, PathParam};
use crate::web::auth::AuthUser;
use crate::web::error::{ApiError, CommonErrors};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dry_run))
        .routes(routes!(accept_certificate))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DryRunRequest {
    pub code: String,
    /// Numbers, or `null` / `"none"` for a result without a value.
    #[schema(value_type = Vec<Object>)]
    pub values: Vec<serde_json::Value>,
    pub messages: Vec<String>,
    /// `plugin`, `connection_error`, `connection_timeout`, `authentication_error`,
    /// `request_error` or `command_unsuccessful`, one per value.
    pub result_types: Vec<String>,
    #[serde(default)]
    pub timestamps: Option<Vec<i64>>,
}

/// A problem the classifier code showed while running.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DiagnosticView {
    /// 1-based line of the classifier code, when known.
    pub line: Option<u32>,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRunResponse {
    pub classification: Classification,
    #[schema(value_type = Vec<DiagnosticView>)]
    pub diagnostics: Vec<prophasis_classifier::Diagnostic>,
}

/// Most results a dry run takes.
const MAX_DRY_RUN_RESULTS: usize = 10_000;

/// Runs classifier code over given results without storing anything (admins only).
#[utoipa::path(post, path = "/api/v1/classifiers/dry-run", tag = "classifiers",
    request_body = DryRunRequest,
    responses((status = 200, body = DryRunResponse), CommonErrors))]
async fn dry_run(
    user: AuthUser,
    State(state): State<AppState>,
    Body(req): Body<DryRunRequest>,
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AcceptedCertificate {
    pub host_id: HostId,
    pub tls_fingerprint: String,
}

/// Pins the certificate a host's agent presented when it was refused, e.g. after a
/// reinstall (admins only).
#[utoipa::path(post, path = "/api/v1/hosts/{id}/accept-certificate", tag = "hosts",
    params(("id" = i64, Path, description = "The host's id")),
    responses((status = 200, body = AcceptedCertificate), CommonErrors))]
async fn accept_certificate(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostId>,
) -> Result<Json<AcceptedCertificate>, ApiError> {
    user.require_admin()?;
    state.core.store.get_host(id).await?;
    let Some(fp) = state.core.runner.refused_fingerprint(id) else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no_refused_certificate",
            "this host's agent has not presented a different certificate; nothing to accept",
        ));
    };
    state
        .actions
        .pin_certificate(&super::actor(&user), id, &fp)
        .await?;
    Ok(Json(AcceptedCertificate {
        host_id: id,
        tls_fingerprint: fp,
    }))
}
