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

/// A request body to check besides the request line.
#[derive(Debug, Clone, Copy)]
pub enum CheckBody<'a> {
    /// A form body (`name=value&...`, reserved characters may be unencoded).
    Form(&'a str),
    /// Another body with its `Content-Type` (a FHIR resource, say).
    Bytes {
        /// The `Content-Type` value.
        content_type: &'a str,
        /// The body.
        bytes: &'a [u8],
    },
}

/// Decides `request` (`METHOD /path?query`, reserved characters may be unencoded) with an
/// optional body under the policy `purpose` (a purposeOfUse, or another authenticator's policy
/// by its name), for a token of patient `bsn` that may access `patients`.
pub fn check(
    policies: &PolicySet,
    purpose: &str,
    request: &str,
    body: Option<CheckBody<'_>>,
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
    let form = match body {
        Some(CheckBody::Form(f)) if !f.is_empty() => Some(f.replace('|', "%7C")),
        _ => None,
    };
    let (media_type, charset) = match body {
        Some(CheckBody::Bytes { content_type, .. }) => (
            crate::http::media_type_of(content_type),
            crate::http::charset_of(content_type),
        ),
        _ => (String::new(), None),
    };
    let bsn = Bsn::parse(bsn.trim()).map_err(CheckError::Bsn)?;
    let patients: HashSet<String> = patients.iter().cloned().collect();
    let shape = RequestShape {
        method,
        path,
        query: query.as_deref(),
        body: match (&form, body) {
            (Some(f), _) => Some(BodyShape {
                media_type: FORM,
                charset: None,
                bytes: f.as_bytes(),
            }),
            (None, Some(CheckBody::Bytes { bytes, .. })) if !bytes.is_empty() => Some(BodyShape {
                media_type: &media_type,
                charset: charset.as_deref(),
                bytes,
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
        Decision::Body(b) => CheckOutcome {
            verdict: "malformed",
            rule: b.to_string(),
        },
    })
}
