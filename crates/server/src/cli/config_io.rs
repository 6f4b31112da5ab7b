//! `prophasis export` and `prophasis import`: the configuration as a YAML file (see
//! `prophasis::actions::config_io` for the format and the rules). This module reads and
//! writes files and prints; the checking and writing happen in the actions.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use prophasis::actions::config_io::{package_file_name, ConfigDoc, ImportError, Op};
use prophasis::actions::{Actions, Actor};

use super::Db;

/// Writes the configuration to standard output (or `output`), and the plugin packages to
/// `packages` when given.
pub fn export(
    db: Db,
    include_secrets: bool,
    packages: Option<PathBuf>,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    super::block_on(async {
        let actions = Actions::offline(db.open().await?);
        let doc = actions
            .export_config(&Actor::command_line(), include_secrets)
            .await?;
        let text = serde_norway::to_string(&doc).context("writing YAML")?;
        let header = format!(
            "# Prophasis configuration, written by `prophasis export`{}.\n# Apply with `prophasis import FILE` (try --dry-run first).\n",
            if include_secrets {
                " WITH SECRETS (host keys, alert credentials): keep it private"
            } else {
                "; secrets left out (kept on import)"
            }
        );
        if let Some(dir) = &packages {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for p in &doc.plugins {
                let pkg = actions.plugin_package_file(&p.id).await?;
                let path = dir.join(package_file_name(&p.id, p.version));
                std::fs::write(&path, &pkg.archive)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                if let Some(sig) = &pkg.signature {
                    let mut s = path.clone().into_os_string();
                    s.push(".sig");
                    std::fs::write(&s, sig)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                eprintln!("package: {}", path.display());
            }
        }
        match output {
            Some(path) => {
                write_private(&path, &format!("{header}{text}"), include_secrets)?;
                eprintln!("exported to {}", path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(header.as_bytes())?;
                out.write_all(text.as_bytes())?;
            }
        }
        anyhow::Ok(())
    })?
}

/// A file with secrets is readable by its owner only.
fn write_private(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Checks the file, prints the plan, and applies it unless `dry_run`. Returns the exit
/// code: 0 applied (or nothing to do), 1 refused.
pub fn import(db: Db, file: &Path, dry_run: bool, packages: Vec<PathBuf>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc: ConfigDoc = serde_norway::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        anyhow::anyhow!(
            "{} is not a valid configuration file{at}: {e}",
            file.display()
        )
    })?;
    let mut dirs = packages;
    dirs.push(
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    );
    super::block_on(async {
        let actions = Actions::offline(db.open().await?);
        let plan = match actions.plan_import(&doc, &dirs).await {
            Ok(plan) => plan,
            Err(ImportError::Invalid(issues)) => {
                for i in &issues {
                    eprintln!("error: {i}");
                }
                bail!(
                    "{}: {} problem(s); nothing was changed",
                    file.display(),
                    issues.len()
                );
            }
            Err(e) => return Err(e.into()),
        };
        let creates = plan.count(|o| *o == Op::Create);
        let updates = plan.count(|o| matches!(o, Op::Update(_)));
        let same = plan.count(|o| *o == Op::Unchanged);
        if dry_run {
            for step in &plan.steps {
                println!("{step}");
            }
            println!("plan: {creates} to create, {updates} to update, {same} unchanged (dry run: nothing was changed)");
            return Ok(());
        }
        let applied = actions
            .apply_import(&Actor::command_line(), &plan, |n, total, step| {
                println!("[{n}/{total}] {step}");
            })
            .await?;
        println!("imported: {creates} created, {updates} updated, {same} unchanged ({applied} change(s))");
        Ok(())
    })?
}
