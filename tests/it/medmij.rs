//! MedMij "Delen" through the real binary: the authorization server's flow with the development
//! login (the browser test with the real OpenID provider is `browser_medmij.rs`), the token
//! endpoint, and the resource server in front of a test source system, with each bad path the
//! issue names: two scopes, an unknown gegevensdienst, a redirect to another host, code replay,
//! a wrong code_verifier, an expired code, an expired token, a BSN in the payload, a provider
//! that is not receptive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::response::IntoResponse as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest as _;

use super::support::{repo, Instance, Server};

/// The person in the tests.
pub const BSN: &str = "999999990";
/// A person the source system is not receptive for.
pub const NOT_RECEPTIVE_BSN: &str = "111222333";
/// A person whose receptiveness check the source system answers only after 3 s.
pub const SLOW_BSN: &str = "123456782";
/// The PGO of the sample lists that may ask for gegevensdienst 48.
pub const CLIENT: &str = "pgo.example.nl";

/// What the test source system received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// The test source system: `POST /` answers a transaction-response Bundle with one entry not
/// placed; `POST /receptive` says yes except for [`NOT_RECEPTIVE_BSN`].
pub struct Source {
    pub addr: std::net::SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

pub const TRANSACTION_RESPONSE: &str = r#"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"DocumentManifest/m1/_history/1"}},{"response":{"status":"201 Created","location":"DocumentReference/d1/_history/1"}},{"response":{"status":"422 Unprocessable Entity","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"Binary is geen PDF/A"}]}}}]}"#;

pub async fn start_source() -> Source {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().fallback(move |request: axum::http::Request<axum::body::Body>| {
        let kept = kept.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
            let r = Received {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                    .collect(),
                body: body.to_vec(),
            };
            if r.path == "/receptive" {
                let ask: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                if ask["bsn"] == SLOW_BSN {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                }
                let yes = ask["bsn"] != NOT_RECEPTIVE_BSN;
                let answer = if yes {
                    json!({"receptive": true})
                } else {
                    json!({"receptive": false, "reason": "U bent bij ons niet bekend als patiënt."})
                };
                return (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    answer.to_string(),
                )
                    .into_response();
            }
            kept.lock().unwrap().push(r);
            (
                [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
                TRANSACTION_RESPONSE.to_owned(),
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Source { addr, received }
}

/// The `[medmij]` section over the sample lists; `login` is the last lines (dev or oidc).
pub fn medmij_config(source: &Source, login: &str) -> String {
    let lists = repo().join("medmij");
    format!(
        "upstream = \"http://{src}\"\n\
         [medmij]\n\
         aanbieder = \"umcharderwijk\"\n\
         aanbieder_display_name = \"UMC Harderwijk\"\n\
         gegevensdiensten = [\"48\"]\n\
         oauth_client_list = \"{l}/MedMij_OAuthclientlist.xml\"\n\
         whitelist = \"{l}/MedMij_Whitelist.xml\"\n\
         gegevensdienst_name_list = \"{l}/MedMij_Gegevensdienstnamenlijst.xml\"\n\
         zorgaanbieder_list = \"{l}/MedMij_Zorgaanbiederslijst.xml\"\n\
         receptiveness_url = \"http://{src}/receptive\"\n\
         {login}\n",
        src = source.addr,
        l = lists.display(),
    )
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = poortwachter::medmij::random_secret();
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorization request's query.
pub fn authorize_query(
    redirect_uri: &str,
    scope: &str,
    state: &str,
    challenge: Option<&str>,
) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("MedMij-Request-ID", "8a0f7c52-7d0e-4b5f-9b1e-1f2b3c4d5e6f")
        .append_pair("X-Correlation-ID", "3c1e4f7a-2b6d-4e8f-9a0b-c1d2e3f40516");
    if let Some(c) = challenge {
        q.append_pair("code_challenge", c)
            .append_pair("code_challenge_method", "S256");
    }
    q.finish()
}

/// A browser stand-in: no redirects followed, the session cookie kept by hand.
pub struct Person {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Person {
    /// Through `http` to `base` (e.g. an https listener).
    pub fn with(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.to_owned(),
            cookie: None,
        }
    }

    pub fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.public_url(""),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, r: &reqwest::Response) {
        if let Some(c) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            let pair = c.split(';').next().unwrap_or_default();
            self.cookie = pair
                .split_once('=')
                .map(|(_, v)| v.to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| format!("poortwachter-medmij={v}"));
        }
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.keep_cookie(&r);
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.text().await.unwrap())
    }

    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.keep_cookie(&r);
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.text().await.unwrap())
    }
}

/// The value of `name="csrf"` on a page.
pub fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn location(h: &reqwest::header::HeaderMap) -> String {
    h.get("location")
        .expect("a Location")
        .to_str()
        .unwrap()
        .to_owned()
}

fn query_of(u: &str) -> HashMap<String, String> {
    url::Url::parse(u)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

const REDIRECT: &str = "https://pgo.example.nl/delen/terug";

/// Through the flow with the development login up to the code; returns the redirect's query.
async fn code_for(server: &Server, bsn: &str, challenge: Option<&str>) -> HashMap<String, String> {
    let query = authorize_query(REDIRECT, "umcharderwijk~48", "st-1", challenge);
    code_with(&mut Person::new(server), &query, REDIRECT, bsn).await
}

/// The person's steps for `query` (an authorization request) with the development login, up to
/// the redirect with the code; returns the redirect's query.
async fn code_with(
    p: &mut Person,
    query: &str,
    redirect: &str,
    bsn: &str,
) -> HashMap<String, String> {
    let (s, h, page) = p.get(&format!("/medmij/authorize?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let origin = url::Url::parse(redirect)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains(&format!("form-action 'self' {origin}")));
    let (s, h, page) = p
        .post("/medmij/login/dev", &[("csrf", &csrf(&page)), ("bsn", bsn)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&h), "/medmij/confirm");
    let (s, _, page) = p.get("/medmij/confirm").await;
    assert_eq!(s, StatusCode::OK);
    let (s, h, _) = p
        .post(
            "/medmij/confirm",
            &[("csrf", &csrf(&page)), ("keuze", "ja")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let back = location(&h);
    assert!(back.starts_with(&format!("{redirect}?code=")), "{back}");
    query_of(&back)
}

async fn exchange(
    server: &Server,
    code: &str,
    verifier: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let r = reqwest::Client::new()
        .post(server.public_url("/medmij/token"))
        .header("MedMij-Request-ID", "0b7d5c3e-1111-4222-8333-944455556666")
        .form(&form)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    (s, h, r.json().await.unwrap())
}

/// An MHD provide-document Bundle (what a PGO sends for gegevensdienst 48).
pub fn mhd_bundle(extra_identifier: Option<&str>) -> String {
    let subject = extra_identifier.map_or(String::new(), |v| {
        format!(r#","subject":{{"identifier":{{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"{v}"}}}}"#)
    });
    format!(
        r#"{{"resourceType":"Bundle","type":"transaction","entry":[{{"fullUrl":"urn:uuid:1","resource":{{"resourceType":"DocumentManifest","status":"current"{subject}}},"request":{{"method":"POST","url":"DocumentManifest"}}}},{{"fullUrl":"urn:uuid:2","resource":{{"resourceType":"DocumentReference","status":"current","content":[{{"attachment":{{"contentType":"application/pdf","url":"urn:uuid:3"}}}}]}},"request":{{"method":"POST","url":"DocumentReference"}}}},{{"fullUrl":"urn:uuid:3","resource":{{"resourceType":"Binary","contentType":"application/pdf","content":"JVBERi0xLjQK"}},"request":{{"method":"POST","url":"Binary"}}}}]}}"#
    )
}

pub async fn post_fhir(server: &Server, token: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.public_url("/medmij/fhir/"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .header("MedMij-Request-ID", "5f2a9a3e-0c1b-4d6e-8f70-a1b2c3d4e5f6")
        .header("X-Correlation-ID", "3c1e4f7a-2b6d-4e8f-9a0b-c1d2e3f40516")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// Moves a code's or token's expiry into the past, in the instance's database.
async fn expire(instance: &Instance, table: &str) {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let url = format!(
        "sqlite://{}",
        instance.data_dir().join("poortwachter.db").display()
    );
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("UPDATE {table} SET expires_at = 1"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

fn dev_instance(source: &Source) -> Instance {
    Instance::with_config(&medmij_config(source, "dangerous_dev_login = true"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delen_with_the_development_login_reaches_the_source_system() {
    let source = start_source().await;
    let instance = dev_instance(&source);
    let server = instance.serve();
    let (verifier, challenge) = pkce();

    // The landing page: Dutch, marked as a test login, strict CSP, the PGO and gegevensdienst named.
    let mut p = Person::new(&server);
    let (s, h, page) = p
        .get(&format!(
            "/medmij/authorize?{}",
            authorize_query(REDIRECT, "umcharderwijk~48", "st-1", Some(&challenge))
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<html lang=\"nl\">"));
    for text in [
        "Voorbeeld PGO",
        "UMC Harderwijk",
        "Documenten delen met uw zorgverlener",
        "Testomgeving",
        "BSN (testnummer)",
    ] {
        assert!(page.contains(text), "{text} in {page}");
    }
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(h["set-cookie"]
        .to_str()
        .unwrap()
        .contains("HttpOnly; SameSite=Lax"));
    // A wrong BSN keeps the person on the page.
    let token = csrf(&page);
    let (s, _, page) = p
        .post(
            "/medmij/login/dev",
            &[("csrf", &token), ("bsn", "123456789")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("Dit is geen geldig BSN"), "{page}");
    // A forged form (wrong CSRF token) is refused.
    let (s, _, _) = p
        .post("/medmij/login/dev", &[("csrf", "nep"), ("bsn", BSN)])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, h, _) = p
        .post("/medmij/login/dev", &[("csrf", &token), ("bsn", BSN)])
        .await;
    assert_eq!(
        (s, location(&h).as_str()),
        (StatusCode::SEE_OTHER, "/medmij/confirm")
    );
    let (s, _, page) = p.get("/medmij/confirm").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Voorbeeld PGO</span> mag uw gegevens"),
        "{page}"
    );
    let (s, h, _) = p
        .post(
            "/medmij/confirm",
            &[("csrf", &csrf(&page)), ("keuze", "ja")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        h["set-cookie"].to_str().unwrap().contains("Max-Age=0"),
        "the session ends"
    );
    let back = query_of(&location(&h));
    assert_eq!(back["state"], "st-1");

    // The token, with PKCE.
    let (s, h, t) = exchange(&server, &back["code"], Some(&verifier)).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    assert_eq!(t["scope"], "umcharderwijk~48");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(
        h["medmij-request-id"],
        "0b7d5c3e-1111-4222-8333-944455556666"
    );
    let token = t["access_token"].as_str().unwrap().to_owned();

    // The Bundle reaches the source system as POST /, the BSN only in X-Poortwachter-Subject.
    let body = mhd_bundle(None);
    let r = post_fhir(&server, &token, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["x-correlation-id"],
        "3c1e4f7a-2b6d-4e8f-9a0b-c1d2e3f40516"
    );
    assert_eq!(
        r.headers()["medmij-request-id"],
        "5f2a9a3e-0c1b-4d6e-8f70-a1b2c3d4e5f6"
    );
    assert_eq!(
        r.text().await.unwrap(),
        TRANSACTION_RESPONSE,
        "per-entry outcome passed back (Delen 2)"
    );
    let got = source.received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("POST", "/")
    );
    assert_eq!(got[0].body, body.as_bytes(), "forwarded byte for byte");
    assert_eq!(got[0].headers["x-poortwachter-subject"], BSN);
    assert_eq!(got[0].headers["x-poortwachter-requester"], CLIENT);
    assert_eq!(got[0].headers["x-poortwachter-purpose"], "medmij-48");
    assert!(!got[0].headers.contains_key("authorization"));

    // Only creates: a read is refused with insufficient_scope.
    let r = reqwest::Client::new()
        .get(server.public_url("/medmij/fhir/DocumentReference"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );

    // A BSN in the payload: 400 with an OperationOutcome saying so; nothing forwarded.
    let r = post_fhir(&server, &token, &mhd_bundle(Some(BSN))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        outcome["issue"][0]["diagnostics"],
        "a BSN is not allowed in the request body: the access token identifies the person"
    );
    assert_eq!(source.received.lock().unwrap().len(), 1);

    // No token, or an unknown one: 401 invalid_token.
    let r = post_fhir(&server, "onbekend", &body).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );

    // An expired token.
    expire(&instance, "medmij_tokens").await;
    let r = post_fhir(&server, &token, &body).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );

    // The audit log: every step in the chain, with the MedMij ids, and the chain verifies.
    let out = instance.ok(&["audit", "export"]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e["trace"]["event"].as_str())
        .collect();
    for want in [
        "receive_authorization_request",
        "show_landing_page",
        "authentication_error",
        "receive_authentication_response",
        "receptiveness_check",
        "show_confirmation_page",
        "confirmation_given",
        "token_issued",
        "resource_request",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let issued = events
        .iter()
        .find(|e| e["trace"]["event"] == "token_issued")
        .unwrap();
    assert_eq!(
        issued["trace"]["correlation_id"],
        "3c1e4f7a-2b6d-4e8f-9a0b-c1d2e3f40516"
    );
    assert_eq!(issued["bsn"], BSN);
    assert!(!out.contains(&token), "no token in the audit log");
    assert!(!out.contains(&back["code"]), "no code in the audit log");
    let (code, out, err) = instance.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_requests_that_are_refused() {
    let source = start_source().await;
    let instance = dev_instance(&source);
    let server = instance.serve();
    let mut p = Person::new(&server);
    let ask = |redirect: &str, scope: &str| {
        format!(
            "/medmij/authorize?{}",
            authorize_query(redirect, scope, "st-9", None)
        )
    };

    // Two scopes: back to the PGO with invalid_scope and its state.
    let (s, h, _) = p
        .get(&ask(REDIRECT, "umcharderwijk~48 umcharderwijk~1"))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let q = query_of(&location(&h));
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("invalid_scope", "st-9")
    );
    assert_eq!(
        q["error_description"],
        "Delen takes exactly one scope <aanbiedernaam>~<gegevensdienstid>"
    );
    assert!(location(&h).starts_with(REDIRECT));

    // An unknown gegevensdienst.
    let (s, h, _) = p.get(&ask(REDIRECT, "umcharderwijk~99")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let q = query_of(&location(&h));
    assert_eq!(q["error"], "invalid_scope");
    assert_eq!(
        q["error_description"],
        "scope names a gegevensdienst this aanbieder does not serve for Delen"
    );

    // A redirect to another host: an error page, and no redirect at all.
    let (s, h, page) = p
        .get(&ask("https://elders.example.nl/terug", "umcharderwijk~48"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(h.get("location").is_none());
    assert!(
        page.contains("Er is iets misgegaan")
            && page.contains("het terugkeeradres van de PGO is niet geldig"),
        "{page}"
    );
    assert!(
        page.contains("8a0f7c52-7d0e-4b5f-9b1e-1f2b3c4d5e6f"),
        "the trace id on the page"
    );
    // An unknown client: the same.
    let q = authorize_query(REDIRECT, "umcharderwijk~48", "st-9", None)
        .replace("pgo.example.nl&", "onbekend.example.nl&");
    let (s, h, page) = p.get(&format!("/medmij/authorize?{q}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(h.get("location").is_none());
    assert!(
        page.contains("de PGO staat niet op de lijsten van MedMij"),
        "{page}"
    );

    // PKCE plain is refused.
    let q = format!(
        "{}&code_challenge={}&code_challenge_method=plain",
        authorize_query(REDIRECT, "umcharderwijk~48", "st-9", None),
        "a".repeat(43)
    );
    let (s, h, _) = p.get(&format!("/medmij/authorize?{q}")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        query_of(&location(&h))["error_description"],
        "code_challenge_method plain is not allowed; use S256"
    );

    // "Nee" answers access_denied.
    let (_, _, page) = p.get(&ask(REDIRECT, "umcharderwijk~48")).await;
    let (s, h, _) = p
        .post(
            "/medmij/confirm",
            &[("csrf", &csrf(&page)), ("keuze", "nee")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let q = query_of(&location(&h));
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("access_denied", "st-9")
    );

    // Not receptive: the person sees why, the way back carries access_denied, no code exists.
    let (_, _, page) = p.get(&ask(REDIRECT, "umcharderwijk~48")).await;
    let (s, h, page) = p
        .post(
            "/medmij/login/dev",
            &[("csrf", &csrf(&page)), ("bsn", NOT_RECEPTIVE_BSN)],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert!(
        page.contains("Delen is niet mogelijk")
            && page.contains("U bent bij ons niet bekend als patiënt."),
        "{page}"
    );
    let back = page
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let q = query_of(&back);
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("access_denied", "st-9")
    );
    // ... and the session is over.
    let (s, _, _) = p.get("/medmij/confirm").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The chain log names each refusal, with the request's ids and without a redirect's secrets.
    let out = instance.ok(&["audit", "export"]);
    let errors: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["trace"]["event"] == "authorization_request_error")
        .collect();
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(errors.iter().all(|e| e["decision"] == "deny"
        && e["kind"] == "medmij"
        && e["trace"]["request_id"] == "8a0f7c52-7d0e-4b5f-9b1e-1f2b3c4d5e6f"));
    assert!(errors
        .iter()
        .any(|e| e["rule"] == "client_id is not on the OAuth client list" && e["status"] == 400));
    let refused: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("receptiveness_check"))
        .collect();
    assert!(
        refused.iter().any(|l| l.contains("\"decision\":\"deny\"")),
        "{refused:?}"
    );
}

/// A receptiveness check the source system does not answer in time: the person is told to try
/// later, the PGO gets temporarily_unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receptiveness_check_is_temporarily_unavailable() {
    let source = start_source().await;
    let instance = Instance::with_config(&medmij_config(
        &source,
        "dangerous_dev_login = true\nreceptiveness_timeout_ms = 300",
    ));
    let server = instance.serve();
    let mut p = Person::new(&server);
    let query = authorize_query(REDIRECT, "umcharderwijk~48", "st-3", None);
    let (_, _, page) = p.get(&format!("/medmij/authorize?{query}")).await;
    let started = std::time::Instant::now();
    let (s, _, page) = p
        .post(
            "/medmij/login/dev",
            &[("csrf", &csrf(&page)), ("bsn", SLOW_BSN)],
        )
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the time limit holds"
    );
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.contains("Dit kon nu niet worden nagegaan."), "{page}");
    let back = page
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert_eq!(query_of(&back)["error"], "temporarily_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_single_use_bound_to_their_verifier_and_short_lived() {
    let source = start_source().await;
    let instance = dev_instance(&source);
    let server = instance.serve();
    let (verifier, challenge) = pkce();

    // A wrong code_verifier: invalid_grant (the code stays usable for the right one).
    let code = code_for(&server, BSN, Some(&challenge)).await["code"].clone();
    let (s, _, e) = exchange(&server, &code, Some(&pkce().0)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        e["error_description"],
        "code_verifier does not match the code_challenge"
    );
    let (s, _, e) = exchange(&server, &code, None).await;
    assert_eq!(
        (s, e["error_description"].as_str()),
        (StatusCode::BAD_REQUEST, Some("code_verifier is missing"))
    );

    // Code replay: the second use is refused and revokes the token of the first.
    let (s, _, t) = exchange(&server, &code, Some(&verifier)).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let token = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post_fhir(&server, &token, &mhd_bundle(None)).await.status(),
        StatusCode::OK
    );
    let (s, _, e) = exchange(&server, &code, Some(&verifier)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        e["error_description"],
        "the code has been used; the token it issued is revoked"
    );
    let r = post_fhir(&server, &token, &mhd_bundle(None)).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the token of a replayed code is revoked"
    );

    // Another client, or another redirect_uri, with a good code.
    let code = code_for(&server, BSN, None).await["code"].clone();
    let r = reqwest::Client::new()
        .post(server.public_url("/medmij/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://pgo.example.nl/anders"),
            ("client_id", CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = reqwest::Client::new()
        .post(server.public_url("/medmij/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "onbekend.example.nl"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");

    // An expired code.
    expire(&instance, "medmij_codes").await;
    let (s, _, e) = exchange(&server, &code, None).await;
    assert_eq!(
        (s, e["error_description"].as_str()),
        (StatusCode::BAD_REQUEST, Some("the code has expired"))
    );

    // Wrong grant type, and an unknown code.
    let r = reqwest::Client::new()
        .post(server.public_url("/medmij/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let (s, _, e) = exchange(&server, "bestaat-niet", None).await;
    assert_eq!(
        (s, e["error_description"].as_str()),
        (StatusCode::BAD_REQUEST, Some("the code is unknown"))
    );
}

/// A token for another gegevensdienst than the request's: 403 `insufficient_scope`; the
/// gegevensdienst's own request passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_gegevensdienst_is_insufficient_scope() {
    let source = start_source().await;
    let policies = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("policies/medmij-48.toml"),
        policies.path().join("medmij-48.toml"),
    )
    .unwrap();
    std::fs::write(
        policies.path().join("medmij-1.toml"),
        "authenticator = \"medmij\"\n[response]\nformat = \"passthrough\"\n[[rule]]\nname = \"observation-create\"\nmethod = \"POST\"\npath = \"/Observation\"\n[rule.body]\nmax_bytes = 65536\nresource_type = [\"Observation\"]\n",
    )
    .unwrap();
    let instance = Instance::with_config(
        &medmij_config(&source, "dangerous_dev_login = true").replace(
            "gegevensdiensten = [\"48\"]",
            "gegevensdiensten = [\"48\", \"1\"]",
        ),
    );
    instance.edit_config(
        &repo().join("policies").display().to_string(),
        &policies.path().display().to_string(),
    );
    let server = instance.serve();
    // The older-style client on the sample list may ask for any gegevensdienst.
    let client = "medmij.deenigeechtepgo.nl";
    let redirect = "https://medmij.deenigeechtepgo.nl/terug";
    let query = authorize_query(redirect, "umcharderwijk~1", "st-1", None).replace(
        &format!("client_id={CLIENT}"),
        &format!("client_id={client}"),
    );
    let code = code_with(&mut Person::new(&server), &query, redirect, BSN).await["code"].clone();
    let t: Value = reqwest::Client::new()
        .post(server.public_url("/medmij/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["scope"], "umcharderwijk~1", "{t}");
    let token = t["access_token"].as_str().unwrap();
    let r = post_fhir(&server, token, &mhd_bundle(None)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );
    let r = reqwest::Client::new()
        .post(server.public_url("/medmij/fhir/Observation"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Observation","status":"final"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got = source.received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/Observation");
    assert_eq!(got[0].headers["x-poortwachter-purpose"], "medmij-1");
}

/// `require_client_certificate = true`: the token endpoint wants a TLS client certificate whose
/// host name is the `client_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_can_require_the_clients_certificate() {
    use poortwachter::tls::testing::{client_config, LeafSpec, TestCa, TestCert};
    let source = start_source().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Test CA");
    let (cert, key) = ca.server("127.0.0.1").write(dir.path(), "server");
    let ca_file = ca.write(dir.path(), "ca");
    let client_cert = |host: &str| {
        let mut spec = LeafSpec::client(host);
        spec.dns_names.push(host.to_owned());
        ca.issue(&spec)
    };
    let (pgo, elders) = (client_cert(CLIENT), client_cert("elders.example.nl"));
    let instance = Instance::with_config(&format!(
        "{}[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = [\"{}\"]\nclient_auth = \"optional\"\n",
        medmij_config(
            &source,
            "dangerous_dev_login = true\nrequire_client_certificate = true"
        ),
        cert.display(),
        key.display(),
        ca_file.display()
    ));
    let server = instance.serve();
    let base = format!("https://{}", server.public);
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let http = |c: Option<&TestCert>| {
        reqwest::Client::builder()
            .use_preconfigured_tls(client_config(&ca.cert_der(), c, &versions))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let mut person = Person::with(http(None), &base);
    let query = authorize_query(REDIRECT, "umcharderwijk~48", "st-1", None);
    let code = code_with(&mut person, &query, REDIRECT, BSN).await["code"].clone();
    let exchange = |c: reqwest::Client| {
        let (base, code) = (base.clone(), code.clone());
        async move {
            let r = c
                .post(format!("{base}/medmij/token"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT),
                    ("client_id", CLIENT),
                ])
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    for (who, client) in [
        ("no certificate", http(None)),
        ("another host's", http(Some(&elders))),
    ] {
        let (s, e) = exchange(client).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{who}"
        );
        assert_eq!(
            e["error_description"],
            "a client certificate for the client_id's host name is required"
        );
    }
    let (s, t) = exchange(http(Some(&pgo))).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    // The audit record of the token names the certificate.
    let out = instance.ok(&["audit", "export"]);
    let issued: Value = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["trace"]["event"] == "token_issued")
        .unwrap();
    assert!(
        issued["client_cert"]["subject"]
            .as_str()
            .unwrap()
            .contains(CLIENT),
        "{issued}"
    );
}

/// The lists are read again on SIGHUP: a client taken off the OAuth client list is refused at
/// once; a list that does not parse keeps the one in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_read_again_on_sighup() {
    let source = start_source().await;
    let lists = tempfile::tempdir().unwrap();
    for f in [
        "MedMij_OAuthclientlist.xml",
        "MedMij_Whitelist.xml",
        "MedMij_Gegevensdienstnamenlijst.xml",
        "MedMij_Zorgaanbiederslijst.xml",
    ] {
        std::fs::copy(repo().join("medmij").join(f), lists.path().join(f)).unwrap();
    }
    let instance = Instance::with_config(
        &medmij_config(&source, "dangerous_dev_login = true").replace(
            &repo().join("medmij").display().to_string(),
            &lists.path().display().to_string(),
        ),
    );
    let server = instance.serve();
    let ask = format!(
        "/medmij/authorize?{}",
        authorize_query(REDIRECT, "umcharderwijk~48", "st-1", None)
    );
    let hup = |server: &Server| {
        let mark = server.log_mark();
        std::process::Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
        mark
    };
    let wait = std::time::Duration::from_secs(10);
    assert_eq!(Person::new(&server).get(&ask).await.0, StatusCode::OK);
    // Broken: refused, logged, the old list stays.
    let ocl = lists.path().join("MedMij_OAuthclientlist.xml");
    let text = std::fs::read_to_string(&ocl).unwrap();
    std::fs::write(&ocl, "<OAuthclientlist").unwrap();
    let mark = hup(&server);
    assert!(server
        .log_after(mark, "MedMij list refused", wait)
        .await
        .is_some());
    assert_eq!(Person::new(&server).get(&ask).await.0, StatusCode::OK);
    // A newer list without pgo.example.nl: refused from now on.
    let newer = text.replace("<Volgnummer>17<", "<Volgnummer>18<").replace(
        "<Hostname>pgo.example.nl</Hostname>",
        "<Hostname>pgo.ander.example.nl</Hostname>",
    );
    std::fs::write(&ocl, newer).unwrap();
    let mark = hup(&server);
    assert!(server
        .log_after(mark, "MedMij lists in use", wait)
        .await
        .is_some());
    let (s, h, page) = Person::new(&server).get(&ask).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(h.get("location").is_none());
    assert!(
        page.contains("de PGO staat niet op de lijsten van MedMij"),
        "{page}"
    );
}
