//! SQLite's own write path for the hot commits (audit records, and a grant's `jti` and token), and
//! the WAL checkpoints.
//!
//! `sqlx` runs every SQLite connection on a worker thread of its own and hands each statement to
//! it and back: a batch commit (begin, `jti`s, tokens, head, records, commit) costs a dozen thread
//! hand-offs, which on a busy 2-core machine cost more than the SQL. `BatchWriter` is one
//! connection owned by the audit writer's thread: a batch is one hand-off in and one out, and its
//! statements are prepared once.
//!
//! Checkpoints: a commit that finds the WAL over SQLite's threshold would copy it back into the
//! database file (and sync that) before it returns: a periodic stall of every request waiting on
//! that commit. Every connection therefore has `wal_autocheckpoint = 0`, and [`Checkpointer`]
//! runs passive checkpoints (which never block a writer) every quarter second on a thread of its
//! own. Those copy the bulk, but under steady load commits arrive during every one of them, so
//! the WAL never starts over by itself and grows without end (186 MB after 10 s of
//! `bench/proxy.sh`). So once a checkpoint finds the WAL past [`WAL_RESTART_FRAMES`], it copies
//! what was committed meanwhile in further rounds until one finds little new, and then asks the
//! writer, which restarts the WAL between two batches with almost nothing left to copy. The file
//! keeps its size and is reused. SQLite syncs the database file only after a checkpoint that
//! copied the whole WAL, which a passive one under load never does: everything the rounds
//! copied stayed dirty in the page cache until the writer's restart wrote it back, 1.3–56 ms
//! under sustained token issuance. So the checkpointer syncs the database file itself before
//! and after its catch-up rounds, and restarts take 1.0–6.4 ms (median 1.6). The restart size is
//! `sqlite_wal_max_mib` (default 64): larger means rarer restarts, more disk, and a longer
//! first phase in which every commit grows the WAL file (fdatasync then writes its inode too).
//!
//! **Invariant:** the SQL here is the SQL of the portable path in [`super`] (the same statements,
//! one row each); both paths are run by the tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension as _};

use super::{StoreError, TokenRecord, UsedJti};
use crate::audit::{AuditRow, GENESIS_HASH};

/// Per-connection settings of every SQLite connection (the pool's and ours): no automatic
/// checkpoints (see the module docs).
pub(super) const CONNECTION_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;";

const INSERT_JTI: &str = "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (issuer, jti) DO NOTHING";
const INSERT_TOKEN: &str = "INSERT INTO tokens (hash, requester, custodian, purpose, credential_ids, bsn, user_identity, issued_at, expires_at, cnf_x5t_s256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
const INSERT_AUDIT: &str = "INSERT INTO audit_log (seq, time_unix, requester, bsn, record, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Default WAL size (MiB) past which the WAL is started over (`sqlite_wal_max_mib`).
pub const DEFAULT_WAL_MAX_MIB: u32 = 64;
/// [`DEFAULT_WAL_MAX_MIB`] in frames of 4 KiB.
pub const WAL_RESTART_FRAMES: i64 = frames_of_mib(DEFAULT_WAL_MAX_MIB);

/// WAL frames (4 KiB pages) in `mib` MiB.
#[must_use]
pub const fn frames_of_mib(mib: u32) -> i64 {
    mib as i64 * 256
}

/// What the checkpointer and the writer share about the WAL.
#[derive(Debug)]
pub struct WalControl {
    /// Set by the checkpointer after a checkpoint of a WAL past `restart_frames`; taken by the
    /// writer.
    restart_wanted: AtomicBool,
    /// The WAL size (frames) that asks for a restart.
    restart_frames: AtomicI64,
}

impl Default for WalControl {
    fn default() -> Self {
        Self {
            restart_wanted: AtomicBool::new(false),
            restart_frames: AtomicI64::new(WAL_RESTART_FRAMES),
        }
    }
}

impl WalControl {
    /// Restarts the WAL past `frames` instead of [`WAL_RESTART_FRAMES`] (`sqlite_wal_max_mib`,
    /// tests).
    pub fn set_restart_frames(&self, frames: i64) {
        self.restart_frames.store(frames, Ordering::Relaxed);
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                StoreError::Conflict
            }
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.execute_batch(CONNECTION_PRAGMAS)?;
    Ok(conn)
}

/// Rows of each table that a purge removes in a commit that also carries records: 16 per
/// commit keep up with 16,000 expired `jti`s a second at 1,000 commits a second, and add only a
/// few pages to a commit that clients wait on.
const PURGE_ROWS_WITH_BATCH: usize = 16;
/// Rows of each table a purge removes in a commit of its own, while no record waits.
const PURGE_ROWS_ALONE: usize = super::PURGE_CHUNK;

const DELETE_TOKEN_PATIENTS: &str = "DELETE FROM token_patients WHERE hash = $1";
const DELETE_TOKEN: &str = "DELETE FROM tokens WHERE hash = $1";

/// A purge under way (see [`BatchWriter::schedule_purge`]).
#[derive(Debug)]
struct Purge {
    before: i64,
    removed: u64,
    done: bool,
    /// Why a step failed: the purge then ends with this error (the next one starts afresh).
    failed: Option<String>,
}

/// One connection that commits batches synchronously; lives on the audit writer's thread.
pub(crate) struct BatchWriter {
    conn: Connection,
    wal: Arc<WalControl>,
    purge: Option<Purge>,
}

/// The writer connection's busy handler. SQLite's own sleeps 1, 2, 5, 10, 15… ms between
/// tries, so a lock another connection held for half a millisecond (a pool write, a
/// checkpoint's restart wait) cost the writer, and every client waiting on its commit, 1–8 ms
/// (measured: up to 33 ms before the commit could start). This one tries again every 50 µs for
/// the first 10 ms, then every millisecond, and gives up after about 5 s like `busy_timeout`.
fn retry_soon(tries: i32) -> bool {
    let pause = match tries {
        0..200 => Duration::from_micros(50),
        200..5_200 => Duration::from_millis(1),
        _ => return false,
    };
    std::thread::sleep(pause);
    true
}

impl BatchWriter {
    /// Opens the database file (already created and migrated by [`super::Store::open`]); `wal`
    /// is the store's [`super::Store::wal_control`].
    pub fn open(path: &Path, wal: Arc<WalControl>) -> Result<Self, StoreError> {
        let conn = connect(path)?;
        conn.busy_handler(Some(retry_soon))?;
        Ok(Self {
            conn,
            wal,
            purge: None,
        })
    }

    /// Asks this writer to remove the `jti`s and tokens (with their bound patients) that expired
    /// before `before`, as [`super::Store::purge_expired`] does, without another connection
    /// taking the write lock: a few rows in each following [`Self::commit_batch`], and
    /// [`Self::purge_step`]s while no record waits. A purge already under way takes the later
    /// `before`.
    pub fn schedule_purge(&mut self, before: i64) {
        let purge = self.purge.get_or_insert(Purge {
            before,
            removed: 0,
            done: false,
            failed: None,
        });
        purge.before = purge.before.max(before);
        purge.done = false;
    }

    /// Whether a purge has rows left to remove.
    #[must_use]
    pub fn purging(&self) -> bool {
        self.purge.as_ref().is_some_and(|p| !p.done)
    }

    /// Once the purge is over: how many `jti`s and tokens it removed, or why a step failed
    /// (then it is forgotten).
    pub fn finished_purge(&mut self) -> Option<Result<u64, StoreError>> {
        match &self.purge {
            Some(p) if p.done => self.purge.take().map(|p| match p.failed {
                None => Ok(p.removed),
                Some(e) => Err(StoreError::Unavailable(format!("purge failed: {e}"))),
            }),
            _ => None,
        }
    }

    /// A purge step in a transaction of its own, for a writer with nothing else to commit. A
    /// failure ends the purge (see [`Self::finished_purge`]).
    pub fn purge_step(&mut self) {
        let Some(purge) = self.purge.as_mut() else {
            return;
        };
        let step = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)
            .and_then(|tx| {
                purge_rows(&tx, purge, PURGE_ROWS_ALONE)?;
                Ok(tx.commit()?)
            });
        if let Err(e) = step {
            purge.fail(&e);
        }
    }

    /// Starts the WAL over when the checkpointer asked for it: it just copied the WAL (so
    /// little is left), and the WAL is past [`WalControl::restart_frames`]. Waits for readers of
    /// older frames (busy timeout); the next commit writes from the start of the file again, and
    /// the file keeps its size, reused rather than grown. Call between batches, after answering.
    pub fn restart_wal_if_asked(&mut self) {
        if !self.wal.restart_wanted.swap(false, Ordering::Relaxed) {
            return;
        }
        let outcome = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
        match outcome {
            Ok(0) => {}
            Ok(_) => tracing::debug!("WAL restart postponed: a reader or checkpoint is busy"),
            Err(e) => tracing::warn!(error = %e, "WAL restart failed; the checkpointer asks again"),
        }
    }

    /// The same contract as [`super::Store::commit_batch`]: the grants' `jti`s (and, for fresh
    /// ones, their tokens) and then the audit rows that `rows` builds on the head of the chain,
    /// in one transaction. `BEGIN IMMEDIATE` takes the write lock first, so no other process can
    /// append between the head read and the write.
    #[cfg(test)]
    pub fn commit_batch(
        &mut self,
        grants: &[(&UsedJti, &TokenRecord)],
        rows: impl FnOnce((i64, String), &[bool]) -> Vec<AuditRow>,
    ) -> Result<Vec<bool>, StoreError> {
        self.commit_batch_with(grants, &[], |head, fresh, _| rows(head, fresh))
            .map(|(fresh, _)| fresh)
    }

    /// [`Self::commit_batch`] with MedMij writes too, as [`super::Store::commit_batch_with`].
    pub fn commit_batch_with(
        &mut self,
        grants: &[(&UsedJti, &TokenRecord)],
        medmij: &[&super::medmij::MedmijWrite],
        rows: impl FnOnce((i64, String), &[bool], &[super::medmij::MedmijOutcome]) -> Vec<AuditRow>,
    ) -> Result<(Vec<bool>, Vec<super::medmij::MedmijOutcome>), StoreError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut fresh = Vec::with_capacity(grants.len());
        if !grants.is_empty() {
            let mut jti = tx.prepare_cached(INSERT_JTI)?;
            let mut token = tx.prepare_cached(INSERT_TOKEN)?;
            for (j, t) in grants {
                let is_fresh = jti.execute(params![j.issuer, j.jti, j.expires_at])? == 1;
                if is_fresh {
                    token.execute(params![
                        t.hash,
                        t.requester,
                        t.custodian,
                        t.purpose,
                        serde_json::to_string(&t.credential_ids).unwrap_or_default(),
                        t.bsn.as_str(),
                        t.user_identity,
                        t.issued_at,
                        t.expires_at,
                        t.cnf_x5t_s256
                    ])?;
                }
                fresh.push(is_fresh);
            }
        }
        let mut outcomes = Vec::with_capacity(medmij.len());
        for w in medmij {
            outcomes.push(super::medmij::apply_sqlite(&tx, w)?);
        }
        let head = tx
            .prepare_cached(AUDIT_HEAD)?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()?
            .unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
        if let Some(purge) = self.purge.as_mut().filter(|p| !p.done) {
            // In a savepoint: a purge that fails costs the purge, never the clients' records.
            let step = tx.savepoint()?;
            match purge_rows(&step, purge, PURGE_ROWS_WITH_BATCH) {
                Ok(()) => step.commit()?,
                Err(e) => purge.fail(&e),
            }
        }
        {
            let mut insert = tx.prepare_cached(INSERT_AUDIT)?;
            for r in rows(head, &fresh, &outcomes) {
                insert.execute(params![
                    r.seq,
                    r.time_unix,
                    r.requester,
                    r.bsn,
                    r.record,
                    r.prev_hash,
                    r.hash
                ])?;
            }
        }
        tx.commit()?;
        Ok((fresh, outcomes))
    }
}

impl Purge {
    /// Ends the purge with `e` (what a failed step did is rolled back by its caller).
    fn fail(&mut self, e: &StoreError) {
        tracing::warn!(error = %e, "purging expired tokens failed; the next purge tries again");
        self.failed = Some(e.to_string());
        self.done = true;
    }
}

/// Removes up to `limit` expired `jti`s and tokens in `tx`; marks `purge` done when fewer were
/// left.
fn purge_rows(tx: &Connection, purge: &mut Purge, limit: usize) -> Result<(), StoreError> {
    let max = i64::try_from(limit).unwrap_or(i64::MAX);
    let jtis = tx
        .prepare_cached(super::PURGE_JTIS)?
        .execute(params![purge.before, max])?;
    let hashes = tx
        .prepare_cached(super::EXPIRED_TOKENS)?
        .query_map(params![purge.before, max], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<String>, _>>()?;
    // The patients first, as on the portable path.
    let mut patients = tx.prepare_cached(DELETE_TOKEN_PATIENTS)?;
    let mut token = tx.prepare_cached(DELETE_TOKEN)?;
    let mut tokens = 0;
    for h in &hashes {
        patients.execute([h])?;
        tokens += token.execute([h])?;
    }
    purge.removed += u64::try_from(jtis + tokens).unwrap_or(u64::MAX);
    purge.done = jtis < limit && hashes.len() < limit;
    Ok(())
}

/// Runs WAL checkpoints on a thread of its own until dropped.
#[derive(Debug)]
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing `path` every `every`.
    pub fn start(path: PathBuf, every: Duration, wal: Arc<WalControl>) -> Result<Self, StoreError> {
        let conn = connect(&path)?;
        let db = std::fs::File::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("database file: {e}")))?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if let Err(e) = checkpoint(&conn, &db, &wal) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("checkpoint thread: {e}")))?;
        Ok(Self { _stop: stop })
    }
}

/// A passive checkpoint: copies what it can, never blocks a writer. Past the restart size it
/// asks the writer to start the WAL over, now that little is left to copy.
fn checkpoint(conn: &Connection, db: &std::fs::File, wal: &WalControl) -> Result<(), StoreError> {
    // SQLite syncs the database file only after a checkpoint that copied the whole WAL, which a
    // passive one under load never does: what the rounds copied stays dirty in the page cache
    // until the writer's restart, which would have to write it all back (1–56 ms measured). So
    // before asking for a restart, this thread writes it back itself, off the commit path.
    let sync = || {
        db.sync_data()
            .map_err(|e| StoreError::Unavailable(format!("database file sync: {e}")))
    };
    let passive = || conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
    let mut frames = passive()?;
    if frames > wal.restart_frames.load(Ordering::Relaxed) {
        sync()?;
        // Copy what was committed meanwhile, in rounds that shrink, until the last one found
        // few new frames: the writer's restart then has almost nothing left to copy and sync.
        for _ in 0..CATCH_UP_ROUNDS {
            let now = passive()?;
            let fresh = now - frames;
            frames = now;
            if fresh < CAUGHT_UP_FRAMES {
                break;
            }
        }
        sync()?;
        wal.restart_wanted.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Most extra checkpoint rounds before a restart.
const CATCH_UP_ROUNDS: usize = 8;
/// New frames (4 KiB each) that a round may find and still count as caught up.
const CAUGHT_UP_FRAMES: i64 = 64;
