//! Detached OpenPGP signatures of plugin packages (placeholder, filled in below).
