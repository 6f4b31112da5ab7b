//! The PostgreSQL backend, chosen by a `postgres://` URL, for sites that run several
//! Prophasis nodes on one database. Batches are written with `UNNEST` over arrays: one
//! statement and one round trip per table however large the batch.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::error::Result;
use crate::ingest::Prepared;
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
];

/// Any constant works as long as every Prophasis node uses the same one: it makes nodes
/// that start together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x5072_6f70_6861_7369; // "Prophasi"

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

pub(crate) async fn list_tables(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
         WHERE table_schema = current_schema() ORDER BY table_name",
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub(crate) async fn write_batch(conn: &mut PgConnection, p: &Prepared<'_>) -> Result<()> {
    use crate::ingest::sql::*;
    let unnest_results =
        "SELECT * FROM UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], \
                          $5::DOUBLE PRECISION[], $6::TEXT[], $7::SMALLINT[], $8::SMALLINT[])";
    for (head, tail, rows) in [
        (
            INSERT_RESULTS,
            UPSERT_RESULTS,
            p.rows.iter().collect::<Vec<_>>(),
        ),
        (
            INSERT_LATEST,
            UPSERT_LATEST,
            p.latest.iter().map(|i| &p.rows[*i]).collect(),
        ),
    ] {
        sqlx::query(&format!("{head} {unnest_results} {tail}"))
            .bind(rows.iter().map(|r| r.host_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.plugin_pk).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.ts).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.check_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.value).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.message).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.result_type).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.classification).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
    }
    let a = &p.rollups;
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

/// Reads of long ranges: raw results as one row of binary arrays parsed here, rollups as one row of
/// arrays (PostgreSQL aggregates the column values and sqlx decodes seven arrays instead of
/// 8,760 rows, each with its own per-row bookkeeping).
pub(crate) mod fast {
    use prophasis_model::{CheckResult, HostId, Millis, Resolution, Rollup};
    use sqlx::postgres::PgPool;
    use sqlx::{Row, ValueRef};

    use crate::codes::{classification_from, resolution_code, result_type_from};
    use crate::error::{Result, StoreError};

    fn same_length(lengths: &[usize]) -> Result<usize> {
        let n = lengths.first().copied().unwrap_or(0);
        if lengths.iter().any(|l| *l != n) {
            return Err(StoreError::Corrupt(
                "aggregated columns differ in length".into(),
            ));
        }
        Ok(n)
    }

    /// The elements of a one-dimensional array in PostgreSQL's binary format, read in place:
    /// a header (dimensions, has-NULLs flag, element type, then length and lower bound per
    /// dimension), then per element a big-endian i32 length (-1 for NULL) and the bytes.
    struct Elements<'a> {
        bytes: &'a [u8],
        at: usize,
        len: usize,
    }

    fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("range read: {what}"))
    }

    const INT4: u32 = 23;
    const INT8: u32 = 20;
    const FLOAT8: u32 = 701;
    const TEXT: u32 = 25;

    impl<'a> Elements<'a> {
        /// `value` is `None` for SQL NULL, which is what an aggregate over no rows gives.
        fn new(value: Option<&'a [u8]>, element_type: u32) -> Result<Elements<'a>> {
            let mut e = Elements {
                bytes: value.unwrap_or_default(),
                at: 0,
                len: 0,
            };
            if value.is_none() {
                return Ok(e);
            }
            let dimensions = e.i32_at()?;
            let _has_nulls = e.i32_at()?;
            let oid = e.i32_at()? as u32;
            if dimensions == 0 {
                return Ok(e);
            }
            if dimensions != 1 || oid != element_type {
                return Err(corrupt(format!(
                    "an array of {dimensions} dimensions of type {oid}, not 1 of {element_type}"
                )));
            }
            let len = e.i32_at()?;
            let _lower_bound = e.i32_at()?;
            e.len = usize::try_from(len).map_err(|_| corrupt("a negative array length"))?;
            Ok(e)
        }

        fn take(&mut self, n: usize) -> Result<&'a [u8]> {
            let end = self.at.checked_add(n).ok_or_else(|| corrupt("truncated"))?;
            let bytes = self
                .bytes
                .get(self.at..end)
                .ok_or_else(|| corrupt("truncated"))?;
            self.at = end;
            Ok(bytes)
        }

        fn i32_at(&mut self) -> Result<i32> {
            Ok(i32::from_be_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            ))
        }

        fn next(&mut self) -> Result<Option<&'a [u8]>> {
            let len = self.i32_at()?;
            if len < 0 {
                return Ok(None);
            }
            self.take(len as usize).map(Some)
        }

        fn fixed<const N: usize>(&mut self) -> Result<Option<[u8; N]>> {
            match self.next()? {
                None => Ok(None),
                Some(b) => b
                    .try_into()
                    .map(Some)
                    .map_err(|_| corrupt(format!("a {}-byte value", b.len()))),
            }
        }

        fn opt_i64(&mut self) -> Result<Option<i64>> {
            Ok(self.fixed::<8>()?.map(i64::from_be_bytes))
        }

        fn opt_f64(&mut self) -> Result<Option<f64>> {
            Ok(self.fixed::<8>()?.map(f64::from_be_bytes))
        }

        fn i64(&mut self) -> Result<i64> {
            self.opt_i64()?
                .ok_or_else(|| corrupt("NULL in a NOT NULL column"))
        }

        fn i32(&mut self) -> Result<i32> {
            self.fixed::<4>()?
                .map(i32::from_be_bytes)
                .ok_or_else(|| corrupt("NULL in a NOT NULL column"))
        }

        fn text(&mut self) -> Result<String> {
            let b = self
                .next()?
                .ok_or_else(|| corrupt("NULL in a NOT NULL column"))?;
            String::from_utf8(b.to_vec()).map_err(|_| corrupt("text not UTF-8"))
        }
    }

    /// One row of five arrays, all in the order the scan met the rows. The codes travel as
    /// one integer, `result_type * 65536 + classification`: every pair of SMALLINTs comes
    /// back exactly, or the server raises an error (a result type beyond ±32767 would
    /// overflow; the store writes 0–5).
    const RANGE: &str = "SELECT array_agg(ts), array_agg(check_id), array_agg(value), \
         array_agg(message), array_agg(result_type * 65536 + classification) FROM results \
         WHERE host_id = $1 AND plugin_pk = (SELECT pk FROM plugins WHERE id = $2) \
         AND ts >= $3 AND ts < $4";

    /// A 30-day graph is 43,200 rows. They come back as the one row of arrays of `RANGE` in
    /// binary format, read here from the raw bytes (no sqlx decoding, no per-row message),
    /// one round trip with the plugin's key looked up in the same statement. There is no
    /// `ORDER BY`: the rows are put in time order here when the scan did not return them
    /// so, as a bitmap heap scan (which the planner may pick for the first runs of the
    /// statement on a connection) does when late results or reused space put the heap out
    /// of time order; after five runs PostgreSQL keeps a generic plan, an index scan.
    ///
    /// Measured with benches/pg_read.rs, candidates in alternating rounds in one process on
    /// 2 shared cores (load 5–11), medians per read as CPU of this process / of the
    /// PostgreSQL backend:
    /// - binary `COPY` of the rows parsed in place (the previous path): 10.6–14 / 15.5–19.7
    ///   ms. sqlx hands over every row as a message of its own (a `Bytes`, a mutex, the poll
    ///   of a boxed future): a third of this process's time.
    /// - plain `SELECT` of the rows, values read raw: 20–24 / 16–20 ms (a `PgRow` per row).
    /// - this query: 5.9–7.6 / 16.3–19.8 ms, the least CPU on both sides together (22–26 ms
    ///   against 26–34 ms for `COPY`) and about the same or a lower wall time. What remains
    ///   here is mostly `malloc`/`free` of the two `String`s each `CheckResult` owns (with
    ///   an empty `plugin_id`, 2 ms less).
    /// - also measured, no better: the two codes as two arrays (~2 ms more server CPU), the
    ///   messages as one `string_agg` plus an array of lengths, a custom plan per read (an
    ///   unnamed statement: one more round trip, same CPU), the two halves of the range on
    ///   two connections at once (more CPU, less wall time only when a core is idle).
    pub(crate) async fn results_range(
        pool: &PgPool,
        host: HostId,
        plugin: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<CheckResult>> {
        let row = sqlx::query(RANGE)
            .bind(host)
            .bind(plugin)
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?;
        let mut columns = [None; 5];
        for (i, column) in columns.iter_mut().enumerate() {
            let value = row.try_get_raw(i)?;
            if !value.is_null() {
                *column = Some(value.as_bytes().map_err(corrupt)?);
            }
        }
        decode_range(host, plugin, columns)
    }

    /// The results in the five arrays of `RANGE`, in time order.
    fn decode_range(
        host: HostId,
        plugin: &str,
        [ts, check_id, value, message, codes]: [Option<&[u8]>; 5],
    ) -> Result<Vec<CheckResult>> {
        let mut ts = Elements::new(ts, INT8)?;
        let mut check_id = Elements::new(check_id, INT8)?;
        let mut value = Elements::new(value, FLOAT8)?;
        let mut message = Elements::new(message, TEXT)?;
        let mut codes = Elements::new(codes, INT4)?;
        let n = same_length(&[ts.len, check_id.len, value.len, message.len, codes.len])?;
        let mut out = Vec::with_capacity(n);
        let (mut sorted, mut previous) = (true, i64::MIN);
        for i in 0..n {
            let timestamp = ts.i64()?;
            sorted &= i == 0 || previous < timestamp;
            previous = timestamp;
            let packed = codes.i32()?;
            let classification = packed as i16;
            let result_type = ((packed - classification as i32) >> 16) as i16;
            out.push(CheckResult {
                host_id: host,
                plugin_id: plugin.to_string(),
                check_id: check_id.opt_i64()?,
                timestamp,
                value: value.opt_f64()?,
                message: message.text()?,
                result_type: result_type_from(result_type)?,
                classification: classification_from(classification)?,
            });
        }
        if !sorted {
            // (host, plugin, ts) is the primary key: no two results share a timestamp.
            out.sort_unstable_by_key(|r| r.timestamp);
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
        let row = sqlx::query(
            "SELECT array_agg(bucket), array_agg(min_value), array_agg(max_value), array_agg(sum_value), \
             array_agg(n_value), array_agg(n_all), array_agg(worst) FROM \
             (SELECT bucket, min_value, max_value, sum_value, n_value, n_all, worst FROM rollups \
              WHERE host_id = $1 AND plugin_pk = (SELECT pk FROM plugins WHERE id = $2) \
              AND resolution = $3 AND bucket >= $4 AND bucket < $5 ORDER BY bucket) s",
        )
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

    #[cfg(test)]
    mod tests {
        use prophasis_model::{Classification, ResultType};

        use super::*;
        use crate::codes::{classification_code, result_type_code};

        /// A one-dimensional array in the binary format PostgreSQL sends.
        fn array(oid: u32, elements: &[Option<Vec<u8>>]) -> Vec<u8> {
            let mut b = Vec::new();
            b.extend(1i32.to_be_bytes());
            b.extend(i32::from(elements.iter().any(Option::is_none)).to_be_bytes());
            b.extend(oid.to_be_bytes());
            b.extend((elements.len() as i32).to_be_bytes());
            b.extend(1i32.to_be_bytes());
            for e in elements {
                match e {
                    None => b.extend((-1i32).to_be_bytes()),
                    Some(e) => {
                        b.extend((e.len() as i32).to_be_bytes());
                        b.extend(e);
                    }
                }
            }
            b
        }

        /// The five arrays `RANGE` returns for these results, in the given order.
        fn arrays(results: &[CheckResult]) -> [Vec<u8>; 5] {
            let col = |oid, f: &dyn Fn(&CheckResult) -> Option<Vec<u8>>| {
                array(oid, &results.iter().map(f).collect::<Vec<_>>())
            };
            [
                col(INT8, &|r| Some(r.timestamp.to_be_bytes().to_vec())),
                col(INT8, &|r| r.check_id.map(|c| c.to_be_bytes().to_vec())),
                col(FLOAT8, &|r| r.value.map(|v| v.to_be_bytes().to_vec())),
                col(TEXT, &|r| Some(r.message.as_bytes().to_vec())),
                col(INT4, &|r| {
                    let packed = i32::from(result_type_code(r.result_type)) * 65536
                        + i32::from(classification_code(r.classification));
                    Some(packed.to_be_bytes().to_vec())
                }),
            ]
        }

        fn decode(a: &[Vec<u8>; 5]) -> Result<Vec<CheckResult>> {
            decode_range(7, "a.cpu", [0, 1, 2, 3, 4].map(|i| Some(a[i].as_slice())))
        }

        fn results() -> Vec<CheckResult> {
            let types = [
                ResultType::Plugin,
                ResultType::ConnectionError,
                ResultType::ConnectionTimeout,
                ResultType::AuthenticationError,
                ResultType::RequestError,
                ResultType::CommandUnsuccessful,
            ];
            let classes = [
                Classification::Ok,
                Classification::Unknown,
                Classification::Minor,
                Classification::Major,
                Classification::Critical,
            ];
            let mut ts = vec![i64::MIN, -1, 0, 1, 59_999, i64::MAX];
            ts.extend((0..24).map(|i| 1_700_000_000_000 + i * 60_000));
            ts.sort();
            ts.iter()
                .enumerate()
                .map(|(i, t)| CheckResult {
                    host_id: 7,
                    plugin_id: "a.cpu".into(),
                    check_id: (i % 3 == 0).then_some(i as i64 - 10),
                    timestamp: *t,
                    value: (i % 4 != 0).then_some(i as f64 * -0.25),
                    message: if i % 5 == 0 {
                        String::new()
                    } else {
                        format!("µ {i} — ok")
                    },
                    result_type: types[i % types.len()],
                    classification: classes[i % classes.len()],
                })
                .collect()
        }

        #[test]
        fn every_field_comes_back_in_time_order_whatever_order_the_scan_had() {
            let sorted = results();
            assert_eq!(decode(&arrays(&sorted)).unwrap(), sorted);
            // A bitmap heap scan returns the rows in heap order, which late results and
            // reused space make differ from time order.
            let mut shuffled = sorted.clone();
            shuffled.reverse();
            shuffled.swap(3, 17);
            assert_eq!(decode(&arrays(&shuffled)).unwrap(), sorted);
        }

        #[test]
        fn no_rows_is_an_empty_range() {
            assert!(decode_range(7, "a.cpu", [None; 5]).unwrap().is_empty());
            assert!(decode(&arrays(&[])).unwrap().is_empty());
        }

        #[test]
        fn what_cannot_be_read_exactly_is_an_error() {
            let good = arrays(&results());
            let n = results().len();
            let corrupt = |a: [Vec<u8>; 5]| match decode(&a) {
                Err(StoreError::Corrupt(_)) => {}
                other => panic!("expected Corrupt, got {other:?}"),
            };
            // One array shorter than the others.
            let mut short = good.clone();
            short[2] = arrays(&results()[1..])[2].clone();
            corrupt(short);
            // An array of another element type.
            let mut wrong_type = good.clone();
            wrong_type[4][8..12].copy_from_slice(&INT8.to_be_bytes());
            corrupt(wrong_type);
            // Cut short.
            let mut cut = good.clone();
            cut[3].truncate(cut[3].len() - 1);
            corrupt(cut);
            // NULL where the column is NOT NULL.
            let mut null = good.clone();
            null[0] = array(INT8, &vec![None; n]);
            corrupt(null);
            // A code no result type has.
            let mut code = good.clone();
            code[4] = array(
                INT4,
                &vec![Some((99 * 65536 + 1i32).to_be_bytes().to_vec()); n],
            );
            corrupt(code);
            // A negative classification code is not mistaken for another result type.
            let mut negative = good;
            negative[4] = array(INT4, &vec![Some((-1i32).to_be_bytes().to_vec()); n]);
            corrupt(negative);
        }
    }
}
