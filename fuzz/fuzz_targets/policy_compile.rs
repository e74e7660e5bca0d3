//! Policy file text → compiled policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poortwachter::policy::PolicySet;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PolicySet::compile("fuzz.toml", "zorginzage-fuzz", text);
    }
});
