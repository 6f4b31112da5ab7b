//! SQLite's older results tier (migration 0008): `result_chunks`, one row per series and
//! hour holding its results in time order in one blob (the encoding in `chunk.rs`, shared
//! with PostgreSQL), keyed by (hour, host, plugin) so the hourly compaction appends and
//! retention deletes a prefix.
//!
//! Why: with a row per result, the compaction of an hour of 10,000 series wrote 600,000
//! B-tree entries (half of what a batch cost per result), and a 30-day read of one series
//! stepped through 43,200 rows. With chunks it writes 10,000 rows and reads ~720.
//!
//! Who writes chunks: the compaction (`write.rs`, rows that were never below the
//! watermark, so only the watermark's own hour can already have a chunk), late results
//! below the watermark (read, merged by time, written back), deleting a check (its chunks
//! rewritten without it) and retention (the chunk of the hour the cut-off falls in is
//! trimmed). All of them hold SQLite's write lock (`BEGIN IMMEDIATE`), so a chunk is never
//! rewritten from a stale read.

use libsqlite3_sys as ffi;
use prophasis_model::{CheckId, Millis};
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use super::fast::{Arg, Stmt};
use crate::chunk::{self, hour_of, Chunk};
use crate::error::Result;
use crate::ingest::Row;
use crate::{Retention, RetentionReport};

const UPSERT: &str = "INSERT INTO result_chunks (hour, host_id, plugin_pk, n, checks, data) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (hour, host_id, plugin_pk) DO UPDATE SET \
     n = excluded.n, checks = excluded.checks, data = excluded.data";

/// One chunk's result rows: `?1` hour, `?2` host, `?3` plugin key.
pub(super) const CHUNK_OF_SERIES: &str =
    "SELECT data FROM result_chunks WHERE hour = ?1 AND host_id = ?2 AND plugin_pk = ?3";

/// The `checks` column: every check between spaces, so `instr(checks, ' 17 ')` finds one.
fn checks_text(checks: &[i64]) -> String {
    let mut s = String::from(" ");
    for c in checks {
        s.push_str(&c.to_string());
        s.push(' ');
    }
    s
}

/// Writes one chunk, replacing the stored one of its key (hour, host, plugin): `n`
/// results encoded in `data`, naming `checks` (ascending, distinct).
fn put_encoded(
    s: &mut Stmt,
    (hour, host, pk): (i64, i64, i64),
    n: i64,
    checks: &[i64],
    data: &[u8],
) -> Result<()> {
    s.bind_i64(1, hour)?;
    s.bind_i64(2, host)?;
    s.bind_i64(3, pk)?;
    s.bind_i64(4, n)?;
    s.bind_text(5, &checks_text(checks))?;
    s.bind_blob(6, data)?;
    s.run()
}

/// Writes the chunk made of `rows` (one series and hour, sorted by time).
fn put(s: &mut Stmt, hour: i64, rows: &[Row<'_>]) -> Result<()> {
    let key = (hour, rows[0].host_id, rows[0].plugin_pk.into());
    let n = rows.len() as i64;
    put_encoded(s, key, n, &chunk::checks_of(rows), &chunk::encode(rows))
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

/// Deleting a check keeps its results without the check: `results_recent` and `latest`
/// get a column update, and each chunk naming it (found by its `checks`, a scan of the
/// chunks: a rare admin action, as the one-table store scanned every result) is rewritten.
pub(crate) async fn delete_check(pool: &SqlitePool, id: CheckId) -> Result<()> {
    let mut tx = super::begin(pool).await?;
    super::ops::delete_check_outside_chunks(&mut tx, id).await?;
    {
        let mut handle = tx.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: `db` is the transaction's connection, locked by `handle` until every
        // statement below has been finalized.
        unsafe { forget_check(db, id)? };
    }
    tx.commit().await?;
    Ok(())
}

/// SAFETY: as for [`Stmt::prepare`].
unsafe fn forget_check(db: *mut ffi::sqlite3, id: CheckId) -> Result<()> {
    let needle = format!(" {id} ");
    // A page of chunks at a time, in rowid order (a rewrite keeps the rowid), so memory
    // stays bounded however many chunks name the check.
    let mut find = Stmt::prepare(
        db,
        "SELECT rowid, hour, host_id, plugin_pk, data FROM result_chunks \
         WHERE rowid > ?1 AND instr(checks, ?2) > 0 ORDER BY rowid LIMIT 500",
        &[Arg::Int(i64::MIN), Arg::Text(&needle)],
    )?;
    let mut upsert = Stmt::prepare(db, UPSERT, &[])?;
    let mut after = i64::MIN;
    loop {
        find.rebind_first(after)?;
        let mut page = Vec::new();
        while find.step()? {
            after = find.i64(0);
            let chunk = Chunk::new(find.i64(2), find.i64(3) as i32, find.blob(4).to_vec())?;
            page.push((find.i64(1), chunk));
        }
        find.reset();
        if page.is_empty() {
            return Ok(());
        }
        for (hour, c) in &page {
            let rows: Vec<Row<'_>> = c
                .rows()
                .map(|mut r| {
                    if r.check_id == Some(id) {
                        r.check_id = None;
                    }
                    r
                })
                .collect();
            put(&mut upsert, *hour, &rows)?;
        }
    }
}

/// Deletes what is older than the retention allows: raw results as a prefix of each tier
/// (whole chunks before the hour of the cut-off, then the older part of that hour's
/// chunks), rollups series by series (`ops::delete_old_rollups`), in short transactions so
/// ingest is never held up for long.
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
        // SAFETY: as in `delete_check`.
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
    checks: Vec<i64>,
}

impl Pending {
    /// Writes the chunk gathered so far, if any, and starts anew; `true` if one was written.
    fn flush(&mut self, upsert: &mut Stmt) -> Result<bool> {
        let Some(key) = self.key.take() else {
            return Ok(false);
        };
        self.checks.sort_unstable();
        self.checks.dedup();
        put_encoded(upsert, key, self.n, &self.checks, &self.data)?;
        self.data.clear();
        self.checks.clear();
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
            let check_id = read.opt_i64(4);
            chunk::put_element(
                &mut pending.data,
                &Row {
                    host_id: key.1,
                    plugin_pk: key.2 as i32,
                    ts: read.i64(3),
                    check_id,
                    value: read.opt_f64(5),
                    message: &message,
                    result_type: read.i16(7)?,
                    classification: read.i16(8)?,
                },
            );
            pending.checks.extend(check_id);
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_checks_column_finds_a_check_by_its_whole_number() {
        let text = super::checks_text(&[3, 17]);
        assert_eq!(text, " 3 17 ");
        assert!(text.contains(" 17 ") && text.contains(" 3 "));
        assert!(!text.contains(" 1 ") && !text.contains(" 7 "));
        assert_eq!(super::checks_text(&[]), " ");
    }
}
