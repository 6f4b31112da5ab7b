//! Handler tests of the API slice with `oneshot` on `router(state)`: the contract shapes
//! (DESIGN.md), authentication, roles and error bodies.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;
use prophasis::config::Config;
use prophasis::web::{router, AppState};
use prophasis_model::{Role, User};
use prophasis_store::Store;
use tower::ServiceExt;

struct Api {
    app: axum::Router,
    _core: prophasis::app::Core,
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
        _core: core,
    }
}

fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-pw"))
    )
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn dry_run(user: &str, body: serde_json::Value) -> Request<Body> {
    Request::post("/api/v1/classifiers/dry-run")
        .header(header::AUTHORIZATION, basic(user))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn dry_run_classifies_with_the_original_none_convention() {
    let api = api().await;
    let code = r#"if arrayContains(values, "none") then return "unknown" end
if arrayMax(values) > 90 then return "critical" end
return "ok""#;
    let (status, body) = call(
        &api.app,
        dry_run(
            "admin",
            serde_json::json!({"code": code, "values": [10, 95], "messages": ["a", "b"], "result_types": ["plugin", "plugin"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"classification": "critical", "diagnostics": []})
    );

    let (_, body) = call(
        &api.app,
        dry_run(
            "admin",
            serde_json::json!({"code": code, "values": [10, null], "messages": ["a", "b"], "result_types": ["plugin", "connection_error"]}),
        ),
    )
    .await;
    assert_eq!(body["classification"], "unknown");

    // A Lua error: unknown, with the line.
    let (_, body) = call(
        &api.app,
        dry_run("admin", serde_json::json!({"code": "local x = nil\nreturn x.y", "values": [1], "messages": ["a"], "result_types": ["plugin"]})),
    )
    .await;
    assert_eq!(body["classification"], "unknown");
    assert_eq!(body["diagnostics"][0]["line"], 2, "{body}");
}

#[tokio::test]
async fn dry_run_refuses_bad_input_naming_the_field() {
    let api = api().await;
    let (status, body) = call(
        &api.app,
        dry_run("admin", serde_json::json!({"code": "return 'ok'", "values": [1], "messages": ["a"], "result_types": ["teapot"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid");
    assert_eq!(body["error"]["field"], "result_types[0]");
    let (status, body) = call(
        &api.app,
        dry_run("admin", serde_json::json!({"code": "return 'ok'", "values": [1, 2], "messages": ["a"], "result_types": ["plugin", "plugin"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messages"));
}

#[tokio::test]
async fn authentication_and_roles() {
    let api = api().await;
    let anonymous = Request::get("/api/v1/health/hosts")
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(anonymous).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));

    let viewer = Request::get("/api/v1/health/services")
        .header(header::AUTHORIZATION, basic("viewer"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(&api.app, viewer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));

    // Viewers read; running code is for admins.
    let (status, body) = call(
        &api.app,
        dry_run("viewer", serde_json::json!({"code": "return 'ok'", "values": [], "messages": [], "result_types": []})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");

    let (status, body) = call(
        &api.app,
        Request::get("/api/v1/nothing")
            .header(header::AUTHORIZATION, basic("viewer"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn accepting_a_certificate_needs_a_refused_one() {
    let api = api().await;
    let req = Request::post("/api/v1/hosts/1/accept-certificate")
        .header(header::AUTHORIZATION, basic("admin"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(&api.app, req).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no host 1: {body}");
}

#[tokio::test]
async fn metrics_in_prometheus_text_format() {
    let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
    let hash = prophasis::web::auth::hash_password("admin-pw").unwrap();
    store
        .create_user(&User {
            id: 0,
            name: "admin".into(),
            role: Role::Admin,
            password_hash: hash,
        })
        .await
        .unwrap();
    store
        .create_host(&prophasis_model::Host {
            id: 0,
            name: "web \"1\"".into(),
            address: "127.0.0.1".into(),
            port: 4048,
            description: String::new(),
            auth_key: "k".into(),
            tls_fingerprint: None,
            enabled: true,
        })
        .await
        .unwrap();
    // A notification waiting in the outbox (no alerting engine runs here to send it).
    store
        .enqueue_notification(None, &serde_json::json!({}), i64::MAX / 2)
        .await
        .unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (core, _tasks) = prophasis::app::Core::start(store, &Config::default(), tx)
        .await
        .unwrap();
    let app = router(AppState::new(core));
    let req = Request::get("/metrics")
        .header(header::AUTHORIZATION, basic("admin"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("# TYPE prophasis_results_total counter\nprophasis_results_total 0\n"),
        "{text}"
    );
    assert!(
        text.contains("prophasis_lateness_seconds_bucket{le=\"+Inf\"} 0"),
        "{text}"
    );
    assert!(
        text.contains(r#"prophasis_host_health{id="1",host="web \"1\"",health="no_data"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"prophasis_host_severity{id="1",host="web \"1\""} 0"#),
        "{text}"
    );
    assert!(
        text.contains("prophasis_outbox_notifications{state=\"pending\"} 1\n")
            && text.contains("prophasis_outbox_notifications{state=\"failed\"} 0\n"),
        "{text}"
    );
    // Every sample line is `name{labels} value` or `name value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
    let anonymous = Request::get("/metrics").body(Body::empty()).unwrap();
    assert_eq!(
        app.oneshot(anonymous).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
