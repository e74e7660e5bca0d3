//! The embedded Hub's tables: accounts, registered dossiers, shares. Visibility (own dossiers
//! and those shared with the account's name or AGB) is decided here, in the query, so a search
//! never loads what the caller may not see.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{Store, StoreError};
use crate::bsn::Bsn;

/// The row types of the Hub's tables; `hub::dossier` builds them from client input only after
/// validating every property and filter.
/// A validated dossier registration (see `hub::dossier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dossier {
    /// The client's BSN (passes the 11-check).
    pub client_bsn: Bsn,
    /// The client's full name.
    pub client_displayname: String,
    /// Birth date, `YYYYMMDD`.
    pub client_birthdate: String,
    /// The registering provider's own id for the pregnancy.
    pub reference: String,
    /// Gravidity.
    pub gravida: i64,
    /// Parity.
    pub para: i64,
    /// Expected due date, `YYYYMMDD`.
    pub edd: String,
    /// Start of care at the provider, `YYYYMMDD`.
    pub start_at: String,
    /// End of care at the provider, `YYYYMMDD`, if ended.
    pub end_at: Option<String>,
}

/// A registered dossier as the Hub answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DossierRecord {
    /// The Hub's key.
    pub key: String,
    /// The registering account.
    pub account: String,
    /// Registration time (unix seconds).
    pub registered_at: i64,
    /// The properties.
    pub dossier: Dossier,
}

/// One search condition: a column and its (validated) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A text column equals.
    Text(&'static str, String),
    /// An integer column equals.
    Number(&'static str, i64),
    /// `client_bsn` equals.
    Bsn(Bsn),
}

/// A search: at least one condition, each property at most once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// The conditions (ANDed).
    pub conditions: Vec<Condition>,
}

/// A Hub account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubAccount {
    /// Account name (unique, e.g. `verloskundigen-a`).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// AGB code of the organisation, if known.
    pub agb: Option<String>,
    /// The API key (Basic user name).
    pub api_key: String,
    /// argon2id PHC string of the secret.
    pub secret_hash: String,
    /// The provider's dossier API version (`v1` or `v3`).
    pub source_api: String,
    /// The provider's dossier API URL template (`{reference}`, `{key}`), if it offers one.
    pub source_url: Option<String>,
    /// Disabled accounts cannot authenticate.
    pub disabled: bool,
    /// Creation (unix seconds).
    pub created_at: i64,
}

/// A share of a dossier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubShare {
    /// Account name or AGB code.
    pub grantee: String,
    /// `full` or `read`.
    pub permission: String,
}

const ACCOUNT_COLUMNS: &str =
    "name, display_name, agb, api_key, secret_hash, source_api, source_url, disabled, created_at";
const DOSSIER_COLUMNS: &str = "resource_key, account, client_bsn, client_displayname, client_birthdate, reference, gravida, para, edd, start_at, end_at, registered_at";

fn account(row: &AnyRow) -> Result<HubAccount, StoreError> {
    Ok(HubAccount {
        name: row.try_get(0)?,
        display_name: row.try_get(1)?,
        agb: row.try_get(2)?,
        api_key: row.try_get(3)?,
        secret_hash: row.try_get(4)?,
        source_api: row.try_get(5)?,
        source_url: row.try_get(6)?,
        disabled: row.try_get::<i64, _>(7)? != 0,
        created_at: row.try_get(8)?,
    })
}

fn dossier(row: &AnyRow) -> Result<DossierRecord, StoreError> {
    Ok(DossierRecord {
        key: row.try_get(0)?,
        account: row.try_get(1)?,
        dossier: Dossier {
            client_bsn: super::tokens::stored_bsn(&row.try_get::<String, _>(2)?)?,
            client_displayname: row.try_get(3)?,
            client_birthdate: row.try_get(4)?,
            reference: row.try_get(5)?,
            gravida: row.try_get(6)?,
            para: row.try_get(7)?,
            edd: row.try_get(8)?,
            start_at: row.try_get(9)?,
            end_at: row.try_get(10)?,
        },
        registered_at: row.try_get(11)?,
    })
}

const UPSERT: &str = "INSERT INTO hub_resources (resource_key, account, client_bsn, \
     client_displayname, client_birthdate, reference, gravida, para, edd, start_at, end_at, \
     registered_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
     ON CONFLICT (account, client_bsn, gravida) DO UPDATE SET \
     client_displayname = excluded.client_displayname, \
     client_birthdate = excluded.client_birthdate, reference = excluded.reference, \
     para = excluded.para, edd = excluded.edd, start_at = excluded.start_at, \
     end_at = excluded.end_at, updated_at = excluded.updated_at \
     RETURNING resource_key";

/// Binds a dossier row's 12 columns (key, account, the properties, registration time) in
/// [`DOSSIER_COLUMNS`] order.
fn bind_dossier<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    key: &'q str,
    account: &'q str,
    d: &'q Dossier,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(key)
        .bind(account)
        .bind(d.client_bsn.as_str())
        .bind(&d.client_displayname)
        .bind(&d.client_birthdate)
        .bind(&d.reference)
        .bind(d.gravida)
        .bind(d.para)
        .bind(&d.edd)
        .bind(&d.start_at)
        .bind(&d.end_at)
        .bind(now)
}

/// The most rows a search returns; more is an error the caller reports.
pub const SEARCH_LIMIT: usize = 1000;

impl Store {
    /// Adds an account; [`StoreError::Conflict`] when the name exists.
    pub async fn hub_insert_account(&self, a: &HubAccount) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO hub_accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&a.name)
        .bind(&a.display_name)
        .bind(&a.agb)
        .bind(&a.api_key)
        .bind(&a.secret_hash)
        .bind(&a.source_api)
        .bind(&a.source_url)
        .bind(i64::from(a.disabled))
        .bind(a.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// All accounts, by name.
    pub async fn hub_accounts(&self) -> Result<Vec<HubAccount>, StoreError> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM hub_accounts ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account)
        .collect()
    }

    /// Accounts whose `column` equals `value`, by name (`column` is one of ours, never input).
    async fn accounts_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Vec<HubAccount>, StoreError> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM hub_accounts WHERE {column} = $1 ORDER BY name"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account)
        .collect()
    }

    /// The account with this API key.
    pub async fn hub_account_by_key(&self, key: &str) -> Result<Option<HubAccount>, StoreError> {
        Ok(self
            .accounts_where("api_key", key)
            .await?
            .into_iter()
            .next())
    }

    /// The account with this name.
    pub async fn hub_account(&self, name: &str) -> Result<Option<HubAccount>, StoreError> {
        Ok(self.accounts_where("name", name).await?.into_iter().next())
    }

    /// Accounts with this AGB code, by name.
    pub async fn hub_accounts_by_agb(&self, agb: &str) -> Result<Vec<HubAccount>, StoreError> {
        self.accounts_where("agb", agb).await
    }

    /// Disables an account; [`StoreError::NotFound`] when there is none.
    pub async fn hub_disable_account(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE hub_accounts SET disabled = 1 WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Registers a dossier, or updates the one this account registered for the same BSN and
    /// gravida. Returns the (new or existing) key.
    pub async fn hub_upsert(
        &self,
        account: &str,
        new_key: &str,
        d: &Dossier,
        now: i64,
    ) -> Result<String, StoreError> {
        let item = (account.to_owned(), new_key.to_owned(), d.clone());
        self.hub_upsert_batch(std::slice::from_ref(&item), now)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// Registers (or updates) several dossiers in one transaction: one sync for all of them
    /// (the Hub's group commit). Returns each dossier's key, in order.
    pub async fn hub_upsert_batch(
        &self,
        items: &[(String, String, Dossier)],
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = super::begin_write(&self.pool, self.postgres).await?;
        let mut keys = Vec::with_capacity(items.len());
        for (account, new_key, d) in items {
            let row = bind_dossier(sqlx::query(UPSERT), new_key, account, d, now)
                .fetch_one(&mut *tx)
                .await?;
            keys.push(row.try_get(0)?);
        }
        tx.commit().await?;
        Ok(keys)
    }

    /// Bulk registration for imports and benchmarks: one transaction, multi-row inserts, each
    /// dossier shared with `share_with` (account name or AGB, permission `full`) when given.
    pub async fn hub_import(
        &self,
        account: &str,
        rows: &[(String, Dossier)],
        share_with: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = super::begin_write(&self.pool, self.postgres).await?;
        for chunk in rows.chunks(50) {
            let sql = format!(
                "INSERT INTO hub_resources ({DOSSIER_COLUMNS}, updated_at) VALUES {}",
                super::placeholders(chunk.len(), 13)
            );
            let mut q = sqlx::query(&sql);
            for (key, d) in chunk {
                q = bind_dossier(q, key, account, d, now).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        if let Some(grantee) = share_with {
            for chunk in rows.chunks(200) {
                let sql = format!(
                    "INSERT INTO hub_shares (resource_key, grantee, permission) VALUES {}",
                    super::placeholders(chunk.len(), 3)
                );
                let mut q = sqlx::query(&sql);
                for (key, _) in chunk {
                    q = q.bind(key).bind(grantee).bind("full");
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Dossiers matching `filter` that `viewer` (account name, AGB) may see: its own and those
    /// shared with its name or AGB. At most [`SEARCH_LIMIT`] + 1 rows (the caller reports more).
    pub async fn hub_search(
        &self,
        viewer: &str,
        viewer_agb: Option<&str>,
        filter: &Filter,
    ) -> Result<Vec<DossierRecord>, StoreError> {
        let mut sql = format!("SELECT {DOSSIER_COLUMNS} FROM hub_resources r WHERE ");
        for (i, c) in filter.conditions.iter().enumerate() {
            let column = match c {
                Condition::Text(column, _) | Condition::Number(column, _) => column,
                Condition::Bsn(_) => "client_bsn",
            };
            sql.push_str(&format!("r.{column} = ${} AND ", i + 1));
        }
        let n = filter.conditions.len();
        sql.push_str(&format!(
            "(r.account = ${a} OR EXISTS (SELECT 1 FROM hub_shares s WHERE s.resource_key = r.resource_key \
             AND (s.grantee = ${a} OR s.grantee = ${g}))) ORDER BY r.registered_at, r.resource_key LIMIT {limit}",
            a = n + 1,
            g = n + 2,
            limit = SEARCH_LIMIT + 1
        ));
        let mut q = sqlx::query(&sql);
        for c in &filter.conditions {
            q = match c {
                Condition::Text(_, v) => q.bind(v.clone()),
                Condition::Bsn(b) => q.bind(b.as_str().to_owned()),
                Condition::Number(_, v) => q.bind(*v),
            };
        }
        q.bind(viewer)
            .bind(viewer_agb.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(dossier)
            .collect()
    }

    /// One dossier by key, if `viewer` may see it.
    pub async fn hub_visible(
        &self,
        key: &str,
        viewer: &str,
        viewer_agb: Option<&str>,
    ) -> Result<Option<DossierRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {DOSSIER_COLUMNS} FROM hub_resources r WHERE r.resource_key = $1 AND \
             (r.account = $2 OR EXISTS (SELECT 1 FROM hub_shares s WHERE s.resource_key = r.resource_key \
             AND (s.grantee = $2 OR s.grantee = $3)))"
        ))
        .bind(key)
        .bind(viewer)
        .bind(viewer_agb.unwrap_or(""))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(dossier)
        .transpose()
    }

    /// The shares of a dossier, by grantee.
    pub async fn hub_shares(&self, key: &str) -> Result<Vec<HubShare>, StoreError> {
        let rows = sqlx::query(
            "SELECT grantee, permission FROM hub_shares WHERE resource_key = $1 ORDER BY grantee",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HubShare {
                    grantee: r.try_get(0)?,
                    permission: r.try_get(1)?,
                })
            })
            .collect()
    }

    /// Shares a dossier (or changes the permission of an existing share).
    pub async fn hub_put_share(
        &self,
        key: &str,
        grantee: &str,
        permission: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hub_shares (resource_key, grantee, permission) VALUES ($1, $2, $3) \
             ON CONFLICT (resource_key, grantee) DO UPDATE SET permission = excluded.permission",
        )
        .bind(key)
        .bind(grantee)
        .bind(permission)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stops sharing; [`StoreError::NotFound`] when there was no such share.
    pub async fn hub_remove_share(&self, key: &str, grantee: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM hub_shares WHERE resource_key = $1 AND grantee = $2")
            .bind(key)
            .bind(grantee)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Number of registered dossiers.
    pub async fn hub_resource_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM hub_resources")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }
}
