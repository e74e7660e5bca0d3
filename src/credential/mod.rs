//! Nuts authorization credentials: issuing (building and signing) and verifying JSON-LD
//! `NutsAuthorizationCredential`s with a `JsonWebSignature2020` proof.
//!
//! The checks are pure functions of the credential, the time (an injected [`Clock`]) and the
//! policies; only [`verify::Verifier`] does IO (DID resolution) and keeps the caches.
//!
//! [`Clock`]: crate::clock::Clock

pub mod issue;
pub mod jsonld;
pub mod proof;
pub mod verify;

use serde::Serialize;
use time::OffsetDateTime;

use crate::bsn::{Bsn, BsnError};
use crate::did::DidError;
use crate::policy::ConsentType;

pub use jsonld::JsonLdError;

/// The credential type poortwachter issues.
pub const AUTHORIZATION_CREDENTIAL: &str = "NutsAuthorizationCredential";
/// Largest credential accepted, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 64 * 1024;
/// Allowed clock skew for issuance and expiration dates.
pub const CLOCK_SKEW_SECONDS: i64 = 5;

/// Why a credential was refused or could not be issued. Messages are one line and hold no BSN.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Not JSON, not an object, a missing or mistyped member.
    #[error("malformed credential: {0}")]
    Malformed(String),
    /// Larger than [`MAX_CREDENTIAL_BYTES`].
    #[error("credential is larger than {MAX_CREDENTIAL_BYTES} bytes")]
    TooLarge,
    /// Strict JSON-LD processing failed (e.g. an undefined term).
    #[error(transparent)]
    JsonLd(#[from] JsonLdError),
    /// The proof is malformed or unsupported.
    #[error("invalid proof: {0}")]
    Proof(String),
    /// The signature does not verify with the issuer's key.
    #[error("invalid proof: signature does not verify with the issuer's key")]
    BadSignature,
    /// The issuer's DID or key could not be resolved.
    #[error(transparent)]
    Did(#[from] DidError),
    /// `id` does not start with the issuer DID.
    #[error("credential id does not start with the issuer DID")]
    IdNotOfIssuer,
    /// Not exactly one credentialSubject.
    #[error("credential must have exactly one credentialSubject, found {0}")]
    SubjectCount(usize),
    /// `issuanceDate` is in the future.
    #[error("credential is not valid yet (issuanceDate is in the future)")]
    NotYetValid,
    /// `expirationDate` has passed.
    #[error("credential has expired")]
    Expired,
    /// Not a `NutsAuthorizationCredential`.
    #[error("not a NutsAuthorizationCredential")]
    NotAuthorizationCredential,
    /// The subject is missing or not a valid BSN.
    #[error("credentialSubject.subject: {0}")]
    Bsn(#[from] BsnError),
    /// The credential has no BSN subject at all.
    #[error(
        "credentialSubject.subject is missing: an authorization credential needs a BSN subject"
    )]
    NoSubject,
    /// The purposeOfUse has no policy here.
    #[error("no policy for purposeOfUse \"{0}\"")]
    UnknownPurpose(String),
    /// Consent type missing.
    #[error("credentialSubject.legalBase.consentType is missing")]
    NoConsentType,
    /// Consent type not accepted by the policy.
    #[error("consent type \"{consent}\" is not allowed for purposeOfUse \"{purpose}\"")]
    ConsentNotAllowed {
        /// The consent type.
        consent: String,
        /// The purpose.
        purpose: String,
    },
    /// The policy requires an `expirationDate`.
    #[error("expirationDate is required for {0} consent under this policy")]
    ExpirationRequired(ConsentType),
    /// The validity is longer than the policy allows.
    #[error("validity is longer than the policy's maximum of {0} days")]
    ValidityTooLong(u32),
    /// Revoked by its issuer.
    #[error("credential has been revoked")]
    Revoked,
}

impl CredentialError {
    /// A stable machine-readable code for API answers.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::TooLarge => "malformed_credential",
            Self::JsonLd(_) => "invalid_jsonld",
            Self::Proof(_) | Self::BadSignature => "invalid_proof",
            Self::Did(_) => "unresolvable_issuer",
            Self::Expired | Self::NotYetValid => "invalid_dates",
            Self::Revoked => "revoked",
            Self::UnknownPurpose(_)
            | Self::NoConsentType
            | Self::ConsentNotAllowed { .. }
            | Self::ExpirationRequired(_)
            | Self::ValidityTooLong(_) => "policy_violation",
            Self::IdNotOfIssuer
            | Self::SubjectCount(_)
            | Self::NotAuthorizationCredential
            | Self::Bsn(_)
            | Self::NoSubject => "invalid_credential",
        }
    }
}

/// A resource grant in `credentialSubject.resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resource {
    /// Path, e.g. `/Observation`.
    pub path: String,
    /// Operations, e.g. `read`.
    pub operations: Vec<String>,
    /// Whether a user context is needed.
    #[serde(default)]
    pub user_context: bool,
}

/// What a verified authorization credential says.
#[derive(Debug, Clone)]
pub struct VerifiedCredential {
    /// The credential id.
    pub id: String,
    /// The issuer (custodian) DID.
    pub issuer: String,
    /// `credentialSubject.id`: the requester DID.
    pub subject_did: String,
    /// `credentialSubject.purposeOfUse`.
    pub purpose: String,
    /// The patient (absent only in proof-only mode for other credential types).
    pub bsn: Option<Bsn>,
    /// The consent type, where given.
    pub consent: Option<ConsentType>,
    /// `issuanceDate`.
    pub issued: OffsetDateTime,
    /// `expirationDate`.
    pub expires: Option<OffsetDateTime>,
}
