//! The audit log's table: the chain head, appends (only through the group-commit writer, in
//! [`Store::commit_batch`]) and streaming reads for `audit verify` and `export`.

use sqlx::Row as _;

use super::medmij::{MedmijOutcome, MedmijWrite};
use super::tokens::insert_grants;
use super::{
    begin_write, placeholders, Store, StoreError, TokenRecord, Tx, UsedJti, ROWS_PER_STATEMENT,
};
use crate::audit::{AuditRow, GENESIS_HASH};

/// Audit export filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

impl Store {
    /// One transaction for a group commit: the grants (their `jti`s and tokens), then the
    /// audit rows that `rows` builds from the chain head and the grants' freshness. On
    /// PostgreSQL an advisory lock serialises the writers of all replicas, and the head is read
    /// inside the transaction, so concurrent replicas extend one chain without conflicts.
    #[cfg(test)]
    pub(crate) async fn commit_batch(
        &self,
        grants: &[(&UsedJti, &TokenRecord)],
        rows: impl FnOnce((i64, String), &[bool]) -> Vec<AuditRow>,
    ) -> Result<Vec<bool>, StoreError> {
        self.commit_batch_with(grants, &[], |head, fresh, _| rows(head, fresh))
            .await
            .map(|(fresh, _)| fresh)
    }

    /// [`Store::commit_batch`] with MedMij writes too (after the grants, before the audit rows,
    /// which `rows` builds knowing what each write did).
    pub(crate) async fn commit_batch_with(
        &self,
        grants: &[(&UsedJti, &TokenRecord)],
        medmij: &[&MedmijWrite],
        rows: impl FnOnce((i64, String), &[bool], &[MedmijOutcome]) -> Vec<AuditRow>,
    ) -> Result<(Vec<bool>, Vec<MedmijOutcome>), StoreError> {
        let mut tx = begin_write(&self.pool, self.postgres).await?;
        if self.postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7513)")
                .execute(&mut *tx)
                .await?;
        }
        let fresh = insert_grants(&mut tx, grants).await?;
        let mut outcomes = Vec::with_capacity(medmij.len());
        for w in medmij {
            outcomes.push(super::medmij::apply_any(&mut tx, w).await?);
        }
        let head = match sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => (r.try_get(0)?, r.try_get(1)?),
            None => (0, GENESIS_HASH.to_owned()),
        };
        append_rows(&mut tx, &rows(head, &fresh, &outcomes)).await?;
        tx.commit().await?;
        Ok((fresh, outcomes))
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
        let (mut sql, _) = filtered_audit_query(filter);
        sql.push_str(" ORDER BY seq");
        let q = bind_audit_filter(sqlx::query(&sql), filter);
        let mut rows = q.fetch(&self.pool);
        while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            if f(audit_row(&r)?).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// The columns of an [`AuditRow`], in the order [`audit_row`] reads them.
pub(super) const AUDIT_COLUMNS: &str = "seq, time_unix, requester, bsn, record, prev_hash, hash";

/// `SELECT` of the audit rows that match `filter`'s set conditions, without an order, and the
/// number of placeholders it used (`$1`…): a caller adds its own after them.
/// [`bind_audit_filter`] binds the values in the same order.
pub(super) fn filtered_audit_query(filter: &AuditFilter) -> (String, usize) {
    let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1");
    let conditions = [
        (filter.since.is_some(), "time_unix >="),
        (filter.until.is_some(), "time_unix <"),
        (filter.bsn.is_some(), "bsn ="),
        (filter.requester.is_some(), "requester ="),
    ];
    let mut n = 0;
    for (_, condition) in conditions.iter().filter(|(set, _)| *set) {
        n += 1;
        sql.push_str(&format!(" AND {condition} ${n}"));
    }
    (sql, n)
}

/// Binds `filter`'s set values to a query from [`filtered_audit_query`].
pub(super) fn bind_audit_filter<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    filter: &'q AuditFilter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
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
    q
}

/// One row of [`AUDIT_COLUMNS`].
pub(super) fn audit_row(r: &sqlx::any::AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: r.try_get(0)?,
        time_unix: r.try_get(1)?,
        requester: r.try_get(2)?,
        bsn: r.try_get(3)?,
        record: r.try_get(4)?,
        prev_hash: r.try_get(5)?,
        hash: r.try_get(6)?,
    })
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
