//! Handler tests without sockets: `server::router` driven with `oneshot`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use prophasis_agent::server::{router, AppState};
use prophasis_agent::setup::{setup, SetupOptions};
use prophasis_protocol::api::{ErrorBody, ErrorCode};
use tower::ServiceExt;

fn app() -> (axum::Router, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = setup(&SetupOptions {
        config_path: dir.path().join("agent.toml"),
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    })
    .unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("core:{}", out.key.unwrap()))
    );
    (router(AppState::new(out.config).unwrap()), auth, dir)
}

async fn error(resp: axum::response::Response) -> (StatusCode, ErrorBody) {
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn unauthenticated_requests_get_401_without_detail() {
    let (app, _, _dir) = app();
    let resp = app
        .oneshot(Request::get("/plugins").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(resp.headers().contains_key("www-authenticate"));
    let (status, body) = error(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body.error.code, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn run_body_limits_and_content_types() {
    let (app, auth, _dir) = app();
    let big = format!("{{\"args\": {{\"x\": \"{}\"}}}}", "a".repeat(70 * 1024));
    let resp = app
        .clone()
        .oneshot(
            Request::post("/plugins/com.example.x/run")
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .body(Body::from(big))
                .unwrap(),
        )
        .await
        .unwrap();
    let (status, body) = error(resp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body.error.code, ErrorCode::PayloadTooLarge);

    let resp = app
        .clone()
        .oneshot(
            Request::post("/plugins/com.example.x/run")
                .header("authorization", &auth)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("a=b"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // An empty body needs no content type; the plugin is simply not there.
    let resp = app
        .oneshot(
            Request::post("/plugins/com.example.x/run")
                .header("authorization", &auth)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (status, body) = error(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body.error.code, ErrorCode::PluginNotFound);
    assert!(body.error.message.contains("com.example.x"));
}

#[tokio::test]
async fn upload_declared_too_large_is_refused_before_reading() {
    let (app, auth, _dir) = app();
    let resp = app
        .oneshot(
            Request::put("/plugins/com.example.x")
                .header("authorization", &auth)
                .header("content-type", "multipart/form-data; boundary=X")
                .header("content-length", (64u64 << 20).to_string())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (status, body) = error(resp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body.error.code, ErrorCode::PayloadTooLarge);
}
