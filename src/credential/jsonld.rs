//! Strict JSON-LD expansion and URDNA2015 canonicalisation with embedded contexts.
//!
//! This is the half of the `JsonWebSignature2020` proof that nuts-node computes with json-gold:
//! expand the document (an undefined term is an error, never silently dropped), turn it into RDF,
//! canonicalise with URDNA2015 and hash the N-Quads with SHA-256.
//!
//! Contexts are never fetched: the W3C credentials v1 and the lds-jws2020 v1 contexts come from
//! the `ssi-contexts` crate, the Nuts v1 context and poortwachter's `legalBase` context are our own
//! files in `contexts/` (the Nuts one written from its published term table). An unknown context
//! URL fails expansion.
//!
//! Known differences with nuts-node, documented in ARCHITECTURE.md: the `ssi-contexts` copy of
//! lds-jws2020 also defines `privateKeyJwk` and a few extra proof purposes; string literals with
//! control characters (TAB etc.) are refused because our N-Quads writer escapes them differently.

use std::collections::HashMap;

use std::sync::Arc;

use iref::IriBuf;
use json_ld::syntax::TryFromJson as _;
use json_ld::{Expand as _, Process as _, RemoteDocument};
use rdf_types::{generator, BlankIdBuf};
use sha2::{Digest, Sha256};

/// A processed active context (the result of processing a document's `@context`).
type ActiveContext = json_ld::Context<IriBuf, BlankIdBuf>;

/// URL of the W3C Verifiable Credentials v1 context.
pub const W3C_CREDENTIALS_V1: &str = "https://www.w3.org/2018/credentials/v1";
/// URL of the Nuts credentials v1 context.
pub const NUTS_V1: &str = "https://nuts.nl/credentials/v1";
/// URL of the JsonWebSignature2020 context (the one nuts-node uses).
pub const LDS_JWS2020_V1: &str =
    "https://w3c-ccg.github.io/lds-jws2020/contexts/lds-jws2020-v1.json";
/// URL of poortwachter's own context that defines `legalBase` (see DESIGN.md).
pub const LEGALBASE_V1: &str = "https://w3id.org/poortwachter/legalbase/v1";

/// The Nuts v1 context, written from the term table of nuts-node's `nuts.ldjson`.
pub const NUTS_V1_DOCUMENT: &str = include_str!("../../contexts/nuts-v1.jsonld");
/// poortwachter's `legalBase` context.
pub const LEGALBASE_V1_DOCUMENT: &str = include_str!("../../contexts/legalbase-v1.jsonld");

/// Why a document could not be canonicalised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonLdError {
    /// Expansion failed: an undefined term, an unknown context, an invalid value.
    #[error("JSON-LD expansion failed: {0}")]
    Expansion(String),
    /// Arrays and objects nested deeper than [`MAX_DEPTH`]: expansion recurses once per level
    /// and would overflow a worker thread's stack long before serde_json's limit of 128.
    #[error("JSON-LD document is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A string holds a control character that canonical N-Quads cannot carry faithfully.
    #[error(
        "JSON-LD string literal contains a control character (U+{0:04X}), which is not supported"
    )]
    ControlCharacter(u32),
    /// A string holds a percent-encoded sequence that does not decode to UTF-8: IRIs
    /// percent-encode UTF-8 only, and the IRI library under json-ld (`pct-str` 2.0) panics on
    /// anything else when it hashes such an IRI (found by fuzzing `credential_proof`).
    #[error("JSON-LD string contains a percent-encoded sequence that is not UTF-8")]
    PercentEncoding,
}

/// Deepest nesting of arrays and objects a document may have (a credential needs about six;
/// expansion takes about 70 KiB of stack per level in a debug build, so 16 levels stay well within
/// a tokio worker's 2 MiB).
pub const MAX_DEPTH: usize = 16;

/// The embedded contexts, keyed by URL. Building it parses four small JSON documents; share one.
pub struct Contexts {
    map: HashMap<IriBuf, RemoteDocument>,
    /// Processed `@context` values, keyed by their JSON text. Processing the W3C, Nuts and
    /// JWS2020 contexts is most of the cost of expansion; documents share a handful of context
    /// lists, so they are processed once. Bounded: an attacker's permutations cannot grow it.
    processed: moka::sync::Cache<String, Arc<ActiveContext>>,
}

impl Contexts {
    /// Loads the embedded contexts.
    ///
    /// # Panics
    /// Only if an embedded context is not valid JSON, which a unit test rules out.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn embedded() -> Self {
        let entries = [
            (W3C_CREDENTIALS_V1, ssi_contexts::CREDENTIALS_V1),
            (LDS_JWS2020_V1, ssi_contexts::LDS_JWS2020_V1),
            (NUTS_V1, NUTS_V1_DOCUMENT),
            (LEGALBASE_V1, LEGALBASE_V1_DOCUMENT),
        ];
        let map = entries
            .into_iter()
            .map(|(url, text)| {
                let iri = IriBuf::new(url.to_owned()).expect("embedded context URL is an IRI");
                let json: serde_json::Value =
                    serde_json::from_str(text).expect("embedded context is JSON");
                let doc = RemoteDocument::new(
                    Some(iri.clone()),
                    None,
                    json_syntax::Value::from_serde_json(json),
                );
                (iri, doc)
            })
            .collect();
        Self {
            map,
            processed: moka::sync::Cache::new(256),
        }
    }

    fn strict() -> json_ld::expansion::Policy {
        json_ld::expansion::Policy {
            invalid: json_ld::expansion::Action::Reject,
            vocab: json_ld::expansion::Action::Keep,
            allow_undefined: false,
        }
    }

    /// The active context a document's top-level `@context` produces, from the cache.
    fn active_context(
        &self,
        local: Option<&serde_json::Value>,
    ) -> Result<Arc<ActiveContext>, JsonLdError> {
        let Some(local) = local else {
            return Ok(Arc::new(ActiveContext::new(None)));
        };
        let key = local.to_string();
        if let Some(ctx) = self.processed.get(&key) {
            return Ok(ctx);
        }
        let expansion = |e: String| JsonLdError::Expansion(e);
        let syntax = json_ld::syntax::context::Context::try_from_json(
            json_syntax::Value::from_serde_json(local.clone()),
        )
        .map_err(|e| expansion(e.to_string()))?;
        let options = json_ld::context_processing::Options {
            vocab: json_ld::expansion::Action::Keep,
            ..Default::default()
        };
        let processed = pollster::block_on(syntax.process_full(
            &mut (),
            &ActiveContext::new(None),
            &self.map,
            None,
            options,
            (),
        ))
        .map_err(|e| expansion(e.to_string()))?
        .into_processed();
        let processed = Arc::new(processed);
        self.processed.insert(key, processed.clone());
        Ok(processed)
    }

    /// Expands `document` strictly, canonicalises it with URDNA2015 and returns the SHA-256 of the
    /// canonical N-Quads.
    pub fn canonical_hash(&self, document: &serde_json::Value) -> Result<[u8; 32], JsonLdError> {
        let nquads = self.canonical_nquads(document)?;
        Ok(Sha256::digest(nquads.as_bytes()).into())
    }

    /// The URDNA2015 canonical N-Quads of `document` (expanded strictly, no base IRI).
    pub fn canonical_nquads(&self, document: &serde_json::Value) -> Result<String, JsonLdError> {
        refuse_deep_nesting(document, 0)?;
        refuse_unsupported_strings(document)?;
        // The top-level `@context` is processed once (cached) and becomes the initial active
        // context; the rest of the document is expanded against it. Contexts nested deeper are
        // processed as usual.
        let mut body = document.clone();
        let local = body.as_object_mut().and_then(|m| m.remove("@context"));
        let active = self.active_context(local.as_ref())?;
        let options = json_ld::expansion::Options {
            policy: Self::strict(),
            ..Default::default()
        };
        let mut expanded =
            pollster::block_on(json_syntax::Value::from_serde_json(body).expand_full(
                &mut (),
                (*active).clone(),
                None,
                &self.map,
                options,
                (),
            ))
            .map_err(|e| JsonLdError::Expansion(e.to_string()))?;
        let mut generator = generator::Blank::new_with_prefix("b".to_owned());
        expanded.relabel_and_canonicalize_with(&mut (), &mut generator);
        let mut quad_generator = generator::Blank::new_with_prefix("q".to_owned());
        let quads: Vec<rdf_types::LexicalQuad> =
            json_ld::rdf::RdfQuads::rdf_quads(&expanded, &mut quad_generator, None)
                .cloned()
                .filter_map(|rdf_types::Quad(s, p, o, g)| {
                    let p = p.into_iri()?;
                    Some(rdf_types::Quad(s, p, o, g))
                })
                .collect();
        Ok(
            ssi_rdf::urdna2015::normalize(quads.iter().map(rdf_types::Quad::as_lexical_quad_ref))
                .into_nquads(),
        )
    }
}

/// Refuses documents nested deeper than [`MAX_DEPTH`].
fn refuse_deep_nesting(value: &serde_json::Value, depth: usize) -> Result<(), JsonLdError> {
    let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
        serde_json::Value::Array(items) => Box::new(items.iter()),
        serde_json::Value::Object(map) => Box::new(map.values()),
        _ => return Ok(()),
    };
    if depth >= MAX_DEPTH {
        return Err(JsonLdError::TooDeep);
    }
    children
        .into_iter()
        .try_for_each(|v| refuse_deep_nesting(v, depth + 1))
}

/// Refuses strings (keys too) with a control character or a percent-encoded sequence that is
/// not UTF-8 (see [`JsonLdError::PercentEncoding`]).
fn refuse_unsupported_strings(value: &serde_json::Value) -> Result<(), JsonLdError> {
    let check = |s: &str| match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(JsonLdError::ControlCharacter(c as u32)),
        None if !percent_decodes_to_utf8(s) => Err(JsonLdError::PercentEncoding),
        None => Ok(()),
    };
    match value {
        serde_json::Value::String(s) => check(s),
        serde_json::Value::Array(items) => items.iter().try_for_each(refuse_unsupported_strings),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check(k)?;
            refuse_unsupported_strings(v)
        }),
        _ => Ok(()),
    }
}

/// Whether `s` with its `%XX` sequences decoded is UTF-8 (a `%` without two hex digits after
/// it stays as it is).
fn percent_decodes_to_utf8(s: &str) -> bool {
    !s.contains('%')
        || percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percent_encoding_must_decode_to_utf8() {
        assert!(percent_decodes_to_utf8("did:web:example.com%3A8443"));
        assert!(percent_decodes_to_utf8("https://x.example/caf%C3%A9"));
        assert!(percent_decodes_to_utf8("100% sure, %zz and a trailing %"));
        assert!(!percent_decodes_to_utf8("did:web:x%CbaE"));
        assert!(!percent_decodes_to_utf8("https://x.example/%C3"));
        assert!(!percent_decodes_to_utf8("%FF"));
    }

    #[test]
    fn a_non_utf8_percent_encoding_is_refused_before_expansion() {
        let contexts = Contexts::embedded();
        let doc = json!({
            "@context": [W3C_CREDENTIALS_V1, NUTS_V1],
            "type": ["VerifiableCredential", "NutsAuthorizationCredential"],
            "credentialSubject": {"id": "did:web:huisarts.example%CbaE"}
        });
        let err = contexts.canonical_nquads(&doc).unwrap_err();
        assert!(matches!(err, JsonLdError::PercentEncoding), "{err:?}");
        assert_eq!(
            err.to_string(),
            "JSON-LD string contains a percent-encoded sequence that is not UTF-8"
        );
    }

    #[test]
    fn undefined_term_fails_expansion() {
        let contexts = Contexts::embedded();
        let doc = json!({
            "@context": [W3C_CREDENTIALS_V1, NUTS_V1],
            "type": ["VerifiableCredential", "NutsAuthorizationCredential"],
            "credentialSubject": {"id": "did:example:a", "notATerm": "x"}
        });
        let err = contexts.canonical_nquads(&doc).unwrap_err();
        assert!(matches!(err, JsonLdError::Expansion(_)), "{err:?}");
    }

    #[test]
    fn unknown_context_fails_expansion() {
        let contexts = Contexts::embedded();
        let doc = json!({"@context": "https://example.com/ctx", "a": 1});
        assert!(matches!(
            contexts.canonical_nquads(&doc),
            Err(JsonLdError::Expansion(_))
        ));
    }

    #[test]
    fn legal_base_expands_with_own_context() {
        let contexts = Contexts::embedded();
        let doc = json!({
            "@context": [W3C_CREDENTIALS_V1, NUTS_V1, LEGALBASE_V1],
            "type": ["VerifiableCredential", "NutsAuthorizationCredential"],
            "credentialSubject": {
                "id": "did:example:a",
                "legalBase": {"consentType": "explicit", "evidence": {"b": 1, "a": "x"}}
            }
        });
        let nquads = contexts.canonical_nquads(&doc).unwrap();
        assert!(
            nquads.contains("<https://nuts.nl/credentials/v1#consentType> \"explicit\""),
            "{nquads}"
        );
        assert!(
            nquads.contains(
                r#""{\"a\":\"x\",\"b\":1}"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON>"#
            ),
            "{nquads}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_expansion() {
        let contexts = Contexts::embedded();
        let nested = |depth: usize| -> serde_json::Value {
            let text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            serde_json::from_str(&text).unwrap()
        };
        // The document object is level 1, credentialSubject level 2, the value from level 3 on.
        let doc = |depth| {
            json!({"@context": [W3C_CREDENTIALS_V1, NUTS_V1],
                   "type": ["VerifiableCredential", "NutsAuthorizationCredential"],
                   "credentialSubject": {"id": "did:example:a", "purposeOfUse": nested(depth)}})
        };
        assert_eq!(
            contexts.canonical_nquads(&doc(MAX_DEPTH - 1)),
            Err(JsonLdError::TooDeep)
        );
        // At the limit the document is expanded (on a thread with a tokio worker's 2 MiB stack).
        let at_limit = doc(MAX_DEPTH - 2);
        let result = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || contexts.canonical_nquads(&at_limit).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
        assert_ne!(result, Err(JsonLdError::TooDeep));
    }

    #[test]
    fn control_characters_are_refused() {
        let contexts = Contexts::embedded();
        let doc = json!({"@context": NUTS_V1, "id": "urn:x", "type": "a\tb"});
        assert_eq!(
            contexts.canonical_nquads(&doc),
            Err(JsonLdError::ControlCharacter(9))
        );
    }
}
