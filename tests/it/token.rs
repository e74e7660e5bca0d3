//! The token endpoint, introspection and the requester CLI against a running custodian (the
//! real binary): the happy path, a grant made by PyJWT, every refusal with its exact status and
//! OAuth error, replay, rate limiting, and revocation ending live tokens.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

use poortwachter::keys::{KeyType, SigningKey};
use poortwachter::{did, jose};

use super::support::{enc, repo, setup, within, Instance, AUD, PUBLIC_URL, PURPOSE};

fn oauth(code: &str, description: &str) -> Value {
    json!({"error": code, "error_description": description})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_cli_gets_a_token_that_introspects_and_dies_with_its_credential() {
    let s = setup("");
    let cred = s.credential_file.to_str().unwrap();
    let out = s.requester.ok(&[
        "token",
        "request",
        "--endpoint",
        &s.endpoint(),
        "--audience",
        AUD,
        "--custodian",
        &s.custodian_did,
        "--purpose",
        PURPOSE,
        "--credential",
        cred,
        "--uzi",
        "900012345",
        "--name",
        "Dr. A. Huisarts",
        "--role",
        "01.015",
        "--json",
    ]);
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 300);
    let token = answer["access_token"].as_str().unwrap().to_owned();
    assert_eq!(base64_len(&token), 32, "32 random bytes, base64url");

    let info = s.introspect(&token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["iss"], json!(s.custodian_did));
    assert_eq!(info["sub"], json!(s.requester_did));
    assert_eq!(info["service"], PURPOSE);
    assert_eq!(info["vcs"], json!([s.credential["id"]]));
    assert_eq!(
        info["subject"],
        "urn:oid:2.16.840.1.113883.2.4.6.3:999999990"
    );
    assert_eq!(info["uzi"], "900012345");
    assert_eq!(info["user_role"], "01.015");
    assert_eq!(
        info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(s.verify_status(&token).await, StatusCode::OK);
    assert_eq!(s.introspect("not-a-token").await, json!({"active": false}));
    assert_eq!(s.verify_status("not-a-token").await, StatusCode::FORBIDDEN);

    // The token is stored only as a hash.
    let db = std::fs::read(s.custodian.data_dir().join("poortwachter.db")).unwrap();
    let wal = std::fs::read(s.custodian.data_dir().join("poortwachter.db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    assert!(
        !db.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle),
        "token in the database"
    );

    // Revoking the credential ends the token at once.
    let id = s.credential["id"].as_str().unwrap();
    let r = reqwest::Client::new()
        .post(
            s.server
                .internal_url(&format!("/internal/credentials/{}/revoke", enc(id))),
        )
        .json(&json!({"reason": "toestemming ingetrokken"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.introspect(&token).await, json!({"active": false}));
    assert_eq!(s.verify_status(&token).await, StatusCode::FORBIDDEN);

    // And no new token is issued on it; the CLI exits 1 with the server's error.
    let (code, _, err) = s.requester.run(&[
        "token",
        "request",
        "--endpoint",
        &s.endpoint(),
        "--audience",
        AUD,
        "--custodian",
        &s.custodian_did,
        "--purpose",
        PURPOSE,
        "--credential",
        cred,
        "--uzi",
        "900012345",
        "--name",
        "Dr. A. Huisarts",
        "--role",
        "01.015",
    ]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "error: token request refused (400): invalid_grant: credential 0: credential has been revoked");
}

fn base64_len(token: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_grant_is_refused_with_its_own_error_and_stores_nothing() {
    let s = setup("");
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (other_key, _) = SigningKey::generate(KeyType::P256).unwrap();
    let other_did = did::key::did_for(&other_key.public_key());
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.{}",
            b64(&json!({"alg": alg, "kid": s.requester_kid})),
            b64(&s.claims()),
            if alg == "none" { "" } else { "c2lnbmF0dXJl" }
        )
    };
    let with = |k: &str, v: Value| {
        let mut c = s.claims();
        c[k] = v;
        s.grant(&c)
    };
    let without = |k: &str| {
        let mut c = s.claims();
        c.as_object_mut().unwrap().remove(k);
        s.grant(&c)
    };
    let another_custodian = Instance::new();
    another_custodian.ok(&["init"]);
    let (_, foreign) =
        another_custodian.issue(&s.requester_did, "999999990", "implied", Some("2031-06-30"));
    let foreign: Value = serde_json::from_str(&foreign).unwrap();
    let (_, for_other) = s.custodian.issue(
        "did:web:andere-huisarts.example.nl",
        "999999990",
        "implied",
        Some("2031-06-30"),
    );
    let for_other: Value = serde_json::from_str(&for_other).unwrap();
    let mut tampered = s.credential.clone();
    tampered["credentialSubject"]["subject"] = json!("urn:oid:2.16.840.1.113883.2.4.6.3:123456782");
    // %CB decodes to no UTF-8: the IRI library under json-ld panicked on such an IRI (fuzzing).
    let mut bad_percent = s.credential.clone();
    bad_percent["id"] = json!(format!(
        "{}#x%CBy",
        s.credential["issuer"].as_str().unwrap()
    ));
    let expired = s.custodian_signed(|c| {
        c["issuanceDate"] = json!("2024-01-01T00:00:00Z");
        c["expirationDate"] = json!("2025-01-01T00:00:00Z");
    });
    let not_stored = s.custodian_signed(|_| {});

    let cases: Vec<(&str, String, StatusCode, Value)> = vec![
        ("alg none", unsigned("none"), StatusCode::BAD_REQUEST, oauth("invalid_grant", "JWT alg \"none\" is not allowed (ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA)")),
        ("HS256", unsigned("HS256"), StatusCode::BAD_REQUEST, oauth("invalid_grant", "JWT alg \"HS256\" is not allowed (ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA)")),
        ("unknown alg", unsigned("XY999"), StatusCode::BAD_REQUEST, oauth("invalid_grant", "JWT alg \"XY999\" is not allowed (ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA)")),
        ("malformed JWT", "not.a.jwt.at-all".into(), StatusCode::BAD_REQUEST, oauth("invalid_grant", "assertion is not a well-formed JWT: expected three dot-separated parts")),
        ("kid of another DID", jose::sign(&s.claims(), &s.requester_key, &format!("{other_did}#k")).unwrap(), StatusCode::UNAUTHORIZED, oauth("invalid_client", "kid must be a DID URL of the iss DID")),
        ("kid not in assertionMethod", jose::sign(&s.claims(), &s.requester_key, &format!("{}#other", s.requester_did)).unwrap(), StatusCode::UNAUTHORIZED, oauth("invalid_client", &format!("cannot authenticate the grant signer: verification method {}#other is not an assertionMethod of its DID document", s.requester_did))),
        ("signed by another key", jose::sign(&s.claims(), &other_key, &s.requester_kid).unwrap(), StatusCode::UNAUTHORIZED, oauth("invalid_client", "grant signature does not verify with the kid's key")),
        ("wrong aud", with("aud", json!("https://elders.example.nl/n2n/auth/v1/accesstoken")), StatusCode::BAD_REQUEST, oauth("invalid_grant", "aud is not this token endpoint")),
        ("wrong sub", with("sub", json!(other_did)), StatusCode::BAD_REQUEST, oauth("invalid_grant", "sub is not a custodian of this token endpoint")),
        ("exp - iat > 5 s", { let mut c = s.claims(); c["iat"] = json!(now); c["exp"] = json!(now + 6); s.grant(&c) }, StatusCode::BAD_REQUEST, oauth("invalid_grant", "exp must be after iat and at most 5 s after it")),
        ("expired", { let mut c = s.claims(); c["iat"] = json!(now - 60); c["exp"] = json!(now - 56); s.grant(&c) }, StatusCode::BAD_REQUEST, oauth("invalid_grant", "grant has expired")),
        ("iat in the future", { let mut c = s.claims(); c["iat"] = json!(now + 60); c["exp"] = json!(now + 64); s.grant(&c) }, StatusCode::BAD_REQUEST, oauth("invalid_grant", "iat is in the future")),
        ("missing jti", without("jti"), StatusCode::BAD_REQUEST, oauth("invalid_grant", "jti is missing")),
        ("unknown purposeOfUse", with("purposeOfUse", json!("onbekend-doel")), StatusCode::BAD_REQUEST, oauth("invalid_scope", "purposeOfUse \"onbekend-doel\" is not supported by this custodian")),
        ("purpose mismatch", with("purposeOfUse", json!("zorginzage-test")), StatusCode::BAD_REQUEST, oauth("invalid_grant", "credential 0: its purposeOfUse differs from the grant's")),
        ("credential for another requester", with("vcs", json!([for_other])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "credential 0: credentialSubject.id is not the grant's iss (requester)")),
        ("credential of another issuer", with("vcs", json!([foreign])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "credential 0: its issuer is not the grant's sub (custodian)")),
        ("credential not in our store", with("vcs", json!([not_stored])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "credential 0: it was not issued by this custodian")),
        ("expired credential", with("vcs", json!([expired])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "credential 0: credential has expired")),
        ("tampered credential", with("vcs", json!([tampered])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "credential 0: invalid proof: signature does not verify with the issuer's key")),
        ("credential with a percent-encoding that is not UTF-8", with("vcs", json!([bad_percent])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "credential 0: JSON-LD string contains a percent-encoded sequence that is not UTF-8")),
        ("no credential", with("vcs", json!([])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "vcs must hold at least one credential")),
        ("vcs missing", without("vcs"), StatusCode::BAD_REQUEST, oauth("invalid_grant", "vcs is missing: a grant needs an authorization credential")),
        ("credential as a string", with("vcs", json!([s.credential.to_string()])), StatusCode::BAD_REQUEST, oauth("invalid_grant", "vcs must hold credentials as JSON objects")),
        ("usi missing where required", without("usi"), StatusCode::BAD_REQUEST, oauth("invalid_grant", "usi (user identity) is required for this purposeOfUse")),
        ("usi without uzi", with("usi", json!({"name": "x", "role": "y"})), StatusCode::BAD_REQUEST, oauth("invalid_grant", "usi: missing field `uzi`")),
        ("usi with a bad uzi", with("usi", json!({"uzi": "abc", "name": "x", "role": "y"})), StatusCode::BAD_REQUEST, oauth("invalid_grant", "usi: uzi must be a UZI number (digits)")),
    ];
    for (name, assertion, status, expected) in &cases {
        let (got_status, body) = s.post_grant(assertion).await;
        assert_eq!((got_status, &body), (*status, expected), "{name}");
        assert!(
            !body.to_string().contains("999999990"),
            "{name}: no BSN in the answer"
        );
    }

    // Request-level refusals.
    let c = reqwest::Client::new();
    let good = s.grant(&s.claims());
    let r = c
        .post(s.endpoint())
        .form(&[
            ("grant_type", "client_credentials"),
            ("assertion", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::BAD_REQUEST,
            oauth(
                "unsupported_grant_type",
                "grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer"
            )
        )
    );
    let r = c
        .post(s.endpoint())
        .form(&[("assertion", good.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::BAD_REQUEST,
            oauth("invalid_request", "grant_type is missing")
        )
    );
    let r = c
        .post(s.endpoint())
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::BAD_REQUEST,
            oauth("invalid_request", "assertion is missing")
        )
    );
    let r = c
        .post(s.endpoint())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", good.as_str()),
            ("scope", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::BAD_REQUEST,
            oauth("invalid_request", "unknown parameter \"scope\"")
        )
    );
    let r = c
        .post(s.endpoint())
        .header("content-type", "text/plain")
        .body(format!("grant_type=x&assertion={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::BAD_REQUEST,
            oauth(
                "invalid_request",
                "content type must be application/x-www-form-urlencoded or application/json"
            )
        )
    );
    let r = c
        .post(s.endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            oauth(
                "invalid_request",
                "request body is larger than 1048576 bytes"
            )
        )
    );
    let r = c.get(s.endpoint()).send().await.unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            oauth("invalid_request", "method not allowed")
        )
    );

    assert_eq!(s.token_count(), 0, "nothing stored for a refused grant");

    // A JSON body works too; the same jti a second time is a replay.
    let claims = s.claims();
    let grant = s.grant(&claims);
    let r = c.post(s.endpoint()).json(&json!({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": grant})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (status, body) = s.post_grant(&grant).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            oauth("invalid_grant", "jti has already been used")
        )
    );
    assert_eq!(s.token_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_requester_answers_429_with_retry_after() {
    let s = setup("rate_limit_per_second = 1\nrate_limit_burst = 2\n");
    for _ in 0..2 {
        assert_eq!(s.post_grant(&s.grant(&s.claims())).await.0, StatusCode::OK);
    }
    let r = reqwest::Client::new()
        .post(s.endpoint())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", s.grant(&s.claims()).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        oauth(
            "slow_down",
            "too many token requests for this requester; retry after 1 s"
        )
    );
    // How fast the bucket refills is the limiter's unit test (`oauth::ratelimit`, injected
    // instants); here the server lets the requester in again once it has, asked every few ms.
    let mut answers = Vec::new();
    let refilled = within(Duration::from_secs(5), async || {
        let status = s.post_grant(&s.grant(&s.claims())).await.0;
        answers.push(status);
        status == StatusCode::OK
    })
    .await;
    assert!(refilled.is_some(), "the bucket refills: {answers:?}");
    assert!(
        answers[..answers.len() - 1]
            .iter()
            .all(|a| *a == StatusCode::TOO_MANY_REQUESTS),
        "refused until then: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_built_with_pyjwt_is_accepted() {
    let ok = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with PyJWT (.ci/run installs it)"
        );
        eprintln!("SKIPPED: python3 with PyJWT + cryptography not installed (pip install pyjwt cryptography)");
        return;
    }
    let s = setup("");
    let out = Command::new("python3")
        .arg(repo().join("tests/interop/make_grant.py"))
        .arg("--key")
        .arg(s.requester.data_dir().join("keys/signing-key.pem"))
        .args([
            "--kid",
            &s.requester_kid,
            "--iss",
            &s.requester_did,
            "--sub",
            &s.custodian_did,
            "--aud",
            AUD,
            "--purpose",
            PURPOSE,
        ])
        .arg("--credential")
        .arg(&s.credential_file)
        .args([
            "--uzi",
            "900012345",
            "--name",
            "Dr. A. Huisarts",
            "--role",
            "01.015",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grant = String::from_utf8(out.stdout).unwrap();
    let (status, body) = s.post_grant(grant.trim()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        s.introspect(body["access_token"].as_str().unwrap()).await["active"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_metadata() {
    let s = setup("");
    let r = reqwest::get(
        s.server
            .public_url("/.well-known/oauth-authorization-server"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], PUBLIC_URL);
    assert_eq!(m["token_endpoint"], AUD);
    assert_eq!(
        m["grant_types_supported"],
        json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    assert!(!m["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("none")));
    // Introspection is internal only.
    let r = reqwest::Client::new()
        .post(
            s.server
                .public_url("/internal/auth/v1/accesstoken/introspect"),
        )
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "not on the public listener: a proxied request without a token"
    );
    let r = reqwest::Client::new()
        .post(
            s.server
                .internal_url("/internal/auth/v1/accesstoken/introspect"),
        )
        .form(&[("token", "x"), ("bogus", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json::<Value>().await.unwrap()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "unknown parameter (only token and token_type_hint)"})
        )
    );
}
