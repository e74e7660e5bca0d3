//! MedMij "Delen": poortwachter as the care provider's side (the *DVA*: authorization server and
//! resource server) of a person sharing data from their PGO.
//!
//! The authorization server, top-down in [`service::Service`]:
//!
//! ```text
//! GET /medmij/authorize → authorize::check (lists, scope, PKCE) → session (cookie) → landing page
//!   → login: oidc::Provider (code + PKCE + nonce, ID token) | the development form (test BSN)
//!   → receptive (configuration, then the source system's check) → confirmation page (Ja/Nee)
//!   → Ja: a single-use code (60 s) → 303 to the PGO's redirect_uri
//! POST /medmij/token → token::parse → the code (unused, same client and redirect_uri, PKCE)
//!   → an opaque token (stored as its hash with BSN, aanbieder, gegevensdienst, expiry)
//! ```
//!
//! The resource server is the proxy under `/medmij/fhir` with the `medmij` authenticator
//! ([`crate::authn::medmij`]) and a policy per gegevensdienst (`medmij-<id>`).
//!
//! - Pure: [`lists`] (the four MedMij lists), [`authorize`] and [`token`] (the requests, fuzz
//!   targets), [`pages`] (the HTML), [`bsn_scan`] (a BSN in a request body), [`settings`].
//! - IO: [`sources`] (reading and refreshing the lists), [`oidc`] (the person's login),
//!   [`service`] (the flow, its sessions, codes, tokens and audit records).
//!
//! **Invariant:** a code, token or session id is kept only as its SHA-256, never logged; every
//! step the person or the DVP takes is an audit record in the hash chain, durable before the
//! answer.

pub mod authorize;
pub mod bsn_scan;
pub mod lists;
pub mod oidc;
pub mod pages;
pub mod service;
pub mod settings;
pub mod sources;
pub mod token;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::Digest as _;

/// Hex SHA-256 of a secret (code, token, session id): the only form in which it is stored.
#[must_use]
pub fn hash_secret(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// 32 random bytes, base64url: a code, token, session id, CSRF token, state, nonce or verifier.
/// From aws-lc-rs's system random; should that ever fail, from two v4 UUIDs (the `uuid` crate's
/// `fast-rng`: a ChaCha CSPRNG seeded by the operating system), never from anything predictable.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        uuid::Uuid::new_v4()
            .as_bytes()
            .iter()
            .chain(uuid::Uuid::new_v4().as_bytes())
            .zip(bytes.iter_mut())
            .for_each(|(s, d)| *d = *s);
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of a verifier.
#[must_use]
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A MedMij request or correlation id as we keep and echo it: 1 to 128 characters of
/// `[A-Za-z0-9-._~:]` (UUIDs in practice).
#[must_use]
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b))
}
