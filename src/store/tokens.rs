//! Access tokens (only their SHA-256, with their context), the Patient ids bound to them, and
//! the grants' `jti`s (the replay store). Tokens and `jti`s are written only by the group-commit
//! writer ([`super::writer`]); this module reads them and purges expired ones.

use sqlx::Row as _;

use super::{begin_write, placeholders, Store, StoreError, Tx, ROWS_PER_STATEMENT};

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
    pub bsn: crate::bsn::Bsn,
    /// The user identity (`usi`) as JSON, if given.
    pub user_identity: Option<String>,
    /// Issued (unix seconds).
    pub issued_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// RFC 8705: the `x5t#S256` of the client certificate the token is bound to (the grant
    /// came over mutual TLS); `None` for an unbound token.
    pub cnf_x5t_s256: Option<String>,
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

/// Most rows one purge statement removes (see [`Store::purge_expired`]).
pub const PURGE_CHUNK: usize = 200;
/// Pause between two purge statements: the audit writer gets the write lock in between.
const PURGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);
/// Removes at most `$2` `jti`s that expired before `$1`.
pub(crate) const PURGE_JTIS: &str = "DELETE FROM used_jtis WHERE (issuer, jti) IN \
     (SELECT issuer, jti FROM used_jtis WHERE expires_at < $1 LIMIT $2)";
/// At most `$2` tokens that expired before `$1`.
pub(crate) const EXPIRED_TOKENS: &str = "SELECT hash FROM tokens WHERE expires_at < $1 LIMIT $2";

/// The columns [`token_of_row`] reads, in its order.
pub(super) const TOKEN_COLUMNS: &str = "hash, requester, custodian, purpose, credential_ids, bsn, \
     user_identity, issued_at, expires_at, cnf_x5t_s256";

/// A token from a row of [`TOKEN_COLUMNS`].
pub(super) fn token_of_row(row: &sqlx::any::AnyRow) -> Result<TokenRecord, StoreError> {
    let ids: String = row.try_get(4)?;
    Ok(TokenRecord {
        hash: row.try_get(0)?,
        requester: row.try_get(1)?,
        custodian: row.try_get(2)?,
        purpose: row.try_get(3)?,
        credential_ids: serde_json::from_str(&ids).unwrap_or_default(),
        bsn: stored_bsn(&row.try_get::<String, _>(5)?)?,
        user_identity: row.try_get(6)?,
        issued_at: row.try_get(7)?,
        expires_at: row.try_get(8)?,
        cnf_x5t_s256: row.try_get(9)?,
    })
}

impl Store {
    /// A token by the hex SHA-256 of its value.
    pub async fn token(&self, hash: &str) -> Result<TokenRecord, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        token_of_row(&row)
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
}

/// Inserts grants' `jti`s and tokens, many rows per statement; per item whether it was fresh
/// (a `jti` already stored, or repeated earlier in the same batch, is not).
pub(super) async fn insert_grants(
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
            "INSERT INTO tokens (hash, requester, custodian, purpose, credential_ids, bsn, user_identity, issued_at, expires_at, cnf_x5t_s256) VALUES {}",
            placeholders(fresh.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for token in fresh {
            q = q
                .bind(&token.hash)
                .bind(&token.requester)
                .bind(&token.custodian)
                .bind(&token.purpose)
                .bind(serde_json::to_string(&token.credential_ids).unwrap_or_default())
                .bind(token.bsn.as_str())
                .bind(&token.user_identity)
                .bind(token.issued_at)
                .bind(token.expires_at)
                .bind(&token.cnf_x5t_s256);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(stored)
}

/// A BSN read back from a row; one that does not pass the 11-check means the row was not written
/// by us.
pub(super) fn stored_bsn(s: &str) -> Result<crate::bsn::Bsn, StoreError> {
    crate::bsn::Bsn::parse(s)
        .map_err(|e| StoreError::Unavailable(format!("a stored BSN is not valid: {e}")))
}
