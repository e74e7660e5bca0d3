//! Token endpoint benchmark (not a test): `cargo bench --bench token`.
//!
//! Starts the real `poortwachter serve` (release build) on 127.0.0.1 with a throw-away data dir,
//! and, in the same run on the same 2 cores, a reference: a bare axum/hyper endpoint answering a
//! fixed JSON. The client (this process) keeps `CONCURRENCY` requests in flight over keep-alive
//! connections. Grants are signed before each timed phase (their 5 s lifetime allows that).
//!
//! `POORTWACHTER_BENCH_PIN=1 taskset -c 1 cargo bench --bench token` puts the server on core 0
//! and the client on core 1.
//!
//! `POORTWACHTER_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/<fresh db>` runs the
//! custodian on PostgreSQL instead of SQLite.
//!
//! Reported: warm issuance (credential already verified), cold issuance (each grant presents a
//! credential the server has not seen), introspection, the reference, their ratios, and the
//! latency percentiles of issuance at 50% of the measured warm maximum (open loop).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use poortwachter::did;
use poortwachter::keys::SigningKey;
use serde_json::{json, Value};

const CONCURRENCY: usize = 32;
const PURPOSE: &str = "zorginzage-thuiszorgdossier-door-huisarts";
const AUD: &str = "https://zorg.example.nl/n2n/auth/v1/accesstoken";

/// The server, stopped when the bench ends, also when it panics.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Instance {
    dir: tempfile::TempDir,
}

impl Instance {
    fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = env!("CARGO_MANIFEST_DIR");
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "data_dir = \"{}\"\npolicies_dir = \"{root}/policies\"\npublic_addr = \"127.0.0.1:0\"\ninternal_addr = \"127.0.0.1:0\"\npublic_url = \"https://zorg.example.nl\"\nlog_format = \"json\"\n{extra}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        Self { dir }
    }
    fn cmd(&self) -> Command {
        // POORTWACHTER_BENCH_BIN=path runs another build of the server (an A/B comparison).
        let bin = std::env::var_os("POORTWACHTER_BENCH_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_poortwachter").into());
        let mut c = Command::new(bin);
        c.arg("--config").arg(self.dir.path().join("config.toml"));
        c
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }
}

async fn closed_loop<F, Fut>(n: usize, f: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return lat;
                }
                let t = Instant::now();
                assert!(f(i).await, "request {i} failed");
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    (n as f64 / start.elapsed().as_secs_f64(), all)
}

/// Sends one request per item at `rate` per second, without waiting for answers; latencies.
async fn open_loop<T, F, Fut>(rate: f64, items: Vec<T>, f: F) -> Vec<Duration>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let f = Arc::new(f);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            assert!(f(item).await);
            t.elapsed()
        }));
    }
    let mut lat = Vec::with_capacity(handles.len());
    for h in handles {
        lat.push(h.await.expect("task"));
    }
    lat
}

fn pct(lat: &mut [Duration], p: f64) -> f64 {
    lat.sort();
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1e3
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(run());
}

async fn run() {
    // Reference: a bare hyper endpoint (axum) answering a fixed JSON.
    let reference = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ref_addr = reference.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            (
                [("content-type", "application/json")],
                r#"{"access_token":"x","token_type":"Bearer","expires_in":300}"#,
            )
        }),
    );
    tokio::spawn(async move { axum::serve(reference, app).await.expect("serve") });

    // POORTWACHTER_BENCH_DATABASE_URL=postgres://... runs the custodian on PostgreSQL (give it a
    // fresh database).
    let database = std::env::var("POORTWACHTER_BENCH_DATABASE_URL")
        .map(|u| format!("database_url = \"{u}\"\n"))
        .unwrap_or_default();
    if !database.is_empty() {
        println!("custodian store: {}", database.trim());
    }
    // POORTWACHTER_BENCH_WORKERS=N sets the server's `http_workers`.
    let workers = std::env::var("POORTWACHTER_BENCH_WORKERS")
        .map(|n| format!("http_workers = {n}\n"))
        .unwrap_or_default();
    // POORTWACHTER_BENCH_WAL_MIB=N sets `sqlite_wal_max_mib`.
    let wal = std::env::var("POORTWACHTER_BENCH_WAL_MIB")
        .map(|n| format!("sqlite_wal_max_mib = {n}\n"))
        .unwrap_or_default();
    let custodian = Instance::new(&format!(
        "rate_limit_per_second = 1000000\nrate_limit_burst = 1000000\n{database}{workers}{wal}"
    ));
    custodian.ok(&["init"]);
    let custodian_did = serde_json::from_str::<Value>(&custodian.ok(&["did", "show"]))
        .expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let requester = Instance::new("");
    requester.ok(&["init"]);
    let requester_key = Arc::new(
        SigningKey::load(&requester.dir.path().join("data/keys/signing-key.pem")).expect("key"),
    );
    let requester_did = did::key::did_for(&requester_key.public_key());
    let kid = did::key::verification_method_id(&requester_did);

    // POORTWACHTER_BENCH_PIN=1 (run the bench itself with `taskset -c 1`): the server gets core 0
    // to itself, so the client does not steal its CPU.
    let mut serve = custodian.cmd();
    if std::env::var_os("POORTWACHTER_BENCH_PIN").is_some() {
        let program = serve.get_program().to_owned();
        let args: Vec<_> = serve.get_args().map(ToOwned::to_owned).collect();
        serve = Command::new("taskset");
        serve.arg("-c").arg("0").arg(program).args(args);
    }
    let mut child = KillOnDrop(
        serve
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve"),
    );
    let server_pid = child.0.id();
    let stderr = child.0.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let (public, internal) = loop {
        let line = lines.next().expect("serve exited").expect("line");
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["message"] == "listening" {
            break (
                v["public_addr"].as_str().expect("p").to_owned(),
                v["internal_addr"].as_str().expect("i").to_owned(),
            );
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");

    // Credentials: one for the warm phase, many for the cold phase.
    let issue = |client: reqwest::Client, internal: String, requester_did: String| async move {
        let r = client
            .post(format!("http://{internal}/internal/credentials"))
            .json(&json!({"subject_did": requester_did, "bsn": "999999990", "purpose": PURPOSE, "consent": "explicit"}))
            .send()
            .await
            .expect("issue");
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.expect("credential")
    };
    let warm_credential = issue(client.clone(), internal.clone(), requester_did.clone()).await;
    const COLD: usize = 1500;
    let mut cold_credentials = Vec::with_capacity(COLD);
    for _ in 0..COLD {
        cold_credentials.push(issue(client.clone(), internal.clone(), requester_did.clone()).await);
    }

    let grant = {
        let (key, kid, iss, sub) = (
            requester_key.clone(),
            kid.clone(),
            requester_did.clone(),
            custodian_did.clone(),
        );
        move |vc: &Value| {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let claims = json!({"iss": iss, "sub": sub, "aud": AUD, "purposeOfUse": PURPOSE, "vcs": [vc],
                "usi": {"uzi": "900012345", "name": "Dr. A. Huisarts", "role": "01.015"},
                "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 5});
            poortwachter::jose::sign(&claims, &key, &kid).expect("sign")
        }
    };
    let token_url = format!("http://{public}/n2n/auth/v1/accesstoken");
    let post_grant = |client: reqwest::Client, url: String, assertion: String| async move {
        let r = client
            .post(url)
            .form(&[
                ("grant_type", poortwachter::oauth::JWT_BEARER),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .expect("post");
        r.status() == 200
    };

    // Reference.
    let ref_url = format!("http://{ref_addr}/token");
    let (c, u) = (client.clone(), ref_url.clone());
    let (reference_rps, _) = closed_loop(20_000, move |_| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            c.post(u)
                .body("grant_type=x&assertion=y")
                .header("content-type", "application/x-www-form-urlencoded")
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;

    // Warm: the credential is verified once, then every grant hits the cache.
    assert!(post_grant(client.clone(), token_url.clone(), grant(&warm_credential)).await);
    const WARM: usize = 4000;
    let grants: Arc<Vec<String>> = Arc::new((0..WARM).map(|_| grant(&warm_credential)).collect());
    let (c, u, g) = (client.clone(), token_url.clone(), grants.clone());
    let (warm_rps, mut warm_lat) = closed_loop(WARM, move |i| {
        post_grant(c.clone(), u.clone(), g[i].clone())
    })
    .await;

    // Cold: every grant presents a credential the server has not verified yet.
    let grants: Arc<Vec<String>> = Arc::new(cold_credentials.iter().map(&grant).collect());
    let (c, u, g) = (client.clone(), token_url.clone(), grants.clone());
    let (cold_rps, mut cold_lat) = closed_loop(COLD, move |i| {
        post_grant(c.clone(), u.clone(), g[i].clone())
    })
    .await;

    // Introspection of one live token.
    let r = client
        .post(&token_url)
        .form(&[
            ("grant_type", poortwachter::oauth::JWT_BEARER),
            ("assertion", grant(&warm_credential).as_str()),
        ])
        .send()
        .await
        .expect("token");
    let token = r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let introspect_url = format!("http://{internal}/internal/auth/v1/accesstoken/introspect");
    let (c, u, t) = (client.clone(), introspect_url.clone(), token.clone());
    let (introspect_rps, _) = closed_loop(30_000, move |_| {
        let (c, u, t) = (c.clone(), u.clone(), t.clone());
        async move {
            c.post(u)
                .form(&[("token", t.as_str())])
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;

    // Open loop at 50% of the warm maximum for ~4 s: latency percentiles; the reference at the
    // same rate shows what the client and the machine add by themselves.
    // POORTWACHTER_BENCH_HALF_ROUNDS=N repeats the 4 s (a grant lives 5 s, so each round signs
    // its own, in a pause between rounds) and pools the latencies: a steadier p99.
    let rate = (warm_rps * 0.5).max(1.0);
    let n = (rate * 4.0) as usize;
    let rounds = std::env::var("POORTWACHTER_BENCH_HALF_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let metrics_url = format!("http://{internal}/metrics");
    let before = token_histogram(&client, &metrics_url).await;
    let mut cpu = Some(CpuSample::default());
    let mut half_lat = Vec::with_capacity(n * rounds);
    for _ in 0..rounds {
        let grants: Vec<String> = (0..n).map(|_| grant(&warm_credential)).collect();
        let (c, u) = (client.clone(), token_url.clone());
        // CPU counted while the requests run, not while this bench signs the next round's grants.
        let cpu_before = CpuSample::take(server_pid);
        half_lat
            .extend(open_loop(rate, grants, move |g| post_grant(c.clone(), u.clone(), g)).await);
        cpu = cpu
            .zip(CpuSample::take(server_pid).zip(cpu_before))
            .map(|(sum, (after, before))| sum.plus(&after, &before));
    }
    let cpu = cpu.map(|c| c.usage());
    let after = token_histogram(&client, &metrics_url).await;
    let server_side = server_percentile(&before, &after, 0.99);
    // POORTWACHTER_BENCH_SLOW=1: when the slow answers (over 5 ms) were sent, per 100 ms, to tell
    // periodic stalls (checkpoints, timers) from scattered ones.
    if std::env::var_os("POORTWACHTER_BENCH_SLOW").is_some() {
        let mut windows = std::collections::BTreeMap::<u64, (usize, f64)>::new();
        for (i, l) in half_lat.iter().enumerate() {
            if l.as_secs_f64() > 0.005 {
                let w = windows.entry((i as f64 / rate * 10.0) as u64).or_default();
                w.0 += 1;
                w.1 = w.1.max(l.as_secs_f64() * 1e3);
            }
        }
        for (w, (count, max)) in windows {
            println!(
                "  slow answers sent at {:>5} ms: {count:>4}, worst {max:.1} ms",
                w * 100
            );
        }
    }
    let (c, u) = (client.clone(), ref_url.clone());
    let mut ref_half_lat = open_loop(rate, vec![String::new(); n], move |_| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            c.post(u)
                .body("grant_type=x&assertion=y")
                .header("content-type", "application/x-www-form-urlencoded")
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
    drop(child);

    println!("concurrency {CONCURRENCY}, 2 cores shared by client and server");
    println!("reference (bare hyper, fixed JSON)   {reference_rps:>9.0} req/s");
    println!("token issuance, warm                 {warm_rps:>9.0} tokens/s  p50 {:.2} ms  p99 {:.2} ms   ratio to reference {:.3}", pct(&mut warm_lat, 0.5), pct(&mut warm_lat, 0.99), warm_rps / reference_rps);
    println!("token issuance, cold (new credential){cold_rps:>9.0} tokens/s  p50 {:.2} ms  p99 {:.2} ms   ratio to reference {:.3}", pct(&mut cold_lat, 0.5), pct(&mut cold_lat, 0.99), cold_rps / reference_rps);
    println!("introspection                        {introspect_rps:>9.0} req/s     ratio to reference {:.3}", introspect_rps / reference_rps);
    println!(
        "issuance at 50% of warm max ({rate:.0}/s, open loop): p50 {:.2} ms  p99 {:.2} ms   reference at the same rate: p50 {:.2} ms  p99 {:.2} ms",
        pct(&mut half_lat, 0.5),
        pct(&mut half_lat, 0.99),
        pct(&mut ref_half_lat, 0.5),
        pct(&mut ref_half_lat, 0.99)
    );
    println!("  the same requests measured inside the server (handler start to answer): p99 {server_side}");
    if let Some(cpu) = cpu {
        println!("  {cpu}");
    }
}

/// CPU time (Linux `/proc`, in clock ticks) of the whole machine, the server and this bench,
/// during the half-load phase: how busy "half load" leaves the machine, and who uses it.
#[derive(Default)]
struct CpuSample {
    /// The machine's CPUs (all of them, whatever this process's affinity).
    cores: u64,
    busy: u64,
    /// Ticks the hypervisor gave to other guests while ours wanted to run (in `busy` too).
    steal: u64,
    total: u64,
    server: u64,
    bench: u64,
}

impl CpuSample {
    fn take(server_pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3)? + fields.get(4)?;
        let process = |path: &str| -> Option<u64> {
            let s = std::fs::read_to_string(path).ok()?;
            let rest = s.get(s.rfind(')')? + 2..)?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        };
        let cores = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count() as u64;
        Some(Self {
            cores,
            busy: total - idle,
            steal: *fields.get(7)?,
            total,
            server: process(&format!("/proc/{server_pid}/stat"))?,
            bench: process("/proc/self/stat")?,
        })
    }

    /// `self` plus what was used between `before` and `after`.
    fn plus(self, after: &Self, before: &Self) -> Self {
        Self {
            cores: after.cores,
            busy: self.busy + after.busy - before.busy,
            steal: self.steal + after.steal - before.steal,
            total: self.total + after.total - before.total,
            server: self.server + after.server - before.server,
            bench: self.bench + after.bench - before.bench,
        }
    }

    /// The summed ticks as shares: of the machine, and in cores for the two processes.
    fn usage(&self) -> CpuUse {
        let cores = self.cores.max(1) as f64;
        let total = self.total.max(1) as f64;
        // `total` counts the ticks of all CPUs together: `total / cores` passed on each.
        let per_core = total / cores;
        CpuUse {
            busy: self.busy as f64 / total,
            steal: self.steal as f64 / total,
            server: self.server as f64 / per_core,
            bench: self.bench as f64 / per_core,
            cores,
        }
    }
}

struct CpuUse {
    busy: f64,
    steal: f64,
    server: f64,
    bench: f64,
    cores: f64,
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU during that phase: the machine's {:.0} cores {:.0}% busy (of which stolen by the hypervisor {:.1}%); the server used {:.2} cores, this bench (client) {:.2}",
            self.cores,
            self.busy * 100.0,
            self.steal * 100.0,
            self.server,
            self.bench
        )
    }
}

/// The server's token latency histogram: cumulative counts per bucket bound (seconds).
async fn token_histogram(client: &reqwest::Client, url: &str) -> Vec<(f64, u64)> {
    let text = client
        .get(url)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter_map(|l| l.strip_prefix("poortwachter_token_duration_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (bound, count) = l.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect()
}

/// The bucket bound under which fraction `p` of the requests between two scrapes fell.
fn server_percentile(before: &[(f64, u64)], after: &[(f64, u64)], p: f64) -> String {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .zip(before)
        .map(|(&(bound, a), &(_, b))| (bound, a - b))
        .collect();
    let total = delta.last().map_or(0, |d| d.1);
    #[allow(clippy::cast_precision_loss)]
    let need = (total as f64 * p).ceil() as u64;
    delta.iter().find(|d| d.1 >= need).map_or_else(
        || "unknown".into(),
        |d| format!("<= {:.1} ms ({total} requests)", d.0 * 1e3),
    )
}
