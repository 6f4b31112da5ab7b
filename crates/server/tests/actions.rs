//! The configuration layer shared by the API, the UI and the CLI: permissions, validation
//! naming the field, the audit trail, the running core picking a change up, and the
//! rules that need the whole system (keeping one admin).

use std::sync::Arc;

use prophasis::actions::{ActionError, Actions, Actor, ErrorKind};
use prophasis::config::Config;
use prophasis::web::auth::CredentialCache;
use prophasis_model::{ClassifierOverride, Host, LogCategory, OverrideTarget, Role};
use prophasis_store::{LogFilter, Store};

struct Setup {
    actions: Actions,
    core: prophasis::app::Core,
    admin: Actor,
    viewer: Actor,
}

async fn setup() -> Setup {
    let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (core, tasks) = prophasis::app::Core::start(store, &Config::default(), tx)
        .await
        .unwrap();
    // The scheduler is not needed here: the core is used for its catalog only.
    std::mem::forget(tasks);
    let actions = Actions::new(core.clone(), Arc::new(CredentialCache::default()));
    let cli = Actor::command_line();
    let admin = actions
        .create_user(&cli, "alice", Role::Admin, "alice-password")
        .await
        .unwrap();
    let viewer = actions
        .create_user(&cli, "victor", Role::Viewer, "victor-password")
        .await
        .unwrap();
    Setup {
        actions,
        core,
        admin: Actor::user(admin.id, "alice", Role::Admin),
        viewer: Actor::user(viewer.id, "victor", Role::Viewer),
    }
}

fn host(name: &str) -> Host {
    Host {
        id: 0,
        name: name.into(),
        address: "127.0.0.1".into(),
        port: 4048,
        description: String::new(),
        auth_key: "k".repeat(64),
        tls_fingerprint: None,
        enabled: true,
    }
}

#[tokio::test]
async fn a_new_host_reaches_the_running_core_and_the_audit_log() {
    let s = setup().await;
    let h = s
        .actions
        .create_host(&s.admin, &host("web-1"))
        .await
        .unwrap();
    assert!(s.core.current_catalog().hosts.contains_key(&h.id));
    let log = s
        .actions
        .store()
        .list_log(&LogFilter {
            category: Some(LogCategory::System),
            ..LogFilter::default()
        })
        .await
        .unwrap();
    let entry = log
        .iter()
        .find(|m| m.title == "Host added")
        .expect("audit entry");
    assert!(entry.message.contains("web-1") && entry.message.contains("by alice"));

    // Five changes in a row are five entries: the audit trail is not folded.
    for i in 2..7 {
        s.actions
            .create_host(&s.admin, &host(&format!("web-{i}")))
            .await
            .unwrap();
    }
    let log = s
        .actions
        .store()
        .list_log(&LogFilter::default())
        .await
        .unwrap();
    assert_eq!(log.iter().filter(|m| m.title == "Host added").count(), 6);

    s.actions.delete_host(&s.admin, h.id).await.unwrap();
    assert!(!s.core.current_catalog().hosts.contains_key(&h.id));
}

#[tokio::test]
async fn viewers_are_refused_every_change() {
    let s = setup().await;
    let err = s
        .actions
        .create_host(&s.viewer, &host("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let err = s
        .actions
        .create_user(&s.viewer, "mallory", Role::Admin, "long-enough-pw")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(s.actions.store().list_hosts().await.unwrap().is_empty());
}

#[tokio::test]
async fn refusals_name_the_field() {
    let s = setup().await;
    let err = s
        .actions
        .create_host(&s.admin, &host(""))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ErrorKind::Invalid, Some("name"))
    );

    s.actions.create_host(&s.admin, &host("dup")).await.unwrap();
    let err = s
        .actions
        .create_host(&s.admin, &host("dup"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ErrorKind::Duplicate, Some("name"))
    );

    let err = s
        .actions
        .create_user(&s.admin, "shorty", Role::Viewer, "short")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ErrorKind::Invalid, Some("password"))
    );
    assert!(err.to_string().contains("at least 10"), "{err}");
}

#[tokio::test]
async fn an_empty_auth_key_on_update_keeps_the_stored_key() {
    let s = setup().await;
    let h = s
        .actions
        .create_host(&s.admin, &host("db-1"))
        .await
        .unwrap();
    let edited = Host {
        description: "primary database".into(),
        auth_key: String::new(),
        ..h.clone()
    };
    let saved = s.actions.update_host(&s.admin, &edited).await.unwrap();
    assert_eq!(saved.auth_key, h.auth_key);
    assert_eq!(saved.description, "primary database");
}

#[tokio::test]
async fn classifier_code_that_does_not_compile_is_refused_with_its_line() {
    let s = setup().await;
    let plugin = prophasis::plugins::reference_plugin_names()[0];
    let dir = tempfile::tempdir().unwrap();
    let src = prophasis::plugins::write_reference_plugin(plugin, dir.path()).unwrap();
    let archive = prophasis_protocol::package::pack_dir(&src).unwrap();
    let p = s
        .actions
        .install_plugin(&s.admin, archive, None)
        .await
        .unwrap();
    let h = s
        .actions
        .create_host(&s.admin, &host("app-1"))
        .await
        .unwrap();
    let bad = ClassifierOverride {
        id: 0,
        plugin_id: p.id.clone(),
        target: OverrideTarget::Host(h.id),
        n_historical: 1,
        code: "return \"ok\"\nif then".into(),
    };
    let err = s.actions.create_override(&s.admin, &bad).await.unwrap_err();
    assert_eq!(err.field(), Some("code"));
    assert!(err.to_string().contains("line 2"), "{err}");

    let err = s
        .actions
        .update_plugin_classifier(&s.admin, &p.id, "return (", 1)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("classifier"));
    let good = ClassifierOverride {
        code: "return \"ok\"".into(),
        ..bad
    };
    s.actions.create_override(&s.admin, &good).await.unwrap();
}

#[tokio::test]
async fn the_last_admin_can_be_neither_deleted_nor_demoted() {
    let s = setup().await;
    let id = s.admin.user.unwrap();
    let err = s.actions.delete_user(&s.admin, id).await.unwrap_err();
    assert!(matches!(err, ActionError::Conflict { .. }), "{err:?}");
    let err = s
        .actions
        .update_user(&s.admin, id, "alice", Role::Viewer)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("role"));

    // With a second admin, the first may go.
    let viewer = s.viewer.user.unwrap();
    s.actions
        .update_user(&s.admin, viewer, "victor", Role::Admin)
        .await
        .unwrap();
    s.actions.delete_user(&s.admin, id).await.unwrap();
}

#[tokio::test]
async fn users_change_their_own_password_but_not_others() {
    let s = setup().await;
    let me = s.viewer.user.unwrap();
    s.actions
        .set_password(&s.viewer, me, "a brand new passphrase")
        .await
        .unwrap();
    let err = s
        .actions
        .set_password(&s.viewer, s.admin.user.unwrap(), "taken over!!")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
}

#[tokio::test]
async fn the_command_line_works_without_a_running_core() {
    let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
    let actions = Actions::offline(store.clone());
    let cli = Actor::command_line();
    actions
        .create_user(&cli, "root", Role::Admin, "0123456789")
        .await
        .unwrap();
    actions.create_host(&cli, &host("offline-1")).await.unwrap();
    assert_eq!(store.list_hosts().await.unwrap().len(), 1);
    assert_eq!(store.list_users().await.unwrap()[0].name, "root");
}
