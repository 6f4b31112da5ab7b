//! Who is asking: HTTP Basic with a Prophasis user's name and password (argon2 hashes).
//!
//! Verifying argon2 costs ~50 ms by design, so a successful verification is remembered
//! for a minute under a digest of the credentials; a wrong password is never cached and
//! is answered only after a fixed delay, with the same work done for unknown users so
//! timing does not tell which names exist.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use prophasis_model::{Role, UserId};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub id: UserId,
    pub name: String,
    pub role: Role,
}

impl AuthUser {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

const CACHE_FOR: Duration = Duration::from_secs(60);
const FAILURE_DELAY: Duration = Duration::from_millis(300);

#[derive(Default)]
pub struct CredentialCache {
    ok: Mutex<HashMap<[u8; 32], (AuthUser, Instant)>>,
}

impl CredentialCache {
    /// Forgets every remembered verification, so a changed password, role or deleted user
    /// takes effect on the next request instead of up to a minute later.
    pub fn forget_all(&self) {
        self.ok.lock().expect("credential cache").clear();
    }
}

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// Checks a name and password against the store.
pub async fn authenticate(
    state: &AppState,
    name: &str,
    password: &str,
) -> Result<AuthUser, ApiError> {
    let digest: [u8; 32] = Sha256::new()
        .chain_update(name)
        .chain_update([0])
        .chain_update(password)
        .finalize()
        .into();
    if let Some((user, at)) = state
        .credentials
        .ok
        .lock()
        .expect("credential cache")
        .get(&digest)
    {
        if at.elapsed() < CACHE_FOR {
            return Ok(user.clone());
        }
    }
    let user = state
        .core
        .store
        .find_user_by_name(name)
        .await
        .map_err(ApiError::internal)?;
    // Unknown users cost the same argon2 work as known ones.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.dummy_hash.clone());
    let password = password.to_string();
    let good = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    match user {
        Some(u) if good => {
            let auth = AuthUser {
                id: u.id,
                name: u.name,
                role: u.role,
            };
            let mut cache = state.credentials.ok.lock().expect("credential cache");
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_FOR);
            cache.insert(digest, (auth.clone(), Instant::now()));
            Ok(auth)
        }
        _ => {
            tokio::time::sleep(FAILURE_DELAY).await;
            Err(ApiError::unauthorized())
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let (name, password) = parse_basic(header).ok_or_else(ApiError::unauthorized)?;
        authenticate(state, &name, &password).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:pa:ss")
        );
        assert_eq!(parse_basic(&h), Some(("admin".into(), "pa:ss".into())));
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
