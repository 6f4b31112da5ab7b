//! The reference plugins in /plugins must always pack into valid packages.

use std::fs;
use std::path::{Path, PathBuf};

use prophasis_protocol::package::{inspect, pack_dir, BUILTIN_COLLECTORS};
use prophasis_protocol::{Manifest, Mode};

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

const EXPECTED: [&str; 6] = [
    "cpu_load",
    "memory_usage",
    "heartbeat",
    "raid_md",
    "disk_usage",
    "nagios_disk",
];

/// Copies a folder (flat: the reference plugins have no sub-folders), keeping modes.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn every_reference_plugin_packs() {
    for name in EXPECTED {
        let dir = plugins_dir().join(name);
        let m = Manifest::from_json(&fs::read(dir.join("manifest.json")).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.id, format!("org.prophasis.{name}"));
        if let Some(b) = &m.builtin {
            assert!(BUILTIN_COLLECTORS.contains(&b.as_str()), "{name}: {b}");
        }
        // The classifiers come from another change; pack a copy with a placeholder
        // until the real file exists, and the real folder once it does.
        let bytes = if dir.join(&m.default_classifier).exists() {
            pack_dir(&dir).unwrap_or_else(|e| panic!("{name}: {e}"))
        } else {
            let tmp = tempfile::tempdir().unwrap();
            copy_dir(&dir, tmp.path());
            fs::write(
                tmp.path().join(&m.default_classifier),
                "return \"unknown\"\n",
            )
            .unwrap();
            pack_dir(tmp.path()).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let info = inspect(&bytes).unwrap();
        assert_eq!(info.manifest, m);
        assert_eq!(info.top_dir, m.id);
    }
}

#[test]
fn nagios_disk_runs_check_disk_with_its_arguments() {
    let dir = plugins_dir().join("nagios_disk");
    let m = Manifest::from_json(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m.mode, Mode::Nagios);
    let entry = dir.join(m.entry.as_deref().unwrap());
    // A stand-in check_disk that echoes its arguments proves the mapping without
    // needing monitoring-plugins installed.
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("check_disk");
    fs::write(&fake, "#!/bin/sh\necho \"DISK OK - args: $*\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(&entry)
        .args(["--critical", "5%", "--path", "/var", "--warning", "15%"])
        .env("PROPHASIS_CHECK_DISK", &fake)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "DISK OK - args: -w 15% -c 5% -p /var"
    );
    let out = std::process::Command::new(&entry)
        .env("PROPHASIS_CHECK_DISK", &fake)
        .env("PROPHASIS_ARG_PATH", "/home")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "DISK OK - args: -w 20% -c 10% -p /home"
    );
    let out = std::process::Command::new(&entry)
        .env("PROPHASIS_CHECK_DISK", tmp.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}
