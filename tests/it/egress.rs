//! The GP side end to end: two real poortwachter processes (a custodian serving its proxy in
//! front of the sample FHIR source, and the GP practice's `egress`) and the GP system's plain
//! requests. A held credential gets the data; N requests and 20 concurrent first requests make
//! one grant; a revoked credential gives a clear refusal; an expired token is replaced; a
//! patient without a held credential never reaches the custodian; bad input gets its exact
//! status and message; `credential import` refuses what it must; the GP side's audit verifies.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use poortwachter::demo::sample_fhir::{start as start_backend, Backend, BSN1, BSN2, BSN_SYSTEM};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{
    enc, free_port, setup, setup_with_policies, within, Instance, Setup, AUD, PURPOSE,
};

/// A running `poortwachter egress`.
pub(super) struct Egress {
    child: Child,
    addr: SocketAddr,
}

impl Egress {
    pub(super) fn start(inst: &Instance) -> Self {
        let mut child = inst
            .command()
            .args(["egress", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn egress");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "egress listening" {
                        let _ = tx.send(Ok(v["addr"].as_str().unwrap_or_default().to_owned()));
                    }
                }
                if line.starts_with("error") {
                    let _ = tx.send(Err(line.clone()));
                }
                eprintln!("[egress] {line}");
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(a)) => a.parse().expect("egress addr"),
            Ok(Err(line)) => panic!("egress failed to start: {line}"),
            Err(_) => {
                let _ = child.kill();
                panic!("egress did not start within 30 s")
            }
        };
        Egress { child, addr }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A custodian in front of the sample FHIR source, and the GP's egress (route `/noord`) holding
/// the custodian's credential for BSN1.
struct Two {
    s: Setup,
    backend: Arc<Backend>,
    egress: Egress,
    http: reqwest::Client,
}

async fn two_with(lifetime: Option<u32>, fhir_base: Option<String>, extra: &str) -> Two {
    two_with_egress(lifetime, fhir_base, extra, "").await
}

/// [`two_with`], with `egress_extra` in the GP's `[egress]` section.
async fn two_with_egress(
    lifetime: Option<u32>,
    fhir_base: Option<String>,
    extra: &str,
    egress_extra: &str,
) -> Two {
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend.clone()).await;
    let s = setup_with_policies(
        &format!("upstream = \"{upstream}\"\nupstream_timeout_ms = 2000\n{extra}"),
        |dir| {
            if let Some(l) = lifetime {
                let p = dir.join(format!("{PURPOSE}.toml"));
                let text = std::fs::read_to_string(&p)
                    .unwrap()
                    .replace("lifetime_seconds = 300", &format!("lifetime_seconds = {l}"));
                std::fs::write(p, text).unwrap();
            }
        },
    );
    let config = s.requester.path("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[egress]\n{egress_extra}[[egress.route]]\nprefix = \"/noord\"\nfhir_base = \"{}\"\ntoken_endpoint = \"{}\"\naudience = \"{AUD}\"\ncustodian = \"{}\"\npurpose = \"{PURPOSE}\"\n",
        fhir_base.unwrap_or_else(|| s.server.public_url("")),
        s.endpoint(),
        s.custodian_did
    ));
    std::fs::write(&config, text).unwrap();
    let out = s
        .requester
        .ok(&["credential", "import", s.credential_file.to_str().unwrap()]);
    assert_eq!(
        out.trim(),
        format!("imported: {}", s.credential["id"].as_str().unwrap())
    );
    let egress = Egress::start(&s.requester);
    Two {
        s,
        backend,
        egress,
        http: reqwest::Client::new(),
    }
}

async fn two() -> Two {
    two_with(None, None, "").await
}

const USER: [(&str, &str); 3] = [
    ("x-poortwachter-user-uzi", "900012345"),
    ("x-poortwachter-user-name", "Dr. A. Huisarts"),
    ("x-poortwachter-user-role", "01.015"),
];

fn search_body(bsn: &str) -> String {
    format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{bsn}")))
}

impl Two {
    /// `POST /noord/Patient/_search` for `bsn` as user `uzi`.
    async fn search(&self, bsn: &str, uzi: &str) -> (StatusCode, Value) {
        let mut r = self
            .http
            .post(self.egress.url("/noord/Patient/_search"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/fhir+json")
            .body(search_body(bsn));
        for (k, v) in USER {
            r = r.header(k, if k.ends_with("uzi") { uzi } else { v });
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        assert!(r.headers().get("authorization").is_none());
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut r = self.http.get(self.egress.url(path));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn grants(&self) -> i64 {
        self.s.token_count()
    }
}

fn outcome(code: &str, text: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gp_system_reads_through_egress_and_n_requests_make_one_grant() {
    let t = two().await;
    let (status, found) = t.search(BSN1, "900012345").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["entry"][0]["resource"]["id"], "pat-1");
    {
        let seen = t.backend.seen.lock().unwrap();
        let (what, headers) = seen.last().unwrap();
        assert!(
            what.starts_with("POST /Patient/_search identifier="),
            "{what}"
        );
        assert_eq!(
            headers["x-poortwachter-requester"],
            t.s.requester_did.as_str()
        );
        assert_eq!(headers["x-poortwachter-user"], "900012345");
        assert!(!headers.contains_key("authorization"));
    }
    // The patient's observations with the BSN in a header; the same token (bound to pat-1).
    let path = format!(
        "/noord/Observation?patient=pat-1&_profile={}&_sort=-date&_count=5",
        enc("http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight")
    );
    let mut headers = USER.to_vec();
    headers.push(("x-poortwachter-bsn", BSN1));
    for _ in 0..5 {
        let (status, bundle) = t.get(&path, &headers).await;
        assert_eq!(status, StatusCode::OK, "{bundle}");
        assert_eq!(bundle["resourceType"], "Bundle");
    }
    assert_eq!(t.grants(), 1, "six requests, one grant");
    // Another user of the practice: a grant of its own.
    let (status, _) = t.search(BSN1, "900054321").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t.grants(), 2);

    // The GP side's own audit log: every request, in a chain that verifies.
    let out = t.s.requester.ok(&["audit", "export"]);
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 7, "{out}");
    let first = &records[0];
    assert_eq!(first["kind"], "egress");
    assert_eq!(first["custodian"], json!(t.s.custodian_did));
    assert_eq!(first["user"]["uzi"], "900012345");
    assert_eq!(first["bsn"], BSN1);
    assert_eq!(first["path"], "/noord/Patient/_search");
    assert_eq!(first["decision"], "permit");
    assert_eq!(first["status"], 200);
    assert_eq!(records[1]["path"], path);
    let (code, out, err) = t.s.requester.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{out} {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_first_requests_make_one_grant() {
    let t = Arc::new(two().await);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let t = t.clone();
        tasks.push(tokio::spawn(
            async move { t.search(BSN1, "900012345").await.0 },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(t.grants(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_credential_gives_a_clear_refusal_at_the_next_request() {
    let t = two().await;
    assert_eq!(t.search(BSN1, "900012345").await.0, StatusCode::OK);
    let id = t.s.credential["id"].as_str().unwrap();
    let r = t
        .http
        .post(
            t.s.server
                .internal_url(&format!("/internal/credentials/{}/revoke", enc(id))),
        )
        .json(&json!({"reason": "toestemming ingetrokken"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The cached token dies with its credential: the custodian answers 401, egress asks for a
    // new token at once and passes the refusal on.
    let expected = outcome(
        "forbidden",
        "the custodian refused the token request: credential 0: credential has been revoked",
    );
    assert_eq!(
        t.search(BSN1, "900012345").await,
        (StatusCode::FORBIDDEN, expected.clone())
    );
    // A user without a cached token: the grant is refused the same way.
    assert_eq!(
        t.search(BSN1, "900054321").await,
        (StatusCode::FORBIDDEN, expected)
    );
    assert_eq!(t.grants(), 1);
    let out = t.s.requester.ok(&["audit", "export"]);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["decision"], "deny");
    assert_eq!(last["status"], 403);
    assert_eq!(
        last["rule"],
        "grant-refused: credential 0: credential has been revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_replaced_before_it_dies() {
    // 31 s tokens: usable until 30 s before expiry, so for one second.
    let t = two_with(Some(31), None, "").await;
    assert_eq!(t.search(BSN1, "900012345").await.0, StatusCode::OK);
    assert_eq!(t.grants(), 1);
    let took = within(Duration::from_secs(10), async || {
        assert_eq!(t.search(BSN1, "900012345").await.0, StatusCode::OK);
        t.grants() == 2
    })
    .await;
    assert!(took.is_some(), "no second grant within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_without_a_held_credential_never_reaches_the_custodian() {
    let t = two().await;
    assert_eq!(
        t.search(BSN2, "900012345").await,
        (
            StatusCode::FORBIDDEN,
            outcome(
                "forbidden",
                &format!("no credential held for this patient and purpose {PURPOSE} from {}: ask the custodian for one and import it with `poortwachter credential import`", t.s.custodian_did)
            )
        )
    );
    assert_eq!(t.grants(), 0);
    assert!(t.backend.seen.lock().unwrap().is_empty());
    // And once the credential is removed, neither does the one that had it.
    let id = t.s.credential["id"].as_str().unwrap();
    assert_eq!(
        t.s.requester.ok(&["credential", "remove-held", id]).trim(),
        format!("removed: {id}")
    );
    assert_eq!(t.search(BSN1, "900012345").await.0, StatusCode::FORBIDDEN);
    assert_eq!(t.grants(), 0);
    let (code, _, err) = t.s.requester.run(&["credential", "remove-held", id]);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            format!("error: no held credential with id {id}").as_str()
        )
    );
}

/// Path, headers, expected status and body.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, Value);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_exact_status_and_message() {
    let t = two().await;
    let bsn = [("x-poortwachter-bsn", BSN1)];
    let cases: Vec<Case> = vec![
        (
            "/noord/Observation?patient=pat-1",
            bsn.to_vec(),
            StatusCode::BAD_REQUEST,
            outcome("required", "X-Poortwachter-User-Uzi is required: this purpose needs the user's UZI number, name and role (X-Poortwachter-User-Uzi, X-Poortwachter-User-Name, X-Poortwachter-User-Role)"),
        ),
        (
            "/noord/Observation?patient=pat-1",
            vec![("x-poortwachter-bsn", BSN1), USER[0], USER[1]],
            StatusCode::BAD_REQUEST,
            outcome("required", "X-Poortwachter-User-Role is required: this purpose needs the user's UZI number, name and role (X-Poortwachter-User-Uzi, X-Poortwachter-User-Name, X-Poortwachter-User-Role)"),
        ),
        (
            "/noord/Observation?patient=pat-1",
            [USER.as_slice(), &[("x-poortwachter-bsn", "123456789")]].concat(),
            StatusCode::BAD_REQUEST,
            outcome("invalid", "the BSN is not valid: 9 digits that pass the 11-check"),
        ),
        (
            "/noord/Observation?patient=pat-1",
            USER.to_vec(),
            StatusCode::BAD_REQUEST,
            outcome("required", "no patient: send X-Poortwachter-Bsn, or search POST Patient/_search with identifier=http://fhir.nl/fhir/NamingSystem/bsn|<BSN>"),
        ),
        (
            "/zuid/Observation?patient=pat-1",
            [USER.as_slice(), &bsn].concat(),
            StatusCode::NOT_FOUND,
            outcome("not-found", "no egress route for this path: call http://<egress>/<route prefix>/<FHIR path> with a prefix of [[egress.route]]"),
        ),
        (
            "/noordoost/Observation",
            [USER.as_slice(), &bsn].concat(),
            StatusCode::NOT_FOUND,
            outcome("not-found", "no egress route for this path: call http://<egress>/<route prefix>/<FHIR path> with a prefix of [[egress.route]]"),
        ),
    ];
    for (path, headers, status, body) in cases {
        assert_eq!(
            t.get(path, &headers).await,
            (status, body),
            "{path} {headers:?}"
        );
    }
    assert_eq!(t.grants(), 0, "no bad request reached the custodian");
    assert!(t.backend.seen.lock().unwrap().is_empty());
    // Every refusal is in the GP side's audit log too.
    let out = t.s.requester.ok(&["audit", "export"]);
    assert_eq!(out.lines().count(), 6);
    assert!(!out.contains("123456789"), "an invalid BSN is not recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_custodian_is_a_502() {
    let t = two_with(None, Some(format!("http://127.0.0.1:{}", free_port())), "").await;
    assert_eq!(
        t.search(BSN1, "900012345").await,
        (
            StatusCode::BAD_GATEWAY,
            outcome(
                "transient",
                "the custodian cannot be reached; try again later"
            )
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_import_refuses_what_is_not_ours_and_stores_nothing() {
    let s = setup("");
    let held = |s: &Setup| s.requester.ok(&["credential", "list", "--held", "--json"]);
    // Issued to another DID.
    let other = Instance::new();
    other.ok(&["init"]);
    let other_doc: Value = serde_json::from_str(&other.ok(&["did", "show"])).unwrap();
    let other_did = other_doc["id"].as_str().unwrap();
    let (_, text) = s
        .custodian
        .issue(other_did, BSN1, "implied", Some("2031-06-30"));
    let file = s.requester.path("other.json");
    std::fs::write(&file, text).unwrap();
    let (code, _, err) = s
        .requester
        .run(&["credential", "import", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!(
            "error: credential not imported: it was issued to {other_did}, not to us ({})",
            s.requester_did
        )
    );
    // Tampered: another patient.
    let mut tampered = s.credential.clone();
    tampered["credentialSubject"]["subject"] =
        json!(format!("urn:oid:2.16.840.1.113883.2.4.6.3:{BSN2}"));
    std::fs::write(&file, tampered.to_string()).unwrap();
    let (code, _, err) = s
        .requester
        .run(&["credential", "import", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "error: credential not imported: invalid proof: signature does not verify with the issuer's key"
    );
    // Expired (signed by the custodian, so the proof holds).
    let expired = s.custodian_signed(|c| {
        c.insert("issuanceDate".into(), json!("2020-01-01T00:00:00Z"));
        c.insert("expirationDate".into(), json!("2021-01-01T00:00:00Z"));
    });
    std::fs::write(&file, expired.to_string()).unwrap();
    let (code, out, _) =
        s.requester
            .run(&["credential", "import", "--json", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"imported": false, "error": "invalid_dates", "reason": "credential has expired"})
    );
    assert_eq!(held(&s), "", "nothing stored");
    // The real one, from standard input; a second import is refused.
    let mut child = s
        .requester
        .command()
        .args(["credential", "import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(s.credential.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let id = s.credential["id"].as_str().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("imported: {id}")
    );
    let (code, _, err) =
        s.requester
            .run(&["credential", "import", s.credential_file.to_str().unwrap()]);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            format!("error: credential not imported: already held: {id}").as_str()
        )
    );
    let list: Value = serde_json::from_str(held(&s).trim()).unwrap();
    assert_eq!(list["id"], id);
    assert_eq!(list["issuer"], json!(s.custodian_did));
    assert_eq!(list["bsn"], "******990");
    assert_eq!(list["status"], "active");
    // Held credentials are not issued ones.
    let (code, issued, _) = s.requester.run(&["credential", "list", "--json"]);
    assert_eq!((code, issued.as_str()), (0, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_grant_is_a_429_that_says_so() {
    let t = two_with(
        None,
        None,
        "rate_limit_per_second = 1\nrate_limit_burst = 1\n",
    )
    .await;
    assert_eq!(t.search(BSN1, "900012345").await.0, StatusCode::OK);
    // Other users of the practice need grants of their own; the bucket refills once a second,
    // so one of a quick series is refused.
    let mut refused = None;
    for uzi in [
        "900000001",
        "900000002",
        "900000003",
        "900000004",
        "900000005",
    ] {
        let (status, body) = t.search(BSN1, uzi).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(body);
            break;
        }
    }
    assert_eq!(
        refused.expect("no 429 in five quick grants at one a second"),
        outcome(
            "throttled",
            "the custodian's token endpoint is limiting this practice's token requests: too many token requests for this requester; retry after 1 s; try again later"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custodian_that_does_not_answer_is_a_504() {
    // Connections are accepted (the backlog) and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let t = two_with_egress(None, Some(base), "", "timeout_ms = 1500\n").await;
    assert_eq!(
        t.search(BSN1, "900012345").await,
        (
            StatusCode::GATEWAY_TIMEOUT,
            outcome(
                "timeout",
                "the custodian did not answer in time; try again later"
            )
        )
    );
    assert_eq!(t.grants(), 1, "the token came from the real token endpoint");
    drop(silent);
}
