//! The browser harness and the OpenID provider together: a relying-party stand-in (an axum
//! server of this test on 127.0.0.1:0) sends Chromium to the real provider with PKCE, state and
//! nonce; the browser signs in (a wrong password first) and consents; the redirect brings a code
//! and our state; the code is exchanged at the token endpoint (a wrong verifier refused, a replay
//! refused) and the ID token's RS256 signature and claims, the BSN among them, are checked
//! against the provider's published keys.

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::Digest as _;

use super::browser_support::{browser_tools, Browser};
use super::oidc_support::{OidcAccount, OidcClient, OpenIdProvider};

fn random() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

/// Checks the RS256 signature of a compact JWS with the JWKS `keys`; returns the claims.
fn verify_rs256(jwt: &str, keys: &serde_json::Value) -> Result<serde_json::Value, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("not three parts".into());
    };
    let header: serde_json::Value = serde_json::from_slice(&b64(header)).expect("header JSON");
    if header["alg"] != "RS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let key = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .ok_or("no key with the token's kid")?;
    let public = aws_lc_rs::signature::RsaPublicKeyComponents {
        n: b64(key["n"].as_str().expect("n")),
        e: b64(key["e"].as_str().expect("e")),
    };
    public
        .verify(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{payload}", parts[0]).as_bytes(),
            &b64(signature),
        )
        .map_err(|_| "bad signature".to_owned())?;
    Ok(serde_json::from_slice(&b64(payload)).expect("claims JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_at_the_openid_provider() {
    let Some(tools) = browser_tools() else {
        return;
    };

    // The relying-party stand-in: its callback hands the query to the test.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp = format!("http://{}", listener.local_addr().unwrap());
    let redirect_uri = format!("{rp}/callback");
    let (tx, mut callbacks) = tokio::sync::mpsc::unbounded_channel::<HashMap<String, String>>();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let _ = tx.send(q);
                async {
                    axum::response::Html(
                        "<!DOCTYPE html><html lang=\"nl\"><title>RP</title><h1>Terug bij de relying party</h1></html>",
                    )
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client_id = "poortwachter-test";
    let client_secret = random();
    let Some(op) = OpenIdProvider::start(
        &[OidcClient {
            client_id: client_id.into(),
            client_secret: client_secret.clone(),
            redirect_uris: vec![redirect_uri.clone()],
        }],
        &[OidcAccount {
            username: "jan".into(),
            password: "geheim-wachtwoord".into(),
            bsn: "999999990".into(),
            name: "Jan Jansen".into(),
        }],
    ) else {
        return;
    };

    let http = reqwest::Client::new();
    let discovery: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", op.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], op.issuer.as_str());
    let endpoint = |name: &str| discovery[name].as_str().unwrap().to_owned();

    let verifier = random();
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let state = random();
    let nonce = random();
    let authorize = url::Url::parse_with_params(
        &endpoint("authorization_endpoint"),
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "openid bsn"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();

    let browser = Browser::launch(&tools, "chromium_signs_in_at_the_openid_provider").await;
    browser.goto(authorize.as_str()).await;
    browser
        .wait_for_text("Sign in to continue to poortwachter-test")
        .await;
    let login_shot = browser.screenshot("login").await;
    eprintln!("screenshot: {}", login_shot.display());

    // A wrong password keeps the person on the login page and sends nothing back.
    browser.fill("Username", "jan").await;
    browser.fill("Password", "fout").await;
    browser.click_button("Sign in").await;
    browser
        .wait_for_text("Unknown user name or wrong password.")
        .await;
    browser.screenshot("login-wrong-password").await;
    assert!(
        callbacks.try_recv().is_err(),
        "no redirect after a failed login"
    );

    browser.fill("Username", "jan").await;
    browser.fill("Password", "geheim-wachtwoord").await;
    browser.click_button("Sign in").await;
    let consent = browser.wait_for_text("poortwachter-test asks for:").await;
    assert!(
        consent.contains("openid") && consent.contains("bsn"),
        "{consent}"
    );
    browser.screenshot("consent").await;
    browser.click_button("Continue").await;

    let back = tokio::time::timeout(Duration::from_secs(30), callbacks.recv())
        .await
        .expect("the redirect within 30 s")
        .expect("a callback");
    assert_eq!(back.get("state"), Some(&state));
    assert_eq!(back.get("iss"), Some(&op.issuer));
    assert_eq!(back.get("error"), None);
    let code = back.get("code").expect("a code").clone();
    assert!(!code.is_empty());
    browser.wait_for_text("Terug bij de relying party").await;
    assert_eq!(browser.text().await, "Terug bij de relying party");
    assert_eq!(
        browser.url().await.as_str().split('?').next(),
        Some(redirect_uri.as_str())
    );
    browser.screenshot("back-at-relying-party").await;
    browser.close().await;

    // The code exchange: PKCE is enforced, the code works once.
    let exchange = |code_verifier: String| {
        let http = http.clone();
        let token_endpoint = endpoint("token_endpoint");
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", redirect_uri.clone()),
            ("code_verifier", code_verifier),
        ];
        let secret = client_secret.clone();
        async move {
            let r = http
                .post(token_endpoint)
                .basic_auth(client_id, Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = exchange(random()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, tokens) = exchange(verifier.clone()).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let (status, body) = exchange(verifier.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "a code works once: {body}"
    );

    // The ID token: signed by a key the provider publishes, for us, with the BSN.
    let jwks: serde_json::Value = http
        .get(endpoint("jwks_uri"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let claims = verify_rs256(id_token, &jwks).unwrap();
    assert_eq!(claims["iss"], op.issuer.as_str());
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["sub"], "jan");
    assert_eq!(claims["nonce"], nonce.as_str());
    assert_eq!(claims["bsn"], "999999990");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(claims["exp"].as_i64().unwrap() > now);
    // The signature check is not a rubber stamp: another payload fails it.
    let parts: Vec<&str> = id_token.split('.').collect();
    let forged_claims = serde_json::to_vec(&serde_json::json!({"bsn": "123456782"})).unwrap();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged_claims),
        parts[2]
    );
    assert_eq!(verify_rs256(&forged, &jwks), Err("bad signature".into()));
    let log = op.log.lock().unwrap().clone();
    assert!(
        !log.iter().any(|l| l.contains("server_error")),
        "the provider failed: {log:#?}"
    );
}
