//! MedMij "Delen" in a real browser (Chromium through WebDriver): a test PGO (the DVP, an HTTPS
//! server of this test, reached as `pgo.example.nl`) starts the authorization; the person logs
//! in at the real OpenID provider (`tests/oidc`), confirms with "Ja", and the browser lands back
//! at the PGO with a code; the PGO exchanges it with its PKCE verifier and posts an MHD Bundle
//! that reaches the test source system. Screenshots of the landing, confirmation and error
//! pages (and, with the development login, the not-receptive page) go to the test output.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use super::browser_support::{browser_tools, Browser};
use super::medmij::{
    authorize_query, medmij_config, mhd_bundle, pkce, post_fhir, start_source, BSN,
    NOT_RECEPTIVE_BSN,
};
use super::oidc_support::{OidcAccount, OidcClient, OpenIdProvider};
use super::support::Instance;

/// The test PGO: HTTPS with a certificate for `pgo.example.nl` (the browser maps that name to
/// 127.0.0.1 and, the certificate being the test's own, skips the certificate check). Its
/// `/delen/terug` hands the query to the test and shows a page.
async fn start_pgo() -> (
    u16,
    tokio::sync::mpsc::UnboundedReceiver<HashMap<String, String>>,
) {
    let ca = poortwachter::tls::testing::TestCa::new("Test PGO CA");
    let cert = ca.server("pgo.example.nl");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], cert.key_der())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/delen/terug",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let said = if q.contains_key("code") { "Gelukt: u hebt bevestigd." } else { "Er is niet gedeeld." };
                let _ = tx.send(q);
                async move {
                    axum::response::Html(format!(
                        "<!DOCTYPE html><html lang=\"nl\"><title>Voorbeeld PGO</title><h1>Terug bij Voorbeeld PGO</h1><p>{said}</p></html>"
                    ))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
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
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (port, rx)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromium_args() -> Vec<String> {
    vec![
        "--host-resolver-rules=MAP pgo.example.nl 127.0.0.1".into(),
        "--ignore-certificate-errors".into(),
    ]
}

async fn back_at_pgo(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<HashMap<String, String>>,
) -> HashMap<String, String> {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("back at the PGO within 30 s")
        .expect("a callback")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shares_a_document_with_the_openid_login() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let source = start_source().await;
    let (pgo_port, mut callbacks) = start_pgo().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let secret = poortwachter::medmij::random_secret();
    let Some(op) = OpenIdProvider::start(
        &[OidcClient {
            client_id: "poortwachter".into(),
            client_secret: secret.clone(),
            redirect_uris: vec![format!("{base}/medmij/login/callback")],
        }],
        &[OidcAccount {
            username: "jan".into(),
            password: "geheim-wachtwoord".into(),
            bsn: BSN.into(),
            name: "Jan Jansen".into(),
        }],
    ) else {
        return;
    };
    let instance = Instance::with_config(&medmij_config(&source, ""));
    std::fs::write(instance.path("oidc-secret"), &secret).unwrap();
    instance.edit_config(
        "public_addr = \"127.0.0.1:0\"",
        &format!("public_addr = \"127.0.0.1:{port}\"\npublic_url = \"{base}\""),
    );
    let oidc = format!(
        "[medmij.oidc]\nissuer = \"{}\"\nclient_id = \"poortwachter\"\nclient_secret_file = \"{}\"\nbsn_claim = \"bsn\"\ndangerous_allow_http_loopback = true\n",
        op.issuer,
        instance.path("oidc-secret").display()
    );
    let cfg = std::fs::read_to_string(instance.path("config.toml")).unwrap();
    std::fs::write(instance.path("config.toml"), format!("{cfg}{oidc}")).unwrap();
    let server = instance.serve();

    let redirect = format!("https://pgo.example.nl:{pgo_port}/delen/terug");
    let (verifier, challenge) = pkce();
    let browser = Browser::launch_with(
        &tools,
        "chromium_shares_a_document_with_the_openid_login",
        &chromium_args(),
    )
    .await;

    // First the person stops at the provider (Cancel on its consent page): the flow ends with a
    // page saying so, and the way back tells the PGO access_denied.
    browser
        .goto(&format!(
            "{base}/medmij/authorize?{}",
            authorize_query(&redirect, "umcharderwijk~48", "pgo-state-0", None)
        ))
        .await;
    browser
        .wait_for_text("Gegevens delen met UMC Harderwijk")
        .await;
    browser.click_link("Inloggen").await;
    browser
        .wait_for_text("Sign in to continue to poortwachter")
        .await;
    browser.fill("Username", "jan").await;
    browser.fill("Password", "geheim-wachtwoord").await;
    browser.click_button("Sign in").await;
    browser.wait_for_text("poortwachter asks for:").await;
    browser.click_button("Cancel").await;
    let stopped = browser.wait_for_text("Delen is gestopt").await;
    assert!(
        stopped.contains("U hebt het inloggen afgebroken."),
        "{stopped}"
    );
    eprintln!(
        "screenshot: {}",
        browser.screenshot("stopped-at-provider").await.display()
    );
    browser.click_link("Terug naar Voorbeeld PGO").await;
    let back = back_at_pgo(&mut callbacks).await;
    assert_eq!(back.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(back.get("state").map(String::as_str), Some("pgo-state-0"));

    // The landing page: who asks, what, for whom; the way to log in.
    browser
        .goto(&format!(
            "{base}/medmij/authorize?{}",
            authorize_query(
                &redirect,
                "umcharderwijk~48",
                "pgo-state-1",
                Some(&challenge)
            )
        ))
        .await;
    let landing = browser
        .wait_for_text("Gegevens delen met UMC Harderwijk")
        .await;
    assert!(
        landing.contains("Voorbeeld PGO wil namens u gegevens delen met UMC Harderwijk."),
        "{landing}"
    );
    assert!(landing.contains("Documenten delen met uw zorgverlener"));
    assert!(
        !landing.contains("Testomgeving"),
        "no development login here"
    );
    eprintln!(
        "screenshot: {}",
        browser.screenshot("landing").await.display()
    );
    browser.click_link("Inloggen").await;

    // At the OpenID provider: still signed in from before, so only the consent (else sign in).
    let at_op = browser.wait_for_text("Test OpenID provider").await;
    if at_op.contains("Sign in to continue") {
        browser.fill("Username", "jan").await;
        browser.fill("Password", "geheim-wachtwoord").await;
        browser.click_button("Sign in").await;
    }
    browser.wait_for_text("poortwachter asks for:").await;
    browser.click_button("Continue").await;

    // Back with us: the confirmation.
    let confirm = browser.wait_for_text("Bevestigen").await;
    assert!(confirm.contains("Voorbeeld PGO mag uw gegevens ‘Documenten delen met uw zorgverlener’ delen met UMC Harderwijk."), "{confirm}");
    assert!(confirm.contains("UMC Harderwijk beslist zelf"));
    let html = browser.source().await;
    assert!(
        html.contains("lang=\"nl\"") && !html.contains("<script"),
        "{html}"
    );
    eprintln!(
        "screenshot: {}",
        browser.screenshot("confirmation").await.display()
    );
    // "Ja": the form's answer redirects to the PGO (form-action allows its origin).
    browser.click_button("Ja").await;
    let back = back_at_pgo(&mut callbacks).await;
    assert_eq!(back.get("state").map(String::as_str), Some("pgo-state-1"));
    let code = back.get("code").expect("a code").clone();
    browser.wait_for_text("Terug bij Voorbeeld PGO").await;
    browser.wait_for_url(&redirect).await;
    eprintln!(
        "screenshot: {}",
        browser.screenshot("back-at-pgo").await.display()
    );

    // The PGO's server: the code with its verifier for a token, then the Bundle.
    let r = reqwest::Client::new()
        .post(format!("{base}/medmij/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("client_id", "pgo.example.nl"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token: serde_json::Value = r.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let r = post_fhir(&server, &token, &mhd_bundle(None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = source.received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/");
    assert_eq!(
        got[0].headers["x-poortwachter-subject"], BSN,
        "the BSN from the ID token"
    );

    // The error page: a redirect_uri on another host; the browser stays with us.
    browser
        .goto(&format!(
            "{base}/medmij/authorize?{}",
            authorize_query(
                "https://elders.example.nl/terug",
                "umcharderwijk~48",
                "x",
                None
            )
        ))
        .await;
    let error = browser.wait_for_text("Er is iets misgegaan").await;
    assert!(error.contains("Trace-ID"), "{error}");
    assert!(browser.url().await.as_str().starts_with(&base));
    eprintln!(
        "screenshot: {}",
        browser.screenshot("error").await.display()
    );
    browser.close().await;
    let log = op.log.lock().unwrap().clone();
    assert!(!log.iter().any(|l| l.contains("server_error")), "{log:#?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_development_login_and_a_provider_that_is_not_receptive() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let source = start_source().await;
    let (pgo_port, mut callbacks) = start_pgo().await;
    let instance = Instance::with_config(&medmij_config(&source, "dangerous_dev_login = true"));
    let server = instance.serve();
    let base = server.public_url("");
    let redirect = format!("https://pgo.example.nl:{pgo_port}/delen/terug");
    let browser = Browser::launch_with(
        &tools,
        "chromium_shows_the_development_login_and_a_provider_that_is_not_receptive",
        &chromium_args(),
    )
    .await;

    let ask = format!(
        "{base}/medmij/authorize?{}",
        authorize_query(&redirect, "umcharderwijk~48", "pgo-state-2", None)
    );
    browser.goto(&ask).await;
    let landing = browser.wait_for_text("Testomgeving").await;
    assert!(landing.contains("BSN (testnummer)"), "{landing}");
    // A BSN that fails the 11-check.
    browser.fill("BSN (testnummer)", "123456789").await;
    browser.click_button("Inloggen").await;
    browser.wait_for_text("Dit is geen geldig BSN").await;
    eprintln!(
        "screenshot: {}",
        browser.screenshot("landing-dev-login").await.display()
    );
    // Not receptive: the person sees why; the way back tells the PGO access_denied.
    browser.fill("BSN (testnummer)", NOT_RECEPTIVE_BSN).await;
    browser.click_button("Inloggen").await;
    let page = browser.wait_for_text("Delen is niet mogelijk").await;
    assert!(
        page.contains("U bent bij ons niet bekend als patiënt.") && page.contains("Testomgeving"),
        "{page}"
    );
    eprintln!(
        "screenshot: {}",
        browser.screenshot("not-receptive").await.display()
    );
    browser.click_link("Terug naar Voorbeeld PGO").await;
    let back = back_at_pgo(&mut callbacks).await;
    assert_eq!(back.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(back.get("state").map(String::as_str), Some("pgo-state-2"));
    assert!(!back.contains_key("code"));

    // "Nee" on the confirmation page: access_denied through the form's redirect.
    browser.goto(&ask).await;
    browser.wait_for_text("Testomgeving").await;
    browser.fill("BSN (testnummer)", BSN).await;
    browser.click_button("Inloggen").await;
    browser
        .wait_for_text("Wilt u dat Voorbeeld PGO deze gegevens deelt met UMC Harderwijk?")
        .await;
    eprintln!(
        "screenshot: {}",
        browser.screenshot("confirmation-dev-login").await.display()
    );
    browser.click_button("Nee").await;
    let back = back_at_pgo(&mut callbacks).await;
    assert_eq!(back.get("error").map(String::as_str), Some("access_denied"));
    browser.wait_for_text("Er is niet gedeeld.").await;

    // "Annuleren" on the landing page (a button of the cancel form, beside "Inloggen").
    browser.goto(&ask).await;
    browser.wait_for_text("Testomgeving").await;
    browser.click_button("Annuleren").await;
    let back = back_at_pgo(&mut callbacks).await;
    assert_eq!(back.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(back.get("state").map(String::as_str), Some("pgo-state-2"));
    browser.close().await;
    assert!(source.received.lock().unwrap().is_empty());
    drop(server);
}
