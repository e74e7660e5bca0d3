//! The proxy's second authenticator: Hub API v3 source tokens (`?jwt=` or `Authorization:
//! Bearer`), signed by the Hub configured in `[hub_source]`, meant for this provider's account
//! (`aud`), about one client (`sub` = BSN). A valid token becomes a request context like an
//! access token's; the policy named in `[hub_source]` decides the request.
//!
//! The Hub's keys come from a JWKS file or URL, loaded at start (a Hub that cannot be read stops
//! start-up) and re-read every `refresh_seconds`; a failed re-read keeps the keys it had.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{HubSourceSettings, JwksSource};
use crate::hub::token::{SourceError, SourceVerifier};
use crate::oauth::grant::UserIdentity;
use crate::oauth::{token_hash, TokenContext};
use crate::store::TokenRecord;

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

/// Whether a bearer value looks like a JWT (a Hub source token) rather than our opaque token.
#[must_use]
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The request context of a valid source token.
pub fn context(
    verifier: &SourceVerifier,
    policy: &str,
    token: &str,
    now: i64,
) -> Result<TokenContext, SourceError> {
    let claims = verifier.verify(token, now)?;
    let record = TokenRecord {
        hash: token_hash(token),
        requester: format!("hub:{}", claims.acc_name),
        custodian: claims.aud.clone(),
        purpose: policy.to_owned(),
        credential_ids: Vec::new(),
        bsn: claims.sub.clone(),
        user_identity: None,
        issued_at: claims.iat,
        expires_at: claims.exp,
    };
    let user = UserIdentity {
        uzi: String::new(),
        name: claims.acc_display_name,
        role: "hub-account".into(),
        initials: None,
        family_name: None,
        email: None,
    };
    Ok(TokenContext::external(record, Some(user)))
}
