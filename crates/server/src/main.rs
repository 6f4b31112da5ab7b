//! `prophasis`: the server and admin CLI in one binary. A thin shell: each command parses
//! its flags and calls into the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use prophasis::config::Config;

mod cli;

#[derive(Parser)]
#[command(
    name = "prophasis",
    version,
    about = "Prophasis monitoring server and admin CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything on this machine in one command: SQLite in a data folder, the server, a
    /// local agent registered as host `localhost`, the reference plugins and a 30-second
    /// schedule. Prints the URL and, on first start, the admin credentials.
    Quickstart {
        /// Data folder (created if missing; reused when it exists).
        #[arg(long, default_value = "prophasis-data")]
        data: PathBuf,
        /// Address of the web UI and API.
        #[arg(long, default_value = "127.0.0.1:4047")]
        listen: SocketAddr,
    },
    /// Run the server with a configuration file (TOML; see `check-config`).
    Server {
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a server configuration file and print the settings in force.
    CheckConfig {
        /// The TOML file to check.
        path: PathBuf,
    },
    /// Create, list and revoke API tokens.
    Token {
        #[command(subcommand)]
        command: cli::token::TokenCommand,
    },
    /// Work with plugin packages.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Manage user accounts (add, change a password, list, delete).
    User {
        #[command(subcommand)]
        command: cli::user::UserCommand,
    },
    /// Write the configuration (hosts, host groups, plugins, checks, schedules, services,
    /// alerts, classifier overrides) as YAML, e.g. `prophasis export > config.yaml`.
    Export {
        /// Also write host auth keys and alert module secrets (keep the file private).
        #[arg(long)]
        include_secrets: bool,
        /// Also write each plugin's package into this folder, for `import` elsewhere.
        #[arg(long)]
        packages: Option<PathBuf>,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        db: cli::Db,
    },
    /// Apply a YAML configuration written by `export`: creates or updates entities matched
    /// by name (never deletes). Checks the whole file first and changes nothing on error.
    Import {
        /// The YAML file.
        file: PathBuf,
        /// Show the plan (+ create, ~ update, = unchanged) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// A folder of plugin packages (<id>-<version>.tar.gz) besides the file's own.
        #[arg(long)]
        packages: Vec<PathBuf>,
        #[command(flatten)]
        db: cli::Db,
    },
    /// Bring the database to this version's schema and print the version before and after.
    Migrate {
        #[command(flatten)]
        db: cli::Db,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate a plugin folder (manifest.json and the files it names) and build its
    /// .tar.gz package.
    Pack {
        /// The plugin folder.
        dir: PathBuf,
        /// Where to write the package (default: <id>-<version>.tar.gz here).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Verify a package's detached OpenPGP signature against a public key, with the
    /// agent's policy (SHA-256 or stronger, key neither expired nor revoked). Exit code 0
    /// when good, 1 when not.
    Verify {
        /// The package (.tar.gz).
        pkg: PathBuf,
        /// The detached signature (`gpg --detach-sign`, binary or armored).
        sig: PathBuf,
        /// The signer's public key (`gpg --export --armor KEYID`).
        key: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,prophasis=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Quickstart { data, listen } => {
            runtime()?.block_on(prophasis::quickstart::run(&data, listen))
        }
        Command::Server { config } => {
            let config = Config::load(&config)?;
            config.tls_server_config()?;
            runtime()?.block_on(server(config))
        }
        Command::CheckConfig { path } => {
            let c = Config::load(&path)?;
            c.tls_server_config()?;
            println!("{}: ok", path.display());
            println!("listen: {}", c.listen);
            println!("database: {}", c.database_url());
            println!("data_dir: {}", c.data_dir.display());
            match &c.tls {
                Some(t) => println!(
                    "tls: on (cert {}, key {}): the UI and API are served by HTTPS",
                    t.cert.display(),
                    t.key.display()
                ),
                None => println!("tls: off (plain HTTP; see docs/admin-guide.md to enable it)"),
            }
            Ok(())
        }
        Command::Token { command } => runtime()?.block_on(cli::token::run(command)),
        Command::Plugin {
            command: PluginCommand::Pack { dir, output },
        } => {
            let archive = prophasis_protocol::package::pack_dir(&dir)?;
            let manifest = prophasis_protocol::package::read_manifest(&archive)?;
            let out = output.unwrap_or_else(|| {
                PathBuf::from(format!("{}-{}.tar.gz", manifest.id, manifest.version))
            });
            std::fs::write(&out, &archive)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "{}: {} version {} ({} bytes)",
                out.display(),
                manifest.id,
                manifest.version,
                archive.len()
            );
            Ok(())
        }
        Command::Plugin {
            command: PluginCommand::Verify { pkg, sig, key },
        } => {
            if !cli::plugin::verify(&pkg, &sig, &key)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::User { command } => cli::user::run(command),
        Command::Export {
            include_secrets,
            packages,
            output,
            db,
        } => cli::config_io::export(db, include_secrets, packages, output),
        Command::Import {
            file,
            dry_run,
            packages,
            db,
        } => cli::config_io::import(db, &file, dry_run, packages),
        Command::Migrate { db } => cli::migrate::run(db),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn server(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let store = Arc::new(
        prophasis_store::Store::open(&config.database_url())
            .await
            .context("opening the database")?,
    );
    let credentials = prophasis::serve::ensure_admin(&store).await?;
    let running = prophasis::serve::start(&config, store, None).await?;
    println!("url: {}", running.url());
    if let Some((user, password)) = credentials {
        println!("user: {user}");
        println!("password: {password}");
    }
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}
