//! `prophasis token create|list|revoke` as an administrator on the server machine uses
//! them: the secret printed once works against the API, the list never shows it, and a
//! revoked token is refused.

use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use prophasis_model::{Role, User};
use prophasis_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_prophasis");

fn prophasis(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("prophasis runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_commands_create_list_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prophasis.db");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\ndata_dir = \"{}\"\n",
            db.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let store = Arc::new(
        Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap(),
    );
    store
        .create_user(&User {
            id: 0,
            name: "ops".into(),
            role: Role::Viewer,
            password_hash: "x".into(),
        })
        .await
        .unwrap();
    let cfg = config.to_str().unwrap();

    let (ok, _, err) = prophasis(&[
        "token", "create", "--config", cfg, "--user", "nobody", "--name", "x",
    ]);
    assert!(!ok);
    assert!(err.contains("no user \"nobody\""), "{err}");

    let (ok, out, err) = prophasis(&[
        "token", "create", "--config", cfg, "--user", "ops", "--name", "grafana",
    ]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("not shown again"), "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("a token line")
        .to_string();
    let id: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id line")
        .parse()
        .unwrap();
    assert!(secret.starts_with("pph_"));

    let (ok, out, _) = prophasis(&["token", "list", "--config", cfg]);
    assert!(ok);
    assert!(
        out.contains("ops\tgrafana") && out.contains("active"),
        "{out}"
    );
    assert!(!out.contains(&secret), "the list shows the secret: {out}");

    // The token works against a server on the same database, with the user's role.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (core, _tasks) =
        prophasis::app::Core::start(store.clone(), &prophasis::config::Config::default(), tx)
            .await
            .unwrap();
    let app = prophasis::web::router(prophasis::web::AppState::new(core));
    let get = |token: String| {
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::get("/api/v1/hosts")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            app.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(get(secret.clone()).await, StatusCode::OK);

    let (ok, out, err) = prophasis(&["token", "revoke", "--config", cfg, &id.to_string()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(get(secret).await, StatusCode::UNAUTHORIZED);
    let (_, out, _) = prophasis(&["token", "list", "--config", cfg]);
    assert!(out.contains("revoked"), "{out}");
    let (ok, _, err) = prophasis(&["token", "revoke", "--config", cfg, "9999"]);
    assert!(!ok && err.contains("cannot revoke token 9999"), "{err}");
}
