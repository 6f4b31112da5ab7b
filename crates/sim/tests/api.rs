//! The agent API as the simulator speaks it, over real HTTPS on loopback.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{client, package, url};
use prophasis_protocol::api::{
    ErrorBody, ErrorCode, InstalledPlugin, Ping, PluginList, RunResponse,
};
use prophasis_sim::{Behaviour, ErrorRule, Latency, ListenerMode, Scenario, SimConfig, Simulator};

fn config(base: [u8; 4], agents: usize) -> SimConfig {
    SimConfig {
        agents,
        base_addr: Ipv4Addr::from(base),
        ..SimConfig::default()
    }
}

async fn start(c: SimConfig) -> (Simulator, reqwest::Client) {
    let sim = Simulator::start(c).await.unwrap();
    let http = client(sim.fingerprint(), Duration::from_secs(10));
    (sim, http)
}

async fn run(
    http: &reqwest::Client,
    sim: &Simulator,
    i: usize,
    plugin: &str,
) -> Result<RunResponse, (reqwest::StatusCode, ErrorBody)> {
    let a = &sim.agents()[i];
    let resp = http
        .post(url(a, &format!("/plugins/{plugin}/run")))
        .basic_auth("core", Some(&a.key))
        .json(&serde_json::json!({"args": {"mount": "/"}}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    if status.is_success() {
        Ok(resp.json().await.unwrap())
    } else {
        Err((status, resp.json().await.unwrap()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_needs_the_right_key() {
    let (sim, http) = start(config([127, 0, 10, 1], 2)).await;
    assert_eq!(sim.fingerprint().len(), 64);
    assert_eq!(
        sim.fingerprint(),
        prophasis_sim::tls::fingerprint(sim.cert_der())
    );
    let a = &sim.agents()[1];
    assert_ne!(sim.agents()[0].key, a.key, "keys are per agent by default");
    assert_eq!(a.addr.ip().to_string(), "127.0.10.2");

    let ping: Ping = http
        .get(url(a, "/ping"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ping.pong);
    assert_eq!(ping.facts.hostname, "sim-1");

    for auth in [
        Some(("core", "wrong")),
        Some(("admin", a.key.as_str())),
        None,
    ] {
        let mut req = http.get(url(a, "/ping"));
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert!(
            resp.bytes().await.unwrap().is_empty(),
            "401 has an empty body"
        );
    }
    // The scheme name is case-insensitive.
    let creds = base64_core(&a.key);
    let resp = http
        .get(url(a, "/ping"))
        .header("authorization", format!("basic {creds}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A rotated key: even the right one is refused.
    sim.set_behaviour(
        1,
        Behaviour {
            reject_key: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let resp = http
        .get(url(a, "/ping"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let s = sim.stats(1);
    assert_eq!(s.requests, 6);
    assert_eq!(s.unauthorized, 4);
    assert_eq!(sim.stats(0).requests, 0);

    let resp = http
        .get(url(&sim.agents()[0], "/nope"))
        .basic_auth("core", Some(&sim.agents()[0].key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: ErrorBody = resp.json().await.unwrap();
    assert_eq!(body.error.code, ErrorCode::NotFound);
    sim.shutdown().await;
}

fn base64_core(key: &str) -> String {
    // Tiny encoder so the test does not trust the code under test for the encoding.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("core:{key}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_list_then_run() {
    let (sim, http) = start(config([127, 0, 11, 1], 1)).await;
    let a = &sim.agents()[0];
    let id = "com.example.load";

    let (status, err) = run(&http, &sim, 0, id).await.unwrap_err();
    assert_eq!(status, 404);
    assert_eq!(err.error.code, ErrorCode::PluginNotFound);

    let list: PluginList = http
        .get(url(a, "/plugins"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.plugins.is_empty());

    let form = reqwest::multipart::Form::new()
        .part(
            "package",
            reqwest::multipart::Part::bytes(package(id, 3.0)).file_name("p.tar.gz"),
        )
        .part(
            "signature",
            reqwest::multipart::Part::bytes(b"sig".to_vec()),
        );
    let resp = http
        .put(url(a, &format!("/plugins/{id}")))
        .basic_auth("core", Some(&a.key))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let installed: InstalledPlugin = resp.json().await.unwrap();
    assert_eq!(installed.id, id);
    assert_eq!(installed.version, 3.0);
    assert_eq!(installed.name, format!("Test {id}"));

    let list: PluginList = http
        .get(url(a, "/plugins"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.plugins, vec![installed.clone()]);
    let one: InstalledPlugin = http
        .get(url(a, &format!("/plugins/{id}")))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one, installed);

    let ok = run(&http, &sim, 0, id).await.unwrap();
    assert_eq!(ok.value, Some(1.0));
    assert_eq!(ok.message, "simulated");

    // A package sent to another id, and a body that is no package, are refused.
    for (path_id, bytes) in [
        ("com.example.other", package(id, 4.0)),
        ("com.example.junk", b"not a tarball".to_vec()),
    ] {
        let form =
            reqwest::multipart::Form::new().part("package", reqwest::multipart::Part::bytes(bytes));
        let resp = http
            .put(url(a, &format!("/plugins/{path_id}")))
            .basic_auth("core", Some(&a.key))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let e: ErrorBody = resp.json().await.unwrap();
        assert_eq!(e.error.code, ErrorCode::BadPackage, "{}", e.error.message);
    }
    // No package part at all.
    let form = reqwest::multipart::Form::new().text("other", "x");
    let resp = http
        .put(url(a, &format!("/plugins/{id}")))
        .basic_auth("core", Some(&a.key))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let s = sim.stats(0);
    assert_eq!(s.installs, 1);
    assert_eq!(s.signed_installs, 1);
    assert_eq!(s.runs, BTreeMap::from([(id.to_string(), 1)]));
    assert_eq!(s.runs_not_found, 1);
    assert_eq!(s.installed, vec![installed]);

    let resp = http
        .delete(url(a, &format!("/plugins/{id}")))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, err) = run(&http, &sim, 0, id).await.unwrap_err();
    assert_eq!(
        (status, err.error.code),
        (reqwest::StatusCode::NOT_FOUND, ErrorCode::PluginNotFound)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_follow_the_scenario() {
    let scenario = Scenario::from_json(
        r#"{"default": {"run_uninstalled": true, "values": {"constant": 42}},
            "agents": {"1": {"plugins": {
                "s.script": {"script": [1, null, 3]},
                "s.walk": {"random_walk": {"start": 50, "step": 2, "min": 45, "max": 55}},
                "s.sine": {"sine": {"mean": 10, "amplitude": 5, "period_s": 0.5}}}}}}"#,
    )
    .unwrap();
    let (sim, http) = start(SimConfig {
        scenario,
        ..config([127, 0, 12, 1], 2)
    })
    .await;

    assert_eq!(
        run(&http, &sim, 0, "s.script").await.unwrap().value,
        Some(42.0)
    );
    let script: Vec<Option<f64>> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(run(&http, &sim, 1, "s.script").await.unwrap().value);
        }
        v
    };
    assert_eq!(script, [Some(1.0), None, Some(3.0), Some(1.0), None]);
    assert_eq!(
        run(&http, &sim, 1, "s.other").await.unwrap().value,
        Some(42.0)
    );

    let mut prev = 50.0;
    for k in 0..40 {
        let v = run(&http, &sim, 1, "s.walk").await.unwrap().value.unwrap();
        assert!((45.0..=55.0).contains(&v), "{v}");
        if k == 0 {
            assert_eq!(v, 50.0, "a walk starts at its start");
        }
        assert!((v - prev).abs() <= 2.0 + 1e-9, "{prev} -> {v}");
        prev = v;
    }

    let mut seen = Vec::new();
    for _ in 0..12 {
        let v = run(&http, &sim, 1, "s.sine").await.unwrap().value.unwrap();
        assert!((5.0 - 1e-9..=15.0 + 1e-9).contains(&v), "{v}");
        seen.push(v);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let spread = seen.iter().cloned().fold(f64::MIN, f64::max)
        - seen.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread > 3.0,
        "a sine over more than a period moves: {seen:?}"
    );
    assert_eq!(sim.stats(1).runs["s.script"], 5);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_runs_only() {
    let behaviour = Behaviour {
        latency: Latency::FixedMs(300),
        run_uninstalled: true,
        ..Behaviour::default()
    };
    let (sim, http) = start(SimConfig {
        scenario: Scenario {
            default: behaviour,
            overrides: vec![],
        },
        ..config([127, 0, 13, 1], 1)
    })
    .await;
    let a = &sim.agents()[0];
    // Warm the connection so the handshake is not timed.
    http.get(url(a, "/ping"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    http.get(url(a, "/ping"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    run(&http, &sim, 0, "x.y").await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );

    sim.set_behaviour(
        0,
        Behaviour {
            latency: Latency::RangeMs(50, 120),
            run_uninstalled: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    for _ in 0..5 {
        let t = Instant::now();
        run(&http, &sim, 0, "x.y").await.unwrap();
        let e = t.elapsed();
        assert!(
            e >= Duration::from_millis(50) && e < Duration::from_millis(1000),
            "{e:?}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_at_the_configured_rate() {
    let (sim, http) = start(config([127, 0, 14, 1], 2)).await;
    sim.set_behaviour(
        0,
        Behaviour {
            error: Some(ErrorRule {
                code: ErrorCode::PluginTimeout,
                rate: 1.0,
            }),
            run_uninstalled: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let (status, e) = run(&http, &sim, 0, "a.b").await.unwrap_err();
    assert_eq!(status, 504);
    assert_eq!(e.error.code, ErrorCode::PluginTimeout);

    sim.set_behaviour(
        1,
        Behaviour {
            error: Some(ErrorRule {
                code: ErrorCode::BadOutput,
                rate: 0.3,
            }),
            run_uninstalled: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let mut failed = 0;
    for _ in 0..400 {
        match run(&http, &sim, 1, "a.b").await {
            Ok(r) => assert_eq!(r.value, Some(1.0)),
            Err((_, e)) => {
                assert_eq!(e.error.code, ErrorCode::BadOutput);
                failed += 1;
            }
        }
    }
    // 400 draws at p = 0.3: mean 120, sd ≈ 9.2; ±6 sd.
    assert!((65..=175).contains(&failed), "{failed} of 400 failed");
    assert_eq!(sim.stats(1).errors_injected, failed);
    assert_eq!(sim.stats(1).runs["a.b"], 400);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_agent_never_answers() {
    let (sim, _) = start(config([127, 0, 15, 1], 1)).await;
    let http = client(sim.fingerprint(), Duration::from_millis(400));
    let a = &sim.agents()[0];
    sim.set_behaviour(
        0,
        Behaviour {
            hang_rate: 1.0,
            run_uninstalled: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let t = Instant::now();
    let e = http
        .post(url(a, "/plugins/a.b/run"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(sim.stats(0).hangs, 1);

    // A frozen agent does not even answer a ping.
    sim.set_behaviour(
        0,
        Behaviour {
            freeze: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let e = http
        .get(url(a, "/ping"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");

    // The abandoned requests are no longer counted in flight once the client is gone,
    // so a server that times out and retries is not blamed for overlapping checks.
    drop(http);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.stats(0).in_flight > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.stats(0).in_flight, 0);

    sim.set_behaviour(
        0,
        Behaviour {
            run_uninstalled: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let http = client(sim.fingerprint(), Duration::from_secs(5));
    assert!(run(&http, &sim, 0, "a.b").await.is_ok());
    sim.shutdown().await;
}

async fn restart_cycle(mode: ListenerMode, base: [u8; 4]) {
    let (sim, http) = start(SimConfig {
        listeners: mode,
        ..config(base, 2)
    })
    .await;
    assert_eq!(sim.listener_mode(), mode);
    let (a, b) = (&sim.agents()[0], &sim.agents()[1]);
    let ping = |agent: &prophasis_sim::SimAgent| {
        http.get(url(agent, "/ping"))
            .basic_auth("core", Some(&agent.key))
            .send()
    };
    ping(a).await.unwrap().error_for_status().unwrap();
    ping(b).await.unwrap().error_for_status().unwrap();

    sim.restart(0, Duration::from_millis(1500)).await.unwrap();
    let down_since = Instant::now();
    // The kept-alive connection is gone...
    assert!(ping(a).await.is_err());
    // ...and a new one, from a client with nothing pooled, is refused (or reset).
    let fresh = client(sim.fingerprint(), Duration::from_secs(5));
    let e = fresh
        .get(url(a, "/ping"))
        .basic_auth("core", Some(&a.key))
        .send()
        .await
        .unwrap_err();
    if mode == ListenerMode::PerAgent {
        assert!(e.is_connect(), "refused while down: {e:?}");
    }
    // The other agent is not affected.
    ping(b).await.unwrap().error_for_status().unwrap();

    let back = loop {
        match ping(a).await {
            Ok(r) => break (r.status(), down_since.elapsed()),
            Err(_) if down_since.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("never came back: {e}"),
        }
    };
    assert_eq!(back.0, 200);
    assert!(
        back.1 >= Duration::from_millis(1400),
        "back after {:?}",
        back.1
    );
    assert!(
        sim.stats(0).connections >= 2,
        "the old connection was closed"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_refuses_then_comes_back_per_agent() {
    restart_cycle(ListenerMode::PerAgent, [127, 0, 16, 1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resets_then_comes_back_shared() {
    restart_cycle(ListenerMode::Shared, [127, 0, 17, 1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_is_counted_per_agent() {
    let behaviour = Behaviour {
        latency: Latency::FixedMs(200),
        run_uninstalled: true,
        ..Behaviour::default()
    };
    let (sim, http) = start(SimConfig {
        scenario: Scenario {
            default: behaviour,
            overrides: vec![],
        },
        ..config([127, 0, 18, 1], 2)
    })
    .await;
    // Agent 0: six runs at once. Agent 1: six runs one after the other.
    let burst = (0..6).map(|_| run(&http, &sim, 0, "c.c"));
    let results = futures_util::future::join_all(burst).await;
    assert!(results.iter().all(|r| r.is_ok()));
    for _ in 0..3 {
        run(&http, &sim, 1, "c.c").await.unwrap();
    }
    let (s0, s1) = (sim.stats(0), sim.stats(1));
    assert_eq!(s0.max_runs_in_flight, 6, "{s0:?}");
    assert_eq!(s0.max_in_flight, 6);
    assert_eq!(s1.max_runs_in_flight, 1, "{s1:?}");
    assert_eq!(s1.max_in_flight, 1);
    assert_eq!(s0.in_flight, 0);
    let t = sim.total_stats();
    assert_eq!(t.max_runs_in_flight_per_agent, 6);
    assert_eq!(t.runs, 9);
    sim.shutdown().await;
}
