//! Twilio: an SMS, or a voice call that reads the alert out, through Twilio's REST API
//! (form-encoded, HTTP Basic with the account SID and auth token). The base URL is an
//! option so tests can point it at a local receiver.

use std::time::Duration;

use serde_json::Value;

use super::{
    check_url, opt_list, opt_str, FieldError, ModuleInfo, OptionSpec, OptionType, SendError,
};
use crate::notification::Notification;

const DEFAULT_BASE: &str = "https://api.twilio.com";

pub fn info() -> ModuleInfo {
    ModuleInfo {
        name: "twilio",
        description: "SMS or voice call through Twilio",
        options: vec![
            OptionSpec::new(
                "account_sid",
                OptionType::String,
                "Twilio account SID (AC…)",
            )
            .required(),
            OptionSpec::new("auth_token", OptionType::String, "Twilio auth token")
                .required()
                .secret(),
            OptionSpec::new(
                "from",
                OptionType::String,
                "Twilio phone number, E.164 (+15551234567)",
            )
            .required(),
            OptionSpec::new(
                "to",
                OptionType::StringList,
                "Phone numbers to notify, E.164",
            )
            .required(),
            OptionSpec::new("mode", OptionType::Choice, "sms or call")
                .choices(&["sms", "call"])
                .default(Value::from("sms")),
            OptionSpec::new("base_url", OptionType::String, "API base URL")
                .default(Value::from(DEFAULT_BASE)),
        ],
    }
}

fn e164(s: &str) -> bool {
    s.len() >= 4
        && s.len() <= 16
        && s.starts_with('+')
        && s[1..].chars().all(|c| c.is_ascii_digit())
}

pub fn validate(options: &Value) -> Result<(), FieldError> {
    let sid = opt_str(options, "account_sid").unwrap_or_default();
    if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(FieldError::new(
            "options.account_sid",
            "must be letters and digits only",
        ));
    }
    if !e164(opt_str(options, "from").unwrap_or_default()) {
        return Err(FieldError::new(
            "options.from",
            "must be a phone number in E.164 form, e.g. +15551234567",
        ));
    }
    for (i, to) in opt_list(options, "to").iter().enumerate() {
        if !e164(to) {
            return Err(FieldError::new(
                format!("options.to[{i}]"),
                "must be a phone number in E.164 form, e.g. +15551234567",
            ));
        }
    }
    if let Some(b) = opt_str(options, "base_url") {
        check_url("options.base_url", b)?;
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub async fn send(n: &Notification, options: &Value) -> Result<(), SendError> {
    let base = opt_str(options, "base_url")
        .unwrap_or(DEFAULT_BASE)
        .trim_end_matches('/');
    let sid = opt_str(options, "account_sid").unwrap_or_default();
    let token = opt_str(options, "auth_token").unwrap_or_default();
    let from = opt_str(options, "from").unwrap_or_default();
    let call = opt_str(options, "mode") == Some("call");
    let client = super::http_client(Duration::from_secs(15))?;
    let mut failures = Vec::new();
    for to in opt_list(options, "to") {
        let (url, form) = if call {
            let say = format!(
                "<Response><Say>Prophasis alert. {}</Say></Response>",
                xml_escape(&n.summary)
            );
            (
                format!("{base}/2010-04-01/Accounts/{sid}/Calls.json"),
                vec![
                    ("From", from.to_string()),
                    ("To", to.clone()),
                    ("Twiml", say),
                ],
            )
        } else {
            let body: String = n.summary.chars().take(1500).collect();
            (
                format!("{base}/2010-04-01/Accounts/{sid}/Messages.json"),
                vec![
                    ("From", from.to_string()),
                    ("To", to.clone()),
                    ("Body", body),
                ],
            )
        };
        let sent = client
            .post(url)
            .basic_auth(sid, Some(token))
            .form(&form)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => failures.push(format!("{to}: {}", super::http_failure(r).await)),
            Err(e) => failures.push(format!("{to}: {}", super::webhook::error_chain(&e))),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(SendError::Failed(format!(
            "Twilio: {}",
            failures.join("; ")
        )))
    }
}
