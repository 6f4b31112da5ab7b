//! The web UI: server-rendered HTML pages for people, beside the JSON API in `web/`.
//!
//! It exists so that Prophasis can be used from a browser — a desk or a phone — without a
//! front-end build: pages are MiniJinja templates (`crates/server/templates/*.html`,
//! auto-escaped because of the `.html` name) and the few front-end files (`assets/`, our
//! CSS and JS plus vendored uPlot and CodeMirror) are embedded in the binary and served
//! under `/static/` with a content hash in the URL, so browsers may cache them for a year.
//! The UI authenticates with a session cookie ([`session`]); the API keeps HTTP Basic.
//!
//! # Adding a page
//! 1. Write `templates/<area>_<page>.html` starting with `{% extends "layout.html" %}` and
//!    filling `{% block title %}` and `{% block content %}`; list it in [`TEMPLATES`].
//! 2. Write a handler in `ui/<area>.rs` that takes [`session::SessionUser`] (any logged-in
//!    user) or [`session::Admin`] (configuration) — anonymous visitors are redirected to
//!    `/login?next=…`, viewers get a 403 page — and returns
//!    `page(&state, &user, "<template>", "<nav entry>", context! { … })`.
//! 3. Add the route to that file's `routes()` and merge it in [`routes`].
//!
//! Handlers return `Result<Response, UiError>`: a [`UiError`] renders the error page with
//! the right status and logs the detail (a store failure is never shown to the visitor).
//!
//! # Forms, validation messages and CSRF
//! Every POST under the UI must carry the session's CSRF token, either as the hidden form
//! field `csrf_token` (`{{ csrf_field() }}` in a template writes it) or as the
//! `X-CSRF-Token` header (`static/app.js` adds it to `fetch` calls through `csrfHeaders()`).
//! The [`session::guard`] middleware checks this *before* any handler runs and answers
//! 403 with an explanation otherwise, so a handler never has to remember it.
//!
//! The form pattern (see the login form, `templates/login.html`, and the dashboard form):
//! - Render with the `form.html` macros: `{% import "form.html" as f %}` then
//!   `{{ f.text("name", "Name", values.name, errors, help="What people call it") }}`.
//!   A field whose name is a key of `errors` is marked invalid and shows the message
//!   right under it (`aria-describedby`, so screen readers read it too).
//! - On POST, build [`FormErrors`]: `FormErrors::from_store(&err)` turns the store's
//!   refusals (validation, duplicate name, missing reference: they name the field) into
//!   a message next to that field, anything else into the message at the top of the form;
//!   `errors.add("field", "message")` adds your own checks. Re-render the same template with
//!   the values the user typed and status 422 ([`form_page`]) — never lose their input.
//! - On success, redirect (`303 See Other`) with [`see_other`].
//! - Repeated rows (schedule intervals, check arguments): render the filled rows plus a few
//!   blank ones and read the fields by position, ignoring blank rows, so the form works
//!   without JavaScript; then mark the table `data-rows="<noun>" data-add="Add <noun>"`,
//!   number ids and labels `…-N` / `… N`, and load `asset('rows.js')`, which adds the Add
//!   and Remove buttons and keeps the numbering.
//!
//! # Deleting
//! `GET …/delete` shows [`confirm_delete`] (`confirm_delete.html`): what is deleted and, from
//! the store's `*_delete_impact` counts, everything that goes with it; its form POSTs to the
//! same URL, which deletes and redirects.

pub mod assets;
pub mod charts;
pub mod config;
pub mod dashboards;
pub mod live;
pub mod logs;
pub mod reports;
pub mod session;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{context, Environment, Value};
use prophasis_store::{DeleteImpact, StoreError};
use serde::Serialize;

use crate::web::AppState;
use session::SessionUser;

/// Every template, embedded: (name, source). The `.html` suffix turns auto-escaping on.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("form.html", include_str!("../../templates/form.html")),
    ("health.html", include_str!("../../templates/health.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "confirm_delete.html",
        include_str!("../../templates/confirm_delete.html"),
    ),
    (
        "overview.html",
        include_str!("../../templates/overview.html"),
    ),
    ("hosts.html", include_str!("../../templates/hosts.html")),
    ("host.html", include_str!("../../templates/host.html")),
    (
        "services.html",
        include_str!("../../templates/services.html"),
    ),
    ("service.html", include_str!("../../templates/service.html")),
    ("checks.html", include_str!("../../templates/checks.html")),
    ("check.html", include_str!("../../templates/check.html")),
    ("grid.html", include_str!("../../templates/grid.html")),
    (
        "dashboards.html",
        include_str!("../../templates/dashboards.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    (
        "dashboard_form.html",
        include_str!("../../templates/dashboard_form.html"),
    ),
    ("logs.html", include_str!("../../templates/logs.html")),
    (
        "configuration.html",
        include_str!("../../templates/configuration.html"),
    ),
];

/// What the UI keeps beside the core: templates, login throttling, recent transitions.
pub struct UiState {
    pub templates: Environment<'static>,
    pub throttle: session::Throttle,
    pub live: live::Live,
    /// Mark session cookies `Secure`: set when the UI is served over TLS.
    pub secure_cookies: bool,
}

impl UiState {
    pub fn new() -> UiState {
        UiState {
            templates: environment(),
            throttle: session::Throttle::default(),
            live: live::Live::default(),
            secure_cookies: false,
        }
    }
}

impl Default for UiState {
    fn default() -> Self {
        UiState::new()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env.add_function("asset", |name: &str| {
        Value::from_safe_string(assets::url(name))
    });
    // Reads the token of the page being rendered, so a form needs only `{{ csrf_field() }}`.
    env.add_function("csrf_field", |state: &minijinja::State| {
        let token = state
            .lookup("csrf_token")
            .map(|v| v.to_string())
            .unwrap_or_default();
        Value::from_safe_string(format!(
            "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
            html_escape(&token)
        ))
    });
    env.add_filter("ago", |ms: i64| {
        live::ago(prophasis_store::now_millis(), ms)
    });
    env.add_filter("datetime", live::datetime);
    env.add_filter("health_label", |h: &str| health_label(h).to_string());
    env
}

/// Escapes text for an HTML attribute or element (for the few strings built in Rust).
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The words shown for a health (the CSS class is the `as_str` name, the text is this).
pub fn health_label(h: &str) -> &'static str {
    match h {
        "ok" => "OK",
        "unknown" => "Unknown",
        "degraded" => "Degraded",
        "minor" => "Minor",
        "major" => "Major",
        "critical" => "Critical",
        _ => "No data",
    }
}

/// All UI routes; `web::router` merges them and wraps the whole router in
/// [`session::guard`] (which needs the state, so it cannot be added here).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/{name}", get(assets::serve))
        .route("/configuration", get(configuration))
        .merge(session::routes())
        .merge(reports::routes())
        .merge(charts::routes())
        .merge(dashboards::routes())
        .merge(logs::routes())
        .merge(live::routes())
        .merge(config::routes())
}

/// Why a page could not be shown. Renders `error.html`; the detail of an internal error
/// goes to the log only.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("forbidden")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Not allowed for this user, with the reason.
    #[error("refused: {0}")]
    Refused(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl UiError {
    pub fn internal(e: impl std::fmt::Display) -> UiError {
        UiError::Internal(e.to_string())
    }
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { entity, id } => {
                UiError::NotFound(format!("There is no {entity} {id}."))
            }
            other => UiError::Internal(other.to_string()),
        }
    }
}

impl From<minijinja::Error> for UiError {
    fn from(e: minijinja::Error) -> Self {
        UiError::Internal(format!("template: {e:#}"))
    }
}

/// Renders the error page without a session (the layout shows no navigation).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let html = ERROR_ENV.with(|env| {
        env.get_template("error.html")
            .and_then(|t| t.render(context! { title, message, status => status.as_u16() }))
    });
    match html {
        Ok(html) => (status, no_store(), Html(html)).into_response(),
        Err(e) => {
            tracing::error!("the error page does not render: {e:#}");
            (status, format!("{title}: {message}")).into_response()
        }
    }
}

thread_local! {
    // Error pages render without the state at hand (from extractors and middleware).
    static ERROR_ENV: Environment<'static> = environment();
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::NotFound(what) => error_page(StatusCode::NOT_FOUND, "Not found", &what),
            UiError::Forbidden => error_page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your account may look at everything but change nothing (role viewer). Ask an administrator if you need to change this.",
            ),
            UiError::Refused(why) => error_page(StatusCode::FORBIDDEN, "Not allowed", &why),
            UiError::BadRequest(what) => {
                error_page(StatusCode::BAD_REQUEST, "Cannot do that", &what)
            }
            UiError::Internal(detail) => {
                tracing::error!("web UI: {detail}");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not show this page. The details are in the server's log; try again in a moment.",
                )
            }
        }
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

/// Renders a page inside the layout: adds the user, the CSRF token, the unread log count and
/// which navigation entry is current to `ctx`.
pub fn render(
    state: &AppState,
    user: &SessionUser,
    template: &str,
    nav: &str,
    ctx: Value,
) -> Result<String, UiError> {
    let common = context! {
        user => context! { name => &user.name, role => user.role.as_str(), admin => user.is_admin() },
        csrf_token => &user.csrf_token,
        nav,
        unread => state.ui.live.unread(),
        // The health the page shows is at least this new; app.js starts from it so a change
        // between rendering and the first poll still refreshes the charts.
        live_version => state.ui.live.version(),
        now => prophasis_store::now_millis(),
    };
    let tmpl = state.ui.templates.get_template(template)?;
    Ok(tmpl.render(context! { ..ctx, ..common })?)
}

/// [`render`] as a 200 response that is never cached (pages carry health and a CSRF token).
pub fn page(
    state: &AppState,
    user: &SessionUser,
    template: &str,
    nav: &str,
    ctx: Value,
) -> Result<Response, UiError> {
    Ok((no_store(), Html(render(state, user, template, nav, ctx)?)).into_response())
}

/// A form shown again with its validation messages: 422 so tests and tools can tell.
pub fn form_page(
    state: &AppState,
    user: &SessionUser,
    template: &str,
    nav: &str,
    ctx: Value,
) -> Result<Response, UiError> {
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        no_store(),
        Html(render(state, user, template, nav, ctx)?),
    )
        .into_response())
}

/// After a successful POST: go to `to` with a GET.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Messages for a form: one per field, shown next to it, plus general ones on top.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct FormErrors {
    /// Field name → message. Serialized into the template as `errors`.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Messages that belong to no field.
    pub general: Vec<String>,
}

impl FormErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields.insert(field.to_string(), message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// A refused write: field-named refusals go next to their field. A failure that is not
    /// the user's (the database is down) is returned as the error to show instead.
    pub fn from_store(e: &StoreError) -> Result<FormErrors, UiError> {
        let mut errors = FormErrors::default();
        let message = match e {
            StoreError::Invalid(v) => v.message.clone(),
            StoreError::Duplicate { entity, value, .. } => {
                format!("another {entity} is already called {value:?}")
            }
            StoreError::MissingReference { entity, id, .. } => {
                format!("{entity} {id} does not exist (it may have just been deleted)")
            }
            StoreError::NotFound { .. } => {
                errors.general.push(e.to_string());
                return Ok(errors);
            }
            other => return Err(UiError::internal(other)),
        };
        match e.field() {
            // Nested fields (`redundancy_groups[0].members`) are shown at their top field.
            Some(f) => errors.add(f.split(['[', '.']).next().unwrap_or(f), message),
            None => errors.general.push(message),
        }
        Ok(errors)
    }
}

/// The delete confirmation page: what goes, and with it everything the store counted.
pub fn confirm_delete(
    state: &AppState,
    user: &SessionUser,
    nav: &str,
    what: &str,
    name: &str,
    impact: &DeleteImpact,
    cancel: &str,
) -> Result<Response, UiError> {
    let items: Vec<(String, i64)> = impact
        .0
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.replace('_', " "), *n))
        .collect();
    page(
        state,
        user,
        "confirm_delete.html",
        nav,
        context! { what, name, items, cancel },
    )
}

async fn configuration(
    user: SessionUser,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Response, UiError> {
    page(
        &state,
        &user,
        "configuration.html",
        "configuration",
        context! {},
    )
}
