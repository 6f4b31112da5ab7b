//! Classifiers: the Lua code that turns a plugin's results into a classification. Each
//! plugin has a default classifier; overrides replace it for one check, host group or host
//! (host beats host group beats check beats the default). The code is edited in
//! CodeMirror 5 with Lua highlighting (a plain textarea without script), saved through
//! the actions layer (which refuses code that does not compile, naming the line), and
//! can be tried on a host's stored results before it is saved: "test against recent
//! results" runs the typed code through the classifier engine's dry run, the same path as
//! `POST /api/v1/classifiers/dry-run`, once per stored result with the results before it
//! as its window.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use prophasis_classifier::{NoHistory, Sample};
use prophasis_model::{ClassifierOverride, OverrideTarget, Plugin};

use super::{action_errors, action_page_error, actor, form_page, names, ok_page, FormData};
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/classifiers", get(list))
        .route(
            "/configuration/classifiers/{plugin}",
            get(default_form).post(save_default),
        )
        .route(
            "/configuration/classifiers/{plugin}/overrides/new",
            get(new_override).post(create_override),
        )
        .route(
            "/configuration/classifiers/{plugin}/overrides/{id}",
            get(edit_override).post(update_override),
        )
        .route(
            "/configuration/classifiers/{plugin}/overrides/{id}/delete",
            get(confirm_override).post(delete_override),
        )
        .route("/configuration/classifiers/{plugin}/dry-run", post(dry_run))
}

/// Stored results a test runs on: enough to see a pattern, few enough to read.
const TEST_RESULTS: u32 = 20;

fn target_value(t: &OverrideTarget) -> String {
    match t {
        OverrideTarget::Check(id) => format!("c:{id}"),
        OverrideTarget::HostGroup(id) => format!("g:{id}"),
        OverrideTarget::Host(id) => format!("h:{id}"),
    }
}

fn parse_target(s: &str) -> Option<OverrideTarget> {
    let (kind, id) = s.split_once(':')?;
    let id = id.parse().ok()?;
    match kind {
        "c" => Some(OverrideTarget::Check(id)),
        "g" => Some(OverrideTarget::HostGroup(id)),
        "h" => Some(OverrideTarget::Host(id)),
        _ => None,
    }
}

struct Names {
    hosts: std::collections::BTreeMap<i64, String>,
    groups: std::collections::BTreeMap<i64, String>,
    checks: std::collections::BTreeMap<i64, String>,
}

impl Names {
    async fn load(state: &AppState) -> Result<Names, UiError> {
        let store = &state.core.store;
        Ok(Names {
            hosts: names(&store.list_hosts().await?, |h| h.id, |h| &h.name),
            groups: names(&store.list_host_groups().await?, |g| g.id, |g| &g.name),
            checks: names(&store.list_checks().await?, |c| c.id, |c| &c.name),
        })
    }

    fn target(&self, t: &OverrideTarget) -> String {
        let (kind, map, id) = match t {
            OverrideTarget::Check(id) => ("check", &self.checks, id),
            OverrideTarget::HostGroup(id) => ("host group", &self.groups, id),
            OverrideTarget::Host(id) => ("host", &self.hosts, id),
        };
        match map.get(id) {
            Some(n) => format!("{kind} {n}"),
            None => format!("{kind} {id} (deleted)"),
        }
    }

    fn target_options(&self) -> Vec<(String, String)> {
        let mut out = vec![(String::new(), "— choose —".to_string())];
        for (prefix, kind, map) in [
            ("c", "check", &self.checks),
            ("g", "host group", &self.groups),
            ("h", "host", &self.hosts),
        ] {
            let mut v: Vec<(&String, &i64)> = map.iter().map(|(i, n)| (n, i)).collect();
            v.sort();
            out.extend(
                v.into_iter()
                    .map(|(n, i)| (format!("{prefix}:{i}"), format!("{kind} {n}"))),
            );
        }
        out
    }

    fn host_options(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .hosts
            .iter()
            .map(|(i, n)| (i.to_string(), n.clone()))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let n = Names::load(&state).await?;
    let overrides = state.core.store.list_overrides().await?;
    let mut plugins = state.core.store.list_plugins().await?;
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    let plugins: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let mine: Vec<String> = overrides
                .iter()
                .filter(|o| o.plugin_id == p.id)
                .map(|o| n.target(&o.target))
                .collect();
            context! { id => &p.id, name => &p.name, overrides => mine }
        })
        .collect();
    ok_page(
        &state,
        &user,
        "config/classifiers.html",
        context! { plugins },
    )
}

/// What the editor page shows; `override_id` is `Some(0)` for a new override.
struct Editor<'a> {
    plugin: &'a Plugin,
    override_id: Option<i64>,
    target: String,
    code: String,
    n_historical: String,
    host: String,
    test: Option<Value>,
}

impl Editor<'_> {
    fn action(&self) -> String {
        let p = &self.plugin.id;
        match self.override_id {
            None => format!("/configuration/classifiers/{p}"),
            Some(0) => format!("/configuration/classifiers/{p}/overrides/new"),
            Some(id) => format!("/configuration/classifiers/{p}/overrides/{id}"),
        }
    }
}

async fn editor(
    state: &AppState,
    user: &SessionUser,
    e: &Editor<'_>,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let n = Names::load(state).await?;
    let overrides: Vec<Value> = if e.override_id.is_none() {
        state
            .core
            .store
            .list_overrides()
            .await?
            .iter()
            .filter(|o| o.plugin_id == e.plugin.id)
            .map(|o| context! { id => o.id, target => n.target(&o.target) })
            .collect()
    } else {
        Vec::new()
    };
    form_page(
        state,
        user,
        "config/classifier_form.html",
        errors,
        context! {
            action => e.action(),
            plugin => context! { id => &e.plugin.id, name => &e.plugin.name },
            is_override => e.override_id.is_some(),
            override_id => e.override_id,
            editing => e.override_id.is_some_and(|id| id != 0),
            values => context! { target => &e.target, code => &e.code,
                n_historical => &e.n_historical, host => &e.host },
            targets => n.target_options(),
            hosts => n.host_options(),
            overrides,
            test => &e.test,
        },
    )
}

async fn default_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(&plugin).await?;
    let e = Editor {
        plugin: &p,
        override_id: None,
        target: String::new(),
        code: p.classifier.clone(),
        n_historical: p.n_historical.to_string(),
        host: String::new(),
        test: None,
    };
    editor(&state, &user, &e, &FormErrors::default()).await
}

fn read_n(f: &FormData, errors: &mut FormErrors) -> u32 {
    f.get("n_historical").trim().parse().unwrap_or_else(|_| {
        errors.add("n_historical", "must be a whole number, e.g. 5");
        0
    })
}

fn typed<'a>(p: &'a Plugin, override_id: Option<i64>, f: &FormData) -> Editor<'a> {
    Editor {
        plugin: p,
        override_id,
        target: f.get("target").to_string(),
        code: f.get("code").to_string(),
        n_historical: f.get("n_historical").to_string(),
        host: f.get("host").to_string(),
        test: None,
    }
}

async fn save_default(
    admin: Admin,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(&plugin).await?;
    let f = FormData::parse(&body);
    let mut errors = FormErrors::default();
    let n = read_n(&f, &mut errors);
    if errors.is_empty() {
        match state
            .actions
            .update_plugin_classifier(&actor(&admin), &plugin, f.get("code"), n)
            .await
        {
            Ok(_) => return Ok(see_other("/configuration/classifiers")),
            Err(e) => errors = action_errors(e)?,
        }
    }
    // The actions layer names the plugin's field `classifier`; the editor's is `code`.
    if let Some(m) = errors.fields.remove("classifier") {
        errors.add("code", m);
    }
    editor(&state, &admin.0, &typed(&p, None, &f), &errors).await
}

async fn new_override(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(&plugin).await?;
    let e = Editor {
        plugin: &p,
        override_id: Some(0),
        target: String::new(),
        code: p.classifier.clone(),
        n_historical: p.n_historical.to_string(),
        host: String::new(),
        test: None,
    };
    editor(&state, &user, &e, &FormErrors::default()).await
}

async fn save_override(
    state: &AppState,
    admin: &Admin,
    plugin: &str,
    id: i64,
    body: &[u8],
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(plugin).await?;
    let f = FormData::parse(body);
    let mut errors = FormErrors::default();
    let n = read_n(&f, &mut errors);
    let target = parse_target(f.get("target"));
    if target.is_none() {
        errors.add(
            "target",
            "choose the check, host group or host this code is for",
        );
    }
    if let (Some(target), true) = (target, errors.is_empty()) {
        let o = ClassifierOverride {
            id,
            plugin_id: plugin.to_string(),
            target,
            n_historical: n,
            code: f.get("code").to_string(),
        };
        let done = if id == 0 {
            state.actions.create_override(&actor(admin), &o).await
        } else {
            state.actions.update_override(&actor(admin), &o).await
        };
        match done {
            Ok(_) => return Ok(see_other(&format!("/configuration/classifiers/{plugin}"))),
            Err(e) => errors = action_errors(e)?,
        }
    }
    editor(state, &admin.0, &typed(&p, Some(id), &f), &errors).await
}

async fn create_override(
    admin: Admin,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    save_override(&state, &admin, &plugin, 0, &body).await
}

async fn stored_override(
    state: &AppState,
    plugin: &str,
    id: i64,
) -> Result<ClassifierOverride, UiError> {
    let o = state.core.store.get_override(id).await?;
    if o.plugin_id != plugin {
        return Err(UiError::NotFound(format!(
            "Plugin {plugin} has no override {id}."
        )));
    }
    Ok(o)
}

async fn edit_override(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path((plugin, id)): Path<(String, i64)>,
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(&plugin).await?;
    let o = stored_override(&state, &plugin, id).await?;
    let e = Editor {
        plugin: &p,
        override_id: Some(id),
        target: target_value(&o.target),
        code: o.code.clone(),
        n_historical: o.n_historical.to_string(),
        host: String::new(),
        test: None,
    };
    editor(&state, &user, &e, &FormErrors::default()).await
}

async fn update_override(
    admin: Admin,
    State(state): State<AppState>,
    Path((plugin, id)): Path<(String, i64)>,
    body: Bytes,
) -> Result<Response, UiError> {
    stored_override(&state, &plugin, id).await?;
    save_override(&state, &admin, &plugin, id, &body).await
}

async fn confirm_override(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path((plugin, id)): Path<(String, i64)>,
) -> Result<Response, UiError> {
    let o = stored_override(&state, &plugin, id).await?;
    let n = Names::load(&state).await?;
    let name = format!("{plugin} for {}", n.target(&o.target));
    confirm_delete(
        &state,
        &user,
        "configuration",
        "classifier override",
        &name,
        &Default::default(),
        &format!("/configuration/classifiers/{plugin}"),
    )
}

async fn delete_override(
    admin: Admin,
    State(state): State<AppState>,
    Path((plugin, id)): Path<(String, i64)>,
) -> Result<Response, UiError> {
    stored_override(&state, &plugin, id).await?;
    state
        .actions
        .delete_override(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other(&format!("/configuration/classifiers/{plugin}")))
}

/// Runs the typed code on the chosen host's last stored results of this plugin and shows
/// the editor again with the outcome (nothing is saved). The form says which editor it came
/// from (`override_id`: empty for the default, 0 for a new override).
async fn dry_run(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(&plugin).await?;
    let f = FormData::parse(&body);
    let override_id = f.get("override_id").parse::<i64>().ok();
    let mut e = typed(&p, override_id, &f);
    let mut errors = FormErrors::default();
    let window = read_n(&f, &mut errors).max(1) as usize;
    let host = match f.get("host").parse::<i64>() {
        Ok(h) => h,
        Err(_) => {
            errors.add("host", "choose the host whose results to test on");
            return editor(&state, &user, &e, &errors).await;
        }
    };
    let results = state
        .core
        .store
        .last_results(host, &plugin, TEST_RESULTS + window as u32 - 1)
        .await?;
    let samples: Vec<Sample> = results.iter().map(Sample::from).collect();
    let code = e.code.clone();
    let engines = state.core.engines.clone();
    let first = samples.len().saturating_sub(TEST_RESULTS as usize);
    let outcomes = tokio::task::spawn_blocking(move || {
        (first..samples.len())
            .map(|i| {
                let from = (i + 1).saturating_sub(window);
                engines.with(|eng| eng.dry_run(&code, &samples[from..=i], &NoHistory))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(UiError::internal)?;
    let mut rows = Vec::new();
    for (r, outcome) in results[first..].iter().zip(outcomes) {
        let outcome = outcome.map_err(UiError::internal)?;
        let diagnostics: Vec<String> = outcome.diagnostics.iter().map(|d| d.to_string()).collect();
        let classification = serde_json::to_value(outcome.classification)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        rows.push(
            context! { time => r.timestamp, value => r.value, message => &r.message,
            stored => serde_json::to_value(r.classification).ok(), classification, diagnostics },
        );
    }
    rows.reverse();
    e.test = Some(context! { host => host, rows, empty => results.is_empty() });
    editor(&state, &user, &e, &errors).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_targets_round_trip() {
        for t in [
            OverrideTarget::Check(1),
            OverrideTarget::HostGroup(2),
            OverrideTarget::Host(3),
        ] {
            assert_eq!(parse_target(&target_value(&t)), Some(t));
        }
        assert_eq!(parse_target("x:1"), None);
        assert_eq!(parse_target("h:"), None);
    }
}
