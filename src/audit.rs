//! The NEN 7513 audit log: one record per token request and per proxied request, allowed or not.
//! Append-only and hash-chained (each record holds the SHA-256 of the previous one), written by
//! one group-commit writer: records that arrive together share a transaction and a sync, and each
//! caller is answered only when its record is durable. If the store fails, callers get an error
//! and must not answer the client (fail closed).
//!
//! **Invariant:** only the writer task appends; `verify` finds a changed, inserted or deleted
//! record. Missing last records cannot be seen from the chain alone: an [`Anchor`] (a record's
//! sequence number and hash, kept elsewhere: the server logs the head every minute, `audit
//! verify` prints it) makes [`ChainVerifier`] find them, and any rewrite of the chain up to it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::store::sqlite::BatchWriter;
use crate::store::{AuditRow, Store, StoreError, TokenRecord, UsedJti, GENESIS_HASH};

/// Most records per transaction.
const MAX_BATCH: usize = 512;

/// The user, as the requester vouched for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditUser {
    /// UZI number.
    pub uzi: String,
    /// Name.
    pub name: String,
    /// Role code.
    pub role: String,
}

/// What happened. Field order is the canonical JSON order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Request id (also sent to the source system as `X-Poortwachter-Request-Id`).
    pub request_id: String,
    /// `token` or `proxy`.
    pub kind: String,
    /// Requester DID (for a refused grant: the claimed `iss`, if any).
    pub requester: String,
    /// The user.
    pub user: Option<AuditUser>,
    /// purposeOfUse.
    pub purpose: String,
    /// The patient's BSN (empty when unknown).
    pub bsn: String,
    /// HTTP method.
    pub method: String,
    /// Path with query, BSN-like numbers removed.
    pub path: String,
    /// `permit`, `deny` or `error`.
    pub decision: String,
    /// The rule that decided, or the reason.
    pub rule: String,
    /// Status answered to the client.
    pub status: u16,
    /// Status the source system answered, if it was asked.
    pub upstream_status: Option<u16>,
}

impl AuditRecord {
    /// Takes requester, purpose, patient and user from a live token.
    pub fn fill_from_token(&mut self, ctx: &crate::oauth::TokenContext) {
        self.requester.clone_from(&ctx.record.requester);
        self.purpose.clone_from(&ctx.record.purpose);
        self.bsn.clone_from(&ctx.record.bsn);
        self.user = ctx.user.as_ref().map(|u| AuditUser {
            uzi: u.uzi.clone(),
            name: u.name.clone(),
            role: u.role.clone(),
        });
    }
}

/// Chain hash of a record: SHA-256 of the previous hash, a newline and the record JSON, hex.
#[must_use]
pub fn chain_hash(prev_hash: &str, record_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(record_json.as_bytes());
    hex::encode(h.finalize())
}

/// Replaces every run of 8 or 9 digits that passes the BSN 11-check with `***`, so no BSN ends
/// up in a logged path.
#[must_use]
pub fn redact_bsns(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let run = &s[start..i];
            if crate::bsn::Bsn::parse(run).is_ok() {
                out.push_str("***");
            } else {
                out.push_str(run);
            }
        } else {
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

// A job moves through the channel once; boxing the larger variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// A record.
    Record(AuditRecord, Answer<()>),
    /// A grant's jti and token with its audit record; answered with whether the jti was fresh
    /// (if not, no token is stored and the record says the grant was refused as a replay).
    Grant(UsedJti, TokenRecord, AuditRecord, Answer<bool>),
}

/// What the writer's channel carries (a purge is rare; boxing jobs would cost an allocation
/// each).
#[allow(clippy::large_enum_variant)]
enum Message {
    Job(Job),
    /// Forget the `jti`s and tokens that expired before this time (unix seconds); answered with
    /// how many were removed.
    Purge(i64, Answer<u64>),
}

/// Where a job's outcome goes: the caller's channel, through its thread's inbox if it has one.
struct Answer<T> {
    to: oneshot::Sender<Result<T, StoreError>>,
    inbox: Option<std::sync::Arc<crate::inbox::Inbox>>,
}

impl<T: Send + 'static> Answer<T> {
    fn new() -> (Self, oneshot::Receiver<Result<T, StoreError>>) {
        let (to, from) = oneshot::channel();
        let inbox = crate::inbox::current();
        (Self { to, inbox }, from)
    }

    fn with(
        self,
        result: Result<T, StoreError>,
    ) -> (
        Option<std::sync::Arc<crate::inbox::Inbox>>,
        Box<dyn FnOnce() + Send>,
    ) {
        let to = self.to;
        (
            self.inbox,
            Box::new(move || {
                let _ = to.send(result);
            }),
        )
    }
}

/// Handle to the audit writer task.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
    /// Whether the last commit succeeded (see [`AuditLog::is_healthy`]).
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AuditLog {
    /// Starts the writer on `store`.
    pub fn spawn(store: Store) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(8192);
        let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = healthy.clone();
        match store.sqlite_file() {
            Some(file) => {
                let conn = BatchWriter::open(file, store.wal_control())?;
                std::thread::Builder::new()
                    .name("audit-writer".into())
                    .spawn(move || sqlite_writer(conn, rx, &flag))
                    .map_err(|e| StoreError::Unavailable(format!("audit writer thread: {e}")))?;
            }
            None => {
                tokio::spawn(writer(store, rx, flag));
            }
        }
        Ok(Self { tx, healthy })
    }

    /// `false` once a commit failed, until one succeeds again. The proxy asks before it
    /// forwards: while the log cannot be written, no request reaches the source system (its
    /// answer could not be returned anyway). Every refusal is itself audited, so the first
    /// request after the store is back finds out and the next one passes.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends `record`; returns when it is durable.
    pub async fn write(&self, record: AuditRecord) -> Result<(), StoreError> {
        let (done, answer) = Answer::new();
        self.send(Job::Record(record, done)).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Stores a grant's `jti` and token together with its audit record, in the same transaction
    /// (one sync for both). `Ok(false)`: the `jti` was used before; no token was stored and the
    /// record was written as a refused replay.
    pub async fn write_grant(
        &self,
        jti: UsedJti,
        token: TokenRecord,
        record: AuditRecord,
    ) -> Result<bool, StoreError> {
        let (done, answer) = Answer::new();
        self.send(Job::Grant(jti, token, record, done)).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Removes the `jti`s and tokens (with their bound patients) that expired before `before`
    /// (unix seconds); returns how many. On a SQLite file the writer does it, a few rows in each
    /// commit (no other connection takes the write lock, so no commit waits for one); elsewhere
    /// [`Store::purge_expired`] does.
    pub async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        let (done, answer) = Answer::new();
        self.tx
            .send(Message::Purge(before, done))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.send(Message::Job(job)).await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("audit writer stopped".into())
}

/// What a refused replay's record says.
pub const REPLAY_RULE: &str = "jti has already been used";

/// The writer: on its own thread with its own connection for a SQLite file (see
/// [`crate::store::sqlite`]), else a task on the pool.
async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Message>,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    while let Some(first) = rx.recv().await {
        let (batch, purges) = collect(first, &mut rx);
        for (before, done) in purges {
            let store = store.clone();
            tokio::spawn(async move {
                let (inbox, deliver) = done.with(store.purge_expired(before).await);
                crate::inbox::deliver_all(vec![(inbox, deliver)]);
            });
        }
        if batch.is_empty() {
            continue;
        }
        let grants = grants_of(&batch);
        let mut result = Err(StoreError::Unavailable("not attempted".into()));
        // The head is read inside the transaction (under a lock on PostgreSQL); a conflict
        // (another process appending between our read and our write) is retried.
        for _ in 0..5 {
            result = store
                .commit_batch(&grants, |head, fresh| rows_of(&batch, head, fresh))
                .await;
            if !matches!(result, Err(StoreError::Conflict)) {
                break;
            }
        }
        drop(grants);
        answer(batch, result, &healthy);
    }
}

/// The writer for a SQLite file: blocking, on a thread of its own.
fn sqlite_writer(
    mut conn: BatchWriter,
    mut rx: mpsc::Receiver<Message>,
    healthy: &std::sync::atomic::AtomicBool,
) {
    let mut purge_waiting: Vec<Answer<u64>> = Vec::new();
    loop {
        // While a purge has rows left and no record waits, it goes on in commits of its own.
        let first = if conn.purging() {
            match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Empty) => {
                    conn.purge_step();
                    answer_purge_if_finished(&mut conn, &mut purge_waiting);
                    conn.restart_wal_if_asked();
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        } else {
            match rx.blocking_recv() {
                Some(job) => job,
                None => break,
            }
        };
        let (batch, purges) = collect(first, &mut rx);
        for (before, done) in purges {
            conn.schedule_purge(before);
            purge_waiting.push(done);
        }
        if !batch.is_empty() {
            let grants = grants_of(&batch);
            // `BEGIN IMMEDIATE` holds the write lock from the head read on: no conflict to retry.
            let result = conn.commit_batch(&grants, |head, fresh| rows_of(&batch, head, fresh));
            drop(grants);
            answer(batch, result, healthy);
        }
        answer_purge_if_finished(&mut conn, &mut purge_waiting);
        conn.restart_wal_if_asked();
    }
}

/// Once the purge is over, tells those waiting for it how many rows it removed, or why it
/// failed.
fn answer_purge_if_finished(conn: &mut BatchWriter, waiting: &mut Vec<Answer<u64>>) {
    let Some(outcome) = conn.finished_purge() else {
        return;
    };
    let outcome = outcome.map_err(|e| e.to_string());
    let answers = waiting
        .drain(..)
        .map(|done| done.with(outcome.clone().map_err(StoreError::Unavailable)))
        .collect();
    crate::inbox::deliver_all(answers);
}

/// `first` and whatever else is waiting, up to [`MAX_BATCH`] jobs: the records and grants, and
/// apart the purge requests.
fn collect(
    first: Message,
    rx: &mut mpsc::Receiver<Message>,
) -> (Vec<Job>, Vec<(i64, Answer<u64>)>) {
    let (mut batch, mut purges) = (Vec::new(), Vec::new());
    let mut next = Some(first);
    for _ in 0..MAX_BATCH {
        match next.take().or_else(|| rx.try_recv().ok()) {
            Some(Message::Job(job)) => batch.push(job),
            Some(Message::Purge(before, done)) => purges.push((before, done)),
            None => break,
        }
    }
    (batch, purges)
}

fn grants_of(batch: &[Job]) -> Vec<(&UsedJti, &TokenRecord)> {
    batch
        .iter()
        .filter_map(|j| match j {
            Job::Grant(jti, token, _, _) => Some((jti, token)),
            Job::Record(..) => None,
        })
        .collect()
}

/// The batch's chained rows on `head`; a grant whose `jti` was not fresh is recorded as a
/// refused replay.
fn rows_of(batch: &[Job], (seq, hash): (i64, String), fresh: &[bool]) -> Vec<AuditRow> {
    let mut fresh = fresh.iter();
    let records: Vec<std::borrow::Cow<'_, AuditRecord>> = batch
        .iter()
        .map(|j| match j {
            Job::Record(r, _) => std::borrow::Cow::Borrowed(r),
            Job::Grant(_, _, r, _) => {
                if fresh.next() == Some(&false) {
                    let mut r = r.clone();
                    r.decision = "deny".into();
                    REPLAY_RULE.clone_into(&mut r.rule);
                    r.status = 400;
                    std::borrow::Cow::Owned(r)
                } else {
                    std::borrow::Cow::Borrowed(r)
                }
            }
        })
        .collect();
    chain(seq, &hash, records.iter().map(AsRef::as_ref)).0
}

/// Tells every caller in `batch` the outcome.
fn answer(
    batch: Vec<Job>,
    result: Result<Vec<bool>, StoreError>,
    healthy: &std::sync::atomic::AtomicBool,
) {
    healthy.store(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
    let outcome: Result<Vec<bool>, String> = result.map_err(|e| e.to_string());
    let mut fresh = outcome.as_ref().ok().map(|f| f.clone().into_iter());
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch {
        let failed = |e: &String| StoreError::Unavailable(e.clone());
        answers.push(match job {
            Job::Record(_, done) => done.with(outcome.as_ref().map(|_| ()).map_err(failed)),
            Job::Grant(_, _, _, done) => {
                let answer = match (&outcome, fresh.as_mut()) {
                    (Ok(_), Some(f)) => Ok(f.next().unwrap_or(false)),
                    (Err(e), _) => Err(failed(e)),
                    (Ok(_), None) => Err(StoreError::Unavailable("no outcome".into())),
                };
                done.with(answer)
            }
        });
    }
    crate::inbox::deliver_all(answers);
}

fn chain<'a>(
    mut seq: i64,
    prev: &str,
    records: impl Iterator<Item = &'a AuditRecord>,
) -> (Vec<AuditRow>, (i64, String)) {
    let mut prev = prev.to_owned();
    let mut rows = Vec::new();
    for r in records {
        seq += 1;
        let record = serde_json::to_string(r).unwrap_or_default();
        let hash = chain_hash(&prev, &record);
        let time_unix =
            time::OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
                .map_or(0, time::OffsetDateTime::unix_timestamp);
        rows.push(AuditRow {
            seq,
            time_unix,
            requester: r.requester.clone(),
            bsn: r.bsn.clone(),
            record,
            prev_hash: prev.clone(),
            hash: hash.clone(),
        });
        prev = hash;
    }
    (rows, (seq, prev))
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every record is in place: count and head hash.
    Intact {
        /// Records.
        records: usize,
        /// The last hash.
        head: String,
    },
    /// The first problem.
    Broken {
        /// The sequence number where the chain breaks.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// A record's sequence number and hash, kept outside the database (`SEQ:HASH`): the chain must
/// still hold exactly that record there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The record's sequence number (from 1).
    pub seq: i64,
    /// Its hash (64 lowercase hex digits).
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("expected SEQ:HASH (a record number and its 64-digit hex hash), got {s:?}");
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().ok().filter(|n| *n >= 1).ok_or_else(bad)?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return Err(bad());
        }
        Ok(Self {
            seq,
            hash: hash.to_owned(),
        })
    }
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// Checks the chain one record at a time (the log can hold more records than fit in memory):
/// sequence without gaps from 1, each `prev_hash` the previous `hash`, each hash recomputed from
/// its record, filter columns equal to the record, and each [`Anchor`] given still in place.
#[derive(Debug)]
pub struct ChainVerifier {
    records: i64,
    prev: String,
    /// Anchors by sequence number, checked as their record passes.
    anchors: std::collections::BTreeMap<i64, String>,
}

impl ChainVerifier {
    /// A verifier that also checks `anchors` (records seen earlier, kept elsewhere).
    #[must_use]
    pub fn new(anchors: &[Anchor]) -> Self {
        Self {
            records: 0,
            prev: GENESIS_HASH.to_owned(),
            anchors: anchors.iter().map(|a| (a.seq, a.hash.clone())).collect(),
        }
    }

    /// The next record in sequence order; `Err` with the first problem (stop there).
    pub fn push(&mut self, row: &AuditRow) -> Result<(), ChainReport> {
        let expected_seq = self.records + 1;
        let broken = |seq: i64, reason: &str| {
            Err(ChainReport::Broken {
                seq,
                reason: reason.to_owned(),
            })
        };
        if row.seq != expected_seq {
            return broken(
                expected_seq,
                &format!(
                    "record {expected_seq} is missing (next present is {})",
                    row.seq
                ),
            );
        }
        if row.prev_hash != self.prev {
            return broken(row.seq, "prev_hash does not match the previous record (a record before it was changed or removed)");
        }
        if chain_hash(&row.prev_hash, &row.record) != row.hash {
            return broken(
                row.seq,
                "hash does not match the record (the record was changed)",
            );
        }
        let consistent = serde_json::from_str::<AuditRecord>(&row.record)
            .is_ok_and(|r| r.requester == row.requester && r.bsn == row.bsn);
        if !consistent {
            return broken(
                row.seq,
                "the requester or bsn column differs from the record",
            );
        }
        if self.anchors.get(&row.seq).is_some_and(|h| *h != row.hash) {
            return broken(
                row.seq,
                "the record is not the one the anchor names (the chain was rewritten up to here)",
            );
        }
        self.records = row.seq;
        self.prev.clone_from(&row.hash);
        Ok(())
    }

    /// After the last record: intact, or records missing that an anchor names.
    #[must_use]
    pub fn finish(self) -> ChainReport {
        match self.anchors.range(self.records + 1..).next_back() {
            Some((&last, _)) => ChainReport::Broken {
                seq: self.records + 1,
                reason: format!(
                    "records {} to {last} are missing: the anchor names record {last}, the log ends at record {}",
                    self.records + 1,
                    self.records
                ),
            },
            None => ChainReport::Intact {
                records: usize::try_from(self.records).unwrap_or(usize::MAX),
                head: self.prev,
            },
        }
    }
}

/// [`ChainVerifier`] over records in memory.
#[must_use]
pub fn verify_with_anchors(rows: &[AuditRow], anchors: &[Anchor]) -> ChainReport {
    let mut verifier = ChainVerifier::new(anchors);
    for row in rows {
        if let Err(broken) = verifier.push(row) {
            return broken;
        }
    }
    verifier.finish()
}

/// [`verify_with_anchors`] without anchors.
#[must_use]
pub fn verify(rows: &[AuditRow]) -> ChainReport {
    verify_with_anchors(rows, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> AuditRecord {
        AuditRecord {
            time: "2026-11-23T12:00:00.000Z".into(),
            request_id: format!("r{n}"),
            kind: "proxy".into(),
            requester: "did:web:huisarts.example.nl".into(),
            user: None,
            purpose: "p".into(),
            bsn: "999999990".into(),
            method: "GET".into(),
            path: "/Patient/1".into(),
            decision: "permit".into(),
            rule: "patient-read".into(),
            status: 200,
            upstream_status: Some(200),
        }
    }

    #[test]
    fn chain_verifies_and_detects_change_removal_and_reorder() {
        let records: Vec<AuditRecord> = (1..=5).map(record).collect();
        let (rows, (last, head)) = chain(0, GENESIS_HASH, records.iter());
        assert_eq!(last, 5);
        assert_eq!(verify(&rows), ChainReport::Intact { records: 5, head });

        let mut changed = rows.clone();
        changed[2].record = changed[2].record.replace("patient-read", "patient-raed");
        assert!(matches!(
            verify(&changed),
            ChainReport::Broken { seq: 3, .. }
        ));

        let mut removed = rows.clone();
        removed.remove(1);
        assert!(
            matches!(verify(&removed), ChainReport::Broken { seq: 2, ref reason } if reason.contains("missing"))
        );

        let mut rehashed = rows.clone();
        rehashed[1].record = rehashed[1].record.replace("r2", "rX");
        rehashed[1].hash = chain_hash(&rehashed[1].prev_hash, &rehashed[1].record);
        assert!(
            matches!(verify(&rehashed), ChainReport::Broken { seq: 3, .. }),
            "a rehashed record breaks its successor"
        );

        let mut column = rows;
        column[0].bsn = "123456782".into();
        assert!(matches!(
            verify(&column),
            ChainReport::Broken { seq: 1, .. }
        ));
    }

    #[test]
    fn anchors_find_missing_last_records_and_rewrites() {
        let records: Vec<AuditRecord> = (1..=5).map(record).collect();
        let (rows, (_, head)) = chain(0, GENESIS_HASH, records.iter());
        let anchor: Anchor = format!("5:{head}").parse().unwrap();
        assert_eq!(anchor.to_string(), format!("5:{head}"));
        assert_eq!(
            verify_with_anchors(&rows, std::slice::from_ref(&anchor)),
            verify(&rows)
        );
        let third: Anchor = format!("3:{}", rows[2].hash).parse().unwrap();
        assert!(matches!(
            verify_with_anchors(&rows, &[third.clone(), anchor.clone()]),
            ChainReport::Intact { records: 5, .. }
        ));

        // The last two records deleted: the chain alone is intact, the anchor finds them.
        let truncated = &rows[..3];
        assert!(matches!(
            verify(truncated),
            ChainReport::Intact { records: 3, .. }
        ));
        assert_eq!(
            verify_with_anchors(truncated, &[third.clone(), anchor.clone()]),
            ChainReport::Broken {
                seq: 4,
                reason: "records 4 to 5 are missing: the anchor names record 5, the log ends at record 3".into()
            }
        );

        // Rebuilt from record 2 on with consistent hashes: intact alone, not to the anchor.
        let other: Vec<AuditRecord> = (1..=5)
            .map(|n| record(if n >= 2 { n + 10 } else { n }))
            .collect();
        let (rewritten, _) = chain(0, GENESIS_HASH, other.iter());
        assert!(matches!(
            verify(&rewritten),
            ChainReport::Intact { records: 5, .. }
        ));
        assert!(matches!(
            verify_with_anchors(&rewritten, &[third]),
            ChainReport::Broken { seq: 3, .. }
        ));

        for bad in [
            "",
            "5",
            "0:ab",
            &format!("0:{head}"),
            &format!("-1:{head}"),
            "5:xyz",
            &format!("5:{}", head.to_uppercase()),
            &format!("x:{head}"),
            &format!("5:{head}0"),
        ] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn bsns_are_redacted_from_paths() {
        assert_eq!(
            redact_bsns("/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|999999990"),
            "/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|***"
        );
        assert_eq!(
            redact_bsns("/Patient/123456780"),
            "/Patient/123456780",
            "fails the 11-check: not a BSN"
        );
        assert_eq!(
            redact_bsns("/Observation?_count=5&x=77461848"),
            "/Observation?_count=5&x=***"
        );
        assert_eq!(redact_bsns("/é/1234"), "/é/1234");
    }
}
