//! Benchmark of the web UI's server time, in-process through the real router (`oneshot`,
//! no network), on SQLite:
//! 1. a host page plus the chart data of all its panels, with 30 days of 1-minute results
//!    for 10 plugins (432,000 results), for the 30-day range — target < 100 ms;
//! 2. the host health list with 10,000 hosts — target < 200 ms.
//!
//! Run: `cargo bench -p prophasis --bench ui`
//! Environment: `BENCH_RUNS` (timed repetitions, default 20), `BENCH_HOSTS` (default
//! 10000), `BENCH_WIDTH` (chart width in pixels, default 1200).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use prophasis::config::Config;
use prophasis::web::{router, AppState};
use prophasis_model::{
    Check, CheckResult, Classification, Host, Plugin, PluginPackage, ResultType, Role, User,
};
use prophasis_store::{now_millis, Store};
use tower::ServiceExt;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn host(i: usize) -> Host {
    Host {
        id: 0,
        name: format!("host-{i:05}"),
        address: format!("10.0.{}.{}", i / 250, i % 250),
        port: 4048,
        description: String::new(),
        auth_key: "k".repeat(64),
        tls_fingerprint: None,
        enabled: true,
    }
}

async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

async fn login(app: &axum::Router) -> String {
    let (status, headers, _) = send(
        app,
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("name=bench&password=bench-pw"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn get(app: &axum::Router, cookie: &str, path: &str) -> Vec<u8> {
    let (status, _, body) = send(
        app,
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

fn summary(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.95), *times.last().unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let runs: usize = env("BENCH_RUNS", 20);
    let n_hosts: usize = env("BENCH_HOSTS", 10_000);
    let width: usize = env("BENCH_WIDTH", 1200);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(&format!("sqlite://{}", dir.path().join("ui.db").display()))
            .await
            .unwrap(),
    );
    store
        .create_user(&User {
            id: 0,
            name: "bench".into(),
            role: Role::Viewer,
            password_hash: prophasis::web::auth::hash_password("bench-pw").unwrap(),
        })
        .await
        .unwrap();

    // --- 1. One host, 10 plugins, 30 days of 1-minute results ---------------------------
    let h = store.create_host(&host(0)).await.unwrap();
    let plugins: Vec<String> = (0..10).map(|i| format!("org.bench.p{i}")).collect();
    for (i, id) in plugins.iter().enumerate() {
        store
            .put_plugin(
                &Plugin {
                    id: id.clone(),
                    name: format!("Bench plugin {i}"),
                    description: String::new(),
                    version: 1.0,
                    n_historical: 1,
                    classifier: "return \"ok\"".into(),
                    view: if i % 2 == 0 {
                        "value_graph"
                    } else {
                        "percent_graph"
                    }
                    .into(),
                    view_source: None,
                    manifest: serde_json::json!({}),
                },
                &PluginPackage::default(),
            )
            .await
            .unwrap();
    }
    store
        .create_check(&Check {
            id: 0,
            name: "bench".into(),
            hosts: vec![h],
            plugins: plugins.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let now = now_millis();
    let minute = 60_000;
    let n = 30 * 24 * 60;
    let start = now - n * minute;
    let loading = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2_000) {
        let mut batch = Vec::with_capacity(chunk.len() * plugins.len());
        for &i in chunk {
            for (k, p) in plugins.iter().enumerate() {
                let v = ((i as f64 / 97.0 + k as f64).sin() + 1.0) * 45.0;
                batch.push(CheckResult {
                    host_id: h,
                    plugin_id: p.clone(),
                    check_id: None,
                    timestamp: start + i * minute,
                    value: Some(v),
                    message: format!("{v:.1}"),
                    result_type: ResultType::Plugin,
                    classification: if v > 85.0 {
                        Classification::Major
                    } else {
                        Classification::Ok
                    },
                });
            }
        }
        store.insert_results(&batch).await.unwrap();
    }
    eprintln!(
        "loaded {} results in {:.1} s",
        n * plugins.len() as i64,
        loading.elapsed().as_secs_f64()
    );

    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (core, _tasks) = prophasis::app::Core::start(store.clone(), &Config::default(), tx)
        .await
        .unwrap();
    let app = router(AppState::new(core.clone()));
    let cookie = login(&app).await;

    let page = format!("/hosts/{h}?range=30d");
    let mut page_times = Vec::new();
    let mut total_times = Vec::new();
    let mut points = 0;
    for r in 0..runs + 2 {
        let t0 = Instant::now();
        get(&app, &cookie, &page).await;
        let page_done = t0.elapsed();
        for p in &plugins {
            let body = get(
                &app,
                &cookie,
                &format!("/ui/api/hosts/{h}/series?plugin={p}&range=30d&width={width}"),
            )
            .await;
            if r == 0 {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                points += v["t"].as_array().unwrap().len();
                assert!(v["t"].as_array().unwrap().len() <= width);
            }
        }
        if r >= 2 {
            page_times.push(page_done);
            total_times.push(t0.elapsed());
        }
    }
    let (p50, p95, max) = summary(page_times);
    println!(
        "host page alone (30 d, 10 plugins): median {} p95 {} max {}",
        ms(p50),
        ms(p95),
        ms(max)
    );
    let (p50, p95, max) = summary(total_times);
    println!(
        "host page + chart data of its 10 panels (30 d at {width} px, {points} points sent in all): median {} p95 {} max {} (target < 100 ms)",
        ms(p50),
        ms(p95),
        ms(max)
    );

    // Baseline in the same run: what the chart data would cost without rollups and
    // reduction — every raw result of the 30 days, serialized as JSON.
    let mut raw_times = Vec::new();
    let mut raw_bytes = 0;
    for r in 0..runs.min(5) + 1 {
        let t0 = Instant::now();
        let mut bytes = 0;
        for p in &plugins {
            let rows = store.results_range(h, p, start, now).await.unwrap();
            bytes += serde_json::to_vec(&rows).unwrap().len();
        }
        if r >= 1 {
            raw_times.push(t0.elapsed());
        }
        raw_bytes = bytes;
    }
    let (raw_p50, _, _) = summary(raw_times);
    println!(
        "baseline: the 10 series as raw results ({} rows, {} KiB of JSON): median {} — ratio {:.1}x",
        n * plugins.len() as i64,
        raw_bytes / 1024,
        ms(raw_p50),
        raw_p50.as_secs_f64() / p50.as_secs_f64()
    );

    // --- 2. The host health list with 10,000 hosts -------------------------------------
    let loading = Instant::now();
    for i in 1..n_hosts {
        store.create_host(&host(i)).await.unwrap();
    }
    core.reload().await.unwrap();
    eprintln!(
        "created {n_hosts} hosts in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut size = 0;
    for r in 0..runs + 2 {
        let t0 = Instant::now();
        let body = get(&app, &cookie, "/hosts").await;
        if r >= 2 {
            times.push(t0.elapsed());
        }
        size = body.len();
    }
    let (p50, p95, max) = summary(times);
    println!(
        "host health list, {n_hosts} hosts ({} KiB of HTML): median {} p95 {} max {} (target < 200 ms)",
        size / 1024,
        ms(p50),
        ms(p95),
        ms(max)
    );
}
