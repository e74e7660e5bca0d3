//! The HTTP client for the source system: pooled keep-alive connections, no redirects, no
//! proxy from the environment. One pool per thread: a pooled connection is driven by a task on
//! the runtime that opened it, so a connection shared between the HTTP workers would wake another
//! thread twice per request.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Hands out this thread's client.
#[derive(Debug)]
pub struct UpstreamClient {
    /// Tells this instance's thread-local clients from another's (tests run several servers).
    id: u64,
    /// Used where a thread's own client cannot be built.
    shared: reqwest::Client,
}

fn build() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(std::time::Duration::from_secs(5))
        .pool_idle_timeout(std::time::Duration::from_secs(60))
        .build()
}

thread_local! {
    static LOCAL: RefCell<Option<(u64, reqwest::Client)>> = const { RefCell::new(None) };
}

impl UpstreamClient {
    /// Builds the client (an error here, such as missing TLS roots, stops start-up).
    pub fn new() -> Result<Self, reqwest::Error> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Ok(Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            shared: build()?,
        })
    }

    /// The calling thread's client.
    pub fn get(&self) -> reqwest::Client {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            match &*local {
                Some((id, client)) if *id == self.id => client.clone(),
                _ => {
                    let client = build().unwrap_or_else(|_| self.shared.clone());
                    *local = Some((self.id, client.clone()));
                    client
                }
            }
        })
    }
}
