//! Upgrading a version-4 database that holds results (migration 0005 moves each series'
//! newest rollup buckets into its latest row): every rollup read gives the same answer
//! after the upgrade, and ingest continues from the moved buckets.
//!
//! The version-4 database is made by storing results with this version and turning the
//! database back into the version-4 layout (every bucket in `rollups`, `latest` without
//! the open-bucket columns, no record of migration 0005): the rows a version-4 binary
//! would have written for the same results. Each backend has its own test because the
//! connection types differ. The results tiers of later migrations (0006–0008: the recent
//! tier and chunks) are undone too, and the version-4 `results` table is written from the
//! stored results, so both tests also upgrade through them: existing results must end up
//! in chunks, folded (on SQLite, migration 0008 encodes them in the binary).

mod common;

use common::*;
use prophasis_model::*;
use prophasis_store::{Store, SCHEMA_VERSION};
use sqlx::Connection;

const MIN: i64 = 60_000;

/// The version-4 layout of the same data.
fn downgrade_statements(sqlite: bool) -> Vec<String> {
    let mut sql = Vec::new();
    if !sqlite {
        // Migration 0007: the results are back in one `results` table (the test writes
        // them, see `postgres_results_table`); the tiers go.
        sql.push("DROP TABLE result_chunks".into());
        sql.push("DROP TABLE results_recent".into());
        sql.push("DELETE FROM prophasis_meta WHERE key = 'results_compacted_before'".into());
    }
    if sqlite {
        // Migrations 0006–0008: the results are back in one `results` table (the test
        // writes them, see `sqlite_results_table`); the tiers go.
        sql.push("DROP TABLE result_chunks".into());
        sql.push("DROP TABLE results_recent".into());
        sql.push("DELETE FROM prophasis_meta WHERE key = 'results_compacted_before'".into());
    }
    // Every migration after version 4 runs again on open.
    for n in 5..=SCHEMA_VERSION {
        sql.push(format!(
            "DELETE FROM prophasis_meta WHERE key = 'migration_{n:04}'"
        ));
    }
    for (code, c) in [(1, "m5"), (2, "h1")] {
        sql.push(format!(
            "INSERT INTO rollups (host_id, plugin_pk, resolution, bucket, min_value, max_value, \
             sum_value, n_value, n_all, worst) SELECT host_id, plugin_pk, {code}, {c}_bucket, \
             {c}_min, {c}_max, {c}_sum, {c}_n_value, {c}_n_all, {c}_worst FROM latest \
             WHERE {c}_bucket IS NOT NULL"
        ));
        for col in ["bucket", "min", "max", "sum", "n_value", "n_all", "worst"] {
            sql.push(format!("ALTER TABLE latest DROP COLUMN {c}_{col}"));
        }
    }
    sql.push("UPDATE prophasis_meta SET value = '4' WHERE key = 'schema_version'".into());
    sql
}

/// Results of two hosts × two plugins over a few hours, stored in shuffled batches.
async fn fill(s: &Store) -> (Vec<CheckResult>, Vec<(HostId, &'static str)>) {
    let h1 = s.create_host(&host("u1")).await.unwrap();
    let h2 = s.create_host(&host("u2")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    s.put_plugin(&plugin("a.mem"), &package()).await.unwrap();
    let series = vec![(h1, "a.cpu"), (h1, "a.mem"), (h2, "a.cpu"), (h2, "a.mem")];
    let mut rng = Rng(42);
    let mut all = Vec::new();
    for (n, (h, p)) in series.iter().enumerate() {
        for i in 0..200 {
            // Every minute, or every 7 minutes with a value missing now and then.
            let ts = 1_000 * 3_600_000 + i * MIN * if n % 2 == 0 { 1 } else { 7 };
            let value = (rng.below(8) != 0).then(|| rng.below(100) as f64);
            let c = Classification::ALL[rng.below(5) as usize];
            all.push(result(*h, p, ts, value, c));
        }
    }
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for batch in all.chunks(37) {
        s.insert_results(batch).await.unwrap();
    }
    assert_matches_raw(s, &all, &series).await;
    // A version-4 database has every result in latest and rollups. Results in the recent
    // tier are not folded yet (PostgreSQL, migration 0007): one result a day later (of a
    // series that goes again) makes the compaction fold all of them.
    let flush = s.create_host(&host("flush")).await.unwrap();
    let newest = all.iter().map(|r| r.timestamp).max().unwrap();
    s.insert_results(&[result(
        flush,
        "a.cpu",
        newest + 24 * 60 * MIN,
        None,
        Classification::Ok,
    )])
    .await
    .unwrap();
    s.delete_host(flush).await.unwrap();
    (all, series)
}

/// After the upgrade: the same answers, then more results in the open buckets, in later
/// buckets and late ones.
async fn check_upgraded(s: &Store, mut stored: Vec<CheckResult>, series: &[(HostId, &str)]) {
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_matches_raw(s, &stored, series).await;
    let newest = stored.iter().map(|r| r.timestamp).max().unwrap();
    let mut more = Vec::new();
    for (i, (h, p)) in series.iter().enumerate() {
        let i = i as i64;
        more.push(result(*h, p, newest + 1 + i, Some(1.0), Classification::Ok));
        more.push(result(
            *h,
            p,
            newest + 3 * 3_600_000 + i,
            Some(2.0),
            Classification::Major,
        ));
        more.push(result(
            *h,
            p,
            newest - 90 * MIN + 13 + i,
            Some(3.0),
            Classification::Minor,
        ));
    }
    s.insert_results(&more).await.unwrap();
    stored.extend(more);
    assert_matches_raw(s, &stored, series).await;
}

/// The store's codes (src/codes.rs) of a classification.
fn class(c: Classification) -> i16 {
    match c {
        Classification::Ok => 1,
        Classification::Unknown => 2,
        Classification::Minor => 3,
        Classification::Major => 4,
        Classification::Critical => 5,
    }
}

/// SQLite's version-4 `results` table (clustered by series) holding `stored` (one result
/// per key), as migration 0006 found it.
async fn sqlite_results_table(c: &mut sqlx::SqliteConnection, stored: &[CheckResult]) {
    sqlx::query(
        "CREATE TABLE results (host_id INTEGER NOT NULL, plugin_pk INTEGER NOT NULL, \
         ts INTEGER NOT NULL, check_id INTEGER, value REAL, message TEXT NOT NULL, \
         result_type INTEGER NOT NULL, classification INTEGER NOT NULL, \
         PRIMARY KEY (host_id, plugin_pk, ts)) WITHOUT ROWID",
    )
    .execute(&mut *c)
    .await
    .unwrap();
    // `fill` stores plugin results only (code 0).
    assert!(stored.iter().all(|r| r.result_type == ResultType::Plugin));
    for r in stored {
        sqlx::query(
            "INSERT INTO results SELECT $1, pk, $2, $3, $4, $5, 0, $6 FROM plugins WHERE id = $7",
        )
        .bind(r.host_id)
        .bind(r.timestamp)
        .bind(r.check_id)
        .bind(r.value)
        .bind(&r.message)
        .bind(class(r.classification))
        .bind(&r.plugin_id)
        .execute(&mut *c)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn sqlite_version_4_database_with_results_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let s = Store::open(&url).await.unwrap();
    let (stored, series) = fill(&s).await;
    s.close().await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlite_results_table(&mut c, &stored).await;
    for sql in downgrade_statements(true) {
        sqlx::query(&sql).execute(&mut c).await.unwrap();
    }
    let columns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('latest')")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(columns, 8, "the version-4 latest table");
    c.close().await.unwrap();
    let s = Store::open(&url).await.unwrap();
    // Nothing moved: the watermark starts after the newest stored minute.
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results_recent")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let watermark: String = sqlx::query_scalar(
        "SELECT value FROM prophasis_meta WHERE key = 'results_compacted_before'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    // Migration 0008 encoded every result into chunks and dropped `results`.
    let (chunked, left): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT SUM(n) FROM result_chunks), \
         (SELECT COUNT(*) FROM sqlite_master WHERE name = 'results')",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    assert_eq!((chunked, left), (stored.len() as i64, 0));
    let newest = stored.iter().map(|r| r.timestamp).max().unwrap();
    assert_eq!(recent, 0);
    assert_eq!(watermark, (newest / MIN + 1).to_string());
    check_upgraded(&s, stored, &series).await;
}

/// PostgreSQL's version-6 `results` table holding `stored` (one result per key), as
/// migration 0007 found it.
async fn postgres_results_table(c: &mut sqlx::PgConnection, stored: &[CheckResult]) {
    sqlx::query(
        "CREATE TABLE results (ts BIGINT NOT NULL, host_id BIGINT NOT NULL, check_id BIGINT, \
         value DOUBLE PRECISION, plugin_pk INTEGER NOT NULL, result_type SMALLINT NOT NULL, \
         classification SMALLINT NOT NULL, message TEXT NOT NULL, \
         PRIMARY KEY (host_id, plugin_pk, ts))",
    )
    .execute(&mut *c)
    .await
    .unwrap();
    // `fill` stores plugin results only (code 0).
    assert!(stored.iter().all(|r| r.result_type == ResultType::Plugin));
    sqlx::query(
        "INSERT INTO results SELECT r.ts, r.host_id, r.check_id, r.value, p.pk, 0, r.c, r.m \
         FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::DOUBLE PRECISION[], \
         $5::TEXT[], $6::SMALLINT[], $7::TEXT[]) AS r(ts, host_id, check_id, value, plugin, c, m) \
         JOIN plugins p ON p.id = r.plugin",
    )
    .bind(stored.iter().map(|r| r.timestamp).collect::<Vec<_>>())
    .bind(stored.iter().map(|r| r.host_id).collect::<Vec<_>>())
    .bind(stored.iter().map(|r| r.check_id).collect::<Vec<_>>())
    .bind(stored.iter().map(|r| r.value).collect::<Vec<_>>())
    .bind(
        stored
            .iter()
            .map(|r| r.plugin_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        stored
            .iter()
            .map(|r| class(r.classification))
            .collect::<Vec<_>>(),
    )
    .bind(stored.iter().map(|r| r.message.clone()).collect::<Vec<_>>())
    .execute(&mut *c)
    .await
    .unwrap();
}

#[tokio::test]
async fn postgres_version_4_database_with_results_is_upgraded() {
    let pg = PgDb::create().await;
    let s = Store::open(&pg.url).await.unwrap();
    let (stored, series) = fill(&s).await;
    s.close().await;
    let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    postgres_results_table(&mut c, &stored).await;
    for sql in downgrade_statements(false) {
        sqlx::query(&sql).execute(&mut c).await.unwrap();
    }
    let columns: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'latest'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(columns, 8, "the version-4 latest table");
    c.close().await.unwrap();
    let s = Store::open(&pg.url).await.unwrap();
    check_upgraded(&s, stored, &series).await;
    s.close().await;
}
