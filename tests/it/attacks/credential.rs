//! The credentials inside a grant. The requester holds a valid credential and cannot sign as the
//! custodian, so it edits what it has: swaps proofs and subjects between credentials, injects
//! JSON-LD contexts (remote, inline, aliasing a term, `@vocab`), adds undefined terms, moves
//! facts behind `@`-keywords or IRIs (`@nest`, `@included`, `@graph`, `cred:expirationDate`) so the
//! graph the proof covers stays the same while the members the checks read change. Look-alike
//! characters (Cyrillic, zero-width, full-width) in DIDs and purposeOfUse, and BSN spellings, are
//! also tried in credentials the custodian really signed (valid proofs), so the refusal comes
//! from the check under test and not from the signature.

use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::proof;
use poortwachter::store::{CredentialRecord, Store};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::super::support::PURPOSE;
use super::{assert_none, b64, oauth, World};

const URN: &str = "urn:oid:2.16.840.1.113883.2.4.6.3:";

fn edit(c: &Value, f: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut c = c.as_object().unwrap().clone();
    f(&mut c);
    Value::Object(c)
}

fn subject(c: &mut Map<String, Value>) -> &mut Map<String, Value> {
    c.get_mut("credentialSubject")
        .unwrap()
        .as_object_mut()
        .unwrap()
}

/// Puts an explicit-consent credential that expired yesterday into the custodian's store, as if
/// it had been issued long ago; returns it.
async fn stored_expired_explicit(w: &World) -> Value {
    let c = w.s.custodian_signed(|c| {
        c["issuanceDate"] = json!("2025-01-01T00:00:00Z");
        c["expirationDate"] = json!("2025-06-30T23:59:59Z");
        c["credentialSubject"]["legalBase"] = json!({"consentType": "explicit"});
    });
    let url = format!(
        "sqlite://{}?mode=rw",
        w.s.custodian.data_dir().join("poortwachter.db").display()
    );
    let store = Store::open(&url).await.unwrap();
    store
        .insert_credential(&CredentialRecord {
            id: c["id"].as_str().unwrap().to_owned(),
            issuer: w.s.custodian_did.clone(),
            subject_did: w.s.requester_did.clone(),
            purpose: PURPOSE.to_owned(),
            bsn: poortwachter::bsn::Bsn::parse("999999990").unwrap(),
            consent_type: "explicit".to_owned(),
            issued_at: 1_735_689_600,
            expires_at: Some(1_751_327_999),
            document: c.to_string(),
            revocation: None,
        })
        .await
        .unwrap();
    store.close().await;
    c
}

/// A grant made when its case runs (grants live 5 s).
type Lazy<'a> = Box<dyn Fn() -> String + 'a>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_credentials_are_refused_and_leave_no_trace() {
    let w = World::new("rate_limit_per_second = 1000\nrate_limit_burst = 1000\n").await;
    let s = &w.s;
    let cred = s.credential.clone();
    let (_, other) =
        s.custodian
            .issue(&s.requester_did, "123456782", "implied", Some("2031-06-30"));
    let other: Value = serde_json::from_str(&other).unwrap();
    let expired = stored_expired_explicit(&w).await;
    // It is refused as it is: expired.
    let grant_with = |vc: Value| {
        let mut c = s.claims();
        c["vcs"] = json!([vc]);
        s.grant(&c)
    };
    let signed = |f: &dyn Fn(&mut Map<String, Value>)| s.custodian_signed(|c| f(c));
    let requester_signed = {
        let mut c = cred.as_object().unwrap().clone();
        c.remove("proof");
        c["issuer"] = json!(s.requester_did);
        c["id"] = json!(format!("{}#{}", s.requester_did, uuid::Uuid::new_v4()));
        proof::sign(
            &Contexts::embedded(),
            c,
            &s.requester_key,
            &s.requester_kid,
            OffsetDateTime::now_utc(),
        )
        .unwrap()
    };
    let with_context = |extra: Value| {
        edit(&cred, |c| {
            let mut ctx = c["@context"].as_array().unwrap().clone();
            ctx.push(extra);
            c["@context"] = Value::Array(ctx);
        })
    };
    let hide_expiry = |f: &dyn Fn(&mut Map<String, Value>, Value)| {
        edit(&expired, |c| {
            let e = c.remove("expirationDate").unwrap();
            f(c, e);
        })
    };
    let typed =
        |e: &Value| json!({"@value": e, "@type": "http://www.w3.org/2001/XMLSchema#dateTime"});
    let lookalike_did = |from: &str, to: &str| s.requester_did.replacen(from, to, 1);
    let with_subject_id = |id: String| signed(&move |c| subject(c)["id"] = json!(id.clone()));
    let with_purpose = |p: &'static str| signed(&move |c| subject(c)["purposeOfUse"] = json!(p));
    let with_bsn = |urn: String| signed(&move |c| subject(c)["subject"] = json!(urn.clone()));
    let nested = |depth: usize| -> Value {
        serde_json::from_str(&format!(
            "{}{}{}",
            "[".repeat(depth),
            "1",
            "]".repeat(depth)
        ))
        .unwrap()
    };

    let cred_err = |m: &str| oauth("invalid_grant", &format!("credential 0: {m}"));
    let bad_sig = || cred_err("invalid proof: signature does not verify with the issuer's key");
    let inline_ctx = || {
        cred_err(
            "malformed credential: @context must be a list of context URLs, not inline definitions",
        )
    };
    let not_plain = |what: &str| {
        cred_err(&format!("malformed credential: {what} has a member that is a JSON-LD keyword or an IRI, not a plain term"))
    };
    let expansion = |m: &str| cred_err(&format!("JSON-LD expansion failed: {m}"));
    let bsn_format = || cred_err("credentialSubject.subject: a BSN has 9 digits");
    let not_ours = || cred_err("its issuer is not the grant's sub (custodian)");
    let subject_not_iss = || cred_err("credentialSubject.id is not the grant's iss (requester)");
    let no_policy = |shown: &str| cred_err(&format!("no policy for purposeOfUse \"{shown}\""));

    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<(&str, Lazy<'_>, StatusCode, Value)> = vec![
        ("the expired explicit credential itself", Box::new(|| grant_with(expired.clone())), bad, cred_err("credential has expired")),
        // proofs and parts swapped between credentials
        ("proof of another credential", Box::new(|| grant_with(edit(&cred, |c| c["proof"] = other["proof"].clone()))), bad, bad_sig()),
        ("credentialSubject of another credential", Box::new(|| grant_with(edit(&cred, |c| c["credentialSubject"] = other["credentialSubject"].clone()))), bad, bad_sig()),
        ("id of another credential", Box::new(|| grant_with(edit(&cred, |c| c["id"] = other["id"].clone()))), bad, bad_sig()),
        ("patient of another credential", Box::new(|| grant_with(edit(&cred, |c| subject(c)["subject"] = other["credentialSubject"]["subject"].clone()))), bad, bad_sig()),
        ("expirationDate extended", Box::new(|| grant_with(edit(&cred, |c| c["expirationDate"] = json!("2099-12-31T23:59:59Z")))), bad, bad_sig()),
        ("proof created changed", Box::new(|| grant_with(edit(&cred, |c| c["proof"]["created"] = json!("2020-01-01T00:00:00Z")))), bad, bad_sig()),
        ("proof removed", Box::new(|| grant_with(edit(&cred, |c| { c.remove("proof"); }))), bad, cred_err("invalid proof: credential has no proof")),
        ("two proofs", Box::new(|| grant_with(edit(&cred, |c| c["proof"] = json!([c["proof"].clone(), other["proof"].clone()])))), bad, cred_err("invalid proof: exactly one proof is supported")),
        ("proof jws with alg none", Box::new(|| grant_with(edit(&cred, |c| { let jws = c["proof"]["jws"].as_str().unwrap().to_owned(); let sig = jws.rsplit_once('.').unwrap().1; c["proof"]["jws"] = json!(format!("{}..{sig}", b64(r#"{"alg":"none","b64":false,"crit":["b64"]}"#))); }))), bad, cred_err("invalid proof: jws alg must be ES256 or EdDSA")),
        ("proof verificationMethod of the requester", Box::new(|| grant_with(edit(&cred, |c| c["proof"]["verificationMethod"] = json!(s.requester_kid)))), bad, cred_err("invalid proof: verificationMethod does not belong to the issuer")),
        ("self-issued by the requester", Box::new(|| grant_with(requester_signed.clone())), bad, not_ours()),
        // @context injection
        ("remote context appended", Box::new(|| grant_with(with_context(json!("https://evil.example/context.jsonld")))), bad, expansion("loading document `https://evil.example/context.jsonld` failed: document not found")),
        ("context list replaced by a remote one", Box::new(|| grant_with(edit(&cred, |c| c["@context"] = json!("https://evil.example/context.jsonld")))), bad, expansion("loading document `https://evil.example/context.jsonld` failed: document not found")),
        ("inline context aliasing expirationDate", Box::new(|| grant_with(with_context(json!({"geldigTot": {"@id": "https://www.w3.org/2018/credentials#expirationDate", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"}})))), bad, inline_ctx()),
        ("inline context redefining subject", Box::new(|| grant_with(with_context(json!({"subject": {"@id": "https://evil.example/subject"}})))), bad, inline_ctx()),
        ("inline context with @vocab", Box::new(|| grant_with(with_context(json!({"@vocab": "https://evil.example/"})))), bad, inline_ctx()),
        ("inline context nulling a term", Box::new(|| grant_with(with_context(json!({"expirationDate": null})))), bad, inline_ctx()),
        ("context inside credentialSubject", Box::new(|| grant_with(edit(&cred, |c| { subject(c).insert("@context".into(), json!({"note": "https://evil.example/note"})); }))), bad, not_plain("credentialSubject")),
        ("context as a number", Box::new(|| grant_with(edit(&cred, |c| c["@context"] = json!(1)))), bad, inline_ctx()),
        // undefined terms
        ("undefined term at the top level", Box::new(|| grant_with(edit(&cred, |c| { c.insert("note".into(), json!("x")); }))), bad, expansion("Key `note` expansion failed")),
        ("undefined term in credentialSubject", Box::new(|| grant_with(edit(&cred, |c| { subject(c).insert("bsn".into(), json!("999999990")); }))), bad, expansion("Key `bsn` expansion failed")),
        ("undefined term in legalBase", Box::new(|| grant_with(edit(&cred, |c| subject(c)["legalBase"]["scope"] = json!("all")))), bad, expansion("Key `scope` expansion failed")),
        ("undefined term in resources", Box::new(|| grant_with(edit(&cred, |c| { subject(c).insert("resources".into(), json!([{"path": "/Patient", "operations": ["read"], "userContext": true, "everything": true}])); }))), bad, expansion("Key `everything` expansion failed")),
        // facts hidden behind keywords and IRIs (the graph stays the same)
        ("expirationDate behind @nest", Box::new(|| grant_with(hide_expiry(&|c, e| { c.insert("@nest".into(), json!({"expirationDate": e})); }))), bad, not_plain("the credential")),
        ("expirationDate as an absolute IRI", Box::new(|| grant_with(hide_expiry(&|c, e| { c.insert("https://www.w3.org/2018/credentials#expirationDate".into(), typed(&e)); }))), bad, not_plain("the credential")),
        ("expirationDate as a compact IRI", Box::new(|| grant_with(hide_expiry(&|c, e| { c.insert("cred:expirationDate".into(), json!({"@value": e, "@type": "xsd:dateTime"})); }))), bad, not_plain("the credential")),
        ("expirationDate as an inline alias", Box::new(|| grant_with(hide_expiry(&|c, e| { let mut ctx = c["@context"].as_array().unwrap().clone(); ctx.push(json!({"geldigTot": {"@id": "https://www.w3.org/2018/credentials#expirationDate", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"}})); c["@context"] = Value::Array(ctx); c.insert("geldigTot".into(), e); }))), bad, inline_ctx()),
        ("expirationDate as a one-element array", Box::new(|| grant_with(hide_expiry(&|c, e| { c.insert("expirationDate".into(), json!([e])); }))), bad, cred_err("malformed credential: expirationDate is not a string")),
        ("@included node", Box::new(|| grant_with(edit(&cred, |c| { c.insert("@included".into(), json!([{"id": "did:web:evil.example", "type": "VerifiableCredential"}])); }))), bad, not_plain("the credential")),
        ("@graph wrapper", Box::new(|| grant_with(json!({"@context": cred["@context"], "@graph": [edit(&cred, |c| { c.remove("@context"); })]}))), bad, not_plain("the credential")),
        ("@id instead of id", Box::new(|| grant_with(edit(&cred, |c| { let id = c.remove("id").unwrap(); c.insert("@id".into(), id); }))), bad, not_plain("the credential")),
        ("@type instead of type", Box::new(|| grant_with(edit(&cred, |c| { let t = c.remove("type").unwrap(); c.insert("@type".into(), t); }))), bad, not_plain("the credential")),
        ("@reverse", Box::new(|| grant_with(edit(&cred, |c| { c.insert("@reverse".into(), json!({"https://www.w3.org/2018/credentials#credentialSubject": {"id": "did:web:evil.example"}})); }))), bad, not_plain("the credential")),
        ("credentialSubject @id beside id", Box::new(|| grant_with(edit(&cred, |c| { subject(c).insert("@id".into(), json!("did:web:evil.example")); }))), bad, not_plain("credentialSubject")),
        ("purposeOfUse as an absolute IRI", Box::new(|| grant_with(edit(&cred, |c| { let p = subject(c).remove("purposeOfUse").unwrap(); subject(c).insert("https://nuts.nl/credentials/v1#purposeOfUse".into(), p); }))), bad, not_plain("credentialSubject")),
        ("consentType behind @nest", Box::new(|| grant_with(edit(&cred, |c| subject(c)["legalBase"] = json!({"@nest": {"consentType": "implied"}})))), bad, not_plain("legalBase")),
        ("issuer object with @id", Box::new(|| grant_with(edit(&cred, |c| c["issuer"] = json!({"@id": s.custodian_did})))), bad, not_plain("issuer")),
        ("id made relative", Box::new(|| grant_with(edit(&cred, |c| c["id"] = json!("#1")))), bad, cred_err("credential id does not start with the issuer DID")),
        ("two credentialSubjects", Box::new(|| grant_with(edit(&cred, |c| c["credentialSubject"] = json!([c["credentialSubject"].clone(), other["credentialSubject"].clone()])))), bad, cred_err("credential must have exactly one credentialSubject, found 2")),
        ("control character in a value", Box::new(|| grant_with(edit(&cred, |c| subject(c)["purposeOfUse"] = json!(format!("{PURPOSE}\t"))))), bad, cred_err("JSON-LD string literal contains a control character (U+0009), which is not supported")),
        ("credential over 64 KiB", Box::new(|| grant_with(edit(&cred, |c| { subject(c).insert("localParameters".into(), json!({"pad": "x".repeat(70 * 1024)})); }))), bad, cred_err("credential is larger than 65536 bytes")),
        ("JSON literal nested 110 deep", Box::new(|| grant_with(edit(&cred, |c| { subject(c).insert("localParameters".into(), nested(110)); }))), bad, cred_err("JSON-LD document is nested deeper than 16 levels")),
        ("value nested 110 deep (crashed the server)", Box::new(|| grant_with(edit(&cred, |c| subject(c)["purposeOfUse"] = nested(110)))), bad, cred_err("JSON-LD document is nested deeper than 16 levels")),
        ("value nested 15 deep (17 levels)", Box::new(|| grant_with(edit(&cred, |c| subject(c)["purposeOfUse"] = nested(15)))), bad, cred_err("JSON-LD document is nested deeper than 16 levels")),
        ("value nested 14 deep (16 levels)", Box::new(|| grant_with(edit(&cred, |c| subject(c)["purposeOfUse"] = nested(14)))), bad, bad_sig()),
        // look-alike characters, in credentials the custodian really signed
        ("credentialSubject.id with a Cyrillic e", Box::new(|| grant_with(with_subject_id(lookalike_did("did:key:z", "did:kеy:z")))), bad, cred_err("malformed credential: credentialSubject.id is not a DID")),
        ("credentialSubject.id with a zero-width space", Box::new(|| grant_with(with_subject_id(format!("{}\u{200b}", s.requester_did)))), bad, cred_err("malformed credential: credentialSubject.id is not a DID")),
        ("credentialSubject.id in full-width letters", Box::new(|| grant_with(with_subject_id(lookalike_did("did:", "ｄｉｄ:")))), bad, cred_err("malformed credential: credentialSubject.id is not a DID")),
        ("credentialSubject.id of a similar DID", Box::new(|| grant_with(with_subject_id(format!("{}X", s.requester_did)))), bad, subject_not_iss()),
        ("purposeOfUse with a Cyrillic o", Box::new(|| grant_with(with_purpose("zоrginzage-thuiszorgdossier-door-huisarts"))), bad, no_policy("(unprintable)")),
        ("purposeOfUse with a zero-width joiner", Box::new(|| grant_with(with_purpose("zorginzage-thuiszorgdossier\u{200d}-door-huisarts"))), bad, no_policy("(unprintable)")),
        ("purposeOfUse with a full-width hyphen", Box::new(|| grant_with(with_purpose("zorginzage－thuiszorgdossier-door-huisarts"))), bad, no_policy("(unprintable)")),
        ("purposeOfUse in capitals", Box::new(|| grant_with(with_purpose("ZORGINZAGE-THUISZORGDOSSIER-DOOR-HUISARTS"))), bad, no_policy("ZORGINZAGE-THUISZORGDOSSIER-DOOR-HUISARTS")),
        ("purposeOfUse with a trailing space", Box::new(|| grant_with(with_purpose("zorginzage-thuiszorgdossier-door-huisarts "))), bad, no_policy("(unprintable)")),
        ("grant purposeOfUse with a Cyrillic a", Box::new(|| { let mut c = s.claims(); c["purposeOfUse"] = json!("zorginzage-thuiszorgdossier-door-huisаrts"); s.grant(&c) }), bad, oauth("invalid_scope", "purposeOfUse \"(unprintable)\" is not supported by this custodian")),
        ("grant sub with a zero-width space", Box::new(|| { let mut c = s.claims(); c["sub"] = json!(format!("{}\u{200b}", s.custodian_did)); s.grant(&c) }), bad, oauth("invalid_grant", "sub is not a custodian of this token endpoint")),
        ("grant iss and kid with a Cyrillic e", Box::new(|| { let mut c = s.claims(); let iss = lookalike_did("did:key:z", "did:kеy:z"); c["iss"] = json!(iss); s.grant(&c) }), bad, oauth("invalid_grant", "iss must be a DID")),
        // BSN spellings, in credentials the custodian really signed
        ("BSN with a leading space", Box::new(|| grant_with(with_bsn(format!("{URN} 999999990")))), bad, bsn_format()),
        ("BSN with spaces inside", Box::new(|| grant_with(with_bsn(format!("{URN}999 999 990")))), bad, bsn_format()),
        ("BSN with a leading plus", Box::new(|| grant_with(with_bsn(format!("{URN}+999999990")))), bad, bsn_format()),
        ("BSN in full-width digits", Box::new(|| grant_with(with_bsn(format!("{URN}９９９９９９９９０")))), bad, bsn_format()),
        ("BSN in Arabic-Indic digits", Box::new(|| grant_with(with_bsn(format!("{URN}٩٩٩٩٩٩٩٩٠")))), bad, bsn_format()),
        ("BSN with an extra leading zero", Box::new(|| grant_with(with_bsn(format!("{URN}0999999990")))), bad, bsn_format()),
        ("BSN with its first digit dropped", Box::new(|| grant_with(with_bsn(format!("{URN}99999990")))), bad, cred_err("credentialSubject.subject: the BSN fails the 11-check")),
        ("BSN failing the 11-check", Box::new(|| grant_with(with_bsn(format!("{URN}999999991")))), bad, cred_err("credentialSubject.subject: the BSN fails the 11-check")),
        ("BSN of all zeros", Box::new(|| grant_with(with_bsn(format!("{URN}000000000")))), bad, cred_err("credentialSubject.subject: the BSN fails the 11-check")),
        ("BSN under another OID", Box::new(|| grant_with(with_bsn("urn:oid:2.16.840.1.113883.2.4.6.4:999999990".into()))), bad, cred_err("credentialSubject.subject: subject is not urn:oid:2.16.840.1.113883.2.4.6.3:<BSN>")),
        ("BSN URN in capitals", Box::new(|| grant_with(with_bsn("URN:OID:2.16.840.1.113883.2.4.6.3:999999990".into()))), bad, cred_err("credentialSubject.subject: subject is not urn:oid:2.16.840.1.113883.2.4.6.3:<BSN>")),
        ("BSN as an array", Box::new(|| grant_with(signed(&|c| subject(c)["subject"] = json!([format!("{URN}999999990")])))), bad, cred_err("malformed credential: credentialSubject.subject is not a string")),
        ("consentType in capitals", Box::new(|| grant_with(signed(&|c| subject(c)["legalBase"] = json!({"consentType": "Implied"})))), bad, cred_err(&format!("consent type \"Implied\" is not allowed for purposeOfUse \"{PURPOSE}\""))),
        ("type NutsAuthorizationCredential removed", Box::new(|| grant_with(edit(&cred, |c| c["type"] = json!(["VerifiableCredential"])))), bad, expansion("Key `purposeOfUse` expansion failed")),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for (name, assertion, status, expected) in &cases {
        let before = w.counts().await;
        let (got_status, body) = s.post_grant(&assertion()).await;
        if (got_status, &body) != (*status, expected) {
            wrong.push(format!("{name}: answered {got_status} {body}"));
        }
        if body.to_string().contains("999999990") {
            wrong.push(format!("{name}: BSN in the answer"));
        }
        let rule = expected["error_description"].as_str().unwrap();
        wrong.extend(
            w.quiet_refusal(name, before, &[("token", status.as_u16(), rule)])
                .await,
        );
    }
    assert_none("credentials", cases.len(), &wrong);
}
