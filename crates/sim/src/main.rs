//! `prophasis-sim`: the agent simulator as a process, for load tests that run the server
//! separately (so each side's CPU and open files are its own). For load only; end-to-end
//! tests use the real `prophasis-agent`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use prophasis_protocol::api::{ErrorCode, InstalledPlugin};
use prophasis_sim::{
    Behaviour, ErrorRule, Latency, ListenerMode, Scenario, SimConfig, Simulator, Spread,
};

#[derive(Parser, Debug)]
#[command(
    name = "prophasis-sim",
    version,
    about = "Simulates many Prophasis agents on loopback for load tests"
)]
struct Args {
    /// Number of virtual agents.
    #[arg(long, default_value_t = 1)]
    agents: usize,
    /// Address of the first agent (each next agent gets the next loopback address).
    #[arg(long, default_value = "127.0.1.1")]
    base_addr: Ipv4Addr,
    /// Port of every agent (or the first port with `--spread ports`); 0 picks free ones.
    #[arg(long, default_value_t = prophasis_protocol::api::DEFAULT_PORT)]
    port: u16,
    /// `addresses` (one loopback address per agent) or `ports` (one port per agent).
    #[arg(long, value_parser = parse_spread, default_value = "addresses")]
    spread: Spread,
    /// `auto`, `per-agent` (a restart refuses connections) or `shared` (one socket).
    #[arg(long, value_parser = parse_mode, default_value = "auto")]
    listeners: ListenerMode,
    /// One key for all agents; a random key per agent when not given.
    #[arg(long)]
    key: Option<String>,
    /// Run latency in milliseconds: `5` or `1..20`.
    #[arg(long, value_parser = parse_latency)]
    latency_ms: Option<Latency>,
    /// Fraction of runs that fail with `--error-code`.
    #[arg(long)]
    error_rate: Option<f64>,
    /// The code of injected errors.
    #[arg(long, default_value = "plugin_failed")]
    error_code: String,
    /// Fraction of runs that never answer.
    #[arg(long)]
    hang_rate: Option<f64>,
    /// Answer runs of plugins that were never installed (skips plugin distribution).
    #[arg(long)]
    run_uninstalled: bool,
    /// JSON scenario (see the `behaviour` module); the flags above override its default.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Plugins installed on every agent from the start, as `id:version`.
    #[arg(long = "preinstall", value_parser = parse_plugin)]
    preinstalled: Vec<InstalledPlugin>,
    /// Write the agent list (addr, key, fingerprint) as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one line per agent even when there are many.
    #[arg(long)]
    list: bool,
    /// Print a counter summary this often (seconds); 0 for never.
    #[arg(long, default_value_t = 10)]
    stats_every: u64,
    /// Tokio worker threads; default one per core.
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_spread(s: &str) -> Result<Spread, String> {
    match s {
        "addresses" => Ok(Spread::Addresses),
        "ports" => Ok(Spread::Ports),
        _ => Err("expected `addresses` or `ports`".into()),
    }
}

fn parse_mode(s: &str) -> Result<ListenerMode, String> {
    match s {
        "auto" => Ok(ListenerMode::Auto),
        "per-agent" => Ok(ListenerMode::PerAgent),
        "shared" => Ok(ListenerMode::Shared),
        _ => Err("expected `auto`, `per-agent` or `shared`".into()),
    }
}

fn parse_latency(s: &str) -> Result<Latency, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{t}` is not a number of milliseconds"))
    };
    match s.split_once("..") {
        Some((a, b)) => Ok(Latency::RangeMs(num(a)?, num(b)?)),
        None => Ok(Latency::FixedMs(num(s)?)),
    }
}

fn parse_plugin(s: &str) -> Result<InstalledPlugin, String> {
    let (id, version) = s.split_once(':').unwrap_or((s, "1"));
    let version: f64 = version
        .parse()
        .map_err(|_| format!("`{version}` is not a version number"))?;
    Ok(InstalledPlugin {
        id: id.to_string(),
        name: id.to_string(),
        version,
    })
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("prophasis-sim");
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    rt.build()
        .context("cannot start the runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Scenario::from_json(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Scenario::default(),
    };
    let error_code: ErrorCode = serde_json::from_value(serde_json::json!(args.error_code))
        .with_context(|| format!("unknown error code `{}`", args.error_code))?;
    let apply = |b: &mut Behaviour| {
        if let Some(l) = args.latency_ms {
            b.latency = l;
        }
        if let Some(rate) = args.error_rate {
            b.error = Some(ErrorRule {
                code: error_code,
                rate,
            });
        }
        if let Some(h) = args.hang_rate {
            b.hang_rate = h;
        }
        if args.run_uninstalled {
            b.run_uninstalled = true;
        }
    };
    apply(&mut scenario.default);
    for (_, b) in &mut scenario.overrides {
        apply(b);
    }
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    let sim = Simulator::start(SimConfig {
        agents: args.agents,
        base_addr: args.base_addr,
        port: args.port,
        spread: args.spread,
        listeners: args.listeners,
        key: args.key.clone(),
        scenario,
        preinstalled: args.preinstalled.clone(),
    })
    .await?;

    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&sim.agents_json())?;
        std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    }
    println!("fingerprint: {}", sim.fingerprint());
    println!(
        "agents: {} ({:?} listeners), first {}, last {}",
        sim.agents().len(),
        sim.listener_mode(),
        sim.agents()[0].addr,
        sim.agents()[sim.agents().len() - 1].addr
    );
    if args.list || sim.agents().len() <= 20 {
        for a in sim.agents() {
            println!("agent {} {} key {}", a.index, a.addr, a.key);
        }
    }
    if let Some(out) = &args.out {
        println!("agent list: {}", out.display());
    }

    let every = Duration::from_secs(args.stats_every);
    let mut tick = tokio::time::interval(if every.is_zero() {
        Duration::from_secs(3600)
    } else {
        every
    });
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                if !every.is_zero() {
                    println!("stats: {}", serde_json::to_string(&sim.total_stats())?);
                }
            }
        }
    }
    println!("final: {}", serde_json::to_string(&sim.total_stats())?);
    sim.shutdown().await;
    Ok(())
}
