//! `manifest.json`, the description at the top of every plugin package.
//!
//! The original keys (`id`, `name`, `description`, `version`, `default_n_historical`,
//! `default_classifier`, `view`, `view_source`) plus how to run the plugin: `entry` (an
//! executable inside the package) or `builtin` (a collector compiled into the agent),
//! `mode` (`json` or `nagios`), `timeout` (seconds) and `args` (declared arguments with
//! defaults). Paths in a manifest are relative to the package folder.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The views the server renders without a template from the package.
pub const BUILTIN_VIEWS: [&str; 4] = [
    "value_graph",
    "percent_graph",
    "count_table",
    "message_list",
];

/// How the agent reads a plugin's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One JSON object `{"value": number|null, "message": string}` on stdout.
    #[default]
    Json,
    /// Nagios plugin conventions: exit code 0–3, `TEXT | perfdata` on stdout.
    Nagios,
}

/// One argument a plugin declares.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ArgSpec {
    #[serde(default)]
    pub description: String,
    /// Used when the check gives no value.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// A check must give a value when there is no default.
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A higher version makes agents update.
    pub version: f64,
    #[serde(default = "default_n_historical")]
    pub default_n_historical: u32,
    /// Path of the default Lua classifier inside the package.
    pub default_classifier: String,
    #[serde(default = "default_view")]
    pub view: String,
    /// Path of the Jinja template inside the package when `view` is `custom`.
    #[serde(default)]
    pub view_source: Option<String>,
    /// Path of the executable inside the package.
    #[serde(default)]
    pub entry: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Name of a built-in collector of the agent, instead of `entry`.
    #[serde(default)]
    pub builtin: Option<String>,
    /// Seconds; the agent caps it at its configured maximum.
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub args: BTreeMap<String, ArgSpec>,
}

fn default_n_historical() -> u32 {
    5
}

fn default_view() -> String {
    "value_graph".to_string()
}

/// Why a manifest was refused; the message names the key and says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest.json is not valid: {0}")]
    Parse(String),
    #[error("manifest.json key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        key,
        message: message.into(),
    }
}

/// True when `id` is a reverse-DNS plugin id: dot-separated labels of ASCII letters,
/// digits, `_` and `-`, at most 128 characters. Ids name folders on agents, so an id can
/// never be a path.
pub fn is_valid_plugin_id(id: &str) -> bool {
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    !id.is_empty() && id.len() <= 128 && id.split('.').all(ok_label)
}

/// True when `path` is a relative path that stays inside the package folder.
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != ".." && c != ".")
}

impl Manifest {
    /// Parses and validates `manifest.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    pub fn validate(&self) -> Result<(), ManifestError> {
        if !is_valid_plugin_id(&self.id) {
            return Err(invalid(
                "id",
                "must be a reverse-DNS id such as com.example.cpu_load: dot-separated labels of letters, digits, '_' and '-', at most 128 characters",
            ));
        }
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if !self.version.is_finite() || self.version < 0.0 {
            return Err(invalid("version", "must be a number of 0 or more"));
        }
        if self.default_n_historical == 0 || self.default_n_historical > 10_000 {
            return Err(invalid(
                "default_n_historical",
                "must be between 1 and 10000",
            ));
        }
        if !is_safe_relative_path(&self.default_classifier) {
            return Err(invalid(
                "default_classifier",
                "must be the relative path of a .lua file inside the package",
            ));
        }
        match (self.view.as_str(), &self.view_source) {
            ("custom", Some(p)) if is_safe_relative_path(p) => {}
            ("custom", _) => return Err(invalid(
                "view_source",
                "must be the relative path of a template inside the package when view is custom",
            )),
            (v, _) if BUILTIN_VIEWS.contains(&v) => {}
            _ => {
                return Err(invalid(
                    "view",
                    format!("must be one of {} or custom", BUILTIN_VIEWS.join(", ")),
                ))
            }
        }
        match (&self.entry, &self.builtin) {
            (Some(_), Some(_)) => return Err(invalid("builtin", "give either `entry` or `builtin`, not both")),
            (None, None) => {
                return Err(invalid("entry", "give `entry` (an executable inside the package) or `builtin` (a collector of the agent)"))
            }
            (Some(e), None) if !is_safe_relative_path(e) => {
                return Err(invalid("entry", "must be a relative path inside the package, without `..`"))
            }
            (None, Some(b)) if b.is_empty() || !b.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()) => {
                return Err(invalid("builtin", "must name a built-in collector such as cpu_load"))
            }
            _ => {}
        }
        if let Some(t) = self.timeout {
            if !t.is_finite() || t <= 0.0 || t > 3600.0 {
                return Err(invalid(
                    "timeout",
                    "must be a number of seconds greater than 0 and at most 3600",
                ));
            }
        }
        for name in self.args.keys() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    "args",
                    format!("argument name {name:?} must be letters, digits and '_' only"),
                ));
            }
        }
        Ok(())
    }

    /// The arguments to run with: the check's values over the declared defaults. Refuses
    /// a missing required argument.
    pub fn resolve_args(
        &self,
        given: &BTreeMap<String, serde_json::Value>,
    ) -> Result<BTreeMap<String, serde_json::Value>, String> {
        let mut out = given.clone();
        for (name, spec) in &self.args {
            if out.contains_key(name) {
                continue;
            }
            match (&spec.default, spec.required) {
                (Some(d), _) => {
                    out.insert(name.clone(), d.clone());
                }
                (None, true) => {
                    return Err(format!(
                        "argument `{name}` is required: set it in the check's plugin arguments"
                    ))
                }
                (None, false) => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "id": "com.example.disk",
            "name": "Disk usage",
            "version": 2,
            "default_classifier": "classifier.lua",
            "builtin": "disk_usage",
            "args": {"mount": {"default": "/"}}
        })
    }

    fn parse(v: serde_json::Value) -> Result<Manifest, ManifestError> {
        Manifest::from_json(v.to_string().as_bytes())
    }

    #[test]
    fn defaults_apply() {
        let m = parse(base()).unwrap();
        assert_eq!(m.mode, Mode::Json);
        assert_eq!(m.view, "value_graph");
        assert_eq!(m.default_n_historical, 5);
        assert_eq!(m.version, 2.0);
    }

    #[test]
    fn refusals_name_the_key() {
        let cases: [(&str, serde_json::Value); 6] = [
            ("id", serde_json::json!("../evil")),
            ("version", serde_json::json!(-1)),
            ("default_classifier", serde_json::json!("/etc/passwd")),
            ("view", serde_json::json!("pie")),
            ("timeout", serde_json::json!(0)),
            ("entry", serde_json::json!("../../bin/sh")),
        ];
        for (key, value) in cases {
            let mut v = base();
            if key == "entry" {
                v.as_object_mut().unwrap().remove("builtin");
            }
            v[key] = value;
            match parse(v) {
                Err(ManifestError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        let mut v = base();
        v["entry"] = serde_json::json!("run.sh");
        assert!(matches!(
            parse(v),
            Err(ManifestError::Invalid { key: "builtin", .. })
        ));
        let mut v = base();
        v["surprise"] = serde_json::json!(1);
        assert!(matches!(parse(v), Err(ManifestError::Parse(_))));
    }

    #[test]
    fn args_resolve_over_defaults() {
        let mut m = parse(base()).unwrap();
        let given = BTreeMap::new();
        assert_eq!(m.resolve_args(&given).unwrap()["mount"], "/");
        let given = BTreeMap::from([("mount".to_string(), serde_json::json!("/var"))]);
        assert_eq!(m.resolve_args(&given).unwrap()["mount"], "/var");
        m.args.insert(
            "name".into(),
            ArgSpec {
                required: true,
                ..Default::default()
            },
        );
        assert!(m
            .resolve_args(&BTreeMap::new())
            .unwrap_err()
            .contains("`name` is required"));
    }

    #[test]
    fn paths() {
        assert!(is_safe_relative_path("bin/check"));
        for bad in ["", "/abs", "a/../b", "./a", "a//b", "a\\b"] {
            assert!(!is_safe_relative_path(bad), "{bad}");
        }
    }
}
