//! PostgreSQL's results in two tiers, with folding into `latest` and `rollups` deferred to
//! a compaction (migration 0007).
//!
//! Why: with one `results` table, a batch of 10,000 results (each another series) cost the
//! server an insert into a large series-ordered index plus an update of every series'
//! `latest` row with its open rollup buckets, about 23 µs of server CPU per result; and a
//! 30-day read of one series found its 43,200 rows on as many heap pages (the heap is in
//! insert order).
//!
//! So a batch only appends its rows to `results_recent` (a binary `COPY` into a table that
//! holds about an hour, whose index stays in memory) and writes nothing else. After the
//! batch, under the same ingest lock, [`compact`] runs once `span` minutes have gathered
//! above the watermark: it takes every recent row below `cut` (the newest minute minus
//! `keep`, rounded down to `align` minutes: on the hour by default), folds them into
//! `latest` and `rollups` with the code the immediate path uses (`ingest::prepare_rows`,
//! `pg::read_open_buckets`, `ingest::merge`, `pg::write_folded`), so each series' latest
//! row is written once an hour instead of once a batch, writes them as chunks of
//! `result_chunks` (one row per series and hour: its results in time order in one `bytea`,
//! see [`Chunk`], so a 30-day read is ~720 rows), empties the recent tier (TRUNCATE, then
//! the minutes that stay are written back: no dead rows to vacuum) and moves the watermark,
//! all in one transaction.
//!
//! Rule: a result whose minute is below the watermark is in `result_chunks` and counted in
//! `latest`/`rollups`; any other is in `results_recent` and in neither. A batch's results
//! below the watermark (late data) take the immediate path (chunk read-modify-write and
//! folding at once); that is consistent because every recent row is newer than every late
//! one. Readers combine both tiers in ONE statement (one snapshot), so a compaction that
//! commits meanwhile can neither hide nor duplicate a row. Compaction, deletes and
//! retention take the ingest advisory lock, so a chunk is never rewritten from a stale read.

use std::collections::HashMap;

use prophasis_model::*;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::Row as _;

use crate::chunk::{self, hour_of, put_element, Chunk, HOUR_MS};
use crate::codes::{classification_from, resolution_code, result_type_from};
use crate::error::{Result, StoreError};
use crate::ingest::{self, sql::open_prefix, Agg, Row};
use crate::pg::{self, fast::CopyRows, ops};
use crate::{Compaction, LatestClassification, Retention, RetentionReport, Written};

const MINUTE_MS: i64 = 60_000;

/// The `prophasis_meta` key of the tier watermark (a minute number), as on SQLite.
const WATERMARK: &str = "results_compacted_before";

fn minute_of(ts: i64) -> i64 {
    ts.div_euclid(MINUTE_MS)
}

async fn watermark(conn: &mut PgConnection) -> Result<i64> {
    let v: Option<String> = sqlx::query_scalar(&format!(
        "SELECT value FROM {} WHERE key = '{WATERMARK}'",
        ops::META_TABLE
    ))
    .fetch_optional(&mut *conn)
    .await?;
    v.and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{WATERMARK} is missing")))
}

// ---------------------------------------------------------------------------------------
// Binary COPY encoding: the server parses it with no per-row expression evaluation, which
// is what a batch costs it beyond the heap and index insert itself.

const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
const INT8_OID: u32 = 20;

fn copy_header(capacity: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(capacity + 21);
    b.extend_from_slice(COPY_SIGNATURE);
    b.extend_from_slice(&0i32.to_be_bytes()); // flags
    b.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    b
}

fn copy_trailer(b: &mut Vec<u8>) {
    b.extend_from_slice(&(-1i16).to_be_bytes());
}

fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&8i32.to_be_bytes());
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&4i32.to_be_bytes());
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i16(b: &mut Vec<u8>, v: i16) {
    b.extend_from_slice(&2i32.to_be_bytes());
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_null(b: &mut Vec<u8>) {
    b.extend_from_slice(&(-1i32).to_be_bytes());
}

fn put_opt_i64(b: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => put_i64(b, v),
        None => put_null(b),
    }
}

fn put_opt_f64(b: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => {
            b.extend_from_slice(&8i32.to_be_bytes());
            b.extend_from_slice(&v.to_be_bytes());
        }
        None => put_null(b),
    }
}

fn put_text(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as i32).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// A one-dimensional array field; `put` writes each element as a field (length first).
fn put_array<T>(
    b: &mut Vec<u8>,
    oid: u32,
    items: &[T],
    nulls: bool,
    put: impl Fn(&mut Vec<u8>, &T),
) {
    let at = b.len();
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&1i32.to_be_bytes()); // dimensions
    b.extend_from_slice(&(nulls as i32).to_be_bytes());
    b.extend_from_slice(&oid.to_be_bytes());
    b.extend_from_slice(&(items.len() as i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // lower bound
    for it in items {
        put(b, it);
    }
    let len = (b.len() - at - 4) as i32;
    b[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// One chunk row: the results of one series and hour, sorted by time.
fn put_chunk(b: &mut Vec<u8>, hour: i64, rows: &[Row<'_>]) {
    let first = &rows[0];
    b.extend_from_slice(&6i16.to_be_bytes());
    put_i64(b, first.host_id);
    put_i32(b, first.plugin_pk);
    put_i64(b, hour);
    put_array(b, INT8_OID, rows, false, |b, r| put_i64(b, r.ts));
    put_array(b, INT8_OID, &chunk::checks_of(rows), false, |b, c| {
        put_i64(b, *c)
    });
    let at = b.len();
    b.extend_from_slice(&[0; 4]);
    for r in rows {
        put_element(b, r);
    }
    let len = (b.len() - at - 4) as i32;
    b[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

const COPY_CHUNKS: &str =
    "COPY result_chunks (host_id, plugin_pk, hour, ts, checks, data) FROM STDIN (FORMAT binary)";
const COPY_RECENT: &str = "COPY results_recent (host_id, plugin_pk, ts, check_id, value, \
     message, result_type, classification) FROM STDIN (FORMAT binary)";

async fn copy_in(conn: &mut PgConnection, statement: &str, data: &[u8]) -> sqlx::Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    for piece in data.chunks(1 << 20) {
        copy.send(piece).await?;
    }
    copy.finish().await
}

// ---------------------------------------------------------------------------------------
// Chunks

/// The bytes of one recent row in the chunk encoding, as SQL over `results_recent`'s
/// columns: `string_agg(… ORDER BY ts)` makes a chunk of them.
pub(crate) const ELEMENT_SQL: &str = "int8send(ts) \
    || set_byte('\\x00'::bytea, 0, (CASE WHEN check_id IS NULL THEN 0 ELSE 1 END) \
       + (CASE WHEN value IS NULL THEN 0 ELSE 2 END)) \
    || COALESCE(int8send(check_id), ''::bytea) || COALESCE(float8send(value), ''::bytea) \
    || int2send(result_type) || int2send(classification) \
    || int4send(octet_length(convert_to(message, 'UTF8'))) || convert_to(message, 'UTF8')";

/// The chunk in column `at` of a row, of the given series, or `None` for NULL (an
/// aggregate over no rows).
fn chunk_at(r: &PgRow, (host, plugin_pk): (i64, i32), at: usize) -> Result<Option<Chunk>> {
    r.try_get::<Option<Vec<u8>>, _>(at)?
        .map(|data| Chunk::new(host, plugin_pk, data))
        .transpose()
}

/// Writes `rows` (sorted by host, plugin and time, one per key) into their chunks. A chunk
/// whose hour `may_exist` is read first and merged by time (a new row replaces a stored one
/// of the same millisecond); the others are written without a look. Callers hold the
/// ingest lock, so nothing rewrites these chunks in between.
pub(crate) async fn write_chunks(
    conn: &mut PgConnection,
    rows: &[Row<'_>],
    may_exist: &(dyn Fn(i64) -> bool + Sync),
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let groups = chunk::groups(rows);
    let lookup: Vec<(i64, i32, i64)> = groups
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| may_exist(k.2))
        .collect();
    let mut stored: HashMap<(i64, i32, i64), Chunk> = HashMap::new();
    if !lookup.is_empty() {
        let keys = (
            lookup.iter().map(|k| k.0).collect::<Vec<_>>(),
            lookup.iter().map(|k| k.1).collect::<Vec<_>>(),
            lookup.iter().map(|k| k.2).collect::<Vec<_>>(),
        );
        // Taken out and written back merged: one statement reads and removes them.
        let found = sqlx::query(
            "DELETE FROM result_chunks c \
             USING UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[]) AS k(host_id, plugin_pk, hour) \
             WHERE c.host_id = k.host_id AND c.plugin_pk = k.plugin_pk AND c.hour = k.hour \
             RETURNING c.host_id, c.plugin_pk, c.hour, c.data",
        )
        .bind(&keys.0)
        .bind(&keys.1)
        .bind(&keys.2)
        .fetch_all(&mut *conn)
        .await?;
        for r in &found {
            let key: (i64, i32, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if let Some(a) = chunk_at(r, (key.0, key.1), 3)? {
                stored.insert(key, a);
            }
        }
    }
    // About 50 bytes per result plus the array headers.
    let mut buf = copy_header(rows.len() * 56 + groups.len() * 140);
    let mut merged: Vec<Row<'_>> = Vec::new();
    for (key, range) in &groups {
        let new = &rows[range.clone()];
        match stored.get(key) {
            None => put_chunk(&mut buf, key.2, new),
            Some(old) => {
                old.merge_into(new, &mut merged);
                put_chunk(&mut buf, key.2, &merged);
            }
        }
    }
    copy_trailer(&mut buf);
    copy_in(conn, COPY_CHUNKS, &buf).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ingest and compaction

/// Stores a batch in one transaction: rows at or above the watermark are appended to the
/// recent tier and nothing else is written for them; rows below it go into their chunks
/// and are folded into `latest` and `rollups` at once.
pub(crate) async fn insert_results(
    pool: &PgPool,
    results: &[CheckResult],
) -> Result<Option<Written>> {
    // A plain COPY costs the server less than an upsert, and a result for a stored
    // millisecond is rare: that case runs the whole batch again, with the upsert. (Again,
    // not from a savepoint: two round trips fewer for every batch.)
    match insert(pool, results, false).await {
        Err(StoreError::Database(e)) if pg::is_unique_violation(&e) => {
            insert(pool, results, true).await
        }
        other => other,
    }
}

async fn insert(pool: &PgPool, results: &[CheckResult], upsert: bool) -> Result<Option<Written>> {
    if results.is_empty() {
        return Ok(None);
    }
    let mut plugin_ids: Vec<&str> = results.iter().map(|r| r.plugin_id.as_str()).collect();
    plugin_ids.sort_unstable();
    plugin_ids.dedup();
    let mut host_ids: Vec<i64> = results.iter().map(|r| r.host_id).collect();
    host_ids.sort_unstable();
    host_ids.dedup();
    let mut check_ids: Vec<i64> = results.iter().filter_map(|r| r.check_id).collect();
    check_ids.sort_unstable();
    check_ids.dedup();

    let mut tx = pool.begin().await?;
    // Before the reference checks: a delete takes this lock too, so what is checked here
    // stays true until the batch commits, and the watermark cannot move under it.
    pg::lock_for_ingest(&mut tx).await?;
    let pks = ops::plugin_pks(&mut tx, &plugin_ids).await?;
    if let Some(missing) = plugin_ids.iter().find(|p| !pks.contains_key(**p)) {
        return Err(StoreError::missing("plugin_id", "plugin", missing));
    }
    let hosts = ops::existing_ids(&mut tx, "hosts", &host_ids).await?;
    if let Some(missing) = host_ids.iter().find(|h| !hosts.contains(h)) {
        return Err(StoreError::missing("host_id", "host", missing));
    }
    let checks = ops::existing_ids(&mut tx, "checks", &check_ids).await?;
    if let Some(missing) = check_ids.iter().find(|c| !checks.contains(c)) {
        return Err(StoreError::missing("check_id", "check", missing));
    }
    let pks: HashMap<&str, i32> = pks.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let wm = watermark(&mut tx).await?;
    let split = wm.saturating_mul(MINUTE_MS);
    let rows = ingest::sort_dedup(ingest::rows_of(results, &pks));
    let (late, recent): (Vec<Row<'_>>, Vec<Row<'_>>) = rows.into_iter().partition(|r| r.ts < split);
    if !late.is_empty() {
        let p = ingest::prepare_rows(late);
        let stored = pg::read_open_buckets(&mut tx, &p).await?;
        let m = ingest::merge(&p, &stored);
        pg::write_batch(&mut tx, &p, &m).await?;
    }
    let newest = recent.iter().map(|r| r.ts).max();
    if !recent.is_empty() {
        write_recent(&mut tx, &recent, upsert).await?;
    }
    tx.commit().await?;
    Ok(newest.map(|ts| Written {
        newest_minute: minute_of(ts),
        watermark: wm,
    }))
}

/// A binary `COPY` (cheaper for the server than `INSERT … SELECT FROM UNNEST`), or with
/// `upsert` an insert that replaces stored rows of the same milliseconds.
async fn write_recent(conn: &mut PgConnection, rows: &[Row<'_>], upsert: bool) -> Result<()> {
    if upsert {
        let refs: Vec<&Row<'_>> = rows.iter().collect();
        pg::bind_results(
            sqlx::query(&format!(
                "INSERT INTO results_recent (host_id, plugin_pk, ts, check_id, value, message, \
                 result_type, classification) SELECT * FROM {} {}",
                pg::UNNEST_RESULTS,
                ingest::sql::UPSERT_RESULTS
            )),
            &refs,
        )
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    let mut buf = copy_header(rows.len() * 90);
    for r in rows {
        buf.extend_from_slice(&8i16.to_be_bytes());
        put_i64(&mut buf, r.host_id);
        put_i32(&mut buf, r.plugin_pk);
        put_i64(&mut buf, r.ts);
        put_opt_i64(&mut buf, r.check_id);
        put_opt_f64(&mut buf, r.value);
        put_text(&mut buf, r.message);
        put_i16(&mut buf, r.result_type);
        put_i16(&mut buf, r.classification);
    }
    copy_trailer(&mut buf);
    copy_in(conn, COPY_RECENT, &buf).await?;
    Ok(())
}

/// After a batch that put `newest_minute` into the recent tier: when a compaction is due
/// ([`Compaction::cut`]), moves every recent row below the cut into chunks and folds it into
/// `latest` and `rollups`, in one transaction (see the module doc). Runs with the store's
/// ingest mutex held, and takes the ingest lock for other nodes.
pub(crate) async fn compact(pool: &PgPool, c: Compaction, newest_minute: i64) -> Result<()> {
    let mut tx = pool.begin().await?;
    pg::lock_for_ingest(&mut tx).await?;
    let wm = watermark(&mut tx).await?;
    let Some(cut) = c.cut(newest_minute, wm, crate::now_minute()) else {
        return Ok(()); // another node compacted first
    };
    let started = std::time::Instant::now();
    let cut_ms = cut.saturating_mul(MINUTE_MS);
    // The whole tier (an hour or so; ~650,000 rows at 10,000 series), as a binary COPY:
    // the rows below the cut move, the others are written back after a TRUNCATE.
    let mut copy = CopyRows::read(
        &mut tx,
        "COPY (SELECT host_id, plugin_pk, ts, check_id, value, message, result_type, \
         classification FROM results_recent) TO STDOUT (FORMAT binary)",
    )
    .await?;
    type Fields = (
        i64,
        i32,
        i64,
        Option<i64>,
        Option<f64>,
        std::ops::Range<usize>,
        i16,
        i16,
    );
    let mut fields: Vec<Fields> = Vec::new();
    while copy.next_row(8)?.is_some() {
        fields.push((
            copy.i64()?,
            copy.i32()?,
            copy.i64()?,
            copy.opt_i64()?,
            copy.opt_f64()?,
            copy.text_span()?,
            copy.i16()?,
            copy.i16()?,
        ));
    }
    let buf = &copy.buf;
    let rows = fields
        .into_iter()
        .map(
            |(host_id, plugin_pk, ts, check_id, value, text, result_type, classification)| {
                Ok(Row {
                    host_id,
                    plugin_pk,
                    ts,
                    check_id,
                    value,
                    // Checked to be UTF-8 while parsing.
                    message: std::str::from_utf8(&buf[text])
                        .map_err(|_| StoreError::Corrupt("text not UTF-8".into()))?,
                    result_type,
                    classification,
                })
            },
        )
        .collect::<Result<Vec<Row<'_>>>>()?;
    let (rows, mut kept): (Vec<Row<'_>>, Vec<Row<'_>>) =
        rows.into_iter().partition(|r| r.ts < cut_ms);
    let moved = rows.len();
    if moved > 0 {
        let p = ingest::prepare_rows(rows);
        let stored = pg::read_open_buckets(&mut tx, &p).await?;
        let m = ingest::merge(&p, &stored);
        // Chunks exist only below the watermark: the one hour they can share with the
        // moved rows is the watermark's, when it is not on the hour.
        let wm_ms = wm.saturating_mul(MINUTE_MS);
        let shared = (wm_ms.rem_euclid(HOUR_MS) != 0).then(|| hour_of(wm_ms));
        pg::write_folded(&mut tx, &p, &m, &move |h| Some(h) == shared).await?;
        // Emptying the table and writing back the few minutes that stay costs less than
        // deleting the hour that moved (a WAL record per row, then a vacuum of as many dead
        // rows, and until that has run the table only grows). TRUNCATE locks the table
        // until the commit, which follows at once; readers wait that long (they are
        // single statements, so none holds an older snapshot that would find it empty).
        sqlx::query("TRUNCATE results_recent")
            .execute(&mut *tx)
            .await?;
        if !kept.is_empty() {
            kept.sort_by_key(|r| (r.host_id, r.plugin_pk, r.ts));
            write_recent(&mut tx, &kept, false).await?;
        }
    }
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

// ---------------------------------------------------------------------------------------
// Readers: each one statement over both tiers, so one snapshot.

const PK_OF: &str = "(SELECT pk FROM plugins WHERE id = $2)";

/// The checks a chunk `c` names that no longer exist, in the reader's snapshot: chunks keep
/// the ids of deleted checks, and readers drop them (see `chunk::to_result`).
const GONE_CHECKS: &str = "ARRAY(SELECT x FROM unnest(c.checks) x \
     WHERE NOT EXISTS (SELECT 1 FROM checks k WHERE k.id = x))";

/// Raw results of `[from, to)`, oldest first: the chunks of the hours the range touches
/// (~720 rows for 30 days, one `bytea` each) and the series' recent rows encoded the same
/// way by the server as one more. Every chunked row is older than every recent one.
pub(crate) async fn results_range(
    pool: &PgPool,
    host: HostId,
    plugin: &str,
    from: Millis,
    to: Millis,
) -> Result<Vec<CheckResult>> {
    if from >= to {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT data, {GONE_CHECKS} FROM result_chunks c \
         WHERE host_id = $1 AND plugin_pk = {PK_OF} AND hour >= $3 AND hour <= $4 \
         UNION ALL \
         SELECT string_agg({ELEMENT_SQL}, ''::bytea ORDER BY ts), '{{}}'::BIGINT[] \
         FROM results_recent WHERE host_id = $1 AND plugin_pk = {PK_OF} AND ts >= $5 AND ts < $6"
    ))
    .bind(host)
    .bind(plugin)
    .bind(hour_of(from))
    .bind(hour_of(to - 1))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        if let Some(a) = chunk_at(r, (host, 0), 0)? {
            let gone: Vec<i64> = r.try_get(1)?;
            let keep = |ts| ts >= from && ts < to;
            a.push_results(&mut out, (host, plugin), keep, &|c| !gone.contains(&c))?;
        }
    }
    // Chunks come in whatever order the scan met them; each is sorted inside.
    if !out.is_sorted_by_key(|r| r.timestamp) {
        out.sort_by_key(|r| r.timestamp);
    }
    Ok(out)
}

/// The newest `n` results, oldest first: the series' newest `n` recent rows, and from its
/// newest chunks as many as are needed for the rest (at most `n` chunks are read).
pub(crate) async fn last_results(
    pool: &PgPool,
    host: HostId,
    plugin: &str,
    n: u32,
) -> Result<Vec<CheckResult>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&format!(
        "WITH r AS (SELECT * FROM results_recent \
           WHERE host_id = $1 AND plugin_pk = {PK_OF} ORDER BY ts DESC LIMIT $3) \
         SELECT string_agg({ELEMENT_SQL}, ''::bytea ORDER BY ts), '{{}}'::BIGINT[] FROM r \
         UNION ALL \
         SELECT data, {GONE_CHECKS} FROM \
           (SELECT w.data, w.checks, w.n, SUM(w.n) OVER (ORDER BY w.hour DESC) AS acc FROM \
             (SELECT hour, data, checks, cardinality(ts) AS n FROM result_chunks \
              WHERE host_id = $1 AND plugin_pk = {PK_OF} ORDER BY hour DESC LIMIT $3) w) c \
         WHERE c.acc - c.n < $3 - (SELECT COUNT(*) FROM r)"
    ))
    .bind(host)
    .bind(plugin)
    .bind(n as i64)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        if let Some(a) = chunk_at(r, (host, 0), 0)? {
            let gone: Vec<i64> = r.try_get(1)?;
            a.push_results(&mut out, (host, plugin), |_| true, &|c| !gone.contains(&c))?;
        }
    }
    out.sort_by_key(|r| r.timestamp);
    let extra = out.len().saturating_sub(n as usize);
    out.drain(..extra);
    Ok(out)
}

/// Rollups of the buckets overlapping `[from, to)`: closed buckets from `rollups`, the
/// open one from `latest` and the buckets of the series' recent (not yet folded) rows,
/// aggregated by the server, merged bucket by bucket as the ingest merge would.
pub(crate) async fn rollups_range(
    pool: &PgPool,
    host: HostId,
    plugin: &str,
    resolution: Resolution,
    from: Millis,
    to: Millis,
) -> Result<Vec<Rollup>> {
    let c = open_prefix(resolution_code(resolution));
    let row = sqlx::query(&format!(
        "SELECT array_agg(bucket), array_agg(min_value), array_agg(max_value), array_agg(sum_value), \
         array_agg(n_value), array_agg(n_all), array_agg(worst) FROM \
         (SELECT bucket, min_value, max_value, sum_value, n_value, n_all, worst FROM rollups \
          WHERE host_id = $1 AND plugin_pk = {PK_OF} \
          AND resolution = $3 AND bucket >= $4 AND bucket < $5 \
          UNION ALL \
          SELECT {c}_bucket, {c}_min, {c}_max, {c}_sum, {c}_n_value, {c}_n_all, {c}_worst FROM latest \
          WHERE host_id = $1 AND plugin_pk = {PK_OF} AND {c}_bucket >= $4 AND {c}_bucket < $5 \
          UNION ALL \
          SELECT b, MIN(value), MAX(value), COALESCE(SUM(value), 0), COUNT(value), COUNT(*), MAX(classification) \
          FROM (SELECT ts - ((ts % $6) + $6) % $6 AS b, value, classification FROM results_recent \
                WHERE host_id = $1 AND plugin_pk = {PK_OF}) r \
          WHERE b >= $4 AND b < $5 GROUP BY b \
          ORDER BY 1) s"
    ))
    .bind(host)
    .bind(plugin)
    .bind(resolution_code(resolution))
    .bind(resolution.bucket_start(from))
    .bind(to)
    .bind(resolution.millis())
    .fetch_one(pool)
    .await?;
    let bucket: Vec<i64> = row.try_get::<Option<_>, _>(0)?.unwrap_or_default();
    let min: Vec<Option<f64>> = row.try_get::<Option<_>, _>(1)?.unwrap_or_default();
    let max: Vec<Option<f64>> = row.try_get::<Option<_>, _>(2)?.unwrap_or_default();
    let sum: Vec<f64> = row.try_get::<Option<_>, _>(3)?.unwrap_or_default();
    let n_value: Vec<i64> = row.try_get::<Option<_>, _>(4)?.unwrap_or_default();
    let n_all: Vec<i64> = row.try_get::<Option<_>, _>(5)?.unwrap_or_default();
    let worst: Vec<i16> = row.try_get::<Option<_>, _>(6)?.unwrap_or_default();
    let n = bucket.len();
    if [
        min.len(),
        max.len(),
        sum.len(),
        n_value.len(),
        n_all.len(),
        worst.len(),
    ]
    .iter()
    .any(|l| *l != n)
    {
        return Err(StoreError::Corrupt(
            "aggregated columns differ in length".into(),
        ));
    }
    let mut aggs: Vec<Agg> = Vec::with_capacity(n);
    for i in 0..n {
        let a = Agg {
            host_id: host,
            plugin_pk: 0,
            resolution: resolution_code(resolution),
            bucket: bucket[i],
            min: min[i],
            max: max[i],
            sum: sum[i],
            n_value: n_value[i],
            n_all: n_all[i],
            worst: worst[i],
        };
        // The open bucket and the recent rows' bucket may be the same bucket.
        match aggs.last_mut() {
            Some(last) if last.bucket == a.bucket => last.absorb(&a),
            _ => aggs.push(a),
        }
    }
    aggs.iter()
        .map(|a| a.to_rollup(plugin, resolution))
        .collect()
}

const RESULT_COLUMNS: &str = "ts, check_id, value, message, result_type, classification";

fn result_from(r: &PgRow, host: HostId, plugin: &str) -> Result<CheckResult> {
    Ok(CheckResult {
        host_id: host,
        plugin_id: plugin.to_string(),
        check_id: r.try_get(1)?,
        timestamp: r.try_get(0)?,
        value: r.try_get(2)?,
        message: r.try_get(3)?,
        result_type: result_type_from(r.try_get(4)?)?,
        classification: classification_from(r.try_get(5)?)?,
    })
}

/// The newest recent row of the series if it has one (it is newer than anything folded),
/// else its `latest` row: a series may have recent rows and no latest row yet.
pub(crate) async fn latest_result(
    pool: &PgPool,
    host: HostId,
    plugin: &str,
) -> Result<Option<CheckResult>> {
    sqlx::query(&format!(
        "SELECT {RESULT_COLUMNS} FROM (\
           (SELECT {RESULT_COLUMNS}, 0 AS k FROM results_recent \
            WHERE host_id = $1 AND plugin_pk = {PK_OF} ORDER BY ts DESC LIMIT 1) \
           UNION ALL \
           (SELECT {RESULT_COLUMNS}, 1 FROM latest WHERE host_id = $1 AND plugin_pk = {PK_OF})) x \
         ORDER BY k LIMIT 1"
    ))
    .bind(host)
    .bind(plugin)
    .fetch_optional(pool)
    .await?
    .map(|r| result_from(&r, host, plugin))
    .transpose()
}

/// Per series of `filter` (on `host_id`/`plugin_pk`, using `$1`): the newest recent row,
/// else the latest row; with the plugin's id as the 7th column and the host as the 8th.
fn newest_per_series(filter: &str) -> String {
    format!(
        "SELECT DISTINCT ON (x.host_id, x.plugin_pk) x.ts, x.check_id, x.value, x.message, \
         x.result_type, x.classification, p.id, x.host_id FROM \
         (SELECT {RESULT_COLUMNS}, host_id, plugin_pk, 0 AS k FROM results_recent WHERE {filter} \
          UNION ALL \
          SELECT {RESULT_COLUMNS}, host_id, plugin_pk, 1 FROM latest WHERE {filter}) x \
         JOIN plugins p ON p.pk = x.plugin_pk \
         ORDER BY x.host_id, x.plugin_pk, x.k, x.ts DESC"
    )
}

pub(crate) async fn latest_results_for_host(
    pool: &PgPool,
    host: HostId,
) -> Result<Vec<CheckResult>> {
    let mut out = sqlx::query(&newest_per_series("host_id = $1"))
        .bind(host)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| result_from(r, host, &r.try_get::<String, _>(6)?))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.plugin_id.cmp(&b.plugin_id));
    Ok(out)
}

/// At startup: reads every recent row once (an hour or so of results).
pub(crate) async fn latest_classifications(pool: &PgPool) -> Result<Vec<LatestClassification>> {
    let mut out = sqlx::query(&newest_per_series("TRUE"))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(LatestClassification {
                host_id: r.try_get(7)?,
                plugin_id: r.try_get(6)?,
                timestamp: r.try_get(0)?,
                classification: classification_from(r.try_get(5)?)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| (a.host_id, &a.plugin_id).cmp(&(b.host_id, &b.plugin_id)));
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Retention

/// Deletes what is older than the retention allows: recent rows (normally none: the tier
/// holds the last hour), whole chunks older than the raw cut-off and the part of the chunk
/// that straddles it, and rollups; series by series in short transactions, each under the
/// ingest lock (a compaction rewriting the straddling chunk must not undo its trim).
pub(crate) async fn apply_retention(
    pool: &PgPool,
    now: Millis,
    r: &Retention,
) -> Result<RetentionReport> {
    let pg::ops::RetentionPass {
        series,
        raw_cutoff,
        five_cutoff,
        hour_cutoff,
    } = pg::ops::retention_pass(pool, now, r).await?;
    let mut report = RetentionReport::default();
    let mut tx = pool.begin().await?;
    pg::lock_for_ingest(&mut tx).await?;
    report.results += sqlx::query("DELETE FROM results_recent WHERE ts < $1")
        .bind(raw_cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    let straddled = hour_of(raw_cutoff);
    for chunk in series.chunks(200) {
        let hosts: Vec<i64> = chunk.iter().map(|s| s.0).collect();
        let pks: Vec<i32> = chunk.iter().map(|s| s.1).collect();
        let mut tx = pool.begin().await?;
        pg::lock_for_ingest(&mut tx).await?;
        let whole: i64 = sqlx::query_scalar(
            "WITH d AS (DELETE FROM result_chunks c \
               USING UNNEST($1::BIGINT[], $2::INTEGER[]) AS s(host_id, plugin_pk) \
               WHERE c.host_id = s.host_id AND c.plugin_pk = s.plugin_pk AND c.hour < $3 \
               RETURNING cardinality(c.ts) AS n) \
             SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM d",
        )
        .bind(&hosts)
        .bind(&pks)
        .bind(straddled)
        .fetch_one(&mut *tx)
        .await?;
        report.results += whole as u64;
        // The chunk of the cut-off's hour keeps its newer part.
        let found = sqlx::query(
            "DELETE FROM result_chunks c \
             USING UNNEST($1::BIGINT[], $2::INTEGER[]) AS s(host_id, plugin_pk) \
             WHERE c.host_id = s.host_id AND c.plugin_pk = s.plugin_pk AND c.hour = $3 \
             AND c.ts[1] < $4 RETURNING c.host_id, c.plugin_pk, c.data",
        )
        .bind(&hosts)
        .bind(&pks)
        .bind(straddled)
        .bind(raw_cutoff)
        .fetch_all(&mut *tx)
        .await?;
        let mut trimmed = Vec::new();
        for row in &found {
            let (h, p): (i64, i32) = (row.try_get(0)?, row.try_get(1)?);
            if let Some(a) = chunk_at(row, (h, p), 2)? {
                trimmed.push(a);
            }
        }
        let mut kept: Vec<Row<'_>> = Vec::new();
        for r in trimmed.iter().flat_map(|c| c.rows()) {
            if r.ts < raw_cutoff {
                report.results += 1;
            } else {
                kept.push(r);
            }
        }
        write_chunks(&mut tx, &kept, &|_| false).await?;
        for (res, cutoff, counter) in [
            (
                Resolution::FiveMinutes,
                five_cutoff,
                &mut report.five_minute_rollups,
            ),
            (Resolution::OneHour, hour_cutoff, &mut report.hourly_rollups),
        ] {
            *counter += sqlx::query(
                "DELETE FROM rollups r USING UNNEST($1::BIGINT[], $2::INTEGER[]) AS s(host_id, plugin_pk) \
                 WHERE r.host_id = s.host_id AND r.plugin_pk = s.plugin_pk \
                 AND r.resolution = $3 AND r.bucket < $4",
            )
            .bind(&hosts)
            .bind(&pks)
            .bind(resolution_code(res))
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
    }
    Ok(report)
}

/// The results tables with their indexes: both tiers.
pub(crate) async fn results_bytes(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT pg_total_relation_size('result_chunks') + pg_total_relation_size('results_recent')",
    )
    .fetch_one(pool)
    .await?)
}
