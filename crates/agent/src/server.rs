//! The agent's HTTPS API: routes, authentication, limits and the connection loop.
//!
//! The agent sits on every host, often exposed to networks it does not control, so the
//! server side is defensive by construction: TLS only, every request authenticated
//! before any routing detail leaks, bodies and headers bounded in size and time,
//! connections bounded in number, and all blocking work (installs, collectors, plugin
//! waits) kept off the one async thread so one slow request never holds up another.
//! See docs/agent-api.md for the endpoints.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use prophasis_protocol::api::{ErrorBody, ErrorCode, Ping, PluginList, RunRequest, RunResponse};
use prophasis_protocol::manifest::is_valid_plugin_id;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::auth::{ConnectionAuth, FailureThrottle, KeyVerifier};
use crate::backends::{self, BackendError};
use crate::config::AgentConfig;
use crate::exec::{self, ExecError};
use crate::plugins::{LookupError, PluginStore};

/// Largest `PUT /plugins/{id}` body: a package plus its signature.
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;
/// Largest signature part.
pub const SIGNATURE_LIMIT: usize = 64 * 1024;
/// Largest body of any other request (`POST /plugins/{id}/run`).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Time allowed to send a run request's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to upload a package (32 MiB at ~300 KiB/s).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: AgentConfig,
    verifier: KeyVerifier,
    throttle: FailureThrottle,
    plugins: PluginStore,
    collectors: crate::collectors::Collectors,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the agent's folders: {0}")]
    Folders(String),
}

impl AppState {
    pub fn new(config: AgentConfig) -> Result<AppState, ServeError> {
        config.validate()?;
        let verifier =
            KeyVerifier::new(&config.auth).ok_or_else(|| crate::config::ConfigError::Invalid {
                key: "auth",
                message: "salt or hash is not hex".into(),
            })?;
        crate::setup::prepare_folders(&config).map_err(|e| ServeError::Folders(e.to_string()))?;
        backends::cleanup(&config);
        Ok(AppState {
            inner: Arc::new(Inner {
                plugins: PluginStore::new(config.plugins_dir()),
                config,
                verifier,
                throttle: FailureThrottle::default(),
                collectors: crate::collectors::Collectors::new(),
            }),
        })
    }

    pub fn config(&self) -> &AgentConfig {
        &self.inner.config
    }
}

/// One HTTP error type for every handler: it renders [`ErrorBody`]. For 5xx answers the
/// client gets a generic message and the detail goes to the log.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
    fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            detail.to_string(),
        )
    }
}

/// The HTTP status that goes with each code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::PluginNotFound | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::PluginTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::PluginFailed | ErrorCode::BadOutput => StatusCode::BAD_GATEWAY,
        ErrorCode::SignatureRequired | ErrorCode::SignatureInvalid | ErrorCode::BadPackage => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        ApiError::new(status_of(e.code), e.code, e.message)
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        let code = e.code();
        ApiError::new(status_of(code), code, e.to_string())
    }
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PluginNotFound,
            e.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.status.is_server_error() && self.code == ErrorCode::Internal {
            tracing::error!(code = %self.code, "{}", self.message);
            "internal error; the agent's log has the details".to_string()
        } else {
            self.message
        };
        let mut resp = (self.status, Json(ErrorBody::new(self.code, message))).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The unread rest of the body makes the connection unusable: say so, so the
            // client does not send its next request on it.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// All routes, behind authentication. Used by [`serve`] and by handler tests through
/// `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/plugins", get(list_plugins))
        .route(
            "/plugins/{id}",
            get(get_plugin)
                .put(put_plugin)
                .delete(delete_plugin)
                .layer(axum::extract::DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/plugins/{id}/run", post(run_plugin))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint; see docs/agent-api.md",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "this endpoint does not take that method; see docs/agent-api.md",
    )
}

fn peer_ip(req: &Request) -> IpAddr {
    if let Some(c) = req.extensions().get::<Arc<ConnectionAuth>>() {
        return c.peer().ip();
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// HTTP Basic with user `core` and the agent key. Failures say nothing about why, and an
/// address that keeps failing waits longer and longer before any answer.
async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let connection = req.extensions().get::<Arc<ConnectionAuth>>();
    let header = req.headers().get(header::AUTHORIZATION);
    if let (Some(c), Some(h)) = (connection, header) {
        if c.already_verified(h.as_bytes()) {
            return next.run(req).await;
        }
    }
    let ip = peer_ip(&req);
    let inner = &state.inner;
    let delay = inner.throttle.delay_for(ip);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|h| inner.verifier.verify_header(h.as_bytes()));
    if !ok {
        inner.throttle.record_failure(ip);
        tracing::info!(%ip, "authentication failed");
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "authentication required",
        )
        .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"prophasis-agent\", charset=\"UTF-8\""),
        );
        return resp;
    }
    inner.throttle.record_success(ip);
    if let (Some(c), Some(h)) = (
        req.extensions().get::<Arc<ConnectionAuth>>(),
        req.headers().get(header::AUTHORIZATION),
    ) {
        c.remember(h.as_bytes());
    }
    next.run(req).await
}

fn check_id(id: &str) -> ApiResult<()> {
    if is_valid_plugin_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{id:?} is not a plugin id: ids are reverse-DNS names such as com.example.disk (letters, digits, '_', '-' and dots)"
        )))
    }
}

async fn ping() -> Json<Ping> {
    Json(Ping {
        pong: true,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        facts: crate::facts::collect(),
    })
}

async fn list_plugins(State(state): State<AppState>) -> ApiResult<Json<PluginList>> {
    let st = state.clone();
    let list = tokio::task::spawn_blocking(move || st.inner.plugins.list())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(PluginList {
        plugins: list.iter().map(|p| p.summary()).collect(),
    }))
}

async fn get_plugin(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<prophasis_protocol::api::InstalledPlugin>> {
    check_id(&id)?;
    Ok(Json(state.inner.plugins.get(&id)?.summary()))
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

fn unsupported(expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::BadRequest,
        format!("the body must be sent as {expected}"),
    )
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than {} KiB", limit / 1024),
    )
}

async fn put_plugin(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<prophasis_protocol::api::InstalledPlugin>)> {
    check_id(&id)?;
    if !content_type_is(req.headers(), "multipart/form-data") {
        return Err(unsupported(
            "multipart/form-data with a `package` part and an optional `signature` part",
        ));
    }
    if declared_length(req.headers()).is_some_and(|n| n > UPLOAD_LIMIT as u64) {
        return Err(too_large(UPLOAD_LIMIT));
    }
    let multipart = Multipart::from_request(req, &state)
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (package, signature) = tokio::time::timeout(UPLOAD_TIMEOUT, read_upload(multipart))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::BadRequest,
                "the upload took too long",
            )
        })??;
    let package =
        package.ok_or_else(|| ApiError::bad_request("the multipart body has no `package` part"))?;

    let _guard = state.inner.plugins.write_lock.lock().await;
    let existed = state.inner.plugins.get(&id).is_ok();
    let st = state.clone();
    let id2 = id.clone();
    let manifest = tokio::task::spawn_blocking(move || {
        backends::install_package(&st.inner.config, &package, signature.as_deref(), &id2)
    })
    .await
    .map_err(ApiError::internal)??;
    state.inner.plugins.forget(&id);
    tracing::info!(id = %manifest.id, version = manifest.version, "plugin installed");
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(prophasis_protocol::api::InstalledPlugin {
            id: manifest.id,
            name: manifest.name,
            version: manifest.version,
        }),
    ))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(UPLOAD_LIMIT)
    } else {
        ApiError::bad_request(format!(
            "the multipart body is malformed: {}",
            e.body_text()
        ))
    }
}

async fn read_upload(mut mp: Multipart) -> ApiResult<(Option<Vec<u8>>, Option<Vec<u8>>)> {
    let mut package = None;
    let mut signature = None;
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let (slot, limit) = match field.name() {
            Some("package") => (&mut package, UPLOAD_LIMIT),
            Some("signature") => (&mut signature, SIGNATURE_LIMIT),
            // Unknown parts are read and ignored so newer servers can add some.
            _ => {
                while field.chunk().await.map_err(multipart_error)?.is_some() {}
                continue;
            }
        };
        if slot.is_some() {
            return Err(ApiError::bad_request(format!(
                "the part `{}` appears twice",
                field.name().unwrap_or_default()
            )));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if buf.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&chunk);
        }
        *slot = Some(buf);
    }
    Ok((package, signature))
}

async fn delete_plugin(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    check_id(&id)?;
    let _guard = state.inner.plugins.write_lock.lock().await;
    let st = state.clone();
    let id2 = id.clone();
    let removed =
        tokio::task::spawn_blocking(move || backends::remove_package(&st.inner.config, &id2))
            .await
            .map_err(ApiError::internal)??;
    state.inner.plugins.forget(&id);
    if removed {
        tracing::info!(%id, "plugin removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(LookupError::NotFound(id).into())
    }
}

/// Reads a small body within [`BODY_LIMIT`] and [`BODY_TIMEOUT`].
async fn read_small_body(body: Body) -> ApiResult<Bytes> {
    let collect = async {
        let mut body = body;
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > BODY_LIMIT {
                    return Err(too_large(BODY_LIMIT));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout(BODY_TIMEOUT, collect)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::BadRequest,
                "the request body took too long to arrive",
            )
        })?
}

async fn run_plugin(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Json<RunResponse>> {
    check_id(&id)?;
    let (parts, body) = req.into_parts();
    if declared_length(&parts.headers).is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large(BODY_LIMIT));
    }
    let bytes = read_small_body(body).await?;
    let request = if bytes.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        if !content_type_is(&parts.headers, "application/json") {
            return Err(unsupported("application/json"));
        }
        serde_json::from_slice::<RunRequest>(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not valid JSON of the form {{\"args\": {{...}}}}: {e}"
            ))
        })?
    };

    let plugin = state.inner.plugins.get(&id)?;
    let manifest = plugin.manifest.clone();
    let args = manifest
        .resolve_args(&request.args)
        .map_err(ApiError::bad_request)?;
    exec::validate_arg_names(&args)?;
    let config = &state.inner.config;
    let timeout = exec::effective_timeout(
        &manifest,
        config.default_timeout_secs,
        config.max_timeout_secs,
    );
    let result = if let Some(name) = manifest
        .builtin
        .as_deref()
        .filter(|n| backends::is_instant(n))
    {
        // Reads of /proc that never wait: a hand-off to a worker thread would cost more
        // than the collector itself.
        backends::run_builtin(&state.inner.collectors, name, &args).map_err(ApiError::from)
    } else if let Some(name) = manifest.builtin.clone() {
        let st = state.clone();
        let task = tokio::task::spawn_blocking(move || {
            backends::run_builtin(&st.inner.collectors, &name, &args)
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(joined) => joined.map_err(ApiError::internal)?.map_err(ApiError::from),
            Err(_) => Err(ExecError::Timeout(format!(
                "the built-in collector did not answer within {} s",
                timeout.as_secs_f64()
            ))
            .into()),
        }
    } else {
        exec::run_entry(&plugin.dir, &manifest, &args, timeout)
            .await
            .map_err(ApiError::from)
    };
    if let Err(e) = &result {
        tracing::info!(%id, code = %e.code, "plugin run failed: {}", e.message);
    }
    result.map(Json)
}

/// Serves the API on `listener` until the process ends. See [`serve_with_shutdown`].
pub async fn serve(config: AgentConfig, listener: TcpListener) -> Result<(), ServeError> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Binds the configured listen address.
pub async fn bind(config: &AgentConfig) -> Result<TcpListener, ServeError> {
    let addr = config.listen_addr()?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves HTTPS on `listener` until `shutdown` completes; then open connections finish
/// the request they are serving and are closed, so a stopped agent really is gone for its
/// clients (kept-alive connections would otherwise go on being served). Connections are capped at
/// `max_connections` (more wait in the accept queue); each must finish its TLS handshake
/// and each request's headers within `header_timeout_secs`, which is also how long an
/// idle kept-alive connection is kept.
pub async fn serve_with_shutdown(
    config: AgentConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let tls = crate::tls::server_config(&config.tls_cert, &config.tls_key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let header_timeout = Duration::from_secs_f64(config.header_timeout_secs);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let state = AppState::new(config)?;
    let app = router(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);

    let (stop_connections, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let http = http.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = Arc::new(ConnectionAuth::new(peer));
            let svc = app.map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(connection.clone());
                req
            });
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let conn = http.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    let _ = stop_connections.send(true);
    Ok(())
}
