//! Shared set-up of the REST API tests: a core on an in-memory SQLite store with an admin
//! and a viewer (passwords and API tokens), and helpers to call the router with `oneshot`.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use base64::Engine as _;
use prophasis::actions::{Actions, Actor};
use prophasis::config::Config;
use prophasis::web::{router, AppState};
use prophasis_model::{Role, User};
use prophasis_store::Store;
use serde_json::Value;
use tower::ServiceExt;

pub struct Api {
    pub app: axum::Router,
    pub core: prophasis::app::Core,
    pub store: Arc<Store>,
    pub admin_token: String,
    pub viewer_token: String,
    pub viewer_token_id: i64,
}

/// Who a request is from.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Nobody,
    /// HTTP Basic with the user's password (`<name>-pw-long`).
    Basic(&'a str),
    Bearer(&'a str),
}

pub async fn api() -> Api {
    let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
    let offline = Actions::offline(store.clone());
    let cli = Actor::command_line();
    let mut tokens = Vec::new();
    for (name, role) in [("admin", Role::Admin), ("viewer", Role::Viewer)] {
        let hash = prophasis::web::auth::hash_password(&format!("{name}-pw-long")).unwrap();
        let id = store
            .create_user(&User {
                id: 0,
                name: name.into(),
                role,
                password_hash: hash,
            })
            .await
            .unwrap();
        tokens.push(offline.create_token_for(&cli, id, "tests").await.unwrap());
    }
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (core, _tasks) = prophasis::app::Core::start(store.clone(), &Config::default(), tx)
        .await
        .unwrap();
    Api {
        app: router(AppState::new(core.clone())),
        core,
        store,
        admin_token: tokens[0].1.clone(),
        viewer_token: tokens[1].1.clone(),
        viewer_token_id: tokens[1].0.id,
    }
}

pub fn auth_header(who: As<'_>) -> Option<String> {
    match who {
        As::Nobody => None,
        As::Basic(user) => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-pw-long"))
        )),
        As::Bearer(token) => Some(format!("Bearer {token}")),
    }
}

pub async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 100 << 20)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

pub async fn call(
    app: &axum::Router,
    method: Method,
    path: &str,
    who: As<'_>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(h) = auth_header(who) {
        req = req.header(header::AUTHORIZATION, h);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let (status, bytes) = send(app, req).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl Api {
    pub fn admin(&self) -> As<'_> {
        As::Bearer(&self.admin_token)
    }
    pub fn viewer(&self) -> As<'_> {
        As::Bearer(&self.viewer_token)
    }
    pub async fn get(&self, path: &str, who: As<'_>) -> (StatusCode, Value) {
        call(&self.app, Method::GET, path, who, None).await
    }
    pub async fn post(&self, path: &str, who: As<'_>, body: Value) -> (StatusCode, Value) {
        call(&self.app, Method::POST, path, who, Some(body)).await
    }
    pub async fn put(&self, path: &str, who: As<'_>, body: Value) -> (StatusCode, Value) {
        call(&self.app, Method::PUT, path, who, Some(body)).await
    }
    pub async fn delete(&self, path: &str, who: As<'_>) -> (StatusCode, Value) {
        call(&self.app, Method::DELETE, path, who, None).await
    }
}

/// A multipart/form-data body with the given parts (name, bytes).
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "prophasis-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A reference plugin (`heartbeat`, `cpu_load`, …) packed as a .tar.gz.
pub fn reference_package(name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = prophasis::plugins::write_reference_plugin(name, dir.path()).unwrap();
    prophasis_protocol::package::pack_dir(&path).unwrap()
}

/// Uploads a package as `who`; returns the status and body.
pub async fn upload(
    app: &axum::Router,
    who: As<'_>,
    parts: &[(&str, &[u8])],
) -> (StatusCode, Value) {
    let (ct, body) = multipart(parts);
    let mut req = Request::post("/api/v1/plugins").header(header::CONTENT_TYPE, ct);
    if let Some(h) = auth_header(who) {
        req = req.header(header::AUTHORIZATION, h);
    }
    let (status, bytes) = send(app, req.body(Body::from(body)).unwrap()).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
