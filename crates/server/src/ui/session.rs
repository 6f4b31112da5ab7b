//! Who is using the web UI: login and logout, the session cookie, CSRF tokens, login
//! throttling, and the extractors handlers use to require a user ([`SessionUser`]) or an
//! administrator ([`Admin`]).
//!
//! A session id is 32 random bytes that exist only in the browser's cookie (HttpOnly,
//! SameSite=Lax, `Secure` over TLS); the database keeps its SHA-256, the user and a
//! per-session CSRF token. Sessions expire after [`SESSION_TTL`] without use and are
//! renewed (sliding) while used. Passwords are checked by the API's argon2 code
//! ([`crate::web::auth::authenticate`]), which also equalises timing for unknown names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use prophasis_model::{Role, UserId};
use prophasis_store::{now_millis, WebSession};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{error_page, FormErrors, UiError};
use crate::web::{AppState, MAX_BODY};

/// The cookie holding the session id.
pub const COOKIE: &str = "prophasis_session";
/// A session unused for this long is logged out.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// A used session's expiry is pushed forward at most this often (one write per interval).
const RENEW_EVERY: Duration = Duration::from_secs(60);
/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A logged-in user of the UI, with their session's CSRF token.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub csrf_token: String,
    /// SHA-256 (hex) of the session id.
    pub session_hash: String,
}

impl SessionUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A logged-in administrator: extracting it refuses viewers with the 403 page.
#[derive(Debug, Clone)]
pub struct Admin(pub SessionUser);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn session_cookie(state: &AppState, id: &str, max_age: Duration) -> HeaderValue {
    let secure = if state.ui.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    ))
    .expect("hex ids make a valid header")
}

fn cookie_value(parts: &axum::http::HeaderMap) -> Option<&str> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Finds the session of a request and enforces CSRF on everything that is not a GET.
///
/// Runs around every route (UI and API): it resolves the cookie once and leaves the user
/// in the request's extensions for [`SessionUser`]. The JSON API under `/api/` ignores
/// cookies (HTTP Basic), so only the UI's unsafe requests need the token; a request
/// without a valid session passes and meets the handler's own login redirect.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(id) = cookie_value(req.headers()).map(str::to_string) else {
        return next.run(req).await;
    };
    let hash = hash_id(&id);
    let now = now_millis();
    let session = match state.core.store.get_web_session(&hash, now).await {
        Ok(s) => s,
        Err(e) => return UiError::internal(format!("reading the session: {e}")).into_response(),
    };
    let Some(session) = session else {
        return next.run(req).await;
    };
    let user = match state.core.store.get_user(session.user_id).await {
        Ok(u) => u,
        Err(e) => {
            return UiError::internal(format!("reading the session's user: {e}")).into_response()
        }
    };
    let user = SessionUser {
        id: user.id,
        name: user.name,
        role: user.role,
        csrf_token: session.csrf_token.clone(),
        session_hash: hash.clone(),
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut req = req;
    if unsafe_method && !req.uri().path().starts_with("/api/") {
        match check_csrf(req, &user.csrf_token).await {
            Ok(r) => req = r,
            Err(refusal) => return refusal,
        }
    }
    let ttl = SESSION_TTL.as_millis() as i64;
    let renew = session.expires - now < ttl - RENEW_EVERY.as_millis() as i64;
    if renew {
        if let Err(e) = state.core.store.renew_web_session(&hash, now + ttl).await {
            tracing::warn!("could not renew a web session: {e}");
        }
    }
    req.extensions_mut().insert(Arc::new(user));
    let mut resp = next.run(req).await;
    if renew && !resp.headers().contains_key(header::SET_COOKIE) {
        resp.headers_mut()
            .append(header::SET_COOKIE, session_cookie(&state, &id, SESSION_TTL));
    }
    resp
}

fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This request did not carry the security token of your session (it may come from another site, or from a page opened before you logged in again). Go back, reload the page and try again.",
    )
}

/// Checks the `X-CSRF-Token` header or the `csrf_token` form field (URL-encoded or
/// multipart); hands the request back intact when it matches.
async fn check_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    let matches = |given: &[u8]| bool::from(given.ct_eq(expected.as_bytes()));
    if let Some(h) = req.headers().get(CSRF_HEADER) {
        return if matches(h.as_bytes()) {
            Ok(req)
        } else {
            Err(csrf_refused())
        };
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return Err(error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form sent more data than the server accepts.",
            ))
        }
    };
    let token = if content_type.starts_with("application/x-www-form-urlencoded") {
        form_field(&bytes, CSRF_FIELD)
    } else if content_type.starts_with("multipart/form-data") {
        multipart_field(&bytes, CSRF_FIELD)
    } else {
        None
    };
    match token {
        Some(t) if matches(t) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(csrf_refused()),
    }
}

/// The raw value of a URL-encoded field (tokens are hex, so no decoding is needed).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let eq = pair.iter().position(|b| *b == b'=')?;
        (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
    })
}

/// The value of a small text part of a multipart body.
fn multipart_field<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let marker = format!("name=\"{name}\"");
    let at = find(body, marker.as_bytes())? + marker.len();
    let start = at + find(&body[at..], b"\r\n\r\n")? + 4;
    let len = find(&body[start..], b"\r\n")?;
    Some(&body[start..start + len])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where a visitor goes after logging in: only paths on this site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// Percent-encodes a path for the `next` query parameter.
fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        match parts.extensions.get::<Arc<SessionUser>>() {
            Some(u) => Ok((**u).clone()),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                // The live endpoint is polled by scripts: tell them plainly.
                if parts.uri.path().starts_with("/ui/api/") {
                    return Err((StatusCode::UNAUTHORIZED, "log in again").into_response());
                }
                Err(Redirect::to(&format!("/login?next={}", encode_query(next))).into_response())
            }
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let user = SessionUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Admin(user))
        } else {
            Err(UiError::Forbidden.into_response())
        }
    }
}

// --- Login throttling ------------------------------------------------------------------

/// Failed logins counted within this window.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed per user name within the window before logins to it are refused.
pub const MAX_FAILURES_PER_NAME: usize = 5;
/// Failures allowed per client address within the window.
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
/// Keys kept at most; beyond, the oldest failures are forgotten first.
const MAX_KEYS: usize = 50_000;

/// Counts failed logins per user name and per client address.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Throttle {
    fn keys(name: &str, addr: Option<SocketAddr>) -> [(String, usize); 2] {
        [
            (
                format!("name:{}", name.to_lowercase()),
                MAX_FAILURES_PER_NAME,
            ),
            (
                format!(
                    "addr:{}",
                    addr.map(|a| a.ip().to_string()).unwrap_or_default()
                ),
                MAX_FAILURES_PER_ADDRESS,
            ),
        ]
    }

    /// How long until a login for this name from this address may be tried again.
    pub fn refused_for(&self, name: &str, addr: Option<SocketAddr>) -> Option<Duration> {
        let map = self.failures.lock().expect("throttle lock");
        Self::keys(name, addr)
            .iter()
            .filter_map(|(k, max)| {
                let recent: Vec<&Instant> = map
                    .get(k)?
                    .iter()
                    .filter(|t| t.elapsed() < THROTTLE_WINDOW)
                    .collect();
                (recent.len() >= *max)
                    .then(|| THROTTLE_WINDOW.saturating_sub(recent[recent.len() - max].elapsed()))
            })
            .max()
    }

    pub fn record_failure(&self, name: &str, addr: Option<SocketAddr>) {
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() >= MAX_KEYS {
            map.retain(|_, ts| ts.iter().any(|t| t.elapsed() < THROTTLE_WINDOW));
            if map.len() >= MAX_KEYS {
                map.retain(|k, _| k.starts_with("addr:"));
            }
        }
        for (k, max) in Self::keys(name, addr) {
            let ts = map.entry(k).or_default();
            ts.retain(|t| t.elapsed() < THROTTLE_WINDOW);
            ts.push(Instant::now());
            if ts.len() > max {
                ts.remove(0);
            }
        }
    }

    /// A successful login forgets the name's failures (not the address's).
    pub fn record_success(&self, name: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&format!("name:{}", name.to_lowercase()));
    }
}

// --- Pages -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    name: &str,
    next: &str,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let html = state
        .ui
        .templates
        .get_template("login.html")?
        .render(context! {
            values => context! { name },
            next,
            errors => &errors.fields,
            general => &errors.general,
        })?;
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

async fn login_page(
    State(state): State<AppState>,
    user: Option<axum::Extension<Arc<SessionUser>>>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Result<Response, UiError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    login_form(&state, StatusCode::OK, "", &next, &FormErrors::default())
}

async fn login(State(state): State<AppState>, req: Request) -> Result<Response, UiError> {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Form(form) = Form::<LoginForm>::from_request(req, &state)
        .await
        .map_err(|e| UiError::BadRequest(e.body_text()))?;
    let next = safe_next(form.next.as_deref());
    let name = form.name.trim();
    let mut errors = FormErrors::default();
    if name.is_empty() {
        errors.add("name", "enter your user name");
    }
    if form.password.is_empty() {
        errors.add("password", "enter your password");
    }
    if !errors.is_empty() {
        return login_form(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            name,
            &next,
            &errors,
        );
    }
    if let Some(wait) = state.ui.throttle.refused_for(name, addr) {
        errors.general.push(format!(
            "Too many failed logins. Try again in {} minutes, or ask an administrator to reset the password.",
            wait.as_secs().div_ceil(60).max(1)
        ));
        return login_form(&state, StatusCode::TOO_MANY_REQUESTS, name, &next, &errors);
    }
    let user = match crate::web::auth::authenticate(&state, name, &form.password).await {
        Ok(u) => u,
        Err(_) => {
            state.ui.throttle.record_failure(name, addr);
            errors
                .general
                .push("Wrong user name or password.".to_string());
            return login_form(&state, StatusCode::UNAUTHORIZED, name, &next, &errors);
        }
    };
    state.ui.throttle.record_success(name);
    let now = now_millis();
    let _ = state.core.store.delete_expired_web_sessions(now).await;
    let id = random_token();
    state
        .core
        .store
        .create_web_session(&WebSession {
            id_hash: hash_id(&id),
            user_id: user.id,
            csrf_token: random_token(),
            created: now,
            expires: now + SESSION_TTL.as_millis() as i64,
        })
        .await?;
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, &id, SESSION_TTL));
    Ok(resp)
}

async fn logout(State(state): State<AppState>, user: SessionUser) -> Result<Response, UiError> {
    state
        .core
        .store
        .delete_web_session(&user.session_hash)
        .await?;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, "", Duration::ZERO),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_fields_are_found_in_both_encodings() {
        assert_eq!(
            form_field(b"a=1&csrf_token=abc&b=2", "csrf_token"),
            Some(&b"abc"[..])
        );
        assert_eq!(form_field(b"xcsrf_token=abc", "csrf_token"), None);
        let mp =
            b"--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nfeed\r\n--x--\r\n";
        assert_eq!(multipart_field(mp, "csrf_token"), Some(&b"feed"[..]));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/hosts/3?range=1h")), "/hosts/3?range=1h");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(encode_query("/hosts?q=a b"), "/hosts%3Fq%3Da%20b");
    }

    #[test]
    fn throttle_counts_per_name_and_address() {
        let t = Throttle::default();
        let a: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:5000".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_NAME {
            assert!(t.refused_for("alice", Some(a)).is_none());
            t.record_failure("Alice", Some(a));
        }
        assert!(t.refused_for("alice", Some(b)).is_some(), "per name");
        assert!(t.refused_for("bob", Some(b)).is_none());
        t.record_success("alice");
        assert!(t.refused_for("alice", Some(b)).is_none());
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.record_failure(&format!("user{i}"), Some(b));
        }
        assert!(t.refused_for("carol", Some(b)).is_some(), "per address");
        assert!(t.refused_for("carol", Some(a)).is_none());
    }
}
