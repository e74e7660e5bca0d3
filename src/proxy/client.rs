//! The HTTP client for the source system: hyper's pooled keep-alive connections over plain TCP or
//! rustls (the system's roots), HTTP/1.1, no redirects, no proxy from the environment. One pool
//! per thread: a pooled connection is driven by a task on the runtime that opened it, so a
//! connection shared between the HTTP workers would wake another thread twice per request.
//!
//! hyper directly rather than reqwest: the request path has a ready `http::Uri` and a complete
//! body, and needs none of reqwest's URL parsing (with IDNA), redirect or decoding layers.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// One thread's client.
pub type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Hands out this thread's client.
#[derive(Debug)]
pub struct UpstreamClient {
    /// Tells this instance's thread-local clients from another's (tests run several servers).
    id: u64,
}

fn build() -> Upstream {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    // The provider is named: with both of rustls' providers compiled in (aws-lc-rs serves our
    // TLS listener), rustls cannot pick a process default by itself.
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .unwrap_or_else(|e| {
            // As reqwest does: without system roots plain HTTP still works, and an HTTPS
            // upstream fails its handshake (502).
            tracing::warn!(error = %e, "no system TLS roots: an https upstream cannot be verified");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(without_roots())
        })
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_timer(TokioTimer::new())
        .build(tls)
}

/// A TLS configuration that trusts no server.
fn without_roots() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(rustls::DEFAULT_VERSIONS)
    .unwrap_or_else(|_| rustls::ClientConfig::builder())
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}

thread_local! {
    static LOCAL: RefCell<Option<(u64, Upstream)>> = const { RefCell::new(None) };
}

impl UpstreamClient {
    /// A new set of per-thread clients.
    #[must_use]
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The calling thread's client.
    pub fn get(&self) -> Upstream {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            match &*local {
                Some((id, client)) if *id == self.id => client.clone(),
                _ => {
                    let client = build();
                    *local = Some((self.id, client.clone()));
                    client
                }
            }
        })
    }
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new()
    }
}
