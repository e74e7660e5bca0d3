//! `did:key` for P-256 (multicodec `0x1200`, compressed point) and Ed25519 (`0xed`): the DID is the
//! key, so resolution is pure computation.

use super::{DidDocument, DidError};
use crate::keys::{KeyError, PublicKey};

const P256_PREFIX: [u8; 2] = [0x80, 0x24];
const ED25519_PREFIX: [u8; 2] = [0xed, 0x01];

/// The multibase (`z` + base58btc) multicodec encoding of a P-256 or Ed25519 public key.
#[must_use]
pub fn encode_multibase_key(key: &PublicKey) -> Option<String> {
    let prefix = match key {
        PublicKey::P256(_) => P256_PREFIX,
        PublicKey::Ed25519(_) => ED25519_PREFIX,
        _ => return None,
    };
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(&key.compressed()?);
    Some(format!("z{}", bs58::encode(bytes).into_string()))
}

/// Decodes a multibase multicodec public key (P-256 or Ed25519).
pub fn decode_multibase_key(value: &str) -> Result<PublicKey, KeyError> {
    let encoded = value.strip_prefix('z').ok_or_else(|| {
        KeyError::BadPublicKey("multibase key must start with 'z' (base58btc)".into())
    })?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| KeyError::BadPublicKey("multibase key is not base58btc".into()))?;
    match bytes.split_at_checked(2) {
        Some((p, rest)) if p == P256_PREFIX && rest.len() == 33 => PublicKey::p256_from_sec1(rest),
        Some((p, rest)) if p == ED25519_PREFIX && rest.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(rest);
            Ok(PublicKey::Ed25519(key))
        }
        _ => Err(KeyError::BadPublicKey(
            "multicodec key is neither P-256 (0x1200) nor Ed25519 (0xed)".into(),
        )),
    }
}

/// The `did:key` DID of a key poortwachter signs with (P-256 or Ed25519).
///
/// # Panics
/// For other key types, which poortwachter never generates.
#[must_use]
#[allow(clippy::expect_used)]
pub fn did_for(key: &PublicKey) -> String {
    let id = encode_multibase_key(key).expect("did:key is made for P-256 and Ed25519 keys only");
    format!("did:key:{id}")
}

/// The verification method id of a `did:key` (`did:key:z…#z…`).
#[must_use]
pub fn verification_method_id(did: &str) -> String {
    let id = did.strip_prefix("did:key:").unwrap_or(did);
    format!("{did}#{id}")
}

/// Resolves a `did:key` DID to its DID document.
pub fn resolve(did: &str) -> Result<DidDocument, DidError> {
    let id = did
        .strip_prefix("did:key:")
        .ok_or_else(|| DidError::Invalid(did.to_owned()))?;
    let key = decode_multibase_key(id).map_err(|e| DidError::BadDocument {
        did: did.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(DidDocument::single_key(did, id, &key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nuts-node test key (`public_key.jwk.json`) and its did:key, as stated in
    /// `shared/reference/rust-jsonld.md`.
    #[test]
    fn p256_vector_from_nuts_node_key() {
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": "ZoS_Grh0lkKnW3ZO_NOEzq3kfIP6TYzsq3ldvJPEoK0",
            "y": "5oqWhlImHbUrDc5ZxHeIPHnI9Ol5VaURkmVzs-nyxaU"
        });
        let key = PublicKey::from_jwk(&jwk).unwrap();
        let did = did_for(&key);
        assert_eq!(
            did,
            "did:key:zDnaepZUQNAT7p3JXZKNiEP5yFRbG8PRcADYMrFaGwmBBxsF2"
        );
        let doc = resolve(&did).unwrap();
        assert_eq!(
            doc.assertion_key(&verification_method_id(&did)).unwrap(),
            key
        );
    }

    /// Test vector from the did:key specification (Ed25519).
    #[test]
    fn ed25519_spec_vector_roundtrips() {
        let did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
        let doc = resolve(did).unwrap();
        let key = doc.assertion_key(&verification_method_id(did)).unwrap();
        assert!(matches!(key, PublicKey::Ed25519(_)));
        assert_eq!(did_for(&key), did);
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "did:key:",
            "did:key:abc",
            "did:key:z111",
            "did:key:zQ3s",
            "did:web:x",
        ] {
            assert!(resolve(bad).is_err(), "{bad}");
        }
    }
}
