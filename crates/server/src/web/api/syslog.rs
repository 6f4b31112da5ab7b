//! The system log: errors and events an administrator should see (agents unreachable,
//! classifier failures, configuration changes with who made them), with read marks.
//! Marking messages read changes no configuration, so any logged-in user may.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use prophasis_model::{LogCategory, Millis, SystemLogMessage};
use prophasis_store::LogFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actor;
use super::extract::{PathParam, QueryParams};
use crate::web::auth::AuthUser;
use crate::web::error::{ApiError, CommonErrors};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_log))
        .routes(routes!(unread_count))
        .routes(routes!(mark_read))
        .routes(routes!(mark_all_read))
}

/// Most messages one request lists.
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only this category.
    pub category: Option<LogCategory>,
    /// Only unread messages.
    #[serde(default)]
    pub unread: bool,
    /// Only messages at or after this time (ms since the Unix epoch).
    pub since: Option<Millis>,
    /// Only messages before this time (ms).
    pub until: Option<Millis>,
    /// For paging: only messages with a smaller id than this.
    pub before_id: Option<i64>,
    /// How many (default 100, at most 1000).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MarkedRead {
    /// How many messages were unread and are read now.
    pub marked: u64,
}

/// System log messages, newest first.
#[utoipa::path(get, path = "/api/v1/system-log", tag = "system-log",
    params(LogQuery),
    responses((status = 200, body = Vec<SystemLogMessage>), CommonErrors))]
async fn list_log(
    _user: AuthUser,
    State(state): State<AppState>,
    QueryParams(q): QueryParams<LogQuery>,
) -> Result<Json<Vec<SystemLogMessage>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    let filter = LogFilter {
        category: q.category,
        unread_only: q.unread,
        since: q.since,
        until: q.until,
        before_id: q.before_id,
        limit,
    };
    Ok(Json(state.core.store.list_log(&filter).await?))
}

/// How many messages are unread.
#[utoipa::path(get, path = "/api/v1/system-log/unread-count", tag = "system-log",
    responses((status = 200, body = UnreadCount), CommonErrors))]
async fn unread_count(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<UnreadCount>, ApiError> {
    Ok(Json(UnreadCount {
        unread: state.core.store.unread_log_count().await?,
    }))
}

/// Marks one message read.
#[utoipa::path(post, path = "/api/v1/system-log/{id}/read", tag = "system-log",
    params(("id" = i64, Path, description = "The message's id")),
    responses((status = 204, description = "Marked read"), CommonErrors))]
async fn mark_read(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<StatusCode, ApiError> {
    state.actions.mark_log_read(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks every message read.
#[utoipa::path(post, path = "/api/v1/system-log/read-all", tag = "system-log",
    responses((status = 200, body = MarkedRead), CommonErrors))]
async fn mark_all_read(
    user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<MarkedRead>, ApiError> {
    Ok(Json(MarkedRead {
        marked: state.actions.mark_all_log_read(&actor(&user)).await?,
    }))
}
