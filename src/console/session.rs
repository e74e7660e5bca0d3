//! Console sessions, in memory: a random id (the `pw_console` cookie, `HttpOnly; SameSite=Strict`,
//! `Secure` over TLS), a per-session CSRF token every form carries, the operator once logged in,
//! the filters of the lists (so that a BSN typed into a filter never travels in a URL) and a
//! one-shot message for the next page. A session ends after `session_idle_minutes` without a
//! request and `session_max_hours` after it began; a login begins a new one (the old id is
//! dropped: no session fixation).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq as _;

use super::{ConsoleError, Operator};

/// Most sessions kept (the least recently used go first).
const MAX_SESSIONS: u64 = 10_000;

/// The credential list's filter, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFilterForm {
    /// Requester DID.
    pub subject_did: String,
    /// purposeOfUse.
    pub purpose: String,
    /// `active`, `revoked`, `expired` or empty.
    pub status: String,
    /// BSN.
    pub bsn: String,
}

/// The audit view's filter, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilterForm {
    /// BSN.
    pub bsn: String,
    /// Requester DID.
    pub requester: String,
    /// UZI number of the user.
    pub user: String,
    /// purposeOfUse.
    pub purpose: String,
    /// `permit`, `deny`, `error` or empty.
    pub decision: String,
    /// From (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`, UTC).
    pub since: String,
    /// Until (exclusive).
    pub until: String,
}

/// A message for the next page the session sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    /// A credential was issued.
    Issued,
    /// A credential was revoked.
    Revoked,
    /// It was revoked before; the first revocation stands.
    AlreadyRevoked,
    /// A token was ended.
    TokenEnded,
    /// The token had been ended before.
    TokenAlreadyEnded,
    /// Logged in.
    LoggedIn,
    /// Logged out.
    LoggedOut,
}

/// One session.
#[derive(Debug)]
pub struct Session {
    /// The cookie value.
    pub id: String,
    csrf: String,
    /// The operator, once logged in.
    pub operator: Option<Operator>,
    started: Instant,
    /// The credential list's filter.
    pub credential_filter: Mutex<CredentialFilterForm>,
    /// The audit view's filter.
    pub audit_filter: Mutex<AuditFilterForm>,
    flash: Mutex<Option<Flash>>,
}

impl Session {
    /// The CSRF token the session's forms carry.
    #[must_use]
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `token` is this session's CSRF token (constant time).
    #[must_use]
    pub fn csrf_matches(&self, token: &str) -> bool {
        token.len() == self.csrf.len() && bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    /// Leaves a message for the next page.
    pub fn flash(&self, f: Flash) {
        if let Ok(mut slot) = self.flash.lock() {
            *slot = Some(f);
        }
    }

    /// Takes the message left for this page.
    #[must_use]
    pub fn take_flash(&self) -> Option<Flash> {
        self.flash.lock().ok().and_then(|mut f| f.take())
    }

    /// The credential list's filter.
    #[must_use]
    pub fn credential_filter(&self) -> CredentialFilterForm {
        self.credential_filter
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// The audit view's filter.
    #[must_use]
    pub fn audit_filter(&self) -> AuditFilterForm {
        self.audit_filter
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }
}

/// All sessions of this instance.
pub struct Sessions {
    cache: moka::sync::Cache<String, Arc<Session>>,
    max_age: Duration,
}

impl Sessions {
    /// Sessions that end after `idle` without use and `max_age` after they began.
    #[must_use]
    pub fn new(idle: Duration, max_age: Duration) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_SESSIONS)
                .time_to_idle(idle)
                .build(),
            max_age,
        }
    }

    /// The live session with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        if id.len() != 43 {
            return None;
        }
        let session = self.cache.get(id)?;
        if session.started.elapsed() > self.max_age {
            self.cache.invalidate(id);
            return None;
        }
        Some(session)
    }

    /// A new session (anonymous, or with an operator after a login).
    pub fn create(&self, operator: Option<Operator>) -> Result<Arc<Session>, ConsoleError> {
        let session = Arc::new(Session {
            id: super::auth::random_token()?,
            csrf: super::auth::random_token()?,
            operator,
            started: Instant::now(),
            credential_filter: Mutex::default(),
            audit_filter: Mutex::default(),
            flash: Mutex::new(None),
        });
        self.cache.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.cache.invalidate(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_csrf_tokens_compare_exactly() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_millis(50));
        let s = sessions.create(None).unwrap();
        assert_eq!(s.id.len(), 43);
        assert!(sessions.get(&s.id).is_some());
        assert!(s.csrf_matches(s.csrf()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches(&s.csrf()[1..]));
        let mut wrong = s.csrf().to_owned();
        wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
        assert!(!s.csrf_matches(&wrong));
        assert!(sessions.get("nonsense").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.get(&s.id).is_none(), "past its maximum age");
        s.flash(Flash::Issued);
        assert_eq!(s.take_flash(), Some(Flash::Issued));
        assert_eq!(s.take_flash(), None);
    }
}
