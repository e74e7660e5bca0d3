//! Hub source tokens: the RS512 JWT the Hub signs when an account asks where a dossier lives
//! (`GET /v3/resources/{key}/source`), the Hub's RSA key (`keys/hub-signing-key.pem`, mode
//! 0600, made by `init`) and its JWKS, and the provider-side check of such a token
//! ([`SourceVerifier`]), which the proxy uses as a second authenticator.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aws_lc_rs::signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::keys::KeyError;
use crate::rsa_key::{RsaAlg, RsaSigningKey};

/// Largest source JWT accepted.
const MAX_JWT: usize = 8 * 1024;

/// The Hub's RS512 signing key.
#[derive(Debug)]
pub struct HubKey(RsaSigningKey);

/// Where the Hub key lives in a data dir.
#[must_use]
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("hub-signing-key.pem")
}

impl HubKey {
    /// Loads the Hub key of a data dir, creating a 3072-bit RSA key (mode 0600) when there is
    /// none. Returns the key and whether it was created.
    pub fn load_or_create(data_dir: &Path) -> Result<(Self, bool), KeyError> {
        RsaSigningKey::load_or_create(&key_path(data_dir)).map(|(k, created)| (Self(k), created))
    }

    /// Reads a PEM `PRIVATE KEY` (PKCS#8 RSA) file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        RsaSigningKey::load(path).map(Self)
    }

    /// The key id (JWK thumbprint).
    #[must_use]
    pub fn kid(&self) -> &str {
        self.0.kid()
    }

    /// The public key as a JWKS document.
    #[must_use]
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.0.jwk(RsaAlg::Rs512)]})
    }

    /// Signs `claims` as a compact RS512 JWT.
    pub fn sign(&self, claims: &SourceClaims) -> Result<String, KeyError> {
        let claims = serde_json::to_string(claims).map_err(|_| KeyError::Signing)?;
        self.0.sign_jwt(RsaAlg::Rs512, &claims)
    }
}

/// The claims of a source token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceClaims {
    /// The Hub.
    pub iss: String,
    /// The provider account that holds the dossier.
    pub aud: String,
    /// The client's BSN.
    pub sub: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// The asking account.
    pub acc_name: String,
    /// The asking account's display name.
    pub acc_display_name: String,
    /// Unique id of this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Why a source token is refused (audit log only; the client learns only "invalid token").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Not a compact JWS with JSON parts.
    #[error("malformed")]
    Malformed,
    /// `alg` other than RS512.
    #[error("alg-not-rs512")]
    Alg,
    /// A `crit` header.
    #[error("crit-header")]
    Crit,
    /// No key with this `kid` in the Hub's JWKS.
    #[error("unknown-kid")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad-signature")]
    Signature,
    /// Claims missing or of the wrong type.
    #[error("bad-claims")]
    Claims,
    /// Another issuer.
    #[error("wrong-issuer")]
    Issuer,
    /// Meant for another provider.
    #[error("wrong-audience")]
    Audience,
    /// Not yet valid.
    #[error("not-yet-valid")]
    NotYetValid,
    /// Expired.
    #[error("expired")]
    Expired,
    /// `sub` is not a valid BSN.
    #[error("subject-not-a-bsn")]
    Subject,
}

/// One verification key from the Hub's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    /// `kid`, if the JWKS names one.
    pub kid: Option<String>,
    /// Modulus, big-endian.
    pub n: Vec<u8>,
    /// Exponent, big-endian.
    pub e: Vec<u8>,
}

/// Parses a JWKS document: its RSA keys of at least 2048 bits (others are ignored).
pub fn parse_jwks(text: &str) -> Result<Vec<RsaKey>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut out = Vec::new();
    for k in keys {
        if k.get("kty").and_then(Value::as_str) != Some("RSA") {
            continue;
        }
        let field = |name: &str| {
            k.get(name)
                .and_then(Value::as_str)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        };
        let (Some(n), Some(e)) = (field("n"), field("e")) else {
            return Err("an RSA key lacks n or e".into());
        };
        if n.len() < 256 || n.first() == Some(&0) || e.is_empty() || e.first() == Some(&0) {
            return Err("an RSA key is shorter than 2048 bits or badly encoded".into());
        }
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_owned);
        out.push(RsaKey { kid, n, e });
    }
    if out.is_empty() {
        return Err("the JWKS holds no RSA key".into());
    }
    Ok(out)
}

/// Checks source tokens for one provider account against the Hub's keys.
#[derive(Debug)]
pub struct SourceVerifier {
    issuer: String,
    audience: String,
    leeway: i64,
    keys: RwLock<Vec<RsaKey>>,
}

impl SourceVerifier {
    /// A verifier for tokens of `issuer` meant for `audience` (this provider's account name).
    #[must_use]
    pub fn new(issuer: &str, audience: &str, leeway: i64) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway,
            keys: RwLock::new(Vec::new()),
        }
    }

    /// Replaces the keys with those of a JWKS document.
    pub fn set_jwks(&self, text: &str) -> Result<usize, String> {
        let keys = parse_jwks(text)?;
        let count = keys.len();
        if let Ok(mut k) = self.keys.write() {
            *k = keys;
        }
        Ok(count)
    }

    /// Verifies a token at `now` (unix seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<SourceClaims, SourceError> {
        if token.len() > MAX_JWT {
            return Err(SourceError::Malformed);
        }
        // The crate's one JOSE parser: RS512 only, no crit, no repeated member names.
        let jws = crate::jose::parse(token, &["RS512"]).map_err(|e| match e {
            crate::jose::JoseError::AlgNotAllowed(..) => SourceError::Alg,
            crate::jose::JoseError::Crit => SourceError::Crit,
            crate::jose::JoseError::Malformed(_) => SourceError::Malformed,
        })?;
        let kid = jws.kid.as_deref();
        let (input, sig) = (&jws.signing_input[..], &jws.signature[..]);
        {
            let keys = self.keys.read().map_err(|_| SourceError::UnknownKey)?;
            let candidates: Vec<&RsaKey> = keys
                .iter()
                .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
                .collect();
            if candidates.is_empty() {
                return Err(SourceError::UnknownKey);
            }
            let ok = candidates.iter().any(|k| {
                signature::RsaPublicKeyComponents {
                    n: &k.n[..],
                    e: &k.e[..],
                }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA512, input, sig)
                .is_ok()
            });
            if !ok {
                return Err(SourceError::Signature);
            }
        }
        let claims: SourceClaims =
            serde_json::from_value(Value::Object(jws.claims)).map_err(|_| SourceError::Claims)?;
        if claims.iss != self.issuer {
            return Err(SourceError::Issuer);
        }
        if claims.aud != self.audience {
            return Err(SourceError::Audience);
        }
        if claims.nbf > now + self.leeway || claims.iat > now + self.leeway {
            return Err(SourceError::NotYetValid);
        }
        if claims.exp + self.leeway <= now {
            return Err(SourceError::Expired);
        }
        if crate::bsn::Bsn::parse(&claims.sub).is_err() {
            return Err(SourceError::Subject);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (key, created) = HubKey::load_or_create(dir.path()).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = HubKey::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(again.kid(), key.kid());

        let claims = SourceClaims {
            iss: "https://hub.example".into(),
            aud: "provider-a".into(),
            sub: "999999990".into(),
            iat: 1000,
            nbf: 1000,
            exp: 4600,
            acc_name: "provider-b".into(),
            acc_display_name: "Provider B".into(),
            jti: None,
        };
        let jwt = key.sign(&claims).unwrap();
        let v = SourceVerifier::new("https://hub.example", "provider-a", 5);
        assert_eq!(v.verify(&jwt, 1000), Err(SourceError::UnknownKey));
        v.set_jwks(&key.jwks().to_string()).unwrap();
        assert_eq!(v.verify(&jwt, 1001).unwrap(), claims);
        assert_eq!(v.verify(&jwt, 4605), Err(SourceError::Expired));
        assert_eq!(v.verify(&jwt, 900), Err(SourceError::NotYetValid));
        let other = SourceVerifier::new("https://hub.example", "provider-c", 5);
        other.set_jwks(&key.jwks().to_string()).unwrap();
        assert_eq!(other.verify(&jwt, 1001), Err(SourceError::Audience));
        let foreign = SourceVerifier::new("https://other-hub.example", "provider-a", 5);
        foreign.set_jwks(&key.jwks().to_string()).unwrap();
        assert_eq!(foreign.verify(&jwt, 1001), Err(SourceError::Issuer));
        // A flipped signature bit, a changed payload.
        let mut bad = jwt.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'Q' } else { 'A' });
        assert_eq!(v.verify(&bad, 1001), Err(SourceError::Signature));
        let (h, rest) = jwt.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let forged = SourceClaims {
            sub: "111222333".into(),
            ..claims
        };
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_string(&forged).unwrap());
        assert_eq!(
            v.verify(&format!("{h}.{p}.{s}"), 1001),
            Err(SourceError::Signature)
        );
        let none = format!("{}.{p}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert_eq!(v.verify(&none, 1001), Err(SourceError::Alg));
        let hs = format!("{}.{p}.{s}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512"}"#));
        assert_eq!(v.verify(&hs, 1001), Err(SourceError::Alg));
        assert_eq!(v.verify("a.b", 1001), Err(SourceError::Malformed));
    }

    /// A source token with a repeated member name (in the header or the claims) is refused, the
    /// same way the grant parser refuses one: two parsers must never read one token differently.
    #[test]
    fn repeated_member_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = HubKey::load_or_create(dir.path()).unwrap();
        let v = SourceVerifier::new("https://hub.example", "provider-a", 5);
        v.set_jwks(&key.jwks().to_string()).unwrap();
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let claims = r#"{"iss":"https://hub.example","aud":"provider-a","sub":"999999990","sub":"111222333","iat":1000,"nbf":1000,"exp":4600,"acc_name":"b","acc_display_name":"B"}"#;
        let header = format!(r#"{{"alg":"RS512","kid":"{}"}}"#, key.kid());
        for token in [
            format!("{}.{}.c2ln", enc(&header), enc(claims)),
            format!(
                "{}.{}.c2ln",
                enc(r#"{"alg":"HS512","alg":"RS512"}"#),
                enc("{}")
            ),
        ] {
            assert_eq!(
                v.verify(&token, 1001),
                Err(SourceError::Malformed),
                "{token}"
            );
        }
    }
}
