//! The proxy: everything on the public listener that is not the token endpoint or metadata is a
//! request for the source system. It reaches the source system only with a live token and a
//! [`Permit`] from the purpose's policy, and its answer reaches the client only when every
//! resource in it belongs to the token's patient. Every request is audited, durably, before the
//! answer leaves.
//!
//! **Invariant:** only this module talks to the upstream; [`forward`] takes a [`Permit`], which
//! only the policy engine makes.

pub mod client;
pub mod fhir;
pub mod hub_source;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request};
use axum::response::{IntoResponse, Response};

use crate::audit::{redact_bsns, AuditRecord};
use crate::bsn::Bsn;
use crate::oauth::TokenContext;
use crate::policy::request::{decide, Decision, Permit, RequestShape, Rule, TokenScope};
use crate::policy::ResponsePolicy;
use crate::server::error::ProxyError;
use crate::server::AppState;

/// Client headers passed on to the source system; every other header is dropped.
const PASSED_REQUEST_HEADERS: [HeaderName; 5] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::ACCEPT_LANGUAGE,
];
/// Source-system headers passed back to the client.
const PASSED_RESPONSE_HEADERS: [HeaderName; 3] = [
    header::ETAG,
    header::LAST_MODIFIED,
    header::CONTENT_LANGUAGE,
];

/// What the client receives when all went well.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: axum::body::Bytes,
}

/// The request path, top-down. Each step may end the request with a [`ProxyError`]; whatever
/// the outcome, the audit record is written (durably) before the answer leaves.
pub async fn handle(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    // trace: a request id for the audit log, the source system and the client.
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    // The query without a source token (`jwt=`): that is a credential, never logged or forwarded.
    let query = parts.uri.query().map(|q| {
        if q.contains("jwt") {
            without_param(q, "jwt")
        } else {
            q.to_owned()
        }
    });
    let target = match &query {
        Some(q) if !q.is_empty() => format!("{}?{q}", parts.uri.path()),
        _ => parts.uri.path().to_owned(),
    };
    let mut record = AuditRecord {
        time: crate::server::audit_time(state.clock.now()),
        request_id: request_id.clone(),
        kind: "proxy".into(),
        requester: String::new(),
        user: None,
        purpose: String::new(),
        bsn: String::new(),
        method: parts.method.to_string(),
        path: redact_bsns(&target).chars().take(2048).collect(),
        decision: "deny".into(),
        rule: String::new(),
        status: 0,
        upstream_status: None,
    };
    let outcome = run(
        &state,
        &parts,
        query.as_deref(),
        body,
        &request_id,
        &mut record,
    )
    .await;
    let hub_format = record.kind == HUB_SOURCE_KIND;
    let response = match outcome {
        Ok(answer) => {
            record.decision = "permit".into();
            let mut response = Response::new(Body::from(answer.body));
            *response.status_mut() = axum::http::StatusCode::from_u16(answer.status)
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            *response.headers_mut() = answer.headers;
            response
        }
        Err(e) => {
            if record.rule.is_empty() {
                record.rule = e.audit_reason();
            }
            if e.is_error() {
                record.decision = "error".into();
                let upstream_failed = matches!(
                    e,
                    ProxyError::UpstreamDown
                        | ProxyError::UpstreamTimeout
                        | ProxyError::UpstreamInvalid(_)
                ) || matches!(e, ProxyError::UpstreamStatus(s) if s >= 500);
                if upstream_failed {
                    state.metrics.upstream_error();
                }
            }
            if hub_format {
                e.into_hub_response()
            } else {
                e.into_response()
            }
        }
    };
    record.status = response.status().as_u16();
    let (decision, status) = (record.decision.clone(), record.status);
    // audit: durable before the answer leaves; no audit, no answer.
    if let Err(e) = state.audit.write(record).await {
        tracing::error!(error = %e, request_id, "audit log unavailable: refusing to answer");
        state.metrics.request("proxy", "error", 503);
        return if hub_format {
            ProxyError::Unavailable.into_hub_response()
        } else {
            ProxyError::Unavailable.into_response()
        };
    }
    state.metrics.request("proxy", &decision, status);
    state.metrics.proxy_latency.observe(started.elapsed());
    let mut response = response;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The audit `kind` of requests that carry a Hub source token (their errors are Hub XML).
pub const HUB_SOURCE_KIND: &str = "hub-source";

/// `query` minus every `name=` parameter, other parameters as sent.
fn without_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            url::form_urlencoded::parse(key.as_bytes())
                .next()
                .map_or(key != name, |(k, _)| k != name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The policy a request is decided by (shared, never copied per request).
enum Scope {
    /// A purposeOfUse policy (our access tokens).
    Nuts(Arc<crate::policy::Policy>),
    /// A hub-source policy (Hub source tokens).
    Hub(Arc<crate::policy::SourcePolicy>),
}

impl Scope {
    fn rules(&self) -> &[Rule] {
        match self {
            Scope::Nuts(p) => &p.rules,
            Scope::Hub(p) => &p.rules,
        }
    }

    fn response(&self) -> &ResponsePolicy {
        match self {
            Scope::Nuts(p) => &p.response,
            Scope::Hub(p) => &p.response,
        }
    }
}

/// Authenticates the request: our own access token, or (when `[hub_source]` is configured) a
/// Hub source token as Bearer or `?jwt=`. Returns the context and the policy that decides.
async fn authenticate(
    state: &AppState,
    parts: &axum::http::request::Parts,
    record: &mut AuditRecord,
) -> Result<(Arc<TokenContext>, Scope), ProxyError> {
    let bearer = bearer(&parts.headers);
    // Only a query that mentions `jwt` can carry a source token (the fast path skips parsing).
    let from_query: Vec<String> = match parts.uri.query() {
        Some(q) if q.contains("jwt") => url::form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == "jwt")
            .map(|(_, v)| v.into_owned())
            .collect(),
        _ => Vec::new(),
    };
    let policies = state.policies.borrow().clone();
    if let (Some(settings), Some(verifier)) = (&state.config.hub_source, &state.hub_source) {
        let jwt = match (bearer, from_query.as_slice()) {
            (None, [jwt]) => Some(jwt.as_str()),
            (Some(b), []) if hub_source::looks_like_jwt(b) => Some(b),
            (Some(_), [_, ..]) | (None, [_, _, ..]) => {
                record.kind = HUB_SOURCE_KIND.into();
                return Err(ProxyError::Malformed("more than one credential"));
            }
            _ => None,
        };
        if let Some(jwt) = jwt {
            record.kind = HUB_SOURCE_KIND.into();
            let now = state.clock.now().unix_timestamp();
            let ctx = hub_source::context(verifier, &settings.policy, jwt, now)
                .map_err(|e| ProxyError::InvalidSourceToken(e.to_string()))?;
            record.fill_from_token(&ctx);
            let policy = policies
                .source(&settings.policy)
                .ok_or(ProxyError::Refused)?;
            return Ok((Arc::new(ctx), Scope::Hub(policy.clone())));
        }
    }
    if !from_query.is_empty() {
        return Err(ProxyError::InvalidToken);
    }
    let token = bearer.ok_or(ProxyError::InvalidToken)?;
    let ctx = state
        .tokens
        .lookup(token)
        .await
        .map_err(|_| ProxyError::Unavailable)?
        .ok_or(ProxyError::InvalidToken)?;
    record.fill_from_token(&ctx);
    let policy = policies
        .get(&ctx.record.purpose)
        .ok_or(ProxyError::Refused)?;
    Ok((ctx, Scope::Nuts(policy.clone())))
}

async fn run(
    state: &AppState,
    parts: &axum::http::request::Parts,
    query: Option<&str>,
    body: Body,
    request_id: &str,
    record: &mut AuditRecord,
) -> Result<Answer, ProxyError> {
    // limits: only origin-form targets over HTTP/1 (no absolute-form, no CONNECT tunnels), and
    // only Content-Length framed bodies: a request with Transfer-Encoding is refused, which also
    // refuses every Content-Length + Transfer-Encoding smuggling attempt (hyper drops the
    // Content-Length of such a request before we see it).
    let http1 = parts.version < axum::http::Version::HTTP_2;
    if (http1 && (parts.uri.scheme().is_some() || parts.uri.authority().is_some()))
        || parts.method == Method::CONNECT
    {
        return Err(ProxyError::Malformed(
            "only origin-form request targets are accepted",
        ));
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without a Host header, or with more than one, is a 400.
    let hosts = parts.headers.get_all(header::HOST).iter().count();
    if (parts.version == axum::http::Version::HTTP_11 && hosts != 1) || hosts > 1 {
        return Err(ProxyError::Malformed("exactly one Host header is required"));
    }
    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(ProxyError::Malformed("Transfer-Encoding on a request"));
    }
    // authenticate: a live Bearer token (not expired, its credentials not revoked), or a Hub
    // source token.
    let (ctx, scope) = authenticate(state, parts, record).await?;
    // limits: the body, read whole up to the configured size.
    let bytes = tokio::time::timeout(
        state.live().client_timeout,
        axum::body::to_bytes(body, state.live().max_body_bytes),
    )
    .await
    .map_err(|_| ProxyError::ClientTimeout)?
    .map_err(|_| ProxyError::TooLarge)?;
    // authorize: the purpose's policy decides; a permit is the only way forward.
    let permit = match authorize(scope.rules(), parts, query, &bytes, &ctx) {
        // Another replica may have bound Patients to this token: look once more with those.
        Err(ProxyError::Denied(_))
            if state
                .tokens
                .refresh_patients(&ctx)
                .await
                .map_err(|_| ProxyError::Unavailable)? =>
        {
            authorize(scope.rules(), parts, query, &bytes, &ctx)?
        }
        other => other?,
    };
    record.rule = permit.rule().to_owned();
    // fail closed: while the audit log cannot be written, nothing reaches the source system.
    if !state.audit.is_healthy() {
        return Err(ProxyError::Unavailable);
    }
    // forward: to the source system, with context headers from the token only.
    let upstream = forward(state, &permit, parts, query, bytes, &ctx, request_id).await?;
    record.upstream_status = Some(upstream.status);
    // check response: every resource must belong to the token's patient.
    check_response(state, &permit, scope.response(), &ctx, upstream, record).await
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn authorize(
    rules: &[Rule],
    parts: &axum::http::request::Parts,
    query: Option<&str>,
    body: &[u8],
    ctx: &TokenContext,
) -> Result<Permit, ProxyError> {
    let bsn = Bsn::parse(&ctx.record.bsn).map_err(|_| ProxyError::Refused)?;
    let allowed = ctx.allowed_patients();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    // The policy reads a form body only on POST; a body on any other method would reach the
    // source system unchecked.
    if !body.is_empty() && parts.method != Method::POST {
        return Err(ProxyError::Malformed(
            "a request body is only accepted with POST",
        ));
    }
    if !body.is_empty() && !is_form {
        return Err(ProxyError::Malformed(
            "only form-encoded request bodies are accepted",
        ));
    }
    let shape = RequestShape {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query,
        form: (parts.method == Method::POST).then_some(body),
    };
    match decide(
        rules,
        &shape,
        &TokenScope {
            bsn: &bsn,
            allowed_patients: &allowed,
        },
    ) {
        Decision::Permit(p) => Ok(p),
        Decision::Deny(reason) => Err(ProxyError::Denied(reason)),
    }
}

struct Upstream {
    status: u16,
    headers: HeaderMap,
    content_type: Option<HeaderValue>,
    body: axum::body::Bytes,
}

async fn forward(
    state: &AppState,
    permit: &Permit,
    parts: &axum::http::request::Parts,
    query: Option<&str>,
    body: axum::body::Bytes,
    ctx: &TokenContext,
    request_id: &str,
) -> Result<Upstream, ProxyError> {
    let live = state.live();
    let base = live.upstream.as_ref().ok_or(ProxyError::UpstreamDown)?;
    // The query as sent, minus parameters the policy checked against the token (a BSN never
    // travels in a URL we send).
    let mut query = query.unwrap_or_default().to_owned();
    for name in permit.strip_query() {
        query = without_param(&query, name);
    }
    let base = base.as_str().trim_end_matches('/');
    let target = if query.is_empty() {
        format!("{base}{}", parts.uri.path())
    } else {
        format!("{base}{}?{query}", parts.uri.path())
    };
    let uri = axum::http::Uri::try_from(target).map_err(|_| ProxyError::UpstreamDown)?;
    let mut headers = HeaderMap::new();
    for name in PASSED_REQUEST_HEADERS {
        if let Some(v) = parts.headers.get(&name) {
            headers.insert(name, v.clone());
        }
    }
    let context = [
        ("x-poortwachter-requester", ctx.record.requester.as_str()),
        ("x-poortwachter-purpose", ctx.record.purpose.as_str()),
        ("x-poortwachter-subject", ctx.record.bsn.as_str()),
        (
            "x-poortwachter-user",
            ctx.user.as_ref().map_or("", |u| u.uzi.as_str()),
        ),
        ("x-poortwachter-request-id", request_id),
    ];
    for (name, value) in context {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let mut request = axum::http::Request::new(http_body_util::Full::new(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    // One time limit for the whole exchange: answer head and body.
    let deadline = tokio::time::Instant::now() + live.upstream_timeout;
    let response = tokio::time::timeout_at(deadline, state.upstream.get().request(request))
        .await
        .map_err(|_| ProxyError::UpstreamTimeout)?
        .map_err(|_| ProxyError::UpstreamDown)?;
    let status = response.status().as_u16();
    let mut passed = HeaderMap::new();
    for name in PASSED_RESPONSE_HEADERS {
        if let Some(v) = response.headers().get(&name) {
            passed.insert(name, v.clone());
        }
    }
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let limit = live.max_upstream_body_bytes;
    let mut body = response.into_body();
    let mut buf = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(deadline, http_body_util::BodyExt::frame(&mut body))
            .await
            .map_err(|_| ProxyError::UpstreamTimeout)?;
        match frame {
            Some(Ok(frame)) => {
                let Ok(chunk) = frame.into_data() else {
                    continue; // trailers
                };
                if buf.len() + chunk.len() > limit {
                    return Err(ProxyError::UpstreamInvalid("upstream-answer-too-large"));
                }
                buf.extend_from_slice(&chunk);
            }
            Some(Err(_)) => return Err(ProxyError::UpstreamDown),
            None => break,
        }
    }
    Ok(Upstream {
        status,
        headers: passed,
        content_type,
        body: buf.into(),
    })
}

async fn check_response(
    state: &AppState,
    permit: &Permit,
    response: &ResponsePolicy,
    ctx: &TokenContext,
    upstream: Upstream,
    record: &mut AuditRecord,
) -> Result<Answer, ProxyError> {
    if !(200..300).contains(&upstream.status) {
        // The source system's error detail stays here; the client learns only the status.
        return Err(ProxyError::UpstreamStatus(upstream.status));
    }
    if response.format == crate::policy::ResponseFormat::Passthrough {
        let mut headers = upstream.headers;
        if let Some(ct) = upstream.content_type {
            headers.insert(header::CONTENT_TYPE, ct);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(Answer {
            status: upstream.status,
            headers,
            body: upstream.body,
        });
    }
    let non_patient = &response.non_patient_resources;
    let learned = fhir::check_answer(&upstream.body, &ctx.record.bsn, &ctx.allowed_patients(), non_patient, permit.binds_patients())
        .map_err(|m| {
            record.rule = format!("{}; withheld: {}", permit.rule(), m.0);
            if m.unparseable() {
                return ProxyError::UpstreamInvalid("upstream-answer-not-fhir-json");
            }
            tracing::warn!(reason = %m.0, "answer of the source system withheld: not of the token's patient");
            ProxyError::Refused
        })?;
    state
        .tokens
        .bind_patients(ctx, &learned)
        .await
        .map_err(|_| ProxyError::Unavailable)?;
    let mut headers = upstream.headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Answer {
        status: upstream.status,
        headers,
        body: upstream.body,
    })
}
