//! `poortwachter egress`: the requesting (GP) side's listener ([`crate::egress`]).

use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub(crate) struct EgressArgs {
    /// Listen address; loopback only unless [egress] dangerous_allow_public_egress [default: [egress] listen, else 127.0.0.1:7070]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub(crate) async fn run(ctx: Context, args: EgressArgs) -> anyhow::Result<i32> {
    crate::telemetry::init(ctx.config.log_format);
    let mut settings = ctx.config.egress.clone();
    if let Some(l) = &args.listen {
        settings.listen = l.parse().map_err(|_| {
            anyhow::anyhow!("--listen: \"{l}\" is not an address like 127.0.0.1:7070")
        })?;
        crate::egress::settings::check_listen(
            settings.listen,
            settings.dangerous_allow_public_egress,
        )
        .map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    }
    if settings.routes.is_empty() {
        anyhow::bail!(
            "{}: egress.route: no [[egress.route]] configured: egress has nowhere to send requests",
            ctx.config.source_description()
        );
    }
    let identity = Arc::new(ctx.identity()?);
    let store = ctx.store().await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let egress = crate::egress::Egress::new(
        settings,
        identity.clone(),
        store.clone(),
        Arc::new(crate::clock::SystemClock),
        ctx.config.max_body_bytes,
        ctx.config.client_timeout,
    )?;
    tracing::info!(
        addr = %addr,
        did = %identity.did,
        routes = egress.settings().routes.len(),
        "egress listening"
    );
    tokio::spawn(sighup_is_not_a_reload());
    crate::server::egress_api::run(
        Arc::new(egress),
        listener,
        crate::server::listen::Limits::of(&ctx.config),
        ctx.config.http_workers,
        crate::server::wait_for_signal(),
    )
    .await?;
    crate::app::log_audit_head_once(&store, None).await;
    store.close().await;
    Ok(0)
}

/// egress reads its configuration once: a SIGHUP (meant for `serve`) is logged, not fatal.
async fn sighup_is_not_a_reload() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::warn!(
                "SIGHUP: egress does not reload its configuration; restart it to apply a change"
            );
        }
    }
}
