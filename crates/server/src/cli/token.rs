//! `prophasis token create|list|revoke`: API tokens from the server machine, e.g. for a
//! script set up before anyone has logged in to the web UI. Opens the database named by
//! the server's configuration file and goes through the same actions as the API (acting
//! as an admin: whoever can run this can read the database anyway).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use prophasis::actions::{Actions, Actor};
use prophasis::config::Config;
use prophasis_store::Store;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make an API token for a user and print its secret (shown only this once).
    Create {
        /// The server's configuration file (names the database).
        #[arg(long)]
        config: PathBuf,
        /// The user the token acts as (with that user's role).
        #[arg(long)]
        user: String,
        /// What the token is for, e.g. `grafana`.
        #[arg(long)]
        name: String,
    },
    /// List API tokens (never their secrets).
    List {
        #[arg(long)]
        config: PathBuf,
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an API token by its id (see `token list`); requests with it are refused.
    Revoke {
        #[arg(long)]
        config: PathBuf,
        /// The token's id.
        id: i64,
    },
}

async fn open(config: &Path) -> anyhow::Result<Actions> {
    let config = Config::load(config)?;
    let store = Store::open(&config.database_url())
        .await
        .with_context(|| format!("opening the database {}", config.database_url()))?;
    Ok(Actions::offline(Arc::new(store)))
}

async fn user_id(actions: &Actions, name: &str) -> anyhow::Result<i64> {
    actions
        .store()
        .find_user_by_name(name)
        .await?
        .map(|u| u.id)
        .with_context(|| {
            format!("there is no user {name:?}: check the name in the web UI's user list")
        })
}

fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a calendar date (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    let actor = Actor::command_line();
    match command {
        TokenCommand::Create { config, user, name } => {
            let actions = open(&config).await?;
            let id = user_id(&actions, &user).await?;
            let (token, secret) = actions
                .create_token_for(&actor, id, &name)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the token: {e}"))?;
            println!("id: {}", token.id);
            println!("token: {secret}");
            eprintln!(
                "Keep the token now: it is not shown again. Send it as `Authorization: Bearer <token>`."
            );
        }
        TokenCommand::List { config, user } => {
            let actions = open(&config).await?;
            let only = match user {
                Some(u) => Some(user_id(&actions, &u).await?),
                None => None,
            };
            let tokens = actions.store().list_api_tokens(only).await?;
            if tokens.is_empty() {
                println!("no API tokens");
            }
            for t in tokens {
                println!(
                    "{}\t{}\t{}\tcreated {}\tlast used {}\t{}",
                    t.id,
                    t.user_name,
                    t.name,
                    time(t.created),
                    t.last_used.map_or("never".into(), time),
                    if t.revoked { "revoked" } else { "active" }
                );
            }
        }
        TokenCommand::Revoke { config, id } => {
            let actions = open(&config).await?;
            let t = actions
                .revoke_token(&actor, id)
                .await
                .map_err(|e| anyhow::anyhow!("cannot revoke token {id}: {e}"))?;
            println!("revoked: {} ({} of {})", t.id, t.name, t.user_name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::time(1_709_251_199_000), "2024-02-29 23:59:59Z");
    }
}
