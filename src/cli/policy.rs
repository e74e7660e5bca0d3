//! `poortwachter policy check`: what the policy decides for a request, and which rule decided.

use clap::Subcommand;
use serde_json::json;

use super::Context;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Decide one request under a purpose's policy (exit 0 permit, 1 deny)
    #[command(
        after_help = "Example:\n  poortwachter policy check --purpose zorginzage-thuiszorgdossier-door-huisarts --patient pat-1 \\\n      --request 'GET /Observation?patient=pat-1&_profile=http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight&_sort=-date&_count=5'"
    )]
    Check {
        /// purposeOfUse
        #[arg(long)]
        purpose: String,
        /// The request: 'METHOD /path?query'
        #[arg(long)]
        request: String,
        /// Form body of a POST (e.g. identifier=http://fhir.nl/fhir/NamingSystem/bsn|999999990)
        #[arg(long, conflicts_with = "body")]
        form: Option<String>,
        /// A file holding the request body of a POST or PUT (a FHIR resource)
        #[arg(long, value_name = "FILE")]
        body: Option<std::path::PathBuf>,
        /// The body's Content-Type
        #[arg(long, default_value = "application/fhir+json", requires = "body")]
        content_type: String,
        /// The token's BSN [default: 999999990]
        #[arg(long, default_value = "999999990")]
        bsn: String,
        /// A Patient id the token may access (repeatable)
        #[arg(long)]
        patient: Vec<String>,
        /// JSON output
        #[arg(long)]
        json: bool,
    },
    /// Load every policy file and report the first problem (exit 0 when all are valid)
    Validate,
    /// Write the policies shipped with this binary into a directory (existing files are kept)
    #[command(after_help = "Example:\n  poortwachter policy install --dir ./policies")]
    Install {
        /// The directory [default: the configured policies_dir]
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

/// Writes the shipped policies into `dir`, keeping files that exist; prints what it did.
fn install(dir: &std::path::Path) -> anyhow::Result<i32> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    for (file, text) in crate::policy::shipped::SHIPPED {
        let path = dir.join(file);
        if path.exists() {
            println!("kept    {}", path.display());
            continue;
        }
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!("written {}", path.display());
    }
    Ok(0)
}

pub(crate) fn run(ctx: &Context, cmd: PolicyCommand) -> anyhow::Result<i32> {
    if let PolicyCommand::Install { dir } = &cmd {
        return install(dir.as_deref().unwrap_or(&ctx.config.policies_dir));
    }
    let policies = ctx.policies()?;
    let PolicyCommand::Check {
        purpose,
        request,
        form,
        body,
        content_type,
        bsn,
        patient,
        json,
    } = cmd
    else {
        // Validate (Install returned above).
        let purposes: Vec<&str> = policies.purposes().collect();
        println!("valid: {}", purposes.join(", "));
        return Ok(0);
    };
    let bytes = match &body {
        Some(file) => {
            std::fs::read(file).map_err(|e| anyhow::anyhow!("--body {}: {e}", file.display()))?
        }
        None => Vec::new(),
    };
    let check_body = match (&form, &body) {
        (Some(f), _) => Some(crate::policy::check::CheckBody::Form(f)),
        (None, Some(_)) => Some(crate::policy::check::CheckBody::Bytes {
            content_type: &content_type,
            bytes: &bytes,
        }),
        (None, None) => None,
    };
    let outcome =
        crate::policy::check::check(&policies, &purpose, &request, check_body, &bsn, &patient)
            .map_err(|e| match e {
                crate::policy::check::CheckError::RequestLine => {
                    anyhow::anyhow!("--request must look like 'GET /Observation?...'")
                }
                crate::policy::check::CheckError::Bsn(e) => anyhow::anyhow!("--bsn: {e}"),
                other => anyhow::anyhow!("{other}"),
            })?;
    let (verdict, rule) = (outcome.verdict, outcome.rule.clone());
    let code = i32::from(!outcome.permitted());
    if json {
        println!("{}", json!({"decision": verdict, "rule": rule}));
    } else {
        println!("{verdict} ({rule})");
    }
    Ok(code)
}
