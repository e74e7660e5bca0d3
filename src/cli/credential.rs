//! `poortwachter credential issue|verify|list|show|revoke` (credentials we issue) and
//! `import|list --held|remove-held` (credentials custodians issued to us, for `egress`).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use super::Context;
use crate::admin::{self, IssueInput, RecordView};
use crate::clock::{Clock as _, SystemClock};
use crate::credential::verify::{Mode, Verifier};
use crate::credential::MAX_CREDENTIAL_BYTES;
use crate::store::revocations::RevocationSet;
use crate::store::RevokeOutcome;

#[derive(Debug, Subcommand)]
pub(crate) enum CredentialCommand {
    /// Issue a NutsAuthorizationCredential; prints the signed credential alone on stdout
    #[command(
        after_help = "Example:\n  poortwachter credential issue --subject-did did:web:huisarts.example.nl --bsn 999999990 \\\n      --purpose zorginzage-thuiszorgdossier-door-huisarts --consent implied --expires 2027-06-30"
    )]
    Issue {
        /// The requester's DID (credentialSubject.id)
        #[arg(long, value_name = "DID")]
        subject_did: String,
        /// The patient's BSN (9 digits, passes the 11-check)
        #[arg(long)]
        bsn: String,
        /// purposeOfUse (a policy file must exist for it)
        #[arg(long, value_name = "PURPOSE")]
        purpose: String,
        /// Legal basis: implied or explicit
        #[arg(long, value_name = "implied|explicit")]
        consent: String,
        /// End of validity: YYYY-MM-DD (through the end of that day, UTC) or RFC 3339
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Resource grant PATH:OP[,OP] (repeatable), e.g. /Observation:read
        #[arg(long, value_name = "PATH:OPS")]
        resource: Vec<String>,
        /// Print {"id", "credential"} instead of the bare credential
        #[arg(long)]
        json: bool,
    },
    /// Verify a credential file ("-" for stdin): exit 0 and "valid", or exit 1 and the reason
    #[command(
        after_help = "Example:\n  poortwachter credential verify --did-dir dids/ --proof-only authcred.json"
    )]
    Verify {
        /// The credential file, or - for standard input
        file: PathBuf,
        /// Check only the proof, structure and dates (any credential type, no policy)
        #[arg(long)]
        proof_only: bool,
        /// Print a JSON verdict
        #[arg(long)]
        json: bool,
    },
    /// Import a credential a custodian issued to us (for egress): verified (proof, dates, subject = our DID), then held
    #[command(
        after_help = "Example:\n  poortwachter credential import thuiszorg-noord-999999990.json\n  curl -s https://... | poortwachter credential import -"
    )]
    Import {
        /// The credential file, or - for standard input
        file: PathBuf,
        /// Print the result (or the error) as one JSON line
        #[arg(long)]
        json: bool,
    },
    /// Remove a held credential (one imported with credential import)
    #[command(
        after_help = "Example:\n  poortwachter credential remove-held 'did:web:zorg.example.nl#3f1c...'"
    )]
    RemoveHeld {
        /// Credential id
        id: String,
        /// JSON output
        #[arg(long)]
        json: bool,
    },
    /// List issued credentials (or, with --held, the ones custodians issued to us)
    #[command(
        after_help = "Examples:\n  poortwachter credential list --status active --purpose zorginzage-thuiszorgdossier-door-huisarts\n  poortwachter credential list --held"
    )]
    List {
        /// The credentials we hold (imported), not the ones we issued
        #[arg(long, conflicts_with_all = ["subject_did", "purpose", "bsn", "status"])]
        held: bool,
        /// Only this requester DID
        #[arg(long, value_name = "DID")]
        subject_did: Option<String>,
        /// Only this purposeOfUse
        #[arg(long)]
        purpose: Option<String>,
        /// Only this patient
        #[arg(long)]
        bsn: Option<String>,
        /// Only this status: active, revoked or expired
        #[arg(long, value_name = "active|revoked|expired")]
        status: Option<String>,
        /// JSON lines (one credential per line) instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show one issued credential with its status
    #[command(after_help = "Example:\n  poortwachter credential show 'did:key:zDn...#3f1c...'")]
    Show {
        /// Credential id
        id: String,
        /// JSON with status and revocation
        #[arg(long)]
        json: bool,
    },
    /// Revoke a credential (idempotent; kept forever)
    #[command(
        after_help = "Example:\n  poortwachter credential revoke 'did:key:zDn...#3f1c...' --reason \"consent withdrawn\""
    )]
    Revoke {
        /// Credential id
        id: String,
        /// Why (kept with the revocation)
        #[arg(long)]
        reason: String,
        /// JSON output
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(ctx: &Context, cmd: CredentialCommand) -> anyhow::Result<i32> {
    let now = SystemClock.now().unix_timestamp();
    match cmd {
        CredentialCommand::Issue {
            subject_did,
            bsn,
            purpose,
            consent,
            expires,
            resource,
            json,
        } => {
            let resources = resource
                .iter()
                .map(|r| admin::parse_resource(r))
                .collect::<Result<Vec<_>, _>>()?;
            let input = IssueInput {
                subject_did,
                bsn,
                purpose,
                consent,
                expires,
                resources,
            };
            let policies = ctx.policies()?;
            let custodian = ctx.custodian().await?;
            let (credential, record) = custodian.issue(&input, &policies).await?;
            if json {
                println!("{}", json!({"id": record.id, "credential": credential}));
            } else {
                println!("{}", serde_json::to_string_pretty(&credential)?);
            }
            Ok(0)
        }
        CredentialCommand::Verify {
            file,
            proof_only,
            json,
        } => verify(ctx, &file, proof_only, json).await,
        CredentialCommand::Import { file, json } => import(ctx, &file, json, now).await,
        CredentialCommand::RemoveHeld { id, json } => {
            match ctx.store().await?.remove_held(&id).await {
                Ok(()) => {
                    if json {
                        println!("{}", json!({"id": id, "removed": true}));
                    } else {
                        println!("removed: {id}");
                    }
                    Ok(0)
                }
                Err(crate::store::StoreError::NotFound) => {
                    if json {
                        println!(
                            "{}",
                            json!({"id": id, "removed": false, "error": "not held"})
                        );
                    } else {
                        eprintln!("error: no held credential with id {id}");
                    }
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
        CredentialCommand::List {
            held: true, json, ..
        } => {
            let records = ctx.store().await?.list_held().await?;
            if json {
                for r in &records {
                    println!("{}", serde_json::to_string(&r.view(now))?);
                }
            } else {
                println!(
                    "{:<8} {:<10} {:<44} {:<11} {:<40} ID",
                    "STATUS", "EXPIRES", "PURPOSE", "BSN", "ISSUER"
                );
                for r in &records {
                    let v = r.view(now);
                    let expires = r
                        .expires_at
                        .and_then(|e| time::OffsetDateTime::from_unix_timestamp(e).ok())
                        .map_or_else(|| "-".to_owned(), |e| e.date().to_string());
                    println!(
                        "{:<8} {:<10} {:<44} {:<11} {:<40} {}",
                        v.status, expires, r.purpose, v.bsn, r.issuer, r.id
                    );
                }
                eprintln!("{} held credential(s)", records.len());
            }
            Ok(0)
        }
        CredentialCommand::List {
            held: false,
            subject_did,
            purpose,
            bsn,
            status,
            json,
        } => {
            let filter = admin::filter(subject_did, purpose, bsn, status)?;
            let records = ctx.custodian().await?.list(&filter).await?;
            if json {
                for r in &records {
                    println!("{}", serde_json::to_string(&RecordView::new(r, now))?);
                }
            } else {
                println!(
                    "{:<8} {:<9} {:<10} {:<44} {:<11} ID",
                    "STATUS", "CONSENT", "EXPIRES", "PURPOSE", "BSN"
                );
                for r in &records {
                    let expires = r
                        .expires_at
                        .and_then(|e| time::OffsetDateTime::from_unix_timestamp(e).ok())
                        .map_or_else(|| "-".to_owned(), |e| e.date().to_string());
                    let masked = format!("******{}", r.bsn.as_str().get(6..).unwrap_or(""));
                    println!(
                        "{:<8} {:<9} {:<10} {:<44} {:<11} {}",
                        format!("{:?}", r.status(now)).to_lowercase(),
                        r.consent_type,
                        expires,
                        r.purpose,
                        masked,
                        r.id
                    );
                }
                eprintln!("{} credential(s)", records.len());
            }
            Ok(0)
        }
        CredentialCommand::Show { id, json } => {
            let record = ctx.custodian().await?.show(&id).await?;
            let view = RecordView::new(&record, now);
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                eprintln!(
                    "status: {}",
                    format!("{:?}", record.status(now)).to_lowercase()
                );
                if let Some(r) = &record.revocation {
                    eprintln!("revoked: {} ({})", r.reason, r.revoked_at);
                }
                let doc: serde_json::Value = serde_json::from_str(&record.document)?;
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            Ok(0)
        }
        CredentialCommand::Revoke { id, reason, json } => {
            let outcome = ctx.custodian().await?.revoke(&id, &reason).await?;
            let (already, revocation) = match outcome {
                RevokeOutcome::Revoked(r) => (false, r),
                RevokeOutcome::AlreadyRevoked(r) => (true, r),
            };
            if json {
                println!(
                    "{}",
                    json!({"id": id, "already_revoked": already, "reason": revocation.reason, "revoked_at": revocation.revoked_at})
                );
            } else if already {
                println!("already revoked: {id} (reason: {})", revocation.reason);
            } else {
                println!("revoked: {id}");
            }
            Ok(0)
        }
    }
}

/// `credential import`: verify (proof, structure, dates, the authorization profile; the
/// custodian's policy is the custodian's to apply), check the subject is us, then store as held.
/// Any failure stores nothing.
async fn import(ctx: &Context, file: &PathBuf, json: bool, now: i64) -> anyhow::Result<i32> {
    let raw = read_input(file)?;
    let identity = ctx.identity()?;
    let verifier = Verifier::new(
        Arc::new(crate::credential::jsonld::Contexts::embedded()),
        ctx.resolver()?,
        Arc::new(SystemClock),
        Arc::new(crate::credential::verify::NoRevocations),
    );
    let refuse = |code: &str, reason: String| {
        if json {
            println!(
                "{}",
                json!({"imported": false, "error": code, "reason": reason})
            );
        } else {
            eprintln!("error: credential not imported: {reason}");
        }
        Ok(1)
    };
    let vc = match verifier.verify(&raw, Mode::Held, &Default::default()).await {
        Ok(vc) => vc,
        Err(e) => return refuse(e.code(), e.to_string()),
    };
    if vc.subject_did != identity.did {
        return refuse(
            "wrong_subject",
            format!(
                "it was issued to {}, not to us ({})",
                vc.subject_did, identity.did
            ),
        );
    }
    let Some(bsn) = vc.bsn.clone() else {
        return refuse("no_subject", "credentialSubject.subject is missing".into());
    };
    let record = crate::store::HeldCredential {
        id: vc.id.clone(),
        issuer: vc.issuer.clone(),
        purpose: vc.purpose.clone(),
        bsn,
        issued_at: vc.issued.unix_timestamp(),
        expires_at: vc.expires.map(time::OffsetDateTime::unix_timestamp),
        imported_at: now,
        document: String::from_utf8(raw).map_err(|_| anyhow::anyhow!("not UTF-8"))?,
    };
    match ctx.store().await?.insert_held(&record).await {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict) => {
            return refuse("already_held", format!("already held: {}", record.id));
        }
        Err(e) => return Err(e.into()),
    }
    if json {
        println!(
            "{}",
            json!({"imported": true, "id": record.id, "issuer": record.issuer, "purpose": record.purpose, "expires_at": record.expires_at})
        );
    } else {
        println!("imported: {}", record.id);
    }
    Ok(0)
}

fn read_input(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let limit = (MAX_CREDENTIAL_BYTES + 1) as u64;
    if file.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut raw)?;
    } else {
        std::fs::File::open(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            .take(limit)
            .read_to_end(&mut raw)?;
    }
    Ok(raw)
}

async fn verify(
    ctx: &Context,
    file: &PathBuf,
    proof_only: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let raw = read_input(file)?;
    let revocations = RevocationSet::default();
    // Revocation status counts when the credential is in the local store; a store that does
    // not exist yet is not created by verifying.
    let id = serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned));
    let sqlite_missing = ctx.config.database_url.starts_with("sqlite:")
        && !ctx.config.data_dir.join("poortwachter.db").exists();
    if let (Some(id), false) = (&id, sqlite_missing) {
        if let Ok(record) = ctx.store().await?.credential(id).await {
            if record.revocation.is_some() {
                revocations.insert(id);
            }
        }
    }
    let policies = if proof_only {
        Default::default()
    } else {
        ctx.policies()?
    };
    let verifier = Verifier::new(
        Arc::new(crate::credential::jsonld::Contexts::embedded()),
        ctx.resolver()?,
        Arc::new(SystemClock),
        Arc::new(revocations),
    );
    let mode = if proof_only {
        Mode::ProofOnly
    } else {
        Mode::Authorization
    };
    match verifier.verify(&raw, mode, &policies).await {
        Ok(vc) => {
            if json {
                println!(
                    "{}",
                    json!({"valid": true, "id": vc.id, "issuer": vc.issuer})
                );
            } else {
                println!("valid");
            }
            Ok(0)
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    json!({"valid": false, "error": e.code(), "reason": e.to_string()})
                );
            } else {
                println!("invalid: {e}");
            }
            Ok(1)
        }
    }
}
