//! The attack corpus (issue 8): deliberate abuse of every parser and decision point, one table
//! per category, one real server per category (the binary, a real FHIR sample backend, real
//! grants and tokens).
//!
//! Every case asserts the exact refusal (status and OAuth error / FHIR `OperationOutcome`), that
//! nothing reached the source system (the sample backend counts what it receives), that nothing
//! was stored (no token row, no `jti` row), and what the audit log says (a refused request gets
//! a `deny` record with the reason; a request hyper refuses before routing gets none).
//!
//! - [`jwt`]: the JWT-bearer grant as a JOSE object (alg, kid, key headers, crit, duplicate
//!   members, size and nesting, base64url, segments).
//! - [`credential`]: the credentials inside the grant (swapped proofs, JSON-LD context injection,
//!   undefined and aliased terms, `@`-keywords, look-alike characters, BSN spellings).
//! - [`http`]: raw HTTP/1.1 on a TCP socket (smuggling, framing, targets, methods, limits, slow
//!   clients).
//! - [`fhir`]: FHIR searches with a valid token (modifiers, includes, chains, pollution,
//!   `_format`, the BSN in the URL or of another patient).

mod credential;
mod fhir;
mod http;
mod jwt;

use std::sync::Arc;

use poortwachter::demo::sample_fhir::{start as start_backend, Backend, BSN1, BSN_SYSTEM};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection as _, Row as _};

use super::support::{setup, Setup};

/// What the store and the source system hold at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    /// Rows in `tokens`.
    pub(super) tokens: i64,
    /// Rows in `used_jtis`.
    pub(super) jtis: i64,
    /// The last audit sequence number.
    pub(super) audit: i64,
    /// Requests the sample backend received.
    pub(super) upstream: usize,
}

/// A custodian serving in front of the sample FHIR backend, with a requester.
pub(super) struct World {
    pub(super) s: Setup,
    pub(super) backend: Arc<Backend>,
}

impl World {
    /// A custodian with the sample backend as its upstream; `extra` is appended to its config.
    pub(super) async fn new(extra: &str) -> Self {
        let backend = Arc::new(Backend::default());
        let upstream = start_backend(backend.clone()).await;
        let s = setup(&format!("upstream = \"{upstream}\"\n{extra}"));
        World { s, backend }
    }

    fn db_url(&self) -> String {
        format!(
            "sqlite://{}?mode=ro",
            self.s
                .custodian
                .data_dir()
                .join("poortwachter.db")
                .display()
        )
    }

    async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.db_url()).await.unwrap()
    }

    pub(super) async fn counts(&self) -> Counts {
        let mut c = self.connect().await;
        let tokens = scalar(&mut c, "SELECT COUNT(*) FROM tokens").await;
        let jtis = scalar(&mut c, "SELECT COUNT(*) FROM used_jtis").await;
        let audit = scalar(&mut c, "SELECT COALESCE(MAX(seq), 0) FROM audit_log").await;
        drop(c);
        Counts {
            tokens,
            jtis,
            audit,
            upstream: self.backend.seen.lock().unwrap().len(),
        }
    }

    /// The audit records after sequence number `after`, as JSON.
    pub(super) async fn audit_since(&self, after: i64) -> Vec<Value> {
        let mut c = self.connect().await;
        sqlx::query("SELECT record FROM audit_log WHERE seq > $1 ORDER BY seq")
            .bind(after)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(&r.try_get::<String, _>(0).unwrap()).unwrap())
            .collect()
    }

    /// Checks that since `before` nothing was stored, nothing reached the source system, and
    /// exactly the audit records `audit` describes were written: per record (kind, status,
    /// rule), each with decision `deny`. Returns what is wrong (empty: all well).
    pub(super) async fn quiet_refusal(
        &self,
        name: &str,
        before: Counts,
        audit: &[(&str, u16, &str)],
    ) -> Vec<String> {
        let mut wrong = Vec::new();
        let after = self.counts().await;
        if after.tokens != before.tokens {
            wrong.push(format!("{name}: a token was stored"));
        }
        if after.jtis != before.jtis {
            wrong.push(format!("{name}: a jti was stored"));
        }
        if after.upstream != before.upstream {
            wrong.push(format!("{name}: the request reached the source system"));
        }
        let records = self.audit_since(before.audit).await;
        let got: Vec<(String, u16, String, String)> = records
            .iter()
            .map(|r| {
                (
                    r["kind"].as_str().unwrap().to_owned(),
                    u16::try_from(r["status"].as_u64().unwrap()).unwrap(),
                    r["rule"].as_str().unwrap().to_owned(),
                    r["decision"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, u16, String, String)> = audit
            .iter()
            .map(|(k, s, r)| ((*k).to_owned(), *s, (*r).to_owned(), "deny".to_owned()))
            .collect();
        if got != want {
            wrong.push(format!("{name}: audit records {got:?}, expected {want:?}"));
        }
        if records
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains(BSN1))
        {
            wrong.push(format!("{name}: BSN in an audited path"));
        }
        wrong
    }

    /// A live token whose patient search has bound `pat-1`.
    pub(super) async fn bound_token(&self) -> String {
        let (status, body) = self.s.post_grant(&self.s.grant(&self.s.claims())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let form = format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}")));
        let r = reqwest::Client::new()
            .post(self.s.server.public_url("/Patient/_search"))
            .bearer_auth(&token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        token
    }
}

async fn scalar(c: &mut sqlx::AnyConnection, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(c)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

/// Fails with every collected problem, one per line.
pub(super) fn assert_none(category: &str, cases: usize, wrong: &[String]) {
    assert!(
        wrong.is_empty(),
        "{category}: {} problems in {cases} cases:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The OAuth error body.
pub(super) fn oauth(code: &str, description: &str) -> Value {
    json!({"error": code, "error_description": description})
}

/// The FHIR `OperationOutcome` poortwachter answers with.
pub(super) fn outcome(code: &str, diagnostics: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]})
}

/// Form/URL component encoding.
pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// base64url without padding.
pub(super) fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
