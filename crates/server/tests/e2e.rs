//! End to end, with a real `prophasis-agent` on loopback and the whole server on SQLite:
//! schedule → dispatch → agent → classify → store → health, and the ways it can go wrong.

mod common;

use std::time::Duration;

use common::*;
use prophasis::plugins::install_package;
use prophasis_model::{Classification, Health, LogCategory, ResultType};
use prophasis_store::LogFilter;

const SECS: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_fires_plugin_is_pushed_classified_stored_and_host_becomes_ok() {
    let scene = Scene::new("web1").await;
    let (store, host) = (scene.store.clone(), scene.host);
    scene
        .schedule_script(
            "org.test.value",
            r#"echo '{"value": 10, "message": "ten"}'"#,
            THRESHOLD_CLASSIFIER,
            5.0,
            1,
        )
        .await;
    let (user, password) = prophasis::serve::ensure_admin(&store)
        .await
        .unwrap()
        .unwrap();

    let running = scene.start_server().await;
    let first = scene.first_result("org.test.value").await;
    assert_eq!(first.result_type, ResultType::Plugin, "{}", first.message);
    assert_eq!(first.value, Some(10.0));
    assert_eq!(first.message, "ten");
    assert_eq!(first.classification, Classification::Ok);
    eventually(5 * SECS, "host health ok", || async {
        (running.core.health.read().unwrap().host(host) == Health::Ok).then_some(())
    })
    .await;

    // The API slice sees it too.
    let api = format!("http://{}/api/v1/health/hosts", running.addr);
    let resp = reqwest::Client::new()
        .get(&api)
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body[0]["name"], "web1");
    assert_eq!(body[0]["health"], "ok");
    let resp = reqwest::Client::new()
        .get(&api)
        .basic_auth(&user, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );

    // A new version reaches the agent exactly once.
    let pushes = || {
        running
            .core
            .metrics
            .plugin_pushes
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    assert_eq!(pushes(), 1, "first run pushed the plugin once");
    let v2 = script_plugin(
        scene.plugins.path(),
        "org.test.value",
        2.0,
        r#"echo '{"value": 70, "message": "seventy"}'"#,
        THRESHOLD_CLASSIFIER,
        5.0,
    );
    install_package(&store, v2, None).await.unwrap();
    running.core.reload().await.unwrap();
    eventually(10 * SECS, "a result of version 2", || async {
        results(&store, host, "org.test.value")
            .await
            .into_iter()
            .find(|r| r.value == Some(70.0))
    })
    .await;
    let before = results(&store, host, "org.test.value").await.len();
    eventually(10 * SECS, "three more runs", || async {
        (results(&store, host, "org.test.value").await.len() >= before + 3).then_some(())
    })
    .await;
    assert_eq!(pushes(), 2, "version 2 was pushed exactly once");
    assert_eq!(
        running.core.health.read().unwrap().host(host),
        Health::Critical
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_plugin_times_out_without_delaying_other_hosts() {
    let data = tempdir();
    let store = open_store(data.path()).await;
    let (a_dir, b_dir) = (tempdir(), tempdir());
    let (a, b) = (
        Agent::start(a_dir.path(), 0).await,
        Agent::start(b_dir.path(), 0).await,
    );
    let slow = store.create_host(&a.host("slow")).await.unwrap();
    let fast = store.create_host(&b.host("fast")).await.unwrap();
    let plugins = tempdir();
    let hang = script_plugin(
        plugins.path(),
        "org.test.hang",
        1.0,
        "sleep 30",
        THRESHOLD_CLASSIFIER,
        1.0,
    );
    install_package(&store, hang, None).await.unwrap();
    let quick = script_plugin(
        plugins.path(),
        "org.test.quick",
        1.0,
        r#"echo '{"value": 1, "message": "ok"}'"#,
        THRESHOLD_CLASSIFIER,
        5.0,
    );
    install_package(&store, quick, None).await.unwrap();
    schedule_check(&store, "hang", vec![slow], vec!["org.test.hang".into()], 1).await;
    schedule_check(
        &store,
        "quick",
        vec![fast],
        vec!["org.test.quick".into()],
        1,
    )
    .await;

    let running = start_server(data.path(), store.clone()).await;
    let timed_out = eventually(10 * SECS, "a timed-out result", || async {
        results(&store, slow, "org.test.hang")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(timed_out.result_type, ResultType::CommandUnsuccessful);
    assert!(
        timed_out.message.contains("timed out") || timed_out.message.contains("timeout"),
        "{}",
        timed_out.message
    );
    assert_eq!(timed_out.classification, Classification::Unknown);
    // Meanwhile the other host kept its pace (about one result a second).
    let quick_results = results(&store, fast, "org.test.quick").await;
    assert!(
        quick_results.len() >= 2,
        "fast host got {} results while the slow one hung",
        quick_results.len()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_down_wrong_key_and_changed_certificate_become_results() {
    let data = tempdir();
    let store = open_store(data.path()).await;
    let agent_dir = tempdir();
    let mut agent = Agent::start(agent_dir.path(), 0).await;
    let port = agent.addr.port();
    let host = store.create_host(&agent.host("db1")).await.unwrap();
    let mut wrong = agent.host("db1-wrong-key");
    wrong.auth_key = "0".repeat(64);
    let wrong = store.create_host(&wrong).await.unwrap();
    let plugins = tempdir();
    let p = script_plugin(
        plugins.path(),
        "org.test.value",
        1.0,
        r#"echo '{"value": 5, "message": "five"}'"#,
        THRESHOLD_CLASSIFIER,
        5.0,
    );
    install_package(&store, p, None).await.unwrap();
    schedule_check(
        &store,
        "values",
        vec![host, wrong],
        vec!["org.test.value".into()],
        1,
    )
    .await;
    let (user, password) = prophasis::serve::ensure_admin(&store)
        .await
        .unwrap()
        .unwrap();
    let running = start_server(data.path(), store.clone()).await;

    let auth = eventually(10 * SECS, "a result for the wrong key", || async {
        results(&store, wrong, "org.test.value")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        auth.result_type,
        ResultType::AuthenticationError,
        "{}",
        auth.message
    );
    eventually(10 * SECS, "host ok", || async {
        (running.core.health.read().unwrap().host(host) == Health::Ok).then_some(())
    })
    .await;

    // The agent goes away: connection errors, and the classifier sees them (no value → unknown).
    agent.stop().await;
    let down = eventually(10 * SECS, "a connection error", || async {
        results(&store, host, "org.test.value")
            .await
            .into_iter()
            .rev()
            .find(|r| r.result_type == ResultType::ConnectionError)
    })
    .await;
    assert_eq!(down.classification, Classification::Unknown);
    eventually(5 * SECS, "host unknown", || async {
        (running.core.health.read().unwrap().host(host) == Health::Unknown).then_some(())
    })
    .await;

    // It comes back: health recovers.
    agent = Agent::start(agent_dir.path(), port).await;
    eventually(10 * SECS, "host ok again", || async {
        (running.core.health.read().unwrap().host(host) == Health::Ok).then_some(())
    })
    .await;

    // Reinstalled with a new certificate: refused and logged until accepted.
    agent.stop().await;
    let mut agent = Agent::start_with(agent_dir.path(), port, true).await;
    let refused = eventually(10 * SECS, "a refused certificate", || async {
        results(&store, host, "org.test.value")
            .await
            .into_iter()
            .rev()
            .find(|r| r.message.contains("certificate changed"))
    })
    .await;
    assert_eq!(refused.result_type, ResultType::ConnectionError);
    let log = eventually(5 * SECS, "a system log entry", || async {
        let entries = store
            .list_log(&LogFilter {
                category: Some(LogCategory::Dispatch),
                ..Default::default()
            })
            .await
            .unwrap();
        entries
            .into_iter()
            .find(|m| m.title.contains("Certificate of db1 changed"))
    })
    .await;
    assert!(log.message.contains(&agent.fingerprint), "{}", log.message);
    let url = format!(
        "http://{}/api/v1/hosts/{host}/accept-certificate",
        running.addr
    );
    let resp = reqwest::Client::new()
        .post(&url)
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        store
            .get_host(host)
            .await
            .unwrap()
            .tls_fingerprint
            .as_deref(),
        Some(agent.fingerprint.as_str())
    );
    let n = results(&store, host, "org.test.value").await.len();
    eventually(
        10 * SECS,
        "results after accepting the certificate",
        || async {
            results(&store, host, "org.test.value")
                .await
                .into_iter()
                .skip(n)
                .find(|r| r.result_type == ResultType::Plugin)
        },
    )
    .await;
    running.stop().await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classifier_that_never_ends_yields_unknown_and_a_log_entry() {
    let scene = Scene::new("loop").await;
    scene
        .schedule_script(
            "org.test.loop",
            r#"echo '{"value": 1, "message": "x"}'"#,
            "while true do end",
            5.0,
            1,
        )
        .await;
    let running = scene.start_server().await;
    let r = scene.first_result("org.test.loop").await;
    assert_eq!(r.classification, Classification::Unknown);
    assert_eq!(r.result_type, ResultType::Plugin);
    let entry = log_entry(&scene.store, LogCategory::Classification).await;
    assert!(entry.title.contains("org.test.loop"), "{}", entry.title);
    // Several results later the server is still classifying at its pace.
    eventually(10 * SECS, "more results", || async {
        (scene.results("org.test.loop").await.len() >= 3).then_some(())
    })
    .await;
    running.stop().await;
}

/// Reads `start end` lines the recording plugin appended, as milliseconds.
fn runs(file: &std::path::Path) -> Vec<(i64, i64)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(|x| x.parse::<i64>().ok());
            Some((it.next()??, it.next()??))
        })
        .collect()
}

fn recording_script(file: &std::path::Path, sleep: &str) -> String {
    format!(
        "s=$(date +%s%3N); sleep {sleep}; e=$(date +%s%3N); echo \"$s $e\" >> {}; echo '{{\"value\": 1, \"message\": \"ran\"}}'",
        file.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_checks_for_one_host_never_overlap() {
    let scene = Scene::new("busy").await;
    let record = scene.plugins.path().join("runs.txt");
    for id in ["org.test.rec_a", "org.test.rec_b"] {
        scene
            .schedule_script(
                id,
                &recording_script(&record, "0.3"),
                THRESHOLD_CLASSIFIER,
                5.0,
                1,
            )
            .await;
    }
    let running = scene.start_server().await;
    eventually(15 * SECS, "eight recorded runs", || async {
        (runs(&record).len() >= 8).then_some(())
    })
    .await;
    running.stop().await;
    let mut r = runs(&record);
    r.sort();
    for w in r.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "runs overlapped on one host: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_never_fires_a_slot_twice_and_resumes() {
    let scene = Scene::new("steady").await;
    let record = scene.plugins.path().join("runs.txt");
    scene
        .schedule_script(
            "org.test.rec",
            &recording_script(&record, "0"),
            THRESHOLD_CLASSIFIER,
            5.0,
            2,
        )
        .await;

    let running = scene.start_server().await;
    eventually(10 * SECS, "two runs", || async {
        (runs(&record).len() >= 2).then_some(())
    })
    .await;
    running.stop().await;
    let before = runs(&record).len();
    // Restart at once: the slot that already fired must not fire again.
    let store = open_store(scene.data.path()).await;
    let running = start_server(scene.data.path(), store).await;
    eventually(10 * SECS, "runs after the restart", || async {
        (runs(&record).len() >= before + 2).then_some(())
    })
    .await;
    running.stop().await;
    let mut starts: Vec<i64> = runs(&record).into_iter().map(|(s, _)| s).collect();
    starts.sort();
    for w in starts.windows(2) {
        assert!(
            w[1] - w[0] >= 1500,
            "two runs {} ms apart with a 2 s period: a slot fired twice ({starts:?})",
            w[1] - w[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refusing_a_package_yields_a_clear_result_and_a_log_entry() {
    // This agent only installs signed packages, and ours is not signed.
    let scene = Scene::with_policy("strict", "enforce").await;
    scene
        .schedule_script(
            "org.test.unsigned",
            r#"echo '{"value": 1, "message": "x"}'"#,
            THRESHOLD_CLASSIFIER,
            5.0,
            1,
        )
        .await;
    let running = scene.start_server().await;
    let r = scene.first_result("org.test.unsigned").await;
    assert_eq!(r.result_type, ResultType::CommandUnsuccessful);
    assert!(
        r.message.contains("refused plugin org.test.unsigned"),
        "{}",
        r.message
    );
    let entry = log_entry(&scene.store, LogCategory::Distribution).await;
    assert!(
        entry.title.contains("refused plugin org.test.unsigned"),
        "{}",
        entry.title
    );
    assert_eq!(
        running
            .core
            .metrics
            .plugin_pushes
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_mid_check_is_a_connection_error() {
    let scene = Scene::new("dying").await;
    // The server reaches the agent through a relay that can drop every connection.
    let relay = Relay::start(scene.agent.addr).await;
    let mut dying = scene.store.get_host(scene.host).await.unwrap();
    dying.port = relay.port;
    scene.store.update_host(&dying).await.unwrap();
    let started = scene.plugins.path().join("started");
    let script = format!(
        "touch {}; sleep 3; echo '{{\"value\": 1, \"message\": \"slow\"}}'",
        started.display()
    );
    scene
        .schedule_script("org.test.slow", &script, THRESHOLD_CLASSIFIER, 5.0, 10)
        .await;
    let running = scene.start_server().await;
    eventually(10 * SECS, "the plugin to start", || async {
        started.exists().then_some(())
    })
    .await;
    relay.kill();
    let r = scene.first_result("org.test.slow").await;
    assert_eq!(r.result_type, ResultType::ConnectionError, "{}", r.message);
    assert!(
        r.message.contains("lost during the request"),
        "{}",
        r.message
    );
    running.stop().await;
}
