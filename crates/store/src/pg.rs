//! The PostgreSQL backend, chosen by a `postgres://` URL, for sites that run several
//! Prophasis nodes on one database. Batches are written with `UNNEST` over arrays: one
//! statement and one round trip per table however large the batch.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use std::collections::HashMap;

use crate::error::Result;
use crate::ingest::{sql::OPEN_COLUMNS, Agg, Merged, OpenBuckets, Prepared, Row};
use crate::StorageStats;

pub(crate) type DB = sqlx::Postgres;

#[allow(clippy::duplicate_mod)]
#[path = "ops.rs"]
pub(crate) mod ops;

#[allow(clippy::duplicate_mod)]
#[path = "token_ops.rs"]
pub(crate) mod token_ops;

pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_alerting.sql")),
    (3, include_str!("../migrations/postgres/0003_web.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_api_tokens.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_open_buckets.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_results_recent.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_deferred_folding.sql"),
    ),
];

/// Any constant works as long as every Prophasis node uses the same one: it makes nodes
/// that start together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x5072_6f70_6861_7369; // "Prophasi"
/// Held by every results batch until it commits, so batches from several Prophasis nodes
/// on one database read and rewrite the open buckets one after the other.
const INGEST_LOCK: i64 = 0x5072_6f70_696e_6773; // "Propings"

pub(crate) async fn open(url: &str) -> Result<(PgPool, String)> {
    let options = PgConnectOptions::from_str(url)?;
    // Name the database without the password the URL may carry.
    let location = format!(
        "PostgreSQL database {:?} on {}:{}",
        options.get_database().unwrap_or(options.get_username()),
        options.get_host(),
        options.get_port()
    );
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await?;
    ops::migrate(&pool, &location, MIGRATIONS).await?;
    Ok((pool, location))
}

pub(crate) async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, DB>> {
    Ok(pool.begin().await?)
}

pub(crate) async fn lock_for_migration(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ingest reads the open buckets and writes them back merged: another node's batch in
/// between would lose its update (read committed sees its commit only afterwards).
pub(crate) async fn lock_for_ingest(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(INGEST_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The open buckets of the batch's series, in one statement (the series as two arrays).
/// Writes a checked batch inside the ingest transaction: results, and what they do to the
/// latest rows and rollups.
pub(crate) async fn store_batch(
    tx: &mut PgConnection,
    results: &[prophasis_model::CheckResult],
    pks: &HashMap<&str, i32>,
    _checked: (&[i64], &[i64]),
) -> Result<()> {
    let prepared = crate::ingest::prepare(results, pks);
    // Read, merge in Rust, write: the caller (`Store::insert_results`) holds the store's
    // ingest lock, and the advisory lock keeps other processes out (see
    // `lock_for_ingest`), so nothing changes the open buckets in between.
    lock_for_ingest(tx).await?;
    let stored = read_open_buckets(tx, &prepared).await?;
    let merged = crate::ingest::merge(&prepared, &stored);
    write_batch(tx, &prepared, &merged).await
}

pub(crate) async fn read_open_buckets(
    conn: &mut PgConnection,
    p: &Prepared<'_>,
) -> Result<HashMap<(i64, i32), OpenBuckets>> {
    use sqlx::Row;
    let hosts: Vec<i64> = p.latest.iter().map(|&i| p.rows[i].host_id).collect();
    let pks: Vec<i32> = p.latest.iter().map(|&i| p.rows[i].plugin_pk).collect();
    let rows = sqlx::query(&format!(
        "SELECT l.host_id, l.plugin_pk, {OPEN_COLUMNS} FROM latest l \
         JOIN UNNEST($1::BIGINT[], $2::INTEGER[]) AS b(host_id, plugin_pk) \
         ON l.host_id = b.host_id AND l.plugin_pk = b.plugin_pk"
    ))
    .bind(hosts)
    .bind(pks)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let host: i64 = r.try_get(0)?;
        let pk: i32 = r.try_get(1)?;
        let bucket = |col: usize, resolution: i16| -> Result<Option<Agg>> {
            let Some(bucket) = r.try_get::<Option<i64>, _>(col)? else {
                return Ok(None);
            };
            Ok(Some(Agg {
                host_id: host,
                plugin_pk: pk,
                resolution,
                bucket,
                min: r.try_get(col + 1)?,
                max: r.try_get(col + 2)?,
                sum: r.try_get::<Option<f64>, _>(col + 3)?.unwrap_or(0.0),
                n_value: r.try_get::<Option<i64>, _>(col + 4)?.unwrap_or(0),
                n_all: r.try_get::<Option<i64>, _>(col + 5)?.unwrap_or(0),
                worst: r.try_get::<Option<i16>, _>(col + 6)?.unwrap_or(0),
            }))
        };
        out.insert((host, pk), [bucket(2, 1)?, bucket(9, 2)?]);
    }
    Ok(out)
}

pub(crate) async fn list_tables(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
         WHERE table_schema = current_schema() ORDER BY table_name",
    )
    .fetch_all(&mut *conn)
    .await?)
}

const UNNEST_RESULTS: &str = "UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], \
     $5::DOUBLE PRECISION[], $6::TEXT[], $7::SMALLINT[], $8::SMALLINT[])";

/// The columns of a latest row with its open buckets, as arrays.
const UNNEST_LATEST: &str = "UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], \
     $5::DOUBLE PRECISION[], $6::TEXT[], $7::SMALLINT[], $8::SMALLINT[], \
     $9::BIGINT[], $10::DOUBLE PRECISION[], $11::DOUBLE PRECISION[], $12::DOUBLE PRECISION[], \
     $13::BIGINT[], $14::BIGINT[], $15::SMALLINT[], \
     $16::BIGINT[], $17::DOUBLE PRECISION[], $18::DOUBLE PRECISION[], $19::DOUBLE PRECISION[], \
     $20::BIGINT[], $21::BIGINT[], $22::SMALLINT[])";

/// Existing latest rows are updated with a plain `UPDATE`: `INSERT … ON CONFLICT DO
/// UPDATE` would first probe the index for a conflict and lock the row it finds (a WAL
/// record of its own) before the same update. The result columns change only when the
/// batch's newest result is not older than the stored one.
const UPDATE_LATEST: &str = "UPDATE latest l SET \
    ts = CASE WHEN u.ts >= l.ts THEN u.ts ELSE l.ts END, \
    check_id = CASE WHEN u.ts >= l.ts THEN u.check_id ELSE l.check_id END, \
    value = CASE WHEN u.ts >= l.ts THEN u.value ELSE l.value END, \
    message = CASE WHEN u.ts >= l.ts THEN u.message ELSE l.message END, \
    result_type = CASE WHEN u.ts >= l.ts THEN u.result_type ELSE l.result_type END, \
    classification = CASE WHEN u.ts >= l.ts THEN u.classification ELSE l.classification END, \
    m5_bucket = u.m5_bucket, m5_min = u.m5_min, m5_max = u.m5_max, m5_sum = u.m5_sum, \
    m5_n_value = u.m5_n_value, m5_n_all = u.m5_n_all, m5_worst = u.m5_worst, \
    h1_bucket = u.h1_bucket, h1_min = u.h1_min, h1_max = u.h1_max, h1_sum = u.h1_sum, \
    h1_n_value = u.h1_n_value, h1_n_all = u.h1_n_all, h1_worst = u.h1_worst";
const UPDATE_LATEST_FROM: &str =
    "AS u(host_id, plugin_pk, ts, check_id, value, message, result_type, \
    classification, m5_bucket, m5_min, m5_max, m5_sum, m5_n_value, m5_n_all, m5_worst, \
    h1_bucket, h1_min, h1_max, h1_sum, h1_n_value, h1_n_all, h1_worst) \
    WHERE l.host_id = u.host_id AND l.plugin_pk = u.plugin_pk";

pub(crate) async fn write_batch(
    conn: &mut PgConnection,
    p: &Prepared<'_>,
    m: &Merged,
) -> Result<()> {
    use crate::ingest::sql::*;
    // A plain INSERT costs the server less than INSERT … ON CONFLICT (no speculative
    // insertion, no extra index probe); a result for a stored (host, plugin, millisecond)
    // is rare, so that case retries the batch's results with the upsert.
    sqlx::query("SAVEPOINT results_insert")
        .execute(&mut *conn)
        .await?;
    let plain = bind_results(
        sqlx::query(&format!("{INSERT_RESULTS} SELECT * FROM {UNNEST_RESULTS}")),
        &p.rows,
    )
    .execute(&mut *conn)
    .await;
    match plain {
        Ok(_) => {
            sqlx::query("RELEASE SAVEPOINT results_insert")
                .execute(&mut *conn)
                .await?;
        }
        Err(e) if is_unique_violation(&e) => {
            sqlx::query("ROLLBACK TO SAVEPOINT results_insert")
                .execute(&mut *conn)
                .await?;
            bind_results(
                sqlx::query(&format!(
                    "{INSERT_RESULTS} SELECT * FROM {UNNEST_RESULTS} {UPSERT_RESULTS}"
                )),
                &p.rows,
            )
            .execute(&mut *conn)
            .await?;
        }
        Err(e) => return Err(e.into()),
    }

    for existing in [true, false] {
        let picked: Vec<usize> = (0..p.latest.len())
            .filter(|&k| m.exists[k] == existing)
            .collect();
        if picked.is_empty() {
            continue;
        }
        let sql = if existing {
            format!("{UPDATE_LATEST} FROM {UNNEST_LATEST} {UPDATE_LATEST_FROM}")
        } else {
            // New series (or one whose row a concurrent delete removed: the upsert copes).
            format!("{INSERT_LATEST} SELECT * FROM {UNNEST_LATEST} {UPSERT_LATEST}")
        };
        let rows: Vec<&Row<'_>> = picked.iter().map(|&k| &p.rows[p.latest[k]]).collect();
        let mut q = sqlx::query(&sql)
            .bind(rows.iter().map(|r| r.host_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.plugin_pk).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.ts).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.check_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.value).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.message).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.result_type).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.classification).collect::<Vec<_>>());
        for slot in 0..2 {
            let open: Vec<Option<&Agg>> =
                picked.iter().map(|&k| m.open[k][slot].as_ref()).collect();
            q = q
                .bind(open.iter().map(|b| b.map(|b| b.bucket)).collect::<Vec<_>>())
                .bind(
                    open.iter()
                        .map(|b| b.and_then(|b| b.min))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    open.iter()
                        .map(|b| b.and_then(|b| b.max))
                        .collect::<Vec<_>>(),
                )
                .bind(open.iter().map(|b| b.map(|b| b.sum)).collect::<Vec<_>>())
                .bind(
                    open.iter()
                        .map(|b| b.map(|b| b.n_value))
                        .collect::<Vec<_>>(),
                )
                .bind(open.iter().map(|b| b.map(|b| b.n_all)).collect::<Vec<_>>())
                .bind(open.iter().map(|b| b.map(|b| b.worst)).collect::<Vec<_>>());
        }
        q.execute(&mut *conn).await?;
    }

    let a = &m.rollups;
    if a.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "{INSERT_ROLLUPS} SELECT * FROM UNNEST($1::BIGINT[], $2::INTEGER[], $3::SMALLINT[], $4::BIGINT[], \
         $5::DOUBLE PRECISION[], $6::DOUBLE PRECISION[], $7::DOUBLE PRECISION[], $8::BIGINT[], $9::BIGINT[], \
         $10::SMALLINT[]) {UPSERT_ROLLUPS}"
    ))
    .bind(a.iter().map(|r| r.host_id).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.plugin_pk).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.resolution).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.bucket).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.min).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.max).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.sum).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.n_value).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.n_all).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.worst).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type PgQuery<'q> = sqlx::query::Query<'q, DB, sqlx::postgres::PgArguments>;

fn bind_results<'q, 'a: 'q>(q: PgQuery<'q>, rows: &[Row<'a>]) -> PgQuery<'q> {
    q.bind(rows.iter().map(|r| r.host_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.plugin_pk).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.ts).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.check_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.value).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.message).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.result_type).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.classification).collect::<Vec<_>>())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

pub(crate) async fn storage(pool: &PgPool) -> Result<StorageStats> {
    let total: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(pool)
        .await?;
    let results: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('results')")
        .fetch_one(pool)
        .await?;
    Ok(StorageStats {
        total_bytes: total,
        results_bytes: Some(results),
    })
}

/// Reads of long ranges: raw results as a binary `COPY` parsed here, rollups as one row of
/// arrays (PostgreSQL aggregates the column values and sqlx decodes seven arrays instead of
/// 8,760 rows, each with its own per-row bookkeeping).
pub(crate) mod fast {
    use prophasis_model::{CheckResult, HostId, Millis, Resolution, Rollup};
    use sqlx::postgres::{PgConnection, PgPool};
    use sqlx::Row;

    use crate::codes::{classification_from, resolution_code, result_type_from};
    use crate::error::{Result, StoreError};
    use crate::ingest::sql::open_prefix;

    fn same_length(lengths: &[usize]) -> Result<usize> {
        let n = lengths.first().copied().unwrap_or(0);
        if lengths.iter().any(|l| *l != n) {
            return Err(StoreError::Corrupt(
                "aggregated columns differ in length".into(),
            ));
        }
        Ok(n)
    }

    /// Rows of a binary `COPY … TO STDOUT`, parsed in place: no per-row message objects, no
    /// per-value decoder dispatch.
    struct CopyRows {
        buf: Vec<u8>,
        at: usize,
    }

    fn truncated() -> StoreError {
        StoreError::Corrupt("a binary COPY stream ended early".into())
    }

    impl CopyRows {
        async fn read(conn: &mut PgConnection, statement: &str) -> Result<CopyRows> {
            let mut stream = conn.copy_out_raw(statement).await?;
            let mut buf = Vec::new();
            while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                buf.extend_from_slice(&chunk?);
            }
            // Signature (11 bytes), flags (4), then a header extension of the given length.
            const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
            if buf.len() < 19 || &buf[..11] != SIGNATURE {
                return Err(StoreError::Corrupt("not a binary COPY stream".into()));
            }
            let ext = u32::from_be_bytes(buf[15..19].try_into().expect("4 bytes")) as usize;
            Ok(CopyRows { buf, at: 19 + ext })
        }

        fn take(&mut self, n: usize) -> Result<&[u8]> {
            let end = self.at.checked_add(n).ok_or_else(truncated)?;
            let bytes = self.buf.get(self.at..end).ok_or_else(truncated)?;
            self.at = end;
            Ok(bytes)
        }

        /// `Some` when another row (of `fields` fields) follows, `None` at the end.
        fn next_row(&mut self, fields: i16) -> Result<Option<()>> {
            let n = i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes"));
            match n {
                -1 => Ok(None),
                n if n == fields => Ok(Some(())),
                n => Err(StoreError::Corrupt(format!("a COPY row of {n} fields"))),
            }
        }

        fn field(&mut self) -> Result<Option<&[u8]>> {
            let len = i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
            if len < 0 {
                return Ok(None);
            }
            self.take(len as usize).map(Some)
        }

        fn fixed<const N: usize>(&mut self) -> Result<Option<[u8; N]>> {
            match self.field()? {
                None => Ok(None),
                Some(b) => b
                    .try_into()
                    .map(Some)
                    .map_err(|_| StoreError::Corrupt(format!("a {}-byte value", b.len()))),
            }
        }

        fn opt_i64(&mut self) -> Result<Option<i64>> {
            Ok(self.fixed::<8>()?.map(i64::from_be_bytes))
        }

        fn i64(&mut self) -> Result<i64> {
            self.opt_i64()?
                .ok_or_else(|| StoreError::Corrupt("NULL in a NOT NULL column".into()))
        }

        fn opt_f64(&mut self) -> Result<Option<f64>> {
            Ok(self.fixed::<8>()?.map(f64::from_be_bytes))
        }

        fn i16(&mut self) -> Result<i16> {
            self.fixed::<2>()?
                .map(i16::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("NULL in a NOT NULL column".into()))
        }

        fn text(&mut self) -> Result<String> {
            let b = self.field()?.unwrap_or_default();
            String::from_utf8(b.to_vec()).map_err(|_| StoreError::Corrupt("text not UTF-8".into()))
        }
    }

    async fn plugin_pk(conn: &mut PgConnection, plugin: &str) -> Result<Option<i32>> {
        Ok(sqlx::query_scalar("SELECT pk FROM plugins WHERE id = $1")
            .bind(plugin)
            .fetch_optional(&mut *conn)
            .await?)
    }

    /// A 30-day graph is 43,200 rows: they come back as a binary `COPY` of the index-ordered
    /// scan, parsed in place. benches/pg_read.rs compares the other ways, in alternating
    /// rounds in one process (2 shared cores; medians per read as wall time, CPU of this
    /// process, CPU of the PostgreSQL backend). Through the store's pool at load 4–5, this
    /// path against one row of five `array_agg` arrays in binary format read from the raw
    /// bytes (one round trip, codes packed into one integer, no `ORDER BY`, sorted here if
    /// needed): 30.6 / 14.0 / 16.9 ms against 37.8 / 7.3 / 21.7 ms, 47.1 / 14.1 / 18.3 against
    /// 52.3 / 7.9 / 25.6, and 39.5 / 12.8 / 17.1 against 42.8 / 7.7 / 21.7 with both sides at
    /// nice -20. The arrays halve this process's CPU (sqlx hands over every `COPY` row as a
    /// message of its own, a third of the time here) but cost the backend 3–9 ms more
    /// through the pool (on a dedicated connection about as much as `COPY`; why the pool
    /// makes a difference for the prepared statement and not for `COPY` is not known), and
    /// the server is the part several Prophasis nodes share. Also measured and no
    /// better: a plain `SELECT` with values read raw (twice this process's CPU: a `PgRow`
    /// per row), five fields instead of six, parsing each `COPY` message without copying it
    /// into one buffer first, the two halves of the range on two connections at once.
    pub(crate) async fn results_range(
        pool: &PgPool,
        host: HostId,
        plugin: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<CheckResult>> {
        let mut conn = pool.acquire().await?;
        let Some(pk) = plugin_pk(&mut conn, plugin).await? else {
            return Ok(Vec::new());
        };
        // COPY takes no parameters; every value spliced in is an integer.
        let statement = format!(
            "COPY (SELECT ts, check_id, value, message, result_type, classification FROM results \
             WHERE host_id = {host} AND plugin_pk = {pk} AND ts >= CAST({from} AS BIGINT) \
             AND ts < CAST({to} AS BIGINT) ORDER BY ts) \
             TO STDOUT (FORMAT binary)"
        );
        let mut rows = CopyRows::read(&mut conn, &statement).await?;
        let mut out = Vec::new();
        while rows.next_row(6)?.is_some() {
            let timestamp = rows.i64()?;
            let check_id = rows.opt_i64()?;
            let value = rows.opt_f64()?;
            let message = rows.text()?;
            let result_type = result_type_from(rows.i16()?)?;
            let classification = classification_from(rows.i16()?)?;
            out.push(CheckResult {
                host_id: host,
                plugin_id: plugin.to_string(),
                check_id,
                timestamp,
                value,
                message,
                result_type,
                classification,
            });
        }
        Ok(out)
    }

    pub(crate) async fn rollups_range(
        pool: &PgPool,
        host: HostId,
        plugin: &str,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Rollup>> {
        // The open bucket, newer than every rollups row of the series, is in `latest`; one
        // statement reads both, so a batch closing it in between cannot hide it.
        let c = open_prefix(resolution_code(resolution));
        let row = sqlx::query(&format!(
            "SELECT array_agg(bucket), array_agg(min_value), array_agg(max_value), array_agg(sum_value), \
             array_agg(n_value), array_agg(n_all), array_agg(worst) FROM \
             (SELECT bucket, min_value, max_value, sum_value, n_value, n_all, worst FROM rollups \
              WHERE host_id = $1 AND plugin_pk = (SELECT pk FROM plugins WHERE id = $2) \
              AND resolution = $3 AND bucket >= $4 AND bucket < $5 \
              UNION ALL \
              SELECT {c}_bucket, {c}_min, {c}_max, {c}_sum, {c}_n_value, {c}_n_all, {c}_worst FROM latest \
              WHERE host_id = $1 AND plugin_pk = (SELECT pk FROM plugins WHERE id = $2) \
              AND {c}_bucket >= $4 AND {c}_bucket < $5 \
              ORDER BY 1) s"
        ))
        .bind(host)
        .bind(plugin)
        .bind(resolution_code(resolution))
        .bind(resolution.bucket_start(from))
        .bind(to)
        .fetch_one(pool)
        .await?;
        let bucket: Vec<i64> = row.try_get::<Option<_>, _>(0)?.unwrap_or_default();
        let min: Vec<Option<f64>> = row.try_get::<Option<_>, _>(1)?.unwrap_or_default();
        let max: Vec<Option<f64>> = row.try_get::<Option<_>, _>(2)?.unwrap_or_default();
        let sum: Vec<f64> = row.try_get::<Option<_>, _>(3)?.unwrap_or_default();
        let n_value: Vec<i64> = row.try_get::<Option<_>, _>(4)?.unwrap_or_default();
        let n_all: Vec<i64> = row.try_get::<Option<_>, _>(5)?.unwrap_or_default();
        let worst: Vec<i16> = row.try_get::<Option<_>, _>(6)?.unwrap_or_default();
        let n = same_length(&[
            bucket.len(),
            min.len(),
            max.len(),
            sum.len(),
            n_value.len(),
            n_all.len(),
            worst.len(),
        ])?;
        (0..n)
            .map(|i| {
                Ok(Rollup {
                    host_id: host,
                    plugin_id: plugin.to_string(),
                    resolution,
                    bucket_start: bucket[i],
                    min: min[i],
                    max: max[i],
                    avg: (n_value[i] > 0).then(|| sum[i] / n_value[i] as f64),
                    count: n_all[i],
                    worst: classification_from(worst[i])?,
                })
            })
            .collect()
    }
}
