//! What the simulator costs per request, on its own threads, with the load generated on
//! other threads: `cargo bench -p prophasis-sim --bench cpu`.
//!
//! Reports simulator CPU per kept-alive ping and run, per new connection (TLS
//! handshake), and the request rate one simulator thread sustained. The figures go in
//! BENCHMARKS.md; a load test needs them to know how much of the machine is left to the
//! server.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use prophasis_sim::{Behaviour, Scenario, SimConfig, SimRuntime, Simulator};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Benchmarks only: the simulator's certificate is the only one on these sockets.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
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

fn client(pool: bool) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let mut b = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tcp_nodelay(true);
    if !pool {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let agents = 50;
    let sim_rt = SimRuntime::new(1).unwrap();
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = sim_rt
        .block_on(Simulator::start(SimConfig {
            agents,
            base_addr: Ipv4Addr::new(127, 0, 40, 1),
            scenario: Scenario {
                default: Behaviour {
                    run_uninstalled: true,
                    ..Behaviour::default()
                },
                overrides: vec![],
            },
            ..SimConfig::default()
        }))
        .unwrap();
    let targets: Vec<(String, String, String)> = sim
        .agents()
        .iter()
        .map(|a| {
            (
                format!("https://{}/ping", a.addr),
                format!("https://{}/plugins/bench.plugin/run", a.addr),
                a.key.clone(),
            )
        })
        .collect();
    let targets = Arc::new(targets);

    let measure = |label: &str, pool: bool, per_agent: usize, run: bool| {
        let targets = targets.clone();
        let http = client(pool);
        // Warm every connection (when pooled) so only the steady state is measured.
        load_rt.block_on(async {
            for (ping, _, key) in targets.iter() {
                http.get(ping)
                    .basic_auth("core", Some(key))
                    .send()
                    .await
                    .unwrap();
            }
        });
        let cpu0 = sim_rt.cpu_time();
        let t0 = Instant::now();
        load_rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..targets.len() {
                let (targets, http) = (targets.clone(), http.clone());
                tasks.push(tokio::spawn(async move {
                    let (ping, run_url, key) = &targets[i];
                    for _ in 0..per_agent {
                        let req = if run {
                            http.post(run_url).body("{\"args\":{}}")
                        } else {
                            http.get(ping)
                        };
                        let r = req.basic_auth("core", Some(key)).send().await.unwrap();
                        assert!(r.status().is_success());
                        r.bytes().await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let wall = t0.elapsed();
        let cpu = sim_rt.cpu_time() - cpu0;
        let n = (targets.len() * per_agent) as u32;
        println!(
            "{label:<34} {n:>6} requests: simulator CPU {:>9.1?}/request, {:>6.0} requests/s \
             (client on another thread; wall-clock bound by the client)",
            cpu / n,
            n as f64 / wall.as_secs_f64(),
        );
        cpu / n
    };

    measure("kept-alive GET /ping", true, 400, false);
    let run = measure("kept-alive POST /plugins/{id}/run", true, 400, true);
    measure("new connection per request (ping)", false, 20, false);
    println!(
        "one simulator thread could serve ~{:.0} runs/s kept alive",
        1.0 / run.as_secs_f64()
    );
    drop(sim);
}
