//! Handler tests of the configuration pages (`/configuration/…`) with `oneshot` on the real
//! router and a real store: anonymous visitors go to the login page, viewers may read the
//! lists but are refused every change, every POST needs the CSRF token, refusals are shown
//! next to their field with the typed values kept, and each entity goes through add, edit
//! and delete (whose confirmation lists what goes with it). "Test connection" talks to a
//! real agent; plugin upload sends a real package as multipart.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use prophasis::config::Config;
use prophasis::web::{router, AppState};
use prophasis_model::{CheckResult, Classification, Host, ResultType, Role, User};
use prophasis_store::{now_millis, Store};

struct Ui {
    app: axum::Router,
    store: Arc<Store>,
    _core: prophasis::app::Core,
}

async fn ui() -> Ui {
    let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
    for (name, role) in [("admin", Role::Admin), ("viewer", Role::Viewer)] {
        let hash = prophasis::web::auth::hash_password(&format!("{name}-password")).unwrap();
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
    let (core, _tasks) = prophasis::app::Core::start(store.clone(), &Config::default(), tx)
        .await
        .unwrap();
    Ui {
        app: router(AppState::new(core.clone())),
        store,
        _core: core,
    }
}

trait FindService {
    async fn find_service_id(&self, name: &str) -> i64;
}

impl FindService for Arc<Store> {
    async fn find_service_id(&self, name: &str) -> i64 {
        self.list_services()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
            .id
    }
}

use common::reply::{send, Reply};

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

/// A logged-in browser: its cookie header and its session's CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn get(&self, ui: &Ui, path: &str) -> Reply {
        send(&ui.app, get(path, Some(&self.cookie))).await
    }

    /// Posts a form with the CSRF token added.
    async fn post(&self, ui: &Ui, path: &str, body: &str) -> Reply {
        let body = if body.is_empty() {
            format!("csrf_token={}", self.csrf)
        } else {
            format!("{body}&csrf_token={}", self.csrf)
        };
        self.post_raw(ui, path, &body).await
    }

    async fn post_raw(&self, ui: &Ui, path: &str, body: &str) -> Reply {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, &self.cookie)
            .body(Body::from(body.to_string()))
            .unwrap();
        send(&ui.app, req).await
    }
}

async fn login(ui: &Ui, name: &str, password: &str) -> Browser {
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "name={name}&password={password}&next=%2Fconfiguration"
        )))
        .unwrap();
    let r = send(&ui.app, req).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "login of {name}: {}",
        r.body
    );
    let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let page = send(&ui.app, get("/configuration", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = between(&page.body, "<meta name=\"csrf-token\" content=\"", "\"").to_string();
    Browser { cookie, csrf }
}

async fn admin(ui: &Ui) -> Browser {
    login(ui, "admin", "admin-password").await
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page:\n{s}"))
        + start.len();
    let j = s[i..].find(end).unwrap() + i;
    &s[i..j]
}

/// The message shown under field `name` (`<p class="error" id="e-name">`).
fn field_error<'a>(page: &'a str, name: &str) -> &'a str {
    between(
        page,
        &format!("<p class=\"error\" id=\"e-{name}\" role=\"alert\">"),
        "</p>",
    )
}

/// The value attribute of the input `f-name`.
fn input_value<'a>(page: &'a str, name: &str) -> &'a str {
    let i = page
        .find(&format!("id=\"f-{name}\""))
        .unwrap_or_else(|| panic!("no input {name}"));
    between(&page[i..], "value=\"", "\"")
}

fn host(name: &str, port: u16, key: &str) -> Host {
    Host {
        id: 0,
        name: name.into(),
        address: "127.0.0.1".into(),
        port,
        description: String::new(),
        auth_key: key.into(),
        tls_fingerprint: None,
        enabled: true,
    }
}

const PAGES: &[&str] = &[
    "/configuration/hosts",
    "/configuration/host-groups",
    "/configuration/plugins",
    "/configuration/checks",
    "/configuration/schedules",
    "/configuration/services",
    "/configuration/maintenance",
    "/configuration/alerts",
    "/configuration/classifiers",
    "/configuration/users",
];

const FORMS: &[&str] = &[
    "/configuration/hosts/new",
    "/configuration/host-groups/new",
    "/configuration/checks/new",
    "/configuration/schedules/new",
    "/configuration/services/new",
    "/configuration/maintenance/new",
    "/configuration/alerts/new",
    "/configuration/users/new",
];

#[tokio::test]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    let ui = ui().await;
    for path in PAGES
        .iter()
        .chain(FORMS)
        .chain(&["/configuration/account/password"])
    {
        let r = send(&ui.app, get(path, None)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            r.location().starts_with("/login?next=/configuration"),
            "{path}: {}",
            r.location()
        );
    }
}

#[tokio::test]
async fn viewers_read_the_lists_and_are_refused_every_change() {
    let ui = ui().await;
    let id = ui
        .store
        .create_host(&host("db-1", 4048, "k"))
        .await
        .unwrap();
    let v = login(&ui, "viewer", "viewer-password").await;
    for path in PAGES {
        let r = v.get(&ui, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(
            !r.body
                .contains("class=\"button primary\" href=\"/configuration"),
            "{path}: no add button for viewers"
        );
    }
    assert!(v
        .get(&ui, "/configuration/hosts")
        .await
        .body
        .contains("db-1"));
    for path in FORMS.iter().map(|s| s.to_string()).chain([
        format!("/configuration/hosts/{id}/edit"),
        format!("/configuration/hosts/{id}/delete"),
    ]) {
        let r = v.get(&ui, &path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.body.contains("viewer"), "{path}: the 403 page says why");
    }
    let r = v
        .post(
            &ui,
            "/configuration/hosts/new",
            "name=x&address=h&port=4048&auth_key=k&enabled=1",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = v
        .post(&ui, &format!("/configuration/hosts/{id}/delete"), "")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        ui.store.list_hosts().await.unwrap().len(),
        1,
        "nothing changed"
    );
    // A viewer may still change their own password.
    let r = v
        .post(
            &ui,
            "/configuration/account/password",
            "current=viewer-password&password=another-long-one&confirm=another-long-one",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Your password was changed"));
    login(&ui, "viewer", "another-long-one").await;
}

#[tokio::test]
async fn every_post_needs_the_csrf_token() {
    let ui = ui().await;
    let a = admin(&ui).await;
    let body = "name=x&address=h&port=4048&auth_key=k&enabled=1";
    for b in [
        body.to_string(),
        format!("{body}&csrf_token={}", "0".repeat(64)),
    ] {
        let r = a.post_raw(&ui, "/configuration/hosts/new", &b).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("Form expired"), "{}", r.body);
    }
    assert!(ui.store.list_hosts().await.unwrap().is_empty());
    let r = a.post(&ui, "/configuration/hosts/new", body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test]
async fn hosts_round_trip_with_validation_and_a_write_only_key() {
    let ui = ui().await;
    let a = admin(&ui).await;
    let form = a.get(&ui, "/configuration/hosts/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(input_value(&form.body, "port"), "4048", "the default port");
    assert!(form.body.contains("id=\"h-auth_key\""), "help for the key");

    // A refusal from the actions layer, shown next to its field, input kept.
    let r = a
        .post(&ui, "/configuration/hosts/new", "name=web-01&address=https%3A%2F%2Fweb&port=4048&description=front&auth_key=secret-key&enabled=1")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "address").contains("bare DNS name"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "name"), "web-01");
    assert!(r.body.contains(">front</textarea>"));
    assert!(!r.body.contains("secret-key"), "the key is never echoed");
    // A port that is not a number is caught before the actions layer.
    let r = a
        .post(
            &ui,
            "/configuration/hosts/new",
            "name=web-01&address=web&port=http&auth_key=k",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&r.body, "port").contains("number"));
    assert_eq!(input_value(&r.body, "port"), "http");

    let r = a
        .post(
            &ui,
            "/configuration/hosts/new",
            "name=web-01&address=web.example&port=4049&auth_key=secret-key&enabled=1",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/configuration/hosts");
    let h = ui.store.list_hosts().await.unwrap().pop().unwrap();
    assert_eq!(
        (h.name.as_str(), h.port, h.auth_key.as_str(), h.enabled),
        ("web-01", 4049, "secret-key", true)
    );
    // A duplicate name is refused next to the name.
    let r = a
        .post(
            &ui,
            "/configuration/hosts/new",
            "name=web-01&address=other&port=4048&auth_key=k",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "name").contains("already called"),
        "{}",
        r.body
    );

    let edit = a
        .get(&ui, &format!("/configuration/hosts/{}/edit", h.id))
        .await;
    assert_eq!(input_value(&edit.body, "address"), "web.example");
    assert!(!edit.body.contains("secret-key"), "the key is write-only");
    assert!(edit.body.contains("Leave blank to keep the current key"));
    // A blank key keeps the stored one; unticking disables.
    let r = a
        .post(
            &ui,
            &format!("/configuration/hosts/{}/edit", h.id),
            "name=web-02&address=web.example&port=4049&auth_key=",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let h2 = ui.store.get_host(h.id).await.unwrap();
    assert_eq!(
        (h2.name.as_str(), h2.auth_key.as_str(), h2.enabled),
        ("web-02", "secret-key", false)
    );
    let list = a.get(&ui, "/configuration/hosts").await.body;
    assert!(
        list.contains("web-02") && list.contains("not checked"),
        "{list}"
    );

    // The confirmation lists the results that go with the host.
    install(&ui, &a, "p").await;
    let now = now_millis();
    let results: Vec<CheckResult> = (0..3)
        .map(|i| CheckResult {
            host_id: h.id,
            plugin_id: "p".into(),
            check_id: None,
            timestamp: now - i,
            value: Some(1.0),
            message: String::new(),
            result_type: ResultType::Plugin,
            classification: Classification::Ok,
        })
        .collect();
    ui.store.insert_results(&results).await.unwrap();
    let confirm = a
        .get(&ui, &format!("/configuration/hosts/{}/delete", h.id))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.body.contains("Delete the host “web-02”?"),
        "{}",
        confirm.body
    );
    assert!(
        confirm.body.contains("<strong>3</strong> results"),
        "{}",
        confirm.body
    );
    let r = a
        .post(&ui, &format!("/configuration/hosts/{}/delete", h.id), "")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(ui.store.list_hosts().await.unwrap().is_empty());
    let r = a
        .get(&ui, &format!("/configuration/hosts/{}/edit", h.id))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn test_connection_reports_version_fingerprint_and_a_wrong_key() {
    let ui = ui().await;
    let dir = common::tempdir();
    let mut agent = common::Agent::start(dir.path(), 0).await;
    let mut good = agent.host("agent-1");
    good.tls_fingerprint = None;
    let good = ui.store.create_host(&good).await.unwrap();
    let mut bad = agent.host("agent-2");
    bad.auth_key = "not-the-key".into();
    let bad = ui.store.create_host(&bad).await.unwrap();
    let a = admin(&ui).await;

    let r = a
        .post(&ui, &format!("/configuration/hosts/{good}/test"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let reachable = between(&r.body, "id=\"t-reachable\">", "</dd>");
    assert!(reachable.contains("yes"), "{}", r.body);
    assert!(between(&r.body, "id=\"t-auth\">", "</dd>").contains("accepted"));
    assert_eq!(
        between(&r.body, "id=\"t-version\">", "</dd>"),
        env!("CARGO_PKG_VERSION"),
        "agent and server share the workspace version"
    );
    let norm = |s: &str| s.replace(':', "").to_ascii_lowercase();
    let fp = norm(between(&r.body, "id=\"t-fingerprint\">", "</dd>"));
    assert!(
        fp.contains(&norm(&agent.fingerprint)),
        "{fp} vs {}",
        agent.fingerprint
    );
    assert!(
        ui.store
            .get_host(good)
            .await
            .unwrap()
            .tls_fingerprint
            .is_none(),
        "testing does not pin"
    );

    let r = a
        .post(&ui, &format!("/configuration/hosts/{bad}/test"), "")
        .await;
    assert!(
        between(&r.body, "id=\"t-auth\">", "</dd>").contains("refused"),
        "{}",
        r.body
    );
    assert!(r.body.contains("the agent refused the key"));

    agent.stop().await;
    let r = a
        .post(&ui, &format!("/configuration/hosts/{good}/test"), "")
        .await;
    assert!(
        between(&r.body, "id=\"t-reachable\">", "</dd>").contains("no"),
        "{}",
        r.body
    );
    assert!(r.body.contains("could not connect"), "{}", r.body);
}

#[tokio::test]
async fn host_groups_round_trip_and_a_group_cannot_contain_itself() {
    let ui = ui().await;
    let h1 = ui.store.create_host(&host("h1", 1, "k")).await.unwrap();
    let h2 = ui.store.create_host(&host("h2", 2, "k")).await.unwrap();
    let a = admin(&ui).await;
    let r = a
        .post(
            &ui,
            "/configuration/host-groups/new",
            &format!("name=web&member_hosts={h1}&member_hosts={h2}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let g = ui.store.list_host_groups().await.unwrap().pop().unwrap();
    assert_eq!(g.member_hosts, vec![h1, h2]);
    let r = a
        .post(
            &ui,
            "/configuration/host-groups/new",
            &format!("name=all&member_groups={}", g.id),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    let edit = a
        .get(&ui, &format!("/configuration/host-groups/{}/edit", g.id))
        .await;
    assert!(edit
        .body
        .contains(&format!("name=\"member_hosts\" value=\"{h1}\" checked")));
    assert!(
        !edit
            .body
            .contains(&format!("name=\"member_groups\" value=\"{}\"", g.id)),
        "not offered to itself"
    );
    assert!(
        edit.body.contains("data-filter=\"#t-member_hosts\""),
        "the picker is searchable"
    );
    let r = a
        .post(
            &ui,
            &format!("/configuration/host-groups/{}/edit", g.id),
            &format!("name=web+servers&member_hosts={h2}&member_groups={}", g.id),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "member_groups").contains("itself"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "name"), "web servers");
    let r = a
        .post(
            &ui,
            &format!("/configuration/host-groups/{}/edit", g.id),
            &format!("name=web+servers&member_hosts={h2}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ui.store.get_host_group(g.id).await.unwrap().member_hosts,
        vec![h2]
    );
    let list = a.get(&ui, "/configuration/host-groups").await.body;
    assert!(list.contains("web servers"));

    let confirm = a
        .get(&ui, &format!("/configuration/host-groups/{}/delete", g.id))
        .await;
    assert!(
        confirm
            .body
            .contains("Delete the host group “web servers”?"),
        "{}",
        confirm.body
    );
    let r = a
        .post(
            &ui,
            &format!("/configuration/host-groups/{}/delete", g.id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(ui.store.list_host_groups().await.unwrap().len(), 1);
}

fn multipart(csrf: &str, package: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----prophasis-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"p.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n").as_bytes());
    body.extend_from_slice(package);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(ui: &Ui, a: &Browser, package: &[u8]) -> Reply {
    let (ct, body) = multipart(&a.csrf, package);
    let req = Request::post("/configuration/plugins")
        .header(header::CONTENT_TYPE, ct)
        .header(header::COOKIE, &a.cookie)
        .body(Body::from(body))
        .unwrap();
    send(&ui.app, req).await
}

#[tokio::test]
async fn plugins_upload_show_the_manifest_and_delete() {
    let ui = ui().await;
    let a = admin(&ui).await;
    let dir = common::tempdir();
    let package = common::script_plugin(
        dir.path(),
        "org.example.probe",
        2.0,
        "echo '{\"value\": 1}'",
        "return \"ok\"",
        5.0,
    );

    let r = upload(&ui, &a, b"not a package").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(!field_error(&r.body, "package").is_empty());

    let r = upload(&ui, &a, &package).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/configuration/plugins/org.example.probe");
    let show = a.get(&ui, r.location()).await;
    assert_eq!(show.status, StatusCode::OK);
    assert!(show.body.contains("version 2"), "{}", show.body);
    assert!(between(&show.body, "id=\"manifest\" tabindex=\"0\">", "</pre>").contains("run.sh"));
    let list = a.get(&ui, "/configuration/plugins").await.body;
    assert!(list.contains("org.example.probe") && list.contains("enctype=\"multipart/form-data\""));

    let confirm = a
        .get(&ui, "/configuration/plugins/org.example.probe/delete")
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Delete the plugin"));
    let r = a
        .post(&ui, "/configuration/plugins/org.example.probe/delete", "")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(ui.store.list_plugins().await.unwrap().is_empty());
}

async fn install(ui: &Ui, a: &Browser, id: &str) {
    let dir = common::tempdir();
    let package = common::script_plugin(
        dir.path(),
        id,
        1.0,
        "echo '{\"value\": 1}'",
        "return \"ok\"",
        5.0,
    );
    let r = upload(ui, a, &package).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test]
async fn checks_round_trip_with_plugin_arguments() {
    let ui = ui().await;
    let a = admin(&ui).await;
    install(&ui, &a, "org.example.disk").await;
    let h1 = ui.store.create_host(&host("h1", 1, "k")).await.unwrap();

    let r = a
        .post(
            &ui,
            "/configuration/checks/new",
            "name=disks&plugins=org.example.disk",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "hosts").contains("at least one host"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"org.example.disk\" checked"),
        "the ticked plugin is kept"
    );

    let r = a
        .post(&ui, "/configuration/checks/new", &format!("name=disks&hosts={h1}&plugins=org.example.disk&arg_plugin=org.example.disk&arg_key=mount&arg_value=%2Fvar&arg_plugin=org.example.disk&arg_key=limit&arg_value=90&arg_plugin=&arg_key=&arg_value="))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let c = ui.store.list_checks().await.unwrap().pop().unwrap();
    assert_eq!(c.hosts, vec![h1]);
    assert_eq!(
        c.plugin_args["org.example.disk"]["mount"],
        serde_json::json!("/var")
    );
    assert_eq!(
        c.plugin_args["org.example.disk"]["limit"],
        serde_json::json!(90)
    );

    let edit = a
        .get(&ui, &format!("/configuration/checks/{}/edit", c.id))
        .await;
    assert!(
        edit.body.contains("name=\"arg_key\" value=\"mount\""),
        "{}",
        edit.body
    );
    // Clearing a row's name removes the argument.
    let r = a
        .post(&ui, &format!("/configuration/checks/{}/edit", c.id), &format!("name=disks&hosts={h1}&plugins=org.example.disk&arg_plugin=org.example.disk&arg_key=mount&arg_value=%2F&arg_plugin=org.example.disk&arg_key=&arg_value=90"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let c2 = ui.store.get_check(c.id).await.unwrap();
    assert_eq!(c2.plugin_args["org.example.disk"].len(), 1);
    assert!(a
        .get(&ui, "/configuration/checks")
        .await
        .body
        .contains("disks"));

    let confirm = a
        .get(&ui, &format!("/configuration/checks/{}/delete", c.id))
        .await;
    assert!(confirm.body.contains("Delete the check “disks”?"));
    let r = a
        .post(&ui, &format!("/configuration/checks/{}/delete", c.id), "")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(ui.store.list_checks().await.unwrap().is_empty());
}

#[tokio::test]
async fn schedules_round_trip_with_interval_rows() {
    let ui = ui().await;
    let a = admin(&ui).await;
    install(&ui, &a, "org.example.load").await;
    let h1 = ui.store.create_host(&host("h1", 1, "k")).await.unwrap();
    let r = a
        .post(
            &ui,
            "/configuration/checks/new",
            &format!("name=load&hosts={h1}&plugins=org.example.load"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let check = ui.store.list_checks().await.unwrap()[0].id;

    let r = a
        .post(
            &ui,
            "/configuration/schedules/new",
            &format!("name=often&checks={check}&start=&value=&unit=minutes"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "intervals").contains("at least one interval"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("value=\"{check}\" checked")));

    let r = a
        .post(&ui, "/configuration/schedules/new", &format!("name=often&checks={check}&start=2026-01-01T00%3A00&value=5&unit=minutes&start=&value=1&unit=days"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let s = ui.store.list_schedules().await.unwrap().pop().unwrap();
    let periods: Vec<i64> = s.intervals.iter().map(|i| i.period_seconds).collect();
    assert_eq!(periods, vec![300, 86_400]);
    let list = a.get(&ui, "/configuration/schedules").await.body;
    assert!(
        list.contains("every 5 minutes from 2026-01-01 00:00:00 UTC"),
        "{list}"
    );

    let edit = a
        .get(&ui, &format!("/configuration/schedules/{}/edit", s.id))
        .await;
    assert!(
        edit.body.contains("value=\"2026-01-01T00:00:00\""),
        "{}",
        edit.body
    );
    let r = a
        .post(
            &ui,
            &format!("/configuration/schedules/{}/edit", s.id),
            &format!("name=often&checks={check}&start=2026-01-01T00%3A00&value=0&unit=minutes"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "intervals").contains("greater than 0"),
        "{}",
        r.body
    );
    // Removing the second row (empty period) keeps only the first.
    let r = a
        .post(&ui, &format!("/configuration/schedules/{}/edit", s.id), &format!("name=often&checks={check}&start=2026-01-01T00%3A00&value=10&unit=seconds&start=&value=&unit=days"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let s2 = ui.store.get_schedule(s.id).await.unwrap();
    assert_eq!(s2.intervals.len(), 1);
    assert_eq!(s2.intervals[0].period_seconds, 10);

    let confirm = a
        .get(&ui, &format!("/configuration/schedules/{}/delete", s.id))
        .await;
    assert!(confirm.body.contains("Delete the schedule “often”?"));
    let r = a
        .post(
            &ui,
            &format!("/configuration/schedules/{}/delete", s.id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(ui.store.list_schedules().await.unwrap().is_empty());
}

#[tokio::test]
async fn users_round_trip_and_the_last_admin_stays() {
    let ui = ui().await;
    let a = admin(&ui).await;
    let r = a
        .post(
            &ui,
            "/configuration/users/new",
            "name=carol&role=viewer&password=short",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "password").contains("at least 10"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "name"), "carol");
    assert!(!r.body.contains("short"), "the password is not sent back");

    let r = a
        .post(
            &ui,
            "/configuration/users/new",
            "name=carol&role=admin&password=carols-long-password",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let carol = ui.store.find_user_by_name("carol").await.unwrap().unwrap();
    assert_eq!(carol.role, Role::Admin);
    login(&ui, "carol", "carols-long-password").await;

    let r = a
        .post(
            &ui,
            &format!("/configuration/users/{}/edit", carol.id),
            "name=carol&role=viewer",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Now "admin" is the only admin: demoting them is refused next to the role.
    let me = ui.store.find_user_by_name("admin").await.unwrap().unwrap();
    let r = a
        .post(
            &ui,
            &format!("/configuration/users/{}/edit", me.id),
            "name=admin&role=viewer",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "role").contains("only admin"),
        "{}",
        r.body
    );
    let r = a
        .post(&ui, &format!("/configuration/users/{}/delete", me.id), "")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("only admin"));

    let r = a
        .post(
            &ui,
            &format!("/configuration/users/{}/password", carol.id),
            "password=a-new-password-1&confirm=a-new-password-2",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&r.body, "confirm").contains("does not match"));
    let r = a
        .post(
            &ui,
            &format!("/configuration/users/{}/password", carol.id),
            "password=a-new-password-1&confirm=a-new-password-1",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let c = login(&ui, "carol", "a-new-password-1").await;
    // Their own password needs the current one.
    let r = c
        .post(
            &ui,
            "/configuration/account/password",
            "current=wrong&password=third-password-x&confirm=third-password-x",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&r.body, "current").contains("not your current password"));

    let confirm = a
        .get(&ui, &format!("/configuration/users/{}/delete", carol.id))
        .await;
    assert!(confirm.body.contains("Delete the user “carol”?"));
    let r = a
        .post(
            &ui,
            &format!("/configuration/users/{}/delete", carol.id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(ui.store.find_user_by_name("carol").await.unwrap().is_none());
}

#[tokio::test]
async fn services_round_trip_with_redundancy_groups_and_nesting() {
    let ui = ui().await;
    let a = admin(&ui).await;
    let db = ui.store.create_host(&host("db", 1, "k")).await.unwrap();
    let w1 = ui.store.create_host(&host("web-1", 2, "k")).await.unwrap();
    let w2 = ui.store.create_host(&host("web-2", 3, "k")).await.unwrap();

    let r = a
        .post(
            &ui,
            "/configuration/services/new",
            "name=shop&description=the+shop&rg_count=1&rg0_name=",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "dependencies").contains("at least one"),
        "{}",
        r.body
    );
    assert!(r.body.contains(">the shop</textarea>"));

    let r = a
        .post(
            &ui,
            "/configuration/services/new",
            "name=storage&dependencies=h:1&rg_count=1",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let storage = ui.store.list_services().await.unwrap()[0].id;
    let body = format!("name=shop&dependencies=h:{db}&rg_count=2&rg0_name=web&rg0_members=h:{w1}&rg0_members=h:{w2}&rg1_name=&services={storage}");
    let r = a.post(&ui, "/configuration/services/new", &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let shop = ui.store.find_service_id("shop").await;
    let s = ui.store.get_service(shop).await.unwrap();
    assert_eq!(s.redundancy_groups[0].name, "web");
    assert_eq!(s.redundancy_groups[0].members.len(), 2);
    assert_eq!(s.services, vec![storage]);

    let list = a.get(&ui, "/configuration/services").await.body;
    assert!(list.contains("One of “web”"), "{list}");
    assert!(list.contains("host web-2"), "{list}");
    let edit = a
        .get(&ui, &format!("/configuration/services/{shop}/edit"))
        .await;
    assert!(
        edit.body
            .contains(&format!("name=\"rg0_members\" value=\"h:{w1}\" checked")),
        "{}",
        edit.body
    );
    assert!(
        !edit
            .body
            .contains(&format!("name=\"services\" value=\"{shop}\"")),
        "not offered to itself"
    );
    let r = a
        .post(
            &ui,
            &format!("/configuration/services/{shop}/edit"),
            &format!("name=shop&dependencies=h:{db}&rg_count=1&services={shop}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "services").contains("itself"),
        "{}",
        r.body
    );

    let confirm = a
        .get(&ui, &format!("/configuration/services/{storage}/delete"))
        .await;
    assert!(
        confirm.body.contains("Delete the service “storage”?"),
        "{}",
        confirm.body
    );
    let r = a
        .post(
            &ui,
            &format!("/configuration/services/{storage}/delete"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(ui.store.list_services().await.unwrap().len(), 1);
}

#[tokio::test]
async fn maintenance_windows_round_trip_and_anyone_may_acknowledge() {
    let ui = ui().await;
    let a = admin(&ui).await;
    let h = ui.store.create_host(&host("db", 1, "k")).await.unwrap();

    let r = a
        .post(&ui, "/configuration/maintenance/new", &format!("target=h:{h}&kind=once&start=2026-01-02T00%3A00&end=2026-01-01T00%3A00&comment=upgrade"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&r.body, "schedule").contains("end: must be after start"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "comment"), "upgrade");

    let r = a
        .post(&ui, "/configuration/maintenance/new", &format!("target=h:{h}&kind=weekly&days=0&days=2&start_time=22%3A00&duration=120&comment=upgrade"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let list = a.get(&ui, "/configuration/maintenance").await.body;
    assert!(
        list.contains("every Monday, Wednesday at 22:00 UTC for 120 minutes"),
        "{list}"
    );
    let id: i64 = between(&list, "Edit<span class=\"sr\"> window ", "<")
        .parse()
        .unwrap();
    let edit = a
        .get(&ui, &format!("/configuration/maintenance/{id}/edit"))
        .await;
    assert_eq!(input_value(&edit.body, "start_time"), "22:00");
    let r = a
        .post(
            &ui,
            &format!("/configuration/maintenance/{id}/edit"),
            &format!("target=h:{h}&kind=weekly&days=4&start_time=06%3A15&duration=30"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(a
        .get(&ui, "/configuration/maintenance")
        .await
        .body
        .contains("every Friday at 06:15 UTC"));

    let confirm = a
        .get(&ui, &format!("/configuration/maintenance/{id}/delete"))
        .await;
    assert!(
        confirm
            .body
            .contains("Delete the maintenance window “host db"),
        "{}",
        confirm.body
    );
    let r = a
        .post(&ui, &format!("/configuration/maintenance/{id}/delete"), "")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(a
        .get(&ui, "/configuration/maintenance")
        .await
        .body
        .contains("No maintenance windows."));

    let v = login(&ui, "viewer", "viewer-password").await;
    let r = v
        .post(
            &ui,
            "/configuration/acknowledgements",
            &format!("what=h:{h}&comment=on+it"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let acks = ui.store.list_acknowledgements(true).await.unwrap();
    assert_eq!(
        (acks[0].who.as_str(), acks[0].comment.as_str()),
        ("viewer", "on it")
    );
    assert!(v
        .get(&ui, "/configuration/maintenance")
        .await
        .body
        .contains("on it"));
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn alerts_with_module_options_masked_secrets_test_send_and_history() {
    let ui = ui().await;
    let a = admin(&ui).await;
    let h = ui.store.create_host(&host("db", 1, "k")).await.unwrap();
    let form = a.get(&ui, "/configuration/alerts/new").await;
    assert_eq!(form.status, StatusCode::OK);
    for field in [
        "opt.email.host",
        "opt.email.password",
        "opt.webhook.url",
        "opt.script.command",
    ] {
        assert!(
            form.body.contains(&format!("name=\"{field}\"")),
            "the {field} option from the module's schema"
        );
    }

    // The module's own refusal is shown next to the option.
    let base = format!("name=on-call&enabled=1&from_states=ok&to_states=critical&hosts={h}");
    let r = a
        .post(
            &ui,
            "/configuration/alerts/new",
            &format!("{base}&module=email&opt.email.host=&opt.email.to=ops%40example.org"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        field_error(&r.body, "opt.email.host").contains("required"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(">ops@example.org</textarea>"),
        "typed options are kept"
    );

    let secret = "hunter2-smtp-password";
    let r = a
        .post(&ui, "/configuration/alerts/new", &format!("{base}&module=email&opt.email.host=smtp.example.org&opt.email.username=prophasis&opt.email.password={secret}&opt.email.from=prophasis%40example.org&opt.email.to=ops%40example.org&renotify=600"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id: i64 = r.location().rsplit('/').next().unwrap().parse().unwrap();
    let stored = ui.store.get_alert(id).await.unwrap();
    assert_eq!(stored.options["password"], secret);
    let edit = a
        .get(&ui, &format!("/configuration/alerts/{id}/edit"))
        .await;
    assert!(!edit.body.contains(secret), "the secret is never shown");
    let masked = input_value(&edit.body, "opt.email.password").to_string();
    assert!(masked.starts_with("••••"), "{masked}");
    assert!(edit.body.contains("value=\"critical\" checked"));
    // Sent back masked, the secret is kept; other changes are saved.
    let r = a
        .post(&ui, &format!("/configuration/alerts/{id}/edit"), &format!("{base}&module=email&opt.email.host=smtp2.example.org&opt.email.username=prophasis&opt.email.password={}&opt.email.from=prophasis%40example.org&opt.email.to=ops%40example.org&renotify=30", enc(&masked)))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "renotify below 60 is refused"
    );
    assert!(
        field_error(&r.body, "renotify").contains("at least 60"),
        "{}",
        r.body
    );
    let r = a
        .post(&ui, &format!("/configuration/alerts/{id}/edit"), &format!("{base}&module=email&opt.email.host=smtp2.example.org&opt.email.username=prophasis&opt.email.password={}&opt.email.from=prophasis%40example.org&opt.email.to=ops%40example.org&renotify=120", enc(&masked)))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let stored = ui.store.get_alert(id).await.unwrap();
    assert_eq!(
        (
            stored.options["host"].as_str(),
            stored.options["password"].as_str()
        ),
        (Some("smtp2.example.org"), Some(secret))
    );

    // A script alert: "send a test" really runs it.
    let dir = common::tempdir();
    let out = dir.path().join("sent");
    let args = format!("-c\necho \"$PROPHASIS_SUMMARY\" > {}", out.display());
    let r = a
        .post(&ui, "/configuration/alerts/new", &format!("name=script&enabled=1&from_states=ok&to_states=critical&all_hosts=1&module=script&opt.script.command=%2Fbin%2Fsh&opt.script.args={}", enc(&args)))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let sid: i64 = r.location().rsplit('/').next().unwrap().parse().unwrap();
    let r = a
        .post(&ui, &format!("/configuration/alerts/{sid}/test"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        between(&r.body, "id=\"test-result\">", "</p>").contains("was sent"),
        "{}",
        r.body
    );
    assert!(out.exists(), "the script ran");
    let page = a.get(&ui, &format!("/configuration/alerts/{sid}")).await;
    assert!(page.body.contains("Delivery history"));

    let list = a.get(&ui, "/configuration/alerts").await.body;
    assert!(
        list.contains("on-call") && list.contains("all hosts"),
        "{list}"
    );
    let confirm = a
        .get(&ui, &format!("/configuration/alerts/{id}/delete"))
        .await;
    assert!(confirm.body.contains("Delete the alert “on-call”?"));
    let r = a
        .post(&ui, &format!("/configuration/alerts/{id}/delete"), "")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(ui.store.list_alerts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn classifiers_and_overrides_with_a_test_on_stored_results() {
    let ui = ui().await;
    let a = admin(&ui).await;
    install(&ui, &a, "org.example.temp").await;
    let h = ui.store.create_host(&host("db", 1, "k")).await.unwrap();
    let now = now_millis();
    let results: Vec<CheckResult> = [10.0, 20.0, 95.0]
        .iter()
        .enumerate()
        .map(|(i, v)| CheckResult {
            host_id: h,
            plugin_id: "org.example.temp".into(),
            check_id: None,
            timestamp: now - 3_000 + i as i64 * 1_000,
            value: Some(*v),
            message: format!("reading {i}"),
            result_type: ResultType::Plugin,
            classification: Classification::Ok,
        })
        .collect();
    ui.store.insert_results(&results).await.unwrap();
    let page = a
        .get(&ui, "/configuration/classifiers/org.example.temp")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("codemirror.js") && page.body.contains("codemirror-lua.js"),
        "the Lua editor"
    );

    // Code that does not compile is refused next to the code, as typed.
    let bad = "return (";
    let r = a
        .post(
            &ui,
            "/configuration/classifiers/org.example.temp",
            &format!("n_historical=1&code={}", enc(bad)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        field_error(&r.body, "code").contains("does not compile"),
        "{}",
        r.body
    );
    assert!(r.body.contains(">return (</textarea>"));

    // The test runs the unsaved code on the host's stored results, newest first.
    let code = "local v = values[#values]\nif v >= 50 then return \"critical\" end\nreturn \"ok\"";
    let r = a
        .post(
            &ui,
            "/configuration/classifiers/org.example.temp/dry-run",
            &format!("override_id=&n_historical=1&host={h}&code={}", enc(code)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let table = between(&r.body, "id=\"test-results\"", "</section>");
    let critical = table.find("h-critical").expect("95 is critical");
    let ok = table.find("h-ok").expect("10 and 20 are ok");
    assert!(critical < ok, "newest first: {table}");
    assert_eq!(
        ui.store
            .get_plugin("org.example.temp")
            .await
            .unwrap()
            .classifier,
        "return \"ok\"",
        "a test saves nothing"
    );
    // A runtime error is shown with its line.
    let r = a
        .post(
            &ui,
            "/configuration/classifiers/org.example.temp/dry-run",
            &format!(
                "override_id=&n_historical=1&host={h}&code={}",
                enc("local x = nil\nreturn x.y")
            ),
        )
        .await;
    assert!(
        between(&r.body, "id=\"test-results\"", "</section>").contains("line 2"),
        "{}",
        r.body
    );

    let r = a
        .post(
            &ui,
            "/configuration/classifiers/org.example.temp",
            &format!("n_historical=2&code={}", enc(code)),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = ui.store.get_plugin("org.example.temp").await.unwrap();
    assert_eq!((p.classifier.as_str(), p.n_historical), (code, 2));

    // An override for the host.
    let r = a
        .post(
            &ui,
            "/configuration/classifiers/org.example.temp/overrides/new",
            &format!(
                "target=h:{h}&n_historical=1&code={}",
                enc("return \"minor\"")
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let o = ui.store.list_overrides().await.unwrap().pop().unwrap();
    assert_eq!(o.code, "return \"minor\"");
    let list = a.get(&ui, "/configuration/classifiers").await.body;
    assert!(list.contains("host db"), "{list}");
    let edit = a
        .get(
            &ui,
            &format!(
                "/configuration/classifiers/org.example.temp/overrides/{}",
                o.id
            ),
        )
        .await;
    assert!(
        edit.body.contains(&format!("value=\"h:{h}\" selected")),
        "{}",
        edit.body
    );
    let confirm = a
        .get(
            &ui,
            &format!(
                "/configuration/classifiers/org.example.temp/overrides/{}/delete",
                o.id
            ),
        )
        .await;
    assert!(confirm.body.contains("host db"), "{}", confirm.body);
    let r = a
        .post(
            &ui,
            &format!(
                "/configuration/classifiers/org.example.temp/overrides/{}/delete",
                o.id
            ),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(ui.store.list_overrides().await.unwrap().is_empty());
}
