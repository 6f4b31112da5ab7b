//! The server's view of the plugin folder: finding an installed plugin's manifest fast on
//! every run, listing them, and funnelling installs and removals through one lock.
//!
//! Installing itself (signature policy, safe extraction, atomic replace) lives in
//! [`crate::install`]; this module only adds what a long-running daemon needs on top: a
//! manifest cache keyed by the file's identity, so a run does not re-read and re-parse
//! `manifest.json` each time, and serialisation of writers so two uploads of the same
//! plugin cannot interleave.
//!
//! Layout: `plugins_dir/<id>/manifest.json` plus the package's other files.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prophasis_protocol::api::InstalledPlugin;
use prophasis_protocol::manifest::is_valid_plugin_id;
use prophasis_protocol::Manifest;

/// One installed plugin.
#[derive(Debug, Clone)]
pub struct Installed {
    pub manifest: Arc<Manifest>,
    pub dir: PathBuf,
}

impl Installed {
    pub fn summary(&self) -> InstalledPlugin {
        InstalledPlugin {
            id: self.manifest.id.clone(),
            name: self.manifest.name.clone(),
            version: self.manifest.version,
        }
    }
}

/// What is wrong with an installed copy that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LookupError {
    #[error("plugin {0} is not installed on this agent")]
    NotFound(String),
    #[error("the installed copy of plugin {id} is damaged ({why}); push the package again")]
    Damaged { id: String, why: String },
}

/// Identity of a manifest file: an atomic replace gives a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    dev: u64,
    mtime_ns: i128,
    len: u64,
}

fn stamp(m: &std::fs::Metadata) -> Stamp {
    Stamp {
        ino: m.ino(),
        dev: m.dev(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        len: m.len(),
    }
}

pub struct PluginStore {
    dir: PathBuf,
    cache: Mutex<HashMap<String, (Stamp, Arc<Manifest>)>>,
    /// Held by installs and removals; runs never take it.
    pub write_lock: tokio::sync::Mutex<()>,
}

impl PluginStore {
    pub fn new(plugins_dir: PathBuf) -> PluginStore {
        PluginStore {
            dir: plugins_dir,
            cache: Mutex::new(HashMap::new()),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The installed plugin `id` (which must already be a valid id).
    pub fn get(&self, id: &str) -> Result<Installed, LookupError> {
        debug_assert!(is_valid_plugin_id(id));
        let dir = self.dir.join(id);
        let path = dir.join(prophasis_protocol::package::MANIFEST_FILE);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                self.forget(id);
                return Err(LookupError::NotFound(id.to_string()));
            }
        };
        let st = stamp(&meta);
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((s, m)) = cache.get(id) {
                if *s == st {
                    return Ok(Installed {
                        manifest: m.clone(),
                        dir,
                    });
                }
            }
        }
        let damaged = |why: String| LookupError::Damaged {
            id: id.to_string(),
            why,
        };
        let bytes = std::fs::read(&path).map_err(|e| damaged(e.to_string()))?;
        let manifest = Manifest::from_json(&bytes).map_err(|e| damaged(e.to_string()))?;
        if manifest.id != id {
            return Err(damaged(format!(
                "its manifest names the id {}",
                manifest.id
            )));
        }
        let manifest = Arc::new(manifest);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), (st, manifest.clone()));
        Ok(Installed { manifest, dir })
    }

    /// Every usable installed plugin, sorted by id. Damaged copies are left out (they are
    /// reported when run, and replaced by the next push).
    pub fn list(&self) -> Vec<Installed> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_valid_plugin_id(name) {
                continue;
            }
            if let Ok(p) = self.get(name) {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id));
        out
    }

    pub fn forget(&self, id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}
