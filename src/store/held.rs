//! Held credentials: the authorization credentials custodians issued to us (the requesting side,
//! `credential import`, read by `poortwachter egress`), apart from the ones we issued.

use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError};

/// A credential we hold, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCredential {
    /// Credential id.
    pub id: String,
    /// The issuer: the custodian's DID.
    pub issuer: String,
    /// purposeOfUse.
    pub purpose: String,
    /// The patient's BSN.
    pub bsn: crate::bsn::Bsn,
    /// Issuance (unix seconds).
    pub issued_at: i64,
    /// Expiration (unix seconds), if any.
    pub expires_at: Option<i64>,
    /// When it was imported (unix seconds).
    pub imported_at: i64,
    /// The signed credential, exactly as received.
    pub document: String,
}

/// A held credential as `credential list --held --json` shows it (the BSN masked but for its
/// last three digits, the document left out).
#[derive(Debug, Serialize)]
pub struct HeldView<'a> {
    /// Credential id.
    pub id: &'a str,
    /// Issuer (custodian) DID.
    pub issuer: &'a str,
    /// purposeOfUse.
    pub purpose: &'a str,
    /// `******990`.
    pub bsn: String,
    /// `active` or `expired` at the time of listing.
    pub status: &'static str,
    /// Issuance (unix seconds).
    pub issued_at: i64,
    /// Expiration (unix seconds), if any.
    pub expires_at: Option<i64>,
    /// Import (unix seconds).
    pub imported_at: i64,
}

impl HeldCredential {
    /// Whether it has expired at `now` (unix seconds).
    #[must_use]
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e < now)
    }

    /// The listing form at `now`.
    #[must_use]
    pub fn view(&self, now: i64) -> HeldView<'_> {
        HeldView {
            id: &self.id,
            issuer: &self.issuer,
            purpose: &self.purpose,
            bsn: format!("******{}", self.bsn.as_str().get(6..).unwrap_or("")),
            status: if self.expired(now) {
                "expired"
            } else {
                "active"
            },
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            imported_at: self.imported_at,
        }
    }
}

const SELECT_HELD: &str = "SELECT id, issuer, purpose, bsn, issued_at, expires_at, imported_at, \
     document FROM held_credentials";

impl Store {
    /// Stores a received credential. A credential already held is a [`StoreError::Conflict`].
    pub async fn insert_held(&self, c: &HeldCredential) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO held_credentials (id, issuer, purpose, bsn, issued_at, expires_at, imported_at, document) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.issuer)
        .bind(&c.purpose)
        .bind(c.bsn.as_str())
        .bind(c.issued_at)
        .bind(c.expires_at)
        .bind(c.imported_at)
        .bind(&c.document)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every held credential, newest issuance first.
    pub async fn list_held(&self) -> Result<Vec<HeldCredential>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_HELD} ORDER BY issued_at DESC, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(held).collect()
    }

    /// The held credential egress presents for (`issuer`, `purpose`, `bsn`) at `now`: of those
    /// not expired, the one that lasts longest (no end date first), then the newest.
    pub async fn held_for(
        &self,
        issuer: &str,
        purpose: &str,
        bsn: &crate::bsn::Bsn,
        now: i64,
    ) -> Result<Option<HeldCredential>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_HELD} WHERE issuer = $1 AND purpose = $2 AND bsn = $3 \
             AND (expires_at IS NULL OR expires_at >= $4) \
             ORDER BY CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END DESC, expires_at DESC, \
             issued_at DESC, id LIMIT 1"
        ))
        .bind(issuer)
        .bind(purpose)
        .bind(bsn.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(held).transpose()
    }

    /// Removes a held credential; [`StoreError::NotFound`] if we hold none with this id.
    pub async fn remove_held(&self, id: &str) -> Result<(), StoreError> {
        let removed = sqlx::query("DELETE FROM held_credentials WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

fn held(row: &sqlx::any::AnyRow) -> Result<HeldCredential, StoreError> {
    Ok(HeldCredential {
        id: row.try_get(0)?,
        issuer: row.try_get(1)?,
        purpose: row.try_get(2)?,
        bsn: super::tokens::stored_bsn(&row.try_get::<String, _>(3)?)?,
        issued_at: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        imported_at: row.try_get(6)?,
        document: row.try_get(7)?,
    })
}
