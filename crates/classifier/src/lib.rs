//! Sandboxed, history-aware Lua classifiers.
//!
//! Plugins return raw values; the server decides their health with short Lua programs that
//! users edit in the web UI. This crate runs that untrusted code on the monitoring server
//! for every result, so it has to be both safe and fast. It knows nothing of HTTP or of the
//! store: the server gives it code and past results, and gets back a
//! [`Classification`](prophasis_model::Classification) plus [`Diagnostic`]s.
//!
//! - [`Engine`]: one Lua state with a compile cache; [`Engine::classify`] and
//!   [`Engine::dry_run`] (the same path). `Send`: keep one per blocking worker thread, or
//!   use [`EnginePool`]. Never call it on an async executor thread — use
//!   `tokio::task::spawn_blocking` or a dedicated thread.
//! - [`resolve`]: which classifier (plugin default or override) and `n_historical` apply.
//! - [`HistorySource`]: how the `history()` helper reads other plugins' results.
//!
//! The rest of this page is the plugin author's guide (`docs/classifiers.md`).
//!
#![doc = include_str!("../../../docs/classifiers.md")]

mod engine;
pub mod pattern;
mod resolve;
mod sandbox;

pub use engine::{
    samples_from_columns, Diagnostic, Engine, EngineConfig, EngineError, EnginePool, HistoryError,
    HistorySource, InputError, NoHistory, Outcome, Sample,
};
pub use resolve::{resolve, Resolved};
