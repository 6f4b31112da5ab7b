//! The simulator at scale: many agents at once, and what one request costs it.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, url};
use prophasis_protocol::api::Ping;
use prophasis_sim::{Behaviour, ListenerMode, Scenario, SimConfig, SimRuntime, Simulator};

/// Pings every agent once, `parallel` at a time, and checks each answered as itself.
async fn ping_all(sim: &Simulator, parallel: usize) {
    let http = client(sim.fingerprint(), Duration::from_secs(20));
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = Vec::new();
    for a in sim.agents().iter().cloned() {
        let (http, sem) = (http.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let ping: Ping = http
                .get(url(&a, "/ping"))
                .basic_auth("core", Some(&a.key))
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(ping.facts.hostname, format!("sim-{}", a.index));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agents_each_answer_a_ping() {
    let t = Instant::now();
    let sim = Simulator::start(SimConfig {
        agents: 1000,
        base_addr: Ipv4Addr::new(127, 0, 30, 1),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(sim.listener_mode(), ListenerMode::PerAgent);
    let started = t.elapsed();
    ping_all(&sim, 64).await;
    let total = t.elapsed();
    eprintln!("1000 agents: started in {started:?}, all pinged after {total:?}");
    assert!(total < Duration::from_secs(60), "{total:?}");
    for i in 0..1000 {
        let s = sim.stats(i);
        assert_eq!((s.requests, s.connections), (1, 1), "agent {i}: {s:?}");
    }
    let mut addrs: Vec<_> = sim.agents().iter().map(|a| a.addr).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 1000);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shared_listener_tells_agents_apart_by_address() {
    let sim = Simulator::start(SimConfig {
        agents: 300,
        // Crosses 127.0.31.255 / 127.0.32.0, which are skipped.
        base_addr: Ipv4Addr::new(127, 0, 31, 200),
        listeners: ListenerMode::Shared,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let port = sim.agents()[0].addr.port();
    assert!(sim.agents().iter().all(|a| a.addr.port() == port));
    ping_all(&sim, 32).await;
    for i in 0..300 {
        assert_eq!(sim.stats(i).requests, 1, "agent {i}");
    }
    assert_eq!(sim.total_stats().requests, 300);
    // A connection to a loopback address that is no agent is dropped, not served.
    let stranger = prophasis_sim::SimAgent {
        index: 999,
        addr: (Ipv4Addr::new(127, 0, 99, 99), port).into(),
        key: "k".into(),
    };
    let http = client(sim.fingerprint(), Duration::from_secs(5));
    assert!(http.get(url(&stranger, "/ping")).send().await.is_err());
    assert_eq!(sim.total_stats().requests, 300);
    sim.shutdown().await;
}

/// The simulator must leave most of a 2-core machine to the server it loads: measure
/// the CPU its own threads spend per kept-alive run request.
#[test]
fn cpu_per_request_is_small() {
    let sim_rt = SimRuntime::new(1).unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let agents = 10;
    let sim = sim_rt
        .block_on(Simulator::start(SimConfig {
            agents,
            base_addr: Ipv4Addr::new(127, 0, 33, 1),
            scenario: Scenario {
                default: Behaviour {
                    run_uninstalled: true,
                    ..Behaviour::default()
                },
                overrides: vec![],
            },
            ..SimConfig::default()
        }))
        .unwrap();
    let per_agent = 400;
    let (warm, cpu) = client_rt.block_on(async {
        let http = client(sim.fingerprint(), Duration::from_secs(10));
        async fn one(http: &reqwest::Client, a: &prophasis_sim::SimAgent) {
            http.post(url(a, "/plugins/c.d/run"))
                .basic_auth("core", Some(&a.key))
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
        // One handshake per agent first: only kept-alive requests are measured.
        for a in sim.agents() {
            one(&http, a).await;
        }
        let warm = sim_rt.cpu_time();
        let mut tasks = Vec::new();
        for a in sim.agents().to_vec() {
            let http = http.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_agent {
                    one(&http, &a).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        (warm, sim_rt.cpu_time())
    });
    let n = (agents * per_agent) as u32;
    let per_request = (cpu - warm) / n;
    eprintln!(
        "simulator CPU per kept-alive run request: {per_request:?} ({n} requests, {:?} total)",
        cpu - warm
    );
    // About 30 µs in release and 100 µs in a debug build; a TLS handshake per request
    // would cost milliseconds in a debug build. The margin absorbs a busy machine.
    assert!(per_request < Duration::from_micros(500), "{per_request:?}");
    let t = sim.total_stats();
    assert_eq!(t.runs, (agents * (per_agent + 1)) as u64);
    assert_eq!(t.connections, agents as u64, "connections are kept alive");
}
