//! Which alerts a transition fires: a pure function of the alerts, the transition and the
//! topology (for host groups, expanded recursively), so every rule can be checked by a
//! table of cases without a database or a clock.
//!
//! A plugin or check restriction applies to the transition's cause: the result that made
//! the health change. A transition without a cause (a configuration change) matches only
//! unrestricted alerts, because an unknown cause cannot be shown to be in the restriction.

use prophasis_model::rules::Topology;
use prophasis_model::transition::{Entity, Transition};
use prophasis_model::Alert;

/// Whether this alert fires for this transition.
pub fn matches(alert: &Alert, t: &Transition, topology: &Topology) -> bool {
    alert.enabled
        && t.old != t.new
        && alert.from_states.contains(&t.old)
        && alert.to_states.contains(&t.new)
        && in_scope(alert, t.entity, topology)
        && restriction_allows(alert, t)
}

/// The alerts this transition fires, each once, in the given order.
pub fn matching<'a>(alerts: &'a [Alert], t: &Transition, topology: &Topology) -> Vec<&'a Alert> {
    alerts.iter().filter(|a| matches(a, t, topology)).collect()
}

/// Whether the alert watches this entity.
pub fn in_scope(alert: &Alert, entity: Entity, topology: &Topology) -> bool {
    let s = &alert.scope;
    match entity {
        Entity::Host(h) => {
            s.all_hosts
                || s.hosts.contains(&h)
                || s.host_groups
                    .iter()
                    .any(|&g| topology.group_hosts(g).any(|m| m == h))
        }
        Entity::Service(id) => s.all_services || s.services.contains(&id),
    }
}

fn restriction_allows(alert: &Alert, t: &Transition) -> bool {
    if alert.plugins.is_empty() && alert.checks.is_empty() {
        return true;
    }
    let Some(cause) = &t.cause else {
        return false;
    };
    (alert.plugins.is_empty() || alert.plugins.contains(&cause.plugin_id))
        && (alert.checks.is_empty() || cause.check_id.is_some_and(|c| alert.checks.contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prophasis_model::transition::Cause;
    use prophasis_model::*;

    fn topology() -> Topology {
        // Group 1 holds host 1 and group 2; group 2 holds host 2. Host 3 is in no group.
        let groups = [
            HostGroup {
                id: 1,
                name: "outer".into(),
                description: String::new(),
                member_hosts: vec![1],
                member_groups: vec![2],
            },
            HostGroup {
                id: 2,
                name: "inner".into(),
                description: String::new(),
                member_hosts: vec![2],
                member_groups: vec![],
            },
        ];
        Topology::new(&groups, &[], &[])
    }

    fn alert() -> Alert {
        Alert {
            id: 1,
            name: "a".into(),
            from_states: vec![Health::Ok],
            to_states: vec![Health::Critical, Health::Major],
            scope: AlertScope::default(),
            plugins: vec![],
            checks: vec![],
            module: "webhook".into(),
            options: serde_json::json!({}),
            enabled: true,
        }
    }

    fn t(
        entity: Entity,
        old: Health,
        new: Health,
        cause: Option<(&str, Option<i64>)>,
    ) -> Transition {
        Transition {
            entity,
            old,
            new,
            at: 0,
            cause: cause.map(|(p, c)| Cause {
                host_id: 1,
                plugin_id: p.into(),
                check_id: c,
                value: Some(1.0),
                message: "m".into(),
                result_type: ResultType::Plugin,
                classification: Classification::Critical,
            }),
        }
    }

    use Entity::{Host, Service};
    use Health::*;

    #[test]
    fn from_and_to_sets() {
        let mut a = alert();
        a.scope.all_hosts = true;
        let cases = [
            (Ok, Critical, true),
            (Ok, Major, true),
            (Ok, Minor, false),
            (Degraded, Critical, false),
            (Critical, Ok, false),
            (NoData, Critical, false),
            (Ok, Ok, false),
        ];
        for (old, new, want) in cases {
            assert_eq!(
                matches(&a, &t(Host(1), old, new, None), &topology()),
                want,
                "{old} -> {new}"
            );
        }
        let mut every = a.clone();
        every.from_states = Health::ALL.to_vec();
        every.to_states = Health::ALL.to_vec();
        for old in Health::ALL {
            for new in Health::ALL {
                assert_eq!(
                    matches(&every, &t(Host(1), old, new, None), &topology()),
                    old != new
                );
            }
        }
    }

    #[test]
    fn scopes() {
        let scope = |f: fn(&mut AlertScope)| {
            let mut a = alert();
            f(&mut a.scope);
            a
        };
        let cases: Vec<(&str, Alert, Entity, bool)> = vec![
            (
                "all hosts, a host",
                scope(|s| s.all_hosts = true),
                Host(3),
                true,
            ),
            (
                "all hosts, a service",
                scope(|s| s.all_hosts = true),
                Service(1),
                false,
            ),
            (
                "all services, a service",
                scope(|s| s.all_services = true),
                Service(9),
                true,
            ),
            (
                "all services, a host",
                scope(|s| s.all_services = true),
                Host(1),
                false,
            ),
            ("listed host", scope(|s| s.hosts = vec![3]), Host(3), true),
            ("other host", scope(|s| s.hosts = vec![3]), Host(2), false),
            (
                "group, direct member",
                scope(|s| s.host_groups = vec![1]),
                Host(1),
                true,
            ),
            (
                "group, nested member",
                scope(|s| s.host_groups = vec![1]),
                Host(2),
                true,
            ),
            (
                "inner group, outer member",
                scope(|s| s.host_groups = vec![2]),
                Host(1),
                false,
            ),
            (
                "group, outsider",
                scope(|s| s.host_groups = vec![1]),
                Host(3),
                false,
            ),
            (
                "unknown group",
                scope(|s| s.host_groups = vec![42]),
                Host(1),
                false,
            ),
            (
                "listed service",
                scope(|s| s.services = vec![4]),
                Service(4),
                true,
            ),
            (
                "other service",
                scope(|s| s.services = vec![4]),
                Service(5),
                false,
            ),
            (
                "service id is not a host id",
                scope(|s| s.services = vec![1]),
                Host(1),
                false,
            ),
            (
                "host id is not a service id",
                scope(|s| s.hosts = vec![1]),
                Service(1),
                false,
            ),
            ("empty scope", alert(), Host(1), false),
        ];
        for (name, a, entity, want) in cases {
            let tr = t(entity, Ok, Critical, Some(("cpu", Some(1))));
            assert_eq!(matches(&a, &tr, &topology()), want, "{name}");
        }
    }

    #[test]
    fn plugin_and_check_restrictions_apply_to_the_cause() {
        let restricted = |plugins: &[&str], checks: &[i64]| {
            let mut a = alert();
            a.scope.all_hosts = true;
            a.scope.all_services = true;
            a.plugins = plugins.iter().map(|p| p.to_string()).collect();
            a.checks = checks.to_vec();
            a
        };
        let cases: Vec<(&str, Alert, Transition, bool)> = vec![
            (
                "none",
                restricted(&[], &[]),
                t(Host(1), Ok, Critical, None),
                true,
            ),
            (
                "plugin, same",
                restricted(&["cpu"], &[]),
                t(Host(1), Ok, Critical, Some(("cpu", None))),
                true,
            ),
            (
                "plugin, other",
                restricted(&["cpu"], &[]),
                t(Host(1), Ok, Critical, Some(("disk", None))),
                false,
            ),
            (
                "plugin, no cause",
                restricted(&["cpu"], &[]),
                t(Host(1), Ok, Critical, None),
                false,
            ),
            (
                "plugin, service via cause",
                restricted(&["cpu"], &[]),
                t(Service(1), Ok, Critical, Some(("cpu", None))),
                true,
            ),
            (
                "plugin, service other cause",
                restricted(&["cpu"], &[]),
                t(Service(1), Ok, Critical, Some(("mem", None))),
                false,
            ),
            (
                "check, same",
                restricted(&[], &[7]),
                t(Host(1), Ok, Critical, Some(("cpu", Some(7)))),
                true,
            ),
            (
                "check, other",
                restricted(&[], &[7]),
                t(Host(1), Ok, Critical, Some(("cpu", Some(8)))),
                false,
            ),
            (
                "check, cause without check",
                restricted(&[], &[7]),
                t(Host(1), Ok, Critical, Some(("cpu", None))),
                false,
            ),
            (
                "both, both match",
                restricted(&["cpu", "mem"], &[7, 9]),
                t(Host(1), Ok, Critical, Some(("mem", Some(9)))),
                true,
            ),
            (
                "both, plugin misses",
                restricted(&["cpu"], &[7]),
                t(Host(1), Ok, Critical, Some(("mem", Some(7)))),
                false,
            ),
            (
                "both, check misses",
                restricted(&["cpu"], &[7]),
                t(Host(1), Ok, Critical, Some(("cpu", Some(9)))),
                false,
            ),
        ];
        for (name, a, tr, want) in cases {
            assert_eq!(matches(&a, &tr, &topology()), want, "{name}");
        }
    }

    #[test]
    fn several_alerts_fire_once_each_and_disabled_ones_never() {
        let mut a = alert();
        a.scope.all_hosts = true;
        let mut b = a.clone();
        b.id = 2;
        b.scope.hosts = vec![1];
        let mut off = a.clone();
        off.id = 3;
        off.enabled = false;
        let alerts = vec![a, b, off];
        let fired = matching(&alerts, &t(Host(1), Ok, Critical, None), &topology());
        assert_eq!(fired.iter().map(|a| a.id).collect::<Vec<_>>(), vec![1, 2]);
    }
}
