#!/usr/bin/env python3
"""Independent verifier of Nuts JSON-LD credentials signed with JsonWebSignature2020.

Shares no code with the Rust signer: pyld (URDNA2015) canonicalises, `cryptography` verifies.
Follows nuts-node vcr/signature/proof/jsonld.go and vcr/verifier/signature_verifier.go:
  proof options = proof minus jws, only created/domain/challenge/expires/proofPurpose/nonce/type/
                  verificationMethod, plus "@type" = type (at top level only lds-jws2020 applies,
                  where `type` is a term only inside the type-scoped context) and that @context
  tbs  = SHA256(URDNA2015(proof options)) || SHA256(URDNA2015(credential minus proof))
  JWS signing input = header_b64 + "." + tbs   (detached, b64=false)
nuts-node first round-trips both through Go structs, which rewrites times to Go RFC3339Nano and
drops unknown top-level credential members: credentials that would change so are refused here.
Strict: expansion may drop no member (pyld has no `safe` flag; pyld >= 3 has the
`on_property_dropped` hook, checked at start) and relative IRIs (no base here; json-gold leaves
them out of the RDF) are refused, except in the proof's verificationMethod (nuts-node's own
fixtures use "key-id"). Contexts come from local files only, never from the network.

  verify_credential.py --shared-dir DIR --contexts-dir DIR (--did-document F | --jwk F) CRED.json
prints `valid` (exit 0) or one line `invalid: <reason>` (exit 1); usage/setup errors exit 2.
"""
import argparse, base64, hashlib, inspect, json, re, sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from pyld import jsonld

LDS_JWS2020 = "https://w3c-ccg.github.io/lds-jws2020/contexts/lds-jws2020-v1.json"
PROOF_OPTION_KEYS = ("created", "domain", "challenge", "expires", "proofPurpose", "nonce", "type",
                     "verificationMethod")
# Members of go-did's vc.VerifiableCredential; nuts-node drops every other top-level member.
GO_DID_VC_KEYS = {"@context", "id", "type", "issuer", "issuanceDate", "expirationDate",
                  "credentialStatus", "credentialSubject", "proof"}
SEC_VERIFICATION_METHOD = "https://w3id.org/security#verificationMethod"
# pyld 3 resolves relative IRIs against this when no base applies (base ""): used to find them.
FALLBACK_BASE = getattr(jsonld, "DEFAULT_BASE_IRI", "http://example.org/base/")
RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")


class Invalid(Exception):
    pass


def die(message):  # usage or setup problem, not a verdict on the credential
    print(message, file=sys.stderr)
    sys.exit(2)


def make_loader(shared_dir, contexts_dir):
    files = {"https://www.w3.org/2018/credentials/v1": shared_dir / "w3c-credentials-v1.ldjson",
             "https://nuts.nl/credentials/v1": shared_dir / "nuts.ldjson",
             LDS_JWS2020: shared_dir / "lds-jws2020-v1.ldjson",
             "https://w3id.org/poortwachter/legalbase/v1": contexts_dir / "legalbase-v1.jsonld"}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        die(f"context file(s) not found: {missing}")

    def load(url, options=None):
        if url not in files:
            raise jsonld.JsonLdError("no local copy of this context (the network is never used)",
                                     "jsonld.LoadDocumentError", {"url": url},
                                     code="loading document failed")
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": json.loads(files[url].read_text(encoding="utf-8"))}
    return load


def canonicalize(doc, loader, may_drop=()):
    """URDNA2015 N-Quads; a relative IRI is left out if its predicate is in may_drop, else refused."""
    dropped = []
    proc = jsonld.JsonLdProcessor(on_property_dropped=dropped.append)
    try:
        dataset = proc.to_rdf(doc, {"documentLoader": loader, "base": ""})
        if dropped:
            raise Invalid(f"JSON-LD expansion drops undefined term(s) {sorted(map(str, dropped))}")
        kept = {}
        for graph, triples in dataset.items():
            for t in triples:
                iris = [graph] + [x["value"] if x["type"] == "IRI" else x.get("datatype", "")
                                  for x in t.values()]
                rel = [i[len(FALLBACK_BASE):] for i in iris if i.startswith(FALLBACK_BASE)]
                if not rel:
                    kept.setdefault(graph, []).append(t)
                elif t["predicate"]["value"] not in may_drop:
                    raise Invalid(f"relative IRI {rel[0]!r} has no base IRI")
        return proc.normalize(proc.to_nquads(kept), {"inputFormat": "application/n-quads",
                              "algorithm": "URDNA2015", "format": "application/n-quads"})
    except jsonld.JsonLdError as e:
        while e.__cause__ is not None:  # report the root cause, e.g. which context is missing
            e = e.__cause__
        details = getattr(e, "details", None) or {}
        raise Invalid(f"JSON-LD processing failed: {e.args[0] if e.args else e} "
                      f"{details.get('url', '') if isinstance(details, dict) else ''}".strip())


def check_go_time(value, name):
    """Refuse a time that Go's time.Time JSON round-trip (RFC3339Nano) would rewrite."""
    m = RFC3339.match(value) if isinstance(value, str) else None
    if not m:
        raise Invalid(f"{name} is not an RFC 3339 date-time: {value!r}")
    frac = (m.group(2) or "")[:9].rstrip("0")
    go = m.group(1) + ("." + frac if frac else "") + ("Z" if m.group(3)[1:] == "00:00" else m.group(3))
    if go != value:
        raise Invalid(f"{name} {value!r} is not in Go RFC3339Nano form; nuts-node signs {go!r}")


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwk_to_key(jwk):
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "EC" and crv == "P-256":
        x, y = (int.from_bytes(b64url(jwk[c]), "big") for c in "xy")
        return "ES256", ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA", ed25519.Ed25519PublicKey.from_public_bytes(b64url(jwk["x"]))
    raise Invalid(f"unsupported key type {kty}/{crv}")


def key_from_did_document(diddoc, issuer, vm_ref):
    vm_id = vm_ref if ":" in vm_ref else issuer + "#" + vm_ref.lstrip("#")
    if vm_id.split("#")[0] != issuer:
        raise Invalid(f"verificationMethod {vm_id} is not a key of issuer {issuer}")
    if diddoc.get("id") != issuer:
        raise Invalid(f"DID document is for {diddoc.get('id')}, not for issuer {issuer}")
    absolute = lambda i: issuer + i if isinstance(i, str) and i.startswith("#") else i
    methods = {absolute(m.get("id")): m for m in diddoc.get("verificationMethod", [])}
    assertion = set()
    for entry in diddoc.get("assertionMethod", []):
        if isinstance(entry, dict):  # embedded verification method
            methods.setdefault(absolute(entry.get("id")), entry)
            entry = entry.get("id")
        assertion.add(absolute(entry))
    if vm_id not in assertion:
        raise Invalid(f"{vm_id} is not listed in assertionMethod")
    if "publicKeyJwk" not in methods.get(vm_id, {}):
        raise Invalid(f"no verificationMethod with publicKeyJwk for {vm_id}")
    return jwk_to_key(methods[vm_id]["publicKeyJwk"])


def verify(credential, key_kind, key_doc, loader):
    proof, issuer = credential.get("proof"), credential.get("issuer")
    if not isinstance(proof, dict):
        raise Invalid("credential has no single proof object")
    if proof.get("type") != "JsonWebSignature2020" or proof.get("proofPurpose") != "assertionMethod":
        raise Invalid("proof is not a JsonWebSignature2020 with proofPurpose assertionMethod")
    if not isinstance(issuer, str):
        raise Invalid("issuer must be a DID string")
    if key_kind == "jwk":
        alg, key = jwk_to_key(key_doc)
    else:
        alg, key = key_from_did_document(key_doc, issuer, str(proof.get("verificationMethod", "")))

    parts = str(proof.get("jws", "")).split("..")
    if len(parts) != 2:
        raise Invalid("jws is not a detached JWS (header..signature)")
    try:
        header, sig = json.loads(b64url(parts[0])), b64url(parts[1])
    except ValueError as e:
        raise Invalid(f"jws does not decode: {e}")
    if header.get("alg") != alg:
        raise Invalid(f"jws alg {header.get('alg')!r} does not fit the {alg} key")
    if header.get("b64") is not False or "b64" not in header.get("crit", []):
        raise Invalid("jws header must have b64=false and crit [b64]")

    unknown = sorted(set(credential) - GO_DID_VC_KEYS)
    if unknown:
        raise Invalid(f"top-level member(s) {unknown} would be dropped by nuts-node (go-did)")
    for name, value in [(k, credential[k]) for k in ("issuanceDate", "expirationDate") if k in credential] \
            + [("proof." + k, proof[k]) for k in ("created", "expires") if k in proof]:
        check_go_time(value, name)
    options = {k: proof[k] for k in PROOF_OPTION_KEYS if k in proof}
    options.update({"@type": proof["type"], "@context": [LDS_JWS2020]})
    document = {k: v for k, v in credential.items() if k != "proof"}
    tbs = (hashlib.sha256(canonicalize(options, loader, {SEC_VERIFICATION_METHOD}).encode()).digest()
           + hashlib.sha256(canonicalize(document, loader).encode()).digest())
    signed = parts[0].encode("ascii") + b"." + tbs
    try:
        if alg == "EdDSA":
            key.verify(sig, signed)
        elif len(sig) != 64:
            raise Invalid(f"ES256 signature is {len(sig)} bytes, not 64 (r||s)")
        else:
            r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            key.verify(utils.encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Invalid("signature does not verify")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-dir", required=True, type=Path)
    ap.add_argument("--contexts-dir", required=True, type=Path)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--did-document", type=Path)
    src.add_argument("--jwk", type=Path)
    ap.add_argument("credential", type=Path)
    args = ap.parse_args()
    if "on_property_dropped" not in inspect.signature(jsonld.JsonLdProcessor.__init__).parameters:
        die("pyld too old: needs JsonLdProcessor(on_property_dropped=...) (pyld >= 3)")
    loader = make_loader(args.shared_dir, args.contexts_dir)
    try:
        texts = [f.read_text(encoding="utf-8") for f in (args.credential, args.jwk or args.did_document)]
    except OSError as e:
        die(f"cannot read input: {e}")
    try:
        credential, key_doc = (json.loads(t) for t in texts)
        verify(credential, "jwk" if args.jwk else "did", key_doc, loader)
    except Invalid as e:
        print(f"invalid: {e}")
        return 1
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # malformed JSON, JWK, DID doc
        print(f"invalid: malformed input: {type(e).__name__}: {e}".splitlines()[0])
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
