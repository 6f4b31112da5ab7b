//! Schedules: when checks run. A schedule names its checks and one or more intervals; an
//! interval fires at its start time and every period after it. Periods are typed as a
//! value and a unit (seconds to days) and stored in seconds.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use prophasis_model::{Interval, Schedule};
use prophasis_store::now_millis;

use super::{
    action_errors, action_page_error, actor, choices, form_page, names, ok_page, FormData,
};
use crate::ui::live::datetime;
use crate::ui::reports::parse_time;
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/schedules", get(list))
        .route("/configuration/schedules/new", get(new_form).post(create))
        .route(
            "/configuration/schedules/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/schedules/{id}/delete",
            get(confirm).post(delete),
        )
}

/// Units of a period, largest first so a period is shown in the largest exact unit.
const UNITS: [(&str, i64); 4] = [
    ("days", 86_400),
    ("hours", 3_600),
    ("minutes", 60),
    ("seconds", 1),
];

/// Blank interval rows offered below the filled ones.
const BLANK_ROWS: usize = 2;

/// `(value, unit)` for a period in seconds.
fn split_period(seconds: i64) -> (i64, &'static str) {
    UNITS
        .iter()
        .find(|(_, n)| seconds % n == 0 && seconds >= *n)
        .map(|(u, n)| (seconds / n, *u))
        .unwrap_or((seconds, "seconds"))
}

/// `2026-11-26T13:05:09`, as a `datetime-local` input with seconds shows it (UTC).
fn local_input(ms: i64) -> String {
    datetime(ms)
        .replacen(' ', "T", 1)
        .chars()
        .take(19)
        .collect()
}

fn describe(i: &Interval) -> String {
    let (v, u) = split_period(i.period_seconds);
    let u = if v == 1 { u.trim_end_matches('s') } else { u };
    format!("every {v} {u} from {}", datetime(i.start))
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let store = &state.core.store;
    let checks = names(&store.list_checks().await?, |c| c.id, |c| &c.name);
    let mut schedules = store.list_schedules().await?;
    schedules.sort_by(|a, b| a.name.cmp(&b.name));
    let schedules: Vec<Value> = schedules
        .iter()
        .map(|s| {
            let checks: Vec<&String> = s.checks.iter().filter_map(|id| checks.get(id)).collect();
            let intervals: Vec<String> = s.intervals.iter().map(describe).collect();
            context! { id => s.id, name => &s.name, description => &s.description, checks, intervals }
        })
        .collect();
    ok_page(
        &state,
        &user,
        "config/schedules.html",
        context! { schedules },
    )
}

/// One interval row as typed.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    start: String,
    value: String,
    unit: String,
}

async fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    schedule: &Schedule,
    rows: Vec<Row>,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let checks = names(
        &state.core.store.list_checks().await?,
        |c| c.id,
        |c| &c.name,
    );
    let mut rows = rows;
    rows.extend((0..BLANK_ROWS).map(|_| Row {
        start: String::new(),
        value: String::new(),
        unit: "minutes".into(),
    }));
    let units: Vec<&str> = UNITS.iter().rev().map(|(u, _)| *u).collect();
    form_page(
        state,
        user,
        "config/schedule_form.html",
        errors,
        context! {
            action,
            editing => schedule.id != 0,
            values => context! { name => &schedule.name, description => &schedule.description },
            check_choices => choices(&checks, &schedule.checks, None),
            rows,
            units,
        },
    )
}

fn rows_of(s: &Schedule) -> Vec<Row> {
    s.intervals
        .iter()
        .map(|i| {
            let (v, u) = split_period(i.period_seconds);
            Row {
                start: local_input(i.start),
                value: v.to_string(),
                unit: u.to_string(),
            }
        })
        .collect()
}

/// Reads the form. A row with an empty value is ignored (that is how a row is removed);
/// an empty start means now.
fn read(f: &FormData, id: i64, now: i64) -> (Schedule, Vec<Row>, FormErrors) {
    let mut errors = FormErrors::default();
    let (starts, values, units) = (f.all("start"), f.all("value"), f.all("unit"));
    let mut rows = Vec::new();
    let mut intervals = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let row = Row {
            start: starts.get(i).copied().unwrap_or("").to_string(),
            value: value.to_string(),
            unit: units.get(i).copied().unwrap_or("seconds").to_string(),
        };
        let n = rows.len() + 1;
        let start = if row.start.trim().is_empty() {
            Some(now)
        } else {
            parse_time(&row.start)
        };
        let mult = UNITS.iter().find(|(u, _)| *u == row.unit).map(|(_, m)| *m);
        match (start, value.parse::<i64>(), mult) {
            (None, _, _) => errors.add(
                "intervals",
                format!("interval {n}: the start is not a date and time (use the date picker, or leave it empty for now)"),
            ),
            (_, Err(_), _) | (_, _, None) => errors.add(
                "intervals",
                format!("interval {n}: every how many seconds, minutes, hours or days? Give a whole number"),
            ),
            (Some(start), Ok(v), Some(m)) => intervals.push(Interval {
                id: 0,
                start,
                period_seconds: v.saturating_mul(m),
            }),
        }
        rows.push(row);
    }
    let schedule = Schedule {
        id,
        name: f.get("name").to_string(),
        description: f.get("description").to_string(),
        checks: f.ids("checks"),
        intervals,
    };
    (schedule, rows, errors)
}

async fn save(state: &AppState, admin: &Admin, id: i64, body: &[u8]) -> Result<Response, UiError> {
    let (schedule, rows, mut errors) = read(&FormData::parse(body), id, now_millis());
    if errors.is_empty() {
        let done = if id == 0 {
            state
                .actions
                .create_schedule(&actor(admin), &schedule)
                .await
        } else {
            state
                .actions
                .update_schedule(&actor(admin), &schedule)
                .await
        };
        match done {
            Ok(_) => return Ok(see_other("/configuration/schedules")),
            Err(e) => errors = action_errors(e)?,
        }
    }
    let action = if id == 0 {
        "/configuration/schedules/new".to_string()
    } else {
        format!("/configuration/schedules/{id}/edit")
    };
    form(state, &admin.0, &action, &schedule, rows, &errors).await
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let blank = Schedule {
        id: 0,
        name: String::new(),
        description: String::new(),
        checks: vec![],
        intervals: vec![],
    };
    let action = "/configuration/schedules/new";
    form(
        &state,
        &user,
        action,
        &blank,
        vec![],
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
    let schedule = state.core.store.get_schedule(id).await?;
    let action = format!("/configuration/schedules/{id}/edit");
    let rows = rows_of(&schedule);
    form(
        &state,
        &user,
        &action,
        &schedule,
        rows,
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
    state.core.store.get_schedule(id).await?;
    save(&state, &admin, id, &body).await
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let s = state.core.store.get_schedule(id).await?;
    let impact = state
        .actions
        .schedule_delete_impact(id)
        .await
        .map_err(action_page_error)?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "schedule",
        &s.name,
        &impact,
        "/configuration/schedules",
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_schedule(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/schedules"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_show_in_the_largest_exact_unit() {
        assert_eq!(split_period(90), (90, "seconds"));
        assert_eq!(split_period(120), (2, "minutes"));
        assert_eq!(split_period(7_200), (2, "hours"));
        assert_eq!(split_period(86_400), (1, "days"));
    }

    #[test]
    fn interval_rows_are_read_and_blank_rows_dropped() {
        let f = FormData::parse(
            b"name=s&start=2026-01-01T00%3A00&value=5&unit=minutes&start=&value=&unit=hours&start=&value=2&unit=hours",
        );
        let (s, rows, errors) = read(&f, 0, 1_000);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(s.intervals[0].period_seconds, 300);
        assert_eq!(
            s.intervals[0].start,
            parse_time("2026-01-01T00:00").unwrap()
        );
        assert_eq!(s.intervals[1].period_seconds, 7_200);
        assert_eq!(s.intervals[1].start, 1_000);
        assert_eq!(local_input(s.intervals[0].start), "2026-01-01T00:00:00");
    }

    #[test]
    fn a_bad_interval_row_is_named() {
        let f = FormData::parse(b"name=s&start=yesterday&value=5&unit=minutes");
        let (_, rows, errors) = read(&f, 0, 0);
        assert_eq!(rows[0].start, "yesterday");
        assert!(errors.fields["intervals"].contains("interval 1"));
    }
}
