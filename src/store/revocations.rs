//! The in-memory sets that hot paths consult, kept in step with the database by a poller (the CLI
//! and the server share the database, so a revocation made by the CLI reaches a running server
//! within one poll interval) and on PostgreSQL by `LISTEN`: revoked credential ids, and the
//! hashes of tokens ended from the admin console (their credential stays valid).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::Store;
use crate::credential::verify::RevocationCheck;

/// Revoked ids, shared by all request handlers.
#[derive(Debug, Default, Clone)]
pub struct RevocationSet {
    ids: Arc<RwLock<HashSet<String>>>,
    ended: Arc<RwLock<HashSet<String>>>,
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

    /// Adds the hash of an ended token (the server's own apply at once).
    pub fn end_token(&self, hash: &str) {
        if let Ok(mut ended) = self.ended.write() {
            ended.insert(hash.to_owned());
        }
    }

    /// Whether the token with this hash was ended. Fails closed: a poisoned lock counts as
    /// ended.
    #[must_use]
    pub fn is_token_ended(&self, hash: &str) -> bool {
        self.ended.read().map_or(true, |e| e.contains(hash))
    }

    /// How many revoked credentials and ended tokens this instance knows of.
    #[must_use]
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.ids.read().map_or(0, |i| i.len()),
            self.ended.read().map_or(0, |e| e.len()),
        )
    }

    /// Loads the set from the store now.
    pub async fn refresh(&self, store: &Store) -> Result<(), super::StoreError> {
        let ids = store.revoked_ids().await?;
        self.replace(ids.into_iter().collect());
        Ok(())
    }

    /// Loads the ended tokens from the store now.
    pub async fn refresh_ended(&self, store: &Store) -> Result<(), super::StoreError> {
        let hashes: HashSet<String> = store.ended_token_hashes().await?.into_iter().collect();
        if let Ok(mut ended) = self.ended.write() {
            *ended = hashes;
        }
        Ok(())
    }

    /// Polls the store every `interval` and reloads a set when its count changes (neither
    /// revocations nor ended tokens are ever deleted). Runs until the task is dropped.
    pub async fn follow(self, store: Store, interval: Duration) {
        let (mut seen, mut seen_ended) = (-1, -1);
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
            match store.ended_token_count().await {
                Ok(count) if count != seen_ended => match self.refresh_ended(&store).await {
                    Ok(()) => seen_ended = count,
                    Err(e) => tracing::warn!(error = %e, "reloading ended tokens failed"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "polling ended tokens failed"),
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
                    if let Err(e) = listener
                        .listen_all([super::REVOCATION_CHANNEL, super::ENDED_TOKENS_CHANNEL])
                        .await
                    {
                        tracing::warn!(error = %e, "LISTEN for revocations failed");
                    } else {
                        tracing::info!("listening for revocations");
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) if n.channel() == super::ENDED_TOKENS_CHANNEL => {
                                    self.end_token(n.payload());
                                }
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

    fn is_token_ended(&self, token_hash: &str) -> bool {
        RevocationSet::is_token_ended(self, token_hash)
    }
}
