//! `prophasis quickstart`: everything on one machine from one command — SQLite in a data
//! folder, the server, an agent on loopback registered as host `localhost`, the reference
//! plugins, a "Local resources" check and a 30-second schedule. Running it again reuses
//! the data folder.
//!
//! The agent runs in this process (the same code as `prophasis-agent run`), so a fresh
//! clone needs to build only this binary.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use prophasis_model::{Check, Host, Interval, Schedule};
use prophasis_store::{now_millis, Store};

use crate::config::Config;
use crate::plugins;

/// The reference plugins the "Local resources" check runs (Nagios-mode examples need the
/// Monitoring Plugins installed, so they are installed but not scheduled).
const LOCAL_PLUGINS: [&str; 5] = [
    "cpu_load",
    "memory_usage",
    "disk_usage",
    "heartbeat",
    "raid_md",
];
const HOST_NAME: &str = "localhost";
const CHECK_NAME: &str = "Local resources";
const SCHEDULE_NAME: &str = "Every 30 seconds";

pub async fn run(data: &Path, listen: SocketAddr) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let data = data.canonicalize()?;
    let config = Config {
        listen,
        data_dir: data.clone(),
        ..Config::default()
    };
    let store = Arc::new(
        Store::open(&config.database_url())
            .await
            .context("opening the database")?,
    );
    let credentials = crate::serve::ensure_admin(&store).await?;

    // The local agent.
    let agent_dir = data.join("agent");
    let agent_config_path = agent_dir.join("agent.toml");
    let host = store
        .list_hosts()
        .await?
        .into_iter()
        .find(|h| h.name == HOST_NAME);
    let mut options = prophasis_agent::setup::SetupOptions {
        config_path: agent_config_path.clone(),
        listen: Some("127.0.0.1:4048".into()),
        data_dir: Some(agent_dir.clone()),
        signature_policy: Some("verify-if-present".into()),
        // Without a stored host the key is unknown: make a new one.
        rotate_key: host.is_none(),
        ..Default::default()
    };
    if prophasis_agent::setup::existing(&agent_config_path)?.is_some() {
        options.listen = None;
    }
    let setup = prophasis_agent::setup::setup(&options).context("setting up the local agent")?;
    let agent_listener = match tokio::net::TcpListener::bind("127.0.0.1:4048").await {
        Ok(l) => l,
        // Port 4048 is taken (an agent is installed here already): use any free port.
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the local agent")?,
    };
    let agent_port = agent_listener.local_addr()?.port();
    let (agent_stop, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent_config = setup.config.clone();
    let agent = tokio::spawn(async move {
        let shutdown = async {
            let _ = agent_stopped.await;
        };
        if let Err(e) =
            prophasis_agent::server::serve_with_shutdown(agent_config, agent_listener, shutdown)
                .await
        {
            tracing::error!("the local agent stopped: {e}");
        }
    });

    let host_id = match host {
        Some(mut h) => {
            h.port = agent_port;
            h.tls_fingerprint = Some(setup.fingerprint.clone());
            if let Some(key) = &setup.key {
                h.auth_key = key.clone();
            }
            store.update_host(&h).await?;
            h.id
        }
        None => {
            let key = setup.key.clone().context("the agent setup made no key")?;
            store
                .create_host(&Host {
                    id: 0,
                    name: HOST_NAME.into(),
                    address: "127.0.0.1".into(),
                    port: agent_port,
                    description: "This machine, monitored by the agent quickstart runs".into(),
                    auth_key: key,
                    tls_fingerprint: Some(setup.fingerprint.clone()),
                    enabled: true,
                })
                .await?
        }
    };

    // Reference plugins, newer versions replacing older ones.
    let scratch = tempfile_dir(&data)?;
    let mut local_plugin_ids = Vec::new();
    for name in plugins::reference_plugin_names() {
        let dir = plugins::write_reference_plugin(name, &scratch)?;
        let archive = prophasis_protocol::package::pack_dir(&dir)
            .with_context(|| format!("packing reference plugin {name}"))?;
        let plugin = plugins::plugin_from_package(&archive)?;
        let stored = store.get_plugin(&plugin.id).await.ok();
        if stored.is_none_or(|p| p.version < plugin.version) {
            plugins::install_package(&store, archive, None).await?;
        }
        if LOCAL_PLUGINS.contains(&name) {
            local_plugin_ids.push(plugin.id);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let check_id = match store
        .list_checks()
        .await?
        .into_iter()
        .find(|c| c.name == CHECK_NAME)
    {
        Some(c) => c.id,
        None => {
            store
                .create_check(&Check {
                    id: 0,
                    name: CHECK_NAME.into(),
                    description: "CPU, memory, disk, RAID and heartbeat of this machine".into(),
                    hosts: vec![host_id],
                    host_groups: vec![],
                    plugins: local_plugin_ids,
                    plugin_args: Default::default(),
                })
                .await?
        }
    };
    if !store
        .list_schedules()
        .await?
        .iter()
        .any(|s| s.name == SCHEDULE_NAME)
    {
        let now = now_millis();
        store
            .create_schedule(&Schedule {
                id: 0,
                name: SCHEDULE_NAME.into(),
                description: "Runs the Local resources check twice a minute".into(),
                checks: vec![check_id],
                intervals: vec![Interval {
                    id: 0,
                    start: now - now % 30_000,
                    period_seconds: 30,
                }],
            })
            .await?;
    }

    let running = crate::serve::start(&config, store, None).await?;
    println!("url: http://{}/", running.addr);
    if let Some((user, password)) = credentials {
        println!("user: {user}");
        println!("password: {password}");
        println!(
            "(the password is shown only now; it is stored hashed in {})",
            data.display()
        );
    }
    println!(
        "Prophasis is running with data in {}. Press Ctrl-C to stop.",
        data.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("stopping…");
    running.stop().await;
    let _ = agent_stop.send(());
    let _ = agent.await;
    Ok(())
}

fn tempfile_dir(data: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = data.join(format!(".plugins-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
