//! Credential verification: structure → proof (strict JSON-LD, issuer key from its DID document)
//! → dates → authorization profile → policy → revocation.
//!
//! The first three steps on a given byte string never change, so their result is cached by the
//! SHA-256 of the bytes; dates, policy and revocation are checked on every call (a revocation
//! therefore takes effect at once, cache or not).

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::jsonld::Contexts;
use super::proof::{self, parse_time};
use super::{
    CredentialError, VerifiedCredential, AUTHORIZATION_CREDENTIAL, CLOCK_SKEW_SECONDS,
    MAX_CREDENTIAL_BYTES,
};
use crate::bsn::Bsn;
use crate::clock::Clock;
use crate::did::{self, Resolver};
use crate::policy::{ConsentType, PolicySet};

/// How much to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Proof, structure and dates only: any credential type, no policy profile.
    ProofOnly,
    /// Everything: a `NutsAuthorizationCredential` with a BSN subject, under a loaded policy.
    Authorization,
    /// A `NutsAuthorizationCredential` with a BSN subject that a custodian issued to us (the
    /// requesting side, `credential import`): the profile without the custodian's policy, which
    /// the custodian applies when we present it.
    Held,
}

/// Answers whether a credential id has been revoked.
pub trait RevocationCheck: Send + Sync {
    /// True if `credential_id` is revoked.
    fn is_revoked(&self, credential_id: &str) -> bool;

    /// True if the access token with this hash was ended before its expiry (from the admin
    /// console; its credential stays valid). None by default.
    fn is_token_ended(&self, _token_hash: &str) -> bool {
        false
    }
}

/// No revocations known (tools that verify credentials of other issuers).
pub struct NoRevocations;

impl RevocationCheck for NoRevocations {
    fn is_revoked(&self, _: &str) -> bool {
        false
    }
}

/// Parses raw bytes into a JSON object, refusing oversized input.
pub fn parse(raw: &[u8]) -> Result<Map<String, Value>, CredentialError> {
    if raw.len() > MAX_CREDENTIAL_BYTES {
        return Err(CredentialError::TooLarge);
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CredentialError::Malformed("not a JSON object".into())),
        Err(e) => Err(CredentialError::Malformed(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

fn str_field<'a>(map: &'a Map<String, Value>, name: &str) -> Result<&'a str, CredentialError> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| CredentialError::Malformed(format!("{name} is missing or not a string")))
}

fn has_type(credential: &Map<String, Value>, wanted: &str) -> bool {
    match credential.get("type") {
        Some(Value::String(t)) => t == wanted,
        Some(Value::Array(ts)) => ts.iter().any(|t| t.as_str() == Some(wanted)),
        _ => false,
    }
}

/// The checks read facts from JSON members (`expirationDate`, `credentialSubject.subject`, ...)
/// while the proof covers the JSON-LD graph. A member that reaches the graph under another name
/// (an alias from an inline context, a compact or absolute IRI, `@nest`, `@included`, `@graph`)
/// keeps the graph, so the proof, unchanged while the member the checks read disappears or
/// changes: e.g. an expired credential with its `expirationDate` moved into `@nest` would pass as
/// one without an end date. So `@context` may only list context URLs, and the objects whose
/// members are read (the credential, its issuer, credentialSubject, legalBase) may only have
/// plain term names. nuts-node's credentials and ours have nothing else.
fn plain_terms(credential: &Map<String, Value>) -> Result<(), CredentialError> {
    fn plain(what: &str, object: &Map<String, Value>, skip: &str) -> Result<(), CredentialError> {
        if object
            .keys()
            .any(|k| k != skip && (k.starts_with('@') || k.contains(':')))
        {
            return Err(CredentialError::Malformed(format!(
                "{what} has a member that is a JSON-LD keyword or an IRI, not a plain term"
            )));
        }
        Ok(())
    }
    let urls_only = match credential.get("@context") {
        None | Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !urls_only {
        return Err(CredentialError::Malformed(
            "@context must be a list of context URLs, not inline definitions".into(),
        ));
    }
    plain("the credential", credential, "@context")?;
    if let Some(Value::Object(issuer)) = credential.get("issuer") {
        plain("issuer", issuer, "")?;
    }
    let subjects: Vec<&Value> = match credential.get("credentialSubject") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => vec![],
    };
    for subject in subjects.iter().filter_map(|s| s.as_object()) {
        plain("credentialSubject", subject, "")?;
        if let Some(Value::Object(legal_base)) = subject.get("legalBase") {
            plain("legalBase", legal_base, "")?;
        }
    }
    Ok(())
}

/// The structural checks every credential passes: plain terms, issuer, id prefix, exactly one
/// subject, dates parse. Returns the unchecked facts.
fn structure(credential: &Map<String, Value>) -> Result<VerifiedCredential, CredentialError> {
    plain_terms(credential)?;
    if !has_type(credential, "VerifiableCredential") {
        return Err(CredentialError::Malformed(
            "type does not include VerifiableCredential".into(),
        ));
    }
    let issuer = match credential.get("issuer") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => str_field(o, "id")?,
        _ => return Err(CredentialError::Malformed("issuer is missing".into())),
    };
    did::method_of(issuer)?;
    let id = str_field(credential, "id")?;
    if !id
        .strip_prefix(issuer)
        .is_some_and(|rest| rest.starts_with('#') && rest.len() > 1)
    {
        return Err(CredentialError::IdNotOfIssuer);
    }
    let subject = match credential.get("credentialSubject") {
        Some(Value::Object(s)) => s,
        Some(Value::Array(items)) if items.len() == 1 => items[0].as_object().ok_or_else(|| {
            CredentialError::Malformed("credentialSubject is not an object".into())
        })?,
        Some(Value::Array(items)) => return Err(CredentialError::SubjectCount(items.len())),
        _ => return Err(CredentialError::SubjectCount(0)),
    };
    let issued = parse_time("issuanceDate", str_field(credential, "issuanceDate")?)?;
    let expires = match credential.get("expirationDate") {
        None => None,
        Some(v) => Some(parse_time(
            "expirationDate",
            v.as_str().ok_or_else(|| {
                CredentialError::Malformed("expirationDate is not a string".into())
            })?,
        )?),
    };
    Ok(VerifiedCredential {
        id: id.to_owned(),
        issuer: issuer.to_owned(),
        subject_did: subject
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        purpose: subject
            .get("purposeOfUse")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        bsn: None,
        consent: None,
        issued,
        expires,
    })
}

/// The consent type: `credentialSubject.legalBase.consentType`, or (what a stock nuts-node can
/// issue) `credentialSubject.localParameters.legalBase.consentType`.
fn consent_type(subject: &Map<String, Value>) -> Option<&str> {
    fn from(v: Option<&Value>) -> Option<&str> {
        v.and_then(|lb| lb.get("consentType"))
            .and_then(Value::as_str)
    }
    from(subject.get("legalBase")).or_else(|| {
        from(
            subject
                .get("localParameters")
                .and_then(|lp| lp.get("legalBase")),
        )
    })
}

/// The authorization-credential profile: type, requester DID, BSN subject, consent type.
fn authorization_profile(
    credential: &Map<String, Value>,
    mut facts: VerifiedCredential,
) -> Result<VerifiedCredential, CredentialError> {
    if !has_type(credential, AUTHORIZATION_CREDENTIAL) {
        return Err(CredentialError::NotAuthorizationCredential);
    }
    let subject = match credential.get("credentialSubject") {
        Some(Value::Array(items)) => items.first().and_then(Value::as_object),
        Some(v) => v.as_object(),
        None => None,
    }
    .ok_or(CredentialError::SubjectCount(0))?;
    did::method_of(&facts.subject_did)
        .map_err(|_| CredentialError::Malformed("credentialSubject.id is not a DID".into()))?;
    if facts.purpose.is_empty() {
        return Err(CredentialError::Malformed(
            "credentialSubject.purposeOfUse is missing".into(),
        ));
    }
    let urn = subject
        .get("subject")
        .ok_or(CredentialError::NoSubject)?
        .as_str()
        .ok_or(CredentialError::Malformed(
            "credentialSubject.subject is not a string".into(),
        ))?;
    facts.bsn = Some(Bsn::from_urn(urn)?);
    facts.consent = match consent_type(subject) {
        None => None,
        Some(c) => {
            Some(
                ConsentType::parse(c).ok_or_else(|| CredentialError::ConsentNotAllowed {
                    consent: printable(c),
                    purpose: facts.purpose.clone(),
                })?,
            )
        }
    };
    Ok(facts)
}

fn printable(s: &str) -> String {
    if s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        s.to_owned()
    } else {
        "(unprintable)".to_owned()
    }
}

/// Dates with [`CLOCK_SKEW_SECONDS`] of skew.
pub fn check_dates(vc: &VerifiedCredential, now: OffsetDateTime) -> Result<(), CredentialError> {
    let skew = Duration::seconds(CLOCK_SKEW_SECONDS);
    if vc.issued > now + skew {
        return Err(CredentialError::NotYetValid);
    }
    if vc.expires.is_some_and(|e| e + skew < now) {
        return Err(CredentialError::Expired);
    }
    Ok(())
}

/// The purpose's policy: known purposeOfUse, consent type present and allowed, expiration rule.
pub fn check_policy(vc: &VerifiedCredential, policies: &PolicySet) -> Result<(), CredentialError> {
    let policy = policies.get(&vc.purpose).ok_or_else(|| {
        CredentialError::UnknownPurpose(crate::policy::display_purpose(&vc.purpose))
    })?;
    let consent = vc.consent.ok_or(CredentialError::NoConsentType)?;
    if !policy.credential.consent_types.contains(&consent) {
        return Err(CredentialError::ConsentNotAllowed {
            consent: consent.to_string(),
            purpose: vc.purpose.clone(),
        });
    }
    if vc.expires.is_none() && policy.credential.expiration_required_for(consent) {
        return Err(CredentialError::ExpirationRequired(consent));
    }
    Ok(())
}

/// Verifies credentials; holds the contexts, the resolver and the verified-proof cache.
pub struct Verifier {
    contexts: Arc<Contexts>,
    resolver: Resolver,
    clock: Arc<dyn Clock>,
    revocations: Arc<dyn RevocationCheck>,
    cache: moka::sync::Cache<([u8; 32], Mode), Arc<VerifiedCredential>>,
}

impl Verifier {
    /// A verifier.
    pub fn new(
        contexts: Arc<Contexts>,
        resolver: Resolver,
        clock: Arc<dyn Clock>,
        revocations: Arc<dyn RevocationCheck>,
    ) -> Self {
        Self {
            contexts,
            resolver,
            clock,
            revocations,
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
        }
    }

    /// The embedded JSON-LD contexts.
    #[must_use]
    pub fn contexts(&self) -> &Arc<Contexts> {
        &self.contexts
    }

    /// Verifies raw credential bytes.
    pub async fn verify(
        &self,
        raw: &[u8],
        mode: Mode,
        policies: &PolicySet,
    ) -> Result<Arc<VerifiedCredential>, CredentialError> {
        let key = (Sha256::digest(raw).into(), mode);
        let vc = match self.cache.get(&key) {
            Some(vc) => vc,
            None => {
                let vc = Arc::new(self.verify_uncached(raw, mode).await?);
                self.cache.insert(key, vc.clone());
                vc
            }
        };
        check_dates(&vc, self.clock.now())?;
        if mode == Mode::Authorization {
            check_policy(&vc, policies)?;
        }
        if self.revocations.is_revoked(&vc.id) {
            return Err(CredentialError::Revoked);
        }
        Ok(vc)
    }

    async fn verify_uncached(
        &self,
        raw: &[u8],
        mode: Mode,
    ) -> Result<VerifiedCredential, CredentialError> {
        let credential = parse(raw)?;
        let facts = structure(&credential)?;
        let input = proof::prepare(&self.contexts, &credential, &facts.issuer)?;
        let key = self
            .resolver
            .assertion_key(&input.verification_method)
            .await?;
        if !key.verify(&input.alg, &input.signing_input, &input.signature) {
            return Err(CredentialError::BadSignature);
        }
        match mode {
            Mode::ProofOnly => Ok(facts),
            Mode::Authorization | Mode::Held => authorization_profile(&credential, facts),
        }
    }
}
