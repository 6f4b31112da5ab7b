//! HTTP surface of the server: the REST API under `/api/v1` (module `api`, documented by
//! its own OpenAPI document), `/metrics` and a plain status page. `router(state)` builds
//! everything, so handler tests use `oneshot` and the end-to-end tests serve the same
//! router on a real socket.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use crate::actions::Actions;
use crate::app::Core;
use auth::{AuthUser, CredentialCache};
use error::ApiError;

pub use api::classifiers::{AcceptedCertificate, DryRunRequest, DryRunResponse};
pub use api::health::{HostHealth, ServiceHealth};

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

/// The API routes as a plain router (every one documented; see `api`).
pub fn api_router() -> Router<AppState> {
    api::routes().into()
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics::metrics))
        .merge(api_router())
        .fallback(|| async { ApiError::not_found("no such page or API route") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
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
    let rows: String = api::health::hosts_worst_first(&state)
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
