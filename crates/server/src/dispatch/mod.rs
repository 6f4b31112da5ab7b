//! Dispatch: getting (host, plugin) runs to agents and their answers back, one check in
//! flight per host.

pub mod agent_client;
pub mod queue;
pub mod runner;
