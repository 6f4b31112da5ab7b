//! Repository checks that are not unit tests of any one crate.
//!
//! `cargo run -p xtask -- check-deps` (also run as a test) enforces the layering described
//! in ARCHITECTURE.md: which Prophasis crates may depend on which, and which heavy outside
//! dependencies are kept out of the lean ones. The rules live here, in one table, so a
//! change to the architecture is a reviewed change to this file and to ARCHITECTURE.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// For each crate folder: the internal crates it may depend on, and outside crates it
/// must never depend on directly (dev-dependencies excepted: tests may use anything).
const RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "protocol",
        &[],
        &["sqlx", "mlua", "axum", "reqwest", "tokio"],
    ),
    (
        "model",
        &["prophasis-protocol"],
        &["sqlx", "mlua", "axum", "reqwest", "tokio", "hyper"],
    ),
    (
        "store",
        &["prophasis-model"],
        &["mlua", "axum", "reqwest", "hyper"],
    ),
    (
        "classifier",
        &["prophasis-model"],
        &["sqlx", "axum", "reqwest", "hyper", "tokio"],
    ),
    (
        "agent",
        &["prophasis-protocol"],
        &["sqlx", "mlua", "minijinja", "argon2", "lettre"],
    ),
    (
        "server",
        // The agent library only for `quickstart`, which runs an agent in-process.
        &[
            "prophasis-protocol",
            "prophasis-model",
            "prophasis-store",
            "prophasis-classifier",
            "prophasis-agent",
            "prophasis-alerting",
        ],
        &[],
    ),
    (
        "alerting",
        &["prophasis-model", "prophasis-store"],
        &["mlua", "axum"],
    ),
    ("xtask", &[], &[]),
    ("sim", &["prophasis-protocol"], &["sqlx", "mlua"]),
];

const SECTIONS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];

/// Every rule broken in the workspace at `root`, as a sentence.
fn check_deps(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let crates_dir = root.join("crates");
    let mut found: Vec<String> = std::fs::read_dir(&crates_dir)
        .expect("crates/ folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    for name in &found {
        let Some((_, allowed, forbidden)) = RULES.iter().find(|(n, _, _)| n == name) else {
            problems.push(format!(
                "crates/{name} has no layering rule: add it to RULES in crates/xtask and to ARCHITECTURE.md"
            ));
            continue;
        };
        let manifest_path = crates_dir.join(name).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path).expect("read Cargo.toml");
        let manifest: toml::Table = text.parse().expect("Cargo.toml parses");
        for section in SECTIONS {
            let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for dep in deps.keys() {
                let internal = dep.starts_with("prophasis");
                if internal && !allowed.contains(&dep.as_str()) && section != "dev-dependencies" {
                    problems.push(format!(
                        "crates/{name} depends on {dep} in [{section}], which the layering forbids (allowed: {allowed:?})"
                    ));
                }
                // Tests may use anything; what ships may not.
                if forbidden.contains(&dep.as_str()) && section != "dev-dependencies" {
                    problems.push(format!(
                        "crates/{name} must not depend on {dep} (found in [{section}])"
                    ));
                }
            }
        }
    }
    problems
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("check-deps") => {
            let problems = check_deps(&workspace_root());
            for p in &problems {
                eprintln!("{p}");
            }
            if problems.is_empty() {
                println!("dependency layering ok");
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!("usage: cargo run -p xtask -- check-deps");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_follows_the_layering() {
        let problems = check_deps(&workspace_root());
        assert!(
            problems.is_empty(),
            "layering broken:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn a_forbidden_edge_is_reported() {
        let dir = std::env::temp_dir().join(format!("xtask-layering-{}", std::process::id()));
        let agent = dir.join("crates/agent");
        std::fs::create_dir_all(&agent).unwrap();
        std::fs::write(
            agent.join("Cargo.toml"),
            "[package]\nname = \"prophasis-agent\"\n[dependencies]\nprophasis-store = { path = \"../store\" }\nsqlx = \"0.8\"\n",
        )
        .unwrap();
        let problems = check_deps(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("prophasis-store"));
        assert!(problems[1].contains("sqlx"));
    }
}
