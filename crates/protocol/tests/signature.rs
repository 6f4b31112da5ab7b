//! Package signatures made by the real `gpg`, verified by the agent's rules.
//!
//! Every key and signature here comes from GnuPG itself (in a throwaway `--homedir`), so
//! the tests prove interoperability with what administrators actually run. GnuPG is a
//! test requirement: without it these tests fail, they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use prophasis_protocol::api::ErrorCode;
use prophasis_protocol::signature::{check, verify, SignatureError, SignaturePolicy, TrustedKeys};

struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        Gpg { home }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run gpg ({e}): these tests need GnuPG, run `apt-get install gnupg`")
            });
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Email lookups are exact (`<…>`): a bare `ed@example.com` also matches
    /// `expired@example.com`.
    fn fingerprint(&self, email: &str) -> String {
        let out = self.run(&["--with-colons", "--list-keys", &format!("<{email}>")]);
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .find(|l| l.starts_with("fpr:"))
            .map(|l| l.split(':').nth(9).unwrap().to_string())
            .unwrap()
    }

    fn export(&self, email: &str, armor: bool) -> Vec<u8> {
        let who = &format!("<{email}>");
        if armor {
            self.run(&["--armor", "--export", who])
        } else {
            self.run(&["--export", who])
        }
    }

    fn sign(&self, email: &str, data: &Path, extra: &[&str]) -> Vec<u8> {
        let who = &format!("<{email}>");
        let out = self.home.path().join("out.sig");
        let _ = std::fs::remove_file(&out);
        let mut args = vec!["--local-user", who];
        args.extend_from_slice(extra);
        let out_s = out.to_str().unwrap();
        args.extend_from_slice(&["--output", out_s, "--detach-sign", data.to_str().unwrap()]);
        self.run(&args);
        std::fs::read(&out).unwrap()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

struct Fixture {
    archive: Vec<u8>,
    ed_pub: Vec<u8>,
    ed_sig: Vec<u8>,
    ed_sig_armored: Vec<u8>,
    rsa_pub_binary: Vec<u8>,
    rsa_sig: Vec<u8>,
    rsa_sig_armored: Vec<u8>,
    rsa_sig_sha1: Vec<u8>,
    sub_pub: Vec<u8>,
    sub_sig: Vec<u8>,
    sub_fpr: String,
    sub_primary_fpr: String,
    expiring_sub_pub: Vec<u8>,
    expiring_sub_sig: Vec<u8>,
    expired_pub: Vec<u8>,
    expired_sig: Vec<u8>,
    revoked_pub: Vec<u8>,
    revoked_sig: Vec<u8>,
    other_pub: Vec<u8>,
}

/// Keys are made once for all tests: RSA key generation is the slow part.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let g = Gpg::new();
        let data = g.home.path().join("package.tar.gz");
        let archive: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(&data, &archive).unwrap();

        g.run(&[
            "--quick-gen-key",
            "Ed <ed@example.com>",
            "ed25519",
            "sign",
            "0",
        ]);
        g.run(&[
            "--quick-gen-key",
            "Rsa <rsa@example.com>",
            "rsa3072",
            "sign",
            "0",
        ]);
        g.run(&[
            "--quick-gen-key",
            "Sub <sub@example.com>",
            "ed25519",
            "cert",
            "0",
        ]);
        let sub_primary_fpr = g.fingerprint("sub@example.com");
        g.run(&["--quick-add-key", &sub_primary_fpr, "ed25519", "sign", "0"]);
        let sub_fpr = {
            let text =
                String::from_utf8(g.run(&["--with-colons", "--list-keys", "<sub@example.com>"]))
                    .unwrap();
            text.lines()
                .filter(|l| l.starts_with("fpr:"))
                .nth(1)
                .map(|l| l.split(':').nth(9).unwrap().to_string())
                .unwrap()
        };
        g.run(&[
            "--quick-gen-key",
            "ExpSub <expsub@example.com>",
            "ed25519",
            "cert",
            "0",
        ]);
        let es = g.fingerprint("expsub@example.com");
        g.run(&["--quick-add-key", &es, "ed25519", "sign", "1d"]);
        g.run(&[
            "--faked-system-time",
            "20200101T000000",
            "--quick-gen-key",
            "Expired <expired@example.com>",
            "ed25519",
            "sign",
            "1d",
        ]);
        g.run(&[
            "--quick-gen-key",
            "Revoked <revoked@example.com>",
            "ed25519",
            "sign",
            "0",
        ]);
        g.run(&[
            "--quick-gen-key",
            "Other <other@example.com>",
            "ed25519",
            "sign",
            "0",
        ]);

        let ed_sig = g.sign("ed@example.com", &data, &[]);
        let ed_sig_armored = g.sign("ed@example.com", &data, &["--armor"]);
        let rsa_sig = g.sign("rsa@example.com", &data, &[]);
        let rsa_sig_armored = g.sign("rsa@example.com", &data, &["--armor"]);
        let rsa_sig_sha1 = g.sign("rsa@example.com", &data, &["--digest-algo", "SHA1"]);
        let sub_sig = g.sign("sub@example.com", &data, &[]);
        let expiring_sub_sig = g.sign("expsub@example.com", &data, &[]);
        let expired_sig = g.sign(
            "expired@example.com",
            &data,
            &["--faked-system-time", "20200101T120000"],
        );
        let revoked_sig = g.sign("revoked@example.com", &data, &[]);

        // gpg stores a revocation certificate for every new key, with a leading ':' that
        // keeps it from being imported by accident.
        let rfp = g.fingerprint("revoked@example.com");
        let rev: PathBuf = g.home.path().join(format!("openpgp-revocs.d/{rfp}.rev"));
        let text = std::fs::read_to_string(&rev).unwrap();
        let fixed = text.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
        let fixed_path = g.home.path().join("revoke.asc");
        std::fs::write(&fixed_path, fixed).unwrap();
        g.run(&["--import", fixed_path.to_str().unwrap()]);

        Fixture {
            ed_pub: g.export("ed@example.com", true),
            rsa_pub_binary: g.export("rsa@example.com", false),
            sub_pub: g.export("sub@example.com", true),
            expiring_sub_pub: g.export("expsub@example.com", true),
            expired_pub: g.export("expired@example.com", true),
            revoked_pub: g.export("revoked@example.com", true),
            other_pub: g.export("other@example.com", true),
            archive,
            ed_sig,
            ed_sig_armored,
            rsa_sig,
            rsa_sig_armored,
            rsa_sig_sha1,
            sub_sig,
            sub_fpr,
            sub_primary_fpr,
            expiring_sub_sig,
            expired_sig,
            revoked_sig,
        }
    })
}

fn keys(material: &[&[u8]]) -> TrustedKeys {
    let mut k = TrustedKeys::default();
    for m in material {
        k.add(m).unwrap();
    }
    k
}

fn now() -> SystemTime {
    SystemTime::now()
}

#[test]
fn good_signatures_verify() {
    let f = fixture();
    let all = keys(&[&f.ed_pub, &f.rsa_pub_binary, &f.sub_pub]);
    for (name, sig) in [
        ("ed25519 binary", &f.ed_sig),
        ("ed25519 armored", &f.ed_sig_armored),
        ("rsa3072 binary", &f.rsa_sig),
        ("rsa3072 armored", &f.rsa_sig_armored),
    ] {
        let info = verify(&f.archive, sig, &all, now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.fingerprint, info.signing_key_fingerprint, "{name}");
        assert!(info.hash.starts_with("SHA"), "{name}: {}", info.hash);
    }
    let info = verify(&f.archive, &f.ed_sig, &all, now()).unwrap();
    assert_eq!(info.user_ids, vec!["Ed <ed@example.com>".to_string()]);
}

#[test]
fn signing_subkey_verifies() {
    let f = fixture();
    let info = verify(&f.archive, &f.sub_sig, &keys(&[&f.sub_pub]), now()).unwrap();
    assert_eq!(info.fingerprint, f.sub_primary_fpr);
    assert_eq!(info.signing_key_fingerprint, f.sub_fpr);
}

#[test]
fn tampered_archive_is_refused() {
    let f = fixture();
    let mut bad = f.archive.clone();
    bad[100] ^= 1;
    for sig in [&f.ed_sig, &f.rsa_sig_armored, &f.sub_sig] {
        let e = verify(
            &bad,
            sig,
            &keys(&[&f.ed_pub, &f.rsa_pub_binary, &f.sub_pub]),
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, SignatureError::Invalid(_)), "{e}");
        assert!(e.to_string().contains("changed after signing"), "{e}");
        assert_eq!(e.code(), ErrorCode::SignatureInvalid);
    }
}

#[test]
fn wrong_key_is_an_unknown_signer() {
    let f = fixture();
    let e = verify(&f.archive, &f.ed_sig, &keys(&[&f.other_pub]), now()).unwrap_err();
    assert!(matches!(e, SignatureError::UnknownSigner { .. }), "{e}");
    assert!(e.to_string().contains("trusted keys"), "{e}");
}

#[test]
fn sha1_signature_is_refused() {
    let f = fixture();
    let e = verify(
        &f.archive,
        &f.rsa_sig_sha1,
        &keys(&[&f.rsa_pub_binary]),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, SignatureError::WeakHash(h) if h == "SHA1"),
        "{e}"
    );
    assert!(e.to_string().contains("SHA-256"), "{e}");
}

#[test]
fn expired_keys_are_refused() {
    let f = fixture();
    // Made with a faked clock in 2020 and valid for one day.
    let e = verify(&f.archive, &f.expired_sig, &keys(&[&f.expired_pub]), now()).unwrap_err();
    assert!(matches!(e, SignatureError::KeyExpired { .. }), "{e}");
    assert!(e.to_string().contains("2020-01-02"), "{e}");
    // The same signature was fine while the key was valid.
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_880_000 + 3600);
    verify(&f.archive, &f.expired_sig, &keys(&[&f.expired_pub]), then).unwrap();

    // A signing subkey that expires after one day.
    let k = keys(&[&f.expiring_sub_pub]);
    verify(&f.archive, &f.expiring_sub_sig, &k, now()).unwrap();
    let later = now() + Duration::from_secs(3 * 86_400);
    let e = verify(&f.archive, &f.expiring_sub_sig, &k, later).unwrap_err();
    assert!(matches!(e, SignatureError::KeyExpired { .. }), "{e}");
}

#[test]
fn revoked_key_is_refused() {
    let f = fixture();
    let e = verify(&f.archive, &f.revoked_sig, &keys(&[&f.revoked_pub]), now()).unwrap_err();
    assert!(matches!(e, SignatureError::KeyRevoked { .. }), "{e}");
}

fn keys_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(d.path().join(name), bytes).unwrap();
    }
    d
}

#[test]
fn trusted_keys_folder_reads_armored_and_binary() {
    let f = fixture();
    let d = keys_dir(&[
        ("ed.asc", &f.ed_pub),
        ("rsa.gpg", &f.rsa_pub_binary),
        ("notes.txt", b"ignored"),
    ]);
    let k = TrustedKeys::load(d.path()).unwrap();
    assert_eq!(k.fingerprints().len(), 2, "{:?}", k.fingerprints());
    let info = check(
        SignaturePolicy::Enforce,
        &f.archive,
        Some(&f.rsa_sig),
        d.path(),
    )
    .unwrap();
    assert!(info.is_some());

    let bad = keys_dir(&[(
        "broken.asc",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nnope\n",
    )]);
    let e = TrustedKeys::load(bad.path()).unwrap_err();
    assert!(matches!(e, SignatureError::BadKeyFile { .. }), "{e}");
    let empty = keys_dir(&[]);
    let e = TrustedKeys::load(empty.path()).unwrap_err();
    assert!(matches!(e, SignatureError::NoTrustedKeys { .. }), "{e}");
}

#[test]
fn policies() {
    let f = fixture();
    let d = keys_dir(&[("ed.asc", &f.ed_pub)]);
    // enforce: unsigned refused, good accepted, bad refused.
    let e = check(SignaturePolicy::Enforce, &f.archive, None, d.path()).unwrap_err();
    assert!(matches!(e, SignatureError::Required));
    assert_eq!(e.code(), ErrorCode::SignatureRequired);
    assert!(check(
        SignaturePolicy::Enforce,
        &f.archive,
        Some(&f.ed_sig_armored),
        d.path()
    )
    .unwrap()
    .is_some());
    assert!(check(
        SignaturePolicy::Enforce,
        &f.archive,
        Some(&f.other_pub),
        d.path()
    )
    .is_err());
    // verify-if-present: unsigned accepted, a present signature must verify.
    assert!(
        check(SignaturePolicy::VerifyIfPresent, &f.archive, None, d.path())
            .unwrap()
            .is_none()
    );
    let mut bad = f.archive.clone();
    bad[0] ^= 0xff;
    assert!(check(
        SignaturePolicy::VerifyIfPresent,
        &bad,
        Some(&f.ed_sig),
        d.path()
    )
    .is_err());
    assert!(check(
        SignaturePolicy::VerifyIfPresent,
        &f.archive,
        Some(&f.ed_sig),
        d.path()
    )
    .unwrap()
    .is_some());
    // off: signatures are ignored, even broken ones, even without keys.
    assert!(check(
        SignaturePolicy::Off,
        &bad,
        Some(&f.ed_sig),
        Path::new("/nonexistent")
    )
    .unwrap()
    .is_none());
    assert!(check(SignaturePolicy::Off, &bad, Some(b"junk"), d.path())
        .unwrap()
        .is_none());
}

#[test]
fn garbage_signature_is_invalid() {
    let f = fixture();
    let e = verify(&f.archive, b"not a signature", &keys(&[&f.ed_pub]), now()).unwrap_err();
    assert!(matches!(e, SignatureError::Invalid(_)), "{e}");
}
