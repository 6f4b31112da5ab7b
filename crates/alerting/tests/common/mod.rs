//! Real peers on loopback for the alerting tests: an HTTP receiver with scripted answers,
//! a store in a temporary folder, and the engine with fast retries.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prophasis_alerting::{Alerting, EngineOptions, RetryPolicy};
use prophasis_model::transition::{Cause, Entity, Transition};
use prophasis_model::*;
use prophasis_store::Store;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BASE: &str = "http://prophasis.test";

pub async fn store(dir: &tempfile::TempDir) -> Arc<Store> {
    Arc::new(
        Store::open(dir.path().join("p.db").to_str().unwrap())
            .await
            .unwrap(),
    )
}

pub fn options() -> EngineOptions {
    let mut o = EngineOptions::new(BASE);
    o.retry = RetryPolicy {
        max_attempts: 5,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    };
    o.poll = Duration::from_millis(25);
    o.send_timeout = Duration::from_secs(10);
    o
}

pub async fn engine(store: &Arc<Store>) -> Alerting {
    Alerting::start_with(store.clone(), None, options()).await
}

pub fn alert(name: &str, module: &str, options: Value) -> Alert {
    Alert {
        id: 0,
        name: name.into(),
        from_states: vec![Health::Ok, Health::Critical],
        to_states: vec![Health::Critical, Health::Ok],
        scope: AlertScope {
            all_hosts: true,
            all_services: true,
            ..Default::default()
        },
        plugins: vec![],
        checks: vec![],
        module: module.into(),
        options,
        enabled: true,
    }
}

pub fn transition(entity: Entity, old: Health, new: Health, at: Millis) -> Transition {
    Transition {
        entity,
        old,
        new,
        at,
        cause: Some(Cause {
            host_id: 1,
            plugin_id: "cpu".into(),
            check_id: None,
            value: Some(97.5),
            message: "load is high".into(),
            result_type: ResultType::Plugin,
            classification: Classification::Critical,
        }),
    }
}

pub async fn host(store: &Store, name: &str) -> HostId {
    store
        .create_host(&Host {
            id: 0,
            name: name.into(),
            address: "127.0.0.1".into(),
            port: 4048,
            description: String::new(),
            auth_key: "k".repeat(64),
            tls_fingerprint: None,
            enabled: true,
        })
        .await
        .unwrap()
}

/// Polls until `f` holds, or panics after `secs`.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        if tokio::time::Instant::now() > end {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 server answering requests with the scripted statuses in turn (the
/// last one repeats); status 0 never answers, like a peer that hangs.
pub struct Receiver {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    pub async fn start(statuses: Vec<u16>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let statuses = statuses.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                    let index = {
                        let mut r = seen.lock().unwrap();
                        r.push(Request {
                            method: first.first().unwrap_or(&"").to_string(),
                            path: first.get(1).unwrap_or(&"").to_string(),
                            headers,
                            body,
                        });
                        r.len() - 1
                    };
                    let status = *statuses.get(index).or(statuses.last()).unwrap_or(&200);
                    if status == 0 {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Receiver { url, requests }
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn get(&self, i: usize) -> Request {
        self.requests.lock().unwrap()[i].clone()
    }
}
