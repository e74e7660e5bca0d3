//! Authenticators: each way into the proxy turns a request into a [`Principal`]: who asks, for
//! which user, under which policy, for which patient, proven how.
//!
//! Which authenticator handles a request is fixed by configuration: each is mounted at a path
//! prefix of the public listener ([`Mounts`]; our own access tokens at `/` unless another
//! authenticator takes the whole listener). A request that fails its authenticator is refused;
//! it is never tried with another one.
//!
//! | authenticator | proof | policy |
//! |---|---|---|
//! | `nuts-token` ([`nuts`]) | an opaque access token from our token endpoint (if its grant came over mutual TLS, with that client certificate: RFC 8705) | its purposeOfUse |
//! | `hub-source` ([`hub_source`]) | an RS512 source token signed by the Hub | `[hub_source] policy` |
//! | `medmij` ([`medmij`]) | an opaque access token from our MedMij authorization server | `medmij-<gegevensdienst>` |
//! | `zorgdomein` ([`zorgdomein`]) | ZorgDomein's client certificate + a JWT ZorgDomein signs | `[zorgdomein] policy` |
//!
//! **Invariant:** a principal is only made here, from a verified proof; everything a policy or
//! the source system learns about the requester comes from it.

pub mod hub_source;
pub mod medmij;
pub mod nuts;
pub mod zorgdomein;

use std::sync::Arc;

use axum::http::request::Parts;

use crate::bsn::Bsn;
use crate::oauth::grant::UserIdentity;
use crate::oauth::TokenContext;
use crate::policy::Authenticator as Kind;

/// How a principal was proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// An opaque access token from our token endpoint (Nuts RFC003).
    AccessToken,
    /// A source token signed by the Hub (Hub API v3).
    HubSourceToken {
        /// The token's `jti`, if it has one.
        jti: Option<String>,
    },
    /// An access token from our MedMij authorization server.
    MedmijToken {
        /// The gegevensdienst it was issued for.
        gegevensdienst: String,
    },
    /// ZorgDomein's client certificate and a JWT ZorgDomein signed.
    ZorgDomeinToken {
        /// The token's `iss`, if it has a printable one.
        iss: Option<String>,
        /// The token's `jti`, if it has a printable one.
        jti: Option<String>,
    },
}

/// Who asks, for whom, under which policy, proven how.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The requester: a DID, or `hub:<account>`.
    pub requester: String,
    /// The user, as the requester vouched for it.
    pub user: Option<UserIdentity>,
    /// The policy that decides this principal's requests (for access tokens: the purposeOfUse).
    pub policy: String,
    /// The authenticator that made this principal (the policy must name it).
    pub authenticator: Kind,
    /// The patient the principal is scoped to.
    pub patient: Option<Bsn>,
    /// How it was proven.
    pub proof: Proof,
    /// The access token's live context (its patient bindings), for `nuts-token` principals.
    pub token: Option<Arc<TokenContext>>,
}

/// Why a request has no principal. The reason is for the audit log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential, or one that does not verify (the audit reason).
    #[error("{0}")]
    Invalid(String),
    /// The request carries its credential in a way no authenticator accepts.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The store cannot be asked: fail closed.
    #[error("store-unavailable")]
    Unavailable,
}

/// How refusals look to the clients of one authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// A FHIR `OperationOutcome` (`application/fhir+json`).
    Fhir,
    /// The Hub API's `<error>` XML.
    HubXml,
    /// A FHIR `OperationOutcome` with RFC 6750's `WWW-Authenticate` on 401 (`invalid_token`) and
    /// 403 (`insufficient_scope`): MedMij's resource server.
    FhirBearer,
    /// A FHIR `OperationOutcome`, and a request without valid credentials is refused with 403
    /// rather than 401 (ZorgDomein's validation criteria).
    FhirForbidden,
}

/// One way in.
#[derive(Debug)]
pub enum Authenticator {
    /// Our own access tokens.
    NutsToken(nuts::NutsToken),
    /// Hub API v3 source tokens.
    HubSource(hub_source::HubSource),
    /// Access tokens of our MedMij authorization server.
    Medmij(medmij::MedmijToken),
    /// ZorgDomein's calls: its client certificate and a JWT it signs.
    ZorgDomein(zorgdomein::ZorgDomein),
}

impl Authenticator {
    /// The name policy files use for it.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Self::NutsToken(_) => Kind::NutsToken,
            Self::HubSource(_) => Kind::HubSource,
            Self::Medmij(_) => Kind::Medmij,
            Self::ZorgDomein(_) => Kind::ZorgDomein,
        }
    }

    /// The format of its clients' error answers.
    #[must_use]
    pub fn error_format(&self) -> ErrorFormat {
        match self {
            Self::NutsToken(_) => ErrorFormat::Fhir,
            Self::HubSource(_) => ErrorFormat::HubXml,
            Self::Medmij(_) => ErrorFormat::FhirBearer,
            Self::ZorgDomein(_) => ErrorFormat::FhirForbidden,
        }
    }

    /// The audit record's `kind` for its requests.
    #[must_use]
    pub fn audit_kind(&self) -> &'static str {
        match self {
            Self::NutsToken(_) => "proxy",
            Self::HubSource(_) => "hub-source",
            Self::Medmij(_) => "medmij",
            Self::ZorgDomein(_) => "zorgdomein",
        }
    }

    /// Whether a request body must carry no BSN: a MedMij DVP identifies the person only through
    /// the OAuth exchange, never in the data it sends.
    #[must_use]
    pub fn refuses_bsn_in_body(&self) -> bool {
        matches!(self, Self::Medmij(_))
    }

    /// The chain-log trace of a request (its network's request and correlation ids), echoed in
    /// the answer and kept in the audit record.
    #[must_use]
    pub fn trace(&self, parts: &Parts) -> Option<crate::audit::AuditTrace> {
        match self {
            Self::Medmij(_) => Some(medmij::trace(&parts.headers)),
            Self::NutsToken(_) | Self::HubSource(_) | Self::ZorgDomein(_) => None,
        }
    }

    /// Turns the request into a principal, or refuses it.
    pub async fn authenticate(&self, parts: &Parts, now: i64) -> Result<Principal, AuthError> {
        match self {
            Self::NutsToken(a) => a.authenticate(parts).await,
            Self::HubSource(a) => a.authenticate(parts, now),
            Self::Medmij(a) => a.authenticate(parts, now).await,
            Self::ZorgDomein(a) => a.authenticate(parts, now),
        }
    }
}

/// An authenticator at a path prefix.
#[derive(Debug, Clone)]
pub struct Mount {
    /// `/` or a prefix without a trailing slash, e.g. `/zorgdomein`.
    pub prefix: String,
    /// The authenticator of every request under it.
    pub authenticator: Arc<Authenticator>,
}

/// The authenticators of the public listener by path prefix.
#[derive(Debug, Clone, Default)]
pub struct Mounts(Vec<Mount>);

impl Mounts {
    /// The mounts; two at one prefix is a configuration error (the caller's to report).
    pub fn new(mut mounts: Vec<Mount>) -> Result<Self, String> {
        mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        for pair in mounts.windows(2) {
            if pair[0].prefix == pair[1].prefix {
                return Err(format!(
                    "two authenticators ({} and {}) at path prefix {}",
                    pair[0].authenticator.kind().as_str(),
                    pair[1].authenticator.kind().as_str(),
                    pair[0].prefix
                ));
            }
        }
        Ok(Self(mounts))
    }

    /// The mount of `path` (the longest prefix that matches at a segment boundary) and the
    /// path the source system receives (the prefix stripped; `/` when nothing is left).
    #[must_use]
    pub fn route<'a>(&self, path: &'a str) -> Option<(&Mount, &'a str)> {
        self.0.iter().find_map(|m| {
            if m.prefix == "/" {
                return Some((m, path));
            }
            let rest = path.strip_prefix(m.prefix.as_str())?;
            match rest {
                "" => Some((m, "/")),
                r if r.starts_with('/') => Some((m, r)),
                _ => None,
            }
        })
    }

    /// Every mount, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = &Mount> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(prefixes: &[&str]) -> Mounts {
        let auth = Arc::new(Authenticator::HubSource(hub_source::HubSource::for_tests()));
        Mounts::new(
            prefixes
                .iter()
                .map(|p| Mount {
                    prefix: (*p).to_owned(),
                    authenticator: auth.clone(),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn the_longest_prefix_at_a_segment_boundary_decides() {
        let m = mounts(&["/", "/zorgdomein", "/medmij/fhir"]);
        let route = |p: &str| {
            m.route(p)
                .map(|(m, rest)| (m.prefix.clone(), rest.to_owned()))
        };
        assert_eq!(route("/Patient/1"), Some(("/".into(), "/Patient/1".into())));
        assert_eq!(
            route("/zorgdomein/Task/1"),
            Some(("/zorgdomein".into(), "/Task/1".into()))
        );
        assert_eq!(
            route("/zorgdomein"),
            Some(("/zorgdomein".into(), "/".into()))
        );
        assert_eq!(
            route("/zorgdomeinX/Task"),
            Some(("/".into(), "/zorgdomeinX/Task".into()))
        );
        assert_eq!(
            route("/medmij/fhir/"),
            Some(("/medmij/fhir".into(), "/".into()))
        );
        let only = mounts(&["/zorgdomein"]);
        assert!(only.route("/Patient/1").is_none());
    }

    #[test]
    fn two_authenticators_at_one_prefix_are_refused() {
        let auth = Arc::new(Authenticator::HubSource(hub_source::HubSource::for_tests()));
        let m = |p: &str| Mount {
            prefix: p.into(),
            authenticator: auth.clone(),
        };
        let err = Mounts::new(vec![m("/"), m("/x"), m("/x")]).unwrap_err();
        assert_eq!(
            err,
            "two authenticators (hub-source and hub-source) at path prefix /x"
        );
    }
}
