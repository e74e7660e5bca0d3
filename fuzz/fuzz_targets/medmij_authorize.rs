//! See `entries::medmij_authorize`.
#![no_main]

#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::medmij_authorize(data));
