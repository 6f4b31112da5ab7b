//! The server's TOML configuration (`prophasis server --config FILE`), its defaults and its
//! validation (`prophasis check-config FILE`). Every error names the key and says what is
//! allowed, because a config error is usually met at 3 a.m. during an upgrade.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the web UI, API and /metrics.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://<data_dir>/prophasis.db`.
    pub database: String,
    /// Folder for the SQLite database and other state.
    pub data_dir: PathBuf,
    /// How people reach the web UI (e.g. `https://monitor.example.com`), for the links in
    /// alert notifications; empty means `http://<listen address>`.
    pub public_url: String,
    pub scheduler: SchedulerConfig,
    pub dispatch: DispatchConfig,
    pub classifier: ClassifierConfig,
    pub retention: RetentionConfig,
    /// Serve the web UI and API over HTTPS with this certificate; absent means plain HTTP.
    pub tls: Option<TlsConfig>,
}

/// `[tls]`: PEM files of the certificate (chain, server's first) and its private key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// A slot found later than this is skipped (and the next slot still computed).
    pub max_lateness_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Requests to agents in flight at once, over all hosts (one per host at most).
    pub max_in_flight: usize,
    pub connect_timeout_seconds: u64,
    /// For a whole request, including the plugin's run time on the agent.
    pub request_timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    pub instruction_limit: u64,
    pub memory_limit_mib: u64,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Raw results are kept this many days; graphs of older ranges use rollups.
    pub raw_days: u32,
    pub five_minute_days: u32,
    pub hourly_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:4047".parse().expect("valid default"),
            database: String::new(),
            data_dir: PathBuf::from("prophasis-data"),
            public_url: String::new(),
            scheduler: SchedulerConfig::default(),
            dispatch: DispatchConfig::default(),
            classifier: ClassifierConfig::default(),
            retention: RetentionConfig::default(),
            tls: None,
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_lateness_seconds: 30,
        }
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_in_flight: 512,
            connect_timeout_seconds: 5,
            request_timeout_seconds: 60,
        }
    }
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            instruction_limit: 1_000_000,
            memory_limit_mib: 16,
            timeout_ms: 250,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            raw_days: 30,
            five_minute_days: 180,
            hourly_days: 1830,
        }
    }
}

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{key}` {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.into(),
                key,
                message,
            })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let db = self.database.as_str();
        if !(db.is_empty()
            || db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(("database", "must be sqlite://PATH or postgres://USER@HOST/DB (or empty for SQLite in data_dir)".into()));
        }
        let url = self.public_url.as_str();
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://"))
            || url.contains(char::is_whitespace)
        {
            return Err((
                "public_url",
                "must be an http:// or https:// URL such as https://monitor.example.com".into(),
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.cert.as_os_str().is_empty() {
                return Err((
                    "tls.cert",
                    "must be the path of a PEM certificate file".into(),
                ));
            }
            if tls.key.as_os_str().is_empty() {
                return Err((
                    "tls.key",
                    "must be the path of a PEM private key file".into(),
                ));
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(("data_dir", "must not be empty".into()));
        }
        let positive = [
            (
                "scheduler.max_lateness_seconds",
                self.scheduler.max_lateness_seconds,
            ),
            ("dispatch.max_in_flight", self.dispatch.max_in_flight as u64),
            (
                "dispatch.connect_timeout_seconds",
                self.dispatch.connect_timeout_seconds,
            ),
            (
                "dispatch.request_timeout_seconds",
                self.dispatch.request_timeout_seconds,
            ),
            (
                "classifier.instruction_limit",
                self.classifier.instruction_limit,
            ),
            (
                "classifier.memory_limit_mib",
                self.classifier.memory_limit_mib,
            ),
            ("classifier.timeout_ms", self.classifier.timeout_ms),
            ("retention.raw_days", self.retention.raw_days.into()),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err((key, "must be greater than 0".into()));
            }
        }
        if self.retention.five_minute_days < self.retention.raw_days {
            return Err((
                "retention.five_minute_days",
                "must be at least retention.raw_days".into(),
            ));
        }
        if self.retention.hourly_days < self.retention.five_minute_days {
            return Err((
                "retention.hourly_days",
                "must be at least retention.five_minute_days".into(),
            ));
        }
        Ok(())
    }

    /// `https` when `[tls]` is set, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The address for links to the web UI: `public_url`, or the address the server
    /// listens on (`addr`, the real one when port 0 was asked for), by HTTPS under `[tls]`.
    pub fn base_url(&self, addr: std::net::SocketAddr) -> String {
        if self.public_url.is_empty() {
            format!("{}://{addr}", self.scheme())
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    /// Loads the `[tls]` certificate and key, if any, checking that they are PEM and belong
    /// together (not part of [`Config::load`]: admin commands such as `token` read the same
    /// file and need not be able to read the key).
    pub fn tls_server_config(
        &self,
    ) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, crate::serve_tls::TlsError> {
        self.tls
            .as_ref()
            .map(crate::serve_tls::server_config)
            .transpose()
    }

    /// The database URL in force: the configured one, or SQLite in the data folder.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!("sqlite://{}", self.data_dir.join("prophasis.db").display())
        } else {
            self.database.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen.port(), 4047);
        assert_eq!(c.database_url(), "sqlite://prophasis-data/prophasis.db");
    }

    #[test]
    fn values_are_read() {
        let c = parse(
            "listen = \"0.0.0.0:8080\"\ndatabase = \"postgres://postgres@127.0.0.1/prophasis\"\n[scheduler]\nmax_lateness_seconds = 5\n[dispatch]\nmax_in_flight = 10\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.database_url(), "postgres://postgres@127.0.0.1/prophasis");
        assert_eq!(c.scheduler.max_lateness_seconds, 5);
        assert_eq!(c.dispatch.max_in_flight, 10);
        assert_eq!(
            c.dispatch.request_timeout_seconds, 60,
            "unset keys keep defaults"
        );
    }

    #[test]
    fn tls_turns_links_to_https() {
        let addr: SocketAddr = "127.0.0.1:4047".parse().unwrap();
        let plain = parse("").unwrap();
        assert_eq!(plain.tls, None);
        assert_eq!(plain.base_url(addr), "http://127.0.0.1:4047");
        let c =
            parse("[tls]\ncert = \"/etc/prophasis/cert.pem\"\nkey = \"/etc/prophasis/key.pem\"\n")
                .unwrap();
        assert_eq!(
            c.tls,
            Some(TlsConfig {
                cert: "/etc/prophasis/cert.pem".into(),
                key: "/etc/prophasis/key.pem".into()
            })
        );
        assert_eq!(c.base_url(addr), "https://127.0.0.1:4047");
        // Missing files are found by the TLS check, not by parsing (see serve_tls).
        let e = c.tls_server_config().unwrap_err().to_string();
        assert!(e.contains("/etc/prophasis/cert.pem"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[dispatch]\nmax_in_flight = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dispatch.max_in_flight") && e.contains("greater than 0"),
            "{e}"
        );
        let e = parse("database = \"mysql://x\"\n").unwrap_err().to_string();
        assert!(e.contains("`database`"), "{e}");
        let e = parse("listne = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("unknown field") && e.contains("listne"), "{e}");
        let e = parse("[retention]\nraw_days = 400\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("five_minute_days"), "{e}");
        let e = parse("[tls]\ncert = \"c.pem\"\n").unwrap_err().to_string();
        assert!(e.contains("missing field `key`"), "{e}");
        let e = parse("[tls]\ncert = \"\"\nkey = \"k.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`tls.cert`"), "{e}");
        let e = Config::load(Path::new("/nonexistent/prophasis.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read /nonexistent/prophasis.toml"), "{e}");
    }
}
