//! The simulator's TLS identity: one self-signed certificate shared by every virtual
//! agent, and its fingerprint for the server to pin.
//!
//! Real agents each have their own certificate; sharing one here costs the server
//! nothing it would not pay anyway (it pins per host and compares a string) and keeps
//! start-up of 10,000 agents to one key generation. The provider is ring, never
//! aws-lc-rs (see SPIKES.md).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::SimError;

/// Lowercase hex SHA-256 of a certificate's DER bytes: the form hosts store as their pin.
pub use prophasis_protocol::api::certificate_fingerprint as fingerprint;

/// A certificate and the rustls server configuration that presents it.
pub(crate) struct Identity {
    pub cert_der: Vec<u8>,
    pub fingerprint: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// Makes a fresh self-signed ECDSA P-256 certificate (cheap handshakes) for `localhost`
/// and 127.0.0.1. Names do not matter: the server checks the pin, not the name.
pub(crate) fn generate(session_cache: usize) -> Result<Identity, SimError> {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| SimError::Tls(e.to_string()))?;
    let cert_der = cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // One resumable session per agent, so a server reconnecting to every host after a
    // restart does not fall back to full handshakes for most of them.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(session_cache.max(256));
    Ok(Identity {
        fingerprint: fingerprint(&cert_der),
        cert_der,
        config: Arc::new(config),
    })
}
