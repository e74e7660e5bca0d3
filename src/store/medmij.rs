//! MedMij "Delen" tables: the browser sessions of the authorization flow (through the pool:
//! neither tokens nor audit records), and the authorization codes and access tokens, which only
//! the group-commit writer stores ([`MedmijWrite`], in the transaction of their audit record).
//! Codes, tokens and sessions are kept only as the SHA-256 of their value.

use sqlx::Row as _;

use super::tokens::stored_bsn;
use super::{Store, StoreError, Tx};
use crate::bsn::Bsn;

/// An authorization code as stored (only its hash), with what it was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedmijCode {
    /// Hex SHA-256 of the code.
    pub hash: String,
    /// The DVP's host name.
    pub client_id: String,
    /// The `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    /// Our aanbiedernaam.
    pub aanbieder: String,
    /// The gegevensdienst id.
    pub gegevensdienst: String,
    /// The PKCE challenge (S256), if one was sent.
    pub code_challenge: Option<String>,
    /// The person.
    pub bsn: Bsn,
    /// The `X-Correlation-ID` of the authorization request.
    pub correlation_id: Option<String>,
    /// Issued (unix seconds).
    pub issued_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// Whether it was redeemed (or its replay seen).
    pub used: bool,
}

/// An access token as stored (only its hash), with what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedmijToken {
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// The DVP's host name.
    pub client_id: String,
    /// Our aanbiedernaam.
    pub aanbieder: String,
    /// The gegevensdienst id.
    pub gegevensdienst: String,
    /// The person.
    pub bsn: Bsn,
    /// The `X-Correlation-ID` of the authorization request.
    pub correlation_id: Option<String>,
    /// Issued (unix seconds).
    pub issued_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// Revoked (its code was presented a second time).
    pub revoked: bool,
}

/// A MedMij write, committed by the writer together with its audit record.
#[derive(Debug, Clone)]
pub enum MedmijWrite {
    /// A new authorization code.
    Code(MedmijCode),
    /// Redeems code `code_hash` (unused, not expired at `now`) for `token`. When the code was
    /// used before or has expired, no token is stored, the code is spent, and the token it issued
    /// earlier (if any) is revoked.
    Redeem {
        /// Hex SHA-256 of the code.
        code_hash: String,
        /// The token to store.
        token: MedmijToken,
        /// Unix seconds.
        now: i64,
    },
    /// Spends code `code_hash` and revokes the token it issued (a code presented again).
    Revoke {
        /// Hex SHA-256 of the code.
        code_hash: String,
    },
}

/// What a [`MedmijWrite`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedmijOutcome {
    /// Stored as asked.
    Done,
    /// The code was spent already or expired: no token stored, the code's earlier token revoked.
    Spent,
}

const INSERT_CODE: &str = "INSERT INTO medmij_codes (hash, client_id, redirect_uri, aanbieder, gegevensdienst, code_challenge, bsn, correlation_id, issued_at, expires_at, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)";
const REDEEM_CODE: &str = "UPDATE medmij_codes SET used = 1, token_hash = $1 WHERE hash = $2 AND used = 0 AND expires_at > $3";
const INSERT_TOKEN: &str = "INSERT INTO medmij_tokens (hash, client_id, aanbieder, gegevensdienst, bsn, correlation_id, issued_at, expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)";
const REVOKE_ISSUED: &str = "UPDATE medmij_tokens SET revoked = 1 WHERE hash IN (SELECT token_hash FROM medmij_codes WHERE hash = $1)";
const SPEND_CODE: &str = "UPDATE medmij_codes SET used = 1 WHERE hash = $1";

/// Applies `w` in a SQLite transaction (the writer's own connection).
pub(super) fn apply_sqlite(
    tx: &rusqlite::Connection,
    w: &MedmijWrite,
) -> Result<MedmijOutcome, StoreError> {
    use rusqlite::params;
    match w {
        MedmijWrite::Code(c) => {
            tx.prepare_cached(INSERT_CODE)?.execute(params![
                c.hash,
                c.client_id,
                c.redirect_uri,
                c.aanbieder,
                c.gegevensdienst,
                c.code_challenge,
                c.bsn.as_str(),
                c.correlation_id,
                c.issued_at,
                c.expires_at
            ])?;
            Ok(MedmijOutcome::Done)
        }
        MedmijWrite::Redeem {
            code_hash,
            token: t,
            now,
        } => {
            let redeemed = tx
                .prepare_cached(REDEEM_CODE)?
                .execute(params![t.hash, code_hash, now])?;
            if redeemed == 1 {
                tx.prepare_cached(INSERT_TOKEN)?.execute(params![
                    t.hash,
                    t.client_id,
                    t.aanbieder,
                    t.gegevensdienst,
                    t.bsn.as_str(),
                    t.correlation_id,
                    t.issued_at,
                    t.expires_at
                ])?;
                return Ok(MedmijOutcome::Done);
            }
            tx.prepare_cached(REVOKE_ISSUED)?.execute([code_hash])?;
            tx.prepare_cached(SPEND_CODE)?.execute([code_hash])?;
            Ok(MedmijOutcome::Spent)
        }
        MedmijWrite::Revoke { code_hash } => {
            tx.prepare_cached(REVOKE_ISSUED)?.execute([code_hash])?;
            tx.prepare_cached(SPEND_CODE)?.execute([code_hash])?;
            Ok(MedmijOutcome::Done)
        }
    }
}

/// Applies `w` in a transaction of the pool (PostgreSQL, in-memory SQLite): the same statements.
pub(super) async fn apply_any(
    tx: &mut Tx<'_>,
    w: &MedmijWrite,
) -> Result<MedmijOutcome, StoreError> {
    match w {
        MedmijWrite::Code(c) => {
            sqlx::query(INSERT_CODE)
                .bind(&c.hash)
                .bind(&c.client_id)
                .bind(&c.redirect_uri)
                .bind(&c.aanbieder)
                .bind(&c.gegevensdienst)
                .bind(&c.code_challenge)
                .bind(c.bsn.as_str())
                .bind(&c.correlation_id)
                .bind(c.issued_at)
                .bind(c.expires_at)
                .execute(&mut **tx)
                .await?;
            Ok(MedmijOutcome::Done)
        }
        MedmijWrite::Redeem {
            code_hash,
            token: t,
            now,
        } => {
            let redeemed = sqlx::query(REDEEM_CODE)
                .bind(&t.hash)
                .bind(code_hash)
                .bind(*now)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if redeemed == 1 {
                sqlx::query(INSERT_TOKEN)
                    .bind(&t.hash)
                    .bind(&t.client_id)
                    .bind(&t.aanbieder)
                    .bind(&t.gegevensdienst)
                    .bind(t.bsn.as_str())
                    .bind(&t.correlation_id)
                    .bind(t.issued_at)
                    .bind(t.expires_at)
                    .execute(&mut **tx)
                    .await?;
                return Ok(MedmijOutcome::Done);
            }
            for sql in [REVOKE_ISSUED, SPEND_CODE] {
                sqlx::query(sql).bind(code_hash).execute(&mut **tx).await?;
            }
            Ok(MedmijOutcome::Spent)
        }
        MedmijWrite::Revoke { code_hash } => {
            for sql in [REVOKE_ISSUED, SPEND_CODE] {
                sqlx::query(sql).bind(code_hash).execute(&mut **tx).await?;
            }
            Ok(MedmijOutcome::Done)
        }
    }
}

impl Store {
    /// A code by the hex SHA-256 of its value.
    pub async fn medmij_code(&self, hash: &str) -> Result<Option<MedmijCode>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT hash, client_id, redirect_uri, aanbieder, gegevensdienst, code_challenge, bsn, correlation_id, issued_at, expires_at, used \
             FROM medmij_codes WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(MedmijCode {
            hash: row.try_get(0)?,
            client_id: row.try_get(1)?,
            redirect_uri: row.try_get(2)?,
            aanbieder: row.try_get(3)?,
            gegevensdienst: row.try_get(4)?,
            code_challenge: row.try_get(5)?,
            bsn: stored_bsn(&row.try_get::<String, _>(6)?)?,
            correlation_id: row.try_get(7)?,
            issued_at: row.try_get(8)?,
            expires_at: row.try_get(9)?,
            used: row.try_get::<i64, _>(10)? != 0,
        }))
    }

    /// A token by the hex SHA-256 of its value.
    pub async fn medmij_token(&self, hash: &str) -> Result<Option<MedmijToken>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT hash, client_id, aanbieder, gegevensdienst, bsn, correlation_id, issued_at, expires_at, revoked \
             FROM medmij_tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(MedmijToken {
            hash: row.try_get(0)?,
            client_id: row.try_get(1)?,
            aanbieder: row.try_get(2)?,
            gegevensdienst: row.try_get(3)?,
            bsn: stored_bsn(&row.try_get::<String, _>(4)?)?,
            correlation_id: row.try_get(5)?,
            issued_at: row.try_get(6)?,
            expires_at: row.try_get(7)?,
            revoked: row.try_get::<i64, _>(8)? != 0,
        }))
    }

    /// Stores (or replaces) a session's data until `expires_at`.
    pub async fn medmij_session_put(
        &self,
        hash: &str,
        data: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO medmij_sessions (hash, data, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (hash) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(hash)
        .bind(data)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session's data, unless it expired before `now`.
    pub async fn medmij_session(&self, hash: &str, now: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM medmij_sessions WHERE hash = $1 AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Ends a session.
    pub async fn medmij_session_delete(&self, hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM medmij_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets sessions, codes and tokens that expired before `before` (unix seconds); returns
    /// how many rows went.
    pub async fn medmij_purge(&self, before: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        // A code is kept a day past its expiry, so that a late replay still revokes its token.
        for (table, keep) in [
            ("medmij_sessions", 0),
            ("medmij_codes", 86_400),
            ("medmij_tokens", 0),
        ] {
            n += sqlx::query(&format!("DELETE FROM {table} WHERE expires_at < $1"))
                .bind(before - keep)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}
