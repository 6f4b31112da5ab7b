//! Noise control through the engine and the store: maintenance windows suppress
//! notifications, an acknowledgement stops reminders until the health changes,
//! re-notification repeats while a problem lasts, flapping sends one notification instead
//! of many, and hosts of a service that is already down are held back (never recoveries).

mod common;

use std::sync::Arc;

use common::*;
use prophasis_alerting::{Alerting, EngineOptions, NotificationKind};
use prophasis_model::transition::Entity;
use prophasis_model::{Health, Member, Service};
use prophasis_store::{Acknowledgement, Store};
use serde_json::{json, Value};

/// An engine without timers (reminders are driven by the test) whose deliveries go to a
/// closed port: delivery is not under test here, the outbox rows are what evaluation decided.
async fn quiet_engine(store: &Arc<Store>) -> Alerting {
    let mut o: EngineOptions = options();
    o.poll = std::time::Duration::from_secs(3600);
    o.renotify_tick = std::time::Duration::from_secs(3600);
    let e = Alerting::start_with(store.clone(), None, o).await;
    e.reload().await.unwrap();
    e
}

async fn setup(settings: Value) -> (tempfile::TempDir, Arc<Store>, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    // Nothing listens here: deliveries fail, which does not change what was decided.
    let id = store
        .create_alert(&alert(
            "a",
            "webhook",
            json!({"url": "http://127.0.0.1:9/"}),
        ))
        .await
        .unwrap();
    store.set_alert_settings(id, &settings).await.unwrap();
    (dir, store, id)
}

async fn kinds(store: &Store, alert: i64) -> Vec<String> {
    let mut rows = store.list_notifications(Some(alert), 100).await.unwrap();
    rows.reverse();
    rows.iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.payload["kind"].as_str().unwrap(),
                r.payload["new"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_maintenance_window_suppresses_notifications_for_its_target_only() {
    let (_d, store, id) = setup(json!({})).await;
    let now = prophasis_store::now_millis();
    store
        .create_maintenance_window(&json!({
            "target": {"host": 1},
            "schedule": {"type": "once", "start": now - 60_000, "end": now + 3_600_000},
        }))
        .await
        .unwrap();
    store
        .create_maintenance_window(&json!({
            "target": {"service": 9},
            "schedule": {"type": "once", "start": now - 7_200_000, "end": now - 3_600_000},
        }))
        .await
        .unwrap();
    let engine = quiet_engine(&store).await;
    engine
        .handle(transition(
            Entity::Host(1),
            Health::Ok,
            Health::Critical,
            now,
        ))
        .await;
    engine
        .handle(transition(
            Entity::Host(1),
            Health::Critical,
            Health::Ok,
            now + 1,
        ))
        .await;
    assert!(
        kinds(&store, id).await.is_empty(),
        "suppressed in maintenance"
    );
    engine
        .handle(transition(
            Entity::Host(2),
            Health::Ok,
            Health::Critical,
            now,
        ))
        .await;
    // The service's window is over.
    engine
        .handle(transition(
            Entity::Service(9),
            Health::Ok,
            Health::Critical,
            now,
        ))
        .await;
    assert_eq!(
        kinds(&store, id).await,
        ["transition:critical", "transition:critical"]
    );
    let payloads = store.list_notifications(Some(id), 10).await.unwrap();
    assert!(payloads
        .iter()
        .all(|p| p.payload["entity"] != json!({"type": "host", "id": 1})));
}

#[tokio::test]
async fn an_ack_stops_re_notification_until_the_health_changes() {
    let (_d, store, id) = setup(json!({"renotify_every_seconds": 60})).await;
    let engine = quiet_engine(&store).await;
    let t0 = prophasis_store::now_millis();
    engine
        .handle(transition(
            Entity::Host(1),
            Health::Ok,
            Health::Critical,
            t0,
        ))
        .await;
    engine.renotify_due(t0 + 30_000).await;
    assert_eq!(kinds(&store, id).await, ["transition:critical"]);
    engine.renotify_due(t0 + 61_000).await;
    assert_eq!(
        kinds(&store, id).await,
        ["transition:critical", "renotify:critical"]
    );
    // Someone acknowledges: no more reminders.
    store
        .add_acknowledgement(&Acknowledgement {
            id: 0,
            entity: Entity::Host(1),
            who: "alice".into(),
            at: t0 + 70_000,
            comment: "rebooting".into(),
            cleared_at: None,
        })
        .await
        .unwrap();
    engine.renotify_due(t0 + 130_000).await;
    engine.renotify_due(t0 + 300_000).await;
    assert_eq!(kinds(&store, id).await.len(), 2);
    let acks = store.list_acknowledgements(false).await.unwrap();
    assert_eq!(
        (acks[0].who.as_str(), acks[0].comment.as_str()),
        ("alice", "rebooting")
    );
    // The health changes: the ack is cleared (and the recovery is sent).
    engine
        .handle(transition(
            Entity::Host(1),
            Health::Critical,
            Health::Ok,
            t0 + 400_000,
        ))
        .await;
    assert!(store.list_acknowledgements(true).await.unwrap().is_empty());
    assert_eq!(
        store.list_acknowledgements(false).await.unwrap()[0].cleared_at,
        Some(t0 + 400_000)
    );
    // A new problem re-arms reminders.
    engine
        .handle(transition(
            Entity::Host(1),
            Health::Ok,
            Health::Critical,
            t0 + 500_000,
        ))
        .await;
    engine.renotify_due(t0 + 561_000).await;
    assert_eq!(
        kinds(&store, id).await,
        [
            "transition:critical",
            "renotify:critical",
            "transition:ok",
            "transition:critical",
            "renotify:critical"
        ]
    );
}

#[tokio::test]
async fn flapping_sends_one_notification_instead_of_many() {
    let (_d, store, id) = setup(json!({"flap_threshold": 3, "flap_window_seconds": 600})).await;
    let engine = quiet_engine(&store).await;
    let t0 = 1_000_000;
    let mut health = Health::Ok;
    for i in 0..8 {
        let next = if health == Health::Ok {
            Health::Critical
        } else {
            Health::Ok
        };
        engine
            .handle(transition(Entity::Host(1), health, next, t0 + i * 1000))
            .await;
        health = next;
    }
    assert_eq!(
        kinds(&store, id).await,
        [
            "transition:critical",
            "transition:ok",
            "transition:critical",
            "flapping:ok"
        ]
    );
    let rows = store.list_notifications(Some(id), 1).await.unwrap();
    assert_eq!(rows[0].payload["kind"], json!(NotificationKind::Flapping));
    assert!(rows[0].payload["summary"]
        .as_str()
        .unwrap()
        .starts_with("[flapping]"));
    // Once it settles (the window empties), notifications resume.
    engine
        .handle(transition(
            Entity::Host(1),
            health,
            Health::Critical,
            t0 + 3_600_000,
        ))
        .await;
    assert_eq!(
        kinds(&store, id).await.last().unwrap(),
        "transition:critical"
    );
}

#[tokio::test]
async fn a_service_down_before_the_engine_started_holds_back_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let h1 = host(&store, "db1").await;
    let svc = store
        .create_service(&Service {
            id: 0,
            name: "database".into(),
            description: String::new(),
            dependencies: vec![Member::Host(h1)],
            redundancy_groups: vec![],
            services: vec![],
        })
        .await
        .unwrap();
    let held = store
        .create_alert(&alert(
            "held",
            "webhook",
            json!({"url": "http://127.0.0.1:9/"}),
        ))
        .await
        .unwrap();
    store
        .set_alert_settings(held, &json!({"hold_when_dependency_down": true}))
        .await
        .unwrap();
    let engine = quiet_engine(&store).await;
    engine.seed_service_health([(svc, Health::Critical)]);
    engine
        .handle(transition(
            Entity::Host(h1),
            Health::Ok,
            Health::Critical,
            1,
        ))
        .await;
    assert!(store
        .list_notifications(Some(held), 10)
        .await
        .unwrap()
        .is_empty());
    // What a transition taught wins over a later seed.
    engine
        .handle(transition(
            Entity::Service(svc),
            Health::Critical,
            Health::Ok,
            2,
        ))
        .await;
    engine.seed_service_health([(svc, Health::Critical)]);
    engine
        .handle(transition(
            Entity::Host(h1),
            Health::Critical,
            Health::Ok,
            3,
        ))
        .await;
    engine
        .handle(transition(
            Entity::Host(h1),
            Health::Ok,
            Health::Critical,
            4,
        ))
        .await;
    let mut seen: Vec<String> = store
        .list_notifications(Some(held), 10)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.payload["entity_name"].as_str().unwrap(),
                r.payload["new"].as_str().unwrap()
            )
        })
        .collect();
    seen.reverse();
    assert_eq!(seen, ["database:ok", "db1:ok", "db1:critical"]);
}

#[tokio::test]
async fn hosts_of_a_service_already_down_are_held_back_but_recoveries_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let h1 = host(&store, "db1").await;
    let h2 = host(&store, "db2").await;
    let h3 = host(&store, "web").await;
    let svc = store
        .create_service(&Service {
            id: 0,
            name: "database".into(),
            description: String::new(),
            dependencies: vec![Member::Host(h1), Member::Host(h2)],
            redundancy_groups: vec![],
            services: vec![],
        })
        .await
        .unwrap();
    let held = store
        .create_alert(&alert(
            "held",
            "webhook",
            json!({"url": "http://127.0.0.1:9/"}),
        ))
        .await
        .unwrap();
    store
        .set_alert_settings(held, &json!({"hold_when_dependency_down": true}))
        .await
        .unwrap();
    let plain = store
        .create_alert(&alert(
            "plain",
            "webhook",
            json!({"url": "http://127.0.0.1:9/"}),
        ))
        .await
        .unwrap();
    let engine = quiet_engine(&store).await;
    engine
        .handle(transition(
            Entity::Host(h1),
            Health::Ok,
            Health::Critical,
            1,
        ))
        .await;
    engine
        .handle(transition(
            Entity::Service(svc),
            Health::Ok,
            Health::Critical,
            1,
        ))
        .await;
    // The service is down: db2 failing too is held back, web (not in it) is not.
    engine
        .handle(transition(
            Entity::Host(h2),
            Health::Ok,
            Health::Critical,
            2,
        ))
        .await;
    engine
        .handle(transition(
            Entity::Host(h3),
            Health::Ok,
            Health::Critical,
            2,
        ))
        .await;
    // Recovery of a held host is still sent.
    engine
        .handle(transition(
            Entity::Host(h2),
            Health::Critical,
            Health::Ok,
            3,
        ))
        .await;
    let entities = |rows: Vec<prophasis_store::OutboxEntry>| -> Vec<(String, String)> {
        let mut v: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.payload["entity_name"].as_str().unwrap().to_string(),
                    r.payload["new"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.reverse();
        v
    };
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        entities(store.list_notifications(Some(held), 100).await.unwrap()),
        [
            s("db1", "critical"),
            s("database", "critical"),
            s("web", "critical"),
            s("db2", "ok")
        ]
    );
    assert_eq!(
        store
            .list_notifications(Some(plain), 100)
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_host_group_window_covers_its_nested_hosts_and_a_weekly_window_follows_the_clock() {
    let (_d, store, id) = setup(json!({})).await;
    let inner_host = host(&store, "inner").await;
    let outside = host(&store, "outside").await;
    let inner = store
        .create_host_group(&prophasis_model::HostGroup {
            id: 0,
            name: "inner".into(),
            description: String::new(),
            member_hosts: vec![inner_host],
            member_groups: vec![],
        })
        .await
        .unwrap();
    let outer = store
        .create_host_group(&prophasis_model::HostGroup {
            id: 0,
            name: "outer".into(),
            description: String::new(),
            member_hosts: vec![],
            member_groups: vec![inner],
        })
        .await
        .unwrap();
    // Every day of the week, the whole day: active whenever the test runs.
    store
        .create_maintenance_window(&json!({
            "target": {"host_group": outer},
            "schedule": {"type": "weekly", "days": [0, 1, 2, 3, 4, 5, 6], "start_minute": 0, "duration_minutes": 1440},
        }))
        .await
        .unwrap();
    let engine = quiet_engine(&store).await;
    let now = prophasis_store::now_millis();
    engine
        .handle(transition(
            Entity::Host(inner_host),
            Health::Ok,
            Health::Critical,
            now,
        ))
        .await;
    engine
        .handle(transition(
            Entity::Host(outside),
            Health::Ok,
            Health::Critical,
            now,
        ))
        .await;
    let rows = store.list_notifications(Some(id), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].payload["entity_name"], "outside");
}

#[tokio::test]
async fn an_edit_takes_effect_when_a_reload_is_requested() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut o = options();
    o.reload_every = std::time::Duration::from_secs(3600);
    let engine = Alerting::start_with(store.clone(), None, o).await;
    let id = store
        .create_alert(&alert(
            "new",
            "webhook",
            json!({"url": "http://127.0.0.1:9/"}),
        ))
        .await
        .unwrap();
    let s = store.clone();
    let mut at = 0;
    wait_until(5, "the new alert to fire", || {
        at += 2;
        prophasis_alerting::request_reload();
        let engine = &engine;
        let s = s.clone();
        let t = at;
        async move {
            engine
                .handle(transition(Entity::Host(1), Health::Ok, Health::Critical, t))
                .await;
            engine
                .handle(transition(
                    Entity::Host(1),
                    Health::Critical,
                    Health::Ok,
                    t + 1,
                ))
                .await;
            !s.list_notifications(Some(id), 1).await.unwrap().is_empty()
        }
    })
    .await;
}
