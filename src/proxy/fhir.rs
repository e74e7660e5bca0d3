//! FHIR helpers for the proxy: does an answer belong to the token's patient? Pure.
//!
//! Every resource in an answer (a single resource, or each `Bundle.entry.resource`) must be:
//! a `Patient` whose id is allowed (or, in a patient-search answer, that carries the token's BSN,
//! which makes its id allowed); a resource whose `subject` or `patient` reference names an allowed
//! Patient; an `OperationOutcome`; or of a type the policy lists as belonging to no patient.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use crate::bsn::BSN_SYSTEM;

/// Why an answer was withheld (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl Mismatch {
    /// The answer is not FHIR JSON at all (a source-system fault rather than a patient mismatch).
    #[must_use]
    pub fn unparseable(&self) -> bool {
        self.0 == "answer-not-fhir-json"
    }
}

/// The parts of a FHIR resource the check reads; everything else is skipped while parsing (no
/// JSON tree is built: answers can be large). Strings are borrowed from the body unless they
/// hold escapes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Resource<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    identifier: Vec<Identifier<'a>>,
    #[serde(borrow)]
    subject: Option<Reference<'a>>,
    #[serde(borrow)]
    patient: Option<Reference<'a>>,
    #[serde(borrow)]
    entry: Option<Vec<Entry<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry<'a> {
    #[serde(borrow)]
    resource: Option<Resource<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Identifier<'a> {
    #[serde(borrow)]
    system: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Reference<'a> {
    #[serde(borrow)]
    reference: Option<Cow<'a, str>>,
}

impl Resource<'_> {
    fn has_bsn(&self, bsn: &str) -> bool {
        self.identifier
            .iter()
            .any(|i| i.system.as_deref() == Some(BSN_SYSTEM) && i.value.as_deref() == Some(bsn))
    }
    fn has_other_bsn(&self, bsn: &str) -> bool {
        self.identifier
            .iter()
            .any(|i| i.system.as_deref() == Some(BSN_SYSTEM) && i.value.as_deref() != Some(bsn))
    }
}

fn referenced_patient(reference: &str) -> Option<&str> {
    let rest = reference.rsplit_once("Patient/").map(|(_, r)| r)?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then_some(id)
}

/// Checks an answer body; returns the Patient ids a patient search (with `binds`) newly allows.
pub fn check_answer(
    body: &[u8],
    bsn: &str,
    allowed: &HashSet<String>,
    non_patient: &[String],
    binds: bool,
) -> Result<Vec<String>, Mismatch> {
    let top: Resource =
        serde_json::from_slice(body).map_err(|_| Mismatch("answer-not-fhir-json".into()))?;
    let resources: Vec<&Resource<'_>> = if top.resource_type == "Bundle" {
        top.entry
            .iter()
            .flatten()
            .map(|e| {
                e.resource
                    .as_ref()
                    .ok_or_else(|| Mismatch("resource-without-type".into()))
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![&top]
    };
    let mut learned: Vec<String> = Vec::new();
    for r in resources {
        match r.resource_type.as_ref() {
            "" => return Err(Mismatch("resource-without-type".into())),
            "OperationOutcome" => {}
            "Patient" => {
                if binds && r.has_bsn(bsn) && !r.id.is_empty() {
                    learned.push(r.id.clone().into_owned());
                } else if !allowed.contains(r.id.as_ref()) || r.has_other_bsn(bsn) {
                    return Err(Mismatch("patient-not-of-token".into()));
                }
            }
            "Bundle" => return Err(Mismatch("nested-bundle".into())),
            k if non_patient.iter().any(|t| t == k) => {}
            k => {
                let reference = r
                    .subject
                    .as_ref()
                    .and_then(|s| s.reference.as_deref())
                    .or_else(|| r.patient.as_ref().and_then(|p| p.reference.as_deref()));
                let ok = reference
                    .and_then(referenced_patient)
                    .is_some_and(|id| allowed.contains(id) || learned.iter().any(|l| l == id));
                if !ok {
                    return Err(Mismatch(format!("resource-of-other-patient:{k}")));
                }
            }
        }
    }
    Ok(learned)
}

/// The FHIR `OperationOutcome` poortwachter answers with: it says what kind of failure, never
/// which rule.
#[must_use]
pub fn operation_outcome(code: &str, diagnostics: &str) -> Value {
    serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patient(id: &str, bsn: &str) -> Value {
        json!({"resourceType": "Patient", "id": id, "identifier": [{"system": BSN_SYSTEM, "value": bsn}]})
    }

    fn obs(id: &str, patient: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "subject": {"reference": format!("Patient/{patient}")}})
    }

    fn bundle(resources: Vec<Value>) -> Value {
        json!({"resourceType": "Bundle", "type": "searchset", "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
    }

    #[test]
    fn answers_are_checked_against_the_token_patient() {
        let allowed: HashSet<String> = ["p1".to_owned()].into();
        let none = HashSet::new();
        let np = vec!["Practitioner".to_owned()];
        let ok = |b: &Value, allowed: &HashSet<String>, binds: bool| {
            check_answer(b.to_string().as_bytes(), "999999990", allowed, &np, binds)
        };
        assert_eq!(
            ok(&bundle(vec![patient("p1", "999999990")]), &none, true),
            Ok(vec!["p1".to_owned()])
        );
        assert_eq!(
            ok(
                &bundle(vec![patient("p1", "999999990"), patient("p9", "123456782")]),
                &none,
                true
            ),
            Err(Mismatch("patient-not-of-token".into()))
        );
        assert_eq!(
            ok(
                &bundle(vec![obs("o1", "p1"), obs("o2", "p1")]),
                &allowed,
                false
            ),
            Ok(vec![])
        );
        assert_eq!(
            ok(
                &bundle(vec![obs("o1", "p1"), obs("o2", "p2")]),
                &allowed,
                false
            ),
            Err(Mismatch("resource-of-other-patient:Observation".into()))
        );
        assert_eq!(
            ok(
                &json!({"resourceType": "Observation", "id": "x"}),
                &allowed,
                false
            ),
            Err(Mismatch("resource-of-other-patient:Observation".into()))
        );
        assert_eq!(ok(&patient("p1", "999999990"), &allowed, false), Ok(vec![]));
        assert_eq!(
            ok(&patient("p1", "123456782"), &allowed, false),
            Err(Mismatch("patient-not-of-token".into()))
        );
        assert_eq!(
            ok(&patient("p2", "999999990"), &allowed, false),
            Err(Mismatch("patient-not-of-token".into()))
        );
        assert_eq!(
            ok(
                &json!({"resourceType": "Practitioner", "id": "d1"}),
                &allowed,
                false
            ),
            Ok(vec![])
        );
        assert_eq!(
            ok(
                &json!({"resourceType": "Bundle", "type": "searchset", "total": 0}),
                &allowed,
                false
            ),
            Ok(vec![])
        );
        assert_eq!(
            ok(
                &bundle(vec![json!({"resourceType": "Bundle"})]),
                &allowed,
                false
            ),
            Err(Mismatch("nested-bundle".into()))
        );
        assert_eq!(
            ok(&json!({"id": 1}), &allowed, false),
            Err(Mismatch("answer-not-fhir-json".into())),
            "id must be a string"
        );
        assert_eq!(
            ok(&json!({"id": "1"}), &allowed, false),
            Err(Mismatch("resource-without-type".into()))
        );
        let entry_object = json!({"resourceType": "Bundle", "entry": {"resource": {}}});
        assert_eq!(
            ok(&entry_object, &allowed, false),
            Err(Mismatch("answer-not-fhir-json".into()))
        );
        assert_eq!(
            check_answer(b"not json", "999999990", &allowed, &np, false),
            Err(Mismatch("answer-not-fhir-json".into()))
        );
        let abs = json!({"resourceType": "Observation", "subject": {"reference": "https://fhir.example/Patient/p1/_history/2"}});
        assert_eq!(ok(&abs, &allowed, false), Ok(vec![]));
    }

    /// Strings with JSON escapes cannot be borrowed from the body; they are read all the same.
    #[test]
    fn escaped_strings_are_read_like_plain_ones() {
        let allowed: HashSet<String> = ["p1".to_owned()].into();
        let check = |body: &str| check_answer(body.as_bytes(), "999999990", &allowed, &[], true);
        let obs = |reference: &str| {
            format!(
                r#"{{"resourceType":"Obs\u0065rvation","subject":{{"reference":"{reference}"}}}}"#
            )
        };
        assert_eq!(check(&obs(r"Patient\/p1")), Ok(vec![]));
        assert_eq!(check(&obs(r"Patient\/p\u0031")), Ok(vec![]));
        assert_eq!(
            check(&obs(r"Patient\/p2")),
            Err(Mismatch("resource-of-other-patient:Observation".into()))
        );
        let patient = r#"{"resourceType":"Patient","id":"p\u0037","identifier":[{"system":"http:\/\/fhir.nl\/fhir\/NamingSystem\/bsn","value":"99999999\u0030"}]}"#;
        assert_eq!(check(patient), Ok(vec!["p7".to_owned()]));
    }
}
