//! DIDs, DID URLs, multibase keys, BSNs, dates and resource grants.
#![no_main]

#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::identifiers(data));
