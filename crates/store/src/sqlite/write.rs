//! SQLite's write path. A batch appends its results to the recent tier and writes nothing
//! else: the `latest` rows (with their open buckets) and `rollups` describe exactly the
//! results below the tier watermark, and [`compact`] folds the recent results into them
//! when it moves them into chunks (`chunks.rs`), once per series per compaction instead of
//! once per result. Readers add what is still in the recent tier (see `fast` in
//! `sqlite.rs`).
//!
//! Why: with every result a different series, each `latest` update and each write into a
//! series-clustered table lands on a different page; appending to a tree clustered by
//! minute touches a handful. Per result the batch is then one B-tree append through a
//! prepared statement (sqlx's multi-row statements cost more in argument binding and
//! statement journaling than the insert itself), and compaction moves whole hours, one
//! chunk row per series.
//!
//! Results older than the watermark ("late") cannot wait for a compaction that will never
//! reach them: they are merged into their chunks and folded into `latest` and `rollups` in
//! the same transaction, which is consistent because every recent result is newer.

use std::collections::HashMap;
use std::time::Instant;

use libsqlite3_sys as ffi;
use prophasis_model::CheckResult;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use super::chunks;
use super::fast::{read_open_buckets, Arg, Stmt};
use super::{bucket_of, ops::META_TABLE, WATERMARK};
use crate::chunk;
use crate::error::{Result, StoreError};
use crate::ingest::{self, sql::*, Merged, Prepared, Row};
use crate::{Compaction, Written};

/// Inserts `rows` results into the recent tier; a stored result for the same
/// (host, plugin, ts) is replaced, and of two in one statement the later wins.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO results_recent (bucket, host_id, plugin_pk, ts, check_id, value, message, \
         result_type, classification) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 { "" } else { ", " });
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    sql.push_str(
        " ON CONFLICT (bucket, host_id, plugin_pk, ts) DO UPDATE SET \
         check_id = excluded.check_id, value = excluded.value, message = excluded.message, \
         result_type = excluded.result_type, classification = excluded.classification",
    );
    sql
}

/// Rows per multi-row INSERT: one statement step per this many rows instead of per row.
const ROWS_PER_STATEMENT: usize = 32;

/// The tier watermark, a minute number: rows below it are in chunks and folded.
///
/// SAFETY: as for [`Stmt::prepare`].
unsafe fn watermark(db: *mut ffi::sqlite3) -> Result<i64> {
    let mut s = Stmt::prepare(
        db,
        &format!("SELECT CAST(value AS INTEGER) FROM {META_TABLE} WHERE key = '{WATERMARK}'"),
        &[],
    )?;
    match s.step()? {
        true => s.opt_i64(0),
        false => None,
    }
    .ok_or_else(|| StoreError::Corrupt(format!("{WATERMARK} is missing")))
}

/// Stores a batch in one transaction (`BEGIN IMMEDIATE`, so the open buckets read by the
/// late path cannot change before they are written back): every reference is checked
/// once, and the batch is stored whole or not at all, durable once this returns.
pub(crate) async fn insert_results(
    pool: &SqlitePool,
    results: &[CheckResult],
) -> Result<Option<Written>> {
    if results.is_empty() {
        return Ok(None);
    }
    fn distinct<T: Ord>(mut v: Vec<T>) -> Vec<T> {
        v.sort_unstable();
        v.dedup();
        v
    }
    let plugins = distinct(results.iter().map(|r| r.plugin_id.as_str()).collect());
    let hosts = distinct(results.iter().map(|r| r.host_id).collect());
    let checks = distinct(results.iter().filter_map(|r| r.check_id).collect());
    let mut tx = super::begin(pool).await?;
    let pks = super::ops::plugin_pks(&mut tx, &plugins).await?;
    if let Some(missing) = plugins.iter().find(|p| !pks.contains_key(**p)) {
        return Err(StoreError::missing("plugin_id", "plugin", missing));
    }
    let pks: HashMap<&str, i32> = pks.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let written = store_batch(&mut tx, results, &pks, (&hosts, &checks)).await?;
    tx.commit().await?;
    Ok(written)
}

/// `(hosts, checks)`: the distinct host and check ids the batch names, which must exist
/// (checked here with one prepared lookup per id: sqlx's long `IN` lists cost more).
async fn store_batch(
    tx: &mut SqliteConnection,
    results: &[CheckResult],
    pks: &HashMap<&str, i32>,
    (hosts, checks): (&[i64], &[i64]),
) -> Result<Option<Written>> {
    let rows = ingest::rows_of(results, pks);
    let mut handle = tx.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the transaction's connection, locked by `handle` until every
    // statement below has been finalized (each is dropped inside the block).
    let written = unsafe {
        for (table, field, noun, ids) in [
            ("hosts", "host_id", "host", hosts),
            ("checks", "check_id", "check", checks),
        ] {
            if ids.is_empty() {
                continue;
            }
            let mut s = Stmt::prepare(
                db,
                &format!("SELECT 1 FROM {table} WHERE id = ?1"),
                &[Arg::Int(ids[0])],
            )?;
            for &id in ids {
                s.rebind_first(id)?;
                if !s.step()? {
                    return Err(StoreError::missing(field, noun, id));
                }
            }
        }
        let below = watermark(db)?;
        let (late, recent): (Vec<Row<'_>>, Vec<Row<'_>>) =
            rows.into_iter().partition(|r| bucket_of(r.ts) < below);
        insert_recent(db, &recent)?;
        if !late.is_empty() {
            let p = ingest::prepare_rows(late);
            let stored = read_open_buckets(db, &p)?;
            let m = ingest::merge(&p, &stored);
            chunks::write(db, &p.rows, |_| true)?;
            write_folded(db, &p, &m)?;
        }
        recent
            .iter()
            .map(|r| bucket_of(r.ts))
            .max()
            .map(|newest| Written {
                newest_minute: newest,
                watermark: below,
            })
    };
    drop(handle);
    Ok(written)
}

/// Appends rows to the recent tier in its key order, 32 to a statement.
///
/// SAFETY: as for [`Stmt::prepare`].
unsafe fn insert_recent(db: *mut ffi::sqlite3, rows: &[Row<'_>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut order: Vec<&Row<'_>> = rows.iter().collect();
    // Stable: of two results for the same key, the one given last is written last and wins.
    order.sort_by_key(|r| (bucket_of(r.ts), r.host_id, r.plugin_pk, r.ts));
    let mut full = Stmt::prepare(db, &insert_sql(ROWS_PER_STATEMENT), &[])?;
    for chunk in order.chunks(ROWS_PER_STATEMENT) {
        let mut tail;
        let s = if chunk.len() == ROWS_PER_STATEMENT {
            &mut full
        } else {
            tail = Stmt::prepare(db, &insert_sql(chunk.len()), &[])?;
            &mut tail
        };
        for (i, r) in chunk.iter().enumerate() {
            let first = 9 * i as i32 + 1;
            s.bind_i64(first, bucket_of(r.ts))?;
            bind_result(s, first + 1, r)?;
        }
        s.run()?;
    }
    Ok(())
}

/// Binds host, plugin, ts, check, value, message, result type and classification from
/// parameter `first` on.
fn bind_result(s: &mut Stmt, first: i32, r: &Row<'_>) -> Result<()> {
    s.bind_i64(first, r.host_id)?;
    s.bind_i64(first + 1, r.plugin_pk.into())?;
    s.bind_i64(first + 2, r.ts)?;
    s.bind_opt_i64(first + 3, r.check_id)?;
    s.bind_opt_f64(first + 4, r.value)?;
    s.bind_text(first + 5, r.message)?;
    s.bind_i64(first + 6, r.result_type.into())?;
    s.bind_i64(first + 7, r.classification.into())
}

/// Writes what folding `p` into the stored open buckets decided: each series' latest row
/// and the rollup buckets that closed or received late data.
///
/// SAFETY: as for [`Stmt::prepare`].
unsafe fn write_folded(db: *mut ffi::sqlite3, p: &Prepared<'_>, m: &Merged) -> Result<()> {
    let params: Vec<String> = (1..=22).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "{INSERT_LATEST} VALUES ({}) {UPSERT_LATEST}",
        params.join(", ")
    );
    let mut s = Stmt::prepare(db, &sql, &[])?;
    for (&i, open) in p.latest.iter().zip(&m.open) {
        bind_result(&mut s, 1, &p.rows[i])?;
        for (slot, b) in open.iter().enumerate() {
            let at = 9 + 7 * slot as i32;
            s.bind_opt_i64(at, b.as_ref().map(|b| b.bucket))?;
            s.bind_opt_f64(at + 1, b.as_ref().and_then(|b| b.min))?;
            s.bind_opt_f64(at + 2, b.as_ref().and_then(|b| b.max))?;
            s.bind_opt_f64(at + 3, b.as_ref().map(|b| b.sum))?;
            s.bind_opt_i64(at + 4, b.as_ref().map(|b| b.n_value))?;
            s.bind_opt_i64(at + 5, b.as_ref().map(|b| b.n_all))?;
            s.bind_opt_i64(at + 6, b.as_ref().map(|b| b.worst.into()))?;
        }
        s.run()?;
    }
    drop(s);
    if m.rollups.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "{INSERT_ROLLUPS} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) {UPSERT_ROLLUPS}"
    );
    let mut s = Stmt::prepare(db, &sql, &[])?;
    for a in &m.rollups {
        s.bind_i64(1, a.host_id)?;
        s.bind_i64(2, a.plugin_pk.into())?;
        s.bind_i64(3, a.resolution.into())?;
        s.bind_i64(4, a.bucket)?;
        s.bind_opt_f64(5, a.min)?;
        s.bind_opt_f64(6, a.max)?;
        s.bind_opt_f64(7, Some(a.sum))?;
        s.bind_i64(8, a.n_value)?;
        s.bind_i64(9, a.n_all)?;
        s.bind_i64(10, a.worst.into())?;
        s.run()?;
    }
    Ok(())
}

/// Moves every recent minute below the cut ([`Compaction::cut`], decided again here under
/// the write lock) into chunks and folds those results into `latest` and `rollups`; one
/// transaction, so each result is in exactly one tier, folded exactly when it is below
/// the watermark. Runs after a batch that made it due has committed, with the store's
/// ingest lock held.
pub(crate) async fn compact(pool: &SqlitePool, c: Compaction) -> Result<()> {
    let started = Instant::now();
    let mut tx = super::begin(pool).await?;
    let moved = {
        let mut handle = tx.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: as in `store_batch`.
        unsafe { compact_locked(db, c)? }
    };
    tx.commit().await?;
    if let Some((rows, cut)) = moved {
        tracing::debug!(
            rows,
            watermark = cut,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "compacted recent results"
        );
    }
    Ok(())
}

/// One recent row as read back for compaction, its message in a shared buffer.
struct Stored {
    host_id: i64,
    plugin_pk: i32,
    ts: i64,
    check_id: Option<i64>,
    value: Option<f64>,
    message: (usize, usize),
    result_type: i16,
    classification: i16,
}

/// SAFETY: as for [`Stmt::prepare`].
unsafe fn compact_locked(db: *mut ffi::sqlite3, c: Compaction) -> Result<Option<(usize, i64)>> {
    let below = watermark(db)?;
    let mut s = Stmt::prepare(db, "SELECT MAX(bucket) FROM results_recent", &[])?;
    let newest = if s.step()? { s.opt_i64(0) } else { None };
    drop(s);
    let Some(newest) = newest else {
        return Ok(None);
    };
    let Some(cut) = c.cut(newest, below, crate::now_minute()) else {
        return Ok(None);
    };

    let mut text = String::new();
    let mut stored = Vec::new();
    let mut s = Stmt::prepare(
        db,
        "SELECT host_id, plugin_pk, ts, check_id, value, message, result_type, classification \
         FROM results_recent WHERE bucket < ?1",
        &[Arg::Int(cut)],
    )?;
    while s.step()? {
        let start = text.len();
        text.push_str(&String::from_utf8_lossy(s.text_bytes(5)));
        stored.push(Stored {
            host_id: s.i64(0),
            plugin_pk: s.i64(1) as i32,
            ts: s.i64(2),
            check_id: s.opt_i64(3),
            value: s.opt_f64(4),
            message: (start, text.len()),
            result_type: s.i16(6)?,
            classification: s.i16(7)?,
        });
    }
    drop(s);
    let rows: Vec<Row<'_>> = stored
        .iter()
        .map(|r| Row {
            host_id: r.host_id,
            plugin_pk: r.plugin_pk,
            ts: r.ts,
            check_id: r.check_id,
            value: r.value,
            message: &text[r.message.0..r.message.1],
            result_type: r.result_type,
            classification: r.classification,
        })
        .collect();
    // In series order: the folding and the chunks need it.
    let p = ingest::prepare_rows(rows);
    let open = read_open_buckets(db, &p)?;
    let m = ingest::merge(&p, &open);
    write_folded(db, &p, &m)?;
    // Chunks exist only below the watermark: the one hour they can share with the moved
    // rows is the watermark's, when it is not on the hour.
    let below_ms = below.saturating_mul(super::BUCKET_MS);
    let shared = (below_ms.rem_euclid(chunk::HOUR_MS) != 0).then(|| chunk::hour_of(below_ms));
    chunks::write(db, &p.rows, |hour| Some(hour) == shared)?;
    // A prefix of the recent tree.
    Stmt::prepare(
        db,
        "DELETE FROM results_recent WHERE bucket < ?1",
        &[Arg::Int(cut)],
    )?
    .run()?;
    let cut_text = cut.to_string();
    Stmt::prepare(
        db,
        &format!("UPDATE {META_TABLE} SET value = ?1 WHERE key = '{WATERMARK}'"),
        &[Arg::Text(&cut_text)],
    )?
    .run()?;
    Ok(Some((p.rows.len(), cut)))
}
