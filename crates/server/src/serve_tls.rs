//! HTTPS for the web UI and REST API (`[tls]` in the server configuration).
//!
//! It exists because people log in to the UI with passwords and the API takes HTTP Basic
//! credentials: on any network but loopback these must not cross in clear text. `axum::serve`
//! only speaks plain TCP, so this module runs the accept loop itself: a TLS handshake
//! (rustls, ring provider, bounded in time so a client that connects and says nothing
//! does not hold a task), then hyper serving HTTP/1.1 or HTTP/2 (ALPN) with the same
//! router, the peer address as `ConnectInfo` (login throttling needs it) and an orderly
//! stop that lets requests in progress finish.
//!
//! The certificate and key are loaded and checked here, once for `check-config` and once
//! at start, with errors that name the file and say what to do about it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::TlsConfig;

/// Time a new connection has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's headers (and how long an idle HTTP/1.1
/// connection is kept).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the certificate or key cannot be used. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{key}: cannot read {path}: {source} (check the path and that the user running prophasis may read it)")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tls.cert: {path} holds no PEM certificate: give the certificate file (-----BEGIN CERTIFICATE-----), the server's certificate first, then any intermediates")]
    NoCertificate { path: PathBuf },
    #[error("tls.key: {path} holds no PEM private key: give the unencrypted private key file (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)")]
    NoKey { path: PathBuf },
    #[error("tls.key: the private key in {key} does not belong to the certificate in {cert}: give the key that was generated with this certificate (or the certificate issued for this key)")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("tls: the certificate {cert} and the key {key} cannot be used: {message}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("cert", path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key", path)?;
    match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(k)) => Ok(k),
        _ => Err(TlsError::NoKey { path: path.into() }),
    }
}

/// Loads and checks the certificate chain and key: the rustls configuration the listener
/// uses (TLS 1.2 and 1.3, ring, HTTP/2 and HTTP/1.1 offered by ALPN).
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certs(&tls.cert)?;
    let key = load_key(&tls.key)?;
    let unusable = |message: String| TlsError::Unusable {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        message,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                cert: tls.cert.clone(),
                key: tls.key.clone(),
            },
            other => unusable(other.to_string()),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a client that speaks plain HTTP to the HTTPS port gets: no page, just a hint.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 47\r\n\r\nThis port speaks HTTPS: use https:// instead.\r\n";

/// Answers a plain HTTP request with [`PLAIN_HTTP_ANSWER`]. The request is read first and
/// the client's close awaited, because closing a socket with unread input resets the
/// connection and the client would see an error instead of the hint.
async fn answer_plain_http(mut tcp: tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tcp.read(&mut buf).await;
    let _ = tcp.write_all(PLAIN_HTTP_ANSWER).await;
    let _ = tcp.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Serves `app` over TLS on `listener` until `shutdown` completes; then stops accepting,
/// asks every open connection to finish the request it is serving and close, and returns
/// when all have (like `axum::serve(..).with_graceful_shutdown`).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    http.http2().timer(TokioTimer::new());
    // Every connection task holds a receiver: `closed()` on the sender is "all ended".
    let (stop_connections, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let http = http.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let handshake = async {
                // A TLS client starts with a handshake record (0x16); anything else is most
                // likely someone typing http://, who deserves a hint rather than silence.
                let mut first = [0u8; 1];
                match tcp.peek(&mut first).await {
                    Ok(1) if first[0] != 0x16 => {
                        answer_plain_http(tcp).await;
                        return None;
                    }
                    Ok(1) => {}
                    _ => return None,
                }
                match acceptor.accept(tcp).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        None
                    }
                }
            };
            let stream = tokio::select! {
                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => match r {
                    Ok(Some(s)) => s,
                    Ok(None) => return,
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                _ = stopping.changed() => return,
            };
            let svc = app.map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(stopping);
    let _ = stop_connections.send(true);
    stop_connections.closed().await;
}

/// Adds `Strict-Transport-Security` to every answer served over TLS, so browsers that
/// once reached the UI by HTTPS never fall back to plain HTTP for it.
pub async fn hsts(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn pair(dir: &Path, prefix: &str) -> (PathBuf, PathBuf) {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (
            write(dir, &format!("{prefix}-cert.pem"), &cert.pem()),
            write(dir, &format!("{prefix}-key.pem"), &key_pair.serialize_pem()),
        )
    }

    fn check(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        server_config(&TlsConfig {
            cert: cert.into(),
            key: key.into(),
        })
    }

    #[test]
    fn a_matching_pair_loads_and_offers_h2() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = pair(dir.path(), "a");
        let config = check(&c, &k).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[test]
    fn errors_name_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = pair(dir.path(), "a");
        let (_, other_key) = pair(dir.path(), "b");
        let garbage = write(dir.path(), "garbage.pem", "this is not PEM\n");
        let missing = dir.path().join("missing.pem");

        let e = check(&missing, &k).unwrap_err().to_string();
        assert!(
            e.contains("tls.cert") && e.contains("missing.pem") && e.contains("may read it"),
            "{e}"
        );
        let e = check(&c, &missing).unwrap_err().to_string();
        assert!(e.contains("tls.key") && e.contains("missing.pem"), "{e}");
        let e = check(&garbage, &k).unwrap_err().to_string();
        assert!(
            e.contains("garbage.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = check(&c, &garbage).unwrap_err().to_string();
        assert!(
            e.contains("garbage.pem") && e.contains("no PEM private key"),
            "{e}"
        );
        // The key given as the certificate: a common slip when editing the file.
        let e = check(&k, &k).unwrap_err().to_string();
        assert!(
            e.contains("a-key.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = check(&c, &other_key).unwrap_err().to_string();
        assert!(
            e.contains("does not belong") && e.contains("b-key.pem") && e.contains("a-cert.pem"),
            "{e}"
        );
    }
}
