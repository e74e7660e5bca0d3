//! `poortwachter token request`: the requester (GP system) side. Signs a JWT-bearer grant with
//! the key of this data dir and posts it to a custodian's token endpoint.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::oauth::request::{self, GrantInput, TokenRequestError, UserIdentity};

use super::Context;
use crate::clock::{Clock as _, SystemClock};

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Request an access token from a custodian with an authorization credential
    #[command(
        after_help = "Example:\n  poortwachter --data-dir ./huisarts token request \\\n      --endpoint https://zorg.example.nl/n2n/auth/v1/accesstoken --custodian did:web:zorg.example.nl \\\n      --purpose zorginzage-thuiszorgdossier-door-huisarts --credential cred.json \\\n      --uzi 900012345 --name 'Dr. A. Huisarts' --role 01.015 \\\n      --cacert certs/ca.pem --cert certs/huisarts.pem --key certs/huisarts-key.pem"
    )]
    Request {
        /// The custodian's token endpoint URL
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// The grant's aud, when the custodian's public URL differs from --endpoint (e.g. behind a proxy)
        #[arg(long, value_name = "URL")]
        audience: Option<String>,
        /// The custodian's DID (the grant's sub)
        #[arg(long, value_name = "DID")]
        custodian: String,
        /// purposeOfUse
        #[arg(long, value_name = "PURPOSE")]
        purpose: String,
        /// The authorization credential (repeatable)
        #[arg(long, value_name = "FILE", required = true)]
        credential: Vec<PathBuf>,
        /// UZI number of the user
        #[arg(long)]
        uzi: Option<String>,
        /// Full name of the user
        #[arg(long)]
        name: Option<String>,
        /// Role code of the user
        #[arg(long)]
        role: Option<String>,
        /// Initials
        #[arg(long)]
        initials: Option<String>,
        /// Family name
        #[arg(long)]
        family_name: Option<String>,
        /// E-mail address
        #[arg(long)]
        email: Option<String>,
        /// Trust this CA file (PEM) for the endpoint instead of the system's roots
        #[arg(long, value_name = "FILE")]
        cacert: Vec<PathBuf>,
        /// Present this client certificate (PEM chain, leaf first) when the endpoint requires mutual TLS; the token is then bound to it
        #[arg(long, value_name = "FILE", requires = "key")]
        cert: Option<PathBuf>,
        /// The private key of --cert (PEM, mode 0600 or stricter)
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
        /// Print the answer (or the error) as one JSON line
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(ctx: &Context, cmd: TokenCommand) -> anyhow::Result<i32> {
    let TokenCommand::Request {
        endpoint,
        audience,
        custodian,
        purpose,
        credential,
        uzi,
        name,
        role,
        initials,
        family_name,
        email,
        cacert,
        cert,
        key,
        json,
    } = cmd;
    // The TLS files first: a bad one stops the command before anything is signed or sent.
    let tls = crate::tls::client_config(
        &crate::tls::OutboundTls {
            ca: cacert,
            client_cert: cert,
            client_key: key,
        },
        &crate::tls::client::CLI_FILES,
        crate::tls::Roots::ConfiguredElseSystem,
    )?;
    let identity = ctx.identity()?;
    let mut vcs = Vec::new();
    for file in &credential {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", file.display()))?;
        anyhow::ensure!(v.is_object(), "{}: not a JSON object", file.display());
        vcs.push(v);
    }
    let user = match (uzi, name, role) {
        (Some(uzi), Some(name), Some(role)) => Some(UserIdentity {
            uzi,
            name,
            role,
            initials,
            family_name,
            email,
        }),
        (None, None, None) => None,
        _ => anyhow::bail!("--uzi, --name and --role go together"),
    };
    let input = GrantInput {
        issuer: &identity.did,
        custodian: &custodian,
        audience: audience.as_deref().unwrap_or(&endpoint),
        purpose: &purpose,
        vcs: &vcs,
        user: user.as_ref(),
    };
    let claims = request::claims(
        &input,
        SystemClock.now().unix_timestamp(),
        &uuid::Uuid::new_v4().to_string(),
    );
    let assertion = request::sign(&identity, &claims)?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    match request::post_grant(&client, &endpoint, &assertion).await {
        Ok(answer) => {
            if json {
                println!("{}", answer.body);
            } else {
                println!("{}", serde_json::to_string_pretty(&answer.body)?);
            }
            Ok(0)
        }
        Err(TokenRequestError::Refused {
            status,
            error,
            description,
        }) => {
            if json {
                println!(
                    "{}",
                    json!({"status": status, "error": error, "error_description": description})
                );
            } else {
                eprintln!("error: token request refused ({status}): {error}: {description}");
            }
            Ok(1)
        }
        Err(e) => Err(anyhow::anyhow!("POST {endpoint}: {e}")),
    }
}
