//! Embeds the reference plugins (../../plugins/*) in the binary so `prophasis quickstart`
//! can install them from anywhere, not only from a source checkout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    // The quickstart cannot work without them: fail the build rather than ship none.
    assert!(
        files.iter().any(|f| f.ends_with("manifest.json")),
        "no reference plugins found in {}: the plugins/ folder of the source tree is needed to build the server",
        root.display()
    );
    let mut code = String::from("/// (path under plugins/, contents, executable)\npub static FILES: &[(&str, &[u8], bool)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&root)
            .expect("under plugins/")
            .to_string_lossy()
            .replace('\\', "/");
        #[cfg(unix)]
        let exec = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(f)
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        };
        #[cfg(not(unix))]
        let exec = false;
        let abs = f.canonicalize().expect("canonical path");
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?}), {exec}),",
            abs.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded_plugins.rs");
    std::fs::write(out, code).expect("write embedded_plugins.rs");
}
