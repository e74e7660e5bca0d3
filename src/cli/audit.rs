//! `poortwachter audit verify | export`.

use std::io::Write as _;
use std::ops::ControlFlow;

use clap::Subcommand;

use super::Context;
use crate::audit::{Anchor, ChainReport, ChainVerifier};
use crate::store::AuditFilter;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain; report the first changed, inserted or missing record (exit 1)
    #[command(
        after_help = "Records missing at the end cannot be seen from the chain alone: keep the anchor it\nprints (or the one the server logs every minute, \"audit chain head\") elsewhere and\ngive it to a later check.\n\nExamples:\n  poortwachter audit verify\n  poortwachter audit verify --anchor 1042:3f0c…"
    )]
    Verify {
        /// A record number and hash seen earlier (SEQ:HASH): that record must still be there,
        /// unchanged, with every record before it (repeatable)
        #[arg(long, value_name = "SEQ:HASH")]
        anchor: Vec<Anchor>,
    },
    /// Write audit records as JSON lines
    #[command(
        after_help = "Example:\n  poortwachter audit export --since 2026-11-01 --bsn 999999990 > inzage.jsonl"
    )]
    Export {
        /// From this date (YYYY-MM-DD, UTC) or RFC 3339 time, inclusive
        #[arg(long)]
        since: Option<String>,
        /// Until this date or time, exclusive
        #[arg(long)]
        until: Option<String>,
        /// Only this patient
        #[arg(long)]
        bsn: Option<String>,
        /// Only this requester DID
        #[arg(long)]
        requester: Option<String>,
    },
}

fn instant(flag: &str, s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &format)
        .map_err(|_| anyhow::anyhow!("{flag}: expected YYYY-MM-DD or an RFC 3339 time"))?;
    Ok(d.midnight().assume_utc().unix_timestamp())
}

pub(crate) async fn run(ctx: &Context, cmd: AuditCommand) -> anyhow::Result<i32> {
    let store = ctx.store().await?;
    match cmd {
        AuditCommand::Verify { anchor } => {
            // One record at a time: the log may be far larger than memory.
            let mut verifier = ChainVerifier::new(&anchor);
            let mut broken = None;
            store
                .for_each_audit_row(&AuditFilter::default(), |row| match verifier.push(&row) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(report) => {
                        broken = Some(report);
                        ControlFlow::Break(())
                    }
                })
                .await?;
            match broken.unwrap_or_else(|| verifier.finish()) {
                ChainReport::Intact { records, head } => {
                    println!("audit log intact: {records} records, head {head}");
                    if records > 0 {
                        println!("anchor for a later check: {records}:{head}");
                    }
                    Ok(0)
                }
                ChainReport::Broken { seq, reason } => {
                    println!("audit log broken at record {seq}: {reason}");
                    Ok(1)
                }
            }
        }
        AuditCommand::Export {
            since,
            until,
            bsn,
            requester,
        } => {
            let bsn = bsn
                .map(|b| {
                    crate::bsn::Bsn::parse(&b)
                        .map(|b| b.as_str().to_owned())
                        .map_err(|e| anyhow::anyhow!("--bsn: {e}"))
                })
                .transpose()?;
            let filter = AuditFilter {
                since: since
                    .as_deref()
                    .map(|s| instant("--since", s))
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(|s| instant("--until", s))
                    .transpose()?,
                bsn,
                requester,
            };
            // Streamed from the database to stdout: memory stays flat for any period.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut failed = None;
            store
                .for_each_audit_row(&filter, |row| {
                    let written = serde_json::from_str::<serde_json::Value>(&row.record)
                        .map_err(anyhow::Error::from)
                        .and_then(|mut v| {
                            v["seq"] = row.seq.into();
                            v["hash"] = row.hash.into();
                            Ok(writeln!(out, "{v}")?)
                        });
                    match written {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(e) => {
                            failed = Some(e);
                            ControlFlow::Break(())
                        }
                    }
                })
                .await?;
            if let Some(e) = failed {
                return Err(e);
            }
            out.flush()?;
            Ok(0)
        }
    }
}
