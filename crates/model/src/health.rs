//! Health states and classifications.
//!
//! A *classification* is what a classifier says about one result; a *health* is what the
//! health rules derive for hosts, host groups, redundancy groups and services. Every
//! classification is a health, but `degraded` and `no_data` are only ever derived.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Health of an entity, ordered by severity: `NoData < Ok < Unknown < Degraded < Minor <
/// Major < Critical`, so `max()` is "the most severe" and `min()` "the least severe".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Health {
    NoData,
    Ok,
    Unknown,
    Degraded,
    Minor,
    Major,
    Critical,
}

impl Health {
    /// Every health, least severe first.
    pub const ALL: [Health; 7] = [
        Health::NoData,
        Health::Ok,
        Health::Unknown,
        Health::Degraded,
        Health::Minor,
        Health::Major,
        Health::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::NoData => "no_data",
            Health::Ok => "ok",
            Health::Unknown => "unknown",
            Health::Degraded => "degraded",
            Health::Minor => "minor",
            Health::Major => "major",
            Health::Critical => "critical",
        }
    }

    /// A problem is anything a person may need to look at.
    pub fn is_problem(self) -> bool {
        self > Health::Ok
    }
}

/// The order of every health list people see (UI and API alike): worst first, then by name.
pub fn worst_first(a: (Health, &str), b: (Health, &str)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no health state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown health state {0:?}: expected one of critical, major, minor, degraded, unknown, ok, no_data")]
pub struct UnknownHealth(pub String);

impl FromStr for Health {
    type Err = UnknownHealth;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Health::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| UnknownHealth(s.to_string()))
    }
}

/// What a classifier may return for one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Classification {
    Ok,
    Unknown,
    Minor,
    Major,
    Critical,
}

impl Classification {
    pub const ALL: [Classification; 5] = [
        Classification::Ok,
        Classification::Unknown,
        Classification::Minor,
        Classification::Major,
        Classification::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        Health::from(self).as_str()
    }

    /// Parses what a classifier returned; anything but the five names is `None`.
    pub fn parse(s: &str) -> Option<Classification> {
        Classification::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl From<Classification> for Health {
    fn from(c: Classification) -> Health {
        match c {
            Classification::Ok => Health::Ok,
            Classification::Unknown => Health::Unknown,
            Classification::Minor => Health::Minor,
            Classification::Major => Health::Major,
            Classification::Critical => Health::Critical,
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Classification {
    type Err = UnknownHealth;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Classification::parse(s).ok_or_else(|| UnknownHealth(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_put_the_worst_first_then_sort_by_name() {
        let mut rows = [
            (Health::Ok, "b"),
            (Health::Critical, "z"),
            (Health::NoData, "a"),
            (Health::Ok, "a"),
        ];
        rows.sort_by(|x, y| worst_first(*x, *y));
        assert_eq!(
            rows,
            [
                (Health::Critical, "z"),
                (Health::Ok, "a"),
                (Health::Ok, "b"),
                (Health::NoData, "a"),
            ]
        );
    }

    #[test]
    fn severity_order_matches_design() {
        let names: Vec<&str> = Health::ALL.iter().rev().map(|h| h.as_str()).collect();
        assert_eq!(
            names,
            ["critical", "major", "minor", "degraded", "unknown", "ok", "no_data"]
        );
        let mut sorted = Health::ALL;
        sorted.sort();
        assert_eq!(sorted, Health::ALL);
    }

    #[test]
    fn parse_round_trips_and_refuses_unknown_names() {
        for h in Health::ALL {
            assert_eq!(h.as_str().parse::<Health>().unwrap(), h);
            assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{h}\""));
        }
        let err = "warning".parse::<Health>().unwrap_err();
        assert!(err.to_string().contains("expected one of"));
        assert_eq!(Classification::parse("degraded"), None);
        assert_eq!(Classification::parse("minor"), Some(Classification::Minor));
    }
}
