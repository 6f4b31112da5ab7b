//! The web UI and REST API over HTTPS (`[tls]`), on real sockets with a certificate made
//! in the test: logging in through the form gives a `Secure; HttpOnly; SameSite` cookie
//! that then works, answers carry HSTS, the API answers over TLS (HTTP/2 by ALPN), plain
//! HTTP to the port gets no page, a silent client is dropped after the handshake timeout
//! and does not hold up a stop, and without `[tls]` the cookie has no `Secure`. The CLI's
//! `check-config` reports unusable certificate files by name.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use prophasis::config::TlsConfig;
use prophasis::serve::Running;
use tokio::io::AsyncReadExt;

/// A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem, cert PEM).
fn certificate(dir: &Path, prefix: &str) -> (PathBuf, PathBuf, String) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (c, k) = (
        dir.join(format!("{prefix}-cert.pem")),
        dir.join(format!("{prefix}-key.pem")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key_pair.serialize_pem()).unwrap();
    (c, k, cert.pem())
}

struct Server {
    running: Running,
    password: String,
    _data: tempfile::TempDir,
}

async fn server(tls: Option<TlsConfig>) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempdir();
    let store = open_store(data.path()).await;
    let (_, password) = prophasis::serve::ensure_admin(&store)
        .await
        .unwrap()
        .unwrap();
    let mut config = config(data.path());
    config.tls = tls;
    let running = prophasis::serve::start(&config, store, None)
        .await
        .expect("server starts");
    Server {
        running,
        password,
        _data: data,
    }
}

/// A client that trusts only `cert_pem`, keeps no cookies and follows no redirects, so the
/// test sees every Set-Cookie and Location itself.
fn client(cert_pem: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20));
    if let Some(pem) = cert_pem {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// Logs in as admin through the form; returns the Set-Cookie header and the `name=value`
/// part to send back.
async fn log_in(http: &reqwest::Client, base: &str, password: &str) -> (String, String) {
    let r = http
        .post(format!("{base}/login"))
        .form(&[("name", "admin"), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login answers a redirect");
    let set_cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("prophasis_session="))
        .expect("a session cookie");
    let pair = set_cookie.split(';').next().unwrap().to_string();
    (set_cookie, pair)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_and_api_are_served_over_tls_with_secure_cookies() {
    let certs = tempdir();
    let (cert, key, pem) = certificate(certs.path(), "ui");
    let s = server(Some(TlsConfig { cert, key })).await;
    assert_eq!(s.running.scheme, "https");
    let base = format!("https://{}", s.running.addr);
    assert_eq!(s.running.url(), format!("{base}/"));
    let http = client(Some(&pem));

    // The login page itself, over TLS, with HSTS.
    let r = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000",
        "every answer over TLS carries HSTS"
    );
    assert!(r.text().await.unwrap().contains("name=\"password\""));

    let (set_cookie, cookie) = log_in(&http, &base, &s.password).await;
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(
            set_cookie.split("; ").any(|a| a == attribute),
            "the session cookie lacks {attribute}: {set_cookie}"
        );
    }

    // The session works: a page that needs a user shows the user.
    let r = http
        .get(format!("{base}/configuration"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("admin"), "a logged-in page: {page}");
    // And without the cookie the same page sends to the login form.
    let r = http
        .get(format!("{base}/configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // The REST API over TLS; reqwest offers h2 by ALPN and the server takes it.
    let r = http
        .get(format!("{base}/api/v1/health/hosts"))
        .basic_auth("admin", Some(&s.password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let hosts: serde_json::Value = r.json().await.unwrap();
    assert!(hosts.is_array(), "{hosts}");
    let r = http
        .get(format!("{base}/api/v1/health/hosts"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // HTTP/1.1 works too (a client without ALPN h2).
    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = h1.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);

    // A client that does not trust the certificate is refused by itself, not served.
    assert!(client(None)
        .get(format!("{base}/login"))
        .send()
        .await
        .is_err());

    // Plain HTTP to the TLS port: a hint, never a page or a cookie.
    let r = client(None)
        .get(format!("http://{}/login", s.running.addr))
        .send()
        .await
        .expect("an answer to plain HTTP");
    assert_eq!(r.status(), 400);
    assert!(r.headers().get(reqwest::header::SET_COOKIE).is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("use https://"), "{body}");
    assert!(
        !body.contains("<html") && !body.contains("password"),
        "{body}"
    );

    // Still serving after all that.
    let r = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let stop = tokio::time::timeout(Duration::from_secs(15), s.running.stop()).await;
    assert!(stop.is_ok(), "the server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_handshakes_is_dropped_and_does_not_delay_a_stop() {
    let certs = tempdir();
    let (cert, key, pem) = certificate(certs.path(), "ui");
    let s = server(Some(TlsConfig { cert, key })).await;
    let addr = s.running.addr;

    // Opens TCP and says nothing: dropped after the handshake timeout.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        prophasis::serve_tls::HANDSHAKE_TIMEOUT + Duration::from_secs(10),
        silent.read(&mut buf),
    )
    .await
    .expect("the server closes a silent connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= prophasis::serve_tls::HANDSHAKE_TIMEOUT - Duration::from_secs(1),
        "dropped only after the timeout, not at once: {waited:?}"
    );

    // Another silent client and a kept-alive HTTPS client: a stop does not wait for either.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let http = client(Some(&pem));
    let r = http
        .get(format!("https://{addr}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), s.running.stop())
        .await
        .expect("stop does not wait for idle or silent connections");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err()
            || http
                .get(format!("https://{addr}/login"))
                .send()
                .await
                .is_err(),
        "nothing is served after the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_the_cookie_is_not_secure_and_there_is_no_hsts() {
    let s = server(None).await;
    assert_eq!(s.running.scheme, "http");
    let base = format!("http://{}", s.running.addr);
    assert_eq!(s.running.url(), format!("{base}/"));
    let http = client(None);
    let (set_cookie, cookie) = log_in(&http, &base, &s.password).await;
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let r = http
        .get(format!("{base}/configuration"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("strict-transport-security").is_none());
    s.running.stop().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_prophasis");

fn check_config(dir: &Path, cert: &Path, key: &Path) -> (bool, String) {
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:8443\"\n[tls]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_config_names_the_certificate_file_at_fault() {
    let dir = tempdir();
    let (cert, key, _) = certificate(dir.path(), "good");
    let (_, other_key, _) = certificate(dir.path(), "other");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");

    let (ok, out) = check_config(dir.path(), &cert, &key);
    assert!(ok, "{out}");
    assert!(
        out.contains("tls: on") && out.contains("good-cert.pem"),
        "{out}"
    );

    let (ok, out) = check_config(dir.path(), &missing, &key);
    assert!(!ok);
    assert!(
        out.contains("tls.cert") && out.contains("missing.pem") && out.contains("cannot read"),
        "{out}"
    );
    let (ok, out) = check_config(dir.path(), &garbage, &key);
    assert!(!ok);
    assert!(
        out.contains("garbage.pem") && out.contains("no PEM certificate"),
        "{out}"
    );
    let (ok, out) = check_config(dir.path(), &cert, &garbage);
    assert!(!ok);
    assert!(
        out.contains("garbage.pem") && out.contains("no PEM private key"),
        "{out}"
    );
    let (ok, out) = check_config(dir.path(), &cert, &other_key);
    assert!(!ok);
    assert!(
        out.contains("does not belong") && out.contains("other-key.pem"),
        "{out}"
    );

    // No [tls]: plain HTTP, said so.
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, "listen = \"127.0.0.1:8047\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check-config", plain.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("tls: off"));
}
