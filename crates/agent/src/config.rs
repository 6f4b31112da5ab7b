//! The agent's TOML configuration file: what `setup` writes and `run` reads.
//!
//! One file holds everything the daemon needs, so a host is configured by running
//! `prophasis-agent setup` once and never by hand-editing. It never holds the auth key
//! itself, only its salted hash (see [`crate::auth`]), and is written with mode 0600
//! because the hash and the TLS key path are still worth hiding.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default listen address: all IPv4 interfaces, because binding `[::]` fails on hosts where
/// IPv6 is disabled, and the agent must start everywhere.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:4048";
/// Seconds a plugin may run when its manifest names no timeout (the Nagios default).
pub const DEFAULT_TIMEOUT_SECS: f64 = 10.0;
/// The cap on any plugin's timeout, whatever its manifest says.
pub const DEFAULT_MAX_TIMEOUT_SECS: f64 = 300.0;
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
pub const DEFAULT_HEADER_TIMEOUT_SECS: f64 = 10.0;
pub const DEFAULT_SIGNATURE_POLICY: &str = "verify-if-present";
/// The accepted spellings of the signature policy, as on the command line.
pub const SIGNATURE_POLICIES: [&str; 3] = ["off", "verify-if-present", "enforce"];

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// `ADDR:PORT` to listen on.
    pub listen: String,
    /// Holds `plugins/` (installed packages) and `tmp/` (uploads being extracted).
    pub data_dir: PathBuf,
    /// PEM certificate chain the agent presents.
    pub tls_cert: PathBuf,
    /// PEM private key of that certificate.
    pub tls_key: PathBuf,
    /// `off`, `verify-if-present` or `enforce`.
    #[serde(default = "default_policy")]
    pub signature_policy: String,
    /// Folder of trusted OpenPGP public keys (`*.asc`, `*.gpg`, `*.pgp`).
    pub trusted_keys_dir: PathBuf,
    /// Seconds a plugin may run when its manifest names no timeout.
    #[serde(default = "default_timeout")]
    pub default_timeout_secs: f64,
    /// Cap on every plugin's timeout.
    #[serde(default = "default_max_timeout")]
    pub max_timeout_secs: f64,
    /// Connections served at once; more wait in the kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client must finish sending request headers (and the TLS handshake) within this many
    /// seconds; it is also the idle time after which a kept-alive connection is closed.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: f64,
    pub auth: AuthConfig,
}

/// The salted hash of the agent key: `hash = HMAC-SHA256(key = salt, message = key)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// 16 random bytes, hex.
    pub salt: String,
    /// 32 bytes, hex.
    pub hash: String,
}

fn default_policy() -> String {
    DEFAULT_SIGNATURE_POLICY.to_string()
}
fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_max_timeout() -> f64 {
    DEFAULT_MAX_TIMEOUT_SECS
}
fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
fn default_header_timeout() -> f64 {
    DEFAULT_HEADER_TIMEOUT_SECS
}

/// Why a configuration could not be read, checked or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid agent configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl AgentConfig {
    /// Installed plugin packages, one folder per plugin id.
    pub fn plugins_dir(&self) -> PathBuf {
        self.data_dir.join("plugins")
    }

    /// Scratch space for uploads; on the same file system as `plugins/` so that installs
    /// can finish with an atomic rename.
    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!(
                    "{:?} is not ADDR:PORT, e.g. 0.0.0.0:4048 or [::]:4048",
                    self.listen
                ),
            )
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if !SIGNATURE_POLICIES.contains(&self.signature_policy.as_str()) {
            return Err(invalid(
                "signature_policy",
                format!(
                    "{:?} is not one of {}",
                    self.signature_policy,
                    SIGNATURE_POLICIES.join(", ")
                ),
            ));
        }
        validate_timeout("default_timeout_secs", self.default_timeout_secs)?;
        validate_timeout("max_timeout_secs", self.max_timeout_secs)?;
        if self.default_timeout_secs > self.max_timeout_secs {
            return Err(invalid(
                "default_timeout_secs",
                "must not be larger than max_timeout_secs",
            ));
        }
        if self.max_connections == 0 || self.max_connections > 100_000 {
            return Err(invalid("max_connections", "must be between 1 and 100000"));
        }
        if !(self.header_timeout_secs.is_finite()
            && self.header_timeout_secs > 0.0
            && self.header_timeout_secs <= 600.0)
        {
            return Err(invalid(
                "header_timeout_secs",
                "must be more than 0 and at most 600 seconds",
            ));
        }
        let hex_len =
            |s: &str, n: usize| s.len() == n * 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_len(&self.auth.salt, crate::auth::SALT_LEN) {
            return Err(invalid(
                "auth.salt",
                "must be 32 hex digits; run `prophasis-agent setup --rotate-key` to make a new key",
            ));
        }
        if !hex_len(&self.auth.hash, 32) {
            return Err(invalid(
                "auth.hash",
                "must be 64 hex digits; run `prophasis-agent setup --rotate-key` to make a new key",
            ));
        }
        Ok(())
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: AgentConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the file with mode 0600 through a temporary file and a rename, so a crash
    /// never leaves a half-written configuration behind.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).map_err(|e| invalid("config", e.to_string()))?;
        let text = format!(
            "# prophasis-agent configuration, written by `prophasis-agent setup`.\n\
             # The auth key itself is not stored here, only its salted hash.\n{text}"
        );
        write_private(path, text.as_bytes())
    }
}

fn validate_timeout(key: &'static str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            "must be a number of seconds more than 0 and at most 3600",
        ))
    }
}

/// Writes `bytes` to `path` atomically with mode 0600, creating the parent folder.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::os::unix::fs::OpenOptionsExt;
    let werr = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(werr)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(
        ".{}.tmp{}",
        file_name.unwrap_or_else(|| "config".into()),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

/// Where the configuration lives when `--config` is not given: `/etc/prophasis/agent.toml`
/// for root, the user's config folder otherwise.
pub fn default_config_path() -> PathBuf {
    if is_root() {
        PathBuf::from("/etc/prophasis/agent.toml")
    } else {
        user_dir("XDG_CONFIG_HOME", ".config").join("prophasis/agent.toml")
    }
}

/// Where plugins live when `--data-dir` is not given.
pub fn default_data_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/prophasis-agent")
    } else {
        user_dir("XDG_DATA_HOME", ".local/share").join("prophasis-agent")
    }
}

fn user_dir(xdg_var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(xdg_var) {
        Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            PathBuf::from(home).join(fallback)
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> AgentConfig {
        AgentConfig {
            listen: DEFAULT_LISTEN.into(),
            data_dir: dir.join("data"),
            tls_cert: dir.join("cert.pem"),
            tls_key: dir.join("key.pem"),
            signature_policy: "enforce".into(),
            trusted_keys_dir: dir.join("keys"),
            default_timeout_secs: 10.0,
            max_timeout_secs: 60.0,
            max_connections: 10,
            header_timeout_secs: 5.0,
            auth: AuthConfig {
                salt: "00".repeat(16),
                hash: "ab".repeat(32),
            },
        }
    }

    #[test]
    fn round_trip_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/agent.toml");
        let c = sample(dir.path());
        c.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(AgentConfig::load(&path).unwrap(), c);
    }

    #[test]
    fn refusals_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(dir.path());
        c.listen = "nowhere".into();
        assert!(c.validate().unwrap_err().to_string().contains("`listen`"));
        let mut c = sample(dir.path());
        c.signature_policy = "maybe".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("signature_policy"));
        let mut c = sample(dir.path());
        c.default_timeout_secs = 100.0;
        assert!(c.validate().is_err());
        let mut c = sample(dir.path());
        c.auth.hash = "zz".into();
        assert!(c.validate().unwrap_err().to_string().contains("auth.hash"));
    }
}
