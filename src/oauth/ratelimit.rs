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
        let per_second = f64::from(self.per_second.load(Ordering::Relaxed));
        let burst = f64::from(self.burst.load(Ordering::Relaxed));
        let bucket = self.buckets.get_with(key.to_owned(), || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }))
        });
        let Ok(mut b) = bucket.lock() else {
            return Err(1);
        };
        let now = Instant::now();
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

    #[test]
    fn burst_then_refuse_per_key() {
        let l = RateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        assert_eq!(l.check("a"), Err(1));
        assert!(l.check("b").is_ok(), "buckets are per requester");
    }
}
