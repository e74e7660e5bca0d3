//! The HTTP side of `serve`: the listeners, their routers, and the mapping of every error to an
//! HTTP answer ([`error`]). What the handlers call lives below: [`crate::app`] (the shared state),
//! [`crate::proxy`], [`crate::oauth`], [`crate::admin`], [`crate::hub`].

pub mod admin_api;
pub mod console;
pub mod egress_api;
pub mod error;
pub mod hub_api;
pub mod listen;
pub mod medmij_api;
pub mod oauth_api;
pub mod openapi;
mod public;
pub mod zorgdomein_api;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::{AppState, StartError};
use crate::config::Config;

/// Binds a listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|e| StartError::Bind {
        addr,
        reason: e.to_string(),
    })
}

/// Runs both listeners until a shutdown signal.
pub async fn run(config: Config) -> Result<(), StartError> {
    let public = bind(config.public_addr).await?;
    let internal = bind(config.internal_addr).await?;
    let state = crate::app::build_state(config).await?;
    run_on(state, public, internal, wait_for_signal()).await
}

/// Serves `state` on already bound listeners until `stop` completes.
pub async fn run_on(
    state: Arc<AppState>,
    public: TcpListener,
    internal: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let public_addr = public.local_addr().map_err(|e| StartError::Bind {
        addr: state.config.public_addr,
        reason: e.to_string(),
    })?;
    let internal_addr = internal.local_addr().map_err(|e| StartError::Bind {
        addr: state.config.internal_addr,
        reason: e.to_string(),
    })?;
    state.console.instance.set_internal_addr(internal_addr);
    if let Err(e) = crate::console::beat(
        &state.store,
        &state.revocations,
        &state.console.instance,
        state.clock.as_ref(),
    )
    .await
    {
        tracing::warn!(error = %e, "writing the instance heartbeat failed");
    }
    tracing::info!(
        public_addr = %public_addr,
        internal_addr = %internal_addr,
        did = %state.custodian.identity.did,
        "listening"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = listen::Limits::of(&state.config);
    let workers =
        listen::Workers::start(state.config.http_workers).map_err(|e| StartError::Bind {
            addr: public_addr,
            reason: format!("cannot start the HTTP workers: {e}"),
        })?;
    let public_server = listen::serve(
        public,
        public::router(state.clone()),
        stop_rx.clone(),
        limits,
        Some(&workers),
        state.tls.clone(),
    );
    let internal_server = listen::serve(
        internal,
        admin_api::router(state.clone()),
        stop_rx,
        limits,
        Some(&workers),
        state.tls.clone().filter(|_| state.config.internal_tls),
    );
    tokio::spawn(crate::app::reload_on_sighup(state.clone()));
    let signals = async move {
        stop.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    };
    tokio::join!(public_server, internal_server, signals);
    crate::app::log_audit_head_once(&state.store, None).await;
    state.store.close().await;
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
