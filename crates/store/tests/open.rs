//! Opening databases: creation, reopening, and refusing databases that are not Prophasis's
//! or are newer than this binary, without modifying them. These need backend-specific
//! setup (a foreign SQLite file, a PostgreSQL database with other tables), so each backend
//! has its own test here.

mod common;

use common::*;
use prophasis_store::{Store, StoreError, SCHEMA_VERSION};
use sqlx::Connection;

fn files_of(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn sqlite_file_is_created_and_reopened_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/prophasis.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    let id = store.create_host(&host("kept")).await.unwrap();
    store.close().await;
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.get_host(id).await.unwrap().name, "kept");
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let mode: String = {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let id = store.create_host(&host("m")).await.unwrap();
    assert_eq!(store.get_host(id).await.unwrap().name, "m");
}

#[tokio::test]
async fn sqlite_foreign_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.db");
    {
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
        sqlx::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("INSERT INTO invoices (total) VALUES (12.5)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let files_before = files_of(dir.path());
    let e = Store::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(e, StoreError::NotProphasis { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("not a Prophasis database") && msg.contains("invoices"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "file modified");
    assert_eq!(
        files_of(dir.path()),
        files_before,
        "WAL or journal files appeared"
    );
}

#[tokio::test]
async fn sqlite_file_of_another_kind_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = b"these are my notes, not a database at all; please keep them. ".repeat(20);
    std::fs::write(&path, &text).unwrap();
    let e = Store::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(e, StoreError::NotProphasis { .. }), "{e}");
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), text);
}

#[tokio::test]
async fn sqlite_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    store.close().await;
    drop(store);
    {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE prophasis_meta SET value = '99' WHERE key = 'schema_version'")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let e = Store::open(path.to_str().unwrap()).await.unwrap_err();
    match &e {
        StoreError::TooNew {
            found, supported, ..
        } => assert_eq!((*found, *supported), (99, SCHEMA_VERSION)),
        other => panic!("expected TooNew, got {other}"),
    }
    assert!(e.to_string().contains("Upgrade Prophasis"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn postgres_database_is_migrated_once_and_reopened() {
    let pg = PgDb::create().await;
    let store = Store::open(&pg.url).await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    assert!(store.location().contains(&pg.name));
    let id = store.create_host(&host("kept")).await.unwrap();
    store.close().await;
    let store = Store::open(&pg.url).await.unwrap();
    assert_eq!(store.get_host(id).await.unwrap().name, "kept");
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.close().await;
}

async fn pg_tables(url: &str) -> Vec<String> {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
}

#[tokio::test]
async fn postgres_foreign_database_is_refused_untouched() {
    let pg = PgDb::create().await;
    {
        let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
        sqlx::query("CREATE TABLE invoices (id BIGINT PRIMARY KEY)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let e = Store::open(&pg.url).await.unwrap_err();
    assert!(matches!(e, StoreError::NotProphasis { .. }), "{e}");
    assert!(e.to_string().contains("invoices"), "{e}");
    assert_eq!(
        pg_tables(&pg.url).await,
        ["invoices"],
        "nothing was created"
    );
}

#[tokio::test]
async fn postgres_newer_schema_is_refused_untouched() {
    let pg = PgDb::create().await;
    let store = Store::open(&pg.url).await.unwrap();
    store.close().await;
    {
        let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
        sqlx::query("UPDATE prophasis_meta SET value = $1 WHERE key = 'schema_version'")
            .bind((SCHEMA_VERSION + 1).to_string())
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let tables = pg_tables(&pg.url).await;
    let e = Store::open(&pg.url).await.unwrap_err();
    assert!(
        matches!(e, StoreError::TooNew { found, .. } if found == SCHEMA_VERSION + 1),
        "{e}"
    );
    assert_eq!(pg_tables(&pg.url).await, tables);
    let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let v: String =
        sqlx::query_scalar("SELECT value FROM prophasis_meta WHERE key = 'schema_version'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(v, (SCHEMA_VERSION + 1).to_string());
}

#[tokio::test]
async fn storage_stats_are_reported() {
    for db in [TestDb::sqlite().await, TestDb::postgres().await] {
        let stats = db.store.storage_stats().await.unwrap();
        assert!(
            stats.total_bytes > 0,
            "{}: {stats:?}",
            db.store.backend_name()
        );
        assert!(
            stats.results_bytes.is_some(),
            "{}: {stats:?}",
            db.store.backend_name()
        );
    }
}

#[tokio::test]
async fn retention_task_applies_retention_in_the_background() {
    let store = std::sync::Arc::new(Store::open("sqlite::memory:").await.unwrap());
    let h = store.create_host(&host("h")).await.unwrap();
    store
        .put_plugin(&plugin("a.cpu"), &package())
        .await
        .unwrap();
    let now = prophasis_store::now_millis();
    let old = now - 400 * 24 * 3_600_000;
    store
        .insert_results(&[
            result(
                h,
                "a.cpu",
                old,
                Some(1.0),
                prophasis_model::Classification::Ok,
            ),
            result(
                h,
                "a.cpu",
                now,
                Some(1.0),
                prophasis_model::Classification::Ok,
            ),
        ])
        .await
        .unwrap();
    let task =
        prophasis_store::spawn_retention(store.clone(), std::time::Duration::from_millis(20));
    let mut left = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        left = store
            .results_range(h, "a.cpu", 0, i64::MAX)
            .await
            .unwrap()
            .len();
        if left == 1 {
            break;
        }
    }
    task.abort();
    assert_eq!(left, 1, "the 400-day-old result should have been removed");
}

#[tokio::test]
async fn sqlite_reopens_while_wal_files_are_left_over() {
    // A crashed server leaves `-wal` and `-shm` behind; the read-only look at the file
    // before opening must not stop the restart.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let first = Store::open(path.to_str().unwrap()).await.unwrap();
    let id = first.create_host(&host("survivor")).await.unwrap();
    assert!(dir.path().join("p.db-wal").exists());
    std::mem::forget(first); // never closed, like a killed process
    let second = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(second.get_host(id).await.unwrap().name, "survivor");
}
