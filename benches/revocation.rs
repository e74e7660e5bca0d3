//! Revocation propagation between replicas (not a test): `cargo bench --bench revocation`.
//!
//! Creates a fresh PostgreSQL database (`POORTWACHTER_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/test`, is the admin connection), starts two real
//! `poortwachter serve` replicas A and B on it (one identity), and `ROUNDS` times: issues a
//! credential on A, verifies it on B (200), revokes it on A, and polls B's verify endpoint (which
//! reads B's in-memory revocation set) until it says revoked. Reported: the time from A's revoke
//! answer to B's first "revoked" answer (p50, p99, max), against the reference measured in the
//! same run: one verify round trip on B (the resolution of the measurement), and the fallback
//! poll interval (`revocation_poll_ms`, 1000 here so the poll cannot be what makes it fast).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection as _;

const ROUNDS: usize = 200;

fn start(config: &std::path::Path) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "warn,poortwachter=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "listening" {
                    let _ = tx.send((
                        v["public_addr"].as_str().unwrap_or_default().to_owned(),
                        v["internal_addr"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    });
    let (public, internal) = rx.recv_timeout(Duration::from_secs(30)).expect("started");
    (child, public, internal)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    sqlx::any::install_default_drivers();
    let admin = std::env::var("POORTWACHTER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("pw_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("PostgreSQL (POORTWACHTER_TEST_PG)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = format!("{}/{name}", admin.rsplit_once('/').expect("url").0);

    let dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\npolicies_dir = \"{root}/policies\"\ndatabase_url = \"{url}\"\npublic_addr = \"127.0.0.1:0\"\ninternal_addr = \"127.0.0.1:0\"\nrevocation_poll_ms = 1000\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let (mut a, _, a_internal) = start(&config);
    let (mut b, _, b_internal) = start(&config);
    let http = reqwest::Client::new();

    let mut lags = Vec::with_capacity(ROUNDS);
    let mut round_trips = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let credential: Value = http
            .post(format!("http://{a_internal}/internal/credentials"))
            .json(&json!({"subject_did": format!("did:web:huisarts{i}.example.nl"), "bsn": "999999990",
                "purpose": "zorginzage-thuiszorgdossier-door-huisarts", "consent": "explicit"}))
            .send()
            .await
            .expect("issue")
            .json()
            .await
            .expect("credential");
        let id = credential["id"].as_str().expect("id").to_owned();
        let verify = || {
            http.post(format!(
                "http://{b_internal}/internal/credentials/verify?proof_only=false"
            ))
            .json(&credential)
            .send()
        };
        let t = Instant::now();
        let status = verify().await.expect("verify").status();
        round_trips.push(t.elapsed());
        assert_eq!(status, 200, "valid on B before the revocation");
        let revoked = http
            .post(format!(
                "http://{a_internal}/internal/credentials/{}/revoke",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            ))
            .json(&json!({"reason": "bench"}))
            .send()
            .await
            .expect("revoke");
        assert!(revoked.status().is_success());
        let t = Instant::now();
        loop {
            if verify().await.expect("verify").status() == 422 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "not propagated in 5 s"
            );
        }
        lags.push(t.elapsed());
    }
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop database");

    lags.sort();
    round_trips.sort();
    println!(
        "revocation A -> B on PostgreSQL (LISTEN/NOTIFY, poll fallback 1000 ms), {ROUNDS} rounds"
    );
    println!("{:<44}{:>12}{:>12}{:>12}", "", "p50", "p99", "max");
    println!(
        "{:<44}{:>12}{:>12}{:>12}",
        "revoke on A answered -> B refuses",
        ms(percentile(&lags, 0.5)),
        ms(percentile(&lags, 0.99)),
        ms(*lags.last().expect("rounds"))
    );
    println!(
        "{:<44}{:>12}{:>12}{:>12}",
        "reference: one verify round trip on B",
        ms(percentile(&round_trips, 0.5)),
        ms(percentile(&round_trips, 0.99)),
        ms(*round_trips.last().expect("rounds"))
    );
    println!(
        "p99 propagation = {:.1} verify round trips; target p99 <= 1 s (ideally <= 100 ms)",
        percentile(&lags, 0.99).as_secs_f64() / percentile(&round_trips, 0.99).as_secs_f64()
    );
}
