//! `uptime`: seconds since boot, from /proc/uptime.

use super::{ok, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "uptime",
    description: "Time since the machine booted",
    value: "seconds since boot",
    args: &[],
};

pub fn run(ctx: &Ctx<'_>, _: &Args) -> Result<RunResponse, CollectorError> {
    let text = ctx.read_proc("uptime")?;
    let secs: f64 = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CollectorError::failed(format!("unexpected /proc/uptime: {text:?}")))?;
    let s = secs as u64;
    let (d, h, m) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60);
    ok(Some(secs.floor()), format!("up {d} days, {h}:{m:02}"))
}

#[cfg(test)]
mod tests {
    use crate::collectors::{testutil::lay, Args, Collectors};

    #[test]
    fn parses_fixture() {
        let d = tempfile::tempdir().unwrap();
        lay(d.path(), &[("uptime", "273901.55 1023456.10\n")]);
        let c = Collectors::with_root(d.path(), d.path());
        let r = c.run("uptime", &Args::new()).unwrap();
        assert_eq!(r.value, Some(273901.0));
        assert_eq!(r.message, "up 3 days, 4:05");
    }
}
