//! RSA signing keys (3072 bits, PKCS#8 PEM files of mode 0600, made on first use) and compact
//! JWTs signed with them: the Hub's RS512 source tokens and the ZorgDomein SSO launch token
//! (RS256) both use this one implementation.

use std::path::Path;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::keys::KeyError;

/// The RSA signature algorithms our tokens use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
}

impl RsaAlg {
    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs512 => "RS512",
        }
    }
}

/// An RSA key pair with its JWK thumbprint (RFC 7638) as key id.
pub struct RsaSigningKey {
    pair: KeyPair,
    kid: String,
}

impl std::fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaSigningKey({})", self.kid)
    }
}

impl RsaSigningKey {
    /// Loads the key at `path`, creating a 3072-bit key (mode 0600, in a 0700 directory) when
    /// there is none. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let pair = KeyPair::generate(KeySize::Rsa3072).map_err(|_| KeyError::Generation)?;
        let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
            .map_err(|_| KeyError::Generation)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::identity::create_private_dir(dir).map_err(|e| KeyError::Io {
                path: dir.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        crate::keys::write_private_key(path, der.as_ref())?;
        Ok((Self::from_pair(pair), true))
    }

    /// Reads a PEM `PRIVATE KEY` (PKCS#8 RSA) file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bad = || KeyError::BadPrivateKey(path.display().to_string());
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let der = crate::keys::pem_decode(&text, "PRIVATE KEY").ok_or_else(bad)?;
        let pair = KeyPair::from_pkcs8(&der).map_err(|_| bad())?;
        Ok(Self::from_pair(pair))
    }

    fn from_pair(pair: KeyPair) -> Self {
        let (n, e) = components(&pair);
        // RFC 7638 thumbprint of {"e","kty","n"}.
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(&e),
            URL_SAFE_NO_PAD.encode(&n)
        );
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self { pair, kid }
    }

    /// The key id (JWK thumbprint).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK for `alg`.
    #[must_use]
    pub fn jwk(&self, alg: RsaAlg) -> Value {
        let (n, e) = components(&self.pair);
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": alg.name(),
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
        })
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> Result<String, KeyError> {
        let der = self
            .pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Generation)?;
        let b64 = STANDARD.encode(der.as_ref());
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        Ok(out)
    }

    /// Signs the JSON text `claims` as a compact JWT with header `{"alg", "typ": "JWT", "kid"}`.
    pub fn sign_jwt(&self, alg: RsaAlg, claims: &str) -> Result<String, KeyError> {
        let header = json!({"alg": alg.name(), "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let padding = match alg {
            RsaAlg::Rs256 => &signature::RSA_PKCS1_SHA256,
            RsaAlg::Rs512 => &signature::RSA_PKCS1_SHA512,
        };
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|_| KeyError::Signing)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// Modulus and exponent, big-endian without leading zeros.
fn components(pair: &KeyPair) -> (Vec<u8>, Vec<u8>) {
    let public = pair.public_key();
    (
        public.modulus().big_endian_without_leading_zero().to_vec(),
        public.exponent().big_endian_without_leading_zero().to_vec(),
    )
}
