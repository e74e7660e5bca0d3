//! No panic on any input: seeded pseudo-random bytes and mutations of valid inputs go through
//! every parser (credential verification, policy files, DIDs, BSNs). Deterministic, so a failure
//! reproduces; the coverage-guided targets live in `fuzz/`.

use std::sync::Arc;

use poortwachter::bsn::Bsn;
use poortwachter::clock::SystemClock;
use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::proof;
use poortwachter::credential::verify::{Mode, NoRevocations, Verifier};
use poortwachter::did::{self, Resolver, ResolverSettings};
use poortwachter::policy::PolicySet;
use serde_json::{json, Value};

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max);
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let pos = self.below(out.len());
            match self.below(4) {
                0 if !out.is_empty() => out[pos] = self.next() as u8,
                1 if !out.is_empty() => {
                    out.remove(pos);
                }
                2 => {
                    let alphabet = b"{}[]\",:\\0aZ-#";
                    out.insert(pos, alphabet[self.below(alphabet.len())]);
                }
                _ => {
                    let end = (pos + self.below(40)).min(out.len());
                    let chunk = out[pos..end].to_vec();
                    out.splice(pos..pos, chunk);
                }
            }
        }
        out
    }
    fn json_value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 2 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.next() % 2 == 0),
            2 => json!(self.next() as i64),
            3 => json!(f64::from(self.next() as u32) / 7.0),
            4 => json!(""),
            5 => json!(String::from_utf8_lossy(&self.bytes(20)).into_owned()),
            6 => Value::Array(
                (0..self.below(3))
                    .map(|_| self.json_value(depth + 1))
                    .collect(),
            ),
            _ => {
                let keys = [
                    "id",
                    "type",
                    "@context",
                    "@id",
                    "@type",
                    "subject",
                    "legalBase",
                    "@value",
                    "@list",
                    "@graph",
                ];
                Value::Object(
                    (0..self.below(3))
                        .map(|_| {
                            (
                                keys[self.below(keys.len())].to_owned(),
                                self.json_value(depth + 1),
                            )
                        })
                        .collect(),
                )
            }
        }
    }
}

fn valid_credential() -> (Value, String) {
    let (key, _) =
        poortwachter::keys::SigningKey::generate(poortwachter::keys::KeyType::P256).unwrap();
    let issuer = did::key::did_for(&key.public_key());
    let vm = did::key::verification_method_id(&issuer);
    let c = json!({
        "@context": ["https://www.w3.org/2018/credentials/v1", "https://nuts.nl/credentials/v1", "https://w3id.org/poortwachter/legalbase/v1", "https://w3c-ccg.github.io/lds-jws2020/contexts/lds-jws2020-v1.json"],
        "id": format!("{issuer}#1"),
        "type": ["VerifiableCredential", "NutsAuthorizationCredential"],
        "issuer": issuer,
        "issuanceDate": "2026-01-01T00:00:00Z",
        "expirationDate": "2035-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:web:huisarts.example.nl", "purposeOfUse": "zorginzage-thuiszorgdossier-door-huisarts", "subject": "urn:oid:2.16.840.1.113883.2.4.6.3:999999990", "legalBase": {"consentType": "implied"}, "resources": [{"path": "/Observation", "operations": ["read"], "userContext": true}]}
    });
    let signed = proof::sign(
        &Contexts::embedded(),
        c.as_object().unwrap().clone(),
        &key,
        &vm,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    (signed, issuer)
}

fn every_path(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(path.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            let mut p = path.clone();
            p.push(k.clone());
            every_path(c, p, out)
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
            let mut p = path.clone();
            p.push(i.to_string());
            every_path(c, p, out)
        }),
        _ => {}
    }
}

fn set(v: &mut Value, path: &[String], new: Value) {
    let mut cur = v;
    for k in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(k).unwrap(),
            Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
            _ => return,
        };
    }
    *cur = new;
}

#[tokio::test]
async fn credential_verification_never_panics() {
    let verifier = Verifier::new(
        Arc::new(Contexts::embedded()),
        Resolver::new(&ResolverSettings::default()).unwrap(),
        Arc::new(SystemClock),
        Arc::new(NoRevocations),
    );
    let policies = PolicySet::load_dir(&super::support::repo().join("policies")).unwrap();
    let (valid, _) = valid_credential();
    let text = valid.to_string();
    verifier
        .verify(text.as_bytes(), Mode::Authorization, &policies)
        .await
        .expect("the seed verifies");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut refused = 0;
    for i in 0..600 {
        let input = match i % 3 {
            0 => rng.bytes(300),
            1 => rng.mutate(text.as_bytes()),
            _ => {
                let mut v = valid.clone();
                let mut paths = Vec::new();
                every_path(&v, vec![], &mut paths);
                let path = paths[1 + rng.below(paths.len() - 1)].clone();
                let new = rng.json_value(0);
                set(&mut v, &path, new);
                v.to_string().into_bytes()
            }
        };
        for mode in [Mode::ProofOnly, Mode::Authorization] {
            if verifier.verify(&input, mode, &policies).await.is_err() {
                refused += 1;
            }
        }
    }
    assert!(
        refused > 1000,
        "almost every mutation must be refused ({refused})"
    );
}

#[test]
fn small_parsers_never_panic() {
    let mut rng = Rng(42);
    let seeds: [&[u8]; 6] = [
        b"did:web:example.com%3A8443:org:a",
        b"did:key:zDnaepZUQNAT7p3JXZKNiEP5yFRbG8PRcADYMrFaGwmBBxsF2",
        b"urn:oid:2.16.840.1.113883.2.4.6.3:999999990",
        b"999999990",
        b"zDnaepZUQNAT7p3JXZKNiEP5yFRbG8PRcADYMrFaGwmBBxsF2",
        b"#key-1",
    ];
    let policy = std::fs::read(
        super::support::repo().join("policies/zorginzage-thuiszorgdossier-door-huisarts.toml"),
    )
    .unwrap();
    for i in 0..5000 {
        let seed = seeds[i % seeds.len()];
        let input = String::from_utf8_lossy(&rng.mutate(seed)).into_owned();
        let _ = did::method_of(&input);
        let _ = did::web::location(&input);
        let _ = did::key::resolve(&input);
        let _ = did::key::decode_multibase_key(&input);
        let _ = Bsn::parse(&input);
        let _ = Bsn::from_urn(&input);
        let _ = proof::absolute_verification_method("did:key:zabc", &input);
        let _ = poortwachter::admin::parse_expires(&input);
        let _ = poortwachter::admin::parse_resource(&input);
        if i % 5 == 0 {
            let text = String::from_utf8_lossy(&rng.mutate(&policy)).into_owned();
            let _ = PolicySet::compile("p.toml", "zorginzage-x", &text);
        }
    }
}
