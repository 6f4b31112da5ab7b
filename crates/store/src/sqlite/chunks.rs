//! SQLite's older results tier (migration 0008): `result_chunks`, one row per series and
//! hour holding its results in time order in one blob (the encoding in `chunk.rs`, shared
//! with PostgreSQL), keyed by (hour, host, plugin) so the hourly compaction appends and
//! retention deletes a prefix.
//!
//! Why: with a row per result, the compaction of an hour of 10,000 series wrote 600,000
//! B-tree entries, and a 30-day read of one series stepped through 43,200 rows. With
//! chunks it writes 10,000 rows and reads ~720 (BENCHMARKS.md, the 22:06 storage run).
//!
//! Who writes chunks: the compaction (`write.rs`, rows that were never below the
//! watermark, so only the watermark's own hour can already have a chunk), late results
//! below the watermark (read, merged by time, written back) and retention (the chunk of the
//! hour the cut-off falls in is trimmed). All of them hold SQLite's write lock
//! (`BEGIN IMMEDIATE`), so a chunk is never rewritten from a stale read. Deleting a check
//! rewrites no chunk: readers drop the ids of checks that no longer exist.

use libsqlite3_sys as ffi;
use prophasis_model::Millis;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use super::fast::{Arg, Stmt};
use crate::chunk::{self, hour_of, Chunk};
use crate::error::Result;
use crate::ingest::Row;
use crate::{Retention, RetentionReport};

const UPSERT: &str = "INSERT INTO result_chunks (hour, host_id, plugin_pk, n, data) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (hour, host_id, plugin_pk) DO UPDATE SET \
     n = excluded.n, data = excluded.data";

/// One chunk's result rows: `?1` hour, `?2` host, `?3` plugin key.
pub(super) const CHUNK_OF_SERIES: &str =
    "SELECT data FROM result_chunks WHERE hour = ?1 AND host_id = ?2 AND plugin_pk = ?3";

/// Writes one chunk, replacing the stored one of its key (hour, host, plugin): `n`
/// results encoded in `data`.
fn put_encoded(s: &mut Stmt, (hour, host, pk): (i64, i64, i64), n: i64, data: &[u8]) -> Result<()> {
    s.bind_i64(1, hour)?;
    s.bind_i64(2, host)?;
    s.bind_i64(3, pk)?;
    s.bind_i64(4, n)?;
    s.bind_blob(5, data)?;
    s.run()
}

/// Writes the chunk made of `rows` (one series and hour, sorted by time).
fn put(s: &mut Stmt, hour: i64, rows: &[Row<'_>]) -> Result<()> {
    let key = (hour, rows[0].host_id, rows[0].plugin_pk.into());
    put_encoded(s, key, rows.len() as i64, &chunk::encode(rows))
}

/// Writes `rows` (sorted by host, plugin and time, one per millisecond) into their chunks,
/// in hour order so the tree appends. A chunk whose hour `may_exist` is read first and
/// merged by time (a new result replaces a stored one of the same millisecond); the others
/// are written without a look.
///
/// SAFETY: as for [`Stmt::prepare`].
pub(super) unsafe fn write(
    db: *mut ffi::sqlite3,
    rows: &[Row<'_>],
    may_exist: impl Fn(i64) -> bool,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut groups = chunk::groups(rows);
    groups.sort_by_key(|((host, pk, hour), _)| (*hour, *host, *pk));
    let mut read = Stmt::prepare(db, CHUNK_OF_SERIES, &[])?;
    let mut upsert = Stmt::prepare(db, UPSERT, &[])?;
    for ((host, pk, hour), range) in groups {
        let new = &rows[range];
        let stored = if may_exist(hour) {
            read.rebind_first(hour)?;
            read.bind_i64(2, host)?;
            read.bind_i64(3, pk.into())?;
            let found = match read.step()? {
                true => Some(Chunk::new(host, pk, read.blob(0).to_vec())?),
                false => None,
            };
            read.reset();
            found
        } else {
            None
        };
        match &stored {
            None => put(&mut upsert, hour, new)?,
            Some(old) => {
                let mut merged = Vec::with_capacity(old.elems.len() + new.len());
                old.merge_into(new, &mut merged);
                put(&mut upsert, hour, &merged)?;
            }
        }
    }
    Ok(())
}

/// Deletes what is older than the retention allows: raw results as a prefix of each tier
/// (whole chunks before the hour of the cut-off, then the older part of that hour's
/// chunks) in one transaction, which on a periodic pass is about an hour of chunks; then
/// rollups series by series in short transactions (`ops::delete_old_rollups`).
pub(crate) async fn apply_retention(
    pool: &SqlitePool,
    now: Millis,
    r: &Retention,
) -> Result<RetentionReport> {
    let pass = super::ops::retention_pass(pool, now, r).await?;
    let mut report = RetentionReport::default();
    let mut tx = super::begin(pool).await?;
    report.results += sqlx::query("DELETE FROM results_recent WHERE bucket <= $1 AND ts < $2")
        .bind(pass.raw_cutoff.div_euclid(super::BUCKET_MS))
        .bind(pass.raw_cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    {
        let mut handle = tx.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: `db` is the transaction's connection, locked by `handle` until every
        // statement of `trim` has been finalized.
        report.results += unsafe { trim(db, pass.raw_cutoff)? };
    }
    tx.commit().await?;
    super::ops::delete_old_rollups(pool, &pass, &mut report).await?;
    Ok(report)
}

/// Deletes the chunked results older than `cutoff`; returns how many.
///
/// SAFETY: as for [`Stmt::prepare`].
unsafe fn trim(db: *mut ffi::sqlite3, cutoff: Millis) -> Result<u64> {
    let straddled = hour_of(cutoff);
    let mut count = Stmt::prepare(
        db,
        "SELECT COALESCE(SUM(n), 0) FROM result_chunks WHERE hour < ?1",
        &[Arg::Int(straddled)],
    )?;
    count.step()?;
    let mut removed = count.i64(0) as u64;
    drop(count);
    Stmt::prepare(
        db,
        "DELETE FROM result_chunks WHERE hour < ?1",
        &[Arg::Int(straddled)],
    )?
    .run()?;
    if cutoff.rem_euclid(chunk::HOUR_MS) == 0 {
        return Ok(removed);
    }
    // The chunks of the cut-off's hour keep their newer part.
    let mut read = Stmt::prepare(
        db,
        "SELECT host_id, plugin_pk, data FROM result_chunks WHERE hour = ?1",
        &[Arg::Int(straddled)],
    )?;
    let mut trimmed = Vec::new();
    while read.step()? {
        let c = Chunk::new(read.i64(0), read.i64(1) as i32, read.blob(2).to_vec())?;
        if c.elems.first().is_some_and(|e| e.ts < cutoff) {
            trimmed.push(c);
        }
    }
    drop(read);
    let mut upsert = Stmt::prepare(db, UPSERT, &[])?;
    let mut delete = Stmt::prepare(
        db,
        "DELETE FROM result_chunks WHERE hour = ?1 AND host_id = ?2 AND plugin_pk = ?3",
        &[],
    )?;
    for c in &trimmed {
        let kept: Vec<Row<'_>> = c.rows().filter(|r| r.ts >= cutoff).collect();
        removed += (c.elems.len() - kept.len()) as u64;
        if kept.is_empty() {
            delete.bind_i64(1, straddled)?;
            delete.bind_i64(2, c.host_id)?;
            delete.bind_i64(3, c.plugin_pk.into())?;
            delete.run()?;
        } else {
            put(&mut upsert, straddled, &kept)?;
        }
    }
    Ok(removed)
}

/// Migration 8: encodes every row of version 7's `results` (keyed by hour, then series and
/// time, so read in chunk order) into `result_chunks`, then drops `results`. Logs its
/// progress: on a large database this runs for minutes.
pub(super) async fn convert_results(conn: &mut SqliteConnection) -> Result<()> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the migrating transaction's connection, locked by `handle`.
    unsafe { convert(db) }
}

/// The chunk the conversion is gathering.
#[derive(Default)]
struct Pending {
    key: Option<(i64, i64, i64)>,
    data: Vec<u8>,
    n: i64,
}

impl Pending {
    /// Writes the chunk gathered so far, if any, and starts anew; `true` if one was written.
    fn flush(&mut self, upsert: &mut Stmt) -> Result<bool> {
        let Some(key) = self.key.take() else {
            return Ok(false);
        };
        put_encoded(upsert, key, self.n, &self.data)?;
        self.data.clear();
        self.n = 0;
        Ok(true)
    }
}

/// SAFETY: as for [`Stmt::prepare`].
unsafe fn convert(db: *mut ffi::sqlite3) -> Result<()> {
    let mut span = Stmt::prepare(db, "SELECT MIN(hour), MAX(hour) FROM results", &[])?;
    span.step()?;
    let (first, last) = (span.opt_i64(0), span.opt_i64(1));
    drop(span);
    let started = std::time::Instant::now();
    if let (Some(first), Some(last)) = (first, last) {
        tracing::info!(
            hours = last - first + 1,
            "schema 8: encoding stored results into hourly chunks"
        );
        let mut read = Stmt::prepare(
            db,
            "SELECT hour, host_id, plugin_pk, ts, check_id, value, message, result_type, \
             classification FROM results ORDER BY hour, host_id, plugin_pk, ts",
            &[],
        )?;
        let mut upsert = Stmt::prepare(db, UPSERT, &[])?;
        let mut pending = Pending::default();
        let (mut results, mut chunks, mut logged) = (0u64, 0u64, std::time::Instant::now());
        while read.step()? {
            let key = (read.i64(0), read.i64(1), read.i64(2));
            if pending.key != Some(key) {
                chunks += pending.flush(&mut upsert)? as u64;
                pending.key = Some(key);
                if logged.elapsed().as_secs() >= 5 {
                    logged = std::time::Instant::now();
                    tracing::info!(
                        results,
                        chunks,
                        hour = key.0 - first + 1,
                        of = last - first + 1,
                        "schema 8: encoding stored results"
                    );
                }
            }
            let message = String::from_utf8_lossy(read.text_bytes(6));
            chunk::put_element(
                &mut pending.data,
                &Row {
                    host_id: key.1,
                    plugin_pk: key.2 as i32,
                    ts: read.i64(3),
                    check_id: read.opt_i64(4),
                    value: read.opt_f64(5),
                    message: &message,
                    result_type: read.i16(7)?,
                    classification: read.i16(8)?,
                },
            );
            pending.n += 1;
            results += 1;
        }
        chunks += pending.flush(&mut upsert)? as u64;
        tracing::info!(
            results,
            chunks,
            seconds = started.elapsed().as_secs_f64(),
            "schema 8: stored results encoded"
        );
    }
    Stmt::prepare(db, "DROP TABLE results", &[])?.run()
}
