//! The web UI in a real headless Chromium against a real server and a real agent: log in
//! through the form, see live data and a chart on the host page, stop the agent and watch
//! the host and its service turn unhealthy without a reload; screenshots of every main
//! page at 1280 and 375 px (into `<target>/screenshots`), none scrolling sideways at 375.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use browser::{screenshot_dir, Browser};
use common::*;
use prophasis_model::{Member, Role, Service, User};

const SECS: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_watch_live_health_and_fit_a_phone() {
    let mut scene = Scene::new("web1").await;
    scene
        .schedule_script(
            "org.test.load",
            "echo '{\"value\": 12, \"message\": \"load is fine\"}'",
            THRESHOLD_CLASSIFIER,
            5.0,
            1,
        )
        .await;
    let service = scene
        .store
        .create_service(&Service {
            id: 0,
            name: "shop".into(),
            description: "the web shop".into(),
            dependencies: vec![Member::Host(scene.host)],
            ..Default::default()
        })
        .await
        .unwrap();
    let hash = prophasis::web::auth::hash_password("correct horse").unwrap();
    scene
        .store
        .create_user(&User {
            id: 0,
            name: "alice".into(),
            role: Role::Admin,
            password_hash: hash,
        })
        .await
        .unwrap();
    let running = scene.start_server().await;
    let base = format!("http://{}", running.addr);
    scene.first_result("org.test.load").await;

    let b = Browser::start().await;
    // A deep link leads through the login form and back.
    let host_page = format!("{base}/hosts/{}", scene.host);
    b.goto(&host_page).await;
    b.wait_for("form[action='/login'] input[name=name]", 10 * SECS)
        .await;
    b.fill("#f-name", "alice").await;
    b.fill("#f-password", "correct horse").await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_until(
        &format!("location.href === {host_page:?}"),
        "the host page after logging in",
        10 * SECS,
    )
    .await;

    // Live data and a drawn chart with points in it.
    let badge = format!("[data-host-health='{}']", scene.host);
    b.wait_until(
        &format!("document.querySelector(\"{badge}\").classList.contains('h-ok')"),
        "the host to show OK",
        15 * SECS,
    )
    .await;
    b.wait_until(
        "document.querySelector('.chart canvas') && Number(document.querySelector('.chart').dataset.points) > 0",
        "a chart with data",
        15 * SECS,
    )
    .await;
    let latest = b
        .eval(
            "return document.querySelector('.latest').textContent;",
            vec![],
        )
        .await;
    assert!(
        latest.as_str().unwrap_or("").contains("load is fine"),
        "{latest}"
    );
    // New results move the plugin panel and redraw its chart without a reload, although
    // the host's health stays the same (the check runs every second).
    b.eval(
        "window.__stillTheSamePage = true; \
         var p = document.querySelector('[data-plugin-panel]'); \
         window.__ts = Number(p.dataset.latestTs); \
         window.__draws = Number(p.querySelector('.chart').dataset.draws); return 1;",
        vec![],
    )
    .await;
    b.wait_until(
        "(function () { var p = document.querySelector('[data-plugin-panel]'); \
           return Number(p.dataset.latestTs) > window.__ts && \
             Number(p.querySelector('.chart').dataset.draws) > window.__draws && \
             /Latest: 12 load is fine/.test(p.querySelector('.latest').textContent); })()",
        "a newer result in the panel and a redrawn chart",
        20 * SECS,
    )
    .await;
    b.wait_for_drawn_chart(10 * SECS).await;
    assert_eq!(
        b.eval("return window.__stillTheSamePage === true;", vec![])
            .await,
        true,
        "the host page was not reloaded"
    );
    b.wait_until(
        "/Updated \\d+ s ago/.test(document.getElementById('freshness').textContent)",
        "the freshness note",
        10 * SECS,
    )
    .await;

    // Compose a dashboard through the form, with the pickers app.js adds.
    b.goto(&format!("{base}/dashboards/new")).await;
    b.fill("#f-name", "Ops").await;
    b.fill("#f-panels", "problems").await;
    b.click("button[data-add='#pick-host']").await;
    b.click("button[data-add='#pick-service']").await;
    b.click("button[data-add='#pick-check']").await;
    let panels = b
        .eval("return document.getElementById('f-panels').value;", vec![])
        .await;
    assert_eq!(
        panels,
        "problems\ngraph web1 org.test.load\nservice shop\ncheck org.test.load"
    );
    b.click("form.form button[type=submit]").await;
    b.wait_until(
        "/\\/dashboards\\/\\d+$/.test(location.pathname) && document.querySelector('.chart canvas')",
        "the saved dashboard with its chart",
        10 * SECS,
    )
    .await;
    let dashboard = b.url().await;

    // Every main page, desk and phone: screenshots, and nothing scrolls sideways.
    let dir = screenshot_dir();
    let pages = [
        ("overview", format!("{base}/")),
        ("hosts", format!("{base}/hosts")),
        ("host", host_page.clone()),
        ("services", format!("{base}/services")),
        ("service", format!("{base}/services/{service}")),
        ("checks", format!("{base}/checks")),
        ("check", format!("{base}/checks/1")),
        ("dashboards", format!("{base}/dashboards")),
        ("dashboard-new", format!("{base}/dashboards/new")),
        ("dashboard", dashboard.clone()),
        ("logs", format!("{base}/logs")),
        ("configuration", format!("{base}/configuration")),
    ];
    for width in [1280u32, 375] {
        b.set_width(width).await;
        for (name, url) in &pages {
            b.goto(url).await;
            b.wait_for("main h1", 10 * SECS).await;
            if name == &"host" || name == &"dashboard" {
                b.wait_until(
                    "document.querySelector('.chart canvas')",
                    "the chart",
                    10 * SECS,
                )
                .await;
            }
            b.screenshot(&dir.join(format!("{name}-{width}.png"))).await;
            let (over, scroll, inner) = b.overflows_horizontally().await;
            assert!(
                !over,
                "{name} at {width} px scrolls sideways: scrollWidth {scroll} > innerWidth {inner}"
            );
        }
    }
    // At phone width the navigation is collapsed behind its button, and opens.
    b.goto(&format!("{base}/hosts")).await;
    b.wait_until(
        "getComputedStyle(document.getElementById('nav')).display === 'none'",
        "a collapsed navigation",
        5 * SECS,
    )
    .await;
    b.click(".nav-toggle").await;
    b.wait_until(
        "getComputedStyle(document.getElementById('nav')).display !== 'none'",
        "the navigation to open",
        5 * SECS,
    )
    .await;
    b.set_width(1280).await;

    // Break the agent while the service page is open: both turn unhealthy, no reload.
    b.goto(&format!("{base}/services/{service}")).await;
    let service_badge = format!("h1 [data-service-health='{service}']");
    b.wait_until(
        &format!("document.querySelector(\"{service_badge}\").classList.contains('h-ok')"),
        "the service to show OK",
        10 * SECS,
    )
    .await;
    b.eval("window.__stillTheSamePage = true; return 1;", vec![])
        .await;
    scene.agent.stop().await;
    b.wait_until(
        &format!(
            "!document.querySelector(\"{service_badge}\").classList.contains('h-ok') && \
             !document.querySelector(\"{badge}\").classList.contains('h-ok')"
        ),
        "the service and its host to turn unhealthy",
        30 * SECS,
    )
    .await;
    let label = b
        .eval(
            &format!("return document.querySelector(\"{service_badge} .label\").textContent;"),
            vec![],
        )
        .await;
    assert_ne!(label, "OK", "the words change with the colour");
    assert_eq!(
        b.eval("return window.__stillTheSamePage === true;", vec![])
            .await,
        true,
        "the page was not reloaded"
    );
    b.screenshot(&dir.join("service-unhealthy-1280.png")).await;

    // Logging out ends the session: the pages ask for a login again.
    b.click("form[action='/logout'] button").await;
    b.wait_for("form[action='/login']", 10 * SECS).await;
    b.goto(&format!("{base}/hosts")).await;
    b.wait_for("form[action='/login']", 10 * SECS).await;

    b.close().await;
    running.stop().await;
}
