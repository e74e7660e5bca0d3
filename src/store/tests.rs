//! The store suite, run against SQLite and PostgreSQL: one test per part and backend, so a
//! failure hides nothing else. Each PostgreSQL part gets a fresh database on the server at
//! `POORTWACHTER_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`), dropped by a
//! guard even when the part panics.
//!
//! These are unit tests so that they may write the hot tables directly, through the crate-only
//! primitives of the group commit ([`Store::commit_batch`], [`super::sqlite::BatchWriter`]):
//! outside the crate only the writer appends.

use sqlx::Connection as _;

use super::sqlite::BatchWriter;
use super::writer::Writer;
use super::{
    CredentialFilter, CredentialRecord, RevokeOutcome, Status, Store, StoreError, TokenRecord,
    UsedJti, PURGE_CHUNK,
};
use crate::audit::{AuditRecord, AuditRow, ChainReport, GENESIS_HASH};
use crate::bsn::Bsn;

/// Generates, for each `part` (an `async fn part(url: &str)`), a module `part` with the tests
/// `sqlite` (a database file of its own) and `postgres` (a database of its own).
macro_rules! on_both_backends {
    ($($part:ident),* $(,)?) => {$(
        mod $part {
            #[tokio::test]
            async fn sqlite() {
                let db = super::SqliteFile::new();
                super::$part(&db.url).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = super::PgDatabase::create(&format!("store part {}", stringify!($part))).await else {
                    return;
                };
                super::$part(&db.url).await;
            }
        }
    )*};
}

/// Generates, for each SQLite-only `part`, a module `part` with the test `sqlite`.
macro_rules! on_sqlite {
    ($($part:ident),* $(,)?) => {$(
        mod $part {
            #[tokio::test]
            async fn sqlite() {
                let db = super::SqliteFile::new();
                super::$part(&db.url).await;
            }
        }
    )*};
}

on_both_backends!(
    credentials,
    tokens_and_replays,
    chunked_purge,
    audit_row_conflict,
    hub_tables,
    schema_too_new,
    concurrent_starts,
    group_commit,
    writer_purge,
    medmij_codes_tokens_sessions,
    held_credentials,
);

on_sqlite!(
    checkpoints_fill_the_database_file,
    wal_restarts_under_steady_writing,
    writer_purge_failure,
);

/// A SQLite database file in a directory of its own, removed at the end.
struct SqliteFile {
    _dir: tempfile::TempDir,
    url: String,
}

impl SqliteFile {
    fn new() -> Self {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        Self { _dir: dir, url }
    }
}

use super::testing::PgDatabase;

fn bsn(s: &str) -> Bsn {
    Bsn::parse(s).expect("a valid BSN")
}

fn record(id: &str, subject: &str, patient: &str, expires_at: Option<i64>) -> CredentialRecord {
    CredentialRecord {
        id: id.into(),
        issuer: "did:key:zIssuer".into(),
        subject_did: subject.into(),
        purpose: "zorginzage-thuiszorgdossier-door-huisarts".into(),
        bsn: bsn(patient),
        consent_type: "implied".into(),
        issued_at: 1_000,
        expires_at,
        document: format!("{{\"id\":\"{id}\"}}"),
        revocation: None,
    }
}

/// A token of `did:web:a`.
fn token(hash: &str, expires_at: i64) -> TokenRecord {
    TokenRecord {
        hash: hash.into(),
        requester: "did:web:a".into(),
        custodian: "did:key:zIssuer".into(),
        purpose: "p".into(),
        credential_ids: vec!["c1".into(), "c3".into()],
        bsn: bsn("999999990"),
        user_identity: Some("{\"uzi\":\"1\"}".into()),
        issued_at: 100,
        expires_at,
        cnf_x5t_s256: None,
    }
}

/// A token bound to a client certificate (RFC 8705), as a grant over mutual TLS stores it.
fn bound(token: TokenRecord) -> TokenRecord {
    TokenRecord {
        cnf_x5t_s256: Some("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2".into()),
        ..token
    }
}

/// A grant `jti` of `did:web:a`.
fn jti(jti: &str, expires_at: i64) -> UsedJti {
    UsedJti {
        issuer: "did:web:a".into(),
        jti: jti.into(),
        expires_at,
    }
}

/// Stores grants (no audit rows) through the pool's group commit; per grant whether its `jti`
/// was fresh.
async fn commit_grants(
    store: &Store,
    grants: &[(UsedJti, TokenRecord)],
) -> Result<Vec<bool>, StoreError> {
    let pairs: Vec<(&UsedJti, &TokenRecord)> = grants.iter().map(|(j, t)| (j, t)).collect();
    store.commit_batch(&pairs, |_, _| Vec::new()).await
}

/// Stores `grants`, every `jti` of which must be new.
async fn insert_fresh(store: &Store, grants: impl Iterator<Item = (UsedJti, TokenRecord)>) {
    let grants: Vec<(UsedJti, TokenRecord)> = grants.collect();
    let fresh = commit_grants(store, &grants).await.expect("commit");
    assert!(fresh.iter().all(|f| *f), "{fresh:?}");
}

/// `n` chained audit rows on `head` (hashes are labels here; the chain is `audit`'s business).
fn batch_rows((seq, prev): (i64, String), n: usize) -> Vec<AuditRow> {
    (1..=i64::try_from(n).expect("n"))
        .map(|i| AuditRow {
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

/// A proxied request's audit record.
fn audit_record(n: usize) -> AuditRecord {
    AuditRecord {
        time: "2026-12-01T00:00:00.000Z".into(),
        request_id: format!("r{n}"),
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
    }
}

/// Credentials: insert (a second with the same id is a conflict), read, filters, revocation
/// (idempotent: the first reason and time stand), and revocations survive a reopen.
fn held(
    id: &str,
    issuer: &str,
    bsn: &str,
    expires_at: Option<i64>,
    issued_at: i64,
) -> super::HeldCredential {
    super::HeldCredential {
        id: id.into(),
        issuer: issuer.into(),
        purpose: "p".into(),
        bsn: Bsn::parse(bsn).unwrap(),
        issued_at,
        expires_at,
        imported_at: 4_000,
        document: format!("{{\"id\":\"{id}\"}}"),
    }
}

/// Held credentials: apart from issued ones, the pick for (issuer, purpose, BSN) skips expired
/// ones and prefers the longest-lasting, a duplicate is a conflict, removal is by id.
async fn held_credentials(url: &str) {
    let store = Store::open(url).await.expect("open");
    let now = 5_000;
    let bsn = Bsn::parse("999999990").unwrap();
    assert_eq!(
        store.held_for("did:web:a", "p", &bsn, now).await.unwrap(),
        None
    );
    for h in [
        held("h-expired", "did:web:a", "999999990", Some(4_999), 3_000),
        held("h-short", "did:web:a", "999999990", Some(6_000), 3_500),
        held("h-long", "did:web:a", "999999990", Some(9_000), 1_000),
        held("h-other-issuer", "did:web:b", "999999990", None, 3_000),
        held("h-other-bsn", "did:web:a", "123456782", None, 3_000),
    ] {
        store.insert_held(&h).await.unwrap();
    }
    assert!(matches!(
        store
            .insert_held(&held("h-long", "did:web:x", "123456782", None, 1))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.held_for("did:web:a", "p", &bsn, now).await.unwrap(),
        Some(held("h-long", "did:web:a", "999999990", Some(9_000), 1_000))
    );
    assert_eq!(
        store.held_for("did:web:a", "q", &bsn, now).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .held_for("did:web:b", "p", &bsn, now)
            .await
            .unwrap()
            .map(|h| h.id),
        Some("h-other-issuer".to_owned())
    );
    // Not issued credentials: nothing there, and held ones are not found as issued.
    assert!(matches!(
        store.credential("h-long").await,
        Err(StoreError::NotFound)
    ));
    let ids: Vec<String> = store
        .list_held()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(
        ids,
        [
            "h-short",
            "h-expired",
            "h-other-bsn",
            "h-other-issuer",
            "h-long"
        ]
    );
    store.remove_held("h-long").await.unwrap();
    assert!(matches!(
        store.remove_held("h-long").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .held_for("did:web:a", "p", &bsn, now)
            .await
            .unwrap()
            .map(|h| h.id),
        Some("h-short".to_owned())
    );
    assert_eq!(
        store.held_for("did:web:a", "p", &bsn, 6_001).await.unwrap(),
        None
    );
    let view = held("v", "did:web:a", "999999990", Some(10), 1);
    assert_eq!(view.view(11).bsn, "******990");
    assert_eq!(view.view(11).status, "expired");
    assert_eq!(view.view(10).status, "active");
}

async fn credentials(url: &str) {
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
            .insert_credential(&record("c1", "did:web:x", "111222333", None))
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

    let list = async |f: CredentialFilter| {
        let mut ids: Vec<String> = store
            .list_credentials(&f, now)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
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
    store.close().await;

    // Reopening keeps everything (migrations are not re-applied).
    let again = Store::open(url).await.expect("reopen");
    assert_eq!(again.revoked_ids().await.unwrap(), ["c1"]);
    assert_eq!(again.credential("c3").await.unwrap().bsn, bsn("123456782"));
    again.close().await;
}

/// Tokens and the replay store: a `jti` seen before (even in the same batch) stores no token;
/// the purge forgets expired `jti`s and tokens, and keeps a `jti` that has not expired.
async fn tokens_and_replays(url: &str) {
    let store = Store::open(url).await.expect("open");
    let (j1, j2, j1again) = (jti("j1", 110), jti("j2", 5_000), jti("j1", 110));
    // h2 is bound to a client certificate: its x5t#S256 is stored and read back.
    let (t1, t2, t3) = (token("h1", 400), bound(token("h2", 400)), token("h3", 400));
    assert_eq!(
        commit_grants(
            &store,
            &[
                (j1.clone(), t1.clone()),
                (j2.clone(), t2.clone()),
                (j1again.clone(), t3.clone())
            ]
        )
        .await
        .unwrap(),
        [true, true, false]
    );
    assert_eq!(
        commit_grants(&store, &[(j1again.clone(), t3.clone())])
            .await
            .unwrap(),
        [false]
    );
    assert_eq!(store.token("h1").await.unwrap(), t1);
    assert_eq!(store.token("h2").await.unwrap(), t2);
    assert!(matches!(store.token("h3").await, Err(StoreError::NotFound)));
    assert_eq!(store.token_count().await.unwrap(), 2);
    assert_eq!(store.active_token_count(399).await.unwrap(), 2);
    assert_eq!(store.active_token_count(400).await.unwrap(), 0);
    assert!(
        store
            .audit_rows(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "grants alone append no audit row"
    );
    assert_eq!(
        store.purge_expired(450).await.unwrap(),
        3,
        "j1, h1 and h2 expired; j2 kept"
    );
    assert_eq!(store.token_count().await.unwrap(), 0);
    assert_eq!(
        commit_grants(&store, &[(j2.clone(), t3.clone())])
            .await
            .unwrap(),
        [false],
        "j2 still remembered"
    );
    assert_eq!(store.token_count().await.unwrap(), 0, "so h3 is not stored");
    store.close().await;
}

/// A purge larger than one statement's chunk removes everything expired, patients included;
/// an unexpired `jti` and token survive it.
async fn chunked_purge(url: &str) {
    let store = Store::open(url).await.expect("open");
    let many = 2 * PURGE_CHUNK + 50;
    insert_fresh(
        &store,
        (0..many)
            .map(|i| (jti(&format!("m{i}"), 120), token(&format!("m{i}"), 400)))
            .chain([(jti("live", 5_000), token("live", 5_000))]),
    )
    .await;
    for hash in ["m7", "live"] {
        store
            .add_token_patients(hash, &["pat-1".to_owned()])
            .await
            .unwrap();
    }
    assert_eq!(store.token_patients("m7").await.unwrap(), ["pat-1"]);
    assert_eq!(
        store.purge_expired(450).await.unwrap(),
        2 * many as u64,
        "every expired jti and token, over several statements"
    );
    assert_eq!(store.token_count().await.unwrap(), 1, "only the live token");
    assert!(store.token_patients("m7").await.unwrap().is_empty());
    assert_eq!(store.token_patients("live").await.unwrap(), ["pat-1"]);
    assert_eq!(
        commit_grants(&store, &[(jti("live", 5_000), token("x", 5_000))])
            .await
            .unwrap(),
        [false],
        "an unexpired jti survives the purge"
    );
    assert_eq!(store.purge_expired(450).await.unwrap(), 0, "nothing left");
    store.close().await;
}

/// Audit rows: a sequence number taken by another writer is a conflict, and the batch adds
/// nothing (neither its rows nor its grants). On a SQLite file the writer's own connection
/// says the same.
async fn audit_row_conflict(url: &str) {
    let row = |seq: i64| AuditRow {
        seq,
        time_unix: 1,
        requester: "did:web:a".into(),
        bsn: String::new(),
        record: "{}".into(),
        prev_hash: "p".into(),
        hash: format!("h{seq}"),
    };
    let store = Store::open(url).await.expect("open");
    store
        .commit_batch(&[], |head, fresh| {
            assert_eq!(head, (0, GENESIS_HASH.to_owned()));
            assert!(fresh.is_empty());
            vec![row(1), row(2)]
        })
        .await
        .unwrap();
    let (grant, its_token) = (jti("g", 5_000), token("g", 5_000));
    assert!(matches!(
        store
            .commit_batch(&[(&grant, &its_token)], |_, _| vec![row(3), row(2)])
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.audit_head().await.unwrap(),
        (2, "h2".to_owned()),
        "the conflicting batch added no row"
    );
    assert_eq!(
        store.audit_rows(&Default::default()).await.unwrap().len(),
        2
    );
    assert_eq!(store.token_count().await.unwrap(), 0, "nor its token");
    if let Some(file) = store.sqlite_file() {
        let mut writer = BatchWriter::open(file, store.wal_control()).expect("writer");
        assert!(matches!(
            writer.commit_batch(&[(&grant, &its_token)], |_, _| vec![row(3), row(1)]),
            Err(StoreError::Conflict)
        ));
        assert_eq!(store.audit_head().await.unwrap(), (2, "h2".to_owned()));
        assert_eq!(store.token_count().await.unwrap(), 0);
    }
    assert_eq!(
        commit_grants(&store, &[(grant, its_token)]).await.unwrap(),
        [true],
        "nor its jti"
    );
    store.close().await;
}

/// The Hub's tables: upsert on (account, BSN, gravida), visibility by share (name or AGB),
/// share removal, bulk import, disabling an account.
async fn hub_tables(url: &str) {
    use crate::hub::dossier::{Dossier, DossierRecord, Filter};
    use crate::hub::{add_account, AccountSpec};
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
    let d = |patient: &str, gravida: i64, para: i64| Dossier {
        client_bsn: bsn(patient),
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
    let keys = |rows: Vec<DossierRecord>| rows.into_iter().map(|r| r.key).collect::<Vec<_>>();
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

/// A database migrated by a newer binary is refused, naming both versions.
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
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, supported } if supported == super::migrations::LATEST),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version 99 is newer than this binary supports ({}); upgrade poortwachter",
            super::migrations::LATEST
        )
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
    assert_eq!(
        versions,
        (1..=super::migrations::LATEST).collect::<Vec<_>>()
    );
    conn.close().await.unwrap();
}

/// The group commit: on a SQLite file through its own connection ([`BatchWriter`]), on
/// PostgreSQL through the pool; the same outcome either way.
async fn group_commit(url: &str) {
    let store = Store::open(url).await.expect("open");
    let mut writer = store
        .sqlite_file()
        .map(|f| BatchWriter::open(f, store.wal_control()).expect("writer"));
    let token = |hash: &str| token(hash, i64::MAX / 2);
    let jti = |j: &str| jti(j, i64::MAX / 2);
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
            (jti("b"), bound(token("tb"))),
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
    assert_eq!(store.token("ta").await.unwrap(), token("ta"));
    // The writer's own SQL (SQLite's batch writer, PostgreSQL's multi-row insert) stores the
    // binding too.
    assert_eq!(store.token("tb").await.unwrap(), bound(token("tb")));
    assert!(matches!(store.token("tc").await, Err(StoreError::NotFound)));
    // A batch of records only.
    let (result, _) = commit(Vec::new(), 1000).await;
    assert_eq!(result.unwrap(), Vec::<bool>::new());
    assert_eq!(store.audit_head().await.unwrap().0, 1005);
    store.close().await;
}

/// The background checkpoints move committed rows into the database file itself (automatic
/// checkpoints are off on every connection): the file alone, without its WAL, holds them.
async fn checkpoints_fill_the_database_file(url: &str) {
    let store = Store::open(url).await.expect("open");
    let file = store.sqlite_file().expect("a SQLite file").to_path_buf();
    let mut writer = BatchWriter::open(&file, store.wal_control()).expect("writer");
    for n in [3, 2, 1000] {
        writer
            .commit_batch(&[], |head, _| batch_rows(head, n))
            .unwrap();
    }
    assert_eq!(store.audit_head().await.unwrap().0, 1005);
    let copy = file.with_extension("copy.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        std::fs::copy(&file, &copy).unwrap();
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
    store.close().await;
}

/// Under steady writing the WAL is started over (asked by the checkpointer, done by the writer
/// between batches) instead of growing: 32 MiB of rows through a 1 MiB limit stay in a WAL of
/// a few MiB.
async fn wal_restarts_under_steady_writing(url: &str) {
    let store = Store::open(url).await.expect("open");
    let file = store.sqlite_file().expect("a SQLite file").to_path_buf();
    let mut w = BatchWriter::open(&file, store.wal_control()).expect("writer");
    store.wal_control().set_restart_frames(256);
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
    store.close().await;
}

/// Purges what expired before 450 while `n` records are written at the same time (they share
/// the writer's commits); every record must be committed.
async fn purge_while_writing(audit: &Writer, n: usize) -> Result<u64, StoreError> {
    let writes: Vec<_> = (0..n)
        .map(|n| {
            let audit = audit.clone();
            tokio::spawn(async move { audit.write(audit_record(n)).await })
        })
        .collect();
    let purged = audit.purge_expired(450).await;
    for w in writes {
        w.await.expect("task").expect("record written");
    }
    purged
}

/// The writer's purge (on SQLite it runs inside the writer's commits, on PostgreSQL through the
/// pool): every expired `jti` and token goes, patients included, over more than one step,
/// while records keep being committed; unexpired rows and the chain stay intact.
async fn writer_purge(url: &str) {
    let store = Store::open(url).await.expect("open");
    // More than two steps of a purge on its own (200 rows), expired at 120; a live one.
    let many = 2 * PURGE_CHUNK + 75;
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
    let audit = Writer::spawn(store.clone()).expect("writer");
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
        commit_grants(&store, &[(jti("live", 5_000), token("x", 5_000))])
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
            crate::audit::verify(&rows),
            ChainReport::Intact { records: 40, .. }
        ),
        "{:?}",
        crate::audit::verify(&rows)
    );
}

/// A purge step that fails (here: a trigger refuses the delete) ends that purge with an error,
/// in a commit of its own and inside one that carries records; the records are committed all
/// the same, and the next purge starts afresh.
async fn writer_purge_failure(url: &str) {
    let store = Store::open(url).await.expect("open");
    insert_fresh(
        &store,
        (0..30).map(|i| (jti(&format!("f{i}"), 120), token(&format!("f{i}"), 120))),
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
    let audit = Writer::spawn(store.clone()).expect("writer");
    let err = audit.purge_expired(450).await.expect_err("purge refused");
    assert!(err.to_string().contains("refused by test"), "{err}");
    // Again, with records arriving at the same time: they are committed, the purge fails.
    let second = purge_while_writing(&audit, 20).await;
    assert!(second.is_err(), "{second:?}");
    assert_eq!(store.token_count().await.unwrap(), 30, "nothing purged");
    assert_eq!(
        store.audit_rows(&Default::default()).await.unwrap().len(),
        20,
        "the records were committed"
    );
    sqlx::query("DROP TRIGGER refuse_purge")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(audit.purge_expired(450).await.unwrap(), 60);
    assert_eq!(store.token_count().await.unwrap(), 0);
}

/// MedMij codes and tokens through the writer (with their audit records), the redeem that finds
/// a code spent (no token, the earlier one revoked, the record a denial), sessions and the purge.
async fn medmij_codes_tokens_sessions(url: &str) {
    use super::medmij::{MedmijCode, MedmijOutcome, MedmijToken, MedmijWrite};
    let store = Store::open(url).await.expect("open");
    let writer = Writer::spawn(store.clone()).expect("writer");
    let bsn = Bsn::parse("999999990").unwrap();
    let code = |hash: &str, expires_at: i64| MedmijCode {
        hash: hash.into(),
        client_id: "pgo.example.nl".into(),
        redirect_uri: "https://pgo.example.nl/cb".into(),
        aanbieder: "umcharderwijk".into(),
        gegevensdienst: "48".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        bsn: bsn.clone(),
        correlation_id: Some("corr".into()),
        issued_at: 100,
        expires_at,
        used: false,
    };
    let token = |hash: &str| MedmijToken {
        hash: hash.into(),
        client_id: "pgo.example.nl".into(),
        aanbieder: "umcharderwijk".into(),
        gegevensdienst: "48".into(),
        bsn: bsn.clone(),
        correlation_id: Some("corr".into()),
        issued_at: 500,
        expires_at: 1400,
        revoked: false,
    };
    let redeem = |c: &str, t: &str, now: i64| MedmijWrite::Redeem {
        code_hash: c.into(),
        token: token(t),
        now,
    };
    for (c, expires) in [("c1", 1000), ("c2", 200), ("c3", 1000)] {
        let done = writer
            .write_medmij(MedmijWrite::Code(code(c, expires)), audit_record(1))
            .await
            .unwrap();
        assert_eq!(done, MedmijOutcome::Done);
    }
    assert_eq!(
        store.medmij_code("c1").await.unwrap(),
        Some(code("c1", 1000))
    );
    assert_eq!(store.medmij_code("nope").await.unwrap(), None);
    // Redeemed once: the token is stored, the code spent.
    let first = writer
        .write_medmij(redeem("c1", "t1", 500), audit_record(2))
        .await;
    assert_eq!(first.unwrap(), MedmijOutcome::Done);
    assert_eq!(store.medmij_token("t1").await.unwrap(), Some(token("t1")));
    assert!(store.medmij_code("c1").await.unwrap().unwrap().used);
    // Again: no token, and the first one is revoked.
    let again = writer
        .write_medmij(redeem("c1", "t2", 501), audit_record(3))
        .await;
    assert_eq!(again.unwrap(), MedmijOutcome::Spent);
    assert_eq!(store.medmij_token("t2").await.unwrap(), None);
    assert!(store.medmij_token("t1").await.unwrap().unwrap().revoked);
    // An expired code issues nothing.
    let late = writer
        .write_medmij(redeem("c2", "t3", 500), audit_record(4))
        .await;
    assert_eq!(late.unwrap(), MedmijOutcome::Spent);
    assert_eq!(store.medmij_token("t3").await.unwrap(), None);
    // A code presented again after its redeem: Revoke.
    writer
        .write_medmij(redeem("c3", "t4", 500), audit_record(5))
        .await
        .unwrap();
    let revoked = writer
        .write_medmij(
            MedmijWrite::Revoke {
                code_hash: "c3".into(),
            },
            audit_record(6),
        )
        .await;
    assert_eq!(revoked.unwrap(), MedmijOutcome::Done);
    assert!(store.medmij_token("t4").await.unwrap().unwrap().revoked);
    // Every write has its record in the chain; the spent redeems are recorded as denials.
    let rows = store
        .audit_rows(&super::AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 8);
    let records: Vec<AuditRecord> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.record).unwrap())
        .collect();
    let denied: Vec<&str> = records
        .iter()
        .filter(|r| r.decision == "deny")
        .map(|r| r.rule.as_str())
        .collect();
    assert_eq!(denied, [super::writer::MEDMIJ_SPENT_RULE; 2]);
    assert!(matches!(
        crate::audit::verify(&rows),
        ChainReport::Intact { .. }
    ));
    // Sessions: stored, replaced, expired, deleted.
    store
        .medmij_session_put("s1", "{\"a\":1}", 1000)
        .await
        .unwrap();
    store
        .medmij_session_put("s1", "{\"a\":2}", 1000)
        .await
        .unwrap();
    assert_eq!(
        store.medmij_session("s1", 999).await.unwrap().as_deref(),
        Some("{\"a\":2}")
    );
    assert_eq!(store.medmij_session("s1", 1000).await.unwrap(), None);
    store.medmij_session_delete("s1").await.unwrap();
    store.medmij_session_put("s2", "{}", 100).await.unwrap();
    // The purge: expired sessions and tokens; codes a day after they expired.
    let purged = store.medmij_purge(2000).await.unwrap();
    assert_eq!(purged, 3, "the session s2 and the tokens t1 and t4");
    assert!(
        store.medmij_code("c1").await.unwrap().is_some(),
        "kept a day"
    );
    assert_eq!(
        store.medmij_purge(1000 + 86_401).await.unwrap(),
        3,
        "the codes"
    );
    assert_eq!(store.medmij_code("c1").await.unwrap(), None);
}
