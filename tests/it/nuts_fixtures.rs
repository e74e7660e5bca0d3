//! nuts-node's own test credentials (read from `../shared`, never copied): `--proof-only`
//! accepts them given a static DID document for their issuer, every single-byte change to a
//! signed value breaks them, and the full profile refuses them with the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use poortwachter::clock::SystemClock;
use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::verify::{Mode, NoRevocations, Verifier};
use poortwachter::did::{Resolver, ResolverSettings};
use poortwachter::policy::PolicySet;
use serde_json::{json, Value};

use super::support::{shared_testsuite, Instance};

const FIXTURES: [&str; 2] = ["authcred_001.ldjson", "orgcred_001.ldjson"];

/// Writes one static DID document per fixture issuer holding the test key as `<issuer>#key-id`.
fn did_dir(suite: &Path, into: &Path) -> PathBuf {
    let dir = into.join("dids");
    std::fs::create_dir_all(&dir).unwrap();
    let mut jwk: Value =
        serde_json::from_str(&std::fs::read_to_string(suite.join("public_key.jwk.json")).unwrap())
            .unwrap();
    for k in ["kid", "alg", "use"] {
        jwk.as_object_mut().unwrap().remove(k);
    }
    for (i, f) in FIXTURES.iter().enumerate() {
        let cred: Value =
            serde_json::from_str(&std::fs::read_to_string(suite.join(f)).unwrap()).unwrap();
        let issuer = cred["issuer"].as_str().unwrap();
        let doc = json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": issuer,
            "verificationMethod": [{"id": format!("{issuer}#key-id"), "type": "JsonWebKey2020", "controller": issuer, "publicKeyJwk": jwk}],
            "assertionMethod": [format!("{issuer}#key-id")]
        });
        std::fs::write(dir.join(format!("issuer{i}.json")), doc.to_string()).unwrap();
    }
    dir
}

#[test]
fn proof_only_accepts_nuts_node_fixtures_and_full_profile_refuses_them() {
    let Some(suite) = shared_testsuite() else {
        return;
    };
    let inst = Instance::new();
    let dids = did_dir(&suite, inst.dir.path());
    let dids = dids.to_str().unwrap();
    for f in FIXTURES {
        let file = suite.join(f);
        let file = file.to_str().unwrap();
        let (code, out, err) = inst.run(&[
            "--did-dir",
            dids,
            "credential",
            "verify",
            "--proof-only",
            file,
        ]);
        assert_eq!((code, out.as_str()), (0, "valid\n"), "{f}: {err}");
    }
    let auth = suite.join("authcred_001.ldjson");
    let (code, out, _) = inst.run(&[
        "--did-dir",
        dids,
        "credential",
        "verify",
        auth.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(out, "invalid: credentialSubject.subject is missing: an authorization credential needs a BSN subject\n");
    let org = suite.join("orgcred_001.ldjson");
    let (code, out, _) = inst.run(&[
        "--did-dir",
        dids,
        "credential",
        "verify",
        org.to_str().unwrap(),
    ]);
    assert_eq!(
        (code, out.as_str()),
        (1, "invalid: not a NutsAuthorizationCredential\n")
    );

    // Without the static DID document the issuer (did:nuts) cannot be resolved.
    let (code, out, _) = inst.run(&[
        "credential",
        "verify",
        "--proof-only",
        auth.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(out.starts_with("invalid: cannot resolve did:nuts:GvkzxsezHvEc8nGhgz6Xo3jbqkHwswLmWw3CYtCm7hAW: no static DID document"), "{out}");
}

/// Every string leaf, with the JSON path to it.
fn string_leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::String(_) => out.push(path.clone()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                string_leaves(item, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                path.push(k.clone());
                string_leaves(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(items) => &mut items[k.parse::<usize>().unwrap()],
        Value::Object(map) => map.get_mut(k).unwrap(),
        _ => unreachable!(),
    })
}

#[tokio::test]
async fn any_single_byte_change_to_a_signed_value_is_refused() {
    let Some(suite) = shared_testsuite() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dids = did_dir(&suite, tmp.path());
    let resolver = Resolver::new(&ResolverSettings {
        did_dir: Some(dids),
        ..Default::default()
    })
    .unwrap();
    let verifier = Verifier::new(
        Arc::new(Contexts::embedded()),
        resolver,
        Arc::new(SystemClock),
        Arc::new(NoRevocations),
    );
    let policies = PolicySet::default();
    let mut checked = 0;
    for f in FIXTURES {
        let original: Value =
            serde_json::from_str(&std::fs::read_to_string(suite.join(f)).unwrap()).unwrap();
        verifier
            .verify(original.to_string().as_bytes(), Mode::ProofOnly, &policies)
            .await
            .unwrap_or_else(|e| panic!("{f} must verify: {e}"));
        let mut leaves = Vec::new();
        string_leaves(&original, &mut Vec::new(), &mut leaves);
        assert!(leaves.len() >= 12, "{f}: {} leaves", leaves.len());
        for leaf in leaves {
            let len = at(&mut original.clone(), &leaf).as_str().unwrap().len();
            for pos in [0, len / 2, len - 1] {
                let mut changed = original.clone();
                let target = at(&mut changed, &leaf);
                let mut bytes = target.as_str().unwrap().as_bytes().to_vec();
                // Flip to another printable ASCII character.
                bytes[pos] = if bytes[pos] == b'a' {
                    b'b'
                } else if bytes[pos].is_ascii_alphanumeric() {
                    b'a'
                } else {
                    b'x'
                };
                *target = Value::String(String::from_utf8(bytes).unwrap());
                let result = verifier
                    .verify(changed.to_string().as_bytes(), Mode::ProofOnly, &policies)
                    .await;
                assert!(
                    result.is_err(),
                    "{f}: change at {}[{pos}] was accepted",
                    leaf.join(".")
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "checked {checked}");
}

#[test]
fn tampered_fixture_is_refused_by_the_cli_with_a_reason() {
    let Some(suite) = shared_testsuite() else {
        return;
    };
    let inst = Instance::new();
    let dids = did_dir(&suite, inst.dir.path());
    let text = std::fs::read_to_string(suite.join("authcred_001.ldjson")).unwrap();
    let tampered = inst.path("tampered.json");
    std::fs::write(&tampered, text.replace("eTransfer", "eTransfes")).unwrap();
    let (code, out, _) = inst.run(&[
        "--did-dir",
        dids.to_str().unwrap(),
        "credential",
        "verify",
        "--proof-only",
        tampered.to_str().unwrap(),
    ]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "invalid: invalid proof: signature does not verify with the issuer's key\n"
        )
    );
}
