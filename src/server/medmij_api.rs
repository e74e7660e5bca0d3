//! MedMij "Delen" endpoints on the public listener (when `[medmij]` is configured): the
//! authorization server's browser steps and its token endpoint. The logic is
//! [`crate::medmij::service::Service`]; answers (statuses, headers, cookies) are made in
//! [`super::error`]. The resource server under `/medmij/fhir` is the proxy.
//!
//! ```text
//! GET  /medmij/authorize        the PGO's authorization request → landing page | error page | 303 error
//! GET  /medmij/login            → 303 to the OpenID provider
//! GET  /medmij/login/callback   ← the provider: code, state → 303 /medmij/confirm | not receptive
//! POST /medmij/login/dev        (only with dangerous_dev_login) csrf, bsn → 303 /medmij/confirm | not receptive
//! GET  /medmij/confirm          the confirmation page (Ja / Nee)
//! POST /medmij/confirm          csrf, keuze=ja|nee → 303 to the PGO with code | access_denied
//! POST /medmij/token            grant_type=authorization_code … → 200 {access_token…} | 400 | 401
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::audit::AuditCert;
use crate::authn::medmij::{id_header, CORRELATION_ID_HEADER, REQUEST_ID_HEADER};
use crate::medmij::service::{Incoming, Service};
use crate::medmij::token::TokenError;

/// Largest form the pages post.
const MAX_FORM: usize = 4096;
/// Largest token request.
const MAX_TOKEN_REQUEST: usize = 16 * 1024;
/// The token endpoint answers within this (MedMij: 10 s).
const TOKEN_DEADLINE: Duration = Duration::from_secs(10);

/// The MedMij routes and operations (included in the public listener's, which gives them the
/// state). The browser steps answer HTML pages and redirects; they are documented so a client
/// developer sees the whole flow, with `text/html` answers.
/// The development login is a route only when `dangerous_dev_login` is on.
pub fn api(dev: bool) -> super::openapi::Api<Arc<AppState>> {
    let api = super::openapi::Api::new("", "")
        .routes(routes!(authorize))
        .routes(routes!(login))
        .routes(routes!(callback))
        .routes(routes!(confirm_page, confirm))
        .routes(routes!(token));
    if dev {
        api.routes(routes!(dev_login))
    } else {
        api
    }
}

fn service(state: &AppState) -> Option<&Service> {
    state.medmij.as_deref()
}

fn incoming(parts: &Parts) -> Incoming {
    Incoming {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        request_id: uuid::Uuid::new_v4().to_string(),
        cert: parts
            .extensions
            .get::<crate::tls::ClientCert>()
            .map(AuditCert::of),
    }
}

fn ids(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    (
        id_header(headers, REQUEST_ID_HEADER),
        id_header(headers, CORRELATION_ID_HEADER),
    )
}

/// The session cookie's value, if the browser sent exactly one.
fn cookie(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = super::error::medmij_cookie_name(secure);
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(v) = value.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(val.to_owned());
                }
            }
        }
    }
    found
}

async fn form(body: Body, state: &AppState) -> Option<axum::body::Bytes> {
    let timeout = state.live.get().client_timeout;
    crate::http::read_body(body, MAX_FORM, timeout).await.ok()
}

#[utoipa::path(get, path = "/medmij/authorize", tag = "medmij",
    summary = "The PGO's authorization request (OAuth 2.0 authorization code, PKCE)",
    responses((status = 200, description = "The landing page", content_type = "text/html"),
        (status = 303, description = "To the PGO's redirect_uri with an error"),
        (status = 400, description = "An error page (no usable redirect_uri)", content_type = "text/html")))]
async fn authorize(
    State(state): State<Arc<AppState>>,
    request: axum::http::Request<Body>,
) -> Response {
    let Some(m) = service(&state) else {
        return super::error::medmij_not_configured();
    };
    let (parts, _) = request.into_parts();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let reply = m
        .authorize(&incoming(&parts), &query, ids(&parts.headers))
        .await;
    super::error::medmij_reply(reply, m.secure_cookies())
}

#[utoipa::path(get, path = "/medmij/login", tag = "medmij",
    summary = "Start the person's login at the OpenID provider",
    responses((status = 303, description = "To the OpenID provider"),
        (status = 400, description = "No session: an error page", content_type = "text/html")))]
async fn login(State(state): State<Arc<AppState>>, request: axum::http::Request<Body>) -> Response {
    let Some(m) = service(&state) else {
        return super::error::medmij_not_configured();
    };
    let (parts, _) = request.into_parts();
    let c = cookie(&parts.headers, m.secure_cookies());
    let reply = m.login(&incoming(&parts), c.as_deref()).await;
    super::error::medmij_reply(reply, m.secure_cookies())
}

#[utoipa::path(get, path = crate::medmij::service::CALLBACK_PATH, tag = "medmij",
    summary = "The OpenID provider's answer (code, state)",
    responses((status = 303, description = "To the confirmation page"),
        (status = 400, description = "An error page", content_type = "text/html")))]
async fn callback(
    State(state): State<Arc<AppState>>,
    request: axum::http::Request<Body>,
) -> Response {
    let Some(m) = service(&state) else {
        return super::error::medmij_not_configured();
    };
    let (parts, _) = request.into_parts();
    let c = cookie(&parts.headers, m.secure_cookies());
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let reply = m.callback(&incoming(&parts), c.as_deref(), &query).await;
    super::error::medmij_reply(reply, m.secure_cookies())
}

#[utoipa::path(post, path = "/medmij/login/dev", tag = "medmij",
    summary = "The development login (`dangerous_dev_login`): a BSN without an OpenID provider",
    request_body(description = "`csrf`, `bsn`", content(("application/x-www-form-urlencoded"))),
    responses((status = 303, description = "To the confirmation page"),
        (status = 400, description = "An error page", content_type = "text/html")))]
async fn dev_login(
    State(state): State<Arc<AppState>>,
    request: axum::http::Request<Body>,
) -> Response {
    let Some(m) = service(&state).filter(|m| m.settings().dev_login()) else {
        return super::error::medmij_not_configured();
    };
    let (parts, body) = request.into_parts();
    let c = cookie(&parts.headers, m.secure_cookies());
    let Some(body) = form(body, &state).await else {
        return super::error::medmij_bad_form();
    };
    let reply = m.dev_login(&incoming(&parts), c.as_deref(), &body).await;
    super::error::medmij_reply(reply, m.secure_cookies())
}

#[utoipa::path(get, path = "/medmij/confirm", tag = "medmij",
    summary = "The confirmation page (Ja / Nee)",
    responses((status = 200, description = "The page", content_type = "text/html"),
        (status = 400, description = "An error page", content_type = "text/html")))]
async fn confirm_page(
    State(state): State<Arc<AppState>>,
    request: axum::http::Request<Body>,
) -> Response {
    let Some(m) = service(&state) else {
        return super::error::medmij_not_configured();
    };
    let (parts, _) = request.into_parts();
    let c = cookie(&parts.headers, m.secure_cookies());
    let reply = m.confirm_page(&incoming(&parts), c.as_deref()).await;
    super::error::medmij_reply(reply, m.secure_cookies())
}

#[utoipa::path(post, path = "/medmij/confirm", tag = "medmij",
    summary = "The person's answer",
    request_body(description = "`csrf`, `keuze=ja|nee`", content(("application/x-www-form-urlencoded"))),
    responses((status = 303, description = "To the PGO with a code, or `access_denied`"),
        (status = 400, description = "An error page", content_type = "text/html")))]
async fn confirm(
    State(state): State<Arc<AppState>>,
    request: axum::http::Request<Body>,
) -> Response {
    let Some(m) = service(&state) else {
        return super::error::medmij_not_configured();
    };
    let (parts, body) = request.into_parts();
    let c = cookie(&parts.headers, m.secure_cookies());
    let Some(body) = form(body, &state).await else {
        return super::error::medmij_bad_form();
    };
    let reply = m.confirm(&incoming(&parts), c.as_deref(), &body).await;
    super::error::medmij_reply(reply, m.secure_cookies())
}

#[utoipa::path(post, path = "/medmij/token", tag = "medmij", operation_id = "medmij_token",
    summary = "MedMij token endpoint (authorization code, refresh token)",
    request_body(description = "`grant_type=authorization_code` with `code`, `redirect_uri`, `client_id`, \
        `code_verifier`; or `grant_type=refresh_token`", content(("application/x-www-form-urlencoded"))),
    responses((status = 200, description = "`{access_token, token_type, expires_in, refresh_token?, scope}`: a JSON object", content_type = "application/json"),
        (status = 400, description = "RFC 6749 §5.2 error (JSON)", content_type = "application/json"),
        (status = 401, description = "`invalid_client` (JSON)", content_type = "application/json"),
        (status = 503, description = "Unavailable", content_type = "application/json")))]
async fn token(State(state): State<Arc<AppState>>, request: axum::http::Request<Body>) -> Response {
    let Some(m) = service(&state) else {
        return super::error::medmij_not_configured();
    };
    let (parts, body) = request.into_parts();
    let ids = ids(&parts.headers);
    let answer = tokio::time::timeout(TOKEN_DEADLINE, async {
        let timeout = state.live.get().client_timeout;
        let body = match crate::http::read_body(body, MAX_TOKEN_REQUEST, timeout).await {
            Ok(b) => b,
            Err(_) => {
                return Err(TokenError::InvalidRequest(
                    "the request body is too large or too slow",
                ))
            }
        };
        let names = parts
            .extensions
            .get::<crate::tls::ClientCert>()
            .map(|c| c.dns_names().to_vec());
        m.token(
            &incoming(&parts),
            &crate::http::media_type(&parts.headers),
            &body,
            names.as_deref(),
            ids.clone(),
        )
        .await
    })
    .await
    .unwrap_or(Err(TokenError::Unavailable));
    super::error::medmij_token(answer, &ids)
}
