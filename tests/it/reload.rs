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
    hup();
    tokio::time::sleep(Duration::from_millis(300)).await;
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
