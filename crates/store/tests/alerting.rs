//! The alerting tables on both backends: the outbox keeps notifications and every attempt,
//! settings, maintenance windows and acknowledgements round-trip.

mod common;

use common::*;
use prophasis_model::transition::Entity;
use prophasis_store::{Acknowledgement, AttemptOutcome, DeliveryState, Store};
use serde_json::json;

async fn outbox_records_attempts_and_final_state(s: &Store) {
    let alert = s.create_alert(&alert("a")).await.unwrap();
    let id = s
        .enqueue_notification(Some(alert), &json!({"alert": "a"}), 1_000)
        .await
        .unwrap();
    assert!(s.due_notifications(999, 10).await.unwrap().is_empty());
    assert!(
        !s.claim_notification(id, 999, 5_000).await.unwrap(),
        "not due yet"
    );
    assert!(s.claim_notification(id, 1_000, 1_500).await.unwrap());
    assert!(
        !s.claim_notification(id, 1_000, 1_500).await.unwrap(),
        "claimed once"
    );
    assert!(s.due_notifications(1_499, 10).await.unwrap().is_empty());
    assert!(
        s.claim_notification(id, 1_500, 1_000).await.unwrap(),
        "the lease ran out"
    );
    let due = s.due_notifications(1_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].payload, json!({"alert": "a"}));
    assert_eq!(due[0].state, DeliveryState::Pending);
    s.record_delivery_attempt(
        id,
        &AttemptOutcome {
            at: 1_000,
            ok: false,
            error: Some("refused"),
            state: DeliveryState::Pending,
            next_attempt: 3_000,
        },
    )
    .await
    .unwrap();
    assert!(s.due_notifications(2_000, 10).await.unwrap().is_empty());
    s.record_delivery_attempt(
        id,
        &AttemptOutcome {
            at: 3_000,
            ok: true,
            error: None,
            state: DeliveryState::Delivered,
            next_attempt: 3_000,
        },
    )
    .await
    .unwrap();
    let n = s.get_notification(id).await.unwrap();
    assert_eq!(n.state, DeliveryState::Delivered);
    assert_eq!(n.attempts, 2);
    assert_eq!(n.finished, Some(3_000));
    let attempts = s.delivery_attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(!attempts[0].ok && attempts[1].ok);
    assert_eq!(attempts[0].error.as_deref(), Some("refused"));
    assert_eq!(
        s.list_notifications(Some(alert), 10).await.unwrap().len(),
        1
    );
    assert!(s
        .list_notifications(Some(alert + 1), 10)
        .await
        .unwrap()
        .is_empty());
    // History outlives the alert.
    s.delete_alert(alert).await.unwrap();
    assert_eq!(s.list_notifications(None, 10).await.unwrap().len(), 1);
    // Pruning takes finished notifications only.
    let pending = s.enqueue_notification(None, &json!({}), 1).await.unwrap();
    assert_eq!(
        s.prune_notifications(3_000).await.unwrap(),
        0,
        "finished at 3000"
    );
    assert_eq!(
        s.notification_counts().await.unwrap(),
        [
            (DeliveryState::Pending, 1),
            (DeliveryState::Delivered, 1),
            (DeliveryState::Failed, 0)
        ]
    );
    assert_eq!(s.prune_notifications(3_001).await.unwrap(), 1);
    assert!(s.delivery_attempts(id).await.unwrap().is_empty());
    let left = s.list_notifications(None, 10).await.unwrap();
    assert_eq!(left.iter().map(|n| n.id).collect::<Vec<_>>(), [pending]);
}

async fn settings_windows_and_acks_round_trip(s: &Store) {
    let alert = s.create_alert(&alert("a")).await.unwrap();
    s.set_alert_settings(alert, &json!({"renotify_every_seconds": 60}))
        .await
        .unwrap();
    s.set_alert_settings(alert, &json!({"renotify_every_seconds": 120}))
        .await
        .unwrap();
    assert_eq!(
        s.list_alert_settings().await.unwrap(),
        vec![(alert, json!({"renotify_every_seconds": 120}))]
    );
    assert!(s.set_alert_settings(alert + 99, &json!({})).await.is_err());

    let w = s
        .create_maintenance_window(&json!({"target": {"host": 1}}))
        .await
        .unwrap();
    s.update_maintenance_window(w, &json!({"target": {"host": 2}}))
        .await
        .unwrap();
    assert_eq!(
        s.list_maintenance_windows().await.unwrap(),
        vec![(w, json!({"target": {"host": 2}}))]
    );
    s.delete_maintenance_window(w).await.unwrap();
    assert!(s.delete_maintenance_window(w).await.is_err());

    let ack = Acknowledgement {
        id: 0,
        entity: Entity::Host(7),
        who: "alice".into(),
        at: 5,
        comment: "looking".into(),
        cleared_at: None,
    };
    let id = s.add_acknowledgement(&ack).await.unwrap();
    let active = s.list_acknowledgements(true).await.unwrap();
    assert_eq!(active, vec![Acknowledgement { id, ..ack.clone() }]);
    assert_eq!(
        s.clear_acknowledgements(Entity::Service(7), 9)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.clear_acknowledgements(Entity::Host(7), 9).await.unwrap(),
        1
    );
    assert!(s.list_acknowledgements(true).await.unwrap().is_empty());
    assert_eq!(
        s.list_acknowledgements(false).await.unwrap()[0].cleared_at,
        Some(9)
    );
}

on_both_backends!(
    outbox_records_attempts_and_final_state,
    settings_windows_and_acks_round_trip
);
