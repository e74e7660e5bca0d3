//! Group commit for token issuance: grants that arrive together share one transaction and one
//! sync, and each caller is answered only when its batch is durable. A replayed `jti` is detected
//! per grant inside the batch (`ON CONFLICT DO NOTHING` + row count), so one replay does not fail
//! its neighbours.

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, TokenRecord, UsedJti};

/// Most grants in one transaction.
const MAX_BATCH: usize = 256;

type Job = (
    UsedJti,
    TokenRecord,
    oneshot::Sender<Result<(), StoreError>>,
);

/// A handle to the writer task.
#[derive(Clone, Debug)]
pub struct TokenWriter {
    tx: mpsc::Sender<Job>,
}

impl TokenWriter {
    /// Starts the writer task on `store`.
    #[must_use]
    pub fn spawn(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Stores `token` if `jti` was not used before; [`StoreError::Conflict`] for a replay.
    pub async fn insert(&self, jti: UsedJti, token: TokenRecord) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send((jti, token, done))
            .await
            .map_err(|_| StoreError::Unavailable("token writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("token writer stopped".into()))?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let items: Vec<(&UsedJti, &TokenRecord)> = batch.iter().map(|(j, t, _)| (j, t)).collect();
        match store.insert_tokens(&items).await {
            Ok(inserted) => {
                for ((_, _, done), ok) in batch.into_iter().zip(inserted) {
                    let _ = done.send(if ok {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict)
                    });
                }
            }
            Err(e) => {
                for (_, _, done) in batch {
                    let _ = done.send(Err(StoreError::Unavailable(e.to_string())));
                }
            }
        }
    }
}
