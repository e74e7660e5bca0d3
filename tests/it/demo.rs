//! `poortwachter demo --once` runs every step and shows allowed and refused requests and their
//! audit records.

use super::support::{repo, Instance};

#[test]
fn demo_runs_end_to_end() {
    let inst = Instance::new();
    let (code, out, err) = inst.run(&["demo", "--once"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for expected in [
        "200  POST /Patient/_search  → Bundle with 1 entries",
        "→ Bundle with 3 entries",
        "200  GET /Patient/pat-1  → Patient/pat-1",
        "403  GET /Patient?identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C***  → OperationOutcome: access refused",
        "403  GET /List/1  → OperationOutcome: access refused",
        "403  PUT /Patient/pat-1  → OperationOutcome: access refused",
        "token permit 200 token-issued",
        "audit log intact: 10 records",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(repo().join("policies").exists());
}

/// `poortwachter demo medmij --once`: the person's steps and the PGO's, through the real binary.
#[test]
fn demo_medmij_shares_a_document() {
    let inst = Instance::new();
    let (code, out, err) = inst.run(&["demo", "medmij", "--once"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for expected in [
        "4. The landing page asks the person to log in: yes",
        "5. Logged in with test BSN 999999990: HTTP 303 → /medmij/confirm",
        "6. Confirmation page: shown",
        "Token ontvangen voor umcharderwijk~48 (geldig 900 s).",
        "Document verstuurd: HTTP 200 OK.",
        "Delen worked.",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}
