//! The configuration pages of the web UI (issue #7): one file per area, all under
//! `/configuration/…`, built on the framework of [`crate::ui`].
//!
//! They exist so an administrator can set Prophasis up from a browser. Every write goes
//! through [`crate::actions::Actions`] (validation, admin check, audit log, reload of the
//! core), never through the store's write functions, so the UI refuses exactly what the
//! API and the CLI refuse, with the same message next to the same field.
//!
//! Roles: everyone logged in may read the lists (read-only for viewers, who see no
//! buttons); every form, every POST and every delete confirmation takes [`Admin`], so a
//! viewer gets the 403 page that says why.
//!
//! The templates live in `templates/config/` and are added to a copy of the UI's template
//! environment here, so the framework's list of templates stays untouched.

mod alerts;
mod checks;
mod classifiers;
mod host_groups;
mod hosts;
mod maintenance;
mod plugins;
mod schedules;
mod services;
mod users;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use minijinja::{context, Environment, Value};

use super::session::{Admin, SessionUser};
use super::{FormErrors, UiError};
use crate::actions::{ActionError, Actor, ErrorKind};
use crate::web::AppState;

/// The configuration templates: (name, source).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "config/base.html",
        include_str!("../../../templates/config/base.html"),
    ),
    (
        "config/fields.html",
        include_str!("../../../templates/config/fields.html"),
    ),
    (
        "config/hosts.html",
        include_str!("../../../templates/config/hosts.html"),
    ),
    (
        "config/host_form.html",
        include_str!("../../../templates/config/host_form.html"),
    ),
    (
        "config/host_test.html",
        include_str!("../../../templates/config/host_test.html"),
    ),
    (
        "config/host_groups.html",
        include_str!("../../../templates/config/host_groups.html"),
    ),
    (
        "config/host_group_form.html",
        include_str!("../../../templates/config/host_group_form.html"),
    ),
    (
        "config/plugins.html",
        include_str!("../../../templates/config/plugins.html"),
    ),
    (
        "config/plugin.html",
        include_str!("../../../templates/config/plugin.html"),
    ),
    (
        "config/checks.html",
        include_str!("../../../templates/config/checks.html"),
    ),
    (
        "config/check_form.html",
        include_str!("../../../templates/config/check_form.html"),
    ),
    (
        "config/schedules.html",
        include_str!("../../../templates/config/schedules.html"),
    ),
    (
        "config/schedule_form.html",
        include_str!("../../../templates/config/schedule_form.html"),
    ),
    (
        "config/services.html",
        include_str!("../../../templates/config/services.html"),
    ),
    (
        "config/service_form.html",
        include_str!("../../../templates/config/service_form.html"),
    ),
    (
        "config/maintenance.html",
        include_str!("../../../templates/config/maintenance.html"),
    ),
    (
        "config/maintenance_form.html",
        include_str!("../../../templates/config/maintenance_form.html"),
    ),
    (
        "config/alerts.html",
        include_str!("../../../templates/config/alerts.html"),
    ),
    (
        "config/alert_form.html",
        include_str!("../../../templates/config/alert_form.html"),
    ),
    (
        "config/alert.html",
        include_str!("../../../templates/config/alert.html"),
    ),
    (
        "config/classifiers.html",
        include_str!("../../../templates/config/classifiers.html"),
    ),
    (
        "config/classifier_form.html",
        include_str!("../../../templates/config/classifier_form.html"),
    ),
    (
        "config/users.html",
        include_str!("../../../templates/config/users.html"),
    ),
    (
        "config/user_form.html",
        include_str!("../../../templates/config/user_form.html"),
    ),
    (
        "config/password_form.html",
        include_str!("../../../templates/config/password_form.html"),
    ),
];

/// The UI's environment plus the configuration templates, built once.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = super::environment();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env
});

/// All configuration routes; merged into the UI by one line in `ui::routes`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(hosts::routes())
        .merge(alerts::routes())
        .merge(maintenance::routes())
        .merge(host_groups::routes())
        .merge(plugins::routes())
        .merge(checks::routes())
        .merge(classifiers::routes())
        .merge(schedules::routes())
        .merge(services::routes())
        .merge(users::routes())
}

/// Renders a configuration page in the layout with `status` (200, or 422 for a form shown
/// again with its messages). The common context is the same as [`super::render`]'s.
fn show(
    state: &AppState,
    user: &SessionUser,
    template: &str,
    status: StatusCode,
    ctx: Value,
) -> Result<Response, UiError> {
    let common = context! {
        user => context! { name => &user.name, role => user.role.as_str(), admin => user.is_admin() },
        csrf_token => &user.csrf_token,
        nav => "configuration",
        unread => state.ui.live.unread(),
        now => prophasis_store::now_millis(),
    };
    let html = ENV
        .get_template(template)?
        .render(context! { ..ctx, ..common })?;
    Ok((
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response())
}

fn ok_page(
    state: &AppState,
    user: &SessionUser,
    template: &str,
    ctx: Value,
) -> Result<Response, UiError> {
    show(state, user, template, StatusCode::OK, ctx)
}

/// A form page: 200 when `errors` is empty, else 422 (the form shown again).
fn form_page(
    state: &AppState,
    user: &SessionUser,
    template: &str,
    errors: &FormErrors,
    ctx: Value,
) -> Result<Response, UiError> {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let ctx = context! { errors => &errors.fields, general => &errors.general, ..ctx };
    show(state, user, template, status, ctx)
}

fn actor(admin: &Admin) -> Actor {
    Actor::user(admin.0.id, admin.0.name.clone(), admin.0.role)
}

fn actor_of(user: &SessionUser) -> Actor {
    Actor::user(user.id, user.name.clone(), user.role)
}

/// A refused action as form messages: next to its field when it names one. A failure that
/// is not the user's (the database is down) or a refusal of the role becomes the error page.
fn action_errors(e: ActionError) -> Result<FormErrors, UiError> {
    let mut errors = FormErrors::default();
    match e.kind() {
        ErrorKind::Forbidden => return Err(UiError::Forbidden),
        ErrorKind::Internal => return Err(UiError::internal(e)),
        _ => {}
    }
    let message = match &e {
        ActionError::Store(s) => match FormErrors::from_store(s)? {
            f if !f.is_empty() => return Ok(f),
            _ => e.to_string(),
        },
        // The field is shown by the input already: only the message goes under it.
        ActionError::Invalid(v) => v.message.clone(),
        ActionError::Conflict { message, .. } => message.clone(),
        ActionError::Forbidden => return Err(UiError::Forbidden),
    };
    match e.field() {
        // Nested fields (`intervals[1].period_seconds`) are shown at their top field, the
        // message saying which part: "row 2, period seconds: must be greater than 0".
        Some(f) => {
            let top = f.split(['[', '.']).next().unwrap_or(f);
            let rest = &f[top.len()..];
            if rest.is_empty() {
                errors.add(top, message);
            } else {
                errors.add(top, format!("{}: {message}", nested_part(rest)));
            }
        }
        None => errors.general.push(message),
    }
    Ok(errors)
}

/// `[1].period_seconds` → `row 2, period seconds`; `.end` → `end`.
fn nested_part(rest: &str) -> String {
    let mut parts = Vec::new();
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if let Some(i) = index {
            parts.push(format!("row {}", i + 1));
        }
        if !name.is_empty() {
            parts.push(name.replace('_', " "));
        }
    }
    parts.join(", ")
}

/// An action error on a page that has no form to show it in (delete, test).
fn action_page_error(e: ActionError) -> UiError {
    match e.kind() {
        ErrorKind::Forbidden => UiError::Forbidden,
        ErrorKind::NotFound => UiError::NotFound(e.to_string()),
        ErrorKind::Internal => UiError::internal(e),
        _ => UiError::Refused(e.to_string()),
    }
}

/// A URL-encoded form body with repeated names kept (`member_hosts=1&member_hosts=4`),
/// which the pickers and the key/value rows need and `axum::Form` cannot read into a map.
#[derive(Debug, Default)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            body.split(|b| *b == b'&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = match pair.iter().position(|b| *b == b'=') {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (pair, &b""[..]),
                    };
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every value of `name` that parses as an id; others are dropped (they can only come
    /// from a hand-made request, and the store refuses ids that do not exist).
    pub fn ids(&self, name: &str) -> Vec<i64> {
        self.all(name)
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// Percent-decoding with `+` as a space, as browsers encode forms; invalid UTF-8 is
/// replaced rather than refused, so the user sees what arrived.
fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len()
                && raw[i + 1].is_ascii_hexdigit()
                && raw[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).expect("hex digits are ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Names by id, for showing members and pickers.
fn names<T>(
    items: &[T],
    id: impl Fn(&T) -> i64,
    name: impl Fn(&T) -> &str,
) -> BTreeMap<i64, String> {
    items.iter().map(|t| (id(t), name(t).to_string())).collect()
}

/// Picker choices: `[{id, name, selected}]` sorted by name.
fn choices(all: &BTreeMap<i64, String>, selected: &[i64], skip: Option<i64>) -> Vec<Value> {
    let mut v: Vec<(&String, i64)> = all
        .iter()
        .filter(|(id, _)| Some(**id) != skip)
        .map(|(id, n)| (n, *id))
        .collect();
    v.sort();
    v.into_iter()
        .map(|(n, id)| context! { id, name => n, selected => selected.contains(&id) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_data_keeps_repeated_names_and_decodes() {
        let f = FormData::parse(b"a=1&a=2&name=web+01%2Fx&bad=%zz&empty&t=%E2%9C%93");
        assert_eq!(f.all("a"), vec!["1", "2"]);
        assert_eq!(f.ids("a"), vec![1, 2]);
        assert_eq!(f.get("name"), "web 01/x");
        assert_eq!(f.get("bad"), "%zz");
        assert_eq!(f.get("empty"), "");
        assert_eq!(f.get("t"), "✓");
        assert_eq!(f.get("missing"), "");
        assert!(!f.checked("empty"));
    }

    #[test]
    fn nested_fields_are_named_in_words() {
        assert_eq!(nested_part("[1].period_seconds"), "row 2, period seconds");
        assert_eq!(nested_part(".end"), "end");
        assert_eq!(nested_part("[0].members"), "row 1, members");
    }

    #[test]
    fn a_trailing_percent_is_kept() {
        assert_eq!(FormData::parse(b"x=50%").get("x"), "50%");
        assert_eq!(FormData::parse(b"x=5%2").get("x"), "5%2");
    }
}
