//! The internal admin API of a running `serve` (the real binary on port 0): issue, list, get,
//! revoke, verify; every bad input with its exact status and message; a CLI revocation seen by
//! the running server within 1 s.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{enc, within, Instance};

const PURPOSE: &str = "zorginzage-thuiszorgdossier-door-huisarts";

async fn post_json(c: &reqwest::Client, url: &str, body: &Value) -> (StatusCode, Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post_raw(
    c: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let r = c
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn refusal(code: &str, description: &str) -> Value {
    json!({"error": code, "error_description": description})
}

#[tokio::test]
async fn admin_api_end_to_end() {
    let inst = Instance::new();
    let server = inst.serve();
    assert!(
        inst.data_dir().join("identity.json").exists(),
        "identity created on first start"
    );
    let c = reqwest::Client::new();
    let url = |p: &str| server.internal_url(p);

    assert_eq!(
        get(&c, &url("/health")).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        get(&c, &url("/ready")).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );

    let request = json!({"subject_did": "did:web:huisarts.example.nl", "bsn": "999999990", "purpose": PURPOSE, "consent": "implied", "expires": "2031-12-31"});
    let (status, credential) = post_json(&c, &url("/internal/credentials"), &request).await;
    assert_eq!(status, StatusCode::CREATED, "{credential}");
    let id = credential["id"].as_str().unwrap().to_owned();
    assert_eq!(
        credential["credentialSubject"]["subject"],
        "urn:oid:2.16.840.1.113883.2.4.6.3:999999990"
    );

    let (status, verdict) = post_json(&c, &url("/internal/credentials/verify"), &credential).await;
    assert_eq!(
        (status, &verdict["valid"]),
        (StatusCode::OK, &json!(true)),
        "{verdict}"
    );

    let (status, shown) = get(&c, &url(&format!("/internal/credentials/{}", enc(&id)))).await;
    assert_eq!(
        (status, &shown["status"], &shown["credential"]),
        (StatusCode::OK, &json!("active"), &credential)
    );

    // Bad input: exact status and message, and nothing stored.
    let with = |k: &str, v: Value| {
        let mut r = request.clone();
        r[k] = v;
        r
    };
    let cases = vec![
        (
            with("bsn", json!("123456780")),
            StatusCode::BAD_REQUEST,
            refusal("invalid_request", "bsn: the BSN fails the 11-check"),
        ),
        (
            with("bsn", json!(999999990)),
            StatusCode::BAD_REQUEST,
            refusal(
                "invalid_request",
                "invalid request body: a field has the wrong type (line 1, column 60)",
            ),
        ),
        (
            with("purpose", json!("onbekend")),
            StatusCode::BAD_REQUEST,
            refusal(
                "policy_violation",
                "no policy for purposeOfUse \"onbekend\"",
            ),
        ),
        (
            with("consent", json!("maybe")),
            StatusCode::BAD_REQUEST,
            refusal("invalid_request", "consent: must be implied or explicit"),
        ),
        (
            with("subject_did", json!("did:")),
            StatusCode::BAD_REQUEST,
            refusal("invalid_request", "subject_did: not a valid DID"),
        ),
        (
            with("expires", json!("2001-01-01")),
            StatusCode::BAD_REQUEST,
            refusal(
                "malformed_credential",
                "malformed credential: expiration date is not in the future",
            ),
        ),
        (
            with("extra", json!(1)),
            StatusCode::BAD_REQUEST,
            refusal(
                "invalid_request",
                "invalid request body: unknown field `extra` (line 1, column 167)",
            ),
        ),
        (
            json!({"bsn": "999999990"}),
            StatusCode::BAD_REQUEST,
            refusal(
                "invalid_request",
                "invalid request body: missing field `subject_did` (line 1, column 19)",
            ),
        ),
    ];
    for (body, status, expected) in cases {
        let (s, v) = post_json(&c, &url("/internal/credentials"), &body).await;
        assert_eq!((s, &v), (status, &expected), "{body}");
    }
    let (s, v) = post_raw(
        &c,
        &url("/internal/credentials"),
        "application/json",
        b"{\"subject_did\": ".to_vec(),
    )
    .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            refusal(
                "invalid_request",
                "invalid request body: not valid JSON (line 1, column 16)"
            )
        )
    );
    let (s, v) = post_raw(
        &c,
        &url("/internal/credentials"),
        "text/plain",
        request.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            refusal("invalid_request", "content type must be application/json")
        )
    );
    let (s, v) = post_raw(
        &c,
        &url("/internal/credentials"),
        "application/json",
        vec![b' '; 70_000],
    )
    .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            refusal("invalid_request", "request body is larger than 65536 bytes")
        )
    );

    let (s, v) = get(&c, &url("/internal/credentials?color=red")).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            refusal("invalid_request", "unknown query parameter \"color\"")
        )
    );
    let (s, v) = get(&c, &url("/internal/credentials?purpose=a&purpose=b")).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            refusal(
                "invalid_request",
                "query parameter \"purpose\" given more than once"
            )
        )
    );
    let (s, v) = get(&c, &url("/internal/credentials?bsn=123")).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            refusal("invalid_request", "bsn: a BSN has 9 digits")
        )
    );
    let (s, v) = get(&c, &url("/internal/credentials/did%3Akey%3Anope%231")).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::NOT_FOUND,
            refusal("not_found", "no credential with that id")
        )
    );
    let (s, v) = get(&c, &url("/nothing-here")).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::NOT_FOUND,
            refusal("not_found", "no such endpoint")
        )
    );
    let r = c.delete(url("/internal/credentials")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        refusal("invalid_request", "method not allowed")
    );

    // Verify endpoint refusals.
    let mut tampered = credential.clone();
    tampered["credentialSubject"]["subject"] = json!("urn:oid:2.16.840.1.113883.2.4.6.3:123456782");
    let (s, v) = post_json(&c, &url("/internal/credentials/verify"), &tampered).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            refusal(
                "invalid_proof",
                "invalid proof: signature does not verify with the issuer's key"
            )
        )
    );
    let (s, v) = post_raw(
        &c,
        &url("/internal/credentials/verify"),
        "application/json",
        b"nope".to_vec(),
    )
    .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            refusal(
                "malformed_credential",
                "malformed credential: not valid JSON (line 1, column 2)"
            )
        )
    );
    let (s, v) = post_raw(
        &c,
        &url("/internal/credentials/verify"),
        "application/json",
        vec![b' '; 70_000],
    )
    .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            refusal("invalid_request", "request body is larger than 65536 bytes")
        )
    );
    let (s, v) = post_json(
        &c,
        &url("/internal/credentials/verify?proof_only=maybe"),
        &credential,
    )
    .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            refusal("invalid_request", "proof_only must be true or false")
        )
    );

    let (_, listed) = get(&c, &url("/internal/credentials")).await;
    assert_eq!(
        listed["credentials"].as_array().unwrap().len(),
        1,
        "refused requests stored nothing"
    );

    // Revoke over the API: idempotent, reason kept, verification refuses at once.
    let revoke_url = url(&format!("/internal/credentials/{}/revoke", enc(&id)));
    let (s, v) = post_json(
        &c,
        &revoke_url,
        &json!({"reason": "toestemming ingetrokken"}),
    )
    .await;
    assert_eq!(
        (s, &v["already_revoked"]),
        (StatusCode::OK, &json!(false)),
        "{v}"
    );
    let (s, v) = post_json(&c, &revoke_url, &json!({"reason": "again"})).await;
    assert_eq!(
        (s, &v["already_revoked"], &v["reason"]),
        (
            StatusCode::OK,
            &json!(true),
            &json!("toestemming ingetrokken")
        )
    );
    let (s, v) = post_json(&c, &revoke_url, &json!({})).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            refusal(
                "invalid_request",
                "invalid request body: missing field `reason` (line 1, column 2)"
            )
        )
    );
    let (s, v) = post_json(&c, &url("/internal/credentials/verify"), &credential).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            refusal("revoked", "credential has been revoked")
        )
    );
    let (_, revoked) = get(&c, &url("/internal/credentials?status=revoked")).await;
    assert_eq!(revoked["credentials"][0]["id"], json!(id));

    // On the public listener the admin API does not exist: it is a proxied request, and without
    // a token that is 401.
    let (s, v) = get(&c, &server.public_url("/internal/credentials")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn a_cli_revocation_reaches_the_running_server_within_a_second() {
    let inst = Instance::new();
    let server = inst.serve();
    let c = reqwest::Client::new();
    let request = json!({"subject_did": "did:web:huisarts.example.nl", "bsn": "999999990", "purpose": PURPOSE, "consent": "explicit"});
    let (status, credential) =
        post_json(&c, &server.internal_url("/internal/credentials"), &request).await;
    assert_eq!(status, StatusCode::CREATED);
    let verify = server.internal_url("/internal/credentials/verify");
    assert_eq!(
        post_json(&c, &verify, &credential).await.0,
        StatusCode::OK,
        "valid and cached"
    );

    let id = credential["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    inst.ok(&["credential", "revoke", &id, "--reason", "patient bezwaar"]);
    let cli_time = started.elapsed();
    let seen = within(Duration::from_secs(1), async || {
        post_json(&c, &verify, &credential).await.1["error"] == "revoked"
    })
    .await;
    let seen = seen.unwrap_or_else(|| {
        panic!("revocation not seen within 1 s of the CLI returning (CLI took {cli_time:?})")
    });
    eprintln!("revocation by CLI seen by the server after {seen:?}");
}

#[tokio::test]
async fn serve_publishes_the_did_web_document_on_the_public_listener() {
    let inst = Instance::new();
    let did = inst.ok(&[
        "init",
        "--did-method",
        "web",
        "--domain",
        "zorg.example.nl/poortwachter",
    ]);
    let server = inst.serve();
    let r = reqwest::get(server.public_url("/poortwachter/did.json"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/did+json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["id"], did.trim());
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(inst.data_dir().join("did.json")).unwrap())
            .unwrap();
    assert_eq!(doc, written);
    let (s, _) = get(
        &reqwest::Client::new(),
        &server.public_url("/.well-known/did.json"),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "not our did.json path: a proxied request"
    );
}
