//! Sandboxed, history-aware Lua classifiers.
