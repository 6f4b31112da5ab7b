//! Script: runs a command with the notification in environment variables, for anything
//! the other modules do not reach. No shell is involved (the command and its arguments
//! are passed as given) and a timeout kills a script that hangs.
//!
//! Variables: `PROPHASIS_KIND`, `PROPHASIS_ALERT_ID`, `PROPHASIS_ALERT_NAME`,
//! `PROPHASIS_ENTITY_TYPE`, `PROPHASIS_ENTITY_ID`, `PROPHASIS_ENTITY_NAME`,
//! `PROPHASIS_PLUGIN`, `PROPHASIS_CHECK`, `PROPHASIS_CHECK_NAME`, `PROPHASIS_OLD_HEALTH`, `PROPHASIS_NEW_HEALTH`,
//! `PROPHASIS_VALUE`, `PROPHASIS_MESSAGE`, `PROPHASIS_TIME`, `PROPHASIS_AT` (ms),
//! `PROPHASIS_LINK`, `PROPHASIS_SUMMARY`, and `PROPHASIS_JSON` (the webhook payload).

use std::process::Stdio;
use std::time::Duration;

use prophasis_model::transition::Entity;
use serde_json::Value;

use super::{
    opt_list, opt_str, opt_u64, FieldError, ModuleInfo, OptionSpec, OptionType, SendError,
};
use crate::notification::Notification;

pub fn info() -> ModuleInfo {
    ModuleInfo {
        name: "script",
        description: "Runs a command with the alert in PROPHASIS_* environment variables",
        options: vec![
            OptionSpec::new(
                "command",
                OptionType::String,
                "Absolute path of the program to run",
            )
            .required(),
            OptionSpec::new(
                "args",
                OptionType::StringList,
                "Arguments, passed as given (no shell)",
            ),
            OptionSpec::new(
                "timeout_seconds",
                OptionType::Integer,
                "Kill the program after this long",
            )
            .default(Value::from(30)),
        ],
    }
}

pub fn validate(options: &Value) -> Result<(), FieldError> {
    let cmd = opt_str(options, "command").unwrap_or_default();
    if !cmd.starts_with('/') {
        return Err(FieldError::new(
            "options.command",
            "must be an absolute path",
        ));
    }
    if opt_u64(options, "timeout_seconds", 30) == 0 {
        return Err(FieldError::new(
            "options.timeout_seconds",
            "must be at least 1",
        ));
    }
    Ok(())
}

/// The environment a script sees.
pub fn environment(n: &Notification) -> Vec<(&'static str, String)> {
    let entity_id = match n.entity {
        Entity::Host(id) | Entity::Service(id) => id,
    };
    vec![
        (
            "PROPHASIS_KIND",
            serde_json::to_value(n.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ),
        ("PROPHASIS_ALERT_ID", n.alert_id.to_string()),
        ("PROPHASIS_ALERT_NAME", n.alert_name.clone()),
        ("PROPHASIS_ENTITY_TYPE", n.entity_type.clone()),
        ("PROPHASIS_ENTITY_ID", entity_id.to_string()),
        ("PROPHASIS_ENTITY_NAME", n.entity_name.clone()),
        ("PROPHASIS_PLUGIN", n.plugin.clone().unwrap_or_default()),
        (
            "PROPHASIS_CHECK",
            n.check.map(|c| c.to_string()).unwrap_or_default(),
        ),
        (
            "PROPHASIS_CHECK_NAME",
            n.check_name.clone().unwrap_or_default(),
        ),
        ("PROPHASIS_OLD_HEALTH", n.old.to_string()),
        ("PROPHASIS_NEW_HEALTH", n.new.to_string()),
        (
            "PROPHASIS_VALUE",
            n.value.map(|v| v.to_string()).unwrap_or_default(),
        ),
        ("PROPHASIS_MESSAGE", n.message.clone()),
        ("PROPHASIS_TIME", n.time.clone()),
        ("PROPHASIS_AT", n.at.to_string()),
        ("PROPHASIS_LINK", n.link.clone()),
        ("PROPHASIS_SUMMARY", n.summary.clone()),
        (
            "PROPHASIS_JSON",
            serde_json::to_string(n).unwrap_or_default(),
        ),
    ]
}

pub async fn send(n: &Notification, options: &Value) -> Result<(), SendError> {
    let cmd = opt_str(options, "command").unwrap_or_default();
    let timeout = Duration::from_secs(opt_u64(options, "timeout_seconds", 30));
    let child = tokio::process::Command::new(cmd)
        .args(opt_list(options, "args"))
        .envs(environment(n))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SendError::Failed(format!("cannot run {cmd}: {e}")))?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => return Err(SendError::Timeout(timeout)),
        Ok(r) => r.map_err(|e| SendError::Failed(format!("{cmd}: {e}")))?,
    };
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: String = err.trim().chars().take(300).collect();
        Err(SendError::Failed(format!(
            "{cmd} exited with {}: {err}",
            out.status
        )))
    }
}
