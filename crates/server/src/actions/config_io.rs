//! Configuration as code: `prophasis export` and `prophasis import`.
//!
//! The file names every entity by its stable name (plugins by id and version) instead of
//! database ids, so it can be kept in git, reviewed, and applied to another database.
//! Import never deletes: an entity is matched by name and created or updated, and an
//! import of the same file twice changes nothing the second time.
//!
//! Import validates the whole file before writing anything and reports every problem with
//! its path in the file (`checks[2].hosts[0]`). The store writes one entity per
//! transaction and has no transaction spanning several entities (adding one would mean
//! threading a transaction through every operation of both backends), so a real import
//! applies in dependency order through the ordinary actions and keeps an undo log: if a
//! write fails half way (e.g. the database goes away), what was already written is undone
//! in reverse order — created entities deleted, updated ones written back as they were.
//!
//! Secrets (host auth keys, alert module secret options) are left out of an export unless
//! asked for; an import that does not mention a secret keeps the stored one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use prophasis_alerting::modules;
use prophasis_alerting::AlertSettings;
use prophasis_model::{
    Alert, AlertScope, Check, ClassifierOverride, Health, Host, HostGroup, Interval, Member,
    OverrideTarget, Plugin, PluginId, RedundancyGroup, Schedule, Service, Validate,
};
use prophasis_protocol::package;
use serde::{Deserialize, Serialize};

use super::{ActionError, Actions, Actor, AlertSettingsBody, Result};

/// The version of the file format written by `export`.
pub const FORMAT: u32 = 1;

/// A whole configuration, as written to and read from YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDoc {
    pub format: u32,
    #[serde(default)]
    pub hosts: Vec<HostDoc>,
    #[serde(default)]
    pub host_groups: Vec<HostGroupDoc>,
    #[serde(default)]
    pub plugins: Vec<PluginDoc>,
    #[serde(default)]
    pub checks: Vec<CheckDoc>,
    #[serde(default)]
    pub schedules: Vec<ScheduleDoc>,
    #[serde(default)]
    pub services: Vec<ServiceDoc>,
    #[serde(default)]
    pub alerts: Vec<AlertDoc>,
    #[serde(default)]
    pub classifier_overrides: Vec<OverrideDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDoc {
    pub name: String,
    pub address: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The pinned agent certificate; absent keeps the stored pin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    /// Secret: exported only with `--include-secrets`; absent keeps the stored key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroupDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub host_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDoc {
    pub id: String,
    pub version: f64,
    pub n_historical: u32,
    pub classifier: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub host_groups: Vec<String>,
    pub plugins: Vec<String>,
    #[serde(default)]
    pub plugin_args: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub checks: Vec<String>,
    pub intervals: Vec<IntervalDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalDoc {
    /// Milliseconds since the Unix epoch of the first slot.
    pub start: i64,
    pub period_seconds: i64,
}

/// A host or a host group (exactly one of the two), by name. A map rather than a tagged
/// enum so the YAML reads `- host: web1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedundancyGroupDoc {
    #[serde(default)]
    pub name: String,
    pub members: Vec<MemberDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub dependencies: Vec<MemberDoc>,
    #[serde(default)]
    pub redundancy_groups: Vec<RedundancyGroupDoc>,
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDoc {
    #[serde(default)]
    pub all_hosts: bool,
    #[serde(default)]
    pub all_services: bool,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub host_groups: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDoc {
    pub name: String,
    pub from_states: Vec<Health>,
    pub to_states: Vec<Health>,
    pub scope: ScopeDoc,
    #[serde(default)]
    pub plugins: Vec<String>,
    #[serde(default)]
    pub checks: Vec<String>,
    pub module: String,
    /// Secret options are exported only with `--include-secrets`; absent keeps them.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub settings: AlertSettings,
}

/// What an override applies to: exactly one of check, host group or host, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideDoc {
    pub plugin: String,
    pub target: TargetDoc,
    pub n_historical: u32,
    pub code: String,
}

fn default_port() -> u16 {
    prophasis_model::DEFAULT_AGENT_PORT
}

fn yes() -> bool {
    true
}

/// One problem found in an import file, at its path in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why an import was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file has problems; nothing was written.
    #[error("{} problem(s) in the file; nothing was changed", .0.len())]
    Invalid(Vec<Issue>),
    /// A write failed; what had been written was undone.
    #[error(
        "applying stopped at {step}: {source}; the {undone} change(s) already made were undone"
    )]
    Failed {
        step: String,
        source: ActionError,
        undone: usize,
    },
    /// A write failed and undoing failed too: the database holds part of the file.
    #[error("applying stopped at {step}: {source}; undoing failed too ({undo_error}): re-run the import, or restore your backup")]
    Partial {
        step: String,
        source: ActionError,
        undo_error: String,
    },
    #[error("{0}")]
    Action(#[from] ActionError),
}

/// What importing one entity does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create,
    /// The names of the fields that change.
    Update(Vec<String>),
    Unchanged,
}

/// One entity of the plan.
#[derive(Debug, Clone)]
pub struct Step {
    /// `host`, `host group`, `plugin`, …
    pub kind: &'static str,
    pub name: String,
    pub op: Op,
    payload: Payload,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.op {
            Op::Create => write!(f, "+ {} {}", self.kind, self.name),
            Op::Update(fields) => write!(f, "~ {} {}: {}", self.kind, self.name, fields.join(", ")),
            Op::Unchanged => write!(f, "= {} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone)]
enum Payload {
    Host(HostDoc),
    HostGroup(HostGroupDoc),
    Plugin(PluginDoc, Option<PluginFile>),
    Check(CheckDoc),
    Schedule(ScheduleDoc),
    Service(ServiceDoc),
    Alert(AlertDoc),
    Override(OverrideDoc),
}

#[derive(Debug, Clone)]
struct PluginFile {
    archive: Vec<u8>,
    signature: Option<Vec<u8>>,
}

/// The validated plan of an import: apply it with [`Actions::apply_import`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn count(&self, which: fn(&Op) -> bool) -> usize {
        self.steps.iter().filter(|s| which(&s.op)).count()
    }
}

/// The configuration in the database, indexed by id and by name.
struct Current {
    hosts: Vec<Host>,
    groups: Vec<HostGroup>,
    plugins: Vec<Plugin>,
    checks: Vec<Check>,
    schedules: Vec<Schedule>,
    services: Vec<Service>,
    alerts: Vec<AlertSettingsBody>,
    overrides: Vec<ClassifierOverride>,
}

/// Name ↔ id for the entities named by other entities.
#[derive(Default, Clone)]
struct Names {
    hosts: HashMap<i64, String>,
    groups: HashMap<i64, String>,
    checks: HashMap<i64, String>,
    services: HashMap<i64, String>,
}

/// Name → id, growing as an import creates entities.
#[derive(Default, Clone)]
struct Ids {
    hosts: HashMap<String, i64>,
    groups: HashMap<String, i64>,
    checks: HashMap<String, i64>,
    schedules: HashMap<String, i64>,
    services: HashMap<String, i64>,
    alerts: HashMap<String, i64>,
    plugins: HashSet<String>,
}

fn name_of(map: &HashMap<i64, String>, id: i64) -> String {
    map.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

impl Names {
    fn member(&self, m: &Member) -> MemberDoc {
        match m {
            Member::Host(id) => MemberDoc {
                host: Some(name_of(&self.hosts, *id)),
                host_group: None,
            },
            Member::HostGroup(id) => MemberDoc {
                host: None,
                host_group: Some(name_of(&self.groups, *id)),
            },
        }
    }
    fn hosts(&self, ids: &[i64]) -> Vec<String> {
        sorted(ids.iter().map(|i| name_of(&self.hosts, *i)).collect())
    }
    fn groups(&self, ids: &[i64]) -> Vec<String> {
        sorted(ids.iter().map(|i| name_of(&self.groups, *i)).collect())
    }
    fn checks(&self, ids: &[i64]) -> Vec<String> {
        sorted(ids.iter().map(|i| name_of(&self.checks, *i)).collect())
    }
    fn services(&self, ids: &[i64]) -> Vec<String> {
        sorted(ids.iter().map(|i| name_of(&self.services, *i)).collect())
    }
}

fn secret_names(module: &str) -> Vec<&'static str> {
    modules::info(module)
        .map(|i| {
            i.options
                .iter()
                .filter(|s| s.secret)
                .map(|s| s.name)
                .collect()
        })
        .unwrap_or_default()
}

impl Current {
    fn names(&self) -> Names {
        Names {
            hosts: self.hosts.iter().map(|h| (h.id, h.name.clone())).collect(),
            groups: self.groups.iter().map(|g| (g.id, g.name.clone())).collect(),
            checks: self.checks.iter().map(|c| (c.id, c.name.clone())).collect(),
            services: self
                .services
                .iter()
                .map(|s| (s.id, s.name.clone()))
                .collect(),
        }
    }

    fn ids(&self) -> Ids {
        Ids {
            hosts: self.hosts.iter().map(|h| (h.name.clone(), h.id)).collect(),
            groups: self.groups.iter().map(|g| (g.name.clone(), g.id)).collect(),
            checks: self.checks.iter().map(|c| (c.name.clone(), c.id)).collect(),
            schedules: self
                .schedules
                .iter()
                .map(|s| (s.name.clone(), s.id))
                .collect(),
            services: self
                .services
                .iter()
                .map(|s| (s.name.clone(), s.id))
                .collect(),
            alerts: self
                .alerts
                .iter()
                .map(|a| (a.alert.name.clone(), a.alert.id))
                .collect(),
            plugins: self.plugins.iter().map(|p| p.id.clone()).collect(),
        }
    }

    /// The database as a file; `secrets` decides whether keys and secret options go in.
    fn to_doc(&self, secrets: bool) -> ConfigDoc {
        let n = self.names();
        let mut doc = ConfigDoc {
            format: FORMAT,
            hosts: self.hosts.iter().map(|h| host_doc(h, secrets)).collect(),
            host_groups: self
                .groups
                .iter()
                .map(|g| HostGroupDoc {
                    name: g.name.clone(),
                    description: g.description.clone(),
                    hosts: n.hosts(&g.member_hosts),
                    host_groups: n.groups(&g.member_groups),
                })
                .collect(),
            plugins: self
                .plugins
                .iter()
                .map(|p| PluginDoc {
                    id: p.id.clone(),
                    version: p.version,
                    n_historical: p.n_historical,
                    classifier: p.classifier.clone(),
                })
                .collect(),
            checks: self
                .checks
                .iter()
                .map(|c| CheckDoc {
                    name: c.name.clone(),
                    description: c.description.clone(),
                    hosts: n.hosts(&c.hosts),
                    host_groups: n.groups(&c.host_groups),
                    plugins: sorted(c.plugins.clone()),
                    plugin_args: c.plugin_args.clone(),
                })
                .collect(),
            schedules: self
                .schedules
                .iter()
                .map(|s| ScheduleDoc {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    checks: n.checks(&s.checks),
                    intervals: s
                        .intervals
                        .iter()
                        .map(|i| IntervalDoc {
                            start: i.start,
                            period_seconds: i.period_seconds,
                        })
                        .collect(),
                })
                .collect(),
            services: self
                .services
                .iter()
                .map(|s| ServiceDoc {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    dependencies: s.dependencies.iter().map(|m| n.member(m)).collect(),
                    redundancy_groups: s
                        .redundancy_groups
                        .iter()
                        .map(|r| RedundancyGroupDoc {
                            name: r.name.clone(),
                            members: r.members.iter().map(|m| n.member(m)).collect(),
                        })
                        .collect(),
                    services: n.services(&s.services),
                })
                .collect(),
            alerts: self
                .alerts
                .iter()
                .map(|b| {
                    let a = &b.alert;
                    let mut options = a.options.as_object().cloned().unwrap_or_default();
                    if !secrets {
                        for s in secret_names(&a.module) {
                            options.remove(s);
                        }
                    }
                    AlertDoc {
                        name: a.name.clone(),
                        from_states: a.from_states.clone(),
                        to_states: a.to_states.clone(),
                        scope: ScopeDoc {
                            all_hosts: a.scope.all_hosts,
                            all_services: a.scope.all_services,
                            hosts: n.hosts(&a.scope.hosts),
                            host_groups: n.groups(&a.scope.host_groups),
                            services: n.services(&a.scope.services),
                        },
                        plugins: sorted(a.plugins.clone()),
                        checks: n.checks(&a.checks),
                        module: a.module.clone(),
                        options,
                        enabled: a.enabled,
                        settings: b.settings.clone(),
                    }
                })
                .collect(),
            classifier_overrides: self
                .overrides
                .iter()
                .map(|o| OverrideDoc {
                    plugin: o.plugin_id.clone(),
                    target: match o.target {
                        OverrideTarget::Check(id) => TargetDoc {
                            check: Some(name_of(&n.checks, id)),
                            ..TargetDoc::default()
                        },
                        OverrideTarget::HostGroup(id) => TargetDoc {
                            host_group: Some(name_of(&n.groups, id)),
                            ..TargetDoc::default()
                        },
                        OverrideTarget::Host(id) => TargetDoc {
                            host: Some(name_of(&n.hosts, id)),
                            ..TargetDoc::default()
                        },
                    },
                    n_historical: o.n_historical,
                    code: o.code.clone(),
                })
                .collect(),
        };
        // Stable order whatever the ids, so two exports of the same configuration are
        // the same file.
        doc.hosts.sort_by(|a, b| a.name.cmp(&b.name));
        doc.host_groups.sort_by(|a, b| a.name.cmp(&b.name));
        doc.plugins.sort_by(|a, b| a.id.cmp(&b.id));
        doc.checks.sort_by(|a, b| a.name.cmp(&b.name));
        doc.schedules.sort_by(|a, b| a.name.cmp(&b.name));
        doc.services.sort_by(|a, b| a.name.cmp(&b.name));
        doc.alerts.sort_by(|a, b| a.name.cmp(&b.name));
        doc.classifier_overrides
            .sort_by(|a, b| (&a.plugin, &a.target).cmp(&(&b.plugin, &b.target)));
        doc
    }
}

impl TargetDoc {
    fn label(&self) -> String {
        match (&self.check, &self.host_group, &self.host) {
            (Some(c), None, None) => format!("check {c}"),
            (None, Some(g), None) => format!("host group {g}"),
            (None, None, Some(h)) => format!("host {h}"),
            _ => "(invalid target)".into(),
        }
    }
}

fn host_doc(h: &Host, secrets: bool) -> HostDoc {
    HostDoc {
        name: h.name.clone(),
        address: h.address.clone(),
        port: h.port,
        description: h.description.clone(),
        enabled: h.enabled,
        tls_fingerprint: h.tls_fingerprint.clone(),
        auth_key: secrets.then(|| h.auth_key.clone()),
    }
}

/// The top-level fields whose values differ, for `~ host web1: address, port`.
fn changed_fields<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return vec!["(all)".into()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

fn op_for<T: Serialize>(old: Option<&T>, new: &T) -> Op {
    match old {
        None => Op::Create,
        Some(old) => {
            let fields = changed_fields(old, new);
            if fields.is_empty() {
                Op::Unchanged
            } else {
                Op::Update(fields)
            }
        }
    }
}

/// Collects issues while the file is checked.
struct Checker {
    issues: Vec<Issue>,
    /// Names present in the file or the database, per kind.
    hosts: HashSet<String>,
    groups: HashSet<String>,
    checks: HashSet<String>,
    services: HashSet<String>,
    plugins: HashSet<String>,
}

impl Checker {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn refs(&mut self, path: &str, kind: &str, names: &[String]) {
        for (i, name) in names.iter().enumerate() {
            let known = match kind {
                "host" => self.hosts.contains(name),
                "host group" => self.groups.contains(name),
                "check" => self.checks.contains(name),
                "service" => self.services.contains(name),
                _ => self.plugins.contains(name),
            };
            if !known {
                self.issue(
                    format!("{path}[{i}]"),
                    format!("no {kind} named {name:?} in the file or the database"),
                );
            }
        }
    }

    fn member(&mut self, path: &str, m: &MemberDoc) {
        match (&m.host, &m.host_group) {
            (Some(h), None) => self.refs(path, "host", std::slice::from_ref(h)),
            (None, Some(g)) => self.refs(path, "host group", std::slice::from_ref(g)),
            _ => self.issue(path, "give exactly one of `host` or `host_group`"),
        }
    }

    fn model(&mut self, path: &str, r: std::result::Result<(), ActionError>) {
        if let Err(e) = r {
            let at = match e.field() {
                Some(f) => format!("{path}.{f}"),
                None => path.to_string(),
            };
            let message = match &e {
                ActionError::Invalid(v) => v.message.clone(),
                other => other.to_string(),
            };
            self.issue(at, message);
        }
    }

    fn duplicates<'n>(&mut self, section: &str, names: impl Iterator<Item = &'n str>) {
        let mut seen = HashSet::new();
        for (i, n) in names.enumerate() {
            if !seen.insert(n) {
                self.issue(
                    format!("{section}[{i}].name"),
                    format!("{n:?} appears more than once in {section}"),
                );
            }
        }
    }
}

/// Resolves names to ids for writing; names not created yet (only during validation)
/// get a placeholder id, which validation never looks at.
fn resolve(map: &HashMap<String, i64>, names: &[String]) -> Vec<i64> {
    names
        .iter()
        .filter_map(|n| map.get(n).copied().or(Some(-1)))
        .collect()
}

/// Like [`resolve`] but leaves out names not created yet (first pass of nested groups).
fn resolve_known(map: &HashMap<String, i64>, names: &[String]) -> Vec<i64> {
    names.iter().filter_map(|n| map.get(n).copied()).collect()
}

fn member(ids: &Ids, m: &MemberDoc) -> Member {
    match (&m.host, &m.host_group) {
        (Some(h), _) => Member::Host(ids.hosts.get(h).copied().unwrap_or(-1)),
        (_, Some(g)) => Member::HostGroup(ids.groups.get(g).copied().unwrap_or(-1)),
        _ => Member::Host(-1),
    }
}

fn build_host(d: &HostDoc, existing: Option<&Host>) -> Host {
    Host {
        id: existing.map_or(0, |h| h.id),
        name: d.name.clone(),
        address: d.address.clone(),
        port: d.port,
        description: d.description.clone(),
        auth_key: d
            .auth_key
            .clone()
            .or_else(|| existing.map(|h| h.auth_key.clone()))
            .unwrap_or_default(),
        tls_fingerprint: d
            .tls_fingerprint
            .clone()
            .or_else(|| existing.and_then(|h| h.tls_fingerprint.clone())),
        enabled: d.enabled,
    }
}

fn build_group(d: &HostGroupDoc, ids: &Ids, all: bool) -> HostGroup {
    let r = if all { resolve } else { resolve_known };
    HostGroup {
        id: ids.groups.get(&d.name).copied().unwrap_or(0),
        name: d.name.clone(),
        description: d.description.clone(),
        member_hosts: r(&ids.hosts, &d.hosts),
        member_groups: r(&ids.groups, &d.host_groups),
    }
}

fn build_check(d: &CheckDoc, ids: &Ids) -> Check {
    Check {
        id: ids.checks.get(&d.name).copied().unwrap_or(0),
        name: d.name.clone(),
        description: d.description.clone(),
        hosts: resolve(&ids.hosts, &d.hosts),
        host_groups: resolve(&ids.groups, &d.host_groups),
        plugins: d.plugins.clone(),
        plugin_args: d.plugin_args.clone(),
    }
}

fn build_schedule(d: &ScheduleDoc, ids: &Ids) -> Schedule {
    Schedule {
        id: ids.schedules.get(&d.name).copied().unwrap_or(0),
        name: d.name.clone(),
        description: d.description.clone(),
        checks: resolve(&ids.checks, &d.checks),
        intervals: d
            .intervals
            .iter()
            .map(|i| Interval {
                id: 0,
                start: i.start,
                period_seconds: i.period_seconds,
            })
            .collect(),
    }
}

fn build_service(d: &ServiceDoc, ids: &Ids, all: bool) -> Service {
    let r = if all { resolve } else { resolve_known };
    Service {
        id: ids.services.get(&d.name).copied().unwrap_or(0),
        name: d.name.clone(),
        description: d.description.clone(),
        dependencies: d.dependencies.iter().map(|m| member(ids, m)).collect(),
        redundancy_groups: d
            .redundancy_groups
            .iter()
            .map(|g| RedundancyGroup {
                name: g.name.clone(),
                members: g.members.iter().map(|m| member(ids, m)).collect(),
            })
            .collect(),
        services: r(&ids.services, &d.services),
    }
}

fn build_alert(d: &AlertDoc, ids: &Ids, stored: Option<&AlertSettingsBody>) -> AlertSettingsBody {
    let mut options = d.options.clone();
    if let Some(stored) = stored.filter(|s| s.alert.module == d.module) {
        for s in secret_names(&d.module) {
            if !options.contains_key(s) {
                if let Some(v) = stored.alert.options.get(s) {
                    options.insert(s.to_string(), v.clone());
                }
            }
        }
    }
    AlertSettingsBody {
        alert: Alert {
            id: ids.alerts.get(&d.name).copied().unwrap_or(0),
            name: d.name.clone(),
            from_states: d.from_states.clone(),
            to_states: d.to_states.clone(),
            scope: AlertScope {
                all_hosts: d.scope.all_hosts,
                all_services: d.scope.all_services,
                hosts: resolve(&ids.hosts, &d.scope.hosts),
                host_groups: resolve(&ids.groups, &d.scope.host_groups),
                services: resolve(&ids.services, &d.scope.services),
            },
            plugins: d.plugins.clone(),
            checks: resolve(&ids.checks, &d.checks),
            module: d.module.clone(),
            options: serde_json::Value::Object(options),
            enabled: d.enabled,
        },
        settings: d.settings.clone(),
    }
}

fn build_override(d: &OverrideDoc, ids: &Ids, id: i64) -> ClassifierOverride {
    let target = match (&d.target.check, &d.target.host_group, &d.target.host) {
        (Some(c), _, _) => OverrideTarget::Check(ids.checks.get(c).copied().unwrap_or(-1)),
        (_, Some(g), _) => OverrideTarget::HostGroup(ids.groups.get(g).copied().unwrap_or(-1)),
        (_, _, Some(h)) => OverrideTarget::Host(ids.hosts.get(h).copied().unwrap_or(-1)),
        _ => OverrideTarget::Host(-1),
    };
    ClassifierOverride {
        id,
        plugin_id: d.plugin.clone(),
        target,
        n_historical: d.n_historical,
        code: d.code.clone(),
    }
}

/// The file name `prophasis plugin pack` gives a package, looked for beside the file.
pub fn package_file_name(id: &str, version: f64) -> String {
    format!("{id}-{version}.tar.gz")
}

/// What to undo if a later write fails.
enum Undo {
    Host(Option<Host>, i64),
    HostGroup(Option<HostGroup>, i64),
    Plugin(Option<(Plugin, prophasis_model::PluginPackage)>, PluginId),
    Check(Option<Check>, i64),
    Schedule(Option<Schedule>, i64),
    Service(Option<Service>, i64),
    Alert(Option<AlertSettingsBody>, i64),
    Override(Option<ClassifierOverride>, i64),
}

impl Actions {
    async fn current(&self) -> Result<Current> {
        let s = &self.store;
        let mut alerts = Vec::new();
        for a in s.list_alerts().await? {
            alerts.push(self.alert_with_settings(a.id).await?);
        }
        Ok(Current {
            hosts: s.list_hosts().await?,
            groups: s.list_host_groups().await?,
            plugins: s.list_plugins().await?,
            checks: s.list_checks().await?,
            schedules: s.list_schedules().await?,
            services: s.list_services().await?,
            alerts,
            overrides: s.list_overrides().await?,
        })
    }

    /// The whole configuration as a file. Reading needs no admin, but secrets do.
    pub async fn export_config(&self, actor: &Actor, include_secrets: bool) -> Result<ConfigDoc> {
        if include_secrets {
            actor.require_admin()?;
        }
        Ok(self.current().await?.to_doc(include_secrets))
    }

    /// The installed package of a plugin, to write beside an export.
    pub async fn plugin_package_file(&self, id: &str) -> Result<prophasis_model::PluginPackage> {
        Ok(self.store.plugin_package(id).await?)
    }

    /// Checks the whole file against itself and the database and works out what an
    /// import would do. Nothing is written. Packages of plugins not installed at the
    /// version the file names are looked for in `package_dirs`.
    pub async fn plan_import(
        &self,
        doc: &ConfigDoc,
        package_dirs: &[PathBuf],
    ) -> std::result::Result<Plan, ImportError> {
        let cur = self.current().await?;
        let old = cur.to_doc(true);
        let ids = cur.ids();
        let mut c = Checker {
            issues: Vec::new(),
            hosts: ids.hosts.keys().cloned().collect(),
            groups: ids.groups.keys().cloned().collect(),
            checks: ids.checks.keys().cloned().collect(),
            services: ids.services.keys().cloned().collect(),
            plugins: ids.plugins.clone(),
        };
        if doc.format != FORMAT {
            c.issue(
                "format",
                format!(
                    "this Prophasis reads format {FORMAT}, the file says {}",
                    doc.format
                ),
            );
        }
        c.hosts.extend(doc.hosts.iter().map(|h| h.name.clone()));
        c.groups
            .extend(doc.host_groups.iter().map(|g| g.name.clone()));
        c.checks.extend(doc.checks.iter().map(|x| x.name.clone()));
        c.services
            .extend(doc.services.iter().map(|s| s.name.clone()));
        c.plugins.extend(doc.plugins.iter().map(|p| p.id.clone()));
        c.duplicates("hosts", doc.hosts.iter().map(|x| x.name.as_str()));
        c.duplicates(
            "host_groups",
            doc.host_groups.iter().map(|x| x.name.as_str()),
        );
        c.duplicates("checks", doc.checks.iter().map(|x| x.name.as_str()));
        c.duplicates("schedules", doc.schedules.iter().map(|x| x.name.as_str()));
        c.duplicates("services", doc.services.iter().map(|x| x.name.as_str()));
        c.duplicates("alerts", doc.alerts.iter().map(|x| x.name.as_str()));
        {
            let mut seen = HashSet::new();
            for (i, p) in doc.plugins.iter().enumerate() {
                if !seen.insert(&p.id) {
                    c.issue(
                        format!("plugins[{i}].id"),
                        format!("{:?} appears more than once in plugins", p.id),
                    );
                }
            }
        }
        // Validation builds each entity with ids; names only in the file get distinct
        // placeholder ids so "listed twice" rules still see different entities.
        let ids = {
            let mut p = ids.clone();
            let mut next = -1i64;
            let mut add = |map: &mut HashMap<String, i64>, name: &String| {
                if !map.contains_key(name) {
                    map.insert(name.clone(), next);
                    next -= 1;
                }
            };
            for x in &doc.hosts {
                add(&mut p.hosts, &x.name);
            }
            for x in &doc.host_groups {
                add(&mut p.groups, &x.name);
            }
            for x in &doc.checks {
                add(&mut p.checks, &x.name);
            }
            for x in &doc.services {
                add(&mut p.services, &x.name);
            }
            p
        };
        let mut steps = Vec::new();

        for (i, d) in doc.hosts.iter().enumerate() {
            let path = format!("hosts[{i}]");
            let stored = cur.hosts.iter().find(|h| h.name == d.name);
            let host = build_host(d, stored);
            if stored.is_none() && d.auth_key.is_none() {
                c.issue(
                    format!("{path}.auth_key"),
                    "a new host needs its agent's key: add `auth_key` (shown by `prophasis-agent setup`), or export with --include-secrets",
                );
            } else {
                c.model(&path, host.validate().map_err(Into::into));
            }
            let mut new = d.clone();
            new.auth_key = Some(host.auth_key.clone());
            new.tls_fingerprint = host.tls_fingerprint.clone();
            let before = stored.map(|h| host_doc(h, true));
            steps.push(Step {
                kind: "host",
                name: d.name.clone(),
                op: op_for(before.as_ref(), &new),
                payload: Payload::Host(d.clone()),
            });
        }

        for (i, d) in doc.host_groups.iter().enumerate() {
            let path = format!("host_groups[{i}]");
            c.refs(&format!("{path}.hosts"), "host", &d.hosts);
            c.refs(&format!("{path}.host_groups"), "host group", &d.host_groups);
            c.model(
                &path,
                build_group(d, &ids, true).validate().map_err(Into::into),
            );
            let mut new = d.clone();
            new.hosts = sorted(new.hosts);
            new.host_groups = sorted(new.host_groups);
            let before = old.host_groups.iter().find(|g| g.name == d.name);
            steps.push(Step {
                kind: "host group",
                name: d.name.clone(),
                op: op_for(before, &new),
                payload: Payload::HostGroup(d.clone()),
            });
        }

        for (i, d) in doc.plugins.iter().enumerate() {
            let path = format!("plugins[{i}]");
            let stored = cur.plugins.iter().find(|p| p.id == d.id);
            let mut file = None;
            if stored.map(|p| p.version) != Some(d.version) {
                let name = package_file_name(&d.id, d.version);
                match find_package(package_dirs, &name) {
                    Some((path_found, archive)) => match package::read_manifest(&archive) {
                        Ok(m) if m.id == d.id && m.version == d.version => {
                            let signature = signature_beside(&path_found);
                            file = Some(PluginFile { archive, signature });
                        }
                        Ok(m) => c.issue(
                            &path,
                            format!(
                                "{} holds plugin {} version {}, not {} version {}",
                                path_found.display(),
                                m.id,
                                m.version,
                                d.id,
                                d.version
                            ),
                        ),
                        Err(e) => c.issue(
                            &path,
                            format!("{} is not a valid package: {e}", path_found.display()),
                        ),
                    },
                    None => {
                        let installed = match stored {
                            Some(p) => format!("version {} is installed", p.version),
                            None => "it is not installed".into(),
                        };
                        let looked: Vec<String> = package_dirs
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect();
                        c.issue(
                            &path,
                            format!(
                                "plugin {} version {} is missing: {installed}, and {name} was not found in {}; put the package there (`prophasis export --packages DIR` writes them) or install it first",
                                d.id,
                                d.version,
                                looked.join(", ")
                            ),
                        );
                    }
                }
            }
            if let Err(e) = self.compiles("classifier", &d.classifier).await {
                c.model(&path, Err(e));
            }
            let before = old.plugins.iter().find(|p| p.id == d.id);
            steps.push(Step {
                kind: "plugin",
                name: format!("{} {}", d.id, d.version),
                op: op_for(before, d),
                payload: Payload::Plugin(d.clone(), file),
            });
        }

        for (i, d) in doc.checks.iter().enumerate() {
            let path = format!("checks[{i}]");
            c.refs(&format!("{path}.hosts"), "host", &d.hosts);
            c.refs(&format!("{path}.host_groups"), "host group", &d.host_groups);
            c.refs(&format!("{path}.plugins"), "plugin", &d.plugins);
            c.model(&path, build_check(d, &ids).validate().map_err(Into::into));
            let mut new = d.clone();
            new.hosts = sorted(new.hosts);
            new.host_groups = sorted(new.host_groups);
            new.plugins = sorted(new.plugins);
            let before = old.checks.iter().find(|x| x.name == d.name);
            steps.push(Step {
                kind: "check",
                name: d.name.clone(),
                op: op_for(before, &new),
                payload: Payload::Check(d.clone()),
            });
        }

        for (i, d) in doc.schedules.iter().enumerate() {
            let path = format!("schedules[{i}]");
            c.refs(&format!("{path}.checks"), "check", &d.checks);
            c.model(
                &path,
                build_schedule(d, &ids).validate().map_err(Into::into),
            );
            let mut new = d.clone();
            new.checks = sorted(new.checks);
            let before = old.schedules.iter().find(|x| x.name == d.name);
            steps.push(Step {
                kind: "schedule",
                name: d.name.clone(),
                op: op_for(before, &new),
                payload: Payload::Schedule(d.clone()),
            });
        }

        for (i, d) in doc.services.iter().enumerate() {
            let path = format!("services[{i}]");
            for (j, m) in d.dependencies.iter().enumerate() {
                c.member(&format!("{path}.dependencies[{j}]"), m);
            }
            for (j, g) in d.redundancy_groups.iter().enumerate() {
                for (k, m) in g.members.iter().enumerate() {
                    c.member(&format!("{path}.redundancy_groups[{j}].members[{k}]"), m);
                }
            }
            c.refs(&format!("{path}.services"), "service", &d.services);
            c.model(
                &path,
                build_service(d, &ids, true).validate().map_err(Into::into),
            );
            let mut new = d.clone();
            new.services = sorted(new.services);
            let before = old.services.iter().find(|x| x.name == d.name);
            steps.push(Step {
                kind: "service",
                name: d.name.clone(),
                op: op_for(before, &new),
                payload: Payload::Service(d.clone()),
            });
        }

        for (i, d) in doc.alerts.iter().enumerate() {
            let path = format!("alerts[{i}]");
            c.refs(&format!("{path}.scope.hosts"), "host", &d.scope.hosts);
            c.refs(
                &format!("{path}.scope.host_groups"),
                "host group",
                &d.scope.host_groups,
            );
            c.refs(
                &format!("{path}.scope.services"),
                "service",
                &d.scope.services,
            );
            c.refs(&format!("{path}.plugins"), "plugin", &d.plugins);
            c.refs(&format!("{path}.checks"), "check", &d.checks);
            let stored = cur.alerts.iter().find(|a| a.alert.name == d.name);
            let body = build_alert(d, &ids, stored);
            c.model(&path, body.alert.validate().map_err(Into::into));
            if let Err(e) = modules::validate(&body.alert.module, &body.alert.options) {
                c.model(&path, Err(e.into()));
            }
            if let Err(e) = body.settings.validate() {
                c.model(&path, Err(e.into()));
            }
            let mut new = d.clone();
            new.options = body.alert.options.as_object().cloned().unwrap_or_default();
            new.scope.hosts = sorted(new.scope.hosts);
            new.scope.host_groups = sorted(new.scope.host_groups);
            new.scope.services = sorted(new.scope.services);
            new.plugins = sorted(new.plugins);
            new.checks = sorted(new.checks);
            let before = old.alerts.iter().find(|x| x.name == d.name);
            steps.push(Step {
                kind: "alert",
                name: d.name.clone(),
                op: op_for(before, &new),
                payload: Payload::Alert(d.clone()),
            });
        }

        let mut seen = HashSet::new();
        for (i, d) in doc.classifier_overrides.iter().enumerate() {
            let path = format!("classifier_overrides[{i}]");
            c.refs(
                &format!("{path}.plugin"),
                "plugin",
                std::slice::from_ref(&d.plugin),
            );
            match (&d.target.check, &d.target.host_group, &d.target.host) {
                (Some(n), None, None) => {
                    c.refs(&format!("{path}.target"), "check", std::slice::from_ref(n))
                }
                (None, Some(n), None) => c.refs(
                    &format!("{path}.target"),
                    "host group",
                    std::slice::from_ref(n),
                ),
                (None, None, Some(n)) => {
                    c.refs(&format!("{path}.target"), "host", std::slice::from_ref(n))
                }
                _ => c.issue(
                    format!("{path}.target"),
                    "give exactly one of `check`, `host_group` or `host`",
                ),
            }
            if !seen.insert((d.plugin.clone(), d.target.clone())) {
                c.issue(
                    &path,
                    format!(
                        "a second override of plugin {} for {}",
                        d.plugin,
                        d.target.label()
                    ),
                );
            }
            c.model(
                &path,
                build_override(d, &ids, 0).validate().map_err(Into::into),
            );
            if let Err(e) = self.compiles("code", &d.code).await {
                c.model(&path, Err(e));
            }
            let before = old
                .classifier_overrides
                .iter()
                .find(|x| x.plugin == d.plugin && x.target == d.target);
            steps.push(Step {
                kind: "classifier override",
                name: format!("{} for {}", d.plugin, d.target.label()),
                op: op_for(before, d),
                payload: Payload::Override(d.clone()),
            });
        }

        if c.issues.is_empty() {
            Ok(Plan { steps })
        } else {
            Err(ImportError::Invalid(c.issues))
        }
    }

    /// Applies a plan made by [`Actions::plan_import`], calling `progress` before each
    /// write (with its index and the number of writes). On a failure, the writes already
    /// made are undone.
    pub async fn apply_import(
        &self,
        actor: &Actor,
        plan: &Plan,
        mut progress: impl FnMut(usize, usize, &Step),
    ) -> std::result::Result<usize, ImportError> {
        actor.require_admin()?;
        let cur = self.current().await?;
        let mut ids = cur.ids();
        let mut undo: Vec<Undo> = Vec::new();
        let todo: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.op != Op::Unchanged)
            .collect();
        // Host groups and services may name others of their kind created later in the
        // same file: written first with the members known then, completed afterwards.
        let mut second_pass: Vec<&Step> = Vec::new();
        for (n, step) in todo.iter().enumerate() {
            progress(n + 1, todo.len(), step);
            let r = self
                .apply_step(actor, &cur, &mut ids, step, &mut undo, &mut second_pass)
                .await;
            if let Err(e) = r {
                return Err(self.roll_back(actor, step, e, undo).await);
            }
        }
        for step in second_pass {
            let r = match &step.payload {
                Payload::HostGroup(d) => self
                    .update_host_group(actor, &build_group(d, &ids, true))
                    .await
                    .map(drop),
                Payload::Service(d) => self
                    .update_service(actor, &build_service(d, &ids, true))
                    .await
                    .map(drop),
                _ => Ok(()),
            };
            if let Err(e) = r {
                return Err(self.roll_back(actor, step, e, undo).await);
            }
        }
        Ok(todo.len())
    }

    async fn apply_step<'p>(
        &self,
        actor: &Actor,
        cur: &Current,
        ids: &mut Ids,
        step: &'p Step,
        undo: &mut Vec<Undo>,
        second_pass: &mut Vec<&'p Step>,
    ) -> Result<()> {
        match &step.payload {
            Payload::Host(d) => {
                let stored = cur.hosts.iter().find(|h| h.name == d.name);
                let host = build_host(d, stored);
                let saved = match stored {
                    Some(_) => self.update_host(actor, &host).await?,
                    None => self.create_host(actor, &host).await?,
                };
                ids.hosts.insert(saved.name.clone(), saved.id);
                undo.push(Undo::Host(stored.cloned(), saved.id));
            }
            Payload::HostGroup(d) => {
                let stored = cur.groups.iter().find(|g| g.name == d.name);
                let group = build_group(d, ids, false);
                if group.member_groups.len() != d.host_groups.len() {
                    second_pass.push(step);
                }
                let saved = match stored {
                    Some(_) => self.update_host_group(actor, &group).await?,
                    None => self.create_host_group(actor, &group).await?,
                };
                ids.groups.insert(saved.name.clone(), saved.id);
                undo.push(Undo::HostGroup(stored.cloned(), saved.id));
            }
            Payload::Plugin(d, file) => {
                let stored = cur.plugins.iter().find(|p| p.id == d.id);
                let before = match stored {
                    Some(p) => Some((p.clone(), self.store.plugin_package(&p.id).await?)),
                    None => None,
                };
                let mut plugin = match file {
                    Some(f) => {
                        let p = self
                            .install_plugin(actor, f.archive.clone(), f.signature.clone())
                            .await;
                        // Recorded before checking the outcome: a failed install of a new
                        // plugin leaves nothing, of an existing one is restored.
                        undo.push(Undo::Plugin(before.clone(), d.id.clone()));
                        p?
                    }
                    None => {
                        undo.push(Undo::Plugin(before.clone(), d.id.clone()));
                        self.store.get_plugin(&d.id).await?
                    }
                };
                if plugin.classifier != d.classifier || plugin.n_historical != d.n_historical {
                    plugin = self
                        .update_plugin_classifier(actor, &d.id, &d.classifier, d.n_historical)
                        .await?;
                }
                ids.plugins.insert(plugin.id);
            }
            Payload::Check(d) => {
                let stored = cur.checks.iter().find(|x| x.name == d.name);
                let check = build_check(d, ids);
                let saved = match stored {
                    Some(_) => self.update_check(actor, &check).await?,
                    None => self.create_check(actor, &check).await?,
                };
                ids.checks.insert(saved.name.clone(), saved.id);
                undo.push(Undo::Check(stored.cloned(), saved.id));
            }
            Payload::Schedule(d) => {
                let stored = cur.schedules.iter().find(|x| x.name == d.name);
                let mut schedule = build_schedule(d, ids);
                // Keep interval ids (and so their next run) where the interval is the same.
                if let Some(s) = stored {
                    for i in &mut schedule.intervals {
                        if let Some(old) = s
                            .intervals
                            .iter()
                            .find(|o| o.start == i.start && o.period_seconds == i.period_seconds)
                        {
                            i.id = old.id;
                        }
                    }
                }
                let saved = match stored {
                    Some(_) => self.update_schedule(actor, &schedule).await?,
                    None => self.create_schedule(actor, &schedule).await?,
                };
                ids.schedules.insert(saved.name.clone(), saved.id);
                undo.push(Undo::Schedule(stored.cloned(), saved.id));
            }
            Payload::Service(d) => {
                let stored = cur.services.iter().find(|x| x.name == d.name);
                let service = build_service(d, ids, false);
                if service.services.len() != d.services.len() {
                    second_pass.push(step);
                }
                let saved = match stored {
                    Some(_) => self.update_service(actor, &service).await?,
                    None => self.create_service(actor, &service).await?,
                };
                ids.services.insert(saved.name.clone(), saved.id);
                undo.push(Undo::Service(stored.cloned(), saved.id));
            }
            Payload::Alert(d) => {
                let stored = cur.alerts.iter().find(|a| a.alert.name == d.name);
                let body = build_alert(d, ids, stored);
                let saved = match stored {
                    Some(_) => self.update_alert(actor, &body).await?,
                    None => self.create_alert(actor, &body).await?,
                };
                ids.alerts.insert(saved.alert.name.clone(), saved.alert.id);
                undo.push(Undo::Alert(stored.cloned(), saved.alert.id));
            }
            Payload::Override(d) => {
                let wanted = build_override(d, ids, 0);
                let stored = cur
                    .overrides
                    .iter()
                    .find(|o| o.plugin_id == wanted.plugin_id && o.target == wanted.target);
                let saved = match stored {
                    Some(s) => {
                        self.update_override(actor, &build_override(d, ids, s.id))
                            .await?
                    }
                    None => self.create_override(actor, &wanted).await?,
                };
                undo.push(Undo::Override(stored.cloned(), saved.id));
            }
        }
        Ok(())
    }

    async fn roll_back(
        &self,
        actor: &Actor,
        step: &Step,
        source: ActionError,
        undo: Vec<Undo>,
    ) -> ImportError {
        let undone = undo.len();
        let step = step.to_string();
        for u in undo.into_iter().rev() {
            let r = match u {
                Undo::Host(Some(h), _) => self.update_host(actor, &h).await.map(drop),
                Undo::Host(None, id) => self.delete_host(actor, id).await,
                Undo::HostGroup(Some(g), _) => self.update_host_group(actor, &g).await.map(drop),
                Undo::HostGroup(None, id) => self.delete_host_group(actor, id).await,
                Undo::Plugin(Some((p, pkg)), _) => {
                    match self.install_plugin(actor, pkg.archive, pkg.signature).await {
                        Ok(_) => self
                            .update_plugin_classifier(actor, &p.id, &p.classifier, p.n_historical)
                            .await
                            .map(drop),
                        Err(e) => Err(e),
                    }
                }
                Undo::Plugin(None, id) => match self.delete_plugin(actor, &id).await {
                    Err(ActionError::Store(prophasis_store::StoreError::NotFound { .. })) => Ok(()),
                    r => r,
                },
                Undo::Check(Some(x), _) => self.update_check(actor, &x).await.map(drop),
                Undo::Check(None, id) => self.delete_check(actor, id).await,
                Undo::Schedule(Some(x), _) => self.update_schedule(actor, &x).await.map(drop),
                Undo::Schedule(None, id) => self.delete_schedule(actor, id).await,
                Undo::Service(Some(x), _) => self.update_service(actor, &x).await.map(drop),
                Undo::Service(None, id) => self.delete_service(actor, id).await,
                Undo::Alert(Some(x), _) => self.update_alert(actor, &x).await.map(drop),
                Undo::Alert(None, id) => self.delete_alert(actor, id).await,
                Undo::Override(Some(x), _) => self.update_override(actor, &x).await.map(drop),
                Undo::Override(None, id) => self.delete_override(actor, id).await,
            };
            if let Err(e) = r {
                return ImportError::Partial {
                    step,
                    source,
                    undo_error: e.to_string(),
                };
            }
        }
        ImportError::Failed {
            step,
            source,
            undone,
        }
    }
}

fn find_package(dirs: &[PathBuf], name: &str) -> Option<(PathBuf, Vec<u8>)> {
    dirs.iter().find_map(|d| {
        let p = d.join(name);
        std::fs::read(&p).ok().map(|b| (p, b))
    })
}

/// A detached signature beside a package: `PKG.sig` (binary) or `PKG.asc` (armored).
fn signature_beside(pkg: &Path) -> Option<Vec<u8>> {
    ["sig", "asc"].iter().find_map(|ext| {
        let mut p = pkg.as_os_str().to_owned();
        p.push(format!(".{ext}"));
        std::fs::read(PathBuf::from(p)).ok()
    })
}
