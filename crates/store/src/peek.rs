//! Reading a database's schema version *without* migrating it, for `prophasis migrate`,
//! which must say which version a database had before it is brought up to date (opening a
//! [`Store`] migrates at once). Read-only: nothing is created or written.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::{ConnectOptions, Connection};

use crate::error::{Result, StoreError};
use crate::{pg, sqlite, Store};

impl Store {
    /// The newest schema version this binary knows for the backend `url` names.
    pub fn supported_schema_version(url: &str) -> i64 {
        let migrations = if is_postgres(url) {
            pg::MIGRATIONS
        } else {
            sqlite::MIGRATIONS
        };
        migrations.last().map_or(0, |m| m.0)
    }

    /// The schema version of the database at `url` as it is now: `None` when it does not
    /// exist yet or is empty. A database that is not Prophasis's is refused as
    /// [`Store::open`] would refuse it.
    pub async fn peek_schema_version(url: &str) -> Result<Option<i64>> {
        if is_postgres(url) {
            let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
            let location = format!(
                "PostgreSQL database {:?} on {}:{}",
                options.get_database().unwrap_or(options.get_username()),
                options.get_host(),
                options.get_port()
            );
            let mut conn = sqlx::postgres::PgConnection::connect_with(&options).await?;
            let found = pg::ops::inspect(&mut conn, &location).await;
            let _ = conn.close().await;
            return found;
        }
        let path = match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            _ if url == "sqlite::memory:" || url == ":memory:" => return Ok(None),
            Some(p) => PathBuf::from(p.split('?').next().unwrap_or(p)),
            None if url.contains("://") || url.is_empty() => {
                return Err(StoreError::BadUrl(url.to_string()))
            }
            None => PathBuf::from(url),
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > 0 => {}
            _ => return Ok(None),
        }
        let location = format!("SQLite database {}", path.display());
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true)
            .connect()
            .await?;
        let found = sqlite::ops::inspect(&mut conn, &location).await;
        let _ = conn.close().await;
        found
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
