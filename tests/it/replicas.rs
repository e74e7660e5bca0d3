//! Two replicas of one custodian on one PostgreSQL database: a token issued by A works on B, a
//! jti used on A is refused on B, the patient binding learned on A holds on B, concurrent
//! requests on both keep one intact audit chain, and a revocation on A stops B within 1 s.

use std::sync::Arc;
use std::time::Duration;

use poortwachter::demo::sample_fhir::{
    start as start_backend, Backend, BSN1, BSN_SYSTEM, PROFILES,
};
use poortwachter::did;
use poortwachter::keys::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::support::PgDatabase;
use super::support::{enc, within, Instance};

const PURPOSE: &str = "zorginzage-thuiszorgdossier-door-huisarts";
const AUD: &str = "https://zorg.example.nl/n2n/auth/v1/accesstoken";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_tokens_replay_store_patients_audit_and_revocations() {
    let Some(db) = PgDatabase::create("this test").await else {
        return;
    };
    let url = db.url.clone();
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend).await;
    let common = format!("database_url = \"{url}\"\npublic_url = \"https://zorg.example.nl\"\nupstream = \"{upstream}\"\n");
    let a = Instance::with_config(&common);
    a.ok(&["init"]);
    // B shares A's key and DID (the same custodian), not its listeners.
    let b = Instance::with_config(&common);
    b.share_identity_with(&a);
    let (sa, sb) = (a.serve(), b.serve());
    let http = reqwest::Client::new();

    let requester = Instance::new();
    let requester_did = requester.ok(&["init"]).trim().to_owned();
    let key = SigningKey::load(&requester.data_dir().join("keys/signing-key.pem")).unwrap();
    let kid = did::key::verification_method_id(&requester_did);
    let custodian_did = a.ok(&["did", "show"]);
    let custodian_did = serde_json::from_str::<Value>(&custodian_did).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let credential: Value = http
        .post(sa.internal_url("/internal/credentials"))
        .json(&json!({"subject_did": requester_did, "bsn": BSN1, "purpose": PURPOSE, "consent": "explicit"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"iss": requester_did, "sub": custodian_did, "aud": AUD, "purposeOfUse": PURPOSE, "vcs": [credential],
        "usi": {"uzi": "900012345", "name": "Dr. A. Huisarts", "role": "01.015"}, "jti": "grant-1", "iat": now, "exp": now + 5});
    let grant = poortwachter::jose::sign(&claims, &key, &kid).unwrap();
    let post_grant = |server: &super::support::Server| {
        http.post(server.public_url("/n2n/auth/v1/accesstoken"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", grant.as_str()),
            ])
            .send()
    };
    let r = post_grant(&sa).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_grant(&sb).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the jti used on A is refused on B"
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["error_description"],
        "jti has already been used"
    );

    // The token from A works on B; the patient binding made through A holds on B.
    let introspected: Value = http
        .post(sb.internal_url("/internal/auth/v1/accesstoken/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    let search = format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}")));
    let r = http
        .post(sa.public_url("/Patient/_search"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(search)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let obs = format!(
        "/Observation?patient=pat-1&_profile={}&_sort=-date&_count=5",
        enc(PROFILES[1].0)
    );
    let r = http
        .get(sb.public_url(&obs))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "B loads the token and its patients from the database"
    );

    // Concurrent requests on both replicas: one audit chain, intact.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let server_url = if i % 2 == 0 {
            sa.public_url(&obs)
        } else {
            sb.public_url(&obs)
        };
        let (http, token) = (http.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            http.get(server_url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let out = a.ok(&["audit", "verify"]);
    assert!(out.starts_with("audit log intact: 64 records"), "{out}");

    // A revocation on A stops the token on B within a second.
    let id = credential["id"].as_str().unwrap();
    let r = http
        .post(sa.internal_url(&format!("/internal/credentials/{}/revoke", enc(id))))
        .json(&json!({"reason": "bezwaar"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let took = within(Duration::from_secs(1), async || {
        http.get(sb.public_url(&obs))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        took.is_some(),
        "revocation on A not effective on B within 1 s"
    );
    eprintln!("revocation A → B took {took:?}");

    drop((sa, sb));
}

/// With the poll slowed to 1 s, revocations still reach the other replica in milliseconds:
/// PostgreSQL `NOTIFY` carries them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_the_other_replica_through_notify() {
    let Some(db) = PgDatabase::create("this test").await else {
        return;
    };
    let url = db.url.clone();
    let common = format!("database_url = \"{url}\"\n");
    let a = Instance::with_config(&common);
    let b = Instance::with_config(&common);
    b.share_identity_with(&a);
    for inst in [&a, &b] {
        inst.edit_config("revocation_poll_ms = 100", "revocation_poll_ms = 1000");
    }
    a.ok(&["init"]);
    let (sa, sb) = (a.serve(), b.serve());
    tokio::time::sleep(Duration::from_millis(300)).await; // B's listener connects
    let http = reqwest::Client::new();
    let mut took = Vec::new();
    for _ in 0..3 {
        let credential: Value = http
            .post(sa.internal_url("/internal/credentials"))
            .json(&json!({"subject_did": "did:web:huisarts.example.nl", "bsn": BSN1, "purpose": PURPOSE, "consent": "explicit"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let verify = || {
            http.post(sb.internal_url("/internal/credentials/verify"))
                .json(&credential)
                .send()
        };
        assert_eq!(verify().await.unwrap().status(), StatusCode::OK);
        let id = credential["id"].as_str().unwrap();
        let start = std::time::Instant::now();
        let r = http
            .post(sa.internal_url(&format!("/internal/credentials/{}/revoke", enc(id))))
            .json(&json!({"reason": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let seen = within(Duration::from_secs(2), async || {
            verify().await.unwrap().status() == StatusCode::UNPROCESSABLE_ENTITY
        })
        .await;
        assert!(seen.is_some(), "revocation never reached B");
        took.push(start.elapsed());
    }
    eprintln!("revocation A → B via NOTIFY: {took:?}");
    assert!(
        took.iter().all(|t| *t < Duration::from_millis(300)),
        "NOTIFY, not the 1 s poll: {took:?}"
    );
    drop((sa, sb));
}
