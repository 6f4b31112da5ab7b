//! Keeps docs/api.md true: every ```sh block in it is run, in order, with real curl
//! against a live server (`PROPHASIS` = its URL, `TOKEN` = an admin's API token) and must
//! succeed (the commands use `curl --fail`, so an error status fails them).

use std::sync::Arc;

use prophasis::actions::{Actions, Actor};
use prophasis_model::{Role, User};
use prophasis_store::Store;

fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_curl_example_in_the_api_guide_works() {
    let curl = std::process::Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "curl is not installed: `apt-get install curl` (.ci/run does this)"
    );
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md"),
    )
    .unwrap();
    let blocks = sh_blocks(&guide);
    assert!(blocks.len() >= 10, "only {} examples found", blocks.len());

    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(&format!("sqlite://{}", data.path().join("p.db").display()))
            .await
            .unwrap(),
    );
    let admin = store
        .create_user(&User {
            id: 0,
            name: "admin".into(),
            role: Role::Admin,
            password_hash: prophasis::web::auth::hash_password("admin-password").unwrap(),
        })
        .await
        .unwrap();
    let (_, token) = Actions::offline(store.clone())
        .create_token_for(&Actor::command_line(), admin, "docs")
        .await
        .unwrap();
    // The package the upload example names, in the folder the examples run in.
    let plugin_dir = prophasis::plugins::write_reference_plugin("heartbeat", data.path()).unwrap();
    let package = prophasis_protocol::package::pack_dir(&plugin_dir).unwrap();
    std::fs::write(data.path().join("heartbeat-1.tar.gz"), package).unwrap();
    let config = prophasis::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().join("server"),
        ..Default::default()
    };
    let running = prophasis::serve::start(&config, store, None).await.unwrap();
    let url = format!("http://{}", running.addr);
    for block in &blocks {
        let out = tokio::process::Command::new("sh")
            .args(["-e", "-c", block])
            .env("PROPHASIS", &url)
            .env("TOKEN", &token)
            .current_dir(data.path())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "this example from docs/api.md failed:\n{block}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    running.stop().await;
}
