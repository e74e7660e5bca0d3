//! Hub API v3 benchmark (not a test): `cargo bench --bench hub [-- DOSSIERS]`.
//!
//! Generates DOSSIERS (default 1,000,000) dossiers with valid, distinct BSNs into a fresh SQLite
//! store (half of them shared with the searching account), starts the real `poortwachter hub
//! serve` (release build) on it, and measures from this process over keep-alive connections:
//!
//! - BSN search (`GET /v3/resources?client_bsn=...`, random BSNs, half of them visible):
//!   throughput at `CONCURRENCY` in flight, and latency percentiles at a fixed open-loop rate;
//! - registration (`POST /v3/register`, new dossiers) throughput at `CONCURRENCY` in flight;
//! - the reference, in the same run against the same server: `GET /health` (no auth, no store),
//!   the HTTP floor every request pays.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use poortwachter::hub::dossier::Dossier;
use poortwachter::hub::{add_account, AccountSpec};
use poortwachter::store::Store;

const CONCURRENCY: usize = 16;
const PHASE: Duration = Duration::from_secs(8);

/// The `i`-th valid BSN (11-check) from a counter (distinct for i < 40 million): prefixes
/// without a check digit move to another region of the number space.
fn bsn(i: u64) -> String {
    let mut p = 10_000_000 + i % 40_000_000;
    loop {
        let prefix = format!("{p:08}");
        let digits: Vec<u64> = prefix.bytes().map(|b| u64::from(b - b'0')).collect();
        let sum: u64 = digits.iter().zip((2..=9).rev()).map(|(d, w)| d * w).sum();
        let check = sum % 11;
        if check < 10 {
            return format!("{prefix}{check}");
        }
        p = if p < 50_000_000 {
            p + 45_000_000
        } else {
            p + 1
        };
    }
}

fn dossier(bsn: String, i: u64) -> Dossier {
    Dossier {
        client_bsn: poortwachter::bsn::Bsn::parse(&bsn).expect("a generated BSN"),
        client_displayname: format!("Client {i}"),
        client_birthdate: "19920314".into(),
        reference: format!("ZW-{i}"),
        gravida: i64::try_from(i % 5).unwrap_or(0) + 1,
        para: 0,
        edd: "20270402".into(),
        start_at: "20260910".into(),
        end_at: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Closed loop: `workers` in flight for `PHASE`; returns requests per second.
async fn throughput<F, Fut>(workers: usize, make: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let make = make.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut i = w as u64;
            while start.elapsed() < PHASE {
                assert!(make(i).await, "request failed");
                i += workers as u64;
                n += 1;
            }
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    counter.load(std::sync::atomic::Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Open loop at `rate` per second for `PHASE`: latency percentiles (p50, p99, max).
async fn latency<F, Fut>(rate: f64, make: F) -> (Duration, Duration, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let make = Arc::new(make);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < PHASE {
        let due = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            assert!(make(i).await, "request failed");
            // Measured from the scheduled start: a late send counts against us.
            t.duration_since(due) + t.elapsed()
        }));
        i += 1;
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await.expect("request"));
    }
    lat.sort();
    (
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        *lat.last().unwrap_or(&Duration::ZERO),
    )
}

fn main() {
    let count: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(count));
}

async fn run(count: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let db = format!(
        "sqlite://{}?mode=rwc",
        data.join("poortwachter.db").display()
    );
    let store = Store::open(&db).await.expect("store");
    let spec = |name: &str| AccountSpec {
        name: name.into(),
        display_name: name.to_uppercase(),
        source_api: "v3".into(),
        source_url: Some("https://a.example.nl/dossier/{reference}".into()),
        ..Default::default()
    };
    let a = add_account(&store, spec("provider-a"), 0).await.expect("a");
    let b = add_account(&store, spec("provider-b"), 0).await.expect("b");

    let started = Instant::now();
    let batch = 20_000u64;
    let mut i = 0;
    while i < count {
        let rows: Vec<(String, Dossier)> = (i..(i + batch).min(count))
            .map(|j| (format!("k{j:09}"), dossier(bsn(j), j)))
            .collect();
        // Even batches are shared with B, odd ones are not.
        let share = ((i / batch) % 2 == 0).then_some("provider-b");
        store
            .hub_import("provider-a", &rows, share, 1_700_000_000)
            .await
            .expect("import");
        i += batch;
    }
    let import = started.elapsed();
    store.close().await;
    println!(
        "generated {count} dossiers in {:.1} s ({:.0}/s), database {:.0} MB",
        import.as_secs_f64(),
        count as f64 / import.as_secs_f64(),
        std::fs::metadata(data.join("poortwachter.db"))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    );

    std::fs::write(
        dir.path().join("config.toml"),
        format!("data_dir = \"{}\"\nlog_format = \"json\"\n", data.display()),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .args(["hub", "serve", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hub serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("hub listening on ") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("hub did not start");
    let base = Arc::new(format!("http://{addr}"));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .expect("client");

    // Warm up: authenticate both accounts once (argon2), touch the index.
    let search = {
        let (http, base, b) = (
            http.clone(),
            base.clone(),
            (b.account.api_key.clone(), b.secret.clone()),
        );
        move |i: u64| {
            let (http, base, b) = (http.clone(), base.clone(), b.clone());
            async move {
                // Spread over the whole table; every other batch is shared with B.
                let j = (i.wrapping_mul(2_654_435_761)) % count;
                let r = http
                    .get(format!("{base}/v3/resources?client_bsn={}", bsn(j)))
                    .basic_auth(&b.0, Some(&b.1))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let body = r.text().await.unwrap_or_default();
                        let shared = (j / 20_000) % 2 == 0;
                        body.contains("<property name=\"key\">") == shared
                    }
                    _ => false,
                }
            }
        }
    };
    let health = {
        let (http, base) = (http.clone(), base.clone());
        move |_: u64| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                http.get(format!("{base}/health"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        }
    };
    let register = {
        let (http, base, a) = (
            http.clone(),
            base.clone(),
            (a.account.api_key.clone(), a.secret.clone()),
        );
        move |i: u64| {
            let (http, base, a) = (http.clone(), base.clone(), a.clone());
            async move {
                let d = dossier(bsn(count + 1_000 + i), i);
                let mut body = String::from("<resource type=\"perinatologie/dossier\">");
                for (name, value) in d.properties() {
                    body.push_str(&format!("<property name=\"{name}\">{value}</property>"));
                }
                body.push_str("</resource>");
                http.post(format!("{base}/v3/register"))
                    .basic_auth(&a.0, Some(&a.1))
                    .header("content-type", "application/xml")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        }
    };
    for i in 0..4 {
        assert!(search(i).await, "warm-up search");
        assert!(register(10_000_000 + i).await, "warm-up register");
    }

    let health_rps = throughput(CONCURRENCY, health.clone()).await;
    let search_rps = throughput(CONCURRENCY, search.clone()).await;
    let rate = (search_rps * 0.5).max(10.0);
    let (h50, h99, hmax) = latency(rate, health.clone()).await;
    let (s50, s99, smax) = latency(rate, search.clone()).await;
    // A steady, realistic load (the machine far from saturated), same for both.
    let (lh50, lh99, lhmax) = latency(500.0, health.clone()).await;
    let (ls50, ls99, lsmax) = latency(500.0, search.clone()).await;
    // Registrations last: they grow the table (and the WAL) the searches above ran on.
    let register_rps = throughput(CONCURRENCY, register.clone()).await;
    // Many providers registering at once: bigger group commits. Fresh BSNs for this phase.
    let register64 = {
        let register = register.clone();
        move |i: u64| register(20_000_000 + i)
    };
    let register64_rps = throughput(4 * CONCURRENCY, register64).await;

    let _ = child.kill();
    let _ = child.wait();
    println!(
        "\nHub API v3 on SQLite, {count} dossiers, {CONCURRENCY} in flight, {} s per phase",
        PHASE.as_secs()
    );
    println!("{:<34}{:>12}{:>14}", "", "req/s", "× reference");
    println!(
        "{:<34}{:>12.0}{:>14}",
        "reference GET /health", health_rps, "1.00"
    );
    println!(
        "{:<34}{:>12.0}{:>14.2}",
        "BSN search",
        search_rps,
        search_rps / health_rps
    );
    println!(
        "{:<34}{:>12.0}{:>14.2}",
        "register (new dossiers)",
        register_rps,
        register_rps / health_rps
    );
    println!(
        "{:<34}{:>12.0}{:>14.2}",
        format!("register, {} in flight", 4 * CONCURRENCY),
        register64_rps,
        register64_rps / health_rps
    );
    println!("\nopen loop at {rate:.0}/s (50% of the search maximum):");
    println!("{:<34}{:>10}{:>10}{:>10}", "", "p50", "p99", "max");
    let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1e3);
    println!(
        "{:<34}{:>10}{:>10}{:>10}",
        "reference GET /health",
        ms(h50),
        ms(h99),
        ms(hmax)
    );
    println!(
        "{:<34}{:>10}{:>10}{:>10}",
        "BSN search",
        ms(s50),
        ms(s99),
        ms(smax)
    );
    println!("\nopen loop at 500/s:");
    println!(
        "{:<34}{:>10}{:>10}{:>10}",
        "reference GET /health",
        ms(lh50),
        ms(lh99),
        ms(lhmax)
    );
    println!(
        "{:<34}{:>10}{:>10}{:>10}",
        "BSN search",
        ms(ls50),
        ms(ls99),
        ms(lsmax)
    );
    println!(
        "\ntargets: BSN search p99 <= 5 ms (at 500/s): {}; register >= 2000/s: {}",
        if ls99 <= Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        },
        if register_rps.max(register64_rps) >= 2000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
