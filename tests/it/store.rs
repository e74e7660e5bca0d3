//! The store through its public API only. The store suite itself (every part on SQLite and
//! PostgreSQL) is in `src/store/tests.rs`: it writes the hot tables through the crate-only
//! group-commit primitives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use poortwachter::audit::{AuditRecord, ChainReport};
use poortwachter::bsn::Bsn;
use poortwachter::store::writer::Writer;
use poortwachter::store::{CredentialRecord, RevokeOutcome, Store};

#[tokio::test]
async fn unreachable_and_bad_urls_are_clear_errors() {
    let err = Store::open("mysql://localhost/x").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid database URL: must start with sqlite: or postgres://"
    );
    let err = Store::open("postgres://nobody@127.0.0.1:1/x")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("database unavailable:"),
        "{err}"
    );
}

/// A revocation (the CLI, another process) while the server's writer commits all the time:
/// every revocation must succeed. A transaction that reads before it writes would fail here
/// with SQLITE_BUSY_SNAPSHOT (the writer committed after its read), which no busy timeout cures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_revoke_while_the_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let server = Store::open(&url).await.expect("open");
    let cli = Store::open(&url).await.expect("open");
    for i in 0..100 {
        let id = format!("c{i}");
        cli.insert_credential(&CredentialRecord {
            id: id.clone(),
            issuer: "did:key:zIssuer".into(),
            subject_did: "did:web:a".into(),
            purpose: "zorginzage-thuiszorgdossier-door-huisarts".into(),
            bsn: Bsn::parse("999999990").unwrap(),
            consent_type: "implied".into(),
            issued_at: 1_000,
            expires_at: None,
            document: format!("{{\"id\":\"{id}\"}}"),
            revocation: None,
        })
        .await
        .unwrap();
    }
    // The server's writer (on a SQLite file: its own connection on a thread of its own), fed
    // one record at a time: each write returns when its commit did, so every write is a commit.
    let writer = Writer::spawn(server.clone()).expect("writer");
    let stop = Arc::new(AtomicBool::new(false));
    let writing = {
        let (stop, writer) = (stop.clone(), writer.clone());
        tokio::spawn(async move {
            let mut commits = 0u32;
            while !stop.load(Ordering::Relaxed) {
                writer
                    .write(AuditRecord {
                        time: "2026-12-01T00:00:00.000Z".into(),
                        request_id: format!("r{commits}"),
                        kind: "proxy".into(),
                        requester: "did:web:a".into(),
                        user: None,
                        purpose: "p".into(),
                        bsn: None,
                        method: "GET".into(),
                        path: "/Patient".into(),
                        decision: "permit".into(),
                        rule: "r".into(),
                        status: 200,
                        upstream_status: Some(200),
                        client_cert: None,
                        jwt: None,
                        custodian: None,
                        trace: None,
                    })
                    .await
                    .expect("writer commit");
                commits += 1;
            }
            commits
        })
    };
    let mut outcomes = Vec::new();
    for i in 0..100 {
        outcomes.push(
            cli.revoke(&format!("c{i}"), "consent withdrawn", 4_000)
                .await,
        );
    }
    stop.store(true, Ordering::Relaxed);
    let commits = writing.await.expect("writer task");
    for (i, o) in outcomes.iter().enumerate() {
        assert!(
            matches!(o, Ok(RevokeOutcome::Revoked(_))),
            "revoke c{i}: {o:?}"
        );
    }
    assert!(commits >= 20, "the writer committed only {commits} times");
    assert_eq!(cli.revocation_count().await.unwrap(), 100);
    assert!(writer.is_healthy());
    let rows = cli.audit_rows(&Default::default()).await.unwrap();
    assert!(
        matches!(poortwachter::audit::verify(&rows), ChainReport::Intact { records, .. } if records == commits as usize),
        "{:?}",
        poortwachter::audit::verify(&rows)
    );
}
