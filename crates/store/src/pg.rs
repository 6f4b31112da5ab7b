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

pub(crate) const MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../migrations/postgres/0001_init.sql"))];

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
