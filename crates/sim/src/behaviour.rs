//! What a virtual agent does when asked: which values its plugins return, how slow it
//! is, how often it fails or hangs, whether it refuses the server's key.
//!
//! Behaviours exist so a load test can put the server under the conditions real fleets
//! produce (slow hosts, flapping plugins, hosts that never answer) without real hosts.
//! They are plain data, serialisable, so a scenario can be a JSON file next to a
//! benchmark script. Nothing here touches the network.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use prophasis_protocol::api::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::SimError;

/// Where a plugin's `value` comes from, run after run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Values {
    /// The same value every run (`null` for a plugin that reports only a message).
    Constant(Option<f64>),
    /// `mean + amplitude * sin(2π t / period)` over wall time since the simulator
    /// started, with a phase that differs per agent so graphs of many hosts differ.
    Sine {
        mean: f64,
        amplitude: f64,
        period_s: f64,
    },
    /// Each run moves the previous value by a uniform step in `[-step, step]`, kept in
    /// `[min, max]`; the walk is per agent and per plugin.
    RandomWalk {
        start: f64,
        step: f64,
        min: f64,
        max: f64,
    },
    /// These values in order, one per run, starting again at the first after the last.
    Script(Vec<Option<f64>>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Constant(Some(1.0))
    }
}

/// How long a run takes before the agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    #[default]
    None,
    FixedMs(u64),
    /// Uniform in `[min, max]` milliseconds.
    RangeMs(u64, u64),
}

impl Latency {
    pub(crate) fn sample(self, rng: &mut impl rand::Rng) -> Option<Duration> {
        match self {
            Latency::None | Latency::FixedMs(0) => None,
            Latency::FixedMs(ms) => Some(Duration::from_millis(ms)),
            Latency::RangeMs(a, b) => {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let ms = rng.gen_range(lo..=hi);
                (ms > 0).then(|| Duration::from_millis(ms))
            }
        }
    }
}

/// A fraction of runs that fail with one error code, as a real agent reports a plugin
/// that timed out, crashed or printed garbage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ErrorRule {
    pub code: ErrorCode,
    /// 0.0 (never) to 1.0 (every run).
    pub rate: f64,
}

/// Everything one virtual agent does. Every field has a default, so a scenario file
/// names only what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Values of every plugin not named in `plugins`.
    pub values: Values,
    /// Values per plugin id, overriding `values`.
    pub plugins: BTreeMap<String, Values>,
    /// The `message` of every successful run.
    pub message: String,
    /// Applies to runs only: ping, list and install answer at once.
    pub latency: Latency,
    /// Applies to runs only, after the latency.
    pub error: Option<ErrorRule>,
    /// Fraction of runs that never answer (the connection stays open until the client
    /// gives up), after the latency.
    pub hang_rate: f64,
    /// Every request, after the TLS handshake, never answers: a host that accepts
    /// connections but is wedged.
    pub freeze: bool,
    /// Every request gets 401 whatever key it carries: the agent's key was rotated.
    pub reject_key: bool,
    /// Run plugins that were never installed instead of answering `plugin_not_found`,
    /// for load tests that do not exercise plugin distribution.
    pub run_uninstalled: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            values: Values::default(),
            plugins: BTreeMap::new(),
            message: "simulated".to_string(),
            latency: Latency::None,
            error: None,
            hang_rate: 0.0,
            freeze: false,
            reject_key: false,
            run_uninstalled: false,
        }
    }
}

impl Behaviour {
    /// The value source for one plugin.
    pub fn values_for(&self, plugin: &str) -> &Values {
        self.plugins.get(plugin).unwrap_or(&self.values)
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Behaviour(m));
        if !(0.0..=1.0).contains(&self.hang_rate) {
            return bad(format!("hang_rate {} is not in [0, 1]", self.hang_rate));
        }
        if let Some(e) = self.error {
            if !(0.0..=1.0).contains(&e.rate) {
                return bad(format!("error rate {} is not in [0, 1]", e.rate));
            }
        }
        for v in std::iter::once(&self.values).chain(self.plugins.values()) {
            match v {
                Values::Sine { period_s, .. } if !period_s.is_finite() || *period_s <= 0.0 => {
                    return bad(format!("sine period_s {period_s} must be positive"))
                }
                Values::RandomWalk { min, max, .. }
                    if min.is_nan() || max.is_nan() || min > max =>
                {
                    return bad(format!("random_walk min {min} is above max {max}"))
                }
                Values::Script(s) if s.is_empty() => {
                    return bad("a script of values must hold at least one value".into())
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A scenario file: a default behaviour and overrides for ranges of agents.
///
/// ```json
/// {
///   "default": {"values": {"sine": {"mean": 50, "amplitude": 20, "period_s": 300}},
///               "latency": {"range_ms": [1, 20]}},
///   "agents": {
///     "0":     {"plugins": {"com.example.disk": {"script": [10, 50, 95, null]}}},
///     "10-19": {"error": {"code": "plugin_timeout", "rate": 0.2}},
///     "20":    {"reject_key": true}
///   }
/// }
/// ```
///
/// An override is merged key by key onto the default, so `{"reject_key": true}` keeps
/// the default's values and latency. Ranges are inclusive; a later key wins where
/// ranges overlap (keys are taken in file order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scenario {
    pub default: Behaviour,
    pub overrides: Vec<(RangeInclusive<usize>, Behaviour)>,
}

impl Scenario {
    pub fn from_json(text: &str) -> Result<Scenario, SimError> {
        let err = |m: String| SimError::Scenario(m);
        let root: serde_json::Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let obj = root
            .as_object()
            .ok_or_else(|| err("the scenario must be a JSON object".into()))?;
        for key in obj.keys() {
            if key != "default" && key != "agents" {
                return Err(err(format!(
                    "unknown key `{key}`: a scenario has `default` and `agents`"
                )));
            }
        }
        let default_json = obj
            .get("default")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let default: Behaviour = serde_json::from_value(default_json.clone())
            .map_err(|e| err(format!("default: {e}")))?;
        default
            .validate()
            .map_err(|e| err(format!("default: {e}")))?;
        let mut overrides = Vec::new();
        if let Some(agents) = obj.get("agents") {
            let agents = agents
                .as_object()
                .ok_or_else(|| err("`agents` must be an object keyed by agent ranges".into()))?;
            for (key, over) in agents {
                let range = parse_range(key).ok_or_else(|| {
                    err(format!(
                        "agents key `{key}` is not an index (`3`) or an inclusive range (`3-7`)"
                    ))
                })?;
                let mut merged = default_json.clone();
                let (Some(m), Some(o)) = (merged.as_object_mut(), over.as_object()) else {
                    return Err(err(format!("agents `{key}` must be an object")));
                };
                for (k, v) in o {
                    m.insert(k.clone(), v.clone());
                }
                let b: Behaviour = serde_json::from_value(merged)
                    .map_err(|e| err(format!("agents `{key}`: {e}")))?;
                b.validate()
                    .map_err(|e| err(format!("agents `{key}`: {e}")))?;
                overrides.push((range, b));
            }
        }
        Ok(Scenario { default, overrides })
    }

    /// The behaviour of agent `index`.
    pub fn behaviour_for(&self, index: usize) -> &Behaviour {
        self.overrides
            .iter()
            .rev()
            .find(|(r, _)| r.contains(&index))
            .map(|(_, b)| b)
            .unwrap_or(&self.default)
    }
}

fn parse_range(key: &str) -> Option<RangeInclusive<usize>> {
    match key.split_once('-') {
        None => key.trim().parse().ok().map(|i| i..=i),
        Some((a, b)) => {
            let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some(a..=b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_overrides_merge_onto_default() {
        let s = Scenario::from_json(
            r#"{"default": {"values": {"constant": 7}, "latency": {"fixed_ms": 3}},
                "agents": {"2-4": {"reject_key": true},
                           "3": {"plugins": {"a.b": {"script": [1, null]}}}}}"#,
        )
        .unwrap();
        assert_eq!(s.behaviour_for(0).values, Values::Constant(Some(7.0)));
        assert!(!s.behaviour_for(0).reject_key);
        let b2 = s.behaviour_for(2);
        assert!(b2.reject_key);
        assert_eq!(b2.latency, Latency::FixedMs(3));
        let b3 = s.behaviour_for(3);
        assert!(
            !b3.reject_key,
            "override of 3 merges onto default, not onto 2-4"
        );
        assert_eq!(b3.values_for("a.b"), &Values::Script(vec![Some(1.0), None]));
        assert_eq!(b3.values_for("other"), &Values::Constant(Some(7.0)));
        assert!(!s.behaviour_for(5).reject_key);
    }

    #[test]
    fn scenario_errors_name_the_problem() {
        let e = Scenario::from_json(r#"{"agents": {"x": {}}}"#).unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
        let e = Scenario::from_json(r#"{"default": {"hang_rate": 2}}"#).unwrap_err();
        assert!(e.to_string().contains("hang_rate"), "{e}");
        let e = Scenario::from_json(r#"{"default": {"laggy": true}}"#).unwrap_err();
        assert!(e.to_string().contains("laggy"), "{e}");
        let e = Scenario::from_json(r#"{"default": {"values": {"script": []}}}"#).unwrap_err();
        assert!(e.to_string().contains("script"), "{e}");
    }

    #[test]
    fn latency_samples_stay_in_range() {
        let mut rng = rand::thread_rng();
        assert_eq!(Latency::None.sample(&mut rng), None);
        assert_eq!(
            Latency::FixedMs(5).sample(&mut rng),
            Some(Duration::from_millis(5))
        );
        for _ in 0..200 {
            let d = Latency::RangeMs(10, 3).sample(&mut rng).unwrap();
            assert!((3..=10).contains(&(d.as_millis() as u64)));
        }
    }
}
