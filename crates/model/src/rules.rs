//! The health rules of DESIGN.md, as pure functions over a [`Topology`] (who is a member of
//! what, which plugins run where) and the latest classification of each (host, plugin).
//!
//! - Host: the most severe latest classification among the plugins assigned to it, directly
//!   or through any host group (each plugin counted once); `no_data` without results.
//! - Host group: the most severe health among its member hosts, recursively.
//! - Redundancy group: the least severe health among its components (a host, or a host
//!   group that counts as `degraded` when it is not ok but holds an ok host); if that is
//!   `ok` while some component is neither `ok` nor `no_data`, `degraded`. Components
//!   without data (`no_data`) take no part in the "least severe" choice unless all of them
//!   are without data: a host that has never reported must not hide a failure.
//! - Service: the most severe among its dependencies, redundancy groups and nested
//!   services.
//!
//! Membership may contain cycles (group A holds B holds A; service X depends on Y depends
//! on X): every walk keeps a visited set and terminates; a cycle just means the entities in
//! it see each other's members.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::entities::*;
use crate::health::{Classification, Health};

/// Latest classification per host, per plugin.
pub type Latest = HashMap<HostId, HashMap<PluginId, Classification>>;

/// The configuration the health rules need, with the expansions precomputed once so that
/// evaluating health for thousands of hosts is a matter of lookups.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// All hosts of each group, recursively.
    group_hosts: HashMap<HostGroupId, BTreeSet<HostId>>,
    /// Plugins assigned to each host, deduplicated.
    host_plugins: HashMap<HostId, BTreeSet<PluginId>>,
    services: HashMap<ServiceId, Service>,
    /// For each service, itself and every service reachable through nesting.
    service_closure: HashMap<ServiceId, Vec<ServiceId>>,
}

/// Health of every host, group and service at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthSnapshot {
    pub hosts: HashMap<HostId, Health>,
    pub groups: HashMap<HostGroupId, Health>,
    pub services: HashMap<ServiceId, Health>,
}

/// The most severe of some healths; `no_data` when there are none.
pub fn most_severe(healths: impl IntoIterator<Item = Health>) -> Health {
    healths.into_iter().max().unwrap_or(Health::NoData)
}

/// Redundancy rule over component healths (already adjusted for host groups).
pub fn redundancy_health(components: impl IntoIterator<Item = Health>) -> Health {
    let mut least: Option<Health> = None;
    let mut any_failing = false;
    for h in components {
        if h == Health::NoData {
            continue;
        }
        any_failing |= h != Health::Ok;
        least = Some(least.map_or(h, |l| l.min(h)));
    }
    match least {
        None => Health::NoData,
        Some(Health::Ok) if any_failing => Health::Degraded,
        Some(l) => l,
    }
}

impl Topology {
    pub fn new(groups: &[HostGroup], checks: &[Check], services: &[Service]) -> Topology {
        let by_id: HashMap<HostGroupId, &HostGroup> = groups.iter().map(|g| (g.id, g)).collect();
        let group_hosts: HashMap<HostGroupId, BTreeSet<HostId>> = groups
            .iter()
            .map(|g| (g.id, expand(&by_id, g.id)))
            .collect();

        let mut host_plugins: HashMap<HostId, BTreeSet<PluginId>> = HashMap::new();
        for check in checks {
            let mut hosts: BTreeSet<HostId> = check.hosts.iter().copied().collect();
            for g in &check.host_groups {
                if let Some(members) = group_hosts.get(g) {
                    hosts.extend(members);
                }
            }
            for h in hosts {
                host_plugins
                    .entry(h)
                    .or_default()
                    .extend(check.plugins.iter().cloned());
            }
        }

        let services: HashMap<ServiceId, Service> =
            services.iter().map(|s| (s.id, s.clone())).collect();
        let service_closure = services
            .keys()
            .map(|&id| (id, reachable_services(&services, id)))
            .collect();

        Topology {
            group_hosts,
            host_plugins,
            services,
            service_closure,
        }
    }

    /// Every host of a group, through nested groups; empty for an unknown group.
    pub fn group_hosts(&self, group: HostGroupId) -> impl Iterator<Item = HostId> + '_ {
        self.group_hosts.get(&group).into_iter().flatten().copied()
    }

    /// The plugins assigned to a host, each once.
    pub fn host_plugins(&self, host: HostId) -> impl Iterator<Item = &PluginId> + '_ {
        self.host_plugins.get(&host).into_iter().flatten()
    }

    /// Groups whose health depends on this host (for incremental updates).
    pub fn groups_containing(&self, host: HostId) -> Vec<HostGroupId> {
        let mut gs: Vec<_> = self
            .group_hosts
            .iter()
            .filter(|(_, hs)| hs.contains(&host))
            .map(|(&g, _)| g)
            .collect();
        gs.sort_unstable();
        gs
    }

    /// Services whose health depends on this host, directly, through a group or through a
    /// nested service (for incremental updates).
    pub fn services_affected_by(&self, host: HostId) -> Vec<ServiceId> {
        let groups: HashSet<HostGroupId> = self.groups_containing(host).into_iter().collect();
        let touches = |m: &Member| match *m {
            Member::Host(h) => h == host,
            Member::HostGroup(g) => groups.contains(&g),
        };
        let direct: HashSet<ServiceId> = self
            .services
            .values()
            .filter(|s| {
                s.dependencies.iter().any(touches)
                    || s.redundancy_groups
                        .iter()
                        .any(|rg| rg.members.iter().any(touches))
            })
            .map(|s| s.id)
            .collect();
        let mut out: Vec<ServiceId> = self
            .service_closure
            .iter()
            .filter(|(_, reach)| reach.iter().any(|s| direct.contains(s)))
            .map(|(&s, _)| s)
            .collect();
        out.sort_unstable();
        out
    }

    /// Host health from the latest classifications.
    pub fn host_health(&self, host: HostId, latest: &Latest) -> Health {
        let Some(results) = latest.get(&host) else {
            return Health::NoData;
        };
        most_severe(
            self.host_plugins(host)
                .filter_map(|p| results.get(p).map(|&c| Health::from(c))),
        )
    }

    /// Group health given the health of every host.
    pub fn group_health(&self, group: HostGroupId, hosts: &HashMap<HostId, Health>) -> Health {
        most_severe(self.group_hosts(group).map(|h| health_of(hosts, h)))
    }

    /// The health a member counts with inside a redundancy group.
    fn component_health(&self, m: Member, hosts: &HashMap<HostId, Health>) -> Health {
        match m {
            Member::Host(h) => health_of(hosts, h),
            Member::HostGroup(g) => {
                let gh = self.group_health(g, hosts);
                let holds_ok = self
                    .group_hosts(g)
                    .any(|h| health_of(hosts, h) == Health::Ok);
                if gh != Health::Ok && holds_ok {
                    Health::Degraded
                } else {
                    gh
                }
            }
        }
    }

    fn member_health(&self, m: Member, hosts: &HashMap<HostId, Health>) -> Health {
        match m {
            Member::Host(h) => health_of(hosts, h),
            Member::HostGroup(g) => self.group_health(g, hosts),
        }
    }

    pub fn redundancy_group_health(
        &self,
        rg: &RedundancyGroup,
        hosts: &HashMap<HostId, Health>,
    ) -> Health {
        redundancy_health(rg.members.iter().map(|&m| self.component_health(m, hosts)))
    }

    /// Service health given the health of every host; nested services (cycles included)
    /// contribute their own dependencies and redundancy groups.
    pub fn service_health(&self, service: ServiceId, hosts: &HashMap<HostId, Health>) -> Health {
        let Some(reach) = self.service_closure.get(&service) else {
            return Health::NoData;
        };
        most_severe(
            reach
                .iter()
                .filter_map(|id| self.services.get(id))
                .flat_map(|s| {
                    s.dependencies
                        .iter()
                        .map(|&m| self.member_health(m, hosts))
                        .chain(
                            s.redundancy_groups
                                .iter()
                                .map(|rg| self.redundancy_group_health(rg, hosts)),
                        )
                }),
        )
    }

    /// Health of everything, for the given hosts.
    pub fn evaluate(&self, hosts: &[HostId], latest: &Latest) -> HealthSnapshot {
        let host_health: HashMap<HostId, Health> = hosts
            .iter()
            .map(|&h| (h, self.host_health(h, latest)))
            .collect();
        let groups = self
            .group_hosts
            .keys()
            .map(|&g| (g, self.group_health(g, &host_health)))
            .collect();
        let services = self
            .services
            .keys()
            .map(|&s| (s, self.service_health(s, &host_health)))
            .collect();
        HealthSnapshot {
            hosts: host_health,
            groups,
            services,
        }
    }
}

fn health_of(hosts: &HashMap<HostId, Health>, h: HostId) -> Health {
    hosts.get(&h).copied().unwrap_or(Health::NoData)
}

fn expand(by_id: &HashMap<HostGroupId, &HostGroup>, root: HostGroupId) -> BTreeSet<HostId> {
    let mut hosts = BTreeSet::new();
    let mut seen = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(g) = stack.pop() {
        let Some(group) = by_id.get(&g) else { continue };
        hosts.extend(group.member_hosts.iter().copied());
        for &child in &group.member_groups {
            if seen.insert(child) {
                stack.push(child);
            }
        }
    }
    hosts
}

fn reachable_services(services: &HashMap<ServiceId, Service>, root: ServiceId) -> Vec<ServiceId> {
    let mut seen = vec![root];
    let mut stack = vec![root];
    while let Some(s) = stack.pop() {
        let Some(service) = services.get(&s) else {
            continue;
        };
        for &child in &service.services {
            if !seen.contains(&child) {
                seen.push(child);
                stack.push(child);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use Classification as C;
    use Health as H;

    fn group(id: HostGroupId, hosts: &[HostId], groups: &[HostGroupId]) -> HostGroup {
        HostGroup {
            id,
            name: format!("g{id}"),
            description: String::new(),
            member_hosts: hosts.to_vec(),
            member_groups: groups.to_vec(),
        }
    }

    fn check(hosts: &[HostId], groups: &[HostGroupId], plugins: &[&str]) -> Check {
        Check {
            name: "c".into(),
            hosts: hosts.to_vec(),
            host_groups: groups.to_vec(),
            plugins: plugins.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    fn latest(entries: &[(HostId, &str, C)]) -> Latest {
        let mut l = Latest::new();
        for &(h, p, c) in entries {
            l.entry(h).or_default().insert(p.to_string(), c);
        }
        l
    }

    fn hosts(entries: &[(HostId, H)]) -> HashMap<HostId, H> {
        entries.iter().copied().collect()
    }

    #[test]
    fn host_health_is_most_severe_assigned_plugin() {
        let t = Topology::new(&[], &[check(&[1], &[], &["cpu", "mem"])], &[]);
        let l = latest(&[
            (1, "cpu", C::Ok),
            (1, "mem", C::Major),
            (1, "unassigned", C::Critical),
        ]);
        assert_eq!(t.host_health(1, &l), H::Major);
        assert_eq!(
            t.host_health(2, &l),
            H::NoData,
            "a host with no results has no data"
        );
    }

    #[test]
    fn no_data_everywhere() {
        let rg = RedundancyGroup {
            name: "lb".into(),
            members: vec![Member::Host(1), Member::HostGroup(10)],
        };
        let svc = Service {
            id: 5,
            name: "s".into(),
            dependencies: vec![Member::Host(1)],
            redundancy_groups: vec![rg],
            ..Default::default()
        };
        let t = Topology::new(
            &[group(10, &[2], &[])],
            &[check(&[1, 2], &[], &["cpu"])],
            &[svc],
        );
        let snap = t.evaluate(&[1, 2], &Latest::new());
        assert!(snap.hosts.values().all(|&h| h == H::NoData));
        assert_eq!(snap.groups[&10], H::NoData);
        assert_eq!(snap.services[&5], H::NoData);
        assert_eq!(t.group_health(99, &snap.hosts), H::NoData, "unknown group");
        assert_eq!(
            t.service_health(99, &snap.hosts),
            H::NoData,
            "unknown service"
        );
    }

    #[test]
    fn nested_groups_are_expanded() {
        // 1 ⊃ 2 ⊃ 3; hosts 7 (in 1), 8 (in 3)
        let groups = [
            group(1, &[7], &[2]),
            group(2, &[], &[3]),
            group(3, &[8], &[]),
        ];
        let t = Topology::new(&groups, &[check(&[], &[1], &["cpu"])], &[]);
        assert_eq!(t.group_hosts(1).collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(t.host_plugins(8).collect::<Vec<_>>(), vec!["cpu"]);
        let h = hosts(&[(7, H::Ok), (8, H::Critical)]);
        assert_eq!(t.group_health(1, &h), H::Critical);
        assert_eq!(t.group_health(2, &h), H::Critical);
        assert_eq!(t.groups_containing(8), vec![1, 2, 3]);
    }

    #[test]
    fn group_cycle_terminates() {
        let groups = [group(1, &[7], &[2]), group(2, &[8], &[1])];
        let t = Topology::new(&groups, &[check(&[], &[1], &["cpu"])], &[]);
        assert_eq!(t.group_hosts(1).collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(t.group_hosts(2).collect::<Vec<_>>(), vec![7, 8]);
        let h = hosts(&[(7, H::Minor), (8, H::Ok)]);
        assert_eq!(t.group_health(2, &h), H::Minor);
    }

    #[test]
    fn plugin_through_two_groups_counted_once() {
        let groups = [group(1, &[7], &[]), group(2, &[7], &[])];
        let checks = [
            check(&[], &[1], &["cpu"]),
            check(&[7], &[2], &["cpu", "mem"]),
        ];
        let t = Topology::new(&groups, &checks, &[]);
        assert_eq!(t.host_plugins(7).collect::<Vec<_>>(), vec!["cpu", "mem"]);
    }

    #[test]
    fn redundancy_examples_from_design() {
        assert_eq!(redundancy_health([H::Minor, H::Major]), H::Minor);
        assert_eq!(redundancy_health([H::Critical, H::Ok]), H::Degraded);
        assert_eq!(redundancy_health([H::Ok, H::Ok]), H::Ok);
        assert_eq!(
            redundancy_health([H::Ok, H::NoData]),
            H::Ok,
            "no data is not a failure"
        );
        assert_eq!(
            redundancy_health([H::Critical, H::NoData]),
            H::Critical,
            "a silent host must not hide a failure"
        );
        assert_eq!(redundancy_health([H::NoData, H::NoData]), H::NoData);
        assert_eq!(redundancy_health([]), H::NoData);
        assert_eq!(redundancy_health([H::Unknown, H::Ok]), H::Degraded);
    }

    #[test]
    fn group_component_holding_ok_host_counts_degraded() {
        // Redundancy group of a single host group: web1 ok, web2 critical.
        let t = Topology::new(&[group(10, &[1, 2], &[])], &[], &[]);
        let rg = RedundancyGroup {
            name: "web".into(),
            members: vec![Member::HostGroup(10)],
        };
        let h = hosts(&[(1, H::Ok), (2, H::Critical)]);
        assert_eq!(
            t.group_health(10, &h),
            H::Critical,
            "as a group it is critical"
        );
        assert_eq!(
            t.redundancy_group_health(&rg, &h),
            H::Degraded,
            "as a component it is degraded"
        );
        // Without an ok host inside, it keeps its own health.
        let h = hosts(&[(1, H::Major), (2, H::Critical)]);
        assert_eq!(t.redundancy_group_health(&rg, &h), H::Critical);
        // As a dependency (AND), the group counts with its full severity.
        let svc = Service {
            id: 1,
            name: "s".into(),
            dependencies: vec![Member::HostGroup(10)],
            ..Default::default()
        };
        let t = Topology::new(&[group(10, &[1, 2], &[])], &[], &[svc]);
        let h = hosts(&[(1, H::Ok), (2, H::Critical)]);
        assert_eq!(t.service_health(1, &h), H::Critical);
    }

    #[test]
    fn service_combines_dependencies_redundancy_and_nested() {
        let db = Service {
            id: 1,
            name: "db".into(),
            dependencies: vec![Member::Host(3)],
            ..Default::default()
        };
        let web = Service {
            id: 2,
            name: "web".into(),
            redundancy_groups: vec![RedundancyGroup {
                name: "lb".into(),
                members: vec![Member::Host(1), Member::Host(2)],
            }],
            services: vec![1],
            ..Default::default()
        };
        let t = Topology::new(&[], &[], &[db, web]);
        let h = hosts(&[(1, H::Critical), (2, H::Ok), (3, H::Ok)]);
        assert_eq!(t.service_health(2, &h), H::Degraded);
        let h = hosts(&[(1, H::Critical), (2, H::Ok), (3, H::Major)]);
        assert_eq!(t.service_health(2, &h), H::Major, "nested service failing");
        assert_eq!(t.service_health(1, &h), H::Major);
        assert_eq!(t.services_affected_by(3), vec![1, 2]);
        assert_eq!(t.services_affected_by(1), vec![2]);
    }

    #[test]
    fn service_cycle_terminates_and_sees_both_sides() {
        let a = Service {
            id: 1,
            name: "a".into(),
            dependencies: vec![Member::Host(1)],
            services: vec![2],
            ..Default::default()
        };
        let b = Service {
            id: 2,
            name: "b".into(),
            dependencies: vec![Member::Host(2)],
            services: vec![1],
            ..Default::default()
        };
        let t = Topology::new(&[], &[], &[a, b]);
        let h = hosts(&[(1, H::Ok), (2, H::Minor)]);
        assert_eq!(t.service_health(1, &h), H::Minor);
        assert_eq!(t.service_health(2, &h), H::Minor);
    }

    #[test]
    fn evaluate_whole_snapshot() {
        let groups = [group(10, &[1, 2], &[])];
        let checks = [check(&[], &[10], &["cpu", "mem"])];
        let svc = Service {
            id: 7,
            name: "s".into(),
            redundancy_groups: vec![RedundancyGroup {
                name: "r".into(),
                members: vec![Member::Host(1), Member::Host(2)],
            }],
            ..Default::default()
        };
        let t = Topology::new(&groups, &checks, &[svc]);
        let l = latest(&[
            (1, "cpu", C::Ok),
            (1, "mem", C::Ok),
            (2, "cpu", C::Critical),
        ]);
        let snap = t.evaluate(&[1, 2], &l);
        assert_eq!(snap.hosts[&1], H::Ok);
        assert_eq!(snap.hosts[&2], H::Critical);
        assert_eq!(snap.groups[&10], H::Critical);
        assert_eq!(snap.services[&7], H::Degraded);
    }
}
