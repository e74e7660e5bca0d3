//! `poortwachter policy check`: what the policy decides for a request, and which rule decided.

use std::collections::HashSet;

use clap::Subcommand;
use serde_json::json;

use super::Context;
use crate::bsn::Bsn;
use crate::policy::request::{decide, BodyShape, Decision, RequestShape, TokenScope, FORM};

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
    // A purposeOfUse policy, or a hub-source policy by its name.
    let rules = match (policies.get(&purpose), policies.request_policy(&purpose)) {
        (Some(p), _) => &p.rules,
        (None, Some(p)) => &p.rules,
        (None, None) => anyhow::bail!(
            "no policy for purposeOfUse \"{}\"",
            crate::policy::display_purpose(&purpose)
        ),
    };
    let (method, target) = request
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow::anyhow!("--request must look like 'GET /Observation?...'"))?;
    let target = target.trim();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    // Reserved characters in values may be given unencoded; encode `|` the way clients do.
    let query = query.map(|q| q.replace('|', "%7C"));
    let form = form.map(|f| f.replace('|', "%7C"));
    let bsn = Bsn::parse(&bsn).map_err(|e| anyhow::anyhow!("--bsn: {e}"))?;
    let patients: HashSet<String> = patient.into_iter().collect();
    let bytes = match &body {
        Some(file) => {
            std::fs::read(file).map_err(|e| anyhow::anyhow!("--body {}: {e}", file.display()))?
        }
        None => Vec::new(),
    };
    let media_type = crate::http::media_type_of(&content_type);
    let charset = crate::http::charset_of(&content_type);
    let shape = RequestShape {
        method,
        path,
        query: query.as_deref(),
        body: match (&form, &body) {
            (Some(f), _) => Some(BodyShape {
                media_type: FORM,
                charset: None,
                bytes: f.as_bytes(),
            }),
            (None, Some(_)) if !bytes.is_empty() => Some(BodyShape {
                media_type: &media_type,
                charset: charset.as_deref(),
                bytes: &bytes,
            }),
            _ => None,
        },
    };
    let decision = decide(
        rules,
        &shape,
        &TokenScope {
            bsn: Some(&bsn),
            allowed_patients: &patients,
        },
    );
    let (verdict, rule, code) = match &decision {
        Decision::Permit(p) => ("permit", p.rule().to_owned(), 0),
        Decision::Deny(r) => ("deny", r.clone(), 1),
        Decision::Malformed(m) => ("malformed", (*m).to_owned(), 1),
        Decision::Body(b) => ("malformed", b.to_string(), 1),
    };
    if json {
        println!("{}", json!({"decision": verdict, "rule": rule}));
    } else {
        println!("{verdict} ({rule})");
    }
    Ok(code)
}
