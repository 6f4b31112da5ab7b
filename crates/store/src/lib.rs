//! Storage for Prophasis: one API ([`Store`]) over SQLite (the embedded default) and
//! PostgreSQL (for several server nodes on one database).
//!
//! # Why typed drivers and not sqlx's `Any`
//! Every operation is written once, in `ops.rs`, and compiled twice: `sqlite.rs` and `pg.rs`
//! each include it as a module beside a `DB` type alias (`sqlx::Sqlite` or
//! `sqlx::Postgres`), and [`Store`] holds an enum of the two typed pools. So the SQL is
//! shared (`$N` placeholders, `RETURNING`, `ON CONFLICT … DO UPDATE` work on both) while the
//! hot paths skip the `Any` layer's per-value conversions, booleans can be real `BOOLEAN`s
//! on PostgreSQL, and the results batch can use PostgreSQL arrays (`UNNEST`). Only a
//! handful of functions differ per backend: opening, the write transaction, the migration
//! lock, listing tables, bulk writes of a results batch, range reads and storage statistics.
//!
//! Hot paths, measured in `benches/store.rs`: a results batch is written on SQLite as
//! multi-row `VALUES` with anonymous `?` placeholders, and as `UNNEST` over arrays on
//! PostgreSQL; reads of many rows (a 30-day graph is 43,200 rows; the open buckets of a
//! batch's series) step SQLite's C API on the connection sqlx holds (sqlx's driver hands
//! each row across a channel, 18× slower) and come back from PostgreSQL as one `bytea` per
//! series and hour (raw results) or one row of arrays (`array_agg`, rollups).
//! Booleans are `INTEGER` 0/1 on SQLite and `BOOLEAN` on PostgreSQL (both decode to `bool`
//! through the typed drivers); times are `INTEGER`/`BIGINT` milliseconds.
//!
//! # Opening and migrations
//! [`Store::open`] takes `sqlite://PATH`, `sqlite:PATH`, a bare path, `sqlite::memory:` or
//! `postgres://…`. A new SQLite file is created in WAL mode with `synchronous=FULL`.
//! Migrations (`migrations/<backend>/NNNN_*.sql`, embedded) run in one transaction; the
//! `prophasis_meta` table marks the database as Prophasis's and holds the schema version
//! (the highest number applied) and a record of every migration applied, so a migration
//! numbered below the schema version that a database lacks (numbers are reserved by
//! parallel branches and may merge in any order) is still applied.
//! A database with other tables but no `prophasis_meta`, a file that is not SQLite, or a
//! schema newer than this binary knows is refused ([`StoreError::NotProphasis`],
//! [`StoreError::TooNew`]) before anything is written to it.
//!
//! # Writes
//! Every write validates the entity with [`prophasis_model::Validate`] first, refuses a
//! name (or plugin id) another entity of the same type has ([`StoreError::Duplicate`]) and
//! references to entities that do not exist ([`StoreError::MissingReference`], naming the
//! field), and writes the entity and its children (members, intervals, redundancy groups…)
//! in one transaction, so a failed write leaves nothing behind. Ids given on create are
//! ignored; ids are never reused after a delete.
//!
//! # What a delete takes with it (referential integrity)
//! Each `*_delete_impact` function counts these rows beforehand, for the UI's confirmation.
//! - **Host**: its results, rollups and latest results; its host group memberships, check
//!   memberships, service dependencies, redundancy group memberships, alert scope entries
//!   and host classifier overrides.
//! - **Host group**: its own member lists, its memberships in other groups, check
//!   memberships, service dependencies, redundancy group memberships, alert scope entries
//!   and host group classifier overrides. Member hosts stay.
//! - After a host or host group delete, a **redundancy group** left without members is
//!   removed (it could never be healthy). A service, check or alert whose lists become
//!   empty is kept as it is: the UI shows it, and an administrator decides.
//! - **Plugin**: its package, results, rollups and latest results, check assignments, alert
//!   restrictions and classifier overrides. An alert that was restricted to this plugin
//!   only is **disabled**, because an empty restriction means "any plugin" and deleting
//!   must never widen an alert.
//! - **Check**: its schedule memberships, alert restrictions (an alert restricted to it
//!   only is disabled, as above) and check classifier overrides. Its results stay, with
//!   `check_id` set to NULL (this scans the results table: there is no index on check_id).
//! - **Schedule**: its intervals (and their `next_run`). **Service**: its dependencies,
//!   redundancy groups, nesting in other services and alert scope entries.
//! - **Alert, classifier override, user**: only themselves.
//!
//! # Results
//! Results go in by batch ([`Store::insert_results`]), one transaction, durable on commit.
//! The results table has no foreign keys (checking three parents per row would cost more
//! than the insert); references are checked once per batch. Each batch also upserts the
//! `latest` table (newest result per host and plugin, so health at startup is one read)
//! and updates the 5-minute and hourly rollups, aggregated in Rust per (host, plugin,
//! bucket). Each series' newest ("open") bucket of each resolution is kept in its `latest`
//! row, not in `rollups`: a result in the open bucket costs no rollup write, and a rollups
//! row is written when a bucket closes (a result arrives in a later one) or late data
//! lands in an older one (merged by an upsert). Readers of rollups ([`Store::rollups_range`],
//! [`Store::series`], delete impact counts) add the open bucket, so the answers are those
//! of one table; retention never deletes an open bucket (it belongs to the latest row,
//! which is kept). See `ingest.rs`.
//!
//! Raw results live in two tiers on both backends (SQLite migrations 0006–0008,
//! PostgreSQL 0007): a batch only appends to `results_recent` and writes nothing else, so
//! a batch of 10,000 different series touches a handful of pages instead of a latest row,
//! rollup buckets and a stored page per series. Once an hour (when the newest minute is 65
//! minutes past the watermark), right after a batch and under the same ingest lock, a
//! compaction folds those results into `latest` and `rollups` with the same merge code
//! (once per series per hour instead of once per result) and moves them into the older
//! tier, `result_chunks`: one row per series and hour holding its results in time order as
//! one byte string (`chunk.rs`; a 30-day read is ~720 rows), keyed by hour first on SQLite
//! (the move appends) and by series first on PostgreSQL. A watermark in `prophasis_meta`
//! splits the tiers and says what is folded: every result below it is in the older tier
//! and folded, every other one is in `results_recent` and not folded yet; late results
//! below it go straight into the older tier and are folded at once. Readers, deletes,
//! counts and retention cover both tiers in one snapshot, and the latest result and rollups
//! add what the recent tier holds (see `sqlite.rs`, `sqlite/write.rs`, `sqlite/chunks.rs`,
//! `pg_tiers.rs`).
//!
//! # Serialised ingest (invariant)
//! A batch reads the open buckets of its series, merges in Rust and writes them back, so
//! two batches must not interleave. Within a process [`Store`] holds an async mutex around
//! [`Store::insert_results`]; across processes SQLite's `BEGIN IMMEDIATE` makes the batch's
//! transaction the only writer, and on PostgreSQL every batch takes the same transaction
//! advisory lock before reading. Any new code that writes the open-bucket columns of
//! `latest` must take the same locks. Result types and classifications are stored as small integers and the
//! plugin as an integer surrogate key. A result for the same host, plugin and millisecond
//! as a stored one replaces it (the rollups then count both: it does not happen in
//! practice, one check per host runs at a time; a result replaced while it is still in
//! the recent tier counts once). NaN or infinite values are stored as "no
//! value". [`Store::series`] picks raw results or a rollup resolution by span, so a graph
//! of a year reads 8,760 hourly rows. [`Store::apply_retention`] deletes what is older than
//! the [`Retention`] settings; [`spawn_retention`] runs it periodically.

mod chunk;
mod codes;
mod error;
mod ingest;
mod peek;
mod pg;
mod pg_tiers;
mod sqlite;
mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prophasis_model::*;
use serde::{Deserialize, Serialize};

pub use error::{Result, StoreError};

/// The newest schema version this binary knows (the same for both backends).
pub const SCHEMA_VERSION: i64 = 8;

/// When a compaction moves recent results out of the recent tier and folds them into the
/// latest rows and rollups, in minutes (see "Results" in the crate doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compaction {
    /// Compact once the newest minute is this far past the watermark.
    pub span: i64,
    /// Minutes (counting back from the newest) that stay in the recent tier: results of
    /// the last few minutes still arrive, and below the watermark they would take the
    /// slower late path.
    pub keep: i64,
    /// The new watermark is a multiple of this many minutes (an hour by default), so each
    /// compaction moves whole hours.
    pub align: i64,
}

impl Compaction {
    /// The new watermark when the recent tier's newest minute is `newest` and the
    /// watermark is `watermark`, or `None` when no compaction is due; `now` is the current
    /// minute number. The newest minute counts as `now` at most: a result stamped in the
    /// future (an agent with a wrong clock) must not carry the watermark ahead of time, or
    /// every result until then would take the late path. So the newest `keep` minutes of
    /// the clock always stay recent; results ahead of it wait there until their time.
    pub fn cut(&self, newest: i64, watermark: i64, now: i64) -> Option<i64> {
        let newest = newest.min(now);
        if newest.saturating_sub(watermark) < self.span {
            return None;
        }
        let cut = newest.saturating_sub(self.keep).div_euclid(self.align) * self.align;
        (cut > watermark).then_some(cut)
    }
}

/// What [`Store::insert_results`] needs to decide on a compaction: the newest minute a
/// batch put in the recent tier and the watermark then (`None` when it put none there).
pub(crate) struct Written {
    pub newest_minute: i64,
    pub watermark: i64,
}

/// The current minute number, as the watermark counts.
pub(crate) fn now_minute() -> i64 {
    now_millis().div_euclid(60_000)
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            span: 65,
            keep: 5,
            align: 60,
        }
    }
}

enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Calls the same operation on whichever backend the store was opened on.
macro_rules! dispatch {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(p) => sqlite::ops::$f(p $(, $arg)*).await,
            Backend::Postgres(p) => pg::ops::$f(p $(, $arg)*).await,
        }
    };
}

mod alerting;
pub use alerting::{Acknowledgement, AttemptOutcome, DeliveryAttempt, DeliveryState, OutboxEntry};
mod web;
pub use tokens::{ApiToken, TokenOwner};
pub use web::{Dashboard, WebSession};

/// What deleting an entity would take with it: row counts by kind, every kind listed
/// (zero included) so the UI can show a stable list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeleteImpact(pub BTreeMap<&'static str, i64>);

impl DeleteImpact {
    pub fn get(&self, kind: &str) -> i64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// Whether the delete takes anything beyond the entity itself.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(|n| *n == 0)
    }
}

/// The classification of the newest result of one host and plugin: what host health is
/// computed from at startup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatestClassification {
    pub host_id: HostId,
    pub plugin_id: PluginId,
    pub timestamp: Millis,
    pub classification: Classification,
}

/// Which system log messages to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    pub category: Option<LogCategory>,
    pub unread_only: bool,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// For paging: only messages with a smaller id.
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Default for LogFilter {
    fn default() -> Self {
        LogFilter {
            category: None,
            unread_only: false,
            since: None,
            until: None,
            before_id: None,
            limit: 100,
        }
    }
}

/// How long each resolution of the time series is kept, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub raw_days: u32,
    pub five_minute_days: u32,
    pub hourly_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw_days: 31,
            five_minute_days: 186,
            hourly_days: 5 * 366,
        }
    }
}

/// Rows removed by one [`Store::apply_retention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RetentionReport {
    pub results: u64,
    pub five_minute_rollups: u64,
    pub hourly_rollups: u64,
}

/// Space the database takes, for `/metrics` and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StorageStats {
    /// The whole database (SQLite: the file after a WAL checkpoint).
    pub total_bytes: i64,
    /// The results table with its index, when the backend can tell.
    pub results_bytes: Option<i64>,
}

/// A graph's data: raw results for short spans, rollups for long ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "points", rename_all = "snake_case")]
pub enum Series {
    Raw(Vec<CheckResult>),
    FiveMinutes(Vec<Rollup>),
    OneHour(Vec<Rollup>),
}

/// Raw results up to this span, 5-minute rollups up to [`MAX_FIVE_MINUTE_SPAN`], hourly
/// beyond: each keeps a graph under about 10,000 points.
pub const MAX_RAW_SPAN: Millis = 2 * 24 * 3600 * 1000;
pub const MAX_FIVE_MINUTE_SPAN: Millis = 35 * 24 * 3600 * 1000;

/// The resolution [`Store::series`] reads for a range (`None`: raw results). A range that
/// starts before a resolution's retention moves to the next coarser one.
pub fn choose_resolution(
    from: Millis,
    to: Millis,
    now: Millis,
    retention: &Retention,
) -> Option<Resolution> {
    const DAY: i64 = 24 * 3600 * 1000;
    let span = to - from;
    if span <= MAX_RAW_SPAN && from >= now - retention.raw_days as i64 * DAY {
        None
    } else if span <= MAX_FIVE_MINUTE_SPAN && from >= now - retention.five_minute_days as i64 * DAY
    {
        Some(Resolution::FiveMinutes)
    } else {
        Some(Resolution::OneHour)
    }
}

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// The Prophasis database, SQLite or PostgreSQL. Cheap to share behind an `Arc`; every
/// method takes `&self`.
pub struct Store {
    backend: Backend,
    location: String,
    retention: RwLock<Retention>,
    /// Serialises [`Store::insert_results`] (see "Serialised ingest" in the crate doc).
    ingest: tokio::sync::Mutex<()>,
    /// When recent results are compacted (see [`Compaction`]).
    compaction: RwLock<Compaction>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish()
    }
}

impl Store {
    /// Opens (creating and migrating when needed) the database named by `url`:
    /// `postgres://…`/`postgresql://…`, `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`
    /// or a bare file path.
    pub async fn open(url: &str) -> Result<Store> {
        let (backend, location) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let (pool, location) = pg::open(url).await?;
                (Backend::Postgres(pool), location)
            } else {
                let target = if url == "sqlite::memory:" || url == ":memory:" {
                    sqlite::Target::Memory
                } else if let Some(path) = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                {
                    let path = path.split('?').next().unwrap_or(path);
                    if path.is_empty() {
                        return Err(StoreError::BadUrl(url.to_string()));
                    }
                    sqlite::Target::File(PathBuf::from(path))
                } else if url.contains("://") || url.is_empty() {
                    return Err(StoreError::BadUrl(url.to_string()));
                } else {
                    sqlite::Target::File(PathBuf::from(url))
                };
                let (pool, location) = sqlite::open(&target).await?;
                (Backend::Sqlite(pool), location)
            };
        Ok(Store {
            backend,
            location,
            retention: RwLock::new(Retention::default()),
            ingest: tokio::sync::Mutex::new(()),
            compaction: RwLock::new(Compaction::default()),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Where the data lives, for messages (never includes a password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Waits for connections in use to be returned, then closes them all.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }

    pub async fn schema_version(&self) -> Result<i64> {
        dispatch!(self, schema_version())
    }

    pub async fn storage_stats(&self) -> Result<StorageStats> {
        match &self.backend {
            Backend::Sqlite(p) => sqlite::storage(p).await,
            Backend::Postgres(p) => pg::storage(p).await,
        }
    }

    // --- Hosts -------------------------------------------------------------------------

    pub async fn create_host(&self, host: &Host) -> Result<HostId> {
        dispatch!(self, create_host(host))
    }
    pub async fn update_host(&self, host: &Host) -> Result<()> {
        dispatch!(self, update_host(host))
    }
    pub async fn get_host(&self, id: HostId) -> Result<Host> {
        dispatch!(self, get_host(id))
    }
    /// Ordered by name.
    pub async fn list_hosts(&self) -> Result<Vec<Host>> {
        dispatch!(self, list_hosts())
    }
    pub async fn host_delete_impact(&self, id: HostId) -> Result<DeleteImpact> {
        dispatch!(self, host_delete_impact(id))
    }
    pub async fn delete_host(&self, id: HostId) -> Result<()> {
        dispatch!(self, delete_host(id))
    }

    // --- Host groups -------------------------------------------------------------------

    pub async fn create_host_group(&self, group: &HostGroup) -> Result<HostGroupId> {
        dispatch!(self, create_host_group(group))
    }
    pub async fn update_host_group(&self, group: &HostGroup) -> Result<()> {
        dispatch!(self, update_host_group(group))
    }
    pub async fn get_host_group(&self, id: HostGroupId) -> Result<HostGroup> {
        dispatch!(self, get_host_group(id))
    }
    pub async fn list_host_groups(&self) -> Result<Vec<HostGroup>> {
        dispatch!(self, list_host_groups())
    }
    pub async fn host_group_delete_impact(&self, id: HostGroupId) -> Result<DeleteImpact> {
        dispatch!(self, host_group_delete_impact(id))
    }
    pub async fn delete_host_group(&self, id: HostGroupId) -> Result<()> {
        dispatch!(self, delete_host_group(id))
    }

    // --- Plugins -----------------------------------------------------------------------

    /// Adds a new plugin with its package; an existing id is refused (`Duplicate` on `id`).
    pub async fn put_plugin(&self, plugin: &Plugin, package: &PluginPackage) -> Result<()> {
        dispatch!(self, put_plugin(plugin, package))
    }
    /// Changes a plugin's metadata (e.g. its classifier), and its package when given.
    pub async fn update_plugin(
        &self,
        plugin: &Plugin,
        package: Option<&PluginPackage>,
    ) -> Result<()> {
        dispatch!(self, update_plugin(plugin, package))
    }
    pub async fn get_plugin(&self, id: &str) -> Result<Plugin> {
        dispatch!(self, get_plugin(id))
    }
    /// Ordered by id; packages are not read.
    pub async fn list_plugins(&self) -> Result<Vec<Plugin>> {
        dispatch!(self, list_plugins())
    }
    pub async fn plugin_package(&self, id: &str) -> Result<PluginPackage> {
        dispatch!(self, plugin_package(id))
    }
    pub async fn plugin_delete_impact(&self, id: &str) -> Result<DeleteImpact> {
        dispatch!(self, plugin_delete_impact(id))
    }
    pub async fn delete_plugin(&self, id: &str) -> Result<()> {
        dispatch!(self, delete_plugin(id))
    }

    // --- Checks ------------------------------------------------------------------------

    pub async fn create_check(&self, check: &Check) -> Result<CheckId> {
        dispatch!(self, create_check(check))
    }
    pub async fn update_check(&self, check: &Check) -> Result<()> {
        dispatch!(self, update_check(check))
    }
    pub async fn get_check(&self, id: CheckId) -> Result<Check> {
        dispatch!(self, get_check(id))
    }
    pub async fn list_checks(&self) -> Result<Vec<Check>> {
        dispatch!(self, list_checks())
    }
    pub async fn check_delete_impact(&self, id: CheckId) -> Result<DeleteImpact> {
        dispatch!(self, check_delete_impact(id))
    }
    pub async fn delete_check(&self, id: CheckId) -> Result<()> {
        dispatch!(self, delete_check(id))
    }

    // --- Schedules ---------------------------------------------------------------------

    pub async fn create_schedule(&self, schedule: &Schedule) -> Result<ScheduleId> {
        dispatch!(self, create_schedule(schedule))
    }
    /// Intervals keep their id (and `next_run`, unless start or period changed) when the
    /// edited schedule lists them with their id; others are added or removed.
    pub async fn update_schedule(&self, schedule: &Schedule) -> Result<()> {
        dispatch!(self, update_schedule(schedule))
    }
    pub async fn get_schedule(&self, id: ScheduleId) -> Result<Schedule> {
        dispatch!(self, get_schedule(id))
    }
    pub async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        dispatch!(self, list_schedules())
    }
    pub async fn schedule_delete_impact(&self, id: ScheduleId) -> Result<DeleteImpact> {
        dispatch!(self, schedule_delete_impact(id))
    }
    pub async fn delete_schedule(&self, id: ScheduleId) -> Result<()> {
        dispatch!(self, delete_schedule(id))
    }
    /// The scheduler's persisted next slot of one interval (`None`: not yet planned).
    pub async fn next_run(&self, interval: IntervalId) -> Result<Option<Millis>> {
        dispatch!(self, next_run(interval))
    }
    pub async fn set_next_run(&self, interval: IntervalId, at: Option<Millis>) -> Result<()> {
        dispatch!(self, set_next_run(interval, at))
    }
    /// Every planned interval's next slot, for the scheduler's start.
    pub async fn next_runs(&self) -> Result<HashMap<IntervalId, Millis>> {
        dispatch!(self, next_runs())
    }

    // --- Services ----------------------------------------------------------------------

    pub async fn create_service(&self, service: &Service) -> Result<ServiceId> {
        dispatch!(self, create_service(service))
    }
    pub async fn update_service(&self, service: &Service) -> Result<()> {
        dispatch!(self, update_service(service))
    }
    pub async fn get_service(&self, id: ServiceId) -> Result<Service> {
        dispatch!(self, get_service(id))
    }
    pub async fn list_services(&self) -> Result<Vec<Service>> {
        dispatch!(self, list_services())
    }
    pub async fn service_delete_impact(&self, id: ServiceId) -> Result<DeleteImpact> {
        dispatch!(self, service_delete_impact(id))
    }
    pub async fn delete_service(&self, id: ServiceId) -> Result<()> {
        dispatch!(self, delete_service(id))
    }

    // --- Alerts ------------------------------------------------------------------------

    pub async fn create_alert(&self, alert: &Alert) -> Result<AlertId> {
        dispatch!(self, create_alert(alert))
    }
    pub async fn update_alert(&self, alert: &Alert) -> Result<()> {
        dispatch!(self, update_alert(alert))
    }
    pub async fn get_alert(&self, id: AlertId) -> Result<Alert> {
        dispatch!(self, get_alert(id))
    }
    pub async fn list_alerts(&self) -> Result<Vec<Alert>> {
        dispatch!(self, list_alerts())
    }
    pub async fn delete_alert(&self, id: AlertId) -> Result<()> {
        dispatch!(self, delete_alert(id))
    }

    // --- Classifier overrides ----------------------------------------------------------

    /// One override per plugin and target; a second is refused (`Duplicate` on `target`).
    pub async fn create_override(&self, o: &ClassifierOverride) -> Result<OverrideId> {
        dispatch!(self, create_override(o))
    }
    pub async fn update_override(&self, o: &ClassifierOverride) -> Result<()> {
        dispatch!(self, update_override(o))
    }
    pub async fn get_override(&self, id: OverrideId) -> Result<ClassifierOverride> {
        dispatch!(self, get_override(id))
    }
    pub async fn list_overrides(&self) -> Result<Vec<ClassifierOverride>> {
        dispatch!(self, list_overrides())
    }
    pub async fn delete_override(&self, id: OverrideId) -> Result<()> {
        dispatch!(self, delete_override(id))
    }

    // --- Users -------------------------------------------------------------------------

    pub async fn create_user(&self, user: &User) -> Result<UserId> {
        dispatch!(self, create_user(user))
    }
    /// An empty `password_hash` keeps the stored one.
    pub async fn update_user(&self, user: &User) -> Result<()> {
        dispatch!(self, update_user(user))
    }
    pub async fn get_user(&self, id: UserId) -> Result<User> {
        dispatch!(self, get_user(id))
    }
    /// For logins: `None` when no user has this name.
    pub async fn find_user_by_name(&self, name: &str) -> Result<Option<User>> {
        dispatch!(self, find_user_by_name(name))
    }
    pub async fn list_users(&self) -> Result<Vec<User>> {
        dispatch!(self, list_users())
    }
    pub async fn delete_user(&self, id: UserId) -> Result<()> {
        dispatch!(self, delete_user(id))
    }

    // --- System log --------------------------------------------------------------------

    /// Stores a message (its `id` is ignored) and returns its id.
    pub async fn add_log(&self, message: &SystemLogMessage) -> Result<i64> {
        dispatch!(self, add_log(message))
    }
    /// Newest first.
    pub async fn list_log(&self, filter: &LogFilter) -> Result<Vec<SystemLogMessage>> {
        dispatch!(self, list_log(filter))
    }
    pub async fn unread_log_count(&self) -> Result<i64> {
        dispatch!(self, unread_log_count())
    }
    pub async fn mark_log_read(&self, id: i64) -> Result<()> {
        dispatch!(self, mark_log_read(id))
    }
    /// Returns how many messages were unread.
    pub async fn mark_all_log_read(&self) -> Result<u64> {
        dispatch!(self, mark_all_log_read())
    }

    // --- Results -----------------------------------------------------------------------

    /// Stores a batch in one transaction, with the latest table and rollups; durable when
    /// this returns. Unknown hosts, plugins or checks refuse the whole batch.
    pub async fn insert_results(&self, results: &[CheckResult]) -> Result<()> {
        let _one_writer = self.ingest.lock().await;
        let c = *self.compaction.read().unwrap_or_else(|e| e.into_inner());
        let written = match &self.backend {
            Backend::Sqlite(p) => sqlite::insert_results(p, results).await?,
            Backend::Postgres(p) => pg_tiers::insert_results(p, results).await?,
        };
        let Some(w) = written else {
            return Ok(());
        };
        if c.cut(w.newest_minute, w.watermark, now_minute()).is_none() {
            return Ok(());
        }
        // The batch is committed and durable, so its caller must not see an error (retrying
        // it would count its results twice in the rollups); compaction simply runs again
        // after the next batch.
        let compacted = match &self.backend {
            Backend::Sqlite(p) => sqlite::compact(p, c).await,
            Backend::Postgres(p) => pg_tiers::compact(p, c, w.newest_minute).await,
        };
        if let Err(e) = compacted {
            tracing::warn!(error = %e, "compacting recent results failed");
        }
        Ok(())
    }

    /// Sets when recent results are compacted, in minutes: once the newest minute is
    /// `span` past the watermark, everything but the newest `keep` minutes moves (with the
    /// cut on any minute, not on the hour). For tests, which need compaction to happen
    /// within a small data set.
    #[doc(hidden)]
    pub fn set_compaction_minutes(&self, span: i64, keep: i64) {
        assert!(
            0 <= keep && keep < span,
            "compaction needs 0 <= keep < span"
        );
        *self.compaction.write().unwrap_or_else(|e| e.into_inner()) = Compaction {
            span,
            keep,
            align: 1,
        };
    }
    pub async fn latest_result(&self, host: HostId, plugin: &str) -> Result<Option<CheckResult>> {
        match &self.backend {
            Backend::Sqlite(p) => sqlite::fast::latest_result(p, host, plugin).await,
            Backend::Postgres(p) => pg_tiers::latest_result(p, host, plugin).await,
        }
    }
    /// The newest result of every plugin that has reported on this host, by plugin id.
    pub async fn latest_results_for_host(&self, host: HostId) -> Result<Vec<CheckResult>> {
        match &self.backend {
            Backend::Sqlite(p) => sqlite::fast::latest_results_for_host(p, host).await,
            Backend::Postgres(p) => pg_tiers::latest_results_for_host(p, host).await,
        }
    }
    /// The newest classification of every (host, plugin): what health starts from.
    pub async fn latest_classifications(&self) -> Result<Vec<LatestClassification>> {
        match &self.backend {
            Backend::Sqlite(p) => sqlite::fast::latest_classifications(p).await,
            Backend::Postgres(p) => pg_tiers::latest_classifications(p).await,
        }
    }
    /// The last `n` results, oldest first, as classifiers want them.
    pub async fn last_results(
        &self,
        host: HostId,
        plugin: &str,
        n: u32,
    ) -> Result<Vec<CheckResult>> {
        match &self.backend {
            Backend::Sqlite(p) => sqlite::fast::last_results(p, host, plugin, n).await,
            Backend::Postgres(p) => pg_tiers::last_results(p, host, plugin, n).await,
        }
    }
    /// Raw results with `from <= timestamp < to`, oldest first.
    pub async fn results_range(
        &self,
        host: HostId,
        plugin: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<CheckResult>> {
        match &self.backend {
            Backend::Sqlite(p) => sqlite::fast::results_range(p, host, plugin, from, to).await,
            Backend::Postgres(p) => pg_tiers::results_range(p, host, plugin, from, to).await,
        }
    }
    /// Rollups of the buckets that overlap `[from, to)`, oldest first.
    pub async fn rollups_range(
        &self,
        host: HostId,
        plugin: &str,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Rollup>> {
        match &self.backend {
            Backend::Sqlite(p) => {
                sqlite::fast::rollups_range(p, host, plugin, resolution, from, to).await
            }
            Backend::Postgres(p) => {
                pg_tiers::rollups_range(p, host, plugin, resolution, from, to).await
            }
        }
    }
    /// Data for a graph of `[from, to)`, at the resolution [`choose_resolution`] picks.
    pub async fn series(
        &self,
        host: HostId,
        plugin: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Series> {
        let retention = self.retention();
        Ok(
            match choose_resolution(from, to, now_millis(), &retention) {
                None => Series::Raw(self.results_range(host, plugin, from, to).await?),
                Some(r @ Resolution::FiveMinutes) => {
                    Series::FiveMinutes(self.rollups_range(host, plugin, r, from, to).await?)
                }
                Some(r @ Resolution::OneHour) => {
                    Series::OneHour(self.rollups_range(host, plugin, r, from, to).await?)
                }
            },
        )
    }

    pub fn retention(&self) -> Retention {
        *self.retention.read().unwrap_or_else(|e| e.into_inner())
    }
    pub fn set_retention(&self, retention: Retention) {
        *self.retention.write().unwrap_or_else(|e| e.into_inner()) = retention;
    }
    /// Deletes raw results and rollups older than the retention allows, relative to `now`.
    pub async fn apply_retention(&self, now: Millis) -> Result<RetentionReport> {
        let retention = self.retention();
        match &self.backend {
            Backend::Sqlite(p) => sqlite::chunks::apply_retention(p, now, &retention).await,
            Backend::Postgres(p) => pg_tiers::apply_retention(p, now, &retention).await,
        }
    }
}

/// Runs [`Store::apply_retention`] now and then every `every`, until the returned task is
/// aborted. Failures are logged and retried at the next tick.
pub fn spawn_retention(store: Arc<Store>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.apply_retention(now_millis()).await {
                Ok(report) => tracing::debug!(?report, "retention applied"),
                Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_is_due_an_hour_after_the_watermark_and_cuts_on_the_hour() {
        let c = Compaction::default();
        let now = 1_000_000;
        let wm = 60 * 16_000; // on the hour, well before `now`
        assert_eq!(c.cut(wm + 64, wm, now), None, "64 minutes gathered");
        assert_eq!(c.cut(wm + 65, wm, now), Some(wm + 60), "whole hour, 5 kept");
        assert_eq!(c.cut(wm + 180, wm, now), Some(wm + 120), "two whole hours");
        assert_eq!(
            c.cut(wm + 65, wm + 1, now),
            None,
            "not yet an hour past the watermark"
        );
    }

    #[test]
    fn a_result_from_the_future_does_not_carry_the_watermark_past_now() {
        let c = Compaction::default();
        let now = 60 * 20_000 + 30;
        let wm = 60 * 19_000;
        // A year ahead counts as now.
        assert_eq!(
            c.cut(now + 525_600, wm, now),
            Some((now - c.keep) / 60 * 60)
        );
        // Once the watermark has caught up with now, nothing is due however far ahead the
        // newest result is.
        let wm = (now / 60) * 60;
        assert_eq!(c.cut(now + 525_600, wm, now), None);
    }

    #[test]
    fn resolution_follows_span_and_retention() {
        const DAY: i64 = 24 * 3600 * 1000;
        let r = Retention::default();
        let now = 1_000 * DAY;
        assert_eq!(choose_resolution(now - DAY, now, now, &r), None);
        assert_eq!(
            choose_resolution(now - 30 * DAY, now, now, &r),
            Some(Resolution::FiveMinutes)
        );
        assert_eq!(
            choose_resolution(now - 365 * DAY, now, now, &r),
            Some(Resolution::OneHour)
        );
        // A short range older than the raw retention reads rollups.
        assert_eq!(
            choose_resolution(now - 40 * DAY, now - 39 * DAY, now, &r),
            Some(Resolution::FiveMinutes)
        );
        assert_eq!(
            choose_resolution(now - 300 * DAY, now - 299 * DAY, now, &r),
            Some(Resolution::OneHour)
        );
    }

    #[tokio::test]
    async fn bad_urls_are_refused_with_the_accepted_forms() {
        for url in ["mysql://x/y", "", "sqlite://"] {
            let e = Store::open(url).await.unwrap_err();
            assert!(matches!(e, StoreError::BadUrl(_)), "{url}: {e}");
            assert!(e.to_string().contains("postgres://"));
        }
    }
}
