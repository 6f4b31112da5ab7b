//! Classification throughput and limit enforcement, for BENCHMARKS.md.
//!
//! `cargo bench -p prophasis-classifier` (about a minute). Measures, for each shipped
//! classifier on n = 5 results with the instruction limit on:
//! - reuse: one engine, compiled function cached (what the server does);
//! - no reuse: a new sandboxed engine and a compile per call (what the original did);
//!
//! and how long it takes to stop an endless loop, a memory bomb and a backtracking pattern.

use std::hint::black_box;
use std::time::{Duration, Instant};

use prophasis_classifier::{Engine, EngineConfig, NoHistory, Sample};
use prophasis_model::{Classification, ResultType};

const PLUGINS: [&str; 6] = [
    "cpu_load",
    "memory_usage",
    "heartbeat",
    "raid_md",
    "disk_usage",
    "nagios_disk",
];

fn shipped(name: &str) -> String {
    let path = format!(
        "{}/../../plugins/{name}/classifier.lua",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Five realistic results for the plugin, oldest first.
fn inputs(name: &str) -> Vec<Sample> {
    let (values, message): (&[f64], &str) = match name {
        "cpu_load" => (&[0.4, 0.6, 1.7, 1.8, 2.1], "load 2.10 1.50 0.90"),
        "memory_usage" => (&[61.0, 62.5, 63.0, 62.0, 64.0], "64% used"),
        "heartbeat" => (&[1.0; 5], ""),
        "raid_md" => (
            &[0.0, 0.0, 0.0, 1.0, 1.0],
            "md0 degraded [2/1] [U_], recovery 41.3%",
        ),
        "disk_usage" => (&[70.0, 70.2, 70.3, 70.5, 70.6], "/ 70.6% used"),
        "nagios_disk" => (
            &[1200.0, 1210.0, 1220.0, 1230.0, 1240.0],
            "WARNING: DISK WARNING - free space: / 900 MiB (15% inode=90%);",
        ),
        _ => unreachable!(),
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Sample {
            value: Some(*v),
            message: message.to_string(),
            result_type: ResultType::Plugin,
            timestamp: 1_700_000_000_000 + i as i64 * 60_000,
        })
        .collect()
}

/// CPU time this thread has run, from /proc (ns precision): other builds share this
/// machine's two cores, so wall-clock rates understate what one core does.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Calls `f` repeatedly for about `budget`; returns calls per CPU second of this thread
/// (calls per wall-clock second where /proc is unavailable) and calls per wall second.
fn rate(budget: Duration, mut f: impl FnMut()) -> (f64, f64) {
    // Warm up.
    for _ in 0..100 {
        f();
    }
    let cpu0 = thread_cpu();
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < budget {
        for _ in 0..64 {
            f();
        }
        calls += 64;
    }
    let wall = calls as f64 / started.elapsed().as_secs_f64();
    let cpu = match (cpu0, thread_cpu()) {
        (Some(a), Some(b)) if b > a => calls as f64 / (b - a).as_secs_f64(),
        _ => wall,
    };
    (cpu, wall)
}

fn main() {
    // `cargo bench` passes --bench; anything else (e.g. `cargo test --benches`) runs a smoke pass.
    let quick = !std::env::args().any(|a| a == "--bench");
    let budget = if quick {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(3)
    };
    let cfg = EngineConfig::default();
    println!(
        "limits: {} instructions, {} MiB, {} ms wall clock; n = 5",
        cfg.instructions,
        cfg.memory_bytes >> 20,
        cfg.wall_clock.as_millis()
    );
    println!("rates are per CPU second of the benchmark thread (wall-clock rate in brackets)");
    println!(
        "| classifier | reuse: calls/s | reuse: µs/call | new state + compile: calls/s | µs/call | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    let mut worst_reuse = f64::MAX;
    let mut sum_reuse = 0.0;
    let mut sum_fresh = 0.0;
    for name in PLUGINS {
        let code = shipped(name);
        let inputs = inputs(name);
        let mut engine = Engine::new(cfg.clone()).unwrap();
        let expect = engine.classify(&code, &inputs, &NoHistory);
        assert!(expect.diagnostics.is_empty(), "{name}: {expect:?}");
        let (reuse, reuse_wall) = rate(budget, || {
            let out = engine.classify(black_box(&code), black_box(&inputs), &NoHistory);
            debug_assert_eq!(out, expect);
            black_box(out);
        });
        let (fresh, _) = rate(budget / 3, || {
            let mut e = Engine::new(cfg.clone()).unwrap();
            black_box(e.classify(black_box(&code), black_box(&inputs), &NoHistory));
        });
        worst_reuse = worst_reuse.min(reuse);
        sum_reuse += 1e6 / reuse;
        sum_fresh += 1e6 / fresh;
        println!(
            "| {name} ({}) | {reuse:.0} ({reuse_wall:.0}) | {:.2} | {fresh:.0} | {:.1} | {:.0}× |",
            expect.classification,
            1e6 / reuse,
            1e6 / fresh,
            reuse / fresh
        );
    }
    let n = PLUGINS.len() as f64;
    println!(
        "mean: reuse {:.2} µs/call ({:.0}/s), new state + compile {:.1} µs/call ({:.0}/s), ratio {:.0}×; slowest reuse {:.0}/s (target ≥ 250000/s: {})",
        sum_reuse / n,
        1e6 * n / sum_reuse,
        sum_fresh / n,
        1e6 * n / sum_fresh,
        sum_fresh / sum_reuse,
        worst_reuse,
        if worst_reuse >= 250_000.0 { "met" } else { "MISSED" }
    );

    // Compile per call on a reused state: what changed code costs once.
    let code = shipped("cpu_load");
    let inputs5 = inputs("cpu_load");
    let mut engine = Engine::new(EngineConfig {
        cache_capacity: 1,
        ..cfg.clone()
    })
    .unwrap();
    let mut i = 0u64;
    let (compile, _) = rate(budget / 3, || {
        i += 1;
        let c = format!("{code}\n-- {i}");
        black_box(engine.classify(&c, &inputs5, &NoHistory));
    });
    println!(
        "recompile per call (state reused): {:.1} µs/call",
        1e6 / compile
    );

    // Limits: time from start to the run being stopped.
    let stop = |label: &str, config: EngineConfig, code: &str, needle: &str| {
        let mut engine = Engine::new(config).unwrap();
        let mut times = Vec::new();
        for _ in 0..if quick { 2 } else { 15 } {
            let started = Instant::now();
            let out = engine.classify(code, &inputs5, &NoHistory);
            times.push(started.elapsed());
            assert_eq!(out.classification, Classification::Unknown);
            assert!(
                out.diagnostics[0].message.contains(needle),
                "{label}: {out:?}"
            );
        }
        times.sort();
        engine.collect_garbage();
        println!(
            "{label}: stopped in median {:.1} ms, max {:.1} ms ({}); Lua memory after GC {} KiB",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            needle,
            engine.used_memory() / 1024
        );
    };
    stop(
        "endless loop (default limits)",
        cfg.clone(),
        "while true do end",
        "instruction limit",
    );
    stop(
        "memory bomb (8 MiB limit, no instruction/time limit in the way)",
        EngineConfig {
            instructions: u64::MAX / 2,
            wall_clock: Duration::from_secs(60),
            ..cfg.clone()
        },
        "local t = {} for i = 1, 1e9 do t[i] = {i} end",
        "memory limit",
    );
    stop(
        "backtracking pattern (default limits)",
        cfg.clone(),
        "return ('a'):rep(50000):find('.-.-.-.-.-b')",
        "limit",
    );
}
