#!/usr/bin/env python3
"""Independent verifier of Nuts JSON-LD credentials with a JsonWebSignature2020 proof.

Shares no code with the Rust signer: pyld canonicalises (URDNA2015), `cryptography` verifies. As
nuts-node vcr/signature/proof/jsonld.go: tbs = SHA256(URDNA2015(proof options)) || SHA256(URDNA2015(
credential minus proof)), JWS input = header_b64 + "." + tbs. Proof options: created, domain,
challenge, expires, proofPurpose, nonce, type, verificationMethod, plus "@type" (`type` alone is no
term at lds-jws2020's top level) and @context [lds-jws2020]. nuts-node round-trips both through Go
structs (RFC3339Nano times, unknown top-level members dropped): such changes are refused here.
Strict: pyld has no `safe` flag; its `on_property_dropped` hook (pyld >= 3, checked) refuses dropped
terms; relative IRIs (no base; json-gold leaves them out) are refused except in verificationMethod
(the fixtures' "key-id"). Contexts come from local files only, never from the network.
Prints `valid` (exit 0) or one line `invalid: <reason>` (exit 1); usage/setup errors exit 2.
"""
import argparse, base64, hashlib, inspect, json, re, sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from pyld import jsonld

LDS_JWS2020 = "https://w3c-ccg.github.io/lds-jws2020/contexts/lds-jws2020-v1.json"
PROOF_OPTION_KEYS = "created domain challenge expires proofPurpose nonce type verificationMethod"
# Members of go-did's vc.VerifiableCredential; nuts-node drops every other top-level member.
GO_DID_VC_KEYS = set("@context id type issuer issuanceDate expirationDate credentialStatus "
                     "credentialSubject proof".split())
SEC_VERIFICATION_METHOD = "https://w3id.org/security#verificationMethod"
FALLBACK_BASE = getattr(jsonld, "DEFAULT_BASE_IRI", "http://example.org/base/")
RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")


class Invalid(Exception):  # the credential does not verify
    pass


def make_loader(shared_dir, contexts_dir):
    files = {"https://www.w3.org/2018/credentials/v1": shared_dir / "w3c-credentials-v1.ldjson",
             "https://nuts.nl/credentials/v1": shared_dir / "nuts.ldjson",
             LDS_JWS2020: shared_dir / "lds-jws2020-v1.ldjson",
             "https://w3id.org/poortwachter/legalbase/v1": contexts_dir / "legalbase-v1.jsonld"}
    if any(not f.is_file() for f in files.values()):
        raise FileNotFoundError(f"missing context file(s) among {sorted(map(str, files.values()))}")

    def load(url, options=None):
        if url not in files:
            raise jsonld.JsonLdError("no local copy of this context (the network is never used)",
                                     "jsonld.LoadDocumentError", {"url": url},
                                     code="loading document failed")
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": json.loads(files[url].read_text(encoding="utf-8"))}
    return load


def canonicalize(doc, loader, may_drop=()):
    """URDNA2015 N-Quads. With base "", pyld 3 resolves relative IRIs against FALLBACK_BASE:
    such triples are left out (as json-gold does) if their predicate is in may_drop, else refused"""
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
        url = (getattr(e, "details", None) or {}).get("url", "")
        raise Invalid(f"JSON-LD processing failed: {e.args[0] if e.args else e} {url}".strip())


def check_go_time(value, name):
    """Refuse a time that Go's time.Time JSON round-trip (RFC3339Nano) would rewrite."""
    m = RFC3339.match(value) if isinstance(value, str) else None
    if not m:
        raise Invalid(f"{name} is not an RFC 3339 date-time: {value!r}")
    frac = (m.group(2) or "")[:9].rstrip("0")
    zone = "Z" if m.group(3)[1:] == "00:00" else m.group(3)
    go = m.group(1) + ("." + frac if frac else "") + zone
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
    if not isinstance(proof, dict) or not isinstance(issuer, str):
        raise Invalid("credential needs one proof object and an issuer DID string")
    if [proof.get("type"), proof.get("proofPurpose")] != ["JsonWebSignature2020", "assertionMethod"]:
        raise Invalid("proof is not a JsonWebSignature2020 with proofPurpose assertionMethod")
    alg, key = (jwk_to_key(key_doc) if key_kind == "jwk" else
                key_from_did_document(key_doc, issuer, str(proof.get("verificationMethod", ""))))

    try:
        header_b64, sig_b64 = str(proof.get("jws", "")).split("..")
        header, sig = json.loads(b64url(header_b64)), b64url(sig_b64)
    except ValueError as e:
        raise Invalid(f"jws is not a detached JWS (header..signature): {e}")
    if (header.get("alg"), header.get("b64"), header.get("crit")) != (alg, False, ["b64"]):
        raise Invalid(f"jws header {header} is not alg {alg} (the key's), b64 false, crit [b64]")

    if unknown := sorted(set(credential) - GO_DID_VC_KEYS):
        raise Invalid(f"top-level member(s) {unknown} would be dropped by nuts-node (go-did)")
    times = {k: credential[k] for k in ("issuanceDate", "expirationDate") if k in credential}
    times.update({"proof." + k: proof[k] for k in ("created", "expires") if k in proof})
    for name, value in times.items():
        check_go_time(value, name)
    options = {k: proof[k] for k in PROOF_OPTION_KEYS.split() if k in proof}
    options.update({"@type": proof["type"], "@context": [LDS_JWS2020]})
    document = {k: v for k, v in credential.items() if k != "proof"}
    tbs = hashlib.sha256(canonicalize(options, loader, {SEC_VERIFICATION_METHOD}).encode()).digest()
    tbs += hashlib.sha256(canonicalize(document, loader).encode()).digest()
    signed = header_b64.encode("ascii") + b"." + tbs
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
    for name in ("--shared-dir", "--contexts-dir"):
        ap.add_argument(name, required=True, type=Path)
    src = ap.add_mutually_exclusive_group(required=True)  # where the public key comes from
    for name in ("--did-document", "--jwk"):
        src.add_argument(name, type=Path)
    ap.add_argument("credential", type=Path)
    args = ap.parse_args()
    if "on_property_dropped" not in inspect.signature(jsonld.JsonLdProcessor.__init__).parameters:
        ap.error("pyld too old: needs JsonLdProcessor(on_property_dropped=...) (pyld >= 3)")
    try:  # setup problems exit 2 (argparse's usage error), not a verdict on the credential
        loader = make_loader(args.shared_dir, args.contexts_dir)
        texts = [f.read_text("utf-8") for f in (args.credential, args.jwk or args.did_document)]
    except OSError as e:
        ap.error(str(e))
    try:
        credential, key_doc = (json.loads(t) for t in texts)
        verify(credential, "jwk" if args.jwk else "did", key_doc, loader)
    except (Invalid, ValueError, KeyError, TypeError, AttributeError) as e:  # last: malformed input
        reason = e if isinstance(e, Invalid) else f"malformed input: {type(e).__name__}: {e}"
        print(f"invalid: {reason}".splitlines()[0])
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
