//! Building and signing a `NutsAuthorizationCredential` for the huisarts profile. Pure: the time
//! comes from the caller, the key and DID from the local identity.

use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};

use super::jsonld::{Contexts, LDS_JWS2020_V1, LEGALBASE_V1, NUTS_V1, W3C_CREDENTIALS_V1};
use super::proof::{self, go_rfc3339};
use super::{CredentialError, Resource, AUTHORIZATION_CREDENTIAL};
use crate::bsn::Bsn;
use crate::did;
use crate::keys::SigningKey;
use crate::policy::{ConsentType, Policy};

/// What the administrator asks for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The requester's DID (`credentialSubject.id`).
    pub subject_did: String,
    /// The patient.
    pub bsn: Bsn,
    /// The purposeOfUse (must have a policy).
    pub purpose: String,
    /// The legal basis.
    pub consent: ConsentType,
    /// End of validity.
    pub expires: Option<OffsetDateTime>,
    /// Optional resource grants.
    pub resources: Vec<Resource>,
}

/// The issuer: a DID, its assertion key and the key's verification method id.
pub struct Issuer<'a> {
    /// The custodian DID.
    pub did: &'a str,
    /// The verification method id (`<did>#<fragment>`).
    pub verification_method: &'a str,
    /// The private key.
    pub key: &'a SigningKey,
}

/// Checks `request` against `policy`, then builds and signs the credential.
pub fn issue(
    contexts: &Contexts,
    issuer: &Issuer<'_>,
    request: &IssueRequest,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<Value, CredentialError> {
    did::method_of(&request.subject_did)
        .map_err(|_| CredentialError::Malformed("subject DID is not a valid DID".into()))?;
    if !policy.credential.consent_types.contains(&request.consent) {
        return Err(CredentialError::ConsentNotAllowed {
            consent: request.consent.to_string(),
            purpose: policy.purpose.clone(),
        });
    }
    // Whole seconds in UTC: the Go RFC 3339 form nuts-node's verifier re-serialises to.
    let now = now.replace_nanosecond(0).unwrap_or(now);
    match request.expires {
        None if policy.credential.expiration_required_for(request.consent) => {
            return Err(CredentialError::ExpirationRequired(request.consent));
        }
        Some(e) if e <= now => {
            return Err(CredentialError::Malformed(
                "expiration date is not in the future".into(),
            ));
        }
        Some(e) => {
            if let Some(days) = policy.credential.max_validity_days {
                if e - now > Duration::days(i64::from(days)) {
                    return Err(CredentialError::ValidityTooLong(days));
                }
            }
        }
        None => {}
    }
    for r in &request.resources {
        let path_ok = r.path.starts_with('/') && !r.path.chars().any(char::is_control);
        if !path_ok
            || r.operations.is_empty()
            || r.operations
                .iter()
                .any(|o| o.is_empty() || o.chars().any(char::is_control))
        {
            return Err(CredentialError::Malformed(
                "a resource needs a path starting with / and at least one operation".into(),
            ));
        }
    }

    let mut subject = Map::new();
    subject.insert("id".into(), json!(request.subject_did));
    subject.insert("purposeOfUse".into(), json!(request.purpose));
    subject.insert("subject".into(), json!(request.bsn.to_urn()));
    subject.insert(
        "legalBase".into(),
        json!({"consentType": request.consent.as_str()}),
    );
    if !request.resources.is_empty() {
        subject.insert("resources".into(), json!(request.resources));
    }

    let mut credential = Map::new();
    credential.insert(
        "@context".into(),
        json!([W3C_CREDENTIALS_V1, NUTS_V1, LEGALBASE_V1, LDS_JWS2020_V1]),
    );
    credential.insert(
        "id".into(),
        json!(format!("{}#{}", issuer.did, uuid::Uuid::new_v4())),
    );
    credential.insert(
        "type".into(),
        json!(["VerifiableCredential", AUTHORIZATION_CREDENTIAL]),
    );
    credential.insert("issuer".into(), json!(issuer.did));
    credential.insert("issuanceDate".into(), json!(go_rfc3339(now)));
    if let Some(e) = request.expires {
        let e = e.to_offset(time::UtcOffset::UTC);
        credential.insert(
            "expirationDate".into(),
            json!(go_rfc3339(e.replace_nanosecond(0).unwrap_or(e))),
        );
    }
    credential.insert("credentialSubject".into(), Value::Object(subject));
    proof::sign(
        contexts,
        credential,
        issuer.key,
        issuer.verification_method,
        now,
    )
}
