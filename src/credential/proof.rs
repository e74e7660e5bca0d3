//! The `JsonWebSignature2020` linked-data proof, computed exactly as nuts-node does
//! (`vcr/signature/proof/jsonld.go`):
//!
//! ```text
//! proof options = proof − jws, only {created, domain, challenge, expires, proofPurpose, nonce,
//!                 type, verificationMethod}, times in Go RFC 3339 form,
//!                 + "@context": [lds-jws2020 v1] + "@type": <proof type>
//! tbs           = SHA256(URDNA2015(proof options)) ‖ SHA256(URDNA2015(credential − proof))
//! jws           = b64url(header) + ".." + b64url(sign(b64url(header) + "." + tbs))
//! header        = {"alg":"ES256","b64":false,"crit":["b64"]}   (or "EdDSA")
//! ```
//!
//! Verification uses the header bytes exactly as received. This module does no IO.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::jsonld::{Contexts, LDS_JWS2020_V1};
use super::CredentialError;
use crate::keys::SigningKey;

/// The proof type.
pub const PROOF_TYPE: &str = "JsonWebSignature2020";
const PROOF_OPTION_KEYS: [&str; 8] = [
    "created",
    "domain",
    "challenge",
    "expires",
    "proofPurpose",
    "nonce",
    "type",
    "verificationMethod",
];

/// Everything needed to check a proof's signature once the key is known.
#[derive(Debug)]
pub struct ProofInput {
    /// The verification method, made absolute against the issuer DID.
    pub verification_method: String,
    /// The JWS `alg` from the protected header.
    pub alg: String,
    /// `header_b64 + "." + tbs`.
    pub signing_input: Vec<u8>,
    /// The raw signature.
    pub signature: Vec<u8>,
}

/// Formats a time the way Go's `time.RFC3339Nano` does: trailing fraction zeros trimmed, a zero
/// offset written as `Z`, other offsets kept.
#[must_use]
pub fn go_rfc3339(t: OffsetDateTime) -> String {
    let (oh, om, _) = t.offset().as_hms();
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    if t.offset().is_utc() {
        out.push('Z');
    } else {
        let sign = if oh < 0 || om < 0 { '-' } else { '+' };
        out.push_str(&format!(
            "{sign}{:02}:{:02}",
            oh.unsigned_abs(),
            om.unsigned_abs()
        ));
    }
    out
}

/// Parses an RFC 3339 date-time (any offset).
pub fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, CredentialError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| CredentialError::Malformed(format!("{field} is not an RFC 3339 date-time")))
}

/// Rewrites a time string into Go RFC 3339 form.
fn canonical_time(field: &str, value: &Value) -> Result<Value, CredentialError> {
    let s = value
        .as_str()
        .ok_or_else(|| CredentialError::Malformed(format!("{field} is not a string")))?;
    Ok(Value::String(go_rfc3339(parse_time(field, s)?)))
}

fn proof_options(proof: &Map<String, Value>) -> Result<Value, CredentialError> {
    let mut options = Map::new();
    options.insert("@context".into(), json!([LDS_JWS2020_V1]));
    for key in PROOF_OPTION_KEYS {
        if let Some(v) = proof.get(key) {
            let v = match key {
                "created" | "expires" => canonical_time(&format!("proof.{key}"), v)?,
                _ => v.clone(),
            };
            options.insert(key.to_owned(), v);
        }
    }
    let kind = proof.get("type").cloned().unwrap_or(Value::Null);
    options.insert("@type".into(), kind);
    Ok(Value::Object(options))
}

/// The credential without `proof`, with `issuanceDate`/`expirationDate` in Go RFC 3339 form (what
/// nuts-node's verifier hashes after its round trip through Go structs).
fn document_without_proof(credential: &Map<String, Value>) -> Result<Value, CredentialError> {
    let mut doc = credential.clone();
    doc.remove("proof");
    for field in ["issuanceDate", "expirationDate"] {
        if let Some(v) = doc.get(field) {
            let canonical = canonical_time(field, v)?;
            doc.insert(field.to_owned(), canonical);
        }
    }
    Ok(Value::Object(doc))
}

fn tbs(contexts: &Contexts, options: &Value, document: &Value) -> Result<Vec<u8>, CredentialError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(
        &contexts
            .canonical_hash(options)
            .map_err(CredentialError::JsonLd)?,
    );
    out.extend_from_slice(
        &contexts
            .canonical_hash(document)
            .map_err(CredentialError::JsonLd)?,
    );
    Ok(out)
}

/// Signs `credential` (which must not yet have a proof) and returns it with the proof added.
pub fn sign(
    contexts: &Contexts,
    credential: Map<String, Value>,
    key: &SigningKey,
    verification_method: &str,
    created: OffsetDateTime,
) -> Result<Value, CredentialError> {
    let mut proof = Map::new();
    proof.insert("type".into(), json!(PROOF_TYPE));
    proof.insert("proofPurpose".into(), json!("assertionMethod"));
    proof.insert("verificationMethod".into(), json!(verification_method));
    proof.insert("created".into(), json!(go_rfc3339(created)));
    let header = json!({"alg": key.key_type().jws_alg(), "b64": false, "crit": ["b64"]});
    let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
    let mut input = format!("{header_b64}.").into_bytes();
    input.extend(tbs(
        contexts,
        &proof_options(&proof)?,
        &document_without_proof(&credential)?,
    )?);
    let signature = key
        .sign(&input)
        .map_err(|e| CredentialError::Malformed(e.to_string()))?;
    proof.insert(
        "jws".into(),
        json!(format!(
            "{header_b64}..{}",
            URL_SAFE_NO_PAD.encode(signature)
        )),
    );
    let mut signed = credential;
    signed.insert("proof".into(), Value::Object(proof));
    Ok(Value::Object(signed))
}

/// Makes a proof's `verificationMethod` absolute. A relative reference (`key-id`, `#key-1`) is
/// resolved against the issuer DID and nowhere else; an absolute one must belong to the issuer.
pub fn absolute_verification_method(issuer: &str, vm: &str) -> Result<String, CredentialError> {
    if vm.starts_with("did:") {
        if crate::did::did_of(vm) != issuer || !vm.contains('#') {
            return Err(CredentialError::Proof(
                "verificationMethod does not belong to the issuer".into(),
            ));
        }
        return Ok(vm.to_owned());
    }
    let fragment = vm.strip_prefix('#').unwrap_or(vm);
    let fragment_ok = !fragment.is_empty()
        && fragment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !fragment_ok {
        return Err(CredentialError::Proof(
            "verificationMethod is neither a DID URL nor a key fragment".into(),
        ));
    }
    Ok(format!("{issuer}#{fragment}"))
}

/// Parses the proof of `credential` and computes the bytes its signature covers.
pub fn prepare(
    contexts: &Contexts,
    credential: &Map<String, Value>,
    issuer: &str,
) -> Result<ProofInput, CredentialError> {
    let bad = |m: &str| CredentialError::Proof(m.to_owned());
    let proof = match credential.get("proof") {
        Some(Value::Object(p)) => p,
        Some(Value::Array(_)) => return Err(bad("exactly one proof is supported")),
        Some(_) => return Err(bad("proof is not an object")),
        None => return Err(bad("credential has no proof")),
    };
    if proof.get("type").and_then(Value::as_str) != Some(PROOF_TYPE) {
        return Err(bad("proof type is not JsonWebSignature2020"));
    }
    if proof.get("proofPurpose").and_then(Value::as_str) != Some("assertionMethod") {
        return Err(bad("proofPurpose is not assertionMethod"));
    }
    let vm = proof
        .get("verificationMethod")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("proof has no verificationMethod"))?;
    let verification_method = absolute_verification_method(issuer, vm)?;
    let jws = proof
        .get("jws")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("proof has no jws"))?;
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(""), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("jws is not a detached JWS (header..signature)"));
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| bad("jws header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
        .map_err(|_| bad("jws header is not a JSON object"))?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some(a @ ("ES256" | "EdDSA")) => a.to_owned(),
        _ => return Err(bad("jws alg must be ES256 or EdDSA")),
    };
    if header.get("b64") != Some(&Value::Bool(false)) || header.get("crit") != Some(&json!(["b64"]))
    {
        return Err(bad("jws header must have b64=false and crit=[\"b64\"]"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| bad("jws signature is not base64url"))?;
    let mut signing_input = format!("{header_b64}.").into_bytes();
    signing_input.extend(tbs(
        contexts,
        &proof_options(proof)?,
        &document_without_proof(credential)?,
    )?);
    Ok(ProofInput {
        verification_method,
        alg,
        signing_input,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn go_time_format() {
        assert_eq!(
            go_rfc3339(datetime!(2022-12-05 13:47:24.714488 +01:00)),
            "2022-12-05T13:47:24.714488+01:00"
        );
        assert_eq!(
            go_rfc3339(datetime!(2022-12-05 13:47:24.7140 UTC)),
            "2022-12-05T13:47:24.714Z"
        );
        assert_eq!(
            go_rfc3339(datetime!(2022-12-05 13:47:24 -05:30)),
            "2022-12-05T13:47:24-05:30"
        );
        let t = OffsetDateTime::parse("2022-12-05T12:47:24.100000+00:00", &Rfc3339).unwrap();
        assert_eq!(go_rfc3339(t), "2022-12-05T12:47:24.1Z");
    }

    #[test]
    fn verification_method_resolution() {
        let issuer = "did:nuts:abc";
        assert_eq!(
            absolute_verification_method(issuer, "key-id").unwrap(),
            "did:nuts:abc#key-id"
        );
        assert_eq!(
            absolute_verification_method(issuer, "#k").unwrap(),
            "did:nuts:abc#k"
        );
        assert_eq!(
            absolute_verification_method(issuer, "did:nuts:abc#k").unwrap(),
            "did:nuts:abc#k"
        );
        for bad in [
            "did:nuts:other#k",
            "did:nuts:abc",
            "",
            "#",
            "../x",
            "https://evil/key",
            "a b",
        ] {
            assert!(absolute_verification_method(issuer, bad).is_err(), "{bad}");
        }
    }
}
