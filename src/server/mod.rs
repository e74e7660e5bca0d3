//! `serve`: wires the identity, store, policies, resolver and verifier together and runs the
//! public and internal listeners until SIGTERM/SIGINT.
//!
//! Start-up order: identity (created on first start) → store (migrated) → policies (a bad file
//! stops start-up) → resolver → revocation set (loaded, then followed) → listeners.

pub mod admin_api;
pub mod error;
pub mod listen;
pub mod oauth_api;
mod public;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::Custodian;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::credential::jsonld::Contexts;
use crate::credential::verify::Verifier;
use crate::identity::{DidMethod, Identity, InitOutcome};
use crate::keys::KeyType;
use crate::policy::PolicySet;
use crate::store::revocations::RevocationSet;
use crate::store::Store;

/// The settings a configuration reload (SIGHUP) changes while running.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time a client has to send its body.
    pub client_timeout: std::time::Duration,
    /// Time limit for one source-system request.
    pub upstream_timeout: std::time::Duration,
    /// Largest source-system answer.
    pub max_upstream_body_bytes: usize,
    /// The source system.
    pub upstream: Option<url::Url>,
}

impl LiveSettings {
    fn of(config: &Config) -> Self {
        Self {
            max_body_bytes: config.max_body_bytes,
            client_timeout: config.client_timeout,
            upstream_timeout: config.upstream_timeout,
            max_upstream_body_bytes: config.max_upstream_body_bytes,
            upstream: config.upstream.clone(),
        }
    }
}

/// Shared state of both listeners.
pub struct AppState {
    /// The configuration as started (the reloadable part is in [`AppState::live`]).
    pub config: Config,
    /// Settings that a reload changes (body limits, time limits, upstream, rate limits).
    live: std::sync::RwLock<Arc<LiveSettings>>,
    /// Credential administration.
    pub custodian: Custodian,
    /// The current policies (replaced as a whole on reload).
    pub policies: watch::Receiver<Arc<PolicySet>>,
    /// Replaces the policies (SIGHUP); the next request sees the new set.
    pub policy_updates: watch::Sender<Arc<PolicySet>>,
    /// Credential verification with its caches.
    pub verifier: Arc<Verifier>,
    /// The token endpoint and token lookups.
    pub tokens: crate::oauth::TokenService,
    /// The NEN 7513 audit log writer.
    pub audit: crate::audit::AuditLog,
    /// The HTTP client for the source system (pooled keep-alive connections, one pool per thread).
    pub upstream: crate::proxy::client::UpstreamClient,
    /// Revoked credential ids, followed from the store.
    pub revocations: RevocationSet,
    /// The store.
    pub store: Store,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// Hub source tokens (`[hub_source]`), if configured.
    pub hub_source: Option<Arc<crate::hub::token::SourceVerifier>>,
}

impl AppState {
    /// The current reloadable settings.
    pub fn live(&self) -> Arc<LiveSettings> {
        self.live
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

/// Errors that stop start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Identity.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// Store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Policies.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// DID resolver.
    #[error(transparent)]
    Did(#[from] crate::did::DidError),
    /// `[hub_source]` cannot be used: its policy or the Hub's keys.
    #[error("hub_source: {0}")]
    HubSource(String),
    /// Binding a listener.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// Loads the identity, creating a P-256 `did:key` one on first start.
fn identity(config: &Config) -> Result<Identity, StartError> {
    if config.data_dir.join("identity.json").exists() {
        return Ok(Identity::load(&config.data_dir)?);
    }
    let outcome = Identity::init(&config.data_dir, KeyType::P256, DidMethod::Key, false)?;
    let (InitOutcome::Created(identity) | InitOutcome::Existing(identity)) = outcome;
    tracing::info!(did = %identity.did, data_dir = %config.data_dir.display(), "created identity on first start");
    Ok(identity)
}

/// Builds the state (everything except the listeners).
pub async fn build_state(config: Config) -> Result<Arc<AppState>, StartError> {
    // Policies first: a bad policy file stops start-up before anything is created.
    let policies = PolicySet::load_dir(&config.policies_dir)?;
    let hub_source = match &config.hub_source {
        None => None,
        Some(settings) => {
            if policies.source(&settings.policy).is_none() {
                return Err(StartError::HubSource(format!(
                    "policy \"{}\" is not a hub-source policy in {}",
                    settings.policy,
                    config.policies_dir.display()
                )));
            }
            let verifier = crate::proxy::hub_source::verifier(settings)
                .await
                .map_err(|e| StartError::HubSource(format!("the Hub's keys: {e}")))?;
            tokio::spawn(crate::proxy::hub_source::refresh(
                verifier.clone(),
                settings.clone(),
            ));
            Some(verifier)
        }
    };
    let identity = identity(&config)?;
    let store = Store::open(&config.database_url).await?;
    store
        .wal_control()
        .set_restart_frames(crate::store::sqlite::frames_of_mib(
            config.sqlite_wal_max_mib,
        ));
    let purposes: Vec<&str> = policies.purposes().collect();
    tracing::info!(policies = ?purposes, "policies loaded");
    let resolver = crate::did::Resolver::new(&config.resolver)?;
    let revocations = RevocationSet::default();
    revocations.refresh(&store).await?;
    tokio::spawn(
        revocations
            .clone()
            .follow(store.clone(), config.revocation_poll),
    );
    if let Some(url) = store.postgres_url() {
        tokio::spawn(revocations.clone().listen(url.to_owned()));
    }
    let contexts = Arc::new(Contexts::embedded());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (policy_updates, rx) = watch::channel(Arc::new(policies));
    let verifier = Arc::new(Verifier::new(
        contexts.clone(),
        resolver.clone(),
        clock.clone(),
        Arc::new(revocations.clone()),
    ));
    let tokens = crate::oauth::TokenService::new(crate::oauth::TokenServiceParts {
        audience: config.token_endpoint(),
        custodians: vec![identity.did.clone()],
        resolver,
        verifier: verifier.clone(),
        store: store.clone(),
        revocations: Arc::new(revocations.clone()),
        policies: rx.clone(),
        clock: clock.clone(),
        limiter: crate::oauth::ratelimit::RateLimiter::new(
            config.rate_limit_per_second,
            config.rate_limit_burst,
        ),
    });
    let audit = crate::audit::AuditLog::spawn(store.clone())?;
    tokio::spawn(purge(audit.clone(), clock.clone()));
    tokio::spawn(log_audit_head(store.clone()));
    let upstream = crate::proxy::client::UpstreamClient::new();
    Ok(Arc::new(AppState {
        live: std::sync::RwLock::new(Arc::new(LiveSettings::of(&config))),
        verifier,
        tokens,
        audit,
        upstream,
        custodian: Custodian {
            identity: Arc::new(identity),
            store: store.clone(),
            contexts,
            clock: clock.clone(),
        },
        policies: rx,
        policy_updates,
        metrics: crate::metrics::Metrics::default(),
        hub_source,
        revocations,
        store,
        clock,
        config,
    }))
}

/// Re-reads the configuration (file, environment, flags as at start-up) and applies what can
/// change while running: body and time limits, the upstream, rate limits. A configuration that
/// does not load is refused (the old one stays). Returns the changed keys that need a restart.
pub fn reload_config(state: &AppState) -> Result<Vec<&'static str>, crate::config::ConfigError> {
    let new = state.config.reload()?;
    let ignored = state.config.restart_only_changes(&new);
    state
        .tokens
        .limiter
        .set_limits(new.rate_limit_per_second, new.rate_limit_burst);
    let live = Arc::new(LiveSettings::of(&new));
    tracing::info!(
        max_body_bytes = live.max_body_bytes,
        client_timeout_ms = live.client_timeout.as_millis() as u64,
        upstream_timeout_ms = live.upstream_timeout.as_millis() as u64,
        rate_limit_per_second = new.rate_limit_per_second,
        rate_limit_burst = new.rate_limit_burst,
        "configuration reloaded"
    );
    match state.live.write() {
        Ok(mut l) => *l = live,
        Err(e) => *e.into_inner() = live,
    }
    Ok(ignored)
}

/// Re-reads the policies directory.
///
/// A set that does not load is refused: the old one stays and the error is logged with file,
/// line and reason.
pub fn reload_policies(state: &AppState) -> Result<(), crate::policy::PolicyError> {
    let set = PolicySet::load_dir(&state.config.policies_dir)?;
    if let Some(h) = &state.config.hub_source {
        if set.source(&h.policy).is_none() {
            return Err(crate::policy::PolicyError::File {
                file: state
                    .config
                    .policies_dir
                    .join(format!("{}.toml", h.policy))
                    .display()
                    .to_string(),
                line: 0,
                reason: "[hub_source] needs this hub-source policy".into(),
            });
        }
    }
    let purposes: Vec<&str> = set.purposes().collect();
    tracing::info!(policies = ?purposes, "policies reloaded");
    state.policy_updates.send_replace(Arc::new(set));
    Ok(())
}

async fn reload_on_sighup(state: Arc<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match reload_config(&state) {
                Ok(ignored) if ignored.is_empty() => {}
                Ok(ignored) => tracing::warn!(
                    keys = ?ignored,
                    "configuration reloaded; these changes need a restart and are not applied"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "configuration reload refused; the previous configuration stays in force")
                }
            }
            if let Err(e) = reload_policies(&state) {
                tracing::error!(error = %e, "policy reload refused; the previous policies stay in force");
            }
        }
    }
    #[cfg(not(unix))]
    drop(state);
}

/// RFC 3339 UTC with milliseconds, as audit records carry it.
#[must_use]
pub fn audit_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Forgets `jti`s and tokens a minute after they expired, every 10 seconds (through the audit
/// writer: see [`crate::audit::AuditLog::purge_expired`]).
async fn purge(audit: crate::audit::AuditLog, clock: Arc<dyn Clock>) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = audit.purge_expired(clock.now().unix_timestamp() - 60).await {
            tracing::warn!(error = %e, "purging expired tokens failed");
        }
    }
}

/// Logs the audit chain's head every minute when it moved (and [`run_on`] once more at
/// shutdown): `"audit chain head"` with `anchor` = `SEQ:HASH`. Shipped with the logs, it is kept
/// outside the database, and `audit verify --anchor` finds records deleted after it, which the
/// chain alone cannot show.
async fn log_audit_head(store: crate::store::Store) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut logged = None;
    loop {
        ticker.tick().await;
        logged = log_audit_head_once(&store, logged).await;
    }
}

/// Logs the head unless it is still record `logged`; returns the record now logged.
async fn log_audit_head_once(store: &crate::store::Store, logged: Option<i64>) -> Option<i64> {
    match store.audit_head().await {
        Ok((seq, hash)) if seq > 0 && Some(seq) != logged => {
            let anchor = crate::audit::Anchor { seq, hash };
            tracing::info!(anchor = %anchor, "audit chain head");
            Some(seq)
        }
        Ok(_) => logged,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the audit chain head");
            logged
        }
    }
}

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
    let state = build_state(config).await?;
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
    tracing::info!(
        public_addr = %public_addr,
        internal_addr = %internal_addr,
        did = %state.custodian.identity.did,
        "listening"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let timeout = state.config.client_timeout;
    let workers =
        listen::Workers::start(state.config.http_workers).map_err(|e| StartError::Bind {
            addr: public_addr,
            reason: format!("cannot start the HTTP workers: {e}"),
        })?;
    let public_server = listen::serve(
        public,
        public::router(state.clone()),
        stop_rx.clone(),
        timeout,
        Some(&workers),
    );
    let internal_server = listen::serve(
        internal,
        admin_api::router(state.clone()),
        stop_rx,
        timeout,
        Some(&workers),
    );
    tokio::spawn(reload_on_sighup(state.clone()));
    let signals = async move {
        stop.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    };
    tokio::join!(public_server, internal_server, signals);
    log_audit_head_once(&state.store, None).await;
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
