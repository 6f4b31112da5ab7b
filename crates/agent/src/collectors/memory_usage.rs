//! `memory_usage`: percentage of RAM in use, counting reclaimable cache as free.
//!
//! MemAvailable is the kernel's own estimate of what can be allocated without swapping;
//! "free" memory alone would report every healthy Linux box as nearly full.

use super::{human_bytes, ok, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "memory_usage",
    description: "Memory in use, not counting reclaimable cache",
    value: "percent used: (MemTotal - MemAvailable) / MemTotal * 100",
    args: &[],
};

/// The `Key: N kB` fields of /proc/meminfo, in bytes.
pub(crate) fn meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

pub fn run(ctx: &Ctx<'_>, _: &Args) -> Result<RunResponse, CollectorError> {
    let text = ctx.read_proc("meminfo")?;
    let total = meminfo(&text, "MemTotal")
        .filter(|t| *t > 0)
        .ok_or_else(|| CollectorError::failed("/proc/meminfo has no MemTotal"))?;
    // Kernels before 3.14 lack MemAvailable; free + buffers + cache is the old estimate.
    let available = meminfo(&text, "MemAvailable").unwrap_or_else(|| {
        ["MemFree", "Buffers", "Cached"]
            .iter()
            .filter_map(|k| meminfo(&text, k))
            .sum()
    });
    let used = total.saturating_sub(available);
    let pct = used as f64 * 100.0 / total as f64;
    ok(
        Some((pct * 100.0).round() / 100.0),
        format!(
            "{pct:.1}% used: {} of {}, {} available",
            human_bytes(used as f64),
            human_bytes(total as f64),
            human_bytes(available as f64)
        ),
    )
}

#[cfg(test)]
mod tests {
    use crate::collectors::{testutil::lay, Args, Collectors};

    #[test]
    fn percent_used() {
        let d = tempfile::tempdir().unwrap();
        lay(
            d.path(),
            &[(
                "meminfo",
                "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:   12000000 kB\nSwapTotal:       2000000 kB\nSwapFree:        1500000 kB\n",
            )],
        );
        let c = Collectors::with_root(d.path(), d.path());
        let r = c.run("memory_usage", &Args::new()).unwrap();
        assert_eq!(r.value, Some(25.0));
        assert!(r.message.starts_with("25.0% used"), "{}", r.message);
        let r = c.run("swap_usage", &Args::new()).unwrap();
        assert_eq!(r.value, Some(25.0));
    }

    #[test]
    fn old_kernels_without_mem_available() {
        let d = tempfile::tempdir().unwrap();
        lay(
            d.path(),
            &[(
                "meminfo",
                "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n",
            )],
        );
        let c = Collectors::with_root(d.path(), d.path());
        assert_eq!(
            c.run("memory_usage", &Args::new()).unwrap().value,
            Some(50.0)
        );
        let r = c.run("swap_usage", &Args::new()).unwrap();
        assert_eq!(r.value, Some(0.0));
        assert!(r.message.contains("no swap"), "{}", r.message);
    }
}
