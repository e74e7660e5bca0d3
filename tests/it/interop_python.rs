//! Credentials poortwachter issues verify under an independent implementation of the same
//! algorithm: `tests/interop/verify_credential.py` (pyld + cryptography, sharing nothing with the
//! Rust signer but the spec), with nuts-node's own copies of the contexts.

use std::process::Command;

use super::support::{repo, shared_testsuite, Instance};

/// Whether python3 with pyld and cryptography is available. In CI it must be.
fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyld, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with pyld and cryptography (.ci/run installs them)"
        );
        eprintln!("SKIPPED: python3 with pyld + cryptography not installed (pip install pyld cryptography)");
    }
    ok
}

fn python_verify(
    suite: &std::path::Path,
    did_doc: &std::path::Path,
    credential: &std::path::Path,
) -> (i32, String) {
    let out = Command::new("python3")
        .arg(repo().join("tests/interop/verify_credential.py"))
        .arg("--shared-dir")
        .arg(suite)
        .arg("--contexts-dir")
        .arg(repo().join("contexts"))
        .arg("--did-document")
        .arg(did_doc)
        .arg(credential)
        .output()
        .expect("run python3");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[test]
fn issued_credentials_verify_with_pyld() {
    let Some(suite) = shared_testsuite() else {
        return;
    };
    if !python_ready() {
        return;
    }
    for key_type in ["p256", "ed25519"] {
        let inst = Instance::new();
        inst.ok(&["init", "--key-type", key_type]);
        let did_doc = inst.data_dir().join("did.json");
        let (_, implied) = inst.issue(
            "did:web:huisarts.example.nl",
            "999999990",
            "implied",
            Some("2030-01-31"),
        );
        let (_, explicit) =
            inst.issue("did:web:huisarts.example.nl", "123456782", "explicit", None);
        for (name, text) in [("implied", &implied), ("explicit", &explicit)] {
            let file = inst.path(&format!("{name}.json"));
            std::fs::write(&file, text).unwrap();
            assert_eq!(
                python_verify(&suite, &did_doc, &file),
                (0, "valid".to_owned()),
                "{key_type} {name}"
            );
            // And the independent verifier is not a rubber stamp: a changed BSN fails there too.
            let tampered = inst.path(&format!("{name}-tampered.json"));
            let changed = text
                .replace("999999990", "111222333")
                .replace("123456782", "111222333");
            assert_ne!(&changed, text);
            std::fs::write(&tampered, changed).unwrap();
            let (code, out) = python_verify(&suite, &did_doc, &tampered);
            assert_eq!(code, 1, "{key_type} {name}: {out}");
            assert!(out.starts_with("invalid:"), "{out}");
        }
    }
}

#[test]
fn pyld_verifier_accepts_the_nuts_node_fixture_it_is_calibrated_on() {
    let Some(suite) = shared_testsuite() else {
        return;
    };
    if !python_ready() {
        return;
    }
    let out = Command::new("python3")
        .arg(repo().join("tests/interop/verify_credential.py"))
        .args(["--shared-dir"])
        .arg(&suite)
        .arg("--contexts-dir")
        .arg(repo().join("contexts"))
        .arg("--jwk")
        .arg(suite.join("public_key.jwk.json"))
        .arg(suite.join("authcred_001.ldjson"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");
}
