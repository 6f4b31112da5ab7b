//! Maintenance windows and acknowledgements: the two ways to keep alerts quiet. A window
//! silences problem notifications about a host, host group or service while it is active
//! (once, or weekly); an acknowledgement says "someone is on it" and stops reminders about
//! one host or service until it recovers. Admins edit windows; any logged-in user may
//! acknowledge, as the API allows.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use prophasis_alerting::noise::{MaintenanceTarget, MaintenanceWindow, WindowSchedule};
use prophasis_model::transition::Entity;
use prophasis_store::now_millis;

use super::{
    action_errors, action_page_error, actor, actor_of, form_page, names, ok_page, FormData,
};
use crate::ui::live::datetime;
use crate::ui::reports::parse_time;
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/maintenance", get(list))
        .route("/configuration/maintenance/new", get(new_form).post(create))
        .route(
            "/configuration/maintenance/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/maintenance/{id}/delete",
            get(confirm).post(delete),
        )
        .route("/configuration/acknowledgements", post(acknowledge))
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Names of everything a window or an acknowledgement can be about.
struct Targets {
    hosts: std::collections::BTreeMap<i64, String>,
    groups: std::collections::BTreeMap<i64, String>,
    services: std::collections::BTreeMap<i64, String>,
}

impl Targets {
    async fn load(state: &AppState) -> Result<Targets, UiError> {
        let store = &state.core.store;
        Ok(Targets {
            hosts: names(&store.list_hosts().await?, |h| h.id, |h| &h.name),
            groups: names(&store.list_host_groups().await?, |g| g.id, |g| &g.name),
            services: names(&store.list_services().await?, |s| s.id, |s| &s.name),
        })
    }

    fn name(&self, t: &MaintenanceTarget) -> String {
        let (kind, map, id) = match t {
            MaintenanceTarget::Host(id) => ("host", &self.hosts, id),
            MaintenanceTarget::HostGroup(id) => ("host group", &self.groups, id),
            MaintenanceTarget::Service(id) => ("service", &self.services, id),
        };
        match map.get(id) {
            Some(n) => format!("{kind} {n}"),
            None => format!("{kind} {id} (deleted)"),
        }
    }

    fn entity_name(&self, e: &Entity) -> String {
        match e {
            Entity::Host(id) => self.name(&MaintenanceTarget::Host(*id)),
            Entity::Service(id) => self.name(&MaintenanceTarget::Service(*id)),
        }
    }

    /// `(value, label)` options: `h:ID`, `g:ID`, `s:ID`; groups only when `groups`.
    fn options(&self, groups: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut add = |prefix: &str, kind: &str, map: &std::collections::BTreeMap<i64, String>| {
            let mut v: Vec<(&String, &i64)> = map.iter().map(|(i, n)| (n, i)).collect();
            v.sort();
            out.extend(
                v.into_iter()
                    .map(|(n, i)| (format!("{prefix}:{i}"), format!("{kind} {n}"))),
            );
        };
        add("h", "host", &self.hosts);
        if groups {
            add("g", "host group", &self.groups);
        }
        add("s", "service", &self.services);
        out
    }
}

fn target_value(t: &MaintenanceTarget) -> String {
    match t {
        MaintenanceTarget::Host(id) => format!("h:{id}"),
        MaintenanceTarget::HostGroup(id) => format!("g:{id}"),
        MaintenanceTarget::Service(id) => format!("s:{id}"),
    }
}

fn parse_target(s: &str) -> Option<MaintenanceTarget> {
    let (kind, id) = s.split_once(':')?;
    let id = id.parse().ok()?;
    match kind {
        "h" => Some(MaintenanceTarget::Host(id)),
        "g" => Some(MaintenanceTarget::HostGroup(id)),
        "s" => Some(MaintenanceTarget::Service(id)),
        _ => None,
    }
}

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn describe(s: &WindowSchedule) -> String {
    match s {
        WindowSchedule::Once { start, end } => {
            format!("from {} to {}", datetime(*start), datetime(*end))
        }
        WindowSchedule::Weekly {
            days,
            start_minute,
            duration_minutes,
        } => {
            let days: Vec<&str> = days
                .iter()
                .filter_map(|d| WEEKDAYS.get(*d as usize).copied())
                .collect();
            format!(
                "every {} at {} UTC for {} minutes",
                days.join(", "),
                hhmm(*start_minute),
                duration_minutes
            )
        }
    }
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let t = Targets::load(&state).await?;
    let now = now_millis();
    let windows: Vec<Value> = state
        .actions
        .maintenance_windows()
        .await
        .map_err(action_page_error)?
        .iter()
        .map(|w| {
            context! { id => w.id, target => t.name(&w.target), when => describe(&w.schedule),
            comment => &w.comment, active => w.is_active(now) }
        })
        .collect();
    let acks: Vec<Value> = state
        .core
        .store
        .list_acknowledgements(true)
        .await?
        .iter()
        .map(|a| context! { what => t.entity_name(&a.entity), who => &a.who, at => a.at, comment => &a.comment })
        .collect();
    let ack_targets: Vec<(String, String)> = t.options(false);
    ok_page(
        &state,
        &user,
        "config/maintenance.html",
        context! { windows, acks, ack_targets, errors => context! {}, values => context! {} },
    )
}

/// The form's values as typed (or as stored).
#[derive(Debug, Default, serde::Serialize)]
struct Values {
    target: String,
    kind: String,
    start: String,
    end: String,
    days: Vec<u8>,
    start_time: String,
    duration: String,
    comment: String,
}

fn local_input(ms: i64) -> String {
    datetime(ms)
        .replacen(' ', "T", 1)
        .chars()
        .take(16)
        .collect()
}

fn values_of(w: &MaintenanceWindow) -> Values {
    let mut v = Values {
        target: target_value(&w.target),
        comment: w.comment.clone(),
        ..Default::default()
    };
    match &w.schedule {
        WindowSchedule::Once { start, end } => {
            v.kind = "once".into();
            v.start = local_input(*start);
            v.end = local_input(*end);
        }
        WindowSchedule::Weekly {
            days,
            start_minute,
            duration_minutes,
        } => {
            v.kind = "weekly".into();
            v.days = days.clone();
            v.start_time = hhmm(*start_minute);
            v.duration = duration_minutes.to_string();
        }
    }
    v
}

fn read(f: &FormData) -> (Values, Result<MaintenanceWindow, FormErrors>) {
    let v = Values {
        target: f.get("target").to_string(),
        kind: f.get("kind").to_string(),
        start: f.get("start").to_string(),
        end: f.get("end").to_string(),
        days: f
            .all("days")
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect(),
        start_time: f.get("start_time").to_string(),
        duration: f.get("duration").to_string(),
        comment: f.get("comment").to_string(),
    };
    let mut errors = FormErrors::default();
    let target = parse_target(&v.target);
    if target.is_none() {
        errors.add(
            "target",
            "choose the host, host group or service to silence",
        );
    }
    let schedule = match v.kind.as_str() {
        "once" => match (parse_time(&v.start), parse_time(&v.end)) {
            (Some(start), Some(end)) => Some(WindowSchedule::Once { start, end }),
            (s, _) => {
                let field = if s.is_none() { "start" } else { "end" };
                errors.add(field, "give a date and time (UTC)");
                None
            }
        },
        "weekly" => {
            let minute = v.start_time.split_once(':').and_then(|(h, m)| {
                let (h, m) = (h.trim().parse::<u32>().ok()?, m.trim().parse::<u32>().ok()?);
                (h < 24 && m < 60).then_some(h * 60 + m)
            });
            let duration = v.duration.trim().parse::<u32>().ok();
            if minute.is_none() {
                errors.add("start_time", "give the start as HH:MM (UTC)");
            }
            if duration.is_none() {
                errors.add("duration", "give the length in whole minutes");
            }
            match (minute, duration) {
                (Some(start_minute), Some(duration_minutes)) => Some(WindowSchedule::Weekly {
                    days: v.days.clone(),
                    start_minute,
                    duration_minutes,
                }),
                _ => None,
            }
        }
        _ => {
            errors.add("kind", "choose once or weekly");
            None
        }
    };
    match (target, schedule) {
        (Some(target), Some(schedule)) if errors.is_empty() => {
            let w = MaintenanceWindow {
                id: 0,
                target,
                schedule,
                comment: v.comment.clone(),
            };
            (v, Ok(w))
        }
        _ => (v, Err(errors)),
    }
}

async fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    editing: bool,
    values: &Values,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let t = Targets::load(state).await?;
    let days: Vec<Value> = WEEKDAYS
        .iter()
        .enumerate()
        .map(|(i, d)| context! { value => i, name => d, checked => values.days.contains(&(i as u8)) })
        .collect();
    // `schedule.end` and friends arrive under `schedule`: show them at the schedule.
    form_page(
        state,
        user,
        "config/maintenance_form.html",
        errors,
        context! { action, editing, values, targets => t.options(true), days },
    )
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let values = Values {
        kind: "once".into(),
        ..Default::default()
    };
    let action = "/configuration/maintenance/new";
    form(
        &state,
        &user,
        action,
        false,
        &values,
        &FormErrors::default(),
    )
    .await
}

async fn save(state: &AppState, admin: &Admin, id: i64, body: &[u8]) -> Result<Response, UiError> {
    let (values, window) = read(&FormData::parse(body));
    let errors = match window {
        Ok(mut w) => {
            w.id = id;
            let done = if id == 0 {
                state
                    .actions
                    .create_maintenance_window(&actor(admin), &w)
                    .await
            } else {
                state
                    .actions
                    .update_maintenance_window(&actor(admin), &w)
                    .await
            };
            match done {
                Ok(_) => return Ok(see_other("/configuration/maintenance")),
                Err(e) => action_errors(e)?,
            }
        }
        Err(errors) => errors,
    };
    let (action, editing) = if id == 0 {
        ("/configuration/maintenance/new".to_string(), false)
    } else {
        (format!("/configuration/maintenance/{id}/edit"), true)
    };
    form(state, &admin.0, &action, editing, &values, &errors).await
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    save(&state, &admin, 0, &body).await
}

async fn window(state: &AppState, id: i64) -> Result<MaintenanceWindow, UiError> {
    state
        .actions
        .maintenance_windows()
        .await
        .map_err(action_page_error)?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| UiError::NotFound(format!("There is no maintenance window {id}.")))
}

async fn edit_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let w = window(&state, id).await?;
    let action = format!("/configuration/maintenance/{id}/edit");
    form(
        &state,
        &user,
        &action,
        true,
        &values_of(&w),
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
    window(&state, id).await?;
    save(&state, &admin, id, &body).await
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let w = window(&state, id).await?;
    let t = Targets::load(&state).await?;
    let name = format!("{} ({})", t.name(&w.target), describe(&w.schedule));
    confirm_delete(
        &state,
        &user,
        "configuration",
        "maintenance window",
        &name,
        &Default::default(),
        "/configuration/maintenance",
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_maintenance_window(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/maintenance"))
}

/// Acknowledges a host or service (any logged-in user).
async fn acknowledge(
    user: SessionUser,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = FormData::parse(&body);
    let entity = match parse_target(f.get("what")) {
        Some(MaintenanceTarget::Host(id)) => Entity::Host(id),
        Some(MaintenanceTarget::Service(id)) => Entity::Service(id),
        _ => {
            return Err(UiError::BadRequest(
                "Choose the host or service to acknowledge.".into(),
            ))
        }
    };
    state
        .actions
        .acknowledge(&actor_of(&user), entity, f.get("comment"))
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/maintenance"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_windows_are_read_and_described() {
        let f =
            FormData::parse(b"target=h:3&kind=weekly&days=0&days=6&start_time=22%3A30&duration=90");
        let (_, w) = read(&f);
        let w = w.unwrap();
        assert_eq!(w.target, MaintenanceTarget::Host(3));
        assert_eq!(
            describe(&w.schedule),
            "every Monday, Sunday at 22:30 UTC for 90 minutes"
        );
        assert_eq!(values_of(&w).start_time, "22:30");
    }

    #[test]
    fn a_bad_time_is_named() {
        let f = FormData::parse(b"target=x&kind=weekly&start_time=25%3A00&duration=z");
        let (v, w) = read(&f);
        let e = w.unwrap_err();
        assert!(e.fields.contains_key("target"));
        assert!(e.fields.contains_key("start_time"));
        assert!(e.fields.contains_key("duration"));
        assert_eq!(v.start_time, "25:00");
    }
}
