//! `prophasis plugin verify PKG SIG KEY`: checks a package's detached signature with
//! exactly the policy an agent applies (`prophasis_protocol::signature`: no SHA-1, no
//! expired or revoked key), so a plugin author or an admin finds a bad signature before
//! agents refuse the package.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use prophasis_protocol::signature::{self, TrustedKeys};

/// Prints the verdict; `Ok(false)` when the signature is refused.
pub fn verify(pkg: &Path, sig: &Path, key: &Path) -> anyhow::Result<bool> {
    let archive =
        std::fs::read(pkg).with_context(|| format!("cannot read the package {}", pkg.display()))?;
    let signature = std::fs::read(sig)
        .with_context(|| format!("cannot read the signature {}", sig.display()))?;
    let key_bytes = std::fs::read(key)
        .with_context(|| format!("cannot read the public key {}", key.display()))?;
    let mut keys = TrustedKeys::default();
    keys.add(&key_bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an OpenPGP public key: {e} (export it with `gpg --export --armor KEYID`)",
            key.display()
        )
    })?;
    match signature::verify(&archive, &signature, &keys, SystemTime::now()) {
        Ok(info) => {
            println!("good signature: {}", pkg.display());
            println!(
                "signed by: {} ({})",
                info.fingerprint,
                info.user_ids.join(", ")
            );
            if info.signing_key_fingerprint != info.fingerprint {
                println!("signing subkey: {}", info.signing_key_fingerprint);
            }
            println!("hash: {}", info.hash);
            Ok(true)
        }
        Err(e) => {
            println!("BAD signature: {}", pkg.display());
            println!("reason: {e}");
            Ok(false)
        }
    }
}
