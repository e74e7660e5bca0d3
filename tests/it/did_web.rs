//! `did:web` against real HTTP servers on 127.0.0.1: resolution with the loopback switch, and the
//! guards: private targets, redirects, size, time, a document for another DID.

use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use poortwachter::did::web::WebSettings;
use poortwachter::did::{DidError, Resolver, ResolverSettings};
use serde_json::{json, Value};

use super::support::Instance;

async fn host(router: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

fn doc_for(did: &str) -> Value {
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": "ZoS_Grh0lkKnW3ZO_NOEzq3kfIP6TYzsq3ldvJPEoK0", "y": "5oqWhlImHbUrDc5ZxHeIPHnI9Ol5VaURkmVzs-nyxaU"});
    json!({"id": did, "verificationMethod": [{"id": "#k1", "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": jwk}], "assertionMethod": ["#k1"]})
}

fn resolver(allow_loopback: bool) -> Resolver {
    Resolver::new(&ResolverSettings {
        web: WebSettings {
            timeout: Duration::from_millis(500),
            max_bytes: 16 * 1024,
            dangerous_allow_http_loopback: allow_loopback,
            extra_ca: Vec::new(),
        },
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn did_web_resolution_and_guards() {
    let port_holder = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let p = port_holder.clone();
    let did = move |path: &str| format!("did:web:127.0.0.1%3A{}{path}", p.get().unwrap());
    let d = did.clone();
    let router = Router::new()
        .route(
            "/.well-known/did.json",
            get({
                let d = d.clone();
                move || {
                    let d = d.clone();
                    async move { axum::Json(doc_for(&d(""))) }
                }
            }),
        )
        .route(
            "/other/did.json",
            get({
                let d = d.clone();
                move || {
                    let d = d.clone();
                    async move { axum::Json(doc_for(&d(":someone-else"))) }
                }
            }),
        )
        .route("/big/did.json", get(|| async { "x".repeat(100 * 1024) }))
        .route(
            "/moved/did.json",
            get(|| async { Redirect::temporary("/.well-known/did.json") }),
        )
        .route(
            "/slow/did.json",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}".into_response()
            }),
        )
        .route("/garbage/did.json", get(|| async { "not json" }));
    let port = host(router).await;
    port_holder.set(port).unwrap();

    let r = resolver(true);
    let doc = r.resolve(&did("")).await.expect("resolves");
    assert_eq!(doc.id, did(""));
    assert!(r.assertion_key(&format!("{}#k1", did(""))).await.is_ok());

    let err = |e: DidError| e.to_string();
    let e = err(r.resolve(&did(":other")).await.unwrap_err());
    assert!(
        e.ends_with(&format!("document id is {}", did(":someone-else"))),
        "{e}"
    );
    let e = err(r.resolve(&did(":big")).await.unwrap_err());
    assert!(e.ends_with("document larger than 16384 bytes"), "{e}");
    let e = err(r.resolve(&did(":moved")).await.unwrap_err());
    assert!(e.ends_with("HTTP 307"), "redirects are not followed: {e}");
    let e = err(r.resolve(&did(":garbage")).await.unwrap_err());
    assert!(e.starts_with("invalid DID document for"), "{e}");
    let start = Instant::now();
    let e = err(r.resolve(&did(":slow")).await.unwrap_err());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "time limit applies: {e}"
    );

    // Without the dangerous switch loopback is a private target, as are the private ranges.
    let strict = resolver(false);
    let e = err(strict.resolve(&did("")).await.unwrap_err());
    assert_eq!(e, format!("cannot resolve {}: 127.0.0.1 resolves to no public address (loopback and private ranges are refused)", did("")));
    for target in [
        "did:web:10.1.2.3",
        "did:web:192.168.1.10%3A8443",
        "did:web:169.254.169.254",
        "did:web:localhost",
    ] {
        let e = err(strict.resolve(target).await.unwrap_err());
        assert!(e.contains("resolves to no public address"), "{target}: {e}");
    }
    // Even with the switch, only loopback gets plain http: a private address is still refused.
    let e = err(r.resolve("did:web:10.1.2.3").await.unwrap_err());
    assert!(e.contains("resolves to no public address"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_of_a_did_web_issuer_verifies_through_the_cli() {
    let issuer = Instance::new();
    // The document is served by a plain test server; the issuer's DID names its port.
    let doc_slot = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let slot = doc_slot.clone();
    let port = host(Router::new().route(
        "/.well-known/did.json",
        get(move || {
            let s = slot.clone();
            async move { s.lock().unwrap().clone() }
        }),
    ))
    .await;
    let did = issuer.ok(&[
        "init",
        "--did-method",
        "web",
        "--domain",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(did.trim(), format!("did:web:127.0.0.1%3A{port}"));
    *doc_slot.lock().unwrap() =
        std::fs::read_to_string(issuer.data_dir().join("did.json")).unwrap();
    let (_, cred) = issuer.issue(
        "did:web:huisarts.example.nl",
        "999999990",
        "implied",
        Some("2031-01-01"),
    );

    let verifier = Instance::with_config("[did_web]\ndangerous_allow_http_loopback = true\n");
    let file = verifier.path("c.json");
    std::fs::write(&file, &cred).unwrap();
    let file = file.to_str().unwrap();
    let (code, out, err) = verifier.run(&["credential", "verify", file]);
    assert_eq!((code, out.as_str()), (0, "valid\n"), "{err}");
    let resolved: Value =
        serde_json::from_str(&verifier.ok(&["did", "resolve", did.trim()])).unwrap();
    assert_eq!(resolved["id"], did.trim());

    // The same verifier without the switch refuses to fetch from loopback.
    let strict = Instance::new();
    let (code, out, _) = strict.run(&["credential", "verify", file]);
    assert_eq!(code, 1);
    assert!(out.contains("resolves to no public address"), "{out}");
}
