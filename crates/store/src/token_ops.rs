//! The API token operations, compiled once per backend like `ops.rs` (kept apart so the
//! token feature stays in its own files).

use prophasis_model::{Millis, UserId};
use sqlx::Row as _;

use super::DB;
use crate::error::{fk_as_missing, Result, StoreError};
use crate::tokens::{ApiToken, TokenOwner};

type Pool = sqlx::Pool<DB>;
type DbRow = <DB as sqlx::Database>::Row;

const SELECT: &str = "SELECT t.id, t.user_id, u.name AS user_name, u.role, t.name, \
     t.secret_sha256, t.created, t.last_used, t.revoked \
     FROM api_tokens t JOIN users u ON u.id = t.user_id";

fn token_from(r: &DbRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        user_name: r.try_get("user_name")?,
        name: r.try_get("name")?,
        created: r.try_get("created")?,
        last_used: r.try_get("last_used")?,
        revoked: r.try_get("revoked")?,
    })
}

pub(crate) async fn create_api_token(
    pool: &Pool,
    user: UserId,
    name: &str,
    secret_sha256: &str,
    created: Millis,
) -> Result<ApiToken> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(StoreError::Invalid(prophasis_model::ValidationError::new(
            "name",
            "must be 1 to 100 characters",
        )));
    }
    let mut tx = super::begin(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, secret_sha256, created, revoked) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user)
    .bind(name)
    .bind(secret_sha256)
    .bind(created)
    .bind(false)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| fk_as_missing(e, "user_id", "user", user))?;
    tx.commit().await?;
    get_api_token(pool, id).await
}

pub(crate) async fn find_api_token(pool: &Pool, secret_sha256: &str) -> Result<Option<TokenOwner>> {
    let row = sqlx::query(&format!("{SELECT} WHERE t.secret_sha256 = $1"))
        .bind(secret_sha256)
        .fetch_optional(pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let role: String = r.try_get("role")?;
    Ok(Some(TokenOwner {
        token: token_from(&r)?,
        secret_sha256: r.try_get("secret_sha256")?,
        role: role.parse().map_err(StoreError::Corrupt)?,
    }))
}

pub(crate) async fn get_api_token(pool: &Pool, id: i64) -> Result<ApiToken> {
    let row = sqlx::query(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("API token", id))?;
    token_from(&row)
}

pub(crate) async fn list_api_tokens(pool: &Pool, user: Option<UserId>) -> Result<Vec<ApiToken>> {
    let rows = match user {
        Some(u) => {
            sqlx::query(&format!("{SELECT} WHERE t.user_id = $1 ORDER BY t.id DESC"))
                .bind(u)
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query(&format!("{SELECT} ORDER BY t.id DESC"))
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(token_from).collect()
}

pub(crate) async fn revoke_api_token(pool: &Pool, id: i64) -> Result<()> {
    let done = sqlx::query("UPDATE api_tokens SET revoked = $1 WHERE id = $2")
        .bind(true)
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("API token", id));
    }
    Ok(())
}

pub(crate) async fn touch_api_token(pool: &Pool, id: i64, at: Millis) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
