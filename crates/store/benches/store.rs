//! Storage benchmark: ingest rate (batched, durable, rollups included) against a naive
//! one-result-per-transaction baseline, reads of a 30-day raw range and a 1-year rollup
//! range, and bytes on disk per stored result, on SQLite and PostgreSQL.
//!
//! `cargo bench -p prophasis-store` (bounded: a few minutes per backend). PostgreSQL comes
//! from `PROPHASIS_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! a database is created for the run and dropped after it.

use std::time::{Duration, Instant};

use prophasis_model::*;
use prophasis_store::{Series, Store};
use sqlx::Connection;

#[path = "common/mod.rs"]
mod common;
use common::*;

const HOSTS: i64 = 1_000;
const PLUGINS: usize = 10;
/// One batch is one minute of a site with 1,000 hosts × 10 plugins: every result is a
/// different series, the worst case for the latest table and the rollups.
const BATCHES: i64 = 70;
/// Untimed minutes of the same series stored before the distinct-series ingest is timed, so
/// each series has more than a page of history (as on a server that has run for a while):
/// from empty tables, every insert appends to few pages and the figure flatters.
const HISTORY_MINUTES: i64 = 100;

struct Distinct {
    per_batch: usize,
    per_s: f64,
    /// Median and slowest batch: the slowest one also ran the hourly compaction.
    batch_median: Duration,
    batch_max: Duration,
    per_cpu_s: f64,
    /// PostgreSQL only: per CPU-second of the server processes serving this database.
    per_server_cpu_s: Option<f64>,
}

/// CPU time of the PostgreSQL backends connected to database `name` (their command line
/// names it), so the server's share of an ingest can be counted on a shared machine.
fn server_cpu(name: Option<&str>) -> Option<Duration> {
    let name = name?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0f64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(name) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // Fields after the command (which is in parentheses): utime and stime are the
        // 12th and 13th.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let t: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        total += t / ticks;
    }
    Some(Duration::from_secs_f64(total))
}

struct Figures {
    backend: &'static str,
    distinct: Vec<Distinct>,
    dense_per_s: f64,
    naive_per_s: f64,
    naive_n: usize,
    read_30d: (Duration, Duration, usize),
    read_30d_cpu: Duration,
    read_30d_server_cpu: Option<Duration>,
    read_1y: (Duration, Duration, usize),
    results: i64,
    results_bytes: i64,
    total_bytes: i64,
}

fn timed_median(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[0])
}

async fn run(store: &Store, pg_database: Option<&str>) -> Figures {
    let plugin_ids: Vec<String> = (0..PLUGINS).map(|p| format!("bench.plugin{p}")).collect();
    for p in &plugin_ids {
        store
            .put_plugin(&plugin(p), &PluginPackage::default())
            .await
            .unwrap();
    }
    let mut hosts = Vec::new();
    for h in 0..HOSTS + 2 {
        let host = Host {
            id: 0,
            name: format!("host{h}"),
            address: format!("10.0.{}.{}", h / 250, h % 250),
            port: 4048,
            description: String::new(),
            auth_key: "k".into(),
            tls_fingerprint: None,
            enabled: true,
        };
        hosts.push(store.create_host(&host).await.unwrap());
    }
    let (reader, yearly) = (hosts[HOSTS as usize], hosts[HOSTS as usize + 1]);
    let now = prophasis_store::now_millis();
    let start = now - 40 * DAY;

    // Batched ingest, every result of a batch a different series: first as 10,000-result
    // batches (one minute of the whole site), then as the server's pipeline forms them
    // (it takes up to 2,000 results per batch; ~100–1,000 is typical), each minute split
    // into batches of 1,000 and then of 100 results.
    let series: Vec<(HostId, &String)> = hosts[..HOSTS as usize]
        .iter()
        .flat_map(|h| plugin_ids.iter().map(move |p| (*h, p)))
        .collect();
    let mut stored = 0i64;
    for b in 0..HISTORY_MINUTES {
        let ts = start + b * MINUTE;
        let minute: Vec<CheckResult> = series
            .iter()
            .enumerate()
            .map(|(i, (h, p))| result(*h, p, ts, i as i64 + b))
            .collect();
        store.insert_results(&minute).await.unwrap();
        stored += minute.len() as i64;
    }
    // Timed: 70 minutes each (the 100-result phase only 2), so the hourly compaction of the
    // recent tier runs inside the timing as often as it would in production.
    let mut distinct = Vec::new();
    for (minutes, per_batch) in [(BATCHES, 10_000usize), (BATCHES, 1_000), (2, 100)] {
        let first = stored / series.len() as i64;
        let mut n = 0i64;
        let mut spent = Duration::ZERO;
        let mut batches = Vec::new();
        let cpu = cpu_time();
        let server = server_cpu(pg_database);
        for b in first..first + minutes {
            let ts = start + b * MINUTE;
            let minute: Vec<CheckResult> = series
                .iter()
                .enumerate()
                .map(|(i, (h, p))| result(*h, p, ts, i as i64 + b))
                .collect();
            for batch in minute.chunks(per_batch) {
                let t = Instant::now();
                store.insert_results(batch).await.unwrap();
                batches.push(t.elapsed());
                spent += t.elapsed();
            }
            n += minute.len() as i64;
        }
        stored += n;
        batches.sort();
        distinct.push(Distinct {
            per_batch,
            per_s: n as f64 / spent.as_secs_f64(),
            batch_median: batches[batches.len() / 2],
            batch_max: batches[batches.len() - 1],
            per_cpu_s: n as f64 / (cpu_time() - cpu).as_secs_f64(),
            per_server_cpu_s: server
                .zip(server_cpu(pg_database))
                .map(|(before, after)| n as f64 / (after - before).as_secs_f64()),
        });
    }

    // Dense batches: 1,000 series with 10 consecutive minutes each per batch (an agent
    // catching up, or plugins that run more often than the batch interval).
    let dense_start = start + 2 * DAY;
    let mut dense = 0i64;
    let t = Instant::now();
    for b in 0..10 {
        let batch: Vec<CheckResult> = hosts[..100]
            .iter()
            .flat_map(|h| plugin_ids.iter().map(move |p| (h, p)))
            .flat_map(|(h, p)| (0..10).map(move |m| (h, p, m)))
            .map(|(h, p, m)| result(*h, p, dense_start + (b * 10 + m) * MINUTE, m))
            .collect();
        store.insert_results(&batch).await.unwrap();
        dense += batch.len() as i64;
    }
    let dense_per_s = dense as f64 / t.elapsed().as_secs_f64();
    stored += dense;

    // Baseline: the same API, one result per call, so one transaction per result.
    let t = Instant::now();
    let mut naive_n = 0;
    while naive_n < 2_000 && t.elapsed() < Duration::from_secs(4) {
        let r = result(
            hosts[naive_n % 100],
            &plugin_ids[0],
            start + DAY + naive_n as i64,
            naive_n as i64,
        );
        store
            .insert_results(std::slice::from_ref(&r))
            .await
            .unwrap();
        naive_n += 1;
    }
    let naive_per_s = naive_n as f64 / t.elapsed().as_secs_f64();
    stored += naive_n as i64;

    // 30 days of 1-minute results of the reader host, whose 10 plugins report together,
    // so its series is interleaved with nine others as it would be in production.
    let days = 30;
    let read_from = now - days * DAY;
    for d in 0..days {
        let batch: Vec<CheckResult> = (0..1440)
            .flat_map(|m| plugin_ids.iter().map(move |p| (m, p)))
            .map(|(m, p)| result(reader, p, read_from + d * DAY + m * MINUTE, m))
            .collect();
        store.insert_results(&batch).await.unwrap();
        stored += batch.len() as i64;
    }
    let mut samples = Vec::new();
    let mut rows = 0;
    let cpu = cpu_time();
    let server = server_cpu(pg_database);
    for _ in 0..15 {
        let t = Instant::now();
        let got = store
            .results_range(reader, &plugin_ids[3], read_from, now)
            .await
            .unwrap();
        samples.push(t.elapsed());
        rows = got.len();
    }
    let read_30d_cpu = (cpu_time() - cpu) / 15;
    let read_30d_server_cpu = server
        .zip(server_cpu(pg_database))
        .map(|(before, after)| (after - before) / 15);
    let (median, best) = timed_median(samples);
    let read_30d = (median, best, rows);

    // A year of one result per 10 minutes; the graph reads hourly rollups.
    let year_from = now - 365 * DAY;
    let per_year: Vec<CheckResult> = (0..365 * 144)
        .map(|i| result(yearly, &plugin_ids[0], year_from + i * 10 * MINUTE, i))
        .collect();
    for chunk in per_year.chunks(10_000) {
        store.insert_results(chunk).await.unwrap();
    }
    stored += per_year.len() as i64;
    let mut samples = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let got = store
            .series(yearly, &plugin_ids[0], year_from, now)
            .await
            .unwrap();
        samples.push(t.elapsed());
        rows = match got {
            Series::OneHour(points) => points.len(),
            other => panic!("a year should read hourly rollups, got {other:?}"),
        };
    }
    let (median, best) = timed_median(samples);
    let read_1y = (median, best, rows);

    let stats = store.storage_stats().await.unwrap();
    Figures {
        backend: store.backend_name(),
        distinct,
        dense_per_s,
        naive_per_s,
        naive_n,
        read_30d,
        read_30d_cpu,
        read_30d_server_cpu,
        read_1y,
        results: stored,
        results_bytes: stats.results_bytes.unwrap_or(0),
        total_bytes: stats.total_bytes,
    }
}

fn report(f: &Figures) {
    println!("## {}", f.backend);
    for d in &f.distinct {
        let server = d
            .per_server_cpu_s
            .map(|r| format!(", {r:.0} per CPU-second of the PostgreSQL backends"))
            .unwrap_or_default();
        println!(
            "ingest, {} results/batch, each a different series (latest + 5-min + hourly rollups, durable): {:.0} results/s, {:.0} per CPU-second of this process{server}; batch median {:.1} ms, slowest {:.1} ms",
            d.per_batch,
            d.per_s,
            d.per_cpu_s,
            d.batch_median.as_secs_f64() * 1e3,
            d.batch_max.as_secs_f64() * 1e3
        );
    }
    println!(
        "ingest, dense batches (1,000 series x 10 consecutive results): {:.0} results/s",
        f.dense_per_s
    );
    println!(
        "one result per insert_results call (one transaction each), {} results: {:.0} results/s; 1,000-result batches are {:.0}x faster",
        f.naive_n,
        f.naive_per_s,
        f.distinct[1].per_s / f.naive_per_s
    );
    let server = f
        .read_30d_server_cpu
        .map(|d| {
            format!(
                ", {:.2} ms CPU of the PostgreSQL backend",
                d.as_secs_f64() * 1e3
            )
        })
        .unwrap_or_default();
    println!(
        "read 30 days raw ({} rows): median {:.2} ms, best {:.2} ms, {:.2} ms CPU of this process{server}",
        f.read_30d.2,
        f.read_30d.0.as_secs_f64() * 1e3,
        f.read_30d.1.as_secs_f64() * 1e3,
        f.read_30d_cpu.as_secs_f64() * 1e3
    );
    println!(
        "read 1 year from hourly rollups ({} rows): median {:.2} ms, best {:.2} ms",
        f.read_1y.2,
        f.read_1y.0.as_secs_f64() * 1e3,
        f.read_1y.1.as_secs_f64() * 1e3
    );
    println!(
        "bytes per stored result: results table + index {:.1}, whole database {:.1} ({} results, {} bytes)",
        f.results_bytes as f64 / f.results as f64,
        f.total_bytes as f64 / f.results as f64,
        f.results,
        f.total_bytes
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run only
    // when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // PROPHASIS_BENCH_ONLY=sqlite|postgres runs one backend, for quicker iterations.
    let only = std::env::var("PROPHASIS_BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        if only != "postgres" {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let path = dir.path().join("bench.db");
            let store = Store::open(path.to_str().unwrap()).await.unwrap();
            let f = run(&store, None).await;
            report(&f);
            store.close().await;
        }
        if only == "sqlite" {
            return;
        }

        let admin_url = std::env::var("PROPHASIS_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {admin_url} ({e}): start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
                )
            });
        let name = format!("prophasis_bench_{}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        let store = Store::open(&url).await.unwrap();
        let f = run(&store, Some(&name)).await;
        report(&f);
        store.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    });
}
