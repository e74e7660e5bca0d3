//! Credential bytes → parse → proof preparation (strict JSON-LD + URDNA2015). No IO.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::{proof, verify};

static CONTEXTS: OnceLock<Contexts> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let contexts = CONTEXTS.get_or_init(Contexts::embedded);
    if let Ok(credential) = verify::parse(data) {
        let issuer = credential.get("issuer").and_then(|i| i.as_str()).unwrap_or("did:key:z");
        let _ = proof::prepare(contexts, &credential, issuer);
        let _ = contexts.canonical_nquads(&serde_json::Value::Object(credential));
    }
});
