//! The token request (`POST /medmij/token`, RFC 6749 §4.1.3): parsed, and checked against the
//! authorization code it presents. Pure (a fuzz target); the caller looks the code up and
//! stores the token.
//!
//! Form-encoded only; `grant_type=authorization_code`, `code`, `redirect_uri` and `client_id`
//! required, `code_verifier` when the authorization request sent a challenge (and only then).
//! Unknown parameters are ignored (RFC 6749 §3.2); a known one given twice is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::store::medmij::MedmijCode;

/// Why a token request is refused (RFC 6749 §5.2). The descriptions are what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed: a parameter missing, repeated or of the wrong form.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The client is not one we know, or did not prove it is.
    #[error("{0}")]
    InvalidClient(&'static str),
    /// The code is unknown, expired, used, or not the client's.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// Another grant type than `authorization_code`.
    #[error("grant_type must be authorization_code")]
    UnsupportedGrantType,
    /// The store or the audit log is unavailable, or the answer took too long.
    #[error("the token endpoint is temporarily unavailable")]
    Unavailable,
}

/// A parsed token request.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The authorization code.
    pub code: String,
    /// The `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    /// The DVP's host name.
    pub client_id: String,
    /// The PKCE verifier, if sent.
    pub code_verifier: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("code", &"***")
            .field("redirect_uri", &self.redirect_uri)
            .field("client_id", &self.client_id)
            .field("code_verifier", &self.code_verifier.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Parses a token request body of media type `media_type` (lower-case, no parameters).
pub fn parse(media_type: &str, body: &[u8]) -> Result<TokenRequest, TokenError> {
    if media_type != "application/x-www-form-urlencoded" {
        return Err(TokenError::InvalidRequest(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let mut grant_type = None;
    let mut code = None;
    let mut redirect_uri = None;
    let mut client_id = None;
    let mut code_verifier = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut grant_type,
            "code" => &mut code,
            "redirect_uri" => &mut redirect_uri,
            "client_id" => &mut client_id,
            "code_verifier" => &mut code_verifier,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(TokenError::InvalidRequest(
                "a parameter is given more than once",
            ));
        }
    }
    match grant_type.as_deref() {
        Some("authorization_code") => {}
        Some(_) => return Err(TokenError::UnsupportedGrantType),
        None => return Err(TokenError::InvalidRequest("grant_type is missing")),
    }
    let code = code
        .filter(|c| !c.is_empty() && c.len() <= 256)
        .ok_or(TokenError::InvalidRequest("code is missing"))?;
    let redirect_uri = redirect_uri
        .filter(|r| !r.is_empty() && r.len() <= 2048)
        .ok_or(TokenError::InvalidRequest("redirect_uri is missing"))?;
    let client_id = client_id
        .filter(|c| !c.is_empty() && c.len() <= 253)
        .ok_or(TokenError::InvalidRequest("client_id is missing"))?;
    if let Some(v) = &code_verifier {
        if !super::authorize::pkce_chars(v, 43, 128) {
            return Err(TokenError::InvalidRequest(
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            ));
        }
    }
    Ok(TokenRequest {
        code,
        redirect_uri,
        client_id,
        code_verifier,
    })
}

/// Checks a request against its (unused) code at `now`: the same client and `redirect_uri`, not
/// expired, and the PKCE verifier when a challenge was sent.
pub fn check_code(code: &MedmijCode, req: &TokenRequest, now: i64) -> Result<(), TokenError> {
    if code.client_id != req.client_id {
        return Err(TokenError::InvalidGrant(
            "the code was issued to another client",
        ));
    }
    if code.redirect_uri != req.redirect_uri {
        return Err(TokenError::InvalidGrant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if code.expires_at <= now {
        return Err(TokenError::InvalidGrant("the code has expired"));
    }
    match (&code.code_challenge, &req.code_verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(TokenError::InvalidRequest(
            "code_verifier without a code_challenge in the authorization request",
        )),
        (Some(_), None) => Err(TokenError::InvalidGrant("code_verifier is missing")),
        (Some(challenge), Some(verifier)) => {
            let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
            if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                Ok(())
            } else {
                Err(TokenError::InvalidGrant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "application/x-www-form-urlencoded";

    fn body(pairs: &[(&str, &str)]) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    #[test]
    fn requests_parse_one_way() {
        let ok = parse(
            FORM,
            &body(&[
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("redirect_uri", "https://pgo.example.nl/cb"),
                ("client_id", "pgo.example.nl"),
                ("extra", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.client_id, "pgo.example.nl");
        assert!(!format!("{ok:?}").contains("\"c\""));
        let cases: [(&[(&str, &str)], TokenError); 5] = [
            (
                &[("grant_type", "refresh_token")],
                TokenError::UnsupportedGrantType,
            ),
            (
                &[("code", "c")],
                TokenError::InvalidRequest("grant_type is missing"),
            ),
            (
                &[("grant_type", "authorization_code")],
                TokenError::InvalidRequest("code is missing"),
            ),
            (
                &[
                    ("grant_type", "authorization_code"),
                    ("grant_type", "authorization_code"),
                ],
                TokenError::InvalidRequest("a parameter is given more than once"),
            ),
            (
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "c"),
                    ("redirect_uri", "r"),
                    ("client_id", "x"),
                    ("code_verifier", "short"),
                ],
                TokenError::InvalidRequest(
                    "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
                ),
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(parse(FORM, &body(pairs)), Err(want), "{pairs:?}");
        }
        assert!(matches!(
            parse("application/json", b"{}"),
            Err(TokenError::InvalidRequest(_))
        ));
    }

    #[test]
    fn codes_are_checked() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let code = MedmijCode {
            hash: "h".into(),
            client_id: "pgo.example.nl".into(),
            redirect_uri: "https://pgo.example.nl/cb".into(),
            aanbieder: "umcharderwijk".into(),
            gegevensdienst: "48".into(),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            bsn: crate::bsn::Bsn::parse("999999990").unwrap(),
            correlation_id: None,
            issued_at: 100,
            expires_at: 160,
            used: false,
        };
        let req = TokenRequest {
            code: "c".into(),
            redirect_uri: "https://pgo.example.nl/cb".into(),
            client_id: "pgo.example.nl".into(),
            code_verifier: Some(verifier.into()),
        };
        assert_eq!(check_code(&code, &req, 159), Ok(()));
        assert_eq!(
            check_code(&code, &req, 160),
            Err(TokenError::InvalidGrant("the code has expired"))
        );
        let wrong = TokenRequest {
            code_verifier: Some("x".repeat(43)),
            ..req.clone()
        };
        assert_eq!(
            check_code(&code, &wrong, 100),
            Err(TokenError::InvalidGrant(
                "code_verifier does not match the code_challenge"
            ))
        );
        let none = TokenRequest {
            code_verifier: None,
            ..req.clone()
        };
        assert_eq!(
            check_code(&code, &none, 100),
            Err(TokenError::InvalidGrant("code_verifier is missing"))
        );
        let other = TokenRequest {
            client_id: "medmij.deenigeechtepgo.nl".into(),
            ..req.clone()
        };
        assert_eq!(
            check_code(&code, &other, 100),
            Err(TokenError::InvalidGrant(
                "the code was issued to another client"
            ))
        );
        let elsewhere = TokenRequest {
            redirect_uri: "https://pgo.example.nl/other".into(),
            ..req.clone()
        };
        assert!(check_code(&code, &elsewhere, 100).is_err());
        let plain = MedmijCode {
            code_challenge: None,
            ..code
        };
        assert_eq!(check_code(&plain, &none, 100), Ok(()));
        assert!(check_code(&plain, &req, 100).is_err());
    }
}
