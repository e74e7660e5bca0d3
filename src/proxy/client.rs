//! The HTTP client for the source system: hyper's pooled keep-alive connections over plain TCP or
//! rustls, HTTP/1.1, no redirects, no proxy from the environment. One pool per thread: a pooled
//! connection is driven by a task on the runtime that opened it, so a connection shared between
//! the HTTP workers would wake another thread twice per request.
//!
//! TLS towards an `https` upstream: the system's roots, or `upstream_ca` instead, and with
//! `upstream_client_cert` / `upstream_client_key` our client certificate for a source system
//! that requires mutual TLS ([`crate::tls::client`]). [`UpstreamClient::set_tls`] (SIGHUP)
//! swaps the configuration: each thread builds a new client (a new pool) on its next request,
//! and requests already under way finish on the old one.
//!
//! hyper directly rather than reqwest: the request path has a ready `http::Uri` and a complete
//! body, and needs none of reqwest's URL parsing (with IDNA), redirect or decoding layers.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
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
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Bumped by every [`UpstreamClient::set_tls`]: a thread whose client is older builds anew.
    generation: AtomicU64,
    /// The configured TLS; `None`: the system's roots, no client certificate.
    tls: RwLock<Option<Arc<rustls::ClientConfig>>>,
}

fn build(tls: Option<&rustls::ClientConfig>) -> Upstream {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let builder = match tls {
        Some(config) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config.clone()),
        // The provider is named: with both of rustls' providers compiled in (aws-lc-rs serves
        // our TLS listener), rustls cannot pick a process default by itself.
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .unwrap_or_else(|e| {
                // As reqwest does: without system roots plain HTTP still works, and an HTTPS
                // upstream fails its handshake (502).
                tracing::warn!(error = %e, "no system TLS roots: an https upstream cannot be verified");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(without_roots())
            }),
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_timer(TokioTimer::new())
        .build(connector)
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

/// This thread's client: (instance id, generation, client).
type Local = Option<(u64, u64, Upstream)>;

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(None) };
}

impl UpstreamClient {
    /// A new set of per-thread clients with the system's roots and no client certificate.
    #[must_use]
    pub fn new() -> Self {
        Self::with_tls(None)
    }

    /// A new set of per-thread clients with `tls` for https upstreams (`None`: the system's
    /// roots, no client certificate).
    #[must_use]
    pub fn with_tls(tls: Option<rustls::ClientConfig>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            shared: Arc::new(Shared {
                generation: AtomicU64::new(0),
                tls: RwLock::new(tls.map(Arc::new)),
            }),
        }
    }

    /// Uses `tls` from the next request on (each thread opens new connections with it).
    pub fn set_tls(&self, tls: Option<rustls::ClientConfig>) {
        *self
            .shared
            .tls
            .write()
            .unwrap_or_else(PoisonError::into_inner) = tls.map(Arc::new);
        self.shared.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether a TLS configuration of our own is in force (else the system's roots).
    #[must_use]
    pub fn has_tls(&self) -> bool {
        self.shared
            .tls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The calling thread's client.
    pub fn get(&self) -> Upstream {
        let generation = self.shared.generation.load(Ordering::Acquire);
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            match &*local {
                Some((id, g, client)) if *id == self.id && *g == generation => client.clone(),
                _ => {
                    let tls = self
                        .shared
                        .tls
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    let client = build(tls.as_deref());
                    *local = Some((self.id, generation, client.clone()));
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
