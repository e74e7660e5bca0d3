//! `poortwachter zorgdomein ...`: the SSO launch token the XIS hands its user's browser, and the
//! public key ZorgDomein verifies it with. Needs `[zorgdomein]` in the configuration.

use clap::{Args, Subcommand};

use super::Context;
use crate::zorgdomein::sso::{SsoKey, SsoRequest, SsoSigner};

#[derive(Debug, Subcommand)]
pub(crate) enum ZorgDomeinCommand {
    /// Print a signed SSO launch token (RS256) for one user, organisation and patient
    #[command(
        after_help = "Example:\n  poortwachter zorgdomein sso-token --user-system agb-z --user 01234567 --org-system agb-z \\\n      --org 07654321 --patient-id pat-1 --task task-1 --json"
    )]
    SsoToken(SsoTokenArgs),
    /// Print the SSO key's public key (PEM) to give to ZorgDomein
    SsoKey,
}

#[derive(Debug, Args)]
pub(crate) struct SsoTokenArgs {
    /// The user's identifier system (e.g. agb-z)
    #[arg(long, value_name = "SYSTEM")]
    user_system: String,
    /// The user's identifier
    #[arg(long, value_name = "CODE")]
    user: String,
    /// The organisation's identifier system (e.g. agb-z)
    #[arg(long, value_name = "SYSTEM")]
    org_system: String,
    /// The organisation's identifier
    #[arg(long, value_name = "CODE")]
    org: String,
    /// The patient's FHIR id in the XIS
    #[arg(long, value_name = "ID")]
    patient_id: String,
    /// The Task ZorgDomein reads for the launch's context
    #[arg(long, value_name = "ID")]
    task: Option<String>,
    /// An ICPC code
    #[arg(long, value_name = "CODE")]
    icpc: Option<String>,
    /// Print {"token", "launch_url", "jti"} as JSON instead of the bare token
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &Context, cmd: ZorgDomeinCommand) -> anyhow::Result<i32> {
    let Some(settings) = &ctx.config.zorgdomein else {
        anyhow::bail!("no [zorgdomein] section in the configuration");
    };
    let sso = &settings.sso;
    let key = SsoKey::load(&sso.key).map_err(|e| {
        anyhow::anyhow!(
            "{e} (`poortwachter init` creates the SSO key when [zorgdomein] is configured)"
        )
    })?;
    match cmd {
        ZorgDomeinCommand::SsoKey => {
            print!("{}", key.public_pem()?);
            Ok(0)
        }
        ZorgDomeinCommand::SsoToken(a) => {
            let request = SsoRequest::new(
                &a.user_system,
                &a.user,
                &a.org_system,
                &a.org,
                &a.patient_id,
                a.task.as_deref(),
                a.icpc.as_deref(),
            )?;
            let signer = SsoSigner {
                key,
                settings: sso.clone(),
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let launch = signer.launch(&request, now)?;
            if a.json {
                println!("{}", serde_json::to_string(&launch)?);
            } else {
                println!("{}", launch.token);
            }
            Ok(0)
        }
    }
}
