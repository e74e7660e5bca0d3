//! Compact JWS / JWT (RFC 7515 / 7519) for the grant: parse with limits, verify with aws-lc-rs,
//! sign with our own key. Only asymmetric algorithms are accepted; `none` and HMAC never are.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::keys::SigningKey;

/// The JWS algorithms a grant may use.
pub const ALLOWED_ALGS: [&str; 7] = [
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Largest compact JWT accepted (credentials ride inside it).
pub const MAX_JWT_BYTES: usize = 512 * 1024;

/// Why a compact JWS is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not three base64url parts with JSON objects.
    #[error("assertion is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, HMAC or unknown.
    #[error("JWT alg \"{0}\" is not allowed (ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA)")]
    AlgNotAllowed(String),
    /// A `crit` header names an extension we do not implement.
    #[error("JWT header has a crit parameter, which is not supported")]
    Crit,
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload (claims).
    pub claims: Map<String, Value>,
    /// `alg`, one of [`ALLOWED_ALGS`].
    pub alg: String,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `header.payload` as sent: what the signature covers.
    pub signing_input: Vec<u8>,
    /// The raw signature.
    pub signature: Vec<u8>,
}

fn b64_json(part: &str, what: &'static str) -> Result<Map<String, Value>, JoseError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JoseError::Malformed(what))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JoseError::Malformed(what)),
    }
}

/// Parses a compact JWS. The signature is not checked here.
pub fn parse(token: &str) -> Result<Jws, JoseError> {
    if token.len() > MAX_JWT_BYTES {
        return Err(JoseError::Malformed("too large"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed("expected three dot-separated parts"));
    };
    let header = b64_json(h, "header is not base64url-encoded JSON")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JoseError::Malformed("header has no alg"))?;
    if !ALLOWED_ALGS.contains(&alg) {
        let shown = if alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_alphanumeric()) {
            alg.to_owned()
        } else {
            "(unprintable)".to_owned()
        };
        return Err(JoseError::AlgNotAllowed(shown));
    }
    if header.contains_key("crit") {
        return Err(JoseError::Crit);
    }
    let alg = alg.to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    let claims = b64_json(p, "payload is not base64url-encoded JSON")?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JoseError::Malformed("signature is not base64url"))?;
    Ok(Jws {
        signing_input: token.as_bytes()[..h.len() + 1 + p.len()].to_vec(),
        header,
        claims,
        alg,
        kid,
        signature,
    })
}

/// Signs `claims` with `key` as a compact JWS with header `{"alg", "typ": "JWT", "kid"}`.
pub fn sign(claims: &Value, key: &SigningKey, kid: &str) -> Result<String, crate::keys::KeyError> {
    let header = serde_json::json!({"alg": key.key_type().jws_alg(), "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyType;

    #[test]
    fn roundtrip_and_refusals() {
        let (key, _) = SigningKey::generate(KeyType::P256).unwrap();
        let jwt = sign(&serde_json::json!({"iss": "did:x:y"}), &key, "did:x:y#1").unwrap();
        let jws = parse(&jwt).unwrap();
        assert_eq!(jws.alg, "ES256");
        assert_eq!(jws.kid.as_deref(), Some("did:x:y#1"));
        assert!(key
            .public_key()
            .verify(&jws.alg, &jws.signing_input, &jws.signature));

        let enc = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let none = format!("{}.{}.", enc(r#"{"alg":"none"}"#), enc("{}"));
        assert_eq!(
            parse(&none).unwrap_err(),
            JoseError::AlgNotAllowed("none".into())
        );
        let hs = format!("{}.{}.c2ln", enc(r#"{"alg":"HS256"}"#), enc("{}"));
        assert_eq!(
            parse(&hs).unwrap_err(),
            JoseError::AlgNotAllowed("HS256".into())
        );
        let crit = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"ES256","crit":["x"]}"#),
            enc("{}")
        );
        assert_eq!(parse(&crit).unwrap_err(), JoseError::Crit);
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.e30.",
            &format!("{}.bm90anNvbg.", enc(r#"{"alg":"ES256"}"#)),
        ] {
            assert!(matches!(parse(bad), Err(JoseError::Malformed(_))), "{bad}");
        }
    }
}
