//! `prophasis user add|passwd|list|delete`: user accounts from the server's shell, e.g.
//! when the only admin forgot their password. Passwords come from a prompt without echo
//! or, for scripts, from standard input; never from a flag, which `ps` would show.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use prophasis::actions::{Actions, Actor};
use prophasis_model::Role;

use super::Db;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is asked for twice (or read from standard input).
    Add {
        /// Login name.
        name: String,
        /// What the user may do: `admin` configures everything, `viewer` only looks.
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: Db,
    },
    /// Set a user's password.
    Passwd {
        name: String,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: Db,
    },
    /// List users and their roles.
    List {
        #[command(flatten)]
        db: Db,
    },
    /// Delete a user (the last admin cannot be deleted).
    Delete {
        name: String,
        #[command(flatten)]
        db: Db,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    Admin,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password on standard input: pipe it in, e.g. `printf '%s\\n' \"$PW\" | prophasis user add NAME --password-stdin`");
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ")
        .context("reading the password (no terminal? use --password-stdin)")?;
    let second = rpassword::prompt_password("Password again: ")
        .context("reading the password (no terminal? use --password-stdin)")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

pub fn run(cmd: UserCommand) -> anyhow::Result<()> {
    let actor = Actor::command_line();
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            db,
        } => {
            let password = read_password(password_stdin)?;
            super::block_on(async {
                let actions = Actions::offline(db.open().await?);
                let user = actions
                    .create_user(&actor, &name, role.into(), &password)
                    .await
                    .map_err(describe)?;
                println!("user {} added ({})", user.name, user.role.as_str());
                Ok(())
            })?
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            db,
        } => {
            let password = read_password(password_stdin)?;
            super::block_on(async {
                let actions = Actions::offline(db.open().await?);
                let user = find(&actions, &name).await?;
                actions
                    .set_password(&actor, user.id, &password)
                    .await
                    .map_err(describe)?;
                println!("password of user {name} changed");
                Ok(())
            })?
        }
        UserCommand::List { db } => super::block_on(async {
            let actions = Actions::offline(db.open().await?);
            let users = actions.store().list_users().await?;
            let width = users.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
            println!("{:width$}  ROLE", "NAME");
            for u in users {
                println!("{:width$}  {}", u.name, u.role.as_str());
            }
            Ok(())
        })?,
        UserCommand::Delete { name, db } => super::block_on(async {
            let actions = Actions::offline(db.open().await?);
            let user = find(&actions, &name).await?;
            actions
                .delete_user(&actor, user.id)
                .await
                .map_err(describe)?;
            println!("user {name} deleted");
            Ok(())
        })?,
    }
}

async fn find(actions: &Actions, name: &str) -> anyhow::Result<prophasis_model::User> {
    actions
        .store()
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.name == name)
        .with_context(|| format!("no user named {name:?}: see `prophasis user list`"))
}

/// An action's refusal as the command line shows it: the field, then what is wrong.
pub fn describe(e: prophasis::actions::ActionError) -> anyhow::Error {
    match e.field() {
        Some(f) if !e.to_string().starts_with(f) => anyhow::anyhow!("{f}: {e}"),
        _ => anyhow::anyhow!("{e}"),
    }
}
