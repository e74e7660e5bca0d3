//! `hub-source`: Hub API v3 source tokens (`?jwt=` or `Authorization: Bearer`, exactly one),
//! signed by the Hub configured in `[hub_source]`, meant for this provider's account (`aud`),
//! about one client (`sub` = BSN). A valid token becomes a principal `hub:<acc_name>` for that
//! client; the policy named in `[hub_source]` decides the request.
//!
//! The Hub's keys come from a JWKS file or URL, loaded at start (a Hub that cannot be read stops
//! start-up) and re-read every `refresh_seconds`; a failed re-read keeps the keys it had.

use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;

use super::{AuthError, Principal, Proof};
use crate::bsn::Bsn;
use crate::config::{HubSourceSettings, JwksSource};
use crate::hub::token::SourceVerifier;
use crate::oauth::grant::UserIdentity;
use crate::policy::Authenticator as Kind;

/// Largest JWKS document read.
const MAX_JWKS: usize = 256 * 1024;

/// Reads the JWKS document.
pub async fn read_jwks(source: &JwksSource) -> Result<String, String> {
    match source {
        JwksSource::File(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if text.len() > MAX_JWKS {
                return Err(format!("{}: larger than {MAX_JWKS} bytes", path.display()));
            }
            Ok(text)
        }
        JwksSource::Url(url) => {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| e.to_string())?;
            let mut response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{url}: status {}", response.status()));
            }
            let mut buf = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                buf.extend_from_slice(&chunk);
                if buf.len() > MAX_JWKS {
                    return Err(format!("{url}: larger than {MAX_JWKS} bytes"));
                }
            }
            String::from_utf8(buf).map_err(|_| format!("{url}: not UTF-8"))
        }
    }
}

/// Builds the verifier and loads the Hub's keys once.
pub async fn verifier(settings: &HubSourceSettings) -> Result<Arc<SourceVerifier>, String> {
    let v = Arc::new(SourceVerifier::new(
        &settings.issuer,
        &settings.audience,
        settings.leeway_seconds,
    ));
    let text = read_jwks(&settings.jwks).await?;
    v.set_jwks(&text)?;
    Ok(v)
}

/// Re-reads the JWKS every `refresh`, keeping the old keys when that fails.
pub async fn refresh(verifier: Arc<SourceVerifier>, settings: HubSourceSettings) {
    let mut tick = tokio::time::interval(settings.refresh);
    tick.tick().await;
    loop {
        tick.tick().await;
        match read_jwks(&settings.jwks)
            .await
            .and_then(|t| verifier.set_jwks(&t))
        {
            Ok(n) => tracing::debug!(keys = n, "hub JWKS re-read"),
            Err(e) => {
                tracing::warn!(error = %e, "hub JWKS could not be re-read; keeping the old keys")
            }
        }
    }
}

/// Source tokens of one Hub for this provider, decided by one policy.
#[derive(Debug)]
pub struct HubSource {
    verifier: Arc<SourceVerifier>,
    policy: String,
}

impl HubSource {
    /// An authenticator whose principals `policy` decides.
    #[must_use]
    pub fn new(verifier: Arc<SourceVerifier>, policy: &str) -> Self {
        Self {
            verifier,
            policy: policy.to_owned(),
        }
    }

    /// An authenticator with no keys (every token fails), for tests of the routing.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self::new(
            Arc::new(SourceVerifier::new("https://hub.example", "provider-a", 0)),
            "hub-dossier",
        )
    }

    /// The one source token of the request (Bearer or `?jwt=`), verified at `now`.
    pub fn authenticate(&self, parts: &Parts, now: i64) -> Result<Principal, AuthError> {
        let from_query: Vec<String> = match parts.uri.query() {
            Some(q) if super::nuts::has_param(q, "jwt") => {
                url::form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| k == "jwt")
                    .map(|(_, v)| v.into_owned())
                    .collect()
            }
            _ => Vec::new(),
        };
        let bearer = match crate::http::bearer(&parts.headers) {
            Ok(b) => Some(b),
            Err(crate::http::BearerError::Missing) => None,
            Err(crate::http::BearerError::Malformed) => {
                return Err(invalid("malformed-authorization"))
            }
        };
        let token = match (bearer, from_query.as_slice()) {
            (None, [jwt]) => jwt.as_str(),
            (Some(b), []) => b,
            (None, []) => return Err(invalid("missing")),
            _ => return Err(AuthError::Malformed("more than one credential")),
        };
        let claims = self
            .verifier
            .verify(token, now)
            .map_err(|e| invalid(&e.to_string()))?;
        let patient = Bsn::parse(&claims.sub).map_err(|_| invalid("subject-not-a-bsn"))?;
        Ok(Principal {
            requester: format!("hub:{}", claims.acc_name),
            user: Some(UserIdentity {
                uzi: String::new(),
                name: claims.acc_display_name,
                role: "hub-account".into(),
                initials: None,
                family_name: None,
                email: None,
            }),
            policy: self.policy.clone(),
            authenticator: Kind::HubSource,
            patient: Some(patient),
            proof: Proof::HubSourceToken { jti: claims.jti },
            token: None,
        })
    }
}

fn invalid(why: &str) -> AuthError {
    AuthError::Invalid(format!("invalid-source-token: {why}"))
}
