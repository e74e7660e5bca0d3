//! The hash chain: each record holds the SHA-256 of the previous one, so [`ChainVerifier`] finds a
//! changed, inserted or deleted record; an [`Anchor`] kept elsewhere also finds records deleted at
//! the end. Pure: rows in, verdicts out.

use sha2::{Digest, Sha256};

use super::AuditRecord;

/// The hash before the first audit record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// Time (unix seconds), for filtering.
    pub time_unix: i64,
    /// Requester DID, for filtering.
    pub requester: String,
    /// Patient BSN (may be empty), for filtering.
    pub bsn: String,
    /// The record as canonical JSON.
    pub record: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// SHA-256 of `prev_hash`, a newline and `record`, hex.
    pub hash: String,
}

/// Chain hash of a record: SHA-256 of the previous hash, a newline and the record JSON, hex.
#[must_use]
pub fn chain_hash(prev_hash: &str, record_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(record_json.as_bytes());
    hex::encode(h.finalize())
}

/// Chains `records` after record `seq` with hash `prev`: their rows and the new head.
#[must_use]
pub fn chain<'a>(
    mut seq: i64,
    prev: &str,
    records: impl Iterator<Item = &'a AuditRecord>,
) -> (Vec<AuditRow>, (i64, String)) {
    let mut prev = prev.to_owned();
    let mut rows = Vec::new();
    for r in records {
        seq += 1;
        let record = serde_json::to_string(r).unwrap_or_default();
        let hash = chain_hash(&prev, &record);
        let time_unix =
            time::OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
                .map_or(0, time::OffsetDateTime::unix_timestamp);
        rows.push(AuditRow {
            seq,
            time_unix,
            requester: r.requester.clone(),
            bsn: r
                .bsn
                .as_ref()
                .map_or("", crate::bsn::Bsn::as_str)
                .to_owned(),
            record,
            prev_hash: prev.clone(),
            hash: hash.clone(),
        });
        prev = hash;
    }
    (rows, (seq, prev))
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every record is in place: count and head hash.
    Intact {
        /// Records.
        records: usize,
        /// The last hash.
        head: String,
    },
    /// The first problem.
    Broken {
        /// The sequence number where the chain breaks.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// A record's sequence number and hash, kept outside the database (`SEQ:HASH`): the chain must
/// still hold exactly that record there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The record's sequence number (from 1).
    pub seq: i64,
    /// Its hash (64 lowercase hex digits).
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("expected SEQ:HASH (a record number and its 64-digit hex hash), got {s:?}");
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().ok().filter(|n| *n >= 1).ok_or_else(bad)?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return Err(bad());
        }
        Ok(Self {
            seq,
            hash: hash.to_owned(),
        })
    }
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// Checks the chain one record at a time (the log can hold more records than fit in memory):
/// sequence without gaps from 1, each `prev_hash` the previous `hash`, each hash recomputed from
/// its record, filter columns equal to the record, and each [`Anchor`] given still in place.
#[derive(Debug)]
pub struct ChainVerifier {
    records: i64,
    prev: String,
    /// Anchors by sequence number, checked as their record passes.
    anchors: std::collections::BTreeMap<i64, String>,
}

impl ChainVerifier {
    /// A verifier that also checks `anchors` (records seen earlier, kept elsewhere).
    #[must_use]
    pub fn new(anchors: &[Anchor]) -> Self {
        Self {
            records: 0,
            prev: GENESIS_HASH.to_owned(),
            anchors: anchors.iter().map(|a| (a.seq, a.hash.clone())).collect(),
        }
    }

    /// The next record in sequence order; `Err` with the first problem (stop there).
    pub fn push(&mut self, row: &AuditRow) -> Result<(), ChainReport> {
        let expected_seq = self.records + 1;
        let broken = |seq: i64, reason: &str| {
            Err(ChainReport::Broken {
                seq,
                reason: reason.to_owned(),
            })
        };
        if row.seq != expected_seq {
            return broken(
                expected_seq,
                &format!(
                    "record {expected_seq} is missing (next present is {})",
                    row.seq
                ),
            );
        }
        if row.prev_hash != self.prev {
            return broken(row.seq, "prev_hash does not match the previous record (a record before it was changed or removed)");
        }
        if chain_hash(&row.prev_hash, &row.record) != row.hash {
            return broken(
                row.seq,
                "hash does not match the record (the record was changed)",
            );
        }
        let consistent = serde_json::from_str::<AuditRecord>(&row.record).is_ok_and(|r| {
            r.requester == row.requester
                && r.bsn.as_ref().map_or("", crate::bsn::Bsn::as_str) == row.bsn
        });
        if !consistent {
            return broken(
                row.seq,
                "the requester or bsn column differs from the record",
            );
        }
        if self.anchors.get(&row.seq).is_some_and(|h| *h != row.hash) {
            return broken(
                row.seq,
                "the record is not the one the anchor names (the chain was rewritten up to here)",
            );
        }
        self.records = row.seq;
        self.prev.clone_from(&row.hash);
        Ok(())
    }

    /// After the last record: intact, or records missing that an anchor names.
    #[must_use]
    pub fn finish(self) -> ChainReport {
        match self.anchors.range(self.records + 1..).next_back() {
            Some((&last, _)) => ChainReport::Broken {
                seq: self.records + 1,
                reason: format!(
                    "records {} to {last} are missing: the anchor names record {last}, the log ends at record {}",
                    self.records + 1,
                    self.records
                ),
            },
            None => ChainReport::Intact {
                records: usize::try_from(self.records).unwrap_or(usize::MAX),
                head: self.prev,
            },
        }
    }
}

/// [`ChainVerifier`] over records in memory.
#[must_use]
pub fn verify_with_anchors(rows: &[AuditRow], anchors: &[Anchor]) -> ChainReport {
    let mut verifier = ChainVerifier::new(anchors);
    for row in rows {
        if let Err(broken) = verifier.push(row) {
            return broken;
        }
    }
    verifier.finish()
}

/// [`verify_with_anchors`] without anchors.
#[must_use]
pub fn verify(rows: &[AuditRow]) -> ChainReport {
    verify_with_anchors(rows, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> AuditRecord {
        AuditRecord {
            time: "2026-11-23T12:00:00.000Z".into(),
            request_id: format!("r{n}"),
            kind: "proxy".into(),
            requester: "did:web:huisarts.example.nl".into(),
            user: None,
            purpose: "p".into(),
            bsn: crate::bsn::Bsn::parse("999999990").ok(),
            method: "GET".into(),
            path: "/Patient/1".into(),
            decision: "permit".into(),
            rule: "patient-read".into(),
            status: 200,
            upstream_status: Some(200),
            client_cert: None,
            jwt: None,
            custodian: None,
            trace: None,
        }
    }

    #[test]
    fn chain_verifies_and_detects_change_removal_and_reorder() {
        let records: Vec<AuditRecord> = (1..=5).map(record).collect();
        let (rows, (last, head)) = chain(0, GENESIS_HASH, records.iter());
        assert_eq!(last, 5);
        assert_eq!(verify(&rows), ChainReport::Intact { records: 5, head });

        let mut changed = rows.clone();
        changed[2].record = changed[2].record.replace("patient-read", "patient-raed");
        assert!(matches!(
            verify(&changed),
            ChainReport::Broken { seq: 3, .. }
        ));

        let mut removed = rows.clone();
        removed.remove(1);
        assert!(
            matches!(verify(&removed), ChainReport::Broken { seq: 2, ref reason } if reason.contains("missing"))
        );

        let mut rehashed = rows.clone();
        rehashed[1].record = rehashed[1].record.replace("r2", "rX");
        rehashed[1].hash = chain_hash(&rehashed[1].prev_hash, &rehashed[1].record);
        assert!(
            matches!(verify(&rehashed), ChainReport::Broken { seq: 3, .. }),
            "a rehashed record breaks its successor"
        );

        let mut column = rows;
        column[0].bsn = "123456782".into();
        assert!(matches!(
            verify(&column),
            ChainReport::Broken { seq: 1, .. }
        ));
    }

    #[test]
    fn anchors_find_missing_last_records_and_rewrites() {
        let records: Vec<AuditRecord> = (1..=5).map(record).collect();
        let (rows, (_, head)) = chain(0, GENESIS_HASH, records.iter());
        let anchor: Anchor = format!("5:{head}").parse().unwrap();
        assert_eq!(anchor.to_string(), format!("5:{head}"));
        assert_eq!(
            verify_with_anchors(&rows, std::slice::from_ref(&anchor)),
            verify(&rows)
        );
        let third: Anchor = format!("3:{}", rows[2].hash).parse().unwrap();
        assert!(matches!(
            verify_with_anchors(&rows, &[third.clone(), anchor.clone()]),
            ChainReport::Intact { records: 5, .. }
        ));

        // The last two records deleted: the chain alone is intact, the anchor finds them.
        let truncated = &rows[..3];
        assert!(matches!(
            verify(truncated),
            ChainReport::Intact { records: 3, .. }
        ));
        assert_eq!(
            verify_with_anchors(truncated, &[third.clone(), anchor.clone()]),
            ChainReport::Broken {
                seq: 4,
                reason: "records 4 to 5 are missing: the anchor names record 5, the log ends at record 3".into()
            }
        );

        // Rebuilt from record 2 on with consistent hashes: intact alone, not to the anchor.
        let other: Vec<AuditRecord> = (1..=5)
            .map(|n| record(if n >= 2 { n + 10 } else { n }))
            .collect();
        let (rewritten, _) = chain(0, GENESIS_HASH, other.iter());
        assert!(matches!(
            verify(&rewritten),
            ChainReport::Intact { records: 5, .. }
        ));
        assert!(matches!(
            verify_with_anchors(&rewritten, &[third]),
            ChainReport::Broken { seq: 3, .. }
        ));

        for bad in [
            "",
            "5",
            "0:ab",
            &format!("0:{head}"),
            &format!("-1:{head}"),
            "5:xyz",
            &format!("5:{}", head.to_uppercase()),
            &format!("x:{head}"),
            &format!("5:{head}0"),
        ] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad:?} accepted");
        }
    }
}
