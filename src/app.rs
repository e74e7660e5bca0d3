//! The running instance: everything both listeners share ([`AppState`]), built once at start-up
//! ([`build_state`]) and partly re-read on SIGHUP ([`reload_config`], [`reload_policies`]), plus
//! the background tasks (purge of expired tokens, the audit chain's head in the log).
//!
//! Start-up order: policies (a bad file stops start-up) → identity (created on first start) →
//! store (migrated) → resolver → revocation set (loaded, then followed) → writer.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::admin::Custodian;
use crate::authn::hub_source::HubSource;
use crate::authn::nuts::NutsToken;
use crate::authn::{Authenticator, Mount, Mounts};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::config::{Live, LiveSettings};
use crate::credential::jsonld::Contexts;
use crate::credential::verify::Verifier;
use crate::identity::{DidMethod, Identity, InitOutcome};
use crate::keys::KeyType;
use crate::metrics::Metrics;
use crate::oauth::TokenService;
use crate::policy::PolicySet;
use crate::proxy::Proxy;
use crate::store::revocations::RevocationSet;
use crate::store::writer::Writer;
use crate::store::Store;

/// Shared state of both listeners.
pub struct AppState {
    /// The configuration as started (the reloadable part is in [`AppState::live`]).
    pub config: Config,
    /// Settings that a reload changes (body limits, time limits, upstream).
    pub live: Live,
    /// Credential administration.
    pub custodian: Custodian,
    /// The current policies (replaced as a whole on reload).
    pub policies: watch::Receiver<Arc<PolicySet>>,
    /// Replaces the policies (SIGHUP); the next request sees the new set.
    pub policy_updates: watch::Sender<Arc<PolicySet>>,
    /// Credential verification with its caches.
    pub verifier: Arc<Verifier>,
    /// The token endpoint and token lookups.
    pub tokens: Arc<TokenService>,
    /// The group-commit writer of audit records and grants.
    pub writer: Writer,
    /// The proxy with its authenticators.
    pub proxy: Proxy,
    /// Revoked credential ids, followed from the store.
    pub revocations: RevocationSet,
    /// The store.
    pub store: Store,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The listeners' TLS (`[tls]`), re-read on SIGHUP.
    pub tls: Option<crate::tls::TlsAcceptorHandle>,
    /// MedMij "Delen" (`[medmij]`): the authorization server, if configured.
    pub medmij: Option<Arc<crate::medmij::service::Service>>,
    /// The ZorgDomein SSO launch token's signer (`[zorgdomein]`).
    pub zorgdomein_sso: Option<Arc<crate::zorgdomein::sso::SsoSigner>>,
    /// The admin console (sessions, logins, the chart's counts).
    pub console: Arc<crate::console::Console>,
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
    /// `[medmij]` cannot be used: its lists, policies or login.
    #[error("medmij: {0}")]
    Medmij(String),
    /// `[zorgdomein]` cannot be used: its policy, keys or SSO key.
    #[error("zorgdomein: {0}")]
    ZorgDomein(String),
    /// The admin console cannot start.
    #[error("console: {0}")]
    Console(#[from] crate::console::ConsoleError),
    /// The authenticators' path prefixes clash.
    #[error("authenticators: {0}")]
    Mounts(String),
    /// The TLS certificate, key, trust anchors or CRLs do not load. (Not a `source`: the
    /// message already says it all, and `{:#}` would repeat it.)
    #[error("tls: {0}")]
    Tls(crate::tls::TlsError),
    /// The source system's TLS files (`upstream_ca`, `upstream_client_cert`,
    /// `upstream_client_key`) do not load; the message names the file.
    #[error("{0}")]
    UpstreamTls(crate::tls::TlsError),
    /// Binding a listener.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

impl From<crate::tls::TlsError> for StartError {
    fn from(e: crate::tls::TlsError) -> Self {
        StartError::Tls(e)
    }
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

/// Checks that the policies hold what the configured authenticators need: `[hub_source] policy`
/// is a hub-source policy, `[zorgdomein] policy` a zorgdomein one.
fn check_policies(config: &Config, policies: &PolicySet) -> Result<(), (String, String)> {
    if let Some(z) = &config.zorgdomein {
        if policies
            .for_requests(&z.policy, crate::policy::Authenticator::ZorgDomein)
            .is_none()
        {
            return Err((
                z.policy.clone(),
                format!(
                    "policy \"{}\" is not a zorgdomein policy in {} (`poortwachter policy install` writes the shipped zorgdomein.toml)",
                    z.policy,
                    config.policies_dir.display()
                ),
            ));
        }
    }
    if let Some(h) = &config.hub_source {
        if policies
            .for_requests(&h.policy, crate::policy::Authenticator::HubSource)
            .is_none()
        {
            return Err((
                h.policy.clone(),
                format!(
                    "policy \"{}\" is not a hub-source policy in {}",
                    h.policy,
                    config.policies_dir.display()
                ),
            ));
        }
    }
    if let Some(m) = &config.medmij {
        for id in &m.gegevensdiensten {
            let name = crate::medmij::settings::MedmijSettings::policy_of(id);
            if policies
                .for_requests(&name, crate::policy::Authenticator::Medmij)
                .is_none()
            {
                return Err((
                    name.clone(),
                    format!(
                        "gegevensdienst {id} needs a medmij policy \"{name}\" in {} (authenticator = \"medmij\")",
                        config.policies_dir.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Where MedMij's resource server is on the public listener.
pub const MEDMIJ_FHIR_PREFIX: &str = "/medmij/fhir";

/// The authenticators of the public listener by path prefix: `[hub_source]` at its
/// `path_prefix` (the whole listener when it has none), our access tokens at `/` unless that is
/// taken.
async fn mounts(
    config: &Config,
    tokens: &Arc<TokenService>,
    store: &Store,
) -> Result<Mounts, StartError> {
    let mut mounts = Vec::new();
    if let Some(m) = &config.medmij {
        mounts.push(Mount {
            prefix: MEDMIJ_FHIR_PREFIX.into(),
            authenticator: Arc::new(Authenticator::Medmij(
                crate::authn::medmij::MedmijToken::new(store.clone(), m.gegevensdiensten.clone()),
            )),
        });
    }
    if let Some(settings) = &config.hub_source {
        let verifier = crate::authn::hub_source::verifier(settings)
            .await
            .map_err(|e| StartError::HubSource(format!("the Hub's keys: {e}")))?;
        tokio::spawn(crate::authn::hub_source::refresh(
            verifier.clone(),
            settings.clone(),
        ));
        mounts.push(Mount {
            prefix: settings.path_prefix.clone(),
            authenticator: Arc::new(Authenticator::HubSource(HubSource::new(
                verifier,
                &settings.policy,
            ))),
        });
    }
    if let Some(settings) = &config.zorgdomein {
        let zorgdomein =
            crate::authn::zorgdomein::ZorgDomein::load(settings).map_err(StartError::ZorgDomein)?;
        mounts.push(Mount {
            prefix: settings.path_prefix.clone(),
            authenticator: Arc::new(Authenticator::ZorgDomein(zorgdomein)),
        });
    }
    if !mounts.iter().any(|m| m.prefix == "/") {
        mounts.push(Mount {
            prefix: "/".into(),
            authenticator: Arc::new(Authenticator::NutsToken(NutsToken::new(tokens.clone()))),
        });
    }
    Mounts::new(mounts).map_err(StartError::Mounts)
}

/// Builds the state (everything except the listeners).
pub async fn build_state(config: Config) -> Result<Arc<AppState>, StartError> {
    // Policies and TLS files first: a bad file stops start-up before anything is created.
    let policies = PolicySet::load_dir(&config.policies_dir)?;
    let tls = match &config.tls {
        Some(settings) => Some(crate::tls::TlsAcceptorHandle::load(settings)?),
        None => None,
    };
    let upstream_tls = upstream_tls(&config.upstream_tls).map_err(StartError::UpstreamTls)?;
    check_policies(&config, &policies).map_err(|(policy, reason)| {
        if policy.starts_with("medmij-") {
            StartError::Medmij(reason)
        } else if config
            .zorgdomein
            .as_ref()
            .is_some_and(|z| z.policy == policy)
        {
            StartError::ZorgDomein(reason)
        } else {
            StartError::HubSource(reason)
        }
    })?;
    // The MedMij lists before anything is created: a list that cannot be read stops start-up.
    let medmij_lists = match &config.medmij {
        Some(m) => Some(Arc::new(
            crate::medmij::sources::Lists::load(m)
                .await
                .map_err(StartError::Medmij)?,
        )),
        None => None,
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
    revocations.refresh_ended(&store).await?;
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
    let tokens = Arc::new(TokenService::new(crate::oauth::TokenServiceParts {
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
        require_client_certificate: config.nuts.require_client_certificate,
    }));
    let writer = Writer::spawn(store.clone())?;
    tokio::spawn(purge(writer.clone(), clock.clone()));
    let medmij = match (&config.medmij, medmij_lists) {
        (Some(settings), Some(lists)) => {
            tokio::spawn(lists.clone().follow());
            tokio::spawn(purge_medmij(store.clone(), clock.clone()));
            Some(Arc::new(
                crate::medmij::service::Service::new(crate::medmij::service::Parts {
                    settings: settings.clone(),
                    lists,
                    store: store.clone(),
                    writer: writer.clone(),
                    clock: clock.clone(),
                    public_url: config.public_url.clone(),
                })
                .map_err(StartError::Medmij)?,
            ))
        }
        _ => None,
    };
    tokio::spawn(log_audit_head(store.clone()));
    let zorgdomein_sso = match &config.zorgdomein {
        Some(z) => Some(Arc::new(zorgdomein_sso(&z.sso)?)),
        None => None,
    };
    let instance =
        crate::console::InstanceInfo::current(config.internal_addr, clock.now().unix_timestamp());
    if let Err(e) = crate::console::beat(&store, &revocations, &instance, clock.as_ref()).await {
        tracing::warn!(error = %e, "writing the instance heartbeat failed");
    }
    tokio::spawn(crate::console::heartbeat(
        store.clone(),
        revocations.clone(),
        instance.clone(),
        clock.clone(),
    ));
    let console = Arc::new(crate::console::Console::new(
        config.console.clone(),
        instance,
        config.internal_tls,
    )?);
    let live = Live::new(LiveSettings::of(&config));
    let metrics = Arc::new(Metrics::default());
    let proxy = Proxy {
        mounts: mounts(&config, &tokens, &store).await?,
        policies: rx.clone(),
        tokens: tokens.clone(),
        writer: writer.clone(),
        upstream: crate::proxy::client::UpstreamClient::with_tls(upstream_tls),
        live: live.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
    };
    Ok(Arc::new(AppState {
        live,
        verifier,
        tokens,
        writer,
        proxy,
        custodian: Custodian {
            identity: Arc::new(identity),
            store: store.clone(),
            contexts,
            clock: clock.clone(),
        },
        policies: rx,
        policy_updates,
        metrics,
        revocations,
        store,
        clock,
        config,
        tls,
        medmij,
        zorgdomein_sso,
        console,
    }))
}

/// The SSO token's signer, its key created (mode 0600) when missing.
pub fn zorgdomein_sso(
    settings: &crate::zorgdomein::sso::SsoSettings,
) -> Result<crate::zorgdomein::sso::SsoSigner, StartError> {
    let (key, created) = crate::zorgdomein::sso::SsoKey::load_or_create(&settings.key)
        .map_err(|e| StartError::ZorgDomein(format!("sso_key: {e}")))?;
    if created {
        tracing::info!(path = %settings.key.display(), kid = key.kid(), "created the ZorgDomein SSO key");
    }
    Ok(crate::zorgdomein::sso::SsoSigner {
        key,
        settings: settings.clone(),
    })
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
    let live = LiveSettings::of(&new);
    tracing::info!(
        max_body_bytes = live.max_body_bytes,
        client_timeout_ms = live.client_timeout.as_millis() as u64,
        upstream_timeout_ms = live.upstream_timeout.as_millis() as u64,
        rate_limit_per_second = new.rate_limit_per_second,
        rate_limit_burst = new.rate_limit_burst,
        "configuration reloaded"
    );
    state.live.set(live);
    Ok(ignored)
}

/// Re-reads the TLS certificate, key, trust anchors and CRLs (the `[tls]` of the configuration
/// now in force); a set that does not load is refused and the old one stays. Open connections
/// keep theirs.
pub async fn reload_tls(state: &AppState) {
    let Some(handle) = state.tls.clone() else {
        return;
    };
    let settings = match state.config.reload() {
        Ok(c) => c.tls,
        Err(_) => state.config.tls.clone(),
    };
    let Some(settings) = settings else {
        return;
    };
    match tokio::task::spawn_blocking(move || handle.reload(&settings)).await {
        Ok(Ok(())) => tracing::info!("TLS certificates reloaded"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "TLS reload refused; the previous certificates stay in force");
        }
        Err(e) => tracing::error!(error = %e, "TLS reload failed"),
    }
}

/// The source system's TLS configuration, when one is configured (blocking file IO).
fn upstream_tls(
    files: &crate::tls::OutboundTls,
) -> Result<Option<rustls::ClientConfig>, crate::tls::TlsError> {
    if !files.is_configured() {
        return Ok(None);
    }
    crate::tls::client_config(
        files,
        &crate::tls::client::UPSTREAM_FILES,
        crate::tls::Roots::ConfiguredElseSystem,
    )
    .map(Some)
}

/// Re-reads the source system's TLS files (those of the configuration now in force): the next
/// request of each thread opens its connections with them. A set that does not load is refused
/// and the old one stays.
pub async fn reload_upstream_tls(state: &AppState) {
    let files = match state.config.reload() {
        Ok(c) => c.upstream_tls,
        Err(_) => return,
    };
    if !files.is_configured() && !state.proxy.upstream.has_tls() {
        return;
    }
    match tokio::task::spawn_blocking(move || upstream_tls(&files)).await {
        Ok(Ok(tls)) => {
            state.proxy.upstream.set_tls(tls);
            tracing::info!("upstream TLS files reloaded");
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "upstream TLS reload refused; the previous files stay in force");
        }
        Err(e) => tracing::error!(error = %e, "upstream TLS reload failed"),
    }
}

/// Re-reads the policies directory.
///
/// A set that does not load is refused: the old one stays and the error is logged with file,
/// line and reason.
pub fn reload_policies(state: &AppState) -> Result<(), crate::policy::PolicyError> {
    let set = PolicySet::load_dir(&state.config.policies_dir)?;
    check_policies(&state.config, &set).map_err(|(policy, reason)| {
        crate::policy::PolicyError::File {
            file: state
                .config
                .policies_dir
                .join(format!("{policy}.toml"))
                .display()
                .to_string(),
            line: 0,
            reason,
        }
    })?;
    let purposes: Vec<&str> = set.purposes().collect();
    tracing::info!(policies = ?purposes, "policies reloaded");
    state.policy_updates.send_replace(Arc::new(set));
    Ok(())
}

pub async fn reload_on_sighup(state: Arc<AppState>) {
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
            reload_tls(&state).await;
            reload_upstream_tls(&state).await;
            if let Some(m) = &state.medmij {
                m.reload().await;
            }
        }
    }
    #[cfg(not(unix))]
    drop(state);
}

/// Forgets `jti`s and tokens a minute after they expired, every 10 seconds (through the audit
/// writer: see [`crate::store::writer::Writer::purge_expired`]).
async fn purge(audit: crate::store::writer::Writer, clock: Arc<dyn Clock>) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = audit.purge_expired(clock.now().unix_timestamp() - 60).await {
            tracing::warn!(error = %e, "purging expired tokens failed");
        }
    }
}

/// Forgets expired MedMij sessions, tokens and (a day after they expired) codes, every minute.
async fn purge_medmij(store: Store, clock: Arc<dyn Clock>) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = store.medmij_purge(clock.now().unix_timestamp() - 60).await {
            tracing::warn!(error = %e, "purging expired MedMij sessions and tokens failed");
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
pub async fn log_audit_head_once(store: &crate::store::Store, logged: Option<i64>) -> Option<i64> {
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
