//! Webhook: an HTTP POST of the notification, as JSON by default (the payload is
//! [`Notification`]'s JSON, documented there), or of a body rendered from a template so
//! chat and push services can be targeted without a module each:
//!
//! - Slack, Mattermost: `{"text": {{ summary }}}`
//! - Microsoft Teams (workflow webhook): `{"text": {{ text }}}`
//! - Discord: `{"content": {{ summary }}}`
//! - ntfy: content type `text/plain`, template `{{ text }}`, header `Title`
//! - Gotify: `{"title": {{ summary }}, "message": {{ text }}, "priority": 5}`
//!
//! With a JSON content type every `{{ … }}` is written as JSON (strings quoted and
//! escaped), so a message cannot break the payload; templates run with a fuel limit.

use std::time::Duration;

use minijinja::{AutoEscape, Environment};
use serde_json::Value;

use super::{
    check_url, opt_str, opt_u64, FieldError, ModuleInfo, OptionSpec, OptionType, SendError,
};
use crate::notification::Notification;

pub fn info() -> ModuleInfo {
    ModuleInfo {
        name: "webhook",
        description: "HTTP POST of the notification as JSON, or of a body from a template (Slack, Mattermost, Teams, Discord, ntfy, Gotify…)",
        options: vec![
            OptionSpec::new("url", OptionType::String, "http:// or https:// URL to POST to (secret: chat webhook URLs carry their token)").required().secret(),
            OptionSpec::new("headers", OptionType::StringMap, "Extra request headers, e.g. Authorization (values are secret)").secret(),
            OptionSpec::new(
                "template",
                OptionType::Text,
                "Optional body template (minijinja). Fields: the payload's (summary, text, alert_name, entity_name, old, new, message, value, link…). With a JSON content type each {{ … }} is written as JSON: Slack {\"text\": {{ summary }}}",
            ),
            OptionSpec::new("content_type", OptionType::String, "Content-Type of the body")
                .default(Value::from("application/json")),
            OptionSpec::new("timeout_seconds", OptionType::Integer, "Give up an attempt after this long")
                .default(Value::from(10)),
        ],
    }
}

const FUEL: u64 = 50_000;

fn environment(content_type: &str) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    let json = content_type.contains("json");
    env.set_auto_escape_callback(move |_| {
        if json {
            AutoEscape::Json
        } else {
            AutoEscape::None
        }
    });
    env
}

fn content_type(options: &Value) -> &str {
    opt_str(options, "content_type").unwrap_or("application/json")
}

pub fn validate(options: &Value) -> Result<(), FieldError> {
    check_url("options.url", opt_str(options, "url").unwrap_or_default())?;
    if let Some(headers) = options.get("headers").and_then(Value::as_object) {
        for (k, v) in headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err(FieldError::new(
                    "options.headers",
                    format!("{k:?} is not a valid header name"),
                ));
            }
            if reqwest::header::HeaderValue::from_str(v.as_str().unwrap_or_default()).is_err() {
                return Err(FieldError::new(
                    "options.headers",
                    format!("the value of {k:?} is not a valid header value"),
                ));
            }
        }
    }
    if let Some(t) = opt_str(options, "template") {
        let env = environment(content_type(options));
        env.template_from_str(t).map_err(|e| {
            FieldError::new("options.template", format!("is not a valid template: {e}"))
        })?;
    }
    if opt_u64(options, "timeout_seconds", 10) == 0 {
        return Err(FieldError::new(
            "options.timeout_seconds",
            "must be at least 1",
        ));
    }
    Ok(())
}

/// The body this webhook sends for a notification.
pub fn body(n: &Notification, options: &Value) -> Result<String, SendError> {
    match opt_str(options, "template") {
        None => serde_json::to_string(n).map_err(SendError::failed),
        Some(t) => {
            let env = environment(content_type(options));
            let tmpl = env.template_from_str(t).map_err(SendError::failed)?;
            let mut ctx = serde_json::to_value(n).map_err(SendError::failed)?;
            ctx["text"] = Value::String(n.text());
            tmpl.render(ctx)
                .map_err(|e| SendError::Failed(format!("rendering the template failed: {e}")))
        }
    }
}

pub async fn send(n: &Notification, options: &Value) -> Result<(), SendError> {
    let timeout = Duration::from_secs(opt_u64(options, "timeout_seconds", 10));
    let client = super::http_client(timeout)?;
    let url = opt_str(options, "url").unwrap_or_default();
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type(options))
        .body(body(n, options)?);
    if let Some(headers) = options.get("headers").and_then(Value::as_object) {
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str().unwrap_or_default());
        }
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            SendError::Timeout(timeout)
        } else {
            SendError::Failed(format!("POST {url} failed: {}", error_chain(&e)))
        }
    })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(super::http_failure(resp).await)
    }
}

/// reqwest's top error says "error sending request"; the cause (refused, DNS…) is below.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s += &format!(": {c}");
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let a = prophasis_model::Alert {
            id: 1,
            name: "a".into(),
            from_states: vec![],
            to_states: vec![],
            scope: Default::default(),
            plugins: vec![],
            checks: vec![],
            module: "webhook".into(),
            options: json!({}),
            enabled: true,
        };
        let t = prophasis_model::transition::Transition {
            entity: prophasis_model::transition::Entity::Host(1),
            old: prophasis_model::Health::Ok,
            new: prophasis_model::Health::Critical,
            at: 0,
            cause: None,
        };
        let n = crate::Notification::new(crate::NotificationKind::Test, &a, &t, "h", "http://x");
        let opts = json!({"url": "http://x", "template": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"});
        super::super::validate("webhook", &opts).unwrap();
        let started = std::time::Instant::now();
        let e = super::body(&n, &opts).unwrap_err();
        assert!(e.to_string().contains("template"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let ok = json!({"url": "http://x", "template": "{\"text\": {{ summary }}}"});
        let body: serde_json::Value = serde_json::from_str(&super::body(&n, &ok).unwrap()).unwrap();
        assert_eq!(body["text"], "[test] a: host h ok -> critical");
    }

    #[test]
    fn bad_options_name_the_field() {
        let cases = [
            (json!({"url": "not a url"}), "options.url"),
            (json!({"url": "ftp://x/y"}), "options.url"),
            (
                json!({"url": "http://x", "template": "{{ oops"}),
                "options.template",
            ),
            (
                json!({"url": "http://x", "headers": {"bad header": "v"}}),
                "options.headers",
            ),
            (
                json!({"url": "http://x", "timeout_seconds": 0}),
                "options.timeout_seconds",
            ),
        ];
        for (opts, field) in cases {
            let e = super::super::validate("webhook", &opts).unwrap_err();
            assert_eq!(e.field, field, "{opts}");
        }
        super::super::validate(
            "webhook",
            &json!({"url": "https://hooks.slack.com/x", "template": "{\"text\": {{ summary }}}"}),
        )
        .unwrap();
    }
}
