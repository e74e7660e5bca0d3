//! Token-bucket rate limit per requester DID (in memory, per instance).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token bucket per key.
pub struct RateLimiter {
    per_second: AtomicU32,
    burst: AtomicU32,
    buckets: moka::sync::Cache<String, Arc<Mutex<Bucket>>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `per_second` sustained, `burst` at once.
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: AtomicU32::new(per_second.max(1)),
            burst: AtomicU32::new(burst.max(1)),
            buckets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    /// Changes the limits (configuration reload); buckets keep their tokens, capped at `burst`.
    pub fn set_limits(&self, per_second: u32, burst: u32) {
        self.per_second.store(per_second.max(1), Ordering::Relaxed);
        self.burst.store(burst.max(1), Ordering::Relaxed);
    }

    /// Takes one token for `key`, or says after how many whole seconds to retry.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    /// [`Self::check`] at `now` (a monotonic instant, injected so the refill is tested without
    /// waiting). An instant earlier than the bucket's last one counts as that one.
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let per_second = f64::from(self.per_second.load(Ordering::Relaxed));
        let burst = f64::from(self.burst.load(Ordering::Relaxed));
        let bucket = self.buckets.get_with(key.to_owned(), || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                last: now,
            }))
        });
        let Ok(mut b) = bucket.lock() else {
            return Err(1);
        };
        let now = now.max(b.last);
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * per_second).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / per_second;
            // Whole seconds, at least 1 (Retry-After has no fractions).
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn burst_then_refuse_per_key() {
        let l = RateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        assert_eq!(l.check("a"), Err(1));
        assert!(l.check("b").is_ok(), "buckets are per requester");
    }

    /// One token a second: refused until a whole token has come back, then exactly one passes.
    #[test]
    fn the_bucket_refills_at_the_rate() {
        let l = RateLimiter::new(1, 2);
        let t0 = Instant::now();
        assert_eq!(l.check_at("a", t0), Ok(()));
        assert_eq!(l.check_at("a", t0), Ok(()));
        assert_eq!(l.check_at("a", t0), Err(1), "the burst is spent");
        assert_eq!(
            l.check_at("a", t0 + 999 * MS),
            Err(1),
            "not yet a whole token"
        );
        assert_eq!(
            l.check_at("a", t0 + 1000 * MS),
            Ok(()),
            "the bucket refills"
        );
        assert_eq!(
            l.check_at("a", t0 + 1000 * MS),
            Err(1),
            "one token, not two"
        );
        // Refused attempts take nothing: the next token is back a second after the last one.
        assert_eq!(l.check_at("a", t0 + 1500 * MS), Err(1));
        assert_eq!(l.check_at("a", t0 + 2000 * MS), Ok(()));
        // Four tokens a second: one every 250 ms.
        let fast = RateLimiter::new(4, 1);
        assert_eq!(fast.check_at("a", t0), Ok(()));
        assert_eq!(fast.check_at("a", t0 + 249 * MS), Err(1));
        assert_eq!(fast.check_at("a", t0 + 250 * MS), Ok(()));
    }

    /// However long a requester was idle, at most `burst` requests pass at once.
    #[test]
    fn an_idle_bucket_holds_at_most_the_burst() {
        let l = RateLimiter::new(10, 3);
        let t0 = Instant::now();
        assert_eq!(l.check_at("a", t0), Ok(()));
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.check_at("a", later), Ok(()));
        }
        assert_eq!(l.check_at("a", later), Err(1));
    }

    /// New limits apply to the next request; a full bucket is cut to the new burst.
    #[test]
    fn new_limits_apply_to_existing_buckets() {
        let l = RateLimiter::new(1, 5);
        let t0 = Instant::now();
        assert_eq!(l.check_at("a", t0), Ok(()));
        l.set_limits(1, 2);
        assert_eq!(l.check_at("a", t0), Ok(()));
        assert_eq!(l.check_at("a", t0), Ok(()));
        assert_eq!(
            l.check_at("a", t0),
            Err(1),
            "four tokens were left, capped at two"
        );
        l.set_limits(100, 2);
        assert_eq!(
            l.check_at("a", t0 + 10 * MS),
            Ok(()),
            "the new rate refills"
        );
    }

    /// An instant older than the bucket's last one (callers racing) neither refills nor moves
    /// the bucket back in time.
    #[test]
    fn an_earlier_instant_counts_as_the_last_one() {
        let l = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        let t1 = t0 + 1000 * MS;
        assert_eq!(l.check_at("a", t1), Ok(()));
        assert_eq!(l.check_at("a", t0), Err(1));
        assert_eq!(l.check_at("a", t1 + 999 * MS), Err(1));
        assert_eq!(l.check_at("a", t1 + 1000 * MS), Ok(()));
    }
}
