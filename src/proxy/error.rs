//! Why the proxy did not pass a request or its answer: [`ProxyError`], the proxy's error
//! boundary. Its HTTP answer (status and body format) is decided in [`crate::server::error`];
//! here only what the audit log records.

use crate::authn::AuthError;

/// Why the proxy did not pass a request or its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// No principal: a missing, unknown, expired or revoked credential (the audit reason).
    Unauthenticated(String),
    /// The policy refused the request (reason for the audit log).
    Denied(String),
    /// Refused for another reason (no policy, answer of another patient).
    Refused,
    /// The request is malformed.
    Malformed(&'static str),
    /// The request body is over the limit.
    TooLarge,
    /// The request body names a person by BSN where only the token may (MedMij).
    BsnInBody,
    /// The request body's media type, charset or coding is not one the rule reads (the audit
    /// reason).
    UnsupportedMediaType(&'static str),
    /// The request body is not JSON the rule can read (the message is the client's).
    InvalidBody(crate::policy::json_body::JsonBodyError),
    /// The client did not send its body in time.
    ClientTimeout,
    /// The source system cannot be reached.
    UpstreamDown,
    /// The source system did not answer in time.
    UpstreamTimeout,
    /// The source system's answer is unusable.
    UpstreamInvalid(&'static str),
    /// The source system answered with an error status.
    UpstreamStatus(u16),
    /// The store or the audit log is unavailable: fail closed.
    Unavailable,
}

impl From<AuthError> for ProxyError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(reason) => ProxyError::Unauthenticated(reason),
            AuthError::Malformed(m) => ProxyError::Malformed(m),
            AuthError::Unavailable => ProxyError::Unavailable,
        }
    }
}

impl From<crate::policy::request::BodyRefusal> for ProxyError {
    fn from(e: crate::policy::request::BodyRefusal) -> Self {
        use crate::policy::request::BodyRefusal;
        match e {
            BodyRefusal::UnsupportedMediaType => {
                ProxyError::UnsupportedMediaType("unsupported-media-type")
            }
            BodyRefusal::TooLarge => ProxyError::TooLarge,
            BodyRefusal::Invalid(e) => ProxyError::InvalidBody(e),
        }
    }
}

impl From<crate::http::BodyError> for ProxyError {
    fn from(e: crate::http::BodyError) -> Self {
        match e {
            crate::http::BodyError::TooLarge(_) => ProxyError::TooLarge,
            crate::http::BodyError::Timeout => ProxyError::ClientTimeout,
        }
    }
}

impl ProxyError {
    /// The reason recorded in the audit log.
    #[must_use]
    pub fn audit_reason(&self) -> String {
        match self {
            ProxyError::Unauthenticated(why) => why.clone(),
            ProxyError::Denied(r) => r.clone(),
            ProxyError::Refused => "refused".into(),
            ProxyError::Malformed(m) => format!("malformed: {m}"),
            ProxyError::TooLarge => "request-too-large".into(),
            ProxyError::BsnInBody => "bsn-in-body".into(),
            ProxyError::UnsupportedMediaType(why) => (*why).to_owned(),
            ProxyError::InvalidBody(e) => format!("invalid-body: {e}"),
            ProxyError::ClientTimeout => "client-timeout".into(),
            ProxyError::UpstreamDown => "upstream-unreachable".into(),
            ProxyError::UpstreamTimeout => "upstream-timeout".into(),
            ProxyError::UpstreamInvalid(m) => (*m).to_owned(),
            ProxyError::UpstreamStatus(s) => format!("upstream-status-{s}"),
            ProxyError::Unavailable => "store-unavailable".into(),
        }
    }

    /// Whether this is a failure (not a refusal): the audit decision `error`.
    #[must_use]
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            ProxyError::UpstreamDown
                | ProxyError::UpstreamTimeout
                | ProxyError::UpstreamInvalid(_)
                | ProxyError::UpstreamStatus(_)
                | ProxyError::Unavailable
        )
    }

    /// Whether the source system failed (counted in the metrics).
    #[must_use]
    pub fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            ProxyError::UpstreamDown | ProxyError::UpstreamTimeout | ProxyError::UpstreamInvalid(_)
        ) || matches!(self, ProxyError::UpstreamStatus(s) if *s >= 500)
    }
}
