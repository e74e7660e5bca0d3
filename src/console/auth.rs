//! Console passwords and the login rate limit. Passwords are stored as argon2id hashes (the
//! Hub's parameters and format, [`crate::hub::auth`]) in the database, so every replica accepts
//! the same accounts; `poortwachter admin set-password` sets them. An unknown account costs one
//! argon2 verification like a wrong password. Failed logins are limited per account name and in
//! total per instance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::ConsoleError;
use crate::store::{Store, StoreError};

/// Shortest password `admin set-password` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Failed logins for one account name within [`NAME_WINDOW`] before it is refused unchecked.
pub const NAME_FAILURES: usize = 5;
/// The window of [`NAME_FAILURES`].
pub const NAME_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed logins in total within [`ALL_WINDOW`] before every login is refused unchecked.
pub const ALL_FAILURES: usize = 30;
/// The window of [`ALL_FAILURES`].
pub const ALL_WINDOW: Duration = Duration::from_secs(60);

/// 32 random bytes, base64url (43 characters).
pub fn random_token() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ConsoleError::Store(StoreError::Unavailable("random".into())))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The argon2id hash (PHC string) of a password.
pub fn hash_password(password: &str) -> Result<String, ConsoleError> {
    crate::hub::auth::hash_secret(password)
        .map_err(|_| ConsoleError::Store(StoreError::Unavailable("password hashing".into())))
}

/// Whether `password` is the password of account `name`. Exactly one argon2 verification,
/// whether the account exists or not (against `dummy_hash` when not).
pub async fn verify_password(
    store: &Store,
    name: &str,
    password: &str,
    dummy_hash: &str,
) -> Result<bool, StoreError> {
    let stored = if super::valid_account_name(name) {
        store.console_password_hash(name).await?
    } else {
        None
    };
    let known = stored.is_some();
    let phc = stored.unwrap_or_else(|| dummy_hash.to_owned());
    let password = password.to_owned();
    let matches =
        tokio::task::spawn_blocking(move || crate::hub::auth::verify_secret(&password, &phc))
            .await
            .unwrap_or(false);
    Ok(known && matches)
}

/// Failed logins per account name and in total.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    by_name: Mutex<HashMap<String, VecDeque<Instant>>>,
    all: Mutex<VecDeque<Instant>>,
}

fn prune(q: &mut VecDeque<Instant>, window: Duration, now: Instant) {
    while q.front().is_some_and(|t| now.duration_since(*t) > window) {
        q.pop_front();
    }
}

impl LoginLimiter {
    /// Whether a login for `name` may be tried now.
    #[must_use]
    pub fn allows(&self, name: &str) -> bool {
        self.allows_at(name, Instant::now())
    }

    /// [`Self::allows`] at `now`.
    #[must_use]
    pub fn allows_at(&self, name: &str, now: Instant) -> bool {
        let all_ok = self.all.lock().is_ok_and(|mut all| {
            prune(&mut all, ALL_WINDOW, now);
            all.len() < ALL_FAILURES
        });
        let name_ok = self.by_name.lock().is_ok_and(|mut m| {
            m.get_mut(name).is_none_or(|q| {
                prune(q, NAME_WINDOW, now);
                q.len() < NAME_FAILURES
            })
        });
        all_ok && name_ok
    }

    /// Counts a failed login for `name`.
    pub fn failed(&self, name: &str) {
        self.failed_at(name, Instant::now());
    }

    /// [`Self::failed`] at `now`.
    pub fn failed_at(&self, name: &str, now: Instant) {
        if let Ok(mut all) = self.all.lock() {
            all.push_back(now);
            while all.len() > ALL_FAILURES * 4 {
                all.pop_front();
            }
        }
        if let Ok(mut m) = self.by_name.lock() {
            if m.len() > 10_000 {
                m.retain(|_, q| {
                    prune(q, NAME_WINDOW, now);
                    !q.is_empty()
                });
            }
            let q = m.entry(name.chars().take(64).collect()).or_default();
            q.push_back(now);
            while q.len() > NAME_FAILURES * 4 {
                q.pop_front();
            }
        }
    }

    /// A successful login clears the account's failures.
    pub fn succeeded(&self, name: &str) {
        if let Ok(mut m) = self.by_name.lock() {
            m.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logins_are_limited_per_name_and_in_total() {
        let l = LoginLimiter::default();
        let t = Instant::now();
        for _ in 0..NAME_FAILURES {
            assert!(l.allows_at("a", t));
            l.failed_at("a", t);
        }
        assert!(!l.allows_at("a", t), "the name is locked");
        assert!(l.allows_at("b", t), "another name is not");
        assert!(l.allows_at("a", t + NAME_WINDOW + Duration::from_secs(1)));
        l.succeeded("a");
        assert!(l.allows_at("a", t));
        for i in 0..ALL_FAILURES {
            l.failed_at(&format!("n{i}"), t);
        }
        assert!(!l.allows_at("fresh", t), "too many failures in total");
        assert!(l.allows_at("fresh", t + ALL_WINDOW + Duration::from_secs(1)));
    }
}
