//! Request and response bodies of the agent's HTTPS API (see docs/agent-api.md).
//!
//! Every endpoint speaks JSON. Errors are `{"error": {"code": …, "message": …}}` where the
//! code is one of [`ErrorCode`] and the message says what a person can do about it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The agent's default HTTPS port.
pub const DEFAULT_PORT: u16 = 4048;
/// The HTTP Basic user name the server authenticates as; the password is the agent key.
pub const AUTH_USER: &str = "core";

/// The SHA-256 fingerprint of an agent's TLS certificate (DER), as lowercase hex without
/// colons: what `prophasis-agent setup` prints as `fingerprint:` and what the server pins.
pub fn certificate_fingerprint(cert_der: &[u8]) -> String {
    crate::package::sha256_hex(cert_der)
}

/// `GET /ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// Always `true`: the agent is up and the key was accepted.
    pub pong: bool,
    pub agent_version: String,
    pub facts: HostFacts,
}

/// What the agent tells about the machine it runs on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    /// e.g. `linux`.
    pub os: String,
    /// Kernel release, e.g. `6.1.0-18-amd64`.
    pub kernel: String,
    /// e.g. `x86_64`.
    pub arch: String,
    pub uptime_seconds: u64,
    pub cpu_count: u32,
    pub memory_bytes: u64,
}

/// One installed plugin, as listed by `GET /plugins` and `GET /plugins/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledPlugin {
    pub id: String,
    pub name: String,
    pub version: f64,
}

/// `GET /plugins`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PluginList {
    pub plugins: Vec<InstalledPlugin>,
}

/// Body of `POST /plugins/{id}/run`; the whole body is optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunRequest {
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
}

/// Successful answer of `POST /plugins/{id}/run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResponse {
    pub value: Option<f64>,
    pub message: String,
    /// The exit code of a Nagios-mode plugin (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// Machine-readable error codes of the agent API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No plugin with that id is installed (the server should push it).
    PluginNotFound,
    /// The plugin ran longer than its timeout and was killed with its process group.
    PluginTimeout,
    /// The plugin could not be started or exited with a failure.
    PluginFailed,
    /// The plugin's output did not follow the output contract.
    BadOutput,
    /// The agent enforces signatures and the package had none.
    SignatureRequired,
    /// The signature did not verify against a trusted key, or breaks the signature policy.
    SignatureInvalid,
    /// The package archive or its manifest was refused.
    BadPackage,
    /// The request was malformed (bad JSON, bad id, missing part).
    BadRequest,
    /// The request body is larger than the agent accepts.
    PayloadTooLarge,
    NotFound,
    Unauthorized,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::PluginNotFound => "plugin_not_found",
            ErrorCode::PluginTimeout => "plugin_timeout",
            ErrorCode::PluginFailed => "plugin_failed",
            ErrorCode::BadOutput => "bad_output",
            ErrorCode::SignatureRequired => "signature_required",
            ErrorCode::SignatureInvalid => "signature_invalid",
            ErrorCode::BadPackage => "bad_package",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape() {
        let e = ErrorBody::new(ErrorCode::PluginTimeout, "killed after 10 s");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"error": {"code": "plugin_timeout", "message": "killed after 10 s"}})
        );
        for code in [
            ErrorCode::PluginNotFound,
            ErrorCode::BadOutput,
            ErrorCode::SignatureRequired,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }

    #[test]
    fn run_request_body_is_optional_args() {
        let r: RunRequest = serde_json::from_str("{}").unwrap();
        assert!(r.args.is_empty());
        let r: RunRequest = serde_json::from_str(r#"{"args": {"mount": "/"}}"#).unwrap();
        assert_eq!(r.args["mount"], "/");
        let ok = RunResponse {
            value: None,
            message: "m".into(),
            exit_code: None,
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"value":null,"message":"m"}"#
        );
    }
}
