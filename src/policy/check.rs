//! `policy check` as a function: what a policy decides for one request line, and which rule
//! decided. The CLI (`poortwachter policy check`) and the admin console's "try a request" box
//! both call [`check`], so they always agree.

use std::collections::HashSet;

use super::request::{decide, BodyShape, Decision, RequestShape, TokenScope, FORM};
use super::PolicySet;
use crate::bsn::{Bsn, BsnError};

/// Why a check could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// No policy of that name.
    #[error("no policy for purposeOfUse \"{0}\"")]
    UnknownPurpose(String),
    /// The request is not `METHOD /path?query`.
    #[error("the request must look like 'GET /Observation?...'")]
    RequestLine,
    /// The token's BSN is not a BSN.
    #[error("bsn: {0}")]
    Bsn(BsnError),
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// `permit`, `deny` or `malformed`.
    pub verdict: &'static str,
    /// The rule that permitted, or why not.
    pub rule: String,
}

impl CheckOutcome {
    /// Whether the request would be forwarded.
    #[must_use]
    pub fn permitted(&self) -> bool {
        self.verdict == "permit"
    }
}

/// Decides `request` (`METHOD /path?query`, reserved characters may be unencoded) with an
/// optional form body under the policy `purpose` (a purposeOfUse, or a hub-source policy by its
/// name), for a token of patient `bsn` that may access `patients`.
pub fn check(
    policies: &PolicySet,
    purpose: &str,
    request: &str,
    form: Option<&str>,
    bsn: &str,
    patients: &[String],
) -> Result<CheckOutcome, CheckError> {
    let rules = match (policies.get(purpose), policies.request_policy(purpose)) {
        (Some(p), _) => &p.rules,
        (None, Some(p)) => &p.rules,
        (None, None) => {
            return Err(CheckError::UnknownPurpose(super::display_purpose(purpose)));
        }
    };
    let (method, target) = request
        .trim()
        .split_once(' ')
        .ok_or(CheckError::RequestLine)?;
    let target = target.trim();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    // Reserved characters in values may be given unencoded; encode `|` the way clients do.
    let query = query.map(|q| q.replace('|', "%7C"));
    let form = form
        .filter(|f| !f.is_empty())
        .map(|f| f.replace('|', "%7C"));
    let bsn = Bsn::parse(bsn.trim()).map_err(CheckError::Bsn)?;
    let patients: HashSet<String> = patients.iter().cloned().collect();
    let shape = RequestShape {
        method,
        path,
        query: query.as_deref(),
        body: form.as_deref().map(|f| BodyShape {
            media_type: FORM,
            bytes: f.as_bytes(),
        }),
    };
    let decision = decide(
        rules,
        &shape,
        &TokenScope {
            bsn: Some(&bsn),
            allowed_patients: &patients,
        },
    );
    Ok(match &decision {
        Decision::Permit(p) => CheckOutcome {
            verdict: "permit",
            rule: p.rule().to_owned(),
        },
        Decision::Deny(r) => CheckOutcome {
            verdict: "deny",
            rule: r.clone(),
        },
        Decision::Malformed(m) => CheckOutcome {
            verdict: "malformed",
            rule: (*m).to_owned(),
        },
    })
}
