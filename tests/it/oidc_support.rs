//! A real OpenID provider for the tests: `tests/oidc/provider.mjs`, panva's `oidc-provider` from
//! the npm registry (pinned in `tests/oidc/package-lock.json`) run with the machine's Node.js on
//! 127.0.0.1, a port of its own choosing. Never an imitation: discovery, authorization code +
//! PKCE, the token endpoint and the RS256 ID tokens are the package's own.
//!
//! `OpenIdProvider::start` runs `npm ci` in `tests/oidc` once when its `node_modules` is
//! missing, starts the provider, reads its issuer from the line it prints, and stops it when the
//! value is dropped (and the provider stops by itself when this process dies: its standard input
//! closes). Without Node.js it skips visibly (`SKIPPED: ...` on stderr) and returns `None`; under
//! `CI` it fails instead (`.ci/run` installs what it needs).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::support::repo;

/// A confidential client of the provider.
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

/// A person who can sign in at the provider, with the claims the ID token carries.
pub struct OidcAccount {
    pub username: String,
    pub password: String,
    /// The `bsn` claim (scope `bsn`).
    pub bsn: String,
    /// The `name` claim (scope `profile`).
    pub name: String,
}

/// A running provider; stopped on drop.
pub struct OpenIdProvider {
    child: Child,
    /// Kept open: the provider stops when it closes (`exit_with_stdin`).
    _stdin: Option<ChildStdin>,
    /// `http://127.0.0.1:PORT`, as the provider calls itself.
    pub issuer: String,
    /// Every line the provider wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

fn oidc_dir() -> PathBuf {
    repo().join("tests/oidc")
}

/// Skips (returns false, `SKIPPED: ...` on stderr) outside CI, fails under CI.
fn unavailable(reason: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "the OpenID provider cannot run under CI: {reason} (Node.js comes with the machine; .ci/run installs the npm packages)"
    );
    eprintln!("SKIPPED: {reason}; the OpenID provider tests did not run");
    false
}

/// Node.js present and `tests/oidc/node_modules` installed (by `npm ci`, once per test run).
fn node_ready() -> bool {
    static READY: Mutex<Option<bool>> = Mutex::new(None);
    let mut ready = READY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = *ready {
        return r;
    }
    let r = install();
    *ready = Some(r);
    r
}

fn install() -> bool {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return unavailable("Node.js is not installed (`node` on PATH, version 20 or later)");
    }
    let dir = oidc_dir();
    if dir.join("node_modules/oidc-provider/package.json").exists() {
        return true;
    }
    let out = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&dir)
        .output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => unavailable(&format!(
            "`npm ci --prefix tests/oidc` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => unavailable(&format!("npm did not run: {e}")),
    }
}

impl OpenIdProvider {
    /// Starts a provider with these clients and accounts; `None` when Node.js is absent outside CI.
    pub fn start(clients: &[OidcClient], accounts: &[OidcAccount]) -> Option<Self> {
        if !node_ready() {
            return None;
        }
        let config = serde_json::json!({
            "clients": clients.iter().map(|c| serde_json::json!({
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": c.redirect_uris,
            })).collect::<Vec<_>>(),
            "accounts": accounts.iter().map(|a| (a.username.clone(), serde_json::json!({
                "password": a.password,
                "claims": {"bsn": a.bsn, "name": a.name},
            }))).collect::<serde_json::Map<_, _>>(),
            "exit_with_stdin": true,
        });
        let mut child = Command::new("node")
            .arg(oidc_dir().join("provider.mjs"))
            .arg("0")
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node tests/oidc/provider.mjs");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[oidc] {line}");
                kept.lock().expect("log").push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["ready"] == true {
                        if let Some(issuer) = v["issuer"].as_str() {
                            let _ = tx.send(issuer.to_owned());
                        }
                    }
                }
            }
        });
        let Ok(issuer) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the OpenID provider did not start within 30 s; its stderr:\n{}",
                log.lock().expect("log").join("\n")
            );
        };
        Some(OpenIdProvider {
            child,
            _stdin: stdin,
            issuer,
            log,
        })
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
