//! The alerting API: alert modules and their option schemas (DESIGN.md contract), alerts
//! with their module options validated field by field and secrets masked in every answer,
//! "send test", the delivery history of the outbox, maintenance windows and
//! acknowledgements. The engine itself runs beside the core (see `serve.rs`); each edit
//! here asks it to re-read alerts, settings and windows at once.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use prophasis_alerting::modules::{self, FieldError};
use prophasis_alerting::{AlertSettings, MaintenanceWindow};
use prophasis_model::{Alert, AlertId};
use prophasis_store::{Acknowledgement, DeliveryAttempt, OutboxEntry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::AuthUser;
use super::error::ApiError;
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alert-modules", get(list_modules))
        .route("/api/v1/alerts", get(list_alerts).post(create_alert))
        .route(
            "/api/v1/alerts/{id}",
            get(get_alert).put(update_alert).delete(delete_alert),
        )
        .route("/api/v1/alerts/{id}/test", post(test_alert))
        .route("/api/v1/alerts/{id}/deliveries", get(alert_deliveries))
        .route("/api/v1/deliveries", get(deliveries))
        .route("/api/v1/deliveries/{id}", get(delivery))
        .route(
            "/api/v1/maintenance-windows",
            get(list_windows).post(create_window),
        )
        .route(
            "/api/v1/maintenance-windows/{id}",
            put(update_window).delete(delete_window),
        )
        .route("/api/v1/acknowledgements", get(list_acks).post(create_ack))
}

fn field_error(e: FieldError) -> ApiError {
    ApiError::invalid(e.field, e.message)
}

async fn list_modules(_user: AuthUser) -> Json<Vec<modules::ModuleInfo>> {
    Json(modules::registry())
}

/// An alert as the API shows and takes it: the stored alert plus its alerting settings.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlertBody {
    #[serde(flatten)]
    pub alert: Alert,
    #[serde(default)]
    pub settings: AlertSettings,
}

fn masked(alert: Alert, settings: AlertSettings) -> AlertBody {
    let options = modules::mask_secrets(&alert.module, &alert.options);
    AlertBody {
        alert: Alert { options, ..alert },
        settings,
    }
}

async fn settings_of(state: &AppState, id: AlertId) -> Result<AlertSettings, ApiError> {
    Ok(state
        .core
        .store
        .list_alert_settings()
        .await?
        .into_iter()
        .find(|(a, _)| *a == id)
        .and_then(|(_, v)| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

async fn list_alerts(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<AlertBody>>, ApiError> {
    let store = &state.core.store;
    let settings = store.list_alert_settings().await?;
    let out = store
        .list_alerts()
        .await?
        .into_iter()
        .map(|a| {
            let s = settings
                .iter()
                .find(|(id, _)| *id == a.id)
                .and_then(|(_, v)| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            masked(a, s)
        })
        .collect();
    Ok(Json(out))
}

async fn get_alert(
    _user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<AlertId>,
) -> Result<Json<AlertBody>, ApiError> {
    let a = state.core.store.get_alert(id).await?;
    let s = settings_of(&state, id).await?;
    Ok(Json(masked(a, s)))
}

fn check(body: &AlertBody) -> Result<(), ApiError> {
    modules::validate(&body.alert.module, &body.alert.options).map_err(field_error)?;
    body.settings.validate().map_err(field_error)
}

async fn create_alert(
    user: AuthUser,
    State(state): State<AppState>,
    Json(body): Json<AlertBody>,
) -> Result<(StatusCode, Json<AlertBody>), ApiError> {
    user.require_admin()?;
    check(&body)?;
    let store = &state.core.store;
    let id = store.create_alert(&body.alert).await?;
    store
        .set_alert_settings(
            id,
            &serde_json::to_value(&body.settings).map_err(ApiError::internal)?,
        )
        .await?;
    let a = store.get_alert(id).await?;
    prophasis_alerting::request_reload();
    Ok((StatusCode::CREATED, Json(masked(a, body.settings))))
}

async fn update_alert(
    user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<AlertId>,
    Json(mut body): Json<AlertBody>,
) -> Result<Json<AlertBody>, ApiError> {
    user.require_admin()?;
    let store = &state.core.store;
    let stored = store.get_alert(id).await?;
    // A secret sent back as the API showed it (masked) keeps its stored value.
    if stored.module == body.alert.module {
        modules::keep_secrets(&body.alert.module, &mut body.alert.options, &stored.options);
    }
    body.alert.id = id;
    check(&body)?;
    store.update_alert(&body.alert).await?;
    store
        .set_alert_settings(
            id,
            &serde_json::to_value(&body.settings).map_err(ApiError::internal)?,
        )
        .await?;
    prophasis_alerting::request_reload();
    Ok(Json(masked(store.get_alert(id).await?, body.settings)))
}

async fn delete_alert(
    user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<AlertId>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    state.core.store.delete_alert(id).await?;
    prophasis_alerting::request_reload();
    Ok(StatusCode::NO_CONTENT)
}

async fn test_alert(
    user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<AlertId>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let alert = state.core.store.get_alert(id).await?;
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    Ok(Json(
        match prophasis_alerting::engine::send_test(&alert, &base).await {
            Ok(()) => json!({"ok": true}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        },
    ))
}

#[derive(Deserialize)]
struct Limit {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// A notification with its attempts.
#[derive(Serialize)]
struct Delivery {
    #[serde(flatten)]
    entry: OutboxEntry,
    attempts_made: Vec<DeliveryAttempt>,
}

async fn with_attempts(
    state: &AppState,
    rows: Vec<OutboxEntry>,
) -> Result<Vec<Delivery>, ApiError> {
    let mut out = Vec::with_capacity(rows.len());
    for entry in rows {
        let attempts_made = state.core.store.delivery_attempts(entry.id).await?;
        out.push(Delivery {
            entry,
            attempts_made,
        });
    }
    Ok(out)
}

async fn alert_deliveries(
    _user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<AlertId>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let rows = state
        .core
        .store
        .list_notifications(Some(id), q.limit.clamp(1, 1000))
        .await?;
    Ok(Json(with_attempts(&state, rows).await?))
}

async fn deliveries(
    _user: AuthUser,
    State(state): State<AppState>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let rows = state
        .core
        .store
        .list_notifications(None, q.limit.clamp(1, 1000))
        .await?;
    Ok(Json(with_attempts(&state, rows).await?))
}

async fn delivery(
    _user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Delivery>, ApiError> {
    let row = state.core.store.get_notification(id).await?;
    let mut v = with_attempts(&state, vec![row]).await?;
    Ok(Json(v.remove(0)))
}

async fn list_windows(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let rows = state.core.store.list_maintenance_windows().await?;
    Ok(Json(
        rows.into_iter()
            .map(|(id, mut v)| {
                v["id"] = json!(id);
                v
            })
            .collect(),
    ))
}

fn window_from(v: Value) -> Result<Value, ApiError> {
    let w: MaintenanceWindow = serde_json::from_value(v)
        .map_err(|e| ApiError::invalid("body", format!("not a maintenance window: {e}")))?;
    w.validate().map_err(field_error)?;
    let mut v = serde_json::to_value(&w).map_err(ApiError::internal)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    Ok(v)
}

async fn create_window(
    user: AuthUser,
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require_admin()?;
    let mut v = window_from(body)?;
    let id = state.core.store.create_maintenance_window(&v).await?;
    prophasis_alerting::request_reload();
    v["id"] = json!(id);
    Ok((StatusCode::CREATED, Json(v)))
}

async fn update_window(
    user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let mut v = window_from(body)?;
    state.core.store.update_maintenance_window(id, &v).await?;
    prophasis_alerting::request_reload();
    v["id"] = json!(id);
    Ok(Json(v))
}

async fn delete_window(
    user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    state.core.store.delete_maintenance_window(id).await?;
    prophasis_alerting::request_reload();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AckQuery {
    #[serde(default)]
    active: bool,
}

async fn list_acks(
    _user: AuthUser,
    State(state): State<AppState>,
    Query(q): Query<AckQuery>,
) -> Result<Json<Vec<Acknowledgement>>, ApiError> {
    Ok(Json(
        state.core.store.list_acknowledgements(q.active).await?,
    ))
}

#[derive(Deserialize)]
struct AckBody {
    entity: prophasis_model::transition::Entity,
    #[serde(default)]
    comment: String,
}

/// Any logged-in user may acknowledge: it silences reminders, it changes no configuration.
async fn create_ack(
    user: AuthUser,
    State(state): State<AppState>,
    Json(body): Json<AckBody>,
) -> Result<(StatusCode, Json<Acknowledgement>), ApiError> {
    let mut ack = Acknowledgement {
        id: 0,
        entity: body.entity,
        who: user.name.clone(),
        at: prophasis_store::now_millis(),
        comment: body.comment,
        cleared_at: None,
    };
    ack.id = state.core.store.add_acknowledgement(&ack).await?;
    Ok((StatusCode::CREATED, Json(ack)))
}
