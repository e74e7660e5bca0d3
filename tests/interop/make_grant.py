#!/usr/bin/env python3
"""Independent grant builder (PyJWT) for interop tests.

Builds the requester side of a Nuts RFC003-style JWT-bearer authorization grant with PyJWT and
`cryptography`, sharing no code with the Rust project, so integration tests can prove the server
accepts a grant signed by another JWT library.

Header: {"alg", "typ": "JWT", "kid"}. Claims: iss, sub, aud (string), purposeOfUse, vcs (array of
the credential objects read from the --credential files), usi (only with --uzi: uzi, name, role,
plus initials/family_name/email when given), jti (default uuid4), iat (default now), exp = iat +
lifetime. The key is a PEM private key (PKCS#8 expected; whatever `cryptography` loads works):
P-256 -> ES256, P-384 -> ES384, Ed25519 -> EdDSA, RSA -> PS256.
Prints the compact JWT on one line; usage/setup errors exit 2.
"""
import argparse, json, sys, time, uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key


def fail(msg):
    print(f"make_grant: {msg}", file=sys.stderr)
    sys.exit(2)


def algorithm_for(key):
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": "ES256", "secp384r1": "ES384"}
        if key.curve.name not in algs:
            fail(f"unsupported EC curve {key.curve.name}")
        return algs[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    fail(f"unsupported key type {type(key).__name__}")


def load_key(path):
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as e:
        fail(f"cannot read key {path}: {e}")
    try:
        return load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        fail(f"cannot load key {path}: {e}")


def load_credential(path):
    try:
        with open(path, encoding="utf-8") as f:
            cred = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read credential {path}: {e}")
    if not isinstance(cred, dict):
        fail(f"credential {path} is not a JSON object")
    return cred


def main():
    p = argparse.ArgumentParser(description="Build a Nuts JWT-bearer grant with PyJWT.")
    p.add_argument("--key", required=True, help="PKCS#8 PEM private key")
    p.add_argument("--kid", required=True)
    p.add_argument("--iss", required=True)
    p.add_argument("--sub", required=True)
    p.add_argument("--aud", required=True)
    p.add_argument("--purpose", required=True, help="purposeOfUse")
    p.add_argument("--credential", action="append", required=True, help="credential JSON file")
    p.add_argument("--uzi")
    p.add_argument("--name")
    p.add_argument("--role")
    p.add_argument("--initials")
    p.add_argument("--family-name")
    p.add_argument("--email")
    p.add_argument("--lifetime", type=int, default=5, help="seconds (default 5)")
    p.add_argument("--jti")
    p.add_argument("--iat", type=int, help="unix time (default now)")
    a = p.parse_args()

    key = load_key(a.key)
    alg = algorithm_for(key)
    iat = a.iat if a.iat is not None else int(time.time())
    claims = {
        "iss": a.iss,
        "sub": a.sub,
        "aud": a.aud,
        "purposeOfUse": a.purpose,
        "vcs": [load_credential(c) for c in a.credential],
        "jti": a.jti if a.jti is not None else str(uuid.uuid4()),
        "iat": iat,
        "exp": iat + a.lifetime,
    }
    if a.uzi is not None:
        if a.name is None or a.role is None:
            p.error("--uzi needs --name and --role")
        usi = {"uzi": a.uzi, "name": a.name, "role": a.role}
        for k, v in (("initials", a.initials), ("family_name", a.family_name), ("email", a.email)):
            if v is not None:
                usi[k] = v
        claims["usi"] = usi
    elif any(v is not None for v in (a.name, a.role, a.initials, a.family_name, a.email)):
        p.error("user identity options need --uzi")

    token = jwt.encode(claims, key, algorithm=alg, headers={"kid": a.kid, "typ": "JWT"})
    print(token if isinstance(token, str) else token.decode("ascii"))


if __name__ == "__main__":
    main()
