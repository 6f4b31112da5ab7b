//! Checks: which plugins run on which hosts and host groups, with per-plugin arguments as
//! key/value rows. The arguments each plugin's manifest declares are shown as hints so a
//! person does not need to open the package to know what `mount` means.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use prophasis_model::Check;

use super::{
    action_errors, action_page_error, actor, choices, form_page, names, ok_page, FormData,
};
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/checks", get(list))
        .route("/configuration/checks/new", get(new_form).post(create))
        .route(
            "/configuration/checks/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/checks/{id}/delete",
            get(confirm).post(delete),
        )
}

/// Blank argument rows offered below the filled ones, to add arguments without script.
const BLANK_ARG_ROWS: usize = 3;

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let store = &state.core.store;
    let hosts = names(&store.list_hosts().await?, |h| h.id, |h| &h.name);
    let groups = names(&store.list_host_groups().await?, |g| g.id, |g| &g.name);
    let mut checks = store.list_checks().await?;
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    let checks: Vec<Value> = checks
        .iter()
        .map(|c| {
            let on: Vec<String> = c
                .hosts
                .iter()
                .filter_map(|id| hosts.get(id).cloned())
                .chain(
                    c.host_groups
                        .iter()
                        .filter_map(|id| groups.get(id).map(|g| format!("{g} (group)"))),
                )
                .collect();
            context! { id => c.id, name => &c.name, description => &c.description, on,
            plugins => &c.plugins }
        })
        .collect();
    ok_page(&state, &user, "config/checks.html", context! { checks })
}

/// An argument's value as a person types it: strings bare, anything else as JSON.
fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A typed value: numbers and true/false become JSON, everything else a string, because
/// agents read `"5"` and `5` differently only where a plugin asks for a number.
fn typed_value(s: &str) -> serde_json::Value {
    let t = s.trim();
    match serde_json::from_str::<serde_json::Value>(t) {
        Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v,
        _ => serde_json::Value::String(s.to_string()),
    }
}

struct ArgRow {
    plugin: String,
    key: String,
    value: String,
}

async fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    check: &Check,
    rows: &[ArgRow],
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let store = &state.core.store;
    let hosts = names(&store.list_hosts().await?, |h| h.id, |h| &h.name);
    let groups = names(&store.list_host_groups().await?, |g| g.id, |g| &g.name);
    let mut plugins = store.list_plugins().await?;
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    let plugin_choices: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let args: Vec<Value> = p
                .manifest
                .get("args")
                .and_then(|a| a.as_object())
                .map(|a| {
                    a.iter()
                        .map(|(k, spec)| {
                            context! { key => k,
                            description => spec.get("description").and_then(|d| d.as_str()).unwrap_or(""),
                            default => spec.get("default").map(shown) }
                        })
                        .collect()
                })
                .unwrap_or_default();
            context! { id => &p.id, name => &p.name, selected => check.plugins.contains(&p.id), args }
        })
        .collect();
    let mut arg_rows: Vec<Value> = rows
        .iter()
        .map(|r| context! { plugin => &r.plugin, key => &r.key, value => &r.value })
        .collect();
    arg_rows.extend((0..BLANK_ARG_ROWS).map(|_| context! { plugin => "", key => "", value => "" }));
    form_page(
        state,
        user,
        "config/check_form.html",
        errors,
        context! {
            action,
            editing => check.id != 0,
            values => context! { name => &check.name, description => &check.description },
            host_choices => choices(&hosts, &check.hosts, None),
            group_choices => choices(&groups, &check.host_groups, None),
            plugin_choices,
            arg_rows,
        },
    )
}

fn rows_of(check: &Check) -> Vec<ArgRow> {
    check
        .plugin_args
        .iter()
        .flat_map(|(p, args)| {
            args.iter().map(move |(k, v)| ArgRow {
                plugin: p.clone(),
                key: k.clone(),
                value: shown(v),
            })
        })
        .collect()
}

/// Reads the form; argument rows with a blank key are ignored (that is how a row is
/// removed), and a row without a plugin is reported next to the arguments.
fn read(f: &FormData, id: i64) -> (Check, Vec<ArgRow>, FormErrors) {
    let mut errors = FormErrors::default();
    let (ps, ks, vs) = (f.all("arg_plugin"), f.all("arg_key"), f.all("arg_value"));
    let mut rows = Vec::new();
    let mut plugin_args: BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        BTreeMap::new();
    for (i, key) in ks.iter().enumerate() {
        let key = key.trim();
        let plugin = ps.get(i).copied().unwrap_or("");
        let value = vs.get(i).copied().unwrap_or("");
        if key.is_empty() {
            continue;
        }
        rows.push(ArgRow {
            plugin: plugin.to_string(),
            key: key.to_string(),
            value: value.to_string(),
        });
        if plugin.is_empty() {
            errors.add(
                "plugin_args",
                format!("the argument {key:?} needs a plugin: choose which plugin it is for"),
            );
            continue;
        }
        plugin_args
            .entry(plugin.to_string())
            .or_default()
            .insert(key.to_string(), typed_value(value));
    }
    let check = Check {
        id,
        name: f.get("name").to_string(),
        description: f.get("description").to_string(),
        hosts: f.ids("hosts"),
        host_groups: f.ids("host_groups"),
        plugins: f.all("plugins").iter().map(|s| s.to_string()).collect(),
        plugin_args,
    };
    (check, rows, errors)
}

fn blank() -> Check {
    Check {
        id: 0,
        name: String::new(),
        description: String::new(),
        hosts: vec![],
        host_groups: vec![],
        plugins: vec![],
        plugin_args: BTreeMap::new(),
    }
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let action = "/configuration/checks/new";
    form(&state, &user, action, &blank(), &[], &FormErrors::default()).await
}

async fn save(state: &AppState, admin: &Admin, id: i64, body: &[u8]) -> Result<Response, UiError> {
    let (check, rows, mut errors) = read(&FormData::parse(body), id);
    if errors.is_empty() {
        let done = if id == 0 {
            state.actions.create_check(&actor(admin), &check).await
        } else {
            state.actions.update_check(&actor(admin), &check).await
        };
        match done {
            Ok(_) => return Ok(see_other("/configuration/checks")),
            Err(e) => errors = action_errors(e)?,
        }
    }
    let action = if id == 0 {
        "/configuration/checks/new".to_string()
    } else {
        format!("/configuration/checks/{id}/edit")
    };
    form(state, &admin.0, &action, &check, &rows, &errors).await
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    save(&state, &admin, 0, &body).await
}

async fn edit_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let check = state.core.store.get_check(id).await?;
    let action = format!("/configuration/checks/{id}/edit");
    let rows = rows_of(&check);
    form(
        &state,
        &user,
        &action,
        &check,
        &rows,
        &FormErrors::default(),
    )
    .await
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, UiError> {
    state.core.store.get_check(id).await?;
    save(&state, &admin, id, &body).await
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let check = state.core.store.get_check(id).await?;
    let impact = state
        .actions
        .check_delete_impact(id)
        .await
        .map_err(action_page_error)?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "check",
        &check.name,
        &impact,
        "/configuration/checks",
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_check(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/checks"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_values_keep_their_type() {
        assert_eq!(typed_value("5"), serde_json::json!(5));
        assert_eq!(typed_value("true"), serde_json::json!(true));
        assert_eq!(typed_value("/var"), serde_json::json!("/var"));
        assert_eq!(typed_value("\"x\""), serde_json::json!("\"x\""));
        assert_eq!(shown(&serde_json::json!(2.5)), "2.5");
        assert_eq!(shown(&serde_json::json!("/")), "/");
    }

    #[test]
    fn blank_argument_rows_are_dropped_and_rows_need_a_plugin() {
        let f = FormData::parse(
            b"name=c&plugins=p&arg_plugin=p&arg_key=mount&arg_value=%2F&arg_plugin=&arg_key=&arg_value=&arg_plugin=&arg_key=x&arg_value=1",
        );
        let (check, rows, errors) = read(&f, 0);
        assert_eq!(check.plugin_args["p"]["mount"], serde_json::json!("/"));
        assert_eq!(rows.len(), 2);
        assert!(errors.fields["plugin_args"].contains("\"x\""));
    }
}
