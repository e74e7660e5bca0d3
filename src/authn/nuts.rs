//! `nuts-token`: an opaque access token from our own token endpoint (Nuts RFC003), as
//! `Authorization: Bearer`. The principal is what the token was issued for: the requester DID,
//! the user it vouched for, the purposeOfUse and the patient of its credentials.
//!
//! A token bound to a client certificate (RFC 8705: its grant came over mutual TLS) is accepted
//! only on a connection whose verified client certificate is that one; with another certificate
//! or none it is refused like an invalid token (401 `invalid_token`), with the binding named in
//! the audit record.

use std::sync::Arc;

use axum::http::request::Parts;

use super::{AuthError, Principal, Proof};
use crate::oauth::TokenService;
use crate::policy::Authenticator as Kind;
use crate::tls::ClientCert;

/// The reason a missing, unknown, expired or revoked token is recorded with.
pub const INVALID_TOKEN: &str = "invalid-token";
/// The reason a bound token presented without a client certificate is recorded with.
pub const BOUND_NO_CERTIFICATE: &str =
    "invalid-token: bound to a client certificate (RFC 8705); the connection has none";
/// The reason a bound token presented with another client certificate is recorded with.
pub const BOUND_OTHER_CERTIFICATE: &str =
    "invalid-token: bound to another client certificate (RFC 8705)";

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

    /// A live token (not expired, its credentials not revoked; if bound, presented with its
    /// client certificate) becomes its principal.
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
        check_binding(
            ctx.record.cnf_x5t_s256.as_deref(),
            parts.extensions.get::<ClientCert>(),
        )?;
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

/// RFC 8705 §3: a token bound to a certificate (`cnf`, its `x5t#S256`) is only good with that
/// certificate on the connection.
pub(crate) fn check_binding(
    cnf_x5t_s256: Option<&str>,
    cert: Option<&ClientCert>,
) -> Result<(), AuthError> {
    match (cnf_x5t_s256, cert) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(AuthError::Invalid(BOUND_NO_CERTIFICATE.into())),
        (Some(bound), Some(cert)) if bound == cert.x5t_s256() => Ok(()),
        (Some(_), Some(_)) => Err(AuthError::Invalid(BOUND_OTHER_CERTIFICATE.into())),
    }
}

/// Whether the query has a parameter `name` (only a query that mentions it is parsed).
pub(crate) fn has_param(query: &str, name: &str) -> bool {
    query.contains(name) && url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testing::TestCa;

    fn cert(ca: &TestCa, name: &str) -> ClientCert {
        ClientCert::from_chain(ca.client(name).chain).expect("client certificate")
    }

    #[test]
    fn a_bound_token_needs_its_own_certificate() {
        let ca = TestCa::new("network");
        let (mine, other) = (cert(&ca, "huisarts"), cert(&ca, "huisarts"));
        let bound = Some(mine.x5t_s256());
        assert_eq!(check_binding(bound, Some(&mine)), Ok(()));
        assert_eq!(
            check_binding(bound, Some(&other)),
            Err(AuthError::Invalid(BOUND_OTHER_CERTIFICATE.into())),
            "another certificate, even with the same subject and CA"
        );
        assert_eq!(
            check_binding(bound, None),
            Err(AuthError::Invalid(BOUND_NO_CERTIFICATE.into()))
        );
        // An unbound token is good with or without a certificate.
        assert_eq!(check_binding(None, None), Ok(()));
        assert_eq!(check_binding(None, Some(&other)), Ok(()));
    }

    #[test]
    fn the_query_parameter_check_parses_only_when_mentioned() {
        assert!(has_param("a=1&jwt=x", "jwt"));
        assert!(!has_param("a=jwt", "jwt"));
        assert!(!has_param("", "jwt"));
    }
}
