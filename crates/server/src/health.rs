//! Current health of every host, host group and service, kept in memory and updated
//! incrementally as results arrive, and the transitions those updates cause.
//!
//! The rules themselves are `prophasis_model::rules`; this module only decides *what* to
//! re-evaluate: a result can change only its host's health, and a host's change only the
//! groups that hold it and the services that depend on it. Every change of a host's or a
//! service's health becomes a [`Transition`] for alerting, which the server passes on
//! through a channel: this module knows nothing of alerts.

use std::collections::HashMap;

use prophasis_model::rules::{HealthSnapshot, Latest, Topology};
pub use prophasis_model::transition::{Cause, Entity, Transition};
use prophasis_model::{CheckResult, Health, HostId, Millis, ServiceId};

#[derive(Debug, Default)]
pub struct HealthState {
    topology: Topology,
    latest: Latest,
    snapshot: HealthSnapshot,
}

impl HealthState {
    /// Evaluates everything from the latest classification of each (host, plugin).
    pub fn new(topology: Topology, hosts: &[HostId], latest: Latest) -> Self {
        let snapshot = topology.evaluate(hosts, &latest);
        HealthState {
            topology,
            latest,
            snapshot,
        }
    }

    pub fn snapshot(&self) -> &HealthSnapshot {
        &self.snapshot
    }

    pub fn host(&self, host: HostId) -> Health {
        self.snapshot
            .hosts
            .get(&host)
            .copied()
            .unwrap_or(Health::NoData)
    }

    pub fn service(&self, service: ServiceId) -> Health {
        self.snapshot
            .services
            .get(&service)
            .copied()
            .unwrap_or(Health::NoData)
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Takes one classified result; returns the host and service transitions it caused.
    pub fn apply(&mut self, result: &CheckResult) -> Vec<Transition> {
        self.latest
            .entry(result.host_id)
            .or_default()
            .insert(result.plugin_id.clone(), result.classification);
        let host = result.host_id;
        let old = self.host(host);
        let new = self.topology.host_health(host, &self.latest);
        if old == new {
            return Vec::new();
        }
        self.snapshot.hosts.insert(host, new);
        let cause = Cause {
            host_id: host,
            plugin_id: result.plugin_id.clone(),
            check_id: result.check_id,
            value: result.value,
            message: result.message.clone(),
            result_type: result.result_type,
            classification: result.classification,
        };
        let mut transitions = vec![Transition {
            entity: Entity::Host(host),
            old,
            new,
            at: result.timestamp,
            cause: Some(cause.clone()),
        }];
        for g in self.topology.groups_containing(host) {
            let h = self.topology.group_health(g, &self.snapshot.hosts);
            self.snapshot.groups.insert(g, h);
        }
        for s in self.topology.services_affected_by(host) {
            let old = self.service(s);
            let new = self.topology.service_health(s, &self.snapshot.hosts);
            if old != new {
                self.snapshot.services.insert(s, new);
                transitions.push(Transition {
                    entity: Entity::Service(s),
                    old,
                    new,
                    at: result.timestamp,
                    cause: Some(cause.clone()),
                });
            }
        }
        transitions
    }

    /// The configuration changed (hosts, groups, checks or services): re-evaluates
    /// everything and reports what changed as transitions without a cause.
    pub fn reconfigure(
        &mut self,
        topology: Topology,
        hosts: &[HostId],
        now: Millis,
    ) -> Vec<Transition> {
        self.latest.retain(|h, _| hosts.contains(h));
        let snapshot = topology.evaluate(hosts, &self.latest);
        let mut transitions = Vec::new();
        let diff =
            |old: &HashMap<i64, Health>, new: &HashMap<i64, Health>, make: fn(i64) -> Entity| {
                let mut out: Vec<Transition> = new
                    .iter()
                    .filter_map(|(&id, &h)| {
                        let was = old.get(&id).copied().unwrap_or(Health::NoData);
                        (was != h).then_some(Transition {
                            entity: make(id),
                            old: was,
                            new: h,
                            at: now,
                            cause: None,
                        })
                    })
                    .collect();
                out.sort_by_key(|t| match t.entity {
                    Entity::Host(id) | Entity::Service(id) => id,
                });
                out
            };
        transitions.extend(diff(&self.snapshot.hosts, &snapshot.hosts, Entity::Host));
        transitions.extend(diff(
            &self.snapshot.services,
            &snapshot.services,
            Entity::Service,
        ));
        self.topology = topology;
        self.snapshot = snapshot;
        transitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prophasis_model::{
        Check, Classification, HostGroup, Member, RedundancyGroup, ResultType, Service,
    };

    fn result(host: HostId, plugin: &str, c: Classification, t: Millis) -> CheckResult {
        CheckResult {
            host_id: host,
            plugin_id: plugin.into(),
            check_id: Some(1),
            timestamp: t,
            value: Some(1.0),
            message: "m".into(),
            result_type: ResultType::Plugin,
            classification: c,
        }
    }

    fn setup() -> HealthState {
        let groups = [HostGroup {
            id: 10,
            name: "web".into(),
            member_hosts: vec![1, 2],
            ..Default::default()
        }];
        let checks = [Check {
            id: 1,
            name: "c".into(),
            host_groups: vec![10],
            hosts: vec![3],
            plugins: vec!["cpu".into()],
            ..Default::default()
        }];
        let services = [Service {
            id: 100,
            name: "shop".into(),
            dependencies: vec![Member::Host(3)],
            redundancy_groups: vec![RedundancyGroup {
                name: "web".into(),
                members: vec![Member::Host(1), Member::Host(2)],
            }],
            ..Default::default()
        }];
        HealthState::new(
            Topology::new(&groups, &checks, &services),
            &[1, 2, 3],
            Latest::new(),
        )
    }

    #[test]
    fn results_cause_host_and_service_transitions() {
        let mut s = setup();
        assert_eq!(s.host(1), Health::NoData);
        let t = s.apply(&result(1, "cpu", Classification::Ok, 1));
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(
            (t[0].entity, t[0].old, t[0].new),
            (Entity::Host(1), Health::NoData, Health::Ok)
        );
        assert_eq!((t[1].entity, t[1].new), (Entity::Service(100), Health::Ok));
        assert_eq!(t[1].cause.as_ref().unwrap().plugin_id, "cpu");

        // Same health again: no transition.
        assert!(s.apply(&result(1, "cpu", Classification::Ok, 2)).is_empty());

        // Redundant web server fails: host critical, service only degraded.
        let t = s.apply(&result(2, "cpu", Classification::Critical, 3));
        assert_eq!((t[0].entity, t[0].new), (Entity::Host(2), Health::Critical));
        assert_eq!(
            (t[1].entity, t[1].old, t[1].new),
            (Entity::Service(100), Health::Ok, Health::Degraded)
        );
        assert_eq!(s.snapshot().groups[&10], Health::Critical);
        // The dependency reports ok: its host changes, the service does not.
        let t = s.apply(&result(3, "cpu", Classification::Ok, 4));
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(s.service(100), Health::Degraded);
        // The second web server fails too: service becomes critical.
        let t = s.apply(&result(1, "cpu", Classification::Critical, 5));
        assert_eq!(t.last().unwrap().new, Health::Critical);
        assert_eq!(t.last().unwrap().old, Health::Degraded);
    }

    #[test]
    fn incremental_matches_full_evaluation() {
        let mut s = setup();
        let seq = [
            (1, Classification::Ok),
            (2, Classification::Minor),
            (3, Classification::Major),
            (1, Classification::Critical),
            (2, Classification::Ok),
            (3, Classification::Ok),
        ];
        for (i, (h, c)) in seq.into_iter().enumerate() {
            s.apply(&result(h, "cpu", c, i as i64));
            let full = s.topology().evaluate(&[1, 2, 3], &s.latest);
            assert_eq!(&full, s.snapshot(), "after step {i}");
        }
    }

    #[test]
    fn reconfigure_reports_changes_without_cause() {
        let mut s = setup();
        s.apply(&result(3, "cpu", Classification::Critical, 1));
        // Host 3 leaves every check: its plugin is no longer assigned.
        let t = s.reconfigure(Topology::new(&[], &[], &[]), &[1, 2, 3], 99);
        assert!(t
            .iter()
            .any(|t| t.entity == Entity::Host(3) && t.new == Health::NoData && t.cause.is_none()));
    }
}
