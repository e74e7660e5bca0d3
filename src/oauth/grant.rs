//! The JWT-bearer grant (RFC 7523 as profiled by Nuts RFC003): the pure checks on header and
//! claims, and [`GrantError`], the token endpoint's error boundary (mapped to RFC 6749 §5.2 codes
//! and HTTP statuses in `server::error`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::credential::CredentialError;
use crate::did::{self, DidError};
use crate::jose::{JoseError, Jws};
use crate::store::StoreError;

/// Largest `exp - iat` of a grant, and the clock skew allowed on `iat` / `exp`.
pub const MAX_GRANT_LIFETIME: i64 = 5;
/// Clock skew in seconds.
pub const SKEW: i64 = 5;
/// Most credentials one grant may carry.
pub const MAX_CREDENTIALS: usize = 10;

/// Why a grant was refused. Each message names the rule and leaks no data (no BSN).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// A request parameter is missing, repeated or unknown; wrong content type.
    #[error("{0}")]
    InvalidRequest(String),
    /// `grant_type` is not jwt-bearer.
    #[error("grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer")]
    UnsupportedGrantType,
    /// The assertion is not a usable JWT.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// A claim is missing or wrong.
    #[error("{0}")]
    Claim(String),
    /// The signer could not be authenticated (key not found, not an assertionMethod, bad signature).
    #[error("{0}")]
    Client(String),
    /// `[nuts] require_client_certificate` and the grant came without a verified client
    /// certificate (no mutual TLS).
    #[error("a client certificate is required")]
    ClientCertificateRequired,
    /// `purposeOfUse` has no policy.
    #[error("purposeOfUse \"{0}\" is not supported by this custodian")]
    UnknownPurpose(String),
    /// A credential in `vcs` is refused.
    #[error("credential {index}: {reason}")]
    Credential {
        /// Position in `vcs`.
        index: usize,
        /// Why.
        reason: String,
    },
    /// `jti` seen before.
    #[error("jti has already been used")]
    Replay,
    /// Too many grants from this requester.
    #[error("too many token requests for this requester; retry after {0} s")]
    RateLimited(u64),
    /// The store is down.
    #[error("the token service is temporarily unavailable")]
    Unavailable(String),
}

impl GrantError {
    pub(crate) fn credential(index: usize, e: &CredentialError) -> Self {
        GrantError::Credential {
            index,
            reason: e.to_string(),
        }
    }
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => GrantError::Replay,
            other => GrantError::Unavailable(other.to_string()),
        }
    }
}

impl From<DidError> for GrantError {
    fn from(e: DidError) -> Self {
        GrantError::Client(format!("cannot authenticate the grant signer: {e}"))
    }
}

/// The user identity (`usi`): who at the requester asks. The huisarts profile trusts the
/// requesting system's authentication; its signature on the grant vouches for this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIdentity {
    /// UZI number.
    pub uzi: String,
    /// Full name.
    pub name: String,
    /// Role code.
    pub role: String,
    /// Initials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl UserIdentity {
    fn check(&self) -> Result<(), GrantError> {
        let bad = |m: &str| Err(GrantError::Claim(format!("usi: {m}")));
        if self.uzi.is_empty()
            || self.uzi.len() > 32
            || !self.uzi.bytes().all(|b| b.is_ascii_digit())
        {
            return bad("uzi must be a UZI number (digits)");
        }
        for (name, value) in [
            ("name", Some(&self.name)),
            ("role", Some(&self.role)),
            ("initials", self.initials.as_ref()),
            ("family_name", self.family_name.as_ref()),
            ("email", self.email.as_ref()),
        ] {
            if let Some(v) = value {
                if v.trim().is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
                    return bad(&format!("{name} must be 1 to 256 printable characters"));
                }
            }
        }
        Ok(())
    }
}

/// The checked claims of a grant (signature not yet verified).
#[derive(Debug, Clone)]
pub struct GrantClaims {
    /// Requester DID.
    pub iss: String,
    /// Custodian DID.
    pub sub: String,
    /// The signing key's DID URL.
    pub kid: String,
    /// purposeOfUse.
    pub purpose: String,
    /// The credentials, as JSON objects.
    pub vcs: Vec<Map<String, Value>>,
    /// The user identity, if given.
    pub usi: Option<UserIdentity>,
    /// Grant id.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Expires.
    pub exp: i64,
}

/// What the endpoint expects of every grant.
pub struct Expectations<'a> {
    /// This token endpoint's public URL (`aud`).
    pub audience: &'a str,
    /// The DIDs this instance is custodian for (`sub`).
    pub custodians: &'a [String],
    /// Now, unix seconds.
    pub now: i64,
}

fn claim_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, GrantError> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(GrantError::Claim(format!(
            "{name} must be a non-empty string"
        ))),
        None => Err(GrantError::Claim(format!("{name} is missing"))),
    }
}

fn claim_int(claims: &Map<String, Value>, name: &str) -> Result<i64, GrantError> {
    match claims.get(name) {
        Some(v) => v.as_i64().ok_or_else(|| {
            GrantError::Claim(format!(
                "{name} must be an integer (seconds since the epoch)"
            ))
        }),
        None => Err(GrantError::Claim(format!("{name} is missing"))),
    }
}

/// Checks header and claims: kid of the issuer, audience, custodian, times, jti, usi, vcs shape.
pub fn check_claims(jws: &Jws, expect: &Expectations<'_>) -> Result<GrantClaims, GrantError> {
    let c = &jws.claims;
    let iss = claim_str(c, "iss")?;
    did::method_of(iss).map_err(|_| GrantError::Claim("iss must be a DID".into()))?;
    let kid = jws
        .kid
        .as_deref()
        .ok_or_else(|| GrantError::Client("JWT header has no kid".into()))?;
    if did::did_of(kid) != iss || !kid.contains('#') {
        return Err(GrantError::Client(
            "kid must be a DID URL of the iss DID".into(),
        ));
    }
    let sub = claim_str(c, "sub")?;
    if !expect.custodians.iter().any(|d| d == sub) {
        return Err(GrantError::Claim(
            "sub is not a custodian of this token endpoint".into(),
        ));
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(a)) => a.len() == 1 && a[0].as_str() == Some(expect.audience),
        _ => false,
    };
    if !aud_ok {
        return Err(GrantError::Claim("aud is not this token endpoint".into()));
    }
    let iat = claim_int(c, "iat")?;
    let exp = claim_int(c, "exp")?;
    if exp <= iat || exp - iat > MAX_GRANT_LIFETIME {
        return Err(GrantError::Claim(format!(
            "exp must be after iat and at most {MAX_GRANT_LIFETIME} s after it"
        )));
    }
    if iat > expect.now + SKEW {
        return Err(GrantError::Claim("iat is in the future".into()));
    }
    if exp < expect.now - SKEW {
        return Err(GrantError::Claim("grant has expired".into()));
    }
    let jti = claim_str(c, "jti")?;
    if jti.len() > 256 {
        return Err(GrantError::Claim(
            "jti is longer than 256 characters".into(),
        ));
    }
    let purpose = claim_str(c, "purposeOfUse")?;
    let usi = match c.get("usi") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let u: UserIdentity = serde_json::from_value(v.clone()).map_err(|e| {
                let m = e.to_string();
                let m = m.split(", expected").next().unwrap_or(&m).to_owned();
                GrantError::Claim(format!("usi: {m}"))
            })?;
            u.check()?;
            Some(u)
        }
    };
    let vcs = match c.get("vcs") {
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(GrantError::Claim(
                "vcs must hold at least one credential".into(),
            ))
        }
        Some(Value::Array(items)) if items.len() > MAX_CREDENTIALS => {
            return Err(GrantError::Claim(format!(
                "vcs holds more than {MAX_CREDENTIALS} credentials"
            )))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_object().cloned())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GrantError::Claim("vcs must hold credentials as JSON objects".into()))?,
        Some(_) => {
            return Err(GrantError::Claim(
                "vcs must be an array of credentials".into(),
            ))
        }
        None => {
            return Err(GrantError::Claim(
                "vcs is missing: a grant needs an authorization credential".into(),
            ))
        }
    };
    Ok(GrantClaims {
        iss: iss.to_owned(),
        sub: sub.to_owned(),
        kid: kid.to_owned(),
        purpose: purpose.to_owned(),
        vcs,
        usi,
        jti: jti.to_owned(),
        iat,
        exp,
    })
}
