//! The storage suite: every case is written once and runs on SQLite and on PostgreSQL.

mod common;

use common::*;
use prophasis_model::*;
use prophasis_store::{ApiToken, LogFilter, Series, Store, StoreError};

on_both_backends!(
    hosts_crud,
    ids_are_never_reused,
    host_groups_with_members_and_cycles,
    plugins_with_packages,
    checks_with_plugin_args,
    failed_check_write_leaves_nothing,
    schedules_and_next_run,
    services_with_redundancy_groups,
    failed_service_write_leaves_nothing,
    alerts_round_trip,
    classifier_overrides,
    users_by_name_and_hash,
    api_tokens_by_hash,
    system_log,
    results_latest_and_history,
    rollups_merge_across_batches,
    batch_with_unknown_reference_is_refused_whole,
    series_picks_resolution_by_span,
    retention_removes_old_rows,
    deleting_a_host_takes_its_data,
    deleting_a_plugin_takes_its_data,
    deleting_a_check_keeps_results,
    deleting_groups_and_services,
    concurrent_writers_do_not_fail,
    one_batch_and_one_by_one_store_the_same,
    long_range_read_returns_every_field,
    rollups_match_raw_results_for_random_batches,
    a_result_stored_again_replaces_the_stored_one,
    range_read_is_in_time_order_however_stored,
    chunked_results_merge_late_data_forget_deleted_checks_and_trim,
);

fn field_of(e: &StoreError) -> &str {
    e.field()
        .unwrap_or_else(|| panic!("error without field: {e}"))
}

async fn hosts_crud(s: &Store) {
    let mut web = host("web1");
    web.tls_fingerprint = Some("ab".repeat(32));
    web.id = 999; // ignored on create
    let id = s.create_host(&web).await.unwrap();
    web.id = id;
    assert_eq!(s.get_host(id).await.unwrap(), web);
    let db = host("db1");
    let db_id = s.create_host(&db).await.unwrap();
    let names: Vec<String> = s
        .list_hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["db1", "web1"]);

    let dup = s.create_host(&host("web1")).await.unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate { .. }), "{dup}");
    assert_eq!(field_of(&dup), "name");
    assert!(dup.to_string().contains("web1"));

    let mut bad = host("x");
    bad.port = 0;
    let e = s.create_host(&bad).await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)));
    assert_eq!(field_of(&e), "port");

    web.enabled = false;
    web.port = 4100;
    web.tls_fingerprint = None;
    s.update_host(&web).await.unwrap();
    assert_eq!(s.get_host(id).await.unwrap(), web);
    let mut renamed = web.clone();
    renamed.name = "db1".into();
    assert_eq!(
        field_of(&s.update_host(&renamed).await.unwrap_err()),
        "name"
    );

    s.delete_host(db_id).await.unwrap();
    assert!(matches!(
        s.get_host(db_id).await,
        Err(StoreError::NotFound { entity: "host", .. })
    ));
    assert!(matches!(
        s.delete_host(db_id).await,
        Err(StoreError::NotFound { .. })
    ));
    let mut ghost = host("ghost");
    ghost.id = db_id;
    assert!(matches!(
        s.update_host(&ghost).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.list_hosts().await.unwrap().len(), 1);
    assert_eq!(
        s.schema_version().await.unwrap(),
        prophasis_store::SCHEMA_VERSION
    );
}

async fn ids_are_never_reused(s: &Store) {
    let a = s.create_host(&host("a")).await.unwrap();
    let b = s.create_host(&host("b")).await.unwrap();
    s.delete_host(b).await.unwrap();
    let c = s.create_host(&host("c")).await.unwrap();
    assert!(c > b && b > a, "ids {a} {b} {c}");
    // Stored results keep the id of a deleted check and readers drop it because no check
    // has it: a new check must never get it.
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let x = s
        .create_check(&check("x", vec![a], &["a.cpu"]))
        .await
        .unwrap();
    let y = s
        .create_check(&check("y", vec![a], &["a.cpu"]))
        .await
        .unwrap();
    s.delete_check(y).await.unwrap();
    let z = s
        .create_check(&check("z", vec![a], &["a.cpu"]))
        .await
        .unwrap();
    assert!(z > y && y > x, "check ids {x} {y} {z}");
}

async fn host_groups_with_members_and_cycles(s: &Store) {
    let h1 = s.create_host(&host("h1")).await.unwrap();
    let h2 = s.create_host(&host("h2")).await.unwrap();
    let mut a = HostGroup {
        name: "A".into(),
        member_hosts: vec![h2, h1],
        ..Default::default()
    };
    a.id = s.create_host_group(&a).await.unwrap();
    let mut b = HostGroup {
        name: "B".into(),
        member_groups: vec![a.id],
        ..Default::default()
    };
    b.id = s.create_host_group(&b).await.unwrap();
    // A cycle can be built one edit at a time and must be storable.
    a.member_groups = vec![b.id];
    s.update_host_group(&a).await.unwrap();
    assert_eq!(
        s.get_host_group(a.id).await.unwrap(),
        a,
        "member order is kept"
    );
    assert_eq!(
        s.list_host_groups().await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    let mut bad = a.clone();
    bad.member_hosts.push(4242);
    let e = s.update_host_group(&bad).await.unwrap_err();
    assert!(matches!(e, StoreError::MissingReference { .. }), "{e}");
    assert_eq!(field_of(&e), "member_hosts");
    assert!(e.to_string().contains("4242"));
    assert_eq!(
        s.get_host_group(a.id).await.unwrap(),
        a,
        "failed update left the group as it was"
    );

    let e = s
        .create_host_group(&HostGroup {
            name: "C".into(),
            member_groups: vec![777],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "member_groups");
    assert_eq!(
        s.list_host_groups().await.unwrap().len(),
        2,
        "no half-written group"
    );
    let dup = s
        .create_host_group(&HostGroup {
            name: "B".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&dup), "name");
}

async fn plugins_with_packages(s: &Store) {
    let mut p = plugin("com.example.cpu");
    s.put_plugin(&p, &package()).await.unwrap();
    assert_eq!(s.get_plugin(&p.id).await.unwrap(), p);
    assert_eq!(s.plugin_package(&p.id).await.unwrap(), package());

    let e = s.put_plugin(&p, &package()).await.unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }));
    assert_eq!(field_of(&e), "id");
    let mut same_name = plugin("com.example.other");
    same_name.name = p.name.clone();
    assert_eq!(
        field_of(&s.put_plugin(&same_name, &package()).await.unwrap_err()),
        "name"
    );
    let mut bad = plugin("../etc");
    bad.name = "bad".into();
    assert_eq!(
        field_of(&s.put_plugin(&bad, &package()).await.unwrap_err()),
        "id"
    );

    // Editing the classifier keeps the package; a new version replaces it.
    p.classifier = "return \"minor\"".into();
    s.update_plugin(&p, None).await.unwrap();
    assert_eq!(s.get_plugin(&p.id).await.unwrap().classifier, p.classifier);
    assert_eq!(s.plugin_package(&p.id).await.unwrap(), package());
    p.version = 2.0;
    let unsigned = PluginPackage {
        archive: vec![9; 100_000],
        signature: None,
    };
    s.update_plugin(&p, Some(&unsigned)).await.unwrap();
    assert_eq!(s.plugin_package(&p.id).await.unwrap(), unsigned);
    assert_eq!(s.get_plugin(&p.id).await.unwrap().version, 2.0);

    s.put_plugin(&plugin("com.example.a"), &package())
        .await
        .unwrap();
    let ids: Vec<String> = s
        .list_plugins()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["com.example.a", "com.example.cpu"]);
    assert!(matches!(
        s.plugin_package("no.such").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.update_plugin(&plugin("no.such"), None).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn checks_with_plugin_args(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    let g = s
        .create_host_group(&HostGroup {
            name: "g".into(),
            member_hosts: vec![h],
            ..Default::default()
        })
        .await
        .unwrap();
    s.put_plugin(&plugin("a.disk"), &package()).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let mut c = check("c", vec![h], &["a.disk", "a.cpu"]);
    c.host_groups = vec![g];
    let mut args = serde_json::Map::new();
    args.insert("path".into(), serde_json::json!("/var"));
    c.plugin_args.insert("a.disk".into(), args);
    c.id = s.create_check(&c).await.unwrap();
    assert_eq!(s.get_check(c.id).await.unwrap(), c);

    c.plugins = vec!["a.cpu".into()];
    c.plugin_args.clear();
    c.hosts.clear();
    s.update_check(&c).await.unwrap();
    assert_eq!(s.list_checks().await.unwrap(), vec![c.clone()]);
    assert_eq!(
        field_of(
            &s.create_check(&check("c", vec![h], &["a.cpu"]))
                .await
                .unwrap_err()
        ),
        "name"
    );
}

async fn failed_check_write_leaves_nothing(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    // The check row and its host are written before the unknown plugin is met.
    let e = s
        .create_check(&check("c", vec![h], &["a.cpu", "a.missing"]))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::MissingReference { .. }), "{e}");
    assert_eq!(field_of(&e), "plugins");
    assert!(s.list_checks().await.unwrap().is_empty());
    assert_eq!(
        s.host_delete_impact(h)
            .await
            .unwrap()
            .get("check_memberships"),
        0
    );
    // The name is free again: nothing of the failed check remains.
    let id = s
        .create_check(&check("c", vec![h], &["a.cpu"]))
        .await
        .unwrap();

    let mut broken = s.get_check(id).await.unwrap();
    broken.hosts = vec![h, 999];
    assert_eq!(
        field_of(&s.update_check(&broken).await.unwrap_err()),
        "hosts"
    );
    assert_eq!(
        s.get_check(id).await.unwrap().hosts,
        vec![h],
        "old version intact"
    );
}

async fn schedules_and_next_run(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let c = s
        .create_check(&check("c", vec![h], &["a.cpu"]))
        .await
        .unwrap();
    let mut sch = Schedule {
        name: "every minute".into(),
        checks: vec![c],
        intervals: vec![
            Interval {
                id: 0,
                start: 0,
                period_seconds: 60,
            },
            Interval {
                id: 0,
                start: 30_000,
                period_seconds: 3600,
            },
        ],
        ..Default::default()
    };
    let id = s.create_schedule(&sch).await.unwrap();
    sch = s.get_schedule(id).await.unwrap();
    assert_eq!(sch.checks, vec![c]);
    assert_eq!(sch.intervals.len(), 2);
    let (i1, i2) = (sch.intervals[0].id, sch.intervals[1].id);
    assert!(i1 > 0 && i2 > 0 && i1 != i2);
    assert_eq!(sch.intervals[1].start, 30_000);
    assert_eq!(s.next_run(i1).await.unwrap(), None);
    s.set_next_run(i1, Some(120_000)).await.unwrap();
    s.set_next_run(i2, Some(30_000)).await.unwrap();
    assert_eq!(s.next_run(i1).await.unwrap(), Some(120_000));

    // Renaming keeps next runs; changing an interval's period resets only that one.
    sch.name = "renamed".into();
    sch.intervals[1].period_seconds = 7200;
    s.update_schedule(&sch).await.unwrap();
    assert_eq!(s.next_run(i1).await.unwrap(), Some(120_000));
    assert_eq!(s.next_run(i2).await.unwrap(), None);
    let runs = s.next_runs().await.unwrap();
    assert_eq!(runs.get(&i1), Some(&120_000));
    assert!(!runs.contains_key(&i2));

    // Dropping an interval deletes it; a new one gets a new id.
    sch.intervals = vec![
        sch.intervals[0].clone(),
        Interval {
            id: 0,
            start: 5,
            period_seconds: 10,
        },
    ];
    s.update_schedule(&sch).await.unwrap();
    let got = s.get_schedule(id).await.unwrap();
    assert_eq!(got.intervals[0].id, i1);
    assert!(got.intervals[1].id != i2);
    assert!(matches!(
        s.next_run(i2).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.set_next_run(i2, Some(1)).await,
        Err(StoreError::NotFound { .. })
    ));

    let mut bad = sch.clone();
    bad.checks = vec![c, 555];
    assert_eq!(
        field_of(&s.update_schedule(&bad).await.unwrap_err()),
        "checks"
    );
    assert_eq!(
        s.get_schedule(id).await.unwrap(),
        got,
        "failed update changed nothing"
    );
    assert_eq!(
        s.schedule_delete_impact(id).await.unwrap().get("intervals"),
        2
    );
    s.delete_schedule(id).await.unwrap();
    assert!(s.list_schedules().await.unwrap().is_empty());
    assert!(matches!(
        s.next_run(i1).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn services_with_redundancy_groups(s: &Store) {
    let lb = s.create_host(&host("lb")).await.unwrap();
    let w1 = s.create_host(&host("w1")).await.unwrap();
    let w2 = s.create_host(&host("w2")).await.unwrap();
    let g = s
        .create_host_group(&HostGroup {
            name: "db".into(),
            member_hosts: vec![w1],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut inner = Service {
        name: "database".into(),
        dependencies: vec![Member::HostGroup(g)],
        ..Default::default()
    };
    inner.id = s.create_service(&inner).await.unwrap();
    let mut web = Service {
        name: "website".into(),
        description: "shop".into(),
        dependencies: vec![Member::Host(lb)],
        redundancy_groups: vec![
            RedundancyGroup {
                name: "web servers".into(),
                members: vec![Member::Host(w2), Member::Host(w1)],
            },
            RedundancyGroup {
                name: "any".into(),
                members: vec![Member::HostGroup(g)],
            },
        ],
        services: vec![inner.id],
        ..Default::default()
    };
    web.id = s.create_service(&web).await.unwrap();
    assert_eq!(s.get_service(web.id).await.unwrap(), web);
    web.redundancy_groups.pop();
    web.services.clear();
    s.update_service(&web).await.unwrap();
    assert_eq!(
        s.list_services().await.unwrap(),
        vec![inner.clone(), web.clone()]
    );
    let mut cyclic = inner.clone();
    cyclic.services = vec![web.id];
    s.update_service(&cyclic).await.unwrap();
    assert_eq!(
        s.get_service(inner.id).await.unwrap().services,
        vec![web.id]
    );
}

async fn failed_service_write_leaves_nothing(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    let svc = Service {
        name: "s".into(),
        dependencies: vec![Member::Host(h)],
        redundancy_groups: vec![
            RedundancyGroup {
                name: "ok".into(),
                members: vec![Member::Host(h)],
            },
            RedundancyGroup {
                name: "bad".into(),
                members: vec![Member::HostGroup(4040)],
            },
        ],
        ..Default::default()
    };
    let e = s.create_service(&svc).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::MissingReference {
                entity: "host group",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(field_of(&e), "redundancy_groups[1].members");
    assert!(s.list_services().await.unwrap().is_empty());
    let impact = s.host_delete_impact(h).await.unwrap();
    assert_eq!(impact.get("service_dependencies"), 0);
    assert_eq!(impact.get("redundancy_group_memberships"), 0);

    let mut good = svc.clone();
    good.redundancy_groups.pop();
    good.id = s.create_service(&good).await.unwrap();
    let mut bad = good.clone();
    bad.services = vec![31337];
    assert_eq!(
        field_of(&s.update_service(&bad).await.unwrap_err()),
        "services"
    );
    assert_eq!(s.get_service(good.id).await.unwrap(), good);
}

async fn alerts_round_trip(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    let g = s
        .create_host_group(&HostGroup {
            name: "g".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let c = s
        .create_check(&check("c", vec![h], &["a.cpu"]))
        .await
        .unwrap();
    let svc = s
        .create_service(&Service {
            name: "s".into(),
            dependencies: vec![Member::Host(h)],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut a = alert("page me");
    a.scope = AlertScope {
        all_hosts: false,
        all_services: true,
        hosts: vec![h],
        host_groups: vec![g],
        services: vec![svc],
    };
    a.plugins = vec!["a.cpu".into()];
    a.checks = vec![c];
    a.enabled = false;
    a.id = s.create_alert(&a).await.unwrap();
    assert_eq!(s.get_alert(a.id).await.unwrap(), a);
    a.to_states = vec![Health::Degraded];
    a.plugins.clear();
    s.update_alert(&a).await.unwrap();
    assert_eq!(s.list_alerts().await.unwrap(), vec![a.clone()]);

    let mut bad = alert("other");
    bad.plugins = vec!["no.such".into()];
    assert_eq!(
        field_of(&s.create_alert(&bad).await.unwrap_err()),
        "plugins"
    );
    let mut bad = alert("other");
    bad.scope.services = vec![9];
    assert_eq!(
        field_of(&s.create_alert(&bad).await.unwrap_err()),
        "scope.services"
    );
    assert_eq!(s.list_alerts().await.unwrap().len(), 1);
    assert_eq!(
        field_of(&s.create_alert(&alert("page me")).await.unwrap_err()),
        "name"
    );
    s.delete_alert(a.id).await.unwrap();
    assert!(matches!(
        s.get_alert(a.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn classifier_overrides(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let mut o = ClassifierOverride {
        id: 0,
        plugin_id: "a.cpu".into(),
        target: OverrideTarget::Host(h),
        n_historical: 5,
        code: "return \"major\"".into(),
    };
    o.id = s.create_override(&o).await.unwrap();
    assert_eq!(s.get_override(o.id).await.unwrap(), o);
    let e = s.create_override(&o).await.unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }));
    assert_eq!(field_of(&e), "target");
    let mut missing = o.clone();
    missing.target = OverrideTarget::HostGroup(77);
    let e = s.create_override(&missing).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::MissingReference {
                entity: "host group",
                ..
            }
        ),
        "{e}"
    );
    missing.plugin_id = "no.such".into();
    assert_eq!(
        field_of(&s.create_override(&missing).await.unwrap_err()),
        "plugin_id"
    );
    o.n_historical = 50;
    s.update_override(&o).await.unwrap();
    assert_eq!(s.list_overrides().await.unwrap(), vec![o.clone()]);
    s.delete_override(o.id).await.unwrap();
    assert!(s.list_overrides().await.unwrap().is_empty());
}

async fn users_by_name_and_hash(s: &Store) {
    let mut u = User {
        id: 0,
        name: "alice".into(),
        role: Role::Admin,
        password_hash: "$argon2id$v=19$x".into(),
    };
    u.id = s.create_user(&u).await.unwrap();
    assert_eq!(s.find_user_by_name("alice").await.unwrap(), Some(u.clone()));
    assert_eq!(s.find_user_by_name("bob").await.unwrap(), None);
    let json = serde_json::to_string(&s.get_user(u.id).await.unwrap()).unwrap();
    assert!(!json.contains("argon2"), "hash serialized: {json}");
    // An edit arriving through the API has no hash: the stored one stays.
    let edit = User {
        password_hash: String::new(),
        role: Role::Viewer,
        ..u.clone()
    };
    s.update_user(&edit).await.unwrap();
    let got = s.get_user(u.id).await.unwrap();
    assert_eq!(
        (got.role, got.password_hash.as_str()),
        (Role::Viewer, "$argon2id$v=19$x")
    );
    let e = s
        .create_user(&User {
            id: 0,
            name: "alice".into(),
            role: Role::Viewer,
            password_hash: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "name");
    let e = s
        .create_user(&User {
            id: 0,
            name: "a:b".into(),
            role: Role::Viewer,
            password_hash: String::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)));
    s.delete_user(u.id).await.unwrap();
    assert!(s.list_users().await.unwrap().is_empty());
}

async fn api_tokens_by_hash(s: &Store) {
    let mk = |name: &str, role| User {
        id: 0,
        name: name.into(),
        role,
        password_hash: "h".into(),
    };
    let alice = s.create_user(&mk("alice", Role::Admin)).await.unwrap();
    let bob = s.create_user(&mk("bob", Role::Viewer)).await.unwrap();
    let a = s
        .create_api_token(alice, "backup script", "aa11", 1000)
        .await
        .unwrap();
    assert_eq!(
        (
            a.user_name.as_str(),
            a.name.as_str(),
            a.created,
            a.last_used,
            a.revoked
        ),
        ("alice", "backup script", 1000, None, false)
    );
    let b = s
        .create_api_token(bob, "grafana", "bb22", 2000)
        .await
        .unwrap();
    // The same secret hash twice would make a lookup ambiguous.
    assert!(s
        .create_api_token(bob, "again", "bb22", 3000)
        .await
        .is_err());
    let e = s
        .create_api_token(bob, " ", "cc33", 3000)
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "name");
    let e = s
        .create_api_token(999, "x", "dd44", 3000)
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "user_id");

    let found = s.find_api_token("bb22").await.unwrap().unwrap();
    assert_eq!((found.token.id, found.role), (b.id, Role::Viewer));
    assert_eq!(found.secret_sha256, "bb22");
    assert!(s.find_api_token("zz").await.unwrap().is_none());

    let ids = |v: Vec<ApiToken>| v.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_api_tokens(None).await.unwrap()),
        vec![b.id, a.id]
    );
    assert_eq!(
        ids(s.list_api_tokens(Some(alice)).await.unwrap()),
        vec![a.id]
    );

    s.touch_api_token(a.id, 5000).await.unwrap();
    s.revoke_api_token(a.id).await.unwrap();
    let got = s.get_api_token(a.id).await.unwrap();
    assert_eq!((got.last_used, got.revoked), (Some(5000), true));
    assert!(
        s.find_api_token("aa11")
            .await
            .unwrap()
            .unwrap()
            .token
            .revoked
    );
    assert!(matches!(
        s.revoke_api_token(12345).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));

    // A deleted user's tokens go with it.
    s.delete_user(bob).await.unwrap();
    assert!(s.find_api_token("bb22").await.unwrap().is_none());
    assert_eq!(ids(s.list_api_tokens(None).await.unwrap()), vec![a.id]);
}

async fn system_log(s: &Store) {
    let msg = |time, category, title: &str| SystemLogMessage {
        id: 0,
        time,
        category,
        title: title.into(),
        message: format!("{title} happened"),
        read: false,
    };
    let a = s
        .add_log(&msg(100, LogCategory::Dispatch, "a"))
        .await
        .unwrap();
    let b = s
        .add_log(&msg(300, LogCategory::Storage, "b"))
        .await
        .unwrap();
    let c = s
        .add_log(&msg(200, LogCategory::Dispatch, "c"))
        .await
        .unwrap();
    let titles = |v: Vec<SystemLogMessage>| v.into_iter().map(|m| m.title).collect::<Vec<_>>();
    assert_eq!(
        titles(s.list_log(&LogFilter::default()).await.unwrap()),
        ["b", "c", "a"]
    );
    let dispatch = LogFilter {
        category: Some(LogCategory::Dispatch),
        ..Default::default()
    };
    assert_eq!(titles(s.list_log(&dispatch).await.unwrap()), ["c", "a"]);
    let window = LogFilter {
        since: Some(150),
        until: Some(300),
        ..Default::default()
    };
    assert_eq!(titles(s.list_log(&window).await.unwrap()), ["c"]);
    let page = LogFilter {
        limit: 1,
        before_id: Some(c),
        ..Default::default()
    };
    assert_eq!(titles(s.list_log(&page).await.unwrap()), ["b"]);
    assert_eq!(s.unread_log_count().await.unwrap(), 3);
    s.mark_log_read(b).await.unwrap();
    assert_eq!(s.unread_log_count().await.unwrap(), 2);
    let unread = LogFilter {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(titles(s.list_log(&unread).await.unwrap()), ["c", "a"]);
    assert!(s.list_log(&LogFilter::default()).await.unwrap()[0].read);
    assert_eq!(s.mark_all_log_read().await.unwrap(), 2);
    assert_eq!(s.unread_log_count().await.unwrap(), 0);
    assert!(matches!(
        s.mark_log_read(a + b + c + 100).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn results_latest_and_history(s: &Store) {
    use Classification::*;
    let h = s.create_host(&host("h")).await.unwrap();
    let h2 = s.create_host(&host("h2")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    s.put_plugin(&plugin("a.mem"), &package()).await.unwrap();
    let c = s
        .create_check(&check("c", vec![h], &["a.cpu"]))
        .await
        .unwrap();
    let mut batch: Vec<CheckResult> = (0..10)
        .map(|i| result(h, "a.cpu", i * 60_000, Some(i as f64), Ok))
        .collect();
    batch[9].classification = Major;
    batch[9].check_id = Some(c);
    batch[9].result_type = ResultType::ConnectionTimeout;
    batch[9].value = None;
    batch.push(result(h2, "a.mem", 5, Some(1.5), Minor));
    s.insert_results(&batch).await.unwrap();

    assert_eq!(
        s.latest_result(h, "a.cpu").await.unwrap(),
        Some(batch[9].clone())
    );
    assert_eq!(s.latest_result(h, "a.mem").await.unwrap(), None);
    let last = s.last_results(h, "a.cpu", 3).await.unwrap();
    assert_eq!(last, batch[7..10].to_vec(), "last n, oldest first");
    let range = s.results_range(h, "a.cpu", 60_000, 180_000).await.unwrap();
    assert_eq!(range, batch[1..3].to_vec());
    assert!(s
        .results_range(h, "no.such", 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());

    // A batch that arrives late does not replace a newer latest result.
    s.insert_results(&[result(h, "a.cpu", 30_000, Some(100.0), Critical)])
        .await
        .unwrap();
    assert_eq!(
        s.latest_result(h, "a.cpu")
            .await
            .unwrap()
            .unwrap()
            .timestamp,
        540_000
    );
    assert_eq!(
        s.results_range(h, "a.cpu", 0, 60_000).await.unwrap().len(),
        2
    );

    let mut latest = s.latest_classifications().await.unwrap();
    latest.sort_by_key(|l| l.host_id);
    assert_eq!(latest.len(), 2);
    assert_eq!(
        (
            latest[0].host_id,
            latest[0].plugin_id.as_str(),
            latest[0].classification
        ),
        (h, "a.cpu", Major)
    );
    assert_eq!((latest[1].host_id, latest[1].classification), (h2, Minor));
    let for_host = s.latest_results_for_host(h2).await.unwrap();
    assert_eq!(for_host, vec![batch[10].clone()]);
    s.insert_results(&[]).await.unwrap();
}

async fn rollups_merge_across_batches(s: &Store) {
    use Classification::*;
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let hour = 3_600_000;
    s.insert_results(&[
        result(h, "a.cpu", hour, Some(4.0), Ok),
        result(h, "a.cpu", hour + 60_000, Some(2.0), Minor),
    ])
    .await
    .unwrap();
    s.insert_results(&[
        result(h, "a.cpu", hour + 120_000, Some(9.0), Ok),
        result(h, "a.cpu", hour + 180_000, None, Ok),
        result(h, "a.cpu", hour + 600_000, Some(1.0), Unknown), // third 5-minute bucket
    ])
    .await
    .unwrap();
    let five = s
        .rollups_range(h, "a.cpu", Resolution::FiveMinutes, hour, 2 * hour)
        .await
        .unwrap();
    assert_eq!(five.len(), 2);
    let b = &five[0];
    assert_eq!(
        (b.bucket_start, b.min, b.max, b.count, b.worst),
        (hour, Some(2.0), Some(9.0), 4, Minor)
    );
    assert_eq!(b.avg, Some(5.0));
    assert_eq!((five[1].bucket_start, five[1].count), (hour + 600_000, 1));
    let hourly = s
        .rollups_range(h, "a.cpu", Resolution::OneHour, hour, 2 * hour)
        .await
        .unwrap();
    assert_eq!(hourly.len(), 1);
    assert_eq!(
        (
            hourly[0].min,
            hourly[0].max,
            hourly[0].count,
            hourly[0].worst
        ),
        (Some(1.0), Some(9.0), 5, Minor)
    );
    assert_eq!(hourly[0].avg, Some(4.0));
    // A bucket of results without values has no min/avg/max but still counts them.
    s.insert_results(&[result(h, "a.cpu", 5 * hour, None, Critical)])
        .await
        .unwrap();
    let empty = s
        .rollups_range(h, "a.cpu", Resolution::OneHour, 5 * hour, 6 * hour)
        .await
        .unwrap();
    assert_eq!(
        (empty[0].min, empty[0].avg, empty[0].count, empty[0].worst),
        (None, None, 1, Critical)
    );
}

async fn batch_with_unknown_reference_is_refused_whole(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let good = result(h, "a.cpu", 1, Some(1.0), Classification::Ok);
    let e = s
        .insert_results(&[
            good.clone(),
            result(h + 100, "a.cpu", 2, None, Classification::Ok),
        ])
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "host_id");
    let e = s
        .insert_results(&[
            good.clone(),
            result(h, "no.such", 2, None, Classification::Ok),
        ])
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "plugin_id");
    let mut bad_check = good.clone();
    bad_check.check_id = Some(404);
    assert_eq!(
        field_of(&s.insert_results(&[bad_check]).await.unwrap_err()),
        "check_id"
    );
    assert_eq!(s.latest_result(h, "a.cpu").await.unwrap(), None);
    assert!(s.results_range(h, "a.cpu", 0, 10).await.unwrap().is_empty());
    assert!(s
        .rollups_range(h, "a.cpu", Resolution::OneHour, 0, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn series_picks_resolution_by_span(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let now = prophasis_store::now_millis();
    let day = 24 * 3_600_000;
    let batch: Vec<CheckResult> = (0..48)
        .map(|i| {
            result(
                h,
                "a.cpu",
                now - i * 3_600_000,
                Some(i as f64),
                Classification::Ok,
            )
        })
        .collect();
    s.insert_results(&batch).await.unwrap();
    match s.series(h, "a.cpu", now - day, now + 1).await.unwrap() {
        Series::Raw(points) => assert_eq!(points.len(), 25),
        other => panic!("one day should be raw: {other:?}"),
    }
    match s.series(h, "a.cpu", now - 30 * day, now + 1).await.unwrap() {
        Series::FiveMinutes(points) => assert_eq!(points.len(), 48),
        other => panic!("a month should be 5-minute rollups: {other:?}"),
    }
    match s
        .series(h, "a.cpu", now - 365 * day, now + 1)
        .await
        .unwrap()
    {
        Series::OneHour(points) => {
            assert_eq!(points.len(), 48);
            assert_eq!(points.iter().map(|p| p.count).sum::<i64>(), 48);
        }
        other => panic!("a year should be hourly rollups: {other:?}"),
    }
}

async fn retention_removes_old_rows(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let day = 24 * 3_600_000;
    let now = 10_000 * day;
    s.set_retention(prophasis_store::Retention {
        raw_days: 7,
        five_minute_days: 30,
        hourly_days: 365,
    });
    let ages = [1, 10, 100, 1000];
    let batch: Vec<CheckResult> = ages
        .iter()
        .map(|a| result(h, "a.cpu", now - a * day, Some(1.0), Classification::Ok))
        .collect();
    s.insert_results(&batch).await.unwrap();
    let report = s.apply_retention(now).await.unwrap();
    assert_eq!(
        (
            report.results,
            report.five_minute_rollups,
            report.hourly_rollups
        ),
        (3, 2, 1)
    );
    let left = s.results_range(h, "a.cpu", 0, now).await.unwrap();
    assert_eq!(left, vec![batch[0].clone()]);
    assert_eq!(
        s.rollups_range(h, "a.cpu", Resolution::FiveMinutes, 0, now)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.rollups_range(h, "a.cpu", Resolution::OneHour, 0, now)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(s.apply_retention(now).await.unwrap(), Default::default());

    // A series that stopped reporting long ago keeps its latest result and, with it, its
    // open buckets (they live in the latest row); only closed buckets expire.
    s.put_plugin(&plugin("a.old"), &package()).await.unwrap();
    let old = result(
        h,
        "a.old",
        now - 1000 * day,
        Some(4.0),
        Classification::Minor,
    );
    s.insert_results(std::slice::from_ref(&old)).await.unwrap();
    s.apply_retention(now).await.unwrap();
    assert_eq!(s.latest_result(h, "a.old").await.unwrap(), Some(old));
    for resolution in Resolution::ALL {
        let kept = s
            .rollups_range(h, "a.old", resolution, 0, now)
            .await
            .unwrap();
        assert_eq!(
            (kept.len(), kept[0].count, kept[0].avg),
            (1, 1, Some(4.0)),
            "{resolution:?}"
        );
    }
}

async fn deleting_a_host_takes_its_data(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    let other = s.create_host(&host("other")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let g = s
        .create_host_group(&HostGroup {
            name: "g".into(),
            member_hosts: vec![h, other],
            ..Default::default()
        })
        .await
        .unwrap();
    let c = s
        .create_check(&check("c", vec![h, other], &["a.cpu"]))
        .await
        .unwrap();
    let svc = s
        .create_service(&Service {
            name: "s".into(),
            dependencies: vec![Member::Host(h), Member::Host(other)],
            redundancy_groups: vec![
                RedundancyGroup {
                    name: "only h".into(),
                    members: vec![Member::Host(h)],
                },
                RedundancyGroup {
                    name: "both".into(),
                    members: vec![Member::Host(h), Member::Host(other)],
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut a = alert("a");
    a.scope.hosts = vec![h];
    let a = s.create_alert(&a).await.unwrap();
    s.create_override(&ClassifierOverride {
        id: 0,
        plugin_id: "a.cpu".into(),
        target: OverrideTarget::Host(h),
        n_historical: 1,
        code: "x".into(),
    })
    .await
    .unwrap();
    s.insert_results(&[
        result(h, "a.cpu", 1, Some(1.0), Classification::Ok),
        result(h, "a.cpu", 2, Some(1.0), Classification::Ok),
        result(other, "a.cpu", 1, Some(1.0), Classification::Ok),
    ])
    .await
    .unwrap();

    let impact = s.host_delete_impact(h).await.unwrap();
    for (kind, n) in [
        ("results", 2),
        ("rollups", 2),
        ("latest_results", 1),
        ("host_group_memberships", 1),
        ("check_memberships", 1),
        ("service_dependencies", 1),
        ("redundancy_group_memberships", 2),
        ("redundancy_groups", 1),
        ("alert_scopes", 1),
        ("classifier_overrides", 1),
    ] {
        assert_eq!(impact.get(kind), n, "{kind} in {impact:?}");
    }
    s.delete_host(h).await.unwrap();
    assert_eq!(s.get_host_group(g).await.unwrap().member_hosts, vec![other]);
    assert_eq!(s.get_check(c).await.unwrap().hosts, vec![other]);
    let svc = s.get_service(svc).await.unwrap();
    assert_eq!(svc.dependencies, vec![Member::Host(other)]);
    assert_eq!(
        svc.redundancy_groups.len(),
        1,
        "the group that only held h is gone"
    );
    assert_eq!(svc.redundancy_groups[0].members, vec![Member::Host(other)]);
    assert!(s.get_alert(a).await.unwrap().scope.hosts.is_empty());
    assert!(s.list_overrides().await.unwrap().is_empty());
    assert!(s.results_range(h, "a.cpu", 0, 10).await.unwrap().is_empty());
    assert!(s
        .rollups_range(h, "a.cpu", Resolution::OneHour, 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.latest_classifications().await.unwrap().len(), 1);
    assert_eq!(
        s.results_range(other, "a.cpu", 0, 10).await.unwrap().len(),
        1,
        "other host untouched"
    );
}

async fn deleting_a_plugin_takes_its_data(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    s.put_plugin(&plugin("a.mem"), &package()).await.unwrap();
    let c = s
        .create_check(&check("c", vec![h], &["a.cpu", "a.mem"]))
        .await
        .unwrap();
    let mut only_cpu = alert("only cpu");
    only_cpu.plugins = vec!["a.cpu".into()];
    let only_cpu = s.create_alert(&only_cpu).await.unwrap();
    let mut both = alert("both");
    both.plugins = vec!["a.cpu".into(), "a.mem".into()];
    let both = s.create_alert(&both).await.unwrap();
    s.create_override(&ClassifierOverride {
        id: 0,
        plugin_id: "a.cpu".into(),
        target: OverrideTarget::Check(c),
        n_historical: 1,
        code: "x".into(),
    })
    .await
    .unwrap();
    s.insert_results(&[
        result(h, "a.cpu", 1, Some(1.0), Classification::Ok),
        result(h, "a.mem", 1, Some(1.0), Classification::Ok),
    ])
    .await
    .unwrap();
    let impact = s.plugin_delete_impact("a.cpu").await.unwrap();
    for (kind, n) in [
        ("results", 1),
        ("rollups", 2),
        ("latest_results", 1),
        ("check_assignments", 1),
        ("alert_restrictions", 2),
        ("alerts_disabled", 1),
        ("classifier_overrides", 1),
    ] {
        assert_eq!(impact.get(kind), n, "{kind} in {impact:?}");
    }
    s.delete_plugin("a.cpu").await.unwrap();
    assert!(matches!(
        s.get_plugin("a.cpu").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.plugin_package("a.cpu").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.get_check(c).await.unwrap().plugins,
        vec!["a.mem".to_string()]
    );
    let only_cpu = s.get_alert(only_cpu).await.unwrap();
    assert!(only_cpu.plugins.is_empty());
    assert!(!only_cpu.enabled, "an alert must not widen to every plugin");
    let both = s.get_alert(both).await.unwrap();
    assert_eq!(
        (both.plugins, both.enabled),
        (vec!["a.mem".to_string()], true)
    );
    assert!(s.list_overrides().await.unwrap().is_empty());
    assert_eq!(s.latest_classifications().await.unwrap().len(), 1);
    assert!(matches!(
        s.delete_plugin("a.cpu").await,
        Err(StoreError::NotFound { .. })
    ));
    // The id is free again and starts with no history.
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    assert!(s.results_range(h, "a.cpu", 0, 10).await.unwrap().is_empty());
}

/// Host `h` with plugin `a.cpu` and two checks of it on that host.
async fn host_with_two_checks(s: &Store) -> (HostId, CheckId, CheckId) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let mut ids = Vec::new();
    for name in ["c1", "c2"] {
        ids.push(
            s.create_check(&check(name, vec![h], &["a.cpu"]))
                .await
                .unwrap(),
        );
    }
    (h, ids[0], ids[1])
}

async fn deleting_a_check_keeps_results(s: &Store) {
    let (h, c, c2) = host_with_two_checks(s).await;
    let sch = s
        .create_schedule(&Schedule {
            name: "s".into(),
            checks: vec![c, c2],
            intervals: vec![Interval {
                id: 0,
                start: 0,
                period_seconds: 60,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut a = alert("a");
    a.checks = vec![c];
    let a = s.create_alert(&a).await.unwrap();
    let mut r = result(h, "a.cpu", 1, Some(1.0), Classification::Ok);
    r.check_id = Some(c);
    s.insert_results(std::slice::from_ref(&r)).await.unwrap();
    let impact = s.check_delete_impact(c).await.unwrap();
    assert_eq!(
        (
            impact.get("schedule_memberships"),
            impact.get("alerts_disabled")
        ),
        (1, 1)
    );
    s.delete_check(c).await.unwrap();
    let kept = s.results_range(h, "a.cpu", 0, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].check_id, None);
    assert_eq!(
        s.latest_result(h, "a.cpu").await.unwrap().unwrap().check_id,
        None
    );
    assert_eq!(s.get_schedule(sch).await.unwrap().checks, vec![c2]);
    let a = s.get_alert(a).await.unwrap();
    assert!(a.checks.is_empty() && !a.enabled);
    assert!(matches!(
        s.check_delete_impact(c).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn deleting_groups_and_services(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    let inner = s
        .create_host_group(&HostGroup {
            name: "inner".into(),
            member_hosts: vec![h],
            ..Default::default()
        })
        .await
        .unwrap();
    let outer = s
        .create_host_group(&HostGroup {
            name: "outer".into(),
            member_groups: vec![inner],
            ..Default::default()
        })
        .await
        .unwrap();
    let child = s
        .create_service(&Service {
            name: "child".into(),
            redundancy_groups: vec![RedundancyGroup {
                name: "r".into(),
                members: vec![Member::HostGroup(inner)],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let parent = s
        .create_service(&Service {
            name: "parent".into(),
            dependencies: vec![Member::Host(h)],
            services: vec![child],
            ..Default::default()
        })
        .await
        .unwrap();
    let impact = s.host_group_delete_impact(inner).await.unwrap();
    assert_eq!(
        (
            impact.get("member_entries"),
            impact.get("host_group_memberships"),
            impact.get("redundancy_groups")
        ),
        (1, 1, 1)
    );
    s.delete_host_group(inner).await.unwrap();
    assert!(s
        .get_host_group(outer)
        .await
        .unwrap()
        .member_groups
        .is_empty());
    assert!(s
        .get_service(child)
        .await
        .unwrap()
        .redundancy_groups
        .is_empty());
    assert_eq!(s.get_host(h).await.unwrap().name, "h", "member hosts stay");
    assert_eq!(
        s.service_delete_impact(child)
            .await
            .unwrap()
            .get("nested_in_services"),
        1
    );
    s.delete_service(child).await.unwrap();
    assert!(s.get_service(parent).await.unwrap().services.is_empty());
    assert!(matches!(
        s.delete_service(child).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_host_group(inner).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn concurrent_writers_do_not_fail(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    // Result batches and configuration edits at the same time, as the server does them:
    // on SQLite they must queue for the write lock, never fail with "database is locked".
    let writer = |w: i64| async move {
        for b in 0..20 {
            let batch: Vec<CheckResult> = (0..50)
                .map(|i| {
                    result(
                        h,
                        "a.cpu",
                        w * 1_000_000 + b * 1_000 + i,
                        Some(1.0),
                        Classification::Ok,
                    )
                })
                .collect();
            s.insert_results(&batch).await.unwrap();
        }
    };
    let editor = async {
        for i in 0..20 {
            s.create_host(&host(&format!("n{i}"))).await.unwrap();
        }
    };
    tokio::join!(writer(0), writer(1), writer(2), editor);
    assert_eq!(
        s.results_range(h, "a.cpu", 0, i64::MAX)
            .await
            .unwrap()
            .len(),
        3 * 20 * 50
    );
    assert_eq!(s.list_hosts().await.unwrap().len(), 21);
    let hourly = s
        .rollups_range(h, "a.cpu", Resolution::OneHour, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        hourly.iter().map(|r| r.count).sum::<i64>(),
        3000,
        "no rollup update lost"
    );
}

/// A rollup without its host: start, min, max, count, worst, avg in millionths.
type RollupFields = (
    Millis,
    Option<f64>,
    Option<f64>,
    i64,
    Classification,
    Option<i64>,
);

/// The batch writer aggregates rollups and picks the latest result in Rust before writing;
/// a batch holding many results of a few series, duplicates and late results included,
/// must leave exactly what the same results written one per call leave.
async fn one_batch_and_one_by_one_store_the_same(s: &Store) {
    use Classification::*;
    let batched = s.create_host(&host("batched")).await.unwrap();
    let single = s.create_host(&host("single")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    s.put_plugin(&plugin("a.mem"), &package()).await.unwrap();
    let classes = [Ok, Minor, Ok, Major, Ok, Unknown, Critical];
    let mut results = Vec::new();
    // Three hours of one result every 2 minutes per plugin, given out of order, with
    // values missing, NaN, and one millisecond given twice (the second wins).
    for i in (0..90i64).rev() {
        for (p, plugin_id) in ["a.cpu", "a.mem"].iter().enumerate() {
            let value = match i % 11 {
                0 => None,
                5 => Some(f64::NAN),
                _ => Some((i * 7 % 23) as f64 + p as f64 / 4.0),
            };
            let c = classes[(i as usize + p) % classes.len()];
            results.push(result(0, plugin_id, 3_600_000 + i * 120_000, value, c));
        }
    }
    results.push(result(0, "a.cpu", 3_600_000, Some(99.0), Major));
    let for_host = |h: HostId| -> Vec<CheckResult> {
        results
            .iter()
            .cloned()
            .map(|mut r| {
                r.host_id = h;
                r
            })
            .collect()
    };
    s.insert_results(&for_host(batched)).await.unwrap();
    for r in for_host(single) {
        s.insert_results(std::slice::from_ref(&r)).await.unwrap();
    }
    let (from, to) = (0, 10 * 3_600_000);
    for plugin_id in ["a.cpu", "a.mem"] {
        let strip = |rs: Vec<CheckResult>| -> Vec<CheckResult> {
            rs.into_iter()
                .map(|mut r| {
                    r.host_id = 0;
                    r
                })
                .collect()
        };
        let a = strip(s.results_range(batched, plugin_id, from, to).await.unwrap());
        let b = strip(s.results_range(single, plugin_id, from, to).await.unwrap());
        assert_eq!(a.len(), 90, "one row per millisecond");
        assert_eq!(a, b, "{plugin_id}: raw results");
        let latest_a = s.latest_result(batched, plugin_id).await.unwrap().unwrap();
        let latest_b = s.latest_result(single, plugin_id).await.unwrap().unwrap();
        assert_eq!(latest_a.timestamp, 3_600_000 + 89 * 120_000);
        assert_eq!(
            (latest_a.timestamp, latest_a.value, latest_a.classification),
            (latest_b.timestamp, latest_b.value, latest_b.classification)
        );
        for resolution in Resolution::ALL {
            let strip = |rs: Vec<Rollup>| -> Vec<RollupFields> {
                rs.into_iter()
                    // Sums may differ in the last bits with the order of additions.
                    .map(|r| {
                        (
                            r.bucket_start,
                            r.min,
                            r.max,
                            r.count,
                            r.worst,
                            r.avg.map(|a| (a * 1e6).round() as i64),
                        )
                    })
                    .collect()
            };
            let a = strip(
                s.rollups_range(batched, plugin_id, resolution, from, to)
                    .await
                    .unwrap(),
            );
            let b = strip(
                s.rollups_range(single, plugin_id, resolution, from, to)
                    .await
                    .unwrap(),
            );
            assert!(!a.is_empty());
            // One-by-one writes count the replaced result twice (documented): compare
            // the series without the millisecond given twice.
            if plugin_id == "a.mem" {
                assert_eq!(a, b, "{plugin_id} {resolution:?} rollups");
            } else {
                assert_eq!(
                    a[1..],
                    b[1..],
                    "{plugin_id} {resolution:?} rollups after the first bucket"
                );
                assert_eq!(
                    a[0].3 + 1,
                    b[0].3,
                    "the replaced result is counted once in a batch"
                );
            }
        }
    }
}

/// Every field of a long range survives the backend's bulk read path (SQLite's C API,
/// PostgreSQL's binary COPY): NULLs, text, negative and large times, all result types.
async fn long_range_read_returns_every_field(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let c = s
        .create_check(&check("c", vec![h], &["a.cpu"]))
        .await
        .unwrap();
    let types = [
        ResultType::Plugin,
        ResultType::ConnectionTimeout,
        ResultType::CommandUnsuccessful,
    ];
    let batch: Vec<CheckResult> = (0..5_000i64)
        .map(|i| CheckResult {
            host_id: h,
            plugin_id: "a.cpu".into(),
            check_id: (i % 3 == 0).then_some(c),
            timestamp: -1_000_000 + i * 1_000_000_007,
            value: (i % 4 != 0).then_some(i as f64 * -0.5),
            message: if i % 5 == 0 {
                String::new()
            } else {
                format!("µ {i} — ok")
            },
            result_type: types[i as usize % types.len()],
            classification: [Classification::Ok, Classification::Critical][i as usize % 2],
        })
        .collect();
    s.insert_results(&batch).await.unwrap();
    let all = s
        .results_range(h, "a.cpu", i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(all, batch);
    let some = s
        .results_range(h, "a.cpu", batch[10].timestamp, batch[20].timestamp)
        .await
        .unwrap();
    assert_eq!(some, batch[10..20].to_vec());
}

/// Open buckets live in the latest rows and closed ones in rollups (migration 0005): for
/// batches in random order (so late results, buckets closed by a later batch and reopened
/// by late data), dense and sparse series, and values that are missing or NaN, every
/// rollup read must equal the aggregation of the raw results stored so far.
async fn rollups_match_raw_results_for_random_batches(s: &Store) {
    const MIN: i64 = 60_000;
    // Compaction every few minutes of data (cut on any minute), so results are folded
    // while others still wait in the recent tier, many times over.
    s.set_compaction_minutes(4, 1);
    let mut hosts = Vec::new();
    for name in ["r1", "r2", "r3"] {
        hosts.push(s.create_host(&host(name)).await.unwrap());
    }
    for p in ["a.cpu", "a.mem"] {
        s.put_plugin(&plugin(p), &package()).await.unwrap();
    }
    let mut series: Vec<(HostId, &str)> = Vec::new();
    for h in &hosts {
        series.push((*h, "a.cpu"));
        series.push((*h, "a.mem"));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut all = Vec::new();
    let start = 1_700_000_000_000 - 1_700_000_000_000 % (24 * 60 * MIN);
    for (n, (h, p)) in series.iter().enumerate() {
        let mut ts = start + rng.below(10) as i64 * MIN;
        // Series 0 and 1 report every minute (dense), the others with gaps of up to
        // 3 hours (sparse), some at odd milliseconds.
        for _ in 0..150 {
            let value = match rng.below(10) {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(f64::INFINITY),
                // Integers, so sums are exact whatever the order of addition.
                _ => Some(rng.below(2001) as f64 - 1000.0),
            };
            let c = Classification::ALL[rng.below(5) as usize];
            all.push(result(*h, p, ts, value, c));
            ts += if n < 2 {
                MIN
            } else {
                1 + rng.below(180 * MIN as u64) as i64
            };
        }
    }
    // Shuffle, then store in batches of 1 to 60 results.
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut stored: Vec<CheckResult> = Vec::new();
    let mut at = 0;
    let mut batches = 0;
    while at < all.len() {
        let n = (1 + rng.below(60) as usize).min(all.len() - at);
        let batch = &all[at..at + n];
        s.insert_results(batch).await.unwrap();
        stored.extend_from_slice(batch);
        at += n;
        batches += 1;
        if batches % 6 == 0 {
            assert_matches_raw(s, &stored, &series).await;
        }
    }
    assert_matches_raw(s, &stored, &series).await;
    // Then in time order, as a live server writes: each batch one minute of every series.
    let mut next = Vec::new();
    let mut ts = stored.iter().map(|r| r.timestamp).max().unwrap();
    for _ in 0..70 {
        ts += MIN;
        let batch: Vec<CheckResult> = series
            .iter()
            .map(|(h, p)| result(*h, p, ts, Some(rng.below(100) as f64), Classification::Ok))
            .collect();
        s.insert_results(&batch).await.unwrap();
        next.extend(batch);
    }
    stored.extend(next);
    assert_matches_raw(s, &stored, &series).await;
}

/// PostgreSQL writes a batch's results with a plain INSERT and retries with the upsert
/// when one of them is already stored: the whole batch must still be stored.
async fn a_result_stored_again_replaces_the_stored_one(s: &Store) {
    use Classification::*;
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    s.insert_results(&[result(h, "a.cpu", 1_000, Some(1.0), Ok)])
        .await
        .unwrap();
    let again = vec![
        result(h, "a.cpu", 1_000, Some(2.0), Major),
        result(h, "a.cpu", 2_000, Some(3.0), Ok),
    ];
    s.insert_results(&again).await.unwrap();
    assert_eq!(s.results_range(h, "a.cpu", 0, 10_000).await.unwrap(), again);
    assert_eq!(
        s.latest_result(h, "a.cpu").await.unwrap(),
        Some(again[1].clone())
    );
    // Both backends fold results into the rollups when they leave the recent tier, so a
    // result replaced before then is counted once; one replaced after it was folded is
    // counted twice, as documented.
    let five = s
        .rollups_range(h, "a.cpu", Resolution::FiveMinutes, 0, 10_000)
        .await
        .unwrap();
    let counted = 2;
    assert_eq!(
        (five.len(), five[0].count, five[0].worst),
        (1, counted, Major)
    );
}

/// Results stored out of time order (late batches, replaced results) still read back in
/// time order, whatever order the scan meets them in (a bitmap heap scan meets them in
/// heap order).
async fn range_read_is_in_time_order_however_stored(s: &Store) {
    let h = s.create_host(&host("h")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    s.put_plugin(&plugin("a.mem"), &package()).await.unwrap();
    let minute = 60_000;
    let ok = Classification::Ok;
    // The newest block first, each interleaved with another series.
    for block in (0..4i64).rev() {
        let batch: Vec<CheckResult> = (block * 500..(block + 1) * 500)
            .flat_map(|i| {
                [
                    result(h, "a.cpu", i * minute, Some(i as f64), ok),
                    result(h, "a.mem", i * minute, None, Classification::Minor),
                ]
            })
            .collect();
        s.insert_results(&batch).await.unwrap();
    }
    // A later write of a timestamp replaces the result stored for it.
    let replaced = |i: i64| {
        let mut r = result(h, "a.cpu", i * minute, None, Classification::Critical);
        r.message = String::new();
        r
    };
    let late: Vec<CheckResult> = (0..2000).step_by(7).map(replaced).collect();
    s.insert_results(&late).await.unwrap();
    let expected: Vec<CheckResult> = (0..2000)
        .map(|i| match i % 7 {
            0 => replaced(i),
            _ => result(h, "a.cpu", i * minute, Some(i as f64), ok),
        })
        .collect();
    assert_eq!(
        s.results_range(h, "a.cpu", i64::MIN, i64::MAX)
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        s.results_range(h, "a.cpu", 250 * minute, 1250 * minute)
            .await
            .unwrap(),
        expected[250..1250].to_vec()
    );
}

/// The same case on a PostgreSQL database whose planner may not use index scans, so every
/// range is read in heap order (here newest block first) and must be put in time order
/// by the store's query or by the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_range_read_in_heap_order_is_put_in_time_order() {
    use sqlx::Connection;
    let pg = PgDb::create().await;
    let mut c = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {} SET enable_indexscan = off",
        pg.name
    ))
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let store = Store::open(&pg.url).await.unwrap();
    range_read_is_in_time_order_however_stored(&store).await;
    store.close().await;
}

/// Results that compaction has moved into hourly chunks: a late result merges into its
/// chunk (replacing the same millisecond), results of a deleted check read as results of
/// no check (the other check's keep theirs), and retention drops whole chunks and trims
/// the one its cut-off falls in, on the hour or inside it.
async fn chunked_results_merge_late_data_forget_deleted_checks_and_trim(s: &Store) {
    const HOUR: i64 = 3_600_000;
    const MIN: i64 = 60_000;
    s.set_compaction_minutes(3, 1);
    let (h, c1, c2) = host_with_two_checks(s).await;
    let start = 1_000 * HOUR;
    let mut model: std::collections::BTreeMap<Millis, CheckResult> = Default::default();
    // Three hours of one result a minute, ten minutes to a batch, then one more result ten
    // minutes later: compaction has moved the three hours into chunks.
    for batch in 0..18 {
        let rows: Vec<CheckResult> = (0..10)
            .map(|m| {
                let i = batch * 10 + m;
                let mut r = result(
                    h,
                    "a.cpu",
                    start + i * MIN + 7,
                    Some(i as f64),
                    Classification::Ok,
                );
                r.check_id = Some(if i % 2 == 0 { c1 } else { c2 });
                r.message = format!("minute {i}");
                r
            })
            .collect();
        s.insert_results(&rows).await.unwrap();
        model.extend(rows.into_iter().map(|r| (r.timestamp, r)));
    }
    let last = result(
        h,
        "a.cpu",
        start + 3 * HOUR + 10 * MIN,
        None,
        Classification::Minor,
    );
    s.insert_results(std::slice::from_ref(&last)).await.unwrap();
    model.insert(last.timestamp, last);
    let all = |m: &std::collections::BTreeMap<Millis, CheckResult>| -> Vec<CheckResult> {
        m.values().cloned().collect()
    };
    let read = |from, to| s.results_range(h, "a.cpu", from, to);
    assert_eq!(read(0, start + 4 * HOUR).await.unwrap(), all(&model));

    // Late: one replaces a stored millisecond of the second hour, one is new in it.
    let mut again = result(
        h,
        "a.cpu",
        start + 70 * MIN + 7,
        Some(-1.0),
        Classification::Critical,
    );
    again.message = "given again".into();
    let new = result(
        h,
        "a.cpu",
        start + 70 * MIN + 30_000,
        Some(0.5),
        Classification::Major,
    );
    s.insert_results(&[again.clone(), new.clone()])
        .await
        .unwrap();
    model.insert(again.timestamp, again);
    model.insert(new.timestamp, new);
    assert_eq!(read(0, start + 4 * HOUR).await.unwrap(), all(&model));
    assert_eq!(
        read(start + 69 * MIN, start + 71 * MIN).await.unwrap(),
        model
            .range(start + 69 * MIN..start + 71 * MIN)
            .map(|(_, r)| r.clone())
            .collect::<Vec<_>>(),
        "a range inside one chunk"
    );
    let n = model.len();
    assert_eq!(s.last_results(h, "a.cpu", 500).await.unwrap(), all(&model));
    assert_eq!(
        s.last_results(h, "a.cpu", 75).await.unwrap(),
        all(&model)[n - 75..].to_vec(),
        "the newest 75 span the recent tier and two chunks"
    );
    assert_eq!(
        s.host_delete_impact(h).await.unwrap().0["results"],
        n as i64
    );

    // Deleting c1 leaves its results without a check, c2's untouched.
    s.delete_check(c1).await.unwrap();
    for r in model.values_mut() {
        if r.check_id == Some(c1) {
            r.check_id = None;
        }
    }
    assert_eq!(read(0, start + 4 * HOUR).await.unwrap(), all(&model));

    // Retention: a cut-off inside the second hour, then one on the hour.
    s.set_retention(prophasis_store::Retention {
        raw_days: 1,
        five_minute_days: 400,
        hourly_days: 400,
    });
    for cutoff in [start + HOUR + 17 * MIN + 30_000, start + 3 * HOUR] {
        let gone = model.range(..cutoff).count() as u64;
        let report = s.apply_retention(cutoff + 24 * HOUR).await.unwrap();
        assert_eq!(report.results, gone, "cut-off {cutoff}");
        model.retain(|ts, _| *ts >= cutoff);
        assert_eq!(read(0, start + 4 * HOUR).await.unwrap(), all(&model));
        assert_eq!(s.last_results(h, "a.cpu", 500).await.unwrap(), all(&model));
        assert_eq!(
            s.host_delete_impact(h).await.unwrap().0["results"],
            model.len() as i64
        );
    }
    assert_eq!(model.len(), 1, "only the newest result is left");
}
