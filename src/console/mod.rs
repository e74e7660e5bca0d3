//! The admin console's logic, without HTTP: who the operator is ([`Operator`]), sessions
//! ([`session`]), passwords and the login rate limit ([`auth`]), the texts in Dutch and English
//! ([`i18n`]), audit views and exports ([`export`]), the hourly chart ([`chart`]), the audit
//! record of every change made in the console ([`change_record`]) and the heartbeat that shows
//! the replicas on the health page ([`heartbeat`]). The pages and routes are
//! `server::console`.
//!
//! **Invariants:** every change made in the console (issue, revoke, end a token, login, failed
//! login, logout, export) is an audit record in the hash chain, written through
//! [`crate::store::writer::Writer`] and naming the operator; the full BSN appears only on a
//! details page and in an export, masked everywhere else ([`mask_bsn`]).

pub mod auth;
pub mod chart;
pub mod export;
pub mod i18n;
pub mod session;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::{AuditCert, AuditRecord, ChainReport};
use crate::bsn::Bsn;
use crate::clock::Clock;
use crate::config::ConsoleSettings;
use crate::store::revocations::RevocationSet;
use crate::store::{InstanceRow, Store, StoreError};

/// Errors of the console boundary (their HTTP status is decided in `server::error`).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No operator: the login page.
    #[error("login required")]
    LoginRequired,
    /// A form without this session's CSRF token, or sent from another site.
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    /// Too many failed logins.
    #[error("too many failed logins; try again later")]
    RateLimited,
    /// Wrong name or password.
    #[error("wrong name or password")]
    LoginFailed,
    /// A form field is invalid: the form is shown again with the error next to the field.
    #[error("invalid input")]
    Invalid,
    /// A malformed request (not from our forms).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// No such page or record.
    #[error("not found")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The audit log cannot be written: no change is made.
    #[error("the audit log cannot be written")]
    AuditUnavailable,
    /// The request body was too large or too slow.
    #[error(transparent)]
    Body(#[from] crate::http::BodyError),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ConsoleError::NotFound,
            other => ConsoleError::Store(other),
        }
    }
}

/// Who uses the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// Anyone on this machine: the internal listener is on loopback and no login is required.
    Loopback,
    /// A console account that logged in with its password.
    Password {
        /// The account name.
        name: String,
    },
    /// A client certificate on the allow-list (mutual TLS on the internal listener).
    Certificate {
        /// Its subject (RFC 4514).
        subject: String,
        /// Its SHA-256 fingerprint, lowercase hex.
        fingerprint: String,
    },
}

impl Operator {
    /// How the audit log names the operator (the record's `requester`).
    #[must_use]
    pub fn audit_name(&self) -> String {
        match self {
            Operator::Loopback => "console:loopback".into(),
            Operator::Password { name } => format!("console:password:{name}"),
            Operator::Certificate { fingerprint, .. } => format!("console:cert:{fingerprint}"),
        }
    }

    /// The certificate of a certificate operator.
    #[must_use]
    pub fn is_allowed(settings: &ConsoleSettings, cert: &crate::tls::ClientCert) -> bool {
        settings
            .client_certs
            .iter()
            .any(|c| c == cert.fingerprint_sha256() || c == cert.subject())
    }
}

/// A valid console account name: 1–64 of `a-z A-Z 0-9 . _ -` (it appears in the audit log).
#[must_use]
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A BSN for lists: `******990`.
#[must_use]
pub fn mask_bsn(bsn: &str) -> String {
    if bsn.is_empty() {
        return String::new();
    }
    format!(
        "******{}",
        bsn.get(bsn.len().saturating_sub(3)..).unwrap_or("")
    )
}

/// What this instance is, for its heartbeat.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    /// Random id of this run.
    pub id: String,
    /// The host name.
    pub hostname: String,
    /// `poortwachter --version`.
    pub version: String,
    /// The internal listener (configured; the bound address once listening). Shared by the
    /// clones of this value, so the heartbeat sees the bound one.
    internal_addr: Arc<Mutex<String>>,
    /// Start (unix seconds).
    pub started_at: i64,
}

impl InstanceInfo {
    /// This process, started now.
    #[must_use]
    pub fn current(internal_addr: std::net::SocketAddr, now: i64) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Self {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            hostname,
            version: version(),
            internal_addr: Arc::new(Mutex::new(internal_addr.to_string())),
            started_at: now,
        }
    }

    /// The internal listener's address.
    #[must_use]
    pub fn internal_addr(&self) -> String {
        self.internal_addr
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Records the address the internal listener is bound to (port 0 in the configuration).
    pub fn set_internal_addr(&self, addr: std::net::SocketAddr) {
        if let Ok(mut a) = self.internal_addr.lock() {
            *a = addr.to_string();
        }
    }
}

/// `0.1.0 (<git commit>)`, as `--version` prints it.
#[must_use]
pub fn version() -> String {
    format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("POORTWACHTER_GIT_COMMIT")
    )
}

/// How often an instance writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// The last check of the whole chain (`audit verify`).
#[derive(Debug, Clone)]
pub struct ChainState {
    /// When (unix seconds).
    pub checked_at: i64,
    /// What it found.
    pub report: ChainReport,
}

/// The console's state, one per instance.
pub struct Console {
    /// `[console]`.
    pub settings: ConsoleSettings,
    /// Sessions (in memory: an operator stays on the instance whose console they opened).
    pub sessions: session::Sessions,
    /// Failed logins.
    pub logins: auth::LoginLimiter,
    /// A hash no password matches: an unknown account costs one argon2 verification too.
    pub dummy_hash: String,
    /// This instance.
    pub instance: InstanceInfo,
    /// The last full chain check.
    pub chain: Mutex<Option<ChainState>>,
    /// Permits, denials and errors per hour and purpose.
    pub chart: chart::HourlyCounts,
    /// Cookies get `Secure` (the internal listener speaks TLS).
    pub secure_cookies: bool,
    /// The main runtime: long scans (chain check, chart, exports) run there rather than on an
    /// HTTP worker, whose thread also serves proxied requests.
    pub background: tokio::runtime::Handle,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("instance", &self.instance.id)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The console of this instance (call on the main runtime).
    pub fn new(
        settings: ConsoleSettings,
        instance: InstanceInfo,
        secure_cookies: bool,
    ) -> Result<Self, ConsoleError> {
        let dummy = auth::random_token()?;
        Ok(Self {
            sessions: session::Sessions::new(settings.session_idle, settings.session_max),
            logins: auth::LoginLimiter::default(),
            dummy_hash: auth::hash_password(&dummy)?,
            instance,
            chain: Mutex::new(None),
            chart: chart::HourlyCounts::default(),
            secure_cookies,
            background: tokio::runtime::Handle::current(),
            settings,
        })
    }

    /// Checks the whole chain now (on the main runtime) and remembers the outcome.
    pub async fn verify_chain(&self, store: &Store, now: i64) -> Result<ChainState, ConsoleError> {
        let store = store.clone();
        let report = self
            .background
            .spawn(async move { verify_chain(&store).await })
            .await
            .map_err(|_| ConsoleError::Store(StoreError::Unavailable("chain check".into())))??;
        let state = ChainState {
            checked_at: now,
            report,
        };
        if let Ok(mut c) = self.chain.lock() {
            *c = Some(state.clone());
        }
        Ok(state)
    }

    /// The last chain check, if any.
    #[must_use]
    pub fn last_chain_check(&self) -> Option<ChainState> {
        self.chain.lock().ok().and_then(|c| c.clone())
    }
}

/// `audit verify` over the whole log, one row at a time.
pub async fn verify_chain(store: &Store) -> Result<ChainReport, StoreError> {
    let mut verifier = crate::audit::ChainVerifier::new(&[]);
    let mut broken = None;
    store
        .for_each_audit_row(
            &crate::store::AuditFilter::default(),
            |row| match verifier.push(&row) {
                Ok(()) => std::ops::ControlFlow::Continue(()),
                Err(report) => {
                    broken = Some(report);
                    std::ops::ControlFlow::Break(())
                }
            },
        )
        .await?;
    Ok(broken.unwrap_or_else(|| verifier.finish()))
}

/// What a change made in the console did, for its audit record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The action: `credential-issued`, `credential-revoked`, `token-ended`, `login`,
    /// `login-failed`, `logout`, `audit-export`.
    pub action: &'a str,
    /// Details after the action (a revocation's reason, the export's format), BSN-like numbers
    /// removed.
    pub detail: Option<&'a str>,
    /// The console path of the form.
    pub path: &'a str,
    /// The credential's or token's purpose, if any.
    pub purpose: &'a str,
    /// The credential's or token's patient, if any: the patient's own audit export then shows
    /// who changed their authorizations.
    pub bsn: Option<Bsn>,
    /// `permit` (done) or `deny` (refused, e.g. a failed login).
    pub decision: &'a str,
    /// The status answered.
    pub status: u16,
}

/// The audit record of a change made in the console by `requester` (an
/// [`Operator::audit_name`], or `console:` and the name tried for a failed login).
#[must_use]
pub fn change_record(
    clock: &dyn Clock,
    requester: String,
    change: &Change<'_>,
    cert: Option<&crate::tls::ClientCert>,
) -> AuditRecord {
    let rule = match change.detail {
        Some(d) => format!(
            "{}: {}",
            change.action,
            crate::audit::redact_bsns(&d.chars().take(1000).collect::<String>())
        ),
        None => change.action.to_owned(),
    };
    AuditRecord {
        time: crate::audit::audit_time(clock.now()),
        request_id: uuid::Uuid::new_v4().to_string(),
        kind: "console".into(),
        requester,
        user: None,
        purpose: change.purpose.to_owned(),
        bsn: change.bsn.clone(),
        method: "POST".into(),
        path: crate::audit::redact_bsns(change.path),
        decision: change.decision.to_owned(),
        rule,
        status: change.status,
        upstream_status: None,
        client_cert: cert.map(AuditCert::of),
        jwt: None,
        custodian: None,
        trace: None,
    }
}

/// Writes this instance's heartbeat every [`HEARTBEAT`]: the health page lists the instances on
/// the same database with their last heartbeat and how many revocations they hold.
pub async fn heartbeat(
    store: Store,
    revocations: RevocationSet,
    info: InstanceInfo,
    clock: Arc<dyn Clock>,
) {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = beat(&store, &revocations, &info, clock.as_ref()).await {
            tracing::warn!(error = %e, "writing the instance heartbeat failed");
        }
    }
}

/// One heartbeat.
pub async fn beat(
    store: &Store,
    revocations: &RevocationSet,
    info: &InstanceInfo,
    clock: &dyn Clock,
) -> Result<(), StoreError> {
    let (revoked, ended) = revocations.sizes();
    store
        .heartbeat(&InstanceRow {
            id: info.id.clone(),
            hostname: info.hostname.clone(),
            version: info.version.clone(),
            internal_addr: info.internal_addr(),
            started_at: info.started_at,
            last_seen: clock.now().unix_timestamp(),
            revocations: i64::try_from(revoked).unwrap_or(i64::MAX),
            ended_tokens: i64::try_from(ended).unwrap_or(i64::MAX),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsns_are_masked_and_names_checked() {
        assert_eq!(mask_bsn("999999990"), "******990");
        assert_eq!(mask_bsn(""), "");
        assert!(valid_account_name("beheerder.1"));
        assert!(!valid_account_name(""));
        assert!(!valid_account_name("a b"));
        assert!(!valid_account_name(&"a".repeat(65)));
    }

    #[test]
    fn change_records_name_the_operator_and_hide_bsns_in_details() {
        let clock = crate::clock::FixedClock(
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        );
        let r = change_record(
            &clock,
            Operator::Password {
                name: "beheerder".into(),
            }
            .audit_name(),
            &Change {
                action: "credential-revoked",
                detail: Some("patiënt 999999990 trok toestemming in"),
                path: "/ui/credentials/x/revoke",
                purpose: "p",
                bsn: Bsn::parse("999999990").ok(),
                decision: "permit",
                status: 303,
            },
            None,
        );
        assert_eq!(r.kind, "console");
        assert_eq!(r.requester, "console:password:beheerder");
        assert_eq!(
            r.rule,
            "credential-revoked: patiënt *** trok toestemming in"
        );
        assert_eq!(r.bsn.as_ref().map(Bsn::as_str), Some("999999990"));
    }
}
