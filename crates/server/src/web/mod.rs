//! HTTP surface of the server: the REST API under `/api/v1` (module `api`, documented by
//! its own OpenAPI document), `/metrics`, and the web UI (`crate::ui`, merged here).
//! `router(state)` builds everything, so handler tests use `oneshot` and the end-to-end
//! tests serve the same router on a real socket.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use crate::actions::Actions;
use crate::app::Core;
use crate::ui::{self, UiState};
use auth::CredentialCache;
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
    /// Templates, login throttling and live state of the web UI.
    pub ui: Arc<UiState>,
}

impl AppState {
    pub fn new(core: Core) -> AppState {
        AppState::with_secure_cookies(core, false)
    }

    /// With the UI's cookies marked `Secure` (`secure`: the UI is served over TLS).
    pub fn with_secure_cookies(core: Core, secure: bool) -> AppState {
        let dummy_hash = auth::hash_password(&format!("{:x}", rand::random::<u128>()))
            .expect("argon2 hashing works");
        let ui = Arc::new(UiState {
            secure_cookies: secure,
            ..UiState::new()
        });
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

/// The API routes as a plain router (every one documented; see `api`).
pub fn api_router() -> Router<AppState> {
    api::routes().into()
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .merge(api_router())
        .merge(ui::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ui::session::guard,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// JSON for API paths, the UI's error page for everything else (people type URLs).
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") || uri.path() == "/metrics" {
        ApiError::not_found("no such API route").into_response()
    } else {
        ui::UiError::NotFound("There is no such page.".into()).into_response()
    }
}
