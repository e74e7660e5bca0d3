//! `poortwachter demo medmij`: MedMij "Delen" to click through in your own browser. In one
//! process: a sample source system (accepts MHD provide-document transactions; not receptive for
//! BSN 111222333), poortwachter as the DVA (`[medmij]` with the development login, lists written
//! for the demo) and a demo PGO over HTTPS at `pgo.localhost` (its certificate is its own, so the
//! browser warns once). `--once` runs the same steps without a browser and exits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde_json::{json, Value};

use super::Context;
use crate::medmij::settings::{ListSource, Login, MedmijSettings};

/// The demo PGO's host name (browsers resolve `*.localhost` to the loopback address).
const PGO_HOST: &str = "pgo.localhost";
/// A person the sample source system is receptive for, and one it is not.
const BSN: &str = "999999990";
const NOT_RECEPTIVE: &str = "111222333";

const OCL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<OAuthclientlist xmlns="xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release2/">
    <Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel>
    <Volgnummer>1</Volgnummer>
    <OAuthclients>
        <OAuthclient>
            <Hostname>pgo.localhost</Hostname>
            <OAuthclientOrganisatienaam>Demo-PGO</OAuthclientOrganisatienaam>
        </OAuthclient>
    </OAuthclients>
</OAuthclientlist>
"#;
const WHITELIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Whitelist xmlns="xmlns://afsprakenstelsel.medmij.nl/whitelist/release2/">
    <Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel>
    <Volgnummer>1</Volgnummer>
    <MedMijNodes>
        <MedMijNode>
            <Hostname>pgo.localhost</Hostname>
        </MedMijNode>
    </MedMijNodes>
</Whitelist>
"#;

/// The MHD provide-document Bundle the demo PGO sends (a one-line "PDF").
const BUNDLE: &str = r#"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"DocumentManifest","status":"current","description":"Meetwaarden thuis"},"request":{"method":"POST","url":"DocumentManifest"}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"contentType":"application/pdf","url":"urn:uuid:3"}}]},"request":{"method":"POST","url":"DocumentReference"}},{"fullUrl":"urn:uuid:3","resource":{"resourceType":"Binary","contentType":"application/pdf","content":"JVBERi0xLjQK"},"request":{"method":"POST","url":"Binary"}}]}"#;

/// The sample source system: `POST /` places a document transaction; `POST /receptive`.
async fn start_source() -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route(
            "/receptive",
            axum::routing::post(|axum::Json(ask): axum::Json<Value>| async move {
                let yes = ask["bsn"] != NOT_RECEPTIVE;
                axum::Json(if yes {
                    json!({"receptive": true})
                } else {
                    json!({"receptive": false, "reason": "U bent bij ons (nog) niet bekend als patiënt."})
                })
            }),
        )
        .route(
            "/",
            axum::routing::post(|headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                let subject = headers
                    .get("x-poortwachter-subject")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                println!(
                    "   [source system] POST / ({} bytes) for the person with BSN {subject}",
                    body.len()
                );
                (
                    [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
                    json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
                        {"response": {"status": "201 Created", "location": "DocumentManifest/1/_history/1"}},
                        {"response": {"status": "201 Created", "location": "DocumentReference/1/_history/1"}},
                        {"response": {"status": "201 Created", "location": "Binary/1/_history/1"}}
                    ]})
                    .to_string(),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// The demo PGO: starts an authorization (state and PKCE verifier remembered), and on the way
/// back exchanges the code and posts the Bundle.
struct Pgo {
    /// `https://pgo.localhost:PORT`.
    base: String,
    /// poortwachter's public URL.
    dva: String,
    pending: Mutex<HashMap<String, String>>,
    http: reqwest::Client,
}

impl Pgo {
    fn start(&self) -> String {
        let state = crate::medmij::random_secret();
        let verifier = crate::medmij::random_secret();
        let challenge = crate::medmij::s256(&verifier);
        if let Ok(mut p) = self.pending.lock() {
            p.insert(state.clone(), verifier);
        }
        let mut u = format!("{}/medmij/authorize?", self.dva);
        u.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("response_type", "code")
                .append_pair("client_id", PGO_HOST)
                .append_pair("redirect_uri", &format!("{}/terug", self.base))
                .append_pair("scope", "umcharderwijk~48")
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("MedMij-Request-ID", &uuid::Uuid::new_v4().to_string())
                .append_pair("X-Correlation-ID", &uuid::Uuid::new_v4().to_string())
                .finish(),
        );
        u
    }

    /// Back from poortwachter: what the PGO did, in Dutch lines.
    async fn back(&self, q: &HashMap<String, String>) -> Vec<String> {
        let verifier = q
            .get("state")
            .and_then(|s| self.pending.lock().ok().and_then(|mut p| p.remove(s)));
        let Some(verifier) = verifier else {
            return vec!["Onbekende of al gebruikte state: niets gedaan.".into()];
        };
        if let Some(error) = q.get("error") {
            return vec![format!(
                "Niet gedeeld: {error} ({}).",
                q.get("error_description").map_or("", String::as_str)
            )];
        }
        let Some(code) = q.get("code") else {
            return vec!["Geen code ontvangen.".into()];
        };
        let mut lines = Vec::new();
        let token = self
            .http
            .post(format!("{}/medmij/token", self.dva))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", &format!("{}/terug", self.base)),
                ("client_id", PGO_HOST),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await;
        let token: Value = match token {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => return vec![format!("Tokenaanvraag mislukt: {e}")],
        };
        let Some(access) = token["access_token"].as_str() else {
            return vec![format!("Geen token: {token}")];
        };
        lines.push(format!(
            "Token ontvangen voor {} (geldig {} s).",
            token["scope"].as_str().unwrap_or_default(),
            token["expires_in"]
        ));
        let placed = self
            .http
            .post(format!("{}/medmij/fhir/", self.dva))
            .bearer_auth(access)
            .header("content-type", "application/fhir+json")
            .body(BUNDLE)
            .send()
            .await;
        match placed {
            Ok(r) => {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or_default();
                lines.push(format!("Document verstuurd: HTTP {status}."));
                for e in body["entry"].as_array().into_iter().flatten() {
                    lines.push(format!(
                        "  {} {}",
                        e["response"]["status"].as_str().unwrap_or_default(),
                        e["response"]["location"].as_str().unwrap_or_default()
                    ));
                }
            }
            Err(e) => lines.push(format!("Versturen mislukt: {e}")),
        }
        lines
    }
}

fn page(title: &str, body: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!DOCTYPE html><html lang=\"nl\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;line-height:1.5}}\
         a.knop{{display:inline-block;padding:.6rem 1.4rem;background:#7a3e9d;color:#fff;border-radius:.3rem;text-decoration:none}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Serves the demo PGO over HTTPS (a self-signed certificate for `pgo.localhost`).
async fn serve_pgo(listener: tokio::net::TcpListener, pgo: Arc<Pgo>) -> anyhow::Result<()> {
    let key = rcgen::KeyPair::generate().context("PGO key")?;
    let cert = rcgen::CertificateParams::new(vec![PGO_HOST.to_owned()])
        .context("PGO certificate")?
        .self_signed(&key)
        .context("PGO certificate")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let start = pgo.clone();
    let back = pgo;
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                page(
                    "Demo-PGO",
                    "<p>Uw meetwaarden van thuis staan klaar als PDF.</p>\
                     <p><a class=\"knop\" href=\"/start\">Deel dit document met UMC Harderwijk</a></p>",
                )
            }),
        )
        .route(
            "/start",
            axum::routing::get(move || {
                let to = start.start();
                async move { axum::response::Redirect::to(&to) }
            }),
        )
        .route(
            "/terug",
            axum::routing::get(
                move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                    let pgo = back.clone();
                    async move {
                        let lines = pgo.back(&q).await;
                        let items: String = lines.iter().map(|l| format!("<li>{}</li>", escape(l))).collect();
                        page("Demo-PGO: terug van UMC Harderwijk", &format!("<ul>{items}</ul><p><a href=\"/\">Opnieuw</a></p>"))
                    }
                },
            ),
        );
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}

/// The `[medmij]` of the demo.
fn settings(root: &std::path::Path, source: &str) -> anyhow::Result<MedmijSettings> {
    let lists = root.join("medmij");
    std::fs::create_dir_all(&lists)?;
    std::fs::write(lists.join("MedMij_OAuthclientlist.xml"), OCL)?;
    std::fs::write(lists.join("MedMij_Whitelist.xml"), WHITELIST)?;
    std::fs::write(
        lists.join("MedMij_Gegevensdienstnamenlijst.xml"),
        include_str!("../../medmij/MedMij_Gegevensdienstnamenlijst.xml"),
    )?;
    Ok(MedmijSettings {
        aanbieder: "umcharderwijk".into(),
        aanbieder_display_name: "UMC Harderwijk".into(),
        gegevensdiensten: vec!["48".into()],
        oauth_client_list: ListSource::File(lists.join("MedMij_OAuthclientlist.xml")),
        whitelist: ListSource::File(lists.join("MedMij_Whitelist.xml")),
        gegevensdienst_name_list: ListSource::File(
            lists.join("MedMij_Gegevensdienstnamenlijst.xml"),
        ),
        zorgaanbieder_list: None,
        lists_refresh: std::time::Duration::from_secs(3600),
        token_lifetime: std::time::Duration::from_secs(900),
        require_client_certificate: false,
        login: Login::DangerousDev,
        receptive: vec!["48".into()],
        receptiveness_url: Some(url::Url::parse(&format!("{source}/receptive"))?),
        receptiveness_timeout: std::time::Duration::from_secs(3),
    })
}

pub(crate) async fn run(ctx: &Context, once: bool) -> anyhow::Result<i32> {
    let root =
        std::env::temp_dir().join(format!("poortwachter-demo-medmij-{}", std::process::id()));
    crate::identity::create_private_dir(&root)?;
    println!("poortwachter demo medmij (data in {})\n", root.display());
    let source = start_source().await?;
    println!("1. Sample source system at {source} (places MHD document transactions)");

    let (public_addr, pgo_addr) = if once {
        ("127.0.0.1:0", "127.0.0.1:0")
    } else {
        ("127.0.0.1:8080", "127.0.0.1:8443")
    };
    let public = crate::server::bind(public_addr.parse()?).await?;
    let internal = crate::server::bind("127.0.0.1:0".parse()?).await?;
    let pgo_listener = tokio::net::TcpListener::bind(pgo_addr)
        .await
        .with_context(|| format!("cannot listen on {pgo_addr} for the demo PGO"))?;
    let dva = format!("http://{}", public.local_addr()?);
    let pgo_base = format!("https://{PGO_HOST}:{}", pgo_listener.local_addr()?.port());

    let mut config = ctx.config.clone();
    config.data_dir = root.join("dva");
    config.database_url = format!(
        "sqlite://{}?mode=rwc",
        config.data_dir.join("poortwachter.db").display()
    );
    config.public_url = url::Url::parse(&dva)?;
    config.upstream = Some(url::Url::parse(&source)?);
    config.policies_dir = root.join("policies");
    config.hub_source = None;
    config.tls = None;
    config.medmij = Some(settings(&root, &source)?);
    std::fs::create_dir_all(&config.policies_dir)?;
    std::fs::write(
        config.policies_dir.join("medmij-48.toml"),
        crate::policy::shipped::text("medmij-48").unwrap_or_default(),
    )?;
    let state = crate::app::build_state(config).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::run_on(
        state.clone(),
        public,
        internal,
        async move {
            let _ = stop_rx.await;
        },
    ));
    println!(
        "2. poortwachter as the DVA of UMC Harderwijk at {dva} (development login: a test BSN)"
    );
    let pgo = Arc::new(Pgo {
        base: pgo_base.clone(),
        dva: dva.clone(),
        pending: Mutex::new(HashMap::new()),
        http: reqwest::Client::new(),
    });
    tokio::spawn(serve_pgo(pgo_listener, pgo.clone()));
    println!("3. Demo-PGO at {pgo_base}\n");

    if once {
        let outcome = click_through(&pgo).await;
        let _ = stop_tx.send(());
        let _ = server.await;
        return outcome;
    }
    println!(
        "Open {pgo_base}/ in your browser (it warns once about the demo PGO's own certificate)."
    );
    println!("Log in with test BSN {BSN} (receptive) or {NOT_RECEPTIVE} (not receptive), then Ja or Nee.");
    println!(
        "Audit log: poortwachter audit export --database-url sqlite://{}/dva/poortwachter.db\n",
        root.display()
    );
    println!("Ctrl-C stops the demo.");
    crate::server::wait_for_signal().await;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(0)
}

/// `--once`: the person's steps without a browser (cookie kept by hand), then the PGO's.
async fn click_through(pgo: &Pgo) -> anyhow::Result<i32> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let start = pgo.start();
    let r = http.get(&start).send().await?;
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let page = r.text().await?;
    println!(
        "4. The landing page asks the person to log in: {}",
        if page.contains("BSN (testnummer)") {
            "yes"
        } else {
            "NO"
        }
    );
    let csrf = |page: &str| -> String {
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_owned()
    };
    let r = http
        .post(format!("{}/medmij/login/dev", pgo.dva))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf(&page).as_str()), ("bsn", BSN)])
        .send()
        .await?;
    println!(
        "5. Logged in with test BSN {BSN}: HTTP {} → {}",
        r.status().as_u16(),
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    );
    let page = http
        .get(format!("{}/medmij/confirm", pgo.dva))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    println!(
        "6. Confirmation page: {}",
        if page.contains("Wilt u dat Demo-PGO deze gegevens deelt met UMC Harderwijk?") {
            "shown"
        } else {
            "NOT SHOWN"
        }
    );
    let r = http
        .post(format!("{}/medmij/confirm", pgo.dva))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf(&page).as_str()), ("keuze", "ja")])
        .send()
        .await?;
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    println!(
        "7. \"Ja\": back to the PGO with a code ({})",
        location.split('?').next().unwrap_or_default()
    );
    let q: HashMap<String, String> = url::Url::parse(&location)?
        .query_pairs()
        .into_owned()
        .collect();
    let lines = pgo.back(&q).await;
    println!("8. The PGO:");
    for l in &lines {
        println!("   {l}");
    }
    let ok = lines
        .iter()
        .any(|l| l.starts_with("Document verstuurd: HTTP 200"));
    println!(
        "\n{}",
        if ok {
            "Delen worked."
        } else {
            "Delen did NOT work."
        }
    );
    Ok(if ok { 0 } else { 1 })
}
