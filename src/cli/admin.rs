//! `poortwachter admin set-password | users | remove-user`: the admin console's accounts. The
//! password is read from the terminal without echo (twice), or from the first line of standard
//! input when that is not a terminal; only its argon2id hash is stored, in the database, so every
//! replica accepts it.

use std::io::{BufRead as _, IsTerminal as _};

use clap::Subcommand;

use super::Context;
use crate::console::auth::{hash_password, MIN_PASSWORD_CHARS};
use crate::console::valid_account_name;

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Set a console account's password (creating the account)
    #[command(
        after_help = "Examples:\n  poortwachter admin set-password --user beheerder\n  printf '%s\\n' \"$PASSWORD\" | poortwachter admin set-password --user beheerder"
    )]
    SetPassword {
        /// The account name (a-z A-Z 0-9 . _ -, at most 64)
        #[arg(long, default_value = "admin")]
        user: String,
    },
    /// List the console accounts
    Users,
    /// Remove a console account (its open sessions end when they expire)
    RemoveUser {
        /// The account name
        user: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New console password: ")?;
        let again = rpassword::prompt_password("The same again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub(crate) async fn run(ctx: &Context, cmd: AdminCommand) -> anyhow::Result<i32> {
    let store = ctx.store().await?;
    match cmd {
        AdminCommand::SetPassword { user } => {
            anyhow::ensure!(
                valid_account_name(&user),
                "--user: 1 to 64 of a-z A-Z 0-9 . _ -"
            );
            let password = read_password()?;
            anyhow::ensure!(
                password.chars().count() >= MIN_PASSWORD_CHARS,
                "the password must have at least {MIN_PASSWORD_CHARS} characters"
            );
            let hash = hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            store.set_console_password(&user, &hash, now).await?;
            println!("password set for console account {user}");
        }
        AdminCommand::Users => {
            for (name, updated) in store.console_users().await? {
                let when = time::OffsetDateTime::from_unix_timestamp(updated)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                println!("{name}\tpassword set {when}");
            }
        }
        AdminCommand::RemoveUser { user } => {
            if !store.remove_console_user(&user).await? {
                anyhow::bail!("no console account {user}");
            }
            println!("removed console account {user}");
        }
    }
    Ok(0)
}
