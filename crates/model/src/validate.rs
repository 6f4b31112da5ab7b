//! Validation of entities before they are stored: every refusal names the field and says
//! what is allowed, so the UI can put the message next to the field and the API can return
//! it as `{"error": {"code": "invalid", "field": …, "message": …}}`.
//!
//! Rules that need the database (unique names, existing references) live in the store;
//! everything that can be decided from the entity alone lives here.

use crate::entities::*;

/// An entity refused because of one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type Validated = Result<(), ValidationError>;

/// Entities that can check themselves.
pub trait Validate {
    fn validate(&self) -> Validated;
}

const MAX_NAME: usize = 200;

fn name(field: &str, value: &str) -> Validated {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if trimmed.len() != value.len() {
        return Err(ValidationError::new(
            field,
            "must not start or end with spaces",
        ));
    }
    if value.chars().count() > MAX_NAME {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn no_duplicates<T: PartialEq + std::fmt::Debug>(field: &str, items: &[T]) -> Validated {
    for (i, a) in items.iter().enumerate() {
        if items[..i].contains(a) {
            return Err(ValidationError::new(
                field,
                format!("lists {a:?} more than once"),
            ));
        }
    }
    Ok(())
}

/// A reverse-DNS plugin id: dot-separated labels of letters, digits, `_` and `-`; never a
/// path. It names folders on agents, so this is also a security check.
pub fn plugin_id(field: &str, id: &str) -> Validated {
    if !prophasis_protocol::manifest::is_valid_plugin_id(id) {
        return Err(ValidationError::new(
            field,
            "must be a reverse-DNS id such as com.example.cpu_load: dot-separated labels of letters, digits, '_' and '-', at most 128 characters",
        ));
    }
    Ok(())
}

/// A SHA-256 fingerprint: 64 hex digits, colons allowed between pairs.
pub fn normalize_fingerprint(fp: &str) -> Option<String> {
    let hex: String = fp
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

impl Validate for Host {
    fn validate(&self) -> Validated {
        name("name", &self.name)?;
        let addr = self.address.trim();
        if addr.is_empty() {
            return Err(ValidationError::new(
                "address",
                "must not be empty: give the agent's DNS name or IP address",
            ));
        }
        if addr.len() != self.address.len() || addr.contains(['/', ' ', '@']) {
            return Err(ValidationError::new(
                "address",
                "must be a bare DNS name or IP address, without scheme, path or spaces",
            ));
        }
        if self.port == 0 {
            return Err(ValidationError::new(
                "port",
                "must be between 1 and 65535 (the agent's default is 4048)",
            ));
        }
        if self.auth_key.trim().is_empty() {
            return Err(ValidationError::new(
                "auth_key",
                "must not be empty: paste the key `prophasis-agent setup` printed",
            ));
        }
        if let Some(fp) = &self.tls_fingerprint {
            if normalize_fingerprint(fp).is_none() {
                return Err(ValidationError::new(
                    "tls_fingerprint",
                    "must be a SHA-256 fingerprint: 64 hex digits (colons allowed)",
                ));
            }
        }
        Ok(())
    }
}

impl Validate for HostGroup {
    fn validate(&self) -> Validated {
        name("name", &self.name)?;
        no_duplicates("member_hosts", &self.member_hosts)?;
        no_duplicates("member_groups", &self.member_groups)?;
        if self.id != 0 && self.member_groups.contains(&self.id) {
            return Err(ValidationError::new(
                "member_groups",
                "a host group cannot be a member of itself",
            ));
        }
        Ok(())
    }
}

impl Validate for Plugin {
    fn validate(&self) -> Validated {
        plugin_id("id", &self.id)?;
        name("name", &self.name)?;
        if !self.version.is_finite() || self.version < 0.0 {
            return Err(ValidationError::new(
                "version",
                "must be a number of 0 or more",
            ));
        }
        if self.n_historical == 0 || self.n_historical > 10_000 {
            return Err(ValidationError::new(
                "n_historical",
                "must be between 1 and 10000",
            ));
        }
        if self.classifier.trim().is_empty() {
            return Err(ValidationError::new("classifier", "must not be empty: a Lua classifier returning ok, minor, major, critical or unknown"));
        }
        match self.view.as_str() {
            "custom" => {
                if self
                    .view_source
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty())
                {
                    return Err(ValidationError::new(
                        "view_source",
                        "must be given when view is custom",
                    ));
                }
            }
            v if BUILTIN_VIEWS.contains(&v) => {}
            _ => {
                return Err(ValidationError::new(
                    "view",
                    format!("must be one of {} or custom", BUILTIN_VIEWS.join(", ")),
                ))
            }
        }
        Ok(())
    }
}

impl Validate for Check {
    fn validate(&self) -> Validated {
        name("name", &self.name)?;
        if self.hosts.is_empty() && self.host_groups.is_empty() {
            return Err(ValidationError::new(
                "hosts",
                "a check needs at least one host or host group",
            ));
        }
        if self.plugins.is_empty() {
            return Err(ValidationError::new(
                "plugins",
                "a check needs at least one plugin",
            ));
        }
        no_duplicates("hosts", &self.hosts)?;
        no_duplicates("host_groups", &self.host_groups)?;
        no_duplicates("plugins", &self.plugins)?;
        for p in self.plugin_args.keys() {
            if !self.plugins.contains(p) {
                return Err(ValidationError::new(
                    "plugin_args",
                    format!("has arguments for {p}, which is not one of the check's plugins"),
                ));
            }
        }
        Ok(())
    }
}

/// The longest period an interval may have: one year.
pub const MAX_PERIOD_SECONDS: i64 = 366 * 24 * 3600;

impl Validate for Schedule {
    fn validate(&self) -> Validated {
        name("name", &self.name)?;
        no_duplicates("checks", &self.checks)?;
        if self.intervals.is_empty() {
            return Err(ValidationError::new(
                "intervals",
                "a schedule needs at least one interval",
            ));
        }
        for (i, iv) in self.intervals.iter().enumerate() {
            if iv.period_seconds <= 0 {
                return Err(ValidationError::new(
                    format!("intervals[{i}].period_seconds"),
                    "must be greater than 0",
                ));
            }
            if iv.period_seconds > MAX_PERIOD_SECONDS {
                return Err(ValidationError::new(
                    format!("intervals[{i}].period_seconds"),
                    "must be at most one year (31622400 seconds)",
                ));
            }
            if iv.start < 0 {
                return Err(ValidationError::new(
                    format!("intervals[{i}].start"),
                    "must not be before 1970",
                ));
            }
        }
        Ok(())
    }
}

impl Validate for Service {
    fn validate(&self) -> Validated {
        name("name", &self.name)?;
        no_duplicates("dependencies", &self.dependencies)?;
        no_duplicates("services", &self.services)?;
        if self.id != 0 && self.services.contains(&self.id) {
            return Err(ValidationError::new(
                "services",
                "a service cannot depend on itself",
            ));
        }
        for (i, rg) in self.redundancy_groups.iter().enumerate() {
            if rg.members.is_empty() {
                return Err(ValidationError::new(
                    format!("redundancy_groups[{i}].members"),
                    "a redundancy group needs at least one host or host group",
                ));
            }
            no_duplicates(&format!("redundancy_groups[{i}].members"), &rg.members)?;
        }
        if self.dependencies.is_empty()
            && self.redundancy_groups.is_empty()
            && self.services.is_empty()
        {
            return Err(ValidationError::new(
                "dependencies",
                "a service needs at least one dependency, redundancy group or nested service",
            ));
        }
        Ok(())
    }
}

impl Validate for Alert {
    fn validate(&self) -> Validated {
        name("name", &self.name)?;
        if self.from_states.is_empty() {
            return Err(ValidationError::new(
                "from_states",
                "choose at least one state",
            ));
        }
        if self.to_states.is_empty() {
            return Err(ValidationError::new(
                "to_states",
                "choose at least one state",
            ));
        }
        no_duplicates("from_states", &self.from_states)?;
        no_duplicates("to_states", &self.to_states)?;
        if self.scope.is_empty() {
            return Err(ValidationError::new(
                "scope",
                "choose hosts, host groups, services, all hosts or all services",
            ));
        }
        no_duplicates("plugins", &self.plugins)?;
        no_duplicates("checks", &self.checks)?;
        name("module", &self.module)?;
        Ok(())
    }
}

/// The largest classifier accepted, in bytes.
pub const MAX_CLASSIFIER_BYTES: usize = 64 * 1024;

impl Validate for ClassifierOverride {
    fn validate(&self) -> Validated {
        plugin_id("plugin_id", &self.plugin_id)?;
        if self.n_historical == 0 || self.n_historical > 10_000 {
            return Err(ValidationError::new(
                "n_historical",
                "must be between 1 and 10000",
            ));
        }
        if self.code.trim().is_empty() {
            return Err(ValidationError::new("code", "must not be empty"));
        }
        if self.code.len() > MAX_CLASSIFIER_BYTES {
            return Err(ValidationError::new("code", "must be at most 64 KiB"));
        }
        Ok(())
    }
}

impl Validate for User {
    fn validate(&self) -> Validated {
        name("name", &self.name)?;
        if self.name.contains(':') {
            return Err(ValidationError::new(
                "name",
                "must not contain ':' (it separates name and password in HTTP Basic auth)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;

    fn host() -> Host {
        Host {
            id: 0,
            name: "web1".into(),
            address: "10.0.0.1".into(),
            port: 4048,
            description: String::new(),
            auth_key: "k".into(),
            tls_fingerprint: None,
            enabled: true,
        }
    }

    fn field(r: Validated) -> String {
        r.unwrap_err().field
    }

    #[test]
    fn names_must_be_meaningful() {
        let mut h = host();
        assert!(h.validate().is_ok());
        h.name = "  ".into();
        assert_eq!(field(h.validate()), "name");
        h.name = " web1".into();
        assert_eq!(field(h.validate()), "name");
        h.name = "x".repeat(201);
        assert_eq!(field(h.validate()), "name");
    }

    #[test]
    fn host_fields() {
        let mut h = host();
        h.port = 0;
        assert_eq!(field(h.validate()), "port");
        let mut h = host();
        h.address = "https://x/".into();
        assert_eq!(field(h.validate()), "address");
        let mut h = host();
        h.tls_fingerprint = Some("abc".into());
        assert_eq!(field(h.validate()), "tls_fingerprint");
        h.tls_fingerprint = Some("AB:".repeat(31) + "AB");
        assert!(h.validate().is_ok());
    }

    #[test]
    fn group_cannot_contain_itself() {
        let g = HostGroup {
            id: 3,
            name: "g".into(),
            member_groups: vec![3],
            ..Default::default()
        };
        let e = g.validate().unwrap_err();
        assert_eq!(e.field, "member_groups");
        assert!(e.message.contains("itself"));
    }

    #[test]
    fn check_needs_hosts_and_plugins() {
        let mut c = Check {
            name: "c".into(),
            hosts: vec![1],
            plugins: vec!["a.b".into()],
            ..Default::default()
        };
        assert!(c.validate().is_ok());
        c.plugins.clear();
        assert_eq!(field(c.validate()), "plugins");
        let c = Check {
            name: "c".into(),
            plugins: vec!["a.b".into()],
            ..Default::default()
        };
        assert_eq!(field(c.validate()), "hosts");
    }

    #[test]
    fn schedule_period_must_be_positive() {
        let mut s = Schedule {
            name: "s".into(),
            intervals: vec![Interval {
                id: 0,
                start: 0,
                period_seconds: 0,
            }],
            ..Default::default()
        };
        assert_eq!(field(s.validate()), "intervals[0].period_seconds");
        s.intervals[0].period_seconds = -5;
        assert_eq!(field(s.validate()), "intervals[0].period_seconds");
        s.intervals[0].period_seconds = 30;
        assert!(s.validate().is_ok());
        s.intervals.clear();
        assert_eq!(field(s.validate()), "intervals");
    }

    #[test]
    fn redundancy_groups_must_not_be_empty() {
        let s = Service {
            name: "web".into(),
            redundancy_groups: vec![RedundancyGroup {
                name: "lb".into(),
                members: vec![],
            }],
            ..Default::default()
        };
        assert_eq!(field(s.validate()), "redundancy_groups[0].members");
    }

    #[test]
    fn alert_states_and_scope() {
        let mut a = Alert {
            id: 0,
            name: "a".into(),
            from_states: vec![Health::Ok],
            to_states: vec![Health::Critical],
            scope: AlertScope {
                all_hosts: true,
                ..Default::default()
            },
            plugins: vec![],
            checks: vec![],
            module: "email".into(),
            options: serde_json::json!({}),
            enabled: true,
        };
        assert!(a.validate().is_ok());
        a.scope = AlertScope::default();
        assert_eq!(field(a.validate()), "scope");
        // An unknown state cannot even be parsed into an alert, and the error says why.
        let err = serde_json::from_str::<Health>("\"warning\"").unwrap_err();
        assert!(err.to_string().contains("unknown variant"));
    }

    #[test]
    fn plugin_ids_are_never_paths() {
        assert!(plugin_id("id", "com.example.cpu_load").is_ok());
        for bad in ["", "../x", "a/b", "a..b", ".a", "a b", "a\\b"] {
            assert!(plugin_id("id", bad).is_err(), "{bad:?} accepted");
        }
    }
}
