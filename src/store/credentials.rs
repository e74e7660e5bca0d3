//! Issued credentials and their revocations.
//!
//! **Invariant:** revocations are never deleted.

use serde::Serialize;
use sqlx::Row as _;

use super::{begin_write, Store, StoreError};

/// A revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// Why.
    pub reason: String,
    /// When (unix seconds).
    pub revoked_at: i64,
}

/// Status of a stored credential at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    pub bsn: crate::bsn::Bsn,
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

/// The PostgreSQL `NOTIFY` channel that carries revoked credential ids.
pub const REVOCATION_CHANNEL: &str = "poortwachter_revocations";

const SELECT_CREDENTIAL: &str =
    "SELECT c.id, c.issuer, c.subject_did, c.purpose, c.bsn, c.consent_type, \
     c.issued_at, c.expires_at, c.document, r.reason, r.revoked_at \
     FROM credentials c LEFT JOIN revocations r ON r.credential_id = c.id";

impl Store {
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
        .bind(c.bsn.as_str())
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
}

fn record(row: &sqlx::any::AnyRow) -> Result<CredentialRecord, StoreError> {
    let reason: Option<String> = row.try_get(9)?;
    let revoked_at: Option<i64> = row.try_get(10)?;
    Ok(CredentialRecord {
        id: row.try_get(0)?,
        issuer: row.try_get(1)?,
        subject_did: row.try_get(2)?,
        purpose: row.try_get(3)?,
        bsn: super::tokens::stored_bsn(&row.try_get::<String, _>(4)?)?,
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
