//! Compact JWS / JWT (RFC 7515 / 7519): the one parser of the crate (grants, Hub source tokens,
//! and every other signed token), with limits, an algorithm allow-list fixed by the caller,
//! `crit` refused and repeated member names refused at any depth; and signing with our own key.
//! Only asymmetric algorithms are ever allowed; `none` and HMAC never are.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::keys::SigningKey;

/// The JWS algorithms a grant may use.
pub const GRANT_ALGS: [&str; 7] = [
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Algorithms no caller may allow: `none` and the HMAC family (with a public key as the HMAC
/// secret, the classic key-confusion attack).
const NEVER: [&str; 4] = ["none", "HS256", "HS384", "HS512"];

/// Largest compact JWT accepted (credentials ride inside it).
pub const MAX_JWT_BYTES: usize = 512 * 1024;

/// Why a compact JWS is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not three base64url parts with JSON objects.
    #[error("assertion is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, HMAC, unknown, or not one the caller allows (listed).
    #[error("JWT alg \"{0}\" is not allowed ({1})")]
    AlgNotAllowed(String, String),
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
    /// `alg`, one of the caller's allowed algorithms.
    pub alg: String,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `header.payload` as sent: what the signature covers.
    pub signing_input: Vec<u8>,
    /// The raw signature.
    pub signature: Vec<u8>,
}

fn b64_json(
    part: &str,
    what: &'static str,
    duplicate: &'static str,
) -> Result<Map<String, Value>, JoseError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JoseError::Malformed(what))?;
    match parse_json_unique(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Err(JsonError::Duplicate) => Err(JoseError::Malformed(duplicate)),
        _ => Err(JoseError::Malformed(what)),
    }
}

/// Why [`parse_json_unique`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON (or nested deeper than serde_json's limit of 128).
    Invalid,
    /// An object has the same member name twice.
    Duplicate,
}

const DUPLICATE: &str = "duplicate member name";

/// A JSON value whose objects, at any depth, have no repeated member name.
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
            let Unique(v) = map.next_value()?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// Parses JSON, refusing an object with a repeated member name anywhere in it. RFC 7515 §5.2 and
/// RFC 7519 §4 allow either refusing such a JOSE header or claims set or taking the last member;
/// a security boundary refuses, so no two parsers can read the same grant differently.
pub fn parse_json_unique(bytes: &[u8]) -> Result<Value, JsonError> {
    match serde_json::from_slice::<Unique>(bytes) {
        Ok(Unique(v)) => Ok(v),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(JsonError::Duplicate),
        Err(_) => Err(JsonError::Invalid),
    }
}

/// Parses a compact JWS whose `alg` is one of `allowed` (never `none` or HMAC, whatever the
/// caller says). The signature is not checked here.
pub fn parse(token: &str, allowed: &[&str]) -> Result<Jws, JoseError> {
    if token.len() > MAX_JWT_BYTES {
        return Err(JoseError::Malformed("too large"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed("expected three dot-separated parts"));
    };
    let header = b64_json(
        h,
        "header is not base64url-encoded JSON",
        "header has a duplicate member name",
    )?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JoseError::Malformed("header has no alg"))?;
    if !allowed.contains(&alg) || NEVER.contains(&alg) {
        let shown = if alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_alphanumeric()) {
            alg.to_owned()
        } else {
            "(unprintable)".to_owned()
        };
        return Err(JoseError::AlgNotAllowed(shown, list(allowed)));
    }
    if header.contains_key("crit") {
        return Err(JoseError::Crit);
    }
    let alg = alg.to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    let claims = b64_json(
        p,
        "payload is not base64url-encoded JSON",
        "payload has a duplicate member name",
    )?;
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

/// `"A, B or C"`.
fn list(algs: &[&str]) -> String {
    match algs {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
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
        let jws = parse(&jwt, &GRANT_ALGS).unwrap();
        assert_eq!(jws.alg, "ES256");
        assert_eq!(jws.kid.as_deref(), Some("did:x:y#1"));
        assert!(key
            .public_key()
            .verify(&jws.alg, &jws.signing_input, &jws.signature));

        let enc = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let none = format!("{}.{}.", enc(r#"{"alg":"none"}"#), enc("{}"));
        assert_eq!(
            parse(&none, &GRANT_ALGS).unwrap_err(),
            JoseError::AlgNotAllowed(
                "none".into(),
                "ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA".into()
            )
        );
        let hs = format!("{}.{}.c2ln", enc(r#"{"alg":"HS256"}"#), enc("{}"));
        assert_eq!(
            parse(&hs, &GRANT_ALGS).unwrap_err(),
            JoseError::AlgNotAllowed(
                "HS256".into(),
                "ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA".into()
            )
        );
        let crit = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"ES256","crit":["x"]}"#),
            enc("{}")
        );
        assert_eq!(parse(&crit, &GRANT_ALGS).unwrap_err(), JoseError::Crit);
        let dup = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"none","alg":"ES256"}"#),
            enc("{}")
        );
        assert_eq!(
            parse(&dup, &GRANT_ALGS).unwrap_err(),
            JoseError::Malformed("header has a duplicate member name")
        );
        let dup = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"ES256"}"#),
            enc(r#"{"vcs":[{"a":{"b":1,"b":2}}]}"#)
        );
        assert_eq!(
            parse(&dup, &GRANT_ALGS).unwrap_err(),
            JoseError::Malformed("payload has a duplicate member name")
        );
        assert_eq!(
            parse_json_unique(
                br#"{"a":[1,2.5,-3,"x",null,true,{"b":{}}],"c":18446744073709551616}"#
            ),
            Ok(
                serde_json::json!({"a":[1,2.5,-3,"x",null,true,{"b":{}}],"c":18446744073709551616.0})
            )
        );
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.e30.",
            &format!("{}.bm90anNvbg.", enc(r#"{"alg":"ES256"}"#)),
        ] {
            assert!(
                matches!(parse(bad, &GRANT_ALGS), Err(JoseError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn callers_choose_the_algorithms_but_never_none_or_hmac() {
        let enc = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let rs = format!("{}.{}.c2ln", enc(r#"{"alg":"RS512"}"#), enc("{}"));
        assert_eq!(parse(&rs, &["RS512"]).unwrap().alg, "RS512");
        assert_eq!(
            parse(&rs, &["RS256", "PS256"]).unwrap_err().to_string(),
            "JWT alg \"RS512\" is not allowed (RS256 or PS256)"
        );
        for never in ["none", "HS256", "HS384", "HS512"] {
            let t = format!(
                "{}.{}.c2ln",
                enc(&format!(r#"{{"alg":"{never}"}}"#)),
                enc("{}")
            );
            assert!(
                matches!(parse(&t, &[never]), Err(JoseError::AlgNotAllowed(..))),
                "{never} allowed"
            );
        }
    }
}
