//! Pushbullet: a note pushed to a user's devices through Pushbullet's HTTP API. The base
//! URL is an option so tests (and proxies) can point it elsewhere.

use std::time::Duration;

use serde_json::{json, Value};

use super::{check_url, opt_str, FieldError, ModuleInfo, OptionSpec, OptionType, SendError};
use crate::notification::Notification;

const DEFAULT_BASE: &str = "https://api.pushbullet.com";

pub fn info() -> ModuleInfo {
    ModuleInfo {
        name: "pushbullet",
        description: "Push notification through Pushbullet",
        options: vec![
            OptionSpec::new(
                "access_token",
                OptionType::String,
                "Pushbullet access token",
            )
            .required()
            .secret(),
            OptionSpec::new(
                "device_iden",
                OptionType::String,
                "Push to this device only",
            ),
            OptionSpec::new("base_url", OptionType::String, "API base URL")
                .default(Value::from(DEFAULT_BASE)),
        ],
    }
}

pub fn validate(options: &Value) -> Result<(), FieldError> {
    if let Some(b) = opt_str(options, "base_url") {
        check_url("options.base_url", b)?;
    }
    Ok(())
}

pub async fn send(n: &Notification, options: &Value) -> Result<(), SendError> {
    let base = opt_str(options, "base_url")
        .unwrap_or(DEFAULT_BASE)
        .trim_end_matches('/');
    let mut body = json!({"type": "note", "title": n.summary, "body": n.text()});
    if let Some(d) = opt_str(options, "device_iden") {
        body["device_iden"] = Value::from(d);
    }
    let resp = super::http_client(Duration::from_secs(15))?
        .post(format!("{base}/v2/pushes"))
        .header(
            "Access-Token",
            opt_str(options, "access_token").unwrap_or_default(),
        )
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            SendError::Failed(format!("Pushbullet: {}", super::webhook::error_chain(&e)))
        })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(super::http_failure(resp).await)
    }
}
