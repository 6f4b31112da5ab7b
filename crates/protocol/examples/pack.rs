//! Builds a plugin package from a source folder, until the server's
//! `prophasis plugin pack DIR` exists:
//!
//! ```text
//! cargo run -p prophasis-protocol --example pack -- plugins/cpu_load cpu_load.tar.gz
//! ```
//!
//! The output is deterministic (same folder, same bytes), so a detached signature made
//! with `gpg --detach-sign cpu_load.tar.gz` stays valid when the package is rebuilt.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = args.as_slice() else {
        eprintln!("usage: pack PLUGIN_DIR OUTPUT.tar.gz");
        return ExitCode::from(2);
    };
    match prophasis_protocol::package::pack_dir(&PathBuf::from(dir)) {
        Ok(bytes) => {
            if let Err(e) = std::fs::write(out, &bytes) {
                eprintln!("cannot write {out}: {e}");
                return ExitCode::FAILURE;
            }
            let m = prophasis_protocol::package::read_manifest(&bytes).expect("just packed");
            println!("package: {out}");
            println!("id: {}", m.id);
            println!("version: {}", m.version);
            println!(
                "sha256: {}",
                prophasis_protocol::package::sha256_hex(&bytes)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot pack {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}
