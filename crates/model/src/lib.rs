//! The Prophasis domain: the entities an administrator configures, the records the system
//! writes, their validation, and the health rules that turn classifications into the health
//! of hosts, host groups and services.
//!
//! This crate does no I/O and knows nothing of storage, HTTP or Lua, so every rule here is
//! a pure function that can be tested and benchmarked on its own.

pub mod entities;
pub mod health;
pub mod rules;
pub mod transition;
pub mod validate;

pub use entities::*;
pub use health::{worst_first, Classification, Health, UnknownHealth};
pub use validate::{Validate, ValidationError};
