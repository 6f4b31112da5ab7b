//! Email over SMTP: STARTTLS (the default), implicit TLS or plain (for a relay on
//! localhost), optional authentication, several recipients, and a message with both a
//! plain-text and an HTML body so every client shows something readable.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use super::{
    opt_list, opt_str, opt_u64, FieldError, ModuleInfo, OptionSpec, OptionType, SendError,
};
use crate::notification::Notification;

pub fn info() -> ModuleInfo {
    ModuleInfo {
        name: "email",
        description: "Email through an SMTP server",
        options: vec![
            OptionSpec::new("host", OptionType::String, "SMTP server name or address").required(),
            OptionSpec::new(
                "port",
                OptionType::Integer,
                "SMTP port: 587 for STARTTLS, 465 for TLS, 25 for none",
            )
            .default(Value::from(587)),
            OptionSpec::new(
                "security",
                OptionType::Choice,
                "starttls (upgrade after connecting), tls (implicit TLS) or none",
            )
            .choices(&["starttls", "tls", "none"])
            .default(Value::from("starttls")),
            OptionSpec::new(
                "username",
                OptionType::String,
                "Login name, when the server wants one",
            ),
            OptionSpec::new("password", OptionType::String, "Password for the login").secret(),
            OptionSpec::new(
                "from",
                OptionType::String,
                "Sender address, e.g. Prophasis <prophasis@example.net>",
            )
            .required(),
            OptionSpec::new("to", OptionType::StringList, "Recipient addresses").required(),
            OptionSpec::new(
                "ca_certificate",
                OptionType::Text,
                "PEM certificate of a private CA to trust besides the public ones",
            ),
            OptionSpec::new(
                "timeout_seconds",
                OptionType::Integer,
                "Give up an attempt after this long",
            )
            .default(Value::from(30)),
        ],
    }
}

fn mailbox(field: &str, s: &str) -> Result<Mailbox, FieldError> {
    s.parse::<Mailbox>()
        .map_err(|e| FieldError::new(field, format!("{s:?} is not a valid email address: {e}")))
}

pub fn validate(options: &Value) -> Result<(), FieldError> {
    let host = opt_str(options, "host").unwrap_or_default();
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(FieldError::new(
            "options.host",
            format!("{host:?} is not a host name"),
        ));
    }
    let port = opt_u64(options, "port", 587);
    if port == 0 || port > 65535 {
        return Err(FieldError::new(
            "options.port",
            "must be between 1 and 65535",
        ));
    }
    mailbox("options.from", opt_str(options, "from").unwrap_or_default())?;
    for (i, to) in opt_list(options, "to").iter().enumerate() {
        mailbox(&format!("options.to[{i}]"), to)?;
    }
    if let Some(pem) = opt_str(options, "ca_certificate") {
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(FieldError::new(
                "options.ca_certificate",
                "must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        Certificate::from_pem(pem.as_bytes()).map_err(|e| {
            FieldError::new(
                "options.ca_certificate",
                format!("is not a PEM certificate: {e}"),
            )
        })?;
    }
    if opt_str(options, "password").is_some() && opt_str(options, "username").is_none() {
        return Err(FieldError::new(
            "options.username",
            "is required when a password is given",
        ));
    }
    Ok(())
}

/// The message, without sending it (tests look at it).
pub fn message(n: &Notification, options: &Value) -> Result<Message, SendError> {
    let mut b = Message::builder()
        .from(mailbox(
            "options.from",
            opt_str(options, "from").unwrap_or_default(),
        )?)
        .subject(&n.summary);
    for to in opt_list(options, "to") {
        b = b.to(mailbox("options.to", &to)?);
    }
    b.multipart(MultiPart::alternative_plain_html(n.text(), html(n)))
        .map_err(SendError::failed)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(n: &Notification) -> String {
    let mut rows = vec![
        ("Alert", n.alert_name.clone()),
        (
            if n.entity_type == "host" {
                "Host"
            } else {
                "Service"
            },
            n.entity_name.clone(),
        ),
        ("Health", format!("{} → {}", n.old, n.new)),
    ];
    if let Some(p) = &n.plugin {
        rows.push(("Plugin", p.clone()));
    }
    if let Some(c) = n.check {
        let name = n
            .check_name
            .as_deref()
            .map(|x| format!("{x} "))
            .unwrap_or_default();
        rows.push(("Check", format!("{name}({c})")));
    }
    if let Some(v) = n.value {
        rows.push(("Value", v.to_string()));
    }
    if !n.message.is_empty() {
        rows.push(("Message", n.message.clone()));
    }
    rows.push(("Time", n.time.clone()));
    let body: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th align=\"left\">{k}</th><td>{}</td></tr>", escape(v)))
        .collect();
    format!(
        "<!DOCTYPE html><html><body><h2>{}</h2><table>{body}</table><p><a href=\"{}\">Open in Prophasis</a></p></body></html>",
        escape(&n.summary),
        escape(&n.link)
    )
}

pub async fn send(n: &Notification, options: &Value) -> Result<(), SendError> {
    crate::install_crypto_provider();
    let host = opt_str(options, "host").unwrap_or_default();
    let port = opt_u64(options, "port", 587) as u16;
    let timeout = Duration::from_secs(opt_u64(options, "timeout_seconds", 30));
    let tls = || -> Result<TlsParameters, SendError> {
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(pem) = opt_str(options, "ca_certificate") {
            b = b.add_root_certificate(
                Certificate::from_pem(pem.as_bytes()).map_err(SendError::failed)?,
            );
        }
        b.build_rustls().map_err(SendError::failed)
    };
    let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
    let builder = match opt_str(options, "security").unwrap_or("starttls") {
        "none" => plain,
        "tls" => plain.tls(Tls::Wrapper(tls()?)),
        // STARTTLS is required, never opportunistic: a server that does not offer it
        // must not get the password in clear.
        _ => plain.tls(Tls::Required(tls()?)),
    };
    let mut builder = builder.port(port).timeout(Some(timeout));
    if let Some(user) = opt_str(options, "username") {
        builder = builder.credentials(Credentials::new(
            user.to_string(),
            opt_str(options, "password").unwrap_or_default().to_string(),
        ));
    }
    let transport = builder.build();
    let msg = message(n, options)?;
    match tokio::time::timeout(timeout, transport.send(msg)).await {
        Err(_) => Err(SendError::Timeout(timeout)),
        Ok(Err(e)) => Err(SendError::Failed(format!(
            "SMTP to {host}:{port}: {}",
            super::webhook::error_chain(&e)
        ))),
        Ok(Ok(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn bad_options_name_the_field() {
        let ok =
            json!({"host": "smtp.example.net", "from": "p@example.net", "to": ["a@example.net"]});
        super::super::validate("email", &ok).unwrap();
        let cases = [
            (
                json!({"from": "p@example.net", "to": ["a@example.net"]}),
                "options.host",
            ),
            (
                json!({"host": "", "from": "p@example.net", "to": ["a@example.net"]}),
                "options.host",
            ),
            (
                json!({"host": "s", "from": "not an address", "to": ["a@example.net"]}),
                "options.from",
            ),
            (
                json!({"host": "s", "from": "p@example.net", "to": ["a@example.net", "bad@"]}),
                "options.to[1]",
            ),
            (
                json!({"host": "s", "from": "p@example.net", "to": []}),
                "options.to",
            ),
            (
                json!({"host": "s", "from": "p@example.net", "to": ["a@example.net"], "port": 70000}),
                "options.port",
            ),
            (
                json!({"host": "s", "from": "p@example.net", "to": ["a@example.net"], "security": "ssl3"}),
                "options.security",
            ),
            (
                json!({"host": "s", "from": "p@example.net", "to": ["a@example.net"], "password": "x"}),
                "options.username",
            ),
        ];
        for (opts, field) in cases {
            let e = super::super::validate("email", &opts).unwrap_err();
            assert_eq!(e.field, field, "{opts}");
        }
    }
}
