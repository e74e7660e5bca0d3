//! The fuzz entry functions, shared by the cargo-fuzz targets (`fuzz_targets/*.rs`) and by the
//! regression test of the main test binary (`tests/it/fuzz_regressions.rs`), which runs every file
//! in `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/` through the same function on every
//! `cargo test`. Each function must not panic on any input; the `assert!`s are invariants whose
//! failure is a finding.

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::OnceLock;

use poortwachter::bsn::Bsn;
use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::{proof, verify};
use poortwachter::did;
use poortwachter::keys::PublicKey;
use poortwachter::oauth::grant::{check_claims, Expectations};
use poortwachter::policy::request::{decide, BodyShape, Decision, RequestShape, TokenScope, FORM};
use poortwachter::policy::{Policy, PolicySet};

/// A fuzz entry function.
pub type Entry = fn(&[u8]);

/// Every target, by name (the directory names under `fuzz/seeds/` and `fuzz/regressions/`).
pub const TARGETS: [(&str, Entry); 12] = [
    ("credential_proof", credential_proof),
    ("policy_compile", policy_compile),
    ("identifiers", identifiers),
    ("grant", grant),
    ("policy_request", policy_request),
    ("fhir_response", fhir_response),
    ("hub_xml", hub_xml),
    ("client_cert", client_cert),
    ("json_body", json_body),
    ("medmij_lists", medmij_lists),
    ("medmij_authorize", medmij_authorize),
    ("medmij_token", medmij_token),
];

/// Credential bytes → parse → proof preparation (strict JSON-LD + URDNA2015). No IO.
pub fn credential_proof(data: &[u8]) {
    static CONTEXTS: OnceLock<Contexts> = OnceLock::new();
    let contexts = CONTEXTS.get_or_init(Contexts::embedded);
    if let Ok(credential) = verify::parse(data) {
        let issuer = credential
            .get("issuer")
            .and_then(|i| i.as_str())
            .unwrap_or("did:key:z");
        let _ = proof::prepare(contexts, &credential, issuer);
        let _ = contexts.canonical_nquads(&serde_json::Value::Object(credential));
    }
}

/// Policy file text → compiled policy.
pub fn policy_compile(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PolicySet::compile("fuzz.toml", "zorginzage-fuzz", text);
    }
}

/// DIDs, DID URLs, multibase keys, BSNs, dates and resource grants.
pub fn identifiers(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = did::method_of(&s);
    let _ = did::web::location(&s);
    let _ = did::key::resolve(&s);
    let _ = did::key::decode_multibase_key(&s);
    let _ = Bsn::parse(&s);
    let _ = Bsn::from_urn(&s);
    let _ = proof::absolute_verification_method("did:key:zabc", &s);
    let _ = poortwachter::admin::parse_expires(&s);
    let _ = poortwachter::admin::parse_resource(&s);
}

const AUDIENCE: &str = "https://zorg.example.nl/n2n/auth/v1/accesstoken";
const CUSTODIAN: &str = "did:key:zDnaepZUQNAT7p3JXZKNiEP5yFRbG8PRcADYMrFaGwmBBxsF2";

/// The token endpoint's pure grant path: the request body (first byte picks form or JSON) →
/// parameters → compact JWS parse (alg allow-list, crit, duplicate members) → claim checks →
/// signature check with a fixed P-256 key. The whole input is also parsed as a JWT by itself.
pub fn grant(data: &[u8]) {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        did::key::resolve(CUSTODIAN)
            .ok()
            .and_then(|d| {
                d.assertion_key(&did::key::verification_method_id(CUSTODIAN))
                    .ok()
            })
            .expect("a fixed did:key resolves")
    });
    let custodians = [CUSTODIAN.to_owned()];
    let check = |assertion: &str| {
        if let Ok(jws) = poortwachter::jose::parse(assertion, &poortwachter::jose::GRANT_ALGS) {
            assert!(poortwachter::jose::GRANT_ALGS.contains(&jws.alg.as_str()));
            assert!(!jws.header.contains_key("crit"));
            let expect = Expectations {
                audience: AUDIENCE,
                custodians: &custodians,
                now: 1_800_000_000,
            };
            if let Ok(claims) = check_claims(&jws, &expect) {
                assert_eq!(claims.sub, CUSTODIAN);
                assert!(claims.exp > claims.iat && claims.exp - claims.iat <= 5);
                assert!(!claims.vcs.is_empty() && claims.vcs.len() <= 10);
                assert_eq!(did::did_of(&claims.kid), claims.iss);
            }
            let _ = key.verify(&jws.alg, &jws.signing_input, &jws.signature);
        }
    };
    let (content_type, body) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => ("application/x-www-form-urlencoded", rest),
        Some((_, rest)) => ("application/json", rest),
        None => ("", data),
    };
    if let Ok(params) = poortwachter::server::oauth_api::token_params(content_type, body) {
        if let Some(a) = params.get("assertion") {
            check(a);
        }
    }
    check(&String::from_utf8_lossy(data));
}

/// The shipped huisarts policy, compiled once.
fn huisarts() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        PolicySet::compile(
            "zorginzage-thuiszorgdossier-door-huisarts.toml",
            "zorginzage-thuiszorgdossier-door-huisarts",
            include_str!("../policies/zorginzage-thuiszorgdossier-door-huisarts.toml"),
        )
        .expect("the shipped policy compiles")
    })
}

/// The request matcher on an arbitrary request: lines are method, path, query, form body (the
/// form only when there is a fourth line). Invariants: a permit never goes to a path that is
/// not canonical, never carries an unknown, repeated or modified parameter, and a permitted
/// patient search names the token's BSN.
pub fn policy_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(4, '\n');
    let method = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let query = lines.next();
    let form = lines.next();
    let bsn = Bsn::parse("999999990").expect("a valid BSN");
    let allowed: HashSet<String> = ["pat-1".to_owned()].into();
    let scope = TokenScope {
        bsn: Some(&bsn),
        allowed_patients: &allowed,
    };
    let shape = RequestShape {
        method,
        path,
        query,
        body: form.map(|f| BodyShape {
            media_type: FORM,
            charset: None,
            bytes: f.as_bytes(),
        }),
    };
    if let Decision::Permit(permit) = decide(&huisarts().rules, &shape, &scope) {
        assert!(matches!(method, "GET" | "POST"), "permit for {method}");
        let lower = path.to_ascii_lowercase();
        assert!(
            path.starts_with('/')
                && !path.contains("//")
                && !path.split('/').any(|s| s == "." || s == "..")
                && !lower.contains("%2e")
                && !lower.contains("%2f"),
            "permit for path {path:?}"
        );
        for part in [query, form].into_iter().flatten() {
            let mut names = HashSet::new();
            for (k, _) in url::form_urlencoded::parse(part.as_bytes()) {
                assert!(!k.contains(':') && !k.contains('.'), "permit with {k:?}");
                assert!(names.insert(k.clone()), "permit with {k} twice");
            }
        }
        if permit.rule() == "patient-search" {
            let identifier = url::form_urlencoded::parse(form.unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "identifier")
                .map(|(_, v)| v.into_owned());
            assert_eq!(
                identifier.as_deref(),
                Some("http://fhir.nl/fhir/NamingSystem/bsn|999999990")
            );
        }
    }
}

/// The proxy's answer check on an arbitrary source-system answer (first byte: whether the
/// answer may bind patients). Invariants: without binding nothing is learned; what is learned
/// is a non-empty id.
pub fn fhir_response(data: &[u8]) {
    let (binds, body) = match data.split_first() {
        Some((b, rest)) => (b % 2 == 1, rest),
        None => (false, data),
    };
    let allowed: HashSet<String> = ["pat-1".to_owned()].into();
    let non_patient = [
        "Practitioner".to_owned(),
        "PractitionerRole".to_owned(),
        "Organization".to_owned(),
    ];
    if let Ok(learned) =
        poortwachter::proxy::fhir::check_answer(body, "999999990", &allowed, &non_patient, binds)
    {
        assert!(binds || learned.is_empty(), "learned without binding");
        assert!(learned.iter().all(|id| !id.is_empty()));
    }
}

/// The Hub's untrusted inputs: a registration body (strict XML reader, then property
/// validation), the same bytes as a search query string, and as a source token. Invariants: a
/// registration that validates has a BSN that passes the 11-check and `YYYYMMDD` dates; a DTD is
/// never accepted.
pub fn hub_xml(data: &[u8]) {
    use poortwachter::hub::dossier::{Dossier, Filter};
    if let Ok(props) = poortwachter::hub::xml::read_resource(data) {
        // A DTD can only come before the root element (later, `<!DOCTYPE` is CDATA text).
        let text = String::from_utf8_lossy(data);
        let prolog = text.split("<resource").next().unwrap_or_default();
        assert!(!prolog.contains("<!DOCTYPE"), "a DTD was accepted");
        if let Ok(d) = Dossier::from_properties(&props) {
            assert!(
                Bsn::parse(d.client_bsn.as_str()).is_ok(),
                "invalid BSN accepted"
            );
            for date in [&d.client_birthdate, &d.edd, &d.start_at] {
                assert!(date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()));
            }
            assert!((0..=99).contains(&d.gravida) && (0..=99).contains(&d.para));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Filter::parse(Some(text));
        static VERIFIER: OnceLock<poortwachter::hub::token::SourceVerifier> = OnceLock::new();
        let v = VERIFIER.get_or_init(|| {
            poortwachter::hub::token::SourceVerifier::new("https://hub.example", "provider-a", 5)
        });
        assert!(
            v.verify(text, 1_700_000_000).is_err(),
            "a token verified without keys"
        );
    }
}

/// A client certificate as the TLS acceptor reads it after verification (x509-parser, RFC 4514
/// subject, SAN DNS names, the UZI otherName), and the same bytes as a UZI otherName string.
/// Invariants: the strings are one printable line; the fingerprint is 64 hex digits; a parsed
/// UZI name prints back as its input.
pub fn client_cert(data: &[u8]) {
    use poortwachter::tls::{ClientCert, UziName};
    if let Ok(cert) = ClientCert::from_chain(vec![data.to_vec().into()]) {
        for s in [cert.subject(), cert.issuer()]
            .into_iter()
            .chain(cert.dns_names().iter().map(String::as_str))
        {
            assert!(
                !s.chars().any(char::is_control),
                "control character in {s:?}"
            );
        }
        assert_eq!(cert.fingerprint_sha256().len(), 64);
        assert_eq!(cert.x5t_s256().len(), 43);
        if let Some(uzi) = cert.uzi() {
            assert!(UziName::parse(&uzi.to_string()).is_ok());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(name) = UziName::parse(text) {
            assert_eq!(name.to_string(), text);
        }
    }
}

/// The four MedMij list readers on the same bytes. Invariants: a list that reads has a
/// `Volgnummer` of at least 1, lower-case host names with a dot, gegevensdienst ids of 1 to 30
/// characters, zorgaanbieder names ending in `@medmij` and https endpoints.
pub fn medmij_lists(data: &[u8]) {
    use poortwachter::medmij::lists;
    let host_ok = |h: &str| {
        h.contains('.')
            && !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
    };
    let id_ok = |id: &str| (1..=30).contains(&id.chars().count());
    if let Ok(list) = lists::parse_oauth_client_list(data) {
        assert!(list.volgnummer >= 1);
        for c in &list.clients {
            assert!(host_ok(&c.hostname), "client host {:?}", c.hostname);
            assert!((3..=50).contains(&c.organisatienaam.chars().count()));
            assert!(c.gegevensdiensten.iter().flatten().all(|id| id_ok(id)));
        }
    }
    if let Ok(list) = lists::parse_whitelist(data) {
        assert!(list.volgnummer >= 1);
        assert!(list.hostnames.iter().all(|h| host_ok(h)));
    }
    if let Ok(list) = lists::parse_gegevensdienst_names(data) {
        assert!(list.volgnummer >= 1);
        for (id, name) in &list.names {
            assert!(id_ok(id) && (3..=50).contains(&name.chars().count()));
        }
    }
    if let Ok(list) = lists::parse_zorgaanbiederslijst(data) {
        assert!(list.volgnummer >= 1);
        for z in &list.zorgaanbieders {
            assert!(z.naam.ends_with("@medmij") && !z.aanbiedernaam().is_empty());
            for g in &z.gegevensdiensten {
                assert!(id_ok(&g.id) && !g.systeemrollen.is_empty());
                let endpoints = [&g.authorization_endpoint, &g.token_endpoint];
                for uri in endpoints.into_iter().flatten() {
                    assert!(uri.starts_with("https://"), "endpoint {uri:?}");
                }
                for r in &g.systeemrollen {
                    assert!(r.resource_endpoint.starts_with("https://"));
                }
            }
        }
    }
}

/// The sample OAuth client list and whitelist (`medmij/`), read once.
fn medmij_sample_lists() -> &'static (
    poortwachter::medmij::lists::OAuthClientList,
    poortwachter::medmij::lists::Whitelist,
) {
    use poortwachter::medmij::lists;
    static LISTS: OnceLock<(lists::OAuthClientList, lists::Whitelist)> = OnceLock::new();
    LISTS.get_or_init(|| {
        (
            lists::parse_oauth_client_list(include_bytes!("../medmij/MedMij_OAuthclientlist.xml"))
                .expect("OCL"),
            lists::parse_whitelist(include_bytes!("../medmij/MedMij_Whitelist.xml"))
                .expect("whitelist"),
        )
    })
}

/// An authorization request's query (the bytes, lossy UTF-8) → `medmij::authorize::check` against
/// the sample lists, aanbieder `umcharderwijk`, gegevensdiensten 48 and 1.
pub fn medmij_authorize(data: &[u8]) {
    use poortwachter::medmij::authorize::{self, AuthzRefusal, Context};
    let (clients, whitelist) = medmij_sample_lists();
    let served = vec!["48".to_owned(), "1".to_owned()];
    let ctx = Context {
        clients,
        whitelist,
        aanbieder: "umcharderwijk",
        gegevensdiensten: &served,
    };
    let query = String::from_utf8_lossy(data);
    match authorize::check(&query, &ctx, (None, None)) {
        Ok(a) => {
            assert!(clients.client(&a.client_id).is_some() && whitelist.contains(&a.client_id));
            assert!(authorize::valid_redirect_uri(&a.redirect_uri, &a.client_id).is_some());
            assert_eq!(a.scope, format!("umcharderwijk~{}", a.gegevensdienst));
            assert!(served.contains(&a.gegevensdienst));
            assert!(!a.state.is_empty() && a.state.len() <= authorize::MAX_STATE);
            assert!(a.code_challenge.as_ref().is_none_or(|c| c.len() == 43));
        }
        Err(AuthzRefusal::Redirect {
            client_id,
            redirect_uri,
            error,
            state,
            ..
        }) => {
            // Only ever back to a listed client's own https host.
            assert!(clients.client(&client_id).is_some() && whitelist.contains(&client_id));
            assert!(authorize::valid_redirect_uri(&redirect_uri, &client_id).is_some());
            assert!(!error.is_empty());
            assert!(state.is_none_or(|s| !s.is_empty() && s.len() <= authorize::MAX_STATE));
        }
        Err(AuthzRefusal::NoRedirect { reason, .. }) => assert!(!reason.is_empty()),
    }
}

/// A token request body → `medmij::token::parse` (form), then `check_code` against a fixed code;
/// the same bytes through `medmij::bsn_scan::contains_bsn`.
pub fn medmij_token(data: &[u8]) {
    use poortwachter::medmij::token;
    let _ = poortwachter::medmij::bsn_scan::contains_bsn(data);
    let Ok(req) = token::parse("application/x-www-form-urlencoded", data) else {
        return;
    };
    assert!(!req.code.is_empty() && !req.client_id.is_empty() && !req.redirect_uri.is_empty());
    assert!(req
        .code_verifier
        .as_ref()
        .is_none_or(|v| (43..=128).contains(&v.len())));
    let code = poortwachter::store::medmij::MedmijCode {
        hash: String::new(),
        client_id: "pgo.example.nl".into(),
        redirect_uri: "https://pgo.example.nl/cb".into(),
        aanbieder: "umcharderwijk".into(),
        gegevensdienst: "48".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        bsn: Bsn::parse("999999990").expect("a BSN"),
        correlation_id: None,
        issued_at: 0,
        expires_at: 60,
        used: false,
    };
    if token::check_code(&code, &req, 30).is_ok() {
        assert_eq!(req.client_id, code.client_id);
        assert_eq!(req.redirect_uri, code.redirect_uri);
        assert!(req.code_verifier.is_some());
    }
}

/// The shipped zorgdomein policy, compiled once.
fn zorgdomein_rules() -> &'static [poortwachter::policy::request::Rule] {
    static RULES: OnceLock<Vec<poortwachter::policy::request::Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        match PolicySet::compile_any(
            "zorgdomein.toml",
            "zorgdomein",
            include_str!("../policies/zorgdomein.toml"),
        ) {
            Ok(poortwachter::policy::Compiled::Requests(p)) => p.rules,
            _ => panic!("the shipped zorgdomein policy compiles"),
        }
    })
}

/// A JSON request body as a rule reads it, and a ZorgDomein token. The first byte picks the
/// request (`POST /Bundle` or `PUT /Task/t-1`) and the media type; the rest is the body, decided
/// under the shipped zorgdomein policy, scanned by `json_body::scan`, and verified as a token.
/// Invariants: what `scan` accepts serde_json reads too, with the same facts (no duplicate can
/// make them differ); a permitted document is a `document` Bundle with a Composition first, a
/// permitted cancellation a Task `t-1` with status `cancelled`; no token verifies against a key
/// made in this process.
pub fn json_body(data: &[u8]) {
    use poortwachter::policy::json_body::scan;
    let (selector, body) = match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, data),
    };
    let facts = scan(body);
    if let Ok(f) = &facts {
        let v: serde_json::Value =
            serde_json::from_slice(body).expect("serde_json reads what scan accepted");
        let s = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        assert_eq!(f.resource_type, s("resourceType"));
        assert_eq!(f.bundle_type, s("type"));
        assert_eq!(f.status, s("status"));
        assert_eq!(f.id, s("id"));
        if let Some(entries) = v.get("entry").and_then(serde_json::Value::as_array) {
            if !f.entry_malformed {
                let types: Vec<Option<String>> = entries
                    .iter()
                    .map(|e| {
                        e.get("resource")
                            .and_then(|r| r.get("resourceType"))
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned)
                    })
                    .collect();
                assert_eq!(f.entry_types, types);
            }
        }
    }
    let (method, path) = if selector % 2 == 0 {
        ("POST", "/Bundle")
    } else {
        ("PUT", "/Task/t-1")
    };
    let media_type = if selector & 2 == 0 {
        "application/fhir+json"
    } else {
        "application/json"
    };
    let none = HashSet::new();
    let scope = TokenScope {
        bsn: None,
        allowed_patients: &none,
    };
    let shape = RequestShape {
        method,
        path,
        query: None,
        body: (!body.is_empty()).then_some(BodyShape {
            media_type,
            charset: None,
            bytes: body,
        }),
    };
    if let Decision::Permit(p) = decide(zorgdomein_rules(), &shape, &scope) {
        let f = facts.as_ref().expect("a permitted body was scanned");
        assert_eq!(media_type, "application/fhir+json");
        match p.rule() {
            "receive-document" => {
                assert_eq!(f.resource_type.as_deref(), Some("Bundle"));
                assert_eq!(f.bundle_type.as_deref(), Some("document"));
                assert_eq!(f.entry_types.first(), Some(&Some("Composition".to_owned())));
            }
            "task-cancel" => {
                assert_eq!(f.resource_type.as_deref(), Some("Task"));
                assert_eq!(f.status.as_deref(), Some("cancelled"));
                assert_eq!(f.id.as_deref(), Some("t-1"));
            }
            other => panic!("permitted by {other}"),
        }
    }
    static ZD: OnceLock<poortwachter::authn::zorgdomein::ZorgDomein> = OnceLock::new();
    let zd = ZD.get_or_init(|| {
        let (key, _) = poortwachter::keys::SigningKey::generate(poortwachter::keys::KeyType::P256)
            .expect("a P-256 key");
        let poortwachter::keys::PublicKey::P256(point) = key.public_key() else {
            panic!("a P-256 public key")
        };
        poortwachter::authn::zorgdomein::ZorgDomein::new(
            vec![poortwachter::authn::zorgdomein::VerifyKey::P256(point)],
            Vec::new(),
            300,
            None,
            "zorgdomein",
        )
    });
    assert!(
        zd.verify_token(&String::from_utf8_lossy(body), 1_800_000_000)
            .is_err(),
        "a token verified against a key nobody else has"
    );
}
