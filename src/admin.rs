//! Credential administration for the custodian: issue, list, show, revoke. The CLI and the
//! internal admin API both call this, so they behave the same.
//!
//! Inputs arrive as strings ([`IssueInput`]) and are parsed here into checked values, each
//! failure naming the field and the rule (never echoing a BSN).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::bsn::Bsn;
use crate::clock::Clock;
use crate::credential::issue::{self, IssueRequest, Issuer};
use crate::credential::jsonld::Contexts;
use crate::credential::proof::go_rfc3339;
use crate::credential::{proof, CredentialError, Resource};
use crate::identity::Identity;
use crate::policy::{ConsentType, PolicySet};
use crate::store::{CredentialFilter, CredentialRecord, RevokeOutcome, Status, Store, StoreError};

/// Errors of the administration boundary.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The credential could not be issued.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The credential id is unknown.
    #[error("no credential with that id")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AdminError::NotFound,
            other => AdminError::Store(other),
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// An issue request as the CLI or API receives it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    /// Requester DID.
    pub subject_did: String,
    /// Patient BSN (9 digits).
    pub bsn: String,
    /// purposeOfUse.
    pub purpose: String,
    /// `implied` or `explicit`.
    pub consent: String,
    /// `YYYY-MM-DD` (end of that day, UTC) or RFC 3339.
    #[serde(default)]
    pub expires: Option<String>,
    /// Resource grants.
    #[serde(default)]
    pub resources: Vec<Resource>,
}

/// Parses `PATH:OP,OP` (the CLI's `--resource`).
pub fn parse_resource(s: &str) -> Result<Resource, AdminError> {
    let (path, ops) = s
        .rsplit_once(':')
        .ok_or_else(|| invalid("resource", "expected PATH:OP[,OP...]"))?;
    Ok(Resource {
        path: path.to_owned(),
        operations: ops.split(',').map(str::to_owned).collect(),
        user_context: false,
    })
}

/// Parses an expiry: a date (valid through the end of that day, UTC) or an RFC 3339 date-time.
pub fn parse_expires(s: &str) -> Result<OffsetDateTime, AdminError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .map(|d| d.with_hms(23, 59, 59).map(|t| t.assume_utc()))
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| invalid("expires", "expected YYYY-MM-DD or an RFC 3339 date-time"))
}

impl IssueInput {
    /// Checks every field and builds the request (the first problem stops it).
    pub fn parse(&self, policies: &PolicySet) -> Result<IssueRequest, AdminError> {
        self.check_subject_did()?;
        let bsn = self.check_bsn()?;
        self.check_purpose(policies)?;
        let consent = self.check_consent()?;
        let expires = self.check_expires()?;
        Ok(IssueRequest {
            subject_did: self.subject_did.clone(),
            bsn,
            purpose: self.purpose.clone(),
            consent,
            expires,
            resources: self.resources.clone(),
        })
    }

    /// Every field's problem at once, in field order (the console shows each next to its
    /// field); the checks of [`IssueInput::parse`].
    pub fn problems(&self, policies: &PolicySet) -> Vec<AdminError> {
        [
            self.check_subject_did(),
            self.check_bsn().map(drop),
            self.check_purpose(policies),
            self.check_consent().map(drop),
            self.check_expires().map(drop),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect()
    }

    fn check_subject_did(&self) -> Result<(), AdminError> {
        crate::did::method_of(&self.subject_did)
            .map(drop)
            .map_err(|_| invalid("subject_did", "not a valid DID"))
    }

    fn check_bsn(&self) -> Result<Bsn, AdminError> {
        Bsn::parse(&self.bsn).map_err(|e| invalid("bsn", e.to_string()))
    }

    fn check_purpose(&self, policies: &PolicySet) -> Result<(), AdminError> {
        if policies.get(&self.purpose).is_none() {
            return Err(
                CredentialError::UnknownPurpose(crate::policy::display_purpose(&self.purpose))
                    .into(),
            );
        }
        Ok(())
    }

    fn check_consent(&self) -> Result<ConsentType, AdminError> {
        ConsentType::parse(&self.consent)
            .ok_or_else(|| invalid("consent", "must be implied or explicit"))
    }

    fn check_expires(&self) -> Result<Option<OffsetDateTime>, AdminError> {
        self.expires.as_deref().map(parse_expires).transpose()
    }
}

/// A revocation's reason, trimmed: 1 to 1000 printable characters.
pub fn revocation_reason(reason: &str) -> Result<&str, AdminError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 1000 || reason.chars().any(char::is_control) {
        return Err(invalid("reason", "must be 1 to 1000 printable characters"));
    }
    Ok(reason)
}

/// The custodian's credential administration.
pub struct Custodian {
    /// Our identity (DID and key).
    pub identity: Arc<Identity>,
    /// The store.
    pub store: Store,
    /// JSON-LD contexts.
    pub contexts: Arc<Contexts>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl Custodian {
    /// Issues, self-checks and stores a credential; returns the signed credential.
    pub async fn issue(
        &self,
        input: &IssueInput,
        policies: &PolicySet,
    ) -> Result<(Value, CredentialRecord), AdminError> {
        let request = input.parse(policies)?;
        let policy = policies
            .get(&request.purpose)
            .ok_or_else(|| CredentialError::UnknownPurpose(request.purpose.clone()))?;
        let now = self.clock.now();
        let issuer = Issuer {
            did: &self.identity.did,
            verification_method: &self.identity.verification_method,
            key: &self.identity.key,
        };
        let credential = issue::issue(&self.contexts, &issuer, &request, policy, now)?;
        // What we store and hand out must verify: check our own proof before storing it.
        let map = credential.as_object().cloned().unwrap_or_default();
        let input = proof::prepare(&self.contexts, &map, &self.identity.did)?;
        if !self.identity.key.public_key().verify(
            &input.alg,
            &input.signing_input,
            &input.signature,
        ) {
            return Err(CredentialError::BadSignature.into());
        }
        let record = CredentialRecord {
            id: map
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            issuer: self.identity.did.clone(),
            subject_did: request.subject_did.clone(),
            purpose: request.purpose.clone(),
            bsn: request.bsn.clone(),
            consent_type: request.consent.as_str().to_owned(),
            issued_at: now.unix_timestamp(),
            expires_at: request.expires.map(OffsetDateTime::unix_timestamp),
            document: credential.to_string(),
            revocation: None,
        };
        self.store.insert_credential(&record).await?;
        Ok((credential, record))
    }

    /// Lists stored credentials.
    pub async fn list(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Vec<CredentialRecord>, AdminError> {
        Ok(self
            .store
            .list_credentials(filter, self.clock.now().unix_timestamp())
            .await?)
    }

    /// One stored credential.
    pub async fn show(&self, id: &str) -> Result<CredentialRecord, AdminError> {
        Ok(self.store.credential(id).await?)
    }

    /// Revokes a credential (idempotent; the first reason stands).
    pub async fn revoke(&self, id: &str, reason: &str) -> Result<RevokeOutcome, AdminError> {
        let reason = revocation_reason(reason)?;
        Ok(self
            .store
            .revoke(id, reason, self.clock.now().unix_timestamp())
            .await?)
    }
}

/// Builds a credential filter from optional strings, checking each.
pub fn filter(
    subject_did: Option<String>,
    purpose: Option<String>,
    bsn: Option<String>,
    status: Option<String>,
) -> Result<CredentialFilter, AdminError> {
    let bsn = bsn
        .map(|b| {
            Bsn::parse(&b)
                .map(|b| b.as_str().to_owned())
                .map_err(|e| invalid("bsn", e.to_string()))
        })
        .transpose()?;
    let status = status
        .map(|s| {
            Status::parse(&s).ok_or_else(|| invalid("status", "must be active, revoked or expired"))
        })
        .transpose()?;
    Ok(CredentialFilter {
        subject_did,
        purpose,
        bsn,
        status,
    })
}

fn unix_to_rfc3339(t: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(t).ok().map(go_rfc3339)
}

/// The JSON view of a stored credential (API answers and `--json`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    id: String,
    status: Status,
    issuer: String,
    subject_did: String,
    purpose: String,
    bsn: String,
    consent_type: String,
    issued_at: Option<String>,
    expires_at: Option<String>,
    /// `{reason, revoked_at}` when revoked.
    #[schema(value_type = Option<Object>)]
    revocation: Option<Value>,
    /// The signed credential (JSON-LD).
    #[schema(value_type = Object)]
    credential: Value,
}

impl RecordView {
    /// Builds the view at `now`.
    #[must_use]
    pub fn new(r: &CredentialRecord, now: i64) -> Self {
        RecordView {
            id: r.id.clone(),
            status: r.status(now),
            issuer: r.issuer.clone(),
            subject_did: r.subject_did.clone(),
            purpose: r.purpose.clone(),
            bsn: r.bsn.as_str().to_owned(),
            consent_type: r.consent_type.clone(),
            issued_at: unix_to_rfc3339(r.issued_at),
            expires_at: r.expires_at.and_then(unix_to_rfc3339),
            revocation: r
                .revocation
                .as_ref()
                .map(|v| json!({"reason": v.reason, "revoked_at": unix_to_rfc3339(v.revoked_at)})),
            credential: serde_json::from_str(&r.document).unwrap_or(Value::Null),
        }
    }
}
