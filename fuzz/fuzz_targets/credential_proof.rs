//! Credential bytes → parse → proof preparation (strict JSON-LD + URDNA2015). No IO.
#![no_main]

#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::credential_proof(data));
