//! End to end with a real agent: a result changes a host's health, the server hands the
//! transition to the alerting engine, and the webhook receives the notification; the
//! delivery is visible through the API.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use common::*;
use prophasis_model::{Alert, AlertScope, Health};
use serde_json::{json, Value};

const SECS: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_transition_reaches_the_webhook_and_the_delivery_is_listed() {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

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
    let alert = store
        .create_alert(&Alert {
            id: 0,
            name: "web1 up".into(),
            from_states: vec![Health::NoData],
            to_states: vec![Health::Ok],
            scope: AlertScope {
                hosts: vec![host],
                ..Default::default()
            },
            plugins: vec!["org.test.value".into()],
            checks: vec![],
            module: "webhook".into(),
            options: json!({"url": hook}),
            enabled: true,
        })
        .await
        .unwrap();
    let (user, password) = prophasis::serve::ensure_admin(&store)
        .await
        .unwrap()
        .unwrap();

    let running = scene.start_server().await;
    let n = eventually(15 * SECS, "the webhook call", || async {
        received.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(n["alert_name"], "web1 up");
    assert_eq!(n["entity_name"], "web1");
    assert_eq!(n["old"], "no_data");
    assert_eq!(n["new"], "ok");
    assert_eq!(n["plugin"], "org.test.value");
    assert_eq!(
        n["check_name"], "org.test.value",
        "the check is named after its plugin"
    );
    assert_eq!(n["value"], 10.0);
    assert_eq!(n["message"], "ten");
    assert_eq!(n["link"], format!("http://{}/hosts/{host}", running.addr));

    let url = format!("http://{}/api/v1/alerts/{alert}/deliveries", running.addr);
    let list: Value = eventually(5 * SECS, "a delivered row", || async {
        let v: Value = reqwest::Client::new()
            .get(&url)
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v[0]["state"] == "delivered").then_some(v)
    })
    .await;
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["attempts_made"][0]["ok"], true);
    // The host stays ok: one transition, one notification.
    tokio::time::sleep(2 * SECS).await;
    assert_eq!(received.lock().unwrap().len(), 1);
    running.stop().await;
}
