//! Test databases: a fresh SQLite file in a temporary folder, or a fresh PostgreSQL
//! database created on the server named by `PROPHASIS_TEST_POSTGRES` and dropped when the
//! test ends, so tests can run in parallel without seeing each other's data.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use prophasis_model::*;
use prophasis_store::Store;
use sqlx::Connection;

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("PROPHASIS_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string())
}

/// The URL of another database on the same server.
fn url_for(db: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let cut = base
        .rfind('/')
        .filter(|i| *i > "postgres://".len())
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..cut])
}

async fn admin() -> sqlx::PgConnection {
    let url = admin_url();
    match sqlx::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url} ({e}). The storage tests run against both \
             backends and need it: start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or point PROPHASIS_TEST_POSTGRES at a server where user may create databases."
        ),
    }
}

/// A PostgreSQL database that exists for one test.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "prophasis_t_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = admin().await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        PgDb {
            url: url_for(&name),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread
        // with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = admin().await;
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            });
        })
        .join();
    }
}

/// A store on a fresh database, with whatever keeps that database alive.
pub struct TestDb {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDb>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prophasis.db");
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("open SQLite store");
        TestDb {
            store,
            _dir: Some(dir),
            _pg: None,
        }
    }

    pub async fn postgres() -> TestDb {
        let pg = PgDb::create().await;
        let store = Store::open(&pg.url).await.expect("open PostgreSQL store");
        TestDb {
            store,
            _dir: None,
            _pg: Some(pg),
        }
    }
}

/// Runs each named case (an `async fn(&Store)`) once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$case(&db.store).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let db = $crate::common::TestDb::postgres().await;
                    super::$case(&db.store).await;
                }
            }
        )*
    };
}

// --- Fixtures -------------------------------------------------------------------------

pub fn host(name: &str) -> Host {
    Host {
        id: 0,
        name: name.into(),
        address: format!("{name}.example.net"),
        port: 4048,
        description: format!("the {name} machine"),
        auth_key: "k".repeat(64),
        tls_fingerprint: None,
        enabled: true,
    }
}

pub fn plugin(id: &str) -> Plugin {
    Plugin {
        id: id.into(),
        name: format!("Plugin {id}"),
        description: String::new(),
        version: 1.5,
        n_historical: 10,
        classifier: "return \"ok\"".into(),
        view: "value_graph".into(),
        view_source: None,
        manifest: serde_json::json!({"id": id, "version": 1.5}),
    }
}

pub fn package() -> PluginPackage {
    PluginPackage {
        archive: vec![0x1f, 0x8b, 0, 1, 2, 255],
        signature: Some(vec![0x89, 0, 7]),
    }
}

pub fn check(name: &str, hosts: Vec<HostId>, plugins: &[&str]) -> Check {
    Check {
        id: 0,
        name: name.into(),
        description: String::new(),
        hosts,
        host_groups: vec![],
        plugins: plugins.iter().map(|p| p.to_string()).collect(),
        plugin_args: Default::default(),
    }
}

pub fn alert(name: &str) -> Alert {
    Alert {
        id: 0,
        name: name.into(),
        from_states: vec![Health::Ok],
        to_states: vec![Health::Critical, Health::Major],
        scope: AlertScope {
            all_hosts: true,
            ..Default::default()
        },
        plugins: vec![],
        checks: vec![],
        module: "email".into(),
        options: serde_json::json!({"to": "ops@example.net"}),
        enabled: true,
    }
}

pub fn result(
    host: HostId,
    plugin: &str,
    ts: Millis,
    value: Option<f64>,
    c: Classification,
) -> CheckResult {
    CheckResult {
        host_id: host,
        plugin_id: plugin.into(),
        check_id: None,
        timestamp: ts,
        value,
        message: format!("m{ts}"),
        result_type: ResultType::Plugin,
        classification: c,
    }
}

// --- Rollups recomputed from raw results ----------------------------------------------

/// A small deterministic generator (xorshift64*), so a failing random case repeats.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What `rollups_range` must return for one series, computed from its raw results (one
/// per timestamp): NaN and infinities count as results without a value.
pub fn rollups_from_raw(
    results: &[CheckResult],
    host: HostId,
    plugin: &str,
    resolution: Resolution,
) -> Vec<Rollup> {
    let mut buckets: std::collections::BTreeMap<Millis, Vec<&CheckResult>> = Default::default();
    for r in results
        .iter()
        .filter(|r| r.host_id == host && r.plugin_id == plugin)
    {
        buckets
            .entry(resolution.bucket_start(r.timestamp))
            .or_default()
            .push(r);
    }
    buckets
        .into_iter()
        .map(|(start, rs)| {
            let values: Vec<f64> = rs
                .iter()
                .filter_map(|r| r.value.filter(|v| v.is_finite()))
                .collect();
            let sum: f64 = values.iter().sum();
            Rollup {
                host_id: host,
                plugin_id: plugin.to_string(),
                resolution,
                bucket_start: start,
                min: values.iter().copied().reduce(f64::min),
                max: values.iter().copied().reduce(f64::max),
                avg: (!values.is_empty()).then(|| sum / values.len() as f64),
                count: rs.len() as i64,
                worst: rs.iter().map(|r| r.classification).max().unwrap(),
            }
        })
        .collect()
}

/// Checks every series' rollups at both resolutions, the raw results and the latest
/// result against `stored` (everything inserted so far, one result per timestamp).
pub async fn assert_matches_raw(s: &Store, stored: &[CheckResult], series: &[(HostId, &str)]) {
    for &(h, p) in series {
        for resolution in Resolution::ALL {
            let got = s
                .rollups_range(h, p, resolution, i64::MIN / 2, i64::MAX / 2)
                .await
                .unwrap();
            let want = rollups_from_raw(stored, h, p, resolution);
            assert_eq!(got, want, "host {h} plugin {p} {resolution:?}");
        }
        let mut raw: Vec<CheckResult> = stored
            .iter()
            .filter(|r| r.host_id == h && r.plugin_id == p)
            .cloned()
            .map(|mut r| {
                r.value = r.value.filter(|v| v.is_finite());
                r
            })
            .collect();
        raw.sort_by_key(|r| r.timestamp);
        assert_eq!(
            s.results_range(h, p, i64::MIN / 2, i64::MAX / 2)
                .await
                .unwrap(),
            raw
        );
        assert_eq!(
            s.latest_result(h, p).await.unwrap().as_ref(),
            raw.last(),
            "latest of host {h} plugin {p}"
        );
    }
}

/// [`Store::latest_classifications`] as (host, plugin, time, classification), for comparing
/// against what a test stored.
pub async fn latest_classification_rows(
    s: &prophasis_store::Store,
) -> Vec<(HostId, String, Millis, Classification)> {
    s.latest_classifications()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.host_id, l.plugin_id, l.timestamp, l.classification))
        .collect()
}
