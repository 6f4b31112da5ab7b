//! `swap_usage`: percentage of swap space in use (0 when there is no swap).

use super::memory_usage::meminfo;
use super::{human_bytes, ok, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "swap_usage",
    description: "Swap space in use",
    value: "percent used: (SwapTotal - SwapFree) / SwapTotal * 100, 0 without swap",
    args: &[],
};

pub fn run(ctx: &Ctx<'_>, _: &Args) -> Result<RunResponse, CollectorError> {
    let text = ctx.read_proc("meminfo")?;
    let total = meminfo(&text, "SwapTotal").unwrap_or(0);
    if total == 0 {
        return ok(Some(0.0), "no swap configured".into());
    }
    let free = meminfo(&text, "SwapFree").unwrap_or(0);
    let used = total.saturating_sub(free);
    let pct = used as f64 * 100.0 / total as f64;
    ok(
        Some((pct * 100.0).round() / 100.0),
        format!(
            "{pct:.1}% of swap used: {} of {}",
            human_bytes(used as f64),
            human_bytes(total as f64)
        ),
    )
}
