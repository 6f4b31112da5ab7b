//! `prophasis migrate`: brings a database to this binary's schema as a step of its own,
//! so an upgrade can be done (and its outcome seen) before the new server starts. The
//! server migrates on start too; this makes the step explicit and reports the versions.

use anyhow::Context;
use prophasis_store::Store;

use super::Db;

pub fn run(db: Db) -> anyhow::Result<()> {
    let url = db.url()?;
    super::block_on(async {
        let before = Store::peek_schema_version(&url)
            .await
            .context("reading the database's schema version")?;
        let supported = Store::supported_schema_version(&url);
        match before {
            Some(v) => println!("schema version before: {v}"),
            None => println!("schema version before: none (new database)"),
        }
        let store = Store::open(&url).await.context("migrating the database")?;
        let after = store.schema_version().await?;
        println!("schema version after: {after}");
        if before == Some(after) {
            println!("{}: already up to date", store.location());
        } else {
            println!("{}: migrated", store.location());
        }
        debug_assert_eq!(after, supported);
        store.close().await;
        Ok(())
    })?
}
