//! `cpu_load`: load average per CPU, plus CPU utilisation since the previous call.
//!
//! The load average divided by the CPU count makes one threshold fit every machine
//! (1.0 = every CPU busy). Utilisation needs two samples of /proc/stat, so the previous
//! one is kept in the collectors' state.

use super::{ok, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "cpu_load",
    description: "1-minute load average per CPU; the message adds 1/5/15-minute load and CPU utilisation since the previous run",
    value: "1-minute load average divided by the number of CPUs",
    args: &[],
};

/// Jiffies from the aggregate `cpu` line of /proc/stat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    pub busy: u64,
    pub total: u64,
}

/// Parses /proc/stat: the aggregate sample and the number of CPUs.
pub(crate) fn parse_stat(text: &str) -> Option<(CpuSample, u32)> {
    let mut sample = None;
    let mut cpus = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            // user nice system idle iowait irq softirq steal (guest is inside user).
            let mut v = [0u64; 8];
            let mut n = 0;
            for x in rest.split_ascii_whitespace().take(8) {
                if let Ok(x) = x.parse() {
                    v[n] = x;
                    n += 1;
                }
            }
            if n < 4 {
                return None;
            }
            let total: u64 = v.iter().sum();
            let idle = v[3] + v[4];
            sample = Some(CpuSample {
                busy: total - idle,
                total,
            });
        } else if line.starts_with("cpu") {
            cpus += 1;
        } else if sample.is_some() {
            break; // the cpuN lines come right after `cpu`
        }
    }
    Some((sample?, cpus.max(1)))
}

pub fn run(ctx: &Ctx<'_>, _: &Args) -> Result<RunResponse, CollectorError> {
    let loads = ctx.with_proc("loadavg", |loadavg| {
        let mut it = loadavg.split_ascii_whitespace().map(str::parse::<f64>);
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Ok([a, b, c]),
            _ => Err(CollectorError::failed(format!(
                "unexpected /proc/loadavg: {loadavg:?}"
            ))),
        }
    })?;
    let (sample, cpus) = ctx.with_proc("stat", |stat| {
        parse_stat(stat)
            .ok_or_else(|| CollectorError::failed("unexpected /proc/stat: no aggregate cpu line"))
    })?;
    let previous = {
        let mut st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
        st.cpu.replace(sample)
    };
    let util = match previous {
        Some(p) if sample.total > p.total && sample.busy >= p.busy => format!(
            "CPU {:.1}% busy since the previous run",
            (sample.busy - p.busy) as f64 * 100.0 / (sample.total - p.total) as f64
        ),
        _ => "CPU utilisation from the next run on".to_string(),
    };
    let value = loads[0] / f64::from(cpus);
    ok(
        Some((value * 1000.0).round() / 1000.0),
        format!(
            "load {:.2} {:.2} {:.2} on {cpus} CPUs; {util}",
            loads[0], loads[1], loads[2]
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{testutil::lay, Args, Collectors};

    const STAT1: &str = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\ncpu1 50 0 50 350 50 0 0 0 0 0\nintr 1\n";
    const STAT2: &str = "cpu  250 0 150 800 100 0 0 0 0 0\ncpu0 1 0 1 1 1 0 0 0 0 0\ncpu1 1 0 1 1 1 0 0 0 0 0\nintr 1\n";

    #[test]
    fn parses_stat() {
        let (s, n) = parse_stat(STAT1).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            s,
            CpuSample {
                busy: 200,
                total: 1000
            }
        );
        assert!(parse_stat("intr 1\n").is_none());
    }

    #[test]
    fn load_per_cpu_and_utilisation() {
        let d = tempfile::tempdir().unwrap();
        lay(
            d.path(),
            &[("loadavg", "3.00 2.50 1.00 2/300 999\n"), ("stat", STAT1)],
        );
        let c = Collectors::with_root(d.path(), d.path());
        let r = c.run("cpu_load", &Args::new()).unwrap();
        assert_eq!(r.value, Some(1.5));
        assert!(
            r.message.starts_with("load 3.00 2.50 1.00 on 2 CPUs"),
            "{}",
            r.message
        );
        assert!(r.message.contains("next run"), "{}", r.message);
        lay(d.path(), &[("stat", STAT2)]);
        let r = c.run("cpu_load", &Args::new()).unwrap();
        // busy 200 -> 400, total 1000 -> 1300: 200/300.
        assert!(r.message.contains("CPU 66.7% busy"), "{}", r.message);
    }

    #[test]
    fn broken_files_fail() {
        let d = tempfile::tempdir().unwrap();
        let c = Collectors::with_root(d.path(), d.path());
        let e = c.run("cpu_load", &Args::new()).unwrap_err();
        assert_eq!(e.code(), prophasis_protocol::api::ErrorCode::PluginFailed);
        lay(d.path(), &[("loadavg", "garbage\n")]);
        assert!(c.run("cpu_load", &Args::new()).is_err());
    }
}
