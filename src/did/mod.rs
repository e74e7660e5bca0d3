//! Decentralized identifiers: the DID document model and one resolver, with one cache, for
//! `did:key` (P-256 and Ed25519), `did:web` (HTTPS, guarded) and a directory of static DID
//! documents (`did:nuts` and offline setups).
//!
//! **Invariant:** only `did::web` does network IO in this module, and only towards public
//! addresses unless `dangerous_allow_http_loopback` is set.

pub mod key;
pub mod static_dir;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keys::PublicKey;

/// Why a DID or DID URL could not be resolved to a key.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DidError {
    /// Not a syntactically valid DID.
    #[error("not a valid DID: {0}")]
    Invalid(String),
    /// A method we do not resolve.
    #[error("unsupported DID method \"{0}\" (supported: key, web, and static documents from the DID directory)")]
    UnsupportedMethod(String),
    /// The DID could not be found or fetched.
    #[error("cannot resolve {did}: {reason}")]
    Unresolvable {
        /// The DID.
        did: String,
        /// Why.
        reason: String,
    },
    /// The DID document is malformed or does not describe the DID.
    #[error("invalid DID document for {did}: {reason}")]
    BadDocument {
        /// The DID.
        did: String,
        /// Why.
        reason: String,
    },
    /// The resolver cannot be set up: a `[did_web] extra_ca` file does not load (the message
    /// names the file and the reason).
    #[error("{0}")]
    Setup(String),
    /// The verification method is not in the document or not in the required relationship.
    #[error("verification method {0} is not an assertionMethod of its DID document")]
    NotAssertionMethod(String),
}

/// A verification method in a DID document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// The method's id (absolute, or relative to the document id: `#key-1`).
    pub id: String,
    /// e.g. `JsonWebKey2020`, `Multikey`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The controller DID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The key as a JWK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_jwk: Option<serde_json::Value>,
    /// The key as multibase (`z...`, multicodec-prefixed), as `did:key` documents may carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
}

/// A relationship entry: a reference to a verification method or an embedded one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum MethodRef {
    /// A DID URL (absolute or relative).
    Reference(String),
    /// An embedded method.
    Embedded(VerificationMethod),
}

/// The part of a DID document poortwachter uses. Other members are ignored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// JSON-LD context(s).
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// The DID.
    pub id: String,
    /// Controller(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<serde_json::Value>,
    /// Verification methods.
    #[serde(default)]
    pub verification_method: Vec<VerificationMethod>,
    /// Methods allowed to assert claims (sign credentials and grants).
    #[serde(default)]
    pub assertion_method: Vec<MethodRef>,
    /// Methods allowed to authenticate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<MethodRef>,
    /// Capability invocation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_invocation: Vec<MethodRef>,
    /// Capability delegation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_delegation: Vec<MethodRef>,
}

impl DidDocument {
    /// A document with one key in every relationship, `#<fragment>`.
    #[must_use]
    pub fn single_key(did: &str, fragment: &str, key: &PublicKey) -> Self {
        let vm_id = format!("{did}#{fragment}");
        let r = || vec![MethodRef::Reference(vm_id.clone())];
        DidDocument {
            context: Some(serde_json::json!([
                "https://www.w3.org/ns/did/v1",
                "https://w3c-ccg.github.io/lds-jws2020/contexts/lds-jws2020-v1.json"
            ])),
            id: did.to_owned(),
            controller: None,
            verification_method: vec![VerificationMethod {
                id: vm_id.clone(),
                kind: "JsonWebKey2020".into(),
                controller: Some(did.to_owned()),
                public_key_jwk: Some(key.to_jwk()),
                public_key_multibase: None,
            }],
            assertion_method: r(),
            authentication: r(),
            capability_invocation: r(),
            capability_delegation: r(),
        }
    }

    fn absolute(&self, id: &str) -> String {
        if id.starts_with('#') {
            format!("{}{id}", self.id)
        } else {
            id.to_owned()
        }
    }

    /// Finds the key of `vm_id` (an absolute DID URL) if it is listed in `assertionMethod`.
    pub fn assertion_key(&self, vm_id: &str) -> Result<PublicKey, DidError> {
        let listed = self.assertion_method.iter().find_map(|r| match r {
            MethodRef::Reference(id) if self.absolute(id) == vm_id => Some(None),
            MethodRef::Embedded(vm) if self.absolute(&vm.id) == vm_id => Some(Some(vm)),
            _ => None,
        });
        let vm = match listed {
            None => return Err(DidError::NotAssertionMethod(vm_id.to_owned())),
            Some(Some(vm)) => vm,
            Some(None) => self
                .verification_method
                .iter()
                .find(|vm| self.absolute(&vm.id) == vm_id)
                .ok_or_else(|| DidError::BadDocument {
                    did: self.id.clone(),
                    reason: format!("assertionMethod names {vm_id}, which is not defined"),
                })?,
        };
        let bad = |reason: String| DidError::BadDocument {
            did: self.id.clone(),
            reason,
        };
        if let Some(jwk) = &vm.public_key_jwk {
            PublicKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))
        } else if let Some(mb) = &vm.public_key_multibase {
            key::decode_multibase_key(mb).map_err(|e| bad(e.to_string()))
        } else {
            Err(bad(format!(
                "{vm_id} has neither publicKeyJwk nor publicKeyMultibase"
            )))
        }
    }
}

/// The DID part of a DID URL (everything before `#`, `?` or `/` after the method-specific id).
#[must_use]
pub fn did_of(did_url: &str) -> &str {
    let end = did_url.find(['#', '?']).unwrap_or(did_url.len());
    &did_url[..end]
}

/// Checks the generic DID syntax `did:<method>:<id>` and returns the method.
pub fn method_of(did: &str) -> Result<&str, DidError> {
    let rest = did
        .strip_prefix("did:")
        .ok_or_else(|| DidError::Invalid(did.to_owned()))?;
    let (method, id) = rest
        .split_once(':')
        .ok_or_else(|| DidError::Invalid(did.to_owned()))?;
    let method_ok = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let id_ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:%".contains(&b));
    if method_ok && id_ok {
        Ok(method)
    } else {
        Err(DidError::Invalid(did.to_owned()))
    }
}

/// Settings of the resolver.
#[derive(Debug, Clone)]
pub struct ResolverSettings {
    /// Directory of static DID documents (`*.json`), if any.
    pub did_dir: Option<std::path::PathBuf>,
    /// How long a resolved `did:web` document is cached.
    pub cache_ttl: Duration,
    /// `did:web` fetch limits and dangerous switches.
    pub web: web::WebSettings,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            did_dir: None,
            cache_ttl: Duration::from_secs(300),
            web: web::WebSettings::default(),
        }
    }
}

/// The one DID resolver: dispatch by method, one moka cache in front of all of them.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<ResolverInner>,
}

struct ResolverInner {
    statics: static_dir::StaticDocuments,
    web: web::WebResolver,
    cache: moka::future::Cache<String, Arc<DidDocument>>,
}

impl Resolver {
    /// Builds the resolver; reads the static directory now (a bad document there is an error).
    pub fn new(settings: &ResolverSettings) -> Result<Self, DidError> {
        let statics = match &settings.did_dir {
            Some(dir) => static_dir::StaticDocuments::load(dir)?,
            None => static_dir::StaticDocuments::default(),
        };
        Ok(Self {
            inner: Arc::new(ResolverInner {
                statics,
                web: web::WebResolver::new(settings.web.clone())?,
                cache: moka::future::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(settings.cache_ttl)
                    .build(),
            }),
        })
    }

    /// Resolves a DID to its document. Static documents win over every method, so an operator can
    /// pin a `did:web` document too.
    pub async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, DidError> {
        let method = method_of(did)?;
        if let Some(doc) = self.inner.statics.get(did) {
            return Ok(doc);
        }
        if let Some(doc) = self.inner.cache.get(did).await {
            return Ok(doc);
        }
        let doc = match method {
            "key" => Arc::new(key::resolve(did)?),
            "web" => Arc::new(self.inner.web.resolve(did).await?),
            "nuts" => {
                return Err(DidError::Unresolvable {
                    did: did.to_owned(),
                    reason: "no static DID document for it in the DID directory (--did-dir)".into(),
                })
            }
            other => return Err(DidError::UnsupportedMethod(other.to_owned())),
        };
        self.inner.cache.insert(did.to_owned(), doc.clone()).await;
        Ok(doc)
    }

    /// Resolves the key of an absolute verification method id that must be an assertionMethod.
    pub async fn assertion_key(&self, vm_id: &str) -> Result<PublicKey, DidError> {
        let doc = self.resolve(did_of(vm_id)).await?;
        doc.assertion_key(vm_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_syntax() {
        assert_eq!(method_of("did:key:z6Mk").unwrap(), "key");
        assert_eq!(method_of("did:web:example.com%3A8443:a").unwrap(), "web");
        for bad in [
            "did:",
            "did:key",
            "did:KEY:x",
            "did:key:",
            "key:x",
            "did:key:a b",
            "did:key:a/b",
        ] {
            assert!(method_of(bad).is_err(), "{bad}");
        }
        assert_eq!(did_of("did:nuts:abc#key-1"), "did:nuts:abc");
    }

    #[test]
    fn relative_ids_resolve_against_the_document() {
        let (key, _) = crate::keys::SigningKey::generate(crate::keys::KeyType::P256).unwrap();
        let mut doc = DidDocument::single_key("did:nuts:abc", "k1", &key.public_key());
        doc.verification_method[0].id = "#k1".into();
        doc.assertion_method = vec![MethodRef::Reference("#k1".into())];
        assert_eq!(
            doc.assertion_key("did:nuts:abc#k1").unwrap(),
            key.public_key()
        );
        assert_eq!(
            doc.assertion_key("did:nuts:abc#k2"),
            Err(DidError::NotAssertionMethod("did:nuts:abc#k2".into()))
        );
        doc.assertion_method.clear();
        assert!(matches!(
            doc.assertion_key("did:nuts:abc#k1"),
            Err(DidError::NotAssertionMethod(_))
        ));
    }
}
