//! `zorgdomein`: ZorgDomein Integrator FE calling the XIS. Every request needs both proofs
//! ZorgDomein's validation criteria name:
//!
//! 1. a client certificate, verified by the listener against `[tls] client_ca`, that is one of
//!    `[zorgdomein] client_certificates` (SHA-256 fingerprint or RFC 4514 subject);
//! 2. `Authorization: Bearer <JWT>` signed by one of `[zorgdomein] public_keys`, its `alg` fixed
//!    by the key's type (RS256/PS256 for RSA, ES256 for P-256; `none` and HMAC never), `iat`
//!    at most `max_token_age_seconds` old and not in the future, `exp` (when present) in the
//!    future, `nbf` (when present) passed, all with 5 s of clock skew; `iss` the configured
//!    issuer when one is configured.
//!
//! Anything else is refused (403 with a FHIR `OperationOutcome`: ZorgDomein's criteria say 403,
//! not 401); the reason goes to the audit log. The principal is ZorgDomein (the organisation,
//! no patient); the token's `iss` and `jti` are audited.
//!
//! **Invariant:** [`ZorgDomein::verify_token`] is pure: the time is given.

use aws_lc_rs::signature;
use axum::http::request::Parts;
use serde_json::Value;

use super::{AuthError, Principal, Proof};
use crate::policy::Authenticator as Kind;
use crate::zorgdomein::{CertMatch, ZorgDomeinSettings};

/// Clock skew allowed on `iat`, `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 5;

/// Largest public key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Largest token accepted (ZorgDomein's are a few hundred bytes).
const MAX_TOKEN: usize = 16 * 1024;

/// A key ZorgDomein signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// RSA, 2048 bits or more: RS256 and PS256.
    Rsa {
        /// Modulus, big-endian, no leading zero.
        n: Vec<u8>,
        /// Exponent, big-endian, no leading zero.
        e: Vec<u8>,
    },
    /// P-256, uncompressed point: ES256.
    P256(Vec<u8>),
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

impl VerifyKey {
    /// Reads a DER SubjectPublicKeyInfo: RSA of at least 2048 bits, or EC on P-256.
    pub fn from_spki(der: &[u8]) -> Result<Self, String> {
        use x509_parser::prelude::FromDer as _;
        use x509_parser::public_key::PublicKey;
        let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
            .map_err(|_| "not a SubjectPublicKeyInfo".to_owned())?;
        if !rest.is_empty() {
            return Err("trailing bytes after the public key".into());
        }
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let n = strip_zeros(rsa.modulus);
                let e = strip_zeros(rsa.exponent);
                if n.len() < 256 || n.len() > 1024 || e.is_empty() || e.len() > 8 {
                    return Err("an RSA key must have 2048 to 8192 bits".into());
                }
                Ok(Self::Rsa { n, e })
            }
            Ok(PublicKey::EC(point)) => {
                let p256 = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .is_some_and(|oid| oid.to_id_string() == "1.2.840.10045.3.1.7");
                if !p256 {
                    return Err("an EC key must be on P-256 (ES256)".into());
                }
                match crate::keys::PublicKey::p256_from_sec1(point.data()) {
                    Ok(crate::keys::PublicKey::P256(p)) => Ok(Self::P256(p)),
                    _ => Err("the P-256 point is not on the curve".into()),
                }
            }
            _ => Err("only RSA and EC P-256 keys are supported".into()),
        }
    }

    /// Reads a PEM `PUBLIC KEY` file's text.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let der = crate::keys::pem_decode(text, "PUBLIC KEY")
            .ok_or("no PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo) in the file")?;
        Self::from_spki(&der)
    }

    /// The algorithms this key verifies.
    #[must_use]
    pub fn algs(&self) -> &'static [&'static str] {
        match self {
            Self::Rsa { .. } => &["RS256", "PS256"],
            Self::P256(_) => &["ES256"],
        }
    }

    /// Whether `sig` is this key's `alg` signature over `message` (`false` for an algorithm of
    /// another key type).
    #[must_use]
    pub fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (Self::Rsa { n, e }, "RS256" | "PS256") => {
                let params = if alg == "RS256" {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            (Self::P256(point), "ES256") => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// Why a ZorgDomein token is refused (audit log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS with JSON parts (or too large, or a repeated member name).
    #[error("malformed")]
    Malformed,
    /// `alg` is `none`, HMAC, or not one of the configured keys' algorithms.
    #[error("alg-not-allowed")]
    Alg,
    /// A `crit` header.
    #[error("crit-header")]
    Crit,
    /// No configured key verifies the signature.
    #[error("bad-signature")]
    Signature,
    /// `iat` missing, or a time claim that is not an integer.
    #[error("bad-time-claims")]
    Claims,
    /// `iat` or `nbf` in the future.
    #[error("not-yet-valid")]
    NotYetValid,
    /// `iat` older than `max_token_age_seconds`.
    #[error("too-old")]
    TooOld,
    /// `exp` passed.
    #[error("expired")]
    Expired,
    /// Another `iss` than the configured one.
    #[error("wrong-issuer")]
    Issuer,
}

/// What the audit log keeps of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// `iss`, if a printable string.
    pub iss: Option<String>,
    /// `jti`, if a printable string.
    pub jti: Option<String>,
}

/// A claim as the audit log may show it: printable ASCII, at most 256 characters.
fn printable(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?;
    (!s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .then(|| s.to_owned())
}

/// ZorgDomein's calls, decided by one policy.
#[derive(Debug)]
pub struct ZorgDomein {
    keys: Vec<VerifyKey>,
    algs: Vec<&'static str>,
    certificates: Vec<CertMatch>,
    max_age: i64,
    issuer: Option<String>,
    policy: String,
}

impl ZorgDomein {
    /// An authenticator with these keys.
    #[must_use]
    pub fn new(
        keys: Vec<VerifyKey>,
        certificates: Vec<CertMatch>,
        max_age: i64,
        issuer: Option<String>,
        policy: &str,
    ) -> Self {
        let mut algs: Vec<&'static str> = Vec::new();
        for a in keys.iter().flat_map(VerifyKey::algs) {
            if !algs.contains(a) {
                algs.push(a);
            }
        }
        Self {
            keys,
            algs,
            certificates,
            max_age,
            issuer,
            policy: policy.to_owned(),
        }
    }

    /// Reads the configured key files; a file that cannot be read or holds no usable key is an
    /// error naming it.
    pub fn load(settings: &ZorgDomeinSettings) -> Result<Self, String> {
        let mut keys = Vec::new();
        for path in &settings.public_keys {
            let shown = path.display();
            let size = std::fs::metadata(path)
                .map_err(|e| format!("public key {shown}: {e}"))?
                .len();
            if size > MAX_KEY_FILE {
                return Err(format!(
                    "public key {shown}: larger than {MAX_KEY_FILE} bytes"
                ));
            }
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("public key {shown}: {e}"))?;
            keys.push(VerifyKey::from_pem(&text).map_err(|e| format!("public key {shown}: {e}"))?);
        }
        Ok(Self::new(
            keys,
            settings.client_certificates.clone(),
            settings.max_token_age_seconds,
            settings.issuer.clone(),
            &settings.policy,
        ))
    }

    /// Verifies a token at `now` (unix seconds).
    pub fn verify_token(&self, token: &str, now: i64) -> Result<TokenClaims, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Malformed);
        }
        // The crate's one JOSE parser, with the algorithms of our keys only.
        let jws = crate::jose::parse(token, &self.algs).map_err(|e| match e {
            crate::jose::JoseError::AlgNotAllowed(..) => TokenError::Alg,
            crate::jose::JoseError::Crit => TokenError::Crit,
            crate::jose::JoseError::Malformed(_) => TokenError::Malformed,
        })?;
        if !self
            .keys
            .iter()
            .any(|k| k.verify(&jws.alg, &jws.signing_input, &jws.signature))
        {
            return Err(TokenError::Signature);
        }
        let time = |name: &str| match jws.claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or(TokenError::Claims),
        };
        let iat = time("iat")?.ok_or(TokenError::Claims)?;
        let exp = time("exp")?;
        let nbf = time("nbf")?;
        if iat > now.saturating_add(LEEWAY_SECONDS)
            || nbf.is_some_and(|n| n > now.saturating_add(LEEWAY_SECONDS))
        {
            return Err(TokenError::NotYetValid);
        }
        if exp.is_some_and(|e| e.saturating_add(LEEWAY_SECONDS) <= now) {
            return Err(TokenError::Expired);
        }
        if iat
            .saturating_add(self.max_age)
            .saturating_add(LEEWAY_SECONDS)
            < now
        {
            return Err(TokenError::TooOld);
        }
        if let Some(issuer) = &self.issuer {
            if jws.claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(TokenError::Issuer);
            }
        }
        Ok(TokenClaims {
            iss: printable(jws.claims.get("iss")),
            jti: printable(jws.claims.get("jti")),
        })
    }

    /// ZorgDomein's certificate and a valid token make the principal `zorgdomein`.
    pub fn authenticate(&self, parts: &Parts, now: i64) -> Result<Principal, AuthError> {
        let refuse = |why: &str| AuthError::Invalid(format!("zorgdomein: {why}"));
        let Some(cert) = parts.extensions.get::<crate::tls::ClientCert>() else {
            return Err(refuse("no-client-certificate"));
        };
        if !self.certificates.iter().any(|m| m.matches(cert)) {
            return Err(refuse("client-certificate-not-zorgdomein"));
        }
        let token = match crate::http::bearer(&parts.headers) {
            Ok(t) => t,
            Err(crate::http::BearerError::Missing) => return Err(refuse("no-token")),
            Err(crate::http::BearerError::Malformed) => {
                return Err(refuse("malformed-authorization"))
            }
        };
        let claims = self
            .verify_token(token, now)
            .map_err(|e| refuse(&format!("invalid-token: {e}")))?;
        Ok(Principal {
            requester: "zorgdomein".into(),
            user: None,
            policy: self.policy.clone(),
            authenticator: Kind::ZorgDomein,
            patient: None,
            proof: Proof::ZorgDomeinToken {
                iss: claims.iss,
                jti: claims.jti,
            },
            token: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::KeyPair as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    struct Keys {
        rsa: aws_lc_rs::rsa::KeyPair,
        ec: aws_lc_rs::signature::EcdsaKeyPair,
    }

    fn keys() -> Keys {
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let ec = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        )
        .unwrap();
        Keys { rsa, ec }
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn sign(k: &Keys, alg: &str, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": alg, "typ": "JWT", "kid": "zd"})),
            b64(claims)
        );
        let rng = SystemRandom::new();
        let sig = match alg {
            "RS256" | "PS256" => {
                let mut sig = vec![0; k.rsa.public_modulus_len()];
                let a: &'static dyn signature::RsaEncoding = if alg == "RS256" {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                k.rsa.sign(a, &rng, input.as_bytes(), &mut sig).unwrap();
                sig
            }
            "ES256" => k.ec.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            _ => b"sig".to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn authenticator(k: &Keys, issuer: Option<&str>) -> ZorgDomein {
        let rsa = {
            use aws_lc_rs::encoding::AsDer as _;
            let der = k.rsa.public_key().as_der().unwrap();
            VerifyKey::from_spki(der.as_ref()).unwrap()
        };
        let ec = {
            // SPKI of a P-256 point: the fixed prefix of id-ecPublicKey + prime256v1.
            let mut der =
                hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
            der.extend_from_slice(k.ec.public_key().as_ref());
            VerifyKey::from_spki(&der).unwrap()
        };
        ZorgDomein::new(
            vec![rsa, ec],
            vec![],
            300,
            issuer.map(str::to_owned),
            "zorgdomein",
        )
    }

    #[test]
    fn tokens_by_key_type_and_time() {
        let k = keys();
        let zd = authenticator(&k, None);
        let claims = json!({"iss": "Zorgdomein", "jti": "j-1", "iat": NOW});
        for alg in ["RS256", "PS256", "ES256"] {
            assert_eq!(
                zd.verify_token(&sign(&k, alg, &claims), NOW),
                Ok(TokenClaims {
                    iss: Some("Zorgdomein".into()),
                    jti: Some("j-1".into())
                }),
                "{alg}"
            );
        }
        let t = sign(&k, "RS256", &claims);
        assert_eq!(
            zd.verify_token(&t, NOW + 305),
            Ok(TokenClaims {
                iss: Some("Zorgdomein".into()),
                jti: Some("j-1".into())
            })
        );
        assert_eq!(zd.verify_token(&t, NOW + 306), Err(TokenError::TooOld));
        assert_eq!(zd.verify_token(&t, NOW - 5).map(|_| ()), Ok(()));
        assert_eq!(zd.verify_token(&t, NOW - 6), Err(TokenError::NotYetValid));
        let cases = [
            (
                json!({"iat": NOW, "exp": NOW - 5}),
                Err(TokenError::Expired),
            ),
            (json!({"iat": NOW, "exp": NOW - 4}), Ok(())),
            (
                json!({"iat": NOW, "nbf": NOW + 6}),
                Err(TokenError::NotYetValid),
            ),
            (json!({"jti": "x"}), Err(TokenError::Claims)),
            (json!({"iat": "1800000000"}), Err(TokenError::Claims)),
            (json!({"iat": NOW, "exp": 1.5}), Err(TokenError::Claims)),
            (
                json!({"iat": i64::MAX, "exp": i64::MIN}),
                Err(TokenError::NotYetValid),
            ),
            (json!({"iat": i64::MIN}), Err(TokenError::TooOld)),
        ];
        for (claims, want) in cases {
            assert_eq!(
                zd.verify_token(&sign(&k, "ES256", &claims), NOW)
                    .map(|_| ()),
                want,
                "{claims}"
            );
        }
        // The audit log keeps printable iss/jti only.
        let odd = sign(&k, "ES256", &json!({"iat": NOW, "iss": "a\nb", "jti": 5}));
        assert_eq!(
            zd.verify_token(&odd, NOW),
            Ok(TokenClaims {
                iss: None,
                jti: None
            })
        );
    }

    #[test]
    fn forgeries_are_refused() {
        let k = keys();
        let zd = authenticator(&k, Some("Zorgdomein"));
        let claims = json!({"iss": "Zorgdomein", "iat": NOW});
        let good = sign(&k, "RS256", &claims);
        assert!(zd.verify_token(&good, NOW).is_ok());
        assert_eq!(
            zd.verify_token(
                &sign(&k, "RS256", &json!({"iss": "other", "iat": NOW})),
                NOW
            ),
            Err(TokenError::Issuer)
        );
        // none, HMAC (with the public key as the secret), an algorithm of no configured key.
        for alg in ["none", "HS256", "RS512", "ES384", "EdDSA"] {
            assert_eq!(
                zd.verify_token(&sign(&k, alg, &claims), NOW),
                Err(TokenError::Alg),
                "{alg}"
            );
        }
        // An RSA signature presented as ES256 and the other way round.
        let (h, rest) = good.split_once('.').unwrap();
        let es_header = b64(&json!({"alg": "ES256"}));
        assert_eq!(
            zd.verify_token(&format!("{es_header}.{rest}"), NOW),
            Err(TokenError::Signature)
        );
        let _ = h;
        // Unsigned (empty signature), a flipped bit, a changed payload.
        let (input, _) = good.rsplit_once('.').unwrap();
        assert_eq!(
            zd.verify_token(&format!("{input}."), NOW),
            Err(TokenError::Signature)
        );
        let mut flipped = good.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'Q' } else { 'A' });
        assert_eq!(zd.verify_token(&flipped, NOW), Err(TokenError::Signature));
        let other = b64(&json!({"iss": "Zorgdomein", "iat": NOW, "x": 1}));
        let parts: Vec<&str> = good.split('.').collect();
        assert_eq!(
            zd.verify_token(&format!("{}.{other}.{}", parts[0], parts[2]), NOW),
            Err(TokenError::Signature)
        );
        let crit = format!(
            "{}.{}.c2ln",
            b64(&json!({"alg": "RS256", "crit": ["x"]})),
            b64(&claims)
        );
        assert_eq!(zd.verify_token(&crit, NOW), Err(TokenError::Crit));
        let dup = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","alg":"RS256"}"#),
            b64(&claims)
        );
        assert_eq!(zd.verify_token(&dup, NOW), Err(TokenError::Malformed));
        for bad in ["", "a.b", "a.b.c.d", &"a".repeat(MAX_TOKEN + 1)] {
            assert_eq!(zd.verify_token(bad, NOW), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn keys_are_rsa_of_2048_bits_or_p256() {
        let k = keys();
        assert!(matches!(VerifyKey::from_pem("no pem"), Err(e) if e.contains("PUBLIC KEY")));
        let small = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let _ = small;
        // P-384 is refused.
        let p384 = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        )
        .unwrap();
        let mut der = hex::decode("3076301006072a8648ce3d020106052b81040022036200").unwrap();
        der.extend_from_slice(p384.public_key().as_ref());
        assert_eq!(
            VerifyKey::from_spki(&der),
            Err("an EC key must be on P-256 (ES256)".into())
        );
        assert!(VerifyKey::from_spki(b"\x30\x00").is_err());
        let zd = authenticator(&k, None);
        assert_eq!(zd.algs, vec!["RS256", "PS256", "ES256"]);
    }
}
