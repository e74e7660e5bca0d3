//! The admin console (`/ui/` on the internal listener).
//!
//! In a real Chromium: issue a credential in the form (bad input first: the errors stand next to
//! their fields and nothing is stored), see it listed with its BSN masked, obtain a token on it
//! at the token endpoint and use it through the proxy, revoke the credential (an empty reason
//! refused, then the confirmation) and watch the token stop working, find the token's requests
//! in the audit view, export them as JSON lines and CSV (and check what they hold), end another
//! token without revoking its credential, try a request against a policy, look at the health
//! page and switch languages. Screenshots of every page go to
//! `<target>/test-screenshots/console/`.
//!
//! With a raw HTTP client: the password login when the console requires one, the CSRF refusals
//! (no token, another session's token, a cross-site form), the security headers and the login
//! rate limit. On PostgreSQL: a token ended on one replica's console stops on the other.

use std::sync::Arc;
use std::time::Duration;

use poortwachter::demo::sample_fhir::{start as start_backend, Backend, BSN1, BSN_SYSTEM};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::browser_support::{browser_tools, Browser};
use super::support::{enc, setup, within, Instance, PgDatabase, Setup, PURPOSE};

/// The error shown next to the field named `name`.
fn error_at(name: &str) -> String {
    format!(
        "//div[contains(@class,'field')][.//*[@name='{name}']]//p[contains(@class,'field-error')]"
    )
}

async fn credential_count(s: &Setup) -> usize {
    let v: Value = reqwest::get(s.server.internal_url("/internal/credentials"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["credentials"].as_array().unwrap().len()
}

async fn credential_status(s: &Setup, id: &str) -> String {
    let v: Value = reqwest::get(
        s.server
            .internal_url(&format!("/internal/credentials/{}", enc(id))),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    v["status"].as_str().unwrap().to_owned()
}

/// A token on `credential` from the token endpoint.
async fn token_on(s: &Setup, credential: &Value) -> String {
    let mut claims = s.claims();
    claims["vcs"] = json!([credential]);
    let (status, body) = s.post_grant(&s.grant(&claims)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The patient search through the proxy with `token`: its status.
async fn search(s: &Setup, token: &str) -> StatusCode {
    let form = format!(
        "identifier={}",
        url::form_urlencoded::byte_serialize(format!("{BSN_SYSTEM}|{BSN1}").as_bytes())
            .collect::<String>()
    );
    reqwest::Client::new()
        .post(s.server.public_url("/Patient/_search"))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_round_trip_in_chromium() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend).await;
    let s = setup(&format!("upstream = \"{upstream}\"\n"));
    let ui = |p: &str| s.server.internal_url(p);
    let b = Browser::launch(&tools, "console").await;
    b.window_size(1280, 1000).await;

    // The browser asks for English (Chromium's default Accept-Language) or Dutch; the toggle
    // switches to Dutch and the choice stays.
    b.goto(&ui("/ui/")).await;
    let first = b.wait_for_text("poortwachter").await;
    if first.contains("New credential") {
        b.screenshot("00-english-by-accept-language").await;
        b.click_link("Nederlands").await;
    }
    b.wait_for_text("Nieuwe autorisatie").await;
    assert!(b.url().await.path().ends_with("/ui/credentials"));

    // Bad input: each error next to its field, nothing stored.
    let before = credential_count(&s).await;
    b.click_link("Nieuwe autorisatie").await;
    b.wait_for_text("Autorisatie uitgeven").await;
    b.fill("DID van de aanvrager", "geen-did").await;
    b.fill("BSN", "123456789").await;
    b.fill("Doel (purposeOfUse)", "onbekend-doel").await;
    b.click_button("Uitgeven").await;
    b.wait_for_text("Het formulier bevat fouten").await;
    assert_eq!(
        b.text_at(&error_at("subject_did")).await,
        "Geen geldige DID (bijvoorbeeld did:web:huisarts.example.nl)."
    );
    assert_eq!(
        b.text_at(&error_at("bsn")).await,
        "Dit BSN voldoet niet aan de elfproef."
    );
    assert_eq!(
        b.text_at(&error_at("purpose")).await,
        "Onbekend doel: hiervoor is geen beleid geladen."
    );
    b.screenshot("02-issue-form-errors").await;
    assert_eq!(credential_count(&s).await, before, "nothing was stored");
    // The policy's own rule (an end date with implied consent), next to the end date.
    b.fill("DID van de aanvrager", &s.requester_did).await;
    b.fill("BSN", BSN1).await;
    b.fill("Doel (purposeOfUse)", PURPOSE).await;
    b.click_button("Uitgeven").await;
    assert_eq!(
        b.text_at(&error_at("expires")).await,
        "Het beleid vereist een einddatum bij deze toestemming."
    );
    assert_eq!(credential_count(&s).await, before, "nothing was stored");
    b.fill("Geldig tot (einde van de dag, UTC)", "2031-06-30")
        .await;
    b.click_button("Uitgeven").await;
    b.wait_for_text("Autorisatie uitgegeven.").await;
    assert_eq!(credential_count(&s).await, before + 1);
    let url = b.url().await;
    let id = percent_encoding::percent_decode_str(url.path().rsplit('/').next().unwrap())
        .decode_utf8()
        .unwrap()
        .into_owned();
    assert!(id.starts_with(&s.custodian_did), "{id}");
    let details = b.text().await;
    assert!(
        details.contains(BSN1),
        "the details page shows the full BSN"
    );
    b.screenshot("03-credential-details").await;

    // A real token on it, used through the proxy.
    let doc: Value = reqwest::get(ui(&format!("/internal/credentials/{}", enc(&id))))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token_on(&s, &doc["credential"]).await;
    assert_eq!(search(&s, &token).await, StatusCode::OK);
    let refused = reqwest::Client::new()
        .get(s.server.public_url("/List/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "no rule allows a List"
    );

    // Listed, BSN masked; the filter finds it by BSN.
    b.click_link("Autorisaties").await;
    b.fill("BSN", BSN1).await;
    b.click_button("Filteren").await;
    let list = b.wait_for_text("******990").await;
    assert!(!list.contains(BSN1), "no full BSN in a list:\n{list}");
    assert!(list.contains(id.rsplit('#').next().unwrap()), "{list}");
    b.screenshot("04-credentials-list").await;

    // Live tokens per requester and purpose.
    b.click_link("Tokens").await;
    let tokens = b.wait_for_text("Live tokens per aanvrager en doel").await;
    assert!(
        tokens.contains(&s.requester_did) && tokens.contains(PURPOSE),
        "{tokens}"
    );
    assert!(!tokens.contains(BSN1), "{tokens}");
    b.screenshot("05-tokens").await;

    // Revoke: a reason is required (nothing changes), then a confirmation.
    b.goto(url.as_ref()).await;
    b.click_button("Intrekken…").await;
    assert_eq!(
        b.text_at(&error_at("reason")).await,
        "Geef een reden (1 tot 1000 tekens)."
    );
    assert_eq!(credential_status(&s, &id).await, "active");
    b.screenshot("06-revoke-without-reason").await;
    b.fill("Reden", "Patiënt trekt de toestemming in").await;
    b.click_button("Intrekken…").await;
    b.wait_for_text("Weet u zeker dat u deze autorisatie wilt intrekken?")
        .await;
    assert_eq!(
        credential_status(&s, &id).await,
        "active",
        "not before the confirmation"
    );
    b.screenshot("07-revoke-confirm").await;
    b.click_button("Ja, definitief intrekken").await;
    b.wait_for_text("Autorisatie ingetrokken; tokens erop werken niet meer.")
        .await;
    assert_eq!(credential_status(&s, &id).await, "revoked");

    // Its token stops at once.
    assert_eq!(search(&s, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.introspect(&token).await["active"], false);

    // The token's requests in the audit view.
    b.click_link("Audittrail").await;
    b.fill("Aanvrager", &s.requester_did).await;
    b.click_button("Filteren").await;
    let audit = b.wait_for_text("doorgestuurd verzoek").await;
    assert!(audit.contains("tokenverzoek"), "{audit}");
    assert!(
        audit.contains("toegestaan") && audit.contains("geweigerd"),
        "{audit}"
    );
    assert!(audit.contains("/Patient/_search"), "{audit}");
    assert!(
        !audit.contains(BSN1),
        "BSNs are masked in the list:\n{audit}"
    );
    b.click_button("Keten nu controleren").await;
    b.wait_for_text("Intact:").await;
    b.screenshot("08-audit").await;
    // The export of the filtered records, with the browser's session.
    let session = b.cookie("pw_console").await.expect("a session cookie");
    let get = |path: &str| {
        reqwest::Client::new()
            .get(ui(path))
            .header("cookie", format!("pw_console={session}"))
            .send()
    };
    let r = get("/ui/audit/export.jsonl").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"audit-"));
    let jsonl = r.text().await.unwrap();
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3, "{jsonl}");
    assert!(lines
        .iter()
        .all(|l| l["requester"] == s.requester_did.as_str()));
    assert!(lines
        .iter()
        .all(|l| l["seq"].is_i64() && l["hash"].is_string()));
    assert!(lines
        .iter()
        .any(|l| l["kind"] == "token" && l["decision"] == "permit" && l["bsn"] == BSN1));
    assert!(lines.iter().any(|l| l["kind"] == "proxy"
        && l["path"] == "/Patient/_search"
        && l["decision"] == "permit"
        && l["upstream_status"] == 200));
    assert!(lines.iter().any(|l| l["kind"] == "proxy"
        && l["path"] == "/List/1"
        && l["status"] == 403
        && l["decision"] == "deny"));
    let csv = get("/ui/audit/export.csv")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rows = csv.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        rows.next().unwrap(),
        "seq,time,kind,request_id,requester,user_uzi,user_name,user_role,purpose,bsn,method,path,decision,rule,status,upstream_status,client_cert_subject,client_cert_fingerprint,hash"
    );
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), lines.len(), "{csv}");
    assert!(rows.iter().any(|r| r.contains(",proxy,")
        && r.contains(",POST,/Patient/_search,permit,patient-search,200,200,")));
    assert!(rows.iter().all(|r| r.contains(&s.requester_did)));

    let seq = lines
        .iter()
        .find(|l| l["kind"] == "token")
        .and_then(|l| l["seq"].as_i64())
        .unwrap();
    b.goto(&ui(&format!("/ui/audit/record/{seq}"))).await;
    let record = b.wait_for_text("Verzoek-id").await;
    assert!(
        record.contains("tokenverzoek") && record.contains(BSN1),
        "{record}"
    );
    b.screenshot("09-audit-record").await;

    // End another token: its credential stays valid.
    let other = token_on(&s, &s.credential).await;
    b.click_link("Tokens").await;
    b.wait_for_text("Live tokens (nieuwste eerst)").await;
    b.click_button("Beëindigen").await;
    b.accept_dialog().await;
    b.wait_for_text("Token beëindigd.").await;
    assert_eq!(s.introspect(&other).await["active"], false);
    assert_eq!(search(&s, &other).await, StatusCode::UNAUTHORIZED);
    let setup_id = s.credential["id"].as_str().unwrap();
    assert_eq!(credential_status(&s, setup_id).await, "active");
    let fresh = token_on(&s, &s.credential).await;
    assert_eq!(
        s.introspect(&fresh).await["active"],
        true,
        "a new token works"
    );
    b.screenshot("10-tokens-after-ending-one").await;

    // Policies: the rules, and the decision of `policy check`.
    b.click_link("Beleid").await;
    b.wait_for_text("Toegestane verzoeken").await;
    b.click_button("Beslissen").await;
    b.wait_for_text("Toegestaan").await;
    assert!(b.text().await.contains("patient-read"));
    b.fill("Verzoek (METHODE /pad?query)", "GET /List/1").await;
    b.click_button("Beslissen").await;
    let decided = b.wait_for_text("Geweigerd").await;
    assert!(decided.contains("no-rule-for-method-and-path"), "{decided}");
    b.fill("BSN van het token", "12345").await;
    b.click_button("Beslissen").await;
    assert_eq!(
        b.text_at(&error_at("bsn")).await,
        "Een BSN heeft 9 cijfers."
    );
    b.screenshot("11-policies").await;

    // Health: this instance, the replicas' heartbeats, metrics and the chart.
    b.click_link("Gezondheid").await;
    let health = b.wait_for_text("Instanties op deze database").await;
    assert!(health.contains("drukste uur"), "{health}");
    for english in ["Instances", "busiest", "Requests", "Health", "Revocation"] {
        assert!(
            !health.contains(english),
            "English {english:?} on a Dutch page:\n{health}"
        );
    }
    b.window_size(1280, 1400).await;
    b.screenshot("12-health").await;
    b.window_size(1280, 1000).await;

    // English, and it stays English on the next page.
    b.click_link("English").await;
    b.wait_for_text("Instances on this database").await;
    b.screenshot("13-health-english").await;
    b.click_link("Credentials").await;
    let en = b.wait_for_text("New credential").await;
    assert!(!en.contains("Nieuwe autorisatie"), "{en}");
    b.click_link("New credential").await;
    b.wait_for_text("Issue a credential").await;
    b.click_button("Issue").await;
    assert_eq!(b.text_at(&error_at("bsn")).await, "A BSN has 9 digits.");
    b.screenshot("14-issue-form-english").await;
    // Back to Dutch (a form's answer goes back to the list, not to the POST).
    b.click_link("Nederlands").await;
    b.wait_for_text("Nieuwe autorisatie").await;

    b.close().await;

    // Every change made in the console is in the hash chain, naming who made it.
    let exported = s.custodian.ok(&["audit", "export"]);
    let console: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "console")
        .collect();
    for action in [
        "credential-issued",
        "credential-revoked",
        "token-ended",
        "audit-export",
    ] {
        assert!(
            console
                .iter()
                .any(|v| v["rule"].as_str().unwrap().starts_with(action)
                    && v["requester"] == "console:loopback"),
            "{action} not audited: {console:?}"
        );
    }
    assert!(s
        .custodian
        .ok(&["audit", "verify"])
        .starts_with("audit log intact"));
}

/// The hidden CSRF token of a console page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// The `pw_console` session id a response sets.
fn session_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("pw_console="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_requires_a_password_login_and_refuses_forged_forms() {
    let inst = Instance::with_config("[console]\nrequire_login = true\n");
    inst.ok(&["init"]);
    // A short password is refused; a long one is stored as an argon2id hash.
    let mut short = inst
        .command()
        .args(["admin", "set-password", "--user", "beheerder"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    short.stdin.take().unwrap().write_all(b"kort\n").unwrap();
    assert_eq!(short.wait_with_output().unwrap().status.code(), Some(1));
    let mut set = inst
        .command()
        .args(["admin", "set-password", "--user", "beheerder"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(b"een lang en geheim wachtwoord\n")
        .unwrap();
    assert!(set.wait_with_output().unwrap().status.success());
    assert!(inst.ok(&["admin", "users"]).starts_with("beheerder\t"));
    let server = inst.serve();
    let ui = |p: &str| server.internal_url(p);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Without a login: to the login page, which comes with a session and the headers.
    let r = http.get(ui("/ui/credentials")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/ui/login?next=%2Fui%2Fcredentials"
    );
    let r = http
        .get(ui("/ui/login"))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let anon = session_of(&r).unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Sign in"),
        "Accept-Language"
    );
    let csrf = csrf_of(&html);
    let login = |session: &str, fields: Vec<(&str, &str)>| {
        http.post(ui("/ui/login"))
            .header("cookie", format!("pw_console={session}"))
            .form(&fields)
            .send()
    };

    // No CSRF token, a wrong one, a cross-site form: 403, nothing audited as a login.
    let r = login(&anon, vec![("name", "beheerder"), ("password", "x")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = login(
        &anon,
        vec![
            ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ("name", "beheerder"),
            ("password", "x"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(ui("/ui/login"))
        .header("cookie", format!("pw_console={anon}"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "beheerder"),
            ("password", "een lang en geheim wachtwoord"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A wrong password: 401, the error next to the password field (Dutch by default).
    let r = login(
        &anon,
        vec![
            ("csrf", &csrf),
            ("name", "beheerder"),
            ("password", "fout wachtwoord"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"f-password-error\">Naam of wachtwoord klopt niet.</p>"),
        "{page}"
    );

    // The right one: a new session (the old id is dropped).
    let r = login(
        &anon,
        vec![
            ("csrf", &csrf),
            ("name", "beheerder"),
            ("password", "een lang en geheim wachtwoord"),
            ("next", "/ui/tokens"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/ui/tokens");
    let session = session_of(&r).unwrap();
    assert_ne!(session, anon);
    let page = |path: &str, session: &str| {
        http.get(ui(path))
            .header("cookie", format!("pw_console={session}"))
            .send()
    };
    assert_eq!(
        page("/ui/tokens", &anon).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let r = page("/ui/credentials/new", &session).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Ingelogd als <strong>beheerder</strong>"),
        "{html}"
    );
    let csrf = csrf_of(&html);

    // A forged issue form (no token, or the token of another session): refused, nothing stored.
    let issue = [
        ("subject_did", "did:web:huisarts.example.nl"),
        ("bsn", "999999990"),
        ("purpose", PURPOSE),
        ("consent", "explicit"),
    ];
    let r = http
        .post(ui("/ui/credentials"))
        .header("cookie", format!("pw_console={session}"))
        .form(&issue)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut with_other = issue.to_vec();
    let other_csrf = csrf_of(
        &http
            .get(ui("/ui/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    with_other.push(("csrf", &other_csrf));
    let r = http
        .post(ui("/ui/credentials"))
        .header("cookie", format!("pw_console={session}"))
        .form(&with_other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let listed: Value = reqwest::get(ui("/internal/credentials"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 0);
    // With this session's token it is issued.
    let mut good = issue.to_vec();
    good.push(("csrf", &csrf));
    let r = http
        .post(ui("/ui/credentials"))
        .header("cookie", format!("pw_console={session}"))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let listed: Value = reqwest::get(ui("/internal/credentials"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 1);

    // Failed logins are limited per name: the sixth is not even tried (429).
    let fresh = http.get(ui("/ui/login")).send().await.unwrap();
    let sid = session_of(&fresh).unwrap();
    let csrf = csrf_of(&fresh.text().await.unwrap());
    for i in 0..5 {
        let r = login(
            &sid,
            vec![("csrf", &csrf), ("name", "iemand"), ("password", "fout")],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = login(
        &sid,
        vec![("csrf", &csrf), ("name", "iemand"), ("password", "fout")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Te veel mislukte pogingen"));

    // Logins, failed logins and the issue are in the chain with who made them.
    drop(server);
    let exported = inst.ok(&["audit", "export"]);
    let console: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "console")
        .collect();
    let has = |rule: &str, requester: &str, decision: &str| {
        console.iter().any(|v| {
            v["rule"].as_str().unwrap().starts_with(rule)
                && v["requester"] == requester
                && v["decision"] == decision
        })
    };
    assert!(
        has("login-failed", "console:password:beheerder", "deny"),
        "{console:?}"
    );
    assert!(has("login", "console:password:beheerder", "permit"));
    assert!(has(
        "credential-issued",
        "console:password:beheerder",
        "permit"
    ));
    assert_eq!(
        console
            .iter()
            .filter(|v| v["rule"] == "login-failed" && v["requester"] == "console:password:iemand")
            .count(),
        5,
        "the refused sixth attempt is not verified, so not a failed login"
    );
    assert!(inst
        .ok(&["audit", "verify"])
        .starts_with("audit log intact"));
}

/// On PostgreSQL: a token ended in one replica's console stops on the other, which had it
/// cached, within a second; its credential stays valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_ended_on_one_replica_stops_on_the_other() {
    let Some(db) = PgDatabase::create("this test").await else {
        return;
    };
    let s = setup(&format!("database_url = \"{}\"\n", db.url));
    let b = Instance::with_config(&format!(
        "database_url = \"{}\"\npublic_url = \"https://zorg.example.nl\"\n",
        db.url
    ));
    b.share_identity_with(&s.custodian);
    b.edit_config(
        &super::support::repo()
            .join("policies")
            .display()
            .to_string(),
        &s.custodian.path("policies").display().to_string(),
    );
    let sb = b.serve();
    let token = token_on(&s, &s.credential).await;
    let introspect_b = |t: String| {
        let url = sb.internal_url("/internal/auth/v1/accesstoken/introspect");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[("token", t.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        introspect_b(token.clone()).await["active"],
        true,
        "B caches it"
    );

    // End it in A's console (loopback: no login; the session's CSRF token).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(s.server.internal_url("/ui/tokens"))
        .send()
        .await
        .unwrap();
    let sid = session_of(&r).unwrap();
    let html = r.text().await.unwrap();
    let csrf = csrf_of(&html);
    let hash = poortwachter::oauth::token_hash(&token);
    assert!(html.contains(&hash), "the token is listed");
    let r = http
        .post(s.server.internal_url(&format!("/ui/tokens/{hash}/end")))
        .header("cookie", format!("pw_console={sid}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(s.introspect(&token).await["active"], false, "at once on A");
    let took = within(Duration::from_secs(1), || {
        let t = token.clone();
        let f = introspect_b(t);
        async move { f.await["active"] == false }
    })
    .await;
    assert!(took.is_some(), "B still honours the ended token after 1 s");
    assert_eq!(
        credential_status(&s, s.credential["id"].as_str().unwrap()).await,
        "active"
    );
    // B's health page sees both instances, each holding the ended token.
    let health = http
        .get(sb.internal_url("/ui/health"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        health.matches("<td><code>").count() >= 2,
        "two instances listed"
    );
}
