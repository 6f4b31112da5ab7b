//! The Prophasis agent as a library, so the binary stays a thin shell and tests, the
//! benchmark and the server's end-to-end tests can start an agent in-process.
//!
//! The agent depends only on the protocol crate: it knows nothing of the server's storage,
//! classification or web layer.

pub mod collectors;
pub mod install;
