//! The configuration in memory: hosts, plugins, checks, schedules, services and classifier
//! overrides, loaded from the store as one consistent snapshot and swapped whole when the
//! UI or API changes anything. The hot path (dispatch and classification) reads it without
//! touching the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prophasis_model::rules::Topology;
use prophasis_model::{
    Check, CheckId, ClassifierOverride, Host, HostGroup, HostGroupId, HostId, Millis, Plugin,
    PluginId, Schedule, ScheduleId, Service,
};
use prophasis_store::{Store, StoreError};

/// One plugin run on one host for one check, due at an interval slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub host_id: HostId,
    pub plugin_id: PluginId,
    pub check_id: CheckId,
    pub args: BTreeMap<String, serde_json::Value>,
    /// The slot that caused the run: lateness is measured against it.
    pub slot: Millis,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub hosts: HashMap<HostId, Host>,
    pub plugins: HashMap<PluginId, Plugin>,
    pub checks: HashMap<CheckId, Check>,
    pub schedules: HashMap<ScheduleId, Schedule>,
    pub groups: Vec<HostGroup>,
    pub services: Vec<Service>,
    pub overrides: Vec<ClassifierOverride>,
    pub topology: Topology,
    /// Every group holding each host, through nesting (for classifier overrides).
    host_groups: HashMap<HostId, Vec<HostGroupId>>,
}

impl Catalog {
    pub async fn load(store: &Store) -> Result<Catalog, StoreError> {
        let hosts = store.list_hosts().await?;
        let plugins = store.list_plugins().await?;
        let checks = store.list_checks().await?;
        let schedules = store.list_schedules().await?;
        let groups = store.list_host_groups().await?;
        let services = store.list_services().await?;
        let overrides = store.list_overrides().await?;
        Ok(Catalog::new(
            hosts, plugins, checks, schedules, groups, services, overrides,
        ))
    }

    pub fn new(
        hosts: Vec<Host>,
        plugins: Vec<Plugin>,
        checks: Vec<Check>,
        schedules: Vec<Schedule>,
        groups: Vec<HostGroup>,
        services: Vec<Service>,
        overrides: Vec<ClassifierOverride>,
    ) -> Catalog {
        let topology = Topology::new(&groups, &checks, &services);
        let mut host_groups: HashMap<HostId, Vec<HostGroupId>> = HashMap::new();
        for g in &groups {
            for h in topology.group_hosts(g.id) {
                host_groups.entry(h).or_default().push(g.id);
            }
        }
        Catalog {
            hosts: hosts.into_iter().map(|h| (h.id, h)).collect(),
            plugins: plugins.into_iter().map(|p| (p.id.clone(), p)).collect(),
            checks: checks.into_iter().map(|c| (c.id, c)).collect(),
            schedules: schedules.into_iter().map(|s| (s.id, s)).collect(),
            groups,
            services,
            overrides,
            topology,
            host_groups,
        }
    }

    pub fn host_ids(&self) -> Vec<HostId> {
        let mut ids: Vec<HostId> = self.hosts.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Every group holding the host, directly or through nested groups.
    pub fn groups_of(&self, host: HostId) -> &[HostGroupId] {
        self.host_groups
            .get(&host)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The runs a schedule's slot asks for: each check's hosts (directly and through
    /// groups, enabled hosts only) × its plugins, each (host, plugin, check) once.
    pub fn jobs_for_slot(&self, schedule: ScheduleId, slot: Millis) -> Vec<Job> {
        let Some(schedule) = self.schedules.get(&schedule) else {
            return Vec::new();
        };
        let mut jobs = Vec::new();
        for check_id in &schedule.checks {
            let Some(check) = self.checks.get(check_id) else {
                continue;
            };
            let mut hosts: BTreeSet<HostId> = check.hosts.iter().copied().collect();
            for g in &check.host_groups {
                hosts.extend(self.topology.group_hosts(*g));
            }
            for host in hosts {
                if !self.hosts.get(&host).is_some_and(|h| h.enabled) {
                    continue;
                }
                for plugin in &check.plugins {
                    if !self.plugins.contains_key(plugin) {
                        continue;
                    }
                    let args = check
                        .plugin_args
                        .get(plugin)
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    jobs.push(Job {
                        host_id: host,
                        plugin_id: plugin.clone(),
                        check_id: check.id,
                        args,
                        slot,
                    });
                }
            }
        }
        // Each (host, plugin, check) is already unique: hosts come from a set, and a
        // validated schedule or check lists no check or plugin twice.
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prophasis_model::Interval;

    fn host(id: HostId, enabled: bool) -> Host {
        Host {
            id,
            name: format!("h{id}"),
            address: "127.0.0.1".into(),
            port: 4048,
            description: String::new(),
            auth_key: "k".into(),
            tls_fingerprint: None,
            enabled,
        }
    }

    fn plugin(id: &str) -> Plugin {
        Plugin {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            version: 1.0,
            n_historical: 5,
            classifier: "return 'ok'".into(),
            view: "value_graph".into(),
            view_source: None,
            manifest: serde_json::Value::Null,
        }
    }

    #[test]
    fn slot_expands_checks_groups_and_skips_disabled_hosts() {
        let mut args = BTreeMap::new();
        args.insert(
            "a.disk".to_string(),
            serde_json::Map::from_iter([("mount".to_string(), serde_json::json!("/var"))]),
        );
        let checks = vec![Check {
            id: 7,
            name: "c".into(),
            hosts: vec![1],
            host_groups: vec![10],
            plugins: vec!["a.cpu".into(), "a.disk".into()],
            plugin_args: args,
            ..Default::default()
        }];
        let groups = vec![HostGroup {
            id: 10,
            name: "g".into(),
            member_hosts: vec![1, 2, 3],
            ..Default::default()
        }];
        let schedules = vec![Schedule {
            id: 1,
            name: "s".into(),
            checks: vec![7],
            intervals: vec![Interval {
                id: 1,
                start: 0,
                period_seconds: 30,
            }],
            ..Default::default()
        }];
        let c = Catalog::new(
            vec![host(1, true), host(2, true), host(3, false)],
            vec![plugin("a.cpu"), plugin("a.disk")],
            checks,
            schedules,
            groups,
            vec![],
            vec![],
        );
        let jobs = c.jobs_for_slot(1, 30_000);
        let pairs: Vec<(HostId, &str)> = jobs
            .iter()
            .map(|j| (j.host_id, j.plugin_id.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![(1, "a.cpu"), (1, "a.disk"), (2, "a.cpu"), (2, "a.disk")],
            "host 1 once, host 3 disabled"
        );
        assert_eq!(jobs[1].args["mount"], "/var");
        assert!(jobs[0].args.is_empty());
        assert_eq!(c.groups_of(2), &[10]);
        assert!(c.jobs_for_slot(99, 0).is_empty());
    }
}
