//! Plugins on the server side: turning an uploaded package into a stored plugin, and the
//! reference plugins embedded in the binary (installed by `prophasis quickstart`).

use std::path::Path;

use prophasis_model::{Plugin, PluginPackage};
use prophasis_protocol::package::{self, PackageError};
use prophasis_store::{Store, StoreError};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));
}

/// The folder names of the embedded reference plugins.
pub fn reference_plugin_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = embedded::FILES
        .iter()
        .filter_map(|(p, _, _)| p.split_once('/').map(|(d, _)| d))
        .collect();
    names.dedup();
    names
}

/// Writes the embedded reference plugin `name` to `dest/name` (for packing).
pub fn write_reference_plugin(name: &str, dest: &Path) -> std::io::Result<std::path::PathBuf> {
    let dir = dest.join(name);
    for (path, bytes, exec) in embedded::FILES {
        let Some(rel) = path.strip_prefix(name).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let target = dir.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if *exec { 0o755 } else { 0o644 };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(dir)
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The plugin a package describes, with its default classifier as the classifier in force.
pub fn plugin_from_package(archive: &[u8]) -> Result<Plugin, PackageError> {
    let info = package::inspect(archive)?;
    let m = &info.manifest;
    Ok(Plugin {
        id: m.id.clone(),
        name: m.name.clone(),
        description: m.description.clone(),
        version: m.version,
        n_historical: m.default_n_historical,
        classifier: info.classifier.clone(),
        view: m.view.clone(),
        view_source: info.view_source.clone(),
        manifest: serde_json::to_value(m).unwrap_or_default(),
    })
}

/// Stores an uploaded package: a new plugin, or a new version of an existing one. A
/// classifier a user edited (it differs from the old package's default) is kept; an
/// unedited one follows the new package's default.
pub async fn install_package(
    store: &Store,
    archive: Vec<u8>,
    signature: Option<Vec<u8>>,
) -> Result<Plugin, UploadError> {
    let mut plugin = plugin_from_package(&archive)?;
    let package = PluginPackage { archive, signature };
    match store.get_plugin(&plugin.id).await {
        Ok(existing) => {
            let old_default = store
                .plugin_package(&plugin.id)
                .await
                .ok()
                .and_then(|p| package::inspect(&p.archive).ok())
                .map(|i| i.classifier);
            if old_default.as_deref() != Some(existing.classifier.as_str()) {
                plugin.classifier = existing.classifier;
                plugin.n_historical = existing.n_historical;
            }
            store.update_plugin(&plugin, Some(&package)).await?;
        }
        Err(StoreError::NotFound { .. }) => store.put_plugin(&plugin, &package).await?,
        Err(e) => return Err(e.into()),
    }
    Ok(plugin)
}
