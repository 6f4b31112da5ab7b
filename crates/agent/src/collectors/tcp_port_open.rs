//! `tcp_port_open`: whether a TCP port accepts connections (1) or not (0).
//!
//! Loopback by default: the usual question is "is my local service listening", and an
//! agent probing other machines should be a deliberate choice in the check's arguments.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{arg_str, arg_u64, ok, ArgDef, ArgKind, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

/// Long enough for a loaded local service, short enough to stay inside plugin timeouts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub const INFO: CollectorInfo = CollectorInfo {
    name: "tcp_port_open",
    description: "Whether a TCP port accepts connections",
    value: "1 when a connection succeeded within 2 s, 0 otherwise",
    args: &[
        ArgDef {
            name: "port",
            kind: ArgKind::Integer,
            required: true,
            default: None,
            description: "TCP port, 1-65535",
        },
        ArgDef {
            name: "host",
            kind: ArgKind::String,
            required: false,
            default: Some("127.0.0.1"),
            description: "address or host name to connect to",
        },
    ],
};

pub fn run(_: &Ctx<'_>, args: &Args) -> Result<RunResponse, CollectorError> {
    let port = match arg_u64(args, "port")? {
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => {
            return Err(CollectorError::bad_args(format!(
                "argument port must be between 1 and 65535, got {p}"
            )))
        }
        None => {
            return Err(CollectorError::bad_args(
                "argument port is required: set it in the check's plugin arguments",
            ))
        }
    };
    let host = arg_str(args, "host")?.unwrap_or("127.0.0.1");
    let addr: SocketAddr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| CollectorError::bad_args(format!("cannot resolve host {host:?}")))?,
    };
    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(_) => ok(Some(1.0), format!("{addr} accepts connections")),
        Err(e) => ok(
            Some(0.0),
            format!("{addr} does not accept connections: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::collectors::{Args, Collectors};
    use prophasis_protocol::api::ErrorCode;

    #[test]
    fn open_and_closed_ports() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let c = Collectors::new();
        let args = |p: serde_json::Value| Args::from([("port".to_string(), p)]);
        let r = c
            .run("tcp_port_open", &args(serde_json::json!(port)))
            .unwrap();
        assert_eq!(r.value, Some(1.0), "{}", r.message);
        drop(listener);
        let r = c
            .run("tcp_port_open", &args(serde_json::json!(port.to_string())))
            .unwrap();
        assert_eq!(r.value, Some(0.0), "{}", r.message);
        let e = c
            .run("tcp_port_open", &args(serde_json::json!(70000)))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
        let e = c.run("tcp_port_open", &Args::new()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
    }
}
