//! Persistent state on SQLite (default, a WAL file in the data dir) or PostgreSQL, through
//! `sqlx`'s `Any` driver with runtime-checked, portable SQL: credentials and revocations
//! ([`credentials`]), tokens and `jti`s ([`tokens`]), the audit log ([`audit`]), the Hub's tables
//! ([`hub`]), the credentials custodians issued to us ([`held`]), the admin console's (instances, ended tokens, accounts, audit pages: [`console`]). The hot writes (audit records, grants) go through one group-commit [`writer`].
//!
//! **Invariant:** only this module knows SQL. Revocations are never deleted. Only the writer
//! appends audit records and stores tokens and `jti`s.

mod audit;
pub mod console;
mod credentials;
mod held;
pub mod hub;
pub mod medmij;
mod migrations;
pub mod revocations;
pub mod sqlite;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
mod tokens;
pub mod writer;

use std::str::FromStr as _;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

pub use audit::AuditFilter;
pub use console::{AuditCursor, InstanceRow, LiveCount, ENDED_TOKENS_CHANNEL};
pub use credentials::{
    CredentialFilter, CredentialRecord, Revocation, RevokeOutcome, Status, REVOCATION_CHANNEL,
};
pub use held::{HeldCredential, HeldView};
pub use tokens::{TokenRecord, UsedJti, PURGE_CHUNK};
pub(crate) use tokens::{EXPIRED_TOKENS, PURGE_JTIS};

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
    /// the writer's own connection, `sqlite::BatchWriter`); `None` for PostgreSQL and in-memory
    /// SQLite.
    #[must_use]
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref().map(std::path::PathBuf::as_path)
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

/// The schema version of the database at `url` and the version this binary writes, without
/// migrating anything (for `config check`). A SQLite file that does not exist yet, or a database
/// without our tables, is version 0.
pub async fn schema_version(url: &str) -> Result<(i64, i64), StoreError> {
    use sqlx::{Connection as _, Row as _};
    sqlx::any::install_default_drivers();
    if !url.starts_with("sqlite:")
        && !url.starts_with("postgres://")
        && !url.starts_with("postgresql://")
    {
        return Err(StoreError::BadUrl(
            "must start with sqlite: or postgres://".into(),
        ));
    }
    if url.starts_with("sqlite:") && sqlite_file(url)?.is_some_and(|f| !f.exists()) {
        return Ok((0, migrations::LATEST));
    }
    let options =
        AnyConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
    let mut conn = sqlx::AnyConnection::connect_with(&options).await?;
    let found = match sqlx::query("SELECT MAX(version) FROM pw_schema")
        .fetch_one(&mut conn)
        .await
    {
        Ok(row) => row.try_get::<Option<i64>, _>(0)?.unwrap_or(0),
        // No pw_schema table: a database poortwachter has not used yet.
        Err(_) => 0,
    };
    conn.close().await?;
    Ok((found, migrations::LATEST))
}
