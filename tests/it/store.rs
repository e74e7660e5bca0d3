//! One store test suite, run against SQLite and PostgreSQL (a fresh database per run on the
//! server at `POORTWACHTER_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/test`).

use poortwachter::store::{
    CredentialFilter, CredentialRecord, RevokeOutcome, Status, Store, StoreError, TokenRecord,
    UsedJti,
};
use sqlx::Connection as _;

fn record(id: &str, subject: &str, bsn: &str, expires_at: Option<i64>) -> CredentialRecord {
    CredentialRecord {
        id: id.into(),
        issuer: "did:key:zIssuer".into(),
        subject_did: subject.into(),
        purpose: "zorginzage-thuiszorgdossier-door-huisarts".into(),
        bsn: bsn.into(),
        consent_type: "implied".into(),
        issued_at: 1_000,
        expires_at,
        document: format!("{{\"id\":\"{id}\"}}"),
        revocation: None,
    }
}

async fn suite(url: &str) {
    let store = Store::open(url).await.expect("open");
    let now = 5_000;
    store
        .insert_credential(&record("c1", "did:web:a", "999999990", Some(10_000)))
        .await
        .unwrap();
    store
        .insert_credential(&record("c2", "did:web:b", "123456782", Some(2_000)))
        .await
        .unwrap();
    store
        .insert_credential(&record("c3", "did:web:a", "123456782", None))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_credential(&record("c1", "did:web:x", "1", None))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.credential("c1").await.unwrap(),
        record("c1", "did:web:a", "999999990", Some(10_000))
    );
    assert!(matches!(
        store.credential("nope").await,
        Err(StoreError::NotFound)
    ));

    let ids = |v: Vec<CredentialRecord>| {
        let mut ids: Vec<String> = v.into_iter().map(|r| r.id).collect();
        ids.sort();
        ids
    };
    let list = |f: CredentialFilter| {
        let s = store.clone();
        async move { ids(s.list_credentials(&f, now).await.unwrap()) }
    };
    assert_eq!(list(CredentialFilter::default()).await, ["c1", "c2", "c3"]);
    assert_eq!(
        list(CredentialFilter {
            subject_did: Some("did:web:a".into()),
            ..Default::default()
        })
        .await,
        ["c1", "c3"]
    );
    assert_eq!(
        list(CredentialFilter {
            bsn: Some("123456782".into()),
            subject_did: Some("did:web:a".into()),
            ..Default::default()
        })
        .await,
        ["c3"]
    );
    assert_eq!(
        list(CredentialFilter {
            status: Some(Status::Expired),
            ..Default::default()
        })
        .await,
        ["c2"]
    );
    assert_eq!(
        list(CredentialFilter {
            status: Some(Status::Active),
            ..Default::default()
        })
        .await,
        ["c1", "c3"]
    );

    assert_eq!(store.revocation_count().await.unwrap(), 0);
    let first = store
        .revoke("c1", "consent withdrawn", 4_000)
        .await
        .unwrap();
    assert!(
        matches!(&first, RevokeOutcome::Revoked(r) if r.reason == "consent withdrawn" && r.revoked_at == 4_000)
    );
    let second = store.revoke("c1", "other", 4_500).await.unwrap();
    assert!(
        matches!(&second, RevokeOutcome::AlreadyRevoked(r) if r.reason == "consent withdrawn" && r.revoked_at == 4_000)
    );
    assert!(matches!(
        store.revoke("nope", "x", 1).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.revocation_count().await.unwrap(), 1);
    assert_eq!(store.revoked_ids().await.unwrap(), ["c1"]);
    assert_eq!(
        list(CredentialFilter {
            status: Some(Status::Revoked),
            ..Default::default()
        })
        .await,
        ["c1"]
    );
    assert_eq!(
        list(CredentialFilter {
            status: Some(Status::Active),
            ..Default::default()
        })
        .await,
        ["c3"]
    );
    assert_eq!(
        store.credential("c1").await.unwrap().status(now),
        Status::Revoked
    );
    // Tokens and the replay store: a jti seen before (even in the same batch) stores nothing.
    let token = |hash: &str| TokenRecord {
        hash: hash.into(),
        requester: "did:web:a".into(),
        custodian: "did:key:zIssuer".into(),
        purpose: "p".into(),
        credential_ids: vec!["c1".into(), "c3".into()],
        bsn: "999999990".into(),
        user_identity: Some("{\"uzi\":\"1\"}".into()),
        issued_at: 100,
        expires_at: 400,
    };
    let jti = |j: &str, exp: i64| UsedJti {
        issuer: "did:web:a".into(),
        jti: j.into(),
        expires_at: exp,
    };
    let (j1, j2, j1again) = (jti("j1", 110), jti("j2", 5_000), jti("j1", 110));
    let (t1, t2, t3) = (token("h1"), token("h2"), token("h3"));
    assert_eq!(
        store
            .insert_tokens(&[(&j1, &t1), (&j2, &t2), (&j1again, &t3)])
            .await
            .unwrap(),
        [true, true, false]
    );
    assert_eq!(
        store.insert_tokens(&[(&j1again, &t3)]).await.unwrap(),
        [false]
    );
    assert_eq!(store.token("h1").await.unwrap(), t1);
    assert!(matches!(store.token("h3").await, Err(StoreError::NotFound)));
    assert_eq!(store.token_count().await.unwrap(), 2);
    assert_eq!(
        store.purge_expired(450).await.unwrap(),
        3,
        "j1, h1 and h2 expired; j2 kept"
    );
    assert_eq!(store.token_count().await.unwrap(), 0);
    assert_eq!(
        store.insert_tokens(&[(&j2, &t3)]).await.unwrap(),
        [false],
        "j2 still remembered"
    );
    // A purge larger than one statement's chunk removes everything expired, patients included.
    let many = 2 * poortwachter::store::PURGE_CHUNK + 50;
    insert_fresh(
        &store,
        (0..many).map(|i| (jti(&format!("m{i}"), 120), token(&format!("m{i}")))),
    )
    .await;
    store
        .add_token_patients("m7", &["pat-1".to_owned()])
        .await
        .unwrap();
    assert_eq!(store.token_patients("m7").await.unwrap(), ["pat-1"]);
    assert_eq!(
        store.purge_expired(450).await.unwrap(),
        2 * many as u64,
        "every expired jti and token, over several statements"
    );
    assert_eq!(store.token_count().await.unwrap(), 0);
    assert!(store.token_patients("m7").await.unwrap().is_empty());
    assert_eq!(
        store.insert_tokens(&[(&j2, &t3)]).await.unwrap(),
        [false],
        "an unexpired jti survives the purge"
    );
    // Audit rows: a sequence number taken by another writer is a conflict, and nothing is added.
    let row = |seq: i64| poortwachter::store::AuditRow {
        seq,
        time_unix: 1,
        requester: "did:web:a".into(),
        bsn: String::new(),
        record: "{}".into(),
        prev_hash: "p".into(),
        hash: format!("h{seq}"),
    };
    store.append_audit(&[row(1), row(2)]).await.unwrap();
    assert!(matches!(
        store.append_audit(&[row(3), row(2)]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.audit_head().await.unwrap(),
        (2, "h2".to_owned()),
        "the conflicting batch added nothing"
    );
    store.close().await;

    // Reopening keeps everything (migrations are not re-applied).
    let again = Store::open(url).await.expect("reopen");
    assert_eq!(again.revoked_ids().await.unwrap(), ["c1"]);
    again.close().await;
}

/// The Hub's tables: upsert on (account, BSN, gravida), visibility by share (name or AGB),
/// share removal, bulk import.
async fn hub_suite(url: &str) {
    use poortwachter::hub::dossier::{Dossier, Filter};
    use poortwachter::hub::{add_account, AccountSpec};
    let store = Store::open(url).await.expect("open");
    for (name, agb) in [("a", "11111111"), ("b", "22222222"), ("c", "33333333")] {
        add_account(
            &store,
            AccountSpec {
                name: name.into(),
                display_name: name.to_uppercase(),
                agb: Some(agb.into()),
                source_api: "v3".into(),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
    }
    let d = |bsn: &str, gravida: i64, para: i64| Dossier {
        client_bsn: bsn.into(),
        client_displayname: "Anna".into(),
        client_birthdate: "19920314".into(),
        reference: format!("ref-{gravida}"),
        gravida,
        para,
        edd: "20270402".into(),
        start_at: "20260910".into(),
        end_at: None,
    };
    let k1 = store
        .hub_upsert("a", "k1", &d("999999990", 1, 0), 10)
        .await
        .unwrap();
    assert_eq!(k1, "k1");
    let again = store
        .hub_upsert("a", "k1b", &d("999999990", 1, 1), 11)
        .await
        .unwrap();
    assert_eq!(again, "k1", "same account, BSN and gravida: an update");
    store
        .hub_upsert("a", "k2", &d("999999990", 2, 1), 12)
        .await
        .unwrap();
    store
        .hub_upsert("b", "k3", &d("999999990", 1, 0), 13)
        .await
        .unwrap();
    let by_bsn = Filter::parse(Some("client_bsn=999999990")).unwrap();
    let keys = |rows: Vec<poortwachter::hub::dossier::DossierRecord>| {
        rows.into_iter().map(|r| r.key).collect::<Vec<_>>()
    };
    assert_eq!(
        keys(
            store
                .hub_search("a", Some("11111111"), &by_bsn)
                .await
                .unwrap()
        ),
        ["k1", "k2"]
    );
    assert_eq!(
        keys(
            store
                .hub_search("c", Some("33333333"), &by_bsn)
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    store.hub_put_share("k1", "c", "full").await.unwrap();
    store.hub_put_share("k3", "33333333", "read").await.unwrap();
    assert_eq!(
        keys(
            store
                .hub_search("c", Some("33333333"), &by_bsn)
                .await
                .unwrap()
        ),
        ["k1", "k3"]
    );
    let g2 = Filter::parse(Some("client_bsn=999999990&gravida=1&para=1")).unwrap();
    assert_eq!(
        keys(store.hub_search("c", Some("33333333"), &g2).await.unwrap()),
        ["k1"]
    );
    assert!(store
        .hub_visible("k2", "c", Some("33333333"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .hub_visible("k1", "c", None)
            .await
            .unwrap()
            .unwrap()
            .dossier
            .para,
        1
    );
    store.hub_put_share("k1", "c", "read").await.unwrap();
    assert_eq!(store.hub_shares("k1").await.unwrap()[0].permission, "read");
    store.hub_remove_share("k1", "c").await.unwrap();
    assert!(matches!(
        store.hub_remove_share("k1", "c").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        keys(
            store
                .hub_search("c", Some("33333333"), &by_bsn)
                .await
                .unwrap()
        ),
        ["k3"]
    );
    let rows: Vec<(String, Dossier)> = (0..120)
        .map(|i| (format!("bulk-{i}"), d("123456782", i, 0)))
        .collect();
    store.hub_import("b", &rows, Some("c"), 20).await.unwrap();
    let bulk = Filter::parse(Some("client_bsn=123456782&gravida=7")).unwrap();
    assert_eq!(
        keys(store.hub_search("c", None, &bulk).await.unwrap()),
        ["bulk-7"]
    );
    assert_eq!(store.hub_resource_count().await.unwrap(), 123);
    store.hub_disable_account("b").await.unwrap();
    assert!(store.hub_account("b").await.unwrap().unwrap().disabled);
    assert!(matches!(
        store.hub_disable_account("x").await,
        Err(StoreError::NotFound)
    ));
    store.close().await;
}

async fn schema_too_new(url: &str) {
    let store = Store::open(url).await.unwrap();
    store.close().await;
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query("INSERT INTO pw_schema (version) VALUES (99)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let err = Store::open(url).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "database schema version 99 is newer than this binary supports (4); upgrade poortwachter"
    );
}

/// Four processes' worth of stores start at once on a fresh database (replicas, the CLI beside
/// the server): all open, and each migration ran exactly once.
async fn concurrent_starts(url: &str) {
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.expect("task").expect("open while others open"));
    }
    for s in stores {
        s.close().await;
    }
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let rows = sqlx::query("SELECT version FROM pw_schema ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| sqlx::Row::get(r, 0)).collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_store() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = |file: &str| format!("sqlite://{}?mode=rwc", dir.path().join(file).display());
    suite(&url("a.db")).await;
    hub_suite(&url("h.db")).await;
    schema_too_new(&url("b.db")).await;
    batch_suite(&url("c.db")).await;
    writer_purge_suite(&url("d.db")).await;
    writer_purge_failure(&url("e.db")).await;
    concurrent_starts(&url("f.db")).await;
}

/// Stores `grants`, every `jti` of which must be new.
async fn insert_fresh(store: &Store, grants: impl Iterator<Item = (UsedJti, TokenRecord)>) {
    let grants: Vec<(UsedJti, TokenRecord)> = grants.collect();
    let pairs: Vec<(&UsedJti, &TokenRecord)> = grants.iter().map(|(j, t)| (j, t)).collect();
    let fresh = store.insert_tokens(&pairs).await.unwrap();
    assert!(fresh.iter().all(|f| *f), "{fresh:?}");
}

/// Purges what expired before 450 while `n` records are written at the same time (they share
/// the writer's commits); every record must be committed.
async fn purge_while_writing(
    audit: &poortwachter::audit::AuditLog,
    n: usize,
) -> Result<u64, StoreError> {
    let writes: Vec<_> = (0..n)
        .map(|n| {
            let r = poortwachter::audit::AuditRecord {
                time: "2026-12-01T00:00:00.000Z".into(),
                request_id: format!("r{n}"),
                kind: "proxy".into(),
                requester: "did:web:a".into(),
                user: None,
                purpose: "p".into(),
                bsn: String::new(),
                method: "GET".into(),
                path: "/Patient".into(),
                decision: "permit".into(),
                rule: "r".into(),
                status: 200,
                upstream_status: Some(200),
            };
            let audit = audit.clone();
            tokio::spawn(async move { audit.write(r).await })
        })
        .collect();
    let purged = audit.purge_expired(450).await;
    for w in writes {
        w.await.expect("task").expect("record written");
    }
    purged
}

/// A token of `did:web:a` for the batch and purge suites.
fn live_token(hash: &str, expires_at: i64) -> TokenRecord {
    TokenRecord {
        hash: hash.into(),
        requester: "did:web:a".into(),
        custodian: "did:key:zIssuer".into(),
        purpose: "p".into(),
        credential_ids: vec!["c1".into()],
        bsn: "999999990".into(),
        user_identity: None,
        issued_at: 100,
        expires_at,
    }
}

/// A grant `jti` of `did:web:a`.
fn used_jti(jti: &str, expires_at: i64) -> UsedJti {
    UsedJti {
        issuer: "did:web:a".into(),
        jti: jti.into(),
        expires_at,
    }
}

/// The audit writer's purge (on SQLite it runs inside the writer's commits, on PostgreSQL through
/// the pool): every expired `jti` and token goes, patients included, over more than one step,
/// while records keep being committed; unexpired rows and the chain stay intact.
async fn writer_purge_suite(url: &str) {
    use poortwachter::audit::{AuditLog, ChainReport};
    let store = Store::open(url).await.expect("open");
    let (token, jti) = (live_token, used_jti);
    // More than two steps of a purge on its own (200 rows), expired at 120; two live ones.
    let many = 2 * poortwachter::store::PURGE_CHUNK + 75;
    insert_fresh(
        &store,
        (0..many)
            .map(|i| (jti(&format!("m{i}"), 120), token(&format!("m{i}"), 120)))
            .chain([(jti("live", 5_000), token("live", 5_000))]),
    )
    .await;
    for hash in ["m3", "live"] {
        store
            .add_token_patients(hash, &["pat-1".to_owned()])
            .await
            .unwrap();
    }
    let audit = AuditLog::spawn(store.clone()).expect("writer");
    // Records committed while the purge runs share its commits.
    let purged = purge_while_writing(&audit, 40).await;
    assert_eq!(
        purged.unwrap(),
        2 * many as u64,
        "every expired jti and token"
    );
    assert_eq!(store.token_count().await.unwrap(), 1, "only the live token");
    assert!(store.token_patients("m3").await.unwrap().is_empty());
    assert_eq!(store.token_patients("live").await.unwrap(), ["pat-1"]);
    assert_eq!(
        store
            .insert_tokens(&[(&jti("live", 5_000), &token("x", 5_000))])
            .await
            .unwrap(),
        [false],
        "the live jti is still remembered"
    );
    assert_eq!(
        audit.purge_expired(450).await.unwrap(),
        0,
        "nothing left to purge"
    );
    let rows = store.audit_rows(&Default::default()).await.unwrap();
    assert!(
        matches!(
            poortwachter::audit::verify(&rows),
            ChainReport::Intact { records: 40, .. }
        ),
        "{:?}",
        poortwachter::audit::verify(&rows)
    );
}

/// A purge step that fails (here: a trigger refuses the delete) ends that purge with an error,
/// in a commit of its own and inside one that carries records; the records are committed all
/// the same, and the next purge starts afresh.
async fn writer_purge_failure(url: &str) {
    use poortwachter::audit::AuditLog;
    let store = Store::open(url).await.expect("open");
    insert_fresh(
        &store,
        (0..30).map(|i| {
            (
                used_jti(&format!("f{i}"), 120),
                live_token(&format!("f{i}"), 120),
            )
        }),
    )
    .await;
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_purge BEFORE DELETE ON used_jtis \
         BEGIN SELECT RAISE(ABORT, 'refused by test'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let audit = AuditLog::spawn(store.clone()).expect("writer");
    let err = audit.purge_expired(450).await.expect_err("purge refused");
    assert!(err.to_string().contains("refused by test"), "{err}");
    // Again, with records arriving at the same time: they are committed, the purge fails.
    let second = purge_while_writing(&audit, 20).await;
    assert!(second.is_err(), "{second:?}");
    assert_eq!(store.token_count().await.unwrap(), 30, "nothing purged");
    sqlx::query("DROP TRIGGER refuse_purge")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(audit.purge_expired(450).await.unwrap(), 60);
    assert_eq!(store.token_count().await.unwrap(), 0);
}

/// `n` chained audit rows on `head` (hashes are labels here; the chain is `audit`'s business).
fn batch_rows((seq, prev): (i64, String), n: usize) -> Vec<poortwachter::store::AuditRow> {
    (1..=n as i64)
        .map(|i| poortwachter::store::AuditRow {
            seq: seq + i,
            time_unix: 1,
            requester: "did:web:a".into(),
            bsn: String::new(),
            record: format!("{{\"n\":{}}}", seq + i),
            prev_hash: if i == 1 {
                prev.clone()
            } else {
                format!("h{}", seq + i - 1)
            },
            hash: format!("h{}", seq + i),
        })
        .collect()
}

/// The group commit: on a SQLite file through its own connection (`store::sqlite::BatchWriter`),
/// on PostgreSQL through the pool; the same outcome either way. On SQLite the background
/// checkpoints also move committed rows into the database file itself.
async fn batch_suite(url: &str) {
    use poortwachter::store::{sqlite::BatchWriter, GENESIS_HASH};
    let store = Store::open(url).await.expect("open");
    let mut writer = store
        .sqlite_file()
        .map(|f| BatchWriter::open(f, store.wal_control()).expect("writer"));
    let token = |hash: &str| live_token(hash, i64::MAX / 2);
    let jti = |j: &str| used_jti(j, i64::MAX / 2);
    let mut commit = async |grants: Vec<(UsedJti, TokenRecord)>, n: usize| {
        let grants: Vec<(&UsedJti, &TokenRecord)> = grants.iter().map(|(j, t)| (j, t)).collect();
        let mut seen = None;
        let build = |head: (i64, String), fresh: &[bool]| {
            seen = Some((head.clone(), fresh.to_vec()));
            batch_rows(head, n)
        };
        let result = match writer.as_mut() {
            Some(w) => w.commit_batch(&grants, build),
            None => store.commit_batch(&grants, build).await,
        };
        (result, seen)
    };
    // A jti repeated in the same batch is not fresh; the rows are built on the genesis head.
    let (result, seen) = commit(
        vec![
            (jti("a"), token("ta")),
            (jti("b"), token("tb")),
            (jti("a"), token("tc")),
        ],
        3,
    )
    .await;
    assert_eq!(result.unwrap(), [true, true, false]);
    assert_eq!(
        seen.unwrap(),
        ((0, GENESIS_HASH.to_owned()), vec![true, true, false])
    );
    // The next batch sees the new head; a jti of an earlier batch is not fresh either.
    let (result, seen) = commit(vec![(jti("b"), token("td"))], 2).await;
    assert_eq!(result.unwrap(), [false]);
    assert_eq!(seen.unwrap(), ((3, "h3".to_owned()), vec![false]));
    assert_eq!(store.audit_head().await.unwrap(), (5, "h5".to_owned()));
    assert_eq!(store.token_count().await.unwrap(), 2, "ta and tb only");
    assert!(matches!(store.token("tc").await, Err(StoreError::NotFound)));
    // A batch of records only.
    let (result, _) = commit(Vec::new(), 1000).await;
    assert_eq!(result.unwrap(), Vec::<bool>::new());
    assert_eq!(store.audit_head().await.unwrap().0, 1005);

    if let Some(file) = store.sqlite_file() {
        // The database file alone (without its WAL) holds every row once the background
        // checkpoint ran (automatic checkpoints are off on every connection).
        let copy = file.with_extension("copy.db");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            std::fs::copy(file, &copy).unwrap();
            // Before the first checkpoint the file does not even hold the tables.
            let count: i64 = rusqlite::Connection::open(&copy)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
                .unwrap_or(0);
            if count == 1005 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {count} of 1005 rows reached the database file"
            );
            std::fs::remove_file(&copy).unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }

        // Under steady writing the WAL is started over (asked by the checkpointer, done by the
        // writer between batches) instead of growing: 32 MiB of rows through a 1 MiB limit
        // stay in a WAL of a few MiB.
        store.wal_control().set_restart_frames(256);
        let w = writer.as_mut().expect("writer");
        let wal = std::path::PathBuf::from(format!("{}-wal", file.display()));
        let big = "x".repeat(2048);
        let (mut written, mut largest) = (0usize, 0u64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while written < 32 << 20 {
            assert!(std::time::Instant::now() < deadline, "too slow to test");
            w.commit_batch(&[], |(seq, prev), _| {
                let mut rows = batch_rows((seq, prev), 50);
                for r in &mut rows {
                    r.record.clone_from(&big);
                }
                rows
            })
            .unwrap();
            w.restart_wal_if_asked();
            written += 50 * 2048;
            // About 100 KiB per 10 ms: the 250 ms checkpointer sees a few MiB per round.
            std::thread::sleep(std::time::Duration::from_millis(10));
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        assert!(
            largest < 12 << 20,
            "the WAL grew to {largest} bytes for {written} bytes of rows"
        );
    }
    store.close().await;
}

/// A fresh PostgreSQL database, dropped again at the end, or None (visibly) where no server runs
/// outside CI.
pub(super) async fn pg_database() -> Option<(String, String)> {
    sqlx::any::install_default_drivers();
    let admin = std::env::var("POORTWACHTER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = match sqlx::AnyConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide PostgreSQL at {admin}: {e}"
            );
            eprintln!("SKIPPED: no PostgreSQL at {admin} ({e}); PostgreSQL store suite not run");
            return None;
        }
    };
    let name = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => unreachable!(),
    };
    Some((admin, url))
}

pub(super) async fn drop_database(admin: &str, url: &str) {
    let name = url.rsplit('/').next().unwrap();
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_store() {
    let Some((admin, url)) = pg_database().await else {
        return;
    };
    suite(&url).await;
    drop_database(&admin, &url).await;
    let Some((admin, url)) = pg_database().await else {
        return;
    };
    hub_suite(&url).await;
    drop_database(&admin, &url).await;
    let Some((admin, url)) = pg_database().await else {
        return;
    };
    schema_too_new(&url).await;
    drop_database(&admin, &url).await;
    let Some((admin, url)) = pg_database().await else {
        return;
    };
    batch_suite(&url).await;
    drop_database(&admin, &url).await;
    let Some((admin, url)) = pg_database().await else {
        return;
    };
    writer_purge_suite(&url).await;
    drop_database(&admin, &url).await;
    let Some((admin, url)) = pg_database().await else {
        return;
    };
    concurrent_starts(&url).await;
    drop_database(&admin, &url).await;
}

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
#[tokio::test]
async fn sqlite_revoke_while_the_writer_commits() {
    use poortwachter::store::sqlite::BatchWriter;
    use std::sync::atomic::{AtomicBool, Ordering};
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let server = Store::open(&url).await.expect("open");
    let cli = Store::open(&url).await.expect("open");
    for i in 0..100 {
        let id = format!("c{i}");
        cli.insert_credential(&record(&id, "did:web:a", "999999990", None))
            .await
            .unwrap();
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut writer =
        BatchWriter::open(server.sqlite_file().unwrap(), server.wal_control()).expect("writer");
    let writing = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut commits = 0u32;
            while !stop.load(Ordering::Relaxed) {
                writer
                    .commit_batch(&[], |head, _| batch_rows(head, 2))
                    .expect("writer commit");
                commits += 1;
                // the server's writer waits for records between commits; so does this one, briefly
                std::thread::sleep(std::time::Duration::from_micros(100));
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
    let commits = writing.join().expect("writer thread");
    for (i, o) in outcomes.iter().enumerate() {
        assert!(
            matches!(o, Ok(RevokeOutcome::Revoked(_))),
            "revoke c{i}: {o:?}"
        );
    }
    assert!(commits >= 20, "the writer committed only {commits} times");
    assert_eq!(cli.revocation_count().await.unwrap(), 100);
}
