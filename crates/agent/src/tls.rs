//! The agent's TLS identity: a self-signed certificate made at setup (or one the operator
//! supplies), its SHA-256 fingerprint that the server pins, and the rustls server config.
//!
//! Agents are reached by address, usually without a DNS name or a CA, so trust comes from
//! pinning the fingerprint that `setup` prints rather than from a certificate chain.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("the certificate and key cannot be used together: {0}")]
    Config(String),
    #[error(transparent)]
    Write(#[from] crate::config::ConfigError),
}

/// Lowercase hex SHA-256 of the certificate's DER bytes, without colons.
pub use prophasis_protocol::api::certificate_fingerprint as fingerprint;

/// Makes a self-signed certificate for this host's name, `localhost` and the loopback
/// addresses and writes it and its key (mode 0600) as PEM.
pub fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let host = crate::facts::hostname();
    if !host.is_empty() && !names.contains(&host) && host.parse::<std::net::IpAddr>().is_err() {
        names.insert(0, host);
    }
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    crate::config::write_private(key_path, key_pair.serialize_pem().as_bytes())?;
    crate::config::write_private(cert_path, cert.pem().as_bytes())?;
    Ok(())
}

/// The certificate chain in the PEM file, leaf first.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(k)) => Ok(k),
        _ => Err(TlsError::NoKey {
            path: path.to_path_buf(),
        }),
    }
}

/// Fingerprint of the leaf certificate in a PEM file.
pub fn fingerprint_of_file(path: &Path) -> Result<String, TlsError> {
    Ok(fingerprint(&load_certs(path)?[0]))
}

/// The rustls server configuration: ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN.
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certs(cert_path)?;
    let key = load_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_loads_and_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        generate_self_signed(&c, &k).unwrap();
        let fp = fingerprint_of_file(&c).unwrap();
        assert_eq!(fp.len(), 64);
        assert!(fp
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        server_config(&c, &k).unwrap();
        assert!(matches!(
            server_config(&k, &k),
            Err(TlsError::NoCertificate { .. })
        ));
    }
}
