//! SQLite's own write path for the hot commits (audit records, and a grant's `jti` and token), and
//! the WAL checkpoints.
//!
//! `sqlx` runs every SQLite connection on a worker thread of its own and hands each statement to
//! it and back: a batch commit (begin, `jti`s, tokens, head, records, commit) costs a dozen thread
//! hand-offs, which on a busy 2-core machine cost more than the SQL. [`BatchWriter`] is one
//! connection owned by the audit writer's thread: a batch is one hand-off in and one out, and its
//! statements are prepared once.
//!
//! Checkpoints: a commit that finds the WAL over SQLite's threshold would copy it back into the
//! database file (and sync that) before it returns: a periodic stall of every request waiting on
//! that commit. Every connection therefore has `wal_autocheckpoint = 0`, and [`Checkpointer`]
//! runs passive checkpoints (which never block a writer) every quarter second on a thread of its
//! own, and past 64 MiB of WAL a restarting one that gives up at once when it would have to wait.
//!
//! **Invariant:** the SQL here is the SQL of the portable path in [`super`] (the same statements,
//! one row each); both paths are run by the tests.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension as _};

use super::{AuditRow, StoreError, TokenRecord, UsedJti, GENESIS_HASH};

/// Per-connection settings of every SQLite connection (the pool's and ours).
pub(super) const CONNECTION_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;";

const INSERT_JTI: &str = "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (issuer, jti) DO NOTHING";
const INSERT_TOKEN: &str = "INSERT INTO tokens (hash, requester, custodian, purpose, credential_ids, bsn, user_identity, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
const INSERT_AUDIT: &str = "INSERT INTO audit_log (seq, time_unix, requester, bsn, record, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// WAL size (in frames of 4 KiB, so 64 MiB) past which the checkpointer also tries to start the
/// WAL over (without waiting: with SQLite's busy handler it stalled commits for 100 ms and more).
const RESTART_FRAMES: i64 = 16_384;

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

/// One connection that commits batches synchronously; lives on the audit writer's thread.
pub struct BatchWriter {
    conn: Connection,
}

impl BatchWriter {
    /// Opens the database file (already created and migrated by [`super::Store::open`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: connect(path)?,
        })
    }

    /// The same contract as [`super::Store::commit_batch`]: the grants' `jti`s (and, for fresh
    /// ones, their tokens) and then the audit rows that `rows` builds on the head of the chain,
    /// in one transaction. `BEGIN IMMEDIATE` takes the write lock first, so no other process can
    /// append between the head read and the write.
    pub fn commit_batch(
        &mut self,
        grants: &[(&UsedJti, &TokenRecord)],
        rows: impl FnOnce((i64, String), &[bool]) -> Vec<AuditRow>,
    ) -> Result<Vec<bool>, StoreError> {
        let tx = self
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
                        t.bsn,
                        t.user_identity,
                        t.issued_at,
                        t.expires_at
                    ])?;
                }
                fresh.push(is_fresh);
            }
        }
        let head = tx
            .prepare_cached(AUDIT_HEAD)?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()?
            .unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
        {
            let mut insert = tx.prepare_cached(INSERT_AUDIT)?;
            for r in rows(head, &fresh) {
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
        Ok(fresh)
    }
}

/// Runs WAL checkpoints on a thread of its own until dropped.
#[derive(Debug)]
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing `path` every `every`.
    pub fn start(path: PathBuf, every: Duration) -> Result<Self, StoreError> {
        let conn = connect(&path)?;
        conn.execute_batch("PRAGMA busy_timeout = 0")?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("checkpoint thread: {e}")))?;
        Ok(Self { _stop: stop })
    }
}

/// A passive checkpoint, and when the WAL has grown large (commits arrived during every
/// checkpoint, so it never started over) a restarting one, on a connection that never waits:
/// where a writer or reader is busy it gives up at once instead of blocking new commits.
fn checkpoint(conn: &Connection) -> Result<(), rusqlite::Error> {
    let (log, done): (i64, i64) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })?;
    if log > RESTART_FRAMES && done >= log {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}
