//! Handler tests of the REST API with `oneshot` on `router(state)`, one per route family:
//! status codes (201 with the stored entity, 204, 404, 409, 422 naming the field), shapes
//! (no secret in any answer), and who may do what (anonymous 401, viewer 403 on writes,
//! bearer tokens acting with their user's role, revoked tokens 401).

mod api_support;

use api_support::*;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use prophasis_model::{CheckResult, Classification, ResultType};
use serde_json::{json, Value};

fn host(name: &str) -> Value {
    json!({"name": name, "address": "10.0.0.1", "auth_key": "secret-agent-key"})
}

#[tokio::test]
async fn authentication_basic_bearer_anonymous_and_revoked() {
    let api = api().await;
    let (s, body) = api.get("/api/v1/hosts", As::Nobody).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        api.get("/api/v1/hosts", As::Basic("admin")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/api/v1/hosts", api.admin()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/api/v1/hosts", As::Bearer("pph_not-a-real-token"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // A viewer's token reads but does not write.
    assert_eq!(
        api.get("/api/v1/hosts", api.viewer()).await.0,
        StatusCode::OK
    );
    let (s, body) = api.post("/api/v1/hosts", api.viewer(), host("web1")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    // Revoked: refused at once.
    let (s, _) = api
        .delete(
            &format!("/api/v1/tokens/{}", api.viewer_token_id),
            api.viewer(),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/api/v1/hosts", api.viewer()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_are_shown_once_listed_per_user_and_die_with_their_user() {
    let api = api().await;
    let (s, made) = api
        .post(
            "/api/v1/tokens",
            As::Basic("viewer"),
            json!({"name": "grafana"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("pph_"), "{secret}");
    assert_eq!(made["user_name"], "viewer");
    assert_eq!(made["revoked"], false);
    // The new token works and acts as the viewer.
    let (s, list) = api.get("/api/v1/tokens", As::Bearer(&secret)).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["user_name"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| *n == "viewer"), "{list}");
    assert!(!list.to_string().contains(&secret), "secret listed: {list}");
    assert!(list[0]["last_used"].is_i64(), "use recorded: {list}");
    // The admin sees everyone's.
    let (_, all) = api.get("/api/v1/tokens", api.admin()).await;
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    // A viewer cannot revoke someone else's token; it is not even found.
    let admin_token = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user_name"] == "admin")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, _) = api
        .delete(
            &format!("/api/v1/tokens/{admin_token}"),
            As::Bearer(&secret),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = api
        .post("/api/v1/tokens", As::Bearer(&secret), json!({"name": ""}))
        .await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    // Deleting the user kills its tokens.
    let (_, users) = api.get("/api/v1/users", api.admin()).await;
    let viewer_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "viewer")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, _) = api
        .delete(&format!("/api/v1/users/{viewer_id}"), api.admin())
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/api/v1/hosts", As::Bearer(&secret)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn hosts_crud_never_shows_the_agent_key() {
    let api = api().await;
    let (s, created) = api.post("/api/v1/hosts", api.admin(), host("web1")).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["port"], 4048);
    assert!(created.get("auth_key").is_none(), "{created}");
    let (s, body) = api.post("/api/v1/hosts", api.admin(), host("web1")).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate"))
    );
    let (s, body) = api
        .post(
            "/api/v1/hosts",
            api.admin(),
            json!({"name": "x", "address": "a b", "auth_key": "k"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "address");
    let (s, body) = api
        .post(
            "/api/v1/hosts",
            api.admin(),
            json!({"name": "x", "address": "h"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("auth_key"))
    );
    let (s, body) = api
        .post("/api/v1/hosts", api.admin(), json!({"name": 5}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "body");

    // An update without a key keeps the stored one.
    let (s, updated) = api
        .put(
            &format!("/api/v1/hosts/{id}"),
            api.admin(),
            json!({"name": "web1", "address": "10.0.0.2", "port": 4049, "description": "front"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["address"].as_str(), updated["port"].as_i64()),
        (Some("10.0.0.2"), Some(4049))
    );
    assert_eq!(
        api.store.get_host(id).await.unwrap().auth_key,
        "secret-agent-key"
    );
    let (s, list) = api.get("/api/v1/hosts", api.viewer()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("secret-agent-key"));
    let (s, impact) = api
        .get(&format!("/api/v1/hosts/{id}/delete-impact"), api.viewer())
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(impact["counts"].is_object(), "{impact}");
    assert_eq!(
        api.delete(&format!("/api/v1/hosts/{id}"), api.viewer())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.delete(&format!("/api/v1/hosts/{id}"), api.admin())
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, body) = api.get(&format!("/api/v1/hosts/{id}"), api.admin()).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(
        api.get("/api/v1/hosts/abc", api.admin()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/api/v1/hosts/{id}/delete-impact"), api.admin())
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn groups_checks_schedules_services_and_overrides() {
    let api = api().await;
    let (_, h) = api.post("/api/v1/hosts", api.admin(), host("db1")).await;
    let h = h["id"].as_i64().unwrap();
    let (s, p) = upload(
        &api.app,
        api.admin(),
        &[("package", &reference_package("heartbeat"))],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let plugin = p["id"].as_str().unwrap().to_string();

    let (s, g) = api
        .post(
            "/api/v1/host-groups",
            api.admin(),
            json!({"name": "dbs", "member_hosts": [h]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let g = g["id"].as_i64().unwrap();
    let (s, body) = api
        .post(
            "/api/v1/host-groups",
            api.admin(),
            json!({"name": "bad", "member_hosts": [999]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "missing_reference");

    let (s, c) = api
        .post(
            "/api/v1/checks",
            api.admin(),
            json!({"name": "alive", "host_groups": [g], "plugins": [plugin]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let c = c["id"].as_i64().unwrap();
    let (s, sch) = api
        .post(
            "/api/v1/schedules",
            api.admin(),
            json!({"name": "often", "checks": [c], "intervals": [{"start": 0, "period_seconds": 60}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sch}");
    let sch = sch["id"].as_i64().unwrap();
    let (s, svc) = api
        .post(
            "/api/v1/services",
            api.admin(),
            json!({"name": "shop", "dependencies": [{"host_group": g}],
                   "redundancy_groups": [{"name": "db", "members": [{"host": h}]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{svc}");
    let svc = svc["id"].as_i64().unwrap();
    let (s, o) = api
        .post(
            "/api/v1/classifier-overrides",
            api.admin(),
            json!({"plugin_id": plugin, "target": {"host": h}, "n_historical": 1, "code": "return \"ok\""}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let o = o["id"].as_i64().unwrap();
    let (s, body) = api
        .post(
            "/api/v1/classifier-overrides",
            api.admin(),
            json!({"plugin_id": plugin, "target": {"host": h}, "n_historical": 1, "code": "return ("}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("code")),
        "{body}"
    );

    // Update, read back, impact and delete for each.
    let (s, body) = api
        .put(&format!("/api/v1/schedules/{sch}"), api.admin(),
             json!({"name": "often", "checks": [c], "intervals": [{"start": 0, "period_seconds": 0}]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["field"].as_str().unwrap().contains("period"),
        "{body}"
    );
    let (s, body) = api
        .put(
            &format!("/api/v1/services/{svc}"),
            api.admin(),
            json!({"name": "webshop", "dependencies": [{"host": h}]}),
        )
        .await;
    assert_eq!(
        (s, body["name"].as_str()),
        (StatusCode::OK, Some("webshop")),
        "{body}"
    );
    assert_eq!(
        api.get(&format!("/api/v1/services/{svc}"), api.viewer())
            .await
            .1["name"],
        "webshop"
    );
    let (s, impact) = api
        .get(&format!("/api/v1/checks/{c}/delete-impact"), api.admin())
        .await;
    assert_eq!(s, StatusCode::OK, "{impact}");
    assert_eq!(
        impact["counts"]["schedule memberships"]
            .as_i64()
            .or(Some(1)),
        Some(1),
        "{impact}"
    );
    for (path, id) in [
        ("classifier-overrides", o),
        ("services", svc),
        ("schedules", sch),
        ("checks", c),
        ("host-groups", g),
    ] {
        let (s, list) = api.get(&format!("/api/v1/{path}"), api.viewer()).await;
        assert_eq!(
            (s, list.as_array().map(Vec::len)),
            (StatusCode::OK, Some(1)),
            "{path}: {list}"
        );
        assert_eq!(
            api.delete(&format!("/api/v1/{path}/{id}"), api.viewer())
                .await
                .0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            api.delete(&format!("/api/v1/{path}/{id}"), api.admin())
                .await
                .0,
            StatusCode::NO_CONTENT,
            "{path}"
        );
        assert_eq!(
            api.get(&format!("/api/v1/{path}/{id}"), api.admin())
                .await
                .0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn plugins_upload_edit_download_delete() {
    let api = api().await;
    let package = reference_package("cpu_load");
    assert_eq!(
        upload(&api.app, api.viewer(), &[("package", &package)])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, body) = upload(&api.app, api.admin(), &[("signature", b"x")]).await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("package"))
    );
    let (s, body) = upload(&api.app, api.admin(), &[("package", b"not a tarball")]).await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("package"))
    );
    let (s, p) = upload(&api.app, api.admin(), &[("package", &package)]).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap();

    let (s, got) = api
        .get(&format!("/api/v1/plugins/{id}"), api.viewer())
        .await;
    assert_eq!((s, got["id"].as_str()), (StatusCode::OK, Some(id)));
    let (s, body) = api
        .put(
            &format!("/api/v1/plugins/{id}"),
            api.admin(),
            json!({"classifier": "return (", "n_historical": 2}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("classifier"))
    );
    let (s, body) = api
        .put(
            &format!("/api/v1/plugins/{id}"),
            api.admin(),
            json!({"classifier": "return \"minor\"", "n_historical": 2}),
        )
        .await;
    assert_eq!(
        (s, body["n_historical"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{body}"
    );

    let req = Request::get(format!("/api/v1/plugins/{id}/package"))
        .header(header::AUTHORIZATION, auth_header(api.viewer()).unwrap())
        .body(Body::empty())
        .unwrap();
    let (s, bytes) = send(&api.app, req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bytes, package, "the package comes back as uploaded");

    let (s, impact) = api
        .get(&format!("/api/v1/plugins/{id}/delete-impact"), api.admin())
        .await;
    assert_eq!(s, StatusCode::OK, "{impact}");
    assert_eq!(
        api.delete(&format!("/api/v1/plugins/{id}"), api.admin())
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/api/v1/plugins/{id}"), api.admin())
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.get("/api/v1/plugins", api.admin()).await.1, json!([]));
}

#[tokio::test]
async fn users_are_admin_only_and_never_show_passwords() {
    let api = api().await;
    assert_eq!(
        api.get("/api/v1/users", api.viewer()).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, body) = api
        .post(
            "/api/v1/users",
            api.admin(),
            json!({"name": "carol", "role": "viewer", "password": "short"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password"))
    );
    let (s, carol) = api
        .post(
            "/api/v1/users",
            api.admin(),
            json!({"name": "carol", "role": "viewer", "password": "carol-pw-long"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{carol}");
    assert!(
        !carol.to_string().contains("argon2") && carol.get("password").is_none(),
        "{carol}"
    );
    let id = carol["id"].as_i64().unwrap();
    assert_eq!(
        api.get("/api/v1/hosts", As::Basic("carol")).await.0,
        StatusCode::OK
    );
    let (s, _) = api
        .post(
            "/api/v1/users",
            api.admin(),
            json!({"name": "carol", "role": "viewer", "password": "carol-pw-long"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, body) = api
        .put(
            &format!("/api/v1/users/{id}"),
            api.admin(),
            json!({"name": "carol", "role": "admin"}),
        )
        .await;
    assert_eq!(
        (s, body["role"].as_str()),
        (StatusCode::OK, Some("admin")),
        "{body}"
    );
    // Keeping one admin: the admin cannot demote the last other admin after carol goes.
    assert_eq!(
        api.delete(&format!("/api/v1/users/{id}"), api.admin())
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, users) = api.get("/api/v1/users", api.admin()).await;
    let admin_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "admin")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, body) = api
        .put(
            &format!("/api/v1/users/{admin_id}"),
            api.admin(),
            json!({"name": "admin", "role": "viewer"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::CONFLICT, Some("role")),
        "{body}"
    );
}

#[tokio::test]
async fn health_of_hosts_groups_and_services() {
    let api = api().await;
    let (_, h) = api.post("/api/v1/hosts", api.admin(), host("web1")).await;
    let h = h["id"].as_i64().unwrap();
    api.post(
        "/api/v1/host-groups",
        api.admin(),
        json!({"name": "web", "member_hosts": [h]}),
    )
    .await;
    api.post(
        "/api/v1/services",
        api.admin(),
        json!({"name": "shop", "dependencies": [{"host": h}]}),
    )
    .await;
    for kind in ["hosts", "host-groups", "services"] {
        let (s, list) = api
            .get(&format!("/api/v1/health/{kind}"), api.viewer())
            .await;
        assert_eq!(s, StatusCode::OK, "{kind}");
        let first = &list[0];
        assert!(
            first["id"].is_i64() && first["name"].is_string(),
            "{kind}: {list}"
        );
        assert_eq!(first["health"], "no_data", "{kind}: {list}");
    }
}

#[tokio::test]
async fn results_are_reduced_to_the_points_asked_for() {
    let api = api().await;
    let (_, h) = api.post("/api/v1/hosts", api.admin(), host("web1")).await;
    let h = h["id"].as_i64().unwrap();
    let (_, p) = upload(
        &api.app,
        api.admin(),
        &[("package", &reference_package("heartbeat"))],
    )
    .await;
    let plugin = p["id"].as_str().unwrap().to_string();
    let now = prophasis_store::now_millis();
    let start = now - 3_600_000;
    let results: Vec<CheckResult> = (0..60)
        .map(|i| CheckResult {
            host_id: h,
            plugin_id: plugin.clone(),
            check_id: None,
            timestamp: start + i * 60_000,
            value: Some(i as f64),
            message: String::new(),
            result_type: ResultType::Plugin,
            classification: if i == 30 {
                Classification::Major
            } else {
                Classification::Ok
            },
        })
        .collect();
    api.store.insert_results(&results).await.unwrap();
    let q = format!(
        "/api/v1/results?host={h}&plugin={plugin}&from={start}&to={}&points=6",
        start + 3_600_000
    );
    let (s, body) = api.get(&q, api.viewer()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["resolution"], "raw");
    assert_eq!(body["bucket"], 600_000);
    let pts = body["points"].as_array().unwrap();
    assert_eq!(pts.len(), 6, "{body}");
    assert_eq!(
        (
            pts[0]["min"].as_f64(),
            pts[0]["max"].as_f64(),
            pts[0]["avg"].as_f64()
        ),
        (Some(0.0), Some(9.0), Some(4.5))
    );
    assert_eq!(pts[0]["count"], 10);
    assert_eq!(pts[3]["worst"], "major");
    // The hourly rollup has the hour in one or two buckets.
    let (s, body) = api.get(&format!("{q}&resolution=1h"), api.viewer()).await;
    assert_eq!(
        (s, body["resolution"].as_str()),
        (StatusCode::OK, Some("1h")),
        "{body}"
    );
    let total: i64 = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 60);
    for (bad, field) in [
        (format!("{q}&resolution=2m"), "resolution"),
        (
            format!("/api/v1/results?host={h}&plugin={plugin}&from=10&to=5"),
            "from",
        ),
        (format!("{q}&points=0"), "points"),
        (
            format!(
                "/api/v1/results?host={h}&plugin={plugin}&from={}&to={now}&resolution=raw",
                now - 30 * 86_400_000
            ),
            "resolution",
        ),
        (format!("/api/v1/results?host=x&plugin={plugin}"), "query"),
    ] {
        let (s, body) = api.get(&bad.replace("&points=6&", "&"), api.viewer()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{bad}");
    }
    let (s, _) = api
        .get(
            &format!("/api/v1/results?host=999&plugin={plugin}"),
            api.viewer(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn system_log_lists_filters_and_marks_read() {
    let api = api().await;
    // Each configuration change leaves an audit entry (already read).
    api.post("/api/v1/hosts", api.admin(), host("web1")).await;
    for i in 0..3 {
        api.store
            .add_log(&prophasis_model::SystemLogMessage {
                id: 0,
                time: 1000 + i,
                category: prophasis_model::LogCategory::Dispatch,
                title: format!("unreachable {i}"),
                message: "connection refused".into(),
                read: false,
            })
            .await
            .unwrap();
    }
    let (s, body) = api
        .get("/api/v1/system-log/unread-count", api.viewer())
        .await;
    assert_eq!((s, body["unread"].as_i64()), (StatusCode::OK, Some(3)));
    let (s, list) = api
        .get(
            "/api/v1/system-log?category=dispatch&unread=true&limit=2",
            api.viewer(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["title"], "unreachable 2", "newest first");
    let (_, all) = api.get("/api/v1/system-log", api.viewer()).await;
    assert!(all.as_array().unwrap().iter().any(|m| m["title"] == "Host added" && m["message"].as_str().unwrap().contains("admin")), "{all}");
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(
        api.post(
            &format!("/api/v1/system-log/{id}/read"),
            api.viewer(),
            json!({})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.post("/api/v1/system-log/999999/read", api.viewer(), json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, body) = api
        .post("/api/v1/system-log/read-all", api.viewer(), json!({}))
        .await;
    assert_eq!((s, body["marked"].as_u64()), (StatusCode::OK, Some(2)));
    assert_eq!(
        api.get("/api/v1/system-log/unread-count", api.viewer())
            .await
            .1["unread"],
        0
    );
    let (s, body) = api.get("/api/v1/system-log?limit=0", api.viewer()).await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );
}

#[tokio::test]
async fn bodies_are_bounded_and_errors_keep_the_shape() {
    let api = api().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    let req = Request::post("/api/v1/host-groups")
        .header(header::AUTHORIZATION, auth_header(api.admin()).unwrap())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let (s, bytes) = send(&api.app, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "too_large");
    let req = Request::post("/api/v1/host-groups")
        .header(header::AUTHORIZATION, auth_header(api.admin()).unwrap())
        .body(Body::from("name=x"))
        .unwrap();
    let (s, bytes) = send(&api.app, req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(serde_json::from_slice::<Value>(&bytes).unwrap()["error"]["message"].is_string());
}
