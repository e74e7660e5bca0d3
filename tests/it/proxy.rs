//! End to end through the proxy: a FHIR test backend on 127.0.0.1 holds zib resources for two
//! patients (only one covered by a credential). Credential → token → Patient/_search →
//! Observation searches per zib profile pass; the other patient's data, `_include`, a BSN in the
//! URL, writes and List reads are refused and never reach the backend; a misbehaving backend's
//! answer is withheld; timeouts and an unreachable backend are 504/502; everything is audited in
//! a hash chain that `audit verify` checks; a revocation ends access within 1 s.

use std::sync::Arc;
use std::time::Duration;

use poortwachter::demo::sample_fhir::{
    start as start_backend, Backend, BSN1, BSN2, BSN_SYSTEM, PROFILES,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{setup, within, Setup, PURPOSE};

async fn token_for(s: &Setup) -> String {
    let (status, body) = s.post_grant(&s.grant(&s.claims())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

struct Client<'a> {
    s: &'a Setup,
    http: reqwest::Client,
    token: String,
}

impl Client<'_> {
    async fn send(&self, method: &str, path: &str, form: Option<&str>) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method.parse().unwrap(), self.s.server.public_url(path))
            .bearer_auth(&self.token)
            .header("x-poortwachter-requester", "did:web:forged.example")
            .header("accept", "application/fhir+json");
        if let Some(f) = form {
            r = r
                .header("content-type", "application/x-www-form-urlencoded")
                .body(f.to_owned());
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        if status == StatusCode::OK || status.is_client_error() || status.is_server_error() {
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert_eq!(ct, "application/fhir+json", "{method} {path}");
        }
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn refused() -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "access refused"}]})
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huisarts_reads_the_home_care_dossier_and_nothing_else() {
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend.clone()).await;
    let s = setup(&format!(
        "upstream = \"{upstream}\"\nupstream_timeout_ms = 1000\n"
    ));
    let c = Client {
        s: &s,
        http: reqwest::Client::new(),
        token: token_for(&s).await,
    };

    // Before the patient search no Patient id is allowed.
    assert_eq!(
        c.send("GET", "/Patient/pat-1", None).await,
        (StatusCode::FORBIDDEN, refused())
    );

    let identifier = format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}")));
    let (status, found) = c.send("POST", "/Patient/_search", Some(&identifier)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{found} {:?}",
        backend
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(w, _)| w.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(found["entry"][0]["resource"]["id"], "pat-1");
    {
        let seen = backend.seen.lock().unwrap();
        let (what, headers) = seen.last().unwrap();
        assert!(
            what.starts_with("POST /Patient/_search identifier="),
            "{what}"
        );
        assert_eq!(
            headers["x-poortwachter-requester"],
            s.requester_did.as_str(),
            "forged header replaced"
        );
        assert_eq!(headers["x-poortwachter-purpose"], PURPOSE);
        assert_eq!(headers["x-poortwachter-subject"], BSN1);
        assert_eq!(headers["x-poortwachter-user"], "900012345");
        assert!(headers.contains_key("x-poortwachter-request-id"));
        assert!(
            !headers.contains_key("authorization"),
            "the token never reaches the source system"
        );
        assert_eq!(
            headers.get_all("x-poortwachter-requester").iter().count(),
            1
        );
    }
    // Searching for the other patient's BSN is refused.
    let other = format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN2}")));
    assert_eq!(
        c.send("POST", "/Patient/_search", Some(&other)).await,
        (StatusCode::FORBIDDEN, refused())
    );

    for (profile, _, _) in PROFILES {
        let count = if profile.ends_with("nursingreport") {
            10
        } else {
            5
        };
        let path = format!(
            "/Observation?patient=pat-1&_profile={}&_sort=-date&_count={count}",
            enc(profile)
        );
        let (status, b) = c.send("GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{profile}: {b}");
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 3, "{profile}");
        assert!(entries
            .iter()
            .all(|e| e["resource"]["subject"]["reference"] == "Patient/pat-1"));
    }
    assert_eq!(
        c.send("GET", "/Patient/pat-1", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        c.send("GET", "/Practitioner/prac-1", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        c.send("GET", "/PractitionerRole/role-1", None).await.0,
        StatusCode::OK
    );

    let before = backend.seen.lock().unwrap().len();
    let bw = enc(PROFILES[1].0);
    for (method, path) in [
        ("GET", format!("/Observation?patient=pat-2&_profile={bw}&_sort=-date&_count=5")),
        ("GET", format!("/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=6")),
        ("GET", format!("/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=5&_include=Observation:subject")),
        ("GET", format!("/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=5&_revinclude=Provenance:target")),
        ("GET", format!("/Observation?subject.identifier={}&_profile={bw}&_sort=-date&_count=5", enc(BSN1))),
        ("GET", format!("/Patient?identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}")))),
        ("GET", "/Patient/pat-2".to_owned()),
        ("PUT", "/Patient/pat-1".to_owned()),
        ("DELETE", "/Patient/pat-1".to_owned()),
        ("GET", "/List/1".to_owned()),
        ("GET", "/Composition?patient=pat-1".to_owned()),
        ("GET", "/Patient/pat-1/_history".to_owned()),
        ("GET", "/Patient/%2e%2e/pat-2".to_owned()),
    ] {
        assert_eq!(c.send(method, &path, None).await, (StatusCode::FORBIDDEN, refused()), "{method} {path}");
    }
    assert_eq!(
        c.send("POST", "/Observation", Some("status=final")).await,
        (StatusCode::FORBIDDEN, refused())
    );
    assert_eq!(
        backend.seen.lock().unwrap().len(),
        before,
        "refused requests never reach the source system"
    );

    // Bad or missing tokens.
    for auth in [None, Some("Bearer nonsense"), Some("Basic dXNlcjpwdw==")] {
        let mut r = reqwest::Client::new().get(s.server.public_url("/Patient/pat-1"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(
            r.json::<Value>().await.unwrap()["issue"][0]["code"],
            "login"
        );
    }

    // The source system's error detail does not leak; timeouts are 504.
    let (status, body) = c.send("GET", "/Practitioner/gone", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.to_string().contains("secret"), "{body}");
    assert_eq!(
        c.send("GET", "/Practitioner/slow", None).await.0,
        StatusCode::GATEWAY_TIMEOUT
    );

    // A misbehaving source system: another patient's data is withheld.
    *backend.evil.lock().unwrap() = true;
    let path = format!("/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=5");
    assert_eq!(
        c.send("GET", &path, None).await,
        (StatusCode::FORBIDDEN, refused())
    );
    *backend.evil.lock().unwrap() = false;

    // The audit log: every request is there, the chain is intact, no BSN in a path.
    let out = s.custodian.ok(&["audit", "verify"]);
    assert!(out.starts_with("audit log intact: "), "{out}");
    let lines = s.custodian.ok(&["audit", "export", "--bsn", BSN1]);
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let proxied: Vec<&Value> = records.iter().filter(|r| r["kind"] == "proxy").collect();
    assert_eq!(
        proxied.len(),
        28,
        "every proxied request of this patient is audited"
    );
    assert!(records
        .iter()
        .any(|r| r["kind"] == "token" && r["decision"] == "permit"));
    assert!(
        records
            .iter()
            .all(|r| !r["path"].as_str().unwrap().contains(BSN1)),
        "no BSN in audited paths"
    );
    let bsn_in_url = proxied
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .starts_with("/Patient?identifier=")
        })
        .unwrap();
    assert_eq!(
        (
            &bsn_in_url["decision"],
            &bsn_in_url["rule"],
            &bsn_in_url["status"]
        ),
        (
            &json!("deny"),
            &json!("no-rule-for-method-and-path"),
            &json!(403)
        )
    );
    let withheld = proxied
        .iter()
        .rev()
        .find(|r| r["rule"].as_str().unwrap().contains("withheld"))
        .unwrap();
    assert_eq!(
        withheld["rule"],
        "observation-vitals; withheld: resource-of-other-patient:Observation"
    );
    assert_eq!(withheld["upstream_status"], 200);
    let ok = proxied
        .iter()
        .find(|r| r["rule"] == "patient-search")
        .unwrap();
    assert_eq!(
        (&ok["user"]["uzi"], &ok["requester"], &ok["status"]),
        (&json!("900012345"), &json!(s.requester_did), &json!(200))
    );

    // Metrics: counts by kind, decision and status; latency histograms; no personal data.
    let metrics = reqwest::get(s.server.internal_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(line)
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("{line} missing in\n{metrics}"))
    };
    assert_eq!(
        value("poortwachter_requests_total{kind=\"token\",decision=\"permit\",status=\"200\"}"),
        1.0
    );
    assert_eq!(value("poortwachter_tokens_issued_total"), 1.0);
    assert!(
        value("poortwachter_requests_total{kind=\"proxy\",decision=\"deny\",status=\"403\"}")
            >= 15.0
    );
    assert!(
        value("poortwachter_requests_total{kind=\"proxy\",decision=\"permit\",status=\"200\"}")
            >= 9.0
    );
    assert_eq!(
        value("poortwachter_upstream_errors_total"),
        1.0,
        "the timeout; a 404 is not an upstream error"
    );
    assert_eq!(value("poortwachter_active_tokens"), 1.0);
    assert_eq!(value("poortwachter_revocations"), 0.0);
    assert!(value("poortwachter_proxy_duration_seconds_count") >= 25.0);
    assert!(
        !metrics.contains(BSN1) && !metrics.contains("pat-1"),
        "no personal data in metrics"
    );

    // Revocation: the next request is refused within a second.
    let id = s.credential["id"].as_str().unwrap();
    s.custodian.ok(&[
        "credential",
        "revoke",
        id,
        "--reason",
        "toestemming ingetrokken",
    ]);
    let gone = within(Duration::from_secs(1), async || {
        c.send("GET", "/Patient/pat-1", None).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(gone.is_some(), "revocation not effective within 1 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_source_system_is_502_and_audit_tampering_is_found() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = setup(&format!("upstream = \"http://127.0.0.1:{port}/fhir\"\n"));
    let c = Client {
        s: &s,
        http: reqwest::Client::new(),
        token: token_for(&s).await,
    };
    let identifier = format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}")));
    let (status, body) = c.send("POST", "/Patient/_search", Some(&identifier)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["issue"][0]["code"], "exception");
    for _ in 0..3 {
        c.send("GET", "/List/1", None).await;
    }
    drop(c);
    let out = s.custodian.ok(&["audit", "verify"]);
    assert!(out.starts_with("audit log intact: 5 records"), "{out}");
    let anchor = out
        .lines()
        .find_map(|l| l.strip_prefix("anchor for a later check: "))
        .expect("anchor line")
        .to_owned();
    assert!(anchor.starts_with("5:") && anchor.len() == 66, "{anchor}");

    // At shutdown the server logs the same anchor (kept with the logs, outside the database).
    let server = s.server;
    let (code, log) = server.terminate();
    assert_eq!(code, Some(0));
    let logged: Vec<String> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "audit chain head")
        .map(|v| v["anchor"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(logged, std::slice::from_ref(&anchor));

    // The last record deleted: the chain alone is intact; the anchor finds the loss.
    let db = s.custodian.data_dir().join("poortwachter.db");
    let url = format!("sqlite://{}?mode=rw", db.display());
    let exec = |sql: &'static str| {
        let url = url.clone();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                use sqlx::Connection as _;
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            })
        })
    };
    exec("DELETE FROM audit_log WHERE seq = 5");
    let (code, out, _) = s.custodian.run(&["audit", "verify"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("audit log intact: 4 records"), "{out}");
    let (code, out, _) = s.custodian.run(&["audit", "verify", "--anchor", &anchor]);
    assert_eq!(
        (code, out.trim()),
        (
            1,
            "audit log broken at record 5: records 5 to 5 are missing: the anchor names record 5, the log ends at record 4"
        )
    );
    let (code, _, err) = s
        .custodian
        .run(&["audit", "verify", "--anchor", "5:nothex"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value '5:nothex' for '--anchor <SEQ:HASH>': expected SEQ:HASH"),
        "{err}"
    );

    // Change a record, then remove one: verify names the first broken record.
    exec("UPDATE audit_log SET record = replace(record, '\"deny\"', '\"permit\"') WHERE seq = 3");
    let (code, out, _) = s.custodian.run(&["audit", "verify"]);
    assert_eq!(
        (code, out.trim()),
        (
            1,
            "audit log broken at record 3: hash does not match the record (the record was changed)"
        )
    );
    exec("DELETE FROM audit_log WHERE seq = 3");
    let (code, out, _) = s.custodian.run(&["audit", "verify"]);
    assert_eq!(
        (code, out.trim()),
        (
            1,
            "audit log broken at record 3: record 3 is missing (next present is 4)"
        )
    );
}
