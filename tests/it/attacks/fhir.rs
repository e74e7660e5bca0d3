//! FHIR searches through the proxy with a valid token whose patient search has bound `pat-1`:
//! `_include` in every spelling, `_revinclude`, modifiers (`:exact`, `:missing`, `:iterate`,
//! `:below`), parameter pollution and comma lists, `_format` tricks, `_elements`, `_summary`,
//! `_contained`, `_filter`, `_has`, chains, reads of operations and history, POST `_search` with
//! the BSN in the URL and the body, another patient's BSN and BSN spellings. Each is a 403
//! `OperationOutcome` (or 400 for a malformed body), audited as `deny` with the policy's reason,
//! and never reaches the source system.

use poortwachter::demo::sample_fhir::{BSN2, BSN_SYSTEM, PROFILES};
use reqwest::StatusCode;
use serde_json::Value;

use super::{assert_none, enc, outcome, World};

const FORM: &str = "application/x-www-form-urlencoded";

/// The expected refusal: status, OperationOutcome code and diagnostics, audit reason.
type Refusal<'a> = (StatusCode, &'a str, &'a str, String);
/// Name, method, target, optional (content type, body), expected refusal.
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    Option<(&'a str, String)>,
    Refusal<'a>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fhir_searches_are_refused_and_never_forwarded() {
    let w = World::new("").await;
    let token = w.bound_token().await;
    let bw = enc(PROFILES[1].0);
    let obs =
        |rest: &str| format!("/Observation?patient=pat-1&_profile={bw}&_sort=-date&_count=5{rest}");
    let ident = |bsn: &str| format!("identifier={}", enc(&format!("{BSN_SYSTEM}|{bsn}")));
    let own = ident("999999990");

    let denied = |reason: &str| {
        (
            StatusCode::FORBIDDEN,
            "forbidden",
            "access refused",
            reason.to_owned(),
        )
    };
    let malformed = |reason: &str| {
        (
            StatusCode::BAD_REQUEST,
            "invalid",
            "malformed request",
            format!("malformed: {reason}"),
        )
    };
    let cases: Vec<Case<'_>> = vec![
        // _include and _revinclude, every spelling
        ("_include", "GET", obs("&_include=Observation:subject"), None, denied("forbidden-parameter:_include")),
        ("_INCLUDE", "GET", obs("&_INCLUDE=Observation:subject"), None, denied("unknown-parameter")),
        ("_Include", "GET", obs("&_Include=Observation:subject"), None, denied("unknown-parameter")),
        ("_include:iterate", "GET", obs("&_include:iterate=Observation:subject"), None, denied("parameter-modifier")),
        ("_include:recurse", "GET", obs("&_include:recurse=Observation:subject"), None, denied("parameter-modifier")),
        ("_include percent-encoded", "GET", obs("&%5Finclude=Observation:subject"), None, denied("forbidden-parameter:_include")),
        ("_revinclude", "GET", obs("&_revinclude=Provenance:target"), None, denied("forbidden-parameter:_revinclude")),
        ("_revinclude:iterate", "GET", obs("&_revinclude:iterate=Provenance:target"), None, denied("parameter-modifier")),
        ("_include on a read", "GET", "/Patient/pat-1?_include=Patient:general-practitioner".into(), None, denied("forbidden-parameter:_include")),
        // modifiers
        ("patient:exact", "GET", obs("").replace("patient=", "patient:exact="), None, denied("parameter-modifier")),
        ("patient:missing", "GET", obs("&patient:missing=true"), None, denied("parameter-modifier")),
        ("_profile:below", "GET", obs("").replace("_profile=", "_profile:below="), None, denied("parameter-modifier")),
        ("patient:Patient", "GET", obs("").replace("patient=", "patient:Patient="), None, denied("parameter-modifier")),
        ("encoded colon modifier", "GET", obs("").replace("patient=", "patient%3Amissing="), None, denied("parameter-modifier")),
        // pollution and lists
        ("patient twice", "GET", obs("&patient=pat-2"), None, denied("repeated-parameter")),
        ("patient twice, ours last", "GET", obs("").replace("patient=pat-1", "patient=pat-2&patient=pat-1"), None, denied("repeated-parameter")),
        ("patient comma list", "GET", obs("").replace("patient=pat-1", "patient=pat-1,pat-2"), None, denied("parameter-value")),
        ("patient encoded comma list", "GET", obs("").replace("patient=pat-1", "patient=pat-1%2Cpat-2"), None, denied("parameter-value")),
        ("patient as a reference", "GET", obs("").replace("patient=pat-1", "patient=Patient/pat-2"), None, denied("parameter-value")),
        ("patient with a semicolon", "GET", obs("").replace("patient=pat-1", "patient=pat-1;patient=pat-2"), None, denied("parameter-value")),
        ("patient of the other patient", "GET", obs("").replace("pat-1", "pat-2"), None, denied("parameter-value")),
        ("PATIENT in capitals", "GET", obs("&PATIENT=pat-2"), None, denied("unknown-parameter")),
        ("subject instead of patient", "GET", obs("").replace("patient=pat-1", "subject=Patient/pat-2"), None, denied("unknown-parameter")),
        ("_count twice", "GET", obs("&_count=5"), None, denied("repeated-parameter")),
        ("_count over the limit", "GET", obs("").replace("_count=5", "_count=500"), None, denied("parameter-value")),
        ("_count with a plus", "GET", obs("").replace("_count=5", "_count=%2B5"), None, denied("parameter-value")),
        ("_count as a decimal", "GET", obs("").replace("_count=5", "_count=5.0"), None, denied("parameter-value")),
        ("_count overflowing", "GET", obs("").replace("_count=5", "_count=4294967301"), None, denied("parameter-value")),
        ("_sort ascending", "GET", obs("").replace("_sort=-date", "_sort=date"), None, denied("parameter-value")),
        ("_profile of another kind", "GET", obs("").replace(&bw, &enc("http://nictiz.nl/fhir/StructureDefinition/zib-Problem")), None, denied("parameter-value")),
        ("_profile in capitals", "GET", obs("").replace(&bw, &enc(&PROFILES[1].0.to_uppercase())), None, denied("parameter-value")),
        ("empty parameter name", "GET", obs("&=pat-2"), None, denied("unknown-parameter")),
        // _format tricks
        ("_format xml", "GET", obs("&_format=xml"), None, denied("parameter-value")),
        ("_format with a raw plus", "GET", obs("&_format=application/fhir+json"), None, denied("parameter-value")),
        ("_format html", "GET", obs("&_format=html"), None, denied("parameter-value")),
        ("_format twice", "GET", obs("&_format=json&_format=xml"), None, denied("repeated-parameter")),
        ("_format with a space", "GET", obs("&_format=json%20"), None, denied("parameter-value")),
        // result-shaping parameters
        ("_elements", "GET", obs("&_elements=subject"), None, denied("forbidden-parameter:_elements")),
        ("_summary", "GET", obs("&_summary=count"), None, denied("unknown-parameter")),
        ("_contained", "GET", obs("&_contained=true"), None, denied("forbidden-parameter:_contained")),
        ("_filter", "GET", obs("&_filter=patient%20eq%20pat-2"), None, denied("unknown-parameter")),
        ("_has", "GET", obs("&_has=Observation:patient:code=x"), None, denied("forbidden-parameter:_has")),
        ("_has with a reverse chain", "GET", obs("&_has:Observation:patient:code=x"), None, denied("parameter-modifier")),
        ("_hasX", "GET", obs("&_hasX=1"), None, denied("forbidden-parameter:_hasX")),
        ("_id", "GET", obs("&_id=pat-2-obs-1-0"), None, denied("unknown-parameter")),
        ("_summary on a read", "GET", "/Patient/pat-1?_summary=true".into(), None, denied("unknown-parameter")),
        // chains
        ("chain on patient", "GET", obs("").replace("patient=pat-1", &format!("patient.identifier={}", enc(&format!("{BSN_SYSTEM}|999999990")))), None, denied("chained-parameter")),
        ("chain on subject", "GET", obs("&subject.name=Jansen"), None, denied("chained-parameter")),
        ("typed chain", "GET", obs("&subject:Patient.identifier=x"), None, denied("parameter-modifier")),
        // reads, operations, history
        ("BSN in the URL", "GET", format!("/Patient?{}", ident("999999990")), None, denied("no-rule-for-method-and-path")),
        ("read of the other patient", "GET", "/Patient/pat-2".into(), None, denied("no-rule-for-method-and-path")),
        ("$everything", "GET", "/Patient/pat-1/$everything".into(), None, denied("no-rule-for-method-and-path")),
        ("history", "GET", "/Patient/pat-1/_history".into(), None, denied("no-rule-for-method-and-path")),
        ("version read", "GET", "/Patient/pat-1/_history/1".into(), None, denied("no-rule-for-method-and-path")),
        ("Observation read by id", "GET", "/Observation/pat-2-obs-1-0".into(), None, denied("no-rule-for-method-and-path")),
        ("Observation search via POST", "POST", "/Observation/_search".into(), Some((FORM, "patient=pat-1".into())), denied("no-rule-for-method-and-path")),
        ("system search", "GET", "/?_type=Observation".into(), None, denied("no-rule-for-method-and-path")),
        ("batch bundle", "POST", "/".into(), Some((FORM, "resourceType=Bundle".into())), denied("no-rule-for-method-and-path")),
        ("metadata", "GET", "/metadata".into(), None, denied("no-rule-for-method-and-path")),
        ("$export", "GET", "/$export".into(), None, denied("no-rule-for-method-and-path")),
        ("Binary", "GET", "/Binary/1".into(), None, denied("no-rule-for-method-and-path")),
        ("Patient lower-case", "GET", "/patient/pat-1".into(), None, denied("no-rule-for-method-and-path")),
        // the patient search
        ("BSN in the URL and in the body", "POST", format!("/Patient/_search?{}", ident("999999990")), Some((FORM, own.clone())), denied("unknown-parameter")),
        ("another patient's BSN in the URL, ours in the body", "POST", format!("/Patient/_search?{}", ident(BSN2)), Some((FORM, own.clone())), denied("unknown-parameter")),
        ("BSN of another patient", "POST", "/Patient/_search".into(), Some((FORM, ident(BSN2))), denied("parameter-value")),
        ("two identifiers, ours first", "POST", "/Patient/_search".into(), Some((FORM, format!("{own}&{}", ident(BSN2)))), denied("repeated-parameter")),
        ("identifier comma list", "POST", "/Patient/_search".into(), Some((FORM, format!("identifier={}", enc(&format!("{BSN_SYSTEM}|999999990,{BSN_SYSTEM}|{BSN2}"))))), denied("parameter-value")),
        ("BSN with a leading space", "POST", "/Patient/_search".into(), Some((FORM, ident(" 999999990"))), denied("parameter-value")),
        ("BSN with a raw plus", "POST", "/Patient/_search".into(), Some((FORM, format!("identifier={}%7C+999999990", enc(BSN_SYSTEM)))), denied("parameter-value")),
        ("BSN with an encoded plus", "POST", "/Patient/_search".into(), Some((FORM, ident("+999999990"))), denied("parameter-value")),
        ("BSN in full-width digits", "POST", "/Patient/_search".into(), Some((FORM, ident("９９９９９９９９０"))), denied("parameter-value")),
        ("BSN with an extra leading zero", "POST", "/Patient/_search".into(), Some((FORM, ident("0999999990"))), denied("parameter-value")),
        ("BSN with a trailing NUL", "POST", "/Patient/_search".into(), Some((FORM, format!("{own}%00"))), denied("parameter-value")),
        ("BSN without the system", "POST", "/Patient/_search".into(), Some((FORM, "identifier=999999990".into())), denied("parameter-value")),
        ("BSN with an https system", "POST", "/Patient/_search".into(), Some((FORM, format!("identifier={}", enc("https://fhir.nl/fhir/NamingSystem/bsn|999999990")))), denied("parameter-value")),
        ("identifier:of-type", "POST", "/Patient/_search".into(), Some((FORM, own.replace("identifier=", "identifier:of-type="))), denied("parameter-modifier")),
        ("extra name parameter", "POST", "/Patient/_search".into(), Some((FORM, format!("{own}&name=Jansen"))), denied("unknown-parameter")),
        ("_has in the body", "POST", "/Patient/_search".into(), Some((FORM, format!("{own}&_has:Observation:patient:code=x"))), denied("parameter-modifier")),
        ("no body", "POST", "/Patient/_search".into(), None, denied("missing-form-body")),
        ("JSON body", "POST", "/Patient/_search".into(), Some(("application/fhir+json", r#"{"identifier":"999999990"}"#.into())), malformed("only form-encoded request bodies are accepted")),
        ("form body without a content type", "POST", "/Patient/_search".into(), Some(("", own.clone())), malformed("only form-encoded request bodies are accepted")),
        ("form body as multipart", "POST", "/Patient/_search".into(), Some(("multipart/form-data; boundary=x", format!("--x\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\n{BSN_SYSTEM}|999999990\r\n--x--\r\n"))), malformed("only form-encoded request bodies are accepted")),
        ("form body on a GET search", "GET", obs(""), Some((FORM, "patient=pat-2".into())), malformed("a request body is only accepted with POST, PUT or PATCH")),
    ];
    assert!(cases.len() >= 70, "{} cases", cases.len());
    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    for (name, method, target, body, (status, code, text, reason)) in &cases {
        let before = w.counts().await;
        let mut r = http
            .request(method.parse().unwrap(), w.s.server.public_url(target))
            .bearer_auth(&token);
        if let Some((content_type, b)) = body {
            if !content_type.is_empty() {
                r = r.header("content-type", *content_type);
            }
            r = r.body(b.clone());
        }
        let r = r.send().await.unwrap();
        let got_status = r.status();
        let got: Value = r.json().await.unwrap_or(Value::Null);
        if (got_status, &got) != (*status, &outcome(code, text)) {
            wrong.push(format!(
                "{name}: {method} {target} answered {got_status} {got}"
            ));
        }
        wrong.extend(
            w.quiet_refusal(name, before, &[("proxy", status.as_u16(), reason)])
                .await,
        );
    }
    assert_none("FHIR searches", cases.len(), &wrong);

    // The same token still reads what the policy allows.
    let r = http
        .get(w.s.server.public_url(&obs("")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
