//! Credential benchmarks (not tests): `cargo bench --bench credential`.
//!
//! Measures, in one run on this machine, with references measured in the same run:
//! - full verification of a JSON-LD credential (embedded contexts, strict expansion, URDNA2015,
//!   ES256), each presentation with different bytes so the verified-credential cache misses;
//! - a repeated presentation of an already verified credential (cache hit: SHA-256 of the
//!   bytes + dates + policy + revocation check);
//! - issuing (build + sign);
//! - references: `serde_json` parse of the same bytes, one raw ES256 verify (aws-lc-rs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use poortwachter::bsn::Bsn;
use poortwachter::clock::SystemClock;
use poortwachter::credential::issue::{issue, IssueRequest, Issuer};
use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::proof;
use poortwachter::credential::verify::{Mode, NoRevocations, Verifier};
use poortwachter::did::{self, Resolver, ResolverSettings};
use poortwachter::keys::{KeyType, SigningKey};
use poortwachter::policy::{ConsentType, PolicySet};

/// Median time per iteration over `rounds` rounds of `iters` iterations.
fn measure(name: &str, iters: u32, rounds: usize, mut f: impl FnMut(u32)) -> Duration {
    let mut samples = Vec::with_capacity(rounds);
    f(0);
    for r in 0..rounds {
        let start = Instant::now();
        for i in 0..iters {
            f(r as u32 * iters + i);
        }
        samples.push(start.elapsed() / iters);
    }
    samples.sort();
    let median = samples[rounds / 2];
    println!("{name:<58} {:>10.2} µs", median.as_secs_f64() * 1e6);
    median
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let policies = PolicySet::load_dir(std::path::Path::new("policies"))
        .expect("run from the repository root");
    let policy = policies
        .get("zorginzage-thuiszorgdossier-door-huisarts")
        .expect("huisarts policy")
        .clone();
    let contexts = Arc::new(Contexts::embedded());
    let (key, _) = SigningKey::generate(KeyType::P256).expect("key");
    let did = did::key::did_for(&key.public_key());
    let vm = did::key::verification_method_id(&did);
    let issuer = Issuer {
        did: &did,
        verification_method: &vm,
        key: &key,
    };
    let request = IssueRequest {
        subject_did: "did:web:huisarts.example.nl".into(),
        bsn: Bsn::parse("999999990").expect("bsn"),
        purpose: policy.purpose.clone(),
        consent: ConsentType::Implied,
        expires: Some(time::OffsetDateTime::now_utc() + time::Duration::days(365)),
        resources: vec![],
    };
    let now = time::OffsetDateTime::now_utc();
    let credential = issue(&contexts, &issuer, &request, &policy, now)
        .expect("issue")
        .to_string();
    let verifier = Verifier::new(
        contexts.clone(),
        Resolver::new(&ResolverSettings::default()).expect("resolver"),
        Arc::new(SystemClock),
        Arc::new(NoRevocations),
    );

    println!("credential: {} bytes", credential.len());
    let parse = measure(
        "reference: serde_json parse of the credential",
        2000,
        15,
        |_| {
            std::hint::black_box(
                serde_json::from_str::<serde_json::Value>(&credential).expect("json"),
            );
        },
    );
    let map = serde_json::from_str::<serde_json::Value>(&credential)
        .expect("json")
        .as_object()
        .cloned()
        .expect("object");
    let input = proof::prepare(&contexts, &map, &did).expect("prepare");
    let public = key.public_key();
    let es256 = measure("reference: one ES256 verify (aws-lc-rs)", 2000, 15, |_| {
        assert!(public.verify(&input.alg, &input.signing_input, &input.signature));
    });
    let canon = measure(
        "canonicalise proof options + credential (2× URDNA2015)",
        200,
        15,
        |_| {
            std::hint::black_box(proof::prepare(&contexts, &map, &did).expect("prepare"));
        },
    );
    // Different bytes each time (trailing spaces) so the verified-credential cache misses.
    let variants: Vec<Vec<u8>> = (0..4000)
        .map(|i| format!("{credential}{}", " ".repeat(i % 4000)).into_bytes())
        .collect();
    let full = measure(
        "verify, cold cache (full JSON-LD + ES256 + policy)",
        200,
        15,
        |i| {
            rt.block_on(verifier.verify(
                &variants[i as usize % variants.len()],
                Mode::Authorization,
                &policies,
            ))
            .expect("valid");
        },
    );
    let bytes = credential.as_bytes();
    rt.block_on(verifier.verify(bytes, Mode::Authorization, &policies))
        .expect("valid");
    let warm = measure(
        "verify, repeated presentation (cache hit)",
        20_000,
        15,
        |_| {
            rt.block_on(verifier.verify(bytes, Mode::Authorization, &policies))
                .expect("valid");
        },
    );
    let issuing = measure(
        "issue (build + 2× URDNA2015 + ES256 sign)",
        200,
        15,
        |_| {
            std::hint::black_box(issue(&contexts, &issuer, &request, &policy, now).expect("issue"));
        },
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!();
    println!(
        "verify cold / ES256 verify      = {:.1}×   (target ≤ 1 ms absolute: {:.3} ms)",
        ratio(full, es256),
        full.as_secs_f64() * 1e3
    );
    println!(
        "verify cold / canonicalisation  = {:.2}×",
        ratio(full, canon)
    );
    println!(
        "verify warm / serde_json parse  = {:.2}×   (target ≤ 20 µs absolute: {:.2} µs)",
        ratio(warm, parse),
        warm.as_secs_f64() * 1e6
    );
    println!(
        "issue / verify cold             = {:.2}×",
        ratio(issuing, full)
    );
}
