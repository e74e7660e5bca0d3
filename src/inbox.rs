//! Batched hand-back of results to the thread that asked for them.
//!
//! A task waiting on a thread with its own single-threaded runtime (an HTTP worker) is woken from
//! another thread through that runtime's event fd: a system call and a wake-up per task. The
//! audit writer answers a whole batch at once, so it hands the answers to each asking thread's
//! [`Inbox`] and wakes that thread once; there a dispatcher task delivers them, and waking a task
//! of the same thread costs nothing.
//!
//! **Invariant:** a thread has an inbox only while its dispatcher runs (installed by the HTTP
//! workers); elsewhere [`current`] is `None` and answers are delivered directly.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

type Delivery = Box<dyn FnOnce() + Send>;

/// Answers waiting to be delivered on one thread.
#[derive(Default)]
pub struct Inbox {
    pending: Mutex<Vec<Delivery>>,
    wake: Notify,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl Inbox {
    /// Queues `deliveries` and wakes the inbox's thread once.
    pub fn deliver(&self, deliveries: Vec<Delivery>) {
        match self.pending.lock() {
            Ok(mut p) => p.extend(deliveries),
            Err(e) => e.into_inner().extend(deliveries),
        }
        self.wake.notify_one();
    }

    async fn dispatch(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            let batch = match self.pending.lock() {
                Ok(mut p) => std::mem::take(&mut *p),
                Err(e) => std::mem::take(&mut *e.into_inner()),
            };
            for deliver in batch {
                deliver();
            }
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Inbox>>> = const { RefCell::new(None) };
}

/// Gives the calling thread an inbox and spawns its dispatcher on the thread's runtime (call
/// from inside a single-threaded runtime's `block_on`).
pub fn install() {
    let inbox = Arc::new(Inbox::default());
    tokio::spawn(inbox.clone().dispatch());
    CURRENT.with(|c| *c.borrow_mut() = Some(inbox));
}

/// The calling thread's inbox, if it has one.
#[must_use]
pub fn current() -> Option<Arc<Inbox>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Delivers each answer through its inbox (one wake-up per inbox) or, without one, at once.
pub fn deliver_all(answers: Vec<(Option<Arc<Inbox>>, Delivery)>) {
    let mut by_inbox: Vec<(Arc<Inbox>, Vec<Delivery>)> = Vec::new();
    for (inbox, deliver) in answers {
        match inbox {
            None => deliver(),
            Some(inbox) => match by_inbox.iter_mut().find(|(i, _)| Arc::ptr_eq(i, &inbox)) {
                Some((_, list)) => list.push(deliver),
                None => by_inbox.push((inbox, vec![deliver])),
            },
        }
    }
    for (inbox, list) in by_inbox {
        inbox.deliver(list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_another_thread_arrive_through_the_inbox_or_directly() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(current().is_none(), "no inbox before install");
            install();
            let inbox = current().expect("installed");
            let (a, b) = (
                tokio::sync::oneshot::channel(),
                tokio::sync::oneshot::channel(),
            );
            let (direct_tx, direct_rx) = std::sync::mpsc::channel();
            let (ta, tb) = (a.0, b.0);
            std::thread::spawn(move || {
                deliver_all(vec![
                    (Some(inbox.clone()), Box::new(move || ta.send(1).unwrap())),
                    (None, Box::new(move || direct_tx.send(3).unwrap())),
                    (Some(inbox), Box::new(move || tb.send(2).unwrap())),
                ]);
            })
            .join()
            .unwrap();
            assert_eq!(
                direct_rx.try_recv(),
                Ok(3),
                "without an inbox: delivered at once"
            );
            assert_eq!((a.1.await.unwrap(), b.1.await.unwrap()), (1, 2));
        });
    }
}
