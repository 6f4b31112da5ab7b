//! The server's side of the agent API: one HTTPS client per host, with the host's agent
//! certificate pinned by SHA-256 fingerprint and connections kept alive between checks.
//!
//! Agents use self-signed certificates, so web PKI does not apply: trust is the pin. With
//! no pin yet, the first certificate seen is trusted and reported back (trust on first
//! use) so the caller can persist it; afterwards any other certificate is refused until an
//! administrator accepts the new one.
//!
//! Every failure maps to a [`ResultType`], so a failed check is still a stored result the
//! classifier can see.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prophasis_model::ResultType;
use prophasis_protocol::api::{
    ErrorBody, ErrorCode, PluginList, RunRequest, RunResponse, AUTH_USER,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Timeouts for talking to one agent.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// For the whole request, including the plugin's run time on the agent.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(60),
        }
    }
}

/// Lowercase hex SHA-256 of a certificate's DER bytes: the form `prophasis-agent setup`
/// prints and hosts store.
pub use prophasis_protocol::api::certificate_fingerprint as fingerprint;

/// What the pinning verifier saw during the last handshake.
#[derive(Debug, Default)]
struct PinState {
    /// The pin in force; `None` until the first certificate is trusted.
    pinned: Option<String>,
    /// Set when a handshake presented a certificate that does not match the pin.
    refused: Option<String>,
    /// Set when trust on first use recorded a pin the caller has not persisted yet.
    learned: Option<String>,
}

#[derive(Debug)]
struct PinVerifier {
    state: Arc<Mutex<PinState>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity.as_ref());
        let mut state = self.state.lock().expect("pin state lock");
        match &state.pinned {
            Some(pin) if *pin == seen => Ok(ServerCertVerified::assertion()),
            Some(_) => {
                state.refused = Some(seen);
                Err(rustls::Error::General(
                    "agent certificate does not match the pinned fingerprint".into(),
                ))
            }
            None => {
                state.pinned = Some(seen.clone());
                state.learned = Some(seen);
                Ok(ServerCertVerified::assertion())
            }
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a request to an agent did not produce a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    pub result_type: ResultType,
    /// The agent's error code, when the agent answered with one.
    pub code: Option<ErrorCode>,
    pub message: String,
    /// The fingerprint presented when the agent's certificate did not match the pin.
    pub refused_fingerprint: Option<String>,
}

impl AgentError {
    pub fn new(result_type: ResultType, message: impl Into<String>) -> Self {
        AgentError {
            result_type,
            code: None,
            message: message.into(),
            refused_fingerprint: None,
        }
    }
}

/// A client for one host's agent.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: String,
    key: String,
    pin: Arc<Mutex<PinState>>,
}

impl AgentClient {
    /// `pin` is the host's stored fingerprint (hex, colons allowed), or `None` to trust the
    /// first certificate seen.
    pub fn new(
        address: &str,
        port: u16,
        key: &str,
        pin: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Self, AgentError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pin_state = Arc::new(Mutex::new(PinState {
            pinned: pin.map(|p| p.replace(':', "").to_ascii_lowercase()),
            ..Default::default()
        }));
        let verifier = PinVerifier {
            state: pin_state.clone(),
            provider: provider.clone(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                AgentError::new(ResultType::RequestError, format!("TLS setup failed: {e}"))
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| {
                AgentError::new(
                    ResultType::RequestError,
                    format!("HTTP client setup failed: {e}"),
                )
            })?;
        let host = if address.contains(':') && !address.starts_with('[') {
            format!("[{address}]")
        } else {
            address.to_string()
        };
        Ok(AgentClient {
            http,
            base: format!("https://{host}:{port}"),
            key: key.to_string(),
            pin: pin_state,
        })
    }

    /// A fingerprint learned by trust on first use and not yet taken; the caller stores it
    /// as the host's pin.
    pub fn take_learned_fingerprint(&self) -> Option<String> {
        self.pin.lock().expect("pin state lock").learned.take()
    }

    /// `GET /ping`.
    pub async fn ping(&self) -> Result<prophasis_protocol::api::Ping, AgentError> {
        let resp = self
            .send(self.http.get(format!("{}/ping", self.base)))
            .await?;
        decode(resp).await
    }

    /// `GET /plugins`.
    pub async fn plugins(&self) -> Result<PluginList, AgentError> {
        let resp = self
            .send(self.http.get(format!("{}/plugins", self.base)))
            .await?;
        decode(resp).await
    }

    /// `PUT /plugins/{id}` with the package and, if any, its detached signature.
    pub async fn install(
        &self,
        id: &str,
        archive: Vec<u8>,
        signature: Option<Vec<u8>>,
    ) -> Result<(), AgentError> {
        let mut form = reqwest::multipart::Form::new().part(
            "package",
            reqwest::multipart::Part::bytes(archive).file_name(format!("{id}.tar.gz")),
        );
        if let Some(sig) = signature {
            form = form.part(
                "signature",
                reqwest::multipart::Part::bytes(sig).file_name(format!("{id}.tar.gz.sig")),
            );
        }
        let resp = self
            .send(
                self.http
                    .put(format!("{}/plugins/{id}", self.base))
                    .multipart(form),
            )
            .await?;
        let _: serde_json::Value = decode(resp).await?;
        Ok(())
    }

    /// `POST /plugins/{id}/run`.
    pub async fn run(&self, id: &str, request: &RunRequest) -> Result<RunResponse, AgentError> {
        let resp = self
            .send(
                self.http
                    .post(format!("{}/plugins/{id}/run", self.base))
                    .json(request),
            )
            .await?;
        decode(resp).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, AgentError> {
        req.basic_auth(AUTH_USER, Some(&self.key))
            .send()
            .await
            .map_err(|e| self.classify_error(e))
    }

    fn classify_error(&self, e: reqwest::Error) -> AgentError {
        if let Some(seen) = self.pin.lock().expect("pin state lock").refused.take() {
            let mut err = AgentError::new(
                ResultType::ConnectionError,
                format!(
                    "the agent's TLS certificate changed (now {seen}) and no longer matches the pinned fingerprint; \
                     if the agent was reinstalled on purpose, accept the new certificate on the host's page"
                ),
            );
            err.refused_fingerprint = Some(seen);
            return err;
        }
        if e.is_timeout() {
            AgentError::new(
                ResultType::ConnectionTimeout,
                format!("the agent did not answer in time: {}", chain(&e)),
            )
        } else if e.is_connect() {
            AgentError::new(
                ResultType::ConnectionError,
                format!("could not connect to the agent: {}", chain(&e)),
            )
        } else if connection_lost(&e) {
            // The agent went away mid-request (killed, restarted, network cut): that is a
            // connection failure, not a malformed request.
            AgentError::new(
                ResultType::ConnectionError,
                format!(
                    "the connection to the agent was lost during the request: {}",
                    chain(&e)
                ),
            )
        } else {
            AgentError::new(
                ResultType::RequestError,
                format!("request to the agent failed: {}", chain(&e)),
            )
        }
    }
}

/// True when the connection broke after it was made: reset, closed early, cut short.
fn connection_lost(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected
            ) {
                return true;
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return true;
            }
        }
        source = err.source();
    }
    false
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

async fn decode<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, AgentError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| {
        let rt = if e.is_timeout() {
            ResultType::ConnectionTimeout
        } else {
            ResultType::RequestError
        };
        AgentError::new(
            rt,
            format!("reading the agent's answer failed: {}", chain(&e)),
        )
    })?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| {
            AgentError::new(
                ResultType::RequestError,
                format!("the agent's answer was not understood: {e}"),
            )
        });
    }
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(AgentError::new(
            ResultType::AuthenticationError,
            "the agent refused the key: check the host's auth key against the one `prophasis-agent setup` printed",
        ));
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => {
            let result_type = match body.error.code {
                ErrorCode::PluginTimeout
                | ErrorCode::PluginFailed
                | ErrorCode::BadOutput
                | ErrorCode::PluginNotFound
                | ErrorCode::SignatureRequired
                | ErrorCode::SignatureInvalid
                | ErrorCode::BadPackage => ResultType::CommandUnsuccessful,
                _ => ResultType::RequestError,
            };
            Err(AgentError {
                code: Some(body.error.code),
                ..AgentError::new(result_type, body.error.message)
            })
        }
        Err(_) => Err(AgentError::new(
            ResultType::RequestError,
            format!("the agent answered HTTP {status} without an error body"),
        )),
    }
}
