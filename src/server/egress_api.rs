//! The listener of `poortwachter egress` (loopback by default): every request goes to
//! [`crate::egress::Egress::handle`]; there is nothing else on it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::egress::Egress;

/// The router: one fallback handler.
pub fn router(egress: Arc<Egress>) -> Router {
    Router::new().fallback(move |request: Request<Body>| {
        let egress = egress.clone();
        async move { egress.handle(request, super::error::egress_answer).await }
    })
}

/// Serves `egress` on `listener` until `stop` completes.
pub async fn run(
    egress: Arc<Egress>,
    listener: TcpListener,
    limits: super::listen::Limits,
    http_workers: usize,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let workers = super::listen::Workers::start(http_workers)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = super::listen::serve(
        listener,
        router(egress),
        stop_rx,
        limits,
        Some(&workers),
        None,
    );
    let signals = async move {
        stop.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    };
    tokio::join!(server, signals);
    Ok(())
}
