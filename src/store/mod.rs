//! Persistent state: issued credentials and their revocations (later also tokens, `jti`s and the
//! audit log), on SQLite (default, a WAL file in the data dir) or PostgreSQL, through `sqlx`'s
//! `Any` driver with runtime-checked, portable SQL.
//!
//! **Invariant:** only this module knows SQL. Revocations are never deleted.

pub mod hub;
mod migrations;
pub mod revocations;
pub mod sqlite;

use std::str::FromStr as _;

use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row as _};

/// Errors of the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A record with the same key exists.
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached or answered with an error.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database was migrated by a newer poortwachter.
    #[error("database schema version {found} is newer than this binary supports ({supported}); upgrade poortwachter")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Latest version this binary knows.
        supported: i64,
    },
    /// The database URL is not usable.
    #[error("invalid database URL: {0}")]
    BadUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// A revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// Why.
    pub reason: String,
    /// When (unix seconds).
    pub revoked_at: i64,
}

/// Status of a stored credential at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Valid and not revoked.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiration date.
    Expired,
}

impl Status {
    /// Parses `active|revoked|expired`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "revoked" => Some(Self::Revoked),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// An issued credential as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Credential id.
    pub id: String,
    /// Issuer DID.
    pub issuer: String,
    /// Requester DID.
    pub subject_did: String,
    /// purposeOfUse.
    pub purpose: String,
    /// The patient's BSN (the credential holds it too).
    pub bsn: String,
    /// implied / explicit.
    pub consent_type: String,
    /// Issuance (unix seconds).
    pub issued_at: i64,
    /// Expiration (unix seconds), if any.
    pub expires_at: Option<i64>,
    /// The signed credential, exactly as issued.
    pub document: String,
    /// The revocation, if revoked.
    pub revocation: Option<Revocation>,
}

impl CredentialRecord {
    /// The status at `now` (unix seconds).
    #[must_use]
    pub fn status(&self, now: i64) -> Status {
        if self.revocation.is_some() {
            Status::Revoked
        } else if self.expires_at.is_some_and(|e| e < now) {
            Status::Expired
        } else {
            Status::Active
        }
    }
}

/// Filters for listing credentials (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    /// Requester DID.
    pub subject_did: Option<String>,
    /// purposeOfUse.
    pub purpose: Option<String>,
    /// BSN.
    pub bsn: Option<String>,
    /// Status at `now`.
    pub status: Option<Status>,
}

/// What a revoke call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Newly revoked.
    Revoked(Revocation),
    /// It was already revoked; the original revocation stands.
    AlreadyRevoked(Revocation),
}

/// An access token as stored: only the SHA-256 of the token, with its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// Requester DID.
    pub requester: String,
    /// Custodian DID.
    pub custodian: String,
    /// purposeOfUse.
    pub purpose: String,
    /// The credentials it was issued on.
    pub credential_ids: Vec<String>,
    /// The patient.
    pub bsn: String,
    /// The user identity (`usi`) as JSON, if given.
    pub user_identity: Option<String>,
    /// Issued (unix seconds).
    pub issued_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
}

/// A grant's `jti`, kept until its grant cannot be valid any more.
#[derive(Debug, Clone)]
pub struct UsedJti {
    /// The grant's `iss`.
    pub issuer: String,
    /// The `jti`.
    pub jti: String,
    /// Unix seconds after which it may be forgotten.
    pub expires_at: i64,
}

/// The PostgreSQL `NOTIFY` channel that carries revoked credential ids.
pub const REVOCATION_CHANNEL: &str = "poortwachter_revocations";

/// Most rows one purge statement removes (see [`Store::purge_expired`]).
pub const PURGE_CHUNK: usize = 200;
/// Pause between two purge statements: the audit writer gets the write lock in between.
const PURGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);
/// Removes at most `$2` `jti`s that expired before `$1`.
pub(crate) const PURGE_JTIS: &str = "DELETE FROM used_jtis WHERE (issuer, jti) IN \
     (SELECT issuer, jti FROM used_jtis WHERE expires_at < $1 LIMIT $2)";
/// At most `$2` tokens that expired before `$1`.
pub(crate) const EXPIRED_TOKENS: &str = "SELECT hash FROM tokens WHERE expires_at < $1 LIMIT $2";

/// The hash before the first audit record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// Time (unix seconds), for filtering.
    pub time_unix: i64,
    /// Requester DID, for filtering.
    pub requester: String,
    /// Patient BSN (may be empty), for filtering.
    pub bsn: String,
    /// The record as canonical JSON.
    pub record: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// SHA-256 of `prev_hash`, a newline and `record`, hex.
    pub hash: String,
}

/// Audit export filters.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// From (unix seconds, inclusive).
    pub since: Option<i64>,
    /// Until (unix seconds, exclusive).
    pub until: Option<i64>,
    /// Patient.
    pub bsn: Option<String>,
    /// Requester DID.
    pub requester: Option<String>,
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    postgres: bool,
    url: Option<String>,
    /// The database file, for a SQLite store on disk.
    sqlite_file: Option<std::sync::Arc<std::path::PathBuf>>,
    /// WAL checkpoints of a SQLite store (stop with the last clone).
    _checkpoints: Option<std::sync::Arc<sqlite::Checkpointer>>,
    /// Shared by the checkpointer and the SQLite writer.
    wal: std::sync::Arc<sqlite::WalControl>,
}

const SELECT_CREDENTIAL: &str =
    "SELECT c.id, c.issuer, c.subject_did, c.purpose, c.bsn, c.consent_type, \
     c.issued_at, c.expires_at, c.document, r.reason, r.revoked_at \
     FROM credentials c LEFT JOIN revocations r ON r.credential_id = c.id";

/// The file a `sqlite:` URL names, unless it is an in-memory database.
fn sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::BadUrl(e.to_string()))?;
    let file = options.get_filename();
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    Ok((!in_memory).then(|| file.to_path_buf()))
}

/// Begins a transaction that writes. On SQLite it takes the write lock first (`BEGIN
/// IMMEDIATE`): a deferred transaction that reads before it writes fails with
/// `SQLITE_BUSY_SNAPSHOT` when another connection (the server's audit writer, say) commits after
/// its read, and no busy timeout cures that; with the lock taken first it waits instead.
pub(crate) async fn begin_write(
    pool: &AnyPool,
    postgres: bool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if postgres {
        pool.begin().await
    } else {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(StoreError::BadUrl(
                "must start with sqlite: or postgres://".into(),
            ));
        }
        let options =
            AnyConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 4 } else { 16 })
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if is_sqlite {
                        for pragma in sqlite::CONNECTION_PRAGMAS.split_terminator(';') {
                            sqlx::query(pragma.trim()).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if is_sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        migrations::run(&pool, !is_sqlite).await?;
        let sqlite_file = if is_sqlite { sqlite_file(url)? } else { None };
        let wal = std::sync::Arc::new(sqlite::WalControl::default());
        let checkpoints = match &sqlite_file {
            Some(path) => Some(std::sync::Arc::new(sqlite::Checkpointer::start(
                path.clone(),
                std::time::Duration::from_millis(250),
                wal.clone(),
            )?)),
            None => None,
        };
        Ok(Self {
            pool,
            postgres: !is_sqlite,
            url: (!is_sqlite).then(|| url.to_owned()),
            sqlite_file: sqlite_file.map(std::sync::Arc::new),
            _checkpoints: checkpoints,
            wal,
        })
    }

    /// What the checkpointer and the group-commit writer of a SQLite file share.
    #[must_use]
    pub fn wal_control(&self) -> std::sync::Arc<sqlite::WalControl> {
        self.wal.clone()
    }

    /// The database file of a SQLite store on disk (its hot writes go through
    /// [`sqlite::BatchWriter`]); `None` for PostgreSQL and in-memory SQLite.
    #[must_use]
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref().map(std::path::PathBuf::as_path)
    }

    /// Stores a newly issued credential.
    pub async fn insert_credential(&self, c: &CredentialRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO credentials (id, issuer, subject_did, purpose, bsn, consent_type, issued_at, expires_at, document) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.id)
        .bind(&c.issuer)
        .bind(&c.subject_did)
        .bind(&c.purpose)
        .bind(&c.bsn)
        .bind(&c.consent_type)
        .bind(c.issued_at)
        .bind(c.expires_at)
        .bind(&c.document)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One credential with its revocation.
    pub async fn credential(&self, id: &str) -> Result<CredentialRecord, StoreError> {
        let row = sqlx::query(&format!("{SELECT_CREDENTIAL} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        record(&row)
    }

    /// Credentials matching `filter`, newest first.
    pub async fn list_credentials(
        &self,
        filter: &CredentialFilter,
        now: i64,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let mut sql = format!("{SELECT_CREDENTIAL} WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [
            ("c.subject_did", &filter.subject_did),
            ("c.purpose", &filter.purpose),
            ("c.bsn", &filter.bsn),
        ] {
            if let Some(v) = value {
                binds.push(v.clone());
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        let now_param = binds.len() + 1;
        match filter.status {
            None => {}
            Some(Status::Revoked) => sql.push_str(" AND r.credential_id IS NOT NULL"),
            Some(Status::Expired) => sql.push_str(&format!(
                " AND r.credential_id IS NULL AND c.expires_at IS NOT NULL AND c.expires_at < ${now_param}"
            )),
            Some(Status::Active) => sql.push_str(&format!(
                " AND r.credential_id IS NULL AND (c.expires_at IS NULL OR c.expires_at >= ${now_param})"
            )),
        }
        sql.push_str(" ORDER BY c.issued_at DESC, c.id");
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        if matches!(filter.status, Some(Status::Expired | Status::Active)) {
            query = query.bind(now);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    /// Revokes a credential. Idempotent: a second call keeps the first reason and time.
    pub async fn revoke(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut tx = begin_write(&self.pool, self.postgres).await?;
        let exists = sqlx::query("SELECT id FROM credentials WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let inserted = sqlx::query(
            "INSERT INTO revocations (credential_id, reason, revoked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(id)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let row =
            sqlx::query("SELECT reason, revoked_at FROM revocations WHERE credential_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if self.postgres && inserted == 1 {
            // Delivered to every replica's listener when the transaction commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVOCATION_CHANNEL)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let revocation = Revocation {
            reason: row.try_get(0)?,
            revoked_at: row.try_get(1)?,
        };
        Ok(if inserted == 1 {
            RevokeOutcome::Revoked(revocation)
        } else {
            RevokeOutcome::AlreadyRevoked(revocation)
        })
    }

    /// Every revoked credential id.
    pub async fn revoked_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT credential_id FROM revocations")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Number of revocations (they are never deleted, so a change means a new one).
    pub async fn revocation_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM revocations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Records each grant's `jti` and stores its token, all in one transaction. Returns per item
    /// whether it was stored (`false`: the `jti` was used before, nothing stored for it).
    pub async fn insert_tokens(
        &self,
        items: &[(&UsedJti, &TokenRecord)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = begin_write(&self.pool, self.postgres).await?;
        let stored = insert_grants(&mut tx, items).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// One transaction for a group commit: the grants (as [`Store::insert_tokens`]), then the
    /// audit rows that `rows` builds from the chain head and the grants' freshness. On
    /// PostgreSQL an advisory lock serialises the writers of all replicas, and the head is read
    /// inside the transaction, so concurrent replicas extend one chain without conflicts.
    pub async fn commit_batch(
        &self,
        grants: &[(&UsedJti, &TokenRecord)],
        rows: impl FnOnce((i64, String), &[bool]) -> Vec<AuditRow>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = begin_write(&self.pool, self.postgres).await?;
        if self.postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7513)")
                .execute(&mut *tx)
                .await?;
        }
        let fresh = insert_grants(&mut tx, grants).await?;
        let head = match sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => (r.try_get(0)?, r.try_get(1)?),
            None => (0, GENESIS_HASH.to_owned()),
        };
        append_rows(&mut tx, &rows(head, &fresh)).await?;
        tx.commit().await?;
        Ok(fresh)
    }

    /// A token by the hex SHA-256 of its value.
    pub async fn token(&self, hash: &str) -> Result<TokenRecord, StoreError> {
        let row = sqlx::query(
            "SELECT hash, requester, custodian, purpose, credential_ids, bsn, user_identity, issued_at, expires_at \
             FROM tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let ids: String = row.try_get(4)?;
        Ok(TokenRecord {
            hash: row.try_get(0)?,
            requester: row.try_get(1)?,
            custodian: row.try_get(2)?,
            purpose: row.try_get(3)?,
            credential_ids: serde_json::from_str(&ids).unwrap_or_default(),
            bsn: row.try_get(5)?,
            user_identity: row.try_get(6)?,
            issued_at: row.try_get(7)?,
            expires_at: row.try_get(8)?,
        })
    }

    /// Forgets `jti`s and tokens (with their bound patients) that expired before `before` (unix
    /// seconds), in statements of at most [`PURGE_CHUNK`] rows with a pause between them: on
    /// SQLite one `DELETE` of a minute's worth of `jti`s (300,000 rows at 5,000 grants/s) would
    /// hold the write lock, and so stall every commit of the audit writer, for 1.2 s (measured; a
    /// 200-row statement: about 1.9 ms).
    /// Returns the number of `jti`s and tokens removed.
    pub async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            let n = sqlx::query(PURGE_JTIS)
                .bind(before)
                .bind(PURGE_CHUNK as i64)
                .execute(&self.pool)
                .await?
                .rows_affected();
            purged += n;
            if n < PURGE_CHUNK as u64 {
                break;
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
        loop {
            let hashes: Vec<String> = sqlx::query_scalar(EXPIRED_TOKENS)
                .bind(before)
                .bind(PURGE_CHUNK as i64)
                .fetch_all(&self.pool)
                .await?;
            if hashes.is_empty() {
                break;
            }
            let list = (1..=hashes.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            // The patients first: a crash in between leaves an expired token, purged next time.
            for table in ["token_patients", "tokens"] {
                let sql = format!("DELETE FROM {table} WHERE hash IN ({list})");
                let mut query = sqlx::query(&sql);
                for h in &hashes {
                    query = query.bind(h);
                }
                let n = query.execute(&self.pool).await?.rows_affected();
                if table == "tokens" {
                    purged += n;
                }
            }
            if hashes.len() < PURGE_CHUNK {
                break;
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
        Ok(purged)
    }

    /// Number of tokens that expire after `now`.
    pub async fn active_token_count(&self, now: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM tokens WHERE expires_at > $1")
                .bind(now)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// Number of tokens (for tests and metrics).
    pub async fn token_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Remembers that a token may access these Patient ids.
    pub async fn add_token_patients(
        &self,
        hash: &str,
        patients: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, self.postgres).await?;
        for p in patients {
            sqlx::query("INSERT INTO token_patients (hash, patient_id) VALUES ($1, $2) ON CONFLICT (hash, patient_id) DO NOTHING")
                .bind(hash)
                .bind(p)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The Patient ids a token may access.
    pub async fn token_patients(&self, hash: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT patient_id FROM token_patients WHERE hash = $1")
            .bind(hash)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// The last audit record's sequence number and hash (`0` and the genesis hash when empty).
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => (r.try_get(0)?, r.try_get(1)?),
            None => (0, GENESIS_HASH.to_owned()),
        })
    }

    /// Appends audit rows in one transaction. A sequence number taken by another writer is a
    /// [`StoreError::Conflict`] and appends nothing.
    pub async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, self.postgres).await?;
        append_rows(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit rows in sequence order, filtered (all optional), all in memory: see
    /// [`Store::for_each_audit_row`] for a log of any size.
    pub async fn audit_rows(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut rows = Vec::new();
        self.for_each_audit_row(filter, |row| {
            rows.push(row);
            std::ops::ControlFlow::Continue(())
        })
        .await?;
        Ok(rows)
    }

    /// Hands audit rows to `f` in sequence order, filtered (all optional), one at a time as the
    /// database streams them: memory stays flat however long the log. `f` may stop early.
    pub async fn for_each_audit_row(
        &self,
        filter: &AuditFilter,
        mut f: impl FnMut(AuditRow) -> std::ops::ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut sql = "SELECT seq, time_unix, requester, bsn, record, prev_hash, hash FROM audit_log WHERE 1 = 1".to_owned();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if filter.since.is_some() {
            sql.push_str(&format!(" AND time_unix >= ${}", next()));
        }
        if filter.until.is_some() {
            sql.push_str(&format!(" AND time_unix < ${}", next()));
        }
        if filter.bsn.is_some() {
            sql.push_str(&format!(" AND bsn = ${}", next()));
        }
        if filter.requester.is_some() {
            sql.push_str(&format!(" AND requester = ${}", next()));
        }
        sql.push_str(" ORDER BY seq");
        let mut q = sqlx::query(&sql);
        if let Some(v) = filter.since {
            q = q.bind(v);
        }
        if let Some(v) = filter.until {
            q = q.bind(v);
        }
        if let Some(v) = &filter.bsn {
            q = q.bind(v);
        }
        if let Some(v) = &filter.requester {
            q = q.bind(v);
        }
        let mut rows = q.fetch(&self.pool);
        while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            let row = AuditRow {
                seq: r.try_get(0)?,
                time_unix: r.try_get(1)?,
                requester: r.try_get(2)?,
                bsn: r.try_get(3)?,
                record: r.try_get(4)?,
                prev_hash: r.try_get(5)?,
                hash: r.try_get(6)?,
            };
            if f(row).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The database URL of a PostgreSQL store (for a `LISTEN` connection), `None` for SQLite.
    #[must_use]
    pub fn postgres_url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn record(row: &sqlx::any::AnyRow) -> Result<CredentialRecord, StoreError> {
    let reason: Option<String> = row.try_get(9)?;
    let revoked_at: Option<i64> = row.try_get(10)?;
    Ok(CredentialRecord {
        id: row.try_get(0)?,
        issuer: row.try_get(1)?,
        subject_did: row.try_get(2)?,
        purpose: row.try_get(3)?,
        bsn: row.try_get(4)?,
        consent_type: row.try_get(5)?,
        issued_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
        document: row.try_get(8)?,
        revocation: match (reason, revoked_at) {
            (Some(reason), Some(revoked_at)) => Some(Revocation { reason, revoked_at }),
            _ => None,
        },
    })
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Rows per multi-row INSERT (each statement is a round trip to the database).
const ROWS_PER_STATEMENT: usize = 100;

/// `($1, $2, ...), (...)` for `rows` rows of `columns` parameters.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * columns + c + 1));
        }
        out.push(')');
    }
    out
}

/// Inserts grants' `jti`s and tokens, many rows per statement; per item whether it was fresh
/// (a `jti` already stored, or repeated earlier in the same batch, is not).
async fn insert_grants(
    tx: &mut Tx<'_>,
    items: &[(&UsedJti, &TokenRecord)],
) -> Result<Vec<bool>, StoreError> {
    let mut stored = Vec::with_capacity(items.len());
    for chunk in items.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES {} ON CONFLICT (issuer, jti) DO NOTHING RETURNING issuer, jti",
            placeholders(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (jti, _) in chunk {
            q = q.bind(&jti.issuer).bind(&jti.jti).bind(jti.expires_at);
        }
        let mut inserted: std::collections::HashSet<(String, String)> = q
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let fresh: Vec<&TokenRecord> = chunk
            .iter()
            .filter_map(|(jti, token)| {
                let is_fresh = inserted.remove(&(jti.issuer.clone(), jti.jti.clone()));
                stored.push(is_fresh);
                is_fresh.then_some(*token)
            })
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO tokens (hash, requester, custodian, purpose, credential_ids, bsn, user_identity, issued_at, expires_at) VALUES {}",
            placeholders(fresh.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for token in fresh {
            q = q
                .bind(&token.hash)
                .bind(&token.requester)
                .bind(&token.custodian)
                .bind(&token.purpose)
                .bind(serde_json::to_string(&token.credential_ids).unwrap_or_default())
                .bind(&token.bsn)
                .bind(&token.user_identity)
                .bind(token.issued_at)
                .bind(token.expires_at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(stored)
}

/// Appends audit rows, many per statement.
async fn append_rows(tx: &mut Tx<'_>, rows: &[AuditRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO audit_log (seq, time_unix, requester, bsn, record, prev_hash, hash) VALUES {}",
            placeholders(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.seq)
                .bind(r.time_unix)
                .bind(&r.requester)
                .bind(&r.bsn)
                .bind(&r.record)
                .bind(&r.prev_hash)
                .bind(&r.hash);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
