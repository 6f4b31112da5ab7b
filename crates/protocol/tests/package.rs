//! Safe extraction and packing of plugin packages, with crafted hostile archives.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use prophasis_protocol::package::{
    extract, inspect, inspect_with, pack_dir, read_manifest, Limits, PackageError,
};

const MANIFEST: &str = r#"{
  "id": "com.example.echo",
  "name": "Echo",
  "version": 3,
  "default_classifier": "classifier.lua",
  "entry": "bin/run.sh",
  "view": "custom",
  "view_source": "view.html"
}"#;

/// Raw entries: (path bytes, type, mode, data). Paths go straight into the header so
/// hostile names the `tar` crate's own setters would refuse can be written.
fn raw_tar(entries: &[(&str, tar::EntryType, u32, &[u8])]) -> Vec<u8> {
    raw_tar_with(entries, |_, _| {})
}

fn raw_tar_with(
    entries: &[(&str, tar::EntryType, u32, &[u8])],
    tweak: impl Fn(usize, &mut tar::Header),
) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (i, (path, kind, mode, data)) in entries.iter().enumerate() {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1);
        tweak(i, &mut h);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    gz(&b.into_inner().unwrap())
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

use tar::EntryType::{Directory as D, Regular as F};

fn good_entries() -> Vec<(&'static str, tar::EntryType, u32, &'static [u8])> {
    vec![
        ("echo/", D, 0o755, b""),
        ("echo/manifest.json", F, 0o644, MANIFEST.as_bytes()),
        ("echo/classifier.lua", F, 0o644, b"return \"ok\"\n"),
        ("echo/view.html", F, 0o644, b"<p>{{ values }}</p>\n"),
        ("echo/bin/", D, 0o755, b""),
        ("echo/bin/run.sh", F, 0o4755, b"#!/bin/sh\necho '{}'\n"),
    ]
}

fn with(extra: (&'static str, tar::EntryType, u32, &'static [u8])) -> Vec<u8> {
    let mut e = good_entries();
    e.push(extra);
    raw_tar(&e)
}

/// Extracts into a fresh folder and asserts that a refusal leaves nothing behind.
fn refused(archive: &[u8], limits: Limits) -> PackageError {
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("plugin");
    let err = extract(archive, &dest, limits).expect_err("must be refused");
    assert_empty(parent.path());
    err
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind after a refusal: {left:?}");
}

#[test]
fn good_package_extracts_and_inspects() {
    let archive = raw_tar(&good_entries());
    let info = inspect(&archive).unwrap();
    assert_eq!(info.manifest.id, "com.example.echo");
    assert_eq!(info.classifier, "return \"ok\"\n");
    assert_eq!(info.view_source.as_deref(), Some("<p>{{ values }}</p>\n"));
    assert_eq!(info.top_dir, "echo");
    assert_eq!(read_manifest(&archive).unwrap().version, 3.0);

    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("plugin");
    let m = extract(&archive, &dest, Limits::default()).unwrap();
    assert_eq!(m.id, "com.example.echo");
    assert!(dest.join("manifest.json").is_file());
    let mode = fs::metadata(dest.join("bin/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "exec bit kept, setuid dropped");
    let mode = fs::metadata(dest.join("classifier.lua"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o644);
    // Only the destination exists: the temporary folder was renamed into it.
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 1);
}

#[test]
fn leading_dot_slash_is_the_same_folder() {
    let entries: Vec<_> = good_entries()
        .into_iter()
        .map(|(p, k, m, d)| (&*Box::leak(format!("./{p}").into_boxed_str()), k, m, d))
        .chain([("./", D, 0o755, &b""[..])])
        .collect();
    assert_eq!(inspect(&raw_tar(&entries)).unwrap().top_dir, "echo");
}

#[test]
fn destination_must_not_exist() {
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("plugin");
    fs::create_dir(&dest).unwrap();
    let err = extract(&raw_tar(&good_entries()), &dest, Limits::default()).unwrap_err();
    assert!(
        matches!(err, PackageError::DestinationExists { .. }),
        "{err}"
    );
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
}

#[test]
fn refuses_absolute_paths() {
    let err = refused(&with(("/tmp/evil", F, 0o644, b"x")), Limits::default());
    assert!(matches!(err, PackageError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("absolute"), "{err}");
    assert!(!Path::new("/tmp/evil").exists());
}

#[test]
fn refuses_dot_dot() {
    for p in ["echo/../../evil", "../evil", "echo/a/../../../evil"] {
        let err = refused(&with((p, F, 0o644, b"x")), Limits::default());
        assert!(matches!(err, PackageError::UnsafePath { .. }), "{p}: {err}");
        assert!(err.to_string().contains(".."), "{err}");
    }
}

#[test]
fn refuses_links_devices_and_fifos() {
    let kinds = [
        (tar::EntryType::Symlink, "symbolic link"),
        (tar::EntryType::Link, "hard link"),
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "fifo"),
    ];
    for (kind, name) in kinds {
        let archive = raw_tar_with(
            &[
                ("echo/", D, 0o755, b""),
                ("echo/manifest.json", F, 0o644, MANIFEST.as_bytes()),
                ("echo/link", kind, 0o777, b""),
            ],
            |i, h| {
                if i == 2 {
                    h.set_link_name("/etc/passwd").unwrap();
                }
            },
        );
        let err = refused(&archive, Limits::default());
        assert!(
            matches!(err, PackageError::EntryType { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert!(inspect(&archive).is_err());
    }
}

#[test]
fn refuses_a_symlink_entry_even_first() {
    // The spike's failure: a link pointing outside, then a file written through it.
    let archive = raw_tar_with(
        &[
            ("echo/", D, 0o755, b""),
            ("echo/out", tar::EntryType::Symlink, 0o777, b""),
            ("echo/out/passwd", F, 0o644, b"owned"),
        ],
        |i, h| {
            if i == 1 {
                h.set_link_name("/tmp").unwrap();
            }
        },
    );
    let err = refused(&archive, Limits::default());
    assert!(matches!(err, PackageError::EntryType { .. }), "{err}");
    assert!(!Path::new("/tmp/passwd").exists());
}

#[test]
fn refuses_several_top_level_folders_and_top_files() {
    let err = refused(&with(("other/x", F, 0o644, b"x")), Limits::default());
    assert!(matches!(err, PackageError::TopLevel { .. }), "{err}");
    let archive = raw_tar(&[("manifest.json", F, 0o644, MANIFEST.as_bytes())]);
    let err = refused(&archive, Limits::default());
    assert!(matches!(err, PackageError::TopLevel { .. }), "{err}");
}

#[test]
fn refuses_a_missing_manifest_or_named_file() {
    let archive = raw_tar(&[("echo/", D, 0o755, b""), ("echo/a", F, 0o644, b"x")]);
    assert!(matches!(
        refused(&archive, Limits::default()),
        PackageError::MissingManifest
    ));
    let mut entries = good_entries();
    entries.retain(|e| e.0 != "echo/classifier.lua");
    let err = refused(&raw_tar(&entries), Limits::default());
    assert!(
        matches!(
            err,
            PackageError::MissingFile {
                key: "default_classifier",
                ..
            }
        ),
        "{err}"
    );
    let mut entries = good_entries();
    entries.retain(|e| e.0 != "echo/bin/run.sh");
    entries.push(("echo/bin/run.sh", F, 0o644, b"#!/bin/sh\n"));
    let err = refused(&raw_tar(&entries), Limits::default());
    assert!(matches!(err, PackageError::NotExecutable { .. }), "{err}");
    let mut entries = good_entries();
    entries[1] = ("echo/manifest.json", F, 0o644, b"{\"id\": \"../x\"}");
    let err = refused(&raw_tar(&entries), Limits::default());
    assert!(matches!(err, PackageError::Manifest(_)), "{err}");
}

#[test]
fn refuses_duplicates() {
    let err = refused(
        &with(("echo/classifier.lua", F, 0o644, b"x")),
        Limits::default(),
    );
    assert!(matches!(err, PackageError::Duplicate { .. }), "{err}");
    let err = refused(
        &with(("echo/classifier.lua/x", F, 0o644, b"x")),
        Limits::default(),
    );
    assert!(matches!(err, PackageError::Duplicate { .. }), "{err}");
}

#[test]
fn refuses_too_many_entries() {
    let names: Vec<String> = (0..20).map(|i| format!("echo/f{i}")).collect();
    let mut entries = good_entries();
    for n in &names {
        entries.push((n.as_str(), F, 0o644, b"x"));
    }
    let limits = Limits {
        max_files: 10,
        ..Limits::default()
    };
    let err = refused(&raw_tar(&entries), limits);
    assert!(
        matches!(err, PackageError::TooManyFiles { limit: 10 }),
        "{err}"
    );
    assert!(err.to_string().contains("more than 10 entries"));
}

#[test]
fn refuses_oversized_files_and_totals() {
    static BIG: [u8; 4096] = [7u8; 4096];
    let limits = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    let err = refused(&with(("echo/big", F, 0o644, &BIG)), limits);
    assert!(
        matches!(err, PackageError::FileTooLarge { limit: 1000, .. }),
        "{err}"
    );

    let limits = Limits {
        max_total_bytes: 6000,
        ..Limits::default()
    };
    let mut entries = good_entries();
    entries.push(("echo/a", F, 0o644, &BIG));
    entries.push(("echo/b", F, 0o644, &BIG));
    let err = refused(&raw_tar(&entries), limits);
    assert!(
        matches!(err, PackageError::TooLarge { limit: 6000 }),
        "{err}"
    );
}

#[test]
fn stops_a_gzip_bomb_while_decompressing() {
    // A GNU long-name header announcing 16 MiB: the tar crate reads it into memory before
    // any entry reaches the size checks, so only counting decompressed bytes stops it.
    let huge = vec![b'a'; 16 * 1024 * 1024];
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(huge.len() as u64);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &huge[..]).unwrap();
    let archive = gz(&b.into_inner().unwrap());
    assert!(
        archive.len() < 200_000,
        "the bomb is small: {}",
        archive.len()
    );
    let limits = Limits {
        max_total_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let err = refused(&archive, limits);
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err}");
    assert!(matches!(
        inspect_with(&archive, limits),
        Err(PackageError::TooLarge { .. })
    ));
}

#[test]
fn refuses_garbage_and_empty_archives() {
    let err = refused(b"not a tarball", Limits::default());
    assert!(matches!(err, PackageError::Archive(_)), "{err}");
    let err = refused(&gz(&[0u8; 1024]), Limits::default());
    assert!(matches!(err, PackageError::Empty), "{err}");
    // A truncated archive.
    let good = raw_tar(&good_entries());
    let err = refused(&good[..good.len() / 2], Limits::default());
    assert!(matches!(err, PackageError::Archive(_)), "{err}");
}

fn source_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("manifest.json"), MANIFEST).unwrap();
    fs::write(d.path().join("classifier.lua"), "return \"ok\"\n").unwrap();
    fs::write(d.path().join("view.html"), "<p></p>\n").unwrap();
    fs::create_dir(d.path().join("bin")).unwrap();
    fs::write(d.path().join("bin/run.sh"), "#!/bin/sh\necho '{}'\n").unwrap();
    fs::set_permissions(
        d.path().join("bin/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    d
}

#[test]
fn pack_dir_is_deterministic_and_round_trips() {
    let src = source_dir();
    let a = pack_dir(src.path()).unwrap();
    // Touching the files changes mtimes but not the package.
    std::thread::sleep(std::time::Duration::from_millis(10));
    fs::write(src.path().join("classifier.lua"), "return \"ok\"\n").unwrap();
    let b = pack_dir(src.path()).unwrap();
    assert_eq!(a, b, "packing twice gives the same bytes");

    let info = inspect(&a).unwrap();
    assert_eq!(
        info.top_dir, "com.example.echo",
        "top folder named after the id"
    );
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(
            e.header().mtime().unwrap(),
            prophasis_protocol::package::PACK_MTIME
        );
        assert_eq!(e.header().uid().unwrap(), 0);
        names.push(e.path().unwrap().display().to_string());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("x");
    extract(&a, &dest, Limits::default()).unwrap();
    let mode = fs::metadata(dest.join("bin/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn pack_dir_refuses_bad_sources() {
    let src = source_dir();
    fs::set_permissions(
        src.path().join("bin/run.sh"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = pack_dir(src.path()).unwrap_err();
    assert!(matches!(err, PackageError::NotExecutable { .. }), "{err}");
    assert!(err.to_string().contains("chmod +x"), "{err}");

    let src = source_dir();
    fs::remove_file(src.path().join("view.html")).unwrap();
    let err = pack_dir(src.path()).unwrap_err();
    assert!(
        matches!(
            err,
            PackageError::MissingFile {
                key: "view_source",
                ..
            }
        ),
        "{err}"
    );

    let src = source_dir();
    std::os::unix::fs::symlink("/etc/passwd", src.path().join("passwd")).unwrap();
    let err = pack_dir(src.path()).unwrap_err();
    assert!(matches!(err, PackageError::SymlinkInSource { .. }), "{err}");

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        pack_dir(empty.path()),
        Err(PackageError::MissingManifest)
    ));
}
