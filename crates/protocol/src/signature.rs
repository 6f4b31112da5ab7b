//! Detached OpenPGP signatures of plugin packages, and the policy an agent applies.
//!
//! A package runs code as the agent's user on every host that receives it, so an agent
//! can be told to accept only packages signed by keys its administrator trusts. The
//! signature is the one `gpg --detach-sign` makes (binary or `--armor`), verified in pure
//! Rust with rpgp. rpgp checks the mathematics only: it accepts SHA-1 signatures and
//! ignores key expiry and revocation (SPIKES.md), so this module applies that policy
//! itself: SHA-256 or stronger, signer key (primary or signing subkey) neither expired —
//! at signature time or now — nor revoked, and a subkey only when bound to its primary as
//! a signing key.
//!
//! Lives in the protocol crate so the server can check a signature at upload time with
//! exactly the rules the agents will apply.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};
use serde::{Deserialize, Serialize};

use crate::api::ErrorCode;

/// What an agent does with package signatures (`--signature-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignaturePolicy {
    /// Signatures are ignored, even when present.
    Off,
    /// A signature that comes with a package must verify; unsigned packages are accepted.
    #[default]
    VerifyIfPresent,
    /// Every package must carry a signature that verifies.
    Enforce,
}

impl SignaturePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SignaturePolicy::Off => "off",
            SignaturePolicy::VerifyIfPresent => "verify-if-present",
            SignaturePolicy::Enforce => "enforce",
        }
    }
}

impl fmt::Display for SignaturePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignaturePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(SignaturePolicy::Off),
            "verify-if-present" => Ok(SignaturePolicy::VerifyIfPresent),
            "enforce" => Ok(SignaturePolicy::Enforce),
            other => Err(format!(
                "unknown signature policy {other:?}: use off, verify-if-present or enforce"
            )),
        }
    }
}

/// Who signed a package, as recorded beside an installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerInfo {
    /// Fingerprint of the trusted (primary) key, uppercase hex as gpg shows it.
    pub fingerprint: String,
    /// Fingerprint of the key that made the signature: the primary or a signing subkey.
    pub signing_key_fingerprint: String,
    /// The key's user ids, e.g. `Ops <ops@example.com>`.
    pub user_ids: Vec<String>,
    /// Hash algorithm of the signature, e.g. `SHA256`.
    pub hash: String,
    /// When the signature was made, seconds since the Unix epoch.
    pub created: u64,
}

/// Why a signature was refused. Messages say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("this agent enforces package signatures and the package came without one: sign it with `gpg --detach-sign` and upload the signature with the package")]
    Required,
    #[error("the package signature is not valid: {0}")]
    Invalid(String),
    #[error("the package was signed by key {issuer}, which is not among the agent's trusted keys: export that public key (`gpg --export --armor KEYID`) into the agent's trusted keys folder")]
    UnknownSigner { issuer: String },
    #[error("the package signature uses the weak hash {0}: sign again with SHA-256 or stronger (`gpg --digest-algo SHA256 --detach-sign`)")]
    WeakHash(String),
    #[error("the signing key {fingerprint} {when}: extend it (`gpg --quick-set-expire`), re-export it to the agents and sign again")]
    KeyExpired { fingerprint: String, when: String },
    #[error("the signing key {fingerprint} has been revoked: sign with another trusted key")]
    KeyRevoked { fingerprint: String },
    #[error("no trusted public keys in {dir}: put the signer's public key there (`gpg --export --armor KEYID > {dir}/signer.asc`), or set the signature policy to off")]
    NoTrustedKeys { dir: PathBuf },
    #[error("trusted key file {path} is not an OpenPGP public key: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
}

impl SignatureError {
    /// The agent API error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            SignatureError::Required => ErrorCode::SignatureRequired,
            _ => ErrorCode::SignatureInvalid,
        }
    }
}

/// The public keys an agent trusts, read from its trusted keys folder.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<SignedPublicKey>,
}

/// File extensions read from the trusted keys folder.
pub const KEY_FILE_EXTENSIONS: [&str; 3] = ["asc", "gpg", "pgp"];

impl TrustedKeys {
    /// Reads every `*.asc`, `*.gpg` and `*.pgp` file of `dir` (armored or binary, one or
    /// more keys each). A file that is not a public key is an error naming it, so a
    /// misplaced secret key or a typo is noticed instead of silently ignored.
    pub fn load(dir: &Path) -> Result<TrustedKeys, SignatureError> {
        let no_keys = || SignatureError::NoTrustedKeys {
            dir: dir.to_path_buf(),
        };
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(_) => return Err(no_keys()),
        };
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        KEY_FILE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
            })
            .collect();
        paths.sort();
        let mut keys = TrustedKeys::default();
        for path in paths {
            let bytes = fs::read(&path).map_err(|e| SignatureError::BadKeyFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            keys.add(&bytes)
                .map_err(|reason| SignatureError::BadKeyFile {
                    path: path.clone(),
                    reason,
                })?;
        }
        if keys.keys.is_empty() {
            return Err(no_keys());
        }
        Ok(keys)
    }

    /// Adds the public keys of one file's content (armored or binary).
    pub fn add(&mut self, bytes: &[u8]) -> Result<(), String> {
        let (iter, _) = SignedPublicKey::from_reader_many(bytes).map_err(|e| e.to_string())?;
        let mut n = 0;
        for key in iter {
            let key = key.map_err(|e| e.to_string())?;
            self.keys.push(key);
            n += 1;
        }
        if n == 0 {
            return Err("no public key found".into());
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Fingerprints of the trusted primary keys, uppercase hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| format!("{:X}", k.primary_key.fingerprint()))
            .collect()
    }
}

/// Applies `policy` to a package and its optional signature, reading the trusted keys
/// from `keys_dir` only when a signature has to be verified. `Ok(None)` means accepted
/// without a verified signature (policy off, or unsigned under verify-if-present).
pub fn check(
    policy: SignaturePolicy,
    archive: &[u8],
    signature: Option<&[u8]>,
    keys_dir: &Path,
) -> Result<Option<SignerInfo>, SignatureError> {
    // An empty signature part is how some clients send "no signature".
    let signature = signature.filter(|s| !s.iter().all(|b| b.is_ascii_whitespace()));
    match (policy, signature) {
        (SignaturePolicy::Off, _) => Ok(None),
        (SignaturePolicy::VerifyIfPresent, None) => Ok(None),
        (SignaturePolicy::Enforce, None) => Err(SignatureError::Required),
        (_, Some(sig)) => {
            let keys = TrustedKeys::load(keys_dir)?;
            verify(archive, sig, &keys, SystemTime::now()).map(Some)
        }
    }
}

/// Verifies a detached signature (binary or armored) of `archive` against the trusted
/// keys and the policy at time `now`. With several signatures in the file, the first
/// that passes wins; otherwise the refusal of the first is returned.
pub fn verify(
    archive: &[u8],
    signature: &[u8],
    keys: &TrustedKeys,
    now: SystemTime,
) -> Result<SignerInfo, SignatureError> {
    if keys.is_empty() {
        return Err(SignatureError::NoTrustedKeys {
            dir: PathBuf::from("(none given)"),
        });
    }
    let (iter, _) = DetachedSignature::from_reader_many(signature)
        .map_err(|e| SignatureError::Invalid(format!("not an OpenPGP signature: {e}")))?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut first_err = None;
    let mut any = false;
    for sig in iter {
        let sig = match sig {
            Ok(s) => s.signature,
            Err(e) => {
                first_err.get_or_insert(SignatureError::Invalid(format!(
                    "not an OpenPGP signature: {e}"
                )));
                continue;
            }
        };
        any = true;
        match verify_one(archive, &sig, keys, now) {
            Ok(info) => return Ok(info),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| {
        debug_assert!(!any);
        SignatureError::Invalid("the signature file holds no signature".into())
    }))
}

fn is_weak(h: HashAlgorithm) -> bool {
    !matches!(
        h,
        HashAlgorithm::Sha224
            | HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512
    )
}

fn ts(t: pgp::types::Timestamp) -> u64 {
    u64::from(t.as_secs())
}

fn secs(d: pgp::types::Duration) -> u64 {
    std::time::Duration::from(d).as_secs()
}

fn fmt_time(secs: u64) -> String {
    // Plain UTC date without a date crate: days since epoch to civil date.
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Checks an expiry (`created + validity`, 0 = never) at signature time and now.
fn check_expiry(
    fingerprint: &str,
    key_created: u64,
    validity: Option<pgp::types::Duration>,
    sig_created: u64,
    now: u64,
) -> Result<(), SignatureError> {
    let Some(v) = validity.map(secs).filter(|v| *v != 0) else {
        return Ok(());
    };
    let expires = key_created.saturating_add(v);
    if expires <= sig_created {
        return Err(SignatureError::KeyExpired {
            fingerprint: fingerprint.to_string(),
            when: format!(
                "had expired ({}) when the package was signed",
                fmt_time(expires)
            ),
        });
    }
    if expires <= now {
        return Err(SignatureError::KeyExpired {
            fingerprint: fingerprint.to_string(),
            when: format!("expired on {}", fmt_time(expires)),
        });
    }
    Ok(())
}

/// The newest of the signatures that pass `valid`.
fn newest<'a>(
    sigs: impl Iterator<Item = &'a Signature>,
    valid: impl Fn(&Signature) -> bool,
) -> Option<&'a Signature> {
    sigs.filter(|s| valid(s))
        .max_by_key(|s| s.created().map(ts).unwrap_or(0))
}

fn verify_one(
    archive: &[u8],
    sig: &Signature,
    keys: &TrustedKeys,
    now: u64,
) -> Result<SignerInfo, SignatureError> {
    if !matches!(sig.typ(), Some(SignatureType::Binary)) {
        return Err(SignatureError::Invalid(format!(
            "a detached binary signature is expected, this one is of type {:?}: sign with `gpg --detach-sign`",
            sig.typ()
        )));
    }
    let hash = sig
        .hash_alg()
        .ok_or_else(|| SignatureError::Invalid("unsupported signature version".into()))?;
    if is_weak(hash) {
        return Err(SignatureError::WeakHash(hash.to_string()));
    }
    let sig_created = sig
        .created()
        .map(ts)
        .ok_or_else(|| SignatureError::Invalid("the signature carries no creation time".into()))?;
    if let Some(exp) = sig
        .signature_expiration_time()
        .map(secs)
        .filter(|d| *d != 0)
    {
        if sig_created.saturating_add(exp) <= now {
            return Err(SignatureError::Invalid(format!(
                "the signature itself expired on {}",
                fmt_time(sig_created + exp)
            )));
        }
    }

    // Find the key (primary or subkey) the signature names as its issuer.
    let ids: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("{f:X}"))
        .chain(sig.issuer_key_id().iter().map(hex::encode_upper))
        .collect();
    let matches = |fp: &pgp::types::Fingerprint, kid: &pgp::types::KeyId| {
        sig.issuer_fingerprint().contains(&fp) || sig.issuer_key_id().contains(&kid)
    };
    for key in &keys.keys {
        let primary = &key.primary_key;
        let primary_fp = format!("{:X}", primary.fingerprint());
        if matches(&primary.fingerprint(), &primary.legacy_key_id()) {
            sig.verify(primary, archive).map_err(|_| {
                SignatureError::Invalid(
                    "the signature does not match the package: it was changed after signing, or the signature belongs to another file".into(),
                )
            })?;
            let self_sig = check_primary(key, sig_created, now)?;
            if let Some(s) = self_sig {
                let flags = s.key_flags();
                // A self-signature that lists flags without "sign" forbids data signatures.
                if flags != Default::default() && !flags.sign() {
                    return Err(SignatureError::Invalid(format!(
                        "key {primary_fp} is not allowed to sign (its key flags lack signing)"
                    )));
                }
            }
            return Ok(info(key, &primary_fp, hash, sig_created));
        }
        for sub in &key.public_subkeys {
            if !matches(&sub.key.fingerprint(), &sub.key.legacy_key_id()) {
                continue;
            }
            sig.verify(&sub.key, archive).map_err(|_| {
                SignatureError::Invalid(
                    "the signature does not match the package: it was changed after signing, or the signature belongs to another file".into(),
                )
            })?;
            check_primary(key, sig_created, now)?;
            check_subkey(key, sub, sig_created, now)?;
            let sub_fp = format!("{:X}", sub.key.fingerprint());
            return Ok(info(key, &sub_fp, hash, sig_created));
        }
    }
    Err(SignatureError::UnknownSigner {
        issuer: if ids.is_empty() {
            "(unnamed)".into()
        } else {
            ids.join(" / ")
        },
    })
}

fn info(key: &SignedPublicKey, signing_fp: &str, hash: HashAlgorithm, created: u64) -> SignerInfo {
    SignerInfo {
        fingerprint: format!("{:X}", key.primary_key.fingerprint()),
        signing_key_fingerprint: signing_fp.to_string(),
        user_ids: key
            .details
            .users
            .iter()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
            .collect(),
        hash: hash.to_string(),
        created,
    }
}

/// Revocation and expiry of the primary key; returns its newest valid self-signature.
fn check_primary(
    key: &SignedPublicKey,
    sig_created: u64,
    now: u64,
) -> Result<Option<&Signature>, SignatureError> {
    let primary = &key.primary_key;
    let fp = format!("{:X}", primary.fingerprint());
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|r| r.verify_key(primary).is_ok())
    {
        return Err(SignatureError::KeyRevoked { fingerprint: fp });
    }
    let direct = newest(key.details.direct_signatures.iter(), |s| {
        s.verify_key(primary).is_ok()
    });
    let certs = newest(
        key.details.users.iter().flat_map(|u| {
            u.signatures.iter().filter(move |s| {
                s.is_certification() && s.verify_certification(primary, Tag::UserId, &u.id).is_ok()
            })
        }),
        |_| true,
    );
    // The newest self-signature carries the current expiry (gpg --quick-set-expire adds
    // a new one).
    let self_sig = match (direct, certs) {
        (Some(a), Some(b)) => Some(if a.created().map(ts) >= b.created().map(ts) {
            a
        } else {
            b
        }),
        (a, b) => a.or(b),
    };
    if let Some(s) = self_sig {
        check_expiry(
            &fp,
            ts(primary.created_at()),
            s.key_expiration_time(),
            sig_created,
            now,
        )?;
    }
    Ok(self_sig)
}

/// A subkey signs only when bound as a signing key (with its back-signature), and is
/// neither revoked nor expired.
fn check_subkey(
    key: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    sig_created: u64,
    now: u64,
) -> Result<(), SignatureError> {
    let primary = &key.primary_key;
    let fp = format!("{:X}", sub.key.fingerprint());
    let verified = |s: &Signature| s.verify_subkey_binding(primary, &sub.key).is_ok();
    if sub
        .signatures
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation) && verified(s))
    {
        return Err(SignatureError::KeyRevoked { fingerprint: fp });
    }
    let binding = newest(sub.signatures.iter(), |s| {
        s.typ() == Some(SignatureType::SubkeyBinding) && verified(s)
    })
    .ok_or_else(|| {
        SignatureError::Invalid(format!(
            "subkey {fp} is not validly bound to its primary key"
        ))
    })?;
    if !binding.key_flags().sign() {
        return Err(SignatureError::Invalid(format!(
            "subkey {fp} is not a signing subkey"
        )));
    }
    let backsig_ok = binding
        .embedded_signature()
        .is_some_and(|b| b.verify_primary_key_binding(&sub.key, primary).is_ok());
    if !backsig_ok {
        return Err(SignatureError::Invalid(format!(
            "signing subkey {fp} lacks a valid back-signature to its primary key"
        )));
    }
    check_expiry(
        &fp,
        ts(sub.key.created_at()),
        binding.key_expiration_time(),
        sig_created,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_strings() {
        for p in [
            SignaturePolicy::Off,
            SignaturePolicy::VerifyIfPresent,
            SignaturePolicy::Enforce,
        ] {
            assert_eq!(p.to_string().parse::<SignaturePolicy>().unwrap(), p);
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
        assert!("strict"
            .parse::<SignaturePolicy>()
            .unwrap_err()
            .contains("enforce"));
        assert_eq!(SignaturePolicy::default(), SignaturePolicy::VerifyIfPresent);
    }

    #[test]
    fn dates() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn unsigned_under_each_policy() {
        let dir = Path::new("/nonexistent");
        assert!(check(SignaturePolicy::Off, b"x", Some(b"garbage"), dir)
            .unwrap()
            .is_none());
        assert!(check(SignaturePolicy::VerifyIfPresent, b"x", None, dir)
            .unwrap()
            .is_none());
        let e = check(SignaturePolicy::Enforce, b"x", None, dir).unwrap_err();
        assert!(matches!(e, SignatureError::Required));
        assert_eq!(e.code(), ErrorCode::SignatureRequired);
        let e = check(SignaturePolicy::VerifyIfPresent, b"x", Some(b"sig"), dir).unwrap_err();
        assert!(matches!(e, SignatureError::NoTrustedKeys { .. }), "{e}");
        assert_eq!(e.code(), ErrorCode::SignatureInvalid);
    }
}
