//! The NEN 7513 audit record: what happened, to whom, decided how. Field order is the canonical
//! JSON order the chain hashes.

use serde::{Deserialize, Serialize};

/// The user, as the requester vouched for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditUser {
    /// UZI number.
    pub uzi: String,
    /// Name.
    pub name: String,
    /// Role code.
    pub role: String,
}

/// What happened. Field order is the canonical JSON order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Request id (also sent to the source system as `X-Poortwachter-Request-Id`).
    pub request_id: String,
    /// `token`, `proxy`, `egress`, ...
    pub kind: String,
    /// Requester DID (for a refused grant: the claimed `iss`, if any).
    pub requester: String,
    /// The user.
    pub user: Option<AuditUser>,
    /// purposeOfUse.
    pub purpose: String,
    /// The patient's BSN (written as `""` when unknown).
    #[serde(with = "crate::bsn::empty_when_none")]
    pub bsn: Option<crate::bsn::Bsn>,
    /// HTTP method.
    pub method: String,
    /// Path with query, BSN-like numbers removed.
    pub path: String,
    /// `permit`, `deny` or `error`.
    pub decision: String,
    /// The rule that decided, or the reason.
    pub rule: String,
    /// Status answered to the client.
    pub status: u16,
    /// Status the source system answered, if it was asked.
    pub upstream_status: Option<u16>,
    /// The verified client certificate the request came with (mutual TLS), if any. Absent from
    /// the JSON when there was none, so records from before TLS hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<AuditCert>,
    /// The `iss` and `jti` of the JWT the request was authenticated with (ZorgDomein's), if
    /// any. Absent from the JSON when there was none, so older records hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<AuditJwt>,
    /// The chain-log event and the ids a network's messages carry (MedMij: `MedMij-Request-ID`,
    /// `X-Correlation-ID`), if any. Absent from the JSON when there are none, so older records
    /// hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<AuditTrace>,
    /// The custodian a request was sent to (the requesting side: `egress`), if any. Absent from
    /// the JSON when there was none, so older records hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodian: Option<String>,
}

/// A verified JWT as the audit log names it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditJwt {
    /// `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// A chain-log event and the request and correlation ids of the message it is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditTrace {
    /// The event (MedMij's chain-log names: `receive_authorization_request`, ...).
    pub event: String,
    /// The sender's id of this message (`MedMij-Request-ID`), if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The id of the whole exchange (`X-Correlation-ID`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// The client certificate as the audit log names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCert {
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    /// The subject, RFC 4514.
    pub subject: String,
}

impl AuditCert {
    /// The audit form of a verified client certificate.
    #[must_use]
    pub fn of(cert: &crate::tls::ClientCert) -> Self {
        Self {
            fingerprint: cert.fingerprint_sha256().to_owned(),
            subject: cert.subject().to_owned(),
        }
    }
}

/// Replaces every run of 8 or 9 digits that passes the BSN 11-check with `***`, so no BSN ends
/// up in a logged path.
#[must_use]
pub fn redact_bsns(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let run = &s[start..i];
            if crate::bsn::Bsn::parse(run).is_ok() {
                out.push_str("***");
            } else {
                out.push_str(run);
            }
        } else {
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// RFC 3339 UTC with milliseconds, as audit records carry it.
#[must_use]
pub fn audit_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// What a refused replay's record says.
pub const REPLAY_RULE: &str = "jti has already been used";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsns_are_redacted_from_paths() {
        assert_eq!(
            redact_bsns("/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|999999990"),
            "/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|***"
        );
        assert_eq!(
            redact_bsns("/Patient/123456780"),
            "/Patient/123456780",
            "fails the 11-check: not a BSN"
        );
        assert_eq!(
            redact_bsns("/Observation?_count=5&x=77461848"),
            "/Observation?_count=5&x=***"
        );
        assert_eq!(redact_bsns("/é/1234"), "/é/1234");
    }

    /// No BSN in a `Debug` of the records that carry one (they reach logs through `?` fields).
    #[test]
    fn debug_output_never_shows_a_bsn() {
        let bsn = crate::bsn::Bsn::parse("999999990").unwrap();
        let record = AuditRecord {
            time: "2026-12-04T12:00:00.000Z".into(),
            request_id: "r".into(),
            kind: "proxy".into(),
            requester: "did:web:a".into(),
            user: None,
            purpose: "p".into(),
            bsn: Some(bsn.clone()),
            method: "GET".into(),
            path: "/Patient/1".into(),
            decision: "permit".into(),
            rule: "r".into(),
            status: 200,
            upstream_status: Some(200),
            client_cert: None,
            jwt: None,
            custodian: None,
            trace: None,
        };
        let token = crate::store::TokenRecord {
            hash: "h".into(),
            requester: "did:web:a".into(),
            custodian: "did:web:b".into(),
            purpose: "p".into(),
            credential_ids: vec!["c".into()],
            bsn: bsn.clone(),
            user_identity: None,
            issued_at: 1,
            expires_at: 2,
            cnf_x5t_s256: None,
        };
        for text in [format!("{record:?}"), format!("{token:?}")] {
            assert!(!text.contains("999999990"), "{text}");
            assert!(text.contains("Bsn(***)"), "{text}");
        }
        // The canonical JSON the chain hashes still holds the number (an empty string for none).
        assert!(serde_json::to_string(&record)
            .unwrap()
            .contains(r#""bsn":"999999990""#));
        let none = AuditRecord {
            bsn: None,
            ..record
        };
        let json = serde_json::to_string(&none).unwrap();
        assert!(json.contains(r#""bsn":"""#), "{json}");
        assert_eq!(serde_json::from_str::<AuditRecord>(&json).unwrap(), none);
    }
}
