//! The in-memory set of revoked credential ids that hot paths consult, kept in step with the
//! database by a poller (the CLI and the server share the database, so a revocation made by the
//! CLI reaches a running server within one poll interval).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::Store;
use crate::credential::verify::RevocationCheck;

/// Revoked ids, shared by all request handlers.
#[derive(Debug, Default, Clone)]
pub struct RevocationSet {
    ids: Arc<RwLock<HashSet<String>>>,
}

impl RevocationSet {
    /// Adds one id (the server's own revocations apply at once, before the next poll).
    pub fn insert(&self, id: &str) {
        if let Ok(mut ids) = self.ids.write() {
            ids.insert(id.to_owned());
        }
    }

    /// Replaces the whole set.
    pub fn replace(&self, new: HashSet<String>) {
        if let Ok(mut ids) = self.ids.write() {
            *ids = new;
        }
    }

    /// Loads the set from the store now.
    pub async fn refresh(&self, store: &Store) -> Result<(), super::StoreError> {
        let ids = store.revoked_ids().await?;
        self.replace(ids.into_iter().collect());
        Ok(())
    }

    /// Polls the store every `interval` and reloads the set when the revocation count changes.
    /// Runs until the task is dropped.
    pub async fn follow(self, store: Store, interval: Duration) {
        let mut seen = -1;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match store.revocation_count().await {
                Ok(count) if count != seen => match self.refresh(&store).await {
                    Ok(()) => seen = count,
                    Err(e) => tracing::warn!(error = %e, "reloading revocations failed"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "polling revocations failed"),
            }
        }
    }
}

impl RevocationSet {
    /// On PostgreSQL: applies revocations as their `NOTIFY` arrives (milliseconds instead of
    /// a poll interval). If the listen connection drops it reconnects after a second; the poll
    /// of [`RevocationSet::follow`] keeps running as the fallback meanwhile. Runs until dropped.
    pub async fn listen(self, url: String) {
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen(super::REVOCATION_CHANNEL).await {
                        tracing::warn!(error = %e, "LISTEN for revocations failed");
                    } else {
                        tracing::info!("listening for revocations");
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) => self.insert(n.payload()),
                                // The connection was lost (and will be re-established by
                                // sqlx); notifications may have been missed: the poll catches up.
                                Ok(None) => tracing::warn!(
                                    "revocation listen connection lost; polling covers the gap"
                                ),
                                Err(e) => {
                                    tracing::warn!(error = %e, "revocation listen connection failed");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot connect the revocation listener"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl RevocationCheck for RevocationSet {
    /// Fails closed: a poisoned lock counts as revoked.
    fn is_revoked(&self, credential_id: &str) -> bool {
        self.ids
            .read()
            .map_or(true, |ids| ids.contains(credential_id))
    }
}
