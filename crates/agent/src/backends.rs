//! The seam between the HTTP layer and the package and collector modules: installing a
//! package, removing one, and running a built-in collector, each with its error mapped
//! to an API error code.
//!
//! Handlers call only these functions, so the HTTP layer does not depend on the details
//! of `install` and `collectors`. Everything here blocks: callers run it on tokio's
//! blocking pool.

use std::collections::BTreeMap;

use prophasis_protocol::api::{ErrorCode, RunResponse};
use prophasis_protocol::signature::SignaturePolicy;
use prophasis_protocol::Manifest;
use serde_json::Value;

use crate::collectors::Collectors;
use crate::config::AgentConfig;
use crate::install;

/// A refusal with the code the API answers and a message for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendError {
    pub code: ErrorCode,
    pub message: String,
}

impl BackendError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        BackendError {
            code,
            message: message.into(),
        }
    }
}

/// Installs (or atomically replaces) plugin `expected_id` from an uploaded archive.
/// Blocking: call from a blocking thread.
pub fn install_package(
    config: &AgentConfig,
    archive: &[u8],
    signature: Option<&[u8]>,
    expected_id: &str,
) -> Result<Manifest, BackendError> {
    let policy: SignaturePolicy = config
        .signature_policy
        .parse()
        .map_err(|e: String| BackendError::new(ErrorCode::Internal, e))?;
    install::install(
        archive,
        signature,
        policy,
        &config.trusted_keys_dir,
        &config.plugins_dir(),
        &config.tmp_dir(),
        expected_id,
    )
    .map_err(|e| BackendError::new(e.code(), e.to_string()))
}

/// Removes plugin `id`; `Ok(false)` when it was not installed. Blocking.
pub fn remove_package(config: &AgentConfig, id: &str) -> Result<bool, BackendError> {
    install::remove(&config.plugins_dir(), id)
        .map_err(|e| BackendError::new(e.code(), e.to_string()))
}

/// Deletes what an interrupted install left behind; called once at start-up.
pub fn cleanup(config: &AgentConfig) {
    install::cleanup_leftovers(&config.plugins_dir());
}

/// Collectors that only read small /proc files, which the kernel answers without ever
/// waiting on a device or the network: these may run on the async thread. Anything that
/// stats file systems (NFS can hang), connects or scans /proc goes to a worker thread.
pub fn is_instant(name: &str) -> bool {
    matches!(
        name,
        "heartbeat" | "cpu_load" | "memory_usage" | "swap_usage" | "uptime" | "raid_md"
    )
}

/// Runs built-in collector `name`. Blocking (collectors read /proc and may stat file
/// systems): call from a blocking thread.
pub fn run_builtin(
    collectors: &Collectors,
    name: &str,
    args: &BTreeMap<String, Value>,
) -> Result<RunResponse, BackendError> {
    collectors.run(name, args).map_err(|e| {
        // An installed package naming a collector this agent lacks is a failure of that
        // plugin, not a missing plugin: `plugin_not_found` would make the server push the
        // same package again and again.
        let code = match e.code() {
            ErrorCode::PluginNotFound => ErrorCode::PluginFailed,
            c => c,
        };
        BackendError::new(code, e.message)
    })
}
