//! `nuts-token`: an opaque access token from our own token endpoint (Nuts RFC003), as
//! `Authorization: Bearer`. The principal is what the token was issued for: the requester DID,
//! the user it vouched for, the purposeOfUse and the patient of its credentials.

use std::sync::Arc;

use axum::http::request::Parts;

use super::{AuthError, Principal, Proof};
use crate::oauth::TokenService;
use crate::policy::Authenticator as Kind;

/// The reason a missing, unknown, expired or revoked token is recorded with.
pub const INVALID_TOKEN: &str = "invalid-token";

/// Looks tokens up in the token service (cache, then store).
#[derive(Debug, Clone)]
pub struct NutsToken {
    tokens: Arc<TokenService>,
}

impl NutsToken {
    /// An authenticator over `tokens`.
    #[must_use]
    pub fn new(tokens: Arc<TokenService>) -> Self {
        Self { tokens }
    }

    /// A live token (not expired, its credentials not revoked) becomes its principal.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        let invalid = || AuthError::Invalid(INVALID_TOKEN.into());
        // A `jwt=` in the query is another way in's credential: never ours.
        if parts.uri.query().is_some_and(|q| has_param(q, "jwt")) {
            return Err(invalid());
        }
        let token = crate::http::bearer(&parts.headers).map_err(|_| invalid())?;
        let ctx = self
            .tokens
            .lookup(token)
            .await
            .map_err(|_| AuthError::Unavailable)?
            .ok_or_else(invalid)?;
        Ok(Principal {
            requester: ctx.record.requester.clone(),
            user: ctx.user.clone(),
            policy: ctx.record.purpose.clone(),
            authenticator: Kind::NutsToken,
            patient: Some(ctx.record.bsn.clone()),
            proof: Proof::AccessToken,
            token: Some(ctx),
        })
    }
}

/// Whether the query has a parameter `name` (only a query that mentions it is parsed).
pub(crate) fn has_param(query: &str, name: &str) -> bool {
    query.contains(name) && url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == name)
}
