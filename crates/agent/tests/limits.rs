//! Slow and stalled clients are dropped while other requests are served, and the
//! connection cap holds.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts any certificate: these tests are about timing, not trust.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

async fn tls_connect(agent: &TestAgent) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads until the server closes; returns how long that took and what arrived.
async fn until_closed<S: AsyncReadExt + Unpin>(s: &mut S, limit: Duration) -> (Duration, Vec<u8>) {
    let t = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (t.elapsed(), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept a stalled connection open for {limit:?}"),
        }
    }
}

#[tokio::test]
async fn stalled_clients_are_dropped_while_others_are_served() {
    let agent = TestAgent::start_with(|c| c.header_timeout_secs = 1.0);

    // 1. TCP only, never a TLS handshake.
    let mut raw = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    // 2. TLS, then half a request that never ends.
    let mut half = tls_connect(&agent).await;
    half.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nAuthor")
        .await
        .unwrap();
    half.flush().await.unwrap();
    // 3. TLS and nothing at all (an idle connection).
    let mut idle = tls_connect(&agent).await;

    // Meanwhile the agent answers others promptly.
    let t = Instant::now();
    for _ in 0..10 {
        assert_eq!(agent.get("/ping").await.status(), 200);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    let limit = Duration::from_secs(5);
    let (took_raw, _) = until_closed(&mut raw, limit).await;
    let (took_half, _) = until_closed(&mut half, limit).await;
    let (took_idle, _) = until_closed(&mut idle, limit).await;
    for took in [took_raw, took_half, took_idle] {
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
}

#[tokio::test]
async fn slow_body_is_cut_off() {
    let agent = TestAgent::start();
    agent.place_plugin(
        script_manifest("com.t.any", "json", None),
        &[(
            "run.sh",
            "#!/bin/sh\necho '{\"value\":1,\"message\":\"m\"}'\n",
        )],
    );
    let mut s = tls_connect(&agent).await;
    let auth = base64_basic(&agent.key);
    s.write_all(
        format!(
            "POST /plugins/com.t.any/run HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"args\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The body never completes: the agent answers 408 after its body timeout (10 s)
    // and closes; we only wait long enough to see it still serves others meanwhile.
    assert_eq!(agent.get("/ping").await.status(), 200);
    let (took, got) = until_closed(&mut s, Duration::from_secs(15)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(took < Duration::from_secs(12));
}

fn base64_basic(key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("core:{key}"))
    )
}

#[tokio::test]
async fn connection_cap_queues_extra_clients() {
    let agent = TestAgent::start_with(|c| {
        c.max_connections = 2;
        c.header_timeout_secs = 1.0;
    });
    // Two idle TLS connections take both slots...
    let _a = tls_connect(&agent).await;
    let _b = tls_connect(&agent).await;
    // ...so a third client waits until the idle ones are dropped by the timeout, and is
    // then served.
    let t = Instant::now();
    assert_eq!(agent.get("/ping").await.status(), 200);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}
