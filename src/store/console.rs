//! What the admin console reads and changes beyond credentials: the running instances (one
//! heartbeat row each), tokens ended before their expiry, live token counts, console accounts
//! (argon2id hashes), and the audit log a page at a time (newest first) or in chunks (exports).
//!
//! **Invariants:** ended tokens are never deleted (replicas follow them by their count, like
//! revocations); nothing here appends to the audit log (the console's own records go through
//! [`super::writer::Writer`]).

use sqlx::Row as _;

use super::audit::{audit_row, bind_audit_filter, filtered_audit_query, AUDIT_COLUMNS};
use super::tokens::{token_of_row, TOKEN_COLUMNS};
use super::{begin_write, AuditFilter, Store, StoreError, TokenRecord};
use crate::audit::AuditRow;

/// The PostgreSQL `NOTIFY` channel that carries the hashes of ended tokens.
pub const ENDED_TOKENS_CHANNEL: &str = "poortwachter_ended_tokens";

/// Heartbeat rows older than this (seconds) are removed: an instance gone for a week.
const FORGET_INSTANCES_AFTER: i64 = 7 * 24 * 3600;

/// A running (or recently running) instance, as its heartbeat last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    /// Random id chosen at start-up.
    pub id: String,
    /// The host name.
    pub hostname: String,
    /// `poortwachter --version`.
    pub version: String,
    /// The configured internal listener.
    pub internal_addr: String,
    /// Start (unix seconds).
    pub started_at: i64,
    /// Last heartbeat (unix seconds).
    pub last_seen: i64,
    /// Revoked credentials in its in-memory set.
    pub revocations: i64,
    /// Ended tokens in its in-memory set.
    pub ended_tokens: i64,
}

/// Where a chunk of audit rows starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditCursor {
    /// Oldest first, after this sequence number (0: from the start).
    After(i64),
    /// Newest first, before this sequence number (`None`: from the head).
    Before(Option<i64>),
}

/// Live tokens of one requester and purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCount {
    /// Requester DID.
    pub requester: String,
    /// purposeOfUse.
    pub purpose: String,
    /// Tokens not expired and not ended.
    pub count: i64,
}

/// A live token: not expired, not ended, and none of its credentials revoked (`credential_ids`
/// is a JSON array of strings; the id is escaped for `LIKE`).
const LIVE: &str = "expires_at > $1 AND hash NOT IN (SELECT hash FROM ended_tokens) \
     AND NOT EXISTS (SELECT 1 FROM revocations r WHERE tokens.credential_ids LIKE \
     '%\"' || REPLACE(REPLACE(REPLACE(r.credential_id, '!', '!!'), '%', '!%'), '_', '!_') || '\"%' ESCAPE '!')";

impl Store {
    /// Whether this is a PostgreSQL store.
    #[must_use]
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Writes this instance's heartbeat (and forgets instances gone for a week).
    pub async fn heartbeat(&self, row: &InstanceRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, hostname, version, internal_addr, started_at, last_seen, revocations, ended_tokens) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
             last_seen = excluded.last_seen, revocations = excluded.revocations, \
             ended_tokens = excluded.ended_tokens, internal_addr = excluded.internal_addr",
        )
        .bind(&row.id)
        .bind(&row.hostname)
        .bind(&row.version)
        .bind(&row.internal_addr)
        .bind(row.started_at)
        .bind(row.last_seen)
        .bind(row.revocations)
        .bind(row.ended_tokens)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM instances WHERE last_seen < $1")
            .bind(row.last_seen - FORGET_INSTANCES_AFTER)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every instance with a heartbeat, most recently started first.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, hostname, version, internal_addr, started_at, last_seen, revocations, ended_tokens \
             FROM instances ORDER BY started_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InstanceRow {
                    id: r.try_get(0)?,
                    hostname: r.try_get(1)?,
                    version: r.try_get(2)?,
                    internal_addr: r.try_get(3)?,
                    started_at: r.try_get(4)?,
                    last_seen: r.try_get(5)?,
                    revocations: r.try_get(6)?,
                    ended_tokens: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Ends a stored token before its expiry; `Ok(false)` when it was already ended. On
    /// PostgreSQL every replica's listener hears of it when the transaction commits.
    pub async fn end_token(&self, hash: &str, now: i64, by: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.pool, self.postgres).await?;
        if sqlx::query("SELECT hash FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
        let inserted = sqlx::query(
            "INSERT INTO ended_tokens (hash, ended_at, ended_by) VALUES ($1, $2, $3) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if self.postgres && inserted == 1 {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(ENDED_TOKENS_CHANNEL)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// The hashes of every ended token.
    pub async fn ended_token_hashes(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT hash FROM ended_tokens")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Number of ended tokens (they are never deleted, so a change means a new one).
    pub async fn ended_token_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM ended_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Live tokens (see [`LIVE`]) at `now` per requester and purpose.
    pub async fn live_token_counts(&self, now: i64) -> Result<Vec<LiveCount>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT requester, purpose, COUNT(*) FROM tokens WHERE {LIVE} \
             GROUP BY requester, purpose ORDER BY requester, purpose"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LiveCount {
                    requester: r.try_get(0)?,
                    purpose: r.try_get(1)?,
                    count: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The newest `limit` live tokens.
    pub async fn live_tokens(&self, now: i64, limit: i64) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE {LIVE} ORDER BY issued_at DESC, hash LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_of_row).collect()
    }

    /// The argon2id hash of a console account's password.
    pub async fn console_password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM console_users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Creates a console account or replaces its password hash.
    pub async fn set_console_password(
        &self,
        name: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_users (name, password_hash, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(password_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a console account; `false` when there was none.
    pub async fn remove_console_user(&self, name: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM console_users WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// The console accounts and when their password was set.
    pub async fn console_users(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT name, updated_at FROM console_users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// One audit record by its sequence number.
    pub async fn audit_row(&self, seq: i64) -> Result<AuditRow, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq = $1"
        ))
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        audit_row(&r)
    }

    /// At most `limit` audit rows matching `filter` from `cursor` on (oldest first after a
    /// sequence number, or newest first before one). A page or an export chunk: the caller
    /// moves the cursor to the last row's `seq`.
    pub async fn audit_chunk(
        &self,
        filter: &AuditFilter,
        cursor: AuditCursor,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let (mut sql, mut n) = filtered_audit_query(filter);
        let mut next = || {
            n += 1;
            n
        };
        let seq = match cursor {
            AuditCursor::After(s) => {
                sql.push_str(&format!(" AND seq > ${} ORDER BY seq", next()));
                Some(s)
            }
            AuditCursor::Before(Some(s)) => {
                sql.push_str(&format!(" AND seq < ${} ORDER BY seq DESC", next()));
                Some(s)
            }
            AuditCursor::Before(None) => {
                sql.push_str(" ORDER BY seq DESC");
                None
            }
        };
        sql.push_str(&format!(" LIMIT ${}", next()));
        let mut q = bind_audit_filter(sqlx::query(&sql), filter);
        if let Some(s) = seq {
            q = q.bind(s);
        }
        q = q.bind(limit);
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(audit_row)
            .collect()
    }
}
