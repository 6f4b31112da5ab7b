//! The SQLite backend: the embedded default, one file in WAL mode with `synchronous=FULL`
//! so a committed batch survives a power cut. Write transactions start with
//! `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of failing when a
//! read lock cannot be upgraded.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::error::{Result, StoreError};
use crate::ingest::Prepared;
use crate::StorageStats;

pub(crate) type DB = sqlx::Sqlite;

#[allow(clippy::duplicate_mod)]
#[path = "ops.rs"]
pub(crate) mod ops;

pub(crate) const MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../migrations/sqlite/0001_init.sql"))];

pub(crate) enum Target {
    Memory,
    File(PathBuf),
}

pub(crate) async fn open(target: &Target) -> Result<(SqlitePool, String)> {
    match target {
        Target::Memory => {
            let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
            // Every connection to `:memory:` is a database of its own: keep exactly one,
            // for as long as the pool lives.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            let location = "the in-memory SQLite database".to_string();
            ops::migrate(&pool, &location, MIGRATIONS).await?;
            Ok((pool, location))
        }
        Target::File(path) => {
            let location = format!("SQLite database {}", path.display());
            refuse_foreign_file(path, &location).await?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .pragma("cache_size", "-65536");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(|e| not_a_database(e, &location))?;
            ops::migrate(&pool, &location, MIGRATIONS)
                .await
                .map_err(|e| match e {
                    StoreError::Database(e) => not_a_database(e, &location),
                    other => other,
                })?;
            Ok((pool, location))
        }
    }
}

/// Looks at an existing file through a read-only connection before anything else opens it:
/// the pool's connections switch the file to WAL mode, which would already modify a file
/// that is not ours.
async fn refuse_foreign_file(path: &Path, location: &str) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.len() == 0 {
        return Ok(());
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| not_a_database(e, location))?;
    let found = ops::inspect(&mut conn, location)
        .await
        .map_err(|e| match e {
            StoreError::Database(e) => not_a_database(e, location),
            other => other,
        });
    let _ = conn.close().await;
    let supported = MIGRATIONS.last().map_or(0, |m| m.0);
    match found? {
        Some(v) if v > supported => Err(StoreError::TooNew {
            location: location.to_string(),
            found: v,
            supported,
        }),
        _ => Ok(()),
    }
}

/// SQLite says "file is not a database" (SQLITE_NOTADB, 26) for a file of another kind.
fn not_a_database(e: sqlx::Error, location: &str) -> StoreError {
    if let Some(db) = e.as_database_error() {
        if db.code().as_deref() == Some("26") {
            return StoreError::NotProphasis {
                location: location.to_string(),
                reason: "it is not an SQLite database file".into(),
            };
        }
    }
    StoreError::Database(e)
}

pub(crate) async fn begin(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, DB>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// `BEGIN IMMEDIATE` already gives the migrating connection the only write lock.
pub(crate) async fn lock_for_migration(_conn: &mut SqliteConnection) -> Result<()> {
    Ok(())
}

pub(crate) async fn list_tables(conn: &mut SqliteConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Rows per multi-row INSERT: large enough that the per-statement cost (a round trip to
/// sqlx's worker thread) vanishes, small enough to stay far below SQLite's 32766 bound
/// parameters.
const ROWS_PER_STATEMENT: usize = 400;

fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * columns * 6);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

pub(crate) async fn write_batch(conn: &mut SqliteConnection, p: &Prepared<'_>) -> Result<()> {
    use crate::ingest::sql::*;
    for chunk in p.rows.chunks(ROWS_PER_STATEMENT) {
        let sql = values_sql(INSERT_RESULTS, 8, chunk.len(), UPSERT_RESULTS);
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.host_id)
                .bind(r.plugin_pk)
                .bind(r.ts)
                .bind(r.check_id)
                .bind(r.value)
                .bind(r.message)
                .bind(r.result_type)
                .bind(r.classification);
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in p.latest.chunks(ROWS_PER_STATEMENT) {
        let sql = values_sql(INSERT_LATEST, 8, chunk.len(), UPSERT_LATEST);
        let mut q = sqlx::query(&sql);
        for i in chunk {
            let r = &p.rows[*i];
            q = q
                .bind(r.host_id)
                .bind(r.plugin_pk)
                .bind(r.ts)
                .bind(r.check_id)
                .bind(r.value)
                .bind(r.message)
                .bind(r.result_type)
                .bind(r.classification);
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in p.rollups.chunks(ROWS_PER_STATEMENT) {
        let sql = values_sql(INSERT_ROLLUPS, 10, chunk.len(), UPSERT_ROLLUPS);
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q
                .bind(a.host_id)
                .bind(a.plugin_pk)
                .bind(a.resolution)
                .bind(a.bucket)
                .bind(a.min)
                .bind(a.max)
                .bind(a.sum)
                .bind(a.n_value)
                .bind(a.n_all)
                .bind(a.worst);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Flushes the WAL into the main file first, so the file size is what the data takes.
pub(crate) async fn storage(pool: &SqlitePool) -> Result<StorageStats> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await?;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(pool)
        .await?;
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(pool)
        .await?;
    let results: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(pgsize) AS INTEGER) FROM dbstat WHERE name = 'results'",
    )
    .fetch_one(pool)
    .await
    .ok()
    .flatten();
    Ok(StorageStats {
        total_bytes: pages * page_size,
        results_bytes: results,
    })
}
