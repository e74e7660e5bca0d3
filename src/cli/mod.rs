//! The command line: clap definitions and dispatch. One file per subcommand; `anyhow` lives only
//! here and in `main`.

mod admin;
mod audit;
mod credential;
mod demo;
mod demo_medmij;
mod did;
mod egress;
mod hub;
mod init;
mod ops;
mod policy;
mod serve;
mod tls;
mod token;
mod zorgdomein;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::config::{Config, Override, OVERRIDABLE};

/// poortwachter: authorization sidecar for Dutch healthcare data exchange (Nuts).
#[derive(Debug, Parser)]
#[command(name = "poortwachter", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("POORTWACHTER_GIT_COMMIT"), ")"), about, long_about = None, after_help = "Example:\n  poortwachter init && poortwachter serve")]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes (each also `POORTWACHTER_<NAME>` and a key in config.toml).
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Configuration file [default: ./config.toml if it exists]
    #[arg(long, global = true, env = "POORTWACHTER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (key, identity, SQLite database) [default: ./data]
    #[arg(long, global = true, env = "POORTWACHTER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<String>,
    /// Directory with one policy file per purposeOfUse [default: ./policies]
    #[arg(
        long,
        global = true,
        env = "POORTWACHTER_POLICIES_DIR",
        value_name = "DIR"
    )]
    policies_dir: Option<String>,
    /// Directory of static DID documents (did:nuts, offline setups)
    #[arg(long, global = true, env = "POORTWACHTER_DID_DIR", value_name = "DIR")]
    did_dir: Option<String>,
    /// Database URL: sqlite:PATH or postgres://... [default: SQLite file in the data dir]
    #[arg(
        long,
        global = true,
        env = "POORTWACHTER_DATABASE_URL",
        value_name = "URL"
    )]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process: sample source system, custodian, GP practice
    #[command(
        after_help = "Examples:\n  cargo run --release -- demo\n  cargo run --release -- demo medmij      # MedMij Delen in your browser"
    )]
    Demo(demo::DemoArgs),
    /// Create the data dir, the signing key and the DID (idempotent)
    #[command(
        after_help = "Examples:\n  poortwachter init\n  poortwachter init --key-type ed25519\n  poortwachter init --did-method web --domain zorg.example.nl"
    )]
    Init(init::InitArgs),
    /// Run the server (public and internal listeners)
    #[command(
        after_help = "Example:\n  poortwachter serve --public-url https://zorg.example.nl --upstream http://127.0.0.1:8090"
    )]
    Serve(serve::ServeArgs),
    /// Show our DID document or resolve a DID
    #[command(
        subcommand,
        after_help = "Examples:\n  poortwachter did show\n  poortwachter did resolve did:web:zorg.example.nl"
    )]
    Did(did::DidCommand),
    /// Issue, verify, list, show and revoke authorization credentials; import those issued to us
    #[command(
        subcommand,
        after_help = "Example:\n  poortwachter credential issue --subject-did did:web:huisarts.example.nl --bsn 999999990 \\\n      --purpose zorginzage-thuiszorgdossier-door-huisarts --consent explicit"
    )]
    Credential(credential::CredentialCommand),
    /// The GP side: a loopback listener that attaches access tokens to plain FHIR requests
    #[command(
        after_help = "Example:\n  poortwachter credential import thuiszorg-credential.json\n  poortwachter egress --listen 127.0.0.1:7070\n  curl -H 'X-Poortwachter-Bsn: 999999990' -H 'X-Poortwachter-User-Uzi: 900012345' \\\n      -H 'X-Poortwachter-User-Name: Dr. A. Huisarts' -H 'X-Poortwachter-User-Role: 01.015' \\\n      'http://127.0.0.1:7070/thuiszorg-noord/Observation?patient=pat-1&...'"
    )]
    Egress(egress::EgressArgs),
    /// Request access tokens (the requester / GP side)
    #[command(
        subcommand,
        after_help = "Example:\n  poortwachter token request --endpoint URL --custodian DID --purpose P --credential cred.json --uzi N --name NAME --role ROLE"
    )]
    Token(token::TokenCommand),
    /// Check what a policy decides for a request
    #[command(
        subcommand,
        after_help = "Example:\n  poortwachter policy check --purpose zorginzage-thuiszorgdossier-door-huisarts --request 'GET /List/1'"
    )]
    Policy(policy::PolicyCommand),
    /// The admin console's accounts (password login at /ui/ on the internal listener)
    #[command(
        subcommand,
        after_help = "Example:\n  poortwachter admin set-password --user beheerder"
    )]
    Admin(admin::AdminCommand),
    /// Verify or export the NEN 7513 audit log
    #[command(subcommand, after_help = "Example:\n  poortwachter audit verify")]
    Audit(audit::AuditCommand),
    /// The embedded Hub (Hub API v3 geboortezorg dossier index) and its accounts
    #[command(
        subcommand,
        after_help = "Examples:\n  poortwachter hub account add --name verloskundigen-a --display-name 'Verloskundigen A'\n  poortwachter hub serve --addr 127.0.0.1:8090"
    )]
    Hub(hub::HubCommand),
    /// TLS helpers: a development CA for trying TLS and mutual TLS
    #[command(
        subcommand,
        after_help = "Example:\n  poortwachter tls dev-ca --out certs --client huisarts"
    )]
    Tls(tls::TlsCommand),
    /// Check the configuration: load everything and report every problem at once
    #[command(subcommand, after_help = "Example:\n  poortwachter config check")]
    Config(ops::ConfigCommand),
    /// Exit 0 when the internal listener's /health answers (for a container HEALTHCHECK)
    #[command(
        after_help = "Example:\n  poortwachter healthcheck --url http://127.0.0.1:8081/health"
    )]
    Healthcheck(ops::HealthcheckArgs),
    /// Print shell completions
    #[command(
        after_help = "Example:\n  poortwachter completions bash > /etc/bash_completion.d/poortwachter"
    )]
    Completions(ops::CompletionsArgs),
    /// Print the manual page (roff)
    #[command(
        after_help = "Example:\n  poortwachter man > poortwachter.1 && man ./poortwachter.1"
    )]
    Man,
    /// ZorgDomein: the SSO launch token for the XIS, and its public key
    #[command(
        subcommand,
        after_help = "Example:\n  poortwachter zorgdomein sso-token --user-system agb-z --user 01234567 --org-system agb-z --org 07654321 --patient-id pat-1"
    )]
    Zorgdomein(zorgdomein::ZorgDomeinCommand),
}

/// Everything a command needs from the global options.
pub(crate) struct Context {
    pub config: Config,
}

impl Context {
    pub(crate) fn policies(&self) -> anyhow::Result<crate::policy::PolicySet> {
        Ok(crate::policy::PolicySet::load_dir(
            &self.config.policies_dir,
        )?)
    }

    pub(crate) async fn store(&self) -> anyhow::Result<crate::store::Store> {
        if self.config.database_url.starts_with("sqlite:") {
            crate::identity::create_private_dir(&self.config.data_dir)?;
        }
        crate::store::Store::open(&self.config.database_url)
            .await
            .context("opening the database")
    }

    pub(crate) fn identity(&self) -> anyhow::Result<crate::identity::Identity> {
        Ok(crate::identity::Identity::load(&self.config.data_dir)?)
    }

    pub(crate) async fn custodian(&self) -> anyhow::Result<crate::admin::Custodian> {
        Ok(crate::admin::Custodian {
            identity: Arc::new(self.identity()?),
            store: self.store().await?,
            contexts: Arc::new(crate::credential::jsonld::Contexts::embedded()),
            clock: Arc::new(crate::clock::SystemClock),
        })
    }

    pub(crate) fn resolver(&self) -> anyhow::Result<crate::did::Resolver> {
        Ok(crate::did::Resolver::new(&self.config.resolver)?)
    }
}

/// Where a value came from, for error messages: the flag or the environment variable.
fn overrides(
    matches: &ArgMatches,
    extra: &[(&'static str, &ArgMatches)],
) -> HashMap<&'static str, Override> {
    let mut out = HashMap::new();
    let mut take = |key: &'static str, m: &ArgMatches| {
        let Ok(Some(value)) = m.try_get_one::<String>(key) else {
            return;
        };
        let origin = match m.value_source(key) {
            Some(ValueSource::EnvVariable) => format!("POORTWACHTER_{}", key.to_ascii_uppercase()),
            _ => format!("--{}", key.replace('_', "-")),
        };
        out.insert(
            key,
            Override {
                value: value.clone(),
                origin,
            },
        );
    };
    for key in OVERRIDABLE {
        take(key, matches);
        for (k, m) in extra {
            if *k == key {
                take(key, m);
            }
        }
    }
    out
}

/// Parses the command line and runs the command. The returned code is the process exit code.
pub fn run() -> anyhow::Result<i32> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    let mut chain = Vec::new();
    let mut current = &matches;
    while let Some((_, m)) = current.subcommand() {
        chain.push(m);
        current = m;
    }
    let extra: Vec<(&'static str, &ArgMatches)> = chain
        .iter()
        .flat_map(|m| OVERRIDABLE.iter().map(move |k| (*k, *m)))
        .collect();
    let overrides = overrides(&matches, &extra);
    let (config_path, explicit) = match &cli.global.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    let config = Config::load(Some(&config_path), explicit, &overrides)?;
    let ctx = Context { config };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Init(args) => init::run(&ctx, &args),
            Command::Demo(args) => demo::run(&ctx, &args).await,
            Command::Serve(args) => serve::run(ctx, args).await,
            Command::Egress(args) => egress::run(ctx, args).await,
            Command::Did(cmd) => did::run(&ctx, cmd).await,
            Command::Credential(cmd) => credential::run(&ctx, cmd).await,
            Command::Token(cmd) => token::run(&ctx, cmd).await,
            Command::Policy(cmd) => policy::run(&ctx, cmd),
            Command::Audit(cmd) => audit::run(&ctx, cmd).await,
            Command::Admin(cmd) => admin::run(&ctx, cmd).await,
            Command::Hub(cmd) => hub::run(&ctx, cmd).await,
            Command::Config(cmd) => ops::config(&ctx, &cmd).await,
            Command::Healthcheck(args) => ops::healthcheck(&ctx, &args).await,
            Command::Completions(args) => ops::completions(&args),
            Command::Man => ops::man(),
            Command::Tls(cmd) => tls::run(&ctx, cmd),
            Command::Zorgdomein(cmd) => zorgdomein::run(&ctx, cmd),
        }
    })
}
