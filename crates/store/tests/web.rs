//! The web UI's tables on both backends: sessions expire, renew, are found only by their
//! hash and go with their user; dashboards round-trip, refuse bad names and outlive their
//! owner.

mod common;

use prophasis_model::{Role, User};
use prophasis_store::{Dashboard, Store, StoreError, WebSession};
use serde_json::json;

async fn user(s: &Store, name: &str) -> i64 {
    s.create_user(&User {
        id: 0,
        name: name.into(),
        role: Role::Viewer,
        password_hash: "$argon2id$x".into(),
    })
    .await
    .unwrap()
}

fn session(hash: &str, user_id: i64, expires: i64) -> WebSession {
    WebSession {
        id_hash: hash.into(),
        user_id,
        csrf_token: format!("csrf-{hash}"),
        created: 100,
        expires,
    }
}

async fn sessions_expire_renew_and_go_with_their_user(s: &Store) {
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    s.create_web_session(&session("a1", alice, 1_000))
        .await
        .unwrap();
    s.create_web_session(&session("a2", alice, 1_000))
        .await
        .unwrap();
    s.create_web_session(&session("b1", bob, 500))
        .await
        .unwrap();
    assert!(matches!(
        s.create_web_session(&session("x", 9_999, 1_000)).await,
        Err(StoreError::MissingReference { .. })
    ));

    let got = s.get_web_session("a1", 999).await.unwrap().unwrap();
    assert_eq!(got, session("a1", alice, 1_000));
    assert_eq!(
        s.get_web_session("a1", 1_000).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(s.get_web_session("nope", 0).await.unwrap(), None);

    s.renew_web_session("a1", 5_000).await.unwrap();
    assert_eq!(
        s.get_web_session("a1", 4_000)
            .await
            .unwrap()
            .unwrap()
            .expires,
        5_000
    );
    assert_eq!(
        s.delete_expired_web_sessions(999).await.unwrap(),
        1,
        "b1 only"
    );
    assert_eq!(s.get_web_session("b1", 0).await.unwrap(), None);

    assert!(s.delete_web_session("a2").await.unwrap());
    assert!(!s.delete_web_session("a2").await.unwrap());
    s.create_web_session(&session("a3", alice, 9_000))
        .await
        .unwrap();
    s.delete_user(alice).await.unwrap();
    assert_eq!(s.get_web_session("a1", 0).await.unwrap(), None);
    assert_eq!(s.get_web_session("a3", 0).await.unwrap(), None);
    s.create_web_session(&session("b2", bob, 9_000))
        .await
        .unwrap();
    assert_eq!(s.delete_user_web_sessions(bob).await.unwrap(), 1);
}

async fn dashboards_round_trip_and_outlive_their_owner(s: &Store) {
    let carol = user(s, "carol").await;
    let layout =
        json!({"panels": [{"kind": "problems"}, {"kind": "graph", "host": 1, "plugin": "cpu"}]});
    let d = Dashboard {
        id: 0,
        name: "  Night shift ".into(),
        owner_id: Some(carol),
        layout: layout.clone(),
        updated: 7,
    };
    let id = s.create_dashboard(&d).await.unwrap();
    let got = s.get_dashboard(id).await.unwrap();
    assert_eq!(got.name, "Night shift", "names are trimmed");
    assert_eq!(got.layout, layout);
    assert_eq!(got.owner_id, Some(carol));

    match s.create_dashboard(&d).await {
        Err(StoreError::Duplicate { field, .. }) => assert_eq!(field, "name"),
        other => panic!("expected a duplicate name, got {other:?}"),
    }
    match s
        .create_dashboard(&Dashboard {
            name: " ".into(),
            ..d.clone()
        })
        .await
    {
        Err(e) => assert_eq!(e.field(), Some("name")),
        Ok(_) => panic!("an empty name was accepted"),
    }

    let mut changed = got.clone();
    changed.name = "Day shift".into();
    changed.layout = json!({"panels": []});
    changed.updated = 8;
    s.update_dashboard(&changed).await.unwrap();
    assert_eq!(s.get_dashboard(id).await.unwrap(), changed);
    assert!(matches!(
        s.update_dashboard(&Dashboard {
            id: 999,
            ..changed.clone()
        })
        .await,
        Err(StoreError::NotFound { .. })
    ));

    let other = s
        .create_dashboard(&Dashboard {
            name: "Alpha".into(),
            ..d.clone()
        })
        .await
        .unwrap();
    let names: Vec<String> = s
        .list_dashboards()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["Alpha", "Day shift"]);

    s.delete_user(carol).await.unwrap();
    assert_eq!(s.get_dashboard(id).await.unwrap().owner_id, None);
    s.delete_dashboard(other).await.unwrap();
    assert!(matches!(
        s.get_dashboard(other).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.delete_dashboard(other).await.is_err());
}

on_both_backends!(
    sessions_expire_renew_and_go_with_their_user,
    dashboards_round_trip_and_outlive_their_owner
);
