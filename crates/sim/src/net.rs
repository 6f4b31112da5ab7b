//! Sockets: where virtual agents listen, how connections reach the right agent, and the
//! open-file budget that decides between the two ways of listening.
//!
//! At 10,000 agents the process's 20,000 open files (SPIKES.md) cannot hold one
//! listening socket per agent plus one kept-alive connection per agent. So agents get
//! distinct loopback addresses (127.0.1.1, 127.0.1.2, … on one port) and either
//! - `PerAgent`: one listener per agent — a restart really closes the port, so the
//!   server sees "connection refused"; costs one file per agent; or
//! - `Shared`: one wildcard listener for all of them, the agent picked by the address the
//!   connection was made to — one file in total; a restarting agent resets connections
//!   instead of refusing them (the kernel accepts before the simulator can tell whose
//!   connection it is). Peers that are not on loopback are dropped, since a wildcard
//!   listener is reachable from the network.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::agent::AgentState;
use crate::{service, Inner, SimError};

/// A TLS handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How agents are spread over loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// One loopback address per agent from the base address up (skipping `.0` and
    /// `.255`), all on the same port.
    #[default]
    Addresses,
    /// All agents on the base address, on consecutive ports from the base port (or each
    /// on its own ephemeral port when the port is 0). Always one listener per agent.
    Ports,
}

/// How agents' sockets are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerMode {
    /// `PerAgent` when twice the agents fit in the open-file limit, else `Shared`.
    #[default]
    Auto,
    PerAgent,
    Shared,
}

/// Raises the soft limit on open files to the hard limit and returns the new soft
/// limit. A process may always do this for itself.
pub fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Err(io::Error::last_os_error());
        }
        if r.rlim_cur < r.rlim_max {
            let wanted = libc::rlimit {
                // "Unlimited" is refused for open files: ask for the kernel's usual cap.
                rlim_cur: if r.rlim_max == libc::RLIM_INFINITY {
                    1 << 20
                } else {
                    r.rlim_max
                },
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                r.rlim_cur = wanted.rlim_cur;
            }
        }
        // rlim_t is u64 on Linux but not on every libc target.
        #[allow(clippy::unnecessary_cast)]
        Ok(r.rlim_cur as u64)
    }
}

/// The mode `Auto` stands for, given the agents and the open-file limit.
pub(crate) fn resolve_mode(
    mode: ListenerMode,
    spread: Spread,
    agents: usize,
    nofile: u64,
) -> Result<ListenerMode, SimError> {
    match (mode, spread) {
        (ListenerMode::Shared, Spread::Ports) => Err(SimError::Config(
            "a shared listener tells agents apart by address: use spread `addresses`".into(),
        )),
        (ListenerMode::Auto, Spread::Ports) => Ok(ListenerMode::PerAgent),
        (ListenerMode::Auto, Spread::Addresses) => {
            // A listener and a kept-alive connection per agent, plus room for the
            // runtime, the tests' clients and whatever else shares the process.
            if (agents as u64) * 2 + 512 <= nofile {
                Ok(ListenerMode::PerAgent)
            } else {
                Ok(ListenerMode::Shared)
            }
        }
        (m, _) => Ok(m),
    }
}

/// The address of every agent. A port of 0 stays 0 here and is chosen when binding.
pub(crate) fn plan(
    agents: usize,
    base: Ipv4Addr,
    port: u16,
    spread: Spread,
) -> Result<Vec<SocketAddrV4>, SimError> {
    if !base.is_loopback() {
        return Err(SimError::Config(format!(
            "base address {base} is not in 127.0.0.0/8: the simulator serves loopback only"
        )));
    }
    match spread {
        Spread::Addresses => {
            let mut a = u32::from(base);
            let mut out = Vec::with_capacity(agents);
            for _ in 0..agents {
                while matches!(a & 0xff, 0 | 255) {
                    a += 1;
                }
                let ip = Ipv4Addr::from(a);
                if !ip.is_loopback() {
                    return Err(SimError::Config(format!(
                        "{agents} agents from {base} run past the end of 127.0.0.0/8"
                    )));
                }
                out.push(SocketAddrV4::new(ip, port));
                a += 1;
            }
            Ok(out)
        }
        Spread::Ports => {
            if port != 0 && port as usize + agents > 65_536 {
                return Err(SimError::Config(format!(
                    "{agents} agents from port {port} run past port 65535"
                )));
            }
            Ok((0..agents)
                .map(|i| SocketAddrV4::new(base, if port == 0 { 0 } else { port + i as u16 }))
                .collect())
        }
    }
}

pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // A restarted agent rebinds its port while the old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The accept loop of one agent's own listener; ends (closing the socket) when `token`
/// is cancelled by a restart or shutdown.
pub(crate) async fn accept_per_agent(
    inner: Arc<Inner>,
    agent: Arc<AgentState>,
    listener: TcpListener,
    token: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = token.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => spawn_connection(&inner, agent.clone(), stream, token.clone()),
            Err(e) => accept_failed(e).await,
        }
    }
}

/// The accept loop of the wildcard listener that serves every agent.
pub(crate) async fn accept_shared(
    inner: Arc<Inner>,
    listener: TcpListener,
    by_ip: HashMap<Ipv4Addr, usize>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = inner.root.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        if !peer.ip().is_loopback() {
            continue;
        }
        let index = match stream.local_addr() {
            Ok(SocketAddr::V4(local)) => by_ip.get(local.ip()).copied(),
            _ => None,
        };
        let Some(index) = index else { continue };
        let agent = inner.agents[index].clone();
        let down = {
            let mut d = agent.down_until.lock().expect("down lock");
            match *d {
                Some(t) if Instant::now() < t => true,
                Some(_) => {
                    *d = None;
                    false
                }
                None => false,
            }
        };
        if down {
            reset(stream);
            continue;
        }
        let token = agent.connection_token();
        spawn_connection(&inner, agent, stream, token);
    }
}

/// Running out of files must not spin the accept loop; the connection that failed is
/// lost, as it would be with a real agent at its limit.
async fn accept_failed(e: io::Error) {
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Closes with RST, the closest a shared listener can get to "nobody is listening".
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is valid for the lifetime of `stream`, and the option value is a
    // correctly sized `linger`.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

struct OpenConnection<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

fn spawn_connection(
    inner: &Arc<Inner>,
    agent: Arc<AgentState>,
    stream: TcpStream,
    token: CancellationToken,
) {
    // Without it, new connections showed 40–48 ms tails (SPIKES.md).
    let _ = stream.set_nodelay(true);
    agent.counters.connections.fetch_add(1, Relaxed);
    let inner = inner.clone();
    tokio::spawn(async move {
        inner.open_connections.fetch_add(1, Relaxed);
        let _open = OpenConnection(&inner.open_connections);
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, inner.acceptor.accept(stream));
        let tls = tokio::select! {
            r = handshake => match r {
                Ok(Ok(tls)) => tls,
                _ => return,
            },
            _ = token.cancelled() => return,
        };
        let started = inner.started;
        let svc = service_fn(move |req| service::handle(agent.clone(), started, req));
        let conn = inner.http.serve_connection(TokioIo::new(tls), svc);
        tokio::select! {
            _ = conn => {}
            _ = token.cancelled() => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_network_and_broadcast_octets() {
        let p = plan(300, Ipv4Addr::new(127, 0, 1, 250), 4048, Spread::Addresses).unwrap();
        assert_eq!(p[0], "127.0.1.250:4048".parse().unwrap());
        assert_eq!(p[4], "127.0.1.254:4048".parse().unwrap());
        assert_eq!(p[5], "127.0.2.1:4048".parse().unwrap());
        assert!(p.iter().all(|a| !matches!(a.ip().octets()[3], 0 | 255)));
        let mut unique: Vec<_> = p.iter().map(|a| *a.ip()).collect();
        unique.dedup();
        assert_eq!(unique.len(), 300);
        assert!(plan(10, Ipv4Addr::new(127, 255, 255, 250), 1, Spread::Addresses).is_err());
        assert!(plan(1, Ipv4Addr::new(10, 0, 0, 1), 1, Spread::Addresses).is_err());
    }

    #[test]
    fn ports_are_consecutive_and_bounded() {
        let p = plan(3, Ipv4Addr::LOCALHOST, 5000, Spread::Ports).unwrap();
        assert_eq!(p[2], "127.0.0.1:5002".parse().unwrap());
        assert!(plan(10, Ipv4Addr::LOCALHOST, 65530, Spread::Ports).is_err());
    }

    #[test]
    fn auto_mode_follows_the_file_budget() {
        let a = ListenerMode::Auto;
        assert_eq!(
            resolve_mode(a, Spread::Addresses, 1_000, 20_000).unwrap(),
            ListenerMode::PerAgent
        );
        assert_eq!(
            resolve_mode(a, Spread::Addresses, 10_000, 20_000).unwrap(),
            ListenerMode::Shared
        );
        assert!(resolve_mode(ListenerMode::Shared, Spread::Ports, 1, 20_000).is_err());
    }

    #[test]
    fn raising_the_limit_never_lowers_it() {
        let n = raise_nofile_limit().unwrap();
        assert!(n >= 1024, "{n}");
    }
}
