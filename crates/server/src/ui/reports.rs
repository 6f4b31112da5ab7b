//! The read-only report pages: the overview, host and service health lists (worst first),
//! the host page with one panel per plugin, the service page with its structure, and the
//! check page (that check's plugins across all its hosts).
//!
//! Everything here reads the in-memory catalog and health snapshot; only the host page
//! touches the store (latest results and recent messages), and chart data comes separately
//! from [`super::charts`], so the page itself stays fast at any time range.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use prophasis_model::{
    worst_first, CheckResult, Health, HostId, Member, Millis, Plugin, Service, ServiceId,
};
use prophasis_store::now_millis;
use serde::{Deserialize, Serialize};

use super::session::SessionUser;
use super::{page, UiError};
use crate::catalog::Catalog;
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/hosts", get(hosts))
        .route("/hosts/{id}", get(host))
        .route("/services", get(services))
        .route("/services/{id}", get(service))
        .route("/checks", get(checks))
        .route("/checks/{id}", get(check))
}

/// A row of a health list.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: i64,
    pub name: String,
    pub detail: String,
    pub health: Health,
}

/// Hosts worst first, then by name.
pub fn host_rows(catalog: &Catalog, health: &HashMap<i64, Health>) -> Vec<Row> {
    let mut rows: Vec<Row> = catalog
        .hosts
        .values()
        .map(|h| Row {
            id: h.id,
            name: h.name.clone(),
            detail: h.address.clone(),
            health: health.get(&h.id).copied().unwrap_or(Health::NoData),
        })
        .collect();
    sort_worst_first(&mut rows);
    rows
}

fn service_rows(catalog: &Catalog, health: &HashMap<i64, Health>) -> Vec<Row> {
    let mut rows: Vec<Row> = catalog
        .services
        .iter()
        .map(|s| Row {
            id: s.id,
            name: s.name.clone(),
            detail: s.description.clone(),
            health: health.get(&s.id).copied().unwrap_or(Health::NoData),
        })
        .collect();
    sort_worst_first(&mut rows);
    rows
}

fn sort_worst_first(rows: &mut [Row]) {
    rows.sort_by(|a, b| worst_first((a.health, &a.name), (b.health, &b.name)));
}

fn counts(rows: &[Row]) -> Vec<(&'static str, usize)> {
    Health::ALL
        .iter()
        .rev()
        .map(|h| (h.as_str(), rows.iter().filter(|r| r.health == *h).count()))
        .collect()
}

fn health_maps(state: &AppState) -> (HashMap<i64, Health>, HashMap<i64, Health>) {
    let h = state.core.health.read().expect("health lock");
    let s = h.snapshot();
    (s.hosts.clone(), s.services.clone())
}

async fn overview(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let catalog = state.core.current_catalog();
    let (hh, sh) = health_maps(&state);
    let hosts = host_rows(&catalog, &hh);
    let services = service_rows(&catalog, &sh);
    let problems: Vec<Value> = hosts
        .iter()
        .filter(|r| r.health.is_problem())
        .map(|r| context! { kind => "host", ..Value::from_serialize(r) })
        .chain(
            services
                .iter()
                .filter(|r| r.health.is_problem())
                .map(|r| context! { kind => "service", ..Value::from_serialize(r) }),
        )
        .take(100)
        .collect();
    let transitions: Vec<Value> = state
        .ui
        .live
        .recent()
        .into_iter()
        .take(30)
        .map(|t| {
            let name = match t.kind {
                "host" => catalog.hosts.get(&t.id).map(|h| h.name.clone()),
                _ => catalog
                    .services
                    .iter()
                    .find(|s| s.id == t.id)
                    .map(|s| s.name.clone()),
            }
            .unwrap_or_else(|| format!("{} {}", t.kind, t.id));
            context! { name, ..Value::from_serialize(&t) }
        })
        .collect();
    page(
        &state,
        &user,
        "overview.html",
        "overview",
        context! {
            host_counts => counts(&hosts),
            service_counts => counts(&services),
            host_total => hosts.len(),
            service_total => services.len(),
            problems,
            transitions,
        },
    )
}

async fn hosts(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let catalog = state.core.current_catalog();
    let (hh, _) = health_maps(&state);
    let rows = host_rows(&catalog, &hh);
    page(
        &state,
        &user,
        "hosts.html",
        "hosts",
        context! { counts => counts(&rows), rows },
    )
}

async fn services(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let catalog = state.core.current_catalog();
    let (_, sh) = health_maps(&state);
    let rows = service_rows(&catalog, &sh);
    page(
        &state,
        &user,
        "services.html",
        "services",
        context! { counts => counts(&rows), rows },
    )
}

// --- Host page -------------------------------------------------------------------------

/// The time ranges the picker offers, with their length in ms.
pub const RANGES: &[(&str, i64)] = &[
    ("1h", 3_600_000),
    ("6h", 6 * 3_600_000),
    ("24h", 24 * 3_600_000),
    ("7d", 7 * 86_400_000),
    ("30d", 30 * 86_400_000),
    ("1y", 365 * 86_400_000),
];

#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A resolved time range: `[from, to)` in ms and the picker entry it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub name: String,
    pub from: Millis,
    pub to: Millis,
}

/// `2026-11-26T13:05` (as `datetime-local` inputs send it, taken as UTC) or ms.
pub fn parse_time(s: &str) -> Option<Millis> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<f64>().ok());
    let (hh, mm) = (t.next()?? as i64, t.next()?? as i64);
    let ss = t.next().flatten().unwrap_or(0.0) as i64;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000)
}

impl RangeQuery {
    pub fn resolve(&self, now: Millis) -> Result<TimeRange, UiError> {
        if self.range.as_deref() == Some("custom") || self.from.is_some() {
            let from = self.from.as_deref().and_then(parse_time);
            let to = match self.to.as_deref().filter(|s| !s.is_empty()) {
                Some(t) => parse_time(t),
                None => Some(now),
            };
            return match (from, to) {
                (Some(from), Some(to)) if from < to => Ok(TimeRange {
                    name: "custom".into(),
                    from,
                    to,
                }),
                _ => Err(UiError::BadRequest(
                    "The custom time range needs a start before its end, as 2026-11-26T13:05 (UTC) or milliseconds.".into(),
                )),
            };
        }
        let name = self.range.as_deref().unwrap_or("24h");
        let (name, len) = RANGES.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            UiError::BadRequest(format!(
                "Unknown time range {name:?}: choose 1h, 6h, 24h, 7d, 30d, 1y or custom."
            ))
        })?;
        Ok(TimeRange {
            name: name.to_string(),
            from: now - len,
            to: now,
        })
    }
}

/// Results a message list or count table shows at most.
const RECENT_RESULTS: u32 = 200;

#[derive(Serialize)]
struct Panel {
    id: String,
    name: String,
    description: String,
    view: String,
    latest: Option<CheckResult>,
    /// The plugin's own template, rendered (custom views).
    custom_html: Option<String>,
    custom_error: Option<String>,
    /// Message list: newest first; count table: (label, count) by classification.
    recent: Vec<CheckResult>,
    counts: Vec<(String, usize)>,
}

async fn host(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<HostId>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, UiError> {
    let now = now_millis();
    let range = q.resolve(now)?;
    let catalog = state.core.current_catalog();
    let host = catalog
        .hosts
        .get(&id)
        .ok_or_else(|| UiError::NotFound(format!("There is no host {id}.")))?
        .clone();
    let health = state.core.health.read().expect("health lock").host(id);
    let latest: HashMap<String, CheckResult> = state
        .core
        .store
        .latest_results_for_host(id)
        .await?
        .into_iter()
        .map(|r| (r.plugin_id.clone(), r))
        .collect();
    let mut plugin_ids: Vec<&String> = catalog.topology.host_plugins(id).collect();
    plugin_ids.sort();
    let mut panels = Vec::new();
    for pid in plugin_ids {
        let plugin = catalog.plugins.get(pid).cloned().unwrap_or_else(|| Plugin {
            id: pid.clone(),
            name: pid.clone(),
            description: String::new(),
            version: 0.0,
            n_historical: 0,
            classifier: String::new(),
            view: "message_list".into(),
            view_source: None,
            manifest: serde_json::Value::Null,
        });
        let needs_results = matches!(
            plugin.view.as_str(),
            "message_list" | "count_table" | "custom"
        );
        let recent: Vec<CheckResult> = if needs_results {
            let mut r = state
                .core
                .store
                .last_results(id, pid, RECENT_RESULTS)
                .await?;
            r.retain(|x| x.timestamp >= range.from && x.timestamp < range.to);
            r.reverse();
            r
        } else {
            Vec::new()
        };
        let mut counts = Vec::new();
        if plugin.view == "count_table" {
            let mut by: HashMap<String, usize> = HashMap::new();
            for r in &recent {
                let label = match r.value {
                    Some(v) => format!("{v}"),
                    None => r.message.clone(),
                };
                *by.entry(label).or_default() += 1;
            }
            counts = by.into_iter().collect();
            counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        }
        let (custom_html, custom_error) = if plugin.view == "custom" {
            match custom_view(&plugin, &host.name, &range, latest.get(pid), &recent) {
                Ok(html) => (Some(html), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        panels.push(Panel {
            id: plugin.id.clone(),
            name: plugin.name.clone(),
            description: plugin.description.clone(),
            view: plugin.view.clone(),
            latest: latest.get(pid).cloned(),
            custom_html,
            custom_error,
            recent: if plugin.view == "message_list" {
                recent.into_iter().take(50).collect()
            } else {
                Vec::new()
            },
            counts,
        });
    }
    let checks: Vec<(i64, String)> = {
        let mut c: Vec<(i64, String)> = catalog
            .checks
            .values()
            .filter(|c| {
                c.hosts.contains(&id)
                    || c.host_groups
                        .iter()
                        .any(|g| catalog.topology.group_hosts(*g).any(|h| h == id))
            })
            .map(|c| (c.id, c.name.clone()))
            .collect();
        c.sort_by(|a, b| a.1.cmp(&b.1));
        c
    };
    page(
        &state,
        &user,
        "host.html",
        "hosts",
        context! {
            host => context! { id => host.id, name => host.name, address => host.address,
                               port => host.port, description => host.description,
                               enabled => host.enabled },
            health,
            panels,
            checks,
            range,
            ranges => RANGES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        },
    )
}

/// Fuel for one custom view: enough for loops over a few hundred results, not for a
/// template that never ends.
const CUSTOM_VIEW_FUEL: u64 = 200_000;

/// Renders a plugin's own Jinja view in a sandbox of its own: auto-escaped (the template
/// is named `.html`), bounded by fuel, no access to other templates. It sees `host` (the
/// name), `plugin` (`id`, `name`), `time_range` (`from`, `to` in ms), `latest` (the newest
/// result or none) and `results` (up to 200 recent results in the range, oldest first).
pub fn custom_view(
    plugin: &Plugin,
    host_name: &str,
    range: &TimeRange,
    latest: Option<&CheckResult>,
    results: &[CheckResult],
) -> Result<String, String> {
    let source = plugin
        .view_source
        .as_deref()
        .ok_or("the plugin has view \"custom\" but no view source")?;
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(CUSTOM_VIEW_FUEL));
    env.add_filter("datetime", |ms: i64| super::live::datetime(ms));
    env.add_template("view.html", source)
        .map_err(|e| format!("the template does not compile: {e}"))?;
    let oldest_first: Vec<&CheckResult> = results.iter().rev().collect();
    env.get_template("view.html")
        .and_then(|t| {
            t.render(context! {
                host => host_name,
                plugin => context! { id => &plugin.id, name => &plugin.name },
                // Not `range`: that would hide the built-in range() function.
                time_range => range,
                latest,
                results => oldest_first,
            })
        })
        .map_err(|e| format!("the template failed: {e}"))
}

// --- Services --------------------------------------------------------------------------

#[derive(Serialize)]
struct MemberView {
    kind: &'static str,
    id: i64,
    name: String,
    health: Health,
    /// For a host group: its hosts.
    hosts: Vec<Row>,
}

fn member_view(catalog: &Catalog, hh: &HashMap<i64, Health>, m: &Member) -> MemberView {
    let hv = |h: HostId| hh.get(&h).copied().unwrap_or(Health::NoData);
    match *m {
        Member::Host(h) => MemberView {
            kind: "host",
            id: h,
            name: catalog
                .hosts
                .get(&h)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| format!("host {h}")),
            health: hv(h),
            hosts: Vec::new(),
        },
        Member::HostGroup(g) => {
            let mut hosts: Vec<Row> = catalog
                .topology
                .group_hosts(g)
                .map(|h| Row {
                    id: h,
                    name: catalog
                        .hosts
                        .get(&h)
                        .map(|x| x.name.clone())
                        .unwrap_or_default(),
                    detail: String::new(),
                    health: hv(h),
                })
                .collect();
            sort_worst_first(&mut hosts);
            MemberView {
                kind: "host_group",
                id: g,
                name: catalog
                    .groups
                    .iter()
                    .find(|x| x.id == g)
                    .map(|x| x.name.clone())
                    .unwrap_or_else(|| format!("host group {g}")),
                health: catalog.topology.group_health(g, hh),
                hosts,
            }
        }
    }
}

fn find_service(catalog: &Catalog, id: ServiceId) -> Option<&Service> {
    catalog.services.iter().find(|s| s.id == id)
}

async fn service(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<ServiceId>,
) -> Result<Response, UiError> {
    let catalog = state.core.current_catalog();
    let (hh, sh) = health_maps(&state);
    let s = find_service(&catalog, id)
        .ok_or_else(|| UiError::NotFound(format!("There is no service {id}.")))?;
    let dependencies: Vec<MemberView> = s
        .dependencies
        .iter()
        .map(|m| member_view(&catalog, &hh, m))
        .collect();
    let redundancy_groups: Vec<Value> = s
        .redundancy_groups
        .iter()
        .map(|rg| {
            context! {
                name => &rg.name,
                health => catalog.topology.redundancy_group_health(rg, &hh),
                members => rg.members.iter().map(|m| member_view(&catalog, &hh, m)).collect::<Vec<_>>(),
            }
        })
        .collect();
    let nested: Vec<Row> = s
        .services
        .iter()
        .map(|n| Row {
            id: *n,
            name: find_service(&catalog, *n)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| format!("service {n}")),
            detail: String::new(),
            health: sh.get(n).copied().unwrap_or(Health::NoData),
        })
        .collect();
    let used_by: Vec<Row> = catalog
        .services
        .iter()
        .filter(|o| o.services.contains(&id))
        .map(|o| Row {
            id: o.id,
            name: o.name.clone(),
            detail: String::new(),
            health: sh.get(&o.id).copied().unwrap_or(Health::NoData),
        })
        .collect();
    page(
        &state,
        &user,
        "service.html",
        "services",
        context! {
            service => context! { id => s.id, name => &s.name, description => &s.description },
            health => sh.get(&id).copied().unwrap_or(Health::NoData),
            dependencies,
            redundancy_groups,
            nested,
            used_by,
        },
    )
}

// --- Checks ----------------------------------------------------------------------------

async fn checks(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let catalog = state.core.current_catalog();
    let mut rows: Vec<Value> = catalog
        .checks
        .values()
        .map(|c| {
            context! { id => c.id, name => &c.name, description => &c.description,
            plugins => c.plugins.len(), hosts => check_hosts(&catalog, c.id).len() }
        })
        .collect();
    rows.sort_by_key(|v| {
        v.get_attr("name")
            .map(|n| n.to_string())
            .unwrap_or_default()
    });
    page(&state, &user, "checks.html", "checks", context! { rows })
}

/// Every host a check runs on (directly or through host groups), sorted by name.
fn check_hosts(catalog: &Catalog, check: i64) -> Vec<HostId> {
    let Some(c) = catalog.checks.get(&check) else {
        return Vec::new();
    };
    let mut hosts: Vec<HostId> = c
        .hosts
        .iter()
        .copied()
        .chain(
            c.host_groups
                .iter()
                .flat_map(|g| catalog.topology.group_hosts(*g)),
        )
        .collect();
    hosts.sort_by_key(|h| catalog.hosts.get(h).map(|x| x.name.clone()));
    hosts.dedup();
    hosts
}

/// The status grid of a check: hosts × plugins, each cell the latest classification.
pub async fn check_grid(state: &AppState, check: i64) -> Result<Value, UiError> {
    let catalog = state.core.current_catalog();
    let c = catalog
        .checks
        .get(&check)
        .ok_or_else(|| UiError::NotFound(format!("There is no check {check}.")))?;
    let hh = health_maps(state).0;
    let mut rows = Vec::new();
    for h in check_hosts(&catalog, check) {
        let latest: HashMap<String, CheckResult> = state
            .core
            .store
            .latest_results_for_host(h)
            .await?
            .into_iter()
            .map(|r| (r.plugin_id.clone(), r))
            .collect();
        let cells: Vec<Value> = c
            .plugins
            .iter()
            .map(|p| match latest.get(p) {
                Some(r) => context! {
                    classification => r.classification.as_str(),
                    value => r.value, message => &r.message, timestamp => r.timestamp,
                },
                None => context! { classification => "no_data" },
            })
            .collect();
        rows.push(context! {
            id => h,
            name => catalog.hosts.get(&h).map(|x| x.name.clone()).unwrap_or_default(),
            health => hh.get(&h).copied().unwrap_or(Health::NoData),
            cells,
        });
    }
    let plugins: Vec<Value> = c
        .plugins
        .iter()
        .map(|p| {
            context! { id => p, name => catalog.plugins.get(p).map(|x| x.name.clone()).unwrap_or_else(|| p.clone()) }
        })
        .collect();
    Ok(context! {
        check => context! { id => c.id, name => &c.name, description => &c.description },
        plugins,
        rows,
    })
}

async fn check(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let grid = check_grid(&state, id).await?;
    page(&state, &user, "check.html", "checks", context! { grid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_times_parse_as_utc() {
        assert_eq!(parse_time("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_time("2026-11-26T13:05:09"), Some(1_795_698_309_000));
        assert_eq!(parse_time("12345"), Some(12345));
        assert_eq!(parse_time("2026-13-01T00:00"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn ranges_resolve() {
        let q = RangeQuery {
            range: Some("6h".into()),
            ..Default::default()
        };
        assert_eq!(q.resolve(10 * 3_600_000).unwrap().from, 4 * 3_600_000);
        let bad = RangeQuery {
            range: Some("2w".into()),
            ..Default::default()
        };
        assert!(bad.resolve(0).is_err());
        let custom = RangeQuery {
            range: Some("custom".into()),
            from: Some("2000".into()),
            to: Some("1000".into()),
        };
        assert!(custom.resolve(5000).is_err(), "start after end");
    }

    #[test]
    fn custom_views_escape_and_stop() {
        let mut p = Plugin {
            id: "p".into(),
            name: "P".into(),
            description: String::new(),
            version: 1.0,
            n_historical: 1,
            classifier: String::new(),
            view: "custom".into(),
            view_source: Some("<b>{{ latest.message }}</b>".into()),
            manifest: serde_json::Value::Null,
        };
        let r = CheckResult {
            host_id: 1,
            plugin_id: "p".into(),
            check_id: None,
            timestamp: 0,
            value: None,
            message: "<script>x</script>".into(),
            result_type: prophasis_model::ResultType::Plugin,
            classification: prophasis_model::Classification::Ok,
        };
        let range = TimeRange {
            name: "1h".into(),
            from: 0,
            to: 1,
        };
        let html = custom_view(&p, "h", &range, Some(&r), &[]).unwrap();
        assert_eq!(html, "<b>&lt;script&gt;x&lt;&#x2f;script&gt;</b>");
        // A million iterations: the fuel runs out long before.
        let mut endless = String::from("{% set xs = [0,1,2,3,4,5,6,7,8,9] %}");
        endless += &"{% for a in xs %}".repeat(6);
        endless += "{{ a }}";
        endless += &"{% endfor %}".repeat(6);
        p.view_source = Some(endless);
        let err = custom_view(&p, "h", &range, Some(&r), &[]).unwrap_err();
        assert!(err.contains("fuel"), "{err}");
    }
}
