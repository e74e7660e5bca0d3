//! `poortwachter demo`: a sample source system, a custodian and a GP practice in one process.
//! Issues a credential, gets a token, makes allowed and refused requests, prints each step and the
//! audit records they produced, then keeps serving with curl commands to try.

use std::sync::Arc;

use clap::Args;
use serde_json::{json, Value};

use super::Context;
use crate::admin::IssueInput;
use crate::audit::{verify, ChainReport};
use crate::demo::sample_fhir::{self, Backend, BSN1, BSN2, BSN_SYSTEM, PROFILES};
use crate::identity::{DidMethod, Identity, InitOutcome};
use crate::keys::KeyType;
use crate::store::AuditFilter;

const PURPOSE: &str = "zorginzage-thuiszorgdossier-door-huisarts";

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Run the steps and exit instead of serving on
    #[arg(long)]
    once: bool,
    /// Serve only the sample FHIR source system on this address (base path /fhir), e.g. for
    /// docker compose
    #[arg(long, value_name = "ADDR")]
    source_only: Option<std::net::SocketAddr>,
    /// `medmij`: MedMij "Delen" to click through in your browser (a demo PGO, poortwachter as the
    /// care provider's DVA with the development login, a sample source system)
    #[arg(value_name = "SECTION", value_parser = ["medmij"])]
    section: Option<String>,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn identity(dir: &std::path::Path) -> anyhow::Result<Identity> {
    Ok(
        match Identity::init(dir, KeyType::P256, DidMethod::Key, false)? {
            InitOutcome::Created(i) | InitOutcome::Existing(i) => i,
        },
    )
}

pub(crate) async fn run(ctx: &Context, args: &DemoArgs) -> anyhow::Result<i32> {
    if args.section.as_deref() == Some("medmij") {
        return super::demo_medmij::run(ctx, args.once).await;
    }
    if let Some(addr) = args.source_only {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "sample FHIR source system at http://{}/fhir (patients pat-1 BSN {BSN1}, pat-2 BSN {BSN2})",
            listener.local_addr()?
        );
        tokio::select! {
            () = sample_fhir::serve(Arc::new(Backend::default()), listener) => {}
            _ = crate::server::wait_for_signal() => {}
        }
        return Ok(0);
    }
    let root = std::env::temp_dir().join(format!("poortwachter-demo-{}", std::process::id()));
    println!("poortwachter demo (data in {})\n", root.display());

    let backend = Arc::new(Backend::default());
    let upstream = sample_fhir::start(backend.clone()).await;
    println!("1. Sample source system (FHIR STU3, zib2017) at {upstream}");
    println!(
        "   patients: pat-1 (BSN {BSN1}) and pat-2 (BSN {BSN2}), vital signs and nursing reports\n"
    );

    let public = crate::server::bind("127.0.0.1:0".parse()?).await?;
    let internal = crate::server::bind("127.0.0.1:0".parse()?).await?;
    let public_url = format!("http://{}", public.local_addr()?);
    let internal_url = format!("http://{}", internal.local_addr()?);
    let mut config = ctx.config.clone();
    config.data_dir = root.join("custodian");
    config.database_url = format!(
        "sqlite://{}?mode=rwc",
        config.data_dir.join("poortwachter.db").display()
    );
    config.public_url = url::Url::parse(&public_url)?;
    config.upstream = Some(url::Url::parse(&upstream)?);
    // The demo carries its own policy: it runs wherever it is started.
    config.policies_dir = root.join("policies");
    config.hub_source = None;
    crate::identity::create_private_dir(&root)?;
    std::fs::create_dir_all(&config.policies_dir)?;
    std::fs::write(
        config.policies_dir.join(format!("{PURPOSE}.toml")),
        crate::policy::shipped::text(PURPOSE).unwrap_or_default(),
    )?;
    let custodian = identity(&config.data_dir)?;
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
    println!("2. Custodian (home care organisation) {}", custodian.did);
    println!("   public {public_url}   internal {internal_url}\n");

    let huisarts = identity(&root.join("huisarts"))?;
    println!("3. Requester (GP practice) {}\n", huisarts.did);

    let policies = state.policies.borrow().clone();
    let (credential, record) = state
        .custodian
        .issue(
            &IssueInput {
                subject_did: huisarts.did.clone(),
                bsn: BSN1.into(),
                purpose: PURPOSE.into(),
                consent: "explicit".into(),
                expires: None,
                resources: vec![],
            },
            &policies,
        )
        .await?;
    println!(
        "4. Credential issued for pat-1 (explicit consent): {}\n",
        record.id
    );

    let http = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": huisarts.did, "sub": custodian.did, "aud": state.config.token_endpoint(),
        "purposeOfUse": PURPOSE, "vcs": [credential],
        "usi": {"uzi": "900012345", "name": "Dr. A. Huisarts", "role": "01.015"},
        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 5,
    });
    let grant = crate::jose::sign(&claims, &huisarts.key, &huisarts.verification_method)?;
    let answer: Value = http
        .post(state.config.token_endpoint())
        .form(&[
            ("grant_type", crate::oauth::JWT_BEARER),
            ("assertion", grant.as_str()),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = answer["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(!token.is_empty(), "no token: {answer}");
    println!("5. Access token ({} s): {token}\n", answer["expires_in"]);

    println!("6. Requests through the proxy:");
    let bw = enc(PROFILES[1].0);
    let search = format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}")));
    let steps: Vec<(&str, String, Option<String>)> = vec![
        ("POST", "/Patient/_search".into(), Some(search)),
        ("GET", format!("/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=5"), None),
        ("GET", format!("/Observation?patient=pat-1&_profile={}&_sort=-date&_count=10", enc(PROFILES[4].0)), None),
        ("GET", "/Patient/pat-1".into(), None),
        ("GET", format!("/Observation?patient=pat-2&_profile={bw}&_sort=-date&_count=5"), None),
        ("GET", format!("/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=5&_include=Observation:subject"), None),
        ("GET", format!("/Patient?identifier={}", enc(&format!("{BSN_SYSTEM}|{BSN1}"))), None),
        ("GET", "/List/1".into(), None),
        ("PUT", "/Patient/pat-1".into(), None),
    ];
    for (method, path, form) in &steps {
        let mut r = http
            .request(method.parse()?, format!("{public_url}{path}"))
            .bearer_auth(&token);
        if let Some(f) = form {
            r = r
                .header("content-type", "application/x-www-form-urlencoded")
                .body(f.clone());
        }
        let r = r.send().await?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let summary = match body["resourceType"].as_str() {
            Some("Bundle") => format!(
                "Bundle with {} entries",
                body["entry"].as_array().map_or(0, Vec::len)
            ),
            Some("OperationOutcome") => format!(
                "OperationOutcome: {}",
                body["issue"][0]["diagnostics"].as_str().unwrap_or("")
            ),
            Some(t) => format!("{t}/{}", body["id"].as_str().unwrap_or("")),
            None => String::new(),
        };
        println!(
            "   {status}  {method} {}  → {summary}",
            crate::audit::redact_bsns(path)
        );
    }

    println!("\n7. Audit records (NEN 7513, hash-chained):");
    let rows = state.store.audit_rows(&AuditFilter::default()).await?;
    for row in &rows {
        let r: Value = serde_json::from_str(&row.record)?;
        println!(
            "   #{:<3} {:<5} {:<6} {:<3} {:<28} {}",
            row.seq,
            r["kind"].as_str().unwrap_or(""),
            r["decision"].as_str().unwrap_or(""),
            r["status"],
            r["rule"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(28)
                .collect::<String>(),
            r["path"].as_str().unwrap_or("")
        );
    }
    match verify(&rows) {
        ChainReport::Intact { records, head } => println!(
            "   audit log intact: {records} records, head {}",
            &head[..16]
        ),
        ChainReport::Broken { seq, reason } => println!("   audit log broken at {seq}: {reason}"),
    }

    println!("\n8. Try it yourself:");
    println!("   T={token}");
    println!("   curl -s -H \"Authorization: Bearer $T\" '{public_url}/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=5'");
    println!("   curl -s -H \"Authorization: Bearer $T\" '{public_url}/Patient/pat-2'              # refused");
    println!("   curl -s {internal_url}/internal/auth/v1/accesstoken/introspect -d token=$T");
    println!("   curl -s {internal_url}/internal/credentials");
    if args.once {
        let _ = stop_tx.send(());
    } else {
        println!("\n   serving; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
        let _ = stop_tx.send(());
    }
    server.await??;
    Ok(0)
}
