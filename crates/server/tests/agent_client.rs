//! The agent client's certificate pinning and error mapping, against a real TLS listener
//! on loopback that answers with canned HTTP responses. (The full path against the real
//! `prophasis-agent` is covered by the end-to-end tests.)

use std::sync::Arc;
use std::time::Duration;

use prophasis::dispatch::agent_client::{fingerprint, AgentClient, Timeouts};
use prophasis_model::ResultType;
use prophasis_protocol::api::{ErrorCode, RunRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct TlsServer {
    port: u16,
    fingerprint: String,
}

/// A TLS server with a fresh self-signed certificate that answers every request with
/// `status` and `body`, or never answers when `hang` is set.
async fn tls_server(status: u16, body: &'static str, hang: bool) -> TlsServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = cert.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone().into()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = tls.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                if hang {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TlsServer {
        port,
        fingerprint: fingerprint(&der),
    }
}

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_millis(500),
    }
}

const PING: &str = r#"{"pong":true,"agent_version":"0.1.0","facts":{"hostname":"h","os":"linux","kernel":"6","arch":"x86_64","uptime_seconds":1,"cpu_count":2,"memory_bytes":1}}"#;

#[tokio::test]
async fn trust_on_first_use_learns_the_fingerprint() {
    let server = tls_server(200, PING, false).await;
    let client = AgentClient::new("127.0.0.1", server.port, "k", None, quick()).unwrap();
    let ping = client.ping().await.unwrap();
    assert!(ping.pong);
    assert_eq!(
        client.take_learned_fingerprint(),
        Some(server.fingerprint.clone())
    );
    assert_eq!(client.take_learned_fingerprint(), None, "reported once");
}

#[tokio::test]
async fn matching_pin_is_accepted_with_colons_and_upper_case() {
    let server = tls_server(200, PING, false).await;
    let pin: String = server
        .fingerprint
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let client = AgentClient::new("127.0.0.1", server.port, "k", Some(&pin), quick()).unwrap();
    assert!(client.ping().await.is_ok());
    assert_eq!(client.take_learned_fingerprint(), None);
}

#[tokio::test]
async fn changed_certificate_is_refused_with_advice() {
    let server = tls_server(200, PING, false).await;
    let other = "ab".repeat(32);
    let client = AgentClient::new("127.0.0.1", server.port, "k", Some(&other), quick()).unwrap();
    let err = client.ping().await.unwrap_err();
    assert_eq!(err.result_type, ResultType::ConnectionError);
    assert!(
        err.message.contains("certificate changed"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&server.fingerprint),
        "names the new fingerprint: {}",
        err.message
    );
}

#[tokio::test]
async fn wrong_key_is_an_authentication_error() {
    let server = tls_server(401, "", false).await;
    let client = AgentClient::new("127.0.0.1", server.port, "wrong", None, quick()).unwrap();
    let err = client.ping().await.unwrap_err();
    assert_eq!(err.result_type, ResultType::AuthenticationError);
}

#[tokio::test]
async fn agent_error_codes_map_to_result_types() {
    let server = tls_server(
        504,
        r#"{"error":{"code":"plugin_timeout","message":"killed after 10 s"}}"#,
        false,
    )
    .await;
    let client = AgentClient::new("127.0.0.1", server.port, "k", None, quick()).unwrap();
    let err = client
        .run("org.prophasis.cpu_load", &RunRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.result_type, ResultType::CommandUnsuccessful);
    assert_eq!(err.code, Some(ErrorCode::PluginTimeout));
    assert_eq!(err.message, "killed after 10 s");

    let server = tls_server(
        400,
        r#"{"error":{"code":"bad_request","message":"bad id"}}"#,
        false,
    )
    .await;
    let client = AgentClient::new("127.0.0.1", server.port, "k", None, quick()).unwrap();
    assert_eq!(
        client.ping().await.unwrap_err().result_type,
        ResultType::RequestError
    );
}

#[tokio::test]
async fn refused_connection_and_hanging_agent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = AgentClient::new("127.0.0.1", port, "k", None, quick()).unwrap();
    assert_eq!(
        client.ping().await.unwrap_err().result_type,
        ResultType::ConnectionError
    );

    let server = tls_server(200, PING, true).await;
    let client = AgentClient::new("127.0.0.1", server.port, "k", None, quick()).unwrap();
    let started = std::time::Instant::now();
    let err = client.ping().await.unwrap_err();
    assert_eq!(
        err.result_type,
        ResultType::ConnectionTimeout,
        "{}",
        err.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the request timeout bounds a hanging agent"
    );
}
