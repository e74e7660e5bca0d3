//! `poortwachter init`: create the data dir, the key and the DID; print the DID alone on stdout.

use clap::{Args, ValueEnum};

use super::Context;
use crate::identity::{DidMethod, Identity, InitOutcome};
use crate::keys::KeyType;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KeyTypeArg {
    P256,
    Ed25519,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum MethodArg {
    Key,
    Web,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Key type of the signing key
    #[arg(long, value_enum, default_value = "p256")]
    key_type: KeyTypeArg,
    /// DID method: did:key (derived from the key) or did:web (needs --domain)
    #[arg(long, value_enum, default_value = "key")]
    did_method: MethodArg,
    /// Domain for did:web: host[:port][/path], e.g. zorg.example.nl
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Replace an existing key (the old one is kept, renamed, in the keys directory)
    #[arg(long)]
    force: bool,
    /// Print a JSON object instead of the bare DID
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &Context, args: &InitArgs) -> anyhow::Result<i32> {
    let key_type = match args.key_type {
        KeyTypeArg::P256 => KeyType::P256,
        KeyTypeArg::Ed25519 => KeyType::Ed25519,
    };
    let method = match (args.did_method, &args.domain) {
        (MethodArg::Key, None) => DidMethod::Key,
        (MethodArg::Key, Some(_)) => anyhow::bail!("--domain is only used with --did-method web"),
        (MethodArg::Web, Some(d)) => DidMethod::Web { domain: d.clone() },
        (MethodArg::Web, None) => anyhow::bail!("--did-method web needs --domain"),
    };
    let data_dir = &ctx.config.data_dir;
    let (identity, created) = match Identity::init(data_dir, key_type, method, args.force)? {
        InitOutcome::Created(i) => (i, true),
        InitOutcome::Existing(i) => (i, false),
    };
    let (hub_key, hub_key_created) = crate::hub::token::HubKey::load_or_create(data_dir)?;
    if hub_key_created {
        eprintln!(
            "created the Hub signing key {} (kid {})",
            crate::hub::token::key_path(data_dir).display(),
            hub_key.kid()
        );
    }
    if let Some(z) = &ctx.config.zorgdomein {
        let (key, created) = crate::zorgdomein::sso::SsoKey::load_or_create(&z.sso.key)?;
        if created {
            eprintln!(
                "created the ZorgDomein SSO key {} (kid {}); give ZorgDomein `poortwachter zorgdomein sso-key`",
                z.sso.key.display(),
                key.kid()
            );
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "did": identity.did,
                "verification_method": identity.verification_method,
                "key_type": identity.key.key_type(),
                "created": created,
                "did_document": data_dir.join("did.json"),
            })
        );
    } else {
        println!("{}", identity.did);
    }
    if created {
        eprintln!("created {} in {}", identity.did, data_dir.display());
        if let DidMethod::Web { .. } = identity.method {
            if let Ok(loc) = crate::did::web::location(&identity.did) {
                let port = loc.port.map(|p| format!(":{p}")).unwrap_or_default();
                eprintln!(
                    "publish {} at https://{}{port}{}",
                    data_dir.join("did.json").display(),
                    loc.host,
                    loc.path
                );
            }
        }
    } else {
        eprintln!(
            "{} already initialised; keeping {}",
            data_dir.display(),
            identity.did
        );
    }
    Ok(0)
}
