//! End-to-end tests of every endpoint over real HTTPS on loopback.

mod common;

use std::time::{Duration, Instant};

use common::*;
use prophasis_protocol::api::{
    ErrorBody, ErrorCode, InstalledPlugin, Ping, PluginList, RunResponse,
};
use serde_json::json;

async fn error_of(resp: reqwest::Response) -> (u16, ErrorBody) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body: ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an ErrorBody ({e}): {text}"));
    (status, body)
}

fn echo_plugin(agent: &TestAgent, id: &str) {
    let mut m = script_manifest(id, "json", None);
    m["args"] = json!({"n": {"default": 7}, "label": {"default": "dflt"}});
    agent.place_plugin(
        m,
        &[(
            "run.sh",
            "#!/bin/sh\nprintf '{\"value\": %s, \"message\": \"argv=%s env=%s cwd=%s\"}' \"$PROPHASIS_ARG_N\" \"$*\" \"$PROPHASIS_ARG_LABEL\" \"$(basename \"$PWD\")\"\n",
        )],
    );
}

#[tokio::test]
async fn ping_needs_the_key_and_reports_facts() {
    let agent = TestAgent::start();
    let c = agent.client();

    let resp = c.get(agent.url("/ping")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let (_, body) = error_of(resp).await;
    assert_eq!(body.error.code, ErrorCode::Unauthorized);
    assert_eq!(body.error.message, "authentication required");

    for (user, pass) in [
        ("core", "wrong"),
        ("admin", agent.key.as_str()),
        ("core", ""),
    ] {
        let resp = c
            .get(agent.url("/ping"))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{user}:{pass}");
    }
    // Unknown routes do not leak before authentication.
    let resp = c.get(agent.url("/nothing-here")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let resp = agent.get("/ping").await;
    assert_eq!(resp.status(), 200);
    let cert = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .expect("peer certificate")
        .to_vec();
    assert_eq!(prophasis_agent::tls::fingerprint(&cert), agent.fingerprint);
    let ping: Ping = resp.json().await.unwrap();
    assert!(ping.pong);
    assert_eq!(ping.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(ping.facts.os, "linux");
    assert!(!ping.facts.hostname.is_empty());
    assert!(ping.facts.cpu_count >= 1);
    assert!(ping.facts.memory_bytes > 0);
    assert!(ping.facts.uptime_seconds > 0);

    let resp = agent.get("/nothing-here").await;
    let (status, body) = error_of(resp).await;
    assert_eq!((status, body.error.code), (404, ErrorCode::NotFound));
}

/// A connection remembers the credential it proved, so later requests skip the hash: only
/// that exact value may pass unchecked. Other values on the same kept-alive connection are
/// checked in full and refused when wrong.
#[tokio::test]
async fn a_verified_connection_still_refuses_other_credentials() {
    let agent = TestAgent::start();
    // One client with one pooled connection: the requests below share it.
    install_crypto();
    let c = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let key = agent.key.clone();
    let cases = [
        ("core", key.clone(), 200),
        ("core", "guess".to_string(), 401),
        ("core", key[1..].to_string(), 401),
        ("admin", key.clone(), 401),
        ("core", key.clone(), 200),
        ("core", key.clone(), 200),
    ];
    for (user, pass, want) in cases {
        let resp = c
            .get(agent.url("/ping"))
            .basic_auth(user, Some(&pass))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{user}:{pass}");
    }
    let resp = c.get(agent.url("/ping")).send().await.unwrap();
    assert_eq!(resp.status(), 401, "no credential at all");
}

#[tokio::test]
async fn repeated_failures_are_slowed_down_then_forgiven() {
    let agent = TestAgent::start();
    let c = agent.client();
    let wrong = || {
        c.get(agent.url("/ping"))
            .basic_auth("core", Some("guess"))
            .send()
    };
    for _ in 0..6 {
        assert_eq!(wrong().await.unwrap().status(), 401);
    }
    let t = Instant::now();
    assert_eq!(wrong().await.unwrap().status(), 401);
    let slowed = t.elapsed();
    assert!(
        slowed >= Duration::from_millis(350),
        "7th failure took {slowed:?}"
    );

    // The right key still works (after the wait) and clears the record.
    assert_eq!(agent.get("/ping").await.status(), 200);
    let t = Instant::now();
    assert_eq!(agent.get("/ping").await.status(), 200);
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn list_get_and_delete_plugins() {
    let agent = TestAgent::start();
    let list: PluginList = agent.get("/plugins").await.json().await.unwrap();
    assert!(list.plugins.is_empty());

    echo_plugin(&agent, "com.example.b");
    echo_plugin(&agent, "com.example.a");
    let list: PluginList = agent.get("/plugins").await.json().await.unwrap();
    let ids: Vec<_> = list.plugins.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["com.example.a", "com.example.b"]);

    let one: InstalledPlugin = agent
        .get("/plugins/com.example.a")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((one.id.as_str(), one.version), ("com.example.a", 1.0));

    let (status, body) = error_of(agent.get("/plugins/com.example.zzz").await).await;
    assert_eq!((status, body.error.code), (404, ErrorCode::PluginNotFound));

    let del = |id: &str| {
        agent
            .client()
            .delete(agent.url(&format!("/plugins/{id}")))
            .basic_auth("core", Some(&agent.key))
            .send()
    };
    assert_eq!(del("com.example.a").await.unwrap().status(), 204);
    let (status, body) = error_of(del("com.example.a").await.unwrap()).await;
    assert_eq!((status, body.error.code), (404, ErrorCode::PluginNotFound));
    let (status, body) = error_of(agent.run("com.example.a", None).await).await;
    assert_eq!((status, body.error.code), (404, ErrorCode::PluginNotFound));
    let list: PluginList = agent.get("/plugins").await.json().await.unwrap();
    assert_eq!(list.plugins.len(), 1);
}

#[tokio::test]
async fn run_passes_arguments_as_flags_and_environment() {
    let agent = TestAgent::start();
    echo_plugin(&agent, "com.example.echo");

    let r: RunResponse = agent
        .run("com.example.echo", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r.value, Some(7.0));
    assert_eq!(
        r.message,
        "argv=--label dflt --n 7 env=dflt cwd=com.example.echo"
    );
    assert_eq!(r.exit_code, None);

    let resp = agent
        .run("com.example.echo", Some(json!({"n": 2.5, "label": "x"})))
        .await;
    assert_eq!(resp.status(), 200);
    let r: RunResponse = resp.json().await.unwrap();
    assert_eq!(r.value, Some(2.5));
    assert_eq!(
        r.message,
        "argv=--label x --n 2.5 env=x cwd=com.example.echo"
    );

    // A body of `{}` means no arguments.
    let resp = agent
        .client()
        .post(agent.url("/plugins/com.example.echo/run"))
        .basic_auth("core", Some(&agent.key))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn run_refuses_bad_requests() {
    let agent = TestAgent::start();
    let mut m = script_manifest("com.example.req", "json", None);
    m["args"] = json!({"needed": {"required": true}});
    agent.place_plugin(
        m,
        &[(
            "run.sh",
            "#!/bin/sh\necho '{\"value\":1,\"message\":\"m\"}'\n",
        )],
    );
    let c = agent.client();
    let post = |path: &str| c.post(agent.url(path)).basic_auth("core", Some(&agent.key));

    let (status, body) = error_of(agent.run("com.example.req", None).await).await;
    assert_eq!((status, body.error.code), (400, ErrorCode::BadRequest));
    assert!(
        body.error.message.contains("`needed` is required"),
        "{}",
        body.error.message
    );

    let resp = post("/plugins/com.example.req/run")
        .header("content-type", "application/json")
        .body("{\"args\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!((status, body.error.code), (400, ErrorCode::BadRequest));
    assert!(body.error.message.contains("not valid JSON"));

    let resp = post("/plugins/com.example.req/run")
        .header("content-type", "text/plain")
        .body("{\"args\": {}}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    let resp = post("/plugins/com.example.req/run")
        .json(&json!({"args": {"needed": 1, "bad-name": 2}}))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!((status, body.error.code), (400, ErrorCode::BadRequest));

    let big = "x".repeat(100 * 1024);
    let resp = post("/plugins/com.example.req/run")
        .json(&json!({"args": {"needed": big}}))
        .send()
        .await;
    // The agent answers 413 without reading the body, so the client may see the
    // connection close before it finished writing (tests/router.rs checks the 413).
    if let Ok(resp) = resp {
        let (status, body) = error_of(resp).await;
        assert_eq!((status, body.error.code), (413, ErrorCode::PayloadTooLarge));
    }

    // Ids shaped like paths never reach the file system.
    for path in [
        "/plugins/..%2F..%2Fetc/run",
        "/plugins/a%20b",
        "/plugins/.hidden",
        "/plugins/a..b/run",
    ] {
        let req = if path.ends_with("/run") {
            post(path)
        } else {
            c.get(agent.url(path)).basic_auth("core", Some(&agent.key))
        };
        let (status, body) = error_of(req.send().await.unwrap()).await;
        assert_eq!(
            (status, body.error.code),
            (400, ErrorCode::BadRequest),
            "{path}"
        );
    }

    let resp = c
        .patch(agent.url("/plugins/com.example.req"))
        .basic_auth("core", Some(&agent.key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn builtin_collector_runs() {
    let agent = TestAgent::start();
    agent.place_plugin(
        json!({
            "id": "com.example.heartbeat",
            "name": "Heartbeat",
            "version": 1,
            "default_classifier": "classifier.lua",
            "builtin": "heartbeat",
        }),
        &[],
    );
    let resp = agent.run("com.example.heartbeat", None).await;
    assert_eq!(resp.status(), 200);
    let r: RunResponse = resp.json().await.unwrap();
    assert!(r.value.is_some());
}

fn package(version: f64, message: &str) -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let mut m = script_manifest("com.example.pkg", "json", None);
    m["version"] = json!(version);
    write_plugin(
        &src.path().join("com.example.pkg"),
        m,
        &[(
            "run.sh",
            &format!("#!/bin/sh\necho '{{\"value\": {version}, \"message\": \"{message}\"}}'\n"),
        )],
    );
    prophasis_protocol::package::pack_dir(&src.path().join("com.example.pkg")).unwrap()
}

async fn put(agent: &TestAgent, id: &str, pkg: Vec<u8>, sig: Option<Vec<u8>>) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().part(
        "package",
        reqwest::multipart::Part::bytes(pkg).file_name("p.tar.gz"),
    );
    if let Some(s) = sig {
        form = form.part("signature", reqwest::multipart::Part::bytes(s));
    }
    agent
        .client()
        .put(agent.url(&format!("/plugins/{id}")))
        .basic_auth("core", Some(&agent.key))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn put_installs_and_replaces_atomically() {
    let agent = TestAgent::start();
    let resp = put(&agent, "com.example.pkg", package(1.0, "one"), None).await;
    assert_eq!(resp.status(), 201);
    let p: InstalledPlugin = resp.json().await.unwrap();
    assert_eq!((p.id.as_str(), p.version), ("com.example.pkg", 1.0));
    let r: RunResponse = agent
        .run("com.example.pkg", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r.message, "one");

    let resp = put(&agent, "com.example.pkg", package(2.0, "two"), None).await;
    assert_eq!(resp.status(), 200);
    let r: RunResponse = agent
        .run("com.example.pkg", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((r.value, r.message.as_str()), (Some(2.0), "two"));

    // A refused package leaves version 2 working.
    let (status, body) =
        error_of(put(&agent, "com.example.pkg", b"not a tarball".to_vec(), None).await).await;
    assert_eq!((status, body.error.code), (422, ErrorCode::BadPackage));
    let (status, body) =
        error_of(put(&agent, "com.example.other", package(3.0, "x"), None).await).await;
    assert_eq!((status, body.error.code), (422, ErrorCode::BadPackage));
    assert!(
        body.error.message.contains("com.example.other"),
        "{}",
        body.error.message
    );
    let r: RunResponse = agent
        .run("com.example.pkg", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r.message, "two");

    // A signature that is not one is refused under verify-if-present.
    let (status, body) = error_of(
        put(
            &agent,
            "com.example.pkg",
            package(4.0, "four"),
            Some(b"garbage".to_vec()),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body.error.code),
        (422, ErrorCode::SignatureInvalid)
    );
    let r: RunResponse = agent
        .run("com.example.pkg", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r.message, "two");
}

#[tokio::test]
async fn put_refuses_bad_uploads() {
    let agent = TestAgent::start_with(|c| c.signature_policy = "enforce".into());
    let (status, body) =
        error_of(put(&agent, "com.example.pkg", package(1.0, "one"), None).await).await;
    assert_eq!(
        (status, body.error.code),
        (422, ErrorCode::SignatureRequired)
    );
    assert_eq!(agent.get("/plugins/com.example.pkg").await.status(), 404);

    let c = agent.client();
    let resp = c
        .put(agent.url("/plugins/com.example.pkg"))
        .basic_auth("core", Some(&agent.key))
        .header("content-type", "application/gzip")
        .body(package(1.0, "one"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    let form = reqwest::multipart::Form::new().text("other", "x");
    let resp = c
        .put(agent.url("/plugins/com.example.pkg"))
        .basic_auth("core", Some(&agent.key))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!((status, body.error.code), (400, ErrorCode::BadRequest));
    assert!(body.error.message.contains("`package`"));

    let huge = vec![0u8; 33 * 1024 * 1024];
    let form =
        reqwest::multipart::Form::new().part("package", reqwest::multipart::Part::bytes(huge));
    let resp = c
        .put(agent.url("/plugins/com.example.pkg"))
        .basic_auth("core", Some(&agent.key))
        .multipart(form)
        .send()
        .await;
    // The agent may answer 413 and close before the whole body was sent.
    if let Ok(resp) = resp {
        let (status, body) = error_of(resp).await;
        assert_eq!((status, body.error.code), (413, ErrorCode::PayloadTooLarge));
    }
    // And it is still fine.
    assert_eq!(agent.get("/ping").await.status(), 200);
}
