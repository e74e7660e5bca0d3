//! The audit view's filter ([`AuditQuery`]: the store's indexed filters — time, BSN, requester —
//! plus purpose, decision and user, read from each record) and the export of the filtered
//! records as JSON lines (the lines `audit export` writes) and CSV (one column per field, safe to
//! open in a spreadsheet).

use std::fmt::Write as _;

use time::format_description::well_known::Rfc3339;

use super::i18n::FieldError;
use super::session::AuditFilterForm;
use crate::audit::{AuditRecord, AuditRow};
use crate::bsn::Bsn;
use crate::store::AuditFilter;

/// What the audit view shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// What the store filters (indexed columns).
    pub store: AuditFilter,
    /// purposeOfUse.
    pub purpose: Option<String>,
    /// `permit`, `deny` or `error`.
    pub decision: Option<String>,
    /// The user's UZI number.
    pub user: Option<String>,
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` (as a browser's `datetime-local` sends it) or RFC 3339, in
/// UTC; unix seconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let minute = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &minute) {
        return Some(t.assume_utc().unix_timestamp());
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &day)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl AuditQuery {
    /// Checks the typed filter; every field error at once.
    pub fn parse(f: &AuditFilterForm) -> Result<Self, Vec<(&'static str, FieldError)>> {
        let mut errors = Vec::new();
        let bsn = match nonempty(&f.bsn).map(|b| Bsn::parse(&b)) {
            None => None,
            Some(Ok(b)) => Some(b.as_str().to_owned()),
            Some(Err(e)) => {
                errors.push(("bsn", FieldError::Bsn(e)));
                None
            }
        };
        let decision = nonempty(&f.decision);
        if decision
            .as_deref()
            .is_some_and(|d| !["permit", "deny", "error"].contains(&d))
        {
            errors.push(("decision", FieldError::Decision));
        }
        let mut instant = |field: &'static str, s: &str| match nonempty(s) {
            None => None,
            Some(v) => {
                let t = parse_instant(&v);
                if t.is_none() {
                    errors.push((field, FieldError::DateFormat));
                }
                t
            }
        };
        let since = instant("since", &f.since);
        let until = instant("until", &f.until);
        if let (Some(a), Some(b)) = (since, until) {
            if b <= a {
                errors.push(("until", FieldError::RangeOrder));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            store: AuditFilter {
                since,
                until,
                bsn,
                requester: nonempty(&f.requester),
            },
            purpose: nonempty(&f.purpose),
            decision,
            user: nonempty(&f.user),
        })
    }

    /// Whether a record passes the filters the store did not apply.
    #[must_use]
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.purpose.as_ref().is_none_or(|p| *p == r.purpose)
            && self.decision.as_ref().is_none_or(|d| *d == r.decision)
            && self
                .user
                .as_ref()
                .is_none_or(|u| r.user.as_ref().is_some_and(|x| x.uzi == *u))
    }
}

/// A stored row with its record read back.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The row (sequence number, hashes, the record's JSON).
    pub row: AuditRow,
    /// The record.
    pub record: AuditRecord,
}

impl Entry {
    /// Reads a row's record; `None` for a record that does not parse (a tampered row: `audit
    /// verify` reports it).
    #[must_use]
    pub fn of(row: AuditRow) -> Option<Self> {
        let record = serde_json::from_str(&row.record).ok()?;
        Some(Self { row, record })
    }

    /// The line `audit export` writes: the record with its `seq` and `hash`.
    #[must_use]
    pub fn json_line(&self) -> String {
        let mut v: serde_json::Value =
            serde_json::from_str(&self.row.record).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("seq".into(), self.row.seq.into());
            o.insert("hash".into(), self.row.hash.clone().into());
        }
        let mut line = v.to_string();
        line.push('\n');
        line
    }

    /// One CSV line (see [`CSV_HEADER`]).
    #[must_use]
    pub fn csv_line(&self) -> String {
        let r = &self.record;
        let user = r.user.as_ref();
        let cert = r.client_cert.as_ref();
        let fields = [
            self.row.seq.to_string(),
            r.time.clone(),
            r.kind.clone(),
            r.request_id.clone(),
            r.requester.clone(),
            user.map(|u| u.uzi.clone()).unwrap_or_default(),
            user.map(|u| u.name.clone()).unwrap_or_default(),
            user.map(|u| u.role.clone()).unwrap_or_default(),
            r.purpose.clone(),
            r.bsn
                .as_ref()
                .map(|b| b.as_str().to_owned())
                .unwrap_or_default(),
            r.method.clone(),
            r.path.clone(),
            r.decision.clone(),
            r.rule.clone(),
            r.status.to_string(),
            r.upstream_status.map(|s| s.to_string()).unwrap_or_default(),
            cert.map(|c| c.subject.clone()).unwrap_or_default(),
            cert.map(|c| c.fingerprint.clone()).unwrap_or_default(),
            self.row.hash.clone(),
        ];
        let mut line = String::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let _ = write!(line, "{}", csv_field(f));
        }
        line.push_str("\r\n");
        line
    }
}

/// The CSV export's first line.
pub const CSV_HEADER: &str = "seq,time,kind,request_id,requester,user_uzi,user_name,user_role,purpose,bsn,method,path,decision,rule,status,upstream_status,client_cert_subject,client_cert_fingerprint,hash\r\n";

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a leading `=`,
/// `+`, `-`, `@`, tab or carriage return gets a `'` first, so that a spreadsheet never reads it
/// as a formula (the requester of a refused grant is whatever the client claimed).
#[must_use]
pub fn csv_field(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_field("/Patient/1"), "/Patient/1");
    }

    #[test]
    fn filters_are_checked_all_at_once() {
        let errors = AuditQuery::parse(&AuditFilterForm {
            bsn: "123".into(),
            decision: "maybe".into(),
            since: "2026-13-01".into(),
            ..Default::default()
        })
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["bsn", "decision", "since"]);
        let q = AuditQuery::parse(&AuditFilterForm {
            bsn: " 999999990 ".into(),
            since: "2026-11-01".into(),
            until: "2026-11-02T10:30".into(),
            decision: "deny".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.store.bsn.as_deref(), Some("999999990"));
        assert_eq!(q.store.since, Some(1_793_491_200));
        assert_eq!(
            q.store.until,
            Some(1_793_491_200 + 86_400 + 10 * 3600 + 1800)
        );
        assert_eq!(q.decision.as_deref(), Some("deny"));
        let order = AuditQuery::parse(&AuditFilterForm {
            since: "2026-11-02".into(),
            until: "2026-11-01".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(order[0].0, "until");
    }
}
