//! Request rules: which request shapes a purpose allows, as data, and the decision for one
//! request. Default deny: a request is permitted only when one rule matches it completely —
//! method, path (with typed placeholders), every query or form parameter known, each at most
//! once, each value passing its rule, every required one present.
//!
//! The decision is a value: [`Decision::Permit`] holds a [`Permit`] that only this module can
//! make, and the proxy forwards only with one. Pure: no IO, no time.
//!
//! ```toml
//! [[rule]]
//! name = "observation-vitals"
//! method = "GET"
//! path = "/Observation"
//! query.patient = { allowed_patient = true }
//! query._profile = { one_of = ["http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight"] }
//! query._count = { max = 5 }
//! query._format = { one_of = ["json"], optional = true }
//!
//! [[rule]]
//! name = "patient-read"
//! method = "GET"
//! path = "/Patient/{allowed_patient}"     # or {fhir_id}
//! ```

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::bsn::{Bsn, BSN_SYSTEM};

/// One parameter's value rule. Exactly one of the constraints is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ParamRule {
    /// Exactly this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// One of these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    /// An integer from 1 to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// A Patient id the token may access (learned from the patient search).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed_patient: bool,
    /// `http://fhir.nl/fhir/NamingSystem/bsn|<the token's BSN>`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token_bsn_identifier: bool,
    /// Exactly the token's BSN (9 digits). The parameter is checked, then removed from the
    /// request the source system receives: it gets the BSN in `X-Poortwachter-Subject`, never
    /// in a URL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token_bsn: bool,
    /// Any syntactically valid FHIR id (`[A-Za-z0-9\-.]{1,64}`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fhir_id: bool,
    /// The parameter may be absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl ParamRule {
    fn constraint_count(&self) -> usize {
        [
            self.equals.is_some(),
            self.one_of.is_some(),
            self.max.is_some(),
            self.allowed_patient,
            self.token_bsn_identifier,
            self.token_bsn,
            self.fhir_id,
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
}

/// One allowed request shape.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name (appears in the audit log and `policy check`, never in an HTTP answer).
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/Observation` or `/Patient/{allowed_patient}`.
    pub path: String,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, ParamRule>,
    /// Form body parameters (`application/x-www-form-urlencoded`, e.g. a POST search).
    #[serde(default)]
    pub form: BTreeMap<String, ParamRule>,
    /// The Patient ids in the answer (that carry the token's BSN) become the token's patients.
    #[serde(default)]
    pub binds_patients: bool,
}

/// Why a rule set is invalid (reported with the policy file).
pub fn validate(rules: &[Rule]) -> Result<(), String> {
    let mut names = HashSet::new();
    for r in rules {
        if r.name.is_empty() || !names.insert(r.name.as_str()) {
            return Err(format!("rule name \"{}\" is empty or used twice", r.name));
        }
        if !matches!(r.method.as_str(), "GET" | "POST" | "HEAD") {
            return Err(format!(
                "rule \"{}\": method must be GET, POST or HEAD",
                r.name
            ));
        }
        if !r.path.starts_with('/') || r.path.contains("//") {
            return Err(format!("rule \"{}\": path must start with one /", r.name));
        }
        for seg in r.path.split('/').skip(1) {
            if seg.starts_with('{') && !matches!(seg, "{allowed_patient}" | "{fhir_id}") {
                return Err(format!(
                    "rule \"{}\": placeholder {seg} must be {{allowed_patient}} or {{fhir_id}}",
                    r.name
                ));
            }
        }
        for (name, p) in r.query.iter().chain(r.form.iter()) {
            if p.constraint_count() != 1 {
                return Err(format!("rule \"{}\": parameter {name} needs exactly one of equals, one_of, max, allowed_patient, token_bsn_identifier, token_bsn, fhir_id", r.name));
            }
        }
        if !r.form.is_empty() && r.method != "POST" {
            return Err(format!(
                "rule \"{}\": form parameters need method POST",
                r.name
            ));
        }
    }
    Ok(())
}

/// A request body as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct BodyShape<'a> {
    /// The media type of `Content-Type`, lower-case, without parameters (`""` when absent).
    pub media_type: &'a str,
    /// The bytes.
    pub bytes: &'a [u8],
}

/// The media type of a form body.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// A request as the policy sees it.
#[derive(Debug, Clone)]
pub struct RequestShape<'a> {
    /// Method.
    pub method: &'a str,
    /// The raw path (still percent-encoded), without the query.
    pub path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The body, if the request has a non-empty one.
    pub body: Option<BodyShape<'a>>,
}

/// What the authenticated principal brings to the decision.
#[derive(Debug, Clone, Copy)]
pub struct TokenScope<'a> {
    /// The patient, when the principal is scoped to one.
    pub bsn: Option<&'a Bsn>,
    /// Patient ids learned for this token.
    pub allowed_patients: &'a HashSet<String>,
}

/// A request to decide on, owned: when it is permitted it moves into the [`Permit`], which is
/// then all that forwarding reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: String,
    /// The path the source system would receive (percent-encoded as sent).
    pub path: String,
    /// The query as sent (credentials such as `jwt=` already removed), if any.
    pub query: Option<String>,
    /// The media type of the body (lower-case, no parameters; `""` when absent).
    pub media_type: String,
    /// The body (empty when there is none).
    pub body: bytes::Bytes,
}

impl Request {
    fn shape(&self) -> RequestShape<'_> {
        RequestShape {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            body: (!self.body.is_empty()).then_some(BodyShape {
                media_type: &self.media_type,
                bytes: &self.body,
            }),
        }
    }
}

/// Proof that a rule allowed the request, and the request it allowed. Only this module makes
/// one, so the source system can only receive what a rule allowed: the method, path, query and
/// body here and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    rule: String,
    binds_patients: bool,
    request: Request,
}

impl Permit {
    /// The rule that allowed it.
    #[must_use]
    pub fn rule(&self) -> &str {
        &self.rule
    }
    /// Whether the answer's Patients become the token's patients.
    #[must_use]
    pub fn binds_patients(&self) -> bool {
        self.binds_patients
    }
    /// The method to forward.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.request.method
    }
    /// The path to forward.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.request.path
    }
    /// The query to forward: as sent, minus the parameters checked against the token and not
    /// forwarded (`token_bsn`: a BSN never travels in a URL we send).
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.request.query.as_deref()
    }
    /// The body to forward, byte for byte as received.
    #[must_use]
    pub fn body(&self) -> &bytes::Bytes {
        &self.request.body
    }
}

/// A refused request: why (for the audit log only), and the request, to decide again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason.
    pub reason: String,
    /// Whether the request is malformed (see [`Decision::Malformed`]) rather than refused.
    pub malformed: Option<&'static str>,
    /// The request.
    pub request: Request,
}

/// Decides `request`; a permit carries it on.
pub fn authorize(
    rules: &[Rule],
    request: Request,
    scope: &TokenScope<'_>,
) -> Result<Permit, Box<Refusal>> {
    match decide(rules, &request.shape(), scope) {
        Decision::Deny(reason) => Err(Box::new(Refusal {
            reason,
            malformed: None,
            request,
        })),
        Decision::Malformed(m) => Err(Box::new(Refusal {
            reason: format!("malformed: {m}"),
            malformed: Some(m),
            request,
        })),
        Decision::Permit(permit) => {
            let mut request = request;
            let strip: Vec<&String> = rules
                .iter()
                .find(|r| r.name == permit.rule)
                .map(|r| {
                    r.query
                        .iter()
                        .filter(|(_, p)| p.token_bsn)
                        .map(|(n, _)| n)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(q) = &request.query {
                let mut q = q.clone();
                for name in strip {
                    q = without_param(&q, name);
                }
                request.query = (!q.is_empty()).then_some(q);
            }
            Ok(Permit {
                rule: permit.rule,
                binds_patients: permit.binds_patients,
                request,
            })
        }
    }
}

/// `query` minus every `name=` parameter, the others as sent.
#[must_use]
pub fn without_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            url::form_urlencoded::parse(key.as_bytes())
                .next()
                .map_or(key != name, |(k, _)| k != name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// What [`decide`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The rule that allowed it.
    pub rule: String,
    /// Whether the answer's Patients become the token's patients.
    pub binds_patients: bool,
}

impl Decided {
    /// The rule that allowed it.
    #[must_use]
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by a rule.
    Permit(Decided),
    /// Refused; the reason is for the audit log only.
    Deny(String),
    /// A rule for this method and path exists, but the request cannot be read the way it says
    /// (a body that is not the form it names): a malformed request rather than a refusal.
    Malformed(&'static str),
}

fn fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn value_ok(rule: &ParamRule, value: &str, scope: &TokenScope<'_>) -> bool {
    if let Some(e) = &rule.equals {
        return value == e;
    }
    if let Some(list) = &rule.one_of {
        return list.iter().any(|v| v == value);
    }
    if let Some(max) = rule.max {
        // Digits only: `u32::from_str` also takes a leading `+`, which the source system might
        // read differently.
        return !value.starts_with('0')
            && value.bytes().all(|b| b.is_ascii_digit())
            && value.parse::<u32>().is_ok_and(|n| n >= 1 && n <= max);
    }
    if rule.allowed_patient {
        return scope.allowed_patients.contains(value);
    }
    if rule.token_bsn {
        return scope.bsn.is_some_and(|b| value == b.as_str());
    }
    if rule.token_bsn_identifier {
        return value
            .strip_prefix(BSN_SYSTEM)
            .and_then(|r| r.strip_prefix('|'))
            .is_some_and(|v| scope.bsn.is_some_and(|b| v == b.as_str()));
    }
    if rule.fhir_id {
        return fhir_id(value);
    }
    false
}

/// Parses `application/x-www-form-urlencoded` data; refuses a repeated name.
fn params(raw: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if k.contains(':') {
            return Err("parameter-modifier".into());
        }
        if k.contains('.') {
            return Err("chained-parameter".into());
        }
        if matches!(
            k.as_ref(),
            "_include" | "_revinclude" | "_has" | "_elements" | "_contained"
        ) || k.starts_with("_has")
        {
            return Err(format!("forbidden-parameter:{k}"));
        }
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err("repeated-parameter".into());
        }
    }
    Ok(out)
}

fn params_match(
    rules: &BTreeMap<String, ParamRule>,
    given: &BTreeMap<String, String>,
    scope: &TokenScope<'_>,
) -> Result<(), &'static str> {
    for name in given.keys() {
        if !rules.contains_key(name) {
            return Err("unknown-parameter");
        }
    }
    for (name, rule) in rules {
        match given.get(name) {
            None if rule.optional => {}
            None => return Err("missing-parameter"),
            Some(v) if !value_ok(rule, v, scope) => return Err("parameter-value"),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Refuses paths that are not in canonical form: encoded dots or slashes, `//`, `;`, dot segments,
/// backslashes, anything outside printable ASCII.
fn canonical_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.starts_with('/')
        && path.bytes().all(|b| b.is_ascii_graphic())
        && !path.contains("//")
        && !path.contains(';')
        && !path.contains('\\')
        && !lower.contains("%2e")
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains("%00")
        && !path.split('/').any(|s| s == "." || s == "..")
}

fn path_matches(pattern: &str, path: &str, scope: &TokenScope<'_>) -> bool {
    let (p, a): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == a.len()
        && p.iter().zip(&a).all(|(p, a)| match *p {
            "{allowed_patient}" => scope.allowed_patients.contains(*a),
            "{fhir_id}" => fhir_id(a),
            literal => literal == *a,
        })
}

/// Decides one request. The first rule whose method and path match decides; its parameters must
/// then match completely, and a body is allowed only where the rule names it (a form body's
/// parameters).
#[must_use]
pub fn decide(rules: &[Rule], req: &RequestShape<'_>, scope: &TokenScope<'_>) -> Decision {
    if !canonical_path(req.path) {
        return Decision::Deny("path-not-canonical".into());
    }
    let query = match params(req.query.unwrap_or_default().as_bytes()) {
        Ok(q) => q,
        Err(reason) => return Decision::Deny(reason),
    };
    let candidates: Vec<&Rule> = rules
        .iter()
        .filter(|r| r.method == req.method && path_matches(&r.path, req.path, scope))
        .collect();
    if candidates.is_empty() {
        return Decision::Deny("no-rule-for-method-and-path".into());
    }
    let form = match req.body {
        Some(b) if b.media_type == FORM => match params(b.bytes) {
            Ok(f) => Some(f),
            Err(reason) => return Decision::Deny(reason),
        },
        _ => None,
    };
    let mut last = "";
    for rule in candidates {
        let q = params_match(&rule.query, &query, scope);
        let b = match (req.body, &form, rule.form.is_empty()) {
            (None, _, true) => Ok(()),
            (None, _, false) => Err("missing-form-body"),
            (Some(_), Some(f), false) => params_match(&rule.form, f, scope),
            (Some(_), None, false) => {
                return Decision::Malformed("only form-encoded request bodies are accepted")
            }
            (Some(_), _, true) => Err("request-body-not-allowed"),
        };
        match q.and(b) {
            Ok(()) => {
                return Decision::Permit(Decided {
                    rule: rule.name.clone(),
                    binds_patients: rule.binds_patients,
                })
            }
            Err(reason) => last = reason,
        }
    }
    Decision::Deny(last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<Rule> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/zorginzage-thuiszorgdossier-door-huisarts.toml"
        ))
        .unwrap();
        crate::policy::PolicySet::compile(
            "p.toml",
            "zorginzage-thuiszorgdossier-door-huisarts",
            &text,
        )
        .unwrap()
        .rules
    }

    const BW: &str = "http%3A%2F%2Fnictiz.nl%2Ffhir%2FStructureDefinition%2Fzib-BodyWeight";
    const NR: &str = "http%3A%2F%2Ffhir.nl%2Ffhir%2FStructureDefinition%2Fnl-core-nursingreport";

    /// One table row: method, path?query, form body, expected rule or deny reason.
    type Row<'a> = (&'a str, String, Option<&'a str>, Result<&'a str, &'a str>);

    /// Table-driven: (method, path?query, form body, expected rule or deny reason).
    #[test]
    fn huisarts_policy_table() {
        let rules = rules();
        let bsn = Bsn::parse("999999990").unwrap();
        let patients: HashSet<String> = ["pat-1".to_owned()].into();
        let scope = TokenScope {
            bsn: Some(&bsn),
            allowed_patients: &patients,
        };
        let obs =
            |rest: &str| format!("/Observation?patient=pat-1&_profile={BW}&_sort=-date{rest}");
        let table: Vec<Row<'_>> = vec![
            ("POST", "/Patient/_search".into(), Some("identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990"), Ok("patient-search")),
            ("POST", "/Patient/_search".into(), Some("identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C123456782"), Err("parameter-value")),
            ("POST", "/Patient/_search".into(), Some("identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990&name=x"), Err("unknown-parameter")),
            ("POST", "/Patient/_search".into(), None, Err("missing-form-body")),
            ("GET", obs("&_count=5"), None, Ok("observation-vitals")),
            ("GET", obs("&_count=1&_format=json"), None, Ok("observation-vitals")),
            ("GET", obs("&_count=6"), None, Err("parameter-value")),
            ("GET", obs("&_count=05"), None, Err("parameter-value")),
            ("GET", obs("&_count=0"), None, Err("parameter-value")),
            ("GET", obs("&_count=%2B5"), None, Err("parameter-value")),
            ("GET", obs(""), None, Err("missing-parameter")),
            ("GET", format!("/Observation?patient=pat-1&_profile={NR}&_sort=-date&_count=10"), None, Ok("observation-nursing-reports")),
            ("GET", format!("/Observation?patient=pat-1&_profile={NR}&_sort=-date&_count=11"), None, Err("parameter-value")),
            ("GET", obs("&_count=5").replace("pat-1", "pat-2"), None, Err("parameter-value")),
            ("GET", obs("&_count=5&_include=Observation:subject"), None, Err("forbidden-parameter:_include")),
            ("GET", obs("&_count=5&_include:iterate=x"), None, Err("parameter-modifier")),
            ("GET", obs("&_count=5&_include=x"), None, Err("forbidden-parameter:_include")),
            ("GET", obs("&_count=5&_revinclude=x"), None, Err("forbidden-parameter:_revinclude")),
            ("GET", obs("&_count=5&_has=x"), None, Err("forbidden-parameter:_has")),
            ("GET", obs("&_count=5&subject.identifier=x"), None, Err("chained-parameter")),
            ("GET", obs("&_count=5&patient=pat-1"), None, Err("repeated-parameter")),
            ("GET", obs("&_count=5&code=x"), None, Err("unknown-parameter")),
            ("GET", obs("&_count=5&patient:missing=true"), None, Err("parameter-modifier")),
            ("GET", "/Patient/pat-1".into(), None, Ok("patient-read")),
            ("GET", "/Patient/pat-2".into(), None, Err("no-rule-for-method-and-path")),
            ("GET", "/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|999999990".into(), None, Err("no-rule-for-method-and-path")),
            ("GET", "/Practitioner/prac-1".into(), None, Ok("practitioner-read")),
            ("GET", "/PractitionerRole/role-1".into(), None, Ok("practitionerrole-read")),
            ("GET", "/Practitioner/prac-1/_history".into(), None, Err("no-rule-for-method-and-path")),
            ("GET", "/List/1".into(), None, Err("no-rule-for-method-and-path")),
            ("GET", "/Composition/1".into(), None, Err("no-rule-for-method-and-path")),
            ("GET", "/Bundle/1".into(), None, Err("no-rule-for-method-and-path")),
            ("PUT", "/Patient/pat-1".into(), None, Err("no-rule-for-method-and-path")),
            ("DELETE", "/Patient/pat-1".into(), None, Err("no-rule-for-method-and-path")),
            ("POST", "/Observation".into(), Some("x=1"), Err("no-rule-for-method-and-path")),
            ("GET", "/Patient/%2e%2e/pat-1".into(), None, Err("path-not-canonical")),
            ("GET", "/Patient/pat-1/..".into(), None, Err("path-not-canonical")),
            ("GET", "//Patient/pat-1".into(), None, Err("path-not-canonical")),
            ("GET", "/Patient/pat-1;x=1".into(), None, Err("path-not-canonical")),
            ("GET", "/Patient%2Fpat-1".into(), None, Err("path-not-canonical")),
        ];
        for (method, target, form, expected) in table {
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target.as_str(), None),
            };
            let req = RequestShape {
                method,
                path,
                query,
                body: form.map(|f| BodyShape {
                    media_type: FORM,
                    bytes: f.as_bytes(),
                }),
            };
            let got = match decide(&rules, &req, &scope) {
                Decision::Permit(p) => Ok(p.rule().to_owned()),
                Decision::Deny(r) => Err(r),
                Decision::Malformed(m) => Err(m.to_owned()),
            };
            let want = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, want, "{method} {target}");
        }
    }

    #[test]
    fn rule_sets_are_validated() {
        let mut r = rules();
        r[0].query.insert("x".into(), ParamRule::default());
        assert!(validate(&r).unwrap_err().contains("needs exactly one of"));
        let mut r = rules();
        r[1].name = r[0].name.clone();
        assert!(validate(&r).unwrap_err().contains("used twice"));
        let mut r = rules();
        r[0].path = "/Patient/{bsn}".into();
        assert!(validate(&r).unwrap_err().contains("placeholder"));
    }

    /// The permit holds exactly the request that was decided on; a `token_bsn` parameter is
    /// checked, then left out of the query it forwards.
    #[test]
    fn the_permit_carries_the_request_it_allowed() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/hub-dossier.toml"
        ))
        .unwrap();
        let crate::policy::Compiled::Requests(policy) =
            crate::policy::PolicySet::compile_any("hub-dossier.toml", "hub-dossier", &text)
                .unwrap()
        else {
            panic!("a request policy")
        };
        let bsn = Bsn::parse("999999990").unwrap();
        let none = HashSet::new();
        let scope = TokenScope {
            bsn: Some(&bsn),
            allowed_patients: &none,
        };
        let request = |query: &str| Request {
            method: "GET".into(),
            path: "/dossier/ZW-1".into(),
            query: Some(query.into()),
            media_type: String::new(),
            body: bytes::Bytes::new(),
        };
        let permit = authorize(&policy.rules, request("client_bsn=999999990"), &scope).unwrap();
        assert_eq!(
            (
                permit.rule(),
                permit.method(),
                permit.path(),
                permit.query()
            ),
            ("dossier-read", "GET", "/dossier/ZW-1", None)
        );
        let refused =
            authorize(&policy.rules, request("client_bsn=123456782"), &scope).unwrap_err();
        assert_eq!(refused.reason, "parameter-value");
        assert_eq!(
            refused.request,
            request("client_bsn=123456782"),
            "handed back unchanged"
        );
        // Without a patient in scope, a token_bsn parameter never matches.
        let unscoped = TokenScope {
            bsn: None,
            allowed_patients: &none,
        };
        assert!(authorize(&policy.rules, request("client_bsn=999999990"), &unscoped).is_err());

        // A body is forwarded byte for byte, and only where a rule reads it.
        let rules = rules();
        let body = bytes::Bytes::from_static(
            b"identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990",
        );
        let search = Request {
            method: "POST".into(),
            path: "/Patient/_search".into(),
            query: None,
            media_type: FORM.into(),
            body: body.clone(),
        };
        let permit = authorize(&rules, search.clone(), &scope).unwrap();
        assert_eq!(permit.body(), &body);
        let json = Request {
            media_type: "application/fhir+json".into(),
            ..search
        };
        let malformed = authorize(&rules, json, &scope).unwrap_err();
        assert_eq!(
            malformed.malformed,
            Some("only form-encoded request bodies are accepted")
        );
    }
}
