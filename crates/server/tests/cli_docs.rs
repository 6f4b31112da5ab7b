//! The docs stay true: every `prophasis …` / `prophasis-agent …` command line in a ```sh
//! block of docs/*.md and README.md names real subcommands and real flags (checked against
//! the binaries' own `--help`), and the blocks marked `<!-- runnable -->` are run, in
//! order, against a temporary database with the real binaries and the real gpg.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_prophasis");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

/// One ```sh block: its text and whether `<!-- runnable -->` precedes it.
struct Block {
    doc: String,
    text: String,
    runnable: bool,
}

fn blocks() -> Vec<Block> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.push(root().join("README.md"));
    docs.sort();
    let mut out = Vec::new();
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.file_name().unwrap().to_string_lossy().into_owned();
        let mut lines = text.lines().peekable();
        let mut previous = "";
        while let Some(line) = lines.next() {
            if line.trim_start() == "```sh" {
                let indent = line.len() - line.trim_start().len();
                let mut body = String::new();
                for l in lines.by_ref() {
                    if l.trim_start() == "```" {
                        break;
                    }
                    body.push_str(l.get(indent..).unwrap_or(l.trim_start()));
                    body.push('\n');
                }
                out.push(Block {
                    doc: name.clone(),
                    text: body,
                    runnable: previous.trim() == "<!-- runnable -->",
                });
            }
            if !line.trim().is_empty() {
                previous = line;
            }
        }
    }
    out
}

/// The command lines of a block: continuations joined, here-documents and comments
/// dropped, split at pipes and `&&`.
fn command_lines(block: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut current = String::new();
    let mut heredoc: Option<String> = None;
    for line in block.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if let Some(pos) = line.find("<<") {
            let tag = line[pos + 2..]
                .trim()
                .trim_matches(|c| c == '\'' || c == '"' || c == '-');
            heredoc = Some(tag.split_whitespace().next().unwrap_or("").to_string());
        }
        let line = match line.find(" #") {
            Some(p) => &line[..p],
            None if line.trim_start().starts_with('#') => "",
            None => line,
        };
        if let Some(stripped) = line.trim_end().strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        joined.push(std::mem::take(&mut current));
    }
    joined
        .iter()
        .flat_map(|l| {
            l.split(" | ")
                .flat_map(|s| s.split(" && "))
                .flat_map(|s| s.split("; "))
                .map(str::trim)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// `(binary, arguments)` when the line runs one of ours.
fn ours(line: &str) -> Option<(String, Vec<String>)> {
    let mut words: Vec<String> = line
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(pos) = words.iter().position(|w| w == "--bin") {
        // `cargo run --release --bin prophasis -- ARGS`
        let bin = words.get(pos + 1)?.clone();
        let dash = words.iter().position(|w| w == "--")?;
        return Some((bin, words[dash + 1..].to_vec()));
    }
    while let Some(first) = words.first() {
        if first == "sudo" {
            words.remove(0);
            if words.first().is_some_and(|w| w == "-u") {
                words.drain(..2.min(words.len()));
            }
        } else if first.contains('=') && !first.starts_with('-') {
            words.remove(0);
        } else {
            break;
        }
    }
    let bin = words.first()?.clone();
    if bin != "prophasis" && bin != "prophasis-agent" {
        return None;
    }
    let end = words
        .iter()
        .position(|w| [">", "<", "2>", ">>", "2>&1", "&"].contains(&w.as_str()))
        .unwrap_or(words.len());
    Some((bin, words[1..end].to_vec()))
}

/// What `--help` says a command accepts.
#[derive(Default, Clone)]
struct Help {
    commands: Vec<String>,
    /// flag (`--name` or `-x`) → takes a value
    options: HashMap<String, bool>,
}

fn parse_help(text: &str) -> Help {
    let mut h = Help::default();
    let mut section = "";
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line;
            continue;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if section == "Commands:" && indent == 2 {
            if let Some(name) = trimmed.split_whitespace().next() {
                h.commands.push(name.to_string());
            }
        }
        if section == "Options:" && trimmed.starts_with('-') && indent <= 6 {
            let spec = trimmed.split("  ").next().unwrap_or("");
            let takes = spec.contains('<');
            for part in spec.split(", ") {
                let flag = part.split([' ', '=']).next().unwrap_or("");
                if flag.starts_with('-') {
                    h.options.insert(flag.to_string(), takes);
                }
            }
        }
    }
    h
}

struct Checker {
    bins: HashMap<String, PathBuf>,
    cache: HashMap<(String, Vec<String>), Help>,
}

impl Checker {
    fn help(&mut self, bin: &str, path: &[String]) -> Help {
        let key = (bin.to_string(), path.to_vec());
        if let Some(h) = self.cache.get(&key) {
            return h.clone();
        }
        let o = Command::new(&self.bins[bin])
            .args(path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(o.status.success(), "{bin} {path:?} --help failed");
        let h = parse_help(&String::from_utf8_lossy(&o.stdout));
        self.cache.insert(key, h.clone());
        h
    }

    /// `Err` says what is wrong with the command line.
    fn check(&mut self, bin: &str, args: &[String]) -> Result<(), String> {
        let mut path: Vec<String> = Vec::new();
        let mut help = self.help(bin, &path);
        let mut i = 0;
        let mut positional = false;
        while i < args.len() {
            let a = &args[i];
            if a.starts_with('-') && a.len() > 1 {
                let name = a.split('=').next().unwrap();
                let Some(&takes) = help.options.get(name) else {
                    return Err(format!("`{bin} {}` has no flag {name}", path.join(" ")));
                };
                if takes && !a.contains('=') {
                    i += 1;
                }
            } else if !help.commands.is_empty() && !positional {
                if !help.commands.contains(a) {
                    return Err(format!(
                        "`{bin} {}` has no subcommand {a:?} (it has {:?})",
                        path.join(" "),
                        help.commands
                    ));
                }
                path.push(a.clone());
                help = self.help(bin, &path);
            } else {
                positional = true;
            }
            i += 1;
        }
        if !help.commands.is_empty() && path.is_empty() && bin == "prophasis" {
            return Err(format!("`{bin}` needs a subcommand"));
        }
        Ok(())
    }
}

fn checker() -> Checker {
    let mut bins = HashMap::new();
    bins.insert("prophasis".to_string(), PathBuf::from(BIN));
    bins.insert("prophasis-agent".to_string(), agent_bin());
    Checker {
        bins,
        cache: HashMap::new(),
    }
}

#[test]
fn every_documented_command_exists_with_its_flags() {
    let mut c = checker();
    let mut seen = 0;
    let mut wrong = Vec::new();
    for block in blocks() {
        for line in command_lines(&block.text) {
            if let Some((bin, args)) = ours(&line) {
                seen += 1;
                if let Err(e) = c.check(&bin, &args) {
                    wrong.push(format!("{}: {line}\n    {e}", block.doc));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "commands in the docs that do not exist:\n{}",
        wrong.join("\n")
    );
    assert!(
        seen >= 15,
        "only {seen} command lines found: is the parser still right?"
    );

    // The check is not blind.
    for bad in [
        "prophasis user add alice --rolle admin",
        "prophasis exportt",
        "prophasis import config.yaml --dryrun",
        "sudo prophasis-agent setup --non-interactive --listenn 0.0.0.0:4048",
    ] {
        let (bin, args) = ours(bad).unwrap();
        assert!(c.check(&bin, &args).is_err(), "{bad} passed the check");
    }
    let (bin, args) = ours("prophasis plugin verify a.tar.gz a.sig key.asc").unwrap();
    c.check(&bin, &args).unwrap();
}

#[test]
fn runnable_examples_run() {
    let work = tempfile::Builder::new().prefix("docs").tempdir().unwrap();
    let bin_dir = work.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(BIN, bin_dir.join("prophasis")).unwrap();
    std::os::unix::fs::symlink(agent_bin(), bin_dir.join("prophasis-agent")).unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = work.path().join("server.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", data.to_str().unwrap()),
    )
    .unwrap();
    let gnupg = work.path().join("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    let gpg = |args: &[&str]| {
        let o = Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run gpg ({e}): run `apt-get install gnupg`"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    gpg(&[
        "--quick-gen-key",
        "Prophasis plugins <ops@example.com>",
        "ed25519",
        "sign",
        "0",
    ]);

    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut outputs: HashMap<String, String> = HashMap::new();
    let mut ran = 0;
    for block in blocks().into_iter().filter(|b| b.runnable) {
        let cwd = work.path().join(block.doc.trim_end_matches(".md"));
        std::fs::create_dir_all(&cwd).unwrap();
        let script = block
            .text
            .replace("/etc/prophasis/server.toml", config.to_str().unwrap());
        let o = Command::new("sh")
            .args(["-e", "-c", &script])
            .current_dir(&cwd)
            .env("PATH", &path)
            .env("GNUPGHOME", &gnupg)
            .env("NEW_PASSWORD", "a long enough password")
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "runnable example in {} failed:\n{}\n--- stdout\n{stdout}\n--- stderr\n{}",
            block.doc,
            block.text,
            String::from_utf8_lossy(&o.stderr)
        );
        outputs.entry(block.doc).or_default().push_str(&stdout);
        ran += 1;
    }
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .status();
    assert!(ran >= 7, "only {ran} runnable examples found");

    let admin = &outputs["admin-guide.md"];
    assert!(admin.contains("user alice added (admin)"), "{admin}");
    assert!(admin.contains("schema version after:"), "{admin}");
    assert!(admin.contains("plan: 0 to create"), "{admin}");
    let exported = std::fs::read_to_string(work.path().join("admin-guide/config.yaml")).unwrap();
    assert!(exported.contains("format: 1"), "{exported}");

    let author = &outputs["plugin-author-guide.md"];
    assert!(
        author.contains("\"message\": \"backup is 0 hours old\""),
        "{author}"
    );
    assert!(
        author.contains("org.example.backup_age-1.tar.gz: org.example.backup_age version 1"),
        "{author}"
    );
    assert!(
        author.contains("good signature: org.example.backup_age-1.tar.gz"),
        "{author}"
    );
}
