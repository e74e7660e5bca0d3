//! The OpenAPI documents against the running binary: every listener (public, internal, `hub
//! serve`) serves an OpenAPI 3.1 document; every operation in it is a route of that listener
//! (asked with its method, path parameters filled with a dummy, the answer is not the
//! listener's "no such route"); every other method on a documented path is 405; a few paths
//! that are not documented are not routes either. With `did:web`, `[medmij]` and its
//! development login on, so the optional routes are there too. Each document is also checked
//! by an independent validator of the OpenAPI 3.1 schema (python `openapi-spec-validator`).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use super::medmij::{medmij_config, start_source};
use super::support::{HubServer, Instance};

/// What "no such route" looks like on a listener.
#[derive(Clone, Copy, Debug)]
enum Listener {
    /// Everything not routed goes to the proxy, which answers in FHIR (`application/fhir+json`).
    Public,
    /// 404 `{"error_description": "no such endpoint"}`.
    Internal,
    /// 404 `<error>`; every Hub route asks for Basic auth first (401) or answers 200.
    Hub,
}

/// Whether the answer says the listener has no route for this method and path.
async fn no_route(listener: Listener, r: Response) -> bool {
    let status = r.status();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return true;
    }
    let media = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match listener {
        Listener::Public => media.starts_with("application/fhir+json"),
        Listener::Internal => {
            status == StatusCode::NOT_FOUND
                && r.json::<Value>()
                    .await
                    .ok()
                    .is_some_and(|b| b["error_description"] == "no such endpoint")
        }
        Listener::Hub => status == StatusCode::NOT_FOUND,
    }
}

/// The (method, path) pairs of a document; `openapi` must be 3.1.
fn operations(doc: &Value) -> BTreeSet<(Method, String)> {
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        doc["openapi"]
    );
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in item.as_object().expect("path item").keys() {
            if let Ok(method) = Method::from_bytes(m.to_uppercase().as_bytes()) {
                if m != "parameters" && m != "summary" && m != "description" && m != "servers" {
                    ops.insert((method, path.clone()));
                }
            }
        }
    }
    assert!(!ops.is_empty());
    ops
}

/// Validates a document with python's `openapi-spec-validator` (OpenAPI 3.1 JSON Schema and
/// rules). Without it: SKIPPED, except in CI (`.ci/run` installs it).
fn validate_independently(name: &str, doc: &Value) {
    let ready = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with openapi-spec-validator (.ci/run installs it)"
        );
        eprintln!("SKIPPED: python3 with openapi-spec-validator not installed");
        return;
    }
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import OpenAPIV31SpecValidator\n\
             OpenAPIV31SpecValidator(json.load(sys.stdin)).validate()",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(doc.to_string().as_bytes())
        .expect("write the document");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "{name}: not a valid OpenAPI 3.1 document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `/a/{id}/b` → `/a/dummy/b`.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "dummy"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

/// Fetches a listener's document and asks the listener for every documented operation and for
/// every other method on its paths. Returns the operations.
async fn check(
    http: &reqwest::Client,
    listener: Listener,
    base: &str,
    doc_path: &str,
) -> BTreeSet<(Method, String)> {
    let r = http.get(format!("{base}{doc_path}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{listener:?} {doc_path}");
    let doc: Value = r.json().await.unwrap();
    validate_independently(&format!("{listener:?}"), &doc);
    let ops = operations(&doc);
    assert!(
        ops.contains(&(Method::GET, doc_path.to_owned())),
        "{listener:?}: the document lists itself"
    );
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            // HEAD is GET without the body (RFC 9110 §9.3.2): axum answers it wherever GET is.
            let documented = ops.contains(&(method.clone(), path.clone()))
                || (method == Method::HEAD && ops.contains(&(Method::GET, path.clone())));
            let r = http
                .request(method.clone(), format!("{base}{}", fill(path)))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let missing = no_route(listener, r).await;
            if documented {
                assert!(
                    !missing,
                    "{listener:?}: documented {method} {path} is not a route ({status})"
                );
            } else {
                assert!(
                    missing,
                    "{listener:?}: {method} {path} answers {status} but is not documented"
                );
            }
        }
    }
    ops
}

async fn answers_no_route(
    http: &reqwest::Client,
    listener: Listener,
    base: &str,
    method: Method,
    path: &str,
) {
    let r = http
        .request(method.clone(), format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        no_route(listener, r).await,
        "{listener:?}: {method} {path} should not be a route ({status})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_a_route_and_nothing_else_is() {
    let source = start_source().await;
    let instance = Instance::with_config(&medmij_config(&source, "dangerous_dev_login = true"));
    instance.ok(&[
        "init",
        "--did-method",
        "web",
        "--domain",
        "zorg.example.nl:8443",
    ]);
    let server = instance.serve();
    let hub = HubServer::start(&instance, &[]);
    let http = reqwest::Client::new();

    let public = format!("http://{}", server.public);
    let ops = check(
        &http,
        Listener::Public,
        &public,
        "/.well-known/openapi.json",
    )
    .await;
    for (m, p) in [
        (Method::POST, "/n2n/auth/v1/accesstoken"),
        (Method::GET, "/.well-known/oauth-authorization-server"),
        (Method::GET, "/.well-known/did.json"),
        (Method::GET, "/medmij/authorize"),
        (Method::POST, "/medmij/login/dev"),
        (Method::POST, "/medmij/token"),
    ] {
        assert!(ops.contains(&(m.clone(), p.to_owned())), "public: {m} {p}");
    }
    for (m, p) in [
        (Method::GET, "/Patient/1"),
        (Method::GET, "/internal/openapi.json"),
        (Method::GET, "/medmij/nothing"),
    ] {
        answers_no_route(&http, Listener::Public, &public, m, p).await;
    }

    let internal = format!("http://{}", server.internal);
    let ops = check(
        &http,
        Listener::Internal,
        &internal,
        "/internal/openapi.json",
    )
    .await;
    for (m, p) in [
        (Method::POST, "/internal/credentials"),
        (Method::GET, "/internal/credentials/{id}"),
        (Method::HEAD, "/internal/auth/v1/accesstoken/verify"),
        (Method::GET, "/health"),
    ] {
        assert!(
            ops.contains(&(m.clone(), p.to_owned())),
            "internal: {m} {p}"
        );
    }
    // Without [zorgdomein] its endpoint is neither documented nor routed.
    assert!(!ops.iter().any(|(_, p)| p.contains("zorgdomein")));
    for (m, p) in [
        (Method::GET, "/internal/zorgdomein/sso-token"),
        (Method::GET, "/internal/nothing"),
        (Method::GET, "/.well-known/openapi.json"),
        (Method::DELETE, "/internal/credentials/x/revoke"),
    ] {
        answers_no_route(&http, Listener::Internal, &internal, m, p).await;
    }
    // The console is routed but deliberately not documented (HTML for a browser).
    assert!(!ops.iter().any(|(_, p)| p.starts_with("/ui")));
    let r = http
        .get(format!("{internal}/ui/credentials"))
        .send()
        .await
        .unwrap();
    assert!(
        !no_route(Listener::Internal, r).await,
        "the console is there"
    );

    let hub_base = format!("http://{}", hub.addr);
    let ops = check(&http, Listener::Hub, &hub_base, "/.well-known/openapi.json").await;
    assert!(ops.contains(&(Method::GET, "/v3/resources/{key}/source".to_owned())));
    for (m, p) in [
        (Method::GET, "/v3/nothing"),
        (Method::GET, "/internal/openapi.json"),
    ] {
        answers_no_route(&http, Listener::Hub, &hub_base, m, p).await;
    }
}
