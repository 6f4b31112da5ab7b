//! The SQLite backend: the embedded default, one file in WAL mode with `synchronous=FULL`
//! so a committed batch survives a power cut. Write transactions start with
//! `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of failing when a
//! read lock cannot be upgraded.
//!
//! Results live in two tiers (migrations 0006–0008). A batch in which every result is
//! another series would dirty one page per series of a series-clustered table, and WAL mode
//! writes each dirty page at commit; so batches land in `results_recent`, clustered by
//! minute first (appends near the end of one tree), and nothing else is written per result:
//! [`compact`] (`sqlite/write.rs`) moves whole hours into `result_chunks` (one row per
//! series and hour, its results in one blob: `sqlite/chunks.rs`) and folds them into
//! `latest` and `rollups` as it goes. The watermark `results_compacted_before` (a minute
//! number in `prophasis_meta`) splits the tiers: a result whose minute is below it is in a
//! chunk and folded, any other is in `results_recent` and not folded yet. Late results
//! below the watermark are merged into their chunks and folded at once. Readers that need
//! both tiers read them in one snapshot (one read transaction), so a compaction in between
//! can neither hide nor duplicate a row; the latest result, the latest classifications and
//! rollups add the recent tier's rows.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::error::{Result, StoreError};
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
    (
        7,
        include_str!("../migrations/sqlite/0007_deferred_folding.sql"),
    ),
    (
        8,
        include_str!("../migrations/sqlite/0008_result_chunks.sql"),
    ),
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

/// Steps of a migration that SQL alone cannot do, run after its SQL in the same
/// transaction: version 8 encodes the rows of `results` into chunks.
pub(crate) async fn after_migration(conn: &mut SqliteConnection, version: i64) -> Result<()> {
    match version {
        8 => chunks::convert_results(conn).await,
        _ => Ok(()),
    }
}

/// `BEGIN IMMEDIATE` already gives the migrating connection the only write lock.
pub(crate) async fn lock_for_migration(_conn: &mut SqliteConnection) -> Result<()> {
    Ok(())
}

/// `BEGIN IMMEDIATE` already makes a transaction the only writer of the file.
pub(crate) async fn lock_for_ingest(_conn: &mut SqliteConnection) -> Result<()> {
    Ok(())
}

pub(crate) async fn list_tables(conn: &mut SqliteConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Milliseconds per bucket of `results_recent` (one minute).
pub(crate) const BUCKET_MS: i64 = 60_000;

/// The `prophasis_meta` key of the tier watermark (a bucket number).
const WATERMARK: &str = "results_compacted_before";

fn bucket_of(ts: i64) -> i64 {
    ts.div_euclid(BUCKET_MS)
}

pub(crate) mod chunks;
pub(crate) mod write;
pub(crate) use write::{compact, insert_results};

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
        "SELECT CAST(SUM(pgsize) AS INTEGER) FROM dbstat \
         WHERE name IN ('result_chunks', 'result_chunks_key', 'results_recent')",
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
    use std::collections::{HashMap, HashSet};
    use std::ffi::{c_int, CStr};
    use std::ptr;

    use libsqlite3_sys as ffi;
    use prophasis_model::{CheckResult, HostId, Millis, Resolution, Rollup};
    use sqlx::sqlite::SqlitePool;

    use crate::chunk::{self, hour_of};
    use crate::codes::{classification_from, resolution_code, result_type_from};
    use crate::error::{Result, StoreError};
    use crate::ingest::{sql::open_prefix, sql::OPEN_COLUMNS, Agg, OpenBuckets, Prepared};

    /// A prepared statement finalized on every way out.
    pub(super) struct Stmt {
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

    pub(super) enum Arg<'a> {
        Int(i64),
        Text(&'a str),
    }

    impl Stmt {
        /// SAFETY: `db` must be a valid connection handle that no other thread uses while
        /// the statement lives (guaranteed by holding sqlx's handle lock).
        pub(super) unsafe fn prepare(
            db: *mut ffi::sqlite3,
            sql: &str,
            args: &[Arg<'_>],
        ) -> Result<Stmt> {
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
        pub(super) fn rebind_first(&mut self, v: i64) -> Result<()> {
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
        pub(super) fn step(&mut self) -> Result<bool> {
            // SAFETY: valid statement, see `prepare`.
            match unsafe { ffi::sqlite3_step(self.raw) } {
                ffi::SQLITE_ROW => Ok(true),
                ffi::SQLITE_DONE => Ok(false),
                rc => Err(error(self.db, rc)),
            }
        }

        pub(super) fn is_null(&self, col: c_int) -> bool {
            // SAFETY: valid statement positioned on a row.
            unsafe { ffi::sqlite3_column_type(self.raw, col) == ffi::SQLITE_NULL }
        }

        pub(super) fn i64(&self, col: c_int) -> i64 {
            // SAFETY: as above.
            unsafe { ffi::sqlite3_column_int64(self.raw, col) }
        }

        pub(super) fn opt_i64(&self, col: c_int) -> Option<i64> {
            (!self.is_null(col)).then(|| self.i64(col))
        }

        pub(super) fn opt_f64(&self, col: c_int) -> Option<f64> {
            // SAFETY: as above.
            (!self.is_null(col)).then(|| unsafe { ffi::sqlite3_column_double(self.raw, col) })
        }

        pub(super) fn text(&self, col: c_int) -> String {
            String::from_utf8_lossy(self.text_bytes(col)).into_owned()
        }

        pub(super) fn i16(&self, col: c_int) -> Result<i16> {
            let v = self.i64(col);
            i16::try_from(v).map_err(|_| StoreError::Corrupt(format!("code {v}")))
        }
    }

    /// Binding, for statements run once per row (the write path). Text is copied by
    /// SQLite (`SQLITE_TRANSIENT`), so the caller's strings need not outlive the call.
    impl Stmt {
        fn check(&self, rc: c_int) -> Result<()> {
            if rc == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(error(self.db, rc))
            }
        }

        pub(super) fn bind_i64(&mut self, idx: c_int, v: i64) -> Result<()> {
            // SAFETY: valid statement, see `prepare`.
            self.check(unsafe { ffi::sqlite3_bind_int64(self.raw, idx, v) })
        }

        pub(super) fn bind_opt_i64(&mut self, idx: c_int, v: Option<i64>) -> Result<()> {
            match v {
                Some(v) => self.bind_i64(idx, v),
                // SAFETY: valid statement, see `prepare`.
                None => self.check(unsafe { ffi::sqlite3_bind_null(self.raw, idx) }),
            }
        }

        pub(super) fn bind_opt_f64(&mut self, idx: c_int, v: Option<f64>) -> Result<()> {
            // SAFETY: valid statement, see `prepare`.
            self.check(unsafe {
                match v {
                    Some(v) => ffi::sqlite3_bind_double(self.raw, idx, v),
                    None => ffi::sqlite3_bind_null(self.raw, idx),
                }
            })
        }

        pub(super) fn bind_text(&mut self, idx: c_int, t: &str) -> Result<()> {
            // SAFETY: valid statement; SQLITE_TRANSIENT makes SQLite copy the bytes.
            self.check(unsafe {
                ffi::sqlite3_bind_text(
                    self.raw,
                    idx,
                    t.as_ptr().cast(),
                    t.len() as c_int,
                    ffi::SQLITE_TRANSIENT(),
                )
            })
        }

        pub(super) fn bind_blob(&mut self, idx: c_int, b: &[u8]) -> Result<()> {
            // SAFETY: valid statement; SQLITE_TRANSIENT makes SQLite copy the bytes.
            self.check(unsafe {
                ffi::sqlite3_bind_blob(
                    self.raw,
                    idx,
                    b.as_ptr().cast(),
                    b.len() as c_int,
                    ffi::SQLITE_TRANSIENT(),
                )
            })
        }

        /// Ends the current run (the statement's read of the table with it), keeping the
        /// bound parameters.
        pub(super) fn reset(&mut self) {
            // SAFETY: valid statement, see `prepare`. The error code repeats the last
            // step's, which that step already returned.
            unsafe { ffi::sqlite3_reset(self.raw) };
        }

        /// Runs a statement that returns no rows and makes it ready to run again.
        pub(super) fn run(&mut self) -> Result<()> {
            let stepped = self.step();
            // SAFETY: valid statement, see `prepare`.
            unsafe { ffi::sqlite3_reset(self.raw) };
            stepped.map(|_| ())
        }

        /// The bytes of a BLOB column without copying them: valid until the next step or
        /// reset.
        pub(super) fn blob(&self, col: c_int) -> &[u8] {
            // SAFETY: as for `text`; a zero-length BLOB gives a null pointer.
            unsafe {
                let p = ffi::sqlite3_column_blob(self.raw, col);
                if p.is_null() {
                    return &[];
                }
                let n = ffi::sqlite3_column_bytes(self.raw, col) as usize;
                std::slice::from_raw_parts(p.cast::<u8>(), n)
            }
        }

        /// The text of a column without copying it: valid until the next step or reset.
        pub(super) fn text_bytes(&self, col: c_int) -> &[u8] {
            // SAFETY: as for `text`.
            unsafe {
                let p = ffi::sqlite3_column_text(self.raw, col);
                if p.is_null() {
                    return &[];
                }
                let n = ffi::sqlite3_column_bytes(self.raw, col) as usize;
                std::slice::from_raw_parts(p, n)
            }
        }
    }

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

    /// The open buckets of every series of `p`'s hosts, read in the ingest transaction:
    /// one indexed lookup per host (its plugins are adjacent in `latest`).
    ///
    /// SAFETY: as for [`Stmt::prepare`].
    pub(super) unsafe fn read_open_buckets(
        db: *mut ffi::sqlite3,
        p: &Prepared<'_>,
    ) -> Result<HashMap<(i64, i32), OpenBuckets>> {
        let mut hosts: Vec<i64> = p.latest.iter().map(|&i| p.rows[i].host_id).collect();
        hosts.dedup();
        let mut out = HashMap::with_capacity(p.latest.len());
        let Some(&first) = hosts.first() else {
            return Ok(out);
        };
        let sql =
            format!("SELECT host_id, plugin_pk, {OPEN_COLUMNS} FROM latest WHERE host_id = ?1");
        let mut stmt = Stmt::prepare(db, &sql, &[Arg::Int(first)])?;
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

    /// The buckets of a tier keyed by a time bucket first (`result_chunks` by hour,
    /// `results_recent` by minute) in `lo..=hi` that hold any rows, in either direction,
    /// found with one seek each: buckets without rows cost nothing, and the tier is never
    /// scanned (`SELECT DISTINCT` would read every row).
    struct Hop {
        next: Stmt,
        at: Option<i64>,
        newest_first: bool,
    }

    impl Hop {
        /// SAFETY: as for [`Stmt::prepare`].
        unsafe fn new(
            db: *mut ffi::sqlite3,
            (table, bucket): (&str, &str),
            (lo, hi): (i64, i64),
            newest_first: bool,
        ) -> Result<Hop> {
            // `?1` moves as the walk goes; `?2` is the far end.
            let (op, bound, order, start, end) = match newest_first {
                false => (">=", "<=", "ASC", lo, hi),
                true => ("<=", ">=", "DESC", hi, lo),
            };
            let sql = format!(
                "SELECT {bucket} FROM {table} WHERE {bucket} {op} ?1 AND {bucket} {bound} ?2 \
                 ORDER BY {bucket} {order} LIMIT 1"
            );
            Ok(Hop {
                next: Stmt::prepare(db, &sql, &[Arg::Int(start), Arg::Int(end)])?,
                at: (lo <= hi).then_some(start),
                newest_first,
            })
        }

        fn next(&mut self) -> Result<Option<i64>> {
            let Some(at) = self.at else {
                return Ok(None);
            };
            self.next.rebind_first(at)?;
            if !self.next.step()? {
                self.at = None;
                return Ok(None);
            }
            let b = self.next.i64(0);
            self.at = match self.newest_first {
                false => b.checked_add(1),
                true => b.checked_sub(1),
            };
            Ok(Some(b))
        }
    }

    /// Gives `f` the rows `rows` returns for each bucket [`Hop`] finds (`rows` is run with
    /// the bucket as `?1`; its other parameters are the caller's), until `f` says stop.
    ///
    /// SAFETY: as for [`Stmt::prepare`].
    unsafe fn walk(
        db: *mut ffi::sqlite3,
        tier: (&str, &str),
        bounds: (i64, i64),
        newest_first: bool,
        rows: &mut Stmt,
        mut f: impl FnMut(&Stmt) -> Result<bool>,
    ) -> Result<()> {
        let mut hop = Hop::new(db, tier, bounds, newest_first)?;
        while let Some(b) = hop.next()? {
            rows.rebind_first(b)?;
            while rows.step()? {
                if !f(rows)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The result rows of one series and recent minute (`?1`) with `?4 <= ts < ?5`.
    fn recent_in_minute() -> String {
        format!(
            "SELECT {RESULT_COLUMNS} FROM results_recent WHERE bucket = ?1 \
             AND host_id = ?2 AND plugin_pk = ?3 AND ts >= ?4 AND ts < ?5 ORDER BY ts"
        )
    }

    /// Both tiers, oldest first: the series' chunks below the watermark hour by hour, then
    /// `results_recent` minute by minute (a seek to the next minute present and one into
    /// that minute's rows of this series), never a scan of the recent tier. Every chunked
    /// result is older than every recent one, so the concatenation is in time order.
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
                    let before = to.min(split);
                    let checks = check_ids(db)?;
                    let is_check = |c: i64| checks.contains(&c);
                    let mut rows = Stmt::prepare(
                        db,
                        super::chunks::CHUNK_OF_SERIES,
                        &[Arg::Int(0), Arg::Int(host), Arg::Int(pk)],
                    )?;
                    walk(
                        db,
                        ("result_chunks", "hour"),
                        (hour_of(from), hour_of(before - 1)),
                        false,
                        &mut rows,
                        |row| {
                            let data = row.blob(0);
                            chunk::for_each(data, |e| {
                                if e.ts >= from && e.ts < before {
                                    out.push(chunk::to_result(data, &e, host, plugin, &is_check)?);
                                }
                                Ok(())
                            })?;
                            Ok(true)
                        },
                    )?;
                }
                if to <= split {
                    return Ok(());
                }
                let args = [
                    Arg::Int(0),
                    Arg::Int(host),
                    Arg::Int(pk),
                    Arg::Int(from),
                    Arg::Int(to),
                ];
                let mut rows = Stmt::prepare(db, &recent_in_minute(), &args)?;
                walk(
                    db,
                    ("results_recent", "bucket"),
                    (
                        super::bucket_of(from).max(watermark),
                        super::bucket_of(to - 1),
                    ),
                    false,
                    &mut rows,
                    |row| {
                        push_result(&mut out, row, host, plugin)?;
                        Ok(true)
                    },
                )
            })?;
        }
        drop(handle);
        Ok(out)
    }

    /// The newest `n` results of a series across both tiers, oldest first: the recent tier
    /// minute by minute from the newest (at most a few dozen minutes are there), then the
    /// rest from the series' chunks.
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
                recent_newest_first(db, host, pk, |row| {
                    push_result(&mut out, row, host, plugin)?;
                    Ok(out.len() < n)
                })?;
                if out.len() == n {
                    return Ok(());
                }
                // Then the chunks, hour by hour back from the series' newest folded result
                // (its latest row), each chunk's results newest first.
                let mut newest = Stmt::prepare(
                    db,
                    "SELECT ts FROM latest WHERE host_id = ?1 AND plugin_pk = ?2",
                    &[Arg::Int(host), Arg::Int(pk)],
                )?;
                let start = if newest.step()? {
                    newest.opt_i64(0)
                } else {
                    None
                };
                drop(newest);
                let Some(start) = start else {
                    return Ok(());
                };
                let checks = check_ids(db)?;
                let is_check = |c: i64| checks.contains(&c);
                let mut rows = Stmt::prepare(
                    db,
                    super::chunks::CHUNK_OF_SERIES,
                    &[Arg::Int(0), Arg::Int(host), Arg::Int(pk)],
                )?;
                let mut elems = Vec::new();
                walk(
                    db,
                    ("result_chunks", "hour"),
                    (i64::MIN, hour_of(start)),
                    true,
                    &mut rows,
                    |row| {
                        let data = row.blob(0);
                        elems.clear();
                        chunk::for_each(data, |e| {
                            elems.push(e);
                            Ok(())
                        })?;
                        for e in elems.iter().rev() {
                            if out.len() == n {
                                break;
                            }
                            out.push(chunk::to_result(data, e, host, plugin, &is_check)?);
                        }
                        Ok(out.len() < n)
                    },
                )
            })?;
        }
        drop(handle);
        out.reverse();
        Ok(out)
    }

    /// The recent rows of a series, newest first, until `f` says stop: [`walk`] over the
    /// whole recent tier.
    ///
    /// SAFETY: as for [`Stmt::prepare`].
    unsafe fn recent_newest_first(
        db: *mut ffi::sqlite3,
        host: HostId,
        pk: i64,
        f: impl FnMut(&Stmt) -> Result<bool>,
    ) -> Result<()> {
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results_recent WHERE bucket = ?1 \
             AND host_id = ?2 AND plugin_pk = ?3 ORDER BY ts DESC"
        );
        let mut rows = Stmt::prepare(db, &sql, &[Arg::Int(0), Arg::Int(host), Arg::Int(pk)])?;
        walk(
            db,
            ("results_recent", "bucket"),
            (i64::MIN, i64::MAX),
            true,
            &mut rows,
            f,
        )
    }

    /// The newest result of a series: its newest row in the recent tier if it has one
    /// (those are not folded into `latest` yet), else its latest row.
    pub(crate) async fn latest_result(
        pool: &SqlitePool,
        host: HostId,
        plugin: &str,
    ) -> Result<Option<CheckResult>> {
        let mut conn = pool.acquire().await?;
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        let mut out = Vec::new();
        // SAFETY: as in `results_range`.
        unsafe {
            in_snapshot(db, || {
                let Some((pk, _)) = series_and_watermark(db, plugin)? else {
                    return Ok(());
                };
                recent_newest_first(db, host, pk, |row| {
                    push_result(&mut out, row, host, plugin)?;
                    Ok(false)
                })?;
                if out.is_empty() {
                    let sql = format!(
                        "SELECT {RESULT_COLUMNS} FROM latest WHERE host_id = ?1 AND plugin_pk = ?2"
                    );
                    let mut stmt = Stmt::prepare(db, &sql, &[Arg::Int(host), Arg::Int(pk)])?;
                    if stmt.step()? {
                        push_result(&mut out, &stmt, host, plugin)?;
                    }
                }
                Ok(())
            })?;
        }
        drop(handle);
        Ok(out.pop())
    }

    /// The ids of the checks that exist (chunks keep the ids of deleted ones: see
    /// `chunk::to_result`).
    ///
    /// SAFETY: as for [`Stmt::prepare`].
    unsafe fn check_ids(db: *mut ffi::sqlite3) -> Result<HashSet<i64>> {
        let mut stmt = Stmt::prepare(db, "SELECT id FROM checks", &[])?;
        let mut out = HashSet::new();
        while stmt.step()? {
            out.insert(stmt.i64(0));
        }
        Ok(out)
    }

    /// The plugin ids by surrogate key.
    ///
    /// SAFETY: as for [`Stmt::prepare`].
    unsafe fn plugin_ids(db: *mut ffi::sqlite3) -> Result<HashMap<i64, String>> {
        let mut stmt = Stmt::prepare(db, "SELECT pk, id FROM plugins", &[])?;
        let mut out = HashMap::new();
        while stmt.step()? {
            out.insert(stmt.i64(0), stmt.text(1));
        }
        Ok(out)
    }

    /// The newest result of every plugin that has reported on `host`, by plugin id: the
    /// recent tier minute by minute (a seek per minute), then `latest` for the rest.
    pub(crate) async fn latest_results_for_host(
        pool: &SqlitePool,
        host: HostId,
    ) -> Result<Vec<CheckResult>> {
        let mut conn = pool.acquire().await?;
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: as in `results_range`.
        let out = unsafe {
            in_snapshot(db, || {
                let ids = plugin_ids(db)?;
                let id_of = |pk: i64| {
                    ids.get(&pk)
                        .cloned()
                        .ok_or_else(|| StoreError::Corrupt(format!("no plugin with key {pk}")))
                };
                let mut newest: HashMap<i64, CheckResult> = HashMap::new();
                let mut hop =
                    Hop::new(db, ("results_recent", "bucket"), (i64::MIN, i64::MAX), true)?;
                let mut buckets = Vec::new();
                while let Some(b) = hop.next()? {
                    buckets.push(b);
                }
                drop(hop);
                let sql = format!(
                    "SELECT {RESULT_COLUMNS}, plugin_pk FROM results_recent \
                     WHERE bucket = ?1 AND host_id = ?2"
                );
                let mut rows = Stmt::prepare(db, &sql, &[Arg::Int(0), Arg::Int(host)])?;
                for bucket in buckets {
                    rows.rebind_first(bucket)?;
                    while rows.step()? {
                        let pk = rows.i64(6);
                        let ts = rows.i64(0);
                        if newest.get(&pk).is_none_or(|r| r.timestamp < ts) {
                            let mut one = Vec::with_capacity(1);
                            push_result(&mut one, &rows, host, &id_of(pk)?)?;
                            newest.insert(pk, one.pop().expect("pushed"));
                        }
                    }
                }
                drop(rows);
                let sql =
                    format!("SELECT {RESULT_COLUMNS}, plugin_pk FROM latest WHERE host_id = ?1");
                let mut rows = Stmt::prepare(db, &sql, &[Arg::Int(host)])?;
                while rows.step()? {
                    let pk = rows.i64(6);
                    if let std::collections::hash_map::Entry::Vacant(e) = newest.entry(pk) {
                        let mut one = Vec::with_capacity(1);
                        push_result(&mut one, &rows, host, &id_of(pk)?)?;
                        e.insert(one.pop().expect("pushed"));
                    }
                }
                Ok(newest.into_values().collect::<Vec<_>>())
            })?
        };
        drop(handle);
        let mut out = out;
        out.sort_by(|a, b| a.plugin_id.cmp(&b.plugin_id));
        Ok(out)
    }

    /// The newest classification of every series: the recent tier's newest row per series
    /// (one pass over the recent tier, which holds about an hour), else the latest row.
    pub(crate) async fn latest_classifications(
        pool: &SqlitePool,
    ) -> Result<Vec<crate::LatestClassification>> {
        let mut conn = pool.acquire().await?;
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: as in `results_range`.
        let mut out = unsafe {
            in_snapshot(db, || {
                let ids = plugin_ids(db)?;
                let mut newest: HashMap<(i64, i64), (i64, i16)> = HashMap::new();
                // SQLite takes the bare `classification` from the row holding MAX(ts).
                let mut stmt = Stmt::prepare(
                    db,
                    "SELECT host_id, plugin_pk, MAX(ts), classification FROM results_recent \
                     GROUP BY host_id, plugin_pk",
                    &[],
                )?;
                while stmt.step()? {
                    newest.insert((stmt.i64(0), stmt.i64(1)), (stmt.i64(2), stmt.i16(3)?));
                }
                drop(stmt);
                let mut stmt = Stmt::prepare(
                    db,
                    "SELECT host_id, plugin_pk, ts, classification FROM latest",
                    &[],
                )?;
                while stmt.step()? {
                    newest
                        .entry((stmt.i64(0), stmt.i64(1)))
                        .or_insert((stmt.i64(2), stmt.i16(3)?));
                }
                drop(stmt);
                newest
                    .into_iter()
                    .map(|((host, pk), (ts, c))| {
                        Ok(crate::LatestClassification {
                            host_id: host,
                            plugin_id: ids.get(&pk).cloned().ok_or_else(|| {
                                StoreError::Corrupt(format!("no plugin with key {pk}"))
                            })?,
                            timestamp: ts,
                            classification: classification_from(c)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })?
        };
        drop(handle);
        out.sort_by(|a, b| (a.host_id, &a.plugin_id).cmp(&(b.host_id, &b.plugin_id)));
        Ok(out)
    }

    /// Rollups of a series overlapping `[from, to)`: `rollups`, the open bucket kept in
    /// `latest`, and the buckets of the results still in the recent tier (not folded yet),
    /// merged bucket by bucket, all read in one snapshot.
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
        let code = resolution_code(resolution);
        let first = resolution.bucket_start(from);
        let mut aggs: Vec<Agg> = Vec::new();
        // SAFETY: as in `results_range`.
        unsafe {
            in_snapshot(db, || {
                let Some((pk, watermark)) = series_and_watermark(db, plugin)? else {
                    return Ok(());
                };
                let c = open_prefix(code);
                let sql = format!(
                    "SELECT bucket, min_value, max_value, sum_value, n_value, n_all, worst FROM rollups \
                     WHERE host_id = ?1 AND plugin_pk = ?2 AND resolution = ?3 \
                     AND bucket >= ?4 AND bucket < ?5 \
                     UNION ALL \
                     SELECT {c}_bucket, {c}_min, {c}_max, {c}_sum, {c}_n_value, {c}_n_all, {c}_worst FROM latest \
                     WHERE host_id = ?1 AND plugin_pk = ?2 AND {c}_bucket >= ?4 AND {c}_bucket < ?5 \
                     ORDER BY 1"
                );
                let args = [
                    Arg::Int(host),
                    Arg::Int(pk),
                    Arg::Int(code.into()),
                    Arg::Int(first),
                    Arg::Int(to),
                ];
                let mut stmt = Stmt::prepare(db, &sql, &args)?;
                while stmt.step()? {
                    aggs.push(Agg {
                        host_id: host,
                        plugin_pk: pk as i32,
                        resolution: code,
                        bucket: stmt.i64(0),
                        min: stmt.opt_f64(1),
                        max: stmt.opt_f64(2),
                        sum: stmt.opt_f64(3).unwrap_or(0.0),
                        n_value: stmt.i64(4),
                        n_all: stmt.i64(5),
                        worst: stmt.i16(6)?,
                    });
                }
                drop(stmt);
                // The recent tier's rows of buckets in range: every recent row is newer
                // than the watermark, so only its minutes from there on are read.
                if to <= first {
                    return Ok(());
                }
                let end = resolution
                    .bucket_start(to - 1)
                    .saturating_add(resolution.millis());
                let mut recent = Vec::new();
                let lo = super::bucket_of(first).max(watermark);
                recent_newest_first(db, host, pk, |row| {
                    let ts = row.i64(0);
                    if super::bucket_of(ts) < lo {
                        return Ok(false);
                    }
                    if ts >= first && ts < end {
                        recent.push(crate::ingest::Row {
                            host_id: host,
                            plugin_pk: pk as i32,
                            ts,
                            check_id: None,
                            value: row.opt_f64(2),
                            message: "",
                            result_type: 0,
                            classification: row.i16(5)?,
                        });
                    }
                    Ok(true)
                })?;
                let p = crate::ingest::prepare_rows(recent);
                for a in p.rollups.iter().filter(|a| a.resolution == code) {
                    match aggs.iter_mut().find(|b| b.bucket == a.bucket) {
                        Some(b) => b.absorb(a),
                        None => aggs.push(a.clone()),
                    }
                }
                aggs.sort_by_key(|a| a.bucket);
                Ok(())
            })?;
        }
        drop(handle);
        aggs.iter()
            .map(|a| a.to_rollup(plugin, resolution))
            .collect()
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
