//! The Prophasis server as a library: the binary (`prophasis`) is a thin command-line
//! shell over these modules, and end-to-end tests start the same pieces in-process.
//!
//! The server is wiring: it owns no domain rules (those are in `prophasis-model`), no
//! storage backend (`prophasis-store`) and no Lua (`prophasis-classifier`).

pub mod actions;
pub mod app;
pub mod catalog;
pub mod config;
pub mod dispatch;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod plugins;
pub mod quickstart;
pub mod scheduler;
pub mod serve;
pub mod serve_tls;
pub mod syslog;
pub mod ui;
pub mod web;
