//! The accept loop: HTTP/1.1 and HTTP/2 (prior knowledge) on one port, with a time limit on
//! request headers (slow clients are cut off), limits on the request head (its size and number of
//! header lines: over them, 431), and graceful shutdown: when told to stop, no new connections
//! are accepted and in-flight requests are given up to the client time limit.
//!
//! With TLS (`[tls]`), each connection's handshake runs on its worker under the same time limit
//! (plain HTTP sent to the port, a bad handshake or a stalled client costs that connection only),
//! and a verified client certificate ([`crate::tls::ClientCert`]) is put on every request of the
//! connection as an extension: what the authenticators and the audit log read.
//!
//! Connections are served by [`Workers`]: threads with a single-threaded runtime each, handed
//! accepted connections in turn. A connection and every request on it then stay on one thread
//! (as nginx's workers do): no work stealing and no cross-thread wake-ups on the request path,
//! which on a small machine cost more than the request itself.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower_service::Service;

use crate::tls::{ClientCert, TlsAcceptorHandle};

type Connection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Connection worker threads, each running a single-threaded runtime.
#[derive(Debug)]
pub struct Workers {
    queues: Vec<mpsc::UnboundedSender<Connection>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` workers (at least one).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let mut queues = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Connection>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("http-worker-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        crate::inbox::install();
                        while let Some(connection) = rx.recv().await {
                            tokio::spawn(connection);
                        }
                    });
                })?;
            queues.push(tx);
        }
        Ok(Self {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `connection` on the next worker; `false` if the workers are gone.
    fn run(&self, connection: Connection) -> bool {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        self.queues[i].send(connection).is_ok()
    }
}

/// What every listener allows a client: the same on each.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send the request head (and, for the handlers, the body); also the shutdown grace.
    pub client_timeout: Duration,
    /// Largest request head (request line and headers together; HTTP/2: the header list).
    pub max_head_bytes: usize,
    /// Most header lines in one HTTP/1 request.
    pub max_headers: usize,
}

impl Limits {
    /// The limits of `config`.
    #[must_use]
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            client_timeout: config.client_timeout,
            max_head_bytes: config.max_request_head_bytes,
            max_headers: config.max_request_headers,
        }
    }
}

/// Concurrent HTTP/2 streams per connection.
const MAX_CONCURRENT_STREAMS: u32 = 100;

/// Serves `router` on `listener` until `stop` turns true; connections run on `workers`, or as
/// tasks of the current runtime without them; with `tls`, every connection is a TLS one.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
    workers: Option<&Workers>,
    tls: Option<TlsAcceptorHandle>,
) {
    let timeout = limits.client_timeout;
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        // hyper answers 431 when the head outgrows its buffer or has too many header lines.
        .max_buf_size(limits.max_head_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(timeout)
        // h2 answers a header list over this with 431.
        .max_header_list_size(u32::try_from(limits.max_head_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let conn = Conn {
                    router: router.clone(),
                    builder: builder.clone(),
                    watcher: graceful.watcher(),
                    tls: tls.clone(),
                    handshake_timeout: timeout,
                };
                let Some(workers) = workers else {
                    tokio::spawn(conn.serve(stream));
                    continue;
                };
                // The socket moves to the worker's runtime (it registers with the runtime
                // that polls it first).
                let Ok(stream) = stream.into_std() else { continue };
                workers.run(Box::pin(async move {
                    let Ok(stream) = TcpStream::from_std(stream) else { return };
                    conn.serve(stream).await;
                }));
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(timeout) => tracing::warn!("shutdown: in-flight requests cut off after the grace period"),
    }
}

/// One accepted connection and what serving it takes.
struct Conn {
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    tls: Option<TlsAcceptorHandle>,
    handshake_timeout: Duration,
}

impl Conn {
    /// Serves the connection until it ends (after the TLS handshake, with TLS).
    async fn serve(self, stream: TcpStream) {
        let Some(tls) = &self.tls else {
            let service = TowerToHyperService::new(self.router);
            let connection = self
                .builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service);
            let _ = self.watcher.watch(connection.into_owned()).await;
            return;
        };
        let (stream, cert) = match crate::tls::accept(tls, stream, self.handshake_timeout).await {
            Ok(accepted) => accepted,
            Err(e) => {
                // One line per refused handshake, at debug: a scan of the port must not flood
                // the log. Nothing of the peer's input is echoed.
                tracing::debug!(kind = e.kind(), "TLS handshake refused");
                return;
            }
        };
        let io = TokioIo::new(stream);
        match cert {
            None => {
                let service = TowerToHyperService::new(self.router);
                let connection = self.builder.serve_connection_with_upgrades(io, service);
                let _ = self.watcher.watch(connection.into_owned()).await;
            }
            Some(cert) => {
                let service = TowerToHyperService::new(WithClientCert {
                    router: self.router,
                    cert,
                });
                let connection = self.builder.serve_connection_with_upgrades(io, service);
                let _ = self.watcher.watch(connection.into_owned()).await;
            }
        }
    }
}

/// The router, with the connection's verified client certificate on every request.
#[derive(Clone)]
struct WithClientCert {
    router: Router,
    cert: ClientCert,
}

impl Service<axum::http::Request<Incoming>> for WithClientCert {
    type Response = <Router as Service<axum::http::Request<Incoming>>>::Response;
    type Error = Infallible;
    type Future = <Router as Service<axum::http::Request<Incoming>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<axum::http::Request<Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: axum::http::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.cert.clone());
        self.router.call(request)
    }
}
