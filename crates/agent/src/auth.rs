//! The agent key: making it, storing only a salted hash of it, checking it on every
//! request in constant time (a value already verified on the same connection is compared,
//! not re-hashed), and slowing down addresses that keep guessing.
//!
//! The key is 256 random bits, so a salted HMAC-SHA256 is enough to make a stolen config
//! file useless and costs about a microsecond; argon2 would cost ~50 ms per request
//! (SPIKES.md) for no gain against a key that cannot be guessed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;

pub const KEY_LEN: usize = 32;
pub const SALT_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// A freshly made key (hex, shown once to the operator) and what the config stores.
pub fn generate_key() -> (String, AuthConfig) {
    let mut key = [0u8; KEY_LEN];
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let key_hex = hex::encode(key);
    let hash = hash_key(&salt, key_hex.as_bytes());
    (
        key_hex,
        AuthConfig {
            salt: hex::encode(salt),
            hash: hex::encode(hash),
        },
    )
}

fn hash_key(salt: &[u8], key: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(key);
    mac.finalize().into_bytes().into()
}

/// Checks `Authorization: Basic …` values against the stored hash.
#[derive(Clone)]
pub struct KeyVerifier {
    salt: Vec<u8>,
    hash: [u8; 32],
}

impl KeyVerifier {
    /// Fails only on a config that did not pass [`crate::config::AgentConfig::validate`].
    pub fn new(auth: &AuthConfig) -> Option<KeyVerifier> {
        let salt = hex::decode(&auth.salt).ok()?;
        let hash: [u8; 32] = hex::decode(&auth.hash).ok()?.try_into().ok()?;
        Some(KeyVerifier { salt, hash })
    }

    /// True when the password matches. Constant time in the password's content.
    pub fn verify_key(&self, key: &[u8]) -> bool {
        hash_key(&self.salt, key).ct_eq(&self.hash).into()
    }

    /// True when `header` is `Basic base64(core:<key>)` with the right key.
    pub fn verify_header(&self, header: &[u8]) -> bool {
        let Some(b64) = header
            .strip_prefix(b"Basic ")
            .or_else(|| header.strip_prefix(b"basic "))
        else {
            return false;
        };
        // 32-byte key in hex plus the user name fits easily; refuse absurd headers early.
        if b64.len() > 512 {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim_ascii()) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
        // Always hash, so a wrong user name costs the same time as a wrong key.
        let key_ok = self.verify_key(pass);
        let user_ok: bool = user
            .ct_eq(prophasis_protocol::api::AUTH_USER.as_bytes())
            .into();
        key_ok & user_ok
    }
}

/// What one TLS connection has proved: the `Authorization` value that passed
/// [`KeyVerifier::verify_header`] on it, so later requests carrying the same bytes skip the
/// HMAC and base64 work (a server polls over kept-alive connections, so this is almost
/// every request). The stored value is compared in constant time; any other value is
/// checked in full, and nothing outlives the connection.
pub struct ConnectionAuth {
    peer: SocketAddr,
    verified: OnceLock<Box<[u8]>>,
}

impl ConnectionAuth {
    pub fn new(peer: SocketAddr) -> Self {
        ConnectionAuth {
            peer,
            verified: OnceLock::new(),
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// True when `header` is byte for byte the value already verified on this connection.
    pub fn already_verified(&self, header: &[u8]) -> bool {
        self.verified
            .get()
            .is_some_and(|v| bool::from(v.as_ref().ct_eq(header)))
    }

    /// Records a value that passed full verification (the first one on the connection).
    pub fn remember(&self, header: &[u8]) {
        let _ = self.verified.set(header.into());
    }
}

/// Counts failed logins per address and says how long to hold the next attempt, so a
/// guesser gets ever slower while the real server (which knows the key) never waits.
///
/// Memory is bounded: at most `capacity` addresses are tracked; when full, entries older
/// than the forget time go first, and if none are, the table is cleared (an attacker
/// spraying addresses gains nothing but a fresh start on a 256-bit key).
pub struct FailureThrottle {
    inner: Mutex<HashMap<IpAddr, Failures>>,
    capacity: usize,
    forget_after: Duration,
    max_delay: Duration,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Default for FailureThrottle {
    fn default() -> Self {
        FailureThrottle::new(4096, Duration::from_secs(600), Duration::from_secs(5))
    }
}

impl FailureThrottle {
    pub fn new(capacity: usize, forget_after: Duration, max_delay: Duration) -> Self {
        FailureThrottle {
            inner: Mutex::new(HashMap::new()),
            capacity,
            forget_after,
            max_delay,
        }
    }

    /// How long to wait before answering a request from `ip`: nothing for the first three
    /// failures (typos, a restarted server with an old key), then 100 ms doubling per
    /// further failure up to the maximum.
    pub fn delay_for(&self, ip: IpAddr) -> Duration {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&ip) {
            Some(f) if f.last.elapsed() < self.forget_after && f.count > 3 => {
                let exp = (f.count - 4).min(16);
                let ms = 100u64.saturating_mul(1 << exp);
                Duration::from_millis(ms).min(self.max_delay)
            }
            _ => Duration::ZERO,
        }
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() >= self.capacity && !map.contains_key(&ip) {
            let forget = self.forget_after;
            map.retain(|_, f| now.duration_since(f.last) < forget);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        let e = map.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(e.last) >= self.forget_after {
            e.count = 0;
        }
        e.count = e.count.saturating_add(1);
        e.last = now;
    }

    pub fn record_success(&self, ip: IpAddr) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !map.is_empty() {
            map.remove(&ip);
        }
    }

    pub fn tracked(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
        .into_bytes()
    }

    #[test]
    fn key_checks() {
        let (key, stored) = generate_key();
        assert_eq!(key.len(), 64);
        assert!(!stored.hash.contains(&key));
        let v = KeyVerifier::new(&stored).unwrap();
        assert!(v.verify_header(&basic("core", &key)));
        assert!(!v.verify_header(&basic("admin", &key)));
        assert!(!v.verify_header(&basic("core", &key[1..])));
        assert!(!v.verify_header(b"Bearer x"));
        assert!(!v.verify_header(b"Basic !!!"));
        let (key2, stored2) = generate_key();
        assert_ne!(key, key2);
        assert_ne!(stored.salt, stored2.salt);
    }

    #[test]
    fn connection_remembers_only_what_it_was_told() {
        let c = ConnectionAuth::new("10.0.0.1:5000".parse().unwrap());
        assert!(!c.already_verified(b"Basic abc"));
        c.remember(b"Basic abc");
        assert!(c.already_verified(b"Basic abc"));
        assert!(!c.already_verified(b"Basic abd"));
        assert!(!c.already_verified(b"Basic ab"));
        assert!(!c.already_verified(b""));
        // The first verified value stays; another one is checked in full each time.
        c.remember(b"Basic xyz");
        assert!(!c.already_verified(b"Basic xyz"));
    }

    #[test]
    fn throttle_grows_and_is_bounded() {
        let t = FailureThrottle::new(3, Duration::from_secs(60), Duration::from_millis(800));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            t.record_failure(ip);
        }
        assert_eq!(t.delay_for(ip), Duration::ZERO);
        t.record_failure(ip);
        assert_eq!(t.delay_for(ip), Duration::from_millis(100));
        t.record_failure(ip);
        assert_eq!(t.delay_for(ip), Duration::from_millis(200));
        for _ in 0..20 {
            t.record_failure(ip);
        }
        assert_eq!(t.delay_for(ip), Duration::from_millis(800));
        t.record_success(ip);
        assert_eq!(t.delay_for(ip), Duration::ZERO);
        for i in 0..10u8 {
            t.record_failure(IpAddr::from([10, 0, 1, i]));
        }
        assert!(t.tracked() <= 3);
    }
}
