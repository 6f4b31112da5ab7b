//! API tokens: long random secrets a user creates for scripts, each acting with its user's
//! role. The store never sees a secret, only its SHA-256 (hex), by which a request's token
//! is looked up; creating and hashing secrets is the server's business.

use prophasis_model::{Millis, Role, UserId};
use serde::{Deserialize, Serialize};

use crate::{pg, sqlite, Backend, Result, Store};

/// Like the crate's `dispatch!`, for the operations in `token_ops.rs`.
macro_rules! dispatch {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(p) => sqlite::token_ops::$f(p $(, $arg)*).await,
            Backend::Postgres(p) => pg::token_ops::$f(p $(, $arg)*).await,
        }
    };
}

/// A token as shown to people: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: UserId,
    /// The owner's name, for admins' lists of everyone's tokens.
    pub user_name: String,
    /// What the token is for, chosen by its owner.
    pub name: String,
    pub created: Millis,
    pub last_used: Option<Millis>,
    pub revoked: bool,
}

/// A token found by its hash, with what a request needs to act as its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token: ApiToken,
    pub secret_sha256: String,
    pub role: Role,
}

impl Store {
    /// Stores a new token for `user` under the SHA-256 (hex) of its secret.
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        secret_sha256: &str,
        created: Millis,
    ) -> Result<ApiToken> {
        dispatch!(self, create_api_token(user, name, secret_sha256, created))
    }
    /// The token with this secret hash and its user's role, revoked or not.
    pub async fn find_api_token(&self, secret_sha256: &str) -> Result<Option<TokenOwner>> {
        dispatch!(self, find_api_token(secret_sha256))
    }
    pub async fn get_api_token(&self, id: i64) -> Result<ApiToken> {
        dispatch!(self, get_api_token(id))
    }
    /// Every token (`None`) or one user's, newest first.
    pub async fn list_api_tokens(&self, user: Option<UserId>) -> Result<Vec<ApiToken>> {
        dispatch!(self, list_api_tokens(user))
    }
    /// Marks a token revoked; it stays listed so its owner sees what happened.
    pub async fn revoke_api_token(&self, id: i64) -> Result<()> {
        dispatch!(self, revoke_api_token(id))
    }
    /// Records when a token was last used.
    pub async fn touch_api_token(&self, id: i64, at: Millis) -> Result<()> {
        dispatch!(self, touch_api_token(id, at))
    }
}
