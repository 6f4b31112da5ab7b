//! Benchmark: current health of 10,000 hosts × 10 plugins (target < 50 ms), with a naive
//! evaluation (groups expanded again for every host, as a per-host query would) measured
//! in the same run as the baseline.
//!
//! Run: `cargo bench -p prophasis-model --bench health`

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use prophasis_model::rules::{Latest, Topology};
use prophasis_model::*;

const HOSTS: i64 = 10_000;
const PLUGINS: usize = 10;

fn fixture() -> (Vec<HostGroup>, Vec<Check>, Vec<Service>, Latest) {
    // 100 leaf groups of 100 hosts, 10 parents of 10 leaves, one root over the parents.
    let mut groups: Vec<HostGroup> = (0..100)
        .map(|g| HostGroup {
            id: g + 1,
            name: format!("leaf{g}"),
            member_hosts: (g * 100 + 1..=g * 100 + 100).collect(),
            ..Default::default()
        })
        .collect();
    groups.extend((0..10).map(|p| HostGroup {
        id: 1000 + p,
        name: format!("parent{p}"),
        member_groups: (p * 10 + 1..=p * 10 + 10).collect(),
        ..Default::default()
    }));
    groups.push(HostGroup {
        id: 2000,
        name: "all".into(),
        member_groups: (1000..1010).collect(),
        ..Default::default()
    });
    let plugins: Vec<String> = (0..PLUGINS).map(|p| format!("org.example.p{p}")).collect();
    // Half the plugins through the root group, half through the parents: every host gets
    // each plugin through more than one path only for the root ones.
    let mut checks = vec![Check {
        id: 1,
        name: "root".into(),
        host_groups: vec![2000],
        plugins: plugins[..5].to_vec(),
        ..Default::default()
    }];
    checks.extend((0..10).map(|p| Check {
        id: 2 + p,
        name: format!("c{p}"),
        host_groups: vec![1000 + p],
        plugins: plugins.clone(),
        ..Default::default()
    }));
    let services: Vec<Service> = (0..100)
        .map(|s| Service {
            id: s + 1,
            name: format!("svc{s}"),
            dependencies: vec![Member::Host(s * 100 + 1)],
            redundancy_groups: vec![RedundancyGroup {
                name: "pool".into(),
                members: vec![Member::HostGroup(s + 1), Member::Host(s * 100 + 2)],
            }],
            ..Default::default()
        })
        .collect();
    let mut latest = Latest::new();
    for h in 1..=HOSTS {
        let m = latest.entry(h).or_default();
        for (i, p) in plugins.iter().enumerate() {
            let c = match (h as usize * 7 + i) % 50 {
                0 => Classification::Critical,
                1 => Classification::Minor,
                _ => Classification::Ok,
            };
            m.insert(p.clone(), c);
        }
    }
    (groups, checks, services, latest)
}

/// Host health the way a per-host lookup without precomputation would do it.
fn naive_host_healths(
    groups: &[HostGroup],
    checks: &[Check],
    latest: &Latest,
) -> HashMap<HostId, Health> {
    fn contains(
        groups: &[HostGroup],
        g: HostGroupId,
        host: HostId,
        seen: &mut HashSet<HostGroupId>,
    ) -> bool {
        if !seen.insert(g) {
            return false;
        }
        let Some(group) = groups.iter().find(|x| x.id == g) else {
            return false;
        };
        group.member_hosts.contains(&host)
            || group
                .member_groups
                .iter()
                .any(|&c| contains(groups, c, host, seen))
    }
    (1..=HOSTS)
        .map(|h| {
            let mut plugins = BTreeSet::new();
            for c in checks {
                if c.hosts.contains(&h)
                    || c.host_groups
                        .iter()
                        .any(|&g| contains(groups, g, h, &mut HashSet::new()))
                {
                    plugins.extend(c.plugins.iter().cloned());
                }
            }
            let health = plugins
                .iter()
                .filter_map(|p| latest.get(&h).and_then(|m| m.get(p)))
                .map(|&c| Health::from(c))
                .max()
                .unwrap_or(Health::NoData);
            (h, health)
        })
        .collect()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let (groups, checks, services, latest) = fixture();
    let hosts: Vec<HostId> = (1..=HOSTS).collect();

    let build = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(Topology::new(&groups, &checks, &services));
                t.elapsed()
            })
            .collect(),
    );
    let topology = Topology::new(&groups, &checks, &services);
    let mut snapshot = None;
    let eval = median(
        (0..11)
            .map(|_| {
                let t = Instant::now();
                snapshot = Some(std::hint::black_box(topology.evaluate(&hosts, &latest)));
                t.elapsed()
            })
            .collect(),
    );
    let snapshot = snapshot.unwrap();

    let t = Instant::now();
    let naive = naive_host_healths(&groups, &checks, &latest);
    let naive_time = t.elapsed();
    assert_eq!(
        naive, snapshot.hosts,
        "naive and precomputed host health disagree"
    );

    let problems = snapshot.hosts.values().filter(|h| h.is_problem()).count();
    println!("health of {HOSTS} hosts x {PLUGINS} plugins, 111 groups, 100 services ({problems} hosts with problems)");
    println!(
        "  topology build (median of 5):      {:>8.2} ms",
        build.as_secs_f64() * 1e3
    );
    println!(
        "  evaluate everything (median of 11): {:>8.2} ms  (target < 50 ms)",
        eval.as_secs_f64() * 1e3
    );
    println!(
        "  naive host health (baseline, 1 run): {:>8.2} ms",
        naive_time.as_secs_f64() * 1e3
    );
    println!(
        "  ratio naive / evaluate:            {:>8.1}x",
        naive_time.as_secs_f64() / eval.as_secs_f64()
    );
}
