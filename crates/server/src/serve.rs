//! Running the whole server: the core, the web listener and the background tasks, with an
//! orderly stop. Used by `prophasis server`, `prophasis quickstart` and end-to-end tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prophasis_model::{Role, User};
use prophasis_store::{Retention, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::app::{Core, Tasks};
use crate::config::Config;
use crate::health::{Entity, Transition};
use crate::web::{self, AppState};

pub struct Running {
    pub core: Core,
    /// Where the web UI and API listen (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// `https` when served over TLS (`[tls]`), else `http`.
    pub scheme: &'static str,
    tasks: Tasks,
    web: JoinHandle<()>,
    web_stop: oneshot::Sender<()>,
    retention: JoinHandle<()>,
    /// Evaluates transitions and delivers notifications; dropped (stopped) on `stop`.
    alerting: prophasis_alerting::Alerting,
}

/// Creates the first admin when there are no users; returns the name and the generated
/// password, which exist nowhere else and must be shown now.
pub async fn ensure_admin(store: &Store) -> anyhow::Result<Option<(String, String)>> {
    if !store
        .list_users()
        .await
        .context("listing users")?
        .is_empty()
    {
        return Ok(None);
    }
    let password = random_password();
    let hash = web::auth::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?;
    store
        .create_user(&User {
            id: 0,
            name: "admin".into(),
            role: Role::Admin,
            password_hash: hash,
        })
        .await
        .context("creating the admin user")?;
    Ok(Some(("admin".into(), password)))
}

fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Starts everything on an open store. Every health transition is logged and handed to
/// the alerting engine; `transitions`, when given, receives a copy too (tests use it).
pub async fn start(
    config: &Config,
    store: Arc<Store>,
    transitions: Option<mpsc::UnboundedSender<Transition>>,
) -> anyhow::Result<Running> {
    store.set_retention(Retention {
        raw_days: config.retention.raw_days,
        five_minute_days: config.retention.five_minute_days,
        hourly_days: config.retention.hourly_days,
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<Transition>();
    let (to_alerting, alerting_rx) = mpsc::unbounded_channel::<Transition>();
    tokio::spawn(async move {
        while let Some(t) = rx.recv().await {
            let what = match t.entity {
                Entity::Host(id) => format!("host {id}"),
                Entity::Service(id) => format!("service {id}"),
            };
            tracing::info!("{what}: {} -> {}", t.old, t.new);
            let _ = to_alerting.send(t.clone());
            if let Some(next) = &transitions {
                let _ = next.send(t);
            }
        }
    });
    // Before anything starts: a bad certificate is a configuration error, said plainly.
    let tls = config.tls_server_config()?;
    let (core, tasks) = Core::start(store.clone(), config, tx)
        .await
        .context("starting the server core")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}: is another Prophasis running? choose another address with --listen", config.listen))?;
    let addr = listener.local_addr()?;
    // Transitions queue in the channel until the engine starts; links need the address.
    let alerting =
        prophasis_alerting::Alerting::start(store.clone(), alerting_rx, config.base_url(addr))
            .await;
    let services = core
        .health
        .read()
        .expect("health lock")
        .snapshot()
        .services
        .clone();
    alerting.seed_service_health(services);
    let (web_stop, stopped) = oneshot::channel::<()>();
    let app = web::router(AppState::with_secure_cookies(core.clone(), tls.is_some()));
    let scheme = config.scheme();
    tracing::info!("web UI and API at {scheme}://{addr}/");
    let web = match tls {
        Some(tls) => {
            let app = app.layer(axum::middleware::map_response(crate::serve_tls::hsts));
            tokio::spawn(crate::serve_tls::serve(listener, tls, app, async {
                let _ = stopped.await;
            }))
        }
        None => tokio::spawn(async move {
            // The peer address lets the UI throttle failed logins per client.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::error!("web server failed: {e}");
            }
        }),
    };
    let retention = prophasis_store::spawn_retention(store, Duration::from_secs(3600));
    Ok(Running {
        core,
        addr,
        scheme,
        tasks,
        web,
        web_stop,
        retention,
        alerting,
    })
}

impl Running {
    /// The URL the listener answers on, e.g. `https://127.0.0.1:4047/`.
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme, self.addr)
    }

    /// Stops taking requests and scheduling, lets running checks finish (up to 10 s) and
    /// writes every queued result.
    pub async fn stop(self) {
        let _ = self.web_stop.send(());
        let _ = self.web.await;
        self.retention.abort();
        self.tasks
            .shutdown(&self.core, Duration::from_secs(10))
            .await;
        // After the core: the last transitions are evaluated and written to the outbox.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(self.alerting);
        self.core.store.close().await;
    }
}
