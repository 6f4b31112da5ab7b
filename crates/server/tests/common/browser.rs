//! A real headless Chromium for end-to-end tests of the web UI, driven over the W3C
//! WebDriver protocol (JSON over HTTP) by Debian's `chromedriver`, with the HTTP client the
//! server already depends on: no WebDriver crate, nothing downloaded.
//!
//! Use: `let b = Browser::start().await;` then `goto`, `fill`, `click`, `wait_for`,
//! `eval`, `screenshot`, and `b.close().await` at the end (dropping it kills the driver
//! too, but leaves Chromium's own clean-up to chance). A missing `chromium` or
//! `chromedriver` fails the test with what to install.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
/// The W3C name of the key that identifies an element in responses.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn find_binary(candidates: &[&str], package: &str) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} not found (looked in {candidates:?}). The browser tests need Debian's \
                 chromium and chromium-driver: apt-get install -y chromium chromium-driver \
                 (.ci/run installs them)",
                package
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium with a
    /// fresh profile, 1280×900.
    pub async fn start() -> Browser {
        let chromium = find_binary(CHROMIUM, "chromium");
        let chromedriver = find_binary(CHROMEDRIVER, "chromedriver (package chromium-driver)");
        let port = free_port();
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(r) = ready {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::Builder::new()
            .prefix("prophasis-chromium-")
            .tempdir()
            .unwrap();
        let caps = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}
        });
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {r}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "WebDriver {method} {path} failed ({status}): {}",
            v["value"]["message"]
        );
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    async fn element(&self, css: &str) -> Option<String> {
        let r = self
            .http
            .post(format!("{}/element", self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        let v: Value = r.json().await.ok()?;
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    /// Waits for an element to exist; fails the test with `css` after `limit`.
    pub async fn wait_for(&self, css: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(e) = self.element(css).await {
                return e;
            }
            if start.elapsed() >= limit {
                let html = self
                    .eval("return document.documentElement.outerHTML;", vec![])
                    .await;
                let html = html.as_str().unwrap_or_default();
                panic!(
                    "no element {css:?} after {limit:?} on {}; the page is:\n{}",
                    self.url().await,
                    &html[..html.len().min(3000)]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a JavaScript expression is true; after `limit` fails through
    /// [`Browser::failure`] (a screenshot and the page's visible text).
    pub async fn wait_until(&self, expression: &str, what: &str, limit: Duration) {
        let start = Instant::now();
        let script = format!("return !!({expression});");
        loop {
            if self.eval(&script, vec![]).await == Value::Bool(true) {
                return;
            }
            if start.elapsed() >= limit {
                panic!(
                    "{}",
                    self.failure(&format!("{what} (waited {limit:?})")).await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the first chart on the page is drawn, not just created: uPlot has set
    /// its scales and the canvas has painted pixels (a chart whose first draw went wrong
    /// is an empty canvas).
    pub async fn wait_for_drawn_chart(&self, limit: Duration) {
        self.wait_until(
            "(function () { var el = document.querySelector('.chart'), u = el && el._plot, \
               c = el && el.querySelector('canvas'); \
               if (!u || !c || u.scales.x.min == null || u.scales.y.min == null) return false; \
               var px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
               for (var i = 3; i < px.length; i += 4) if (px[i]) return true; \
               return false; })()",
            "the chart to be drawn (scales set, pixels on the canvas)",
            limit,
        )
        .await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.wait_for(css, Duration::from_secs(5)).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.wait_for(css, Duration::from_secs(5)).await;
        self.post(&format!("/element/{e}/click"), json!({})).await;
    }

    /// Sets the viewport width the page lays out at: 375 emulates a phone (Chromium will
    /// not make a window that narrow), anything else resizes the window.
    pub async fn set_width(&self, width: u32) {
        if width < 500 {
            self.post(
                "/goog/cdp/execute",
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                    "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": true}}),
            )
            .await;
        } else {
            self.post(
                "/goog/cdp/execute",
                json!({"cmd": "Emulation.clearDeviceMetricsOverride", "params": {}}),
            )
            .await;
            self.post(
                "/window/rect",
                json!({"width": width, "height": 900, "x": 0, "y": 0}),
            )
            .await;
        }
    }

    /// Whether the page scrolls sideways.
    pub async fn overflows_horizontally(&self) -> (bool, i64, i64) {
        let v = self
            .eval(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        let (scroll, inner) = (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0));
        (scroll > inner, scroll, inner)
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Runs `script` and returns the element it returns, as a WebDriver element id; `None`
    /// when it returns nothing. Lets a test find things CSS cannot (a label by its words).
    pub async fn element_by_js(&self, script: &str, args: Vec<Value>) -> Option<String> {
        let v = self.eval(script, args).await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    /// Clicks the link in the first `scope` element whose visible text is exactly `text`
    /// (WebDriver's "link text"), as a person clicks a link they read.
    pub async fn click_link(&self, scope: &str, text: &str) {
        let parent = self.wait_for(scope, Duration::from_secs(5)).await;
        let start = Instant::now();
        let link = loop {
            let r = self
                .http
                .post(format!("{}/element/{parent}/element", self.session))
                .json(&json!({"using": "link text", "value": text}))
                .send()
                .await;
            if let Ok(r) = r {
                if r.status().is_success() {
                    let v: Value = r.json().await.unwrap_or_default();
                    if let Some(e) = v["value"][ELEMENT].as_str() {
                        break e.to_string();
                    }
                }
            }
            if start.elapsed() >= Duration::from_secs(5) {
                panic!(
                    "{}",
                    self.failure(&format!("a link {text:?} in {scope}")).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.post(&format!("/element/{link}/click"), json!({}))
            .await;
    }

    /// Ticks (`on`) or unticks the checkbox of the label in `scope` whose text contains
    /// `label`, by clicking it like a person, only when it is not already so.
    pub async fn tick(&self, scope: &str, label: &str, on: bool) {
        let find = "var scope = document.querySelector(arguments[0]); if (!scope) return null; \
                    var ls = scope.querySelectorAll('label'); \
                    for (var i = 0; i < ls.length; i++) { \
                      var input = ls[i].querySelector('input[type=checkbox]') || \
                        (ls[i].htmlFor && document.getElementById(ls[i].htmlFor)); \
                      if (input && ls[i].textContent.indexOf(arguments[1]) >= 0) return input; } \
                    return null;";
        let args = vec![json!(scope), json!(label)];
        let Some(input) = self.element_by_js(find, args).await else {
            let what = format!("a checkbox labelled {label:?} in {scope}");
            panic!("{}", self.failure(&what).await);
        };
        let checked = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{input}/selected"),
                None,
            )
            .await;
        if checked != Value::Bool(on) {
            self.post(&format!("/element/{input}/click"), json!({}))
                .await;
        }
    }

    /// Chooses the option with `value` in a `<select>`, by clicking it.
    pub async fn select(&self, css: &str, value: &str) {
        let option = format!("{css} option[value={value:?}]");
        self.click(&option).await;
        let chosen = self
            .eval(
                "var s = document.querySelector(arguments[0]); return s ? s.value : null;",
                vec![json!(css)],
            )
            .await;
        if chosen != Value::String(value.into()) {
            panic!(
                "{}",
                self.failure(&format!("{css} to have {value:?} chosen (it has {chosen})"))
                    .await
            );
        }
    }

    /// Types a local file's path into an `<input type=file>`, which is how WebDriver
    /// chooses a file to upload (no file dialog in a headless browser).
    pub async fn upload(&self, css: &str, path: &Path) {
        let e = self.wait_for(css, Duration::from_secs(5)).await;
        self.post(
            &format!("/element/{e}/value"),
            json!({ "text": path.display().to_string() }),
        )
        .await;
    }

    /// The visible text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        self.eval(
            "var e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            vec![json!(css)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until the element `css` exists and its visible text contains `needle`; on
    /// timeout fails with a screenshot and the page's text ([`Browser::failure`]).
    pub async fn wait_for_text(&self, css: &str, needle: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let t = self.text(css).await;
            if t.contains(needle) {
                return t;
            }
            if start.elapsed() >= limit {
                panic!(
                    "{}",
                    self.failure(&format!(
                        "{needle:?} in {css} after {limit:?} (it says {t:?})"
                    ))
                    .await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What a person would see: the page's visible text.
    pub async fn visible_text(&self) -> String {
        self.eval(
            "return document.body ? document.body.innerText : '';",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Saves a screenshot as `failure-<what, simplified>.png` and prints the page's address
    /// and visible text, so a failure can be read without rerunning the test.
    pub async fn report_failure(&self, what: &str) -> PathBuf {
        let name: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(60)
            .collect();
        let path = screenshot_dir().join(format!("failure-{name}.png"));
        self.screenshot(&path).await;
        eprintln!(
            "--- page {} when failing ({what}); screenshot {} ---\n{}\n--- end of page ---",
            self.url().await,
            path.display(),
            self.visible_text().await
        );
        path
    }

    /// The message to fail a wait for `what` with, after [`Browser::report_failure`]
    /// (screenshot and page text): `panic!("{}", b.failure(what).await)`.
    pub async fn failure(&self, what: &str) -> String {
        let shot = self.report_failure(what).await;
        format!(
            "timed out waiting for {what} on {} (screenshot {}; the page's text is above)",
            self.url().await,
            shot.display()
        )
    }

    /// Opens a new tab and switches to it; returns the handle of the tab left behind.
    pub async fn new_tab(&self) -> String {
        let old = self.window_handle().await;
        let v = self.post("/window/new", json!({ "type": "tab" })).await;
        let handle = v["handle"]
            .as_str()
            .expect("a new tab's handle")
            .to_string();
        self.switch_to(&handle).await;
        old
    }

    pub async fn window_handle(&self) -> String {
        self.call(reqwest::Method::GET, "/window", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn switch_to(&self, handle: &str) {
        self.post("/window", json!({ "handle": handle })).await;
    }

    /// Types `text` into whatever has the keyboard focus, as keys: for editors such as
    /// CodeMirror whose input is not a plain field. In `text`, `\u{E009}` holds Control
    /// and `\u{E000}` releases it (WebDriver key codes).
    pub async fn type_keys(&self, text: &str) {
        let active = self
            .call(reqwest::Method::GET, "/element/active", None)
            .await;
        let e = active[ELEMENT]
            .as_str()
            .expect("an element with the focus")
            .to_string();
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await;
    }

    /// Closes the current tab; switch to another one afterwards.
    pub async fn close_tab(&self) {
        self.call(reqwest::Method::DELETE, "/window", None).await;
    }

    /// Ends the browser session (Chromium exits) and the driver.
    pub async fn close(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill().await;
    }
}

/// Where screenshots go: `<target dir>/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots")
}
