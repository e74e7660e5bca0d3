//! The one place where errors become HTTP answers: the status of every boundary's error enum
//! ([`ApiError`] of the admin API and token endpoint, [`GrantError`], [`ProxyError`], [`EgressError`],
//! [`HubError`], the admin console's [`ConsoleError`] (whose pages `server::console` renders)) and the three body formats (OAuth JSON, FHIR `OperationOutcome`, the Hub API's
//! `<error>` XML). Clients get a status, a stable code and a one-line description without
//! personal data; details go to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admin::AdminError;
use crate::authn::ErrorFormat;
use crate::console::ConsoleError;
use crate::credential::CredentialError;
use crate::egress::EgressError;
use crate::hub::HubError;
use crate::oauth::grant::GrantError;
use crate::proxy::ProxyError;
use crate::store::StoreError;

/// The body of every [`ApiError`] answer (RFC 6749 §5.2 style), also the OpenAPI documents'
/// error schema.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A code such as `invalid_request`, `invalid_grant`, `not_found`.
    pub error: &'static str,
    /// One line for a person; never a BSN or store detail.
    pub error_description: String,
}

/// An error answered over HTTP as OAuth-style JSON.
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

impl From<crate::http::BodyError> for ApiError {
    fn from(e: crate::http::BodyError) -> Self {
        match e {
            crate::http::BodyError::TooLarge(limit) => ApiError::TooLarge(limit),
            crate::http::BodyError::Timeout => ApiError::ClientTimeout,
        }
    }
}

/// The token endpoint's status and RFC 6749 §5.2 error code.
#[must_use]
pub fn grant_status(e: &GrantError) -> (StatusCode, &'static str) {
    match e {
        GrantError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        GrantError::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        GrantError::Jose(_)
        | GrantError::Claim(_)
        | GrantError::Credential { .. }
        | GrantError::Replay => (StatusCode::BAD_REQUEST, "invalid_grant"),
        GrantError::Client(_) | GrantError::ClientCertificateRequired => {
            (StatusCode::UNAUTHORIZED, "invalid_client")
        }
        GrantError::UnknownPurpose(_) => (StatusCode::BAD_REQUEST, "invalid_scope"),
        GrantError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "slow_down"),
        GrantError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
    }
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
            ApiError::Grant(g) => grant_status(g),
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
            axum::Json(ErrorBody {
                error: code,
                error_description: description,
            }),
        )
            .into_response();
        if let Some(Ok(value)) = retry_after.map(|s| HeaderValue::from_str(&s)) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The status of a console answer: a form with field errors is 400 (shown again, nothing
/// changed), a missing login sends the browser to the login page (303), a refused CSRF token
/// is 403.
#[must_use]
pub fn console_status(e: &ConsoleError) -> StatusCode {
    match e {
        ConsoleError::LoginRequired => StatusCode::SEE_OTHER,
        ConsoleError::Csrf => StatusCode::FORBIDDEN,
        ConsoleError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ConsoleError::LoginFailed => StatusCode::UNAUTHORIZED,
        ConsoleError::Invalid | ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ConsoleError::NotFound => StatusCode::NOT_FOUND,
        ConsoleError::Store(_) | ConsoleError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ConsoleError::Body(crate::http::BodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
        ConsoleError::Body(crate::http::BodyError::Timeout) => StatusCode::REQUEST_TIMEOUT,
    }
}

/// Status, FHIR issue code and text of a proxy refusal: what kind of failure, never which rule
/// (the rule goes to the audit log).
fn proxy_status(e: &ProxyError) -> (StatusCode, &'static str, &'static str) {
    match e {
        ProxyError::ClientTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "request not received in time",
        ),
        ProxyError::Unauthenticated(_) => (
            StatusCode::UNAUTHORIZED,
            "login",
            "a valid access token is required",
        ),
        ProxyError::Denied(_) | ProxyError::Refused => {
            (StatusCode::FORBIDDEN, "forbidden", "access refused")
        }
        ProxyError::Malformed(_) => (StatusCode::BAD_REQUEST, "invalid", "malformed request"),
        ProxyError::BsnInBody => (
            StatusCode::BAD_REQUEST,
            "security",
            "a BSN is not allowed in the request body: the access token identifies the person",
        ),
        ProxyError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            "request too large",
        ),
        ProxyError::UnsupportedMediaType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "unsupported media type",
        ),
        ProxyError::InvalidBody(e) => (StatusCode::BAD_REQUEST, "structure", e.message()),
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

/// The answer to a proxied request that was refused or failed, in the format of the
/// authenticator its path is mounted under ([`crate::proxy::Render`]).
#[must_use]
pub fn proxy_answer(e: &ProxyError, format: ErrorFormat) -> Response {
    let (status, code, text) = proxy_status(e);
    let mut response = match format {
        ErrorFormat::Fhir | ErrorFormat::FhirBearer => (
            status,
            [
                (header::CONTENT_TYPE, "application/fhir+json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            crate::proxy::fhir::operation_outcome(code, text).to_string(),
        )
            .into_response(),
        // ZorgDomein's criteria: a request without a valid certificate or token is a 403 (no
        // challenge), the rest as for any FHIR client.
        ErrorFormat::FhirForbidden => {
            let (status, code, text) = match e {
                ProxyError::Unauthenticated(_) => {
                    (StatusCode::FORBIDDEN, "forbidden", "authentication failed")
                }
                _ => (status, code, text),
            };
            (
                status,
                [
                    (header::CONTENT_TYPE, "application/fhir+json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                crate::proxy::fhir::operation_outcome(code, text).to_string(),
            )
                .into_response()
        }
        // The Hub API's clients, saying as little as the FHIR answer does.
        ErrorFormat::HubXml => hub_error(status, code, text, ""),
    };
    if matches!(e, ProxyError::Unauthenticated(_)) && format != ErrorFormat::FhirForbidden {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    // RFC 6750 §3.1: a token that does not cover the request.
    if format == ErrorFormat::FhirBearer && matches!(e, ProxyError::Denied(_) | ProxyError::Refused)
    {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
        );
    }
    response
}

/// Status, FHIR issue code and text of an egress refusal or failure, for the GP system: what
/// happened and what to do. (No BSN and no token: the texts name only routes, purposes, DIDs,
/// headers and the custodian's own `error_description`.)
#[must_use]
pub fn egress_status(e: &EgressError) -> (StatusCode, &'static str, String) {
    let (status, code, text): (StatusCode, &'static str, String) = match e {
        EgressError::NoRoute => (
            StatusCode::NOT_FOUND,
            "not-found",
            "no egress route for this path: call http://<egress>/<route prefix>/<FHIR path> with a prefix of [[egress.route]]".into(),
        ),
        EgressError::MissingUser(h) => (
            StatusCode::BAD_REQUEST,
            "required",
            format!("{h} is required: this purpose needs the user's UZI number, name and role (X-Poortwachter-User-Uzi, X-Poortwachter-User-Name, X-Poortwachter-User-Role)"),
        ),
        EgressError::BadHeader(h) => (StatusCode::BAD_REQUEST, "invalid", format!("{h} is not valid (sent once, 1 to 256 characters; the UZI number digits only)")),
        EgressError::MissingBsn => (
            StatusCode::BAD_REQUEST,
            "required",
            "no patient: send X-Poortwachter-Bsn, or search POST Patient/_search with identifier=http://fhir.nl/fhir/NamingSystem/bsn|<BSN>".into(),
        ),
        EgressError::InvalidBsn => (
            StatusCode::BAD_REQUEST,
            "invalid",
            "the BSN is not valid: 9 digits that pass the 11-check".into(),
        ),
        EgressError::BsnMismatch => (
            StatusCode::BAD_REQUEST,
            "invalid",
            "X-Poortwachter-Bsn and the BSN searched for differ".into(),
        ),
        EgressError::Malformed => (StatusCode::BAD_REQUEST, "invalid", "malformed request".into()),
        EgressError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too-costly", "request too large".into()),
        EgressError::ClientTimeout => (StatusCode::REQUEST_TIMEOUT, "timeout", "request not received in time".into()),
        EgressError::NoCredential { purpose, custodian } => (
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("no credential held for this patient and purpose {purpose} from {custodian}: ask the custodian for one and import it with `poortwachter credential import`"),
        ),
        EgressError::GrantRefused(description) => (
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the custodian refused the token request: {description}"),
        ),
        EgressError::GrantRateLimited(description) => (
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("the custodian's token endpoint is limiting this practice's token requests: {description}; try again later"),
        ),
        EgressError::TokenEndpointDown => (
            StatusCode::BAD_GATEWAY,
            "transient",
            "the custodian's token endpoint cannot be reached or failed; try again later".into(),
        ),
        EgressError::TokenEndpointTimeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the custodian's token endpoint did not answer in time; try again later".into(),
        ),
        EgressError::CustodianDown => (
            StatusCode::BAD_GATEWAY,
            "transient",
            "the custodian cannot be reached; try again later".into(),
        ),
        EgressError::CustodianTimeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the custodian did not answer in time; try again later".into(),
        ),
        EgressError::TokenNotAccepted => (
            StatusCode::BAD_GATEWAY,
            "transient",
            "the custodian did not accept a new access token from its own token endpoint".into(),
        ),
        EgressError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            "the credential store or the audit log is unavailable".into(),
        ),
    };
    (status, code, text)
}

/// egress's answer to the GP system for a refusal or failure: an `OperationOutcome`.
#[must_use]
pub fn egress_answer(e: &EgressError) -> Response {
    let (status, code, text) = egress_status(e);
    (
        status,
        [
            (header::CONTENT_TYPE, "application/fhir+json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        crate::proxy::fhir::operation_outcome(code, &text).to_string(),
    )
        .into_response()
}

/// The Hub API's `<error>` document: status, code, message, details.
fn hub_error(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    let mut w = crate::hub::xml::Writer::new();
    w.open("error", &[])
        .element("status", &status.as_u16().to_string())
        .element("code", code)
        .element("message", message)
        .element("details", details)
        .close("error");
    (
        status,
        [
            (header::CONTENT_TYPE, "application/xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        w.finish(),
    )
        .into_response()
}

/// The HTTP status of a Hub error.
fn hub_status(e: &HubError) -> StatusCode {
    match e {
        HubError::Unauthorized => StatusCode::UNAUTHORIZED,
        HubError::Invalid { .. } => StatusCode::BAD_REQUEST,
        HubError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        HubError::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
        HubError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        HubError::NotFound | HubError::UnknownAccount => StatusCode::NOT_FOUND,
        HubError::Forbidden => StatusCode::FORBIDDEN,
        HubError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        HubError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        HubError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a Hub client should do about an error.
fn hub_details(e: &HubError) -> &'static str {
    match e {
        HubError::Unauthorized => {
            "use HTTP Basic authentication with the account's API key and secret"
        }
        HubError::Invalid { .. } => "see the Hub API v3 documentation for the resource format",
        HubError::TooLarge | HubError::UnsupportedMediaType => "send one <resource> XML document",
        HubError::ClientTimeout => "send the whole request body within the time limit",
        HubError::NotFound => "the resource does not exist or is not shared with this account",
        HubError::Forbidden => "ask the registering account",
        HubError::UnknownAccount => "share with an existing account name or AGB code",
        HubError::MethodNotAllowed => "see the Hub API v3 documentation for the endpoints",
        HubError::Unavailable(_) | HubError::Internal(_) => "try again later",
    }
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        match &self {
            HubError::Unavailable(reason) => {
                tracing::error!(reason = %reason, "hub store unavailable");
            }
            HubError::Internal(reason) => tracing::error!(reason = %reason, "hub request failed"),
            _ => {}
        }
        let mut response = hub_error(
            hub_status(&self),
            self.code(),
            &self.to_string(),
            hub_details(&self),
        );
        if self == HubError::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"hub\""),
            );
        }
        response
    }
}

impl From<crate::http::BodyError> for HubError {
    fn from(e: crate::http::BodyError) -> Self {
        match e {
            crate::http::BodyError::TooLarge(_) => HubError::TooLarge,
            crate::http::BodyError::Timeout => HubError::ClientTimeout,
        }
    }
}

/// The MedMij session cookie's name: with the `__Host-` prefix when it is `Secure`.
#[must_use]
pub fn medmij_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-poortwachter-medmij"
    } else {
        "poortwachter-medmij"
    }
}

/// A MedMij browser step's answer: pages 200 (a step), 400 (a request or session that is not
/// valid) or 503 (something we depend on is down); redirects 303. Every page carries the strict
/// Content-Security-Policy, no caching, no framing, no referrer.
#[must_use]
pub fn medmij_reply(reply: crate::medmij::service::Reply, secure: bool) -> Response {
    use crate::medmij::service::{Answer, CookieOp, PageKind};
    let mut response = match reply.answer {
        Answer::Page {
            kind,
            html,
            client_origin,
        } => {
            let status = match kind {
                PageKind::Shown => StatusCode::OK,
                PageKind::Invalid => StatusCode::BAD_REQUEST,
                PageKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut r = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
            if let Ok(v) =
                HeaderValue::from_str(&crate::medmij::pages::csp(client_origin.as_deref()))
            {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
        Answer::Redirect(location) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            match HeaderValue::from_str(&location) {
                Ok(v) => {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Err(_) => *r.status_mut() = StatusCode::BAD_REQUEST,
            }
            r
        }
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let name = medmij_cookie_name(secure);
    let attributes = if secure {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    };
    let cookie = match reply.cookie {
        CookieOp::Keep => None,
        CookieOp::Set(id) => Some(format!(
            "{name}={id}{attributes}; Max-Age={}",
            crate::medmij::service::SESSION_SECONDS
        )),
        CookieOp::Clear => Some(format!("{name}={attributes}; Max-Age=0")),
    };
    if let Some(Ok(v)) = cookie.map(|c| HeaderValue::from_str(&c)) {
        h.insert(header::SET_COOKIE, v);
    }
    response
}

/// A MedMij endpoint while `[medmij]` is not configured (or the development login is off).
#[must_use]
pub fn medmij_not_configured() -> Response {
    ApiError::NotFound.into_response()
}

/// A form the MedMij pages did not post (too large, too slow).
#[must_use]
pub fn medmij_bad_form() -> Response {
    ApiError::BadRequest("the form is too large or was not received in time".into()).into_response()
}

/// The MedMij token endpoint's answer (RFC 6749 §5.1 / §5.2), with the request's
/// `MedMij-Request-ID` and `X-Correlation-ID` echoed.
#[must_use]
pub fn medmij_token(
    answer: Result<crate::medmij::service::TokenAnswer, crate::medmij::token::TokenError>,
    ids: &(Option<String>, Option<String>),
) -> Response {
    use crate::medmij::token::TokenError;
    let mut response = match answer {
        Ok(a) => (StatusCode::OK, axum::Json(a)).into_response(),
        Err(e) => {
            let (status, code) = match &e {
                TokenError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
                TokenError::InvalidClient(_) => (StatusCode::UNAUTHORIZED, "invalid_client"),
                TokenError::InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
                TokenError::UnsupportedGrantType => {
                    (StatusCode::BAD_REQUEST, "unsupported_grant_type")
                }
                TokenError::Unavailable => {
                    (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
                }
            };
            tracing::info!(code, error = %e, "MedMij token request refused");
            (
                status,
                axum::Json(json!({"error": code, "error_description": e.to_string()})),
            )
                .into_response()
        }
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    for (name, value) in [
        (crate::authn::medmij::REQUEST_ID_HEADER, &ids.0),
        (crate::authn::medmij::CORRELATION_ID_HEADER, &ids.1),
    ] {
        if let Some(Ok(v)) = value.as_deref().map(HeaderValue::from_str) {
            h.insert(axum::http::HeaderName::from_static(name), v);
        }
    }
    response
}
