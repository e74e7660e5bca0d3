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
