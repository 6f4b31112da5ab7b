//! Plugin packages: the `.tar.gz` archives the server stores and pushes to agents.
//!
//! A package holds exactly one top-level folder with `manifest.json` and the plugin's
//! files. Packages come from users (uploaded to the server) and from the network (pushed
//! to agents), so reading one must never write outside the destination, never follow a
//! link, and never let a small archive expand without bound. The `tar` crate's own
//! `unpack` is not safe enough for that (it aborts halfway through on a symlink pointing
//! outside, after creating it — see SPIKES.md), so this module walks the entries itself:
//! only regular files and directories, relative paths without `..`, capped counts and
//! sizes counted while decompressing, and extraction into a temporary folder that is
//! renamed into place only when everything passed.
//!
//! Both sides use the same walker: the server (`inspect`, `pack_dir`) to refuse a bad
//! package at upload time, the agent (`extract`) to install it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::manifest::{is_safe_relative_path, Manifest, ManifestError};

/// The name of the manifest inside the package folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The built-in collectors of the agent, so the server can refuse a package naming an
/// unknown one at upload time. The agent checks its own list against this one in a test.
pub const BUILTIN_COLLECTORS: &[&str] = &[
    "cpu_load",
    "memory_usage",
    "swap_usage",
    "disk_usage",
    "raid_md",
    "heartbeat",
    "uptime",
    "network",
    "process_running",
    "tcp_port_open",
    "file_age",
];

/// The modification time written into packed archives, so that packing the same folder
/// twice gives the same bytes (and the same signature). 1980-01-01, like zip.
pub const PACK_MTIME: u64 = 315_532_800;

/// The largest classifier or view template `inspect` reads into memory.
pub const MAX_TEXT_FILE_BYTES: u64 = 1024 * 1024;

/// Caps on what one package may unpack to. A package is a small script and a Lua file:
/// the defaults leave plenty of room for a bundled interpreter or a static binary while
/// stopping gzip bombs and millions of tiny files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in the archive (files and folders).
    pub max_files: usize,
    /// Sum of the sizes of all files, uncompressed.
    pub max_total_bytes: u64,
    /// Size of any one file, uncompressed.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: 1_000,
            max_total_bytes: 64 * 1024 * 1024,
            max_file_bytes: 32 * 1024 * 1024,
        }
    }
}

/// What a package holds, read without touching the disk (the server's view of an upload).
#[derive(Debug, Clone, PartialEq)]
pub struct PackageInfo {
    pub manifest: Manifest,
    /// The text of the manifest's `default_classifier` file.
    pub classifier: String,
    /// The text of the manifest's `view_source` file, when `view` is `custom`.
    pub view_source: Option<String>,
    /// Name of the package's top-level folder.
    pub top_dir: String,
    /// Number of entries (files and folders).
    pub entries: usize,
    /// Sum of the file sizes, uncompressed.
    pub total_bytes: u64,
}

/// Why a package was refused. Messages say what is wrong and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the package is not a readable .tar.gz archive: {0}")]
    Archive(String),
    #[error("the package is empty: it must hold one folder with manifest.json")]
    Empty,
    #[error("package entry {path:?} is refused: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("package entry {path:?} is a {kind}: only regular files and folders are allowed (no links, devices or fifos)")]
    EntryType { path: String, kind: String },
    #[error("package entry {path:?} appears twice")]
    Duplicate { path: String },
    #[error("the package must hold exactly one top-level folder, found {found}")]
    TopLevel { found: String },
    #[error("the package has more than {limit} entries")]
    TooManyFiles { limit: usize },
    #[error("the package unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("package file {path:?} is larger than {limit} bytes")]
    FileTooLarge { path: String, limit: u64 },
    #[error("the package has no manifest.json in its top-level folder")]
    MissingManifest,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("manifest.json key `{key}` names {path:?}, which is not a file in the package")]
    MissingFile { key: &'static str, path: String },
    #[error("manifest.json key `entry` names {path:?}, which is not executable: chmod +x it before packing")]
    NotExecutable { path: String },
    #[error("manifest.json key `{key}` names {path:?}, which is not UTF-8 text of at most {limit} bytes")]
    BadText {
        key: &'static str,
        path: String,
        limit: u64,
    },
    #[error("{path} already exists: extraction needs a destination that does not exist yet")]
    DestinationExists { path: PathBuf },
    #[error("{path} is a symbolic link: packages may hold only regular files and folders")]
    SymlinkInSource { path: PathBuf },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> PackageError {
    let context = context.into();
    move |source| PackageError::Io { context, source }
}

/// The lowercase hex SHA-256 of a package, the name agents and the server compare.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads the archive and returns its validated manifest, without writing anything.
pub fn read_manifest(archive: &[u8]) -> Result<Manifest, PackageError> {
    inspect(archive).map(|i| i.manifest)
}

/// Validates the whole archive in memory and returns the manifest with the default
/// classifier and view template texts, with the default [`Limits`].
pub fn inspect(archive: &[u8]) -> Result<PackageInfo, PackageError> {
    inspect_with(archive, Limits::default())
}

/// Like [`inspect`] with explicit limits.
pub fn inspect_with(archive: &[u8], limits: Limits) -> Result<PackageInfo, PackageError> {
    // Only small files are kept: the manifest, classifier and template are among them,
    // and holding a 32 MiB binary in memory to throw it away would be waste.
    let mut small: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let walked = walk(archive, limits, |rel, file| {
        if let EntryKind::File { reader, size, .. } = file {
            if size <= MAX_TEXT_FILE_BYTES {
                let mut buf = Vec::with_capacity(size as usize);
                reader.read_to_end(&mut buf).map_err(read_error)?;
                small.insert(rel.to_string(), buf);
            }
        }
        Ok(())
    })?;
    let manifest = walked.manifest(&small)?;
    let text = |key: &'static str, path: &str| -> Result<String, PackageError> {
        small
            .get(path)
            .and_then(|b| String::from_utf8(b.clone()).ok())
            .ok_or_else(|| PackageError::BadText {
                key,
                path: path.to_string(),
                limit: MAX_TEXT_FILE_BYTES,
            })
    };
    let classifier = text("default_classifier", &manifest.default_classifier)?;
    let view_source = match (&manifest.view_source, manifest.view.as_str()) {
        (Some(p), "custom") => Some(text("view_source", p)?),
        _ => None,
    };
    Ok(PackageInfo {
        manifest,
        classifier,
        view_source,
        top_dir: walked.top,
        entries: walked.entries,
        total_bytes: walked.total_bytes,
    })
}

/// Extracts the content of the archive's top-level folder into `dest`, which must not
/// exist yet (its parent must). Everything is written into a temporary folder beside
/// `dest` that is renamed to `dest` only when the whole archive and its manifest passed;
/// on any error nothing is left behind.
pub fn extract(archive: &[u8], dest: &Path, limits: Limits) -> Result<Manifest, PackageError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(PackageError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(&parent)
        .map_err(io_err(format!(
            "cannot create a temporary folder in {}",
            parent.display()
        )))?;
    let root = tmp.path().to_path_buf();
    let mut manifest_bytes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let walked = walk(archive, limits, |rel, kind| {
        // `rel` was validated: relative, no `..`, no empty or `.` parts. The tree under
        // `root` holds only folders and files this function made, so no link can
        // redirect a write.
        let target = root.join(rel);
        match kind {
            EntryKind::Dir => {
                fs::create_dir_all(&target).map_err(io_err(format!("cannot create folder {rel:?}")))
            }
            EntryKind::File {
                reader,
                executable,
                size,
            } => {
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p)
                        .map_err(io_err(format!("cannot create the folder of {rel:?}")))?;
                }
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(io_err(format!("cannot create file {rel:?}")))?;
                if rel == MANIFEST_FILE {
                    let mut buf = Vec::with_capacity(size.min(MAX_TEXT_FILE_BYTES) as usize);
                    reader
                        .take(MAX_TEXT_FILE_BYTES + 1)
                        .read_to_end(&mut buf)
                        .map_err(read_error)?;
                    out.write_all(&buf)
                        .map_err(io_err(format!("cannot write {rel:?}")))?;
                    manifest_bytes.insert(rel.to_string(), buf);
                } else {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = reader.read(&mut buf).map_err(read_error)?;
                        if n == 0 {
                            break;
                        }
                        out.write_all(&buf[..n])
                            .map_err(io_err(format!("cannot write {rel:?}")))?;
                    }
                }
                set_mode(&target, executable)
            }
        }
    })?;
    let manifest = walked.manifest(&manifest_bytes)?;
    fs::rename(&root, dest).map_err(io_err(format!(
        "cannot move the extracted package to {}",
        dest.display()
    )))?;
    // The folder now lives at `dest`; nothing is left for the guard to remove.
    let _ = tmp.keep();
    Ok(manifest)
}

#[cfg(unix)]
fn set_mode(path: &Path, executable: bool) -> Result<(), PackageError> {
    use std::os::unix::fs::PermissionsExt;
    // Never setuid/setgid/sticky, never world-writable: only the exec bit is taken from
    // the archive.
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("cannot set the mode of {}", path.display())))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _executable: bool) -> Result<(), PackageError> {
    Ok(())
}

/// One entry as the walker hands it to its visitor.
enum EntryKind<'r> {
    Dir,
    File {
        reader: &'r mut dyn Read,
        size: u64,
        executable: bool,
    },
}

/// What the walk learnt about the archive as a whole.
struct Walked {
    top: String,
    entries: usize,
    total_bytes: u64,
    /// Regular files (relative to the top folder) with their exec bit.
    files: BTreeMap<String, bool>,
}

impl Walked {
    /// Parses manifest.json (whose bytes the visitor kept) and checks the files it names.
    fn manifest(&self, kept: &BTreeMap<String, Vec<u8>>) -> Result<Manifest, PackageError> {
        if !self.files.contains_key(MANIFEST_FILE) {
            return Err(PackageError::MissingManifest);
        }
        let bytes = kept.get(MANIFEST_FILE).ok_or(PackageError::BadText {
            key: "manifest",
            path: MANIFEST_FILE.to_string(),
            limit: MAX_TEXT_FILE_BYTES,
        })?;
        let manifest = Manifest::from_json(bytes)?;
        check_named_files(&manifest, |p| self.files.get(p).copied())?;
        Ok(manifest)
    }
}

/// Checks that the files the manifest names exist (and that `entry` is executable);
/// `lookup` answers `Some(executable)` for a regular file.
fn check_named_files(
    manifest: &Manifest,
    lookup: impl Fn(&str) -> Option<bool>,
) -> Result<(), PackageError> {
    let need = |key: &'static str, path: &str| match lookup(path) {
        Some(exec) => Ok(exec),
        None => Err(PackageError::MissingFile {
            key,
            path: path.to_string(),
        }),
    };
    need("default_classifier", &manifest.default_classifier)?;
    if manifest.view == "custom" {
        if let Some(p) = &manifest.view_source {
            need("view_source", p)?;
        }
    }
    if let Some(entry) = &manifest.entry {
        if !need("entry", entry)? {
            return Err(PackageError::NotExecutable {
                path: entry.clone(),
            });
        }
    }
    Ok(())
}

/// Counts the bytes coming out of the decompressor and fails past a cap, so a gzip bomb
/// is stopped after `cap` bytes whatever the headers inside claim.
struct CappedReader<R> {
    inner: R,
    read: u64,
    cap: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(io::Error::other(CapExceeded));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct CapExceeded;

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed size cap exceeded")
    }
}

impl std::error::Error for CapExceeded {}

fn is_cap_exceeded(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<CapExceeded>())
}

/// Maps an error reading entry data; the walker fills in the real limit of `TooLarge`.
fn read_error(e: io::Error) -> PackageError {
    if is_cap_exceeded(&e) {
        PackageError::TooLarge { limit: 0 }
    } else {
        PackageError::Archive(e.to_string())
    }
}

/// Splits and checks an entry path; returns (top folder, path inside it or "").
fn split_path(raw: &[u8]) -> Result<(String, String), PackageError> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let refuse = |reason| PackageError::UnsafePath {
        path: shown.clone(),
        reason,
    };
    let s = std::str::from_utf8(raw).map_err(|_| refuse("the path is not UTF-8"))?;
    if s.starts_with('/') {
        return Err(refuse("absolute paths are not allowed"));
    }
    if s.contains('\\') || s.contains('\0') {
        return Err(refuse("backslashes and NUL bytes are not allowed in paths"));
    }
    // `tar czf x.tar.gz ./folder` writes a leading `./`; it means the same folder.
    let mut s = s;
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    let s = s.trim_end_matches('/');
    if s.is_empty() || s == "." {
        return Ok((String::new(), String::new()));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(refuse("`..` is not allowed in paths"));
    }
    if !is_safe_relative_path(s) {
        return Err(refuse("empty or `.` path components are not allowed"));
    }
    match s.split_once('/') {
        Some((top, rest)) => Ok((top.to_string(), rest.to_string())),
        None => Ok((s.to_string(), String::new())),
    }
}

fn kind_name(t: tar::EntryType) -> String {
    match t {
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        tar::EntryType::GNUSparse => "sparse file".into(),
        other => format!("entry of type {:?}", other.as_byte() as char),
    }
}

/// Walks every entry of the archive, refusing anything unsafe, and hands each file and
/// folder (path relative to the top folder) to `visit`.
fn walk(
    archive: &[u8],
    limits: Limits,
    mut visit: impl FnMut(&str, EntryKind<'_>) -> Result<(), PackageError>,
) -> Result<Walked, PackageError> {
    // Headers and padding take at most 1.5 KiB per entry (header, long-name header and
    // block padding); anything past that is content the entry sizes did not announce.
    let cap = limits
        .max_total_bytes
        .saturating_add((limits.max_files as u64 + 4).saturating_mul(3 * 512))
        .saturating_add(20 * 512);
    let reader = CappedReader {
        inner: GzDecoder::new(archive),
        read: 0,
        cap,
    };
    let map_read_err = |e: io::Error| {
        if is_cap_exceeded(&e) {
            PackageError::TooLarge {
                limit: limits.max_total_bytes,
            }
        } else {
            PackageError::Archive(e.to_string())
        }
    };
    let mut tar = tar::Archive::new(reader);
    let mut top: Option<String> = None;
    let mut entries = 0usize;
    let mut total = 0u64;
    let mut files: BTreeMap<String, bool> = BTreeMap::new();
    let mut dirs: std::collections::BTreeSet<String> = Default::default();
    for entry in tar.entries().map_err(map_read_err)? {
        let mut entry = entry.map_err(map_read_err)?;
        let etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() || etype.is_pax_local_extensions() {
            // Global pax headers carry metadata (git archive writes one), never content.
            continue;
        }
        entries += 1;
        if entries > limits.max_files {
            return Err(PackageError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let is_file = matches!(etype, tar::EntryType::Regular | tar::EntryType::Continuous);
        let is_dir = etype == tar::EntryType::Directory;
        if !is_file && !is_dir {
            return Err(PackageError::EntryType {
                path: shown,
                kind: kind_name(etype),
            });
        }
        let (t, rel) = split_path(&raw_path)?;
        if t.is_empty() {
            if is_dir {
                continue; // `./` itself
            }
            return Err(PackageError::UnsafePath {
                path: shown,
                reason: "a file needs a name",
            });
        }
        match &top {
            None => top = Some(t.clone()),
            Some(existing) if *existing != t => {
                return Err(PackageError::TopLevel {
                    found: format!("{existing:?} and {t:?}"),
                })
            }
            Some(_) => {}
        }
        if rel.is_empty() {
            if is_file {
                return Err(PackageError::TopLevel {
                    found: format!("a file {t:?} at the top instead of a folder"),
                });
            }
            continue;
        }
        if is_dir {
            if files.contains_key(&rel) {
                return Err(PackageError::Duplicate { path: shown });
            }
            dirs.insert(rel.clone());
            visit(&rel, EntryKind::Dir)?;
            continue;
        }
        if files.contains_key(&rel) || dirs.contains(&rel) {
            return Err(PackageError::Duplicate { path: shown });
        }
        // A file's parent must not be a file (`a` then `a/b`).
        let mut parent = rel.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            if files.contains_key(p) {
                return Err(PackageError::Duplicate { path: shown });
            }
            parent = p;
        }
        let size = entry.size();
        if size > limits.max_file_bytes {
            return Err(PackageError::FileTooLarge {
                path: shown,
                limit: limits.max_file_bytes,
            });
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(PackageError::TooLarge {
                limit: limits.max_total_bytes,
            });
        }
        let executable = entry
            .header()
            .mode()
            .map(|m| m & 0o111 != 0)
            .unwrap_or(false);
        files.insert(rel.clone(), executable);
        visit(
            &rel,
            EntryKind::File {
                reader: &mut entry,
                size,
                executable,
            },
        )
        .map_err(|e| match e {
            PackageError::TooLarge { .. } => PackageError::TooLarge {
                limit: limits.max_total_bytes,
            },
            other => other,
        })?;
    }
    let top = top.ok_or(PackageError::Empty)?;
    Ok(Walked {
        top,
        entries,
        total_bytes: total,
        files,
    })
}

/// Builds a package from a plugin source folder: validates `dir/manifest.json` and the
/// files it names, then writes a deterministic `.tar.gz` (sorted entries, fixed mtime,
/// uid/gid 0, modes kept) with one top-level folder named after the plugin id. The same
/// folder always packs to the same bytes, so a signature made once stays valid.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, PackageError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let bytes = fs::read(&manifest_path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            PackageError::MissingManifest
        } else {
            PackageError::Io {
                context: format!("cannot read {}", manifest_path.display()),
                source: e,
            }
        }
    })?;
    let manifest = Manifest::from_json(&bytes)?;
    check_named_files(&manifest, |p| {
        let meta = fs::symlink_metadata(dir.join(p)).ok()?;
        if !meta.is_file() {
            return None;
        }
        Some(is_executable(&meta))
    })?;

    let mut items = Vec::new();
    collect(dir, "", &mut items)?;
    items.sort_by(|a, b| a.0.cmp(&b.0));

    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    let top = manifest.id.clone();
    let mut push = |path: &str, mode: u32, data: &[u8], dir: bool| -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mode(mode);
        h.set_mtime(PACK_MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        builder.append_data(&mut h, path, data)
    };
    let ctx = "cannot build the package archive";
    push(&format!("{top}/"), 0o755, &[], true).map_err(io_err(ctx))?;
    for (rel, item) in &items {
        match item {
            Item::Dir => push(&format!("{top}/{rel}/"), 0o755, &[], true),
            Item::File { exec, path } => {
                let data =
                    fs::read(path).map_err(io_err(format!("cannot read {}", path.display())))?;
                push(
                    &format!("{top}/{rel}"),
                    if *exec { 0o755 } else { 0o644 },
                    &data,
                    false,
                )
            }
        }
        .map_err(io_err(ctx))?;
    }
    let gz = builder.into_inner().map_err(io_err(ctx))?;
    let out = gz.finish().map_err(io_err(ctx))?;
    // What an agent would refuse must not be packed.
    inspect(&out)?;
    Ok(out)
}

enum Item {
    Dir,
    File { exec: bool, path: PathBuf },
}

fn is_executable(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, Item)>) -> Result<(), PackageError> {
    let rd = fs::read_dir(dir).map_err(io_err(format!("cannot list {}", dir.display())))?;
    for e in rd {
        let e = e.map_err(io_err(format!("cannot list {}", dir.display())))?;
        let name = e.file_name();
        let name = name.to_str().ok_or_else(|| PackageError::UnsafePath {
            path: e.path().display().to_string(),
            reason: "the path is not UTF-8",
        })?;
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = fs::symlink_metadata(e.path())
            .map_err(io_err(format!("cannot read {}", e.path().display())))?;
        if meta.file_type().is_symlink() {
            return Err(PackageError::SymlinkInSource { path: e.path() });
        }
        if meta.is_dir() {
            out.push((rel.clone(), Item::Dir));
            collect(&e.path(), &rel, out)?;
        } else if meta.is_file() {
            out.push((
                rel,
                Item::File {
                    exec: is_executable(&meta),
                    path: e.path(),
                },
            ));
        } else {
            return Err(PackageError::EntryType {
                path: e.path().display().to_string(),
                kind: "special file".into(),
            });
        }
    }
    Ok(())
}
