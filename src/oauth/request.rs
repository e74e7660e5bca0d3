//! The requesting side of the token endpoint, shared by `token request` and `egress`: the
//! JWT-bearer grant's claims ([`claims`], pure), signed with our key ([`sign`]), posted to a
//! custodian's token endpoint ([`post_grant`]) and its answer read.

use serde::Serialize;
use serde_json::{json, Value};

use crate::identity::Identity;

/// The user the grant vouches for (`usi`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UserIdentity {
    /// UZI number.
    pub uzi: String,
    /// Full name.
    pub name: String,
    /// Role code.
    pub role: String,
    /// Initials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    /// Family name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// E-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// What a grant says.
#[derive(Debug, Clone, Copy)]
pub struct GrantInput<'a> {
    /// Our DID (`iss`).
    pub issuer: &'a str,
    /// The custodian's DID (`sub`).
    pub custodian: &'a str,
    /// The token endpoint's URL as the custodian knows it (`aud`).
    pub audience: &'a str,
    /// purposeOfUse.
    pub purpose: &'a str,
    /// The authorization credentials presented (`vcs`).
    pub vcs: &'a [Value],
    /// The user, where the purpose needs one.
    pub user: Option<&'a UserIdentity>,
}

/// The grant's claims at `now` (unix seconds): a 5 s lifetime, `jti` as given.
#[must_use]
pub fn claims(input: &GrantInput<'_>, now: i64, jti: &str) -> Value {
    let mut claims = json!({
        "iss": input.issuer,
        "sub": input.custodian,
        "aud": input.audience,
        "purposeOfUse": input.purpose,
        "vcs": input.vcs,
        "jti": jti,
        "iat": now,
        "exp": now + 5,
    });
    if let Some(user) = input.user {
        claims["usi"] = json!(user);
    }
    claims
}

/// `claims` as a compact JWS signed with our key.
pub fn sign(identity: &Identity, claims: &Value) -> Result<String, crate::keys::KeyError> {
    crate::jose::sign(claims, &identity.key, &identity.verification_method)
}

/// An access token the custodian issued.
#[derive(Debug, Clone)]
pub struct TokenAnswer {
    /// The token (never logged).
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The whole answer, as the custodian sent it.
    pub body: Value,
}

/// Why no token came back.
#[derive(Debug, thiserror::Error)]
pub enum TokenRequestError {
    /// The custodian refused the grant (its OAuth error).
    #[error("token request refused ({status}): {error}: {description}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description`.
        description: String,
    },
    /// No answer in time.
    #[error("the token endpoint did not answer in time")]
    Timeout,
    /// The endpoint could not be reached.
    #[error("the token endpoint cannot be reached: {0}")]
    Unreachable(String),
    /// A success without a usable token.
    #[error("the token endpoint's answer has no usable access_token")]
    InvalidAnswer,
}

/// Posts `assertion` to `endpoint` and reads the answer.
pub async fn post_grant(
    client: &reqwest::Client,
    endpoint: &str,
    assertion: &str,
) -> Result<TokenAnswer, TokenRequestError> {
    let response = client
        .post(endpoint)
        .form(&[("grant_type", super::JWT_BEARER), ("assertion", assertion)])
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                TokenRequestError::Timeout
            } else {
                TokenRequestError::Unreachable(error_chain(&e))
            }
        })?;
    let status = response.status();
    let body: Value = match response.json().await {
        Ok(v) => v,
        Err(e) if e.is_timeout() => return Err(TokenRequestError::Timeout),
        Err(_) => {
            json!({"error": "invalid_response", "error_description": "the endpoint did not answer JSON"})
        }
    };
    if !status.is_success() {
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        return Err(TokenRequestError::Refused {
            status: status.as_u16(),
            error: text("error"),
            description: text("error_description"),
        });
    }
    let access_token = body["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or(TokenRequestError::InvalidAnswer)?
        .to_owned();
    let expires_in = body["expires_in"]
        .as_i64()
        .filter(|e| *e > 0)
        .ok_or(TokenRequestError::InvalidAnswer)?;
    Ok(TokenAnswer {
        access_token,
        expires_in,
        body,
    })
}

/// An error with its sources (reqwest's own message says little: "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_carry_the_user_only_when_given() {
        let user = UserIdentity {
            uzi: "900012345".into(),
            name: "Dr. A".into(),
            role: "01.015".into(),
            initials: Some("A.".into()),
            family_name: None,
            email: None,
        };
        let vcs = [json!({"id": "c"})];
        let mut input = GrantInput {
            issuer: "did:web:gp",
            custodian: "did:web:zorg",
            audience: "https://zorg/n2n/auth/v1/accesstoken",
            purpose: "p",
            vcs: &vcs,
            user: Some(&user),
        };
        let c = claims(&input, 100, "j");
        assert_eq!(
            c,
            json!({"iss": "did:web:gp", "sub": "did:web:zorg", "aud": "https://zorg/n2n/auth/v1/accesstoken",
                "purposeOfUse": "p", "vcs": [{"id": "c"}], "jti": "j", "iat": 100, "exp": 105,
                "usi": {"uzi": "900012345", "name": "Dr. A", "role": "01.015", "initials": "A."}})
        );
        input.user = None;
        assert!(claims(&input, 100, "j").get("usi").is_none());
    }
}
