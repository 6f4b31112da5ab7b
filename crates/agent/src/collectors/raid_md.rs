//! `raid_md`: failed or missing member disks of Linux software RAID (md) arrays.
//!
//! A degraded array keeps serving data, so nothing else notices until the next disk
//! dies: this is the check that should page. The value counts missing members across all
//! arrays in /proc/mdstat; the message names degraded arrays and resync/recovery progress
//! (a rebuild in progress still counts as missing until it completes).

use super::{ok, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "raid_md",
    description: "Health of Linux software RAID (md) arrays from /proc/mdstat",
    value: "number of failed or missing member disks across all arrays (0 = healthy or no arrays)",
    args: &[],
};

/// What /proc/mdstat says about one array.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Array {
    pub name: String,
    pub level: String,
    pub active: bool,
    /// Members the array should have and has working (`[n/m]`), when shown.
    pub wanted: Option<u32>,
    pub working: Option<u32>,
    /// Members marked `(F)`.
    pub failed: u32,
    /// e.g. `recovery 8.6%`, `resync DELAYED`.
    pub activity: Option<String>,
}

impl Array {
    pub fn missing(&self) -> u32 {
        match (self.wanted, self.working) {
            (Some(n), Some(m)) => n.saturating_sub(m).max(self.failed),
            _ => self.failed,
        }
    }
}

pub(crate) fn parse(text: &str) -> Vec<Array> {
    let mut arrays: Vec<Array> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if !line.starts_with(' ') && !line.starts_with('\t') {
            // `md0 : active raid1 sdb1[1] sda1[0](F)`
            let Some((name, rest)) = line.split_once(" : ") else {
                continue;
            };
            if !name.starts_with("md") {
                continue;
            }
            let mut words = rest.split_whitespace();
            let state = words.next().unwrap_or_default();
            let mut a = Array {
                name: name.trim().to_string(),
                active: state == "active",
                ..Default::default()
            };
            for w in words {
                if w == "(read-only)" || w == "(auto-read-only)" {
                    continue;
                }
                if a.level.is_empty() && !w.contains('[') {
                    a.level = w.to_string();
                } else if w.ends_with("(F)") {
                    a.failed += 1;
                }
            }
            arrays.push(a);
            continue;
        }
        let Some(a) = arrays.last_mut() else { continue };
        // `2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]`
        if trimmed.contains(" blocks") {
            for w in trimmed.split_whitespace() {
                if let Some(inner) = w.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
                    if let Some((n, m)) = inner.split_once('/') {
                        if let (Ok(n), Ok(m)) = (n.parse(), m.parse()) {
                            a.wanted = Some(n);
                            a.working = Some(m);
                        }
                    }
                }
            }
            continue;
        }
        // `[=>....]  recovery =  8.6% (90112/1047552) finish=0.5min speed=30037K/sec`
        // or `resync=DELAYED` / `resync=PENDING`.
        for kind in ["recovery", "resync", "reshape", "check", "repair"] {
            if let Some(idx) = trimmed.find(kind) {
                let after = trimmed[idx + kind.len()..].trim_start();
                let after = after.strip_prefix('=').unwrap_or(after).trim_start();
                let what = after.split_whitespace().next().unwrap_or_default();
                a.activity = Some(format!("{kind} {what}").trim().to_string());
                break;
            }
        }
    }
    arrays
}

pub fn run(ctx: &Ctx<'_>, _: &Args) -> Result<RunResponse, CollectorError> {
    let path = ctx.proc_root.join("mdstat");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // No md driver loaded: no arrays, nothing to fail.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CollectorError::failed(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let arrays = parse(&text);
    if arrays.is_empty() {
        return ok(Some(0.0), "no md arrays".into());
    }
    let mut missing = 0;
    let mut notes = Vec::new();
    for a in &arrays {
        let m = a.missing();
        missing += m;
        let mut parts = Vec::new();
        if !a.active {
            parts.push("inactive".to_string());
        }
        if m > 0 {
            let counts = match (a.wanted, a.working) {
                (Some(n), Some(w)) => format!(" ({w} of {n} disks working)"),
                _ => String::new(),
            };
            parts.push(format!(
                "degraded, {m} disk{} failed or missing{counts}",
                if m == 1 { "" } else { "s" }
            ));
        }
        if let Some(act) = &a.activity {
            parts.push(act.clone());
        }
        if !parts.is_empty() {
            notes.push(format!("{} {}: {}", a.name, a.level, parts.join(", ")));
        }
    }
    let msg = if notes.is_empty() {
        format!(
            "{} array{} healthy: {}",
            arrays.len(),
            if arrays.len() == 1 { "" } else { "s" },
            arrays
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        notes.join("; ")
    };
    ok(Some(f64::from(missing)), msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{testutil::lay, Args, Collectors};

    const HEALTHY: &str = "Personalities : [raid1]
md0 : active raid1 sdb1[1] sda1[0]
      1048512 blocks super 1.2 [2/2] [UU]

unused devices: <none>
";

    const DEGRADED: &str = "Personalities : [raid1]
md0 : active raid1 sda1[0] sdb1[1](F)
      1048512 blocks super 1.2 [2/1] [U_]

unused devices: <none>
";

    const RESYNC: &str = "Personalities : [raid6] [raid5] [raid4]
md1 : active raid5 sdd1[3] sdc1[1] sdb1[0]
      2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
      [=>...................]  recovery =  8.6% (90112/1047552) finish=0.5min speed=30037K/sec

unused devices: <none>
";

    const SEVERAL: &str = "Personalities : [raid1] [raid6] [raid5] [raid4] [raid0]
md2 : active raid0 sdf1[1] sde1[0]
      4190208 blocks super 1.2 512k chunks

md1 : active raid5 sdd1[3] sdc1[1](F) sdb2[0]
      2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/1] [U__]

md0 : active raid1 sdb1[1] sda1[0]
      1048512 blocks super 1.2 [2/2] [UU]
      [==>..................]  resync = 12.5% (131072/1048512) finish=1.2min speed=12000K/sec

md3 : active (auto-read-only) raid1 sdh1[1] sdg1[0]
      1048512 blocks super 1.2 [2/2] [UU]
      \tresync=PENDING

unused devices: <none>
";

    const NONE: &str = "Personalities : \nunused devices: <none>\n";

    fn run_on(mdstat: Option<&str>) -> RunResponse {
        let d = tempfile::tempdir().unwrap();
        if let Some(m) = mdstat {
            lay(d.path(), &[("mdstat", m)]);
        }
        Collectors::with_root(d.path(), d.path())
            .run("raid_md", &Args::new())
            .unwrap()
    }

    #[test]
    fn healthy() {
        let r = run_on(Some(HEALTHY));
        assert_eq!(r.value, Some(0.0));
        assert_eq!(r.message, "1 array healthy: md0");
    }

    #[test]
    fn degraded() {
        let r = run_on(Some(DEGRADED));
        assert_eq!(r.value, Some(1.0));
        assert!(
            r.message
                .contains("md0 raid1: degraded, 1 disk failed or missing (1 of 2 disks working)"),
            "{}",
            r.message
        );
    }

    #[test]
    fn resyncing() {
        let r = run_on(Some(RESYNC));
        assert_eq!(r.value, Some(1.0));
        assert!(r.message.contains("recovery 8.6%"), "{}", r.message);
    }

    #[test]
    fn several_arrays() {
        let arrays = parse(SEVERAL);
        assert_eq!(arrays.len(), 4);
        assert_eq!(arrays[0].level, "raid0");
        assert_eq!(arrays[0].missing(), 0);
        assert_eq!(arrays[1].missing(), 2);
        assert_eq!(arrays[3].level, "raid1");
        assert_eq!(arrays[3].activity.as_deref(), Some("resync PENDING"));
        let r = run_on(Some(SEVERAL));
        assert_eq!(r.value, Some(2.0));
        assert!(
            r.message.contains("md1 raid5: degraded, 2 disks"),
            "{}",
            r.message
        );
        assert!(
            r.message.contains("md0 raid1: resync 12.5%"),
            "{}",
            r.message
        );
        assert!(!r.message.contains("md2"), "{}", r.message);
    }

    #[test]
    fn no_arrays() {
        assert_eq!(run_on(Some(NONE)).message, "no md arrays");
        let r = run_on(None);
        assert_eq!((r.value, r.message.as_str()), (Some(0.0), "no md arrays"));
    }
}
