//! Operator commands: `completions` (shell completions), `man` (the manual page), `config check`
//! (load everything and report every problem at once) and `healthcheck` (for a container's
//! `HEALTHCHECK`: exit 0 when the internal listener's `/health` answers 200).

use std::io::Write as _;
use std::time::Duration;

use clap::{Args, CommandFactory as _, Subcommand};

use super::{Cli, Context};

/// `poortwachter completions SHELL`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    shell: clap_complete::Shell,
}

/// Prints the completion script for `shell`.
pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "poortwachter", &mut std::io::stdout());
    Ok(0)
}

/// Prints the manual page (roff) of the command and every subcommand.
pub(crate) fn man() -> anyhow::Result<i32> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("poortwachter-{}", sub.get_name());
        out.extend_from_slice(b"\n");
        clap_mangen::Man::new(sub.clone())
            .title(name)
            .render(&mut out)?;
    }
    std::io::stdout().write_all(&out)?;
    Ok(0)
}

/// `poortwachter config ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load the configuration, policies, identity and keys, TLS files and the database; report
    /// every problem at once (exit 0 when there is none)
    Check,
}

/// One finding of `config check`.
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str) {
        println!("ok       {what}");
    }
    fn problem(&mut self, what: &str) {
        self.problems += 1;
        println!("problem  {what}");
    }
}

/// Loads everything `serve` would, without starting anything or changing the database.
pub(crate) async fn config(ctx: &Context, cmd: &ConfigCommand) -> anyhow::Result<i32> {
    let ConfigCommand::Check = cmd;
    let config = &ctx.config;
    let mut r = Report { problems: 0 };
    r.ok(&format!("configuration: {}", config.source_description()));
    // Policies: every file on its own, so each bad one is named.
    match std::fs::read_dir(&config.policies_dir) {
        Err(e) => r.problem(&format!(
            "policies directory {}: {e}; `poortwachter policy install --dir {}` writes the shipped ones",
            config.policies_dir.display(),
            config.policies_dir.display()
        )),
        Ok(entries) => {
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            if files.is_empty() {
                r.problem(&format!(
                    "policies directory {} holds no policy: every request would be refused",
                    config.policies_dir.display()
                ));
            }
            for path in files {
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                let text = std::fs::read_to_string(&path);
                match text.map_err(|e| e.to_string()).and_then(|t| {
                    crate::policy::PolicySet::compile_any(&path.display().to_string(), &name, &t)
                        .map_err(|e| e.to_string())
                }) {
                    Ok(_) => r.ok(&format!("policy {}", path.display())),
                    Err(e) => r.problem(&format!("policy {e}")),
                }
            }
        }
    }
    if let Ok(set) = crate::policy::PolicySet::load_dir(&config.policies_dir) {
        if let Some(h) = &config.hub_source {
            if set
                .for_requests(&h.policy, crate::policy::Authenticator::HubSource)
                .is_none()
            {
                r.problem(&format!(
                    "[hub_source] policy \"{}\" is not a hub-source policy in {}",
                    h.policy,
                    config.policies_dir.display()
                ));
            }
        }
        if let Some(m) = &config.medmij {
            for id in &m.gegevensdiensten {
                let name = crate::medmij::settings::MedmijSettings::policy_of(id);
                if set
                    .for_requests(&name, crate::policy::Authenticator::Medmij)
                    .is_none()
                {
                    r.problem(&format!(
                        "[medmij] gegevensdienst {id} needs a medmij policy \"{name}\" in {}",
                        config.policies_dir.display()
                    ));
                }
            }
        }
    }
    // MedMij lists (read and checked as serve would).
    if let Some(m) = &config.medmij {
        match crate::medmij::sources::Lists::load(m).await {
            Ok(lists) => {
                let l = lists.current();
                r.ok(&format!(
                    "[medmij] lists: OAuth client list {} (Volgnummer {}), whitelist {} ({}), gegevensdienst names {} ({})",
                    m.oauth_client_list,
                    l.clients.volgnummer,
                    m.whitelist,
                    l.whitelist.volgnummer,
                    m.gegevensdienst_name_list,
                    l.names.volgnummer
                ));
            }
            Err(e) => r.problem(&format!("[medmij] lists: {e}")),
        }
        if let crate::medmij::settings::Login::Oidc(o) = &m.login {
            match std::fs::read_to_string(&o.client_secret_file) {
                Ok(s) if !s.trim().is_empty() => r.ok(&format!(
                    "[medmij.oidc] client secret file {}",
                    o.client_secret_file.display()
                )),
                Ok(_) => r.problem(&format!(
                    "[medmij.oidc] client_secret_file {}: empty",
                    o.client_secret_file.display()
                )),
                Err(e) => r.problem(&format!(
                    "[medmij.oidc] client_secret_file {}: {e}",
                    o.client_secret_file.display()
                )),
            }
        } else {
            r.ok("[medmij] dangerous_dev_login = true: a test BSN form instead of a real login (demos only)");
        }
    }
    // Identity and keys.
    match crate::identity::Identity::load(&config.data_dir) {
        Ok(identity) => r.ok(&format!(
            "identity {} ({})",
            identity.did,
            config.data_dir.display()
        )),
        Err(e) if !config.data_dir.join("identity.json").exists() => r.ok(&format!(
            "identity: none yet in {} (`serve` creates one on first start, `init` now): {e}",
            config.data_dir.display()
        )),
        Err(e) => r.problem(&format!("identity: {e}")),
    }
    // TLS.
    if let Some(tls) = &config.tls {
        match crate::tls::TlsAcceptorHandle::load(tls) {
            Ok(_) => r.ok(&format!(
                "tls {} (client certificates: {})",
                tls.cert.display(),
                tls.client_auth
            )),
            Err(e) => r.problem(&format!("tls: {e}")),
        }
    }
    // The Hub's keys.
    if let Some(h) = &config.hub_source {
        match crate::authn::hub_source::read_jwks(&h.jwks)
            .await
            .and_then(|t| crate::hub::token::parse_jwks(&t).map(|k| k.len()))
        {
            Ok(n) => r.ok(&format!("[hub_source] jwks: {n} key(s)")),
            Err(e) => r.problem(&format!("[hub_source] jwks: {e}")),
        }
    }
    // The database: reachable, and a schema this binary can use (nothing is migrated here).
    match crate::store::schema_version(&config.database_url).await {
        Ok((found, latest)) if found > latest => r.problem(&format!(
            "database: schema version {found} is newer than this binary supports ({latest})"
        )),
        Ok((found, latest)) => r.ok(&format!(
            "database: schema version {found} ({})",
            if found == latest {
                "current".to_owned()
            } else {
                format!("`serve` migrates it to {latest}")
            }
        )),
        Err(e) => r.problem(&format!("database: {e}")),
    }
    if r.problems > 0 {
        println!("{} problem(s)", r.problems);
        return Ok(1);
    }
    println!("no problems");
    Ok(0)
}

/// `poortwachter healthcheck`.
#[derive(Debug, Args)]
pub(crate) struct HealthcheckArgs {
    /// The health URL [default: http://<internal_addr>/health, 127.0.0.1 for an unspecified address]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

/// Exit 0 when `/health` answers 200 within 5 s; otherwise exit 1 with the reason.
pub(crate) async fn healthcheck(ctx: &Context, args: &HealthcheckArgs) -> anyhow::Result<i32> {
    let url = args.url.clone().unwrap_or_else(|| {
        let mut addr = ctx.config.internal_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/health")
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    match client.get(&url).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => {
            println!("healthy");
            Ok(0)
        }
        Ok(r) => {
            eprintln!("unhealthy: {url} answered {}", r.status());
            Ok(1)
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e}");
            Ok(1)
        }
    }
}
