//! The agent API as a virtual agent answers it: routing, auth, and the scripted runs.
//!
//! Shapes and error codes are the real agent's (`prophasis_protocol::api`), so the
//! server's client code is exercised as it is in production; what happens behind a run
//! is scripted instead of executing a plugin. Written directly on hyper (no router) to
//! keep the cost per request small: at 10,000 requests/s on two shared cores every
//! allocation shows.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use prophasis_protocol::api::{ErrorBody, ErrorCode, InstalledPlugin, PluginList, RunRequest};
use prophasis_protocol::manifest::is_valid_plugin_id;
use rand::Rng;

use crate::agent::{next_value, AgentState, InFlight};

type Resp = Response<Full<Bytes>>;

/// The largest run request body read; runs carry a small `args` object.
const MAX_RUN_BODY: usize = 1024 * 1024;
/// The largest install request read: a package plus its signature.
const MAX_INSTALL_BODY: usize = 64 * 1024 * 1024;

static JSON: HeaderValue = HeaderValue::from_static("application/json");

pub(crate) async fn handle(
    agent: Arc<AgentState>,
    started: Instant,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let c = &agent.counters;
    c.requests.fetch_add(1, Relaxed);
    let _in_flight = InFlight::enter(&c.in_flight, &c.max_in_flight);
    let behaviour = agent.behaviour();
    if behaviour.freeze {
        std::future::pending::<()>().await;
    }
    if behaviour.reject_key || !agent.authorized(req.headers().get(AUTHORIZATION)) {
        c.unauthorized.fetch_add(1, Relaxed);
        return Ok(status_only(StatusCode::UNAUTHORIZED));
    }

    let path = req.uri().path();
    let rest = path.strip_prefix("/plugins");
    let resp = match (req.method(), path, rest) {
        (&Method::GET, "/ping", _) => json(StatusCode::OK, agent.ping_body.clone()),
        (&Method::GET, _, Some("") | Some("/")) => list(&agent),
        (_, _, Some(rest)) if rest.starts_with('/') => {
            let rest = &rest[1..];
            let (id, action) = match rest.split_once('/') {
                Some((id, action)) => (id, Some(action)),
                None => (rest, None),
            };
            if !is_valid_plugin_id(id) {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "the plugin id is not a reverse-DNS id",
                ));
            }
            let id = id.to_string();
            match (req.method().clone(), action) {
                (Method::GET, None) => get_plugin(&agent, &id),
                (Method::PUT, None) => install(&agent, &id, req).await,
                (Method::DELETE, None) => remove(&agent, &id),
                (Method::POST, Some("run")) => run(&agent, started, &id, req).await,
                (_, None | Some("run")) => method_not_allowed(),
                _ => not_found(),
            }
        }
        (_, "/ping" | "/plugins", _) => method_not_allowed(),
        _ => not_found(),
    };
    Ok(resp)
}

async fn run(agent: &AgentState, started: Instant, id: &str, req: Request<Incoming>) -> Resp {
    let c = &agent.counters;
    let _in_flight = InFlight::enter(&c.runs_in_flight, &c.max_runs_in_flight);
    let body = match Limited::new(req.into_body(), MAX_RUN_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the run request body is too large or was cut off",
            )
        }
    };
    if !body.is_empty() {
        if let Err(e) = serde_json::from_slice::<RunRequest>(&body) {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("the run request body is not {{\"args\": {{…}}}}: {e}"),
            );
        }
    }
    let behaviour = agent.behaviour();
    // Decide everything in one synchronous block: the lock and the thread-local RNG must
    // not be held across an await.
    let (value, latency, hang, fail) = {
        let mut rng = rand::thread_rng();
        let mut plugins = agent.plugins.lock().expect("plugins lock");
        let state = match plugins.get_mut(id) {
            Some(s) if s.installed.is_some() || behaviour.run_uninstalled => s,
            None if behaviour.run_uninstalled => plugins.entry(id.to_string()).or_default(),
            _ => {
                drop(plugins);
                c.runs_not_found.fetch_add(1, Relaxed);
                return plugin_not_found();
            }
        };
        state.runs += 1;
        let value = next_value(
            behaviour.values_for(id),
            state,
            agent.index,
            started.elapsed().as_secs_f64(),
            &mut rng,
        );
        drop(plugins);
        let latency = behaviour.latency.sample(&mut rng);
        let hang = behaviour.hang_rate > 0.0 && rng.gen_bool(behaviour.hang_rate);
        let fail = behaviour
            .error
            .filter(|e| e.rate > 0.0 && rng.gen_bool(e.rate));
        (value, latency, hang, fail)
    };
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    if hang {
        c.hangs.fetch_add(1, Relaxed);
        std::future::pending::<()>().await;
    }
    if let Some(e) = fail {
        c.errors_injected.fetch_add(1, Relaxed);
        let status = match e.code {
            ErrorCode::PluginNotFound | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::PluginTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::BadOutput => StatusCode::BAD_GATEWAY,
            ErrorCode::BadRequest | ErrorCode::BadPackage => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        return error(status, e.code, "injected by the simulator");
    }
    // Assembled into one buffer: a non-finite value (a sine gone wrong) must become null,
    // not a serialisation error.
    let mut out = Vec::with_capacity(48 + behaviour.message.len());
    out.extend_from_slice(b"{\"value\":");
    match value {
        Some(v) if v.is_finite() => serde_json::to_writer(&mut out, &v).expect("writing to a Vec"),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"message\":");
    serde_json::to_writer(&mut out, &behaviour.message).expect("writing to a Vec");
    out.push(b'}');
    json(StatusCode::OK, Bytes::from(out))
}

async fn install(agent: &AgentState, id: &str, req: Request<Incoming>) -> Resp {
    let bad = |m: String| error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, &m);
    let boundary = match req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(multer::parse_boundary)
    {
        Some(Ok(b)) => b,
        _ => return bad("the install request must be multipart/form-data".into()),
    };
    let body = match Limited::new(req.into_body(), MAX_INSTALL_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the package is too large or the upload was cut off",
            )
        }
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut package, mut signature) = (None, None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().map(str::to_owned);
                let data = match field.bytes().await {
                    Ok(d) => d,
                    Err(e) => return bad(format!("the multipart body is malformed: {e}")),
                };
                match name.as_deref() {
                    Some("package") => package = Some(data),
                    Some("signature") => signature = Some(data),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return bad(format!("the multipart body is malformed: {e}")),
        }
    }
    let Some(package) = package else {
        return bad("the install request has no `package` part".into());
    };
    // Decompressing a package is CPU work; keep it off the threads serving other agents.
    let manifest =
        tokio::task::spawn_blocking(move || prophasis_protocol::package::read_manifest(&package))
            .await;
    let manifest = match manifest {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadPackage,
                &e.to_string(),
            )
        }
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "reading the package failed",
            )
        }
    };
    if manifest.id != id {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadPackage,
            &format!(
                "the package is plugin {:?} but was sent to /plugins/{id}",
                manifest.id
            ),
        );
    }
    let plugin = InstalledPlugin {
        id: manifest.id,
        name: manifest.name,
        version: manifest.version,
    };
    let body = serde_json::to_vec(&plugin).expect("plugin serialises");
    agent.install(plugin);
    let c = &agent.counters;
    c.installs.fetch_add(1, Relaxed);
    if signature.is_some() {
        c.signed_installs.fetch_add(1, Relaxed);
    }
    json(StatusCode::OK, Bytes::from(body))
}

fn list(agent: &AgentState) -> Resp {
    let mut plugins: Vec<InstalledPlugin> = agent
        .plugins
        .lock()
        .expect("plugins lock")
        .values()
        .filter_map(|p| p.installed.clone())
        .collect();
    plugins.sort_by(|a, b| a.id.cmp(&b.id));
    let body = serde_json::to_vec(&PluginList { plugins }).expect("list serialises");
    json(StatusCode::OK, Bytes::from(body))
}

fn get_plugin(agent: &AgentState, id: &str) -> Resp {
    let plugins = agent.plugins.lock().expect("plugins lock");
    match plugins.get(id).and_then(|p| p.installed.as_ref()) {
        Some(p) => json(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(p).expect("plugin serialises")),
        ),
        None => plugin_not_found(),
    }
}

fn remove(agent: &AgentState, id: &str) -> Resp {
    let mut plugins = agent.plugins.lock().expect("plugins lock");
    match plugins.get_mut(id).and_then(|p| p.installed.take()) {
        Some(p) => json(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(&p).expect("plugin serialises")),
        ),
        None => plugin_not_found(),
    }
}

fn plugin_not_found() -> Resp {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::PluginNotFound,
        "no plugin with that id is installed",
    )
}

fn not_found() -> Resp {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint: see docs/agent-api.md",
    )
}

fn method_not_allowed() -> Resp {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "that method is not allowed on this endpoint",
    )
}

fn status_only(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn json(status: StatusCode, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON.clone());
    r
}

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Resp {
    let body = serde_json::to_vec(&ErrorBody::new(code, message)).expect("error serialises");
    json(status, Bytes::from(body))
}
