//! DIDs, DID URLs, multibase keys, BSNs, dates and resource grants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poortwachter::bsn::Bsn;
use poortwachter::credential::proof;
use poortwachter::did;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = did::method_of(&s);
    let _ = did::web::location(&s);
    let _ = did::key::resolve(&s);
    let _ = did::key::decode_multibase_key(&s);
    let _ = Bsn::parse(&s);
    let _ = Bsn::from_urn(&s);
    let _ = proof::absolute_verification_method("did:key:zabc", &s);
    let _ = poortwachter::admin::parse_expires(&s);
    let _ = poortwachter::admin::parse_resource(&s);
});
