//! Every store operation, written once and compiled twice: `sqlite.rs` and `pg.rs` each
//! include this file as a module beside their own `DB` alias, so the same SQL and Rust run
//! on `sqlx::Sqlite` and on `sqlx::Postgres` with typed (fast) drivers and no `Any` layer.
//!
//! What differs between the backends lives in the parent module and is reached through
//! `super::`: opening a write transaction, listing tables, the migration lock, the bulk
//! writes of a results batch and storage statistics.
//! The results tiers are the one schema difference the shared statements know about: both
//! keep `result_chunks` (one row per series and hour) + `results_recent`, with other keys
//! and columns (see `sqlite.rs`, `sqlite/chunks.rs` and `pg_tiers.rs`); counts differ, and
//! retention is each backend's own.

use std::collections::{BTreeMap, HashMap, HashSet};

use prophasis_model::*;
use sqlx::Row as _;

use super::DB;
use crate::codes::*;
use crate::error::{fk_as_missing, unique_as_duplicate, Result, StoreError};
use crate::{DeleteImpact, LogFilter, Retention, RetentionReport};

type Pool = sqlx::Pool<DB>;
type Conn = <DB as sqlx::Database>::Connection;
type DbRow = <DB as sqlx::Database>::Row;

pub(crate) const META_TABLE: &str = "prophasis_meta";

fn is_postgres() -> bool {
    <DB as sqlx::Database>::NAME == "PostgreSQL"
}

/// The recent tier (minutes of data), on both backends.
const RECENT: &str = "results_recent";

/// The tables that hold raw results: the chunked (compacted) tier first, then the recent
/// tier (see the module docs of `sqlite.rs` and `pg_tiers.rs`). Statements that find rows
/// by host or plugin run on each; on the recent tier (an hour or less of data) that is a
/// short scan.
const RESULT_TABLES: [&str; 2] = ["result_chunks", RECENT];

/// The rollup buckets that exist only through results still in the recent tier (not
/// folded yet): buckets of those results that are neither a rollups row nor an open
/// bucket, as ` + (…)` terms of a count whose `$1` is the value of `column`.
fn unfolded_buckets(column: &str) -> String {
    let mut sql = String::new();
    for (code, prefix, ms) in [(1, "m5", 300_000), (2, "h1", 3_600_000)] {
        sql.push_str(&format!(
            " + (SELECT COUNT(*) FROM (SELECT DISTINCT host_id, plugin_pk, \
               ts - ((ts % {ms}) + {ms}) % {ms} AS b FROM {RECENT} WHERE {column} = $1) x \
             WHERE NOT EXISTS (SELECT 1 FROM rollups r WHERE r.host_id = x.host_id \
               AND r.plugin_pk = x.plugin_pk AND r.resolution = {code} AND r.bucket = x.b) \
             AND NOT EXISTS (SELECT 1 FROM latest l WHERE l.host_id = x.host_id \
               AND l.plugin_pk = x.plugin_pk AND l.{prefix}_bucket = x.b))"
        ));
    }
    sql
}

/// `SELECT COUNT(*)` of the series (latest results) whose `column` is `$1`: the latest
/// rows, and series that so far only have results in the recent tier (no latest row yet).
fn count_series(column: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM (SELECT host_id, plugin_pk FROM latest WHERE {column} = $1 \
         UNION SELECT host_id, plugin_pk FROM {RECENT} WHERE {column} = $1) x"
    )
}

/// The condition selecting the rows of `table` whose `column` (`host_id` or `plugin_pk`)
/// is `$1`. SQLite's chunks are keyed by (hour, host, plugin) (migration 0008): a host's or
/// plugin's chunks are found through the key index, one seek per hour that holds any (the
/// hours are listed by hopping from one to the next), instead of a scan of every chunk
/// (about 1.5 KB each): the index entries are read, and only matching chunks themselves.
fn rows_where(table: &str, column: &str) -> String {
    if !is_postgres() && table == "result_chunks" {
        format!(
            "hour IN (WITH RECURSIVE h(x) AS (SELECT MIN(hour) FROM result_chunks \
             UNION ALL SELECT (SELECT MIN(hour) FROM result_chunks WHERE hour > x) FROM h \
             WHERE x IS NOT NULL) SELECT x FROM h WHERE x IS NOT NULL) AND {column} = $1"
        )
    } else {
        format!("{column} = $1")
    }
}

/// `SELECT COUNT(*)` of the results whose `column` is `$1` in both tiers, in one
/// statement (one snapshot). A chunk holds `cardinality(ts)` results on PostgreSQL, `n`
/// on SQLite.
fn count_results(column: &str) -> String {
    let in_chunk = if is_postgres() {
        "cardinality(ts)"
    } else {
        "n"
    };
    format!(
        "SELECT (SELECT COALESCE(SUM({in_chunk}), 0) FROM result_chunks WHERE {}) \
         + (SELECT COUNT(*) FROM results_recent WHERE {column} = $1)",
        rows_where("result_chunks", column)
    )
}

const APPLICATION: &str = "prophasis";

// ---------------------------------------------------------------------------------------
// Migrations

/// Brings the database to the newest schema this binary knows, in one transaction, after
/// making sure it is a Prophasis database (or empty) and not from a newer Prophasis.
pub(crate) async fn migrate(
    pool: &Pool,
    location: &str,
    migrations: &[(i64, &str)],
) -> Result<i64> {
    let supported = migrations.last().map_or(0, |m| m.0);
    let mut tx = super::begin(pool).await?;
    super::lock_for_migration(&mut tx).await?;
    let version = match inspect(&mut tx, location).await? {
        Some(v) => v,
        None => {
            sqlx::query(&format!(
                "CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO {META_TABLE} (key, value) VALUES ('application', $1), ('schema_version', '0')"
            ))
            .bind(APPLICATION)
            .execute(&mut *tx)
            .await?;
            0
        }
    };
    if version > supported {
        return Err(StoreError::TooNew {
            location: location.to_string(),
            found: version,
            supported,
        });
    }
    // Migration numbers can have gaps (branches reserve numbers and merge in any order), so
    // each applied migration is recorded by number and any listed one that is missing is
    // applied, in ascending order, even below the schema version. A database from before
    // these records has applied exactly the migrations up to its schema version.
    let recorded: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT key FROM {META_TABLE} WHERE key LIKE 'migration_%'"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let applied: HashSet<i64> = if recorded.is_empty() {
        let mut inferred = HashSet::new();
        for (v, _) in migrations.iter().filter(|(v, _)| *v <= version) {
            record_migration(&mut tx, *v).await?;
            inferred.insert(*v);
        }
        inferred
    } else {
        recorded
            .iter()
            .filter_map(|k| k.strip_prefix("migration_")?.parse().ok())
            .collect()
    };
    let mut newest = version;
    for (v, sql) in migrations.iter().filter(|(v, _)| !applied.contains(v)) {
        tracing::info!(version = v, "applying storage migration");
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        super::after_migration(&mut tx, *v).await?;
        record_migration(&mut tx, *v).await?;
        newest = newest.max(*v);
        sqlx::query(&format!(
            "UPDATE {META_TABLE} SET value = $1 WHERE key = 'schema_version'"
        ))
        .bind(newest.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(newest)
}

async fn record_migration(conn: &mut Conn, version: i64) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {META_TABLE} (key, value) VALUES ($1, 'applied')"
    ))
    .bind(format!("migration_{version:04}"))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `None` for an empty database; the schema version of a Prophasis database; an error for
/// anything else. Reads only.
pub(crate) async fn inspect(conn: &mut Conn, location: &str) -> Result<Option<i64>> {
    let tables = super::list_tables(conn).await?;
    if !tables.iter().any(|t| t == META_TABLE) {
        if tables.is_empty() {
            return Ok(None);
        }
        let mut shown: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
        if tables.len() > 5 {
            shown.push("…");
        }
        return Err(StoreError::NotProphasis {
            location: location.to_string(),
            reason: format!(
                "it has tables ({}) but no {META_TABLE} table",
                shown.join(", ")
            ),
        });
    }
    let rows = sqlx::query(&format!("SELECT key, value FROM {META_TABLE}"))
        .fetch_all(&mut *conn)
        .await?;
    let meta: HashMap<String, String> = rows
        .iter()
        .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    if meta.get("application").map(String::as_str) != Some(APPLICATION) {
        return Err(StoreError::NotProphasis {
            location: location.to_string(),
            reason: format!("its {META_TABLE} table does not name the application {APPLICATION:?}"),
        });
    }
    let version = meta
        .get("schema_version")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| StoreError::NotProphasis {
            location: location.to_string(),
            reason: "its schema version is missing or not a number".into(),
        })?;
    Ok(Some(version))
}

pub(crate) async fn schema_version(pool: &Pool) -> Result<i64> {
    let v: String = sqlx::query_scalar(&format!(
        "SELECT value FROM {META_TABLE} WHERE key = 'schema_version'"
    ))
    .fetch_one(pool)
    .await?;
    v.parse()
        .map_err(|_| StoreError::Corrupt(format!("schema version {v:?}")))
}

// ---------------------------------------------------------------------------------------
// Shared helpers

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Which of `ids` exist in `table`; used to name the first missing reference of a batch.
// PostgreSQL's ingest checks references with it; SQLite's looks ids up one by one
// through the C API (`sqlite/write.rs`), so that copy is unused.
#[allow(dead_code)]
pub(crate) async fn existing_ids(
    conn: &mut Conn,
    table: &str,
    ids: &[i64],
) -> Result<HashSet<i64>> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id FROM {table} WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_scalar::<DB, i64>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        found.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Plugin surrogate keys by reverse-DNS id, for the ids that exist.
pub(crate) async fn plugin_pks(conn: &mut Conn, ids: &[&str]) -> Result<HashMap<String, i32>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, pk FROM plugins WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.insert(
                row.try_get::<String, _>("id")?,
                row.try_get::<i32, _>("pk")?,
            );
        }
    }
    Ok(found)
}

async fn plugin_pk(conn: &mut Conn, field: &str, id: &str) -> Result<i32> {
    sqlx::query_scalar::<DB, i32>("SELECT pk FROM plugins WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::missing(field, "plugin", id))
}

/// Inserts `(parent, member, position)` rows; a member that does not exist is reported
/// under `field` and the caller's transaction is abandoned.
#[allow(clippy::too_many_arguments)]
async fn insert_members(
    conn: &mut Conn,
    table: &str,
    parent_col: &str,
    member_col: &str,
    parent: i64,
    members: &[i64],
    field: &str,
    entity: &'static str,
) -> Result<()> {
    let sql =
        format!("INSERT INTO {table} ({parent_col}, {member_col}, position) VALUES ($1, $2, $3)");
    for (i, m) in members.iter().enumerate() {
        sqlx::query(&sql)
            .bind(parent)
            .bind(*m)
            .bind(i as i64)
            .execute(&mut *conn)
            .await
            .map_err(|e| fk_as_missing(e, field, entity, m))?;
    }
    Ok(())
}

/// Inserts `(parent, plugin_pk, position)` rows for plugins named by id.
async fn insert_plugin_members(
    conn: &mut Conn,
    table: &str,
    parent_col: &str,
    parent: i64,
    plugins: &[PluginId],
    field: &str,
) -> Result<()> {
    for (i, p) in plugins.iter().enumerate() {
        let pk = plugin_pk(conn, field, p).await?;
        sqlx::query(&format!(
            "INSERT INTO {table} ({parent_col}, plugin_pk, position) VALUES ($1, $2, $3)"
        ))
        .bind(parent)
        .bind(pk)
        .bind(i as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// `(parent, member)` pairs in member order, for one parent or all of them.
async fn pairs(pool: &Pool, sql: &str, parent: Option<i64>) -> Result<HashMap<i64, Vec<i64>>> {
    let rows = sqlx::query(sql).bind(parent).fetch_all(pool).await?;
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in rows {
        out.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
    }
    Ok(out)
}

/// `(parent, plugin id)` pairs in member order.
async fn plugin_pairs(
    pool: &Pool,
    table: &str,
    parent_col: &str,
    parent: Option<i64>,
) -> Result<HashMap<i64, Vec<String>>> {
    let sql = format!(
        "SELECT t.{parent_col}, p.id FROM {table} t JOIN plugins p ON p.pk = t.plugin_pk \
         WHERE ($1 IS NULL OR t.{parent_col} = $1) ORDER BY t.{parent_col}, t.position"
    );
    let rows = sqlx::query(&sql).bind(parent).fetch_all(pool).await?;
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for r in rows {
        out.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
    }
    Ok(out)
}

async fn count(conn: &mut Conn, sql: &str, id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar::<DB, i64>(sql)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?)
}

async fn exists(pool: &Pool, table: &str, id: i64) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<DB, i64>(&format!("SELECT COUNT(*) FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_one(pool)
            .await?
            > 0,
    )
}

/// Removes redundancy groups whose last member went with a deleted host or host group: a
/// redundancy group with no members could never be healthy.
async fn remove_empty_redundancy_groups(conn: &mut Conn) -> Result<()> {
    sqlx::query(
        "DELETE FROM redundancy_groups WHERE NOT EXISTS \
         (SELECT 1 FROM redundancy_group_members m WHERE m.redundancy_group_id = redundancy_groups.id)",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn u32_from(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v}")))
}

fn json_from(s: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

// ---------------------------------------------------------------------------------------
// Hosts

fn host_from(r: &DbRow) -> Result<Host> {
    let port: i64 = r.try_get("port")?;
    Ok(Host {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        address: r.try_get("address")?,
        port: u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
        description: r.try_get("description")?,
        auth_key: r.try_get("auth_key")?,
        tls_fingerprint: r.try_get("tls_fingerprint")?,
        enabled: r.try_get("enabled")?,
    })
}

pub(crate) async fn create_host(pool: &Pool, h: &Host) -> Result<HostId> {
    h.validate()?;
    let mut tx = super::begin(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO hosts (name, address, port, description, auth_key, tls_fingerprint, enabled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&h.name)
    .bind(&h.address)
    .bind(h.port as i64)
    .bind(&h.description)
    .bind(&h.auth_key)
    .bind(&h.tls_fingerprint)
    .bind(h.enabled)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "host", "name", &h.name))?;
    tx.commit().await?;
    Ok(id)
}

pub(crate) async fn update_host(pool: &Pool, h: &Host) -> Result<()> {
    h.validate()?;
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query(
        "UPDATE hosts SET name = $1, address = $2, port = $3, description = $4, auth_key = $5, \
         tls_fingerprint = $6, enabled = $7 WHERE id = $8",
    )
    .bind(&h.name)
    .bind(&h.address)
    .bind(h.port as i64)
    .bind(&h.description)
    .bind(&h.auth_key)
    .bind(&h.tls_fingerprint)
    .bind(h.enabled)
    .bind(h.id)
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "host", "name", &h.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("host", h.id));
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_host(pool: &Pool, id: HostId) -> Result<Host> {
    let row = sqlx::query("SELECT * FROM hosts WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("host", id))?;
    host_from(&row)
}

pub(crate) async fn list_hosts(pool: &Pool) -> Result<Vec<Host>> {
    sqlx::query("SELECT * FROM hosts ORDER BY name")
        .fetch_all(pool)
        .await?
        .iter()
        .map(host_from)
        .collect()
}

/// What deleting a host or plugin takes of the results: the results in both tiers, the
/// rollup buckets (closed, open and not yet folded) and the series (latest results) whose
/// `column` is `id`.
async fn result_impact(
    c: &mut Conn,
    column: &str,
    id: i64,
    m: &mut BTreeMap<&'static str, i64>,
) -> Result<()> {
    m.insert("results", count(c, &count_results(column), id).await?);
    let rollups = format!(
        "SELECT (SELECT COUNT(*) FROM rollups WHERE {column} = $1) \
         + (SELECT COUNT(m5_bucket) + COUNT(h1_bucket) FROM latest WHERE {column} = $1){}",
        unfolded_buckets(column)
    );
    // Open buckets live in the latest rows (migration 0005); counted as before.
    m.insert("rollups", count(c, &rollups, id).await?);
    m.insert("latest_results", count(c, &count_series(column), id).await?);
    Ok(())
}

pub(crate) async fn host_delete_impact(pool: &Pool, id: HostId) -> Result<DeleteImpact> {
    if !exists(pool, "hosts", id).await? {
        return Err(StoreError::not_found("host", id));
    }
    let mut conn = pool.acquire().await?;
    let c = &mut *conn;
    let mut m = BTreeMap::new();
    result_impact(c, "host_id", id, &mut m).await?;
    m.insert(
        "host_group_memberships",
        count(
            c,
            "SELECT COUNT(*) FROM host_group_hosts WHERE host_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "check_memberships",
        count(c, "SELECT COUNT(*) FROM check_hosts WHERE host_id = $1", id).await?,
    );
    m.insert(
        "service_dependencies",
        count(
            c,
            "SELECT COUNT(*) FROM service_dependencies WHERE host_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "redundancy_group_memberships",
        count(
            c,
            "SELECT COUNT(*) FROM redundancy_group_members WHERE host_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "redundancy_groups",
        count(
            c,
            "SELECT COUNT(*) FROM redundancy_groups g WHERE EXISTS \
             (SELECT 1 FROM redundancy_group_members m WHERE m.redundancy_group_id = g.id AND m.host_id = $1) \
             AND NOT EXISTS (SELECT 1 FROM redundancy_group_members m WHERE m.redundancy_group_id = g.id \
             AND (m.host_id IS NULL OR m.host_id <> $1))",
            id,
        )
        .await?,
    );
    m.insert(
        "alert_scopes",
        count(c, "SELECT COUNT(*) FROM alert_hosts WHERE host_id = $1", id).await?,
    );
    m.insert(
        "classifier_overrides",
        count(
            c,
            "SELECT COUNT(*) FROM classifier_overrides WHERE host_id = $1",
            id,
        )
        .await?,
    );
    Ok(DeleteImpact(m))
}

pub(crate) async fn delete_host(pool: &Pool, id: HostId) -> Result<()> {
    let mut tx = super::begin(pool).await?;
    // A compaction (PostgreSQL) must not write this host's chunks and latest rows back.
    super::lock_for_ingest(&mut tx).await?;
    for t in RESULT_TABLES {
        sqlx::query(&format!(
            "DELETE FROM {t} WHERE {}",
            rows_where(t, "host_id")
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    for sql in [
        "DELETE FROM rollups WHERE host_id = $1",
        "DELETE FROM latest WHERE host_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    let done = sqlx::query("DELETE FROM hosts WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("host", id));
    }
    remove_empty_redundancy_groups(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Host groups

async fn load_host_groups(pool: &Pool, only: Option<HostGroupId>) -> Result<Vec<HostGroup>> {
    let rows = sqlx::query(
        "SELECT id, name, description FROM host_groups WHERE ($1 IS NULL OR id = $1) ORDER BY name",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut hosts = pairs(
        pool,
        "SELECT group_id, host_id FROM host_group_hosts WHERE ($1 IS NULL OR group_id = $1) ORDER BY group_id, position",
        only,
    )
    .await?;
    let mut groups = pairs(
        pool,
        "SELECT group_id, member_group_id FROM host_group_groups WHERE ($1 IS NULL OR group_id = $1) ORDER BY group_id, position",
        only,
    )
    .await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            Ok(HostGroup {
                id,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                member_hosts: hosts.remove(&id).unwrap_or_default(),
                member_groups: groups.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

async fn write_host_group_members(conn: &mut Conn, g: &HostGroup, id: HostGroupId) -> Result<()> {
    insert_members(
        conn,
        "host_group_hosts",
        "group_id",
        "host_id",
        id,
        &g.member_hosts,
        "member_hosts",
        "host",
    )
    .await?;
    insert_members(
        conn,
        "host_group_groups",
        "group_id",
        "member_group_id",
        id,
        &g.member_groups,
        "member_groups",
        "host group",
    )
    .await
}

pub(crate) async fn create_host_group(pool: &Pool, g: &HostGroup) -> Result<HostGroupId> {
    g.validate()?;
    let mut tx = super::begin(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO host_groups (name, description) VALUES ($1, $2) RETURNING id",
    )
    .bind(&g.name)
    .bind(&g.description)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "host group", "name", &g.name))?;
    write_host_group_members(&mut tx, g, id).await?;
    tx.commit().await?;
    Ok(id)
}

pub(crate) async fn update_host_group(pool: &Pool, g: &HostGroup) -> Result<()> {
    g.validate()?;
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query("UPDATE host_groups SET name = $1, description = $2 WHERE id = $3")
        .bind(&g.name)
        .bind(&g.description)
        .bind(g.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_duplicate(e, "host group", "name", &g.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("host group", g.id));
    }
    for sql in [
        "DELETE FROM host_group_hosts WHERE group_id = $1",
        "DELETE FROM host_group_groups WHERE group_id = $1",
    ] {
        sqlx::query(sql).bind(g.id).execute(&mut *tx).await?;
    }
    write_host_group_members(&mut tx, g, g.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_host_group(pool: &Pool, id: HostGroupId) -> Result<HostGroup> {
    load_host_groups(pool, Some(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("host group", id))
}

pub(crate) async fn list_host_groups(pool: &Pool) -> Result<Vec<HostGroup>> {
    load_host_groups(pool, None).await
}

pub(crate) async fn host_group_delete_impact(pool: &Pool, id: HostGroupId) -> Result<DeleteImpact> {
    if !exists(pool, "host_groups", id).await? {
        return Err(StoreError::not_found("host group", id));
    }
    let mut conn = pool.acquire().await?;
    let c = &mut *conn;
    let mut m = BTreeMap::new();
    m.insert(
        "member_entries",
        count(c, "SELECT (SELECT COUNT(*) FROM host_group_hosts WHERE group_id = $1) + (SELECT COUNT(*) FROM host_group_groups WHERE group_id = $1)", id).await?,
    );
    m.insert(
        "host_group_memberships",
        count(
            c,
            "SELECT COUNT(*) FROM host_group_groups WHERE member_group_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "check_memberships",
        count(
            c,
            "SELECT COUNT(*) FROM check_host_groups WHERE group_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "service_dependencies",
        count(
            c,
            "SELECT COUNT(*) FROM service_dependencies WHERE group_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "redundancy_group_memberships",
        count(
            c,
            "SELECT COUNT(*) FROM redundancy_group_members WHERE group_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "redundancy_groups",
        count(
            c,
            "SELECT COUNT(*) FROM redundancy_groups g WHERE EXISTS \
             (SELECT 1 FROM redundancy_group_members m WHERE m.redundancy_group_id = g.id AND m.group_id = $1) \
             AND NOT EXISTS (SELECT 1 FROM redundancy_group_members m WHERE m.redundancy_group_id = g.id \
             AND (m.group_id IS NULL OR m.group_id <> $1))",
            id,
        )
        .await?,
    );
    m.insert(
        "alert_scopes",
        count(
            c,
            "SELECT COUNT(*) FROM alert_host_groups WHERE group_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "classifier_overrides",
        count(
            c,
            "SELECT COUNT(*) FROM classifier_overrides WHERE group_id = $1",
            id,
        )
        .await?,
    );
    Ok(DeleteImpact(m))
}

pub(crate) async fn delete_host_group(pool: &Pool, id: HostGroupId) -> Result<()> {
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query("DELETE FROM host_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("host group", id));
    }
    remove_empty_redundancy_groups(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Plugins

fn plugin_from(r: &DbRow) -> Result<Plugin> {
    let manifest: String = r.try_get("manifest")?;
    Ok(Plugin {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        version: r.try_get("version")?,
        n_historical: u32_from(r.try_get("n_historical")?, "n_historical")?,
        classifier: r.try_get("classifier")?,
        view: r.try_get("view")?,
        view_source: r.try_get("view_source")?,
        manifest: json_from(&manifest, "plugin manifest")?,
    })
}

pub(crate) async fn put_plugin(pool: &Pool, p: &Plugin, package: &PluginPackage) -> Result<()> {
    p.validate()?;
    let mut tx = super::begin(pool).await?;
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plugins WHERE id = $1")
        .bind(&p.id)
        .fetch_one(&mut *tx)
        .await?;
    if taken > 0 {
        return Err(StoreError::Duplicate {
            entity: "plugin",
            field: "id".into(),
            value: p.id.clone(),
        });
    }
    let pk: i32 = sqlx::query_scalar(
        "INSERT INTO plugins (id, name, description, version, n_historical, classifier, view, view_source, manifest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING pk",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.version)
    .bind(p.n_historical as i64)
    .bind(&p.classifier)
    .bind(&p.view)
    .bind(&p.view_source)
    .bind(p.manifest.to_string())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "plugin", "name", &p.name))?;
    write_package(&mut tx, pk, package).await?;
    tx.commit().await?;
    Ok(())
}

async fn write_package(conn: &mut Conn, pk: i32, package: &PluginPackage) -> Result<()> {
    sqlx::query(
        "INSERT INTO plugin_packages (plugin_pk, archive, signature) VALUES ($1, $2, $3) \
         ON CONFLICT (plugin_pk) DO UPDATE SET archive = excluded.archive, signature = excluded.signature",
    )
    .bind(pk)
    .bind(&package.archive)
    .bind(&package.signature)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn update_plugin(
    pool: &Pool,
    p: &Plugin,
    package: Option<&PluginPackage>,
) -> Result<()> {
    p.validate()?;
    let mut tx = super::begin(pool).await?;
    let pk: Option<i32> = sqlx::query_scalar(
        "UPDATE plugins SET name = $1, description = $2, version = $3, n_historical = $4, classifier = $5, \
         view = $6, view_source = $7, manifest = $8 WHERE id = $9 RETURNING pk",
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.version)
    .bind(p.n_historical as i64)
    .bind(&p.classifier)
    .bind(&p.view)
    .bind(&p.view_source)
    .bind(p.manifest.to_string())
    .bind(&p.id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "plugin", "name", &p.name))?;
    let pk = pk.ok_or_else(|| StoreError::not_found("plugin", &p.id))?;
    if let Some(package) = package {
        write_package(&mut tx, pk, package).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_plugin(pool: &Pool, id: &str) -> Result<Plugin> {
    let row = sqlx::query("SELECT * FROM plugins WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("plugin", id))?;
    plugin_from(&row)
}

pub(crate) async fn list_plugins(pool: &Pool) -> Result<Vec<Plugin>> {
    sqlx::query("SELECT * FROM plugins ORDER BY id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(plugin_from)
        .collect()
}

pub(crate) async fn plugin_package(pool: &Pool, id: &str) -> Result<PluginPackage> {
    let row = sqlx::query(
        "SELECT k.archive, k.signature FROM plugin_packages k JOIN plugins p ON p.pk = k.plugin_pk WHERE p.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("plugin", id))?;
    Ok(PluginPackage {
        archive: row.try_get("archive")?,
        signature: row.try_get("signature")?,
    })
}

pub(crate) async fn plugin_delete_impact(pool: &Pool, id: &str) -> Result<DeleteImpact> {
    let mut conn = pool.acquire().await?;
    let c = &mut *conn;
    let pk = plugin_pk(c, "id", id).await.map_err(|e| match e {
        StoreError::MissingReference { .. } => StoreError::not_found("plugin", id),
        other => other,
    })? as i64;
    let mut m = BTreeMap::new();
    result_impact(c, "plugin_pk", pk, &mut m).await?;
    m.insert(
        "check_assignments",
        count(
            c,
            "SELECT COUNT(*) FROM check_plugins WHERE plugin_pk = $1",
            pk,
        )
        .await?,
    );
    m.insert(
        "alert_restrictions",
        count(
            c,
            "SELECT COUNT(*) FROM alert_plugins WHERE plugin_pk = $1",
            pk,
        )
        .await?,
    );
    m.insert(
        "alerts_disabled",
        count(c, ALERTS_LEFT_UNRESTRICTED_BY_PLUGIN, pk).await?,
    );
    m.insert(
        "classifier_overrides",
        count(
            c,
            "SELECT COUNT(*) FROM classifier_overrides WHERE plugin_pk = $1",
            pk,
        )
        .await?,
    );
    Ok(DeleteImpact(m))
}

/// Alerts restricted to this plugin only. Deleting the restriction would silently widen
/// such an alert to every plugin, so they are disabled instead.
const ALERTS_LEFT_UNRESTRICTED_BY_PLUGIN: &str = "SELECT COUNT(*) FROM alerts a WHERE EXISTS \
    (SELECT 1 FROM alert_plugins x WHERE x.alert_id = a.id AND x.plugin_pk = $1) AND NOT EXISTS \
    (SELECT 1 FROM alert_plugins x WHERE x.alert_id = a.id AND x.plugin_pk <> $1)";
const DISABLE_ALERTS_LEFT_UNRESTRICTED_BY_PLUGIN: &str = "UPDATE alerts SET enabled = $2 WHERE EXISTS \
    (SELECT 1 FROM alert_plugins x WHERE x.alert_id = alerts.id AND x.plugin_pk = $1) AND NOT EXISTS \
    (SELECT 1 FROM alert_plugins x WHERE x.alert_id = alerts.id AND x.plugin_pk <> $1)";
const ALERTS_LEFT_UNRESTRICTED_BY_CHECK: &str = "SELECT COUNT(*) FROM alerts a WHERE EXISTS \
    (SELECT 1 FROM alert_checks x WHERE x.alert_id = a.id AND x.check_id = $1) AND NOT EXISTS \
    (SELECT 1 FROM alert_checks x WHERE x.alert_id = a.id AND x.check_id <> $1)";
const DISABLE_ALERTS_LEFT_UNRESTRICTED_BY_CHECK: &str =
    "UPDATE alerts SET enabled = $2 WHERE EXISTS \
    (SELECT 1 FROM alert_checks x WHERE x.alert_id = alerts.id AND x.check_id = $1) AND NOT EXISTS \
    (SELECT 1 FROM alert_checks x WHERE x.alert_id = alerts.id AND x.check_id <> $1)";

pub(crate) async fn delete_plugin(pool: &Pool, id: &str) -> Result<()> {
    let mut tx = super::begin(pool).await?;
    // A compaction (PostgreSQL) must not write this plugin's chunks and latest rows back.
    super::lock_for_ingest(&mut tx).await?;
    let pk = plugin_pk(&mut tx, "id", id).await.map_err(|e| match e {
        StoreError::MissingReference { .. } => StoreError::not_found("plugin", id),
        other => other,
    })?;
    let hosts: Vec<i64> = sqlx::query_scalar("SELECT host_id FROM latest WHERE plugin_pk = $1")
        .bind(pk)
        .fetch_all(&mut *tx)
        .await?;
    // PostgreSQL's chunks are keyed by series: one delete per host on their key. SQLite's
    // are keyed by time, not series: one statement. The recent tier is clustered by time
    // on both: one statement over the hour it holds.
    let (by_plugin, by_series): (&[&str], &[&str]) = if is_postgres() {
        (&["results_recent"], &["result_chunks", "rollups"])
    } else {
        (&["result_chunks", "results_recent"], &["rollups"])
    };
    for t in by_plugin {
        sqlx::query(&format!(
            "DELETE FROM {t} WHERE {}",
            rows_where(t, "plugin_pk")
        ))
        .bind(pk)
        .execute(&mut *tx)
        .await?;
    }
    for host in hosts {
        for t in by_series {
            sqlx::query(&format!(
                "DELETE FROM {t} WHERE host_id = $1 AND plugin_pk = $2"
            ))
            .bind(host)
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("DELETE FROM latest WHERE plugin_pk = $1")
        .bind(pk)
        .execute(&mut *tx)
        .await?;
    sqlx::query(DISABLE_ALERTS_LEFT_UNRESTRICTED_BY_PLUGIN)
        .bind(pk as i64)
        .bind(false)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM plugins WHERE pk = $1")
        .bind(pk)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Checks

async fn load_checks(pool: &Pool, only: Option<CheckId>) -> Result<Vec<Check>> {
    let rows = sqlx::query(
        "SELECT id, name, description FROM checks WHERE ($1 IS NULL OR id = $1) ORDER BY name",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut hosts = pairs(
        pool,
        "SELECT check_id, host_id FROM check_hosts WHERE ($1 IS NULL OR check_id = $1) ORDER BY check_id, position",
        only,
    )
    .await?;
    let mut groups = pairs(
        pool,
        "SELECT check_id, group_id FROM check_host_groups WHERE ($1 IS NULL OR check_id = $1) ORDER BY check_id, position",
        only,
    )
    .await?;
    let plugin_rows = sqlx::query(
        "SELECT t.check_id, p.id, t.args FROM check_plugins t JOIN plugins p ON p.pk = t.plugin_pk \
         WHERE ($1 IS NULL OR t.check_id = $1) ORDER BY t.check_id, t.position",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    type PluginsAndArgs = (
        Vec<PluginId>,
        BTreeMap<PluginId, serde_json::Map<String, serde_json::Value>>,
    );
    let mut plugins: HashMap<i64, PluginsAndArgs> = HashMap::new();
    for r in plugin_rows {
        let entry = plugins.entry(r.try_get("check_id")?).or_default();
        let id: String = r.try_get("id")?;
        if let Some(args) = r.try_get::<Option<String>, _>("args")? {
            match json_from(&args, "check plugin arguments")? {
                serde_json::Value::Object(map) => {
                    entry.1.insert(id.clone(), map);
                }
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "check plugin arguments {other}"
                    )))
                }
            }
        }
        entry.0.push(id);
    }
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            let (plugins, plugin_args) = plugins.remove(&id).unwrap_or_default();
            Ok(Check {
                id,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                hosts: hosts.remove(&id).unwrap_or_default(),
                host_groups: groups.remove(&id).unwrap_or_default(),
                plugins,
                plugin_args,
            })
        })
        .collect()
}

async fn write_check_members(conn: &mut Conn, c: &Check, id: CheckId) -> Result<()> {
    insert_members(
        conn,
        "check_hosts",
        "check_id",
        "host_id",
        id,
        &c.hosts,
        "hosts",
        "host",
    )
    .await?;
    insert_members(
        conn,
        "check_host_groups",
        "check_id",
        "group_id",
        id,
        &c.host_groups,
        "host_groups",
        "host group",
    )
    .await?;
    for (i, p) in c.plugins.iter().enumerate() {
        let pk = plugin_pk(conn, "plugins", p).await?;
        let args = c
            .plugin_args
            .get(p)
            .map(|a| serde_json::Value::Object(a.clone()).to_string());
        sqlx::query("INSERT INTO check_plugins (check_id, plugin_pk, position, args) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(pk)
            .bind(i as i64)
            .bind(args)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn create_check(pool: &Pool, c: &Check) -> Result<CheckId> {
    c.validate()?;
    let mut tx = super::begin(pool).await?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO checks (name, description) VALUES ($1, $2) RETURNING id")
            .bind(&c.name)
            .bind(&c.description)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| unique_as_duplicate(e, "check", "name", &c.name))?;
    write_check_members(&mut tx, c, id).await?;
    tx.commit().await?;
    Ok(id)
}

pub(crate) async fn update_check(pool: &Pool, c: &Check) -> Result<()> {
    c.validate()?;
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query("UPDATE checks SET name = $1, description = $2 WHERE id = $3")
        .bind(&c.name)
        .bind(&c.description)
        .bind(c.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_duplicate(e, "check", "name", &c.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("check", c.id));
    }
    for sql in [
        "DELETE FROM check_hosts WHERE check_id = $1",
        "DELETE FROM check_host_groups WHERE check_id = $1",
        "DELETE FROM check_plugins WHERE check_id = $1",
    ] {
        sqlx::query(sql).bind(c.id).execute(&mut *tx).await?;
    }
    write_check_members(&mut tx, c, c.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_check(pool: &Pool, id: CheckId) -> Result<Check> {
    load_checks(pool, Some(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("check", id))
}

pub(crate) async fn list_checks(pool: &Pool) -> Result<Vec<Check>> {
    load_checks(pool, None).await
}

pub(crate) async fn check_delete_impact(pool: &Pool, id: CheckId) -> Result<DeleteImpact> {
    if !exists(pool, "checks", id).await? {
        return Err(StoreError::not_found("check", id));
    }
    let mut conn = pool.acquire().await?;
    let c = &mut *conn;
    let mut m = BTreeMap::new();
    m.insert(
        "schedule_memberships",
        count(
            c,
            "SELECT COUNT(*) FROM schedule_checks WHERE check_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "alert_restrictions",
        count(
            c,
            "SELECT COUNT(*) FROM alert_checks WHERE check_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "alerts_disabled",
        count(c, ALERTS_LEFT_UNRESTRICTED_BY_CHECK, id).await?,
    );
    m.insert(
        "classifier_overrides",
        count(
            c,
            "SELECT COUNT(*) FROM classifier_overrides WHERE check_id = $1",
            id,
        )
        .await?,
    );
    Ok(DeleteImpact(m))
}

/// Deletes check `id`: alerts left with no check are disabled, and the results that name
/// it keep their rows without the check. `results_recent` and `latest` (small) get a column
/// update; chunks keep the id, which readers drop because the check no longer exists
/// (`chunk::to_result`; ids are never reused), so no chunk is rewritten.
pub(crate) async fn delete_check(pool: &Pool, id: CheckId) -> Result<()> {
    let mut tx = super::begin(pool).await?;
    // A compaction (PostgreSQL) must not write latest rows it read before this back.
    super::lock_for_ingest(&mut tx).await?;
    let conn = &mut *tx;
    sqlx::query(DISABLE_ALERTS_LEFT_UNRESTRICTED_BY_CHECK)
        .bind(id)
        .bind(false)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM checks WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("check", id));
    }
    // Results outlive their check. There is no index on check_id (it would cost bytes on
    // every result); the recent tier holds an hour or so.
    for t in ["results_recent", "latest"] {
        sqlx::query(&format!(
            "UPDATE {t} SET check_id = NULL WHERE check_id = $1"
        ))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Schedules

async fn load_schedules(pool: &Pool, only: Option<ScheduleId>) -> Result<Vec<Schedule>> {
    let rows = sqlx::query(
        "SELECT id, name, description FROM schedules WHERE ($1 IS NULL OR id = $1) ORDER BY name",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut checks = pairs(
        pool,
        "SELECT schedule_id, check_id FROM schedule_checks WHERE ($1 IS NULL OR schedule_id = $1) ORDER BY schedule_id, position",
        only,
    )
    .await?;
    let interval_rows = sqlx::query(
        "SELECT id, schedule_id, start_ms, period_seconds FROM intervals \
         WHERE ($1 IS NULL OR schedule_id = $1) ORDER BY schedule_id, position",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut intervals: HashMap<i64, Vec<Interval>> = HashMap::new();
    for r in interval_rows {
        intervals
            .entry(r.try_get("schedule_id")?)
            .or_default()
            .push(Interval {
                id: r.try_get("id")?,
                start: r.try_get("start_ms")?,
                period_seconds: r.try_get("period_seconds")?,
            });
    }
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            Ok(Schedule {
                id,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                checks: checks.remove(&id).unwrap_or_default(),
                intervals: intervals.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

/// Keeps the intervals the edit kept (by id), with their `next_run` unless their timing
/// changed, so editing a schedule's name does not make the scheduler start over.
async fn write_schedule_children(
    conn: &mut Conn,
    s: &Schedule,
    id: ScheduleId,
    is_new: bool,
) -> Result<()> {
    insert_members(
        conn,
        "schedule_checks",
        "schedule_id",
        "check_id",
        id,
        &s.checks,
        "checks",
        "check",
    )
    .await?;
    let existing: HashMap<i64, (i64, i64)> = if is_new {
        HashMap::new()
    } else {
        sqlx::query("SELECT id, start_ms, period_seconds FROM intervals WHERE schedule_id = $1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    (r.try_get("start_ms")?, r.try_get("period_seconds")?),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?
    };
    let kept: HashSet<i64> = s
        .intervals
        .iter()
        .map(|i| i.id)
        .filter(|i| existing.contains_key(i))
        .collect();
    for old in existing.keys().filter(|i| !kept.contains(i)) {
        sqlx::query("DELETE FROM intervals WHERE id = $1")
            .bind(*old)
            .execute(&mut *conn)
            .await?;
    }
    for (pos, iv) in s.intervals.iter().enumerate() {
        match existing.get(&iv.id) {
            Some(&(start, period)) => {
                let timing_changed = (start, period) != (iv.start, iv.period_seconds);
                sqlx::query(
                    "UPDATE intervals SET position = $1, start_ms = $2, period_seconds = $3, \
                     next_run = CASE WHEN $4 THEN NULL ELSE next_run END WHERE id = $5",
                )
                .bind(pos as i64)
                .bind(iv.start)
                .bind(iv.period_seconds)
                .bind(timing_changed)
                .bind(iv.id)
                .execute(&mut *conn)
                .await?;
            }
            None => {
                sqlx::query("INSERT INTO intervals (schedule_id, position, start_ms, period_seconds) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(pos as i64)
                    .bind(iv.start)
                    .bind(iv.period_seconds)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn create_schedule(pool: &Pool, s: &Schedule) -> Result<ScheduleId> {
    s.validate()?;
    let mut tx = super::begin(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO schedules (name, description) VALUES ($1, $2) RETURNING id",
    )
    .bind(&s.name)
    .bind(&s.description)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "schedule", "name", &s.name))?;
    write_schedule_children(&mut tx, s, id, true).await?;
    tx.commit().await?;
    Ok(id)
}

pub(crate) async fn update_schedule(pool: &Pool, s: &Schedule) -> Result<()> {
    s.validate()?;
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query("UPDATE schedules SET name = $1, description = $2 WHERE id = $3")
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_duplicate(e, "schedule", "name", &s.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("schedule", s.id));
    }
    sqlx::query("DELETE FROM schedule_checks WHERE schedule_id = $1")
        .bind(s.id)
        .execute(&mut *tx)
        .await?;
    write_schedule_children(&mut tx, s, s.id, false).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_schedule(pool: &Pool, id: ScheduleId) -> Result<Schedule> {
    load_schedules(pool, Some(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("schedule", id))
}

pub(crate) async fn list_schedules(pool: &Pool) -> Result<Vec<Schedule>> {
    load_schedules(pool, None).await
}

pub(crate) async fn schedule_delete_impact(pool: &Pool, id: ScheduleId) -> Result<DeleteImpact> {
    if !exists(pool, "schedules", id).await? {
        return Err(StoreError::not_found("schedule", id));
    }
    let mut conn = pool.acquire().await?;
    let c = &mut *conn;
    let mut m = BTreeMap::new();
    m.insert(
        "intervals",
        count(
            c,
            "SELECT COUNT(*) FROM intervals WHERE schedule_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "check_entries",
        count(
            c,
            "SELECT COUNT(*) FROM schedule_checks WHERE schedule_id = $1",
            id,
        )
        .await?,
    );
    Ok(DeleteImpact(m))
}

pub(crate) async fn delete_schedule(pool: &Pool, id: ScheduleId) -> Result<()> {
    delete_row(pool, "schedules", "schedule", id).await
}

async fn delete_row(pool: &Pool, table: &str, entity: &'static str, id: i64) -> Result<()> {
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found(entity, id));
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn next_runs(pool: &Pool) -> Result<HashMap<IntervalId, Millis>> {
    let rows = sqlx::query("SELECT id, next_run FROM intervals WHERE next_run IS NOT NULL")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("next_run")?)))
        .collect()
}

pub(crate) async fn next_run(pool: &Pool, interval: IntervalId) -> Result<Option<Millis>> {
    sqlx::query_scalar::<DB, Option<i64>>("SELECT next_run FROM intervals WHERE id = $1")
        .bind(interval)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("interval", interval))
}

pub(crate) async fn set_next_run(
    pool: &Pool,
    interval: IntervalId,
    at: Option<Millis>,
) -> Result<()> {
    let done = sqlx::query("UPDATE intervals SET next_run = $1 WHERE id = $2")
        .bind(at)
        .bind(interval)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("interval", interval));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Services

fn member_from(host: Option<i64>, group: Option<i64>) -> Result<Member> {
    match (host, group) {
        (Some(h), None) => Ok(Member::Host(h)),
        (None, Some(g)) => Ok(Member::HostGroup(g)),
        _ => Err(StoreError::Corrupt(
            "member is neither a host nor a host group".into(),
        )),
    }
}

async fn insert_member_rows(
    conn: &mut Conn,
    table: &str,
    parent_col: &str,
    parent: i64,
    members: &[Member],
    field: &str,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {table} ({parent_col}, position, host_id, group_id) VALUES ($1, $2, $3, $4)"
    );
    for (i, m) in members.iter().enumerate() {
        let (host, group, entity, id) = match *m {
            Member::Host(h) => (Some(h), None, "host", h),
            Member::HostGroup(g) => (None, Some(g), "host group", g),
        };
        sqlx::query(&sql)
            .bind(parent)
            .bind(i as i64)
            .bind(host)
            .bind(group)
            .execute(&mut *conn)
            .await
            .map_err(|e| fk_as_missing(e, field, entity, id))?;
    }
    Ok(())
}

async fn load_services(pool: &Pool, only: Option<ServiceId>) -> Result<Vec<Service>> {
    let rows = sqlx::query(
        "SELECT id, name, description FROM services WHERE ($1 IS NULL OR id = $1) ORDER BY name",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut deps: HashMap<i64, Vec<Member>> = HashMap::new();
    for r in sqlx::query(
        "SELECT service_id, host_id, group_id FROM service_dependencies \
         WHERE ($1 IS NULL OR service_id = $1) ORDER BY service_id, position",
    )
    .bind(only)
    .fetch_all(pool)
    .await?
    {
        deps.entry(r.try_get("service_id")?)
            .or_default()
            .push(member_from(r.try_get("host_id")?, r.try_get("group_id")?)?);
    }
    let mut rg_members: HashMap<i64, Vec<Member>> = HashMap::new();
    for r in sqlx::query(
        "SELECT m.redundancy_group_id, m.host_id, m.group_id FROM redundancy_group_members m \
         JOIN redundancy_groups g ON g.id = m.redundancy_group_id \
         WHERE ($1 IS NULL OR g.service_id = $1) ORDER BY m.redundancy_group_id, m.position",
    )
    .bind(only)
    .fetch_all(pool)
    .await?
    {
        rg_members
            .entry(r.try_get("redundancy_group_id")?)
            .or_default()
            .push(member_from(r.try_get("host_id")?, r.try_get("group_id")?)?);
    }
    let mut rgs: HashMap<i64, Vec<RedundancyGroup>> = HashMap::new();
    for r in sqlx::query(
        "SELECT id, service_id, name FROM redundancy_groups WHERE ($1 IS NULL OR service_id = $1) \
         ORDER BY service_id, position",
    )
    .bind(only)
    .fetch_all(pool)
    .await?
    {
        let id: i64 = r.try_get("id")?;
        rgs.entry(r.try_get("service_id")?)
            .or_default()
            .push(RedundancyGroup {
                name: r.try_get("name")?,
                members: rg_members.remove(&id).unwrap_or_default(),
            });
    }
    let mut children = pairs(
        pool,
        "SELECT service_id, child_id FROM service_services WHERE ($1 IS NULL OR service_id = $1) ORDER BY service_id, position",
        only,
    )
    .await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            Ok(Service {
                id,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                dependencies: deps.remove(&id).unwrap_or_default(),
                redundancy_groups: rgs.remove(&id).unwrap_or_default(),
                services: children.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

async fn write_service_children(conn: &mut Conn, s: &Service, id: ServiceId) -> Result<()> {
    insert_member_rows(
        conn,
        "service_dependencies",
        "service_id",
        id,
        &s.dependencies,
        "dependencies",
    )
    .await?;
    for (i, rg) in s.redundancy_groups.iter().enumerate() {
        let rg_id: i64 = sqlx::query_scalar(
            "INSERT INTO redundancy_groups (service_id, position, name) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(id)
        .bind(i as i64)
        .bind(&rg.name)
        .fetch_one(&mut *conn)
        .await?;
        insert_member_rows(
            conn,
            "redundancy_group_members",
            "redundancy_group_id",
            rg_id,
            &rg.members,
            &format!("redundancy_groups[{i}].members"),
        )
        .await?;
    }
    insert_members(
        conn,
        "service_services",
        "service_id",
        "child_id",
        id,
        &s.services,
        "services",
        "service",
    )
    .await
}

pub(crate) async fn create_service(pool: &Pool, s: &Service) -> Result<ServiceId> {
    s.validate()?;
    let mut tx = super::begin(pool).await?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO services (name, description) VALUES ($1, $2) RETURNING id")
            .bind(&s.name)
            .bind(&s.description)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| unique_as_duplicate(e, "service", "name", &s.name))?;
    write_service_children(&mut tx, s, id).await?;
    tx.commit().await?;
    Ok(id)
}

pub(crate) async fn update_service(pool: &Pool, s: &Service) -> Result<()> {
    s.validate()?;
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query("UPDATE services SET name = $1, description = $2 WHERE id = $3")
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_duplicate(e, "service", "name", &s.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("service", s.id));
    }
    for sql in [
        "DELETE FROM service_dependencies WHERE service_id = $1",
        "DELETE FROM redundancy_groups WHERE service_id = $1",
        "DELETE FROM service_services WHERE service_id = $1",
    ] {
        sqlx::query(sql).bind(s.id).execute(&mut *tx).await?;
    }
    write_service_children(&mut tx, s, s.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_service(pool: &Pool, id: ServiceId) -> Result<Service> {
    load_services(pool, Some(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("service", id))
}

pub(crate) async fn list_services(pool: &Pool) -> Result<Vec<Service>> {
    load_services(pool, None).await
}

pub(crate) async fn service_delete_impact(pool: &Pool, id: ServiceId) -> Result<DeleteImpact> {
    if !exists(pool, "services", id).await? {
        return Err(StoreError::not_found("service", id));
    }
    let mut conn = pool.acquire().await?;
    let c = &mut *conn;
    let mut m = BTreeMap::new();
    m.insert(
        "redundancy_groups",
        count(
            c,
            "SELECT COUNT(*) FROM redundancy_groups WHERE service_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "nested_in_services",
        count(
            c,
            "SELECT COUNT(*) FROM service_services WHERE child_id = $1",
            id,
        )
        .await?,
    );
    m.insert(
        "alert_scopes",
        count(
            c,
            "SELECT COUNT(*) FROM alert_services WHERE service_id = $1",
            id,
        )
        .await?,
    );
    Ok(DeleteImpact(m))
}

pub(crate) async fn delete_service(pool: &Pool, id: ServiceId) -> Result<()> {
    delete_row(pool, "services", "service", id).await
}

// ---------------------------------------------------------------------------------------
// Alerts

async fn load_alerts(pool: &Pool, only: Option<AlertId>) -> Result<Vec<Alert>> {
    let rows = sqlx::query("SELECT * FROM alerts WHERE ($1 IS NULL OR id = $1) ORDER BY name")
        .bind(only)
        .fetch_all(pool)
        .await?;
    let mut hosts = pairs(pool, "SELECT alert_id, host_id FROM alert_hosts WHERE ($1 IS NULL OR alert_id = $1) ORDER BY alert_id, position", only).await?;
    let mut groups = pairs(pool, "SELECT alert_id, group_id FROM alert_host_groups WHERE ($1 IS NULL OR alert_id = $1) ORDER BY alert_id, position", only).await?;
    let mut services = pairs(pool, "SELECT alert_id, service_id FROM alert_services WHERE ($1 IS NULL OR alert_id = $1) ORDER BY alert_id, position", only).await?;
    let mut checks = pairs(pool, "SELECT alert_id, check_id FROM alert_checks WHERE ($1 IS NULL OR alert_id = $1) ORDER BY alert_id, position", only).await?;
    let mut plugins = plugin_pairs(pool, "alert_plugins", "alert_id", only).await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            let options: String = r.try_get("options")?;
            Ok(Alert {
                id,
                name: r.try_get("name")?,
                from_states: health_list_from(&r.try_get::<String, _>("from_states")?)?,
                to_states: health_list_from(&r.try_get::<String, _>("to_states")?)?,
                scope: AlertScope {
                    all_hosts: r.try_get("all_hosts")?,
                    all_services: r.try_get("all_services")?,
                    hosts: hosts.remove(&id).unwrap_or_default(),
                    host_groups: groups.remove(&id).unwrap_or_default(),
                    services: services.remove(&id).unwrap_or_default(),
                },
                plugins: plugins.remove(&id).unwrap_or_default(),
                checks: checks.remove(&id).unwrap_or_default(),
                module: r.try_get("module")?,
                options: json_from(&options, "alert options")?,
                enabled: r.try_get("enabled")?,
            })
        })
        .collect()
}

async fn write_alert_children(conn: &mut Conn, a: &Alert, id: AlertId) -> Result<()> {
    insert_members(
        conn,
        "alert_hosts",
        "alert_id",
        "host_id",
        id,
        &a.scope.hosts,
        "scope.hosts",
        "host",
    )
    .await?;
    insert_members(
        conn,
        "alert_host_groups",
        "alert_id",
        "group_id",
        id,
        &a.scope.host_groups,
        "scope.host_groups",
        "host group",
    )
    .await?;
    insert_members(
        conn,
        "alert_services",
        "alert_id",
        "service_id",
        id,
        &a.scope.services,
        "scope.services",
        "service",
    )
    .await?;
    insert_members(
        conn,
        "alert_checks",
        "alert_id",
        "check_id",
        id,
        &a.checks,
        "checks",
        "check",
    )
    .await?;
    insert_plugin_members(conn, "alert_plugins", "alert_id", id, &a.plugins, "plugins").await
}

pub(crate) async fn create_alert(pool: &Pool, a: &Alert) -> Result<AlertId> {
    a.validate()?;
    let mut tx = super::begin(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO alerts (name, from_states, to_states, all_hosts, all_services, module, options, enabled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&a.name)
    .bind(health_list(&a.from_states))
    .bind(health_list(&a.to_states))
    .bind(a.scope.all_hosts)
    .bind(a.scope.all_services)
    .bind(&a.module)
    .bind(a.options.to_string())
    .bind(a.enabled)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "alert", "name", &a.name))?;
    write_alert_children(&mut tx, a, id).await?;
    tx.commit().await?;
    Ok(id)
}

pub(crate) async fn update_alert(pool: &Pool, a: &Alert) -> Result<()> {
    a.validate()?;
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query(
        "UPDATE alerts SET name = $1, from_states = $2, to_states = $3, all_hosts = $4, all_services = $5, \
         module = $6, options = $7, enabled = $8 WHERE id = $9",
    )
    .bind(&a.name)
    .bind(health_list(&a.from_states))
    .bind(health_list(&a.to_states))
    .bind(a.scope.all_hosts)
    .bind(a.scope.all_services)
    .bind(&a.module)
    .bind(a.options.to_string())
    .bind(a.enabled)
    .bind(a.id)
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "alert", "name", &a.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("alert", a.id));
    }
    for t in [
        "alert_hosts",
        "alert_host_groups",
        "alert_services",
        "alert_checks",
        "alert_plugins",
    ] {
        sqlx::query(&format!("DELETE FROM {t} WHERE alert_id = $1"))
            .bind(a.id)
            .execute(&mut *tx)
            .await?;
    }
    write_alert_children(&mut tx, a, a.id).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_alert(pool: &Pool, id: AlertId) -> Result<Alert> {
    load_alerts(pool, Some(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("alert", id))
}

pub(crate) async fn list_alerts(pool: &Pool) -> Result<Vec<Alert>> {
    load_alerts(pool, None).await
}

pub(crate) async fn delete_alert(pool: &Pool, id: AlertId) -> Result<()> {
    delete_row(pool, "alerts", "alert", id).await
}

// ---------------------------------------------------------------------------------------
// Classifier overrides

fn override_target(c: Option<i64>, g: Option<i64>, h: Option<i64>) -> Result<OverrideTarget> {
    match (c, g, h) {
        (Some(c), None, None) => Ok(OverrideTarget::Check(c)),
        (None, Some(g), None) => Ok(OverrideTarget::HostGroup(g)),
        (None, None, Some(h)) => Ok(OverrideTarget::Host(h)),
        _ => Err(StoreError::Corrupt("override target".into())),
    }
}

fn target_columns(t: OverrideTarget) -> (Option<i64>, Option<i64>, Option<i64>, &'static str, i64) {
    match t {
        OverrideTarget::Check(c) => (Some(c), None, None, "check", c),
        OverrideTarget::HostGroup(g) => (None, Some(g), None, "host group", g),
        OverrideTarget::Host(h) => (None, None, Some(h), "host", h),
    }
}

async fn load_overrides(pool: &Pool, only: Option<OverrideId>) -> Result<Vec<ClassifierOverride>> {
    sqlx::query(
        "SELECT o.id, p.id AS plugin_id, o.check_id, o.group_id, o.host_id, o.n_historical, o.code \
         FROM classifier_overrides o JOIN plugins p ON p.pk = o.plugin_pk \
         WHERE ($1 IS NULL OR o.id = $1) ORDER BY p.id, o.id",
    )
    .bind(only)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(ClassifierOverride {
            id: r.try_get("id")?,
            plugin_id: r.try_get("plugin_id")?,
            target: override_target(r.try_get("check_id")?, r.try_get("group_id")?, r.try_get("host_id")?)?,
            n_historical: u32_from(r.try_get("n_historical")?, "n_historical")?,
            code: r.try_get("code")?,
        })
    })
    .collect()
}

async fn write_override(
    conn: &mut Conn,
    o: &ClassifierOverride,
    id: Option<OverrideId>,
) -> Result<OverrideId> {
    let pk = plugin_pk(conn, "plugin_id", &o.plugin_id).await?;
    let (c, g, h, entity, target_id) = target_columns(o.target);
    let clash: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM classifier_overrides WHERE plugin_pk = $1 AND check_id IS NOT DISTINCT FROM $2 \
         AND group_id IS NOT DISTINCT FROM $3 AND host_id IS NOT DISTINCT FROM $4 AND id <> $5",
    )
    .bind(pk)
    .bind(c)
    .bind(g)
    .bind(h)
    .bind(id.unwrap_or(0))
    .fetch_one(&mut *conn)
    .await?;
    if clash > 0 {
        return Err(StoreError::Duplicate {
            entity: "classifier override",
            field: "target".into(),
            value: format!("{} {target_id} for plugin {}", entity, o.plugin_id),
        });
    }
    let result = match id {
        None => {
            sqlx::query_scalar(
                "INSERT INTO classifier_overrides (plugin_pk, check_id, group_id, host_id, n_historical, code) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(pk)
            .bind(c)
            .bind(g)
            .bind(h)
            .bind(o.n_historical as i64)
            .bind(&o.code)
            .fetch_one(&mut *conn)
            .await
        }
        Some(id) => {
            sqlx::query_scalar(
                "UPDATE classifier_overrides SET plugin_pk = $1, check_id = $2, group_id = $3, host_id = $4, \
                 n_historical = $5, code = $6 WHERE id = $7 RETURNING id",
            )
            .bind(pk)
            .bind(c)
            .bind(g)
            .bind(h)
            .bind(o.n_historical as i64)
            .bind(&o.code)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .and_then(|r| r.ok_or(sqlx::Error::RowNotFound))
        }
    };
    match result {
        Ok(id) => Ok(id),
        Err(sqlx::Error::RowNotFound) => Err(StoreError::not_found(
            "classifier override",
            id.unwrap_or(0),
        )),
        Err(e) => Err(fk_as_missing(e, "target", entity, target_id)),
    }
}

pub(crate) async fn create_override(pool: &Pool, o: &ClassifierOverride) -> Result<OverrideId> {
    o.validate()?;
    let mut tx = super::begin(pool).await?;
    let id = write_override(&mut tx, o, None).await?;
    tx.commit().await?;
    Ok(id)
}

pub(crate) async fn update_override(pool: &Pool, o: &ClassifierOverride) -> Result<()> {
    o.validate()?;
    let mut tx = super::begin(pool).await?;
    write_override(&mut tx, o, Some(o.id)).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_override(pool: &Pool, id: OverrideId) -> Result<ClassifierOverride> {
    load_overrides(pool, Some(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("classifier override", id))
}

pub(crate) async fn list_overrides(pool: &Pool) -> Result<Vec<ClassifierOverride>> {
    load_overrides(pool, None).await
}

pub(crate) async fn delete_override(pool: &Pool, id: OverrideId) -> Result<()> {
    delete_row(pool, "classifier_overrides", "classifier override", id).await
}

// ---------------------------------------------------------------------------------------
// Users

fn user_from(r: &DbRow) -> Result<User> {
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: role.parse().map_err(StoreError::Corrupt)?,
        password_hash: r.try_get("password_hash")?,
    })
}

pub(crate) async fn create_user(pool: &Pool, u: &User) -> Result<UserId> {
    u.validate()?;
    let mut tx = super::begin(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(&u.name)
    .bind(u.role.as_str())
    .bind(&u.password_hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "user", "name", &u.name))?;
    tx.commit().await?;
    Ok(id)
}

/// An empty `password_hash` keeps the stored one: the hash is never serialized, so a user
/// edited through the API arrives without it.
pub(crate) async fn update_user(pool: &Pool, u: &User) -> Result<()> {
    u.validate()?;
    let mut tx = super::begin(pool).await?;
    let done = sqlx::query(
        "UPDATE users SET name = $1, role = $2, \
         password_hash = CASE WHEN $3 = '' THEN password_hash ELSE $3 END WHERE id = $4",
    )
    .bind(&u.name)
    .bind(u.role.as_str())
    .bind(&u.password_hash)
    .bind(u.id)
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_as_duplicate(e, "user", "name", &u.name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("user", u.id));
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_user(pool: &Pool, id: UserId) -> Result<User> {
    let row = sqlx::query("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))?;
    user_from(&row)
}

pub(crate) async fn find_user_by_name(pool: &Pool, name: &str) -> Result<Option<User>> {
    sqlx::query("SELECT * FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
}

pub(crate) async fn list_users(pool: &Pool) -> Result<Vec<User>> {
    sqlx::query("SELECT * FROM users ORDER BY name")
        .fetch_all(pool)
        .await?
        .iter()
        .map(user_from)
        .collect()
}

pub(crate) async fn delete_user(pool: &Pool, id: UserId) -> Result<()> {
    delete_row(pool, "users", "user", id).await
}

// ---------------------------------------------------------------------------------------
// System log

pub(crate) async fn add_log(pool: &Pool, m: &SystemLogMessage) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO system_log (time, category, title, message, read) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(m.time)
    .bind(log_category_code(m.category))
    .bind(&m.title)
    .bind(&m.message)
    .bind(m.read)
    .fetch_one(pool)
    .await?)
}

pub(crate) async fn list_log(pool: &Pool, f: &LogFilter) -> Result<Vec<SystemLogMessage>> {
    let mut sql =
        String::from("SELECT id, time, category, title, message, read FROM system_log WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.category.is_some() {
        sql += &format!(" AND category = {}", next());
    }
    if f.unread_only {
        sql += &format!(" AND read = {}", next());
    }
    if f.since.is_some() {
        sql += &format!(" AND time >= {}", next());
    }
    if f.until.is_some() {
        sql += &format!(" AND time < {}", next());
    }
    if f.before_id.is_some() {
        sql += &format!(" AND id < {}", next());
    }
    sql += &format!(" ORDER BY time DESC, id DESC LIMIT {}", next());
    let mut q = sqlx::query(&sql);
    if let Some(c) = f.category {
        q = q.bind(log_category_code(c));
    }
    if f.unread_only {
        q = q.bind(false);
    }
    if let Some(t) = f.since {
        q = q.bind(t);
    }
    if let Some(t) = f.until {
        q = q.bind(t);
    }
    if let Some(id) = f.before_id {
        q = q.bind(id);
    }
    q = q.bind(f.limit.max(0));
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(SystemLogMessage {
                id: r.try_get("id")?,
                time: r.try_get("time")?,
                category: log_category_from(r.try_get("category")?)?,
                title: r.try_get("title")?,
                message: r.try_get("message")?,
                read: r.try_get("read")?,
            })
        })
        .collect()
}

pub(crate) async fn unread_log_count(pool: &Pool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM system_log WHERE read = $1")
            .bind(false)
            .fetch_one(pool)
            .await?,
    )
}

pub(crate) async fn mark_log_read(pool: &Pool, id: i64) -> Result<()> {
    let done = sqlx::query("UPDATE system_log SET read = $1 WHERE id = $2")
        .bind(true)
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("system log message", id));
    }
    Ok(())
}

pub(crate) async fn mark_all_log_read(pool: &Pool) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE system_log SET read = $1 WHERE read = $2")
            .bind(true)
            .bind(false)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

// ---------------------------------------------------------------------------------------
// Results

/// What one retention pass visits and removes: every series with a latest row, and the
/// times before which raw results, 5-minute and hourly rollups go. Both backends' passes
/// start from it.
pub(crate) struct RetentionPass {
    pub series: Vec<(i64, i32)>,
    pub raw_cutoff: Millis,
    pub five_cutoff: Millis,
    pub hour_cutoff: Millis,
}

pub(crate) async fn retention_pass(
    pool: &Pool,
    now: Millis,
    r: &Retention,
) -> Result<RetentionPass> {
    const DAY: i64 = 24 * 3600 * 1000;
    let series = sqlx::query("SELECT host_id, plugin_pk FROM latest")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get::<i64, _>(0)?, row.try_get::<i32, _>(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(RetentionPass {
        series,
        raw_cutoff: now - r.raw_days as i64 * DAY,
        five_cutoff: now - r.five_minute_days as i64 * DAY,
        hour_cutoff: now - r.hourly_days as i64 * DAY,
    })
}

/// SQLite's: deletes the rollups older than the pass's cut-offs, series by series so every
/// delete walks the primary key, in short transactions so ingest is never held up for long.
/// (Raw results: `sqlite/chunks.rs`.)
// PostgreSQL deletes rollups with its chunks (`pg_tiers.rs`): unused in that copy.
#[allow(dead_code)]
pub(crate) async fn delete_old_rollups(
    pool: &Pool,
    pass: &RetentionPass,
    report: &mut RetentionReport,
) -> Result<()> {
    for chunk in pass.series.chunks(200) {
        let mut tx = super::begin(pool).await?;
        for &(host, pk) in chunk {
            for (res, cutoff, counter) in [
                (
                    Resolution::FiveMinutes,
                    pass.five_cutoff,
                    &mut report.five_minute_rollups,
                ),
                (
                    Resolution::OneHour,
                    pass.hour_cutoff,
                    &mut report.hourly_rollups,
                ),
            ] {
                *counter += sqlx::query(
                    "DELETE FROM rollups WHERE host_id = $1 AND plugin_pk = $2 AND resolution = $3 AND bucket < $4",
                )
                .bind(host)
                .bind(pk)
                .bind(resolution_code(res))
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        tx.commit().await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Alerting: settings, outbox, delivery attempts, maintenance windows, acknowledgements

use crate::alerting::{
    Acknowledgement, AttemptOutcome, DeliveryAttempt, DeliveryState, OutboxEntry,
};
use prophasis_model::transition::Entity;

pub(crate) async fn set_alert_settings(
    pool: &Pool,
    alert: AlertId,
    settings: &serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO alert_settings (alert_id, settings) VALUES ($1, $2) \
         ON CONFLICT (alert_id) DO UPDATE SET settings = excluded.settings",
    )
    .bind(alert)
    .bind(settings.to_string())
    .execute(pool)
    .await
    .map_err(|e| fk_as_missing(e, "alert_id", "alert", alert))?;
    Ok(())
}

pub(crate) async fn list_alert_settings(pool: &Pool) -> Result<Vec<(AlertId, serde_json::Value)>> {
    let rows = sqlx::query("SELECT alert_id, settings FROM alert_settings ORDER BY alert_id")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            let s: String = r.try_get("settings")?;
            Ok((r.try_get("alert_id")?, json_from(&s, "alert settings")?))
        })
        .collect()
}

fn outbox_from(r: &DbRow) -> Result<OutboxEntry> {
    let payload: String = r.try_get("payload")?;
    let state: String = r.try_get("state")?;
    Ok(OutboxEntry {
        id: r.try_get("id")?,
        alert_id: r.try_get("alert_id")?,
        created: r.try_get("created")?,
        payload: json_from(&payload, "notification payload")?,
        state: DeliveryState::parse(&state)?,
        attempts: r.try_get("attempts")?,
        next_attempt: r.try_get("next_attempt")?,
        last_error: r.try_get("last_error")?,
        finished: r.try_get("finished")?,
    })
}

const OUTBOX_COLUMNS: &str =
    "id, alert_id, created, payload, state, attempts, next_attempt, last_error, finished";

pub(crate) async fn enqueue_notification(
    pool: &Pool,
    alert: Option<AlertId>,
    payload: &serde_json::Value,
    at: Millis,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO alert_outbox (alert_id, created, payload, state, attempts, next_attempt) \
         VALUES ($1, $2, $3, 'pending', 0, $2) RETURNING id",
    )
    .bind(alert)
    .bind(at)
    .bind(payload.to_string())
    .fetch_one(pool)
    .await?)
}

pub(crate) async fn due_notifications(
    pool: &Pool,
    now: Millis,
    limit: i64,
) -> Result<Vec<OutboxEntry>> {
    let rows = sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM alert_outbox WHERE state = 'pending' AND next_attempt <= $1 \
         ORDER BY next_attempt, id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(outbox_from).collect()
}

pub(crate) async fn record_delivery_attempt(
    pool: &Pool,
    id: i64,
    o: &AttemptOutcome<'_>,
) -> Result<()> {
    let mut tx = super::begin(pool).await?;
    let finished = (o.state != DeliveryState::Pending).then_some(o.at);
    let done = sqlx::query(
        "UPDATE alert_outbox SET state = $1, attempts = attempts + 1, next_attempt = $2, \
         last_error = $3, finished = $4 WHERE id = $5",
    )
    .bind(o.state.as_str())
    .bind(o.next_attempt)
    .bind(o.error)
    .bind(finished)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("notification", id));
    }
    sqlx::query(
        "INSERT INTO alert_delivery_attempts (outbox_id, time, ok, error) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(o.at)
    .bind(o.ok)
    .bind(o.error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_notification(pool: &Pool, id: i64) -> Result<OutboxEntry> {
    let row = sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM alert_outbox WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("notification", id))?;
    outbox_from(&row)
}

pub(crate) async fn notification_counts(pool: &Pool) -> Result<Vec<(DeliveryState, i64)>> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM alert_outbox GROUP BY state")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            Ok((DeliveryState::parse(&state)?, r.try_get::<i64, _>("n")?))
        })
        .collect()
}

pub(crate) async fn list_notifications(
    pool: &Pool,
    alert: Option<AlertId>,
    limit: i64,
) -> Result<Vec<OutboxEntry>> {
    let rows = sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM alert_outbox WHERE ($1 IS NULL OR alert_id = $1) \
         ORDER BY id DESC LIMIT $2"
    ))
    .bind(alert)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(outbox_from).collect()
}

pub(crate) async fn delivery_attempts(pool: &Pool, outbox_id: i64) -> Result<Vec<DeliveryAttempt>> {
    let rows = sqlx::query(
        "SELECT id, outbox_id, time, ok, error FROM alert_delivery_attempts \
         WHERE outbox_id = $1 ORDER BY id",
    )
    .bind(outbox_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryAttempt {
                id: r.try_get("id")?,
                outbox_id: r.try_get("outbox_id")?,
                time: r.try_get("time")?,
                ok: r.try_get("ok")?,
                error: r.try_get("error")?,
            })
        })
        .collect()
}

pub(crate) async fn create_maintenance_window(
    pool: &Pool,
    definition: &serde_json::Value,
) -> Result<i64> {
    Ok(
        sqlx::query_scalar("INSERT INTO maintenance_windows (definition) VALUES ($1) RETURNING id")
            .bind(definition.to_string())
            .fetch_one(pool)
            .await?,
    )
}

pub(crate) async fn update_maintenance_window(
    pool: &Pool,
    id: i64,
    definition: &serde_json::Value,
) -> Result<()> {
    let done = sqlx::query("UPDATE maintenance_windows SET definition = $1 WHERE id = $2")
        .bind(definition.to_string())
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("maintenance window", id));
    }
    Ok(())
}

pub(crate) async fn list_maintenance_windows(pool: &Pool) -> Result<Vec<(i64, serde_json::Value)>> {
    let rows = sqlx::query("SELECT id, definition FROM maintenance_windows ORDER BY id")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            let d: String = r.try_get("definition")?;
            Ok((r.try_get("id")?, json_from(&d, "maintenance window")?))
        })
        .collect()
}

pub(crate) async fn delete_maintenance_window(pool: &Pool, id: i64) -> Result<()> {
    delete_row(pool, "maintenance_windows", "maintenance window", id).await
}

fn entity_parts(e: Entity) -> (&'static str, i64) {
    match e {
        Entity::Host(id) => ("host", id),
        Entity::Service(id) => ("service", id),
    }
}

pub(crate) async fn add_acknowledgement(pool: &Pool, a: &Acknowledgement) -> Result<i64> {
    let (kind, id) = entity_parts(a.entity);
    Ok(sqlx::query_scalar(
        "INSERT INTO acknowledgements (entity_type, entity_id, who, at, comment) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(kind)
    .bind(id)
    .bind(&a.who)
    .bind(a.at)
    .bind(&a.comment)
    .fetch_one(pool)
    .await?)
}

pub(crate) async fn list_acknowledgements(
    pool: &Pool,
    active_only: bool,
) -> Result<Vec<Acknowledgement>> {
    let sql = if active_only {
        "SELECT * FROM acknowledgements WHERE cleared_at IS NULL ORDER BY id DESC"
    } else {
        "SELECT * FROM acknowledgements ORDER BY id DESC"
    };
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("entity_type")?;
            let id: i64 = r.try_get("entity_id")?;
            let entity = match kind.as_str() {
                "host" => Entity::Host(id),
                "service" => Entity::Service(id),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "acknowledged entity {other:?}"
                    )))
                }
            };
            Ok(Acknowledgement {
                id: r.try_get("id")?,
                entity,
                who: r.try_get("who")?,
                at: r.try_get("at")?,
                comment: r.try_get("comment")?,
                cleared_at: r.try_get("cleared_at")?,
            })
        })
        .collect()
}

pub(crate) async fn clear_acknowledgements(pool: &Pool, entity: Entity, at: Millis) -> Result<u64> {
    let (kind, id) = entity_parts(entity);
    Ok(sqlx::query(
        "UPDATE acknowledgements SET cleared_at = $1 \
         WHERE entity_type = $2 AND entity_id = $3 AND cleared_at IS NULL",
    )
    .bind(at)
    .bind(kind)
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected())
}

pub(crate) async fn claim_notification(
    pool: &Pool,
    id: i64,
    now: Millis,
    until: Millis,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE alert_outbox SET next_attempt = $3 \
         WHERE id = $1 AND state = 'pending' AND next_attempt <= $2",
    )
    .bind(id)
    .bind(now)
    .bind(until)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

pub(crate) async fn prune_notifications(pool: &Pool, finished_before: Millis) -> Result<u64> {
    let mut tx = super::begin(pool).await?;
    sqlx::query(
        "DELETE FROM alert_delivery_attempts WHERE outbox_id IN \
         (SELECT id FROM alert_outbox WHERE state <> 'pending' AND finished < $1)",
    )
    .bind(finished_before)
    .execute(&mut *tx)
    .await?;
    let n = sqlx::query("DELETE FROM alert_outbox WHERE state <> 'pending' AND finished < $1")
        .bind(finished_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// Web UI: sessions and dashboards

use crate::web::{Dashboard, WebSession};

pub(crate) async fn create_web_session(pool: &Pool, s: &WebSession) -> Result<()> {
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created, expires) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&s.id_hash)
    .bind(s.user_id)
    .bind(&s.csrf_token)
    .bind(s.created)
    .bind(s.expires)
    .execute(pool)
    .await
    .map_err(|e| fk_as_missing(e, "user_id", "user", s.user_id))?;
    Ok(())
}

pub(crate) async fn get_web_session(
    pool: &Pool,
    id_hash: &str,
    now: Millis,
) -> Result<Option<WebSession>> {
    let row = sqlx::query(
        "SELECT id_hash, user_id, csrf_token, created, expires FROM web_sessions \
         WHERE id_hash = $1 AND expires > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(WebSession {
            id_hash: r.try_get("id_hash")?,
            user_id: r.try_get("user_id")?,
            csrf_token: r.try_get("csrf_token")?,
            created: r.try_get("created")?,
            expires: r.try_get("expires")?,
        })
    })
    .transpose()
}

pub(crate) async fn renew_web_session(pool: &Pool, id_hash: &str, expires: Millis) -> Result<()> {
    sqlx::query("UPDATE web_sessions SET expires = $1 WHERE id_hash = $2")
        .bind(expires)
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn delete_web_session(pool: &Pool, id_hash: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn delete_user_web_sessions(pool: &Pool, user: UserId) -> Result<u64> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
        .bind(user)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn delete_expired_web_sessions(pool: &Pool, now: Millis) -> Result<u64> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE expires <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

fn dashboard_from(r: &DbRow) -> Result<Dashboard> {
    let layout: String = r.try_get("layout")?;
    Ok(Dashboard {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        owner_id: r.try_get("owner_id")?,
        layout: json_from(&layout, "dashboard layout")?,
        updated: r.try_get("updated")?,
    })
}

pub(crate) async fn create_dashboard(pool: &Pool, d: &Dashboard) -> Result<i64> {
    let name = d.name.trim();
    sqlx::query_scalar(
        "INSERT INTO dashboards (name, owner_id, layout, updated) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(name)
    .bind(d.owner_id)
    .bind(d.layout.to_string())
    .bind(d.updated)
    .fetch_one(pool)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(db) if db.is_foreign_key_violation() => {
            StoreError::missing("owner_id", "user", d.owner_id.unwrap_or_default())
        }
        _ => unique_as_duplicate(e, "dashboard", "name", name),
    })
}

pub(crate) async fn update_dashboard(pool: &Pool, d: &Dashboard) -> Result<()> {
    let name = d.name.trim();
    let done =
        sqlx::query("UPDATE dashboards SET name = $1, layout = $2, updated = $3 WHERE id = $4")
            .bind(name)
            .bind(d.layout.to_string())
            .bind(d.updated)
            .bind(d.id)
            .execute(pool)
            .await
            .map_err(|e| unique_as_duplicate(e, "dashboard", "name", name))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("dashboard", d.id));
    }
    Ok(())
}

pub(crate) async fn get_dashboard(pool: &Pool, id: i64) -> Result<Option<Dashboard>> {
    sqlx::query("SELECT id, name, owner_id, layout, updated FROM dashboards WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(dashboard_from)
        .transpose()
}

pub(crate) async fn list_dashboards(pool: &Pool) -> Result<Vec<Dashboard>> {
    sqlx::query("SELECT id, name, owner_id, layout, updated FROM dashboards ORDER BY name")
        .fetch_all(pool)
        .await?
        .iter()
        .map(dashboard_from)
        .collect()
}

pub(crate) async fn delete_dashboard(pool: &Pool, id: i64) -> Result<()> {
    delete_row(pool, "dashboards", "dashboard", id).await
}
