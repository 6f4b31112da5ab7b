//! Hosts: the machines running an agent. List, one add/edit form, delete with its impact,
//! and "test connection", which asks the agent for `/ping` through the same pinned HTTPS
//! client the dispatcher uses, so a wrong key or a changed certificate shows here before
//! the first check fails.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use prophasis_model::{Host, ResultType};

use super::{action_errors, action_page_error, actor, form_page, ok_page, FormData};
use crate::dispatch::agent_client::{AgentClient, Timeouts};
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/hosts", get(list))
        .route("/configuration/hosts/new", get(new_form).post(create))
        .route(
            "/configuration/hosts/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/hosts/{id}/delete",
            get(confirm).post(delete),
        )
        .route("/configuration/hosts/{id}/test", post(test))
}

const DEFAULT_PORT: u16 = 4048;

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let mut hosts = state.core.store.list_hosts().await?;
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let hosts: Vec<_> = hosts
        .iter()
        .map(|h| {
            context! { id => h.id, name => &h.name, address => &h.address, port => h.port,
            description => &h.description, enabled => h.enabled,
            fingerprint => &h.tls_fingerprint }
        })
        .collect();
    ok_page(&state, &user, "config/hosts.html", context! { hosts })
}

/// What the form shows: the typed values, never the stored key.
fn values(h: &Host) -> minijinja::Value {
    context! { name => &h.name, address => &h.address, port => h.port.to_string(),
    description => &h.description, enabled => h.enabled }
}

fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    editing: bool,
    values: minijinja::Value,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    form_page(
        state,
        user,
        "config/host_form.html",
        errors,
        context! { action, editing, values },
    )
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let blank = Host {
        id: 0,
        name: String::new(),
        address: String::new(),
        port: DEFAULT_PORT,
        description: String::new(),
        auth_key: String::new(),
        tls_fingerprint: None,
        enabled: true,
    };
    form(
        &state,
        &user,
        "/configuration/hosts/new",
        false,
        values(&blank),
        &FormErrors::default(),
    )
}

/// Reads the form onto `base`; a port that is not a number is reported next to it.
fn read(f: &FormData, base: Host) -> (Host, FormErrors) {
    let mut errors = FormErrors::default();
    let port = match f.get("port").trim().parse::<u16>() {
        Ok(p) => p,
        Err(_) => {
            errors.add(
                "port",
                "must be a number between 1 and 65535 (the agent's default is 4048)",
            );
            base.port
        }
    };
    let host = Host {
        name: f.get("name").to_string(),
        address: f.get("address").trim().to_string(),
        port,
        description: f.get("description").to_string(),
        auth_key: f.get("auth_key").trim().to_string(),
        enabled: f.checked("enabled"),
        ..base
    };
    (host, errors)
}

fn typed(f: &FormData) -> minijinja::Value {
    context! { name => f.get("name"), address => f.get("address"), port => f.get("port"),
    description => f.get("description"), enabled => f.checked("enabled") }
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = FormData::parse(&body);
    let base = Host {
        id: 0,
        name: String::new(),
        address: String::new(),
        port: DEFAULT_PORT,
        description: String::new(),
        auth_key: String::new(),
        tls_fingerprint: None,
        enabled: true,
    };
    let (host, mut errors) = read(&f, base);
    if errors.is_empty() {
        match state.actions.create_host(&actor(&admin), &host).await {
            Ok(_) => return Ok(see_other("/configuration/hosts")),
            Err(e) => errors = action_errors(e)?,
        }
    }
    let action = "/configuration/hosts/new";
    form(&state, &admin.0, action, false, typed(&f), &errors)
}

async fn edit_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let host = state.core.store.get_host(id).await?;
    let action = format!("/configuration/hosts/{id}/edit");
    form(
        &state,
        &user,
        &action,
        true,
        values(&host),
        &FormErrors::default(),
    )
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = FormData::parse(&body);
    let stored = state.core.store.get_host(id).await?;
    // A blank key keeps the stored one (Actions::update_host does the keeping).
    let (host, mut errors) = read(&f, stored);
    if errors.is_empty() {
        match state.actions.update_host(&actor(&admin), &host).await {
            Ok(_) => return Ok(see_other("/configuration/hosts")),
            Err(e) => errors = action_errors(e)?,
        }
    }
    let action = format!("/configuration/hosts/{id}/edit");
    form(&state, &admin.0, &action, true, typed(&f), &errors)
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let host = state.core.store.get_host(id).await?;
    let impact = state
        .actions
        .host_delete_impact(id)
        .await
        .map_err(action_page_error)?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "host",
        &host.name,
        &impact,
        "/configuration/hosts",
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_host(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/hosts"))
}

/// The outcome of "test connection", one line per thing a person checks.
#[derive(Debug, serde::Serialize)]
struct TestOutcome {
    reachable: bool,
    /// `None` when the agent could not be asked (unreachable, certificate refused).
    key_accepted: Option<bool>,
    agent_version: Option<String>,
    facts: Option<prophasis_protocol::api::HostFacts>,
    /// The certificate's fingerprint the agent presented, when it differs from or there
    /// is no pin.
    seen_fingerprint: Option<String>,
    pinned_fingerprint: Option<String>,
    error: Option<String>,
}

/// Short timeouts: a person is waiting for the page.
const TEST_TIMEOUTS: Timeouts = Timeouts {
    connect: std::time::Duration::from_secs(5),
    request: std::time::Duration::from_secs(10),
};

async fn test(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let host = state.core.store.get_host(id).await?;
    let outcome = test_connection(&host).await;
    ok_page(
        &state,
        &user,
        "config/host_test.html",
        context! { host => context! { id => host.id, name => &host.name,
        address => &host.address, port => host.port }, outcome },
    )
}

/// Pings the agent. The learned fingerprint is only shown, not stored: pinning stays the
/// dispatcher's job (trust on first use) or the person's (accepting a new certificate).
async fn test_connection(host: &Host) -> TestOutcome {
    let mut out = TestOutcome {
        reachable: false,
        key_accepted: None,
        agent_version: None,
        facts: None,
        seen_fingerprint: None,
        pinned_fingerprint: host.tls_fingerprint.clone(),
        error: None,
    };
    let client = match AgentClient::new(
        &host.address,
        host.port,
        &host.auth_key,
        host.tls_fingerprint.as_deref(),
        TEST_TIMEOUTS,
    ) {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(e.message);
            return out;
        }
    };
    match client.ping().await {
        Ok(ping) => {
            out.reachable = true;
            out.key_accepted = Some(true);
            out.agent_version = Some(ping.agent_version);
            out.facts = Some(ping.facts);
            out.seen_fingerprint = client.take_learned_fingerprint();
        }
        Err(e) => {
            match e.result_type {
                ResultType::AuthenticationError => {
                    out.reachable = true;
                    out.key_accepted = Some(false);
                    out.seen_fingerprint = client.take_learned_fingerprint();
                }
                ResultType::RequestError | ResultType::CommandUnsuccessful => {
                    out.reachable = true;
                }
                _ => {}
            }
            if e.refused_fingerprint.is_some() {
                out.reachable = true;
                out.seen_fingerprint = e.refused_fingerprint.clone();
            }
            out.error = Some(e.message);
        }
    }
    out
}
