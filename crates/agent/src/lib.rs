//! The Prophasis agent as a library, so the binary stays a thin shell and tests, the
//! benchmark and the server's end-to-end tests can start an agent in-process.
//!
//! The agent depends only on the protocol crate: it knows nothing of the server's storage,
//! classification or web layer.
//!
//! Starting an agent in-process: [`setup::setup`] writes a configuration (and returns the
//! key and fingerprint), then [`server::serve`] (or [`server::serve_with_shutdown`])
//! serves it on a `tokio::net::TcpListener` bound wherever the caller likes.

pub mod auth;
pub mod backends;
pub mod collectors;
pub mod config;
pub mod exec;
pub mod facts;
pub mod install;
pub mod plugins;
pub mod server;
pub mod setup;
pub mod tls;
