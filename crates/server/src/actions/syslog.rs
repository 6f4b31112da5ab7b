//! Read marks on the system log. Marking a message read changes no configuration, so any
//! logged-in user may, and nothing is reloaded or audited; it lives here so web handlers
//! keep to reading the store.

use super::{Actions, Actor, Result};

impl Actions {
    pub async fn mark_log_read(&self, _actor: &Actor, id: i64) -> Result<()> {
        Ok(self.store.mark_log_read(id).await?)
    }

    /// Returns how many messages were unread.
    pub async fn mark_all_log_read(&self, _actor: &Actor) -> Result<u64> {
        Ok(self.store.mark_all_log_read().await?)
    }
}
