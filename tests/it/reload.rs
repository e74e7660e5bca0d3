//! SIGHUP reloads the policies: a new purpose becomes usable, a broken file is refused and the
//! previous policies stay in force.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::support::{repo, within, Instance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_policies_and_refuses_a_broken_set() {
    let inst = Instance::new();
    let dir = inst.path("policies");
    std::fs::create_dir_all(&dir).unwrap();
    let huisarts = std::fs::read_to_string(
        repo().join("policies/zorginzage-thuiszorgdossier-door-huisarts.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("zorginzage-thuiszorgdossier-door-huisarts.toml"),
        &huisarts,
    )
    .unwrap();
    inst.edit_config(
        &repo().join("policies").display().to_string(),
        &dir.display().to_string(),
    );
    let server = inst.serve();
    let client = reqwest::Client::new();
    let issue = async || {
        client
            .post(server.internal_url("/internal/credentials"))
            .json(&json!({"subject_did": "did:web:huisarts.example.nl", "bsn": "999999990", "purpose": "zorginzage-extra", "consent": "explicit"}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        issue().await,
        StatusCode::BAD_REQUEST,
        "no such purpose yet"
    );
    let hup = || {
        let pid = server.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    };

    std::fs::write(dir.join("zorginzage-extra.toml"), &huisarts).unwrap();
    hup();
    assert!(
        within(Duration::from_secs(2), async || issue().await
            == StatusCode::CREATED)
        .await
        .is_some(),
        "new purpose after SIGHUP"
    );

    std::fs::write(
        dir.join("zorginzage-kapot.toml"),
        "[token]\nlifetime_seconds = \"vijf\"\n",
    )
    .unwrap();
    std::fs::remove_file(dir.join("zorginzage-extra.toml")).unwrap();
    let mark = server.log_mark();
    hup();
    let refused = server
        .log_after(mark, "policy reload refused", Duration::from_secs(5))
        .await
        .expect("the server logs the refused reload");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("zorginzage-kapot.toml")),
        "names the broken file: {refused}"
    );
    assert_eq!(
        issue().await,
        StatusCode::CREATED,
        "a broken set is refused: the previous policies stay"
    );
    let health = client
        .get(server.internal_url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// SIGHUP also re-reads config.toml: body limits, time limits, the upstream and rate limits apply
/// to the next request; a broken file is refused (the running configuration stays); keys that
/// need a restart (addresses, public_url, database) keep their running value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_configuration() {
    let inst = Instance::with_config("max_body_bytes = 1048576");
    let server = inst.serve();
    let pid = server.child.id().to_string();
    let hup = || {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    };
    let client = reqwest::Client::new();
    let body = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={}",
        "a".repeat(2000)
    );
    let post = async || {
        client
            .post(server.public_url("/n2n/auth/v1/accesstoken"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status()
    };
    let metadata = async || -> serde_json::Value {
        client
            .get(server.public_url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    assert_eq!(
        post().await,
        StatusCode::BAD_REQUEST,
        "a malformed JWT, within the limit"
    );
    let issuer = metadata().await["issuer"].clone();
    assert_eq!(issuer, "http://localhost:8080");

    // A smaller body limit and another public_url (restart only).
    inst.edit_config(
        "max_body_bytes = 1048576",
        "max_body_bytes = 1024\npublic_url = \"https://elsewhere.example\"",
    );
    hup();
    assert!(
        within(Duration::from_secs(5), async || post().await
            == StatusCode::PAYLOAD_TOO_LARGE)
        .await
        .is_some(),
        "the new body limit applies after SIGHUP"
    );
    assert_eq!(
        metadata().await["issuer"],
        issuer,
        "public_url needs a restart"
    );

    // A broken file: refused, the running configuration stays.
    inst.edit_config(
        "max_body_bytes = 1024",
        "max_body_bytes = 1024\nsurprise = 1",
    );
    let mark = server.log_mark();
    hup();
    let refused = server
        .log_after(mark, "configuration reload refused", Duration::from_secs(5))
        .await
        .expect("the server logs the refused reload");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("surprise")),
        "names the unknown key: {refused}"
    );
    assert_eq!(post().await, StatusCode::PAYLOAD_TOO_LARGE);
    inst.edit_config(
        "max_body_bytes = 1024\nsurprise = 1",
        "max_body_bytes = 4096",
    );
    hup();
    assert!(
        within(Duration::from_secs(5), async || post().await
            == StatusCode::BAD_REQUEST)
        .await
        .is_some(),
        "a fixed file applies"
    );
}
