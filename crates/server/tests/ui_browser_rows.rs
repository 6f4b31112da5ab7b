//! The add/remove-row buttons of the configuration forms (`assets/rows.js`) in a real
//! headless Chromium against a real server: on the schedule form (at phone width) and the
//! check form, rows are added and removed with the buttons, ids and accessible labels stay
//! numbered in order, focus moves to the new row, and what is saved — read back from the
//! store — is exactly the rows left on screen. The service form's redundancy groups get
//! the same buttons as whole blocks, renumbered field names and all. Without JavaScript the server still renders
//! its blank rows and no buttons (checked over plain HTTP).

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use browser::Browser;
use common::*;
use prophasis_model::{Check, Host, Role, User};
use serde_json::json;

const SECS: Duration = Duration::from_secs(1);
const PLUGIN: &str = "org.test.rows";

struct Setup {
    running: prophasis::serve::Running,
    store: std::sync::Arc<prophasis_store::Store>,
    host: i64,
    check: i64,
    _data: tempfile::TempDir,
    _plugins: tempfile::TempDir,
}

/// A server with user `alice` (admin), a host that nothing runs on, a plugin and a check.
async fn setup() -> Setup {
    let data = tempdir();
    let store = open_store(data.path()).await;
    let hash = prophasis::web::auth::hash_password("correct horse").unwrap();
    store
        .create_user(&User {
            id: 0,
            name: "alice".into(),
            role: Role::Admin,
            password_hash: hash,
        })
        .await
        .unwrap();
    let host = store
        .create_host(&Host {
            id: 0,
            name: "web1".into(),
            address: "127.0.0.1".into(),
            port: 1,
            description: String::new(),
            auth_key: "k".repeat(32),
            tls_fingerprint: None,
            enabled: false,
        })
        .await
        .unwrap();
    let plugins = tempdir();
    let package = script_plugin(
        plugins.path(),
        PLUGIN,
        1.0,
        "echo '{\"value\": 1}'",
        THRESHOLD_CLASSIFIER,
        5.0,
    );
    prophasis::plugins::install_package(&store, package, None)
        .await
        .unwrap();
    let check = store
        .create_check(&Check {
            id: 0,
            name: "existing".into(),
            hosts: vec![host],
            plugins: vec![PLUGIN.into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let running = start_server(data.path(), store.clone()).await;
    Setup {
        running,
        store,
        host,
        check,
        _data: data,
        _plugins: plugins,
    }
}

async fn log_in(b: &Browser, base: &str) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#f-name", "alice").await;
    b.fill("#f-password", "correct horse").await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_until(
        "location.pathname === '/'",
        "the overview after logging in",
        10 * SECS,
    )
    .await;
}

/// `[id of the first field, aria-label of the Remove button]` of each row of a table.
async fn rows(b: &Browser, table: &str) -> Vec<(String, String)> {
    let v = b
        .eval(
            "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).map(function (tr) {
               var f = tr.querySelector('input, select');
               var r = tr.querySelector('button.remove-row');
               return [f ? f.id : '', r ? r.getAttribute('aria-label') : ''];
             });",
            vec![json!(table)],
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn active_id(b: &Browser) -> String {
    b.eval("return document.activeElement.id;", vec![])
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Sets a field's value the way a picker would (typing into `datetime-local` and choosing
/// options is locale- and platform-dependent in WebDriver).
async fn set(b: &Browser, css: &str, value: &str) {
    b.eval(
        "var e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('change', {bubbles: true})); return e.value;",
        vec![json!(css), json!(value)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_and_check_rows_are_added_and_removed_with_buttons() {
    let s = setup().await;
    let base = format!("http://{}", s.running.addr);
    let b = Browser::start().await;
    log_in(&b, &base).await;

    // --- Schedule intervals, at phone width ----------------------------------------------
    b.set_width(375).await;
    b.goto(&format!("{base}/configuration/schedules/new")).await;
    b.wait_for("#t-intervals + button.add-row", 10 * SECS).await;
    let add = b
        .eval(
            "var a = document.querySelector('#t-intervals + button.add-row'); return [a.type, a.textContent];",
            vec![],
        )
        .await;
    assert_eq!(add, json!(["button", "Add interval"]), "a real button");
    assert_eq!(
        rows(&b, "#t-intervals").await,
        vec![
            ("is-1".to_string(), "Remove interval 1".to_string()),
            ("is-2".to_string(), "Remove interval 2".to_string()),
        ],
        "the server's two blank rows, each with a Remove button"
    );
    b.click("#t-intervals + button.add-row").await;
    assert_eq!(active_id(&b).await, "is-3", "focus moves to the new row");
    b.click("#t-intervals + button.add-row").await;
    assert_eq!(active_id(&b).await, "is-4");
    let labels = b
        .eval(
            "return document.querySelector('label[for=iv-4]').textContent;",
            vec![],
        )
        .await;
    assert_eq!(labels, "Period of interval 4");

    // Row 2 gets a value, then is removed: it must not be saved.
    b.fill("#iv-2", "999").await;
    b.click("#t-intervals tbody tr:nth-child(2) button.remove-row")
        .await;
    let after = rows(&b, "#t-intervals").await;
    assert_eq!(
        after,
        vec![
            ("is-1".to_string(), "Remove interval 1".to_string()),
            ("is-2".to_string(), "Remove interval 2".to_string()),
            ("is-3".to_string(), "Remove interval 3".to_string()),
        ],
        "renumbered after the removal"
    );
    assert_eq!(
        active_id(&b).await,
        "",
        "focus is on a Remove button (no id), not lost"
    );
    let focused = b
        .eval(
            "return document.activeElement.getAttribute('aria-label');",
            vec![],
        )
        .await;
    assert_eq!(focused, "Remove interval 2", "the row that took its place");
    let (overflows, scroll, inner) = b.overflows_horizontally().await;
    assert!(
        !overflows,
        "the form scrolls sideways at 375 px: {scroll} > {inner}"
    );

    b.fill("#f-name", "three intervals").await;
    b.click(&format!("input[name=checks][value='{}']", s.check))
        .await;
    set(&b, "#is-1", "2026-01-01T00:00:00").await;
    b.fill("#iv-1", "5").await;
    b.fill("#iv-2", "2").await;
    set(&b, "#iu-2", "hours").await;
    b.fill("#iv-3", "1").await;
    set(&b, "#iu-3", "days").await;
    b.click("form.form button[type=submit]").await;
    b.wait_until(
        "location.pathname === '/configuration/schedules'",
        "the schedule list after saving",
        10 * SECS,
    )
    .await;
    let schedule = s
        .store
        .list_schedules()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.name == "three intervals")
        .expect("the schedule is saved");
    let mut periods: Vec<i64> = schedule
        .intervals
        .iter()
        .map(|i| i.period_seconds)
        .collect();
    periods.sort();
    assert_eq!(periods, vec![300, 7_200, 86_400], "exactly the rows left");
    assert!(schedule
        .intervals
        .iter()
        .any(|i| i.start == 1_767_225_600_000 && i.period_seconds == 300));
    assert_eq!(schedule.checks, vec![s.check]);

    // --- Check arguments, at desk width --------------------------------------------------
    b.set_width(1280).await;
    b.goto(&format!("{base}/configuration/checks/new")).await;
    b.wait_for("#t-args + button.add-row", 10 * SECS).await;
    assert_eq!(rows(&b, "#t-args").await.len(), 3, "three blank rows");
    b.click("#t-args + button.add-row").await;
    assert_eq!(active_id(&b).await, "ap-4", "focus on the new row's plugin");
    b.click("#t-args + button.add-row").await;
    assert_eq!(rows(&b, "#t-args").await.len(), 5);
    // Row 2 is filled and removed; the others are used from the top and the bottom.
    set(&b, "#ap-2", PLUGIN).await;
    b.fill("#ak-2", "junk").await;
    b.fill("#av-2", "1").await;
    b.click("#t-args tbody tr:nth-child(2) button.remove-row")
        .await;
    let after = rows(&b, "#t-args").await;
    assert_eq!(
        after.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        [
            "Remove argument 1",
            "Remove argument 2",
            "Remove argument 3",
            "Remove argument 4"
        ]
    );
    assert_eq!(after[3].0, "ap-4");
    b.fill("#f-name", "disk arguments").await;
    b.click(&format!("input[name=hosts][value='{}']", s.host))
        .await;
    b.click(&format!("input[name=plugins][value='{PLUGIN}']"))
        .await;
    set(&b, "#ap-1", PLUGIN).await;
    b.fill("#ak-1", "mount").await;
    b.fill("#av-1", "/var").await;
    set(&b, "#ap-4", PLUGIN).await;
    b.fill("#ak-4", "limit").await;
    b.fill("#av-4", "90").await;
    b.click("form.form button[type=submit]").await;
    b.wait_until(
        "location.pathname === '/configuration/checks'",
        "the check list after saving",
        10 * SECS,
    )
    .await;
    let check = s
        .store
        .list_checks()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "disk arguments")
        .expect("the check is saved");
    let args: BTreeMap<String, serde_json::Value> = check.plugin_args[PLUGIN]
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        args,
        BTreeMap::from([
            ("limit".to_string(), json!(90)),
            ("mount".to_string(), json!("/var")),
        ]),
        "exactly the rows left on screen"
    );
    assert_eq!(check.plugin_args.len(), 1);

    b.close().await;
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_forms_still_offer_blank_rows() {
    let s = setup().await;
    let base = format!("http://{}", s.running.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/login"))
        .form(&[("name", "alice"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = |path: String| {
        let (http, cookie, base) = (http.clone(), cookie.clone(), base.clone());
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().await.unwrap()
        }
    };
    let schedule = page("/configuration/schedules/new".into()).await;
    assert_eq!(schedule.matches("name=\"value\"").count(), 2, "{schedule}");
    assert_eq!(schedule.matches("name=\"start\"").count(), 2);
    let check = page("/configuration/checks/new".into()).await;
    assert_eq!(check.matches("name=\"arg_key\"").count(), 3, "{check}");
    for html in [&schedule, &check] {
        // The buttons exist only when the script runs; the markup only marks the tables.
        assert!(!html.contains("remove-row") && !html.contains("add-row"));
        assert!(html.contains("data-rows=") && html.contains("/static/rows.js?v="));
    }
    let edit = page(format!("/configuration/checks/{}/edit", s.check)).await;
    assert_eq!(
        edit.matches("name=\"arg_key\"").count(),
        3,
        "no arguments yet: three blank rows"
    );
    let js = http
        .get(format!("{base}/static/rows.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    s.running.stop().await;
}

/// The service form's redundancy groups are blocks, not table rows: their field names carry
/// the position (`rg0_name`), and a hidden `rg_count` says how many the server reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_redundancy_groups_are_added_and_removed_with_buttons() {
    let s = setup().await;
    let web2 = s
        .store
        .create_host(&Host {
            id: 0,
            name: "web2".into(),
            address: "127.0.0.2".into(),
            port: 1,
            description: String::new(),
            auth_key: "k".repeat(32),
            tls_fingerprint: None,
            enabled: false,
        })
        .await
        .unwrap();
    let base = format!("http://{}", s.running.addr);
    let b = Browser::start().await;
    log_in(&b, &base).await;
    b.set_width(375).await;
    b.goto(&format!("{base}/configuration/services/new")).await;
    b.wait_for("fieldset[data-blocks] button.add-row", 10 * SECS)
        .await;
    b.fill("#f-name", "shop").await;
    // One blank group from the server; two more with the button.
    b.click("fieldset[data-blocks] button.add-row").await;
    b.click("fieldset[data-blocks] button.add-row").await;
    assert_eq!(active_id(&b).await, "f-rg2_name", "focus on the new group");
    let state = "return [document.querySelector('input[name=rg_count]').value, \
         Array.from(document.querySelectorAll('[data-block]')).map(function (d) { \
           return [d.querySelector('input[type=text]').name, \
                   d.querySelector('legend').textContent.trim(), \
                   d.querySelector('button.remove-block').getAttribute('aria-label'), \
                   d.querySelector('input[type=search]').dataset.filter]; })];";
    assert_eq!(
        b.eval(state, vec![]).await,
        json!([
            "3",
            [
                [
                    "rg0_name",
                    "Members of redundancy group 1",
                    "Remove redundancy group 1",
                    "#t-rg0_members"
                ],
                [
                    "rg1_name",
                    "Members of redundancy group 2",
                    "Remove redundancy group 2",
                    "#t-rg1_members"
                ],
                [
                    "rg2_name",
                    "Members of redundancy group 3",
                    "Remove redundancy group 3",
                    "#t-rg2_members"
                ]
            ]
        ])
    );
    // Group 2 is filled and then removed; group 3 becomes group 2 and is the one kept.
    b.fill("#f-rg1_name", "temporary").await;
    b.fill("#f-rg2_name", "web").await;
    // The search field of an added group filters its own list.
    b.fill("#s-rg2_members", "web2").await;
    let visible = b
        .eval(
            "return Array.from(document.querySelectorAll('#t-rg2_members tbody tr'))
               .filter(function (tr) { return !tr.hidden; })
               .map(function (tr) { return tr.textContent.trim(); });",
            vec![],
        )
        .await;
    assert_eq!(visible, json!(["host web2"]));
    b.fill("#s-rg2_members", "").await;
    b.eval(
        "document.querySelectorAll('#t-rg2_members input[type=checkbox]')
           .forEach(function (c) { c.click(); }); return 1;",
        vec![],
    )
    .await;
    b.click("[data-block]:nth-of-type(2) button.remove-block")
        .await;
    assert_eq!(
        b.eval(state, vec![]).await,
        json!([
            "2",
            [
                [
                    "rg0_name",
                    "Members of redundancy group 1",
                    "Remove redundancy group 1",
                    "#t-rg0_members"
                ],
                [
                    "rg1_name",
                    "Members of redundancy group 2",
                    "Remove redundancy group 2",
                    "#t-rg1_members"
                ]
            ]
        ])
    );
    assert_eq!(
        b.eval(
            "return document.getElementById('f-rg1_name').value;",
            vec![]
        )
        .await,
        "web"
    );
    let (over, scroll, inner) = b.overflows_horizontally().await;
    assert!(
        !over,
        "the service form scrolls sideways at 375 px: {scroll} > {inner}"
    );
    b.click("form.form button[type=submit]").await;
    b.wait_until(
        "location.pathname === '/configuration/services'",
        "the service list after saving",
        10 * SECS,
    )
    .await;
    let service = s
        .store
        .list_services()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.name == "shop")
        .expect("the service is saved");
    assert_eq!(service.redundancy_groups.len(), 1, "{service:?}");
    let rg = &service.redundancy_groups[0];
    assert_eq!(rg.name, "web");
    let mut members = rg.members.clone();
    members.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(
        members,
        vec![
            prophasis_model::Member::Host(s.host),
            prophasis_model::Member::Host(web2)
        ]
    );
    b.close().await;
    s.running.stop().await;
}
