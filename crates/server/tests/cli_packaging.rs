//! Packaging: the .deb packages built by `packaging/deb/build.sh` from the real binaries
//! hold what they must, their maintainer scripts parse, and the systemd units pass
//! `systemd-analyze verify` with no warning.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_prophasis");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tool(name: &str, package: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is missing: this test needs it, run `apt-get install {package}`"
    );
    Command::new(name)
}

fn run(mut c: Command) -> (String, String) {
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{c:?} failed:\n{out}\n{err}");
    (out, err)
}

/// The agent binary beside the server's. `cargo test --workspace` builds it (the agent's
/// own tests need it); running cargo from inside a test would wait on the lock cargo
/// holds while tests run.
fn agent_bin() -> PathBuf {
    let agent = Path::new(BIN).parent().unwrap().join("prophasis-agent");
    assert!(
        agent.exists(),
        "{} is missing: run `cargo build -p prophasis-agent` first (cargo test --workspace does)",
        agent.display()
    );
    agent
}

#[test]
fn debs_hold_binaries_units_and_valid_scripts() {
    let bins = tempfile::tempdir().unwrap();
    std::fs::copy(BIN, bins.path().join("prophasis")).unwrap();
    std::fs::copy(agent_bin(), bins.path().join("prophasis-agent")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut c = Command::new("sh");
    c.arg(root().join("packaging/deb/build.sh"))
        .env("DEB_COMPRESSION", "none")
        .arg(bins.path())
        .arg(out.path());
    let (listed, _) = run(c);
    let debs: Vec<&str> = listed.lines().collect();
    assert_eq!(debs.len(), 2, "{listed}");

    for (deb, name, expected) in [
        (
            debs[0],
            "prophasis",
            &[
                "./usr/bin/prophasis",
                "./lib/systemd/system/prophasis.service",
                "./etc/prophasis/server.toml",
                "./usr/share/doc/prophasis/admin-guide.md",
            ][..],
        ),
        (
            debs[1],
            "prophasis-agent",
            &[
                "./usr/bin/prophasis-agent",
                "./lib/systemd/system/prophasis-agent.service",
                "./usr/share/doc/prophasis-agent/install.md",
            ][..],
        ),
    ] {
        assert!(deb.contains(&format!("/{name}_")), "{deb}");
        let mut c = tool("dpkg-deb", "dpkg");
        c.args(["-c", deb]);
        let (contents, _) = run(c);
        for path in expected {
            assert!(contents.contains(path), "{name}: no {path} in\n{contents}");
        }
        assert!(
            contents.contains("root/root"),
            "files must belong to root:\n{contents}"
        );
        let mut c = tool("dpkg-deb", "dpkg");
        c.args(["-f", deb, "Package", "Version", "Depends"]);
        let (fields, _) = run(c);
        assert!(fields.contains(&format!("Package: {name}")), "{fields}");
        assert!(fields.contains("adduser"), "{fields}");

        let control = tempfile::tempdir().unwrap();
        let mut c = tool("dpkg-deb", "dpkg");
        c.arg("-e").arg(deb).arg(control.path().join("DEBIAN"));
        run(c);
        for script in ["postinst", "prerm", "postrm"] {
            let p = control.path().join("DEBIAN").join(script);
            assert!(p.exists(), "{name}: no {script}");
            let mut c = Command::new("sh");
            c.arg("-n").arg(&p);
            run(c);
        }
        let postinst = std::fs::read_to_string(control.path().join("DEBIAN/postinst")).unwrap();
        assert!(
            postinst.contains(&format!("adduser --system --ingroup {name}")),
            "{postinst}"
        );
        if name == "prophasis-agent" {
            assert!(
                postinst.contains("prophasis-agent setup --non-interactive --config"),
                "{postinst}"
            );
        } else {
            assert!(
                postinst.contains("/usr/bin/prophasis migrate --config"),
                "{postinst}"
            );
        }
    }
}

/// The agent's setup as the postinst runs it prints the two lines the admin needs.
#[test]
fn agent_postinst_setup_prints_key_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(agent_bin());
    c.args(["setup", "--non-interactive", "--config"])
        .arg(dir.path().join("agent.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let (out, _) = run(c);
    assert!(out.lines().any(|l| l.starts_with("key: ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("fingerprint: ")), "{out}");
}

fn verify_units(dir: &Path, units: &[PathBuf]) -> String {
    let mut c = tool("systemd-analyze", "systemd");
    c.arg("verify").args(units).current_dir(dir);
    let o = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "systemd-analyze verify failed:\n{text}");
    text
}

#[test]
fn systemd_units_verify_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_bin();
    let mut units = Vec::new();
    for (name, bin, installed) in [
        (
            "prophasis.service",
            PathBuf::from(BIN),
            "/usr/bin/prophasis ",
        ),
        (
            "prophasis-agent.service",
            agent,
            "/usr/bin/prophasis-agent ",
        ),
    ] {
        let text = std::fs::read_to_string(root().join("packaging/systemd").join(name)).unwrap();
        for must in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=\n",
            "SystemCallFilter=@system-service",
            "RestrictAddressFamilies=",
            "ReadWritePaths=/var/lib/",
            "User=prophasis",
        ] {
            assert!(text.contains(must), "{name} lacks {must:?}");
        }
        assert!(text.contains("ProtectHome="), "{name}");
        // verify checks that ExecStart names an executable: point it at the built one.
        assert!(text.contains(installed), "{name}");
        let local = text.replace(installed, &format!("{} ", bin.display()));
        let p = dir.path().join(name);
        std::fs::write(&p, local).unwrap();
        units.push(p);
    }
    let warnings = verify_units(dir.path(), &units);
    assert!(warnings.trim().is_empty(), "warnings:\n{warnings}");

    // The check is not blind: a misspelt hardening option is reported.
    let bad = dir.path().join("bad.service");
    std::fs::write(
        &bad,
        "[Service]\nExecStart=/bin/true\nProtectSystem=strikt\n",
    )
    .unwrap();
    let warnings = verify_units(dir.path(), &[bad]);
    assert!(
        warnings.contains("ProtectSystem") || warnings.contains("protect system"),
        "{warnings}"
    );
}
