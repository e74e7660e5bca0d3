//! Test fixtures: temporary instances, the binary, the shared reference data, a fresh PostgreSQL
//! database, and the token endpoint's custodian and requester ([`setup`]).

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::proof;
use poortwachter::keys::SigningKey;
use poortwachter::{did, jose};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// The nuts-node reference data beside the repository, or `None` (with a visible message) in a
/// clone without `../shared`.
pub fn shared_testsuite() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/nuts-node-testsuite");
    if dir.join("authcred_001.ldjson").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (a clone without ../shared); nuts-node interop not checked",
            dir.display()
        );
        None
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary instance: data dir, policies (the shipped ones), a config file.
pub struct Instance {
    pub dir: tempfile::TempDir,
}

impl Instance {
    pub fn new() -> Self {
        Self::with_config("")
    }

    /// `extra` is appended to the generated config.toml.
    pub fn with_config(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "data_dir = \"{}\"\npolicies_dir = \"{}\"\npublic_addr = \"127.0.0.1:0\"\ninternal_addr = \"127.0.0.1:0\"\nrevocation_poll_ms = 100\n{extra}\n",
            dir.path().join("data").display(),
            repo().join("policies").display(),
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        Instance { dir }
    }

    /// Replaces `from` with `to` in this instance's config.toml.
    pub fn edit_config(&self, from: &str, to: &str) {
        let cfg = self.path("config.toml");
        let text = std::fs::read_to_string(&cfg)
            .expect("config")
            .replace(from, to);
        std::fs::write(&cfg, text).expect("write config");
    }

    /// Makes this instance a replica of `other`: the same data dir (key and DID).
    pub fn share_identity_with(&self, other: &Instance) {
        self.edit_config(
            &self.data_dir().display().to_string(),
            &other.data_dir().display().to_string(),
        );
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_poortwachter"));
        c.arg("--config").arg(self.dir.path().join("config.toml"));
        c.env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("POORTWACHTER_") {
                c.env_remove(k);
            }
        }
        c
    }

    /// Runs the binary with `args` and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out: Output = self
            .command()
            .args(args)
            .output()
            .expect("run poortwachter");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code, 0,
            "poortwachter {args:?} failed:\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Issues a huisarts credential and returns (id, credential JSON text).
    pub fn issue(
        &self,
        subject: &str,
        bsn: &str,
        consent: &str,
        expires: Option<&str>,
    ) -> (String, String) {
        let mut args = vec![
            "credential",
            "issue",
            "--subject-did",
            subject,
            "--bsn",
            bsn,
            "--purpose",
            "zorginzage-thuiszorgdossier-door-huisarts",
            "--consent",
            consent,
        ];
        if let Some(e) = expires {
            args.extend(["--expires", e]);
        }
        let out = self.ok(&args);
        let v: serde_json::Value = serde_json::from_str(&out).expect("credential JSON");
        (v["id"].as_str().expect("id").to_owned(), out)
    }

    /// Starts `serve` and waits until it listens.
    pub fn serve(&self) -> Server {
        let mut child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        let reader = std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().expect("log").push(line.clone());
                if !sent {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if v["message"] == "listening" {
                            let _ = tx.send(Ok((
                                v["public_addr"].as_str().unwrap_or_default().to_owned(),
                                v["internal_addr"].as_str().unwrap_or_default().to_owned(),
                            )));
                            sent = true;
                            continue;
                        }
                    }
                    if line.starts_with("error") {
                        let _ = tx.send(Err(line.clone()));
                    }
                }
                eprintln!("[serve] {line}");
            }
        });
        let (public, internal) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(a)) => a,
            Ok(Err(line)) => panic!("serve failed to start: {line}"),
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start within 30 s")
            }
        };
        Server {
            child,
            public: public.parse().expect("public addr"),
            internal: internal.parse().expect("internal addr"),
            log,
            reader: Some(reader),
        }
    }
}

pub struct Server {
    pub child: Child,
    pub public: SocketAddr,
    pub internal: SocketAddr,
    /// Every line the server wrote to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// SIGTERM, then waits (at most 30 s) for the exit; returns the exit code and every log line.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let start = Instant::now();
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no exit 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("log reader");
        }
        let log = self.log.lock().expect("log").clone();
        (code, log)
    }

    /// How many lines the server logged so far: a mark for [`Server::log_after`].
    pub fn log_mark(&self) -> usize {
        self.log.lock().expect("log").len()
    }

    /// Waits (at most `limit`, looking every few ms) for a JSON log line after the first `mark`
    /// lines whose `message` starts with `message`; returns it, or `None` when none came.
    pub async fn log_after(&self, mark: usize, message: &str, limit: Duration) -> Option<Value> {
        let start = Instant::now();
        loop {
            let found = self.log.lock().expect("log")[mark..]
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| {
                    v["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with(message))
                });
            if found.is_some() || start.elapsed() > limit {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn internal_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.internal)
    }
    pub fn public_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns true or `limit` passes; returns the time it took.
pub async fn within(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Percent-encodes a credential id for use in a URL path.
pub fn enc(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

pub use poortwachter::store::testing::PgDatabase;

/// The purposeOfUse of [`setup`]'s credential (the shipped huisarts policy).
pub const PURPOSE: &str = "zorginzage-thuiszorgdossier-door-huisarts";
/// [`setup`]'s custodian's `public_url`.
pub const PUBLIC_URL: &str = "https://zorg.example.nl";
/// The token endpoint under [`PUBLIC_URL`]: the `aud` of every grant.
pub const AUD: &str = "https://zorg.example.nl/n2n/auth/v1/accesstoken";

fn did_of(inst: &Instance) -> String {
    let doc: Value = serde_json::from_str(&inst.ok(&["did", "show"])).unwrap();
    doc["id"].as_str().unwrap().to_owned()
}

/// A custodian (serving) and a requester (a data dir with its own did:key).
pub struct Setup {
    pub custodian: Instance,
    pub custodian_did: String,
    pub requester: Instance,
    pub requester_did: String,
    pub requester_key: SigningKey,
    pub requester_kid: String,
    pub server: Server,
    pub credential: Value,
    pub credential_file: std::path::PathBuf,
}

/// The shipped huisarts policy and `zorginzage-test`, the same without a required user identity.
fn policies_with_second_purpose(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("policies");
    std::fs::create_dir_all(&p).unwrap();
    let huisarts =
        std::fs::read_to_string(repo().join("policies").join(format!("{PURPOSE}.toml"))).unwrap();
    std::fs::write(p.join(format!("{PURPOSE}.toml")), &huisarts).unwrap();
    std::fs::write(
        p.join("zorginzage-test.toml"),
        huisarts.replace(
            "require_user_identity = true",
            "require_user_identity = false",
        ),
    )
    .unwrap();
    p
}

/// A custodian serving with `extra_config` added to its config (policies: see
/// [`policies_with_second_purpose`]), and a requester with its own did:key that holds the
/// custodian's huisarts credential for BSN 999999990 (also written to `cred.json`).
pub fn setup(extra_config: &str) -> Setup {
    setup_with_policies(extra_config, |_| {})
}

/// [`setup`], with `edit` run on the custodian's policies dir before it starts serving.
pub fn setup_with_policies(extra_config: &str, edit: impl FnOnce(&Path)) -> Setup {
    let custodian =
        Instance::with_config(&format!("public_url = \"{PUBLIC_URL}\"\n{extra_config}"));
    let policies = policies_with_second_purpose(custodian.dir.path());
    edit(&policies);
    // The generated config names the shipped policies dir; point it at ours.
    custodian.edit_config(
        &repo().join("policies").display().to_string(),
        &policies.display().to_string(),
    );
    custodian.ok(&["init"]);
    let custodian_did = did_of(&custodian);
    let requester = Instance::new();
    requester.ok(&["init"]);
    let requester_did = did_of(&requester);
    let requester_key =
        SigningKey::load(&requester.data_dir().join("keys/signing-key.pem")).unwrap();
    let requester_kid = did::key::verification_method_id(&requester_did);
    let (_, text) = custodian.issue(&requester_did, "999999990", "implied", Some("2031-06-30"));
    let credential: Value = serde_json::from_str(&text).unwrap();
    let credential_file = requester.path("cred.json");
    std::fs::write(&credential_file, &text).unwrap();
    let server = custodian.serve();
    Setup {
        custodian,
        custodian_did,
        requester,
        requester_did,
        requester_key,
        requester_kid,
        server,
        credential,
        credential_file,
    }
}

impl Setup {
    /// Valid grant claims (a fresh `jti`, 5 s lifetime, a user identity).
    pub fn claims(&self) -> Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": self.requester_did, "sub": self.custodian_did, "aud": AUD,
            "purposeOfUse": PURPOSE, "vcs": [self.credential],
            "usi": {"uzi": "900012345", "name": "Dr. A. Huisarts", "role": "01.015", "initials": "A.", "family_name": "Huisarts"},
            "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 5,
        })
    }

    /// `claims` signed by the requester.
    pub fn grant(&self, claims: &Value) -> String {
        jose::sign(claims, &self.requester_key, &self.requester_kid).unwrap()
    }

    /// The token endpoint on the running custodian.
    pub fn endpoint(&self) -> String {
        self.server.public_url("/n2n/auth/v1/accesstoken")
    }

    /// Posts a JWT-bearer grant; the status and the JSON answer.
    pub async fn post_grant(&self, assertion: &str) -> (StatusCode, Value) {
        let r = reqwest::Client::new()
            .post(self.endpoint())
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The introspection answer for `token`.
    pub async fn introspect(&self, token: &str) -> Value {
        reqwest::Client::new()
            .post(
                self.server
                    .internal_url("/internal/auth/v1/accesstoken/introspect"),
            )
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The status of the internal verify endpoint for `token`.
    pub async fn verify_status(&self, token: &str) -> StatusCode {
        reqwest::Client::new()
            .head(
                self.server
                    .internal_url("/internal/auth/v1/accesstoken/verify"),
            )
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A credential signed with the custodian's own key, changed by `edit` (not stored).
    pub fn custodian_signed(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let key =
            SigningKey::load(&self.custodian.data_dir().join("keys/signing-key.pem")).unwrap();
        let mut c = self.credential.as_object().unwrap().clone();
        c.remove("proof");
        c["id"] = json!(format!("{}#{}", self.custodian_did, uuid::Uuid::new_v4()));
        edit(&mut c);
        let vm = did::key::verification_method_id(&self.custodian_did);
        proof::sign(
            &Contexts::embedded(),
            c,
            &key,
            &vm,
            OffsetDateTime::now_utc(),
        )
        .unwrap()
    }

    /// Tokens in the custodian's store.
    pub fn token_count(&self) -> i64 {
        let url = format!(
            "sqlite://{}?mode=rw",
            self.custodian.data_dir().join("poortwachter.db").display()
        );
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let store = poortwachter::store::Store::open(&url).await.unwrap();
                let n = store.token_count().await.unwrap();
                store.close().await;
                n
            })
        })
    }
}

/// A running `hub serve`.
pub struct HubServer {
    pub child: Child,
    pub addr: SocketAddr,
}

impl HubServer {
    pub fn start(instance: &Instance, extra: &[&str]) -> Self {
        let mut child = instance
            .command()
            .args(["hub", "serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hub serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("hub listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                eprintln!("[hub] {line}");
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("hub serve did not start")
            .parse()
            .expect("hub addr");
        HubServer { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
