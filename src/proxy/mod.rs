//! The proxy: every request on the public listener that is not the token endpoint or metadata is
//! a request for the source system. It reaches the source system only with a principal from the
//! authenticator mounted at its path and a [`Permit`] from that principal's policy, and its answer
//! reaches the client only when it passes the policy's response check. Every request is audited,
//! durably, before the answer leaves.
//!
//! The path, top-down in [`handle`] and [`Proxy::run`]:
//!
//! ```text
//! trace → route (authenticator by path prefix) → limits → authenticate → body → authorize →
//! forward → check response → audit (built once from the outcome) → answer
//! ```
//!
//! **Invariant:** only this module talks to the upstream, and [`forward::forward`] takes a
//! [`Permit`], which only the policy engine makes and which holds the request it allowed.

pub mod client;
mod error;
pub mod fhir;
mod forward;

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request};
use axum::response::Response;
use tokio::sync::watch;

use crate::audit::{redact_bsns, AuditCert, AuditJwt, AuditRecord, AuditUser};
use crate::authn::{ErrorFormat, Mount, Mounts, Principal, Proof};
use crate::clock::Clock;
use crate::config::Live;
use crate::metrics::Metrics;
use crate::oauth::TokenService;
use crate::policy::request::{authorize, without_param, Permit, Refusal, TokenScope};
use crate::policy::{PolicyRef, PolicySet};
use crate::store::writer::Writer;
pub use error::ProxyError;
use forward::Upstream;

/// Turns a refusal into the client's answer in the authenticator's format (the server's one
/// place for HTTP statuses: [`crate::server::error::proxy_answer`]).
pub type Render = fn(&ProxyError, ErrorFormat) -> Response;

/// What the proxy works with, shared by every request.
pub struct Proxy {
    /// The authenticators by path prefix.
    pub mounts: Mounts,
    /// The current policies (replaced as a whole on reload).
    pub policies: watch::Receiver<Arc<PolicySet>>,
    /// Access tokens: their patient bindings.
    pub tokens: Arc<TokenService>,
    /// The audit log's writer.
    pub writer: Writer,
    /// The source system's client.
    pub upstream: client::UpstreamClient,
    /// Body and time limits, the upstream.
    pub live: Live,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// What the client receives when all went well.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: axum::body::Bytes,
}

/// What happened to one request: everything its audit record says.
struct Outcome {
    principal: Option<Principal>,
    /// The rule that permitted it (with what the response check withheld, if it did).
    rule: Option<String>,
    upstream_status: Option<u16>,
    result: Result<Answer, ProxyError>,
}

impl Outcome {
    fn refused(principal: Option<Principal>, e: ProxyError) -> Self {
        Self {
            principal,
            rule: None,
            upstream_status: None,
            result: Err(e),
        }
    }
}

/// The request path, top-down. Whatever the outcome, the audit record is written (durably)
/// before the answer leaves; without it, the client gets 503.
pub async fn handle(proxy: &Proxy, request: Request<Body>, render: Render) -> Response {
    // trace: a request id for the audit log, the source system and the client.
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let time = crate::audit::audit_time(proxy.clock.now());
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
    // route: the authenticator mounted at this path decides who asks (configuration, never a
    // trial of one after another).
    let mount = proxy.mounts.route(parts.uri.path());
    let (format, kind) = mount.map_or((ErrorFormat::Fhir, "proxy"), |(m, _)| {
        (m.authenticator.error_format(), m.authenticator.audit_kind())
    });
    // The network's own request and correlation ids (MedMij), kept and echoed.
    let trace = mount.and_then(|(m, _)| m.authenticator.trace(&parts));
    let outcome = match mount {
        Some((mount, path)) => {
            let path = path.to_owned();
            proxy
                .run(&parts, mount, path, query, body, &request_id)
                .await
        }
        None => Outcome::refused(None, ProxyError::Unauthenticated("no-authenticator".into())),
    };
    let (response, decision, rule) = match outcome.result {
        Ok(answer) => {
            let mut response = Response::new(Body::from(answer.body));
            *response.status_mut() = axum::http::StatusCode::from_u16(answer.status)
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            *response.headers_mut() = answer.headers;
            (response, "permit", outcome.rule.unwrap_or_default())
        }
        Err(e) => {
            if e.is_upstream_failure() {
                proxy.metrics.upstream_error();
            }
            let decision = if e.is_error() { "error" } else { "deny" };
            let rule = outcome.rule.unwrap_or_else(|| e.audit_reason());
            (render(&e, format), decision, rule)
        }
    };
    // audit: built once from the outcome, durable before the answer leaves; no audit, no answer.
    let status = response.status().as_u16();
    let p = outcome.principal.as_ref();
    let record = AuditRecord {
        time,
        request_id: request_id.clone(),
        kind: kind.into(),
        requester: p.map(|p| p.requester.clone()).unwrap_or_default(),
        user: p.and_then(|p| p.user.as_ref()).map(|u| AuditUser {
            uzi: u.uzi.clone(),
            name: u.name.clone(),
            role: u.role.clone(),
        }),
        purpose: p.map(|p| p.policy.clone()).unwrap_or_default(),
        bsn: p.and_then(|p| p.patient.clone()),
        method: parts.method.to_string(),
        path: redact_bsns(&target).chars().take(2048).collect(),
        decision: decision.into(),
        rule,
        status,
        upstream_status: outcome.upstream_status,
        client_cert: parts
            .extensions
            .get::<crate::tls::ClientCert>()
            .map(AuditCert::of),
        jwt: p.and_then(|p| match &p.proof {
            Proof::ZorgDomeinToken { iss, jti } => Some(AuditJwt {
                iss: iss.clone(),
                jti: jti.clone(),
            }),
            _ => None,
        }),
        custodian: None,
        trace: trace.clone(),
    };
    if let Err(e) = proxy.writer.write(record).await {
        tracing::error!(error = %e, request_id, "audit log unavailable: refusing to answer");
        proxy.metrics.request("proxy", "error", 503);
        return render(&ProxyError::Unavailable, format);
    }
    proxy.metrics.request("proxy", decision, status);
    proxy.metrics.proxy_latency.observe(started.elapsed());
    let mut response = response;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    if let Some(t) = &trace {
        echo_ids(&mut response, t);
    }
    response
}

/// Echoes a request's `MedMij-Request-ID` and `X-Correlation-ID` in its answer.
fn echo_ids(response: &mut Response, trace: &crate::audit::AuditTrace) {
    use crate::authn::medmij::{CORRELATION_ID_HEADER, REQUEST_ID_HEADER};
    for (name, value) in [
        (REQUEST_ID_HEADER, &trace.request_id),
        (CORRELATION_ID_HEADER, &trace.correlation_id),
    ] {
        if let Some(Ok(v)) = value.as_deref().map(HeaderValue::from_str) {
            response
                .headers_mut()
                .insert(axum::http::HeaderName::from_static(name), v);
        }
    }
}

impl Proxy {
    /// From the request to the answer, each step one line; the outcome says what the audit
    /// record records.
    async fn run(
        &self,
        parts: &axum::http::request::Parts,
        mount: &Mount,
        path: String,
        query: Option<String>,
        body: Body,
        request_id: &str,
    ) -> Outcome {
        // limits: only origin-form targets, one Host, no Transfer-Encoding.
        if let Err(e) = limits(parts) {
            return Outcome::refused(None, e);
        }
        // authenticate: the mount's authenticator, and nothing else, makes the principal.
        let principal = match mount
            .authenticator
            .authenticate(parts, self.clock.now().unix_timestamp())
            .await
        {
            Ok(p) => p,
            Err(e) => return Outcome::refused(None, e.into()),
        };
        // the principal's policy, which must be one for its authenticator.
        let Some(policy) = self
            .policies
            .borrow()
            .for_requests(&principal.policy, principal.authenticator)
        else {
            return Outcome::refused(Some(principal), ProxyError::Refused);
        };
        // limits: the body, read whole up to the configured size and time.
        let live = self.live.get();
        let bytes =
            match crate::http::read_body(body, live.max_body_bytes, live.client_timeout).await {
                Ok(b) => b,
                Err(e) => return Outcome::refused(Some(principal), e.into()),
            };
        if !bytes.is_empty() && !matches!(parts.method, Method::POST | Method::PUT | Method::PATCH)
        {
            return Outcome::refused(
                Some(principal),
                ProxyError::Malformed("a request body is only accepted with POST, PUT or PATCH"),
            );
        }
        // A body is checked and forwarded as it is: a coded (compressed) one could be neither.
        if !bytes.is_empty()
            && parts
                .headers
                .get_all(header::CONTENT_ENCODING)
                .iter()
                .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Outcome::refused(
                Some(principal),
                ProxyError::UnsupportedMediaType("unsupported-content-encoding"),
            );
        }
        let request = crate::policy::request::Request {
            method: parts.method.to_string(),
            path,
            query,
            media_type: crate::http::media_type(&parts.headers),
            charset: crate::http::charset(&parts.headers),
            body: bytes,
        };
        // authorize: the policy decides; a permit, holding the request, is the only way forward.
        let permit = match self.authorize(&policy, &principal, request).await {
            Ok(p) => p,
            Err(e) => return Outcome::refused(Some(principal), e),
        };
        let rule = permit.rule().to_owned();
        // no BSN in the body where the authenticator forbids one (MedMij: the token names the
        // person, the data never does).
        if mount.authenticator.refuses_bsn_in_body()
            && crate::medmij::bsn_scan::contains_bsn(permit.body())
        {
            return Outcome {
                principal: Some(principal),
                rule: Some(rule),
                upstream_status: None,
                result: Err(ProxyError::BsnInBody),
            };
        }
        // fail closed: while the audit log cannot be written, nothing reaches the source system.
        if !self.writer.is_healthy() {
            return Outcome {
                principal: Some(principal),
                rule: Some(rule),
                upstream_status: None,
                result: Err(ProxyError::Unavailable),
            };
        }
        // forward: exactly what the permit holds, with context headers from the principal only.
        let upstream = match forward::forward(
            &self.upstream,
            &live,
            &permit,
            &parts.headers,
            &principal,
            request_id,
        )
        .await
        {
            Ok(u) => u,
            Err(e) => {
                return Outcome {
                    principal: Some(principal),
                    rule: Some(rule),
                    upstream_status: None,
                    result: Err(e),
                }
            }
        };
        let upstream_status = Some(upstream.status);
        // check response: the policy's response check (for FHIR: every resource of the patient).
        let (rule, result) = match self
            .check_response(&permit, &policy, &principal, upstream, &mount.prefix)
            .await
        {
            Ok(answer) => (rule, Ok(answer)),
            Err((withheld, e)) => (
                withheld.map_or(rule, |w| format!("{}; withheld: {w}", permit.rule())),
                Err(e),
            ),
        };
        Outcome {
            principal: Some(principal),
            rule: Some(rule),
            upstream_status,
            result,
        }
    }

    /// The policy's decision; a denial is looked at once more with the patients another replica
    /// may have bound to the token meanwhile.
    async fn authorize(
        &self,
        policy: &PolicyRef,
        principal: &Principal,
        request: crate::policy::request::Request,
    ) -> Result<Permit, ProxyError> {
        let refusal = match decide(policy, principal, request) {
            Ok(permit) => return Ok(permit),
            Err(refusal) => match (refusal.malformed, refusal.body) {
                (Some(m), _) => return Err(ProxyError::Malformed(m)),
                (None, Some(b)) => return Err(b.into()),
                (None, None) => refusal,
            },
        };
        let Some(token) = &principal.token else {
            return Err(ProxyError::Denied(refusal.reason));
        };
        let learned = self
            .tokens
            .refresh_patients(token)
            .await
            .map_err(|_| ProxyError::Unavailable)?;
        if !learned {
            return Err(ProxyError::Denied(refusal.reason));
        }
        decide(policy, principal, refusal.request).map_err(|r| ProxyError::Denied(r.reason))
    }

    /// Passes a 2xx answer that the response policy accepts; otherwise the reason it was withheld
    /// (for the audit log) and the refusal.
    async fn check_response(
        &self,
        permit: &Permit,
        policy: &PolicyRef,
        principal: &Principal,
        upstream: Upstream,
        prefix: &str,
    ) -> Result<Answer, (Option<String>, ProxyError)> {
        let response = policy.response();
        if !(200..300).contains(&upstream.status) {
            // A policy may pass the source system's FHIR error answer on (what could not be
            // placed, and why); otherwise its detail stays here and the client learns the status.
            let fhir = upstream.content_type.as_ref().is_some_and(|ct| {
                ct.to_str().is_ok_and(|v| {
                    matches!(
                        crate::http::media_type_of(v).as_str(),
                        "application/fhir+json" | "application/json"
                    )
                })
            });
            if response.pass_errors && fhir && (400..600).contains(&upstream.status) {
                let mut headers = upstream.headers;
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/fhir+json"),
                );
                return Ok(Answer {
                    status: upstream.status,
                    headers,
                    body: upstream.body,
                });
            }
            return Err((None, ProxyError::UpstreamStatus(upstream.status)));
        }
        let mut headers = upstream.headers;
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // A create's Location, under our prefix instead of the source system's address.
        if let (Some(loc), Some(base)) = (&upstream.location, &self.live.get().upstream) {
            if let Some(v) = forward::public_location(loc, base, prefix) {
                headers.insert(header::LOCATION, v);
            }
        }
        if response.format == crate::policy::ResponseFormat::Passthrough {
            if let Some(ct) = upstream.content_type {
                headers.insert(header::CONTENT_TYPE, ct);
            }
            return Ok(Answer {
                status: upstream.status,
                headers,
                body: upstream.body,
            });
        }
        let Some(bsn) = &principal.patient else {
            return Err((
                Some("no patient to check the answer against".into()),
                ProxyError::Refused,
            ));
        };
        let checked = {
            let empty = HashSet::new();
            let guard = principal.token.as_ref().map(|t| t.allowed_patients());
            fhir::check_answer(
                &upstream.body,
                bsn.as_str(),
                guard.as_deref().unwrap_or(&empty),
                &response.non_patient_resources,
                permit.binds_patients(),
            )
        };
        let learned = checked.map_err(|m| {
            if m.unparseable() {
                return (Some(m.0), ProxyError::UpstreamInvalid("upstream-answer-not-fhir-json"));
            }
            tracing::warn!(reason = %m.0, "answer of the source system withheld: not of the token's patient");
            (Some(m.0), ProxyError::Refused)
        })?;
        if let Some(token) = &principal.token {
            self.tokens
                .bind_patients(token, &learned)
                .await
                .map_err(|_| (None, ProxyError::Unavailable))?;
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        );
        Ok(Answer {
            status: upstream.status,
            headers,
            body: upstream.body,
        })
    }
}

/// The policy's decision for the principal (the token's patient bindings read-locked, not copied).
fn decide(
    policy: &PolicyRef,
    principal: &Principal,
    request: crate::policy::request::Request,
) -> Result<Permit, Box<Refusal>> {
    let empty = HashSet::new();
    let guard = principal.token.as_ref().map(|t| t.allowed_patients());
    let scope = TokenScope {
        bsn: principal.patient.as_ref(),
        allowed_patients: guard.as_deref().unwrap_or(&empty),
    };
    authorize(policy.rules(), request, &scope)
}

/// Only origin-form targets over HTTP/1 (no absolute-form, no CONNECT tunnels), one Host, and only
/// Content-Length framed bodies: a request with Transfer-Encoding is refused, which also refuses
/// every Content-Length + Transfer-Encoding smuggling attempt (hyper drops the Content-Length of
/// such a request before we see it).
fn limits(parts: &axum::http::request::Parts) -> Result<(), ProxyError> {
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
    Ok(())
}
