//! Handler tests of the web UI with `oneshot` on the real router: every page renders for
//! a logged-in user and sends anonymous visitors to the login page; sessions, CSRF,
//! roles, login throttling and logout behave; forms show validation messages next to
//! their field; chart data is reduced to the requested width.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use prophasis::config::Config;
use prophasis::web::{router, AppState};
use prophasis_model::{
    CheckResult, Classification, Host, LogCategory, Member, Plugin, PluginPackage, ResultType,
    Role, Service, SystemLogMessage, User,
};
use prophasis_store::{now_millis, Store};

struct Ui {
    app: axum::Router,
    store: Arc<Store>,
    host: i64,
    service: i64,
    check: i64,
    _core: prophasis::app::Core,
}

fn plugin(id: &str, view: &str, source: Option<&str>) -> Plugin {
    Plugin {
        id: id.into(),
        name: format!("Plugin {id}"),
        description: String::new(),
        version: 1.0,
        n_historical: 1,
        classifier: "return \"ok\"".into(),
        view: view.into(),
        view_source: source.map(str::to_string),
        manifest: serde_json::json!({"id": id}),
    }
}

async fn ui() -> Ui {
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
    let host = store
        .create_host(&Host {
            id: 0,
            name: "web-<1>".into(),
            address: "192.0.2.10".into(),
            port: 4048,
            description: String::new(),
            auth_key: "k".repeat(64),
            tls_fingerprint: None,
            enabled: true,
        })
        .await
        .unwrap();
    for p in [
        plugin("cpu_load", "value_graph", None),
        plugin("raid", "message_list", None),
        plugin(
            "fancy",
            "custom",
            Some("<p class=\"fancy\">{{ latest.message }} on {{ host }}</p>"),
        ),
    ] {
        store
            .put_plugin(&p, &PluginPackage::default())
            .await
            .unwrap();
    }
    let check = store
        .create_check(&prophasis_model::Check {
            id: 0,
            name: "basics".into(),
            description: String::new(),
            hosts: vec![host],
            host_groups: vec![],
            plugins: vec!["cpu_load".into(), "raid".into(), "fancy".into()],
            plugin_args: Default::default(),
        })
        .await
        .unwrap();
    let service = store
        .create_service(&Service {
            id: 0,
            name: "shop".into(),
            description: "the web shop".into(),
            dependencies: vec![Member::Host(host)],
            ..Default::default()
        })
        .await
        .unwrap();
    let now = now_millis();
    let results: Vec<CheckResult> = (0..120)
        .map(|i| CheckResult {
            host_id: host,
            plugin_id: ["cpu_load", "raid", "fancy"][i % 3].into(),
            check_id: Some(check),
            timestamp: now - 3_600_000 + i as i64 * 25_000,
            value: Some(i as f64),
            message: format!("<b>reading {i}</b>"),
            result_type: ResultType::Plugin,
            classification: if i == 60 {
                Classification::Critical
            } else {
                Classification::Ok
            },
        })
        .collect();
    store.insert_results(&results).await.unwrap();
    store
        .add_log(&SystemLogMessage {
            id: 0,
            time: now,
            category: LogCategory::Dispatch,
            title: "Agent unreachable".into(),
            message: "connection refused".into(),
            read: false,
        })
        .await
        .unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (core, _tasks) = prophasis::app::Core::start(store.clone(), &Config::default(), tx)
        .await
        .unwrap();
    Ui {
        app: router(AppState::new(core.clone())),
        store,
        host,
        service,
        check,
        _core: core,
    }
}

use common::reply::send;

fn form_post(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

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

async fn login(ui: &Ui, name: &str) -> Browser {
    let r = send(
        &ui.app,
        form_post(
            "/login",
            None,
            &format!("name={name}&password={name}-pw&next=%2Fhosts"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/hosts");
    let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let page = send(&ui.app, get("/hosts", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = between(&page.body, "<meta name=\"csrf-token\" content=\"", "\"").to_string();
    assert_eq!(csrf.len(), 64);
    Browser { cookie, csrf }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page"))
        + start.len();
    let j = s[i..].find(end).unwrap() + i;
    &s[i..j]
}

fn pages(ui: &Ui) -> Vec<String> {
    vec![
        "/".into(),
        "/hosts".into(),
        format!("/hosts/{}", ui.host),
        format!("/hosts/{}?range=7d", ui.host),
        format!(
            "/hosts/{}?range=custom&from=2026-01-01T00:00&to=2026-01-02T00:00",
            ui.host
        ),
        "/services".into(),
        format!("/services/{}", ui.service),
        "/checks".into(),
        format!("/checks/{}", ui.check),
        "/dashboards".into(),
        "/dashboards/new".into(),
        "/logs".into(),
        "/configuration".into(),
    ]
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    let ui = ui().await;
    for path in pages(&ui) {
        let r = send(&ui.app, get(&path, None)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            r.location().starts_with("/login?next=/"),
            "{path}: {}",
            r.location()
        );
    }
    let r = send(&ui.app, get("/hosts/1?range=1h", None)).await;
    assert_eq!(r.location(), "/login?next=/hosts/1%3Frange%3D1h");
    let r = send(&ui.app, get("/ui/api/live", None)).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "scripts get a status, not a page"
    );
    let r = send(&ui.app, form_post("/logs/read-all", None, "")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A forged cookie is no session.
    let fake = format!("prophasis_session={}", "ab".repeat(32));
    let r = send(&ui.app, get("/", Some(&fake))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // Unknown pages answer with a page; unknown API routes with JSON.
    let r = send(&ui.app, get("/nowhere", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("There is no such page."), "{}", r.body);
    let r = send(&ui.app, get("/api/v1/nowhere", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.starts_with("{\"error\""), "{}", r.body);

    let login = send(&ui.app, get("/login?next=%2Fservices", None)).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login
            .body
            .contains("name=\"next\" value=\"&#x2f;services\""),
        "{}",
        login.body
    );
    assert!(
        !login.body.contains("Log out"),
        "no navigation before login"
    );
}

#[tokio::test]
async fn every_page_renders_for_a_logged_in_user() {
    let ui = ui().await;
    let b = login(&ui, "viewer").await;
    for path in pages(&ui) {
        let r = send(&ui.app, get(&path, Some(&b.cookie))).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store", "{path}");
        assert!(r.body.contains("Log out"), "{path}: layout with navigation");
        assert!(r.body.contains("viewer"), "{path}: the user menu");
    }
    let hosts = send(&ui.app, get("/hosts", Some(&b.cookie))).await.body;
    // Names are escaped; health is shown with words and a live hook.
    assert!(hosts.contains("web-&lt;1&gt;"), "{hosts}");
    assert!(hosts.contains(&format!("data-host-health=\"{}\"", ui.host)));
    assert!(
        hosts.contains("h-ok") && hosts.contains(">OK<"),
        "health in words"
    );

    let host = send(
        &ui.app,
        get(&format!("/hosts/{}", ui.host), Some(&b.cookie)),
    )
    .await
    .body;
    assert!(host.contains("data-plugin=\"cpu_load\""), "a chart panel");
    assert!(
        host.contains("&lt;b&gt;reading"),
        "messages are escaped: {host}"
    );
    assert!(
        host.contains("<p class=\"fancy\">&lt;b&gt;reading"),
        "the custom view is rendered with autoescaping"
    );
    assert!(host.contains("uPlot.min.js?v="));

    let service = send(
        &ui.app,
        get(&format!("/services/{}", ui.service), Some(&b.cookie)),
    )
    .await
    .body;
    assert!(
        service.contains(&format!("href=\"/hosts/{}\"", ui.host)),
        "members link to hosts"
    );
    assert!(service.contains("Dependencies"));

    let check = send(
        &ui.app,
        get(&format!("/checks/{}", ui.check), Some(&b.cookie)),
    )
    .await
    .body;
    assert!(check.contains("Plugin cpu_load") && check.contains("Plugin raid"));

    let logs = send(&ui.app, get("/logs", Some(&b.cookie))).await.body;
    assert!(logs.contains("Agent unreachable"));
    assert!(
        !logs.contains("Mark all as read"),
        "viewers are not offered admin actions"
    );

    let missing = send(&ui.app, get("/hosts/9999", Some(&b.cookie))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("There is no host 9999"));
    let bad = send(
        &ui.app,
        get(&format!("/hosts/{}?range=2w", ui.host), Some(&b.cookie)),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad
        .body
        .contains("choose 1h, 6h, 24h, 7d, 30d, 1y or custom"));
}

#[tokio::test]
async fn static_files_are_public_hashed_and_cached() {
    let ui = ui().await;
    let b = login(&ui, "admin").await;
    let page = send(&ui.app, get("/", Some(&b.cookie))).await.body;
    let css = between(&page, "<link rel=\"stylesheet\" href=\"", "\"").to_string();
    assert!(css.starts_with("/static/app.css?v="), "{css}");
    let r = send(&ui.app, get(&css, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(r.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    for f in [
        "uPlot.min.js",
        "codemirror.js",
        "codemirror-lua.js",
        "app.js",
    ] {
        let r = send(&ui.app, get(&format!("/static/{f}"), None)).await;
        assert_eq!(r.status, StatusCode::OK, "{f}");
    }
    assert_eq!(
        send(&ui.app, get("/static/nope.js", None)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_session_cookie_is_hardened_and_only_its_hash_is_stored() {
    let ui = ui().await;
    let r = send(
        &ui.app,
        form_post("/login", None, "name=admin&password=admin-pw"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/");
    let set = r.headers[header::SET_COOKIE].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here");
    let id = set.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(
        ui.store.get_web_session(id, 0).await.unwrap().is_none(),
        "the id is not stored"
    );
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(id.as_bytes()));
    let s = ui.store.get_web_session(&hash, 0).await.unwrap().unwrap();
    assert!(s.expires > now_millis() + 11 * 3600 * 1000);

    // An open redirect is not possible through `next`.
    let r = send(
        &ui.app,
        form_post(
            "/login",
            None,
            "name=admin&password=admin-pw&next=%2F%2Fevil.example",
        ),
    )
    .await;
    assert_eq!(r.location(), "/");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_messages() {
    let ui = ui().await;
    let r = send(
        &ui.app,
        form_post("/login", None, "name=admin&password=nope"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong user name or password."));
    assert!(r.body.contains("value=\"admin\""), "the name is kept");
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // Empty fields: a message next to each field.
    let r = send(&ui.app, form_post("/login", None, "name=&password=")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"e-name\""), "{}", r.body);
    assert!(r.body.contains("enter your password"));
    assert!(r.body.contains("aria-invalid=\"true\""));
}

fn from_addr(mut req: Request<Body>, addr: &str) -> Request<Body> {
    let a: SocketAddr = addr.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(a));
    req
}

#[tokio::test]
async fn logins_are_throttled_per_user_name_and_per_address() {
    let ui = ui().await;
    let mut tasks = Vec::new();
    for i in 0..5 {
        let app = ui.app.clone();
        tasks.push(tokio::spawn(async move {
            send(
                &app,
                from_addr(
                    form_post("/login", None, "name=admin&password=guess"),
                    &format!("198.51.100.{i}:4000"),
                ),
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now, from anywhere.
    let r = send(
        &ui.app,
        from_addr(
            form_post("/login", None, "name=admin&password=admin-pw"),
            "203.0.113.9:4000",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Too many failed logins"), "{}", r.body);
    // Another user is not affected.
    let r = send(
        &ui.app,
        from_addr(
            form_post("/login", None, "name=viewer&password=viewer-pw"),
            "203.0.113.9:4000",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // One address guessing many names is stopped too.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = ui.app.clone();
        tasks.push(tokio::spawn(async move {
            send(
                &app,
                from_addr(
                    form_post("/login", None, &format!("name=ghost{i}&password=x")),
                    "192.0.2.66:1",
                ),
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let r = send(
        &ui.app,
        from_addr(
            form_post("/login", None, "name=viewer&password=viewer-pw"),
            "192.0.2.66:2",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn every_post_needs_the_csrf_token() {
    let ui = ui().await;
    let b = login(&ui, "admin").await;
    let body = "name=Night&panels=problems";
    // No token.
    let r = send(&ui.app, form_post("/dashboards/new", Some(&b.cookie), body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("security token"), "{}", r.body);
    // A wrong token, as field and as header.
    let r = send(
        &ui.app,
        form_post(
            "/dashboards/new",
            Some(&b.cookie),
            &format!("{body}&csrf_token={}", "0".repeat(64)),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut req = form_post("/logs/read-all", Some(&b.cookie), "");
    req.headers_mut()
        .insert("x-csrf-token", "nope".parse().unwrap());
    assert_eq!(send(&ui.app, req).await.status, StatusCode::FORBIDDEN);
    // Logout needs it too (no logging people out from another site).
    let r = send(&ui.app, form_post("/logout", Some(&b.cookie), "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(ui.store.list_dashboards().await.unwrap().is_empty());
    // The right token, as field and as header.
    let r = send(
        &ui.app,
        form_post(
            "/dashboards/new",
            Some(&b.cookie),
            &format!("{body}&csrf_token={}", b.csrf),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut req = form_post("/logs/read-all", Some(&b.cookie), "");
    req.headers_mut()
        .insert("x-csrf-token", b.csrf.parse().unwrap());
    assert_eq!(send(&ui.app, req).await.status, StatusCode::SEE_OTHER);
    // Another session's token does not do.
    let other = login(&ui, "admin").await;
    let r = send(
        &ui.app,
        form_post(
            "/logs/read-all",
            Some(&b.cookie),
            &format!("csrf_token={}", other.csrf),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn viewers_are_refused_admin_actions() {
    let ui = ui().await;
    let v = login(&ui, "viewer").await;
    let r = send(
        &ui.app,
        form_post(
            "/logs/read-all",
            Some(&v.cookie),
            &format!("csrf_token={}", v.csrf),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("role viewer"), "{}", r.body);
    assert_eq!(ui.store.unread_log_count().await.unwrap(), 1);
    let id = ui.store.list_log(&Default::default()).await.unwrap()[0].id;
    let r = send(
        &ui.app,
        form_post(
            &format!("/logs/{id}/read"),
            Some(&v.cookie),
            &format!("csrf_token={}", v.csrf),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let a = login(&ui, "admin").await;
    let logs = send(&ui.app, get("/logs", Some(&a.cookie))).await.body;
    assert!(logs.contains("Mark all as read"));
    let r = send(
        &ui.app,
        form_post(
            &format!("/logs/{id}/read"),
            Some(&a.cookie),
            &format!("csrf_token={}", a.csrf),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(ui.store.unread_log_count().await.unwrap(), 0);
    let page = send(&ui.app, get("/", Some(&a.cookie))).await.body;
    assert!(
        page.contains("class=\"badge hidden\""),
        "no unread badge left"
    );

    // A viewer's own dashboard is theirs; an admin's is not.
    let r = send(
        &ui.app,
        form_post(
            "/dashboards/new",
            Some(&a.cookie),
            &format!("name=Ops&panels=problems&csrf_token={}", a.csrf),
        ),
    )
    .await;
    let path = r.location().to_string();
    let r = send(&ui.app, get(&format!("{path}/edit"), Some(&v.cookie))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &ui.app,
        form_post(
            &format!("{path}/delete"),
            Some(&v.cookie),
            &format!("csrf_token={}", v.csrf),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&ui.app, get(&path, Some(&v.cookie))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let ui = ui().await;
    let b = login(&ui, "admin").await;
    let r = send(
        &ui.app,
        form_post(
            "/logout",
            Some(&b.cookie),
            &format!("csrf_token={}", b.csrf),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let again = send(&ui.app, get("/", Some(&b.cookie))).await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
    assert!(again.location().starts_with("/login"));
}

#[tokio::test]
async fn dashboard_forms_show_messages_next_to_fields_and_save() {
    let ui = ui().await;
    let b = login(&ui, "viewer").await;
    let post = |body: String| form_post("/dashboards/new", Some(&b.cookie), &body);
    let r = send(
        &ui.app,
        post(format!(
            "name=&panels=graph+nowhere+cpu_load%0Adance&csrf_token={}",
            b.csrf
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"e-name\""), "{}", r.body);
    assert!(
        r.body
            .contains("line 1: there is no host called &quot;nowhere&quot;"),
        "{}",
        r.body
    );
    assert!(r.body.contains("line 2: &quot;dance&quot; is not a panel"));
    assert!(
        r.body.contains("graph nowhere cpu_load"),
        "what was typed is kept"
    );

    let panels = "graph+web-%3C1%3E+cpu_load%0Aservice+shop%0Acheck+basics%0Aproblems";
    let r = send(
        &ui.app,
        post(format!("name=Mine&panels={panels}&csrf_token={}", b.csrf)),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let path = r.location().to_string();
    let d = ui.store.list_dashboards().await.unwrap().remove(0);
    assert_eq!(d.layout["panels"].as_array().unwrap().len(), 4);
    assert_eq!(d.layout["panels"][0]["host"], ui.host);
    let page = send(&ui.app, get(&path, Some(&b.cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-plugin=\"cpu_load\""));
    assert!(page.body.contains("Check basics"));
    assert!(page
        .body
        .contains(&format!("data-service-health=\"{}\"", ui.service)));

    // The same name again: the store's refusal lands next to the name field.
    let r = send(
        &ui.app,
        post(format!("name=Mine&panels=problems&csrf_token={}", b.csrf)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("another dashboard is already called"),
        "{}",
        r.body
    );
    assert!(between(&r.body, "id=\"e-name\"", "</p>").contains("already called"));

    // Edit keeps the panels as lines; delete asks first.
    let edit = send(&ui.app, get(&format!("{path}/edit"), Some(&b.cookie)))
        .await
        .body;
    assert!(
        edit.contains("graph web-&lt;1&gt; cpu_load\nservice shop\ncheck basics\nproblems"),
        "{edit}"
    );
    let confirm = send(&ui.app, get(&format!("{path}/delete"), Some(&b.cookie)))
        .await
        .body;
    assert!(confirm.contains("Delete the dashboard “Mine”?"));
    let r = send(
        &ui.app,
        form_post(
            &format!("{path}/delete"),
            Some(&b.cookie),
            &format!("csrf_token={}", b.csrf),
        ),
    )
    .await;
    assert_eq!(r.location(), "/dashboards");
    assert!(ui.store.list_dashboards().await.unwrap().is_empty());
}

#[tokio::test]
async fn chart_data_is_reduced_to_the_width_asked_for() {
    let ui = ui().await;
    let b = login(&ui, "viewer").await;
    let url = format!(
        "/ui/api/hosts/{}/series?plugin=cpu_load&range=6h&width=10",
        ui.host
    );
    let r = send(&ui.app, get(&url, Some(&b.cookie))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["results"], 40);
    assert_eq!(v["resolution"], "raw");
    let n = v["t"].as_array().unwrap().len();
    assert!(n <= 10 && n > 0, "{n} points");
    assert_eq!(
        v["worst"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| **w == 4)
            .count(),
        1,
        "the critical result"
    );
    assert_eq!(
        v["max"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_f64())
            .fold(0.0, f64::max),
        117.0
    );

    let r = send(
        &ui.app,
        get(
            &format!(
                "/ui/api/hosts/{}/series?plugin=cpu_load&range=1y&width=300",
                ui.host
            ),
            Some(&b.cookie),
        ),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["resolution"], "one_hour");
    assert!(v["t"].as_array().unwrap().len() <= 300);
}

#[tokio::test]
async fn the_live_endpoint_reports_health_and_unread_count() {
    let ui = ui().await;
    let b = login(&ui, "viewer").await;
    let r = send(&ui.app, get("/ui/api/live", Some(&b.cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(v["hosts"][ui.host.to_string()].is_string(), "{v}");
    assert!(v["services"][ui.service.to_string()].is_string(), "{v}");
    assert!(v["sampled_at"].as_i64().unwrap() > 0);
    assert!(v["version"].is_u64());
}

#[tokio::test]
async fn the_host_latest_endpoint_feeds_the_plugin_panels() {
    let ui = ui().await;
    let url = format!("/ui/api/hosts/{}/latest", ui.host);
    let r = send(&ui.app, get(&url, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let b = login(&ui, "viewer").await;
    let r = send(&ui.app, get(&url, Some(&b.cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let cpu = &v["plugins"]["cpu_load"];
    // The newest of the seeded results (i = 117), message as stored: the page inserts it
    // as text, never as markup.
    assert_eq!(cpu["value"], 117.0, "{v}");
    assert_eq!(cpu["message"], "<b>reading 117</b>", "{v}");
    assert_eq!(cpu["classification"], "ok", "{v}");
    assert_eq!(cpu["result_type"], "plugin", "{v}");
    assert!(cpu["ago"].as_str().unwrap().ends_with("ago"), "{v}");
    assert_eq!(v["plugins"].as_object().unwrap().len(), 3, "{v}");
    let r = send(&ui.app, get("/ui/api/hosts/999999/latest", Some(&b.cookie))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The host page carries the hooks app.js uses, and the health version it was made with.
    let page = send(
        &ui.app,
        get(&format!("/hosts/{}", ui.host), Some(&b.cookie)),
    )
    .await;
    assert!(
        page.body.contains(&format!("data-latest-url=\"{url}\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-plugin-panel=\"cpu_load\""));
    assert!(page.body.contains("data-version=\""));
}
