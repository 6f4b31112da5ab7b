//! The admin commands of the `prophasis` binary that work on a database while no server
//! runs in this process: users, configuration export/import, migrations, and plugin
//! signature checks. Each parses nothing itself (clap does, in `main.rs`) and writes
//! through `prophasis::actions`, the one layer configuration changes go through.

pub mod config_io;
pub mod migrate;
pub mod plugin;
pub mod token;
pub mod user;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use prophasis::config::Config;
use prophasis_store::Store;

/// Which database a command works on.
#[derive(Args, Debug, Clone)]
pub struct Db {
    /// The server configuration file (TOML); its `database` (or `data_dir`) is used.
    #[arg(long, conflicts_with = "data")]
    pub config: Option<PathBuf>,
    /// A quickstart data folder; its `prophasis.db` is used. Without --config or --data,
    /// the quickstart's default folder `prophasis-data` is used.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl Db {
    /// The database URL, as `prophasis server` or `prophasis quickstart` would use it.
    pub fn url(&self) -> anyhow::Result<String> {
        let config = match (&self.config, &self.data) {
            (Some(path), _) => Config::load(path)?,
            (None, data) => Config {
                data_dir: data
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("prophasis-data")),
                ..Config::default()
            },
        };
        if config.database.is_empty() && !config.data_dir.exists() {
            anyhow::bail!(
                "the data folder {} does not exist: give --config FILE or --data DIR of an existing installation",
                config.data_dir.display()
            );
        }
        Ok(config.database_url())
    }

    /// Opens (and migrates, as the server would) the database.
    pub async fn open(&self) -> anyhow::Result<Arc<Store>> {
        let url = self.url()?;
        let store = Store::open(&url).await.context("opening the database")?;
        Ok(Arc::new(store))
    }
}

/// Runs an async command on a small runtime: these commands do a few queries.
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(f))
}
