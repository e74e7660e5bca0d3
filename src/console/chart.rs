//! Permits, denials and errors per hour and purpose over the last days, from the audit log (the
//! token and proxy records). Counted incrementally: the first chart reads the window once, each
//! later one only the records appended since (the log is append-only and its sequence numbers
//! only grow), so a chart costs the new records, not the whole window.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::store::{AuditCursor, AuditFilter, Store, StoreError};

/// Rows read per query.
const CHUNK: i64 = 5000;

/// One hour's counts: permits, denials, errors.
pub type Counts = [u64; 3];

/// The counts of one purpose, oldest hour first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The purposeOfUse (empty: refused before a purpose was known).
    pub purpose: String,
    /// One entry per hour of the window.
    pub hours: Vec<Counts>,
}

impl Series {
    /// Totals over the window.
    #[must_use]
    pub fn totals(&self) -> Counts {
        self.hours.iter().fold([0; 3], |mut t, h| {
            for (a, b) in t.iter_mut().zip(h) {
                *a += b;
            }
            t
        })
    }
}

/// The chart's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// The first hour (unix seconds, a whole hour).
    pub start: i64,
    /// Hours in the window.
    pub hours: usize,
    /// One series per purpose seen in the window.
    pub series: Vec<Series>,
}

#[derive(Default)]
struct Inner {
    /// The last sequence number counted.
    last_seq: i64,
    buckets: BTreeMap<(i64, String), Counts>,
}

/// The counts, kept between charts.
#[derive(Default)]
pub struct HourlyCounts {
    inner: tokio::sync::Mutex<Inner>,
}

#[derive(Deserialize)]
struct Minimal {
    kind: String,
    purpose: String,
    decision: String,
}

/// The index of a decision in [`Counts`].
fn slot(decision: &str) -> Option<usize> {
    match decision {
        "permit" => Some(0),
        "deny" => Some(1),
        "error" => Some(2),
        _ => None,
    }
}

impl HourlyCounts {
    /// The chart of the `days` days up to the hour that holds `now`.
    pub async fn chart(&self, store: &Store, now: i64, days: u32) -> Result<Chart, StoreError> {
        let hours = usize::try_from(days).unwrap_or(1).max(1) * 24;
        let end = now - now.rem_euclid(3600) + 3600;
        let start = end - i64::try_from(hours).unwrap_or(24) * 3600;
        let mut inner = self.inner.lock().await;
        // The first time, only the window is read; after that, everything appended.
        let filter = AuditFilter {
            since: (inner.last_seq == 0).then_some(start),
            ..AuditFilter::default()
        };
        loop {
            let rows = store
                .audit_chunk(&filter, AuditCursor::After(inner.last_seq), CHUNK)
                .await?;
            let n = rows.len();
            for row in rows {
                inner.last_seq = row.seq;
                let hour = row.time_unix - row.time_unix.rem_euclid(3600);
                if hour < start {
                    continue;
                }
                let Ok(m) = serde_json::from_str::<Minimal>(&row.record) else {
                    continue;
                };
                let Some(i) = slot(&m.decision) else {
                    continue;
                };
                if m.kind == "token" || m.kind == "proxy" {
                    inner.buckets.entry((hour, m.purpose)).or_default()[i] += 1;
                }
            }
            if i64::try_from(n).unwrap_or(0) < CHUNK {
                break;
            }
        }
        inner.buckets.retain(|(hour, _), _| *hour >= start);
        let mut series: BTreeMap<&str, Vec<Counts>> = BTreeMap::new();
        for ((hour, purpose), counts) in &inner.buckets {
            let Ok(i) = usize::try_from((hour - start) / 3600) else {
                continue;
            };
            if i < hours {
                series
                    .entry(purpose.as_str())
                    .or_insert_with(|| vec![[0; 3]; hours])[i] = *counts;
            }
        }
        Ok(Chart {
            start,
            hours,
            series: series
                .into_iter()
                .map(|(purpose, hours)| Series {
                    purpose: purpose.to_owned(),
                    hours,
                })
                .collect(),
        })
    }
}
