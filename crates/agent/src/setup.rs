//! `prophasis-agent setup`: makes or updates the configuration, the auth key and the TLS
//! certificate, so that a host is ready to be added to the server with two printed lines
//! (`key:` and `fingerprint:`).
//!
//! Re-running keeps everything that is not asked to change: the key survives unless there
//! is none or `--rotate-key` is given, and the certificate survives unless it is missing,
//! so the server's pin stays valid across package upgrades that re-run setup.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::config::{self, AgentConfig, ConfigError};
use crate::tls::{self, TlsError};

/// What the operator asked for; `None` keeps the current (or default) value.
#[derive(Debug, Clone, Default)]
pub struct SetupOptions {
    pub config_path: PathBuf,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub signature_policy: Option<String>,
    pub trusted_keys_dir: Option<PathBuf>,
    pub rotate_key: bool,
    /// Use this certificate (PEM) instead of a self-signed one; needs `tls_key` too.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Make a new self-signed certificate even if one exists (the server's pin must then
    /// be updated).
    pub new_certificate: bool,
    pub default_timeout_secs: Option<f64>,
    pub max_timeout_secs: Option<f64>,
}

/// What setup did.
#[derive(Debug, Clone)]
pub struct SetupOutcome {
    pub config: AgentConfig,
    /// The new key, when one was made; it is not stored anywhere and must be shown now.
    pub key: Option<String>,
    /// SHA-256 of the certificate the agent will present.
    pub fingerprint: String,
    /// True when there was no configuration before.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{path} exists but cannot be used ({source}); fix it or move it away and run setup again"
    )]
    Existing { path: PathBuf, source: ConfigError },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("give both --tls-cert and --tls-key, or neither")]
    CertWithoutKey,
    #[error("cannot create folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn config_folder(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Current configuration at `path`, if any; an unusable file is an error so that setup
/// never silently replaces a key the server relies on.
pub fn existing(path: &Path) -> Result<Option<AgentConfig>, SetupError> {
    if !path.exists() {
        return Ok(None);
    }
    AgentConfig::load(path)
        .map(Some)
        .map_err(|source| SetupError::Existing {
            path: path.to_path_buf(),
            source,
        })
}

/// Applies `opts`, writes the configuration (mode 0600) and returns what to print.
pub fn setup(opts: &SetupOptions) -> Result<SetupOutcome, SetupError> {
    let old = existing(&opts.config_path)?;
    let folder = config_folder(&opts.config_path);
    let created = old.is_none();

    let mut key = None;
    let auth = match (&old, opts.rotate_key) {
        (Some(c), false) => c.auth.clone(),
        _ => {
            let (k, stored) = crate::auth::generate_key();
            key = Some(k);
            stored
        }
    };

    let (tls_cert, tls_key) = match (&opts.tls_cert, &opts.tls_key) {
        (Some(c), Some(k)) => {
            // Fail now rather than at the first `run`.
            tls::server_config(c, k)?;
            (absolute(c), absolute(k))
        }
        (None, None) => {
            let (c, k) = match &old {
                Some(o) => (o.tls_cert.clone(), o.tls_key.clone()),
                None => (folder.join("agent-cert.pem"), folder.join("agent-key.pem")),
            };
            let usable = !opts.new_certificate && tls::server_config(&c, &k).is_ok();
            if !usable {
                tls::generate_self_signed(&c, &k)?;
            }
            (c, k)
        }
        _ => return Err(SetupError::CertWithoutKey),
    };

    let config = AgentConfig {
        listen: opts
            .listen
            .clone()
            .or_else(|| old.as_ref().map(|o| o.listen.clone()))
            .unwrap_or_else(|| config::DEFAULT_LISTEN.to_string()),
        data_dir: opts
            .data_dir
            .as_deref()
            .map(absolute)
            .or_else(|| old.as_ref().map(|o| o.data_dir.clone()))
            .unwrap_or_else(config::default_data_dir),
        tls_cert,
        tls_key,
        signature_policy: opts
            .signature_policy
            .clone()
            .or_else(|| old.as_ref().map(|o| o.signature_policy.clone()))
            .unwrap_or_else(|| config::DEFAULT_SIGNATURE_POLICY.to_string()),
        trusted_keys_dir: opts
            .trusted_keys_dir
            .as_deref()
            .map(absolute)
            .or_else(|| old.as_ref().map(|o| o.trusted_keys_dir.clone()))
            .unwrap_or_else(|| folder.join("trusted-keys")),
        default_timeout_secs: opts
            .default_timeout_secs
            .or_else(|| old.as_ref().map(|o| o.default_timeout_secs))
            .unwrap_or(config::DEFAULT_TIMEOUT_SECS),
        max_timeout_secs: opts
            .max_timeout_secs
            .or_else(|| old.as_ref().map(|o| o.max_timeout_secs))
            .unwrap_or(config::DEFAULT_MAX_TIMEOUT_SECS),
        max_connections: old
            .as_ref()
            .map(|o| o.max_connections)
            .unwrap_or(config::DEFAULT_MAX_CONNECTIONS),
        header_timeout_secs: old
            .as_ref()
            .map(|o| o.header_timeout_secs)
            .unwrap_or(config::DEFAULT_HEADER_TIMEOUT_SECS),
        auth,
    };
    config.validate()?;
    prepare_folders(&config)?;
    config.save(&opts.config_path)?;
    let fingerprint = tls::fingerprint_of_file(&config.tls_cert)?;
    Ok(SetupOutcome {
        config,
        key,
        fingerprint,
        created,
    })
}

/// Creates the data, plugin, temporary and trusted-keys folders; the data folders are
/// private because plugins run from them as the agent's user.
pub fn prepare_folders(config: &AgentConfig) -> Result<(), SetupError> {
    use std::os::unix::fs::DirBuilderExt;
    for (dir, mode) in [
        (config.data_dir.clone(), 0o700),
        (config.plugins_dir(), 0o700),
        (config.tmp_dir(), 0o700),
        (config.trusted_keys_dir.clone(), 0o755),
    ] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&dir)
            .map_err(|source| SetupError::Folder { path: dir, source })?;
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Asks for every value on the terminal, offering the current or default value, and
/// fills the unanswered fields of `opts`. Values given as flags are not asked again.
pub fn prompt(
    opts: &mut SetupOptions,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), SetupError> {
    let old = existing(&opts.config_path)?;
    let folder = config_folder(&opts.config_path);
    let mut ask = |question: &str, current: String| -> Option<String> {
        let _ = write!(out, "{question} [{current}]: ");
        let _ = out.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(n) if n > 0 && !line.trim().is_empty() => Some(line.trim().to_string()),
            _ => None,
        }
    };
    if opts.listen.is_none() {
        let cur = old
            .as_ref()
            .map(|o| o.listen.clone())
            .unwrap_or_else(|| config::DEFAULT_LISTEN.into());
        opts.listen = ask("Listen address and port", cur);
    }
    if opts.data_dir.is_none() {
        let cur = old
            .as_ref()
            .map(|o| o.data_dir.clone())
            .unwrap_or_else(config::default_data_dir);
        opts.data_dir = ask(
            "Data folder (plugins and temporary files)",
            cur.display().to_string(),
        )
        .map(PathBuf::from);
    }
    if opts.signature_policy.is_none() {
        let cur = old
            .as_ref()
            .map(|o| o.signature_policy.clone())
            .unwrap_or_else(|| config::DEFAULT_SIGNATURE_POLICY.into());
        opts.signature_policy = ask(
            "Plugin signature policy (off, verify-if-present, enforce)",
            cur,
        );
    }
    if opts.trusted_keys_dir.is_none() {
        let cur = old
            .as_ref()
            .map(|o| o.trusted_keys_dir.clone())
            .unwrap_or_else(|| folder.join("trusted-keys"));
        opts.trusted_keys_dir =
            ask("Folder of trusted OpenPGP keys", cur.display().to_string()).map(PathBuf::from);
    }
    let num = |s: Option<String>| s.and_then(|s| s.parse::<f64>().ok());
    if opts.default_timeout_secs.is_none() {
        let cur = old
            .as_ref()
            .map(|o| o.default_timeout_secs)
            .unwrap_or(config::DEFAULT_TIMEOUT_SECS);
        opts.default_timeout_secs = num(ask("Default plugin timeout (seconds)", cur.to_string()));
    }
    if opts.max_timeout_secs.is_none() {
        let cur = old
            .as_ref()
            .map(|o| o.max_timeout_secs)
            .unwrap_or(config::DEFAULT_MAX_TIMEOUT_SECS);
        opts.max_timeout_secs = num(ask("Maximum plugin timeout (seconds)", cur.to_string()));
    }
    if old.is_some() && !opts.rotate_key {
        let answer = ask(
            "Make a new auth key (the server must then be updated)? y/N",
            "N".into(),
        );
        opts.rotate_key = matches!(answer.as_deref(), Some("y" | "Y" | "yes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> SetupOptions {
        SetupOptions {
            config_path: dir.join("agent.toml"),
            data_dir: Some(dir.join("data")),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        }
    }

    #[test]
    fn rerun_keeps_key_and_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = setup(&opts(dir.path())).unwrap();
        assert!(first.created);
        let key = first.key.clone().unwrap();
        assert!(dir.path().join("data/plugins").is_dir());
        assert!(dir.path().join("data/tmp").is_dir());
        assert!(dir.path().join("trusted-keys").is_dir());

        let mut o = opts(dir.path());
        o.signature_policy = Some("enforce".into());
        let second = setup(&o).unwrap();
        assert!(!second.created);
        assert!(second.key.is_none());
        assert_eq!(second.fingerprint, first.fingerprint);
        assert_eq!(second.config.auth, first.config.auth);
        assert_eq!(second.config.signature_policy, "enforce");
        let v = crate::auth::KeyVerifier::new(&second.config.auth).unwrap();
        assert!(v.verify_key(key.as_bytes()));

        o.rotate_key = true;
        let third = setup(&o).unwrap();
        let new_key = third.key.unwrap();
        assert_ne!(new_key, key);
        assert_eq!(third.fingerprint, first.fingerprint);
        assert_eq!(third.config.signature_policy, "enforce");
    }

    #[test]
    fn bad_values_are_refused_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.signature_policy = Some("sometimes".into());
        assert!(setup(&o).is_err());
        assert!(!dir.path().join("agent.toml").exists());
    }

    #[test]
    fn prompts_fill_unanswered_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = SetupOptions {
            config_path: dir.path().join("agent.toml"),
            ..Default::default()
        };
        let data = dir.path().join("d");
        let answers = format!("127.0.0.1:4999\n{}\nenforce\n\n5\n\n", data.display());
        let mut out = Vec::new();
        prompt(&mut o, &mut answers.as_bytes(), &mut out).unwrap();
        assert_eq!(o.listen.as_deref(), Some("127.0.0.1:4999"));
        assert_eq!(o.data_dir.as_deref(), Some(data.as_path()));
        assert_eq!(o.signature_policy.as_deref(), Some("enforce"));
        assert_eq!(o.trusted_keys_dir, None);
        assert_eq!(o.default_timeout_secs, Some(5.0));
        assert_eq!(o.max_timeout_secs, None);
        assert!(String::from_utf8(out).unwrap().contains("[0.0.0.0:4048]"));
    }
}
