//! Custom dashboards: a user names a page and lists its panels, in order — a host and
//! plugin graph, a service's health, a check's status grid, the current problems — and
//! everyone can open it. Its creator or an administrator may change or delete it.
//!
//! Panels are edited as text, one per line (`graph <host> <plugin>`, `service <name>`,
//! `check <name>`, `problems`), so the form works without JavaScript, reorders by moving
//! lines, and each wrong line gets a message next to the field; `app.js` adds pickers that
//! append lines. They are stored by id (renaming a host keeps its panels) in the layout
//! JSON `{"panels": [{"kind": "graph", "host": 3, "plugin": "cpu_load"}, …]}`.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use minijinja::{context, Value};
use prophasis_model::Health;
use prophasis_store::{now_millis, Dashboard, StoreError};
use serde::{Deserialize, Serialize};

use super::reports::check_grid;
use super::session::SessionUser;
use super::{confirm_delete, form_page, page, see_other, FormErrors, UiError};
use crate::catalog::Catalog;
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboards", get(list))
        .route("/dashboards/new", get(new_form).post(create))
        .route("/dashboards/{id}", get(show))
        .route("/dashboards/{id}/edit", get(edit_form).post(update))
        .route("/dashboards/{id}/delete", get(confirm).post(delete))
}

/// Panels one dashboard may hold.
pub const MAX_PANELS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Panel {
    Graph { host: i64, plugin: String },
    Service { service: i64 },
    Check { check: i64 },
    Problems,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Layout {
    #[serde(default)]
    pub panels: Vec<Panel>,
}

/// Reads the panel lines; every wrong line is reported (by number) under `panels`.
pub fn parse_panels(catalog: &Catalog, text: &str) -> Result<Vec<Panel>, String> {
    let mut panels = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let n = i + 1;
        let panel = match kind {
            "problems" => Ok(Panel::Problems),
            "graph" => match rest.rsplit_once(char::is_whitespace) {
                Some((host, plugin)) => {
                    let host = host.trim();
                    match catalog.hosts.values().find(|h| h.name == host) {
                        Some(h) if catalog.plugins.contains_key(plugin) => Ok(Panel::Graph {
                            host: h.id,
                            plugin: plugin.to_string(),
                        }),
                        Some(_) => Err(format!("line {n}: there is no plugin {plugin:?}")),
                        None => Err(format!("line {n}: there is no host called {host:?}")),
                    }
                }
                None => Err(format!(
                    "line {n}: write graph, the host's name and the plugin id"
                )),
            },
            "service" => catalog
                .services
                .iter()
                .find(|s| s.name == rest)
                .map(|s| Panel::Service { service: s.id })
                .ok_or_else(|| format!("line {n}: there is no service called {rest:?}")),
            "check" => catalog
                .checks
                .values()
                .find(|c| c.name == rest)
                .map(|c| Panel::Check { check: c.id })
                .ok_or_else(|| format!("line {n}: there is no check called {rest:?}")),
            other => Err(format!(
                "line {n}: {other:?} is not a panel; use graph, service, check or problems"
            )),
        };
        match panel {
            Ok(p) => panels.push(p),
            Err(e) => problems.push(e),
        }
    }
    if panels.len() > MAX_PANELS {
        problems.push(format!("at most {MAX_PANELS} panels"));
    }
    if problems.is_empty() {
        Ok(panels)
    } else {
        Err(problems.join("; "))
    }
}

/// The panel lines of a stored layout (names of things since deleted become comments the
/// parser refuses, so the user sees what went).
pub fn panel_lines(catalog: &Catalog, panels: &[Panel]) -> String {
    panels
        .iter()
        .map(|p| match p {
            Panel::Problems => "problems".to_string(),
            Panel::Graph { host, plugin } => format!(
                "graph {} {plugin}",
                catalog
                    .hosts
                    .get(host)
                    .map(|h| h.name.clone())
                    .unwrap_or_else(|| format!("(deleted host {host})"))
            ),
            Panel::Service { service } => format!(
                "service {}",
                catalog
                    .services
                    .iter()
                    .find(|s| s.id == *service)
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| format!("(deleted service {service})"))
            ),
            Panel::Check { check } => format!(
                "check {}",
                catalog
                    .checks
                    .get(check)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| format!("(deleted check {check})"))
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn layout_of(d: &Dashboard) -> Layout {
    serde_json::from_value(d.layout.clone()).unwrap_or_default()
}

fn may_change(user: &SessionUser, d: &Dashboard) -> bool {
    user.is_admin() || d.owner_id == Some(user.id)
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let dashboards: Vec<Value> = state
        .core
        .store
        .list_dashboards()
        .await?
        .iter()
        .map(|d| {
            context! { id => d.id, name => &d.name, panels => layout_of(d).panels.len(),
            updated => d.updated, mine => may_change(&user, d) }
        })
        .collect();
    page(
        &state,
        &user,
        "dashboards.html",
        "dashboards",
        context! { dashboards },
    )
}

/// Choices for the panel pickers of the form.
fn pickers(catalog: &Catalog) -> Value {
    let mut hosts: Vec<(String, Vec<String>)> = catalog
        .hosts
        .values()
        .map(|h| {
            let mut ps: Vec<String> = catalog.topology.host_plugins(h.id).cloned().collect();
            ps.sort();
            (h.name.clone(), ps)
        })
        .collect();
    hosts.sort();
    let mut services: Vec<String> = catalog.services.iter().map(|s| s.name.clone()).collect();
    services.sort();
    let mut checks: Vec<String> = catalog.checks.values().map(|c| c.name.clone()).collect();
    checks.sort();
    context! { hosts, services, checks }
}

fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    name: &str,
    panels: &str,
    errors: &FormErrors,
    ok: bool,
) -> Result<Response, UiError> {
    let catalog = state.core.current_catalog();
    let ctx = context! {
        action,
        values => context! { name, panels },
        errors => &errors.fields,
        general => &errors.general,
        pickers => pickers(&catalog),
    };
    if ok {
        page(state, user, "dashboard_form.html", "dashboards", ctx)
    } else {
        form_page(state, user, "dashboard_form.html", "dashboards", ctx)
    }
}

async fn new_form(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    form(
        &state,
        &user,
        "/dashboards/new",
        "",
        "problems",
        &FormErrors::default(),
        true,
    )
}

#[derive(Debug, Deserialize)]
struct DashboardForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    panels: String,
}

/// Validates the form; on success the dashboard to write, else the messages.
fn read_form(
    state: &AppState,
    f: &DashboardForm,
    base: Dashboard,
) -> Result<Dashboard, FormErrors> {
    let mut errors = FormErrors::default();
    let catalog = state.core.current_catalog();
    let panels = match parse_panels(&catalog, &f.panels) {
        Ok(p) if p.is_empty() => {
            errors.add("panels", "add at least one panel");
            Vec::new()
        }
        Ok(p) => p,
        Err(e) => {
            errors.add("panels", e);
            Vec::new()
        }
    };
    if f.name.trim().is_empty() {
        errors.add("name", "a dashboard needs a name");
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Dashboard {
        name: f.name.clone(),
        layout: serde_json::to_value(Layout { panels }).expect("layouts serialize"),
        updated: now_millis(),
        ..base
    })
}

async fn save(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    f: &DashboardForm,
    base: Dashboard,
) -> Result<Response, UiError> {
    let creating = base.id == 0;
    let d = match read_form(state, f, base) {
        Ok(d) => d,
        Err(errors) => return form(state, user, action, &f.name, &f.panels, &errors, false),
    };
    let written: Result<i64, StoreError> = if creating {
        state.core.store.create_dashboard(&d).await
    } else {
        state.core.store.update_dashboard(&d).await.map(|_| d.id)
    };
    match written {
        Ok(id) => Ok(see_other(&format!("/dashboards/{id}"))),
        Err(e) => {
            let errors = FormErrors::from_store(&e)?;
            form(state, user, action, &f.name, &f.panels, &errors, false)
        }
    }
}

async fn create(
    user: SessionUser,
    State(state): State<AppState>,
    Form(f): Form<DashboardForm>,
) -> Result<Response, UiError> {
    let base = Dashboard {
        id: 0,
        name: String::new(),
        owner_id: Some(user.id),
        layout: serde_json::Value::Null,
        updated: 0,
    };
    save(&state, &user, "/dashboards/new", &f, base).await
}

async fn changeable(state: &AppState, user: &SessionUser, id: i64) -> Result<Dashboard, UiError> {
    let d = state.core.store.get_dashboard(id).await?;
    if may_change(user, &d) {
        Ok(d)
    } else {
        Err(UiError::Refused(
            "Only the user who made this dashboard, or an administrator, may change it.".into(),
        ))
    }
}

async fn edit_form(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let d = changeable(&state, &user, id).await?;
    let catalog = state.core.current_catalog();
    let lines = panel_lines(&catalog, &layout_of(&d).panels);
    form(
        &state,
        &user,
        &format!("/dashboards/{id}/edit"),
        &d.name,
        &lines,
        &FormErrors::default(),
        true,
    )
}

async fn update(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Form(f): Form<DashboardForm>,
) -> Result<Response, UiError> {
    let d = changeable(&state, &user, id).await?;
    save(&state, &user, &format!("/dashboards/{id}/edit"), &f, d).await
}

async fn confirm(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let d = changeable(&state, &user, id).await?;
    confirm_delete(
        &state,
        &user,
        "dashboards",
        "dashboard",
        &d.name,
        &Default::default(),
        &format!("/dashboards/{id}"),
    )
}

async fn delete(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    changeable(&state, &user, id).await?;
    state.core.store.delete_dashboard(id).await?;
    Ok(see_other("/dashboards"))
}

async fn show(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let d = state.core.store.get_dashboard(id).await?;
    let catalog = state.core.current_catalog();
    let (hh, sh) = {
        let h = state.core.health.read().expect("health lock");
        (h.snapshot().hosts.clone(), h.snapshot().services.clone())
    };
    let mut panels = Vec::new();
    for p in layout_of(&d).panels {
        panels.push(match p {
            Panel::Problems => {
                let mut problems: Vec<Value> = super::reports::host_rows(&catalog, &hh)
                    .into_iter()
                    .filter(|r| !matches!(r.health, Health::Ok | Health::NoData))
                    .map(|r| context! { kind => "host", ..Value::from_serialize(&r) })
                    .collect();
                problems.extend(
                    catalog
                        .services
                        .iter()
                        .map(|s| (s, sh.get(&s.id).copied().unwrap_or(Health::NoData)))
                        .filter(|(_, h)| !matches!(h, Health::Ok | Health::NoData))
                        .map(|(s, h)| {
                            context! { kind => "service", id => s.id, name => &s.name, health => h }
                        }),
                );
                context! { kind => "problems", problems }
            }
            Panel::Graph { host, plugin } => context! {
                kind => "graph",
                host => host,
                host_name => catalog.hosts.get(&host).map(|h| h.name.clone()),
                host_health => hh.get(&host).copied().unwrap_or(Health::NoData),
                plugin_name => catalog.plugins.get(&plugin).map(|p| p.name.clone()).unwrap_or_else(|| plugin.clone()),
                view => catalog.plugins.get(&plugin).map(|p| p.view.clone()),
                plugin,
            },
            Panel::Service { service } => {
                let s = catalog.services.iter().find(|s| s.id == service);
                context! {
                    kind => "service",
                    id => service,
                    name => s.map(|s| s.name.clone()),
                    description => s.map(|s| s.description.clone()),
                    health => sh.get(&service).copied().unwrap_or(Health::NoData),
                }
            }
            Panel::Check { check } => match check_grid(&state, check).await {
                Ok(grid) => context! { kind => "check", grid },
                Err(UiError::NotFound(_)) => context! { kind => "missing", what => "check" },
                Err(e) => return Err(e),
            },
        });
    }
    page(
        &state,
        &user,
        "dashboard.html",
        "dashboards",
        context! {
            dashboard => context! { id => d.id, name => &d.name, updated => d.updated },
            may_change => may_change(&user, &d),
            panels,
        },
    )
}
