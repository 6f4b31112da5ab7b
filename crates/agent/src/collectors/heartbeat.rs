//! `heartbeat`: always 1, "alive" — proves the agent answers and runs plugins.

use super::{ok, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "heartbeat",
    description: "The agent is up and answering",
    value: "always 1",
    args: &[],
};

pub fn run(_: &Ctx<'_>, _: &Args) -> Result<RunResponse, CollectorError> {
    ok(Some(1.0), "alive".into())
}
