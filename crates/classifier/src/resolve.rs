//! Which classifier applies to a result: the plugin's own, or an override.
//!
//! Why this exists: the same plugin may need different thresholds on different machines
//! (a VM host tolerates more memory use), so users can override the classifier per check,
//! per host group and per host. The rule is pure and easy to get subtly wrong, so it lives
//! here as a function with table-driven tests rather than inside the server's I/O code.
//!
//! Precedence: plugin default < check < host group < host; the most specific matching
//! override wins. When several overrides match at the same level (the host is in two host
//! groups that both have one, or duplicates exist) the one with the **lowest override id**
//! wins, i.e. the one created first.

use prophasis_model::{
    CheckId, ClassifierOverride, HostGroupId, HostId, OverrideId, OverrideTarget, Plugin,
};

/// The classifier to run for one (host, plugin, check) and how many results it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub code: &'a str,
    pub n_historical: u32,
    /// `None` when the plugin's own classifier applies.
    pub override_id: Option<OverrideId>,
    /// What the chosen override applies to; `None` for the plugin default.
    pub target: Option<OverrideTarget>,
}

/// Picks the classifier for `plugin` when `check_id` (if any) ran it on `host_id`.
/// `host_groups` must list every group that contains the host, directly or through nested
/// groups (the caller expands them). Overrides for other plugins are ignored.
pub fn resolve<'a>(
    plugin: &'a Plugin,
    overrides: &'a [ClassifierOverride],
    check_id: Option<CheckId>,
    host_id: HostId,
    host_groups: &[HostGroupId],
) -> Resolved<'a> {
    let applies = |o: &ClassifierOverride| {
        o.plugin_id == plugin.id
            && match o.target {
                OverrideTarget::Check(c) => Some(c) == check_id,
                OverrideTarget::HostGroup(g) => host_groups.contains(&g),
                OverrideTarget::Host(h) => h == host_id,
            }
    };
    let best = overrides
        .iter()
        .filter(|o| applies(o))
        // Highest precedence first, then lowest id.
        .min_by_key(|o| (std::cmp::Reverse(o.target.precedence()), o.id));
    match best {
        Some(o) => Resolved {
            code: &o.code,
            n_historical: o.n_historical,
            override_id: Some(o.id),
            target: Some(o.target),
        },
        None => Resolved {
            code: &plugin.classifier,
            n_historical: plugin.n_historical,
            override_id: None,
            target: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OverrideTarget::*;

    fn plugin() -> Plugin {
        Plugin {
            id: "p.cpu".into(),
            name: "CPU".into(),
            description: String::new(),
            version: 1.0,
            n_historical: 5,
            classifier: "default".into(),
            view: "value_graph".into(),
            view_source: None,
            manifest: serde_json::Value::Null,
        }
    }

    fn ov(id: i64, target: OverrideTarget, n: u32) -> ClassifierOverride {
        ClassifierOverride {
            id,
            plugin_id: "p.cpu".into(),
            target,
            n_historical: n,
            code: format!("override {id}"),
        }
    }

    #[test]
    fn most_specific_override_wins() {
        let mut other_plugin = ov(99, Host(1), 9);
        other_plugin.plugin_id = "p.other".into();
        let all = vec![
            ov(10, Check(7), 2),
            ov(11, HostGroup(20), 3),
            ov(12, HostGroup(21), 4),
            ov(13, Host(1), 6),
            ov(14, HostGroup(22), 7),
            ov(8, HostGroup(22), 8),
            other_plugin,
        ];
        // (description, overrides, check, host, groups) -> (code, n)
        type Case<'a> = (
            &'a str,
            Vec<ClassifierOverride>,
            Option<i64>,
            i64,
            Vec<i64>,
            &'a str,
            u32,
        );
        let cases: Vec<Case> = vec![
            ("no overrides", vec![], Some(7), 1, vec![20], "default", 5),
            (
                "nothing matches",
                all.clone(),
                Some(8),
                2,
                vec![30],
                "default",
                5,
            ),
            (
                "check only",
                all.clone(),
                Some(7),
                2,
                vec![],
                "override 10",
                2,
            ),
            (
                "ad-hoc run ignores check overrides",
                all.clone(),
                None,
                2,
                vec![],
                "default",
                5,
            ),
            (
                "group beats check",
                all.clone(),
                Some(7),
                2,
                vec![20],
                "override 11",
                3,
            ),
            (
                "host beats group and check",
                all.clone(),
                Some(7),
                1,
                vec![20, 21],
                "override 13",
                6,
            ),
            (
                "two groups: lowest id",
                all.clone(),
                None,
                2,
                vec![21, 20],
                "override 11",
                3,
            ),
            (
                "same group twice: lowest id",
                all.clone(),
                None,
                2,
                vec![22],
                "override 8",
                8,
            ),
            (
                "other plugin's host override ignored",
                vec![all[6].clone()],
                None,
                1,
                vec![],
                "default",
                5,
            ),
            (
                "nested group passed in counts",
                all.clone(),
                None,
                3,
                vec![99, 21],
                "override 12",
                4,
            ),
        ];
        let p = plugin();
        for (name, overrides, check, host, groups, code, n) in cases {
            let r = resolve(&p, &overrides, check, host, &groups);
            assert_eq!((r.code, r.n_historical), (code, n), "{name}");
            assert_eq!(r.override_id.is_none(), code == "default", "{name}");
        }
    }
}
