//! Embedded, ordered schema migrations in portable SQL (SQLite and PostgreSQL). The version lives
//! in `pw_schema`; a database migrated by a newer binary is refused rather than guessed at.

use sqlx::{AnyPool, Row as _};

use super::StoreError;

/// The migrations, in order. Version = index + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_credentials.sql"),
    include_str!("../../migrations/0002_tokens.sql"),
    include_str!("../../migrations/0003_audit.sql"),
    include_str!("../../migrations/0004_hub.sql"),
    include_str!("../../migrations/0005_token_binding.sql"),
    include_str!("../../migrations/0006_console.sql"),
    include_str!("../../migrations/0007_medmij.sql"),
    include_str!("../../migrations/0008_held_credentials.sql"),
];

/// The schema version this binary writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the schema to [`LATEST`], each migration in its own transaction. Processes that start
/// at once on one database (replicas, the CLI beside the server) take turns: on PostgreSQL an
/// advisory lock, on SQLite the write lock, is taken before the version is read, so no migration
/// runs twice.
pub async fn run(pool: &AnyPool, postgres: bool) -> Result<(), StoreError> {
    loop {
        let mut tx = super::begin_write(pool, postgres).await?;
        if postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7515)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS pw_schema (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM pw_schema")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if current > LATEST {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported: LATEST,
            });
        }
        if current == LATEST {
            tx.commit().await?;
            return Ok(());
        }
        let Ok(index) = usize::try_from(current) else {
            return Err(StoreError::Unavailable("negative schema version".into()));
        };
        for statement in MIGRATIONS[index].split(';').map(str::trim) {
            let code: String = statement
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if !code.trim().is_empty() {
                sqlx::query(&code).execute(&mut *tx).await?;
            }
        }
        sqlx::query("INSERT INTO pw_schema (version) VALUES ($1)")
            .bind(current + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
}
