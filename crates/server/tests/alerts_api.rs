//! Handler tests of the alerting API with `oneshot`: the alert-modules contract, option
//! validation naming the field, secrets masked and kept, send test, deliveries,
//! maintenance windows and acknowledgements.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;
use prophasis::config::Config;
use prophasis::web::{router, AppState};
use prophasis_model::{Role, User};
use prophasis_store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Api {
    app: axum::Router,
    core: prophasis::app::Core,
}

async fn api() -> Api {
    let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
    for (name, role) in [("admin", Role::Admin), ("viewer", Role::Viewer)] {
        let hash = prophasis::web::auth::hash_password(&format!("{name}-pw")).unwrap();
        store
            .create_user(&User {
                id: 0,
                name: name.into(),
                role,
                password_hash: hash,
            })
            .await
            .unwrap();
    }
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (core, _tasks) = prophasis::app::Core::start(store, &Config::default(), tx)
        .await
        .unwrap();
    Api {
        app: router(AppState::new(core.clone())),
        core,
    }
}

async fn call(
    api: &Api,
    method: &str,
    user: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-pw"))
    );
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn alert(module: &str, options: Value) -> Value {
    json!({
        "name": format!("{module} alert"),
        "from_states": ["ok"],
        "to_states": ["critical", "major"],
        "scope": {"all_hosts": true},
        "module": module,
        "options": options,
    })
}

#[tokio::test]
async fn alert_modules_list_every_module_with_its_schema() {
    let api = api().await;
    let (status, body) = call(&api, "GET", "viewer", "/api/v1/alert-modules", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "email",
            "webhook",
            "syslog",
            "script",
            "pushbullet",
            "twilio"
        ]
    );
    let email = &body[0]["options"];
    let password = email
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "password")
        .unwrap();
    assert_eq!(password["secret"], true);
    assert_eq!(password["type"], "string");
    let host = email
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "host")
        .unwrap();
    assert_eq!(host["required"], true);
}

#[tokio::test]
async fn bad_module_options_are_refused_naming_the_field() {
    let api = api().await;
    let cases = [
        (alert("webhook", json!({"url": "not a url"})), "options.url"),
        (
            alert(
                "webhook",
                json!({"url": "http://x", "template": "{{ broken"}),
            ),
            "options.template",
        ),
        (
            alert(
                "email",
                json!({"from": "p@example.net", "to": ["a@example.net"]}),
            ),
            "options.host",
        ),
        (
            alert(
                "email",
                json!({"host": "smtp", "from": "p@example.net", "to": ["not an address"]}),
            ),
            "options.to[0]",
        ),
        (
            alert("syslog", json!({"transport": "udp"})),
            "options.address",
        ),
        (alert("nope", json!({})), "module"),
    ];
    for (body, field) in cases {
        let (status, err) = call(&api, "POST", "admin", "/api/v1/alerts", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let mut settings = alert("webhook", json!({"url": "http://x"}));
    settings["settings"] = json!({"flap_threshold": 3});
    let (status, err) = call(&api, "POST", "admin", "/api/v1/alerts", Some(settings)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "settings.flap_window_seconds");
    let (status, _) = call(
        &api,
        "POST",
        "viewer",
        "/api/v1/alerts",
        Some(alert("webhook", json!({"url": "http://x"}))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn secrets_are_masked_in_answers_and_kept_on_update() {
    let api = api().await;
    let secret = "smtp-password-123456";
    let mut body = alert(
        "email",
        json!({"host": "smtp.example.net", "from": "p@example.net", "to": ["a@example.net"], "username": "u", "password": secret}),
    );
    body["settings"] = json!({"renotify_every_seconds": 600});
    let (status, created) = call(&api, "POST", "admin", "/api/v1/alerts", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["options"]["password"], "••••3456");
    assert_eq!(created["settings"]["renotify_every_seconds"], 600);
    let id = created["id"].as_i64().unwrap();
    let (_, listed) = call(&api, "GET", "viewer", "/api/v1/alerts", None).await;
    assert!(!listed.to_string().contains(secret));
    // Sending the masked form back changes the host and keeps the password.
    let mut edited = created.clone();
    edited["options"]["host"] = json!("smtp2.example.net");
    let (status, updated) = call(
        &api,
        "PUT",
        "admin",
        &format!("/api/v1/alerts/{id}"),
        Some(edited),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["options"]["password"], "••••3456");
    let stored = api.core.store.get_alert(id).await.unwrap();
    assert_eq!(stored.options["password"], secret);
    assert_eq!(stored.options["host"], "smtp2.example.net");
    let (_, one) = call(&api, "GET", "viewer", &format!("/api/v1/alerts/{id}"), None).await;
    assert_eq!(one["settings"]["renotify_every_seconds"], 600);
}

#[tokio::test]
async fn send_test_reports_the_module_error_and_deliveries_are_listed() {
    let api = api().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, created) = call(
        &api,
        "POST",
        "admin",
        "/api/v1/alerts",
        Some(alert(
            "webhook",
            json!({"url": format!("http://127.0.0.1:{port}/")}),
        )),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let (status, r) = call(
        &api,
        "POST",
        "admin",
        &format!("/api/v1/alerts/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["ok"], false);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{r}"
    );

    let n = api
        .core
        .store
        .enqueue_notification(Some(id), &json!({"summary": "s"}), 1)
        .await
        .unwrap();
    let (status, list) = call(
        &api,
        "GET",
        "viewer",
        &format!("/api/v1/alerts/{id}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], n);
    assert_eq!(list[0]["state"], "pending");
    assert_eq!(list[0]["attempts_made"], json!([]));
    let (_, all) = call(&api, "GET", "viewer", "/api/v1/deliveries?limit=5", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let (status, _) = call(&api, "GET", "viewer", "/api/v1/deliveries/999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn maintenance_windows_and_acknowledgements() {
    let api = api().await;
    let (status, err) = call(
        &api,
        "POST",
        "admin",
        "/api/v1/maintenance-windows",
        Some(json!({"target": {"host": 1}, "schedule": {"type": "once", "start": 10, "end": 5}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "schedule.end");
    let weekly = json!({"target": {"host_group": 2}, "schedule": {"type": "weekly", "days": [5, 6], "start_minute": 120, "duration_minutes": 60}, "comment": "backups"});
    let (status, w) = call(
        &api,
        "POST",
        "admin",
        "/api/v1/maintenance-windows",
        Some(weekly),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    let (_, list) = call(&api, "GET", "viewer", "/api/v1/maintenance-windows", None).await;
    assert_eq!(list[0]["id"], w["id"]);
    assert_eq!(list[0]["comment"], "backups");
    let (status, _) = call(
        &api,
        "DELETE",
        "admin",
        &format!("/api/v1/maintenance-windows/{}", w["id"]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, ack) = call(
        &api,
        "POST",
        "viewer",
        "/api/v1/acknowledgements",
        Some(json!({"entity": {"type": "host", "id": 3}, "comment": "on it"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ack}");
    assert_eq!(ack["who"], "viewer");
    let (_, active) = call(
        &api,
        "GET",
        "viewer",
        "/api/v1/acknowledgements?active=true",
        None,
    )
    .await;
    assert_eq!(active[0]["comment"], "on it");
    assert!(active[0]["at"].as_i64().unwrap() > 0);
}
