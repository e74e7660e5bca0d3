//! The one place where errors of every boundary become HTTP answers. Clients get a status, a
//! stable code and a one-line description without personal data; details go to the log.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admin::AdminError;
use crate::credential::CredentialError;
use crate::oauth::grant::GrantError;
use crate::store::StoreError;

/// An error answered over HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Credential administration failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A presented credential is not valid.
    #[error(transparent)]
    InvalidCredential(CredentialError),
    /// The request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Body over the limit.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Wrong content type.
    #[error("content type must be {0}")]
    UnsupportedMediaType(&'static str),
    /// No such route.
    #[error("no such endpoint")]
    NotFound,
    /// Route exists, method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The client did not send its body in time.
    #[error("request body not received in time")]
    ClientTimeout,
    /// The token endpoint refused a grant (RFC 6749 §5.2).
    #[error(transparent)]
    Grant(#[from] GrantError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Admin(AdminError::Invalid { .. }) | ApiError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "invalid_request")
            }
            ApiError::Admin(AdminError::Credential(e)) => (StatusCode::BAD_REQUEST, e.code()),
            ApiError::Admin(AdminError::NotFound) | ApiError::NotFound => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::Admin(AdminError::Store(StoreError::Conflict)) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ApiError::Admin(AdminError::Store(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
            ApiError::InvalidCredential(CredentialError::TooLarge) | ApiError::TooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request")
            }
            ApiError::InvalidCredential(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code()),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request")
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
            ApiError::ClientTimeout => (StatusCode::REQUEST_TIMEOUT, "invalid_request"),
            ApiError::Grant(g) => {
                let (status, code) = g.oauth();
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    code,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let description = match &self {
            // Store details (connection strings, SQL) stay in the log.
            ApiError::Admin(AdminError::Store(_)) => {
                "the credential store is unavailable".to_owned()
            }
            other => other.to_string(),
        };
        let retry_after = match &self {
            ApiError::Grant(GrantError::RateLimited(s)) => Some(s.to_string()),
            _ => None,
        };
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        } else {
            tracing::info!(code, error = %description, "request refused");
        }
        let mut response = (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({"error": code, "error_description": description})),
        )
            .into_response();
        if let Some(Ok(value)) = retry_after.map(|s| header::HeaderValue::from_str(&s)) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Why the proxy did not pass a request or its answer. Answered as a FHIR `OperationOutcome`
/// that says what kind of failure, never which rule (the rule goes to the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// Missing, unknown, expired or revoked token.
    InvalidToken,
    /// A Hub source token that does not verify (why, for the audit log).
    InvalidSourceToken(String),
    /// The policy refused the request (reason for the audit log).
    Denied(String),
    /// Refused for another reason (no policy, answer of another patient).
    Refused,
    /// The request is malformed.
    Malformed(&'static str),
    /// The request body is over the limit.
    TooLarge,
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

impl ProxyError {
    /// The reason recorded in the audit log.
    #[must_use]
    pub fn audit_reason(&self) -> String {
        match self {
            ProxyError::InvalidToken => "invalid-token".into(),
            ProxyError::InvalidSourceToken(why) => format!("invalid-source-token: {why}"),
            ProxyError::Denied(r) => r.clone(),
            ProxyError::Refused => "refused".into(),
            ProxyError::Malformed(m) => format!("malformed: {m}"),
            ProxyError::TooLarge => "request-too-large".into(),
            ProxyError::ClientTimeout => "client-timeout".into(),
            ProxyError::UpstreamDown => "upstream-unreachable".into(),
            ProxyError::UpstreamTimeout => "upstream-timeout".into(),
            ProxyError::UpstreamInvalid(m) => (*m).to_owned(),
            ProxyError::UpstreamStatus(s) => format!("upstream-status-{s}"),
            ProxyError::Unavailable => "store-unavailable".into(),
        }
    }

    /// Whether this is a failure (not a refusal).
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
}

impl ProxyError {
    /// Status, FHIR issue code and text of the answer.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ProxyError::ClientTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "request not received in time",
            ),
            ProxyError::InvalidToken | ProxyError::InvalidSourceToken(_) => (
                StatusCode::UNAUTHORIZED,
                "login",
                "a valid access token is required",
            ),
            ProxyError::Denied(_) | ProxyError::Refused => {
                (StatusCode::FORBIDDEN, "forbidden", "access refused")
            }
            ProxyError::Malformed(_) => (StatusCode::BAD_REQUEST, "invalid", "malformed request"),
            ProxyError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-costly",
                "request too large",
            ),
            ProxyError::UpstreamDown | ProxyError::UpstreamInvalid(_) => (
                StatusCode::BAD_GATEWAY,
                "exception",
                "the source system could not be reached",
            ),
            ProxyError::UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "the source system did not answer in time",
            ),
            ProxyError::UpstreamStatus(s) => (
                StatusCode::from_u16(*s).unwrap_or(StatusCode::BAD_GATEWAY),
                "exception",
                "an error occurred",
            ),
            ProxyError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "service temporarily unavailable",
            ),
        }
    }

    fn www_authenticate(&self, response: &mut Response) {
        if matches!(
            self,
            ProxyError::InvalidToken | ProxyError::InvalidSourceToken(_)
        ) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
    }

    /// The answer for a request that came with a Hub source token: the Hub API's `<error>`
    /// XML (status, code, message, details), saying as little as the FHIR answer does.
    #[must_use]
    pub fn into_hub_response(self) -> Response {
        let (status, code, text) = self.parts();
        let mut w = crate::hub::xml::Writer::new();
        w.open("error", &[])
            .element("status", &status.as_u16().to_string())
            .element("code", code)
            .element("message", text)
            .element("details", "")
            .close("error");
        let mut response = (
            status,
            [
                (header::CONTENT_TYPE, "application/xml; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            w.finish(),
        )
            .into_response();
        self.www_authenticate(&mut response);
        response
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let (status, code, text) = self.parts();
        let mut response = (
            status,
            [
                (header::CONTENT_TYPE, "application/fhir+json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            crate::proxy::fhir::operation_outcome(code, text).to_string(),
        )
            .into_response();
        self.www_authenticate(&mut response);
        response
    }
}
