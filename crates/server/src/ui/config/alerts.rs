//! Alerts: who is told about which health changes, and how. The form covers the alert
//! rule (from-states, to-states, scope, restriction to plugins and checks), the module
//! with its options form built from the module's schema
//! (`prophasis_alerting::modules::registry()`), and the noise settings. Secret options are
//! shown masked and a masked value sent back keeps the stored secret
//! (`Actions::update_alert`). The alert's page sends a test and shows the delivery history.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use prophasis_alerting::modules::{self, ModuleInfo, OptionType};
use prophasis_alerting::AlertSettings;
use prophasis_model::{Alert, AlertScope, Health};
use serde_json::{Map, Value as Json};

use super::{
    action_errors, action_page_error, actor, choices, form_page, names, ok_page, FormData,
};
use crate::actions::AlertSettingsBody;
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, health_label, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/alerts", get(list))
        .route("/configuration/alerts/new", get(new_form).post(create))
        .route("/configuration/alerts/{id}", get(show))
        .route(
            "/configuration/alerts/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/alerts/{id}/delete",
            get(confirm).post(delete),
        )
        .route("/configuration/alerts/{id}/test", post(send_test))
}

/// Notifications shown in an alert's delivery history.
const HISTORY: i64 = 50;

fn health_name(h: Health) -> String {
    serde_json::to_value(h)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_health(s: &str) -> Option<Health> {
    serde_json::from_value(Json::String(s.to_string())).ok()
}

fn state_choices(selected: &[Health]) -> Vec<Value> {
    Health::ALL
        .iter()
        .map(|h| {
            let name = health_name(*h);
            context! { label => health_label(&name), value => name, checked => selected.contains(h) }
        })
        .collect()
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let mut alerts = state.core.store.list_alerts().await?;
    alerts.sort_by(|a, b| a.name.cmp(&b.name));
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let from: Vec<&str> = a
                .from_states
                .iter()
                .map(|h| health_label(&health_name(*h)))
                .collect();
            let to: Vec<&str> = a
                .to_states
                .iter()
                .map(|h| health_label(&health_name(*h)))
                .collect();
            context! { id => a.id, name => &a.name, module => &a.module, enabled => a.enabled,
            from, to, scope => scope_words(&a.scope) }
        })
        .collect();
    ok_page(&state, &user, "config/alerts.html", context! { alerts })
}

fn scope_words(s: &AlertScope) -> String {
    let mut parts = Vec::new();
    if s.all_hosts {
        parts.push("all hosts".to_string());
    }
    if s.all_services {
        parts.push("all services".to_string());
    }
    for (n, one, many) in [
        (s.hosts.len(), "host", "hosts"),
        (s.host_groups.len(), "host group", "host groups"),
        (s.services.len(), "service", "services"),
    ] {
        match n {
            0 => {}
            1 => parts.push(format!("1 {one}")),
            _ => parts.push(format!("{n} {many}")),
        }
    }
    parts.join(", ")
}

/// An option's value as the form shows it.
fn option_text(kind: OptionType, v: Option<&Json>) -> String {
    let Some(v) = v else { return String::new() };
    match (kind, v) {
        (_, Json::String(s)) => s.clone(),
        (OptionType::StringList, Json::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (OptionType::StringMap, Json::Object(m)) => m
            .iter()
            .map(|(k, x)| {
                format!(
                    "{k}: {}",
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (_, Json::Null) => String::new(),
        (_, other) => other.to_string(),
    }
}

/// The form field of an option: `opt.<module>.<name>` keeps modules apart.
fn field_name(module: &str, option: &str) -> String {
    format!("opt.{module}.{option}")
}

/// Reads a module's options; a value that is not of its type is reported at its field.
fn read_options(f: &FormData, info: &ModuleInfo, errors: &mut FormErrors) -> Json {
    let mut out = Map::new();
    for spec in &info.options {
        let field = field_name(info.name, spec.name);
        let raw = f.get(&field);
        let value = match spec.kind {
            OptionType::Boolean => Some(Json::Bool(f.checked(&field))),
            _ if raw.trim().is_empty() => None,
            OptionType::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => Some(Json::from(n)),
                Err(_) => {
                    errors.add(&field, "must be a whole number");
                    None
                }
            },
            OptionType::StringList => Some(Json::Array(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Json::String(l.to_string()))
                    .collect(),
            )),
            OptionType::StringMap => {
                let mut m = Map::new();
                for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    match line.split_once(':') {
                        Some((k, v)) => {
                            m.insert(k.trim().to_string(), Json::String(v.trim().to_string()));
                        }
                        None => errors.add(
                            &field,
                            format!("{line:?}: write one \"name: value\" per line"),
                        ),
                    }
                }
                Some(Json::Object(m))
            }
            OptionType::String | OptionType::Text | OptionType::Choice => {
                Some(Json::String(raw.to_string()))
            }
        };
        if let Some(v) = value {
            out.insert(spec.name.to_string(), v);
        }
    }
    Json::Object(out)
}

/// Everything the form shows, as typed or as stored (secrets masked).
struct Shown {
    body: AlertSettingsBody,
    /// Option texts by field name, for every module (only the chosen one is used).
    typed: Option<FormData>,
}

async fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    shown: &Shown,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let store = &state.core.store;
    let a = &shown.body.alert;
    let hosts = names(&store.list_hosts().await?, |h| h.id, |h| &h.name);
    let groups = names(&store.list_host_groups().await?, |g| g.id, |g| &g.name);
    let services = names(&store.list_services().await?, |s| s.id, |s| &s.name);
    let checks = names(&store.list_checks().await?, |c| c.id, |c| &c.name);
    let mut plugins = store.list_plugins().await?;
    plugins.sort_by(|x, y| x.name.cmp(&y.name));
    let plugin_choices: Vec<Value> = plugins
        .iter()
        .map(|p| context! { id => &p.id, name => &p.name, selected => a.plugins.contains(&p.id) })
        .collect();
    let masked = modules::mask_secrets(&a.module, &a.options);
    let module_forms: Vec<Value> = modules::registry()
        .iter()
        .map(|m| {
            let options: Vec<Value> = m
                .options
                .iter()
                .map(|spec| {
                    let field = field_name(m.name, spec.name);
                    let text = match &shown.typed {
                        Some(f) => f.get(&field).to_string(),
                        None if m.name == a.module => option_text(spec.kind, masked.get(spec.name)),
                        None => option_text(spec.kind, spec.default.as_ref()),
                    };
                    let checked = match &shown.typed {
                        Some(f) => f.checked(&field),
                        None if m.name == a.module => masked
                            .get(spec.name)
                            .and_then(Json::as_bool)
                            .unwrap_or(false),
                        None => spec
                            .default
                            .as_ref()
                            .and_then(Json::as_bool)
                            .unwrap_or(false),
                    };
                    let kind = serde_json::to_value(spec.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string));
                    context! { field, name => spec.name, kind, required => spec.required,
                    secret => spec.secret, help => spec.help, text, checked,
                    choices => spec.choices }
                })
                .collect();
            context! { name => m.name, description => m.description, options }
        })
        .collect();
    let module_names: Vec<(&str, &str)> = modules::registry()
        .iter()
        .map(|m| (m.name, m.name))
        .collect();
    let s = &shown.body.settings;
    form_page(
        state,
        user,
        "config/alert_form.html",
        errors,
        context! {
            action,
            editing => a.id != 0,
            values => context! {
                name => &a.name, enabled => a.enabled, module => &a.module,
                all_hosts => a.scope.all_hosts, all_services => a.scope.all_services,
                renotify => s.renotify_every_seconds.to_string(),
                flap_threshold => s.flap_threshold.to_string(),
                flap_window => s.flap_window_seconds.to_string(),
                hold => s.hold_when_dependency_down,
            },
            from_states => state_choices(&a.from_states),
            to_states => state_choices(&a.to_states),
            host_choices => choices(&hosts, &a.scope.hosts, None),
            group_choices => choices(&groups, &a.scope.host_groups, None),
            service_choices => choices(&services, &a.scope.services, None),
            check_choices => choices(&checks, &a.checks, None),
            plugin_choices,
            module_names,
            module_forms,
        },
    )
}

fn number<T: std::str::FromStr + Default>(f: &FormData, name: &str, errors: &mut FormErrors) -> T {
    let raw = f.get(name).trim();
    if raw.is_empty() {
        return T::default();
    }
    raw.parse().unwrap_or_else(|_| {
        errors.add(name, "must be a whole number of 0 or more");
        T::default()
    })
}

fn read(f: &FormData, id: i64) -> (AlertSettingsBody, FormErrors) {
    let mut errors = FormErrors::default();
    let module = f.get("module").to_string();
    let options = match modules::info(&module) {
        Some(info) => read_options(f, &info, &mut errors),
        None => Json::Object(Map::new()),
    };
    let states = |name: &str| -> Vec<Health> {
        f.all(name).iter().filter_map(|s| parse_health(s)).collect()
    };
    let alert = Alert {
        id,
        name: f.get("name").to_string(),
        from_states: states("from_states"),
        to_states: states("to_states"),
        scope: AlertScope {
            all_hosts: f.checked("all_hosts"),
            all_services: f.checked("all_services"),
            hosts: f.ids("hosts"),
            host_groups: f.ids("host_groups"),
            services: f.ids("services"),
        },
        plugins: f.all("plugins").iter().map(|s| s.to_string()).collect(),
        checks: f.ids("checks"),
        module,
        options,
        enabled: f.checked("enabled"),
    };
    let settings = AlertSettings {
        renotify_every_seconds: number(f, "renotify", &mut errors),
        flap_threshold: number(f, "flap_threshold", &mut errors),
        flap_window_seconds: number(f, "flap_window", &mut errors),
        hold_when_dependency_down: f.checked("hold"),
    };
    (AlertSettingsBody { alert, settings }, errors)
}

/// Errors of options (`options.to`) and settings (`settings.flap_window_seconds`) are
/// moved to the form's own field names so they show next to the right input.
fn place_errors(
    mut errors: FormErrors,
    e: &crate::actions::ActionError,
    module: &str,
) -> FormErrors {
    if let Some(field) = e.field() {
        let target = if let Some(opt) = field.strip_prefix("options.") {
            Some(field_name(
                module,
                opt.split(['.', '[']).next().unwrap_or(opt),
            ))
        } else {
            match field {
                "settings.renotify_every_seconds" => Some("renotify".to_string()),
                "settings.flap_threshold" => Some("flap_threshold".to_string()),
                "settings.flap_window_seconds" => Some("flap_window".to_string()),
                _ => None,
            }
        };
        if let Some(t) = target {
            let top = field.split(['[', '.']).next().unwrap_or(field).to_string();
            if let Some(m) = errors.fields.remove(&top) {
                errors.fields.insert(t, m);
            }
        }
    }
    errors
}

async fn save(state: &AppState, admin: &Admin, id: i64, body: &[u8]) -> Result<Response, UiError> {
    let f = FormData::parse(body);
    let (b, mut errors) = read(&f, id);
    if errors.is_empty() {
        let done = if id == 0 {
            state.actions.create_alert(&actor(admin), &b).await
        } else {
            state.actions.update_alert(&actor(admin), &b).await
        };
        match done {
            Ok(saved) => {
                return Ok(see_other(&format!(
                    "/configuration/alerts/{}",
                    saved.alert.id
                )))
            }
            Err(e) => {
                let module = b.alert.module.clone();
                let placed = action_errors_keep(&e)?;
                errors = place_errors(placed, &e, &module);
            }
        }
    }
    let action = if id == 0 {
        "/configuration/alerts/new".to_string()
    } else {
        format!("/configuration/alerts/{id}/edit")
    };
    let shown = Shown {
        body: b,
        typed: Some(f),
    };
    form(state, &admin.0, &action, &shown, &errors).await
}

/// [`action_errors`] without consuming the error, so its field can still be read.
fn action_errors_keep(e: &crate::actions::ActionError) -> Result<FormErrors, UiError> {
    use crate::actions::ActionError as E;
    let copy = match e {
        E::Forbidden => E::Forbidden,
        E::Invalid(v) => E::Invalid(v.clone()),
        E::Conflict { field, message } => E::Conflict {
            field: field.clone(),
            message: message.clone(),
        },
        E::Store(s) => return FormErrors::from_store(s),
    };
    action_errors(copy)
}

fn blank() -> AlertSettingsBody {
    AlertSettingsBody {
        alert: Alert {
            id: 0,
            name: String::new(),
            from_states: vec![Health::Ok],
            to_states: vec![Health::Major, Health::Critical],
            scope: AlertScope {
                all_hosts: true,
                ..Default::default()
            },
            plugins: vec![],
            checks: vec![],
            module: "email".into(),
            options: Json::Object(Map::new()),
            enabled: true,
        },
        settings: AlertSettings::default(),
    }
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let shown = Shown {
        body: blank(),
        typed: None,
    };
    form(
        &state,
        &user,
        "/configuration/alerts/new",
        &shown,
        &FormErrors::default(),
    )
    .await
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
    let body = state
        .actions
        .alert_with_settings(id)
        .await
        .map_err(action_page_error)?;
    let shown = Shown { body, typed: None };
    let action = format!("/configuration/alerts/{id}/edit");
    form(&state, &user, &action, &shown, &FormErrors::default()).await
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, UiError> {
    state.core.store.get_alert(id).await?;
    save(&state, &admin, id, &body).await
}

async fn alert_page(
    state: &AppState,
    user: &SessionUser,
    id: i64,
    test: Option<Result<(), String>>,
) -> Result<Response, UiError> {
    let body = state
        .actions
        .alert_with_settings(id)
        .await
        .map_err(action_page_error)?
        .masked();
    let a = &body.alert;
    let mut history = Vec::new();
    for n in state
        .core
        .store
        .list_notifications(Some(id), HISTORY)
        .await?
    {
        let attempts: Vec<Value> = state
            .core
            .store
            .delivery_attempts(n.id)
            .await?
            .iter()
            .map(|t| context! { time => t.time, ok => t.ok, error => &t.error })
            .collect();
        let summary = n
            .payload
            .get("summary")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        history.push(context! { id => n.id, created => n.created, summary,
        state => format!("{:?}", n.state).to_lowercase(), last_error => &n.last_error, attempts });
    }
    let options = serde_json::to_string_pretty(&a.options).unwrap_or_default();
    let from: Vec<&str> = a
        .from_states
        .iter()
        .map(|h| health_label(&health_name(*h)))
        .collect();
    let to: Vec<&str> = a
        .to_states
        .iter()
        .map(|h| health_label(&health_name(*h)))
        .collect();
    let test = test.map(|r| match r {
        Ok(()) => context! { ok => true },
        Err(e) => context! { ok => false, error => e },
    });
    ok_page(
        state,
        user,
        "config/alert.html",
        context! {
            alert => context! { id => a.id, name => &a.name, module => &a.module, enabled => a.enabled,
                from, to, scope => scope_words(&a.scope), options },
            settings => &body.settings,
            history,
            test,
        },
    )
}

async fn show(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    alert_page(&state, &user, id, None).await
}

async fn send_test(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    // Links in the test point back at the address the admin is using.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    let outcome = state
        .actions
        .test_alert(&actor(&admin), id, &base)
        .await
        .map_err(action_page_error)?;
    alert_page(&state, &admin.0, id, Some(outcome)).await
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let a = state.core.store.get_alert(id).await?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "alert",
        &a.name,
        &Default::default(),
        &format!("/configuration/alerts/{id}"),
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_alert(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/alerts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_counted_in_words() {
        let scope = AlertScope {
            all_services: true,
            hosts: vec![4],
            host_groups: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(scope_words(&scope), "all services, 1 host, 2 host groups");
        let one = AlertScope {
            services: vec![3],
            ..Default::default()
        };
        assert_eq!(scope_words(&one), "1 service");
    }

    #[test]
    fn options_are_read_by_their_type() {
        let info = modules::info("webhook").expect("the webhook module");
        let f = FormData::parse(
            b"opt.webhook.url=https%3A%2F%2Fhooks.example%2Fx&opt.webhook.headers=Authorization%3A+Bearer+t%0AX-A%3A+b&opt.webhook.timeout_seconds=7",
        );
        let mut errors = FormErrors::default();
        let o = read_options(&f, &info, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(o["url"], "https://hooks.example/x");
        assert_eq!(o["headers"]["Authorization"], "Bearer t");
        assert_eq!(o["timeout_seconds"], 7);
        assert_eq!(
            option_text(OptionType::StringMap, Some(&o["headers"])),
            "Authorization: Bearer t\nX-A: b"
        );
        let f = FormData::parse(b"opt.webhook.timeout_seconds=soon");
        read_options(&f, &info, &mut errors);
        assert!(errors.fields.contains_key("opt.webhook.timeout_seconds"));
    }
}
