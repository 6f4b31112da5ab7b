//! Users: passwords are hashed with argon2 here and nowhere else, and the last admin can
//! be neither deleted nor demoted, so nobody locks themselves out of the configuration.

use prophasis_model::{LogCategory, Role, User, UserId, Validate};

use super::{ActionError, Actions, Actor, Result};
use crate::web::auth::hash_password;

/// Shortest password accepted: long enough that guessing over the throttled login is
/// hopeless, short enough for a passphrase.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Refuses passwords that are too short or too long (argon2 input is bounded to keep
/// hashing cheap to refuse).
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ActionError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(ActionError::invalid(
            "password",
            "must be at most 1024 bytes",
        ));
    }
    Ok(())
}

impl Actions {
    async fn user_changed(&self, actor: &Actor, title: &str, detail: String) {
        self.credentials.forget_all();
        self.audit(LogCategory::System, actor, title, detail).await;
    }

    async fn hash(password: &str) -> Result<String> {
        check_password(password)?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| ActionError::invalid("password", format!("hashing stopped: {e}")))?
            .map_err(|e| ActionError::invalid("password", e))
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<User> {
        actor.require_admin()?;
        let mut user = User {
            id: 0,
            name: name.to_string(),
            role,
            password_hash: String::new(),
        };
        user.validate()?;
        user.password_hash = Self::hash(password).await?;
        user.id = self.store.create_user(&user).await?;
        self.user_changed(
            actor,
            "User added",
            format!("user {name:?} ({})", role.as_str()),
        )
        .await;
        Ok(user)
    }

    /// Changes a password: admins may change anyone's, everyone their own.
    pub async fn set_password(&self, actor: &Actor, id: UserId, password: &str) -> Result<()> {
        if actor.user != Some(id) {
            actor.require_admin()?;
        }
        let mut user = self.store.get_user(id).await?;
        user.password_hash = Self::hash(password).await?;
        self.store.update_user(&user).await?;
        self.user_changed(
            actor,
            "Password changed",
            format!("password of user {:?}", user.name),
        )
        .await;
        Ok(())
    }

    async fn other_admins(&self, id: UserId) -> Result<usize> {
        Ok(self
            .store
            .list_users()
            .await?
            .iter()
            .filter(|u| u.role == Role::Admin && u.id != id)
            .count())
    }

    /// Renames a user or changes their role, keeping at least one admin.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        name: &str,
        role: Role,
    ) -> Result<User> {
        actor.require_admin()?;
        let mut user = self.store.get_user(id).await?;
        if user.role == Role::Admin && role != Role::Admin && self.other_admins(id).await? == 0 {
            return Err(ActionError::conflict(
                Some("role"),
                "this is the only admin: make another user an admin first",
            ));
        }
        user.name = name.to_string();
        user.role = role;
        user.validate()?;
        self.store.update_user(&user).await?;
        self.user_changed(
            actor,
            "User changed",
            format!("user {name:?} ({})", role.as_str()),
        )
        .await;
        Ok(user)
    }

    pub async fn delete_user(&self, actor: &Actor, id: UserId) -> Result<()> {
        actor.require_admin()?;
        let user = self.store.get_user(id).await?;
        if user.role == Role::Admin && self.other_admins(id).await? == 0 {
            return Err(ActionError::conflict(
                None,
                "this is the only admin and cannot be deleted: make another user an admin first",
            ));
        }
        self.store.delete_user(id).await?;
        self.user_changed(actor, "User deleted", format!("user {:?}", user.name))
            .await;
        Ok(())
    }
}
