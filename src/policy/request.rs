//! Request rules: which request shapes a policy allows, as data, and the decision for one
//! request. Default deny: a request is permitted only when one rule matches it completely —
//! method, path (with typed placeholders), every query or form parameter known, each at most
//! as often as its rule says, each value passing its rule, every required one present, and a
//! body only where the rule names one (a form, or a JSON body with the facts it must have).
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
//!
//! # The search language beyond plain values (each only where a rule names it):
//! [[rule]]
//! name = "encounter-search"
//! method = "GET"
//! path = "/Encounter"
//! query.patient = { fhir_id = true }
//! query.episodeofcare = { fhir_id = true, list = true, optional = true }   # a,b,c
//! query."episodeofcare:missing" = { equals = "true", optional = true }     # a named modifier
//! query.date = { date_prefixes = ["ge", "lt"], repeats = 2, optional = true }
//! query.category = { token = { systems = ["urn:oid:1.2.3"], codes = ["A", "B"] }, list = true, optional = true }
//! query._include = { one_of = ["Encounter:subject"], optional = true }    # an allow-list
//!
//! # A write: a JSON body checked before it is forwarded byte for byte.
//! [[rule]]
//! name = "document-create"
//! method = "POST"
//! path = "/Bundle"
//! [rule.body]
//! content_types = ["application/fhir+json"]   # the default; charset=utf-8 allowed
//! max_bytes = 10485760
//! resource_type = ["Bundle"]
//! bundle_type = ["document"]                  # Bundle.type
//! first_entry = ["Composition"]               # entry[0].resource.resourceType
//! # entries = ["DocumentReference", "Binary"] # every entry's resource.resourceType
//! # status = ["cancelled"]                    # the resource's status (a Task's)
//! # id_matches_path = true                    # PUT /Task/{fhir_id}: the body's id is the path's
//! ```

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::json_body::{self, JsonBodyError, JsonFacts};
use crate::bsn::{Bsn, BSN_SYSTEM};

/// The modifiers a rule may name on a parameter (`name:modifier`); every other one is refused.
pub const MODIFIERS: [&str; 1] = ["missing"];

/// Result parameters refused whatever a rule says: they widen an answer beyond what was asked
/// for (`_include` is allowed only with the values a rule lists).
pub const FORBIDDEN: [&str; 4] = ["_revinclude", "_has", "_elements", "_contained"];

/// The FHIR search prefixes a date parameter may carry.
pub const DATE_PREFIXES: [&str; 9] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];

/// Largest JSON body a rule may allow.
pub const MAX_BODY_RULE_BYTES: usize = 64 * 1024 * 1024;

/// `system|code` tokens: the system one of `systems`, the code one of `codes` (when given) or
/// any plain code (`[A-Za-z0-9.\-_]{1,64}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRule {
    /// The allowed systems.
    pub systems: Vec<String>,
    /// The allowed codes (any plain code when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<String>>,
}

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
    /// A `system|code` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenRule>,
    /// A FHIR date or dateTime after one of these prefixes (`ge2024-01-31`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_prefixes: Option<Vec<String>>,
    /// The value is a comma-separated list (FHIR's "or"), each item passing the constraint
    /// (with `fhir_id`, `token` or `one_of` only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub list: bool,
    /// How often the parameter may appear (FHIR's "and"; default 1; `date_prefixes` only, for
    /// a range such as `date=ge2024-01-01&date=lt2025-01-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
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
            self.token.is_some(),
            self.date_prefixes.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    /// How often the parameter may appear.
    fn max_repeats(&self) -> usize {
        self.repeats.map_or(1, |r| r as usize)
    }
}

fn default_content_types() -> Vec<String> {
    vec!["application/fhir+json".to_owned()]
}

/// What a JSON request body must be: its media type, size, `resourceType` and a few structural
/// facts. The body is parsed once ([`json_body::scan`]: a depth limit, no repeated member name)
/// and forwarded byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BodyRule {
    /// Accepted media types (lower-case, no parameters; a `charset` other than UTF-8 is refused).
    #[serde(default = "default_content_types")]
    pub content_types: Vec<String>,
    /// Largest body in bytes (the listener's `max_body_bytes` applies first).
    pub max_bytes: usize,
    /// The body's `resourceType`, one of these.
    pub resource_type: Vec<String>,
    /// A Bundle's `type`, one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_type: Option<Vec<String>>,
    /// The `resourceType` of the first entry's resource, one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_entry: Option<Vec<String>>,
    /// The `resourceType` of every entry's resource, one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<String>>,
    /// The resource's `status`, one of these (a Task's status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<String>>,
    /// The body's `id` must be the path's last segment (an update: `PUT /Task/{fhir_id}`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub id_matches_path: bool,
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
    /// A JSON body (a create or an update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyRule>,
    /// The Patient ids in the answer (that carry the token's BSN) become the token's patients.
    #[serde(default)]
    pub binds_patients: bool,
}

/// Whether `name` is a resource type or element name (`[A-Za-z][A-Za-z0-9]{0,63}`).
fn plain_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Why one parameter rule is invalid.
fn validate_param(name: &str, p: &ParamRule) -> Result<(), String> {
    if p.constraint_count() != 1 {
        return Err(format!("parameter {name} needs exactly one of equals, one_of, max, allowed_patient, token_bsn_identifier, token_bsn, fhir_id, token, date_prefixes"));
    }
    let (base, modifier) = match name.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    if base.is_empty() || base.contains('.') || base.contains(':') {
        return Err(format!(
            "parameter {name}: chained parameters are not supported"
        ));
    }
    if FORBIDDEN.contains(&base) || base.starts_with("_has") {
        return Err(format!("parameter {name} is never allowed"));
    }
    if let Some(m) = modifier {
        if !MODIFIERS.contains(&m) || base.starts_with('_') {
            return Err(format!(
                "parameter {name}: the only modifier a rule may name is :missing, on a search parameter"
            ));
        }
        let boolean = |v: &str| v == "true" || v == "false";
        let ok = p.equals.as_deref().is_some_and(boolean)
            || p.one_of
                .as_ref()
                .is_some_and(|l| !l.is_empty() && l.iter().all(|v| boolean(v)));
        if !ok {
            return Err(format!(
                "parameter {name}: a :missing parameter's value is equals or one_of \"true\"/\"false\""
            ));
        }
    }
    if base == "_include" {
        let values: Vec<&String> = p.equals.iter().chain(p.one_of.iter().flatten()).collect();
        let include = |v: &str| {
            v.split_once(':').is_some_and(|(t, s)| {
                plain_name(t)
                    && !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        };
        if values.is_empty() || !values.iter().all(|v| include(v)) || p.list {
            return Err(format!(
                "parameter {name}: _include takes equals or one_of values of the form Type:parameter (no wildcard, no list)"
            ));
        }
    }
    if p.list && !(p.fhir_id || p.token.is_some() || p.one_of.is_some()) {
        return Err(format!(
            "parameter {name}: list goes with fhir_id, token or one_of"
        ));
    }
    if let Some(r) = p.repeats {
        if p.date_prefixes.is_none() || !(1..=4).contains(&r) {
            return Err(format!(
                "parameter {name}: repeats (1 to 4) goes with date_prefixes"
            ));
        }
    }
    if let Some(t) = &p.token {
        let code = |c: &str| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        };
        let system = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"|,\\$".contains(&b))
        };
        if t.systems.is_empty()
            || !t.systems.iter().all(|s| system(s))
            || t.codes
                .as_ref()
                .is_some_and(|c| c.is_empty() || !c.iter().all(|c| code(c)))
        {
            return Err(format!(
                "parameter {name}: a token needs systems (URIs) and, if given, plain codes"
            ));
        }
    }
    if let Some(prefixes) = &p.date_prefixes {
        if prefixes.is_empty() || !prefixes.iter().all(|x| DATE_PREFIXES.contains(&x.as_str())) {
            return Err(format!(
                "parameter {name}: date_prefixes are some of eq, ne, gt, lt, ge, le, sa, eb, ap"
            ));
        }
    }
    Ok(())
}

/// Why a body rule is invalid.
fn validate_body(rule: &Rule, b: &BodyRule) -> Result<(), String> {
    let name = &rule.name;
    let media = |t: &str| {
        t.split_once('/').is_some_and(|(a, s)| {
            !a.is_empty()
                && !s.is_empty()
                && t.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"/+-.".contains(&c))
        })
    };
    if !matches!(rule.method.as_str(), "POST" | "PUT") || !rule.form.is_empty() {
        return Err(format!(
            "rule \"{name}\": a body needs method POST or PUT and no form parameters"
        ));
    }
    if b.content_types.is_empty() || !b.content_types.iter().all(|t| media(t)) {
        return Err(format!(
            "rule \"{name}\": body.content_types are media types such as application/fhir+json"
        ));
    }
    if b.max_bytes == 0 || b.max_bytes > MAX_BODY_RULE_BYTES {
        return Err(format!(
            "rule \"{name}\": body.max_bytes must be between 1 and {MAX_BODY_RULE_BYTES}"
        ));
    }
    let types = |l: &[String]| !l.is_empty() && l.iter().all(|t| plain_name(t));
    if !types(&b.resource_type) {
        return Err(format!(
            "rule \"{name}\": body.resource_type lists resource types"
        ));
    }
    let bundle_only = b.bundle_type.is_some() || b.first_entry.is_some() || b.entries.is_some();
    if bundle_only && b.resource_type != ["Bundle"] {
        return Err(format!(
            "rule \"{name}\": body.bundle_type, first_entry and entries need resource_type = [\"Bundle\"]"
        ));
    }
    for (key, list) in [("first_entry", &b.first_entry), ("entries", &b.entries)] {
        if list.as_deref().is_some_and(|l| !types(l)) {
            return Err(format!("rule \"{name}\": body.{key} lists resource types"));
        }
    }
    for (key, list) in [("bundle_type", &b.bundle_type), ("status", &b.status)] {
        if list.as_ref().is_some_and(|l| {
            l.is_empty()
                || !l.iter().all(|v| {
                    !v.is_empty() && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                })
        }) {
            return Err(format!("rule \"{name}\": body.{key} lists codes"));
        }
    }
    if b.id_matches_path && !rule.path.ends_with("/{fhir_id}") {
        return Err(format!(
            "rule \"{name}\": body.id_matches_path needs a path ending in /{{fhir_id}}"
        ));
    }
    Ok(())
}

/// Why a rule set is invalid (reported with the policy file).
pub fn validate(rules: &[Rule]) -> Result<(), String> {
    let mut names = HashSet::new();
    for r in rules {
        if r.name.is_empty() || !names.insert(r.name.as_str()) {
            return Err(format!("rule name \"{}\" is empty or used twice", r.name));
        }
        if !matches!(r.method.as_str(), "GET" | "POST" | "HEAD" | "PUT") {
            return Err(format!(
                "rule \"{}\": method must be GET, POST, HEAD or PUT",
                r.name
            ));
        }
        if r.method == "PUT" && r.body.is_none() {
            return Err(format!("rule \"{}\": a PUT needs a [rule.body]", r.name));
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
            validate_param(name, p).map_err(|e| format!("rule \"{}\": {e}", r.name))?;
        }
        if !r.form.is_empty() && r.method != "POST" {
            return Err(format!(
                "rule \"{}\": form parameters need method POST",
                r.name
            ));
        }
        if let Some(b) = &r.body {
            validate_body(r, b)?;
        }
    }
    Ok(())
}

/// A request body as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct BodyShape<'a> {
    /// The media type of `Content-Type`, lower-case, without parameters (`""` when absent).
    pub media_type: &'a str,
    /// The `charset` parameter of `Content-Type`, lower-case, if any.
    pub charset: Option<&'a str>,
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
    /// The `charset` of the body's `Content-Type`, lower-case, if it names one.
    pub charset: Option<String>,
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
                charset: self.charset.as_deref(),
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

/// Why a body that a rule reads as JSON cannot be read: not a refusal by the policy, but a
/// request the client must send differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefusal {
    /// Not a media type (or charset) the rule accepts.
    #[error("unsupported-media-type")]
    UnsupportedMediaType,
    /// Larger than the rule allows.
    #[error("request-too-large")]
    TooLarge,
    /// Not JSON the rule can read (the message is the client's).
    #[error("invalid-body: {0}")]
    Invalid(JsonBodyError),
}

/// A refused request: why (for the audit log only), and the request, to decide again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason.
    pub reason: String,
    /// Whether the request is malformed (see [`Decision::Malformed`]) rather than refused.
    pub malformed: Option<&'static str>,
    /// Whether its body cannot be read the way the rule says (see [`Decision::Body`]).
    pub body: Option<BodyRefusal>,
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
            body: None,
            request,
        })),
        Decision::Malformed(m) => Err(Box::new(Refusal {
            reason: format!("malformed: {m}"),
            malformed: Some(m),
            body: None,
            request,
        })),
        Decision::Body(b) => Err(Box::new(Refusal {
            reason: b.to_string(),
            malformed: None,
            body: Some(b),
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
    /// A rule for this method and path reads a JSON body, and this one is not of its media
    /// type, too large, or not JSON it can read.
    Body(BodyRefusal),
}

fn fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `system|code` with the system and code the rule allows.
fn token_ok(rule: &TokenRule, value: &str) -> bool {
    let Some((system, code)) = value.split_once('|') else {
        return false;
    };
    rule.systems.iter().any(|s| s == system)
        && match &rule.codes {
            Some(codes) => codes.iter().any(|c| c == code),
            None => {
                !code.is_empty()
                    && code.len() <= 64
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            }
        }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Two digits from `lo` to `hi`.
fn two(s: &str, lo: u8, hi: u8) -> bool {
    digits(s, 2) && s.parse::<u8>().is_ok_and(|n| (lo..=hi).contains(&n))
}

/// A FHIR `date` or `dateTime`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.f+]]`
/// with `Z` or `±hh:mm`. Only the form is checked, strictly; the source system reads the value.
fn fhir_date(s: &str) -> bool {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let date_ok = match parts.as_slice() {
        [y] => digits(y, 4),
        [y, m] => digits(y, 4) && two(m, 1, 12),
        [y, m, d] => digits(y, 4) && two(m, 1, 12) && two(d, 1, 31),
        _ => false,
    };
    let Some(time) = time else {
        return date_ok;
    };
    if parts.len() != 3 || !date_ok {
        return false;
    }
    let (clock, zone) = if let Some(c) = time.strip_suffix('Z') {
        (c, None)
    } else if time.len() > 6 && matches!(time.as_bytes()[time.len() - 6], b'+' | b'-') {
        let (c, z) = time.split_at(time.len() - 6);
        (c, Some(&z[1..]))
    } else {
        return false;
    };
    let zone_ok = zone.is_none_or(|z| {
        z.split_once(':')
            .is_some_and(|(h, m)| two(h, 0, 14) && two(m, 0, 59))
    });
    let (hms, fraction) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let hms_ok = match hms.split(':').collect::<Vec<_>>().as_slice() {
        [h, m] => two(h, 0, 23) && two(m, 0, 59) && fraction.is_none(),
        [h, m, sec] => two(h, 0, 23) && two(m, 0, 59) && two(sec, 0, 60),
        _ => false,
    };
    zone_ok
        && hms_ok
        && fraction
            .is_none_or(|f| !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()))
}

/// One value (or list item) against the rule's constraint.
fn item_ok(rule: &ParamRule, value: &str, scope: &TokenScope<'_>) -> bool {
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
    if let Some(t) = &rule.token {
        return token_ok(t, value);
    }
    if let Some(prefixes) = &rule.date_prefixes {
        return value.len() > 2
            && value.is_char_boundary(2)
            && prefixes.iter().any(|p| p == &value[..2])
            && fhir_date(&value[2..]);
    }
    false
}

fn value_ok(rule: &ParamRule, value: &str, scope: &TokenScope<'_>) -> bool {
    if rule.list {
        // A list of at most 100 items, none empty; an escaped comma (`\,`) is not an item's.
        return !value.contains('\\')
            && value.split(',').count() <= 100
            && value.split(',').all(|item| item_ok(rule, item, scope));
    }
    item_ok(rule, value, scope)
}

/// Parses a query string or form body: each name with every value it was given. Refuses
/// chained parameters, modifiers other than [`MODIFIERS`], and the [`FORBIDDEN`] parameters.
fn params(raw: &[u8]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if let Some((_, modifier)) = k.split_once(':') {
            if !MODIFIERS.contains(&modifier) {
                return Err("parameter-modifier".into());
            }
        }
        if k.contains('.') {
            return Err("chained-parameter".into());
        }
        let base = k.split(':').next().unwrap_or_default();
        if FORBIDDEN.contains(&base) || base.starts_with("_has") {
            return Err(format!("forbidden-parameter:{base}"));
        }
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    Ok(out)
}

fn params_match(
    rules: &BTreeMap<String, ParamRule>,
    given: &BTreeMap<String, Vec<String>>,
    scope: &TokenScope<'_>,
) -> Result<(), &'static str> {
    for (name, values) in given {
        match rules.get(name) {
            None if name.contains(':') => return Err("parameter-modifier"),
            None if name == "_include" => return Err("forbidden-parameter:_include"),
            None => return Err("unknown-parameter"),
            Some(rule) if values.len() > rule.max_repeats() => return Err("repeated-parameter"),
            Some(_) => {}
        }
    }
    for (name, rule) in rules {
        match given.get(name).map(Vec::as_slice) {
            None | Some([]) if rule.optional => {}
            None | Some([]) => return Err("missing-parameter"),
            Some(values) if !values.iter().all(|v| value_ok(rule, v, scope)) => {
                return Err("parameter-value")
            }
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

/// Why one rule did not match.
#[derive(Debug, Clone, Copy)]
enum Miss {
    Deny(&'static str),
    Body(BodyRefusal),
}

/// A JSON body against a body rule; `facts` holds the body's one parse, made on first need.
fn body_matches(
    rule: &BodyRule,
    body: BodyShape<'_>,
    path: &str,
    facts: &mut Option<Result<JsonFacts, JsonBodyError>>,
) -> Result<(), Miss> {
    let utf8 = body.charset.is_none_or(|c| c == "utf-8");
    if !utf8 || !rule.content_types.iter().any(|t| t == body.media_type) {
        return Err(Miss::Body(BodyRefusal::UnsupportedMediaType));
    }
    if body.bytes.len() > rule.max_bytes {
        return Err(Miss::Body(BodyRefusal::TooLarge));
    }
    let f = match facts.get_or_insert_with(|| json_body::scan(body.bytes)) {
        Ok(f) => f,
        Err(e) => return Err(Miss::Body(BodyRefusal::Invalid(*e))),
    };
    let among = |list: &[String], v: &Option<String>| {
        v.as_deref().is_some_and(|v| list.iter().any(|l| l == v))
    };
    if !among(&rule.resource_type, &f.resource_type) {
        return Err(Miss::Deny("body-resource-type"));
    }
    if rule
        .bundle_type
        .as_deref()
        .is_some_and(|l| !among(l, &f.bundle_type))
    {
        return Err(Miss::Deny("body-bundle-type"));
    }
    if (rule.first_entry.is_some() || rule.entries.is_some()) && f.entry_malformed {
        return Err(Miss::Deny("body-entries"));
    }
    if let Some(first) = &rule.first_entry {
        if !f.entry_types.first().is_some_and(|t| among(first, t)) {
            return Err(Miss::Deny("body-first-entry"));
        }
    }
    if let Some(all) = &rule.entries {
        if !f.entry_types.iter().all(|t| among(all, t)) {
            return Err(Miss::Deny("body-entry-type"));
        }
    }
    if rule.status.as_deref().is_some_and(|l| !among(l, &f.status)) {
        return Err(Miss::Deny("body-status"));
    }
    if rule.id_matches_path && f.id.as_deref() != path.rsplit('/').next() {
        return Err(Miss::Deny("body-id"));
    }
    Ok(())
}

/// Decides one request. The rules whose method and path match are tried in order; the first
/// whose parameters and body match permits it. A body is allowed only where the rule names it
/// (a form body's parameters, or a JSON body's facts).
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
    let reads_form = candidates.iter().any(|r| !r.form.is_empty());
    let form = match req.body {
        Some(b) if b.media_type == FORM && reads_form => match params(b.bytes) {
            Ok(f) => Some(f),
            Err(reason) => return Decision::Deny(reason),
        },
        _ => None,
    };
    let mut facts = None;
    let mut last = Miss::Deny("");
    for rule in candidates {
        let q = params_match(&rule.query, &query, scope).map_err(Miss::Deny);
        let b = match (req.body, &rule.body, rule.form.is_empty()) {
            (None, None, true) => Ok(()),
            (None, None, false) => Err(Miss::Deny("missing-form-body")),
            (None, Some(_), _) => Err(Miss::Deny("missing-request-body")),
            (Some(body), Some(json), _) => body_matches(json, body, req.path, &mut facts),
            (Some(_), None, false) => match &form {
                Some(f) => params_match(&rule.form, f, scope).map_err(Miss::Deny),
                None => {
                    return Decision::Malformed("only form-encoded request bodies are accepted")
                }
            },
            (Some(_), None, true) => Err(Miss::Deny("request-body-not-allowed")),
        };
        match q.and(b) {
            Ok(()) => {
                return Decision::Permit(Decided {
                    rule: rule.name.clone(),
                    binds_patients: rule.binds_patients,
                })
            }
            Err(miss) => last = miss,
        }
    }
    match last {
        Miss::Deny(reason) => Decision::Deny(reason.to_owned()),
        Miss::Body(b) => Decision::Body(b),
    }
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
                    charset: None,
                    bytes: f.as_bytes(),
                }),
            };
            let got = match decide(&rules, &req, &scope) {
                Decision::Permit(p) => Ok(p.rule().to_owned()),
                Decision::Deny(r) => Err(r),
                Decision::Malformed(m) => Err(m.to_owned()),
                Decision::Body(b) => Err(b.to_string()),
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
            charset: None,
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
            charset: None,
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

    fn zorgdomein_rules() -> Vec<Rule> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/zorgdomein.toml"
        ))
        .unwrap();
        let crate::policy::Compiled::Requests(p) =
            crate::policy::PolicySet::compile_any("zorgdomein.toml", "zorgdomein", &text).unwrap()
        else {
            panic!("a request policy")
        };
        p.rules
    }

    /// One ZorgDomein row: method, path?query, body, expected rule or refusal.
    type ZdRow<'a> = (&'a str, &'a str, Option<&'a str>, Result<&'a str, &'a str>);

    /// The Request module's queries and the Receive module's writes, and their near misses.
    #[test]
    fn zorgdomein_policy_table() {
        let rules = zorgdomein_rules();
        let none = HashSet::new();
        let scope = TokenScope {
            bsn: None,
            allowed_patients: &none,
        };
        let doc = r#"{"resourceType":"Bundle","id":"b-1","type":"document","entry":[{"resource":{"resourceType":"Composition"}},{"resource":{"resourceType":"Patient"}}]}"#;
        let transaction = doc.replace("\"document\"", "\"transaction\"");
        let patient_first = r#"{"resourceType":"Bundle","type":"document","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Composition"}}]}"#;
        let no_entries = r#"{"resourceType":"Bundle","type":"document"}"#;
        let task = r#"{"resourceType":"Task","id":"t-1","status":"cancelled","intent":"order"}"#;
        let task_other = task.replace("t-1\"", "t-2\"");
        let task_done = task.replace("cancelled", "completed");
        let dup = r#"{"resourceType":"Bundle","resourceType":"Bundle","type":"document","entry":[{"resource":{"resourceType":"Composition"}}]}"#;
        let deep = format!(
            r#"{{"resourceType":"Bundle","x":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let cat = "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.14.1";
        let consent_nr = format!("/Consent?patient=p1&category={cat}%7CNR&_sort=-date&_count=1");
        let consent_all = format!(
            "/Consent?patient=p1&category={cat}%7CNR,{cat}%7CVOL,{cat}%7CDO&_sort=-date&_count=1"
        );
        let consent_other = format!("/Consent?patient=p1&category={cat}%7CXX");
        let consent_system = "/Consent?patient=p1&category=urn:oid:1.2.3%7CNR".to_owned();
        let jrt = "http://fhir.nl/fhir/NamingSystem/journaalregeltypen";
        let obs_code = format!("/Observation?patient=p1&encounter=e1,e2&code={jrt}%7CS,{jrt}%7CO");
        let table: Vec<ZdRow<'_>> = vec![
            ("POST", "/Bundle", Some(doc), Ok("receive-document")),
            ("POST", "/Bundle", Some(&transaction), Err("body-bundle-type")),
            ("POST", "/Bundle", Some(patient_first), Err("body-first-entry")),
            ("POST", "/Bundle", Some(no_entries), Err("body-first-entry")),
            ("POST", "/Bundle", Some(r#"{"resourceType":"Composition"}"#), Err("body-resource-type")),
            ("POST", "/Bundle", Some(dup), Err("invalid-body: the request body has a duplicate member name")),
            ("POST", "/Bundle", Some(&deep), Err("invalid-body: the request body is nested too deeply")),
            ("POST", "/Bundle", Some("{\"resourceType\":"), Err("invalid-body: the request body is not valid JSON")),
            ("POST", "/Bundle", Some("[1]"), Err("invalid-body: the request body is not a JSON object")),
            ("POST", "/Bundle", None, Err("missing-request-body")),
            ("POST", "/Bundle?_format=json", Some(doc), Err("unknown-parameter")),
            ("POST", "/Bundle/b-1", Some(doc), Err("no-rule-for-method-and-path")),
            ("PUT", "/Bundle/b-1", Some(doc), Err("no-rule-for-method-and-path")),
            ("PUT", "/Task/t-1", Some(task), Ok("task-cancel")),
            ("PUT", "/Task/t-1", Some(&task_other), Err("body-id")),
            ("PUT", "/Task/t-1", Some(&task_done), Err("body-status")),
            ("POST", "/Task", Some(task), Err("no-rule-for-method-and-path")),
            ("DELETE", "/Task/t-1", None, Err("no-rule-for-method-and-path")),
            ("GET", "/Task/t-1", None, Ok("task-read")),
            ("GET", "/Task/t-1/_history", None, Err("no-rule-for-method-and-path")),
            ("GET", "/Patient/p1", None, Ok("patient-read")),
            ("GET", "/Patient?name=x", None, Err("no-rule-for-method-and-path")),
            ("GET", "/Coverage?subscriber=p1&_include=Coverage:payor", None, Ok("coverage-search")),
            ("GET", "/Coverage?subscriber=p1", None, Ok("coverage-search")),
            ("GET", "/Coverage?subscriber=p1&_include=Coverage:beneficiary", None, Err("parameter-value")),
            ("GET", "/Coverage?subscriber=p1&_include=*", None, Err("parameter-value")),
            ("GET", "/Coverage?subscriber=p1&_include:iterate=Coverage:payor", None, Err("parameter-modifier")),
            ("GET", "/Coverage?subscriber=p1&_include=Coverage:payor&_include=Coverage:payor", None, Err("repeated-parameter")),
            ("GET", "/Coverage?subscriber=p1&_revinclude=Provenance:target", None, Err("forbidden-parameter:_revinclude")),
            ("GET", "/Coverage?subscriber.identifier=x", None, Err("chained-parameter")),
            ("GET", "/Coverage?subscriber:missing=true", None, Err("parameter-modifier")),
            ("GET", &consent_nr, None, Ok("consent-search")),
            ("GET", &consent_all, None, Ok("consent-search")),
            ("GET", &consent_other, None, Err("parameter-value")),
            ("GET", &consent_system, None, Err("parameter-value")),
            ("GET", "/Consent?patient=p1&_count=2", None, Err("parameter-value")),
            ("GET", "/EpisodeOfCare?patient=p1&_sort=-date", None, Ok("episodeofcare-search")),
            ("GET", "/EpisodeOfCare?patient=p1&_sort=date", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&episodeofcare=eoc1,eoc2&date=ge2024-01-01&_count=50&_sort=-date", None, Ok("encounter-search")),
            ("GET", "/Encounter?patient=p1&episodeofcare:missing=true&date=ge2024-01-01T00:00:00%2B01:00", None, Ok("encounter-search")),
            ("GET", "/Encounter?patient=p1&episodeofcare=eoc1&_summary=count", None, Ok("encounter-search")),
            ("GET", "/Encounter?patient=p1&episodeofcare:missing=false", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&episodeofcare:exact=eoc1", None, Err("parameter-modifier")),
            ("GET", "/Encounter?patient=p1&patient:missing=true", None, Err("parameter-modifier")),
            ("GET", "/Encounter?patient=p1&date=le2024-01-01", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&date=ge2024-13", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&date=ge2024-02-01T23:59:60Z", None, Ok("encounter-search")),
            ("GET", "/Encounter?patient=p1&date=ge2024-02-01T24:00:00Z", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&date=ge2024-02-01T10:00:00.123-05:30", None, Ok("encounter-search")),
            ("GET", "/Encounter?patient=p1&date=ge2024-02-01T10:00:00.-05:30", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&date=ge2024-1-01", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&date=ge2024-01-01T10:00", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&date=ge2024&date=ge2025", None, Err("repeated-parameter")),
            ("GET", "/Encounter?patient=p1&_summary=true", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&episodeofcare=a,,b", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&episodeofcare=a%5C,b", None, Err("parameter-value")),
            ("GET", "/Encounter?patient=p1&subject:Patient=p1", None, Err("parameter-modifier")),
            ("GET", "/Encounter?patient=p1&_has:Observation:encounter:code=x", None, Err("parameter-modifier")),
            ("GET", "/Encounter?patient=p1&_has=x", None, Err("forbidden-parameter:_has")),
            ("GET", &obs_code, None, Ok("observation-search")),
            ("GET", "/Observation?patient=p1&context:missing=true", None, Ok("observation-search")),
            ("GET", "/Observation?patient=p1&code=http://loinc.org%7C1234-5", None, Err("parameter-value")),
            ("GET", "/Observation?patient=p1&encounter:missing=true", None, Err("parameter-modifier")),
            ("GET", "/Observation?patient=p1&encounter.subject=x", None, Err("chained-parameter")),
            ("GET", "/MedicationStatement?patient=p1&effective=ge2024-01-01&effective=lt2025-01-01&_sort=-effective", None, Ok("medicationstatement-search")),
            ("GET", "/MedicationStatement?patient=p1&effective:missing=true&context:missing=true", None, Ok("medicationstatement-search")),
            ("GET", "/MedicationStatement?patient=p1&effective=ge2024&effective=lt2025&effective=ge2023", None, Err("repeated-parameter")),
            ("GET", "/MedicationStatement?patient=p1&effective=gt2024", None, Err("parameter-value")),
            ("GET", "/Organization?identifier=http://fhir.nl/fhir/NamingSystem/agb-z%7C12345678", None, Ok("organization-search")),
            ("GET", "/Organization?identifier=http://fhir.nl/fhir/NamingSystem/agb-z%7C1%202", None, Err("parameter-value")),
            ("GET", "/Organization?identifier=12345678", None, Err("parameter-value")),
            ("GET", "/Organization", None, Err("missing-parameter")),
        ];
        for (method, target, body, expected) in table {
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let req = RequestShape {
                method,
                path,
                query,
                body: body.map(|b| BodyShape {
                    media_type: "application/fhir+json",
                    charset: Some("utf-8"),
                    bytes: b.as_bytes(),
                }),
            };
            let got = match decide(&rules, &req, &scope) {
                Decision::Permit(p) => Ok(p.rule().to_owned()),
                Decision::Deny(r) => Err(r),
                Decision::Malformed(m) => Err(m.to_owned()),
                Decision::Body(b) => Err(b.to_string()),
            };
            let want = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(
                got,
                want,
                "{method} {}",
                target.chars().take(120).collect::<String>()
            );
        }
    }

    /// The body's media type and charset, and the rule's size limit, are checked before the body
    /// is parsed; the permit holds the body byte for byte.
    #[test]
    fn json_bodies_media_type_size_and_bytes() {
        let rules = zorgdomein_rules();
        let none = HashSet::new();
        let scope = TokenScope {
            bsn: None,
            allowed_patients: &none,
        };
        let task = br#"{"resourceType":"Task","id":"t-1","status":"cancelled"}"#;
        let put = |media: &str, charset: Option<&str>, body: &[u8]| Request {
            method: "PUT".into(),
            path: "/Task/t-1".into(),
            query: None,
            media_type: media.into(),
            charset: charset.map(str::to_owned),
            body: bytes::Bytes::copy_from_slice(body),
        };
        let permit = authorize(&rules, put("application/fhir+json", None, task), &scope).unwrap();
        assert_eq!(permit.body().as_ref(), task);
        assert_eq!((permit.method(), permit.path()), ("PUT", "/Task/t-1"));
        for (media, charset) in [
            ("application/json", None),
            ("application/fhir+xml", None),
            ("application/x-www-form-urlencoded", None),
            ("", None),
            ("application/fhir+json", Some("iso-8859-1")),
        ] {
            let r = authorize(&rules, put(media, charset, task), &scope).unwrap_err();
            assert_eq!(
                r.body,
                Some(BodyRefusal::UnsupportedMediaType),
                "{media} {charset:?}"
            );
        }
        let mut big = task.to_vec();
        big.truncate(big.len() - 1);
        big.extend_from_slice(b",\"note\":[{\"text\":\"");
        big.resize(1024 * 1024, b'x');
        big.extend_from_slice(b"\"}]}");
        let r = authorize(&rules, put("application/fhir+json", None, &big), &scope).unwrap_err();
        assert_eq!(
            (r.body, r.reason.as_str()),
            (Some(BodyRefusal::TooLarge), "request-too-large")
        );
    }

    #[test]
    fn the_new_language_is_validated() {
        let base = |extra: &str| {
            format!("authenticator = \"zorgdomein\"\n[response]\nformat = \"passthrough\"\n[[rule]]\nname = \"r\"\n{extra}")
        };
        let bad = [
            ("method = \"PUT\"\npath = \"/Task/{fhir_id}\"", "a PUT needs a [rule.body]"),
            ("method = \"DELETE\"\npath = \"/Task\"", "method must be GET, POST, HEAD or PUT"),
            ("method = \"GET\"\npath = \"/X\"\nquery.\"x:exact\" = { equals = \"a\" }", "the only modifier"),
            ("method = \"GET\"\npath = \"/X\"\nquery.\"x:missing\" = { fhir_id = true }", "\"true\"/\"false\""),
            ("method = \"GET\"\npath = \"/X\"\nquery.\"_include:missing\" = { equals = \"true\" }", "the only modifier"),
            ("method = \"GET\"\npath = \"/X\"\nquery._include = { one_of = [\"*\"] }", "Type:parameter"),
            ("method = \"GET\"\npath = \"/X\"\nquery._include = { fhir_id = true }", "Type:parameter"),
            ("method = \"GET\"\npath = \"/X\"\nquery._revinclude = { equals = \"a:b\" }", "never allowed"),
            ("method = \"GET\"\npath = \"/X\"\nquery.\"a.b\" = { equals = \"x\" }", "chained"),
            ("method = \"GET\"\npath = \"/X\"\nquery.a = { max = 3, list = true }", "list goes with"),
            ("method = \"GET\"\npath = \"/X\"\nquery.a = { fhir_id = true, repeats = 2 }", "repeats"),
            ("method = \"GET\"\npath = \"/X\"\nquery.a = { date_prefixes = [\"after\"] }", "date_prefixes"),
            ("method = \"GET\"\npath = \"/X\"\nquery.a = { token = { systems = [] } }", "a token needs"),
            ("method = \"GET\"\npath = \"/X\"\nquery.a = { token = { systems = [\"s\"], codes = [\"a b\"] } }", "a token needs"),
            ("method = \"GET\"\npath = \"/X\"\n[rule.body]\nmax_bytes = 10\nresource_type = [\"Task\"]", "a body needs method POST or PUT"),
            ("method = \"POST\"\npath = \"/X\"\n[rule.body]\nmax_bytes = 0\nresource_type = [\"Task\"]", "max_bytes"),
            ("method = \"POST\"\npath = \"/X\"\n[rule.body]\nmax_bytes = 10\nresource_type = []", "resource_type"),
            ("method = \"POST\"\npath = \"/X\"\n[rule.body]\nmax_bytes = 10\nresource_type = [\"Task\"]\nbundle_type = [\"document\"]", "need resource_type = [\"Bundle\"]"),
            ("method = \"POST\"\npath = \"/X\"\n[rule.body]\nmax_bytes = 10\ncontent_types = [\"application/json; charset=utf-8\"]\nresource_type = [\"Task\"]", "content_types"),
            ("method = \"PUT\"\npath = \"/X\"\n[rule.body]\nmax_bytes = 10\nresource_type = [\"Task\"]\nid_matches_path = true", "id_matches_path"),
            ("method = \"POST\"\npath = \"/X\"\n[rule.body]\nmax_bytes = 10\nresource_type = [\"Task\"]\nextra = 1", "unknown field `extra`"),
        ];
        for (rule, want) in bad {
            let e = crate::policy::PolicySet::compile_any("p.toml", "p", &base(rule))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{rule}: {e}");
        }
        // A zorgdomein policy passes answers through.
        let e = crate::policy::PolicySet::compile_any(
            "p.toml",
            "p",
            "authenticator = \"zorgdomein\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("passes answers through"), "{e}");
        // MedMij's shape: a transaction Bundle of document resources.
        let medmij = base("method = \"POST\"\npath = \"/\"\n[rule.body]\nmax_bytes = 1000\nresource_type = [\"Bundle\"]\nbundle_type = [\"transaction\"]\nentries = [\"DocumentManifest\", \"DocumentReference\", \"Binary\"]");
        let crate::policy::Compiled::Requests(p) =
            crate::policy::PolicySet::compile_any("p.toml", "p", &medmij).unwrap()
        else {
            panic!("a request policy")
        };
        let none = HashSet::new();
        let scope = TokenScope {
            bsn: None,
            allowed_patients: &none,
        };
        let decide_body = |body: &str| {
            decide(
                &p.rules,
                &RequestShape {
                    method: "POST",
                    path: "/",
                    query: None,
                    body: Some(BodyShape {
                        media_type: "application/fhir+json",
                        charset: None,
                        bytes: body.as_bytes(),
                    }),
                },
                &scope,
            )
        };
        let ok = r#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"DocumentReference"}},{"resource":{"resourceType":"Binary"}}]}"#;
        assert!(matches!(decide_body(ok), Decision::Permit(_)));
        let other = ok.replace("\"Binary\"", "\"Patient\"");
        assert_eq!(
            decide_body(&other),
            Decision::Deny("body-entry-type".into())
        );
        let no_resource =
            r#"{"resourceType":"Bundle","type":"transaction","entry":[{"request":{}}]}"#;
        assert_eq!(
            decide_body(no_resource),
            Decision::Deny("body-entry-type".into())
        );
    }
}
