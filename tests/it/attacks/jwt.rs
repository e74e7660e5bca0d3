//! The grant as a JOSE object: `alg` none / HMAC with the public key as secret / case and type
//! tricks, `kid` of another DID or a URL, embedded `jwk` / `jku` / `x5u` / `x5c` with the
//! attacker's key, `crit`, duplicate members in header and claims, huge and deeply nested claims,
//! non-canonical base64url (padding, `+/`, trailing bits), trailing data, extra and empty
//! segments, mistyped claims. Each is refused with its exact OAuth error, stores no token and no
//! `jti`, reaches no source system, and leaves one `deny` audit record that names the reason.

use poortwachter::keys::{KeyType, SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::super::support::AUD;
use super::{assert_none, b64, oauth, World};

const ALGS: &str = "(ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA)";

/// A compact JWS over exactly these header and claims texts, signed by `key` (so duplicate
/// members and odd headers carry a valid signature).
fn raw_jwt(key: &SigningKey, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig))
}

/// Inserts `member` (e.g. `"sub":"x"`) as the first member of a JSON object text.
fn prepend(object: &str, member: &str) -> String {
    format!("{{{member},{}", &object[1..])
}

/// Inserts `member` as the last member of a JSON object text.
fn append(object: &str, member: &str) -> String {
    format!("{},{member}}}", &object[..object.len() - 1])
}

fn hmac(secret: &[u8], alg: aws_lc_rs::hmac::Algorithm, input: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(alg, secret);
    b64(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref())
}

/// Swaps the base64url alphabet for the standard one in `part` (changed until it differs).
fn standard_alphabet(part: &str) -> String {
    part.replace('-', "+").replace('_', "/")
}

/// Sets the lowest bit of the last base64url character of a part whose length leaves unused
/// bits there (a 64-byte ES256 signature is 86 characters: the last one carries 2 bits of data
/// and 4 unused bits), so the data is unchanged but the encoding is not canonical.
fn set_trailing_bit(part: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(part.len() % 4, 0, "no unused bits in {part}");
    let (head, last) = part.split_at(part.len() - 1);
    let index = ALPHABET
        .iter()
        .position(|c| *c == last.as_bytes()[0])
        .unwrap();
    format!("{head}{}", ALPHABET[index | 1] as char)
}

/// A grant made when its case runs (grants live 5 s).
type Lazy<'a> = Box<dyn Fn() -> String + 'a>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_grants_are_refused_and_leave_no_trace() {
    let w = World::new("rate_limit_per_second = 1000\nrate_limit_burst = 1000\n").await;
    let s = &w.s;
    let key = &s.requester_key;
    let kid = s.requester_kid.as_str();
    let (attacker, _) = SigningKey::generate(KeyType::P256).unwrap();
    let attacker_jwk = attacker.public_key().to_jwk();
    let attacker_did = poortwachter::did::key::did_for(&attacker.public_key());
    let header = |extra: &str| {
        format!(
            r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"{}{extra}}}"#,
            if extra.is_empty() { "" } else { "," }
        )
    };
    let claims = || s.claims().to_string();
    let signed = |extra_header: &str| raw_jwt(key, &header(extra_header), &claims());
    let good = || s.grant(&s.claims());
    let with_alg = |alg: &str| {
        let h = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
        raw_jwt(key, &h, &claims())
    };
    // HMAC with the requester's public key (as JWK text and as SEC1 bytes) as the secret.
    let public_jwk = s.requester_key.public_key().to_jwk().to_string();
    let hs = |alg: &str, secret: &[u8], hmac_alg| {
        let input = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#)),
            b64(claims())
        );
        let sig = hmac(secret, hmac_alg, &input);
        format!("{input}.{sig}")
    };
    let sec1 = s.requester_key.public_key().compressed().unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claim = |k: &str, v: Value| {
        let mut c = s.claims();
        c[k] = v;
        s.grant(&c)
    };
    let nested = |depth: usize| format!("{}{}{}", "[".repeat(depth), "1", "]".repeat(depth));
    // A grant whose header or signature encodes with '-' or '_', so that the standard alphabet
    // spells it differently: '~' at every offset of the header ('~' is 0x7E, whose low six bits
    // are 62), a fresh (randomised) ECDSA signature until one has them.
    let with_url_chars = |pick: usize| {
        std::iter::repeat_with(|| raw_jwt(key, &header(r#""x":"~~~""#), &claims()))
            .find(|g| g.split('.').nth(pick).unwrap().contains(['-', '_']))
            .unwrap()
    };
    let swap_part = |g: &str, pick: usize, f: &dyn Fn(&str) -> String| {
        let mut parts: Vec<String> = g.split('.').map(str::to_owned).collect();
        parts[pick] = f(&parts[pick]);
        parts.join(".")
    };
    let malformed = |m: &str| {
        oauth(
            "invalid_grant",
            &format!("assertion is not a well-formed JWT: {m}"),
        )
    };
    let header_not_json = || malformed("header is not base64url-encoded JSON");
    let payload_not_json = || malformed("payload is not base64url-encoded JSON");
    let bad_signature = || {
        oauth(
            "invalid_client",
            "grant signature does not verify with the kid's key",
        )
    };
    let not_allowed = |alg: &str| {
        oauth(
            "invalid_grant",
            &format!("JWT alg \"{alg}\" is not allowed {ALGS}"),
        )
    };
    let kid_not_iss = || oauth("invalid_client", "kid must be a DID URL of the iss DID");
    let dup_header = || malformed("header has a duplicate member name");
    let dup_payload = || malformed("payload has a duplicate member name");
    let big = "x".repeat(600 * 1024);
    let many_vcs: Vec<Value> = (0..11).map(|_| s.credential.clone()).collect();

    let bad = StatusCode::BAD_REQUEST;
    let unauth = StatusCode::UNAUTHORIZED;
    let cases: Vec<(&str, Lazy<'_>, StatusCode, Value)> = vec![
        // alg
        ("alg none, empty signature", Box::new(|| format!("{}.{}.", b64(format!(r#"{{"alg":"none","kid":"{kid}"}}"#)), b64(claims()))), bad, not_allowed("none")),
        ("alg None", Box::new(|| with_alg("None")), bad, not_allowed("None")),
        ("alg NONE", Box::new(|| with_alg("NONE")), bad, not_allowed("NONE")),
        ("alg HS256, public JWK as secret", Box::new(|| hs("HS256", public_jwk.as_bytes(), aws_lc_rs::hmac::HMAC_SHA256)), bad, not_allowed("HS256")),
        ("alg HS256, SEC1 public key as secret", Box::new(|| hs("HS256", &sec1, aws_lc_rs::hmac::HMAC_SHA256)), bad, not_allowed("HS256")),
        ("alg HS384", Box::new(|| hs("HS384", &sec1, aws_lc_rs::hmac::HMAC_SHA384)), bad, not_allowed("HS384")),
        ("alg HS512", Box::new(|| hs("HS512", &sec1, aws_lc_rs::hmac::HMAC_SHA512)), bad, not_allowed("HS512")),
        ("alg RS256", Box::new(|| with_alg("RS256")), bad, not_allowed("RS256")),
        ("alg es256 (case)", Box::new(|| with_alg("es256")), bad, not_allowed("es256")),
        ("alg with a trailing space", Box::new(|| with_alg("ES256 ")), bad, not_allowed("(unprintable)")),
        ("alg with a NUL", Box::new(|| with_alg("ES256\\u0000")), bad, not_allowed("(unprintable)")),
        ("alg as an array", Box::new(|| raw_jwt(key, &format!(r#"{{"alg":["ES256"],"kid":"{kid}"}}"#), &claims())), bad, malformed("header has no alg")),
        ("alg missing", Box::new(|| raw_jwt(key, &format!(r#"{{"kid":"{kid}"}}"#), &claims())), bad, malformed("header has no alg")),
        ("alg EdDSA over an ES256 signature", Box::new(|| with_alg("EdDSA")), unauth, bad_signature()),
        ("alg PS256 over an ES256 signature", Box::new(|| with_alg("PS256")), unauth, bad_signature()),
        ("alg ES384 over an ES256 signature", Box::new(|| with_alg("ES384")), unauth, bad_signature()),
        // kid
        ("kid of another DID", Box::new(|| raw_jwt(key, &format!(r#"{{"alg":"ES256","kid":"{attacker_did}#k"}}"#), &claims())), unauth, kid_not_iss()),
        ("kid is an https URL", Box::new(|| raw_jwt(key, r#"{"alg":"ES256","kid":"https://evil.example/jwks.json#key-1"}"#, &claims())), unauth, kid_not_iss()),
        ("kid is the bare DID", Box::new(|| raw_jwt(key, &format!(r#"{{"alg":"ES256","kid":"{}"}}"#, s.requester_did), &claims())), unauth, kid_not_iss()),
        ("kid is a relative fragment", Box::new(|| raw_jwt(key, r##"{"alg":"ES256","kid":"#0"}"##, &claims())), unauth, kid_not_iss()),
        ("kid missing", Box::new(|| raw_jwt(key, r#"{"alg":"ES256"}"#, &claims())), unauth, oauth("invalid_client", "JWT header has no kid")),
        ("kid is a number", Box::new(|| raw_jwt(key, r#"{"alg":"ES256","kid":1}"#, &claims())), unauth, oauth("invalid_client", "JWT header has no kid")),
        ("kid with a DID query", Box::new(|| raw_jwt(key, &format!(r#"{{"alg":"ES256","kid":"{}?versionId=1#{}"}}"#, s.requester_did, kid.split('#').nth(1).unwrap()), &claims())), unauth, oauth("invalid_client", &format!("cannot authenticate the grant signer: verification method {}?versionId=1#{} is not an assertionMethod of its DID document", s.requester_did, kid.split('#').nth(1).unwrap()))),
        // key-carrying headers: the key only ever comes from the DID document
        ("embedded jwk of the attacker", Box::new(|| raw_jwt(&attacker, &header(&format!(r#""jwk":{attacker_jwk}"#)), &claims())), unauth, bad_signature()),
        ("jku of the attacker", Box::new(|| raw_jwt(&attacker, &header(r#""jku":"https://evil.example/jwks.json""#), &claims())), unauth, bad_signature()),
        ("x5u of the attacker", Box::new(|| raw_jwt(&attacker, &header(r#""x5u":"https://evil.example/cert.pem""#), &claims())), unauth, bad_signature()),
        ("x5c of the attacker", Box::new(|| raw_jwt(&attacker, &header(r#""x5c":["MIIBszCCAVmgAwIBAgIUX"]"#), &claims())), unauth, bad_signature()),
        ("kid of the attacker, iss of the requester", Box::new(|| raw_jwt(&attacker, &format!(r#"{{"alg":"ES256","kid":"{attacker_did}#{}"}}"#, attacker_did.trim_start_matches("did:key:")), &claims())), unauth, kid_not_iss()),
        // crit
        ("crit naming exp", Box::new(|| signed(r#""crit":["exp"]"#)), bad, oauth("invalid_grant", "JWT header has a crit parameter, which is not supported")),
        ("crit empty", Box::new(|| signed(r#""crit":[]"#)), bad, oauth("invalid_grant", "JWT header has a crit parameter, which is not supported")),
        ("crit b64 with unencoded payload", Box::new(|| signed(r#""b64":false,"crit":["b64"]"#)), bad, oauth("invalid_grant", "JWT header has a crit parameter, which is not supported")),
        // duplicate members (first-wins and last-wins parsers would disagree)
        ("duplicate alg, none first", Box::new(|| raw_jwt(key, &prepend(&header(""), r#""alg":"none""#), &claims())), bad, dup_header()),
        ("duplicate alg, none last", Box::new(|| raw_jwt(key, &append(&header(""), r#""alg":"none""#), &claims())), bad, dup_header()),
        ("duplicate kid", Box::new(|| raw_jwt(key, &prepend(&header(""), &format!(r#""kid":"{attacker_did}#k""#)), &claims())), bad, dup_header()),
        ("duplicate sub", Box::new(|| raw_jwt(key, &header(""), &prepend(&claims(), &format!(r#""sub":"{attacker_did}""#)))), bad, dup_payload()),
        ("duplicate iss", Box::new(|| raw_jwt(key, &header(""), &prepend(&claims(), &format!(r#""iss":"{attacker_did}""#)))), bad, dup_payload()),
        ("duplicate jti", Box::new(|| raw_jwt(key, &header(""), &append(&claims(), r#""jti":"replayed""#))), bad, dup_payload()),
        ("duplicate purposeOfUse", Box::new(|| raw_jwt(key, &header(""), &prepend(&claims(), r#""purposeOfUse":"zorginzage-test""#))), bad, dup_payload()),
        ("duplicate member inside usi", Box::new(|| { let c = claims().replacen(r#""uzi":"900012345""#, r#""uzi":"1","uzi":"900012345""#, 1); raw_jwt(key, &header(""), &c) }), bad, dup_payload()),
        ("duplicate member inside a credential", Box::new(|| { let c = claims().replacen(r#""credentialSubject":{"#, r#""credentialSubject":{"subject":"urn:oid:2.16.840.1.113883.2.4.6.3:123456782","#, 1); raw_jwt(key, &header(""), &c) }), bad, dup_payload()),
        // size and nesting
        ("claims over 512 KiB", Box::new(|| claim("padding", json!(big))), bad, malformed("too large")),
        ("claims nested 200 deep", Box::new(|| raw_jwt(key, &header(""), &append(&claims(), &format!(r#""x":{}"#, nested(200))))), bad, payload_not_json()),
        ("header nested 200 deep", Box::new(|| raw_jwt(key, &append(&header(""), &format!(r#""x":{}"#, nested(200))), &claims())), bad, header_not_json()),
        ("eleven credentials", Box::new(|| claim("vcs", json!(many_vcs))), bad, oauth("invalid_grant", "vcs holds more than 10 credentials")),
        // base64url
        ("padding on the header", Box::new(|| { let g = good(); let (h, rest) = g.split_once('.').unwrap(); format!("{h}=.{rest}") }), bad, header_not_json()),
        ("padding on the signature", Box::new(|| format!("{}==", good())), bad, malformed("signature is not base64url")),
        ("standard alphabet in the header", Box::new(|| swap_part(&with_url_chars(0), 0, &standard_alphabet)), bad, header_not_json()),
        ("standard alphabet in the signature", Box::new(|| swap_part(&with_url_chars(2), 2, &standard_alphabet)), bad, malformed("signature is not base64url")),
        ("trailing bits set in the signature", Box::new(|| swap_part(&good(), 2, &set_trailing_bit)), bad, malformed("signature is not base64url")),
        ("whitespace inside the payload", Box::new(|| swap_part(&good(), 1, &|p: &str| format!("{} {}", &p[..10], &p[10..]))), bad, payload_not_json()),
        // trailing data, segments
        ("trailing garbage", Box::new(|| format!("{} garbage", good())), bad, malformed("signature is not base64url")),
        ("trailing newline", Box::new(|| format!("{}\n", good())), bad, malformed("signature is not base64url")),
        ("trailing dot", Box::new(|| format!("{}.", good())), bad, malformed("expected three dot-separated parts")),
        ("four segments", Box::new(|| format!("{}.e30", good())), bad, malformed("expected three dot-separated parts")),
        ("five segments (JWE shape)", Box::new(|| "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".to_owned()), bad, malformed("expected three dot-separated parts")),
        ("two segments", Box::new(|| good().rsplit_once('.').unwrap().0.to_owned()), bad, malformed("expected three dot-separated parts")),
        ("all segments empty", Box::new(|| "..".to_owned()), bad, header_not_json()),
        ("empty header", Box::new(|| format!(".{}", good().split_once('.').unwrap().1)), bad, header_not_json()),
        ("empty payload", Box::new(|| swap_part(&good(), 1, &|_: &str| String::new())), bad, payload_not_json()),
        ("empty signature", Box::new(|| swap_part(&good(), 2, &|_: &str| String::new())), unauth, bad_signature()),
        ("header is a JSON array", Box::new(|| raw_jwt(key, r#"["ES256"]"#, &claims())), bad, header_not_json()),
        ("payload is a JSON string", Box::new(|| raw_jwt(key, &header(""), r#""claims""#)), bad, payload_not_json()),
        ("payload with a byte order mark", Box::new(|| raw_jwt(key, &header(""), &format!("\u{feff}{}", claims()))), bad, payload_not_json()),
        // mistyped and out-of-range claims
        ("iat as a float", Box::new(|| claim("iat", json!(now as f64 + 0.5))), bad, oauth("invalid_grant", "iat must be an integer (seconds since the epoch)")),
        ("exp as a string", Box::new(|| claim("exp", json!((now + 5).to_string()))), bad, oauth("invalid_grant", "exp must be an integer (seconds since the epoch)")),
        ("exp near i64::MAX", Box::new(|| { let mut c = s.claims(); c["iat"] = json!(i64::MAX - 3); c["exp"] = json!(i64::MAX); s.grant(&c) }), bad, oauth("invalid_grant", "iat is in the future")),
        ("iat negative", Box::new(|| { let mut c = s.claims(); c["iat"] = json!(-5); c["exp"] = json!(-1); s.grant(&c) }), bad, oauth("invalid_grant", "grant has expired")),
        ("exp beyond u64", Box::new(|| { let c = s.claims(); let t = c.to_string().replace(&format!(r#""exp":{}"#, c["exp"]), r#""exp":18446744073709551616"#); raw_jwt(key, &header(""), &t) }), bad, oauth("invalid_grant", "exp must be an integer (seconds since the epoch)")),
        ("aud with a second audience", Box::new(|| claim("aud", json!([AUD, "https://evil.example"]))), bad, oauth("invalid_grant", "aud is not this token endpoint")),
        ("aud with a trailing slash", Box::new(|| claim("aud", json!(format!("{}/", AUD)))), bad, oauth("invalid_grant", "aud is not this token endpoint")),
        ("jti of 257 characters", Box::new(|| claim("jti", json!("j".repeat(257)))), bad, oauth("invalid_grant", "jti is longer than 256 characters")),
        ("jti empty", Box::new(|| claim("jti", json!(""))), bad, oauth("invalid_grant", "jti must be a non-empty string")),
        ("jti a number", Box::new(|| claim("jti", json!(7))), bad, oauth("invalid_grant", "jti must be a non-empty string")),
        ("iss not a DID", Box::new(|| { let mut c = s.claims(); c["iss"] = json!("https://huisarts.example"); s.grant(&c) }), bad, oauth("invalid_grant", "iss must be a DID")),
        ("usi with an unknown member", Box::new(|| claim("usi", json!({"uzi": "900012345", "name": "x", "role": "01.015", "admin": true}))), bad, oauth("invalid_grant", "usi: unknown field `admin`")),
        ("usi name with a newline", Box::new(|| claim("usi", json!({"uzi": "900012345", "name": "Dr.\nX", "role": "01.015"}))), bad, oauth("invalid_grant", "usi: name must be 1 to 256 printable characters")),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for (name, assertion, status, expected) in &cases {
        let before = w.counts().await;
        let (got_status, body) = s.post_grant(&assertion()).await;
        if (got_status, &body) != (*status, expected) {
            wrong.push(format!("{name}: answered {got_status} {body}"));
        }
        let rule = expected["error_description"].as_str().unwrap();
        wrong.extend(
            w.quiet_refusal(name, before, &[("token", status.as_u16(), rule)])
                .await,
        );
    }
    assert_none("JWT grants", cases.len(), &wrong);

    // A JWT larger than the body limit never reaches the JWT parser: 413.
    let before = w.counts().await;
    let (status, body) = s.post_grant(&"a".repeat(1024 * 1024 + 1)).await;
    let expected = oauth(
        "invalid_request",
        "request body is larger than 1048576 bytes",
    );
    assert_eq!((status, &body), (StatusCode::PAYLOAD_TOO_LARGE, &expected));
    let wrong = w
        .quiet_refusal(
            "body over the limit",
            before,
            &[("token", 413, "request body is larger than 1048576 bytes")],
        )
        .await;
    assert_none("JWT grants", 1, &wrong);

    // The parameters themselves: repeated in a form, repeated in a JSON body.
    let g = good();
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={g}&assertion={}",
        good()
    );
    let json_body = format!(
        r#"{{"grant_type":"urn:ietf:params:oauth:grant-type:jwt-bearer","assertion":"{g}","assertion":"{}"}}"#,
        good()
    );
    for (name, content_type, body, description) in [
        (
            "assertion twice in the form",
            "application/x-www-form-urlencoded",
            form,
            "parameter \"assertion\" given more than once",
        ),
        (
            "assertion twice in a JSON body",
            "application/json",
            json_body,
            "request body has a duplicate member name",
        ),
    ] {
        let before = w.counts().await;
        let r = reqwest::Client::new()
            .post(s.endpoint())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status(), r.json::<Value>().await.unwrap()),
            (
                StatusCode::BAD_REQUEST,
                oauth("invalid_request", description)
            ),
            "{name}"
        );
        let wrong = w
            .quiet_refusal(name, before, &[("token", 400, description)])
            .await;
        assert_none("token parameters", 1, &wrong);
    }

    // After all that, the requester is not locked out: the same key still gets a token.
    assert_eq!(s.post_grant(&good()).await.0, StatusCode::OK);
}
