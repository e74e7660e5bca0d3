//! The token cache of `egress`: one access token per (route, credential, user), used until
//! [`EXPIRY_MARGIN_SECONDS`] before it expires. Requests for a key without a usable token wait
//! for one grant (single flight: twenty concurrent first requests make one grant); a token the
//! custodian refused (401) is dropped only while it is still the cached one, so concurrent 401s
//! cause one new grant, not one each.
//!
//! Time comes from an injected [`Clock`]. A refused grant is not cached: the next request asks
//! again (the custodian decides, e.g. after a credential was re-issued).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::clock::Clock;
use crate::oauth::request::UserIdentity;

/// A token is used until this many seconds before it expires.
pub const EXPIRY_MARGIN_SECONDS: i64 = 30;

/// Past this many keys, keys without a usable token are forgotten when a new one comes.
const PRUNE_ABOVE: usize = 10_000;

/// What a token is cached for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The route's index.
    pub route: usize,
    /// The held credential's id.
    pub credential: String,
    /// The user the grant vouched for.
    pub user: Option<UserIdentity>,
}

/// A cached access token.
#[derive(Clone)]
pub struct Cached {
    /// The token. Compared by pointer ([`Arc::ptr_eq`]), never by value.
    pub token: Arc<str>,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Cached {
    fn usable(&self, now: i64) -> bool {
        now < self.expires_at - EXPIRY_MARGIN_SECONDS
    }
}

#[derive(Default)]
struct Slot {
    token: RwLock<Option<Cached>>,
    /// Held by the one request that makes the grant.
    flight: tokio::sync::Mutex<()>,
}

impl Slot {
    fn usable(&self, now: i64) -> Option<Cached> {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|c| c.usable(now))
            .cloned()
    }
}

/// The cache.
pub struct TokenCache {
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache.
    Cached,
    /// A grant made for this request (or one it waited for).
    Granted,
}

impl TokenCache {
    /// An empty cache reading the time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn slot(&self, key: &Key) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = slots.get(key) {
            return s.clone();
        }
        if slots.len() >= PRUNE_ABOVE {
            let now = self.now();
            // Forget idle keys whose token is unusable (none is in flight: only the map holds them).
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.usable(now).is_some());
        }
        slots.entry(key.clone()).or_default().clone()
    }

    /// The usable token for `key`, or a new one from `acquire` (which answers the token and its
    /// lifetime in seconds). Concurrent callers for one key wait for a single `acquire`.
    pub async fn get<F, Fut, E>(&self, key: &Key, acquire: F) -> Result<(Cached, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, i64), E>>,
    {
        let slot = self.slot(key);
        if let Some(c) = slot.usable(self.now()) {
            return Ok((c, Source::Cached));
        }
        let _flight = slot.flight.lock().await;
        // Whoever held the flight before us may have filled it.
        if let Some(c) = slot.usable(self.now()) {
            return Ok((c, Source::Granted));
        }
        let (token, expires_in) = acquire().await?;
        let cached = Cached {
            token: Arc::from(token),
            expires_at: self.now().saturating_add(expires_in),
        };
        *slot.token.write().unwrap_or_else(PoisonError::into_inner) = Some(cached.clone());
        Ok((cached, Source::Granted))
    }

    /// Drops `used` if it is still the token cached for `key` (the custodian answered 401).
    pub fn invalidate(&self, key: &Key, used: &Cached) {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        if let Some(slot) = slot {
            let mut token = slot.token.write().unwrap_or_else(PoisonError::into_inner);
            if token
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(&c.token, &used.token))
            {
                *token = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    use super::*;

    /// A clock the test moves.
    #[derive(Default)]
    struct TestClock(AtomicI64);

    impl Clock for TestClock {
        fn now(&self) -> time::OffsetDateTime {
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + self.0.load(Ordering::SeqCst))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        }
    }

    fn key(user: &str) -> Key {
        Key {
            route: 0,
            credential: "c".into(),
            user: Some(UserIdentity {
                uzi: user.into(),
                name: "n".into(),
                role: "r".into(),
                initials: None,
                family_name: None,
                email: None,
            }),
        }
    }

    async fn grant(calls: &AtomicUsize, lifetime: i64) -> Result<(String, i64), String> {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Ok((format!("t{n}"), lifetime))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn twenty_concurrent_first_requests_make_one_grant() {
        let cache = Arc::new(TokenCache::new(Arc::new(TestClock::default())));
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, calls, gate) = (cache.clone(), calls.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                gate.wait().await;
                let (c, _) = cache
                    .get(&key("1"), || async {
                        // Slow enough that the others arrive while it runs.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        grant(&calls, 300).await
                    })
                    .await
                    .unwrap();
                c.token.to_string()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), "t0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn tokens_are_per_key_and_renewed_thirty_seconds_before_expiry() {
        let clock = Arc::new(TestClock::default());
        let cache = TokenCache::new(clock.clone());
        let calls = AtomicUsize::new(0);
        let get = async |k: &Key| {
            let (c, s) = cache.get(k, || grant(&calls, 300)).await.unwrap();
            (c.token.to_string(), s)
        };
        assert_eq!(get(&key("1")).await, ("t0".into(), Source::Granted));
        assert_eq!(get(&key("1")).await, ("t0".into(), Source::Cached));
        assert_eq!(
            get(&key("2")).await,
            ("t1".into(), Source::Granted),
            "another user"
        );
        clock.0.store(269, Ordering::SeqCst);
        assert_eq!(get(&key("1")).await, ("t0".into(), Source::Cached));
        clock.0.store(270, Ordering::SeqCst);
        assert_eq!(get(&key("1")).await, ("t2".into(), Source::Granted));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_token_is_dropped_once_and_a_failed_grant_is_not_cached() {
        let cache = TokenCache::new(Arc::new(TestClock::default()));
        let calls = AtomicUsize::new(0);
        let (first, _) = cache.get(&key("1"), || grant(&calls, 300)).await.unwrap();
        cache.invalidate(&key("1"), &first);
        let (second, s) = cache.get(&key("1"), || grant(&calls, 300)).await.unwrap();
        assert_eq!((&*second.token, s), ("t1", Source::Granted));
        // A late 401 for the first token does not drop the second.
        cache.invalidate(&key("1"), &first);
        let (third, s) = cache.get(&key("1"), || grant(&calls, 300)).await.unwrap();
        assert_eq!((&*third.token, s), ("t1", Source::Cached));
        let failed: Result<_, String> = cache
            .get(&key("3"), || async { Err("refused".to_owned()) })
            .await;
        assert_eq!(failed.unwrap_err(), "refused");
        let (c, s) = cache.get(&key("3"), || grant(&calls, 300)).await.unwrap();
        assert_eq!((&*c.token, s), ("t2", Source::Granted));
        assert!(!format!("{c:?}").contains("t2"), "no token in Debug");
    }
}
