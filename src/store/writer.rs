//! The single writer of the hot tables: audit records, and for each issued token its grant's
//! `jti`, the token hash and its audit record together, plus the purge of expired `jti`s and
//! tokens. One group commit: whatever arrived while the previous batch committed goes into one
//! transaction (one sync); each caller is answered only when its batch is durable. If the store
//! fails, callers get an error and must not answer the client (fail closed).
//!
//! On a SQLite file the writer is an OS thread with its own connection ([`super::sqlite`]); on
//! PostgreSQL a task on the pool.
//!
//! **Invariant:** nothing else appends to the audit log or stores tokens and `jti`s.

use tokio::sync::{mpsc, oneshot};

use super::medmij::{MedmijOutcome, MedmijWrite};
use super::sqlite::BatchWriter;
use super::{Store, StoreError, TokenRecord, UsedJti};
use crate::audit::{chain, AuditRecord, AuditRow, REPLAY_RULE};

/// Most records per transaction.
const MAX_BATCH: usize = 512;

// A job moves through the channel once; boxing the larger variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// A record.
    Record(AuditRecord, Answer<()>),
    /// A grant's jti and token with its audit record; answered with whether the jti was fresh
    /// (if not, no token is stored and the record says the grant was refused as a replay).
    Grant(UsedJti, TokenRecord, AuditRecord, Answer<bool>),
    /// A MedMij code or token with its audit record; answered with what the write did (a
    /// redeemed code that was spent already stores no token, and its record says so).
    Medmij(MedmijWrite, AuditRecord, Answer<MedmijOutcome>),
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

/// Handle to the writer.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::Sender<Message>,
    /// Whether the last commit succeeded (see [`Writer::is_healthy`]).
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
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

    /// Stores a MedMij code or token (or spends a code and revokes its token) together with its
    /// audit record, in one transaction. A redeemed code that was spent already or expired
    /// stores no token: `Ok(MedmijOutcome::Spent)`, and the record is written as refused.
    pub async fn write_medmij(
        &self,
        write: MedmijWrite,
        record: AuditRecord,
    ) -> Result<MedmijOutcome, StoreError> {
        let (done, answer) = Answer::new();
        self.send(Job::Medmij(write, record, done)).await?;
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
        let medmij = medmij_of(&batch);
        let mut result = Err(StoreError::Unavailable("not attempted".into()));
        // The head is read inside the transaction (under a lock on PostgreSQL); a conflict
        // (another process appending between our read and our write) is retried.
        for _ in 0..5 {
            result = store
                .commit_batch_with(&grants, &medmij, |head, fresh, outcomes| {
                    rows_of(&batch, head, fresh, outcomes)
                })
                .await;
            if !matches!(result, Err(StoreError::Conflict)) {
                break;
            }
        }
        drop((grants, medmij));
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
            let medmij = medmij_of(&batch);
            // `BEGIN IMMEDIATE` holds the write lock from the head read on: no conflict to retry.
            let result = conn.commit_batch_with(&grants, &medmij, |head, fresh, outcomes| {
                rows_of(&batch, head, fresh, outcomes)
            });
            drop((grants, medmij));
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
            Job::Record(..) | Job::Medmij(..) => None,
        })
        .collect()
}

fn medmij_of(batch: &[Job]) -> Vec<&MedmijWrite> {
    batch
        .iter()
        .filter_map(|j| match j {
            Job::Medmij(w, _, _) => Some(w),
            Job::Record(..) | Job::Grant(..) => None,
        })
        .collect()
}

/// What the record of a redeemed code that was spent already says.
pub const MEDMIJ_SPENT_RULE: &str = "code already used or expired; the token it issued is revoked";

/// The batch's chained rows on `head`; a grant whose `jti` was not fresh is recorded as a
/// refused replay.
fn rows_of(
    batch: &[Job],
    (seq, hash): (i64, String),
    fresh: &[bool],
    outcomes: &[MedmijOutcome],
) -> Vec<AuditRow> {
    let mut fresh = fresh.iter();
    let mut outcomes = outcomes.iter();
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
            Job::Medmij(_, r, _) => {
                if outcomes.next() == Some(&MedmijOutcome::Spent) {
                    let mut r = r.clone();
                    r.decision = "deny".into();
                    MEDMIJ_SPENT_RULE.clone_into(&mut r.rule);
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
    result: Result<(Vec<bool>, Vec<MedmijOutcome>), StoreError>,
    healthy: &std::sync::atomic::AtomicBool,
) {
    healthy.store(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
    let outcome: Result<(Vec<bool>, Vec<MedmijOutcome>), String> =
        result.map_err(|e| e.to_string());
    let mut fresh = outcome.as_ref().ok().map(|(f, _)| f.clone().into_iter());
    let mut medmij = outcome.as_ref().ok().map(|(_, m)| m.clone().into_iter());
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
            Job::Medmij(_, _, done) => {
                let answer = match (&outcome, medmij.as_mut()) {
                    (Ok(_), Some(m)) => m
                        .next()
                        .ok_or_else(|| StoreError::Unavailable("no outcome".into())),
                    (Err(e), _) => Err(failed(e)),
                    (Ok(_), None) => Err(StoreError::Unavailable("no outcome".into())),
                };
                done.with(answer)
            }
        });
    }
    crate::inbox::deliver_all(answers);
}
