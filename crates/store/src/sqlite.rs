//! The SQLite backend: the embedded default, one file in WAL mode with `synchronous=FULL`
//! so a committed batch survives a power cut. Write transactions start with
//! `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of failing when a
//! read lock cannot be upgraded.
//!
//! Results live in two tiers (migration 0006). A batch in which every result is another
//! series would dirty one page of the series-clustered `results` table per series, and WAL
//! mode writes each dirty page at commit; so batches land in `results_recent`, clustered by
//! minute first (appends near the end of one tree), and [`compact`] moves minutes older
//! than [`Compaction::keep`] into `results` in series order every
//! [`Compaction::span`] − `keep` minutes, right after a batch, inside the ingest lock. The
//! watermark `results_compacted_before` (a minute number in `prophasis_meta`) splits the
//! tiers: a row whose minute is below it is in `results`, any other in `results_recent`.
//! Late results below the watermark go straight into `results`. Readers that need both
//! tiers read them in one snapshot (one statement or one read transaction), so a compaction
//! in between can neither hide nor duplicate a row.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::error::{Result, StoreError};
use crate::ingest::{Merged, OpenBuckets, Prepared, Row};
use crate::StorageStats;

pub(crate) type DB = sqlx::Sqlite;

#[allow(clippy::duplicate_mod)]
#[path = "ops.rs"]
pub(crate) mod ops;

#[allow(clippy::duplicate_mod)]
#[path = "token_ops.rs"]
pub(crate) mod token_ops;

pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_alerting.sql")),
    (3, include_str!("../migrations/sqlite/0003_web.sql")),
    (4, include_str!("../migrations/sqlite/0004_api_tokens.sql")),
    (
        5,
        include_str!("../migrations/sqlite/0005_open_buckets.sql"),
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_results_recent.sql"),
    ),
    // PLACEHOLDER (branch pg-tiers): replaced by main's SQLite 0007 at the merge.
    (7, include_str!("../migrations/sqlite/0007_placeholder.sql")),
];

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
                .pragma("cache_size", "-65536")
                // Checkpoint every 64 MiB of WAL instead of 4 MiB: a results batch rewrites
                // the same hot pages (latest, current rollup buckets, the tail of each
                // series), which are then copied back to the file once per checkpoint
                // rather than once per batch.
                .pragma("wal_autocheckpoint", "16384")
                .pragma("journal_size_limit", "67108864");
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

/// `BEGIN IMMEDIATE` already makes an ingest transaction the only writer of the file, so
/// the open buckets it read cannot change before it writes them.
pub(crate) async fn lock_for_ingest(_conn: &mut SqliteConnection) -> Result<()> {
    Ok(())
}

pub(crate) use fast::read_open_buckets;

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
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            // Anonymous `?`: with `$N`, binding looks every name up in a list that
            // SQLite scans linearly, which is quadratic in the number of parameters.
            sql.push('?');
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// Milliseconds per bucket of `results_recent` (one minute).
pub(crate) const BUCKET_MS: i64 = 60_000;

/// The `prophasis_meta` key of the tier watermark (a bucket number).
const WATERMARK: &str = "results_compacted_before";

fn bucket_of(ts: i64) -> i64 {
    ts.div_euclid(BUCKET_MS)
}

async fn watermark(conn: &mut SqliteConnection) -> Result<i64> {
    let v: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT CAST(value AS INTEGER) FROM {} WHERE key = '{WATERMARK}'",
        ops::META_TABLE
    ))
    .fetch_optional(&mut *conn)
    .await?;
    v.ok_or_else(|| StoreError::Corrupt(format!("{WATERMARK} is missing")))
}

/// When compaction runs and how much of the recent tier it leaves, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compaction {
    /// Compact once the newest minute is this far past the watermark.
    pub span: i64,
    /// Minutes (counting back from the newest) that stay in `results_recent`: results of
    /// the last few minutes still arrive, and they would land below the watermark (in the
    /// series-clustered tree, the slow path) if their minute had been compacted.
    pub keep: i64,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction { span: 15, keep: 5 }
    }
}

/// Moves every minute older than the newest `keep` from `results_recent` into `results`, in
/// series order, when the newest minute is `span` past the watermark; one transaction, so
/// each row is in exactly one tier before and after. Runs after a batch has committed, with
/// the store's ingest lock held.
pub(crate) async fn compact(pool: &SqlitePool, c: Compaction) -> Result<()> {
    use crate::ingest::sql::UPSERT_RESULTS;
    // Most batches find nothing to do: find out with one read, without taking the write
    // lock; the decision is made again under it.
    let due: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT (SELECT MAX(bucket) FROM results_recent) - CAST(value AS INTEGER) \
         FROM {} WHERE key = '{WATERMARK}'",
        ops::META_TABLE
    ))
    .fetch_optional(pool)
    .await?
    .flatten();
    if due.is_none_or(|d| d < c.span) {
        return Ok(());
    }
    let mut tx = begin(pool).await?;
    let below = watermark(&mut tx).await?;
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(bucket) FROM results_recent")
        .fetch_one(&mut *tx)
        .await?;
    let Some(newest) = newest else {
        return Ok(());
    };
    if newest - below < c.span {
        return Ok(());
    }
    let cut = newest - c.keep;
    let started = std::time::Instant::now();
    // The sort makes the inserts walk `results` once, series by series; the upsert only
    // matters if a row was ever in both tiers, which the watermark rule prevents.
    let moved = sqlx::query(&format!(
        "INSERT INTO results (host_id, plugin_pk, ts, check_id, value, message, result_type, classification) \
         SELECT host_id, plugin_pk, ts, check_id, value, message, result_type, classification \
         FROM results_recent WHERE bucket < $1 ORDER BY host_id, plugin_pk, ts {UPSERT_RESULTS}"
    ))
    .bind(cut)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // A prefix of the recent tree.
    sqlx::query("DELETE FROM results_recent WHERE bucket < $1")
        .bind(cut)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "UPDATE {} SET value = $1 WHERE key = '{WATERMARK}'",
        ops::META_TABLE
    ))
    .bind(cut.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::debug!(
        rows = moved,
        watermark = cut,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "compacted recent results"
    );
    Ok(())
}

const INSERT_RECENT: &str = "INSERT INTO results_recent (bucket, host_id, plugin_pk, ts, check_id, value, message, result_type, classification)";
const UPSERT_RECENT: &str = "ON CONFLICT (bucket, host_id, plugin_pk, ts) DO UPDATE SET \
    check_id = excluded.check_id, value = excluded.value, message = excluded.message, \
    result_type = excluded.result_type, classification = excluded.classification";

pub(crate) async fn write_batch(
    conn: &mut SqliteConnection,
    p: &Prepared<'_>,
    m: &Merged,
) -> Result<()> {
    use crate::ingest::sql::*;
    let below = watermark(conn).await?;
    let (late, mut recent): (Vec<&Row<'_>>, Vec<&Row<'_>>) =
        p.rows.iter().partition(|r| bucket_of(r.ts) < below);
    // In key order, so the batch appends to the recent tree instead of splitting pages.
    recent.sort_by_key(|r| (bucket_of(r.ts), r.host_id, r.plugin_pk, r.ts));
    for chunk in recent.chunks(ROWS_PER_STATEMENT) {
        let sql = values_sql(INSERT_RECENT, 9, chunk.len(), UPSERT_RECENT);
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(bucket_of(r.ts))
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
    for chunk in late.chunks(ROWS_PER_STATEMENT) {
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
    let latest: Vec<(usize, &OpenBuckets)> = p.latest.iter().copied().zip(&m.open).collect();
    for chunk in latest.chunks(ROWS_PER_STATEMENT) {
        let sql = values_sql(INSERT_LATEST, 22, chunk.len(), UPSERT_LATEST);
        let mut q = sqlx::query(&sql);
        for (i, open) in chunk {
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
            for b in open.iter() {
                q = q
                    .bind(b.as_ref().map(|b| b.bucket))
                    .bind(b.as_ref().and_then(|b| b.min))
                    .bind(b.as_ref().and_then(|b| b.max))
                    .bind(b.as_ref().map(|b| b.sum))
                    .bind(b.as_ref().map(|b| b.n_value))
                    .bind(b.as_ref().map(|b| b.n_all))
                    .bind(b.as_ref().map(|b| b.worst));
            }
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in m.rollups.chunks(ROWS_PER_STATEMENT) {
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
        "SELECT CAST(SUM(pgsize) AS INTEGER) FROM dbstat WHERE name IN ('results', 'results_recent')",
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

/// Reads of many rows straight from the SQLite library: long ranges (a 30-day graph is
/// 43,200 results) and the open buckets of a batch's series (10,000 latest rows). sqlx's
/// SQLite driver runs statements on a worker thread and hands every row across a channel
/// as an owned row object, which costs several microseconds per row; on these paths that
/// was most of the time. This module steps prepared statements on the connection sqlx
/// holds (locked for the duration) and builds the values directly.
pub(crate) mod fast {
    use std::collections::HashMap;
    use std::ffi::{c_int, CStr};
    use std::ptr;

    use libsqlite3_sys as ffi;
    use prophasis_model::{CheckResult, HostId, Millis, Resolution, Rollup};
    use sqlx::sqlite::{SqliteConnection, SqlitePool};

    use crate::codes::{classification_from, resolution_code, result_type_from};
    use crate::error::{Result, StoreError};
    use crate::ingest::{sql::open_prefix, sql::OPEN_COLUMNS, Agg, OpenBuckets, Prepared};

    /// A prepared statement finalized on every way out.
    struct Stmt {
        db: *mut ffi::sqlite3,
        raw: *mut ffi::sqlite3_stmt,
    }

    impl Drop for Stmt {
        fn drop(&mut self) {
            // SAFETY: `raw` came from sqlite3_prepare_v2 on `db` and is finalized once.
            unsafe { ffi::sqlite3_finalize(self.raw) };
        }
    }

    fn error(db: *mut ffi::sqlite3, rc: c_int) -> StoreError {
        // SAFETY: sqlite3_errmsg returns a valid NUL-terminated string owned by `db`.
        let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
            .to_string_lossy()
            .into_owned();
        StoreError::Database(sqlx::Error::Protocol(format!("SQLite error {rc}: {msg}")))
    }

    enum Arg<'a> {
        Int(i64),
        Text(&'a str),
    }

    impl Stmt {
        /// SAFETY: `db` must be a valid connection handle that no other thread uses while
        /// the statement lives (guaranteed by holding sqlx's handle lock).
        unsafe fn prepare(db: *mut ffi::sqlite3, sql: &str, args: &[Arg<'_>]) -> Result<Stmt> {
            let mut raw = ptr::null_mut();
            let rc = ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr().cast(),
                sql.len() as c_int,
                &mut raw,
                ptr::null_mut(),
            );
            if rc != ffi::SQLITE_OK {
                return Err(error(db, rc));
            }
            let stmt = Stmt { db, raw };
            for (i, arg) in args.iter().enumerate() {
                let idx = i as c_int + 1;
                let rc = match arg {
                    Arg::Int(v) => ffi::sqlite3_bind_int64(raw, idx, *v),
                    Arg::Text(t) => ffi::sqlite3_bind_text(
                        raw,
                        idx,
                        t.as_ptr().cast(),
                        t.len() as c_int,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                };
                if rc != ffi::SQLITE_OK {
                    return Err(error(db, rc));
                }
            }
            Ok(stmt)
        }

        /// Runs the statement again with a new first (integer) parameter.
        fn rebind_first(&mut self, v: i64) -> Result<()> {
            // SAFETY: valid statement, see `prepare`.
            let rc = unsafe {
                ffi::sqlite3_reset(self.raw);
                ffi::sqlite3_bind_int64(self.raw, 1, v)
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
            Ok(())
        }

        /// `Ok(true)` while there is a row.
        fn step(&mut self) -> Result<bool> {
            // SAFETY: valid statement, see `prepare`.
            match unsafe { ffi::sqlite3_step(self.raw) } {
                ffi::SQLITE_ROW => Ok(true),
                ffi::SQLITE_DONE => Ok(false),
                rc => Err(error(self.db, rc)),
            }
        }

        fn is_null(&self, col: c_int) -> bool {
            // SAFETY: valid statement positioned on a row.
            unsafe { ffi::sqlite3_column_type(self.raw, col) == ffi::SQLITE_NULL }
        }

        fn i64(&self, col: c_int) -> i64 {
            // SAFETY: as above.
            unsafe { ffi::sqlite3_column_int64(self.raw, col) }
        }

        fn opt_i64(&self, col: c_int) -> Option<i64> {
            (!self.is_null(col)).then(|| self.i64(col))
        }

        fn opt_f64(&self, col: c_int) -> Option<f64> {
            // SAFETY: as above.
            (!self.is_null(col)).then(|| unsafe { ffi::sqlite3_column_double(self.raw, col) })
        }

        fn text(&self, col: c_int) -> String {
            // SAFETY: as above; the pointer is valid for `bytes` bytes until the next step.
            unsafe {
                let p = ffi::sqlite3_column_text(self.raw, col);
                if p.is_null() {
                    return String::new();
                }
                let n = ffi::sqlite3_column_bytes(self.raw, col) as usize;
                String::from_utf8_lossy(std::slice::from_raw_parts(p, n)).into_owned()
            }
        }

        fn i16(&self, col: c_int) -> Result<i16> {
            let v = self.i64(col);
            i16::try_from(v).map_err(|_| StoreError::Corrupt(format!("code {v}")))
        }
    }

    const PLUGIN_PK_OF: &str = "(SELECT pk FROM plugins WHERE id = ?2)";

    impl Stmt {
        /// The open bucket whose seven columns start at `col` (NULL bucket: none).
        fn open_bucket(
            &self,
            col: c_int,
            host_id: i64,
            plugin_pk: i32,
            resolution: i16,
        ) -> Result<Option<Agg>> {
            let Some(bucket) = self.opt_i64(col) else {
                return Ok(None);
            };
            Ok(Some(Agg {
                host_id,
                plugin_pk,
                resolution,
                bucket,
                min: self.opt_f64(col + 1),
                max: self.opt_f64(col + 2),
                sum: self.opt_f64(col + 3).unwrap_or(0.0),
                n_value: self.i64(col + 4),
                n_all: self.i64(col + 5),
                worst: self.i16(col + 6)?,
            }))
        }
    }

    /// The open buckets of every series of the batch's hosts, read in the ingest
    /// transaction: one indexed lookup per host (its plugins are adjacent in `latest`), and
    /// through the C API because sqlx would hand each of 10,000 rows across a channel.
    pub(crate) async fn read_open_buckets(
        conn: &mut SqliteConnection,
        p: &Prepared<'_>,
    ) -> Result<HashMap<(i64, i32), OpenBuckets>> {
        let mut hosts: Vec<i64> = p.latest.iter().map(|&i| p.rows[i].host_id).collect();
        hosts.dedup();
        let mut out = HashMap::with_capacity(p.latest.len());
        let Some(&first) = hosts.first() else {
            return Ok(out);
        };
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        let sql =
            format!("SELECT host_id, plugin_pk, {OPEN_COLUMNS} FROM latest WHERE host_id = ?1");
        // SAFETY: `db` is the transaction's connection, locked by `handle` until the
        // statement is finalized at the end of this function.
        let mut stmt = unsafe { Stmt::prepare(db, &sql, &[Arg::Int(first)])? };
        for (n, host) in hosts.iter().enumerate() {
            if n > 0 {
                stmt.rebind_first(*host)?;
            }
            while stmt.step()? {
                let pk = stmt.i64(1) as i32;
                let open = [
                    stmt.open_bucket(2, *host, pk, 1)?,
                    stmt.open_bucket(9, *host, pk, 2)?,
                ];
                out.insert((*host, pk), open);
            }
        }
        drop(stmt);
        Ok(out)
    }

    /// Runs `f` in a read transaction: one snapshot across its statements, so a compaction
    /// committing in between cannot move rows from one tier to the other under the reader.
    ///
    /// SAFETY: as for [`Stmt::prepare`]; `f` must finalize its statements before it returns.
    unsafe fn in_snapshot<T>(db: *mut ffi::sqlite3, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut begin = Stmt::prepare(db, "BEGIN", &[])?;
        begin.step()?;
        drop(begin);
        let out = f();
        // Ends the snapshot whatever happened: the connection goes back to the pool.
        let end = Stmt::prepare(db, "COMMIT", &[]).and_then(|mut s| s.step());
        let out = out?;
        end?;
        Ok(out)
    }

    /// The plugin's surrogate key and the tier watermark (see the module doc of `sqlite`).
    ///
    /// SAFETY: as for [`Stmt::prepare`].
    unsafe fn series_and_watermark(
        db: *mut ffi::sqlite3,
        plugin: &str,
    ) -> Result<Option<(i64, i64)>> {
        let mut stmt = Stmt::prepare(
            db,
            &format!(
                "SELECT (SELECT pk FROM plugins WHERE id = ?1), \
                 (SELECT CAST(value AS INTEGER) FROM {META} WHERE key = '{WATERMARK}')",
                META = super::ops::META_TABLE,
                WATERMARK = super::WATERMARK,
            ),
            &[Arg::Text(plugin)],
        )?;
        stmt.step()?;
        let Some(pk) = stmt.opt_i64(0) else {
            return Ok(None);
        };
        let watermark = stmt
            .opt_i64(1)
            .ok_or_else(|| StoreError::Corrupt(format!("{} is missing", super::WATERMARK)))?;
        Ok(Some((pk, watermark)))
    }

    const RESULT_COLUMNS: &str = "ts, check_id, value, message, result_type, classification";

    fn push_result(
        out: &mut Vec<CheckResult>,
        stmt: &Stmt,
        host: HostId,
        plugin: &str,
    ) -> Result<()> {
        out.push(CheckResult {
            host_id: host,
            plugin_id: plugin.to_string(),
            check_id: stmt.opt_i64(1),
            timestamp: stmt.i64(0),
            value: stmt.opt_f64(2),
            message: stmt.text(3),
            result_type: result_type_from(stmt.i16(4)?)?,
            classification: classification_from(stmt.i16(5)?)?,
        });
        Ok(())
    }

    /// Both tiers, oldest first: `results` below the watermark (series-clustered, one range
    /// seek), then `results_recent` minute by minute (a seek to the next minute present and
    /// one into that minute's rows of this series), never a scan of the recent tier. Every
    /// row of `results` is older than every row of `results_recent`, so the concatenation is
    /// in time order.
    pub(crate) async fn results_range(
        pool: &SqlitePool,
        host: HostId,
        plugin: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<CheckResult>> {
        let mut conn = pool.acquire().await?;
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        // SAFETY: `db` is the connection sqlx holds; `handle` keeps it locked until every
        // statement below is finalized, at the end of the closure.
        unsafe {
            in_snapshot(db, || {
                let Some((pk, watermark)) = series_and_watermark(db, plugin)? else {
                    return Ok(());
                };
                let split = watermark.saturating_mul(super::BUCKET_MS);
                if from < split {
                    let sql = format!(
                        "SELECT {RESULT_COLUMNS} FROM results \
                         WHERE host_id = ?1 AND plugin_pk = ?2 AND ts >= ?3 AND ts < ?4 ORDER BY ts"
                    );
                    let args = [
                        Arg::Int(host),
                        Arg::Int(pk),
                        Arg::Int(from),
                        Arg::Int(to.min(split)),
                    ];
                    let mut stmt = Stmt::prepare(db, &sql, &args)?;
                    while stmt.step()? {
                        push_result(&mut out, &stmt, host, plugin)?;
                    }
                }
                if to <= split {
                    return Ok(());
                }
                let first = super::bucket_of(from).max(watermark);
                let last = super::bucket_of(to - 1);
                let mut next = Stmt::prepare(
                    db,
                    "SELECT bucket FROM results_recent WHERE bucket >= ?1 AND bucket <= ?2 \
                     ORDER BY bucket LIMIT 1",
                    &[Arg::Int(first), Arg::Int(last)],
                )?;
                let sql = format!(
                    "SELECT {RESULT_COLUMNS} FROM results_recent WHERE bucket = ?1 \
                     AND host_id = ?2 AND plugin_pk = ?3 AND ts >= ?4 AND ts < ?5 ORDER BY ts"
                );
                let args = [
                    Arg::Int(first),
                    Arg::Int(host),
                    Arg::Int(pk),
                    Arg::Int(from),
                    Arg::Int(to),
                ];
                let mut rows = Stmt::prepare(db, &sql, &args)?;
                let mut at = first;
                loop {
                    next.rebind_first(at)?;
                    if !next.step()? {
                        break;
                    }
                    let bucket = next.i64(0);
                    rows.rebind_first(bucket)?;
                    while rows.step()? {
                        push_result(&mut out, &rows, host, plugin)?;
                    }
                    if bucket >= last {
                        break;
                    }
                    at = bucket + 1;
                }
                Ok(())
            })?;
        }
        drop(handle);
        Ok(out)
    }

    /// The newest `n` results of a series across both tiers, oldest first: the recent tier
    /// minute by minute from the newest (at most a few dozen minutes are there), then the
    /// rest from `results`.
    pub(crate) async fn last_results(
        pool: &SqlitePool,
        host: HostId,
        plugin: &str,
        n: u32,
    ) -> Result<Vec<CheckResult>> {
        let mut conn = pool.acquire().await?;
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        let n = n as usize;
        let mut out = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        // SAFETY: as in `results_range`.
        unsafe {
            in_snapshot(db, || {
                let Some((pk, _)) = series_and_watermark(db, plugin)? else {
                    return Ok(());
                };
                let mut prev = Stmt::prepare(
                    db,
                    "SELECT bucket FROM results_recent WHERE bucket <= ?1 ORDER BY bucket DESC LIMIT 1",
                    &[Arg::Int(i64::MAX)],
                )?;
                let sql = format!(
                    "SELECT {RESULT_COLUMNS} FROM results_recent WHERE bucket = ?1 \
                     AND host_id = ?2 AND plugin_pk = ?3 ORDER BY ts DESC"
                );
                let mut rows =
                    Stmt::prepare(db, &sql, &[Arg::Int(0), Arg::Int(host), Arg::Int(pk)])?;
                let mut at = i64::MAX;
                'minutes: loop {
                    prev.rebind_first(at)?;
                    if !prev.step()? {
                        break;
                    }
                    let bucket = prev.i64(0);
                    rows.rebind_first(bucket)?;
                    while rows.step()? {
                        push_result(&mut out, &rows, host, plugin)?;
                        if out.len() == n {
                            break 'minutes;
                        }
                    }
                    if bucket == i64::MIN {
                        break;
                    }
                    at = bucket - 1;
                }
                if out.len() < n {
                    let sql = format!(
                        "SELECT {RESULT_COLUMNS} FROM results WHERE host_id = ?1 AND plugin_pk = ?2 \
                         ORDER BY ts DESC LIMIT ?3"
                    );
                    let args = [
                        Arg::Int(host),
                        Arg::Int(pk),
                        Arg::Int((n - out.len()) as i64),
                    ];
                    let mut stmt = Stmt::prepare(db, &sql, &args)?;
                    while stmt.step()? {
                        push_result(&mut out, &stmt, host, plugin)?;
                    }
                }
                Ok(())
            })?;
        }
        drop(handle);
        out.reverse();
        Ok(out)
    }

    pub(crate) async fn rollups_range(
        pool: &SqlitePool,
        host: HostId,
        plugin: &str,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Rollup>> {
        let mut conn = pool.acquire().await?;
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        // The open bucket, newer than every rollups row of the series, is in `latest`; one
        // statement reads both, so a batch closing it in between cannot hide it.
        let c = open_prefix(resolution_code(resolution));
        let sql = format!(
            "SELECT bucket, min_value, max_value, sum_value, n_value, n_all, worst FROM rollups \
             WHERE host_id = ?1 AND plugin_pk = {PLUGIN_PK_OF} AND resolution = ?3 \
             AND bucket >= ?4 AND bucket < ?5 \
             UNION ALL \
             SELECT {c}_bucket, {c}_min, {c}_max, {c}_sum, {c}_n_value, {c}_n_all, {c}_worst FROM latest \
             WHERE host_id = ?1 AND plugin_pk = {PLUGIN_PK_OF} AND {c}_bucket >= ?4 AND {c}_bucket < ?5 \
             ORDER BY 1"
        );
        let args = [
            Arg::Int(host),
            Arg::Text(plugin),
            Arg::Int(resolution_code(resolution) as i64),
            Arg::Int(resolution.bucket_start(from)),
            Arg::Int(to),
        ];
        // SAFETY: as in `results_range`.
        let mut stmt = unsafe { Stmt::prepare(db, &sql, &args)? };
        let mut out = Vec::new();
        while stmt.step()? {
            let n_value = stmt.i64(4);
            let sum = stmt.opt_f64(3).unwrap_or(0.0);
            out.push(Rollup {
                host_id: host,
                plugin_id: plugin.to_string(),
                resolution,
                bucket_start: stmt.i64(0),
                min: stmt.opt_f64(1),
                max: stmt.opt_f64(2),
                avg: (n_value > 0).then(|| sum / n_value as f64),
                count: stmt.i64(5),
                worst: classification_from(stmt.i16(6)?)?,
            });
        }
        drop(stmt);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn memory() -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(SqliteConnectOptions::from_str("sqlite::memory:").unwrap())
            .await
            .unwrap()
    }

    async fn tables(pool: &SqlitePool) -> Vec<String> {
        list_tables(&mut pool.acquire().await.unwrap())
            .await
            .unwrap()
    }

    /// Each migration creates a table, so applying one twice fails the test.
    fn creating(tables: &[(i64, &'static str)]) -> Vec<(i64, String)> {
        tables
            .iter()
            .map(|(v, t)| (*v, format!("CREATE TABLE {t} (x INTEGER)")))
            .collect()
    }

    async fn migrate(pool: &SqlitePool, list: &[(i64, String)]) -> i64 {
        let list: Vec<(i64, &str)> = list.iter().map(|(v, s)| (*v, s.as_str())).collect();
        ops::migrate(pool, "test", &list).await.unwrap()
    }

    #[tokio::test]
    async fn numbered_migrations_with_gaps_are_each_applied_once() {
        let pool = memory().await;
        let reserved_gap = creating(&[(1, "a"), (2, "b"), (5, "e")]);
        assert_eq!(migrate(&pool, &reserved_gap).await, 5);
        assert_eq!(migrate(&pool, &reserved_gap).await, 5, "nothing to apply");
        // A branch that used a lower number merges later: its migration still runs.
        let merged = creating(&[(1, "a"), (2, "b"), (3, "c"), (5, "e")]);
        assert_eq!(migrate(&pool, &merged).await, 5);
        assert_eq!(migrate(&pool, &merged).await, 5);
        assert_eq!(
            tables(&pool).await,
            ["a", "b", "c", "e", ops::META_TABLE].map(String::from)
        );
        assert_eq!(ops::schema_version(&pool).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_database_from_before_migration_records_counts_its_version_as_applied() {
        let pool = memory().await;
        sqlx::raw_sql(&format!(
            "CREATE TABLE a (x INTEGER); CREATE TABLE b (x INTEGER); \
             CREATE TABLE {0} (key TEXT PRIMARY KEY, value TEXT NOT NULL); \
             INSERT INTO {0} VALUES ('application', 'prophasis'), ('schema_version', '2');",
            ops::META_TABLE
        ))
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(
            migrate(&pool, &creating(&[(1, "a"), (2, "b"), (5, "e")])).await,
            5
        );
        assert!(tables(&pool).await.contains(&"e".to_string()));
    }
}
