//! Installing, listing and removing plugin packages in the agent's plugin folder.
//!
//! Layout: `plugins_dir/<id>/` holds one extracted package (its `manifest.json` at the
//! root) plus [`RECORD_FILE`], which says what was installed (sha256, signer, time).
//! An install may arrive while the same plugin runs, or twice at once when two server
//! nodes push, so a new version is extracted and checked completely elsewhere and then
//! swapped in with one rename: a run sees either the old or the new folder, and a failed
//! install leaves the previous version working. Leftovers of a crash are hidden
//! `.new-*` / `.old-*` folders that [`cleanup_leftovers`] removes.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use prophasis_protocol::api::ErrorCode;
use prophasis_protocol::manifest::is_valid_plugin_id;
use prophasis_protocol::package::{self, Limits, PackageError, MANIFEST_FILE};
use prophasis_protocol::signature::{self, SignatureError, SignaturePolicy, SignerInfo};
use prophasis_protocol::Manifest;
use serde::{Deserialize, Serialize};

/// What the agent wrote beside an installed package, inside its folder.
pub const RECORD_FILE: &str = ".prophasis-install.json";

/// One installed plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    pub manifest: Manifest,
    /// `plugins_dir/<id>`: the package root; `entry` paths are relative to it.
    pub dir: PathBuf,
}

/// How a package got installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallRecord {
    /// Lowercase hex SHA-256 of the package archive.
    pub sha256: String,
    /// The verified signer, when a signature was checked.
    pub signer: Option<SignerInfo>,
    /// The signature policy in force at install time.
    pub policy: SignaturePolicy,
    /// Seconds since the Unix epoch.
    pub installed_at: u64,
}

/// Why an install or removal failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0:?} is not a plugin id: use a reverse-DNS id such as com.example.cpu_load (letters, digits, '_', '-' and dots)")]
    BadId(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the package was refused: {0}")]
    Package(PackageError),
    #[error("the package's manifest says id {found:?} but it was sent as {expected:?}: push it under its own id")]
    IdMismatch { expected: String, found: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl InstallError {
    /// The agent API error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            InstallError::BadId(_) => ErrorCode::BadRequest,
            InstallError::Signature(e) => e.code(),
            InstallError::Package(PackageError::Io { .. })
            | InstallError::Package(PackageError::DestinationExists { .. }) => ErrorCode::Internal,
            InstallError::Package(_) | InstallError::IdMismatch { .. } => ErrorCode::BadPackage,
            InstallError::Io { .. } => ErrorCode::Internal,
        }
    }
}

impl From<PackageError> for InstallError {
    fn from(e: PackageError) -> Self {
        InstallError::Package(e)
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> InstallError {
    let context = context.into();
    move |source| InstallError::Io { context, source }
}

/// One lock per plugin folder, so two installs (or an install and a removal) of the same
/// id in this process take turns; different ids proceed in parallel.
fn lock_for(dir: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(dir.to_path_buf()).or_default().clone()
}

/// A staging folder removed when the install ends, whatever happened.
struct Stage(PathBuf);

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A hidden sibling name that no other install can pick.
fn hidden_name(plugins_dir: &Path, kind: &str, id: &str) -> PathBuf {
    unique_name(plugins_dir, &format!(".{kind}"), id)
}

/// A name in `dir` that no other install, in this process or another, can pick.
fn unique_name(dir: &Path, kind: &str, id: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!("{kind}-{id}-{}-{n}-{nanos}", std::process::id()))
}

/// Installs (or replaces) plugin `expected_id` from a package archive.
///
/// Order: signature policy, then extraction into a fresh folder under `tmp_dir`, then the
/// manifest id check, then the swap into `plugins_dir/<id>`. Nothing in `plugins_dir`
/// changes unless every step passed.
pub fn install(
    archive: &[u8],
    signature: Option<&[u8]>,
    policy: SignaturePolicy,
    trusted_keys_dir: &Path,
    plugins_dir: &Path,
    tmp_dir: &Path,
    expected_id: &str,
) -> Result<Manifest, InstallError> {
    if !is_valid_plugin_id(expected_id) {
        return Err(InstallError::BadId(expected_id.to_string()));
    }
    let signer = signature::check(policy, archive, signature, trusted_keys_dir)?;

    fs::create_dir_all(tmp_dir).map_err(io_err(format!(
        "cannot create the temporary folder {}",
        tmp_dir.display()
    )))?;
    fs::create_dir_all(plugins_dir).map_err(io_err(format!(
        "cannot create the plugin folder {}",
        plugins_dir.display()
    )))?;
    let stage = Stage(unique_name(tmp_dir, "install", expected_id));
    fs::create_dir(&stage.0).map_err(io_err(format!(
        "cannot create a staging folder in {}",
        tmp_dir.display()
    )))?;
    let staged = stage.0.join("pkg");
    let manifest = package::extract(archive, &staged, Limits::default())?;
    if manifest.id != expected_id {
        return Err(InstallError::IdMismatch {
            expected: expected_id.to_string(),
            found: manifest.id,
        });
    }
    let record = InstallRecord {
        sha256: package::sha256_hex(archive),
        signer,
        policy,
        installed_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let record_json = serde_json::to_vec_pretty(&record).expect("record serializes");
    fs::write(staged.join(RECORD_FILE), record_json)
        .map_err(io_err("cannot write the install record"))?;

    // Bring the new folder next to its final place first: the swap below must be a
    // rename within one filesystem.
    let new = hidden_name(plugins_dir, "new", expected_id);
    match fs::rename(&staged, &new) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            // tmp_dir is on another filesystem: extract again, beside the target.
            package::extract(archive, &new, Limits::default())?;
            fs::write(
                new.join(RECORD_FILE),
                serde_json::to_vec_pretty(&record).expect("record serializes"),
            )
            .map_err(|e| {
                let _ = fs::remove_dir_all(&new);
                InstallError::Io {
                    context: "cannot write the install record".into(),
                    source: e,
                }
            })?;
        }
        Err(e) => {
            return Err(InstallError::Io {
                context: format!("cannot move the package into {}", plugins_dir.display()),
                source: e,
            })
        }
    }

    let target = plugins_dir.join(expected_id);
    let lock = lock_for(&target);
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = swap_in(&new, &target, plugins_dir, expected_id) {
        let _ = fs::remove_dir_all(&new);
        return Err(e);
    }
    tracing::info!(plugin = expected_id, version = manifest.version, sha256 = %record.sha256, "plugin installed");
    Ok(manifest)
}

/// Puts `new` at `target`; afterwards `new` is gone (or holds the previous version, which
/// this function removes).
fn swap_in(new: &Path, target: &Path, plugins_dir: &Path, id: &str) -> Result<(), InstallError> {
    if fs::symlink_metadata(target).is_err() {
        return fs::rename(new, target).map_err(io_err(format!(
            "cannot move the package to {}",
            target.display()
        )));
    }
    // Linux swaps two folders in one step: no moment without the plugin.
    if exchange(new, target).is_ok() {
        if let Err(e) = fs::remove_dir_all(new) {
            tracing::warn!(plugin = id, error = %e, "cannot remove the previous version");
        }
        return Ok(());
    }
    let old = hidden_name(plugins_dir, "old", id);
    fs::rename(target, &old).map_err(io_err(format!(
        "cannot move the previous version of {id} aside"
    )))?;
    if let Err(e) = fs::rename(new, target) {
        // Put the previous version back so it keeps working.
        let _ = fs::rename(&old, target);
        return Err(InstallError::Io {
            context: format!("cannot move the package to {}", target.display()),
            source: e,
        });
    }
    if let Err(e) = fs::remove_dir_all(&old) {
        tracing::warn!(plugin = id, error = %e, "cannot remove the previous version");
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

fn read_installed(dir: &Path, id: &str) -> Result<Installed, String> {
    let bytes = fs::read(dir.join(MANIFEST_FILE)).map_err(|e| format!("manifest.json: {e}"))?;
    let manifest = Manifest::from_json(&bytes).map_err(|e| e.to_string())?;
    if manifest.id != id {
        return Err(format!(
            "the folder is named {id:?} but its manifest says {:?}",
            manifest.id
        ));
    }
    Ok(Installed {
        manifest,
        dir: dir.to_path_buf(),
    })
}

/// Every installed plugin, sorted by id. Folders that do not hold a valid package are
/// skipped with a warning, so one broken plugin never hides the others.
pub fn list(plugins_dir: &Path) -> Vec<Installed> {
    let rd = match fs::read_dir(plugins_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(dir = %plugins_dir.display(), error = %e, "cannot list the plugin folder");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || !is_valid_plugin_id(name) {
            tracing::warn!(entry = %entry.path().display(), "skipping: not a plugin folder");
            continue;
        }
        match read_installed(&entry.path(), name) {
            Ok(i) => out.push(i),
            Err(e) => {
                tracing::warn!(plugin = name, error = %e, "skipping a broken plugin folder")
            }
        }
    }
    out.sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id));
    out
}

/// The installed plugin `id`, if there is a valid one.
pub fn get(plugins_dir: &Path, id: &str) -> Option<Installed> {
    if !is_valid_plugin_id(id) {
        return None;
    }
    let dir = plugins_dir.join(id);
    match read_installed(&dir, id) {
        Ok(i) => Some(i),
        Err(e) => {
            if dir.exists() {
                tracing::warn!(plugin = id, error = %e, "broken plugin folder");
            }
            None
        }
    }
}

/// The install record of plugin `id`, when it was installed by this agent.
pub fn record(plugins_dir: &Path, id: &str) -> Option<InstallRecord> {
    if !is_valid_plugin_id(id) {
        return None;
    }
    let bytes = fs::read(plugins_dir.join(id).join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes plugin `id`; `Ok(false)` when it was not installed.
pub fn remove(plugins_dir: &Path, id: &str) -> Result<bool, InstallError> {
    if !is_valid_plugin_id(id) {
        return Err(InstallError::BadId(id.to_string()));
    }
    let target = plugins_dir.join(id);
    let lock = lock_for(&target);
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    if fs::symlink_metadata(&target).is_err() {
        return Ok(false);
    }
    // Rename first so the plugin disappears at once, even if deleting takes a while.
    let gone = hidden_name(plugins_dir, "old", id);
    fs::rename(&target, &gone).map_err(io_err(format!("cannot remove {}", target.display())))?;
    fs::remove_dir_all(&gone).map_err(io_err(format!("cannot delete {}", gone.display())))?;
    tracing::info!(plugin = id, "plugin removed");
    Ok(true)
}

/// Deletes the hidden folders an interrupted install or removal left in `plugins_dir`.
/// Call once at start-up, before serving requests.
pub fn cleanup_leftovers(plugins_dir: &Path) {
    let Ok(rd) = fs::read_dir(plugins_dir) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".new-") || name.starts_with(".old-") {
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                tracing::warn!(entry = %entry.path().display(), error = %e, "cannot remove a leftover");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn package(id: &str, version: f64) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let manifest = serde_json::json!({
            "id": id, "name": "Test", "version": version,
            "default_classifier": "classifier.lua", "entry": "run.sh",
        });
        fs::write(d.path().join("manifest.json"), manifest.to_string()).unwrap();
        fs::write(d.path().join("classifier.lua"), "return 'ok'\n").unwrap();
        fs::write(d.path().join("run.sh"), format!("#!/bin/sh\n# {version}\n")).unwrap();
        fs::set_permissions(d.path().join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(d.path().join("version.txt"), version.to_string()).unwrap();
        package::pack_dir(d.path()).unwrap()
    }

    struct Env {
        _root: tempfile::TempDir,
        plugins: PathBuf,
        tmp: PathBuf,
        keys: PathBuf,
    }

    fn env() -> Env {
        let root = tempfile::tempdir().unwrap();
        let plugins = root.path().join("plugins");
        let tmp = root.path().join("tmp");
        let keys = root.path().join("keys");
        Env {
            plugins,
            tmp,
            keys,
            _root: root,
        }
    }

    fn inst(e: &Env, archive: &[u8], id: &str) -> Result<Manifest, InstallError> {
        install(
            archive,
            None,
            SignaturePolicy::VerifyIfPresent,
            &e.keys,
            &e.plugins,
            &e.tmp,
            id,
        )
    }

    fn hidden_leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn install_list_get_remove() {
        let e = env();
        let m = inst(&e, &package("com.example.a", 1.0), "com.example.a").unwrap();
        assert_eq!(m.version, 1.0);
        inst(&e, &package("com.example.b", 2.0), "com.example.b").unwrap();
        let all = list(&e.plugins);
        assert_eq!(
            all.iter()
                .map(|i| i.manifest.id.as_str())
                .collect::<Vec<_>>(),
            ["com.example.a", "com.example.b"]
        );
        let a = get(&e.plugins, "com.example.a").unwrap();
        assert_eq!(a.dir, e.plugins.join("com.example.a"));
        assert!(a.dir.join("run.sh").is_file());
        let rec = record(&e.plugins, "com.example.a").unwrap();
        assert_eq!(
            rec.sha256,
            package::sha256_hex(&package("com.example.a", 1.0))
        );
        assert!(rec.signer.is_none());

        // Upgrade replaces the folder.
        inst(&e, &package("com.example.a", 3.0), "com.example.a").unwrap();
        let a = get(&e.plugins, "com.example.a").unwrap();
        assert_eq!(a.manifest.version, 3.0);
        assert_eq!(fs::read_to_string(a.dir.join("version.txt")).unwrap(), "3");

        assert!(remove(&e.plugins, "com.example.a").unwrap());
        assert!(!remove(&e.plugins, "com.example.a").unwrap());
        assert!(get(&e.plugins, "com.example.a").is_none());
        assert!(hidden_leftovers(&e.plugins).is_empty());
        assert_eq!(fs::read_dir(&e.tmp).unwrap().count(), 0, "staging removed");
    }

    #[test]
    fn failures_keep_the_previous_version() {
        let e = env();
        inst(&e, &package("com.example.a", 1.0), "com.example.a").unwrap();

        let err = inst(&e, b"garbage", "com.example.a").unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadPackage, "{err}");

        let err = inst(&e, &package("com.example.other", 2.0), "com.example.a").unwrap_err();
        assert!(matches!(err, InstallError::IdMismatch { .. }), "{err}");
        assert_eq!(err.code(), ErrorCode::BadPackage);

        let err = install(
            &package("com.example.a", 2.0),
            None,
            SignaturePolicy::Enforce,
            &e.keys,
            &e.plugins,
            &e.tmp,
            "com.example.a",
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::SignatureRequired, "{err}");
        let err = install(
            &package("com.example.a", 2.0),
            Some(b"not a signature"),
            SignaturePolicy::VerifyIfPresent,
            &e.keys,
            &e.plugins,
            &e.tmp,
            "com.example.a",
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{err}");

        let err = inst(&e, &package("com.example.a", 2.0), "../etc").unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadRequest);

        assert_eq!(
            get(&e.plugins, "com.example.a").unwrap().manifest.version,
            1.0
        );
        assert!(hidden_leftovers(&e.plugins).is_empty());
        assert_eq!(fs::read_dir(&e.tmp).unwrap().count(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_folders() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::write(a.join("x"), "a").unwrap();
        fs::create_dir(&b).unwrap();
        fs::write(b.join("x"), "b").unwrap();
        // Filesystems without RENAME_EXCHANGE fall back to two renames; say so.
        match exchange(&a, &b) {
            Ok(()) => assert_eq!(fs::read_to_string(b.join("x")).unwrap(), "a"),
            Err(e) => eprintln!("RENAME_EXCHANGE unsupported here ({e}): two-rename fallback"),
        }
    }

    #[test]
    fn broken_folders_are_skipped() {
        let e = env();
        inst(&e, &package("com.example.a", 1.0), "com.example.a").unwrap();
        fs::create_dir_all(e.plugins.join("com.example.broken")).unwrap();
        fs::write(e.plugins.join("com.example.broken/manifest.json"), "{").unwrap();
        fs::create_dir_all(e.plugins.join("com.example.wrong")).unwrap();
        fs::copy(
            e.plugins.join("com.example.a/manifest.json"),
            e.plugins.join("com.example.wrong/manifest.json"),
        )
        .unwrap();
        fs::create_dir_all(e.plugins.join(".new-com.example.a-1")).unwrap();
        let ids: Vec<_> = list(&e.plugins)
            .into_iter()
            .map(|i| i.manifest.id)
            .collect();
        assert_eq!(ids, ["com.example.a"]);
        assert!(get(&e.plugins, "com.example.broken").is_none());
        assert!(get(&e.plugins, "com.example.wrong").is_none());
        cleanup_leftovers(&e.plugins);
        assert!(hidden_leftovers(&e.plugins).is_empty());
        assert!(list(&e.plugins.join("missing")).is_empty());
    }

    #[test]
    fn concurrent_installs_of_one_id_do_not_corrupt() {
        let e = Arc::new(env());
        let packages: Vec<Arc<Vec<u8>>> = (1..=6)
            .map(|v| Arc::new(package("com.example.race", v as f64)))
            .collect();
        let mut threads = Vec::new();
        for round in 0..3 {
            for p in &packages {
                let e = e.clone();
                let p = p.clone();
                threads.push(std::thread::spawn(move || {
                    let _ = round;
                    inst(&e, &p, "com.example.race").unwrap();
                    // Whatever version is installed is whole.
                    let i = get(&e.plugins, "com.example.race").expect("always installed");
                    let v = fs::read_to_string(i.dir.join("version.txt")).unwrap_or_default();
                    assert!(!v.is_empty());
                }));
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        let i = get(&e.plugins, "com.example.race").unwrap();
        let v: f64 = fs::read_to_string(i.dir.join("version.txt"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(v, i.manifest.version, "manifest and files of one version");
        assert!(hidden_leftovers(&e.plugins).is_empty());
        assert_eq!(list(&e.plugins).len(), 1);
    }
}
