//! The seams between the ways in and the rest, each with its own test: request-head limits (431)
//! on every listener, a FHIR create without a rule (403, not 400), the Bearer scheme read one
//! way everywhere, authenticators fixed by path prefix (a credential that fails its
//! authenticator is refused, never tried with another), the Hub API's body time limit, and the
//! binary outside the repository (`demo`, `serve` without a policies directory).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use poortwachter::demo::sample_fhir::{start as start_backend, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{setup, HubServer, Instance, Setup};

async fn token_for(s: &Setup) -> String {
    let (status, body) = s.post_grant(&s.grant(&s.claims())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Sends raw bytes and returns the status line of the answer ("" when the server closed first).
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before everything is written: that is an answer too.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn get_with(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n").into_bytes()
}

/// Every listener (public, internal, `hub serve`) refuses a request head over 32 KiB or with
/// more than 100 header lines with 431, and takes a head under the limits; the limits are
/// configurable; HTTP/2 has the same limit on its header list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431_on_every_listener() {
    let inst = Instance::new();
    inst.ok(&["init"]);
    let server = inst.serve();
    let hub = HubServer::start(&inst, &[]);
    let big = |kib: usize| format!("X-Big: {}\r\n", "a".repeat(kib * 1024));
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let few: String = (0..90).map(|i| format!("X-H{i}: v\r\n")).collect();
    for (listener, addr, path, fine) in [
        (
            "public",
            server.public,
            "/Patient/1",
            "HTTP/1.1 401 Unauthorized",
        ),
        ("internal", server.internal, "/health", "HTTP/1.1 200 OK"),
        ("hub serve", hub.addr, "/health", "HTTP/1.1 200 OK"),
    ] {
        for (what, headers, want) in [
            (
                "a 40 KiB header",
                big(40),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
            (
                "200 KiB",
                big(200),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
            (
                "101 header lines",
                many.clone(),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
            ("a 20 KiB header", big(20), fine),
            ("90 header lines", few.clone(), fine),
        ] {
            assert_eq!(
                raw(addr, &get_with(path, &headers)),
                want,
                "{listener}: {what}"
            );
        }
    }
    // HTTP/2 (prior knowledge): the header list has the same limit.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(server.internal_url("/health"))
        .header("x-big", "a".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let r = h2.get(server.internal_url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the connection serves on");
    drop(server);

    // Raised in the configuration.
    let wide = Instance::with_config("max_request_head_bytes = 65536\nmax_request_headers = 200\n");
    wide.ok(&["init"]);
    let server = wide.serve();
    assert_eq!(
        raw(server.internal, &get_with("/health", &big(40))),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        raw(server.internal, &get_with("/health", &many)),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        raw(server.internal, &get_with("/health", &big(70))),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

/// A FHIR create (`POST /Observation`, `application/fhir+json`) that no rule allows is a 403
/// like any other request without a rule: not "malformed", nothing forwarded, and the audit log
/// says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_create_without_a_rule_is_refused_like_any_request_without_one() {
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend.clone()).await;
    let s = setup(&format!("upstream = \"{upstream}\"\n"));
    let token = token_for(&s).await;
    let r = reqwest::Client::new()
        .post(s.server.public_url("/Observation"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json; charset=utf-8")
        .body(r#"{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/pat-1"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers()["content-type"],
        "application/fhir+json",
        "an OperationOutcome"
    );
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "access refused"}]})
    );
    assert!(backend.seen.lock().unwrap().is_empty(), "nothing forwarded");
    let export = s.custodian.ok(&["audit", "export"]);
    let last: Value = serde_json::from_str(export.lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            &last["method"],
            &last["path"],
            &last["decision"],
            &last["rule"],
            &last["status"]
        ),
        (
            &json!("POST"),
            &json!("/Observation"),
            &json!("deny"),
            &json!("no-rule-for-method-and-path"),
            &json!(403)
        )
    );
}

/// The `auth_request`-style verify endpoint reads `Authorization: Bearer` as the proxy does: the
/// scheme in any case (RFC 9110 §11.1); anything else is a 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_read_one_way_on_every_endpoint() {
    let s = setup("");
    let token = token_for(&s).await;
    let verify = |value: String| {
        let url = s
            .server
            .internal_url("/internal/auth/v1/accesstoken/verify");
        async move {
            reqwest::Client::new()
                .head(url)
                .header("authorization", value)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER"] {
        assert_eq!(
            verify(format!("{scheme} {token}")).await,
            StatusCode::OK,
            "{scheme}"
        );
    }
    for bad in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        format!("Bearer {token} x"),
        "Bearer".into(),
    ] {
        assert_eq!(verify(bad.clone()).await, StatusCode::FORBIDDEN, "{bad}");
    }
}

/// With `[hub_source] path_prefix`, requests under the prefix belong to the Hub source-token
/// authenticator and everything else to our access tokens. A credential is only ever checked by
/// the authenticator of its path: our access token under the prefix and a Hub token outside it
/// are refused (each in its authenticator's format), never tried with the other. The prefix is
/// stripped before forwarding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticators_are_fixed_by_path_prefix_never_tried_in_turn() {
    use poortwachter::hub::token::{HubKey, SourceClaims};
    let keys = tempfile::tempdir().unwrap();
    let (hub_key, _) = HubKey::load_or_create(keys.path()).unwrap();
    let jwks = keys.path().join("jwks.json");
    std::fs::write(&jwks, hub_key.jwks().to_string()).unwrap();
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend.clone()).await;
    let s = setup(&format!("upstream = \"{upstream}\"\n"));
    let token = token_for(&s).await;
    // A second server on the same data dir and store, with the Hub mounted at /dossier-api.
    let policies = s.custodian.dir.path().join("policies");
    std::fs::copy(
        super::support::repo().join("policies/hub-dossier.toml"),
        policies.join("hub-dossier.toml"),
    )
    .unwrap();
    let config = s.custodian.path("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[hub_source]\npath_prefix = \"/dossier-api\"\njwks = \"{}\"\nissuer = \"https://hub.example\"\naudience = \"provider-a\"\npolicy = \"hub-dossier\"\n",
        jwks.display()
    ));
    std::fs::write(&config, text).unwrap();
    let server = s.custodian.serve();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let hub_jwt = hub_key
        .sign(&SourceClaims {
            iss: "https://hub.example".into(),
            aud: "provider-a".into(),
            sub: "999999990".into(),
            iat: now,
            nbf: now,
            exp: now + 300,
            acc_name: "provider-b".into(),
            acc_display_name: "Kraamzorg B".into(),
            jti: Some("j-1".into()),
        })
        .unwrap();
    let http = reqwest::Client::new();
    let send =
        |path: &str, bearer: &str| http.get(server.public_url(path)).bearer_auth(bearer).send();

    // A Hub token under the prefix: forwarded without the prefix.
    let r = send("/dossier-api/dossier/ZW-1", &hub_jwt).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    {
        let seen = backend.seen.lock().unwrap();
        let (what, headers) = seen.last().expect("forwarded");
        assert!(what.starts_with("GET /fhir/dossier/ZW-1"), "{what}");
        assert_eq!(headers["x-poortwachter-requester"], "hub:provider-b");
        assert_eq!(headers["x-poortwachter-subject"], "999999990");
    }
    let forwarded = backend.seen.lock().unwrap().len();

    // Our access token under the prefix: the Hub authenticator refuses it (Hub XML, 401).
    let r = send("/dossier-api/dossier/ZW-1", &token).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    assert!(r.text().await.unwrap().contains("<code>login</code>"));

    // A Hub token outside the prefix: our access-token authenticator refuses it (FHIR, 401).
    let r = send("/dossier/ZW-1", &hub_jwt).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/fhir+json");
    assert_eq!(
        backend.seen.lock().unwrap().len(),
        forwarded,
        "nothing more forwarded"
    );

    // Our token outside the prefix is ours to check: a policy decision (403), not a 401.
    let r = send("/Patient/pat-1", &token).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let export = s.custodian.ok(&["audit", "export"]);
    let records: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |path: &str| {
        records
            .iter()
            .filter(|r| r["path"] == path)
            .map(|r| (r["kind"].clone(), r["decision"].clone(), r["rule"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("/dossier-api/dossier/ZW-1"),
        [
            (json!("hub-source"), json!("permit"), json!("dossier-read")),
            (
                json!("hub-source"),
                json!("deny"),
                json!("invalid-source-token: malformed")
            ),
        ]
    );
    assert_eq!(
        of("/dossier/ZW-1"),
        [(json!("proxy"), json!("deny"), json!("invalid-token"))]
    );
}

/// The Hub API reads a body within the client time limit: a client that stalls its body gets
/// 408 and the connection is freed.
#[test]
fn the_hub_api_answers_a_stalled_body_with_408() {
    let inst = Instance::with_config("client_timeout_ms = 500\n");
    inst.ok(&["init"]);
    let out = inst.ok(&[
        "hub",
        "account",
        "add",
        "--json",
        "--name",
        "provider-a",
        "--display-name",
        "Verloskundigen A",
    ]);
    let account: Value = serde_json::from_str(&out).unwrap();
    let hub = HubServer::start(&inst, &[]);
    let basic = base64_basic(
        account["key"].as_str().unwrap(),
        account["secret"].as_str().unwrap(),
    );
    let mut s = TcpStream::connect(hub.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v3/register HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\nContent-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<resource"
    )
    .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout"), "{text}");
    assert!(text.contains("<code>timeout</code>"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// The binary run outside the repository: `demo` carries its own policy; `serve` without a
/// policies directory says how to get the shipped policies, and `policy install` writes them.
#[test]
fn outside_the_repository_demo_runs_and_serve_says_how_to_get_policies() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_poortwachter");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .current_dir(cwd.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["demo", "--once"]);
    assert_eq!(code, Some(0), "demo failed:\n{out}\n{err}");
    assert!(out.contains("permit"), "{out}");

    let (code, _, err) = run(&[
        "serve",
        "--public-addr",
        "127.0.0.1:0",
        "--internal-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("policies directory ./policies: No such file or directory")
            && err.contains("write the shipped policies there with `poortwachter policy install --dir ./policies`"),
        "{err}"
    );
    let (code, out, _) = run(&["policy", "install"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("written ./policies/zorginzage-thuiszorgdossier-door-huisarts.toml"),
        "{out}"
    );
    let (code, out, _) = run(&["policy", "validate"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.trim(),
        "valid: zorginzage-thuiszorgdossier-door-huisarts"
    );
    let (_, out, _) = run(&["policy", "install"]);
    assert!(out.contains("kept    ./policies/hub-dossier.toml"), "{out}");
}
