//! The system log: errors an administrator should see (dispatch, plugin distribution,
//! classification, storage, scheduling), written to the store by one task so that the
//! code reporting them never waits on the database.
//!
//! The same problem repeating (a host down for an hour is a failed run every 30 s) is
//! written once per [`REPEAT_WINDOW`] per (category, title), so the log stays readable.

use std::collections::HashMap;
use std::sync::Arc;

use prophasis_model::{LogCategory, Millis, SystemLogMessage};
use prophasis_store::{now_millis, Store};
use tokio::sync::mpsc;

/// How long an identical (category, title) is not written again.
pub const REPEAT_WINDOW: Millis = 10 * 60 * 1000;

#[derive(Clone)]
pub struct SysLog {
    tx: mpsc::UnboundedSender<SystemLogMessage>,
}

impl SysLog {
    /// Starts the writer task.
    pub fn start(store: Arc<Store>) -> SysLog {
        let (tx, mut rx) = mpsc::unbounded_channel::<SystemLogMessage>();
        tokio::spawn(async move {
            let mut last: HashMap<(LogCategory, String), Millis> = HashMap::new();
            while let Some(msg) = rx.recv().await {
                let key = (msg.category, msg.title.clone());
                if last
                    .get(&key)
                    .is_some_and(|&t| msg.time - t < REPEAT_WINDOW)
                {
                    continue;
                }
                last.insert(key, msg.time);
                if last.len() > 10_000 {
                    let cutoff = msg.time - REPEAT_WINDOW;
                    last.retain(|_, t| *t >= cutoff);
                }
                if let Err(e) = store.add_log(&msg).await {
                    tracing::error!(
                        "could not write to the system log: {e}; message was: {}: {}",
                        msg.title,
                        msg.message
                    );
                }
            }
        });
        SysLog { tx }
    }

    /// Records a message; also goes to the process log.
    pub fn log(&self, category: LogCategory, title: impl Into<String>, message: impl Into<String>) {
        let msg = SystemLogMessage {
            id: 0,
            time: now_millis(),
            category,
            title: title.into(),
            message: message.into(),
            read: false,
        };
        tracing::warn!(
            category = category.as_str(),
            "{}: {}",
            msg.title,
            msg.message
        );
        let _ = self.tx.send(msg);
    }
}
