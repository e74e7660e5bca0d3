//! `poortwachter hub ...`: run the embedded Hub and manage its accounts. Uses the global
//! `--data-dir` (the Hub key) and store (`--database-url`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::Context;
use crate::hub::{self, AccountSpec, Hub};

#[derive(Debug, Subcommand)]
pub(crate) enum HubCommand {
    /// Serve the Hub API v3 (register, search, shares, source tokens)
    #[command(
        after_help = "Example:\n  poortwachter hub serve --addr 127.0.0.1:8090 --public-url https://hub.example.nl"
    )]
    Serve(ServeArgs),
    /// Manage Hub accounts
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Listen address
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
    addr: SocketAddr,
    /// Public URL of the Hub; the default issuer of source tokens [default: http://ADDR]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// `iss` of source tokens [default: the public URL]
    #[arg(long, value_name = "ISSUER")]
    issuer: Option<String>,
    /// Lifetime of source tokens in seconds
    #[arg(long, default_value_t = 3600, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..=86_400))]
    token_lifetime: i64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Add an account; prints its API key and secret once
    #[command(
        after_help = "Example:\n  poortwachter hub account add --name verloskundigen-a --display-name 'Verloskundigen A' --agb 01234567 \\\n      --source-url 'https://a.example.nl/dossier/{reference}'"
    )]
    Add(AddArgs),
    /// List accounts (never secrets)
    List {
        /// JSON lines instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: its key stops working within a second
    Disable {
        /// Account name
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Account name: lowercase letters, digits, - _ .
    #[arg(long)]
    name: String,
    /// Display name
    #[arg(long)]
    display_name: String,
    /// AGB code (8 digits); shares may name it instead of the account
    #[arg(long)]
    agb: Option<String>,
    /// The provider's dossier API URL; `{reference}` and `{key}` are filled in per dossier
    #[arg(long, value_name = "URL")]
    source_url: Option<String>,
    /// The provider's dossier API version
    #[arg(long, default_value = "v3", value_parser = ["v1", "v3"])]
    source_api: String,
    /// Print {"name","key","secret"} as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(ctx: &Context, cmd: HubCommand) -> anyhow::Result<i32> {
    match cmd {
        HubCommand::Serve(args) => serve(ctx, args).await,
        HubCommand::Account(AccountCommand::Add(args)) => {
            let store = ctx.store().await?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let made = hub::add_account(
                &store,
                AccountSpec {
                    name: args.name,
                    display_name: args.display_name,
                    agb: args.agb,
                    source_url: args.source_url,
                    source_api: args.source_api,
                },
                now,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "name": made.account.name,
                        "key": made.account.api_key,
                        "secret": made.secret,
                    })
                );
            } else {
                println!("name:   {}", made.account.name);
                println!("key:    {}", made.account.api_key);
                println!("secret: {}", made.secret);
                eprintln!("the secret is shown only now; poortwachter keeps only its argon2 hash");
            }
            Ok(0)
        }
        HubCommand::Account(AccountCommand::List { json }) => {
            let store = ctx.store().await?;
            for a in store.hub_accounts().await? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": a.name,
                            "display_name": a.display_name,
                            "agb": a.agb,
                            "key": a.api_key,
                            "source_api": a.source_api,
                            "source_url": a.source_url,
                            "disabled": a.disabled,
                        })
                    );
                } else {
                    println!(
                        "{}\t{}\t{}\t{}{}",
                        a.name,
                        a.display_name,
                        a.agb.as_deref().unwrap_or("-"),
                        a.api_key,
                        if a.disabled { "\tdisabled" } else { "" }
                    );
                }
            }
            Ok(0)
        }
        HubCommand::Account(AccountCommand::Disable { name }) => {
            let store = ctx.store().await?;
            match store.hub_disable_account(&name).await {
                Ok(()) => {
                    eprintln!("disabled {name}");
                    Ok(0)
                }
                Err(crate::store::StoreError::NotFound) => {
                    eprintln!("error: no account named {}", hub::dossier::printable(&name));
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

async fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<i32> {
    crate::telemetry::init(ctx.config.log_format);
    let store = ctx.store().await?;
    crate::identity::create_private_dir(&ctx.config.data_dir)?;
    let (key, created) = hub::token::HubKey::load_or_create(&ctx.config.data_dir)
        .context("loading the Hub signing key")?;
    if created {
        tracing::info!(path = %hub::token::key_path(&ctx.config.data_dir).display(), "created the Hub signing key");
    }
    // The Hub faces the network too: the same [tls] as the public listener.
    let tls = match &ctx.config.tls {
        Some(settings) => Some(crate::tls::TlsAcceptorHandle::load(settings).context("tls")?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let hub = Arc::new(Hub {
        auth: hub::auth::Authenticator::new(store.clone()).map_err(|e| anyhow::anyhow!("{e}"))?,
        registrar: hub::Registrar::spawn(store.clone(), Arc::new(crate::clock::SystemClock)),
        store,
        key,
        issuer: args.issuer.unwrap_or_else(|| public_url.clone()),
        token_lifetime: args.token_lifetime,
        clock: Arc::new(crate::clock::SystemClock),
    });
    tracing::info!(addr = %addr, issuer = %hub.issuer, "hub listening");
    eprintln!("hub listening on {addr}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = crate::server::listen::serve(
        listener,
        crate::server::hub_api::router(hub.clone(), ctx.config.client_timeout),
        stop_rx,
        crate::server::listen::Limits::of(&ctx.config),
        None,
        tls,
    );
    let signals = async move {
        crate::server::wait_for_signal().await;
        let _ = stop_tx.send(true);
    };
    tokio::join!(server, signals);
    hub.store.close().await;
    Ok(0)
}
