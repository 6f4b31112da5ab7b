//! The outbox and the webhook module against a real HTTP receiver on loopback: retries
//! with backoff, every attempt recorded, exactly one delivery, resumption after a restart
//! mid-delivery, and a recorded failure with a system-log entry when the peer is gone.

mod common;

use std::time::Duration;

use common::*;
use prophasis_model::transition::Entity;
use prophasis_model::{Health, LogCategory};
use prophasis_store::DeliveryState;
use prophasis_store::LogFilter;
use serde_json::{json, Value};

#[tokio::test]
async fn fails_twice_then_succeeds_delivered_exactly_once_with_three_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let rx = Receiver::start(vec![500, 503, 200]).await;
    let h = host(&store, "web1").await;
    let id = store
        .create_alert(&alert(
            "web down",
            "webhook",
            json!({"url": format!("{}/hook", rx.url)}),
        ))
        .await
        .unwrap();
    let engine = engine(&store).await;
    engine
        .handle(transition(
            Entity::Host(h),
            Health::Ok,
            Health::Critical,
            1_700_000_000_000,
        ))
        .await;
    let s = store.clone();
    wait_until(10, "delivery", || async {
        s.list_notifications(Some(id), 10).await.unwrap()[0].state == DeliveryState::Delivered
    })
    .await;
    // Nothing more arrives once delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 3);
    let rows = store.list_notifications(Some(id), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 3);
    let attempts = store.delivery_attempts(rows[0].id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.ok).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(
        attempts[0].error.as_deref().unwrap().contains("500"),
        "{attempts:?}"
    );
    assert!(attempts[1].time > attempts[0].time);

    let req = rx.get(2);
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["kind"], "transition");
    assert_eq!(body["alert_name"], "web down");
    assert_eq!(body["entity"], json!({"type": "host", "id": h}));
    assert_eq!(body["entity_name"], "web1");
    assert_eq!(body["plugin"], "cpu");
    assert_eq!(body["old"], "ok");
    assert_eq!(body["new"], "critical");
    assert_eq!(body["value"], 97.5);
    assert_eq!(body["message"], "load is high");
    assert_eq!(body["at"], 1_700_000_000_000i64);
    assert_eq!(body["time"], "2023-11-14T22:13:20.000Z");
    assert_eq!(body["link"], format!("{BASE}/hosts/{h}"));
}

#[tokio::test]
async fn an_unreachable_webhook_gives_recorded_failures_and_a_system_log_entry() {
    let port = free_port();
    unreachable_peer(
        "webhook",
        json!({"url": format!("http://127.0.0.1:{port}/x")}),
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_smtp_server_gives_recorded_failures_and_a_system_log_entry() {
    let port = free_port();
    unreachable_peer(
        "email",
        json!({"host": "127.0.0.1", "port": port, "security": "none", "from": "p@example.net", "to": ["a@example.net"]}),
    )
    .await;
}

/// A port that was just free: nothing listens there.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn unreachable_peer(module: &str, module_options: Value) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let id = store
        .create_alert(&alert("a", module, module_options))
        .await
        .unwrap();
    let mut opts = options();
    opts.retry.max_attempts = 3;
    let engine = prophasis_alerting::Alerting::start_with(store.clone(), None, opts).await;
    engine
        .handle(transition(Entity::Host(1), Health::Ok, Health::Critical, 1))
        .await;
    let s = store.clone();
    wait_until(10, "final failure", || async {
        s.list_notifications(Some(id), 10).await.unwrap()[0].state == DeliveryState::Failed
    })
    .await;
    let row = &store.list_notifications(Some(id), 10).await.unwrap()[0];
    assert_eq!(row.attempts, 3);
    let attempts = store.delivery_attempts(row.id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| !a.ok));
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{:?}",
        row.last_error
    );
    let filter = LogFilter {
        category: Some(LogCategory::Alerting),
        ..Default::default()
    };
    let s = store.clone();
    let f = filter.clone();
    // The entry is written right after the final attempt is recorded.
    wait_until(5, "the system-log entry", || {
        let (s, f) = (s.clone(), f.clone());
        async move { !s.list_log(&f).await.unwrap().is_empty() }
    })
    .await;
    let log = store.list_log(&filter).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].message.contains("3 attempt"), "{}", log[0].message);
}

#[tokio::test]
async fn a_restart_during_delivery_resumes_from_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    // The first request hangs, as if the process died while sending.
    let rx = Receiver::start(vec![0, 200]).await;
    // The claim of the dead attempt runs out after the send timeout plus 5 s.
    let mut opts = options();
    opts.send_timeout = Duration::from_millis(500);
    let id;
    {
        let store = store(&dir).await;
        id = store
            .create_alert(&alert("a", "webhook", json!({"url": rx.url})))
            .await
            .unwrap();
        let engine =
            prophasis_alerting::Alerting::start_with(store.clone(), None, opts.clone()).await;
        engine
            .handle(transition(Entity::Host(1), Health::Ok, Health::Critical, 1))
            .await;
        wait_until(10, "the first send", || async { rx.count() == 1 }).await;
        drop(engine);
        let rows = store.list_notifications(Some(id), 10).await.unwrap();
        assert_eq!(rows[0].state, DeliveryState::Pending);
        assert_eq!(rows[0].attempts, 0);
        store.close().await;
    }
    let store = store(&dir).await;
    let _engine = prophasis_alerting::Alerting::start_with(store.clone(), None, opts).await;
    let s = store.clone();
    wait_until(20, "delivery after the restart", || async {
        s.list_notifications(Some(id), 10).await.unwrap()[0].state == DeliveryState::Delivered
    })
    .await;
    assert_eq!(rx.count(), 2);
    let row = &store.list_notifications(Some(id), 10).await.unwrap()[0];
    assert_eq!(store.delivery_attempts(row.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_template_and_headers_shape_the_body_for_chat_services() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let rx = Receiver::start(vec![200]).await;
    store
        .create_alert(&alert(
            "slack \"quoted\"",
            "webhook",
            json!({
                "url": rx.url,
                "template": "{\"text\": {{ summary }}, \"value\": {{ value }}}",
                "headers": {"Authorization": "Bearer s3cret"}
            }),
        ))
        .await
        .unwrap();
    let engine = engine(&store).await;
    engine
        .handle(transition(
            Entity::Service(5),
            Health::Ok,
            Health::Critical,
            1,
        ))
        .await;
    wait_until(10, "the post", || async { rx.count() == 1 }).await;
    let req = rx.get(0);
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    let body: Value = serde_json::from_str(&req.body).expect("the template gave valid JSON");
    assert_eq!(
        body,
        json!({"text": "slack \"quoted\": service service 5 ok -> critical (cpu)", "value": 97.5})
    );
}

#[tokio::test]
async fn send_test_reports_success_or_the_module_error() {
    let rx = Receiver::start(vec![200, 404]).await;
    let a = alert("t", "webhook", json!({"url": rx.url}));
    prophasis_alerting::engine::send_test(&a, BASE)
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&rx.get(0).body).unwrap();
    assert_eq!(body["kind"], "test");
    let e = prophasis_alerting::engine::send_test(&a, BASE)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    let bad = alert("t", "webhook", json!({"url": "nope"}));
    let e = prophasis_alerting::engine::send_test(&bad, BASE)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("options.url"), "{e}");
}

#[tokio::test]
async fn a_hanging_peer_does_not_hold_up_other_alerts_and_each_alert_keeps_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let hanging = Receiver::start(vec![0]).await;
    let fine = Receiver::start(vec![200]).await;
    store
        .create_alert(&alert("slow", "webhook", json!({"url": hanging.url})))
        .await
        .unwrap();
    store
        .create_alert(&alert("fast", "webhook", json!({"url": fine.url})))
        .await
        .unwrap();
    let engine = engine(&store).await;
    engine
        .handle(transition(Entity::Host(1), Health::Ok, Health::Critical, 1))
        .await;
    engine
        .handle(transition(Entity::Host(1), Health::Critical, Health::Ok, 2))
        .await;
    wait_until(3, "both notifications of the fast alert", || async {
        fine.count() == 2
    })
    .await;
    let news: Vec<String> = (0..2)
        .map(|i| serde_json::from_str::<Value>(&fine.get(i).body).unwrap()["new"].to_string())
        .collect();
    assert_eq!(news, ["\"critical\"", "\"ok\""]);
    // The slow alert is still on its first notification. Its request may reach the
    // receiver after the fast alert's two (they run side by side): wait for it, then
    // check that nothing more came.
    wait_until(3, "the slow alert's first notification", || async {
        hanging.count() >= 1
    })
    .await;
    assert_eq!(hanging.count(), 1);
}
