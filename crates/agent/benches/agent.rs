//! Agent cost, measured beside prometheus-node-exporter, a bare rustls server and the
//! previous agent build in the same run.
//!
//! Runs each server pinned to CPU 0 (`taskset -c 0`) and drives it from this process pinned
//! to CPU 1 with a minimal HTTP/1.1 client over kept-alive connections (so the client is not
//! the bottleneck). CPU time, run-queue wait and RSS come from /proc.
//!
//! - `PROPHASIS_BENCH_BASELINE=/path/to/prophasis-agent`: an older agent build, measured in
//!   the same rounds right before this one, so the two see the same machine load.
//! - `PROPHASIS_BENCH_ROUNDS=N` (default 3): rounds of baseline, agent, bare rustls server
//!   and node_exporter, back to back; the summary gives the range over rounds.
//! - With a baseline, a paired comparison follows (`PROPHASIS_BENCH_BLOCKS`, default 8):
//!   both agents run at once and are driven in alternating blocks, so that on a machine
//!   shared with other work each block is compared with its neighbour in time.
//!
//! The bare rustls server (this benchmark binary re-run with `--echo-server`) answers the
//! same kind of request with a fixed response through the agent's own TLS configuration: it
//! is the floor for TLS plus sockets on this machine, and a control for tail latency — if it
//! shows the same p99 as the agent, the tail comes from the machine, not the agent.
//!
//! `cargo bench -p prophasis-agent --bench agent` prints a Markdown report.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_prophasis-agent");
const LATENCY_REQUESTS: usize = 20_000;
const SHORT_REQUESTS: usize = 5_000;
const PROCESS_REQUESTS: usize = 300;
const LOAD_REQUESTS: usize = 100_000;
const LOAD_CONNECTIONS: usize = 4;
const SCRAPES: usize = 200;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of the process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is index 0, utime index 11, stime index 12.
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

fn pin_self(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A minimal HTTP/1.1 client on one kept-alive connection: enough to send a fixed
/// request and read a Content-Length response, and cheap so the agent is measured.
struct Conn<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn request(&mut self, req: &[u8]) -> u16 {
        self.s.write_all(req).await.unwrap();
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap();
                let status: u16 = head[9..12].parse().unwrap();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                };
                if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
                    while !self.buf.ends_with(b"\r\n0\r\n\r\n") {
                        let n = self.s.read(&mut chunk).await.unwrap();
                        assert!(n > 0, "connection closed");
                        self.buf.extend_from_slice(&chunk[..n]);
                    }
                    return status;
                }
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .expect("content-length");
                while self.buf.len() < end + 4 + len {
                    let n = self.s.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return status;
            }
            let n = self.s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

async fn tls_conn(port: u16) -> Conn<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    Conn {
        s,
        buf: Vec::with_capacity(16 * 1024),
    }
}

/// Run-queue wait of all threads of `pid` in nanoseconds: time they were ready to run but
/// another task had the CPU (second field of /proc/<pid>/task/<tid>/schedstat).
fn run_delay_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// On-CPU time of all threads of `pid` in nanoseconds (first field of each thread's
/// schedstat): exact, where /proc/<pid>/stat counts 10 ms ticks.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn agent_toml_path(dir: &Path, key: &str) -> PathBuf {
    let text = std::fs::read_to_string(dir.join("agent.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} =")))
        .unwrap_or_else(|| panic!("no {key} in agent.toml"));
    PathBuf::from(line.split('"').nth(1).unwrap())
}

fn setup_agent(bin: &str, dir: &Path, port: u16) -> String {
    let out = Command::new(bin)
        .args(["setup", "--non-interactive", "--config"])
        .arg(dir.join("agent.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{bin} setup failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_string();
    for (id, builtin, args) in [
        ("com.bench.heartbeat", "heartbeat", serde_json::json!({})),
        ("com.bench.cpu", "cpu_load", serde_json::json!({})),
        (
            "com.bench.net",
            "network",
            serde_json::json!({"interface": {"default": "lo"}}),
        ),
        (
            "com.bench.proc",
            "process_running",
            serde_json::json!({"name": {"default": "sshd"}}),
        ),
    ] {
        let p = dir.join("data/plugins").join(id);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("classifier.lua"), "return 'ok'").unwrap();
        std::fs::write(
            p.join("manifest.json"),
            serde_json::json!({"id": id, "name": id, "version": 1,
                "default_classifier": "classifier.lua", "builtin": builtin, "args": args})
            .to_string(),
        )
        .unwrap();
    }
    key
}

#[derive(Clone)]
struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// Requests slower than 1 ms.
    over_1ms: usize,
    cpu_per_req: f64,
    /// Server run-queue wait per request, seconds.
    wait_per_req: f64,
    rps: f64,
}

async fn sequential<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    req: &[u8],
    n: usize,
    pid: u32,
) -> Latency {
    for _ in 0..(n / 20).max(10) {
        assert_eq!(conn.request(req).await, 200);
    }
    let mut lat = Vec::with_capacity(n);
    let cpu0 = cpu_secs(pid);
    let wait0 = run_delay_ns(pid);
    let t0 = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let status = conn.request(req).await;
        lat.push(t.elapsed());
        assert_eq!(status, 200);
    }
    let wall = t0.elapsed();
    let cpu = cpu_secs(pid) - cpu0;
    let wait = run_delay_ns(pid).saturating_sub(wait0) as f64 / 1e9;
    lat.sort();
    Latency {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        max: *lat.last().unwrap(),
        over_1ms: lat
            .iter()
            .filter(|d| **d > Duration::from_millis(1))
            .count(),
        cpu_per_req: cpu / n as f64,
        wait_per_req: wait / n as f64,
        rps: n as f64 / wall.as_secs_f64(),
    }
}

struct AgentRun {
    label: String,
    round: usize,
    load: String,
    idle_rss: u64,
    rss_after: u64,
    rss_max: u64,
    rss_samples: Vec<u64>,
    hb: Latency,
    cpu: Latency,
    ping: Latency,
    net: Latency,
    process: Latency,
    load_rps: f64,
    load_cpu_per_req: f64,
    load_cpu_use: f64,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn post(path: &str, auth: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn measure_agent(label: &str, round: usize, bin: &str) -> AgentRun {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = setup_agent(bin, dir.path(), port);
    let agent = Proc(
        Command::new("taskset")
            .args(["-c", "0", bin, "run", "--config"])
            .arg(dir.path().join("agent.toml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("taskset (util-linux) is needed"),
    );
    wait_listening(port);
    std::thread::sleep(Duration::from_millis(1500));
    let pid = agent.pid();
    let idle_rss = rss_kib(pid);
    let load = loadavg();

    let auth = base64::engine::general_purpose::STANDARD.encode(format!("core:{key}"));
    let heartbeat = post("/plugins/com.bench.heartbeat/run", &auth);
    let ping =
        format!("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n")
            .into_bytes();

    let mut conn = tls_conn(port).await;
    let hb = sequential(&mut conn, &heartbeat, LATENCY_REQUESTS, pid).await;
    let cpu = sequential(
        &mut conn,
        &post("/plugins/com.bench.cpu/run", &auth),
        SHORT_REQUESTS,
        pid,
    )
    .await;
    let ping = sequential(&mut conn, &ping, SHORT_REQUESTS, pid).await;
    let net = sequential(
        &mut conn,
        &post("/plugins/com.bench.net/run", &auth),
        SHORT_REQUESTS,
        pid,
    )
    .await;
    let process = sequential(
        &mut conn,
        &post("/plugins/com.bench.proc/run", &auth),
        PROCESS_REQUESTS,
        pid,
    )
    .await;
    drop(conn);

    // Throughput: several kept-alive connections at once; RSS sampled as it goes.
    let mut rss_samples = Vec::new();
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    let per_conn = LOAD_REQUESTS / LOAD_CONNECTIONS;
    let mut tasks = Vec::new();
    let local = tokio::task::LocalSet::new();
    for _ in 0..LOAD_CONNECTIONS {
        let r = heartbeat.clone();
        tasks.push(local.spawn_local(async move {
            let mut c = tls_conn(port).await;
            for _ in 0..per_conn {
                assert_eq!(c.request(&r).await, 200);
            }
        }));
    }
    local
        .run_until(async {
            while t0.elapsed() < Duration::from_secs(120) {
                rss_samples.push(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(500)).await;
                if tasks.iter().all(|t| t.is_finished()) {
                    break;
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await;
    let load_wall = t0.elapsed();
    let load_cpu = cpu_secs(pid) - cpu0;
    let rss_after = rss_kib(pid);
    let rss_max = rss_samples
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(rss_after);
    drop(agent);
    AgentRun {
        label: label.to_string(),
        round,
        load,
        idle_rss,
        rss_after,
        rss_max,
        rss_samples,
        hb,
        cpu,
        ping,
        net,
        process,
        load_rps: LOAD_REQUESTS as f64 / load_wall.as_secs_f64(),
        load_cpu_per_req: load_cpu / LOAD_REQUESTS as f64,
        load_cpu_use: load_cpu / load_wall.as_secs_f64(),
    }
}

/// Requests per block in the paired comparison.
const PAIRED_BLOCK: usize = 2_000;

/// Baseline and agent side by side: both running (pinned to CPU 0) at once, driven in
/// alternating blocks so each block of one is next to a block of the other in time and
/// both see the same machine load. Returns, per measure, the agent's and the baseline's
/// CPU µs per request of every block.
async fn paired(baseline: &str, blocks: usize) -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
    struct Side {
        _proc: Proc,
        _dir: tempfile::TempDir,
        pid: u32,
        conn: Conn<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        reqs: Vec<Vec<u8>>,
    }
    async fn start(bin: &str) -> Side {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let key = setup_agent(bin, dir.path(), port);
        let proc = Proc(
            Command::new("taskset")
                .args(["-c", "0", bin, "run", "--config"])
                .arg(dir.path().join("agent.toml"))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("taskset (util-linux) is needed"),
        );
        wait_listening(port);
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("core:{key}"));
        let reqs = vec![
            post("/plugins/com.bench.heartbeat/run", &auth),
            format!("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n")
                .into_bytes(),
            post("/plugins/com.bench.cpu/run", &auth),
            post("/plugins/com.bench.net/run", &auth),
        ];
        Side {
            pid: proc.pid(),
            _proc: proc,
            _dir: dir,
            conn: tls_conn(port).await,
            reqs,
        }
    }
    let names = ["heartbeat", "GET /ping", "cpu_load", "network lo"];
    let mut sides = [start(BIN).await, start(baseline).await];
    std::thread::sleep(Duration::from_millis(1500));
    let mut out: Vec<(&str, Vec<f64>, Vec<f64>)> =
        names.iter().map(|n| (*n, Vec::new(), Vec::new())).collect();
    for block in 0..blocks {
        for (m, row) in out.iter_mut().enumerate() {
            // Alternate which side goes first, so neither always follows the other.
            let order = if block % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let side = &mut sides[i];
                let req = side.reqs[m].clone();
                for _ in 0..100 {
                    assert_eq!(side.conn.request(&req).await, 200);
                }
                let c0 = cpu_ns(side.pid);
                for _ in 0..PAIRED_BLOCK {
                    assert_eq!(side.conn.request(&req).await, 200);
                }
                let per = (cpu_ns(side.pid) - c0) as f64 / 1e9 / PAIRED_BLOCK as f64;
                if i == 0 {
                    row.1.push(per);
                } else {
                    row.2.push(per);
                }
            }
        }
    }
    out
}

const ECHO_BODY: &str = r#"{"value":1.0,"message":"alive"}"#;

/// The bare rustls server: reads one request head at a time and answers a fixed response.
/// No HTTP library, no routing, no authentication, no timers.
fn echo_server(port: u16, cert: &Path, key: &Path) {
    let tls = prophasis_agent::tls::server_config(cert, key).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ECHO_BODY}",
            ECHO_BODY.len()
        );
        let response: &'static [u8] = response.leak().as_bytes();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::with_capacity(4096);
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = find(&buf, b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(response).await.is_err() || s.flush().await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
}

async fn measure_echo(cert: &Path, key: &Path) -> Latency {
    let port = free_port();
    let me = std::env::current_exe().unwrap();
    let server = Proc(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(&me)
            .arg("--echo-server")
            .arg(port.to_string())
            .arg(cert)
            .arg(key)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port);
    std::thread::sleep(Duration::from_millis(500));
    let mut conn = tls_conn(port).await;
    let req = b"POST /plugins/com.bench.heartbeat/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    let lat = sequential(&mut conn, req, LATENCY_REQUESTS, server.pid()).await;
    drop(conn);
    drop(server);
    lat
}

struct NodeExporter {
    idle_rss: u64,
    rss_after: u64,
    scrape: Latency,
    /// `GET /` (a small landing page): the tail of a different server doing little work.
    landing: Latency,
    series: usize,
}

async fn node_exporter() -> Option<NodeExporter> {
    let bin = "/usr/bin/prometheus-node-exporter";
    if !Path::new(bin).exists() {
        return None;
    }
    let port = free_port();
    let ne = Proc(
        Command::new("taskset")
            .args(["-c", "0", bin])
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?,
    );
    wait_listening(port);
    std::thread::sleep(Duration::from_millis(1500));
    let pid = ne.pid();
    let idle_rss = rss_kib(pid);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    tcp.set_nodelay(true).ok()?;
    let mut conn = Conn {
        s: tcp,
        buf: Vec::new(),
    };
    // No Accept-Encoding: plain text with a Content-Length, like the agent's answers.
    let req = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec();
    assert_eq!(conn.request(&req).await, 200);
    let body = String::from_utf8_lossy(&conn.buf).into_owned();
    let series = body
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(' ') && !l.contains(": "))
        .count();
    let scrape = sequential(&mut conn, &req, SCRAPES, pid).await;
    let rss_after = rss_kib(pid);
    let landing = sequential(
        &mut conn,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        SHORT_REQUESTS,
        pid,
    )
    .await;
    Some(NodeExporter {
        idle_rss,
        rss_after,
        scrape,
        landing,
        series,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--echo-server") {
        let port = args[i + 1].parse().unwrap();
        echo_server(port, Path::new(&args[i + 2]), Path::new(&args[i + 3]));
        return;
    }
    // `cargo test --benches` runs this with --test or nothing; only measure under bench.
    if !args.iter().any(|a| a == "--bench") {
        println!("agent bench: run with `cargo bench -p prophasis-agent --bench agent`");
        return;
    }
    pin_self(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

/// `lo–hi` of one figure over several runs.
fn range(values: impl IntoIterator<Item = f64>, fmt: impl Fn(f64) -> String) -> String {
    let v: Vec<f64> = values.into_iter().collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() == 1 || fmt(lo) == fmt(hi) {
        fmt(lo)
    } else {
        format!("{}–{}", fmt(lo), fmt(hi))
    }
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn us(x: f64) -> String {
    format!("{:.1}", x * 1e6)
}

fn lat_row(name: &str, l: &Latency) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {:.0} |",
        us(l.cpu_per_req),
        ms(l.p50),
        ms(l.p99),
        ms(l.max),
        l.over_1ms,
        us(l.wait_per_req),
        l.rps
    )
}

async fn run() {
    let rounds: usize = std::env::var("PROPHASIS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let baseline = std::env::var("PROPHASIS_BENCH_BASELINE").ok();
    if let Some(b) = &baseline {
        assert!(
            Path::new(b).exists(),
            "PROPHASIS_BENCH_BASELINE={b} does not exist"
        );
    }
    // A certificate for the bare rustls server, made the agent's way.
    let cert_dir = tempfile::tempdir().unwrap();
    setup_agent(BIN, cert_dir.path(), free_port());
    let (cert, key) = (
        agent_toml_path(cert_dir.path(), "tls_cert"),
        agent_toml_path(cert_dir.path(), "tls_key"),
    );

    let mut runs: Vec<AgentRun> = Vec::new();
    let mut echoes = Vec::new();
    let mut nes = Vec::new();
    let mut loads = Vec::new();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        if let Some(b) = &baseline {
            runs.push(measure_agent("baseline", round + 1, b).await);
        }
        runs.push(measure_agent("agent", round + 1, BIN).await);
        loads.push(loadavg());
        echoes.push(measure_echo(&cert, &key).await);
        if let Some(ne) = node_exporter().await {
            nes.push(ne);
        }
    }

    let blocks: usize = std::env::var("PROPHASIS_BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let pairs = match &baseline {
        Some(b) => {
            eprintln!("paired comparison, {blocks} blocks");
            let p = paired(b, blocks).await;
            loads.push(loadavg());
            p
        }
        None => Vec::new(),
    };

    println!("\n## Agent bench results\n");
    println!(
        "load average (1/5/15 min) after each round: {}",
        loads.join("; ")
    );
    println!(
        "\nPer run. CPU and run-queue wait are the server's, per request; latencies are client round trips in ms.\n"
    );
    println!("| run | measure | CPU µs | p50 | p99 | max | > 1 ms | run-queue wait µs | req/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &runs {
        let tag = format!("{} #{} (load {})", r.label, r.round, r.load);
        for (name, l) in [
            ("heartbeat", &r.hb),
            ("cpu_load", &r.cpu),
            ("GET /ping", &r.ping),
            ("network lo", &r.net),
            ("process_running", &r.process),
        ] {
            println!("{}", lat_row(&format!("{tag} | {name}"), l));
        }
        println!(
            "| {tag} | heartbeat, {LOAD_CONNECTIONS} connections | {} | | | | | | {:.0} ({:.0} % of a core) |",
            us(r.load_cpu_per_req),
            r.load_rps,
            r.load_cpu_use * 100.0
        );
    }
    for (i, e) in echoes.iter().enumerate() {
        println!(
            "{}",
            lat_row(&format!("bare rustls #{} | fixed answer", i + 1), e)
        );
    }
    for (i, ne) in nes.iter().enumerate() {
        println!(
            "{}",
            lat_row(
                &format!("node_exporter #{} | GET /metrics", i + 1),
                &ne.scrape
            )
        );
        println!(
            "{}",
            lat_row(
                &format!("node_exporter #{} | GET / (landing page)", i + 1),
                &ne.landing
            )
        );
    }

    let of = |label: &str| -> Vec<&AgentRun> { runs.iter().filter(|r| r.label == label).collect() };
    let new = of("agent");
    let old = of("baseline");
    println!("\nSummary over {rounds} rounds (range; ratio = median agent / median baseline)\n");
    println!("| measure | agent | baseline (PROPHASIS_BENCH_BASELINE) | ratio | target |");
    println!("| --- | --- | --- | --- | --- |");
    type Pick = fn(&AgentRun) -> f64;
    type Row = (&'static str, Pick, fn(f64) -> String, &'static str);
    let rows: [Row; 16] = [
        ("heartbeat CPU/request µs", |r| r.hb.cpu_per_req, us, "≤ 50"),
        (
            "heartbeat p50 ms",
            |r| r.hb.p50.as_secs_f64(),
            |x| format!("{:.3}", x * 1e3),
            "≤ 0.3",
        ),
        (
            "heartbeat p99 ms",
            |r| r.hb.p99.as_secs_f64(),
            |x| format!("{:.3}", x * 1e3),
            "≤ 1",
        ),
        (
            "heartbeat requests > 1 ms (of 20,000)",
            |r| r.hb.over_1ms as f64,
            |x| format!("{x:.0}"),
            "",
        ),
        (
            "heartbeat run-queue wait/request µs",
            |r| r.hb.wait_per_req,
            us,
            "",
        ),
        (
            "heartbeat req/s, 1 connection",
            |r| r.hb.rps,
            |x| format!("{x:.0}"),
            "",
        ),
        (
            "heartbeat req/s, 4 connections, agent on 1 core",
            |r| r.load_rps,
            |x| format!("{x:.0}"),
            "≥ 10,000",
        ),
        (
            "heartbeat CPU/request µs, 4 connections",
            |r| r.load_cpu_per_req,
            us,
            "",
        ),
        ("cpu_load CPU/request µs", |r| r.cpu.cpu_per_req, us, ""),
        ("network (lo) CPU/request µs", |r| r.net.cpu_per_req, us, ""),
        (
            "process_running CPU/request µs",
            |r| r.process.cpu_per_req,
            us,
            "",
        ),
        ("GET /ping CPU/request µs", |r| r.ping.cpu_per_req, us, ""),
        (
            "GET /ping p99 ms",
            |r| r.ping.p99.as_secs_f64(),
            |x| format!("{:.3}", x * 1e3),
            "",
        ),
        (
            "idle RSS MiB",
            |r| r.idle_rss as f64 / 1024.0,
            |x| format!("{x:.1}"),
            "≤ 8",
        ),
        (
            "RSS after load MiB",
            |r| r.rss_after as f64 / 1024.0,
            |x| format!("{x:.1}"),
            "≤ 16, flat",
        ),
        (
            "max RSS seen during load MiB",
            |r| r.rss_max as f64 / 1024.0,
            |x| format!("{x:.1}"),
            "",
        ),
    ];
    for (name, pick, fmt, target) in rows {
        let a = range(new.iter().map(|r| pick(r)), fmt);
        let (b, ratio) = if old.is_empty() {
            ("—".to_string(), "—".to_string())
        } else {
            let mo = median(old.iter().map(|r| pick(r)));
            (
                range(old.iter().map(|r| pick(r)), fmt),
                if mo > 0.0 {
                    format!("{:.2}", median(new.iter().map(|r| pick(r))) / mo)
                } else {
                    "—".into()
                },
            )
        };
        println!("| {name} | {a} | {b} | {ratio} | {target} |");
    }
    if let Some(last) = new.last() {
        println!(
            "\nRSS samples during the last agent load (MiB): {}",
            last.rss_samples
                .iter()
                .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let echo_range =
        |pick: fn(&Latency) -> f64, fmt: fn(f64) -> String| range(echoes.iter().map(pick), fmt);
    println!(
        "\nBare rustls server (same TLS configuration, same pinning, fixed answer): CPU/request {} µs, p50 {} ms, p99 {} ms, requests > 1 ms {}, run-queue wait/request {} µs",
        echo_range(|l| l.cpu_per_req, us),
        echo_range(|l| l.p50.as_secs_f64(), |x| format!("{:.3}", x * 1e3)),
        echo_range(|l| l.p99.as_secs_f64(), |x| format!("{:.3}", x * 1e3)),
        echo_range(|l| l.over_1ms as f64, |x| format!("{x:.0}")),
        echo_range(|l| l.wait_per_req, us),
    );

    if !pairs.is_empty() {
        println!(
            "\nPaired comparison: agent and baseline running at once, {blocks} alternating blocks of {PAIRED_BLOCK} sequential requests each on one kept-alive connection; CPU µs per request from schedstat (ns). Ratio = median over blocks of agent block / baseline block next to it.\n"
        );
        println!("| measure | agent median (range) | baseline median (range) | paired ratio median (range) |");
        println!("| --- | --- | --- | --- |");
        for (name, a, b) in &pairs {
            let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
            println!(
                "| {name} | {} ({}) | {} ({}) | {:.2} ({}) |",
                us(median(a.iter().copied())),
                range(a.iter().copied(), us),
                us(median(b.iter().copied())),
                range(b.iter().copied(), us),
                median(ratios.iter().copied()),
                range(ratios.iter().copied(), |x| format!("{x:.2}"))
            );
        }
    }

    let size = std::fs::metadata(BIN).map(|m| m.len()).unwrap_or(0);
    let stripped = cert_dir.path().join("stripped");
    let stripped_size = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(BIN)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped).ok())
        .map(|m| format!("{:.1} MiB", m.len() as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "n/a (no strip)".into());
    println!(
        "release binary size: {:.1} MiB ({stripped_size} stripped)",
        size as f64 / (1024.0 * 1024.0)
    );

    if nes.is_empty() {
        println!("\nprometheus-node-exporter is not installed (apt-get install prometheus-node-exporter): no comparison");
        return;
    }
    let ne_range =
        |pick: fn(&NodeExporter) -> f64, fmt: fn(f64) -> String| range(nes.iter().map(pick), fmt);
    let ratio = |a: f64, b: f64| format!("{:.3}", a / b);
    let hb_cpu = median(new.iter().map(|r| r.hb.cpu_per_req));
    let ne_cpu = median(nes.iter().map(|n| n.scrape.cpu_per_req));
    println!("\n| measure | prometheus-node-exporter | agent / node_exporter (medians) |");
    println!("| --- | --- | --- |");
    println!(
        "| idle RSS MiB | {} | {} |",
        ne_range(|n| n.idle_rss as f64 / 1024.0, |x| format!("{x:.1}")),
        ratio(
            median(new.iter().map(|r| r.idle_rss as f64)),
            median(nes.iter().map(|n| n.idle_rss as f64))
        )
    );
    println!(
        "| RSS after {SCRAPES} scrapes MiB (agent: after its load) | {} | {} |",
        ne_range(|n| n.rss_after as f64 / 1024.0, |x| format!("{x:.1}")),
        ratio(
            median(new.iter().map(|r| r.rss_after as f64)),
            median(nes.iter().map(|n| n.rss_after as f64))
        )
    );
    println!(
        "| CPU per /metrics scrape µs, {} series (agent: per heartbeat run) | {} | {} |",
        nes[0].series,
        ne_range(|n| n.scrape.cpu_per_req, us),
        ratio(hb_cpu, ne_cpu)
    );
    println!(
        "| /metrics p50 / p99 ms | {} / {} | |",
        ne_range(
            |n| n.scrape.p50.as_secs_f64(),
            |x| format!("{:.2}", x * 1e3)
        ),
        ne_range(
            |n| n.scrape.p99.as_secs_f64(),
            |x| format!("{:.2}", x * 1e3)
        ),
    );
    println!(
        "| GET / (landing page, plain HTTP): CPU µs, p50 / p99 ms, > 1 ms of 5,000, run-queue wait µs | {}, {} / {}, {}, {} | heartbeat p99 / this p99: {} |",
        ne_range(|n| n.landing.cpu_per_req, us),
        ne_range(|n| n.landing.p50.as_secs_f64(), |x| format!("{:.3}", x * 1e3)),
        ne_range(|n| n.landing.p99.as_secs_f64(), |x| format!("{:.3}", x * 1e3)),
        ne_range(|n| n.landing.over_1ms as f64, |x| format!("{x:.0}")),
        ne_range(|n| n.landing.wait_per_req, us),
        ratio(
            median(new.iter().map(|r| r.hb.p99.as_secs_f64())),
            median(nes.iter().map(|n| n.landing.p99.as_secs_f64()))
        )
    );
}
