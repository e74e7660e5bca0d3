//! The command line: init, did, credential issue/verify/list/show/revoke, and every bad input
//! with its one-line reason, non-zero exit and unchanged store.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::proof;
use poortwachter::did;
use poortwachter::keys::{KeyType, SigningKey};

use super::support::Instance;

const PURPOSE: &str = "zorginzage-thuiszorgdossier-door-huisarts";

#[test]
fn init_prints_the_did_is_idempotent_and_protects_the_key() {
    let inst = Instance::new();
    let (code, out, _) = inst.run(&["init"]);
    assert_eq!(code, 0);
    let did = out.trim().to_owned();
    assert!(
        did.starts_with("did:key:zDn") && !did.contains('\n'),
        "{out:?}"
    );
    assert_eq!(
        inst.ok(&["init"]).trim(),
        did,
        "second init keeps the identity"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(inst.data_dir().join("keys/signing-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, _, err) = inst.run(&["init", "--key-type", "ed25519"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("already holds an identity") && err.contains("use --force"),
        "{err}"
    );
    assert!(inst.ok(&["did", "show"]).contains(&did));
    let replaced = inst.ok(&["init", "--key-type", "ed25519", "--force"]);
    assert!(replaced.trim().starts_with("did:key:z6Mk"), "{replaced}");
    let doc: Value = serde_json::from_str(&inst.ok(&["did", "show"])).unwrap();
    assert_eq!(doc["id"], replaced.trim());
}

#[test]
fn init_did_web_writes_the_document_to_publish() {
    let inst = Instance::new();
    let did = inst.ok(&[
        "init",
        "--did-method",
        "web",
        "--domain",
        "zorg.example.nl:8443/org",
    ]);
    assert_eq!(did.trim(), "did:web:zorg.example.nl%3A8443:org");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(inst.data_dir().join("did.json")).unwrap())
            .unwrap();
    assert_eq!(doc["id"], "did:web:zorg.example.nl%3A8443:org");
    let vm = doc["assertionMethod"][0].as_str().unwrap();
    assert!(vm.starts_with("did:web:zorg.example.nl%3A8443:org#"));
    assert_eq!(doc["verificationMethod"][0]["publicKeyJwk"]["crv"], "P-256");
    let (code, _, err) = Instance::new().run(&["init", "--did-method", "web"]);
    assert_eq!(
        (code, err.trim()),
        (1, "error: --did-method web needs --domain")
    );
    let (code, _, err) =
        Instance::new().run(&["init", "--did-method", "web", "--domain", "bad host!"]);
    assert_eq!(
        (code, err.trim()),
        (1, "error: invalid domain for did:web: bad host!")
    );
}

#[test]
fn did_resolve_key_and_refusals() {
    let inst = Instance::new();
    let did = "did:key:zDnaepZUQNAT7p3JXZKNiEP5yFRbG8PRcADYMrFaGwmBBxsF2";
    let doc: Value = serde_json::from_str(&inst.ok(&["did", "resolve", did])).unwrap();
    assert_eq!(doc["id"], did);
    assert_eq!(
        doc["verificationMethod"][0]["publicKeyJwk"]["x"],
        "ZoS_Grh0lkKnW3ZO_NOEzq3kfIP6TYzsq3ldvJPEoK0"
    );
    let (code, _, err) = inst.run(&["did", "resolve", "did:example:123"]);
    assert_eq!((code, err.trim()), (1, "error: unsupported DID method \"example\" (supported: key, web, and static documents from the DID directory)"));
    let (code, _, err) = inst.run(&["did", "resolve", "not-a-did"]);
    assert_eq!((code, err.trim()), (1, "error: not a valid DID: not-a-did"));
    let (code, _, err) = inst.run(&["did", "resolve", "did:nuts:abc"]);
    assert_eq!((code, err.trim()), (1, "error: cannot resolve did:nuts:abc: no static DID document for it in the DID directory (--did-dir)"));
    let (code, _, err) = inst.run(&["did", "resolve", "did:web:10.0.0.1"]);
    assert_eq!(code, 1);
    assert!(err.contains("resolves to no public address"), "{err}");
}

fn list_count(inst: &Instance) -> usize {
    inst.ok(&["credential", "list", "--json"]).lines().count()
}

#[test]
fn issue_list_show_revoke_verify() {
    let inst = Instance::new();
    inst.ok(&["init"]);
    let (id1, cred1) = inst.issue(
        "did:web:huisarts.example.nl",
        "999999990",
        "implied",
        Some("2030-01-31"),
    );
    let (id2, _) = inst.issue(
        "did:web:andere-huisarts.example.nl",
        "123456782",
        "explicit",
        None,
    );
    let file = inst.path("c1.json");
    std::fs::write(&file, &cred1).unwrap();
    let file = file.to_str().unwrap();
    assert_eq!(inst.ok(&["credential", "verify", file]), "valid\n");

    let v: Value = serde_json::from_str(&cred1).unwrap();
    assert_eq!(
        v["credentialSubject"]["subject"],
        "urn:oid:2.16.840.1.113883.2.4.6.3:999999990"
    );
    assert_eq!(
        v["credentialSubject"]["legalBase"]["consentType"],
        "implied"
    );
    assert_eq!(v["expirationDate"], "2030-01-31T23:59:59Z");
    assert!(id1.starts_with(&format!("{}#", v["issuer"].as_str().unwrap())));

    let by = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["credential", "list", "--json"];
        a.extend_from_slice(args);
        inst.ok(&a)
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(by(&[]).len(), 2);
    assert_eq!(
        by(&["--subject-did", "did:web:huisarts.example.nl"]),
        vec![id1.clone()]
    );
    assert_eq!(by(&["--bsn", "123456782"]), vec![id2.clone()]);
    assert_eq!(by(&["--purpose", PURPOSE]).len(), 2);
    assert_eq!(by(&["--purpose", "other"]).len(), 0);
    assert_eq!(by(&["--status", "active"]).len(), 2);

    let revoked = inst.ok(&[
        "credential",
        "revoke",
        &id1,
        "--reason",
        "consent withdrawn",
    ]);
    assert_eq!(revoked.trim(), format!("revoked: {id1}"));
    let again = inst.ok(&["credential", "revoke", &id1, "--reason", "other reason"]);
    assert_eq!(
        again.trim(),
        format!("already revoked: {id1} (reason: consent withdrawn)")
    );
    assert_eq!(by(&["--status", "revoked"]), vec![id1.clone()]);
    assert_eq!(by(&["--status", "active"]), vec![id2.clone()]);
    let shown: Value =
        serde_json::from_str(&inst.ok(&["credential", "show", &id1, "--json"])).unwrap();
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revocation"]["reason"], "consent withdrawn");
    assert_eq!(shown["credential"], v);

    let (code, out, _) = inst.run(&["credential", "verify", file]);
    assert_eq!(
        (code, out.as_str()),
        (1, "invalid: credential has been revoked\n")
    );

    let (code, _, err) = inst.run(&["credential", "show", "did:key:nope#1"]);
    assert_eq!((code, err.trim()), (1, "error: no credential with that id"));
    let (code, _, err) = inst.run(&["credential", "revoke", "did:key:nope#1", "--reason", "x"]);
    assert_eq!((code, err.trim()), (1, "error: no credential with that id"));
    let (code, _, err) = inst.run(&["credential", "revoke", &id2, "--reason", "  "]);
    assert_eq!(
        (code, err.trim()),
        (1, "error: reason: must be 1 to 1000 printable characters")
    );
    let (code, _, err) = inst.run(&["credential", "list", "--status", "gone"]);
    assert_eq!(
        (code, err.trim()),
        (1, "error: status: must be active, revoked or expired")
    );
    assert_eq!(
        by(&["--status", "active"]),
        vec![id2],
        "failed revoke changed nothing"
    );
}

#[test]
fn issue_refuses_bad_input_and_stores_nothing() {
    let inst = Instance::new();
    inst.ok(&["init"]);
    let base = [
        "credential",
        "issue",
        "--subject-did",
        "did:web:huisarts.example.nl",
        "--bsn",
        "999999990",
        "--purpose",
        PURPOSE,
        "--consent",
        "explicit",
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("--bsn", "123456780")],
            "error: bsn: the BSN fails the 11-check",
        ),
        (
            vec![("--bsn", "12345678A")],
            "error: bsn: a BSN has 9 digits",
        ),
        (
            vec![("--purpose", "eTransfer")],
            "error: no policy for purposeOfUse \"eTransfer\"",
        ),
        (
            vec![("--purpose", "a b<script>")],
            "error: no policy for purposeOfUse \"(unprintable)\"",
        ),
        (
            vec![("--purpose", "unknown-purpose")],
            "error: no policy for purposeOfUse \"unknown-purpose\"",
        ),
        (
            vec![("--consent", "maybe")],
            "error: consent: must be implied or explicit",
        ),
        (
            vec![("--subject-did", "huisarts")],
            "error: subject_did: not a valid DID",
        ),
        (
            vec![("--consent", "implied")],
            "error: expirationDate is required for implied consent under this policy",
        ),
        (
            vec![("--expires", "2020-01-01")],
            "error: malformed credential: expiration date is not in the future",
        ),
        (
            vec![("--expires", "tomorrow")],
            "error: expires: expected YYYY-MM-DD or an RFC 3339 date-time",
        ),
    ];
    for (changes, expected) in cases {
        let mut args: Vec<&str> = base.to_vec();
        for (flag, value) in &changes {
            if let Some(i) = args.iter().position(|a| a == flag) {
                args[i + 1] = value;
            } else {
                args.extend([*flag, *value]);
            }
        }
        let (code, out, err) = inst.run(&args);
        assert_eq!(
            (code, out.as_str(), err.trim()),
            (1, "", expected),
            "{changes:?}"
        );
        assert!(!err.contains("999999990"), "no BSN in errors");
    }
    assert_eq!(list_count(&inst), 0, "store unchanged");
    let (code, _, err) = Instance::new().run(&base);
    assert_eq!(code, 1);
    assert!(err.contains("run `poortwachter init` first"), "{err}");
}

/// Signs a credential with a fresh did:key, after `edit` changed it (so that the proof is valid
/// and the content is what the test wants).
fn signed(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let (key, _) = SigningKey::generate(KeyType::P256).unwrap();
    let did = did::key::did_for(&key.public_key());
    let vm = did::key::verification_method_id(&did);
    let mut c = json!({
        "@context": ["https://www.w3.org/2018/credentials/v1", "https://nuts.nl/credentials/v1", "https://w3id.org/poortwachter/legalbase/v1", "https://w3c-ccg.github.io/lds-jws2020/contexts/lds-jws2020-v1.json"],
        "id": format!("{did}#cred-1"),
        "type": ["VerifiableCredential", "NutsAuthorizationCredential"],
        "issuer": did,
        "issuanceDate": "2026-01-01T00:00:00Z",
        "expirationDate": "2035-01-01T00:00:00Z",
        "credentialSubject": {
            "id": "did:web:huisarts.example.nl",
            "purposeOfUse": PURPOSE,
            "subject": "urn:oid:2.16.840.1.113883.2.4.6.3:999999990",
            "legalBase": {"consentType": "implied"}
        }
    });
    let map = c.as_object_mut().unwrap();
    edit(map);
    proof::sign(
        &Contexts::embedded(),
        map.clone(),
        &key,
        &vm,
        OffsetDateTime::now_utc(),
    )
    .unwrap()
    .to_string()
}

#[test]
fn verify_refuses_bad_credentials_with_one_line_reasons() {
    let inst = Instance::new();
    inst.ok(&["init"]);
    let other = Instance::new();
    other.ok(&["init"]);
    let other_did = other.ok(&["did", "show"]);
    let other_did = serde_json::from_str::<Value>(&other_did).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, good) = inst.issue(
        "did:web:huisarts.example.nl",
        "999999990",
        "implied",
        Some("2030-01-31"),
    );
    let our_did = serde_json::from_str::<Value>(&good).unwrap()["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    let valid_signed = signed(|_| {});

    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{\"id\": ".into(), "invalid: malformed credential: not valid JSON (line 1, column 7)"),
        ("not an object", "[1,2]".into(), "invalid: malformed credential: not a JSON object"),
        ("oversized", format!("{{\"x\":\"{}\"}}", "a".repeat(70_000)), "invalid: credential is larger than 65536 bytes"),
        ("unknown DID method", good.replace(&our_did, "did:example:123"), "invalid: unsupported DID method \"example\" (supported: key, web, and static documents from the DID directory)"),
        ("unresolvable DID", good.replace(&our_did, "did:nuts:GvkzxsezHvEc8nGhgz6Xo3jbqkHwswLmWw3CYtCm7hAW"), "invalid: cannot resolve did:nuts:GvkzxsezHvEc8nGhgz6Xo3jbqkHwswLmWw3CYtCm7hAW: no static DID document for it in the DID directory (--did-dir)"),
        ("wrong key", good.replace(our_did.trim_start_matches("did:key:"), other_did.trim_start_matches("did:key:")), "invalid: invalid proof: signature does not verify with the issuer's key"),
        ("tampered BSN", good.replace("999999990", "123456782"), "invalid: invalid proof: signature does not verify with the issuer's key"),
        ("tampered purpose", good.replace("\"implied\"", "\"explicit\""), "invalid: invalid proof: signature does not verify with the issuer's key"),
        ("undefined term", good.replace("\"purposeOfUse\"", "\"nietGedefinieerd\": \"x\", \"purposeOfUse\""), "invalid: JSON-LD expansion failed: "),
        ("invalid BSN", signed(|c| { c["credentialSubject"]["subject"] = json!("urn:oid:2.16.840.1.113883.2.4.6.3:123456780"); }), "invalid: credentialSubject.subject: the BSN fails the 11-check"),
        ("no BSN oid", signed(|c| { c["credentialSubject"]["subject"] = json!("urn:oid:2.16.840.1.113883.2.4.6.1:999999990"); }), "invalid: credentialSubject.subject: subject is not urn:oid:2.16.840.1.113883.2.4.6.3:<BSN>"),
        ("expired", signed(|c| { c["expirationDate"] = json!("2025-01-01T00:00:00Z"); }), "invalid: credential has expired"),
        ("issued in the future", signed(|c| { c["issuanceDate"] = json!("2099-01-01T00:00:00Z"); }), "invalid: credential is not valid yet (issuanceDate is in the future)"),
        ("two subjects", signed(|c| { let s = c["credentialSubject"].clone(); c["credentialSubject"] = json!([s.clone(), s]); }), "invalid: credential must have exactly one credentialSubject, found 2"),
        ("id of another DID", signed(|c| { c["id"] = json!("did:web:elsewhere.example#1"); }), "invalid: credential id does not start with the issuer DID"),
        ("unknown purpose", signed(|c| { c["credentialSubject"]["purposeOfUse"] = json!("eTransfer"); }), "invalid: no policy for purposeOfUse \"eTransfer\""),
        ("no consent type", signed(|c| { c["credentialSubject"].as_object_mut().unwrap().remove("legalBase"); }), "invalid: credentialSubject.legalBase.consentType is missing"),
        ("implied without end date", signed(|c| { c.remove("expirationDate"); }), "invalid: expirationDate is required for implied consent under this policy"),
        ("control character", good.replace("\"implied\"", "\"imp\\tlied\""), "invalid: JSON-LD string literal contains a control character (U+0009), which is not supported"),
        ("percent-encoding not UTF-8", good.replace("\"implied\"", "\"imp%C3lied\""), "invalid: JSON-LD string contains a percent-encoded sequence that is not UTF-8"),
    ];
    for (name, text, expected) in cases {
        let file = inst.path("case.json");
        std::fs::write(&file, &text).unwrap();
        let (code, out, _) = inst.run(&["credential", "verify", file.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(
            out.starts_with(expected) && out.lines().count() == 1,
            "{name}: {out}"
        );
        assert!(!out.contains("999999990"), "{name}: no BSN in the reason");
    }
    let file = inst.path("valid.json");
    std::fs::write(&file, valid_signed).unwrap();
    assert_eq!(
        inst.ok(&["credential", "verify", file.to_str().unwrap()]),
        "valid\n"
    );
    let (code, out, _) = inst.run(&["credential", "verify", "--json", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["valid"], true);
    assert_eq!(list_count(&inst), 1, "verifying stores nothing");
}

#[test]
fn config_errors_name_origin_key_and_reason() {
    let inst = Instance::with_config("surprise = true");
    let (code, _, err) = inst.run(&["did", "show"]);
    assert_eq!(code, 1);
    let cfg = inst.path("config.toml");
    assert!(
        err.trim().starts_with(&format!(
            "error: {}:6: surprise: unknown field `surprise`",
            cfg.display()
        )),
        "{err}"
    );

    let inst = Instance::new();
    let out = inst
        .command()
        .args(["serve"])
        .env("POORTWACHTER_PUBLIC_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "error: POORTWACHTER_PUBLIC_ADDR: public_addr: \"not-an-address\" is not an address like 127.0.0.1:8081");
    let out = inst
        .command()
        .args(["serve", "--public-addr", "also-bad"])
        .env("POORTWACHTER_PUBLIC_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: --public-addr: public_addr: \"also-bad\" is not an address like 127.0.0.1:8081"
    );
    let (code, _, err) = inst.run(&["--database-url", "mysql://x", "credential", "list"]);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "error: --database-url: database_url: must start with sqlite: or postgres://"
        )
    );
}

#[test]
fn bad_policy_file_stops_startup_with_file_line_reason() {
    let inst = Instance::new();
    let dir = inst.path("policies");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("zorginzage-x.toml"),
        "[token]\nlifetime_seconds = 300\nrequire_user_identity = true\nbogus = 1\n",
    )
    .unwrap();
    let out = inst
        .command()
        .args(["--policies-dir", dir.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: {}:4: unknown field `bogus`",
        dir.join("zorginzage-x.toml").display()
    );
    assert!(err.trim().starts_with(&expected), "{err}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let inst = Instance::new();
    for cmd in [
        &["init"][..],
        &["serve"],
        &["did"],
        &["did", "resolve"],
        &["credential"],
        &["credential", "issue"],
        &["credential", "verify"],
        &["credential", "list"],
        &["credential", "show"],
        &["credential", "revoke"],
        &["credential", "import"],
        &["credential", "remove-held"],
        &["egress"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = inst.ok(&args);
        assert!(
            out.contains("Example"),
            "{cmd:?} --help has no example:\n{out}"
        );
    }
}
