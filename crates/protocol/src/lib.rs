//! The agent wire protocol, plugin manifests and plugin packages: the one crate the agent
//! and the server share. Anything both sides must agree on byte for byte lives here, and
//! nothing else does. It knows nothing of the server's storage or web layer.

pub mod api;
pub mod manifest;
pub mod package;
pub mod signature;

pub use manifest::{Manifest, ManifestError, Mode};
