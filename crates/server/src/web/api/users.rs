//! Users (admins only; passwords are write-only) and API tokens (everyone has their own;
//! admins see and may revoke everyone's).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use prophasis_model::{Role, User, UserId};
use prophasis_store::ApiToken;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actor;
use super::extract::{Body, PathParam};
use crate::web::auth::AuthUser;
use crate::web::error::{ApiError, CommonErrors};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A user as the API shows it (never a password or its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub name: String,
    pub role: Role,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            name: u.name,
            role: u.role,
        }
    }
}

/// A user as the API takes it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserInput {
    pub name: String,
    pub role: Role,
    /// Required on create (at least 10 characters); on update, absent or empty keeps the
    /// current password. Never returned.
    #[serde(default)]
    #[schema(write_only)]
    pub password: Option<String>,
}

/// Every user (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserView>), CommonErrors))]
async fn list_users(
    user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    user.require_admin()?;
    let users = state.core.store.list_users().await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// One user (admins only).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses((status = 200, body = UserView), CommonErrors))]
async fn get_user(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<UserId>,
) -> Result<Json<UserView>, ApiError> {
    user.require_admin()?;
    Ok(Json(state.core.store.get_user(id).await?.into()))
}

/// Adds a user (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = UserInput,
    responses((status = 201, body = UserView, description = "The stored user"), CommonErrors))]
async fn create_user(
    user: AuthUser,
    State(state): State<AppState>,
    Body(input): Body<UserInput>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let actor = actor(&user);
    let password = input.password.unwrap_or_default();
    let created = state
        .actions
        .create_user(&actor, &input.name, input.role, &password)
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Renames a user, changes the role and optionally the password (admins only; the last
/// admin cannot be demoted).
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = UserInput,
    responses((status = 200, body = UserView, description = "The stored user"), CommonErrors))]
async fn update_user(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<UserId>,
    Body(input): Body<UserInput>,
) -> Result<Json<UserView>, ApiError> {
    let actor = actor(&user);
    if actor.role != Role::Admin {
        return Err(ApiError::forbidden());
    }
    // Checked before anything is written, so a bad password leaves the name and role too.
    if let Some(p) = input.password.as_deref().filter(|p| !p.is_empty()) {
        crate::actions::check_password(p)?;
    }
    let updated = state
        .actions
        .update_user(&actor, id, &input.name, input.role)
        .await?;
    if let Some(p) = input.password.as_deref().filter(|p| !p.is_empty()) {
        state.actions.set_password(&actor, id, p).await?;
    }
    Ok(Json(updated.into()))
}

/// Deletes a user and their API tokens (admins only; not the last admin).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_user(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<UserId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_user(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub user_id: UserId,
    pub user_name: String,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created: i64,
    pub last_used: Option<i64>,
    pub revoked: bool,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            id: t.id,
            user_id: t.user_id,
            user_name: t.user_name,
            name: t.name,
            created: t.created,
            last_used: t.last_used,
            revoked: t.revoked,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenInput {
    /// What the token is for, e.g. `grafana`.
    pub name: String,
}

/// A new token with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub token: TokenView,
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// Your API tokens; an admin sees everyone's.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), CommonErrors))]
async fn list_tokens(
    user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.actions.list_tokens(&actor(&user)).await?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

/// Makes an API token for yourself, acting with your role.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = TokenInput,
    responses((status = 201, body = TokenCreated, description = "The token and its secret, shown once"),
        CommonErrors))]
async fn create_token(
    user: AuthUser,
    State(state): State<AppState>,
    Body(input): Body<TokenInput>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let (token, secret) = state
        .actions
        .create_token(&actor(&user), &input.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token: token.into(),
            secret,
        }),
    ))
}

/// Revokes one of your tokens (admins: anyone's). It stays listed as revoked.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked"), CommonErrors))]
async fn revoke_token(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<StatusCode, ApiError> {
    state.actions.revoke_token(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
