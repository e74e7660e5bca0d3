//! Signing keys (P-256 and Ed25519): generation, PKCS#8 PEM files with mode 0600, public keys as
//! JWK and multicodec bytes, and signature verification.
//!
//! All cryptography goes through `aws-lc-rs`; `p256` is only used to validate and decompress
//! public points.

use std::fmt;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;

/// The two key types poortwachter issues with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// ECDSA on NIST P-256, JWS `ES256` (what nuts-node uses).
    P256,
    /// Ed25519, JWS `EdDSA`.
    Ed25519,
}

impl KeyType {
    /// The JWS `alg` this key type signs with.
    #[must_use]
    pub fn jws_alg(self) -> &'static str {
        match self {
            KeyType::P256 => "ES256",
            KeyType::Ed25519 => "EdDSA",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::P256 => "p256",
            KeyType::Ed25519 => "ed25519",
        })
    }
}

/// Errors about keys and signatures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file is not a PKCS#8 key of the expected type.
    #[error("key file {0}: not a PKCS#8 PEM private key of a supported type (P-256 or Ed25519)")]
    BadPrivateKey(String),
    /// A public key could not be parsed.
    #[error("unsupported or malformed public key: {0}")]
    BadPublicKey(String),
    /// Key generation failed (the system RNG).
    #[error("key generation failed")]
    Generation,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
}

/// A private signing key.
pub enum SigningKey {
    /// P-256.
    P256(EcdsaKeyPair),
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.key_type())
    }
}

impl SigningKey {
    /// Generates a fresh key and returns it with its PKCS#8 DER encoding.
    pub fn generate(key_type: KeyType) -> Result<(Self, Vec<u8>), KeyError> {
        match key_type {
            KeyType::P256 => {
                let rng = SystemRandom::new();
                let doc =
                    EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .map_err(|_| KeyError::Generation)?;
                let der = doc.as_ref().to_vec();
                let key =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                        .map_err(|_| KeyError::Generation)?;
                Ok((SigningKey::P256(key), der))
            }
            KeyType::Ed25519 => {
                let rng = SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generation)?;
                let der = doc.as_ref().to_vec();
                let key = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| KeyError::Generation)?;
                Ok((SigningKey::Ed25519(key), der))
            }
        }
    }

    /// Parses a PKCS#8 DER private key of either type.
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            return Some(SigningKey::P256(k));
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .ok()
            .map(SigningKey::Ed25519)
    }

    /// Reads a PEM `PRIVATE KEY` file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let der = pem_decode(&text, "PRIVATE KEY")
            .ok_or_else(|| KeyError::BadPrivateKey(path.display().to_string()))?;
        Self::from_pkcs8(&der).ok_or_else(|| KeyError::BadPrivateKey(path.display().to_string()))
    }

    /// The key type.
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        match self {
            SigningKey::P256(_) => KeyType::P256,
            SigningKey::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::P256(k) => PublicKey::P256(k.public_key().as_ref().to_vec()),
            SigningKey::Ed25519(k) => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(k.public_key().as_ref());
                PublicKey::Ed25519(bytes)
            }
        }
    }

    /// Signs `message` (ES256 gives the 64-byte r‖s form; EdDSA 64 bytes).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            SigningKey::P256(k) => k
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Signing),
            SigningKey::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// Writes `der` as a PEM `PRIVATE KEY` file, created with mode 0600 (never world-readable, not
/// even for an instant).
pub fn write_private_key(path: &Path, der: &[u8]) -> Result<(), KeyError> {
    use std::io::Write as _;
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    file.write_all(pem_encode(der, "PRIVATE KEY").as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)
}

fn pem_encode(der: &[u8], label: &str) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn pem_decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

/// A public verification key. poortwachter signs with P-256 or Ed25519; it verifies grants signed
/// with any key a DID document may hold for the JWS algorithms it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256, uncompressed SEC1 point (65 bytes, `0x04 ‖ x ‖ y`).
    P256(Vec<u8>),
    /// Ed25519, 32 bytes.
    Ed25519([u8; 32]),
    /// P-384, uncompressed SEC1 point (97 bytes).
    P384(Vec<u8>),
    /// P-521, uncompressed SEC1 point (133 bytes).
    P521(Vec<u8>),
    /// RSA (2048 bits or more): big-endian modulus and exponent.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
}

impl PublicKey {
    /// Parses a P-256 SEC1 point (compressed or not) and validates that it is on the curve.
    pub fn p256_from_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let key = p256::PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| KeyError::BadPublicKey("not a valid P-256 point".into()))?;
        Ok(PublicKey::P256(
            key.to_encoded_point(false).as_bytes().to_vec(),
        ))
    }

    /// Compressed SEC1 form (P-256) or the raw 32 bytes (Ed25519), as used in `did:key`;
    /// `None` for the key types poortwachter does not issue with.
    #[must_use]
    pub fn compressed(&self) -> Option<Vec<u8>> {
        match self {
            PublicKey::P256(point) => {
                let mut out = Vec::with_capacity(33);
                out.push(if point[64] & 1 == 0 { 0x02 } else { 0x03 });
                out.extend_from_slice(&point[1..33]);
                Some(out)
            }
            PublicKey::Ed25519(bytes) => Some(bytes.to_vec()),
            _ => None,
        }
    }

    /// The public key as a JWK (no `kid`).
    #[must_use]
    pub fn to_jwk(&self) -> serde_json::Value {
        match self {
            PublicKey::P256(point) => json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
            PublicKey::Ed25519(bytes) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(bytes),
            }),
            PublicKey::P384(point) | PublicKey::P521(point) => {
                let (crv, n) = if point.len() == 97 {
                    ("P-384", 48)
                } else {
                    ("P-521", 66)
                };
                json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": URL_SAFE_NO_PAD.encode(&point[1..=n]),
                    "y": URL_SAFE_NO_PAD.encode(&point[n + 1..]),
                })
            }
            PublicKey::Rsa { n, e } => json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(n),
                "e": URL_SAFE_NO_PAD.encode(e),
            }),
        }
    }

    /// Parses a public JWK (EC P-256 or OKP Ed25519). Private members are refused.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, KeyError> {
        let field = |name: &str| -> Result<Vec<u8>, KeyError> {
            let value = jwk
                .get(name)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| KeyError::BadPublicKey(format!("JWK has no \"{name}\"")))?;
            URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|_| KeyError::BadPublicKey(format!("JWK \"{name}\" is not base64url")))
        };
        if jwk.get("d").is_some() {
            return Err(KeyError::BadPublicKey("JWK holds a private key".into()));
        }
        let kty = jwk.get("kty").and_then(serde_json::Value::as_str);
        let crv = jwk.get("crv").and_then(serde_json::Value::as_str);
        match (kty, crv) {
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::BadPublicKey(
                        "P-256 JWK coordinates must be 32 bytes".into(),
                    ));
                }
                let mut point = vec![0x04];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::p256_from_sec1(&point)
            }
            (Some("EC"), Some(crv @ ("P-384" | "P-521"))) => {
                let size = if crv == "P-384" { 48 } else { 66 };
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != size || y.len() != size {
                    return Err(KeyError::BadPublicKey(format!(
                        "{crv} JWK coordinates must be {size} bytes"
                    )));
                }
                let mut point = vec![0x04];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(if size == 48 {
                    PublicKey::P384(point)
                } else {
                    PublicKey::P521(point)
                })
            }
            (Some("RSA"), _) => {
                let (n, e) = (field("n")?, field("e")?);
                if n.len() < 256 || e.is_empty() || e.len() > 8 {
                    return Err(KeyError::BadPublicKey(
                        "RSA JWK must have a modulus of at least 2048 bits".into(),
                    ));
                }
                Ok(PublicKey::Rsa { n, e })
            }
            (Some("OKP"), Some("Ed25519")) => {
                let x = field("x")?;
                let bytes: [u8; 32] = x
                    .try_into()
                    .map_err(|_| KeyError::BadPublicKey("Ed25519 JWK x must be 32 bytes".into()))?;
                Ok(PublicKey::Ed25519(bytes))
            }
            (kty, crv) => Err(KeyError::BadPublicKey(format!(
                "JWK kty {} crv {} is not supported (EC P-256/P-384/P-521, OKP Ed25519, RSA)",
                kty.unwrap_or("(none)"),
                crv.unwrap_or("(none)")
            ))),
        }
    }

    /// Verifies a JWS signature made with `alg` over `message`. The algorithm must match the key
    /// type (`ES256` P-256, `ES384` P-384, `ES512` P-521, `EdDSA` Ed25519, `PS256/384/512` RSA);
    /// anything else, `none` and HMAC included, is `false`.
    #[must_use]
    pub fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        let ec = |alg: &'static signature::EcdsaVerificationAlgorithm, point: &[u8]| {
            signature::UnparsedPublicKey::new(alg, point)
                .verify(message, sig)
                .is_ok()
        };
        let pss = |params: &'static signature::RsaParameters, n: &[u8], e: &[u8]| {
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        };
        match (self, alg) {
            (PublicKey::P384(point), "ES384") => ec(&signature::ECDSA_P384_SHA384_FIXED, point),
            (PublicKey::P521(point), "ES512") => ec(&signature::ECDSA_P521_SHA512_FIXED, point),
            (PublicKey::Rsa { n, e }, "PS256") => pss(&signature::RSA_PSS_2048_8192_SHA256, n, e),
            (PublicKey::Rsa { n, e }, "PS384") => pss(&signature::RSA_PSS_2048_8192_SHA384, n, e),
            (PublicKey::Rsa { n, e }, "PS512") => pss(&signature::RSA_PSS_2048_8192_SHA512, n, e),
            (PublicKey::P256(point), "ES256") => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (PublicKey::Ed25519(bytes), "EdDSA") => {
                signature::UnparsedPublicKey::new(&signature::ED25519, bytes)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_both_types() {
        for kt in [KeyType::P256, KeyType::Ed25519] {
            let (key, der) = SigningKey::generate(kt).unwrap();
            let sig = key.sign(b"hello").unwrap();
            let public = key.public_key();
            assert!(public.verify(kt.jws_alg(), b"hello", &sig));
            assert!(!public.verify(kt.jws_alg(), b"hellp", &sig));
            assert!(!public.verify("HS256", b"hello", &sig));
            let again = SigningKey::from_pkcs8(&der).unwrap();
            assert_eq!(again.public_key(), public);
            assert_eq!(PublicKey::from_jwk(&public.to_jwk()).unwrap(), public);
        }
    }

    #[test]
    fn compressed_point_roundtrip() {
        let (key, _) = SigningKey::generate(KeyType::P256).unwrap();
        let public = key.public_key();
        assert_eq!(
            PublicKey::p256_from_sec1(&public.compressed().unwrap()).unwrap(),
            public
        );
    }

    #[cfg(unix)]
    #[test]
    fn private_key_file_is_0600_and_reloads() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let (key, der) = SigningKey::generate(KeyType::Ed25519).unwrap();
        write_private_key(&path, &der).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            SigningKey::load(&path).unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn jwk_with_private_part_is_refused() {
        let jwk = json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"});
        assert!(PublicKey::from_jwk(&jwk).is_err());
    }
}
