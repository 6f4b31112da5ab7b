//! The configured entities: hosts, host groups, plugins, checks, schedules, services,
//! alerts, classifier overrides, users, and the records the system writes (results,
//! rollups, system log messages).
//!
//! Every entity carries its `id`; on create the store ignores the given id and assigns one
//! (except for plugins, whose reverse-DNS id is chosen by the plugin author).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::health::{Classification, Health};

pub type HostId = i64;
pub type HostGroupId = i64;
/// A plugin's reverse-DNS id, e.g. `me.camerongray.proj.cpu_load`.
pub type PluginId = String;
pub type CheckId = i64;
pub type ScheduleId = i64;
pub type IntervalId = i64;
pub type ServiceId = i64;
pub type AlertId = i64;
pub type UserId = i64;
pub type OverrideId = i64;
/// Milliseconds since the Unix epoch, UTC. Times are integers everywhere so both storage
/// backends can hold them the same way.
pub type Millis = i64;

/// One monitored machine, reached through its agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    #[serde(default)]
    pub id: HostId,
    pub name: String,
    /// DNS name or IP address of the agent.
    pub address: String,
    #[serde(default = "default_agent_port")]
    pub port: u16,
    #[serde(default)]
    pub description: String,
    /// The agent's key. The server must present it, so it is stored as given.
    pub auth_key: String,
    /// SHA-256 fingerprint (hex) of the agent's TLS certificate; `None` until
    /// trust-on-first-use records it.
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

pub const DEFAULT_AGENT_PORT: u16 = 4048;

fn default_agent_port() -> u16 {
    DEFAULT_AGENT_PORT
}

fn default_true() -> bool {
    true
}

/// Hosts and other host groups, nested to any depth. Cycles are allowed to exist in the
/// data (they can be built one edit at a time) and the health rules must terminate on them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostGroup {
    #[serde(default)]
    pub id: HostGroupId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub member_hosts: Vec<HostId>,
    #[serde(default)]
    pub member_groups: Vec<HostGroupId>,
}

/// How a plugin's results are shown in the UI.
pub const BUILTIN_VIEWS: [&str; 4] = [
    "value_graph",
    "percent_graph",
    "count_table",
    "message_list",
];

/// A plugin as the server knows it: manifest fields plus the classifier currently in force
/// for it (starting as the manifest's default, editable in the UI). The package archive is
/// stored beside it as a [`PluginPackage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plugin {
    pub id: PluginId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A higher version makes agents update.
    pub version: f64,
    /// How many results (newest last) the classifier sees.
    pub n_historical: u32,
    /// The Lua classifier used when no override applies.
    pub classifier: String,
    /// A built-in view name, or `custom` with `view_source`.
    pub view: String,
    #[serde(default)]
    pub view_source: Option<String>,
    /// The manifest as uploaded, for display.
    #[serde(default)]
    pub manifest: serde_json::Value,
}

/// The package a plugin was uploaded as, pushed to agents as is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginPackage {
    /// The `.tar.gz` archive.
    pub archive: Vec<u8>,
    /// A detached OpenPGP signature over `archive`, binary or armored.
    pub signature: Option<Vec<u8>>,
}

/// A named set of hosts/host groups × a set of plugins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Check {
    #[serde(default)]
    pub id: CheckId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub hosts: Vec<HostId>,
    #[serde(default)]
    pub host_groups: Vec<HostGroupId>,
    pub plugins: Vec<PluginId>,
    /// Per-plugin arguments for this check, passed to the agent as `{"args": {...}}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, Object>))]
    pub plugin_args: BTreeMap<PluginId, serde_json::Map<String, serde_json::Value>>,
}

/// A named set of checks fired at every slot of each of its intervals.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    #[serde(default)]
    pub id: ScheduleId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub checks: Vec<CheckId>,
    pub intervals: Vec<Interval>,
}

/// Fires at `start + k * period` for every k ≥ 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Interval {
    #[serde(default)]
    pub id: IntervalId,
    pub start: Millis,
    pub period_seconds: i64,
}

impl Interval {
    /// The first slot at or after `now`.
    pub fn next_slot_at_or_after(&self, now: Millis) -> Millis {
        let period = self.period_seconds.max(1) * 1000;
        if now <= self.start {
            return self.start;
        }
        let k = (now - self.start + period - 1) / period;
        self.start + k * period
    }
}

/// A host or a host group, as a member of a service or an alert's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Member {
    Host(HostId),
    HostGroup(HostGroupId),
}

/// Hosts/host groups of which at least one must work.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedundancyGroup {
    #[serde(default)]
    pub name: String,
    pub members: Vec<Member>,
}

/// A business function: dependencies (all must work), redundancy groups (one member of
/// each must work) and nested services.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    #[serde(default)]
    pub id: ServiceId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub dependencies: Vec<Member>,
    #[serde(default)]
    pub redundancy_groups: Vec<RedundancyGroup>,
    #[serde(default)]
    pub services: Vec<ServiceId>,
}

/// Which entities an alert watches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertScope {
    #[serde(default)]
    pub all_hosts: bool,
    #[serde(default)]
    pub all_services: bool,
    #[serde(default)]
    pub hosts: Vec<HostId>,
    /// Host groups are expanded recursively.
    #[serde(default)]
    pub host_groups: Vec<HostGroupId>,
    #[serde(default)]
    pub services: Vec<ServiceId>,
}

impl AlertScope {
    pub fn is_empty(&self) -> bool {
        !self.all_hosts
            && !self.all_services
            && self.hosts.is_empty()
            && self.host_groups.is_empty()
            && self.services.is_empty()
    }
}

/// "Notify through this module when the health of these entities goes from one of these
/// states to one of these states", optionally restricted to some plugins and checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    #[serde(default)]
    pub id: AlertId,
    pub name: String,
    pub from_states: Vec<Health>,
    pub to_states: Vec<Health>,
    pub scope: AlertScope,
    /// Empty: any plugin.
    #[serde(default)]
    pub plugins: Vec<PluginId>,
    /// Empty: any check.
    #[serde(default)]
    pub checks: Vec<CheckId>,
    /// Name of the alert module, e.g. `email`.
    pub module: String,
    #[serde(default)]
    pub options: serde_json::Value,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// What a classifier override applies to. The plugin's own classifier is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OverrideTarget {
    Check(CheckId),
    HostGroup(HostGroupId),
    Host(HostId),
}

impl OverrideTarget {
    /// Higher wins: plugin default (0) < check < host group < host.
    pub fn precedence(self) -> u8 {
        match self {
            OverrideTarget::Check(_) => 1,
            OverrideTarget::HostGroup(_) => 2,
            OverrideTarget::Host(_) => 3,
        }
    }
}

/// A classifier used instead of the plugin's own for one check, host group or host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassifierOverride {
    #[serde(default)]
    pub id: OverrideId,
    pub plugin_id: PluginId,
    pub target: OverrideTarget,
    pub n_historical: u32,
    pub code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// May configure everything.
    Admin,
    /// May look at everything and change nothing.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?}: expected admin or viewer")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(default)]
    pub id: UserId,
    pub name: String,
    pub role: Role,
    /// An argon2 PHC string; never the password.
    #[serde(skip_serializing, default)]
    pub password_hash: String,
}

/// Where a system log message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LogCategory {
    Dispatch,
    Distribution,
    Classification,
    Storage,
    Alerting,
    Scheduler,
    System,
}

impl LogCategory {
    pub const ALL: [LogCategory; 7] = [
        LogCategory::Dispatch,
        LogCategory::Distribution,
        LogCategory::Classification,
        LogCategory::Storage,
        LogCategory::Alerting,
        LogCategory::Scheduler,
        LogCategory::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogCategory::Dispatch => "dispatch",
            LogCategory::Distribution => "distribution",
            LogCategory::Classification => "classification",
            LogCategory::Storage => "storage",
            LogCategory::Alerting => "alerting",
            LogCategory::Scheduler => "scheduler",
            LogCategory::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<LogCategory> {
        LogCategory::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// An error or event an administrator should see in the system log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemLogMessage {
    #[serde(default)]
    pub id: i64,
    pub time: Millis,
    pub category: LogCategory,
    pub title: String,
    pub message: String,
    #[serde(default)]
    pub read: bool,
}

/// How a result came about: the plugin ran, or the server could not get an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ResultType {
    Plugin,
    ConnectionError,
    ConnectionTimeout,
    AuthenticationError,
    RequestError,
    CommandUnsuccessful,
}

impl ResultType {
    pub const ALL: [ResultType; 6] = [
        ResultType::Plugin,
        ResultType::ConnectionError,
        ResultType::ConnectionTimeout,
        ResultType::AuthenticationError,
        ResultType::RequestError,
        ResultType::CommandUnsuccessful,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResultType::Plugin => "plugin",
            ResultType::ConnectionError => "connection_error",
            ResultType::ConnectionTimeout => "connection_timeout",
            ResultType::AuthenticationError => "authentication_error",
            ResultType::RequestError => "request_error",
            ResultType::CommandUnsuccessful => "command_unsuccessful",
        }
    }

    pub fn parse(s: &str) -> Option<ResultType> {
        ResultType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One point of the time series: what one plugin said about one host at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckResult {
    pub host_id: HostId,
    pub plugin_id: PluginId,
    /// The check that ran the plugin; `None` for ad-hoc runs.
    pub check_id: Option<CheckId>,
    pub timestamp: Millis,
    pub value: Option<f64>,
    pub message: String,
    pub result_type: ResultType,
    pub classification: Classification,
}

/// Resolutions at which results are rolled up, so long ranges never read raw rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Resolution {
    FiveMinutes,
    OneHour,
}

impl Resolution {
    pub const ALL: [Resolution; 2] = [Resolution::FiveMinutes, Resolution::OneHour];

    pub fn millis(self) -> Millis {
        match self {
            Resolution::FiveMinutes => 5 * 60 * 1000,
            Resolution::OneHour => 60 * 60 * 1000,
        }
    }

    pub fn bucket_start(self, t: Millis) -> Millis {
        t - t.rem_euclid(self.millis())
    }
}

/// Aggregate of the results of one host+plugin in one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollup {
    pub host_id: HostId,
    pub plugin_id: PluginId,
    pub resolution: Resolution,
    pub bucket_start: Millis,
    /// Over the results that had a value; `None` when none had.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    /// All results in the bucket, with or without a value.
    pub count: i64,
    pub worst: Classification,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_next_slot() {
        let i = Interval {
            id: 0,
            start: 1_000,
            period_seconds: 60,
        };
        assert_eq!(i.next_slot_at_or_after(0), 1_000);
        assert_eq!(i.next_slot_at_or_after(1_000), 1_000);
        assert_eq!(i.next_slot_at_or_after(1_001), 61_000);
        assert_eq!(i.next_slot_at_or_after(61_000), 61_000);
    }

    #[test]
    fn member_serializes_as_tagged_object() {
        let m = Member::HostGroup(7);
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"host_group":7}"#);
        let back: Member = serde_json::from_str(r#"{"host":3}"#).unwrap();
        assert_eq!(back, Member::Host(3));
    }

    #[test]
    fn rollup_buckets_align() {
        let r = Resolution::FiveMinutes;
        assert_eq!(r.bucket_start(299_999), 0);
        assert_eq!(r.bucket_start(300_000), 300_000);
        assert_eq!(r.bucket_start(-1), -300_000);
    }

    #[test]
    fn override_precedence() {
        assert!(OverrideTarget::Host(1).precedence() > OverrideTarget::HostGroup(1).precedence());
        assert!(OverrideTarget::HostGroup(1).precedence() > OverrideTarget::Check(1).precedence());
    }
}
