//! Prometheus metrics, kept with atomics and rendered in the text exposition format on the
//! internal listener (`GET /metrics`). No labels carry personal data: only kinds, decisions and
//! status codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The upper bound (seconds) of the bucket that holds quantile `q` (0–1): `None` before the
    /// first observation, infinity beyond the last bucket.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count.load(Ordering::Relaxed);
        if total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let wanted = (q.clamp(0.0, 1.0) * total as f64).ceil();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            #[allow(clippy::cast_precision_loss)]
            if count.load(Ordering::Relaxed) as f64 >= wanted {
                return Some(*bound);
            }
        }
        Some(f64::INFINITY)
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// All metrics of one instance.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    /// Proxied request latency.
    pub proxy_latency: Histogram,
    /// Token endpoint latency.
    pub token_latency: Histogram,
    tokens_issued: AtomicU64,
    upstream_errors: AtomicU64,
}

impl Metrics {
    /// Counts a request of `kind` (`proxy` or `token`) with its decision and status.
    pub fn request(&self, kind: &'static str, decision: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((kind, decision.to_owned(), status)).or_default() += 1;
        }
    }

    /// Counts an issued token.
    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed or erroring source-system request.
    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests by kind and decision (all statuses together), for the console.
    #[must_use]
    pub fn requests_by_decision(&self) -> BTreeMap<(&'static str, String), u64> {
        let mut out = BTreeMap::new();
        if let Ok(m) = self.requests.lock() {
            for ((kind, decision, _), n) in m.iter() {
                *out.entry((*kind, decision.clone())).or_default() += n;
            }
        }
        out
    }

    /// Tokens issued and source-system errors so far.
    #[must_use]
    pub fn totals(&self) -> (u64, u64) {
        (
            self.tokens_issued.load(Ordering::Relaxed),
            self.upstream_errors.load(Ordering::Relaxed),
        )
    }

    /// The text exposition, with gauges read from the store by the caller.
    #[must_use]
    pub fn render(&self, active_tokens: i64, revocations: i64) -> String {
        let mut out = String::new();
        out.push_str("# HELP poortwachter_requests_total Requests by kind, decision and status.\n# TYPE poortwachter_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((kind, decision, status), n) in m.iter() {
                let _ = writeln!(out, "poortwachter_requests_total{{kind=\"{kind}\",decision=\"{decision}\",status=\"{status}\"}} {n}");
            }
        }
        let counters = [
            (
                "poortwachter_tokens_issued_total",
                "Access tokens issued.",
                self.tokens_issued.load(Ordering::Relaxed),
            ),
            (
                "poortwachter_upstream_errors_total",
                "Source-system requests that failed or answered 5xx.",
                self.upstream_errors.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        for (name, help, v) in [
            (
                "poortwachter_active_tokens",
                "Access tokens not yet expired.",
                active_tokens,
            ),
            (
                "poortwachter_revocations",
                "Credential revocations (never deleted).",
                revocations,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        self.proxy_latency.render(
            "poortwachter_proxy_duration_seconds",
            "Proxied request latency.",
            &mut out,
        );
        self.token_latency.render(
            "poortwachter_token_duration_seconds",
            "Token endpoint latency.",
            &mut out,
        );
        out
    }
}
