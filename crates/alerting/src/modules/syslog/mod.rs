//! Syslog in RFC 5424 format: to the local socket (`/dev/log`, a Unix datagram socket),
//! or to a remote collector over UDP (one message per datagram) or TCP (octet-counted
//! framing, RFC 6587), so alerts land wherever the site already collects logs.

use std::time::Duration;

use prophasis_model::Health;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{opt_str, FieldError, ModuleInfo, OptionSpec, OptionType, SendError};
use crate::notification::Notification;

pub fn info() -> ModuleInfo {
    ModuleInfo {
        name: "syslog",
        description:
            "Syslog message (RFC 5424) to the local socket or a remote collector over UDP or TCP",
        options: vec![
            OptionSpec::new(
                "transport",
                OptionType::Choice,
                "local (Unix socket), udp or tcp",
            )
            .choices(&["local", "udp", "tcp"])
            .default(Value::from("local")),
            OptionSpec::new(
                "address",
                OptionType::String,
                "host:port for udp and tcp; socket path for local (default /dev/log)",
            ),
            OptionSpec::new("facility", OptionType::Choice, "Syslog facility")
                .choices(&FACILITIES)
                .default(Value::from("daemon")),
            OptionSpec::new("app_name", OptionType::String, "APP-NAME field")
                .default(Value::from("prophasis")),
        ],
    }
}

const FACILITIES: [&str; 12] = [
    "user", "mail", "daemon", "auth", "syslog", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6",
];

fn facility_code(name: &str) -> u8 {
    match name {
        "user" => 1,
        "mail" => 2,
        "auth" => 4,
        "syslog" => 5,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        _ => 3, // daemon
    }
}

/// Syslog severity for the new health: the worse the health, the louder.
pub fn severity(h: Health) -> u8 {
    match h {
        Health::Critical => 2,
        Health::Major => 3,
        Health::Minor | Health::Degraded => 4,
        Health::Unknown | Health::NoData => 5,
        Health::Ok => 6,
    }
}

pub fn validate(options: &Value) -> Result<(), FieldError> {
    let transport = opt_str(options, "transport").unwrap_or("local");
    if transport != "local" {
        let addr = opt_str(options, "address").ok_or_else(|| {
            FieldError::new("options.address", format!("is required for {transport}"))
        })?;
        let ok = addr
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(FieldError::new(
                "options.address",
                format!("{addr:?} is not host:port"),
            ));
        }
    }
    if let Some(app) = opt_str(options, "app_name") {
        if app.len() > 48 || !app.chars().all(|c| c.is_ascii_graphic()) {
            return Err(FieldError::new(
                "options.app_name",
                "must be 1 to 48 printable ASCII characters without spaces",
            ));
        }
    }
    Ok(())
}

/// SD-PARAM values escape `"`, `\` and `]`.
fn sd_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(']', "\\]")
}

/// The RFC 5424 message for a notification.
pub fn format(n: &Notification, options: &Value) -> String {
    let pri = facility_code(opt_str(options, "facility").unwrap_or("daemon")) * 8 + severity(n.new);
    let host = hostname();
    let app = opt_str(options, "app_name").unwrap_or("prophasis");
    let sd = format!(
        "[prophasis@32473 alert=\"{}\" entity=\"{}\" entity_type=\"{}\" old=\"{}\" new=\"{}\" plugin=\"{}\" kind=\"{}\"]",
        sd_escape(&n.alert_name),
        sd_escape(&n.entity_name),
        n.entity_type,
        n.old,
        n.new,
        sd_escape(n.plugin.as_deref().unwrap_or("-")),
        serde_json::to_value(n.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
    );
    let mut msg = n.summary.clone();
    if !n.message.is_empty() {
        msg += &format!(": {}", n.message);
    }
    if let Some(v) = n.value {
        msg += &format!(" (value {v})");
    }
    msg += &format!(" {}", n.link);
    format!(
        "<{pri}>1 {} {host} {app} {} alert {sd} {}",
        n.time,
        std::process::id(),
        msg.replace(['\n', '\r'], " ")
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn send(n: &Notification, options: &Value) -> Result<(), SendError> {
    let line = format(n, options);
    let transport = opt_str(options, "transport").unwrap_or("local");
    let work = async {
        match transport {
            "udp" => {
                let addr = opt_str(options, "address").unwrap_or_default();
                let sock = tokio::net::UdpSocket::bind(if addr.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                })
                .await
                .map_err(SendError::failed)?;
                sock.connect(addr)
                    .await
                    .map_err(|e| SendError::Failed(format!("udp {addr}: {e}")))?;
                sock.send(line.as_bytes())
                    .await
                    .map_err(|e| SendError::Failed(format!("udp {addr}: {e}")))?;
                Ok(())
            }
            "tcp" => {
                let addr = opt_str(options, "address").unwrap_or_default();
                let mut s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| SendError::Failed(format!("tcp {addr}: {e}")))?;
                let framed = format!("{} {line}", line.len());
                s.write_all(framed.as_bytes())
                    .await
                    .map_err(SendError::failed)?;
                s.shutdown().await.map_err(SendError::failed)?;
                Ok(())
            }
            _ => {
                let path = opt_str(options, "address").unwrap_or("/dev/log");
                let sock = tokio::net::UnixDatagram::unbound().map_err(SendError::failed)?;
                sock.send_to(line.as_bytes(), path)
                    .await
                    .map_err(|e| SendError::Failed(format!("local syslog socket {path}: {e}")))?;
                Ok(())
            }
        }
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| SendError::Timeout(TIMEOUT))?
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn bad_options_name_the_field() {
        super::super::validate("syslog", &json!({})).unwrap();
        super::super::validate(
            "syslog",
            &json!({"transport": "udp", "address": "127.0.0.1:514"}),
        )
        .unwrap();
        for (opts, field) in [
            (json!({"transport": "udp"}), "options.address"),
            (
                json!({"transport": "tcp", "address": "nohost"}),
                "options.address",
            ),
            (
                json!({"transport": "tcp", "address": "h:99999"}),
                "options.address",
            ),
            (json!({"app_name": "has space"}), "options.app_name"),
            (json!({"facility": "kern"}), "options.facility"),
        ] {
            assert_eq!(
                super::super::validate("syslog", &opts).unwrap_err().field,
                field,
                "{opts}"
            );
        }
    }
}
