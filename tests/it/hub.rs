//! Hub API v3 end to end: the embedded Hub (`hub serve`, real binary) with three provider
//! accounts; provider A registers and shares with B; B finds the dossier by BSN and C does not;
//! B gets the source token and reads A's dossier through A's poortwachter (a real dossier backend
//! behind it); the token fails after expiry, for another BSN and at another provider. Bad input
//! to the Hub gets the documented `<error>` XML and stores nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use poortwachter::demo::sample_fhir::{BSN1, BSN2};
use poortwachter::hub::token::{key_path, HubKey, SourceClaims};
use reqwest::StatusCode;

use super::support::{free_port, HubServer, Instance};

/// An account's credentials.
#[derive(Clone)]
struct Account {
    key: String,
    secret: String,
}

fn add_account(hub: &Instance, args: &[&str]) -> Account {
    let mut all = vec!["hub", "account", "add", "--json"];
    all.extend_from_slice(args);
    let v: serde_json::Value = serde_json::from_str(&hub.ok(&all)).expect("account JSON");
    Account {
        key: v["key"].as_str().unwrap().to_owned(),
        secret: v["secret"].as_str().unwrap().to_owned(),
    }
}

fn dossier_xml(bsn: &str, reference: &str, gravida: &str, para: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<resource type="perinatologie/dossier">
  <property name="client_bsn">{bsn}</property>
  <property name="client_displayname">Anna de Vries</property>
  <property name="client_birthdate">19920314</property>
  <property name="reference">{reference}</property>
  <property name="gravida">{gravida}</property>
  <property name="para">{para}</property>
  <property name="edd">20270402</property>
  <property name="start_at">20260910</property>
</resource>"#
    )
}

struct Api {
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, url: &str, who: &Account) -> (StatusCode, String) {
        let r = self
            .http
            .get(url)
            .basic_auth(&who.key, Some(&who.secret))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn register(&self, url: &str, who: &Account, body: &str) -> (StatusCode, String) {
        let r = self
            .http
            .post(url)
            .basic_auth(&who.key, Some(&who.secret))
            .header("content-type", "application/xml")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

/// The text of every `<tag>` element (or `<property name="tag">`).
fn all(doc: &str, tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    for open in [format!("<{tag}>"), format!("<property name=\"{tag}\">")] {
        let close = if open.starts_with("<property") {
            "</property>".to_owned()
        } else {
            format!("</{tag}>")
        };
        let mut rest = doc;
        while let Some(i) = rest.find(&open) {
            let after = &rest[i + open.len()..];
            let j = after.find(&close).unwrap();
            out.push(after[..j].to_owned());
            rest = &after[j..];
        }
    }
    out
}

fn one(doc: &str, tag: &str) -> String {
    let v = all(doc, tag);
    assert_eq!(v.len(), 1, "one <{tag}> in {doc}");
    v[0].clone()
}

/// The claims of a JWT (not verified).
fn claims_of(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims")
}

fn hub_error(doc: &str, status: u16, code: &str) {
    assert_eq!(one(doc, "status"), status.to_string(), "{doc}");
    assert_eq!(one(doc, "code"), code, "{doc}");
    assert!(!one(doc, "message").is_empty(), "{doc}");
}

/// A dossier API: answers `GET /dossier/{ref}` with the dossier of the subject poortwachter
/// names, and records what it received.
#[derive(Default)]
struct DossierBackend {
    seen: Mutex<Vec<(String, HeaderMap)>>,
}

async fn start_dossier_backend(b: Arc<DossierBackend>) -> SocketAddr {
    use axum::extract::State;
    let app = axum::Router::new()
        .fallback(
            |State(b): State<Arc<DossierBackend>>, uri: axum::http::Uri, headers: HeaderMap| async move {
                let subject = headers
                    .get("x-poortwachter-subject")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                b.seen.lock().unwrap().push((uri.to_string(), headers));
                (
                    [("content-type", "application/xml")],
                    format!("<dossier><client_bsn>{subject}</client_bsn><path>{}</path></dossier>", uri.path()),
                )
            },
        )
        .with_state(b);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn resource_count(hub: &Instance) -> i64 {
    let url = format!(
        "sqlite://{}",
        hub.data_dir().join("poortwachter.db").display()
    );
    let store = poortwachter::store::Store::open(&url).await.unwrap();
    let n = store.hub_resource_count().await.unwrap();
    store.close().await;
    n
}

/// A provider's poortwachter in front of the dossier backend, accepting Hub source tokens for
/// `audience`.
fn provider(hub: &HubServer, backend: SocketAddr, audience: &str, port: u16) -> Instance {
    let p = Instance::with_config(&format!(
        "upstream = \"http://{backend}\"\n[hub_source]\njwks = \"{}\"\nissuer = \"{}\"\naudience = \"{audience}\"\npolicy = \"hub-dossier\"\nleeway_seconds = 0\n",
        hub.url("/v3/jwks"),
        hub.url(""),
    ));
    p.edit_config(
        "public_addr = \"127.0.0.1:0\"",
        &format!("public_addr = \"127.0.0.1:{port}\""),
    );
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn register_share_search_and_read_through_the_source_token() {
    let hub_instance = Instance::new();
    hub_instance.ok(&["init"]);
    let port_a = free_port();
    let a = add_account(
        &hub_instance,
        &[
            "--name",
            "provider-a",
            "--display-name",
            "Verloskundigen A",
            "--agb",
            "11111111",
            "--source-url",
            &format!("http://127.0.0.1:{port_a}/dossier/{{reference}}"),
        ],
    );
    let b = add_account(
        &hub_instance,
        &[
            "--name",
            "provider-b",
            "--display-name",
            "Kraamzorg B",
            "--agb",
            "22222222",
        ],
    );
    let c = add_account(
        &hub_instance,
        &[
            "--name",
            "provider-c",
            "--display-name",
            "Ziekenhuis C",
            "--agb",
            "33333333",
        ],
    );
    let listed = hub_instance.ok(&["hub", "account", "list", "--json"]);
    assert_eq!(listed.lines().count(), 3);
    assert!(
        !listed.contains(&a.secret) && !listed.contains("argon2"),
        "{listed}"
    );
    let hub = HubServer::start(&hub_instance, &[]);
    let api = Api {
        http: reqwest::Client::new(),
    };

    // A registers; the same BSN and gravida again updates the same dossier.
    let (status, body) = api
        .register(
            &hub.url("/v3/register"),
            &a,
            &dossier_xml(BSN1, "ZW-001", "2", "1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\">OK</status>"), "{body}");
    let key = body
        .split("key=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let (_, again) = api
        .register(
            &hub.url("/v3/register"),
            &a,
            &dossier_xml(BSN1, "ZW-001", "2", "0"),
        )
        .await;
    assert!(again.contains(&format!("key=\"{key}\"")), "{again}");
    assert_eq!(resource_count(&hub_instance).await, 1);

    // Before sharing: A sees its own, B and C nothing.
    let search = hub.url(&format!("/v3/resources?client_bsn={BSN1}"));
    let (status, own) = api.get(&search, &a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all(&own, "key"), vec![key.clone()]);
    assert_eq!(one(&own, "para"), "0");
    assert_eq!(one(&own, "hub_provider_account"), "provider-a");
    assert!(all(&api.get(&search, &b).await.1, "key").is_empty());
    let (status, _) = api.get(&hub.url(&format!("/v3/resources/{key}")), &b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A shares with B: B finds it by BSN, C still does not.
    let (status, body) = api
        .get(
            &hub.url(&format!("/v3/resources/{key}/add-share/provider-b/full")),
            &a,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, found) = api.get(&search, &b).await;
    assert_eq!(all(&found, "key"), vec![key.clone()]);
    assert_eq!(one(&found, "client_bsn"), BSN1);
    assert_eq!(one(&found, "client_birthdate"), "19920314");
    assert_eq!(one(&found, "gravida"), "2");
    assert!(all(&api.get(&search, &c).await.1, "key").is_empty());
    let (status, _) = api.get(&hub.url(&format!("/v3/resources/{key}")), &b).await;
    assert_eq!(status, StatusCode::OK);

    // Shares: the registrar lists them; B may not.
    let (status, shares) = api
        .get(&hub.url(&format!("/v3/resources/{key}/shares")), &a)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one(&shares, "granteeName"), "provider-b");
    assert_eq!(one(&shares, "granteeDisplayName"), "Kraamzorg B");
    assert_eq!(one(&shares, "permission"), "full");
    assert_eq!(one(&shares, "resourceKey"), key);
    let (status, body) = api
        .get(&hub.url(&format!("/v3/resources/{key}/shares")), &b)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    hub_error(&body, 403, "forbidden");

    // A share by AGB code reaches every account with that AGB; removing it works at once.
    api.get(
        &hub.url(&format!("/v3/resources/{key}/add-share/33333333/read")),
        &a,
    )
    .await;
    assert_eq!(all(&api.get(&search, &c).await.1, "key"), vec![key.clone()]);
    let (status, _) = api
        .get(
            &hub.url(&format!("/v3/resources/{key}/remove-share/33333333")),
            &a,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(all(&api.get(&search, &c).await.1, "key").is_empty());
    let (status, body) = api
        .get(
            &hub.url(&format!("/v3/resources/{key}/add-share/nobody/full")),
            &a,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    hub_error(&body, 404, "unknown-account");
    let (status, body) = api
        .get(
            &hub.url(&format!("/v3/resources/{key}/add-share/provider-b/owner")),
            &a,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    hub_error(&body, 400, "invalid-permission");

    // The source: where the dossier lives and a token for B, signed by the Hub.
    let (status, source) = api
        .get(&hub.url(&format!("/v3/resources/{key}/source")), &b)
        .await;
    assert_eq!(status, StatusCode::OK, "{source}");
    assert_eq!(one(&source, "api"), "v3");
    assert_eq!(one(&source, "account"), "provider-a");
    assert_eq!(one(&source, "displayname"), "Verloskundigen A");
    let url = one(&source, "url");
    assert_eq!(url, format!("http://127.0.0.1:{port_a}/dossier/ZW-001"));
    let jwt = one(&source, "jwt");
    let claims = claims_of(&jwt);
    assert_eq!(claims["aud"], "provider-a");
    assert_eq!(claims["sub"], BSN1);
    assert_eq!(claims["acc_name"], "provider-b");
    assert_eq!(claims["acc_display_name"], "Kraamzorg B");
    assert_eq!(claims["iss"], hub.url(""));
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let header: serde_json::Value = {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "RS512");

    // Provider A's poortwachter in front of its dossier backend; C runs one too.
    let backend = Arc::new(DossierBackend::default());
    let backend_addr = start_dossier_backend(backend.clone()).await;
    let provider_a = provider(&hub, backend_addr, "provider-a", port_a);
    let server_a = provider_a.serve();
    let provider_c = provider(&hub, backend_addr, "provider-c", free_port());
    let server_c = provider_c.serve();
    let http = reqwest::Client::new();

    // B reads A's dossier with the token in the URL, and as a Bearer token.
    let r = http.get(format!("{url}?jwt={jwt}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/xml");
    assert_eq!(
        r.text().await.unwrap(),
        format!("<dossier><client_bsn>{BSN1}</client_bsn><path>/dossier/ZW-001</path></dossier>")
    );
    let r = http.get(&url).bearer_auth(&jwt).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .get(format!("{url}?client_bsn={BSN1}&jwt={jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    {
        let seen = backend.seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        for (uri, headers) in seen.iter() {
            assert_eq!(
                uri, "/dossier/ZW-001",
                "no token and no BSN in a URL we send"
            );
            assert_eq!(headers["x-poortwachter-subject"], BSN1);
            assert_eq!(headers["x-poortwachter-requester"], "hub:provider-b");
            assert_eq!(headers["x-poortwachter-purpose"], "hub-dossier");
            assert!(headers.get("authorization").is_none());
        }
    }

    // Refused: another BSN, another provider, a tampered or missing token, two tokens.
    let refused = |status: u16, code: &str| {
        let code = code.to_owned();
        move |(s, body): (StatusCode, String)| {
            assert_eq!(s.as_u16(), status, "{body}");
            hub_error(&body, status, &code);
        }
    };
    let get = |u: String, bearer: Option<String>| {
        let http = http.clone();
        async move {
            let mut r = http.get(u);
            if let Some(b) = bearer {
                r = r.bearer_auth(b);
            }
            let r = r.send().await.unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(ct, "application/xml; charset=utf-8");
            (r.status(), r.text().await.unwrap())
        }
    };
    refused(403, "forbidden")(get(format!("{url}?client_bsn={BSN2}&jwt={jwt}"), None).await);
    refused(403, "forbidden")(get(format!("{url}?client_bsn={BSN2}"), Some(jwt.clone())).await);
    refused(401, "login")(
        get(
            format!("http://{}/dossier/ZW-001?jwt={jwt}", server_c.public),
            None,
        )
        .await,
    );
    let mut tampered = jwt.clone();
    tampered.insert(jwt.find('.').unwrap() + 5, 'x');
    refused(401, "login")(get(format!("{url}?jwt={tampered}"), None).await);
    refused(400, "invalid")(get(format!("{url}?jwt={jwt}"), Some(jwt.clone())).await);
    refused(400, "invalid")(get(format!("{url}?jwt={jwt}&jwt={jwt}"), None).await);
    refused(403, "forbidden")(
        get(
            format!("http://127.0.0.1:{port_a}/dossier/ZW-001/x?jwt={jwt}"),
            None,
        )
        .await,
    );
    refused(403, "forbidden")(
        get(
            format!("http://127.0.0.1:{port_a}/dossier/ZW-001?other=1&jwt={jwt}"),
            None,
        )
        .await,
    );
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        backend.seen.lock().unwrap().len(),
        3,
        "refused requests never arrive"
    );

    // An expired token. A second Hub on the same data dir and store mints 1 s tokens; rather
    // than wait for one to expire, the test signs the same claims with the Hub's key (from its
    // data dir): still valid they are accepted, expired a second ago they are refused.
    let short = HubServer::start(
        &hub_instance,
        &["--token-lifetime", "1", "--issuer", &hub.url("")],
    );
    let (_, source) = api
        .get(&short.url(&format!("/v3/resources/{key}/source")), &b)
        .await;
    let short_claims: SourceClaims =
        serde_json::from_value(claims_of(&one(&source, "jwt"))).unwrap();
    assert_eq!(short_claims.exp - short_claims.iat, 1, "--token-lifetime");
    let hub_key = HubKey::load(&key_path(&hub_instance.data_dir())).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = |iat: i64, exp: i64| {
        hub_key
            .sign(&SourceClaims {
                iat,
                nbf: iat,
                exp,
                ..short_claims.clone()
            })
            .unwrap()
    };
    let (valid, expired) = (signed(now, now + 60), signed(now - 61, now - 1));
    assert_eq!(
        http.get(format!("{url}?jwt={valid}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    refused(401, "login")(get(format!("{url}?jwt={expired}"), None).await);
    assert_eq!(backend.seen.lock().unwrap().len(), 4);

    // The audit log of A: every request, allowed or not, without the token or the BSN in the path.
    let export = provider_a.ok(&["audit", "export"]);
    let records: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hub_records: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["kind"] == "hub-source")
        .collect();
    assert!(hub_records.len() >= 12, "{export}");
    assert!(
        !export.contains(&jwt) && !export.contains("jwt="),
        "{export}"
    );
    assert!(hub_records
        .iter()
        .all(|r| !r["path"].as_str().unwrap().contains(BSN2)));
    let permits = hub_records
        .iter()
        .filter(|r| r["decision"] == "permit")
        .count();
    assert_eq!(permits, 4);
    assert!(hub_records
        .iter()
        .any(|r| r["rule"].as_str().unwrap().contains("expired")));
    assert!(hub_records
        .iter()
        .any(|r| r["requester"] == "hub:provider-b"
            && r["bsn"] == BSN1
            && r["decision"] == "deny"));
    provider_a.ok(&["audit", "verify"]);
    drop(server_c);
    drop(server_a);

    // Disabling an account: its key stops working within a second (an account is cached for at
    // most 1 s). Asked every few ms, it works until the first refusal, which must come by then.
    hub_instance.ok(&["hub", "account", "disable", "provider-b"]);
    let disabled = Instant::now();
    let refused = loop {
        let sent = disabled.elapsed();
        let (status, body) = api.get(&search, &b).await;
        if status == StatusCode::UNAUTHORIZED {
            break Some((sent, body));
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        if disabled.elapsed() > Duration::from_secs(5) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (sent, body) = refused.expect("the key still works 5 s after it was disabled");
    assert!(
        sent <= Duration::from_millis(1100),
        "refused only {sent:?} after it was disabled"
    );
    hub_error(&body, 401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_documented_error_and_stores_nothing() {
    let hub_instance = Instance::new();
    hub_instance.ok(&["init"]);
    let a = add_account(
        &hub_instance,
        &["--name", "provider-a", "--display-name", "Verloskundigen A"],
    );
    let hub = HubServer::start(&hub_instance, &[]);
    let api = Api {
        http: reqwest::Client::new(),
    };
    let register = hub.url("/v3/register");
    let good = dossier_xml(BSN1, "ZW-001", "1", "0");
    let with = |from: &str, to: &str| good.replace(from, to);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("malformed", "<resource type=\"perinatologie/dossier\"><property".into(), 400, "invalid-xml"),
        ("not xml", "{\"client_bsn\": \"999999990\"}".into(), 400, "invalid-xml"),
        ("empty", String::new(), 400, "invalid-xml"),
        (
            "xxe",
            format!("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}", with("ZW-001", "&x;").split("?>").nth(1).unwrap()),
            400,
            "invalid-xml",
        ),
        (
            "billion laughs",
            format!("<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>{}", with("ZW-001", "&c;").split("?>").nth(1).unwrap()),
            400,
            "invalid-xml",
        ),
        ("undeclared entity", with("ZW-001", "&x;"), 400, "invalid-xml"),
        (
            "deep nesting",
            with("ZW-001", &format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000))),
            400,
            "invalid-xml",
        ),
        ("invalid BSN", with(BSN1, "162339584"), 400, "invalid-bsn"),
        ("BSN with spaces", with(BSN1, "9999 99990"), 400, "invalid-bsn"),
        ("full-width BSN", with(BSN1, "９９９９９９９９０"), 400, "invalid-bsn"),
        ("invalid date", with("19920314", "19920231"), 400, "invalid-date"),
        ("date format", with("20270402", "2027-04-02"), 400, "invalid-date"),
        ("negative gravida", with(">1<", ">-1<"), 400, "invalid-number"),
        ("para not a number", with(">0<", ">nul<"), 400, "invalid-number"),
        (
            "unknown field",
            with("</resource>", "<property name=\"blood_type\">A</property></resource>"),
            400,
            "unknown-property",
        ),
        (
            "repeated field",
            with("</resource>", "<property name=\"para\">1</property></resource>"),
            400,
            "repeated-property",
        ),
        (
            "missing field",
            with("<property name=\"edd\">20270402</property>", ""),
            400,
            "missing-property",
        ),
        (
            "wrong type",
            with("perinatologie/dossier", "perinatologie/kind"),
            400,
            "invalid-resource-type",
        ),
        (
            "oversized",
            with("Anna de Vries", &"A".repeat(70 * 1024)),
            413,
            "too-large",
        ),
    ];
    for (name, body, status, code) in &cases {
        let (s, doc) = api.register(&register, &a, body).await;
        assert_eq!(s.as_u16(), *status, "{name}: {doc}");
        hub_error(&doc, *status, code);
        assert!(
            !doc.contains("/etc/passwd") && !doc.contains(BSN1),
            "{name}: {doc}"
        );
    }
    // Wrong content type, wrong method, unknown query parameters.
    let r = api
        .http
        .post(&register)
        .basic_auth(&a.key, Some(&a.secret))
        .header("content-type", "application/json")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    hub_error(&r.text().await.unwrap(), 415, "unsupported-media-type");
    let (s, doc) = api.get(&register, &a).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    hub_error(&doc, 405, "method-not-allowed");
    for (q, code) in [
        ("bsn=999999990", "invalid-filter"),
        (
            "client_bsn=999999990&client_bsn=999999990",
            "invalid-filter",
        ),
        ("", "invalid-filter"),
        ("client_bsn=12345", "invalid-bsn"),
        ("edd=morgen", "invalid-date"),
    ] {
        let (s, doc) = api.get(&hub.url(&format!("/v3/resources?{q}")), &a).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        hub_error(&doc, 400, code);
    }
    assert_eq!(resource_count(&hub_instance).await, 0, "nothing stored");

    // Wrong credentials: the same answer for an unknown key and a wrong secret.
    let unknown = Account {
        key: "hk_unknown".into(),
        secret: a.secret.clone(),
    };
    let wrong = Account {
        key: a.key.clone(),
        secret: "not-the-secret".into(),
    };
    let (s1, d1) = api.register(&register, &unknown, &good).await;
    let (s2, d2) = api.register(&register, &wrong, &good).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(d1, d2);
    hub_error(&d1, 401, "unauthorized");
    let r = api
        .http
        .post(&register)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"hub\"");
    assert_eq!(resource_count(&hub_instance).await, 0, "nothing stored");

    // The good document is accepted.
    let (s, doc) = api.register(&register, &a, &good).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    assert_eq!(resource_count(&hub_instance).await, 1);

    // CLI refusals.
    let (code, _, err) = hub_instance.run(&[
        "hub",
        "account",
        "add",
        "--name",
        "provider-a",
        "--display-name",
        "Again",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("an account named provider-a exists"), "{err}");
    let (code, _, err) = hub_instance.run(&[
        "hub",
        "account",
        "add",
        "--name",
        "x",
        "--display-name",
        "X",
        "--agb",
        "123",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("AGB code must be 8 digits"), "{err}");
    let (code, _, err) = hub_instance.run(&["hub", "account", "disable", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("no account named nobody"), "{err}");
}

/// Every failed login costs exactly one argon2 verification, whether the key is unknown or the
/// secret wrong (so timing does not tell them apart); a verified secret is remembered.
#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_cost_the_same() {
    use base64::Engine as _;
    use poortwachter::hub::auth::Authenticator;
    let dir = tempfile::tempdir().unwrap();
    let store = poortwachter::store::Store::open(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("hub.db").display()
    ))
    .await
    .unwrap();
    let made = poortwachter::hub::add_account(
        &store,
        poortwachter::hub::AccountSpec {
            name: "provider-a".into(),
            display_name: "A".into(),
            source_api: "v3".into(),
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    let auth = Authenticator::new(store.clone()).unwrap();
    let basic = |k: &str, s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{k}:{s}"))
        )
    };
    let before = auth.hash_verifications();
    let e1 = auth
        .authenticate(Some(&basic("hk_nobody", "x")))
        .await
        .unwrap_err();
    assert_eq!(auth.hash_verifications(), before + 1);
    let e2 = auth
        .authenticate(Some(&basic(&made.account.api_key, "wrong")))
        .await
        .unwrap_err();
    assert_eq!(auth.hash_verifications(), before + 2);
    assert_eq!(e1, e2);
    let ok = auth
        .authenticate(Some(&basic(&made.account.api_key, &made.secret)))
        .await
        .unwrap();
    assert_eq!(ok.name, "provider-a");
    assert_eq!(auth.hash_verifications(), before + 3);
    auth.authenticate(Some(&basic(&made.account.api_key, &made.secret)))
        .await
        .unwrap();
    assert_eq!(auth.hash_verifications(), before + 3, "remembered");
    // A wrong secret after a good one still pays argon2.
    auth.authenticate(Some(&basic(&made.account.api_key, "wrong")))
        .await
        .unwrap_err();
    assert_eq!(auth.hash_verifications(), before + 4);
}

/// `policy check` decides hub-source policies too; `[hub_source]` without its policy stops
/// start-up with a clear error.
#[test]
fn policy_check_and_misconfiguration() {
    let i = Instance::new();
    let (code, out, _) = i.run(&[
        "policy",
        "check",
        "--purpose",
        "hub-dossier",
        "--request",
        &format!("GET /dossier/ZW-1?client_bsn={BSN2}"),
        "--bsn",
        BSN1,
    ]);
    assert_eq!((code, out.trim()), (1, "deny (parameter-value)"));
    let (code, out, _) = i.run(&[
        "policy",
        "check",
        "--purpose",
        "hub-dossier",
        "--request",
        "GET /dossier/ZW-1",
        "--bsn",
        BSN1,
    ]);
    assert_eq!((code, out.trim()), (0, "permit (dossier-read)"));
    let jwks = i.path("jwks.json");
    std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
    let bad = Instance::with_config(&format!(
        "[hub_source]\njwks = \"{}\"\nissuer = \"https://hub.example\"\naudience = \"provider-a\"\npolicy = \"zorginzage-thuiszorgdossier-door-huisarts\"\n",
        jwks.display()
    ));
    let (code, _, err) = bad.run(&["serve"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("hub_source: policy \"zorginzage-thuiszorgdossier-door-huisarts\" is not a hub-source policy"),
        "{err}"
    );
    let no_keys = Instance::with_config(&format!(
        "[hub_source]\njwks = \"{}\"\nissuer = \"https://hub.example\"\naudience = \"provider-a\"\npolicy = \"hub-dossier\"\n",
        jwks.display()
    ));
    let (code, _, err) = no_keys.run(&["serve"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("hub_source: the Hub's keys: the JWKS holds no RSA key"),
        "{err}"
    );
    let http = Instance::with_config(
        "[hub_source]\njwks = \"http://hub.example/v3/jwks\"\nissuer = \"x\"\naudience = \"provider-a\"\npolicy = \"hub-dossier\"\n",
    );
    let (code, _, err) = http.run(&["serve"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("hub_source.jwks: must be https (http only to a loopback address)"),
        "{err}"
    );
}
