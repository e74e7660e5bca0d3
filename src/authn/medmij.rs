//! `medmij`: an access token from our own MedMij authorization server (`/medmij/token`), as
//! `Authorization: Bearer` (RFC 6750 §2.1) on the resource server under `/medmij/fhir`. The
//! principal is the DVP (its host name) for the person the token was issued for; the policy is
//! the token's gegevensdienst's, `medmij-<id>`. A gegevensdienst no longer served has no policy,
//! so its requests are refused as `insufficient_scope`.

use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::{AuthError, Principal, Proof};
use crate::audit::AuditTrace;
use crate::policy::Authenticator as Kind;
use crate::store::Store;

/// The request header of the sender's message id.
pub const REQUEST_ID_HEADER: &str = "medmij-request-id";
/// The request header of the exchange's id.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";

/// Looks tokens up in the store (every request: a revocation applies at once).
#[derive(Debug, Clone)]
pub struct MedmijToken {
    store: Store,
    gegevensdiensten: Arc<Vec<String>>,
}

impl MedmijToken {
    /// An authenticator over the store's MedMij tokens for the gegevensdiensten served.
    #[must_use]
    pub fn new(store: Store, gegevensdiensten: Vec<String>) -> Self {
        Self {
            store,
            gegevensdiensten: Arc::new(gegevensdiensten),
        }
    }

    /// A live token (not expired, not revoked) becomes its principal.
    pub async fn authenticate(&self, parts: &Parts, now: i64) -> Result<Principal, AuthError> {
        let invalid = |why: &str| AuthError::Invalid(format!("invalid-token: {why}"));
        let token = crate::http::bearer(&parts.headers).map_err(|e| match e {
            crate::http::BearerError::Missing => invalid("missing"),
            crate::http::BearerError::Malformed => invalid("malformed-authorization"),
        })?;
        let hash = crate::medmij::hash_secret(token);
        let record = self
            .store
            .medmij_token(&hash)
            .await
            .map_err(|_| AuthError::Unavailable)?
            .ok_or_else(|| invalid("unknown"))?;
        if record.revoked {
            return Err(invalid("revoked"));
        }
        if record.expires_at <= now {
            return Err(invalid("expired"));
        }
        // A gegevensdienst no longer served keeps its token valid but has no policy: refused as
        // insufficient_scope by the proxy.
        let policy = if self.gegevensdiensten.contains(&record.gegevensdienst) {
            crate::medmij::settings::MedmijSettings::policy_of(&record.gegevensdienst)
        } else {
            String::from("medmij-not-served")
        };
        Ok(Principal {
            requester: record.client_id,
            user: None,
            policy,
            authenticator: Kind::Medmij,
            patient: Some(record.bsn),
            proof: Proof::MedmijToken {
                gegevensdienst: record.gegevensdienst,
            },
            token: None,
        })
    }
}

/// A MedMij id header's value: 1 to 128 visible ASCII characters (UUIDs in practice), else
/// `None` (never logged, never echoed).
#[must_use]
pub fn id_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let v = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let s = v.to_str().ok()?;
    crate::medmij::valid_id(s).then(|| s.to_owned())
}

/// The trace of a resource request: its `MedMij-Request-ID` and `X-Correlation-ID`.
#[must_use]
pub fn trace(headers: &HeaderMap) -> AuditTrace {
    AuditTrace {
        event: "resource_request".into(),
        request_id: id_header(headers, REQUEST_ID_HEADER),
        correlation_id: id_header(headers, CORRELATION_ID_HEADER),
    }
}
