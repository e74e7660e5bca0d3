#!/usr/bin/env python3
"""ZorgDomein's side of the JWTs, with a real JWT library (PyJWT + cryptography), sharing no code
with poortwachter.

  zorgdomein_jwt.py keygen DIR
      writes rsa.pem / rsa-pub.pem (RSA 2048) and ec.pem / ec-pub.pem (P-256) into DIR
  zorgdomein_jwt.py sign DIR < specs.json
      specs: [{"key": "rsa"|"ec"|"none"|"hs256-public", "alg": "RS256", "claims": {...},
               "headers": {...}}]; prints the tokens as a JSON list. "none" is an unsigned token
      (alg none, PyJWT); "hs256-public" is the classic forgery, HS256 with the RSA public key
      PEM as the HMAC secret, made with hmac (PyJWT refuses to use a PEM key as an HMAC secret).
  zorgdomein_jwt.py verify PUBLIC_PEM TOKEN
      verifies an RS256 token (the SSO launch token) and prints its claims as JSON
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def write_pair(directory, name, private_key):
    with open(os.path.join(directory, name + ".pem"), "wb") as f:
        f.write(private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    with open(os.path.join(directory, name + "-pub.pem"), "wb") as f:
        f.write(private_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        ))


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(directory, spec):
    key = spec["key"]
    claims = spec.get("claims", {})
    headers = spec.get("headers", {})
    if key == "none":
        return jwt.encode(claims, None, algorithm="none", headers=headers)
    if key == "hs256-public":
        with open(os.path.join(directory, "rsa-pub.pem"), "rb") as f:
            secret = f.read()
        header = {"alg": "HS256", "typ": "JWT"}
        header.update(headers)
        signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
        return signing_input.decode() + "." + b64(signature)
    with open(os.path.join(directory, key + ".pem"), "rb") as f:
        private_key = serialization.load_pem_private_key(f.read(), password=None)
    return jwt.encode(claims, private_key, algorithm=spec["alg"], headers=headers)


def main():
    command = sys.argv[1]
    if command == "keygen":
        directory = sys.argv[2]
        write_pair(directory, "rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        write_pair(directory, "ec", ec.generate_private_key(ec.SECP256R1()))
    elif command == "sign":
        directory = sys.argv[2]
        specs = json.load(sys.stdin)
        print(json.dumps([sign(directory, s) for s in specs]))
    elif command == "verify":
        with open(sys.argv[2], "rb") as f:
            public_key = serialization.load_pem_public_key(f.read())
        header = jwt.get_unverified_header(sys.argv[3])
        claims = jwt.decode(sys.argv[3], public_key, algorithms=["RS256"],
                            options={"verify_aud": False, "require": ["iss", "iat", "jti"]})
        print(json.dumps({"header": header, "claims": claims}))
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
