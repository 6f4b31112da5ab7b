//! `prophasis-agent`: the lean daemon on every monitored host.
//!
//! A thin shell over the library: `setup` writes the configuration, key and certificate;
//! `run` (the default) serves the HTTPS API on a single-threaded runtime, which keeps the
//! agent small and is plenty for one server asking one question at a time.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use prophasis_agent::config::{self, AgentConfig};
use prophasis_agent::setup::{self, SetupOptions};

#[derive(Parser)]
#[command(
    name = "prophasis-agent",
    version,
    about = "The Prophasis monitoring agent"
)]
struct Cli {
    /// Configuration file (default: /etc/prophasis/agent.toml as root, else
    /// ~/.config/prophasis/agent.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the configuration, auth key and TLS certificate.
    Setup(SetupArgs),
    /// Serve the HTTPS API (the default).
    Run,
}

#[derive(Args)]
struct SetupArgs {
    /// Do not ask anything; use flags, then current values, then defaults.
    #[arg(long)]
    non_interactive: bool,
    /// Address and port to listen on [default: 0.0.0.0:4048].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Folder for installed plugins and temporary files.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// How plugin package signatures are treated [default: verify-if-present].
    #[arg(long, value_parser = config::SIGNATURE_POLICIES)]
    signature_policy: Option<String>,
    /// Folder of trusted OpenPGP public keys.
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
    /// Make a new auth key even if one exists (the server must be given the new key).
    #[arg(long)]
    rotate_key: bool,
    /// Use this PEM certificate instead of a self-signed one (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Make a new self-signed certificate even if one exists (the server's pin changes).
    #[arg(long, conflicts_with = "tls_cert")]
    new_certificate: bool,
    /// Seconds a plugin may run when its manifest names no timeout [default: 10].
    #[arg(long, value_name = "SECONDS")]
    default_timeout: Option<f64>,
    /// Cap on every plugin's timeout [default: 300].
    #[arg(long, value_name = "SECONDS")]
    max_timeout: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config_path = cli.config.unwrap_or_else(config::default_config_path);
    match cli.command {
        Some(Command::Setup(args)) => run_setup(config_path, args),
        Some(Command::Run) | None => run_agent(config_path),
    }
}

fn run_setup(config_path: PathBuf, a: SetupArgs) -> anyhow::Result<()> {
    let mut opts = SetupOptions {
        config_path: config_path.clone(),
        listen: a.listen,
        data_dir: a.data_dir,
        signature_policy: a.signature_policy,
        trusted_keys_dir: a.trusted_keys,
        rotate_key: a.rotate_key,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        new_certificate: a.new_certificate,
        default_timeout_secs: a.default_timeout,
        max_timeout_secs: a.max_timeout,
    };
    if !a.non_interactive {
        if std::io::stdin().is_terminal() {
            setup::prompt(
                &mut opts,
                &mut std::io::stdin().lock(),
                &mut std::io::stderr(),
            )
            .context("asking for the settings")?;
        } else {
            eprintln!("stdin is not a terminal: using flags, current values and defaults (pass --non-interactive to silence this)");
        }
    }
    let outcome = setup::setup(&opts)
        .with_context(|| format!("setting up the agent in {}", config_path.display()))?;
    println!("config: {}", config_path.display());
    println!("listen: {}", outcome.config.listen);
    println!("signature_policy: {}", outcome.config.signature_policy);
    if let Some(key) = &outcome.key {
        println!("key: {key}");
        eprintln!(
            "The key is shown only now: give it to the Prophasis server when adding this host."
        );
    }
    println!("fingerprint: {}", outcome.fingerprint);
    Ok(())
}

fn run_agent(config_path: PathBuf) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = AgentConfig::load(&config_path).with_context(|| {
        format!(
            "loading {} (run `prophasis-agent setup` first)",
            config_path.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = prophasis_agent::server::bind(&config).await?;
        let fingerprint = prophasis_agent::tls::fingerprint_of_file(&config.tls_cert)?;
        tracing::info!(
            listen = %listener.local_addr()?,
            %fingerprint,
            version = env!("CARGO_PKG_VERSION"),
            "prophasis-agent serving HTTPS"
        );
        prophasis_agent::server::serve_with_shutdown(config, listener, shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
