//! FHIR helpers for the proxy: does an answer belong to the token's patient? Pure.
//!
//! Every resource in an answer (a single resource, or each `Bundle.entry.resource`) must be:
//! a `Patient` whose id is allowed (or, in a patient-search answer, that carries the token's BSN,
//! which makes its id allowed); a resource whose `subject` or `patient` reference names an allowed
//! Patient; an `OperationOutcome`; or of a type the policy lists as belonging to no patient.

use std::collections::HashSet;

use serde_json::Value;

use crate::bsn::BSN_SYSTEM;

/// Why an answer was withheld (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

fn carries_bsn(patient: &Value, bsn: &str) -> bool {
    patient["identifier"].as_array().is_some_and(|ids| {
        ids.iter().any(|id| {
            id["system"].as_str() == Some(BSN_SYSTEM) && id["value"].as_str() == Some(bsn)
        })
    })
}

fn referenced_patient(reference: &str) -> Option<&str> {
    let rest = reference.rsplit_once("Patient/").map(|(_, r)| r)?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then_some(id)
}

/// Checks `body`; returns the Patient ids a patient search (with `binds`) newly allows.
pub fn check_answer(
    body: &Value,
    bsn: &str,
    allowed: &HashSet<String>,
    non_patient: &[String],
    binds: bool,
) -> Result<Vec<String>, Mismatch> {
    let resources: Vec<&Value> = if body["resourceType"] == "Bundle" {
        match &body["entry"] {
            Value::Null => Vec::new(),
            Value::Array(entries) => entries.iter().map(|e| &e["resource"]).collect(),
            _ => return Err(Mismatch("bundle-entry-not-an-array".into())),
        }
    } else {
        vec![body]
    };
    let mut learned = Vec::new();
    for r in resources {
        let kind = r["resourceType"].as_str().unwrap_or_default();
        match kind {
            "" => return Err(Mismatch("resource-without-type".into())),
            "OperationOutcome" => {}
            "Patient" => {
                let id = r["id"].as_str().unwrap_or_default();
                if binds && carries_bsn(r, bsn) && !id.is_empty() {
                    learned.push(id.to_owned());
                } else if !allowed.contains(id) || !carries_bsn_or_known(r, bsn, allowed) {
                    return Err(Mismatch("patient-not-of-token".into()));
                }
            }
            "Bundle" => return Err(Mismatch("nested-bundle".into())),
            k if non_patient.iter().any(|t| t == k) => {}
            _ => {
                let reference = r["subject"]["reference"]
                    .as_str()
                    .or_else(|| r["patient"]["reference"].as_str());
                let ok = reference
                    .and_then(referenced_patient)
                    .is_some_and(|id| allowed.contains(id) || learned.iter().any(|l| l == id));
                if !ok {
                    return Err(Mismatch(format!("resource-of-other-patient:{kind}")));
                }
            }
        }
    }
    Ok(learned)
}

/// A Patient already allowed must not carry another BSN.
fn carries_bsn_or_known(patient: &Value, bsn: &str, allowed: &HashSet<String>) -> bool {
    let other_bsn = patient["identifier"].as_array().is_some_and(|ids| {
        ids.iter().any(|id| {
            id["system"].as_str() == Some(BSN_SYSTEM) && id["value"].as_str() != Some(bsn)
        })
    });
    !other_bsn
        && patient["id"]
            .as_str()
            .is_some_and(|id| allowed.contains(id))
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
            check_answer(b, "999999990", allowed, &np, binds)
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
            Err(Mismatch("resource-without-type".into()))
        );
        let abs = json!({"resourceType": "Observation", "subject": {"reference": "https://fhir.example/Patient/p1/_history/2"}});
        assert_eq!(ok(&abs, &allowed, false), Ok(vec![]));
    }
}
