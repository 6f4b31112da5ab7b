//! The system log page: what the server wants an administrator to see (failed dispatches,
//! plugin distribution, classifier errors…), newest first, with "mark as read". The unread
//! count in the navigation comes from [`super::live`].

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use prophasis_store::LogFilter;
use serde::Deserialize;

use super::session::{Admin, SessionUser};
use super::{page, see_other, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logs", get(list))
        .route("/logs/{id}/read", post(mark_read))
        .route("/logs/read-all", post(mark_all_read))
}

/// Messages one page shows.
const PAGE: i64 = 200;

#[derive(Debug, Deserialize)]
struct LogQuery {
    #[serde(default)]
    unread: Option<String>,
    before: Option<i64>,
}

async fn list(
    user: SessionUser,
    State(state): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Result<Response, UiError> {
    let unread_only = q.unread.as_deref().is_some_and(|v| v == "1" || v == "on");
    let messages = state
        .core
        .store
        .list_log(&LogFilter {
            unread_only,
            before_id: q.before,
            limit: PAGE,
            ..LogFilter::default()
        })
        .await?;
    let unread = state.core.store.unread_log_count().await?;
    state.ui.live.set_unread(unread);
    let older = (messages.len() as i64 == PAGE)
        .then(|| messages.last().map(|m| m.id))
        .flatten();
    let messages: Vec<_> = messages
        .iter()
        .map(|m| {
            context! { id => m.id, time => m.time, category => m.category.as_str(),
            title => &m.title, message => &m.message, read => m.read }
        })
        .collect();
    page(
        &state,
        &user,
        "logs.html",
        "logs",
        context! { messages, unread_only, unread_count => unread, older },
    )
}

async fn refresh_unread(state: &AppState) -> Result<(), UiError> {
    let n = state.core.store.unread_log_count().await?;
    state.ui.live.set_unread(n);
    Ok(())
}

async fn mark_read(
    Admin(_user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state.core.store.mark_log_read(id).await?;
    refresh_unread(&state).await?;
    Ok(see_other("/logs"))
}

async fn mark_all_read(
    Admin(_user): Admin,
    State(state): State<AppState>,
) -> Result<Response, UiError> {
    state.core.store.mark_all_log_read().await?;
    refresh_unread(&state).await?;
    Ok(see_other("/logs"))
}
