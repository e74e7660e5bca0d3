//! Regenerates `credentials-examples/`: an example issuer key (did:key), and credentials that
//! verify or fail for a documented reason. Run from the repository root:
//!
//! ```sh
//! cargo run --example credential_examples -- credentials-examples
//! ```
//!
//! The key is reused when `issuer-key.pem` exists, so the DID stays the same.

use std::path::{Path, PathBuf};

use poortwachter::bsn::Bsn;
use poortwachter::credential::issue::{issue, IssueRequest, Issuer};
use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::proof;
use poortwachter::did::{self, DidDocument};
use poortwachter::keys::{self, KeyType, SigningKey};
use poortwachter::policy::{ConsentType, PolicySet};
use serde_json::{json, Value};
use time::macros::datetime;

const PURPOSE: &str = "zorginzage-thuiszorgdossier-door-huisarts";
const REQUESTER: &str = "did:web:huisarts.example.nl";

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "credentials-examples".into()),
    );
    std::fs::create_dir_all(&out)?;
    let key_path = out.join("issuer-key.pem");
    let key = if key_path.exists() {
        SigningKey::load(&key_path)?
    } else {
        let (key, der) = SigningKey::generate(KeyType::P256)?;
        keys::write_private_key(&key_path, &der)?;
        key
    };
    let issuer_did = did::key::did_for(&key.public_key());
    let vm = did::key::verification_method_id(&issuer_did);
    let fragment = vm.split('#').nth(1).unwrap_or_default().to_owned();
    let doc = DidDocument::single_key(&issuer_did, &fragment, &key.public_key());
    write(&out.join("issuer-did.json"), &serde_json::to_value(&doc)?)?;

    let policies = PolicySet::load_dir(Path::new("policies"))?;
    let policy = policies
        .get(PURPOSE)
        .ok_or_else(|| anyhow::anyhow!("run from the repository root (policies/ not found)"))?;
    let contexts = Contexts::embedded();
    let issuer = Issuer {
        did: &issuer_did,
        verification_method: &vm,
        key: &key,
    };
    let request = |bsn: &str, consent, expires| IssueRequest {
        subject_did: REQUESTER.into(),
        bsn: Bsn::parse(bsn).expect("example BSN is valid"),
        purpose: PURPOSE.into(),
        consent,
        expires,
        resources: vec![],
    };
    let issued_at = datetime!(2026-11-01 09:00 UTC);

    let implied = issue(
        &contexts,
        &issuer,
        &request(
            "999999990",
            ConsentType::Implied,
            Some(datetime!(2035-12-31 23:59:59 UTC)),
        ),
        policy,
        issued_at,
    )?;
    write(&out.join("valid-implied.json"), &implied)?;
    let explicit = issue(
        &contexts,
        &issuer,
        &request("123456782", ConsentType::Explicit, None),
        policy,
        issued_at,
    )?;
    write(&out.join("valid-explicit.json"), &explicit)?;
    let expired = issue(
        &contexts,
        &issuer,
        &request(
            "999911120",
            ConsentType::Implied,
            Some(datetime!(2025-01-01 00:00 UTC)),
        ),
        policy,
        datetime!(2024-01-01 09:00 UTC),
    )?;
    write(&out.join("expired.json"), &expired)?;

    // A correctly signed credential whose subject fails the 11-check: only a buggy issuer makes these.
    let mut wrong = implied.as_object().cloned().unwrap_or_default();
    wrong.remove("proof");
    wrong["id"] = json!(format!("{issuer_did}#wrong-bsn"));
    wrong["credentialSubject"]["subject"] = json!("urn:oid:2.16.840.1.113883.2.4.6.3:123456780");
    write(
        &out.join("wrong-bsn.json"),
        &proof::sign(&contexts, wrong, &key, &vm, issued_at)?,
    )?;

    // The valid credential with another patient's BSN put in after signing.
    let mut tampered = implied.clone();
    tampered["credentialSubject"]["subject"] = json!("urn:oid:2.16.840.1.113883.2.4.6.3:111222333");
    write(&out.join("tampered.json"), &tampered)?;
    println!("{issuer_did}");
    Ok(())
}

fn write(path: &Path, value: &Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")?;
    Ok(())
}
