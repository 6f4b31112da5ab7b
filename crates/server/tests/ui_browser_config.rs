//! Setting Prophasis up from nothing through the configuration pages, in a real headless
//! Chromium, the way an administrator does it: typing into fields, ticking pickers,
//! choosing options and pressing buttons, never posting a form by hand. It starts from an
//! empty configuration (only the first admin) and a real agent no host points at yet, and
//! ends with the agent stopped and an alert delivered to a webhook receiver.
//!
//! It exists because handler tests post the form fields the test author expects; only a
//! browser finds a form whose fields, names or buttons do not add up to what its handler
//! reads. Every configuration page and form is also photographed at 1280 and 375 px (into
//! `<target>/screenshots`, `config-…-WIDTH.png`), and none may scroll sideways at 375.
//! A failure saves a `failure-….png` screenshot there and prints the page's text.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use browser::{screenshot_dir, Browser};
use common::*;
use serde_json::Value;

const SECS: Duration = Duration::from_secs(1);
/// Generous: two shared cores, a browser, a server and an agent.
const WAIT: Duration = Duration::from_secs(30);
const PLUGIN: &str = "org.test.load";

/// A webhook receiver on loopback: every JSON body it is sent, in order.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn start_receiver() -> Receiver {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, received }
}

/// What the browser session is given: everything a person at the keyboard would know.
struct Setup {
    base: String,
    admin: String,
    password: String,
    agent: Agent,
    package: PathBuf,
    hook: Receiver,
}

/// Ids the flow learns from the pages' addresses, for the screenshots afterwards.
#[derive(Debug, Default)]
struct Ids {
    host: i64,
    group: i64,
    check: i64,
    schedule: i64,
    service: i64,
    alert: i64,
    window: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_everything_in_the_browser_and_watch_it_work() {
    let data = tempdir();
    let store = open_store(data.path()).await;
    let (admin, password) = prophasis::serve::ensure_admin(&store)
        .await
        .unwrap()
        .expect("a first admin on an empty database");
    assert!(store.list_hosts().await.unwrap().is_empty());
    let agent_dir = tempdir();
    let agent = Agent::start(agent_dir.path(), 0).await;
    // The package an administrator would have made with `prophasis plugin pack`.
    let sources = tempdir();
    let bytes = script_plugin(
        sources.path(),
        PLUGIN,
        3.0,
        "echo '{\"value\": 12, \"message\": \"load is fine\"}'",
        THRESHOLD_CLASSIFIER,
        5.0,
    );
    let package = sources.path().join("org.test.load-3.tar.gz");
    std::fs::write(&package, bytes).unwrap();
    let hook = start_receiver().await;
    let running = start_server(data.path(), store.clone()).await;
    let base = format!("http://{}", running.addr);

    let b = Arc::new(Browser::start().await);
    let setup = Setup {
        base: base.clone(),
        admin,
        password,
        agent,
        package,
        hook,
    };
    // The flow runs as its own task so a failure anywhere in it (an assertion as much as
    // a wait) still leaves a screenshot and the page's text behind.
    let flow = tokio::spawn(configure_and_watch(b.clone(), setup));
    let ids = match flow.await {
        Ok(ids) => ids,
        Err(e) => {
            b.report_failure("configure-and-watch").await;
            std::panic::resume_unwind(e.into_panic());
        }
    };
    let shots = tokio::spawn(photograph_every_page(b.clone(), base, ids));
    if let Err(e) = shots.await {
        b.report_failure("photograph-every-page").await;
        std::panic::resume_unwind(e.into_panic());
    }

    if let Ok(b) = Arc::try_unwrap(b) {
        b.close().await;
    }
    running.stop().await;
}

/// The id at the end of a path such as `/configuration/alerts/7` or `…/7/test`.
fn id_in(url: &str, after: &str) -> i64 {
    let rest = url
        .split(after)
        .nth(1)
        .unwrap_or_else(|| panic!("{url} has no {after}"));
    rest.trim_start_matches('/')
        .split(['/', '?', '#'])
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id after {after} in {url}"))
}

/// Presses a form's primary submit button and waits for the page it leads to.
async fn submit(b: &Browser, path: &str) {
    press(b, "main form.form button[type=submit].primary", path).await;
}

/// Presses the button `css` and waits for the page it leads to: a new document whose path
/// matches `path` (a regular expression) and that shows no form errors.
async fn press(b: &Browser, css: &str, path: &str) {
    b.eval("window.__submitted = true; return 1;", vec![]).await;
    b.click(css).await;
    b.wait_until(
        &format!(
            "!window.__submitted && document.readyState === 'complete' && \
             new RegExp({path:?}).test(location.pathname) && \
             !document.querySelector('.form-errors, .field.invalid, section.error-page')"
        ),
        &format!("the form to be accepted and {path} to open"),
        WAIT,
    )
    .await;
}

/// Logs out with the header's button and waits for the login page it leads to, so the
/// next navigation does not race the logout.
async fn log_out(b: &Browser) {
    b.click("form[action='/logout'] button").await;
    b.wait_until(
        "location.pathname === '/login' && document.querySelector('form[action=\"/login\"]')",
        "the login page after logging out",
        WAIT,
    )
    .await;
}

/// Logs in through the form on the current page.
async fn log_in(b: &Browser, name: &str, password: &str) {
    b.wait_for("form[action='/login'] #f-name", 10 * SECS).await;
    b.fill("#f-name", name).await;
    b.fill("#f-password", password).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_until(
        "location.pathname !== '/login' && document.querySelector('form[action=\"/logout\"]')",
        &format!("{name} to be logged in"),
        WAIT,
    )
    .await;
}

/// Opens an area from the configuration index, as a person would.
async fn open_area(b: &Browser, base: &str, area: &str) {
    b.goto(&format!("{base}/configuration")).await;
    b.click_link("main", area).await;
    b.wait_for("main h1", 10 * SECS).await;
}

async fn configure_and_watch(b: Arc<Browser>, mut s: Setup) -> Ids {
    let b = &*b;
    let base = s.base.clone();
    let mut ids = Ids::default();

    // 1. Log in: a deep link leads through the login form.
    b.goto(&format!("{base}/configuration")).await;
    log_in(b, &s.admin, &s.password).await;
    b.wait_for_text("main h1", "Configuration", WAIT).await;

    // 2. A host group, empty for now: there is no host to put in it yet.
    open_area(b, &base, "Host groups").await;
    b.click_link("main", "Add a host group").await;
    b.wait_for_text("#p-member_hosts", "no hosts to choose yet", WAIT)
        .await;
    b.fill("#f-name", "web servers").await;
    b.fill("#f-description", "the shop's front ends").await;
    submit(b, "^/configuration/host-groups$").await;
    b.wait_for_text("#config-groups", "web servers", WAIT).await;

    // 3. The host, pointing at the running agent with the key its setup printed.
    open_area(b, &base, "Hosts").await;
    b.click_link("main", "Add a host").await;
    b.fill("#f-name", "web1").await;
    b.fill("#f-address", "127.0.0.1").await;
    b.fill("#f-port", &s.agent.addr.port().to_string()).await;
    b.fill("#f-description", "the first front end").await;
    b.fill("#f-auth_key", &s.agent.key).await;
    submit(b, "^/configuration/hosts$").await;
    b.wait_for_text("#config-hosts", "web1", WAIT).await;
    b.wait_for_text(
        "#config-hosts",
        &format!("127.0.0.1:{}", s.agent.addr.port()),
        WAIT,
    )
    .await;
    // "Test connection" asks the agent itself: reachable, key accepted, its version and
    // the certificate it presents, before any check has run.
    b.click("#config-hosts form[action$='/test'] button").await;
    b.wait_for_text("main h1", "Connection test: web1", WAIT)
        .await;
    ids.host = id_in(&b.url().await, "/configuration/hosts/");
    b.wait_for_text("#t-reachable", "yes", WAIT).await;
    b.wait_for_text("#t-auth", "accepted", WAIT).await;
    assert_eq!(b.text("#t-version").await.trim(), env!("CARGO_PKG_VERSION"));
    let fingerprint = b.text("#t-fingerprint").await;
    assert!(
        fingerprint.contains(&s.agent.fingerprint),
        "the test page shows the agent's certificate fingerprint {}: {fingerprint}",
        s.agent.fingerprint
    );
    assert!(fingerprint.contains("not pinned yet"), "{fingerprint}");
    assert_eq!(b.text("#t-error").await, "", "no error is shown");
    b.screenshot(&screenshot_dir().join("config-flow-host-test-1280.png"))
        .await;
    // Saving the edit form with the key left blank keeps the key: the agent still
    // accepts the server.
    b.click_link("main", "Back to hosts").await;
    b.click("#config-hosts a[href$='/edit']").await;
    b.wait_for_text("main h1", "Edit host", WAIT).await;
    b.fill("#f-description", "the first front end, behind the balancer")
        .await;
    submit(b, "^/configuration/hosts$").await;
    b.wait_for_text("#config-hosts", "behind the balancer", WAIT)
        .await;
    b.click("#config-hosts form[action$='/test'] button").await;
    b.wait_for_text("#t-auth", "accepted", WAIT).await;
    // Into the group, through the group's form.
    open_area(b, &base, "Host groups").await;
    b.click("#config-groups a[href$='/edit']").await;
    b.wait_for_text("main h1", "Edit host group", WAIT).await;
    ids.group = id_in(&b.url().await, "/configuration/host-groups/");
    b.tick("#p-member_hosts", "web1", true).await;
    submit(b, "^/configuration/host-groups$").await;
    b.wait_for_text("#config-groups", "web1", WAIT).await;

    // 4. The plugin package, chosen in the file input; its page shows the manifest.
    open_area(b, &base, "Plugins").await;
    b.upload("#f-package", &s.package).await;
    b.click("form[action='/configuration/plugins'] button[type=submit]")
        .await;
    b.wait_for_text("main h1", "version 3", WAIT).await;
    assert!(b
        .url()
        .await
        .ends_with(&format!("/configuration/plugins/{PLUGIN}")));
    let manifest = b.text("#manifest").await;
    assert!(manifest.contains(PLUGIN), "{manifest}");
    assert!(manifest.contains("run.sh"), "{manifest}");
    b.click_link("main", "Plugins").await;
    b.wait_for_text("#config-plugins", PLUGIN, WAIT).await;

    // 5. A check: the plugin on every host of the group.
    open_area(b, &base, "Checks").await;
    b.click_link("main", "Add a check").await;
    b.fill("#f-name", "load").await;
    b.tick("#p-host_groups", "web servers", true).await;
    b.tick("#t-plugins", PLUGIN, true).await;
    submit(b, "^/configuration/checks$").await;
    b.wait_for_text("#config-checks", "web servers (group)", WAIT)
        .await;
    b.click("#config-checks a[href$='/edit']").await;
    b.wait_for_text("main h1", "Edit check", WAIT).await;
    ids.check = id_in(&b.url().await, "/configuration/checks/");

    // 7. A service that depends on the host.
    open_area(b, &base, "Services").await;
    b.click_link("main", "Add a service").await;
    b.fill("#f-name", "shop").await;
    b.fill("#f-description", "the web shop").await;
    b.tick("#p-dependencies", "host web1", true).await;
    submit(b, "^/configuration/services$").await;
    b.wait_for_text("#config-services", "shop", WAIT).await;
    b.click("#config-services a[href$='/edit']").await;
    b.wait_for_text("main h1", "Edit service", WAIT).await;
    ids.service = id_in(&b.url().await, "/configuration/services/");

    // 8. An alert: web1 leaving OK for anything worse, by webhook; "Send a test" reaches
    // the receiver.
    open_area(b, &base, "Alerts").await;
    b.click_link("main", "Add an alert").await;
    b.fill("#f-name", "web1 down").await;
    for state in ["Unknown", "Minor", "Major", "Critical"] {
        b.tick("fieldset.states + fieldset.states", state, true)
            .await;
    }
    b.tick("main form", "All hosts", false).await;
    b.tick("#p-hosts", "web1", true).await;
    b.select("#f-module", "webhook").await;
    b.wait_until(
        "!document.querySelector('fieldset[data-module=webhook]').hidden",
        "the webhook's options to show",
        WAIT,
    )
    .await;
    b.fill("[id='f-opt.webhook.url']", &s.hook.url).await;
    submit(b, r"^/configuration/alerts/\d+$").await;
    ids.alert = id_in(&b.url().await, "/configuration/alerts/");
    b.wait_for_text("main h1", "web1 down", WAIT).await;
    b.click("form[action$='/test'] button").await;
    b.wait_for_text("#test-result", "was sent through webhook", WAIT)
        .await;
    let test = eventually(WAIT, "the test notification", || async {
        s.hook.received.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(test["kind"], "test", "{test}");
    assert_eq!(test["alert_name"], "web1 down", "{test}");
    // Saving the edit form as shown keeps the masked webhook address: the next test
    // arrives too.
    b.click_link("main", "Edit").await;
    b.wait_for_text("main h1", "Edit alert", WAIT).await;
    submit(b, r"^/configuration/alerts/\d+$").await;
    assert_eq!(b.text("main dl dd:nth-of-type(2)").await.trim(), "1 host");
    b.click("form[action$='/test'] button").await;
    b.wait_for_text("#test-result", "was sent through webhook", WAIT)
        .await;
    eventually(WAIT, "a second test notification", || async {
        (s.hook.received.lock().unwrap().len() == 2).then_some(())
    })
    .await;

    // 9. The host page, open before anything runs: no data yet.
    let host_page = format!("{base}/hosts/{}", ids.host);
    b.goto(&host_page).await;
    b.wait_for(
        &format!("#plugin-{} .chart", PLUGIN.replace('.', "\\.")),
        10 * SECS,
    )
    .await;
    let badge = format!("h1 [data-host-health='{}']", ids.host);
    b.wait_until(
        &format!("document.querySelector(\"{badge}\").classList.contains('h-no_data')"),
        "the host to have no data yet",
        WAIT,
    )
    .await;
    // The page has polled once, so a later change of health is a change it sees.
    b.wait_for_text("#freshness", "Updated", WAIT).await;
    b.eval("window.__stillTheSamePage = true; return 1;", vec![])
        .await;
    // 6. The schedule, added in a second tab while the host page stays open in the first.
    let host_tab = b.new_tab().await;
    open_area(b, &base, "Schedules").await;
    b.click_link("main", "Add a schedule").await;
    b.fill("#f-name", "every two seconds").await;
    b.tick("#p-checks", "load", true).await;
    b.fill("#iv-1", "2").await;
    b.select("#iu-1", "seconds").await;
    submit(b, "^/configuration/schedules$").await;
    b.wait_for_text("#config-schedules", "every 2 seconds", WAIT)
        .await;
    b.click("#config-schedules a[href$='/edit']").await;
    b.wait_for_text("main h1", "Edit schedule", WAIT).await;
    ids.schedule = id_in(&b.url().await, "/configuration/schedules/");
    // Saved again unchanged, it keeps its interval and its start.
    let start = b
        .eval("return document.getElementById('is-1').value;", vec![])
        .await;
    submit(b, "^/configuration/schedules$").await;
    let listed = b.text("#config-schedules").await;
    assert!(listed.contains("every 2 seconds"), "{listed}");
    b.click("#config-schedules a[href$='/edit']").await;
    b.wait_for_text("main h1", "Edit schedule", WAIT).await;
    assert_eq!(
        b.eval("return document.getElementById('is-1').value;", vec![])
            .await,
        start
    );
    let schedule_tab = b.window_handle().await;
    b.switch_to(&host_tab).await;
    // Results arrive: the badge turns OK and the chart draws them, without a reload.
    b.wait_until(
        &format!("document.querySelector(\"{badge}\").classList.contains('h-ok')"),
        "the host to turn OK on the open page",
        WAIT,
    )
    .await;
    b.wait_until(
        "document.querySelector('.chart canvas') && Number(document.querySelector('.chart').dataset.results) > 0",
        "the chart to draw the first results",
        WAIT,
    )
    .await;
    assert_eq!(
        b.eval("return window.__stillTheSamePage === true;", vec![])
            .await,
        true,
        "the host page was not reloaded"
    );
    b.wait_for_drawn_chart(WAIT).await;
    b.screenshot(&screenshot_dir().join("config-flow-host-live-1280.png"))
        .await;
    // The other tab is done with.
    b.switch_to(&schedule_tab).await;
    b.close_tab().await;
    b.switch_to(&host_tab).await;

    // 10. Break the agent while the service page is open: the service and its host turn
    // unhealthy in place, and the alert goes out.
    b.goto(&format!("{base}/services/{}", ids.service)).await;
    let service_badge = format!("h1 [data-service-health='{}']", ids.service);
    let host_badge = format!("[data-host-health='{}']", ids.host);
    b.wait_until(
        &format!("document.querySelector(\"{service_badge}\").classList.contains('h-ok')"),
        "the service to show OK",
        WAIT,
    )
    .await;
    b.eval("window.__stillTheSamePage = true; return 1;", vec![])
        .await;
    s.agent.stop().await;
    b.wait_until(
        &format!(
            "!document.querySelector(\"{service_badge}\").classList.contains('h-ok') && \
             !document.querySelector(\"{host_badge}\").classList.contains('h-ok')"
        ),
        "the service and its host to turn unhealthy on the open page",
        WAIT,
    )
    .await;
    assert_eq!(
        b.eval("return window.__stillTheSamePage === true;", vec![])
            .await,
        true,
        "the service page was not reloaded"
    );
    b.screenshot(&screenshot_dir().join("config-flow-service-down-1280.png"))
        .await;
    let problem = eventually(WAIT, "the alert about web1", || async {
        s.hook
            .received
            .lock()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "transition")
            .cloned()
    })
    .await;
    assert_eq!(problem["alert_name"], "web1 down", "{problem}");
    assert_eq!(problem["entity_name"], "web1", "{problem}");
    assert_eq!(problem["old"], "ok", "{problem}");
    assert_ne!(problem["new"], "ok", "{problem}");
    // The alert's page lists the delivery.
    let alert_page = format!("{base}/configuration/alerts/{}", ids.alert);
    let start = std::time::Instant::now();
    loop {
        b.goto(&alert_page).await;
        b.wait_for("#history", 10 * SECS).await;
        let history = b.text("#history tbody").await;
        if history.contains("delivered") && history.contains("web1") {
            assert!(history.contains("sent"), "{history}");
            break;
        }
        if start.elapsed() > WAIT {
            panic!("{}", b.failure("the delivery in the alert's history").await);
        }
        tokio::time::sleep(SECS).await;
    }

    // 11. Someone acknowledges the problem…
    open_area(b, &base, "Maintenance").await;
    b.select("#f-what", &format!("h:{}", ids.host)).await;
    b.fill("#f-comment", "looking at it").await;
    press(
        b,
        "form[action='/configuration/acknowledgements'] button[type=submit]",
        "^/configuration/maintenance$",
    )
    .await;
    let acks = b.wait_for_text("#acks", "host web1", WAIT).await;
    assert!(
        acks.contains("looking at it") && acks.contains(&s.admin),
        "{acks}"
    );
    // … and plans weekly work on the service.
    b.click_link("main", "Add a maintenance window").await;
    b.select("#f-target", &format!("s:{}", ids.service)).await;
    b.select("#f-kind", "weekly").await;
    b.tick("main form", "Monday", true).await;
    b.tick("main form", "Sunday", true).await;
    b.fill("#f-start_time", "22:30").await;
    b.fill("#f-duration", "90").await;
    b.fill("#f-comment", "kernel upgrades").await;
    submit(b, "^/configuration/maintenance$").await;
    let when = "every Monday, Sunday at 22:30 UTC for 90 minutes";
    let windows = b.wait_for_text("#config-windows", when, WAIT).await;
    assert!(windows.contains("service shop"), "{windows}");
    b.click("#config-windows a[href$='/edit']").await;
    b.wait_for_text("main h1", "Edit maintenance window", WAIT)
        .await;
    ids.window = id_in(&b.url().await, "/configuration/maintenance/");
    submit(b, "^/configuration/maintenance$").await;
    b.wait_for_text("#config-windows", when, WAIT).await;

    // 12. Classifier code typed into the editor, tried on the stored results without
    // saving, then saved as an override for the check.
    open_area(b, &base, "Classifiers").await;
    b.click(&format!(
        "#config-classifiers a[href='/configuration/classifiers/{PLUGIN}']"
    ))
    .await;
    b.wait_for_text("main h1", "Classifier of", WAIT).await;
    b.click(".CodeMirror").await;
    b.type_keys("\u{E009}a\u{E000}return \"minor\"").await;
    b.select("#f-host", &ids.host.to_string()).await;
    press(
        b,
        "button[formaction$='/dry-run']",
        &format!("^/configuration/classifiers/{PLUGIN}/dry-run$"),
    )
    .await;
    let tried = b.wait_for_text("#test-results", "minor", WAIT).await;
    assert!(tried.contains("load is fine"), "{tried}");
    assert!(!tried.contains("no stored results"), "{tried}");
    b.click_link("main", "Add an override").await;
    b.wait_for_text("main h1", "New override", WAIT).await;
    b.select("#f-target", &format!("c:{}", ids.check)).await;
    b.click(".CodeMirror").await;
    b.type_keys("\u{E009}a\u{E000}return \"major\"").await;
    submit(b, &format!("^/configuration/classifiers/{PLUGIN}$")).await;
    b.wait_for_text("main ul.members", "check load", WAIT).await;
    // The default is untouched: the test above was not saved.
    let code = b
        .eval("return document.getElementById('f-code').value;", vec![])
        .await;
    assert!(
        code.as_str().unwrap_or("").contains("critical"),
        "the default classifier changed: {code}"
    );

    // 13. A viewer is added; the admin changes their own password and logs in with it;
    // the viewer sees the configuration but no buttons to change it.
    open_area(b, &base, "Users").await;
    b.click_link("main", "Add a user").await;
    b.fill("#f-name", "vera").await;
    b.select("#f-role", "viewer").await;
    b.fill("#f-password", "a viewer's long passphrase").await;
    submit(b, "^/configuration/users$").await;
    let users = b.wait_for_text("#config-users", "vera", WAIT).await;
    assert!(users.contains("viewer"), "{users}");
    b.click_link("main", "Change my password").await;
    b.fill("#f-current", &s.password).await;
    b.fill("#f-password", "a new admin passphrase").await;
    b.fill("#f-confirm", "a new admin passphrase").await;
    submit(b, "^/configuration/account/password$").await;
    b.wait_for_text("main .notice", "Your password was changed", WAIT)
        .await;
    log_out(b).await;
    b.goto(&format!("{base}/configuration/hosts")).await;
    log_in(b, &s.admin, "a new admin passphrase").await;
    b.wait_for_text("main h1", "Hosts", WAIT).await;
    log_out(b).await;
    b.goto(&format!("{base}/configuration/hosts")).await;
    log_in(b, "vera", "a viewer's long passphrase").await;
    let hosts = b.wait_for_text("#config-hosts", "web1", WAIT).await;
    assert!(
        !hosts.contains("Edit") && !hosts.contains("Test connection"),
        "{hosts}"
    );
    assert_eq!(b.text("main a[href='/configuration/hosts/new']").await, "");
    b.goto(&format!("{base}/configuration/hosts/new")).await;
    // A viewer who finds a form's address gets the page that says why not.
    b.wait_for_text("section.error-page", "role viewer", WAIT)
        .await;
    // The screenshots are taken as the admin.
    b.click_link("main", "Go to the overview").await;
    log_out(b).await;
    b.goto(&format!("{base}/configuration")).await;
    log_in(b, &s.admin, "a new admin passphrase").await;
    ids
}

/// Every configuration page at desk and phone width; none may scroll sideways at 375 px.
async fn photograph_every_page(b: Arc<Browser>, base: String, ids: Ids) {
    let b = &*b;
    let plugin = PLUGIN;
    let pages: Vec<(&str, String)> = vec![
        ("index", "/configuration".into()),
        ("hosts", "/configuration/hosts".into()),
        ("host-new", "/configuration/hosts/new".into()),
        (
            "host-edit",
            format!("/configuration/hosts/{}/edit", ids.host),
        ),
        (
            "host-delete",
            format!("/configuration/hosts/{}/delete", ids.host),
        ),
        ("host-groups", "/configuration/host-groups".into()),
        ("host-group-new", "/configuration/host-groups/new".into()),
        (
            "host-group-edit",
            format!("/configuration/host-groups/{}/edit", ids.group),
        ),
        ("plugins", "/configuration/plugins".into()),
        ("plugin", format!("/configuration/plugins/{plugin}")),
        ("classifiers", "/configuration/classifiers".into()),
        ("classifier", format!("/configuration/classifiers/{plugin}")),
        (
            "classifier-override-new",
            format!("/configuration/classifiers/{plugin}/overrides/new"),
        ),
        ("checks", "/configuration/checks".into()),
        ("check-new", "/configuration/checks/new".into()),
        (
            "check-edit",
            format!("/configuration/checks/{}/edit", ids.check),
        ),
        ("schedules", "/configuration/schedules".into()),
        ("schedule-new", "/configuration/schedules/new".into()),
        (
            "schedule-edit",
            format!("/configuration/schedules/{}/edit", ids.schedule),
        ),
        ("services", "/configuration/services".into()),
        ("service-new", "/configuration/services/new".into()),
        (
            "service-edit",
            format!("/configuration/services/{}/edit", ids.service),
        ),
        ("alerts", "/configuration/alerts".into()),
        ("alert", format!("/configuration/alerts/{}", ids.alert)),
        ("alert-new", "/configuration/alerts/new".into()),
        (
            "alert-edit",
            format!("/configuration/alerts/{}/edit", ids.alert),
        ),
        ("maintenance", "/configuration/maintenance".into()),
        ("maintenance-new", "/configuration/maintenance/new".into()),
        (
            "maintenance-edit",
            format!("/configuration/maintenance/{}/edit", ids.window),
        ),
        ("users", "/configuration/users".into()),
        ("user-new", "/configuration/users/new".into()),
        ("user-edit", "/configuration/users/1/edit".into()),
        ("user-password", "/configuration/users/1/password".into()),
        ("account-password", "/configuration/account/password".into()),
        ("logs", "/logs".into()),
    ];
    let dir = screenshot_dir();
    let mut overflowing = Vec::new();
    for width in [1280u32, 375] {
        b.set_width(width).await;
        for (name, path) in &pages {
            b.goto(&format!("{base}{path}")).await;
            b.wait_for("main h1", 10 * SECS).await;
            let error = b.text("section.error-page").await;
            assert!(error.is_empty(), "{path} shows an error page: {error}");
            b.screenshot(&dir.join(format!("config-{name}-{width}.png")))
                .await;
            if width == 375 {
                let (over, scroll, inner) = b.overflows_horizontally().await;
                if over {
                    overflowing.push(format!("{path}: scrollWidth {scroll} > {inner}"));
                }
            }
        }
    }
    b.set_width(1280).await;
    assert!(
        overflowing.is_empty(),
        "these pages scroll sideways at 375 px:\n{}",
        overflowing.join("\n")
    );
}
