//! A sample FHIR source system for the demo and the tests: real HTTP on 127.0.0.1 with zib
//! resources (Nictiz zib2017, FHIR STU3) for two test patients. It answers the huisarts profile's
//! queries, records every request it receives (so tests can prove refused requests never arrive),
//! and can be told to misbehave (answer with the other patient's data).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The patient a demo credential covers (Patient `pat-1`).
pub const BSN1: &str = "999999990";
/// The other patient (Patient `pat-2`).
pub const BSN2: &str = "123456782";
/// The FHIR system of the BSN.
pub const BSN_SYSTEM: &str = "http://fhir.nl/fhir/NamingSystem/bsn";
/// The zib profiles the sample holds Observations for: (profile, code, display).
pub const PROFILES: [(&str, &str, &str); 5] = [
    (
        "http://nictiz.nl/fhir/StructureDefinition/zib-BloodPressure",
        "85354-9",
        "Blood pressure panel",
    ),
    (
        "http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight",
        "29463-7",
        "Body weight",
    ),
    (
        "http://nictiz.nl/fhir/StructureDefinition/zib-BodyHeight",
        "8302-2",
        "Body height",
    ),
    (
        "http://hl7.org/fhir/StructureDefinition/bloodglucose",
        "14743-9",
        "Glucose [Moles/volume] in Capillary blood",
    ),
    (
        "http://fhir.nl/fhir/StructureDefinition/nl-core-nursingreport",
        "11591000146107",
        "Verpleegkundige rapportage",
    ),
];

/// The sample system's state.
#[derive(Default)]
pub struct Backend {
    /// Every request the backend received: (method and path with query, headers).
    pub seen: Mutex<Vec<(String, HeaderMap)>>,
    /// Misbehave: answer Observation searches with the other patient's data.
    pub evil: Mutex<bool>,
}

/// A zib Patient.
#[must_use]
pub fn patient(id: &str, bsn: &str, family: &str) -> Value {
    json!({
        "resourceType": "Patient", "id": id,
        "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-patient"]},
        "identifier": [{"system": BSN_SYSTEM, "value": bsn}],
        "name": [{"family": family, "given": ["Jan"]}], "gender": "male", "birthDate": "1940-03-12"
    })
}

/// Three Observations per zib profile for a patient, newest first.
#[must_use]
pub fn observations(patient_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (profile, code, display)) in PROFILES.iter().enumerate() {
        for n in 0..3 {
            let system = if code.len() > 8 {
                "http://snomed.info/sct"
            } else {
                "http://loinc.org"
            };
            let mut o = json!({
                "resourceType": "Observation", "id": format!("{patient_id}-obs-{i}-{n}"),
                "meta": {"profile": [profile]}, "status": "final",
                "code": {"coding": [{"system": system, "code": code, "display": display}]},
                "subject": {"reference": format!("Patient/{patient_id}")},
                "effectiveDateTime": format!("2026-11-{:02}T09:00:00+01:00", 20 - n),
                "performer": [{"reference": "Practitioner/prac-1"}]
            });
            match *code {
                "85354-9" => {
                    o["component"] = json!([
                        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 135, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 82, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
                    ])
                }
                "29463-7" => {
                    o["valueQuantity"] = json!({"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"})
                }
                "8302-2" => {
                    o["valueQuantity"] = json!({"value": 176, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"})
                }
                "14743-9" => {
                    o["valueQuantity"] = json!({"value": 6.1, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"})
                }
                _ => o["valueString"] = json!("Cliënt had een rustige nacht, wond verzorgd."),
            }
            out.push(o);
        }
    }
    out
}

/// A searchset Bundle.
#[must_use]
pub fn bundle(resources: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "searchset", "total": resources.len(),
           "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

/// Starts the sample on 127.0.0.1 (port 0); returns its base URL (`http://127.0.0.1:N/fhir`).
///
/// # Panics
/// If it cannot bind a loopback port.
#[allow(clippy::expect_used)]
pub async fn start(b: Arc<Backend>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(serve(b, listener));
    format!("http://{addr}/fhir")
}

/// Serves the sample source system on `listener` (its FHIR base is `/fhir`) until the task ends.
pub async fn serve(b: Arc<Backend>, listener: tokio::net::TcpListener) {
    async fn log(b: &Backend, what: String, headers: HeaderMap) {
        if let Ok(mut seen) = b.seen.lock() {
            seen.push((what, headers));
        }
    }
    let app = Router::new()
        .route("/fhir/Patient/_search", post(|State(b): State<Arc<Backend>>, headers: HeaderMap, body: String| async move {
            log(&b, format!("POST /Patient/_search {body}"), headers).await;
            let wanted: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            let all = [patient("pat-1", BSN1, "Jansen"), patient("pat-2", BSN2, "de Vries")];
            let hits = all.into_iter().filter(|p| wanted.iter().any(|(k, v)| k == "identifier" && v == &format!("{BSN_SYSTEM}|{}", p["identifier"][0]["value"].as_str().unwrap_or_default()))).collect();
            Json(bundle(hits))
        }))
        .route("/fhir/Observation", get(|State(b): State<Arc<Backend>>, headers: HeaderMap, Query(q): Query<Vec<(String, String)>>| async move {
            log(&b, format!("GET /Observation {q:?}"), headers).await;
            let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let mut pid = get("patient");
            if b.evil.lock().is_ok_and(|e| *e) {
                pid = "pat-2".into();
            }
            let count: usize = get("_count").parse().unwrap_or(5);
            let profile = get("_profile");
            Json(bundle(observations(&pid).into_iter().filter(|o| o["meta"]["profile"][0] == profile.as_str()).take(count).collect()))
        }))
        .route("/fhir/Patient/{id}", get(|State(b): State<Arc<Backend>>, headers: HeaderMap, Path(id): Path<String>| async move {
            log(&b, format!("GET /Patient/{id}"), headers).await;
            match id.as_str() {
                "pat-1" => Ok(Json(patient("pat-1", BSN1, "Jansen"))),
                "pat-2" => Ok(Json(patient("pat-2", BSN2, "de Vries"))),
                _ => Err(AxumStatus::NOT_FOUND),
            }
        }))
        .route("/fhir/Practitioner/{id}", get(|State(b): State<Arc<Backend>>, headers: HeaderMap, Path(id): Path<String>| async move {
            log(&b, format!("GET /Practitioner/{id}"), headers).await;
            if id == "slow" {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            if id == "gone" {
                return Err((AxumStatus::NOT_FOUND, "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"diagnostics\":\"secret detail\"}]}"));
            }
            Ok(Json(json!({"resourceType": "Practitioner", "id": id, "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "value": "900012345"}], "name": [{"family": "Huisarts"}]})))
        }))
        .route("/fhir/PractitionerRole/{id}", get(|State(b): State<Arc<Backend>>, headers: HeaderMap, Path(id): Path<String>| async move {
            log(&b, format!("GET /PractitionerRole/{id}"), headers).await;
            Json(json!({"resourceType": "PractitionerRole", "id": id, "practitioner": {"reference": "Practitioner/prac-1"}, "code": [{"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.15.111", "code": "01.015"}]}]}))
        }))
        .fallback(|State(b): State<Arc<Backend>>, headers: HeaderMap, req: axum::extract::Request| async move {
            log(&b, format!("{} {}", req.method(), req.uri()), headers).await;
            (AxumStatus::OK, "{\"resourceType\":\"List\",\"id\":\"1\"}")
        })
        .with_state(b);
    let _ = axum::serve(listener, app).await;
}
