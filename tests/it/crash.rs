//! Crash safety: `kill -9` of the server under load loses no audit record of an answered
//! request. The client keeps the request id (`X-Request-Id`) of every answer it received; after
//! the kill, every one of them must be in the audit log, and the chain must be intact.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::support::{within, Instance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_audit_record_of_an_answered_request() {
    let inst = Instance::new();
    inst.ok(&["init"]);
    let mut server = inst.serve();
    let answered: Arc<Mutex<HashSet<String>>> = Arc::default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, answered, url) = (
            http.clone(),
            answered.clone(),
            server.public_url("/Patient/pat-1"),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..10_000 {
                // Refused requests are audited like every other; that is what is counted here.
                match http.get(&url).bearer_auth("no-such-token").send().await {
                    Ok(r) => {
                        let id = r
                            .headers()
                            .get("x-request-id")
                            .map(|v| v.to_str().unwrap().to_owned());
                        if r.status() == reqwest::StatusCode::UNAUTHORIZED {
                            answered
                                .lock()
                                .unwrap()
                                .insert(id.expect("every answer carries its request id"));
                        }
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill once the load is well under way: many answers counted, 16 requests in flight.
    let loaded = within(Duration::from_secs(30), async || {
        answered.lock().unwrap().len() >= 1_000
    })
    .await;
    let Some(loaded) = loaded else {
        panic!("only {} answers in 30 s", answered.lock().unwrap().len())
    };
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() >= 1_000,
        "load reached the server: {}",
        answered.len()
    );

    let out = inst.ok(&["audit", "export"]);
    let audited: HashSet<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let lost: Vec<&String> = answered.difference(&audited).collect();
    assert!(
        lost.is_empty(),
        "{} answered requests have no audit record, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let verify = inst.ok(&["audit", "verify"]);
    assert!(verify.starts_with("audit log intact"), "{verify}");
    eprintln!(
        "{} answered before the kill ({loaded:?} of load), {} audit records",
        answered.len(),
        audited.len()
    );
}
