//! The alert modules: the ways a notification leaves Prophasis. Each lives in a folder of
//! its own with the schema of its options ([`OptionSpec`]), a `validate` for what the
//! schema cannot say, and `send`. The schema is what `GET /api/v1/alert-modules` shows, so
//! the UI renders a module's form and the API checks it without knowing the module.
//!
//! Secrets (passwords, tokens) are marked in the schema; [`mask_secrets`] replaces them in
//! every answer and [`keep_secrets`] puts the stored value back when a form returns a
//! masked one, so a secret is never shown back in full yet need not be retyped.

pub mod email;
pub mod pushbullet;
pub mod script;
pub mod syslog;
pub mod twilio;
pub mod webhook;

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::notification::Notification;

/// The type of an option's value, for rendering the form and checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionType {
    String,
    /// A multi-line text, e.g. a template.
    Text,
    Integer,
    Boolean,
    /// A list of strings, e.g. recipients.
    StringList,
    /// An object of string values, e.g. HTTP headers.
    StringMap,
    /// One of the values listed in `choices`.
    Choice,
}

/// One field of a module's form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionSpec {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: OptionType,
    pub required: bool,
    /// Never shown back in full.
    pub secret: bool,
    pub help: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub choices: &'static [&'static str],
}

impl OptionSpec {
    pub(crate) const fn new(name: &'static str, kind: OptionType, help: &'static str) -> Self {
        OptionSpec {
            name,
            kind,
            required: false,
            secret: false,
            help,
            default: None,
            choices: &[],
        }
    }
    pub(crate) const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub(crate) const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    pub(crate) fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    pub(crate) const fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.choices = c;
        self
    }
}

/// A module and its form, as `GET /api/v1/alert-modules` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub options: Vec<OptionSpec>,
}

/// An option refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a send failed; the text is what the delivery history and the system log show.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("invalid options: {0}")]
    Options(#[from] FieldError),
    #[error("{0}")]
    Failed(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("unknown alert module {0:?}")]
    UnknownModule(String),
}

impl SendError {
    pub(crate) fn failed(e: impl std::fmt::Display) -> SendError {
        SendError::Failed(e.to_string())
    }
}

/// Every module, in the order the UI lists them.
pub fn registry() -> Vec<ModuleInfo> {
    vec![
        email::info(),
        webhook::info(),
        syslog::info(),
        script::info(),
        pushbullet::info(),
        twilio::info(),
    ]
}

pub fn info(module: &str) -> Option<ModuleInfo> {
    registry().into_iter().find(|m| m.name == module)
}

/// Checks options against the module's schema, then the module's own rules.
pub fn validate(module: &str, options: &Value) -> Result<(), FieldError> {
    let info = info(module).ok_or_else(|| {
        FieldError::new(
            "module",
            format!(
                "unknown alert module {module:?}: expected one of {}",
                registry()
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let empty = Map::new();
    let obj = match options {
        Value::Object(o) => o,
        Value::Null => &empty,
        _ => return Err(FieldError::new("options", "must be an object")),
    };
    for key in obj.keys() {
        if !info.options.iter().any(|o| o.name == key) {
            return Err(FieldError::new(
                format!("options.{key}"),
                format!("unknown option for the {module} module"),
            ));
        }
    }
    for spec in &info.options {
        let field = format!("options.{}", spec.name);
        let v = obj.get(spec.name).filter(|v| !v.is_null());
        let Some(v) = v else {
            if spec.required {
                return Err(FieldError::new(field, "is required"));
            }
            continue;
        };
        let ok = match spec.kind {
            OptionType::String | OptionType::Text => v.is_string(),
            OptionType::Choice => v.as_str().is_some_and(|s| spec.choices.contains(&s)),
            OptionType::Integer => v.is_i64() || v.is_u64(),
            OptionType::Boolean => v.is_boolean(),
            OptionType::StringList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            OptionType::StringMap => v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string)),
        };
        if !ok {
            let want = match spec.kind {
                OptionType::String | OptionType::Text => "a string".to_string(),
                OptionType::Choice => format!("one of {}", spec.choices.join(", ")),
                OptionType::Integer => "an integer".into(),
                OptionType::Boolean => "true or false".into(),
                OptionType::StringList => "a list of strings".into(),
                OptionType::StringMap => "an object of strings".into(),
            };
            return Err(FieldError::new(field, format!("must be {want}")));
        }
        if spec.required && v.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Err(FieldError::new(field, "is required"));
        }
        if spec.required && v.as_array().is_some_and(|a| a.is_empty()) {
            return Err(FieldError::new(field, "needs at least one entry"));
        }
    }
    match module {
        "email" => email::validate(options),
        "webhook" => webhook::validate(options),
        "syslog" => syslog::validate(options),
        "script" => script::validate(options),
        "pushbullet" => pushbullet::validate(options),
        "twilio" => twilio::validate(options),
        _ => Ok(()),
    }
}

/// Sends through the named module; the options are validated first.
pub async fn send(module: &str, n: &Notification, options: &Value) -> Result<(), SendError> {
    if info(module).is_none() {
        return Err(SendError::UnknownModule(module.to_string()));
    }
    validate(module, options)?;
    match module {
        "email" => email::send(n, options).await,
        "webhook" => webhook::send(n, options).await,
        "syslog" => syslog::send(n, options).await,
        "script" => script::send(n, options).await,
        "pushbullet" => pushbullet::send(n, options).await,
        "twilio" => twilio::send(n, options).await,
        other => Err(SendError::UnknownModule(other.to_string())),
    }
}

const MASK: &str = "••••";

/// The options with every secret replaced by `••••` and its last four characters (only
/// when the secret is long enough that four characters give nothing away). A secret map
/// (e.g. HTTP headers) keeps its keys and masks each value.
pub fn mask_secrets(module: &str, options: &Value) -> Value {
    let mut out = options.clone();
    let (Some(info), Some(obj)) = (info(module), out.as_object_mut()) else {
        return out;
    };
    for spec in info.options.iter().filter(|s| s.secret) {
        match obj.get_mut(spec.name) {
            Some(Value::String(s)) => *s = mask(s),
            Some(Value::Object(m)) => {
                for v in m.values_mut() {
                    if let Value::String(s) = v {
                        *s = mask(s);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let tail: String = if chars.len() >= 12 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("{MASK}{tail}")
}

fn is_masked(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with(MASK))
}

/// For an update: a secret sent back masked (as [`mask_secrets`] showed it) keeps the
/// stored value (for a secret map, value by value).
pub fn keep_secrets(module: &str, new: &mut Value, stored: &Value) {
    let Some(info) = info(module) else { return };
    let Some(obj) = new.as_object_mut() else {
        return;
    };
    for spec in info.options.iter().filter(|s| s.secret) {
        let old = stored.get(spec.name);
        match obj.get_mut(spec.name) {
            Some(v) if is_masked(v) => match old {
                Some(old) => *v = old.clone(),
                None => {
                    obj.remove(spec.name);
                }
            },
            Some(Value::Object(m)) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if is_masked(&m[&k]) {
                        match old.and_then(|o| o.get(&k)) {
                            Some(o) => {
                                m.insert(k, o.clone());
                            }
                            None => {
                                m.remove(&k);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

// --- Helpers shared by the modules ---------------------------------------------------------

pub(crate) fn opt_str<'a>(options: &'a Value, name: &str) -> Option<&'a str> {
    options
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn opt_u64(options: &Value, name: &str, default: u64) -> u64 {
    options.get(name).and_then(Value::as_u64).unwrap_or(default)
}

pub(crate) fn opt_list(options: &Value, name: &str) -> Vec<String> {
    options
        .get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// An `http://` or `https://` URL with a host, or the field's error.
pub(crate) fn check_url(field: &str, s: &str) -> Result<reqwest::Url, FieldError> {
    let url = reqwest::Url::parse(s)
        .map_err(|e| FieldError::new(field, format!("{s:?} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FieldError::new(field, "must be an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(field, "must name a host"));
    }
    Ok(url)
}

/// A client for the HTTP modules, with a timeout so a stuck peer cannot hold the
/// delivery worker.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, SendError> {
    crate::install_crypto_provider();
    // The workspace's reqwest has no built-in roots: give it the Mozilla set, as lettre has.
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(SendError::failed)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .timeout(timeout)
        .use_preconfigured_tls(tls)
        .build()
        .map_err(SendError::failed)
}

/// An HTTP answer that is not a success, with the start of its body (APIs say why there).
pub(crate) async fn http_failure(resp: reqwest::Response) -> SendError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    SendError::Failed(format!("HTTP {status}: {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_and_kept() {
        let opts = json!({"host": "smtp", "password": "correct horse battery", "from": "a@b.c", "to": ["x@y.z"]});
        let masked = mask_secrets("email", &opts);
        assert_eq!(masked["password"], json!("••••tery"));
        assert_eq!(masked["host"], json!("smtp"));
        let short = mask_secrets("email", &json!({"password": "pw"}));
        assert_eq!(short["password"], json!("••••"));
        let mut back = masked.clone();
        keep_secrets("email", &mut back, &opts);
        assert_eq!(back, opts);
        let mut changed = masked;
        changed["password"] = json!("new one");
        keep_secrets("email", &mut changed, &opts);
        assert_eq!(changed["password"], json!("new one"));

        let hook = json!({"url": "https://hooks.slack.com/services/T0/B0/abcdefgh1234", "headers": {"Authorization": "Bearer abcdefghijklmnop", "X-Env": "prod"}});
        let masked = mask_secrets("webhook", &hook);
        assert_eq!(masked["url"], json!("••••1234"));
        assert_eq!(masked["headers"]["Authorization"], json!("••••mnop"));
        assert_eq!(masked["headers"]["X-Env"], json!("••••"));
        let mut back = masked.clone();
        back["headers"]["X-Env"] = json!("staging");
        keep_secrets("webhook", &mut back, &hook);
        assert_eq!(back["url"], hook["url"]);
        assert_eq!(
            back["headers"]["Authorization"],
            hook["headers"]["Authorization"]
        );
        assert_eq!(back["headers"]["X-Env"], json!("staging"));
    }

    #[test]
    fn schema_checks_name_the_field() {
        let e = validate("webhook", &json!({})).unwrap_err();
        assert_eq!(e.field, "options.url");
        let e = validate("webhook", &json!({"url": "http://x", "bogus": 1})).unwrap_err();
        assert_eq!(e.field, "options.bogus");
        let e = validate("webhook", &json!({"url": 5})).unwrap_err();
        assert_eq!(e.field, "options.url");
        let e = validate("nope", &json!({})).unwrap_err();
        assert_eq!(e.field, "module");
        let e = validate("syslog", &json!({"transport": "carrier-pigeon"})).unwrap_err();
        assert_eq!(e.field, "options.transport");
    }

    #[test]
    fn every_module_is_listed_with_a_schema() {
        let names: Vec<_> = registry().iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "email",
                "webhook",
                "syslog",
                "script",
                "pushbullet",
                "twilio"
            ]
        );
        for m in registry() {
            assert!(!m.options.is_empty(), "{}", m.name);
        }
    }
}
