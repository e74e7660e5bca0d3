# Shared by the bench scripts (sourced, not run): a free port of 127.0.0.1, and the upstream's
# answers every setup serves (a searchset Bundle of five zib-BodyWeight Observations of pat-1,
# about 2 KB, and the Patient search that binds pat-1 to BSN 999999990).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# write_upstream_bodies DIR: DIR/obs.json and DIR/patient.json.
write_upstream_bodies() {
  python3 - "$1" <<'PY'
import json, sys
w = sys.argv[1]
def obs(i):
    return {"resourceType": "Observation", "id": f"pat-1-bw-{i}", "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight"]},
            "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
            "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": f"2026-11-{20-i:02d}T09:00:00+01:00",
            "valueQuantity": {"value": 72.5 - i / 10, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}
bundle = {"resourceType": "Bundle", "type": "searchset", "total": 5, "entry": [{"resource": obs(i)} for i in range(5)]}
open(f"{w}/obs.json", "w").write(json.dumps(bundle))
patient = {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [{"resource": {"resourceType": "Patient", "id": "pat-1",
           "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999999990"}]}}]}
open(f"{w}/patient.json", "w").write(json.dumps(patient))
PY
}
