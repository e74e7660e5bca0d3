//! OAuth endpoints: the token endpoint and RFC 8414 metadata (public listener); RFC 7662
//! introspection and the `auth_request`-style verify endpoint (internal listener).
//!
//! ```text
//! POST /n2n/auth/v1/accesstoken                      grant_type=…jwt-bearer&assertion=<JWT> → 200 | 400 | 401 | 429
//! GET  /.well-known/oauth-authorization-server       RFC 8414 metadata
//! POST /internal/auth/v1/accesstoken/introspect      token=<token> → 200 {"active": …}
//! HEAD /internal/auth/v1/accesstoken/verify          Authorization: Bearer <token> → 200 | 403
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::app::AppState;
use crate::audit::{AuditRecord, AuditUser};
use crate::oauth::grant::GrantError;
use crate::oauth::{JWT_BEARER, TOKEN_PATH};

/// Reads the token request parameters from a form or JSON body (`content_type` lower-case,
/// without parameters); only `grant_type` and `assertion`, each once. Pure (a fuzz target).
pub fn token_params(
    content_type: &str,
    body: &[u8],
) -> Result<HashMap<String, String>, GrantError> {
    let invalid = |m: &str| GrantError::InvalidRequest(m.to_owned());
    let pairs: Vec<(String, String)> = match content_type {
        "application/x-www-form-urlencoded" => url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        "application/json" => match crate::jose::parse_json_unique(body) {
            Err(crate::jose::JsonError::Duplicate) => {
                return Err(invalid("request body has a duplicate member name"))
            }
            Ok(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    _ => Err(invalid("request body parameters must be strings")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(invalid("request body is not a JSON object")),
        },
        _ => {
            return Err(invalid(
                "content type must be application/x-www-form-urlencoded or application/json",
            ))
        }
    };
    let mut params = HashMap::new();
    for (k, v) in pairs {
        if k != "grant_type" && k != "assertion" {
            let shown: String = k
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            return Err(GrantError::InvalidRequest(format!(
                "unknown parameter \"{shown}\""
            )));
        }
        if params.insert(k.clone(), v).is_some() {
            return Err(GrantError::InvalidRequest(format!(
                "parameter \"{k}\" given more than once"
            )));
        }
    }
    Ok(params)
}

/// `POST /n2n/auth/v1/accesstoken`. Every request, issued or refused, gets an audit record,
/// durable before the answer leaves.
#[utoipa::path(post, path = TOKEN_PATH, tag = "oauth", operation_id = "nuts_token",
    summary = "Token endpoint (RFC 7523 JWT bearer grant, Nuts RFC003)",
    request_body(description = "`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion=<JWT>`, \
        only these two parameters, each once; as a form or as a JSON object of strings",
        content(("application/x-www-form-urlencoded"), ("application/json"))),
    responses(
        (status = 200, description = "A token was issued", body = crate::oauth::TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `invalid_scope`, `unsupported_grant_type` (RFC 6749 §5.2)", body = super::error::ErrorBody),
        (status = 401, description = "`invalid_client`: the signer cannot be authenticated", body = super::error::ErrorBody),
        (status = 429, description = "Rate limit per requester; `Retry-After`", body = super::error::ErrorBody),
        (status = 503, description = "The store is unavailable (no audit record can be written)", body = super::error::ErrorBody),
    ))]
pub async fn token(
    State(state): State<Arc<AppState>>,
    cert: Option<axum::Extension<crate::tls::ClientCert>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let response = token_audited(&state, cert.map(|c| c.0), headers, body).await;
    let status = response.status().as_u16();
    let decision = if status == 200 {
        "permit"
    } else if status >= 500 {
        "error"
    } else {
        "deny"
    };
    if status == 200 {
        state.metrics.token_issued();
    }
    state.metrics.request("token", decision, status);
    state.metrics.token_latency.observe(started.elapsed());
    response
}

/// Who a grant claims to be from and for which purpose (unverified: for the audit record of a
/// refused grant).
#[derive(Default)]
struct Claimed {
    requester: String,
    purpose: String,
}

async fn token_audited(
    state: &Arc<AppState>,
    cert: Option<crate::tls::ClientCert>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let time = crate::audit::audit_time(state.clock.now());
    let live = state.live.get();
    let mut claimed = Claimed::default();
    let headers_cert = cert.as_ref().map(crate::audit::AuditCert::of);
    let outcome = match crate::http::read_body(body, live.max_body_bytes, live.client_timeout).await
    {
        Ok(bytes) => issue(state, cert.as_ref(), &headers, &bytes, &mut claimed).await,
        Err(e) => Err(e.into()),
    };
    // The audit record, built once from the outcome.
    let record =
        |decision: &str, rule: String, status: u16, issued: Option<&crate::oauth::Issued>| {
            let ctx = issued.map(|i| &i.ctx);
            AuditRecord {
                time: time.clone(),
                request_id: request_id.clone(),
                kind: "token".into(),
                requester: ctx
                    .map_or_else(|| claimed.requester.clone(), |c| c.record.requester.clone()),
                user: ctx.and_then(|c| c.user.as_ref()).map(|u| AuditUser {
                    uzi: u.uzi.clone(),
                    name: u.name.clone(),
                    role: u.role.clone(),
                }),
                purpose: ctx.map_or_else(|| claimed.purpose.clone(), |c| c.record.purpose.clone()),
                bsn: ctx.map(|c| c.record.bsn.clone()),
                method: "POST".into(),
                path: TOKEN_PATH.into(),
                decision: decision.into(),
                rule,
                status,
                upstream_status: None,
                client_cert: headers_cert.clone(),
                jwt: None,
                custodian: None,
                trace: None,
            }
        };
    let unavailable = |e: &crate::store::StoreError| {
        tracing::error!(error = %e, request_id, "audit log unavailable: refusing to answer");
        ApiError::Grant(GrantError::Unavailable(e.to_string())).into_response()
    };
    match outcome {
        Ok(issued) => {
            let record = record("permit", "token-issued".into(), 200, Some(&issued));
            // The jti, the token and this record are committed together (one group commit).
            match state
                .writer
                .write_grant(issued.jti, issued.ctx.record.clone(), record)
                .await
            {
                Ok(true) => {
                    state.tokens.activate(issued.ctx);
                    (
                        StatusCode::OK,
                        [
                            (header::CACHE_CONTROL, "no-store"),
                            (header::PRAGMA, "no-cache"),
                        ],
                        Json(issued.response),
                    )
                        .into_response()
                }
                // The writer recorded the refusal as a replay.
                Ok(false) => ApiError::Grant(GrantError::Replay).into_response(),
                Err(e) => unavailable(&e),
            }
        }
        Err(e) => {
            let rule = e.to_string();
            let response = e.into_response();
            let record = record("deny", rule, response.status().as_u16(), None);
            match state.writer.write(record).await {
                Ok(()) => response,
                Err(e) => unavailable(&e),
            }
        }
    }
}

async fn issue(
    state: &AppState,
    cert: Option<&crate::tls::ClientCert>,
    headers: &HeaderMap,
    bytes: &[u8],
    claimed: &mut Claimed,
) -> Result<crate::oauth::Issued, ApiError> {
    let params = token_params(&crate::http::media_type(headers), bytes)?;
    match params.get("grant_type").map(String::as_str) {
        None => return Err(GrantError::InvalidRequest("grant_type is missing".into()).into()),
        Some(JWT_BEARER) => {}
        Some(_) => return Err(GrantError::UnsupportedGrantType.into()),
    }
    let assertion = params
        .get("assertion")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| GrantError::InvalidRequest("assertion is missing".into()))?;
    // For the audit record of a refused grant: who it claims to be from (unverified).
    if let Ok(jws) = crate::jose::parse(assertion, &crate::jose::GRANT_ALGS) {
        let claim = |k: &str| {
            jws.claims
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(256)
                .collect::<String>()
        };
        claimed.requester = claim("iss");
        claimed.purpose = claim("purposeOfUse");
    }
    Ok(state.tokens.issue(assertion, cert).await?)
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth",
    operation_id = "authorization_server_metadata",
    summary = "Authorization server metadata (RFC 8414)",
    responses((status = 200, description = "RFC 8414 metadata plus `custodian_dids`: a JSON object", content_type = "application/json")))]
pub async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    let issuer = state
        .config
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "grant_types_supported": [JWT_BEARER],
        "token_endpoint_auth_methods_supported": ["none"],
        "token_endpoint_auth_signing_alg_values_supported": crate::jose::GRANT_ALGS,
        "response_types_supported": [],
        "custodian_dids": state.tokens.custodians,
    }))
    .into_response()
}

/// `POST /internal/auth/v1/accesstoken/introspect` (RFC 7662): always 200.
#[utoipa::path(post, path = "/internal/auth/v1/accesstoken/introspect", tag = "oauth",
    operation_id = "introspect_token",
    summary = "Token introspection (RFC 7662, nuts-node field names)",
    request_body(description = "`token=<access token>` and optionally `token_type_hint`",
        content(("application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "`{\"active\": false}`, or `active: true` with `iss`, `sub`, `aud`, `exp`, `iat`, \
            `service`, `vcs`, `subject`, optional `cnf`, and the user (`uzi`, `username`, `user_role`, \
            `initials`, `family_name`, `email`): a JSON object", content_type = "application/json"),
        (status = 400, description = "Malformed request", body = super::error::ErrorBody),
        (status = 415, description = "Not a form", body = super::error::ErrorBody),
    ))]
pub async fn introspect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if crate::http::media_type(&headers) != "application/x-www-form-urlencoded" {
        return Err(ApiError::UnsupportedMediaType(
            "application/x-www-form-urlencoded",
        ));
    }
    let bytes = crate::http::read_body(body, 16 * 1024, state.live.get().client_timeout).await?;
    let mut token = None;
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "token" if token.is_none() => token = Some(v.into_owned()),
            "token" => {
                return Err(ApiError::BadRequest(
                    "parameter \"token\" given more than once".into(),
                ))
            }
            "token_type_hint" => {}
            _ => {
                return Err(ApiError::BadRequest(
                    "unknown parameter (only token and token_type_hint)".into(),
                ))
            }
        }
    }
    let token = token.ok_or_else(|| ApiError::BadRequest("token is missing".into()))?;
    let inactive = || Json(json!({"active": false})).into_response();
    let ctx = match state.tokens.lookup(&token).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return Ok(inactive()),
        Err(e) => {
            tracing::warn!(error = %e, "introspection: store unavailable; answering inactive");
            return Ok(inactive());
        }
    };
    let r = &ctx.record;
    let mut body = json!({
        "active": true,
        "iss": r.custodian,
        "sub": r.requester,
        "aud": state.tokens.audience,
        "exp": r.expires_at,
        "iat": r.issued_at,
        "service": r.purpose,
        "vcs": r.credential_ids,
        "subject": r.bsn.to_urn(),
    });
    if let (Some(x5t), Some(m)) = (&r.cnf_x5t_s256, body.as_object_mut()) {
        // RFC 8705 §3.2: the certificate the token is bound to.
        m.insert("cnf".into(), json!({"x5t#S256": x5t}));
    }
    if let Some(u) = &ctx.user {
        let m = body.as_object_mut().map(|m| {
            m.insert("uzi".into(), json!(u.uzi));
            m.insert("username".into(), json!(u.name));
            m.insert("user_role".into(), json!(u.role));
            for (k, v) in [
                ("initials", &u.initials),
                ("family_name", &u.family_name),
                ("email", &u.email),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
        });
        debug_assert!(m.is_some());
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The header in which a reverse proxy that terminated the client's mutual TLS passes the
/// verified client certificate to the verify endpoint: URL-encoded PEM, as nginx's
/// `$ssl_client_escaped_cert`.
pub const CLIENT_CERT_HEADER: &str = "x-client-cert";

/// `HEAD|GET /internal/auth/v1/accesstoken/verify`: 200 for a live Bearer token, 403 otherwise.
/// A token bound to a client certificate (RFC 8705) is 200 only when the request names that
/// certificate in `X-Client-Cert` (nginx: `proxy_set_header X-Client-Cert
/// $ssl_client_escaped_cert;`): the proxy in front verified the client's certificate, this
/// endpoint checks it is the token's.
#[utoipa::path(get, path = "/internal/auth/v1/accesstoken/verify", tag = "oauth",
    operation_id = "verify_token",
    summary = "Is this Bearer token live? (for nginx `auth_request`)",
    params(("Authorization" = String, Header, description = "`Bearer <access token>`"),
        ("X-Client-Cert" = Option<String>, Header, description = "URL-encoded PEM of the client certificate the proxy in front verified (RFC 8705 bound tokens)")),
    responses((status = 200, description = "Live (and, if bound, bound to that certificate)"),
        (status = 403, description = "Missing, unknown, expired, ended or wrongly bound")))]
pub async fn verify(State(state): State<Arc<AppState>>, headers: HeaderMap) -> StatusCode {
    let Ok(token) = crate::http::bearer(&headers) else {
        return StatusCode::FORBIDDEN;
    };
    let ctx = match state.tokens.lookup(token).await {
        Ok(Some(ctx)) => ctx,
        _ => return StatusCode::FORBIDDEN,
    };
    let Some(bound) = &ctx.record.cnf_x5t_s256 else {
        return StatusCode::OK;
    };
    let presented = headers
        .get(CLIENT_CERT_HEADER)
        .and_then(|v| crate::tls::x5t_s256_of_escaped_pem(v.as_bytes()));
    if presented.as_deref() == Some(bound.as_str()) {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}

/// `HEAD /internal/auth/v1/accesstoken/verify`: [`verify`], its own operation in the document.
#[utoipa::path(head, path = "/internal/auth/v1/accesstoken/verify", tag = "oauth",
    operation_id = "verify_token_head",
    summary = "Is this Bearer token live? (for nginx `auth_request`, without a body)",
    params(("Authorization" = String, Header, description = "`Bearer <access token>`"),
        ("X-Client-Cert" = Option<String>, Header, description = "URL-encoded PEM of the client certificate the proxy in front verified (RFC 8705 bound tokens)")),
    responses((status = 200, description = "Live (and, if bound, bound to that certificate)"),
        (status = 403, description = "Missing, unknown, expired, ended or wrongly bound")))]
pub async fn verify_head(state: State<Arc<AppState>>, headers: HeaderMap) -> StatusCode {
    verify(state, headers).await
}
