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
        include_str!("../migrations/postgres/0007_result_chunks.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/0008_result_chunks.sql"),
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

/// Steps of a migration that SQL alone cannot do: none on PostgreSQL.
pub(crate) async fn after_migration(_conn: &mut PgConnection, _version: i64) -> Result<()> {
    Ok(())
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

pub(crate) const UNNEST_RESULTS: &str =
    "UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], \
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

/// Writes a prepared batch into the compacted tier and folds it into `latest` and
/// `rollups`: PostgreSQL's immediate path, for results below the watermark (late data) and
/// for the rows a compaction moves. See `pg_tiers.rs`.
pub(crate) async fn write_batch(
    conn: &mut PgConnection,
    p: &Prepared<'_>,
    m: &Merged,
) -> Result<()> {
    write_folded(conn, p, m, &|_| true).await
}

/// [`write_batch`], told which hours may already have a chunk (`may_exist`): a chunk
/// that may exist is read and merged, the others are written without a look.
pub(crate) async fn write_folded(
    conn: &mut PgConnection,
    p: &Prepared<'_>,
    m: &Merged,
    may_exist: &(dyn Fn(i64) -> bool + Sync),
) -> Result<()> {
    use crate::ingest::sql::*;
    crate::pg_tiers::write_chunks(conn, &p.rows, may_exist).await?;

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

pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, DB, sqlx::postgres::PgArguments>;

pub(crate) fn bind_results<'q, 'a: 'q>(q: PgQuery<'q>, rows: &[&Row<'a>]) -> PgQuery<'q> {
    q.bind(rows.iter().map(|r| r.host_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.plugin_pk).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.ts).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.check_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.value).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.message).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.result_type).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.classification).collect::<Vec<_>>())
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

pub(crate) async fn storage(pool: &PgPool) -> Result<StorageStats> {
    let total: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(pool)
        .await?;
    let results = crate::pg_tiers::results_bytes(pool).await?;
    Ok(StorageStats {
        total_bytes: total,
        results_bytes: Some(results),
    })
}

/// The binary `COPY` parser that compaction reads the recent tier with (`pg_tiers.rs`).
pub(crate) mod fast {
    use sqlx::postgres::PgConnection;

    use crate::error::{Result, StoreError};

    /// Rows of a binary `COPY … TO STDOUT`, parsed in place: no per-row message objects, no
    /// per-value decoder dispatch.
    pub(crate) struct CopyRows {
        pub(crate) buf: Vec<u8>,
        at: usize,
    }

    fn truncated() -> StoreError {
        StoreError::Corrupt("a binary COPY stream ended early".into())
    }

    impl CopyRows {
        pub(crate) async fn read(conn: &mut PgConnection, statement: &str) -> Result<CopyRows> {
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
        pub(crate) fn next_row(&mut self, fields: i16) -> Result<Option<()>> {
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

        pub(crate) fn opt_i64(&mut self) -> Result<Option<i64>> {
            Ok(self.fixed::<8>()?.map(i64::from_be_bytes))
        }

        pub(crate) fn i64(&mut self) -> Result<i64> {
            self.opt_i64()?
                .ok_or_else(|| StoreError::Corrupt("NULL in a NOT NULL column".into()))
        }

        pub(crate) fn opt_f64(&mut self) -> Result<Option<f64>> {
            Ok(self.fixed::<8>()?.map(f64::from_be_bytes))
        }

        pub(crate) fn i16(&mut self) -> Result<i16> {
            self.fixed::<2>()?
                .map(i16::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("NULL in a NOT NULL column".into()))
        }

        pub(crate) fn i32(&mut self) -> Result<i32> {
            self.fixed::<4>()?
                .map(i32::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("NULL in a NOT NULL column".into()))
        }

        /// Where a text field lies in `buf`, checked to be UTF-8, for borrowing it later
        /// instead of allocating a string per row.
        pub(crate) fn text_span(&mut self) -> Result<std::ops::Range<usize>> {
            let start = self.at + 4;
            let b = self.field()?.unwrap_or_default();
            std::str::from_utf8(b).map_err(|_| StoreError::Corrupt("text not UTF-8".into()))?;
            let end = start + b.len();
            Ok(if b.is_empty() { 0..0 } else { start..end })
        }
    }
}
