//! Fail closed: with its PostgreSQL database cut off (a TCP relay in between is stopped), the
//! token endpoint and the proxy answer 503 and `/ready` is 503 while `/health` stays 200; when
//! the database is back everything recovers by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poortwachter::demo::sample_fhir::{start as start_backend, Backend, BSN1, BSN_SYSTEM};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::PgDatabase;
use super::support::{enc, within, Instance};

/// A TCP relay to PostgreSQL that can be cut (closing every relayed connection) and restored.
struct Relay {
    port: u16,
    open: Arc<AtomicBool>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (o, t, target) = (open.clone(), tasks.clone(), target.to_owned());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: the database is "down"
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                t.lock().unwrap().push(task);
            }
        });
        Relay { port, open, tasks }
    }

    /// `url` (a PostgreSQL URL on 127.0.0.1:5432) rewritten to go through the relay.
    fn url_for(&self, url: &str) -> String {
        let (head, db) = url.rsplit_once('/').unwrap();
        let (scheme_user, _) = head.rsplit_once('@').unwrap();
        format!("{scheme_user}@127.0.0.1:{}/{db}", self.port)
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_loss_fails_closed_and_recovers() {
    let Some(db) = PgDatabase::create("this test").await else {
        return;
    };
    let url = db.url.clone();
    let relay = Relay::start("127.0.0.1:5432").await;
    let relayed = relay.url_for(&url);
    let upstream_backend = Arc::new(Backend::default());
    let upstream = start_backend(upstream_backend.clone()).await;
    let inst = Instance::with_config(&format!("database_url = \"{relayed}\"\npublic_url = \"https://zorg.example.nl\"\nupstream = \"{upstream}\"\n"));
    inst.ok(&["init"]);
    let server = inst.serve();
    let http = reqwest::Client::new();

    let requester = Instance::new();
    let requester_did = requester.ok(&["init"]).trim().to_owned();
    let cred: Value = http
        .post(server.internal_url("/internal/credentials"))
        .json(&json!({"subject_did": requester_did, "bsn": BSN1, "purpose": "zorginzage-thuiszorgdossier-door-huisarts", "consent": "explicit"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cred_file = requester.path("cred.json");
    std::fs::write(&cred_file, cred.to_string()).unwrap();
    let custodian: Value = serde_json::from_str(&inst.ok(&["did", "show"])).unwrap();
    let endpoint = server.public_url("/n2n/auth/v1/accesstoken");
    let token_request = |json: bool| {
        let mut args = vec![
            "token",
            "request",
            "--endpoint",
            &endpoint,
            "--audience",
            "https://zorg.example.nl/n2n/auth/v1/accesstoken",
            "--custodian",
            custodian["id"].as_str().unwrap(),
            "--purpose",
            "zorginzage-thuiszorgdossier-door-huisarts",
            "--credential",
            cred_file.to_str().unwrap(),
            "--uzi",
            "900012345",
            "--name",
            "Dr. A. Huisarts",
            "--role",
            "01.015",
        ];
        if json {
            args.push("--json");
        }
        requester.run(&args)
    };
    let (code, out, _) = tokio::task::block_in_place(|| token_request(true));
    assert_eq!(code, 0, "{out}");
    let token = serde_json::from_str::<Value>(&out).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let search = format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}")));
    let proxied = async || {
        http.post(server.public_url("/Patient/_search"))
            .bearer_auth(&token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(search.clone())
            .send()
            .await
            .unwrap()
            .status()
    };
    let status = |path: &'static str| {
        let http = http.clone();
        let url = server.internal_url(path);
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(proxied().await, StatusCode::OK);
    assert_eq!(status("/ready").await, StatusCode::OK);

    relay.cut();
    assert!(
        within(Duration::from_secs(10), async || status("/ready").await
            == StatusCode::SERVICE_UNAVAILABLE)
        .await
        .is_some(),
        "/ready must turn 503"
    );
    assert_eq!(status("/health").await, StatusCode::OK, "/health stays 200");
    assert_eq!(
        proxied().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "no audit, no answer"
    );
    // That failed commit closed the gate: the next request does not reach the source system.
    let forwarded = upstream_backend.seen.lock().unwrap().len();
    assert_eq!(proxied().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        upstream_backend.seen.lock().unwrap().len(),
        forwarded,
        "nothing is forwarded while the audit log cannot be written"
    );
    let (code, out, _) = tokio::task::block_in_place(|| token_request(true));
    assert_eq!(code, 1);
    let refusal: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (refusal["status"].as_u64(), refusal["error"].as_str()),
        (Some(503), Some("temporarily_unavailable"))
    );

    relay.restore();
    assert!(
        within(Duration::from_secs(10), async || status("/ready").await
            == StatusCode::OK)
        .await
        .is_some(),
        "/ready recovers"
    );
    assert!(
        within(Duration::from_secs(10), async || proxied().await
            == StatusCode::OK)
        .await
        .is_some(),
        "the proxy recovers"
    );
    let (code, _, err) = tokio::task::block_in_place(|| token_request(false));
    assert_eq!(code, 0, "{err}");
    let out = inst.ok(&["audit", "verify"]);
    assert!(out.starts_with("audit log intact"), "{out}");

    drop(server);
}

#[test]
fn an_unusable_database_url_stops_startup_with_a_clear_error() {
    let inst = Instance::new();
    inst.ok(&["init"]);
    for (url, expected) in [
        (
            "postgres://postgres@127.0.0.1:5432/pw_no_such_database",
            "database \"pw_no_such_database\" does not exist",
        ),
        (
            "postgres://postgres@127.0.0.1:1/test",
            "database unavailable",
        ),
        ("sqlite:///nonexistent-dir/x.db", "database unavailable"),
    ] {
        let (code, _, err) = inst.run(&["--database-url", url, "credential", "list"]);
        assert_eq!(code, 1, "{url}");
        assert!(
            err.starts_with("error: opening the database: ") && err.contains(expected),
            "{url}: {err}"
        );
    }
}

/// The revocation listener of B loses its connection (the relay is cut) and comes back: a
/// revocation made on A afterwards still reaches B within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listen_connection_is_reestablished() {
    let Some(db) = PgDatabase::create("this test").await else {
        return;
    };
    let url = db.url.clone();
    let relay = Relay::start("127.0.0.1:5432").await;
    let relayed = relay.url_for(&url);
    let a = Instance::with_config(&format!("database_url = \"{url}\"\n"));
    a.ok(&["init"]);
    let b = Instance::with_config(&format!("database_url = \"{relayed}\"\n"));
    b.share_identity_with(&a);
    let (sa, sb) = (a.serve(), b.serve());
    let http = reqwest::Client::new();
    let credential: Value = http
        .post(sa.internal_url("/internal/credentials"))
        .json(&json!({"subject_did": "did:web:huisarts.example.nl", "bsn": BSN1, "purpose": "zorginzage-thuiszorgdossier-door-huisarts", "consent": "explicit"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verify = || {
        http.post(sb.internal_url("/internal/credentials/verify"))
            .json(&credential)
            .send()
    };
    assert_eq!(verify().await.unwrap().status(), StatusCode::OK);

    relay.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    relay.restore();
    assert!(within(Duration::from_secs(10), async || http
        .get(sb.internal_url("/ready"))
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK)
    .await
    .is_some());

    let id = credential["id"].as_str().unwrap();
    let r = http
        .post(sa.internal_url(&format!("/internal/credentials/{}/revoke", enc(id))))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen = within(Duration::from_secs(1), async || {
        verify().await.unwrap().status() == StatusCode::UNPROCESSABLE_ENTITY
    })
    .await;
    assert!(
        seen.is_some(),
        "revocation did not reach B after its listen connection was lost"
    );
    drop((sa, sb));
}

/// A wrong password in the database URL stops start-up with PostgreSQL's own reason. Needs the
/// role `pw_password_test`, which must log in with a password (`.ci/run` adds it and its
/// `scram-sha-256` line in pg_hba.conf); elsewhere the test says it is skipped.
#[test]
fn a_wrong_password_stops_startup_with_a_clear_error() {
    let inst = Instance::new();
    inst.ok(&["init"]);
    let url = "postgres://pw_password_test:wrong-password@127.0.0.1:5432/test";
    for args in [
        vec!["--database-url", url, "credential", "list"],
        vec!["--database-url", url, "serve"],
    ] {
        let (code, _, err) = inst.run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        if err.contains("role \"pw_password_test\" does not exist") {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide the role pw_password_test (see .ci/run)"
            );
            eprintln!("SKIPPED: no PostgreSQL role pw_password_test with password login; wrong-password test not run");
            return;
        }
        assert!(
            err.contains("password authentication failed for user \"pw_password_test\""),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("wrong-password"),
            "the password is not echoed: {err}"
        );
    }
}
