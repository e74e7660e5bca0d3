//! `credentials-examples/` verifies exactly as its README says.

use super::support::{repo, Instance};

#[test]
fn credential_examples_verify_as_documented() {
    let inst = Instance::new();
    let dir = repo().join("credentials-examples");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for (file, proof_only, expected) in [
        ("valid-implied.json", false, "valid"),
        ("valid-explicit.json", false, "valid"),
        ("expired.json", false, "invalid: credential has expired"),
        ("expired.json", true, "invalid: credential has expired"),
        (
            "wrong-bsn.json",
            false,
            "invalid: credentialSubject.subject: the BSN fails the 11-check",
        ),
        ("wrong-bsn.json", true, "valid"),
        (
            "tampered.json",
            false,
            "invalid: invalid proof: signature does not verify with the issuer's key",
        ),
    ] {
        let path = dir.join(file);
        let mut args = vec!["credential", "verify", path.to_str().unwrap()];
        if proof_only {
            args.push("--proof-only");
        }
        let (code, out, err) = inst.run(&args);
        assert_eq!(
            out.trim(),
            expected,
            "{file} (proof_only={proof_only}): {err}"
        );
        assert_eq!(code, i32::from(expected != "valid"));
        assert!(
            readme.contains(&format!("`{expected}`")),
            "README documents {expected}"
        );
    }
}
