//! Agent cost, measured beside prometheus-node-exporter in the same run.
//!
//! Runs the release `prophasis-agent` binary pinned to CPU 0 (and node_exporter pinned to
//! CPU 0 after it), drives it from this process pinned to CPU 1 with a minimal HTTP/1.1
//! client over kept-alive TLS connections (so the client is not the bottleneck), and
//! reads CPU time and RSS from /proc. Bounded: about a minute on two cores.
//!
//! `cargo bench -p prophasis-agent --bench agent` prints a Markdown report.

use std::path::Path;
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn setup_agent(dir: &Path, port: u16) -> String {
    let out = Command::new(BIN)
        .args(["setup", "--non-interactive", "--config"])
        .arg(dir.join("agent.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_string();
    for (id, builtin) in [
        ("com.bench.heartbeat", "heartbeat"),
        ("com.bench.cpu", "cpu_load"),
    ] {
        let p = dir.join("data/plugins").join(id);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("classifier.lua"), "return 'ok'").unwrap();
        std::fs::write(
            p.join("manifest.json"),
            serde_json::json!({"id": id, "name": id, "version": 1,
                "default_classifier": "classifier.lua", "builtin": builtin})
            .to_string(),
        )
        .unwrap();
    }
    key
}

struct Latency {
    p50: Duration,
    p99: Duration,
    cpu_per_req: f64,
    wall: Duration,
}

async fn sequential<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    req: &[u8],
    n: usize,
    pid: u32,
) -> Latency {
    for _ in 0..200 {
        assert_eq!(conn.request(req).await, 200);
    }
    let mut lat = Vec::with_capacity(n);
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let status = conn.request(req).await;
        lat.push(t.elapsed());
        assert_eq!(status, 200);
    }
    let wall = t0.elapsed();
    let cpu = cpu_secs(pid) - cpu0;
    lat.sort();
    Latency {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        cpu_per_req: cpu / n as f64,
        wall,
    }
}

fn main() {
    // `cargo test --benches` runs this with --test or nothing; only measure under bench.
    if !std::env::args().any(|a| a == "--bench") {
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

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = setup_agent(dir.path(), port);
    let agent = Proc(
        Command::new("taskset")
            .args(["-c", "0", BIN, "run", "--config"])
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

    let auth = base64::engine::general_purpose::STANDARD.encode(format!("core:{key}"));
    let req = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let heartbeat = req("/plugins/com.bench.heartbeat/run");
    let cpu_load = req("/plugins/com.bench.cpu/run");
    let ping =
        format!("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n")
            .into_bytes();

    let mut conn = tls_conn(port).await;
    let hb = sequential(&mut conn, &heartbeat, LATENCY_REQUESTS, pid).await;
    let cl = sequential(&mut conn, &cpu_load, 5_000, pid).await;
    let pg = sequential(&mut conn, &ping, 5_000, pid).await;
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
    let rps = LOAD_REQUESTS as f64 / load_wall.as_secs_f64();
    let total_requests = LOAD_REQUESTS + LATENCY_REQUESTS + 10_000 + 600;
    let rss_after = rss_kib(pid);
    let rss_max = rss_samples
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(rss_after);
    drop(agent);

    // node_exporter, same pinning, same machine, right after.
    let ne = node_exporter().await;

    let size = std::fs::metadata(BIN).map(|m| m.len()).unwrap_or(0);
    println!("\n## Agent bench results\n");
    println!(
        "load average during the run: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let stripped = dir.path().join("stripped");
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
    println!("| measure | prophasis-agent | target |");
    println!("| --- | --- | --- |");
    println!(
        "| idle RSS | {:.1} MiB | ≤ 8 MiB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| RSS after {total_requests} requests (max seen during load) | {:.1} MiB ({:.1} MiB) | ≤ 16 MiB, flat |",
        rss_after as f64 / 1024.0,
        rss_max as f64 / 1024.0
    );
    println!(
        "| RSS samples during load (MiB) | {} | |",
        rss_samples
            .iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (name, l) in [("heartbeat run", &hb), ("cpu_load run", &cl), ("ping", &pg)] {
        println!(
            "| {name}, 1 kept-alive connection: agent CPU/request, p50, p99, req/s | {:.1} µs, {}, {}, {:.0} | ≤ 50 µs, ≤ 0.3 ms, ≤ 1 ms |",
            l.cpu_per_req * 1e6,
            ms(l.p50),
            ms(l.p99),
            if std::ptr::eq(l, &hb) { LATENCY_REQUESTS } else { 5_000 } as f64 / l.wall.as_secs_f64()
        );
    }
    println!(
        "| heartbeat run, {LOAD_CONNECTIONS} connections, agent on 1 core: req/s, agent CPU/request, agent CPU use | {rps:.0}, {:.1} µs, {:.0} % | ≥ 10,000 req/s |",
        load_cpu / LOAD_REQUESTS as f64 * 1e6,
        load_cpu / load_wall.as_secs_f64() * 100.0
    );
    println!(
        "| release binary size (stripped) | {:.1} MiB ({stripped_size}) | |",
        size as f64 / (1024.0 * 1024.0)
    );
    match ne {
        Some(ne) => {
            println!("\n| measure | prometheus-node-exporter | agent / node_exporter |");
            println!("| --- | --- | --- |");
            println!(
                "| idle RSS | {:.1} MiB | {:.2} |",
                ne.idle_rss as f64 / 1024.0,
                idle_rss as f64 / ne.idle_rss as f64
            );
            println!(
                "| RSS after {SCRAPES} scrapes | {:.1} MiB | {:.2} |",
                ne.rss_after as f64 / 1024.0,
                rss_after as f64 / ne.rss_after as f64
            );
            println!(
                "| CPU per /metrics scrape (agent: per heartbeat run) | {:.0} µs | {:.4} |",
                ne.lat.cpu_per_req * 1e6,
                hb.cpu_per_req / ne.lat.cpu_per_req
            );
            println!(
                "| p50, p99 | {}, {} | {:.3}, {:.3} |",
                ms(ne.lat.p50),
                ms(ne.lat.p99),
                hb.p50.as_secs_f64() / ne.lat.p50.as_secs_f64(),
                hb.p99.as_secs_f64() / ne.lat.p99.as_secs_f64()
            );
            println!(
                "| requests/s, 1 connection | {:.0} | {:.1} |",
                SCRAPES as f64 / ne.lat.wall.as_secs_f64(),
                (LATENCY_REQUESTS as f64 / hb.wall.as_secs_f64())
                    / (SCRAPES as f64 / ne.lat.wall.as_secs_f64())
            );
            println!("| /metrics series | {} | |", ne.series);
        }
        None => println!("\nprometheus-node-exporter is not installed (apt-get install prometheus-node-exporter): no baseline"),
    }
}

struct NodeExporter {
    idle_rss: u64,
    rss_after: u64,
    lat: Latency,
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
    let lat = sequential(&mut conn, &req, SCRAPES, pid).await;
    let rss_after = rss_kib(pid);
    Some(NodeExporter {
        idle_rss,
        rss_after,
        lat,
        series,
    })
}
