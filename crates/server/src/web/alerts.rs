//! The alerting API: alert modules and their option schemas (DESIGN.md contract), alerts
//! with their module options validated field by field and secrets masked in every answer,
//! "send test", the delivery history of the outbox, maintenance windows and
//! acknowledgements. The engine itself runs beside the core (see `serve.rs`); each edit
//! here asks it to re-read alerts, settings and windows at once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use prophasis_alerting::modules;
use prophasis_alerting::{AlertSettings, MaintenanceWindow};
use prophasis_model::{Alert, AlertId};
use prophasis_store::{Acknowledgement, DeliveryAttempt, OutboxEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::actor;
use super::api::extract::{Body, PathParam, QueryParams};
use super::auth::AuthUser;
use super::error::{ApiError, CommonErrors};
use super::AppState;
use crate::actions::AlertSettingsBody;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_modules))
        .routes(routes!(list_alerts, create_alert))
        .routes(routes!(get_alert, update_alert, delete_alert))
        .routes(routes!(test_alert))
        .routes(routes!(alert_deliveries))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(list_windows, create_window))
        .routes(routes!(update_window, delete_window))
        .routes(routes!(list_acks, create_ack))
}

/// Every alert module with the JSON schema of its options.
#[utoipa::path(get, path = "/api/v1/alert-modules", tag = "alerts",
    responses((status = 200, body = Vec<serde_json::Value>, description = "`name`, `description` and `options` (a JSON schema) of each module"),
        CommonErrors))]
async fn list_modules(_user: AuthUser) -> Json<Vec<modules::ModuleInfo>> {
    Json(modules::registry())
}

/// An alert as the API shows and takes it: the stored alert plus its alerting settings.
/// Secret module options come back masked; sending the mask back keeps the stored value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertBody {
    #[serde(flatten)]
    pub alert: Alert,
    /// Noise control: re-notification, flapping, dependency hold-back.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: AlertSettings,
}

impl From<AlertSettingsBody> for AlertBody {
    fn from(b: AlertSettingsBody) -> Self {
        let b = b.masked();
        AlertBody {
            alert: b.alert,
            settings: b.settings,
        }
    }
}

impl From<AlertBody> for AlertSettingsBody {
    fn from(b: AlertBody) -> Self {
        AlertSettingsBody {
            alert: b.alert,
            settings: b.settings,
        }
    }
}

/// Every alert.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    responses((status = 200, body = Vec<AlertBody>), CommonErrors))]
async fn list_alerts(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<AlertBody>>, ApiError> {
    let mut out = Vec::new();
    for a in state.core.store.list_alerts().await? {
        out.push(state.actions.alert_with_settings(a.id).await?.into());
    }
    Ok(Json(out))
}

/// One alert.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id")),
    responses((status = 200, body = AlertBody), CommonErrors))]
async fn get_alert(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<AlertId>,
) -> Result<Json<AlertBody>, ApiError> {
    Ok(Json(state.actions.alert_with_settings(id).await?.into()))
}

/// Adds an alert (admins only); module options are checked field by field.
#[utoipa::path(post, path = "/api/v1/alerts", tag = "alerts",
    request_body = AlertBody,
    responses((status = 201, body = AlertBody, description = "The stored alert"), CommonErrors))]
async fn create_alert(
    user: AuthUser,
    State(state): State<AppState>,
    Body(body): Body<AlertBody>,
) -> Result<(StatusCode, Json<AlertBody>), ApiError> {
    let stored = state
        .actions
        .create_alert(&actor(&user), &body.into())
        .await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// Replaces an alert (admins only).
#[utoipa::path(put, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id")),
    request_body = AlertBody,
    responses((status = 200, body = AlertBody, description = "The stored alert"), CommonErrors))]
async fn update_alert(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<AlertId>,
    Body(mut body): Body<AlertBody>,
) -> Result<Json<AlertBody>, ApiError> {
    body.alert.id = id;
    let stored = state
        .actions
        .update_alert(&actor(&user), &body.into())
        .await?;
    Ok(Json(stored.into()))
}

/// Deletes an alert (admins only); its delivery history stays.
#[utoipa::path(delete, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_alert(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<AlertId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_alert(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestOutcome {
    pub ok: bool,
    /// Why delivery failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sends a test notification through the alert's module now (admins only).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/test", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id")),
    responses((status = 200, body = TestOutcome), CommonErrors))]
async fn test_alert(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<AlertId>,
    headers: HeaderMap,
) -> Result<Json<TestOutcome>, ApiError> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    let outcome = state.actions.test_alert(&actor(&user), id, &base).await?;
    Ok(Json(match outcome {
        Ok(()) => TestOutcome {
            ok: true,
            error: None,
        },
        Err(e) => TestOutcome {
            ok: false,
            error: Some(e),
        },
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Limit {
    /// How many, newest first (1 to 1000, default 100).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000)]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// A notification with its attempts.
#[derive(Serialize, ToSchema)]
struct Delivery {
    id: i64,
    /// Absent for a test send.
    alert_id: Option<AlertId>,
    created: i64,
    /// What was sent (the module's input).
    payload: serde_json::Value,
    /// `pending`, `delivered` or `failed`.
    state: String,
    attempts: i64,
    next_attempt: i64,
    last_error: Option<String>,
    finished: Option<i64>,
    attempts_made: Vec<AttemptView>,
}

/// One try at sending a notification.
#[derive(Serialize, ToSchema)]
struct AttemptView {
    id: i64,
    time: i64,
    ok: bool,
    error: Option<String>,
}

impl From<DeliveryAttempt> for AttemptView {
    fn from(a: DeliveryAttempt) -> Self {
        AttemptView {
            id: a.id,
            time: a.time,
            ok: a.ok,
            error: a.error,
        }
    }
}

async fn with_attempts(
    state: &AppState,
    rows: Vec<OutboxEntry>,
) -> Result<Vec<Delivery>, ApiError> {
    let mut out = Vec::with_capacity(rows.len());
    for e in rows {
        let attempts = state.core.store.delivery_attempts(e.id).await?;
        out.push(Delivery {
            id: e.id,
            alert_id: e.alert_id,
            created: e.created,
            payload: e.payload,
            state: e.state.as_str().to_string(),
            attempts: e.attempts,
            next_attempt: e.next_attempt,
            last_error: e.last_error,
            finished: e.finished,
            attempts_made: attempts.into_iter().map(AttemptView::from).collect(),
        });
    }
    Ok(out)
}

/// The notifications of one alert with every delivery attempt, newest first.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/deliveries", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id"), Limit),
    responses((status = 200, body = Vec<Delivery>), CommonErrors))]
async fn alert_deliveries(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<AlertId>,
    QueryParams(q): QueryParams<Limit>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let rows = state
        .core
        .store
        .list_notifications(Some(id), q.limit.clamp(1, 1000))
        .await?;
    Ok(Json(with_attempts(&state, rows).await?))
}

/// Every notification with its delivery attempts, newest first.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "alerts",
    params(Limit),
    responses((status = 200, body = Vec<Delivery>), CommonErrors))]
async fn deliveries(
    _user: AuthUser,
    State(state): State<AppState>,
    QueryParams(q): QueryParams<Limit>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let rows = state
        .core
        .store
        .list_notifications(None, q.limit.clamp(1, 1000))
        .await?;
    Ok(Json(with_attempts(&state, rows).await?))
}

/// One notification with its delivery attempts.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The notification's id")),
    responses((status = 200, body = Delivery), CommonErrors))]
async fn delivery(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<Json<Delivery>, ApiError> {
    let row = state.core.store.get_notification(id).await?;
    let mut v = with_attempts(&state, vec![row]).await?;
    Ok(Json(v.remove(0)))
}

/// Every maintenance window.
#[utoipa::path(get, path = "/api/v1/maintenance-windows", tag = "maintenance",
    responses((status = 200, body = Vec<serde_json::Value>, description = "Maintenance windows with their ids"), CommonErrors))]
async fn list_windows(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<MaintenanceWindow>>, ApiError> {
    Ok(Json(state.actions.maintenance_windows().await?))
}

/// Adds a maintenance window (admins only).
#[utoipa::path(post, path = "/api/v1/maintenance-windows", tag = "maintenance",
    request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value, description = "The stored window"), CommonErrors))]
async fn create_window(
    user: AuthUser,
    State(state): State<AppState>,
    Body(window): Body<MaintenanceWindow>,
) -> Result<(StatusCode, Json<MaintenanceWindow>), ApiError> {
    let stored = state
        .actions
        .create_maintenance_window(&actor(&user), &window)
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Replaces a maintenance window (admins only).
#[utoipa::path(put, path = "/api/v1/maintenance-windows/{id}", tag = "maintenance",
    params(("id" = i64, Path, description = "The window's id")),
    request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value, description = "The stored window"), CommonErrors))]
async fn update_window(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
    Body(window): Body<MaintenanceWindow>,
) -> Result<Json<MaintenanceWindow>, ApiError> {
    let window = MaintenanceWindow { id, ..window };
    Ok(Json(
        state
            .actions
            .update_maintenance_window(&actor(&user), &window)
            .await?,
    ))
}

/// Deletes a maintenance window (admins only).
#[utoipa::path(delete, path = "/api/v1/maintenance-windows/{id}", tag = "maintenance",
    params(("id" = i64, Path, description = "The window's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_window(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .actions
        .delete_maintenance_window(&actor(&user), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AckQuery {
    /// Only acknowledgements not cleared by a health change yet.
    #[serde(default)]
    active: bool,
}

/// An acknowledgement: someone has seen a problem; it silences reminders until the
/// health changes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AckView {
    pub id: i64,
    pub entity: prophasis_model::transition::Entity,
    pub who: String,
    pub at: i64,
    pub comment: String,
    pub cleared_at: Option<i64>,
}

impl From<Acknowledgement> for AckView {
    fn from(a: Acknowledgement) -> Self {
        AckView {
            id: a.id,
            entity: a.entity,
            who: a.who,
            at: a.at,
            comment: a.comment,
            cleared_at: a.cleared_at,
        }
    }
}

/// Acknowledgements, newest first.
#[utoipa::path(get, path = "/api/v1/acknowledgements", tag = "maintenance",
    params(AckQuery),
    responses((status = 200, body = Vec<AckView>), CommonErrors))]
async fn list_acks(
    _user: AuthUser,
    State(state): State<AppState>,
    QueryParams(q): QueryParams<AckQuery>,
) -> Result<Json<Vec<AckView>>, ApiError> {
    let acks = state.core.store.list_acknowledgements(q.active).await?;
    Ok(Json(acks.into_iter().map(AckView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
struct AckBody {
    entity: prophasis_model::transition::Entity,
    #[serde(default)]
    comment: String,
}

/// Acknowledges a host's or service's problem. Any logged-in user may: it silences
/// reminders and changes no configuration.
#[utoipa::path(post, path = "/api/v1/acknowledgements", tag = "maintenance",
    request_body = AckBody,
    responses((status = 201, body = AckView), CommonErrors))]
async fn create_ack(
    user: AuthUser,
    State(state): State<AppState>,
    Body(body): Body<AckBody>,
) -> Result<(StatusCode, Json<AckView>), ApiError> {
    let ack = state
        .actions
        .acknowledge(&actor(&user), body.entity, &body.comment)
        .await?;
    Ok((StatusCode::CREATED, Json(ack.into())))
}
