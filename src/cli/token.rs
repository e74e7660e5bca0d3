//! `poortwachter token request`: the requester (GP system) side. Signs a JWT-bearer grant with
//! the key of this data dir and posts it to a custodian's token endpoint.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

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
    let now = SystemClock.now().unix_timestamp();
    let mut claims = json!({
        "iss": identity.did,
        "sub": custodian,
        "aud": audience.as_deref().unwrap_or(&endpoint),
        "purposeOfUse": purpose,
        "vcs": vcs,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + 5,
    });
    match (uzi, name, role) {
        (Some(uzi), Some(name), Some(role)) => {
            let mut usi = json!({"uzi": uzi, "name": name, "role": role});
            for (k, v) in [
                ("initials", initials),
                ("family_name", family_name),
                ("email", email),
            ] {
                if let Some(v) = v {
                    usi[k] = json!(v);
                }
            }
            claims["usi"] = usi;
        }
        (None, None, None) => {}
        _ => anyhow::bail!("--uzi, --name and --role go together"),
    }
    let assertion = crate::jose::sign(&claims, &identity.key, &identity.verification_method)?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .post(&endpoint)
        .form(&[
            ("grant_type", crate::oauth::JWT_BEARER),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST {endpoint}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_else(|_| json!({"error": "invalid_response", "error_description": "the endpoint did not answer JSON"}));
    if status.is_success() {
        if json {
            println!("{body}");
        } else {
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        return Ok(0);
    }
    if json {
        println!(
            "{}",
            json!({"status": status.as_u16(), "error": body["error"], "error_description": body["error_description"]})
        );
    } else {
        eprintln!(
            "error: token request refused ({}): {}: {}",
            status.as_u16(),
            body["error"].as_str().unwrap_or("?"),
            body["error_description"].as_str().unwrap_or("")
        );
    }
    Ok(1)
}
