//! API tokens: a user makes them for scripts, each acting with that user's role. The secret
//! (`pph_` + 256 random bits, base64url) is shown once and only its SHA-256 is stored, so
//! a copy of the database gives no way in; 256 random bits need no slow hash.

use base64::Engine as _;
use prophasis_model::{LogCategory, UserId};
use prophasis_store::{now_millis, ApiToken};
use sha2::{Digest, Sha256};

use super::{ActionError, Actions, Actor, Result};

/// What every token starts with, so a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "pph_";

/// A new token's secret: shown once, never stored.
pub fn new_token_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The SHA-256 (hex) a token is stored and looked up by.
pub fn token_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Actions {
    /// Makes a token for the actor's own user. Returns it with its secret, the only time
    /// the secret exists outside the caller.
    pub async fn create_token(&self, actor: &Actor, name: &str) -> Result<(ApiToken, String)> {
        let Some(user) = actor.user else {
            return Err(ActionError::invalid(
                "user",
                "a token belongs to a user: name one (the command line has --user)",
            ));
        };
        self.create_token_for(actor, user, name).await
    }

    /// Makes a token for any user: yourself, or anyone if you are an admin (the command
    /// line acts as an admin).
    pub async fn create_token_for(
        &self,
        actor: &Actor,
        user: UserId,
        name: &str,
    ) -> Result<(ApiToken, String)> {
        if actor.user != Some(user) {
            actor.require_admin()?;
        }
        let secret = new_token_secret();
        let token = self
            .store
            .create_api_token(user, name.trim(), &token_hash(&secret), now_millis())
            .await?;
        self.audit(
            LogCategory::System,
            actor,
            "API token created",
            format!("token {:?} of user {:?}", token.name, token.user_name),
        )
        .await;
        Ok((token, secret))
    }

    /// The actor's own tokens; an admin's list has everyone's.
    pub async fn list_tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>> {
        let only = if actor.require_admin().is_ok() {
            None
        } else {
            Some(actor.user.ok_or(ActionError::Forbidden)?)
        };
        Ok(self.store.list_api_tokens(only).await?)
    }

    /// Revokes a token: its owner or an admin may. Someone else's token is "not found"
    /// to a viewer, so ids do not tell which tokens exist.
    pub async fn revoke_token(&self, actor: &Actor, id: i64) -> Result<ApiToken> {
        let token = self.store.get_api_token(id).await?;
        if actor.user != Some(token.user_id) && actor.require_admin().is_err() {
            return Err(prophasis_store::StoreError::NotFound {
                entity: "API token",
                id: id.to_string(),
            }
            .into());
        }
        self.store.revoke_api_token(id).await?;
        self.credentials.forget_all();
        self.audit(
            LogCategory::System,
            actor,
            "API token revoked",
            format!("token {:?} of user {:?}", token.name, token.user_name),
        )
        .await;
        Ok(self.store.get_api_token(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let a = new_token_secret();
        let b = new_token_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        // 32 bytes in unpadded base64url.
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(token_hash("abc").len(), 64);
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
