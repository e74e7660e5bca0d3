//! `poortwachter egress`: the requesting (GP) side. The GP system sends plain FHIR requests to a
//! loopback listener; egress picks the credential a custodian issued to us for the patient,
//! obtains and caches an access token with a signed grant, attaches it, and forwards the request
//! to the custodian's proxy. The GP system never sees a token.
//!
//! The request path, top-down ([`Egress::handle`]):
//!
//! ```text
//! route (path prefix → custodian, purpose) → user (X-Poortwachter-User-*) → body (size, time
//! limit) → patient (X-Poortwachter-Bsn | Patient/_search body) → held credential (store; none:
//! refused, the custodian is never called) → token (cache; else one grant per key: single
//! flight) → forward (Authorization: Bearer, X-Poortwachter-* stripped) → on 401: drop the
//! token, one new grant, one retry (the body is held) → audit (one record, before the answer)
//! ```
//!
//! [`settings`] holds `[egress]`, [`cache`] the token cache, [`input`] what is read from the
//! GP system's request. Statuses and `OperationOutcome` bodies come from
//! `server::error::egress_answer`; the listener is `server::egress_api`.
//!
//! **Invariants:** a token is never logged, stored or answered to the GP system; no request
//! reaches a custodian without a held credential for its patient; every request is audited
//! before it is answered (an audit log that cannot be written refuses the request).

pub mod cache;
pub mod input;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};
use axum::response::Response;
use http_body_util::Full;

use crate::audit::AuditRecord;
use crate::audit::{audit_time, redact_bsns, AuditUser};
use crate::bsn::Bsn;
use crate::clock::Clock;
use crate::identity::Identity;
use crate::oauth::request::{self, GrantInput, TokenRequestError, UserIdentity};
use crate::proxy::client::UpstreamClient;
use crate::store::writer::Writer;
use crate::store::{HeldCredential, Store};
use cache::{Cached, Key, TokenCache};
use settings::{EgressSettings, Route};

/// Why egress did not pass a request, or passed no answer: the egress boundary's error. Its
/// status and `OperationOutcome` are decided in `server::error::egress_answer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressError {
    /// No route's prefix matches the path.
    NoRoute,
    /// A required user header is missing (its name).
    MissingUser(String),
    /// A header's value is unusable (its name).
    BadHeader(String),
    /// No patient named.
    MissingBsn,
    /// The BSN does not pass the 11-check.
    InvalidBsn,
    /// Two different BSNs (header and search).
    BsnMismatch,
    /// The request cannot be forwarded as written.
    Malformed,
    /// The request body is over the limit.
    TooLarge,
    /// The body did not arrive in time.
    ClientTimeout,
    /// We hold no credential for this patient, purpose and custodian.
    NoCredential {
        /// purposeOfUse.
        purpose: String,
        /// The custodian's DID.
        custodian: String,
    },
    /// The custodian refused the grant (its `error_description`, made printable).
    GrantRefused(String),
    /// The token endpoint answered 429: too many grants from this practice (its description).
    GrantRateLimited(String),
    /// The token endpoint cannot be reached, failed or answered no token.
    TokenEndpointDown,
    /// The token endpoint did not answer in time.
    TokenEndpointTimeout,
    /// The custodian's proxy cannot be reached.
    CustodianDown,
    /// The custodian's proxy did not answer in time.
    CustodianTimeout,
    /// The custodian answered 401 to a token fresh from its own endpoint.
    TokenNotAccepted,
    /// The store or the audit log is unavailable.
    Unavailable,
}

impl EgressError {
    /// The reason the audit log records.
    #[must_use]
    pub fn audit_reason(&self) -> String {
        match self {
            EgressError::NoRoute => "no-route".into(),
            EgressError::MissingUser(h) => format!("missing-header {h}"),
            EgressError::BadHeader(h) => format!("invalid-header {h}"),
            EgressError::MissingBsn => "missing-bsn".into(),
            EgressError::InvalidBsn => "invalid-bsn".into(),
            EgressError::BsnMismatch => "bsn-mismatch".into(),
            EgressError::Malformed => "malformed".into(),
            EgressError::TooLarge => "request-too-large".into(),
            EgressError::ClientTimeout => "client-timeout".into(),
            EgressError::NoCredential { .. } => "no-credential-held".into(),
            EgressError::GrantRefused(d) => format!("grant-refused: {d}"),
            EgressError::GrantRateLimited(_) => "grant-rate-limited".into(),
            EgressError::TokenEndpointDown => "token-endpoint-unreachable".into(),
            EgressError::TokenEndpointTimeout => "token-endpoint-timeout".into(),
            EgressError::CustodianDown => "custodian-unreachable".into(),
            EgressError::CustodianTimeout => "custodian-timeout".into(),
            EgressError::TokenNotAccepted => "token-not-accepted".into(),
            EgressError::Unavailable => "store-unavailable".into(),
        }
    }
}

impl From<crate::http::BodyError> for EgressError {
    fn from(e: crate::http::BodyError) -> Self {
        match e {
            crate::http::BodyError::TooLarge(_) => EgressError::TooLarge,
            crate::http::BodyError::Timeout => EgressError::ClientTimeout,
        }
    }
}

/// Hop-by-hop headers and those egress sets itself: never forwarded.
const NOT_FORWARDED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "content-length",
];

/// What egress needs at run time.
pub struct Egress {
    settings: EgressSettings,
    identity: Arc<Identity>,
    store: Store,
    writer: Writer,
    cache: TokenCache,
    tokens: reqwest::Client,
    upstream: UpstreamClient,
    clock: Arc<dyn Clock>,
    max_body_bytes: usize,
    client_timeout: Duration,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("routes", &self.settings.routes.len())
            .finish_non_exhaustive()
    }
}

/// Why egress cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EgressStartError {
    /// A TLS file of `[egress]`.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The HTTP client.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What a forwarded request came back with.
enum Forwarded {
    /// The custodian's answer.
    Answer(hyper::Response<hyper::body::Incoming>),
    /// 401: the token was not accepted.
    Unauthorized,
}

impl Egress {
    /// Builds egress from validated settings (reads the TLS files: a bad one stops start-up).
    pub fn new(
        settings: EgressSettings,
        identity: Arc<Identity>,
        store: Store,
        clock: Arc<dyn Clock>,
        max_body_bytes: usize,
        client_timeout: Duration,
    ) -> Result<Self, EgressStartError> {
        let tls = crate::tls::client_config(
            &settings.tls,
            &settings::EGRESS_FILES,
            crate::tls::Roots::ConfiguredElseSystem,
        )?;
        let tokens = reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| EgressStartError::Client(e.to_string()))?;
        let upstream = UpstreamClient::with_tls(Some(tls));
        let writer = Writer::spawn(store.clone())?;
        Ok(Self {
            cache: TokenCache::new(clock.clone()),
            settings,
            identity,
            store,
            writer,
            tokens,
            upstream,
            clock,
            max_body_bytes,
            client_timeout,
        })
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &EgressSettings {
        &self.settings
    }

    /// One request of the GP system, top-down; every outcome is audited before it is answered.
    /// `answer` turns a refusal into its response (status and `OperationOutcome`): the server
    /// decides statuses (`server::error::egress_answer`), the audit record takes the status from
    /// that response.
    pub async fn handle(
        &self,
        request: Request<Body>,
        answer: fn(&EgressError) -> Response,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let mut audit = Audit::new(&parts, audit_time(self.clock.now()));
        let (response, upstream, rule, refused) = match self.pass(&parts, body, &mut audit).await {
            Ok(r) => {
                let status = r.status().as_u16();
                (
                    r,
                    Some(status),
                    format!("custodian answered {status}"),
                    false,
                )
            }
            Err(e) => (answer(&e), audit.upstream_status, e.audit_reason(), true),
        };
        let status = response.status();
        let decision = match (refused, status) {
            (false, s) if s.is_success() => "permit",
            (true, s) if s.is_server_error() => "error",
            _ => "deny",
        };
        let record = audit.record(
            &self.identity.did,
            decision,
            rule,
            status.as_u16(),
            upstream,
        );
        if let Err(e) = self.writer.write(record).await {
            tracing::error!(error = %e, "audit log unavailable: refusing to answer");
            return answer(&EgressError::Unavailable);
        }
        response
    }

    async fn pass(
        &self,
        parts: &axum::http::request::Parts,
        body: Body,
        audit: &mut Audit,
    ) -> Result<Response, EgressError> {
        // route: the path prefix names custodian and purpose
        let path = parts.uri.path();
        let (index, rest) = self.settings.route_for(path).ok_or(EgressError::NoRoute)?;
        let route = &self.settings.routes[index];
        audit.custodian = Some(route.custodian.clone());
        audit.purpose.clone_from(&route.purpose);
        // user: the headers, required where the purpose needs one
        let user = input::user(&parts.headers, route.require_user)?;
        audit.user = user.as_ref().map(|u| AuditUser {
            uzi: u.uzi.clone(),
            name: u.name.clone(),
            role: u.role.clone(),
        });
        // body: whole, within the size and time limits (held for a retry)
        let body = crate::http::read_body(body, self.max_body_bytes, self.client_timeout).await?;
        // patient: header or the search's BSN
        let bsn = input::patient(&parts.headers, &parts.method, rest, &body)?;
        audit.bsn = Some(bsn.clone());
        // held credential: none → refused here, the custodian is never called
        let held = self.held(route, &bsn).await?;
        let key = Key {
            route: index,
            credential: held.id.clone(),
            user,
        };
        let target = target(route, rest, parts.uri.query())?;
        // token: cached, or one grant for all who wait
        let token = self.token(route, &held, &key).await?;
        // forward: our token, the GP system's X-Poortwachter-* headers stripped
        let answer = match self.forward(parts, &target, &body, &token, audit).await? {
            Forwarded::Answer(a) => a,
            // 401: this token is dead (revoked, ended): drop it, one new grant, one retry
            Forwarded::Unauthorized => {
                self.cache.invalidate(&key, &token);
                let token = self.token(route, &held, &key).await?;
                match self.forward(parts, &target, &body, &token, audit).await? {
                    Forwarded::Answer(a) => a,
                    Forwarded::Unauthorized => return Err(EgressError::TokenNotAccepted),
                }
            }
        };
        Ok(answer_of(answer))
    }

    async fn held(&self, route: &Route, bsn: &Bsn) -> Result<HeldCredential, EgressError> {
        let now = self.clock.now().unix_timestamp();
        match self
            .store
            .held_for(&route.custodian, &route.purpose, bsn, now)
            .await
        {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(EgressError::NoCredential {
                purpose: route.purpose.clone(),
                custodian: route.custodian.clone(),
            }),
            Err(e) => {
                tracing::error!(error = %e, "reading held credentials failed");
                Err(EgressError::Unavailable)
            }
        }
    }

    /// The cached token for `key`, or a new one (single flight).
    async fn token(
        &self,
        route: &Route,
        held: &HeldCredential,
        key: &Key,
    ) -> Result<Cached, EgressError> {
        let (cached, _) = self
            .cache
            .get(key, || self.grant(route, held, key.user.as_ref()))
            .await?;
        Ok(cached)
    }

    /// Signs a grant for `held` and `user` and asks the route's token endpoint.
    async fn grant(
        &self,
        route: &Route,
        held: &HeldCredential,
        user: Option<&UserIdentity>,
    ) -> Result<(String, i64), EgressError> {
        let vc: serde_json::Value =
            serde_json::from_str(&held.document).map_err(|_| EgressError::Unavailable)?;
        let vcs = [vc];
        let input = GrantInput {
            issuer: &self.identity.did,
            custodian: &route.custodian,
            audience: &route.audience,
            purpose: &route.purpose,
            vcs: &vcs,
            user,
        };
        let claims = request::claims(
            &input,
            self.clock.now().unix_timestamp(),
            &uuid::Uuid::new_v4().to_string(),
        );
        let assertion = request::sign(&self.identity, &claims).map_err(|e| {
            tracing::error!(error = %e, "signing the grant failed");
            EgressError::Unavailable
        })?;
        match request::post_grant(&self.tokens, &route.token_endpoint, &assertion).await {
            Ok(answer) => Ok((answer.access_token, answer.expires_in)),
            Err(TokenRequestError::Refused {
                status: 429,
                description,
                ..
            }) => Err(EgressError::GrantRateLimited(printable(&description))),
            Err(TokenRequestError::Refused {
                status,
                description,
                ..
            }) if status < 500 => Err(EgressError::GrantRefused(printable(&description))),
            Err(TokenRequestError::Timeout) => Err(EgressError::TokenEndpointTimeout),
            Err(e) => {
                tracing::warn!(error = %e, custodian = %route.custodian, "token request failed");
                Err(EgressError::TokenEndpointDown)
            }
        }
    }

    /// Sends the request with `token` to `target`.
    async fn forward(
        &self,
        parts: &axum::http::request::Parts,
        target: &Uri,
        body: &Bytes,
        token: &Cached,
        audit: &mut Audit,
    ) -> Result<Forwarded, EgressError> {
        let mut out = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(target.clone())
            .body(Full::new(body.clone()))
            .map_err(|_| EgressError::Malformed)?;
        let headers = out.headers_mut();
        copy_headers(&parts.headers, headers);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.token))
            .map_err(|_| EgressError::TokenEndpointDown)?;
        bearer.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, bearer);
        let client = self.upstream.get();
        let answer = match tokio::time::timeout(self.settings.timeout, client.request(out)).await {
            Err(_) => return Err(EgressError::CustodianTimeout),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the custodian cannot be reached");
                return Err(EgressError::CustodianDown);
            }
            Ok(Ok(a)) => a,
        };
        audit.upstream_status = Some(answer.status().as_u16());
        if answer.status() == StatusCode::UNAUTHORIZED {
            return Ok(Forwarded::Unauthorized);
        }
        Ok(Forwarded::Answer(answer))
    }
}

/// The custodian's URL for `rest` (the path after the prefix) and `query`.
fn target(route: &Route, rest: &str, query: Option<&str>) -> Result<Uri, EgressError> {
    let mut t = format!("{}{rest}", route.fhir_base);
    if let Some(q) = query {
        t.push('?');
        t.push_str(q);
    }
    t.parse().map_err(|_| EgressError::Malformed)
}

/// The GP system's headers minus hop-by-hop ones, `Authorization`, `Host`, `Content-Length`
/// and every `X-Poortwachter-*`.
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let n = name.as_str();
        if NOT_FORWARDED.contains(&n) || n.starts_with("x-poortwachter-") {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// The custodian's answer for the GP system (hop-by-hop headers dropped), its body streamed.
fn answer_of(answer: hyper::Response<hyper::body::Incoming>) -> Response {
    let (mut parts, body) = answer.into_parts();
    for h in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "te",
        "proxy-connection",
    ] {
        parts.headers.remove(HeaderName::from_static(h));
    }
    Response::from_parts(parts, Body::new(body))
}

/// The custodian's `error_description`, as the GP system may see it: printable, at most 300
/// characters.
fn printable(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(300).collect();
    if clean.is_empty() {
        "no reason given".into()
    } else {
        clean
    }
}

/// What the audit record of one request says, filled in as the request goes.
struct Audit {
    time: String,
    request_id: String,
    method: String,
    path: String,
    custodian: Option<String>,
    purpose: String,
    user: Option<AuditUser>,
    bsn: Option<Bsn>,
    upstream_status: Option<u16>,
}

impl Audit {
    fn new(parts: &axum::http::request::Parts, time: String) -> Self {
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        Self {
            time,
            request_id: uuid::Uuid::new_v4().to_string(),
            method: parts.method.to_string(),
            path: redact_bsns(&target).chars().take(2048).collect(),
            custodian: None,
            purpose: String::new(),
            user: None,
            bsn: None,
            upstream_status: None,
        }
    }

    fn record(
        self,
        requester: &str,
        decision: &str,
        rule: String,
        status: u16,
        upstream_status: Option<u16>,
    ) -> AuditRecord {
        AuditRecord {
            time: self.time,
            request_id: self.request_id,
            kind: "egress".into(),
            requester: requester.to_owned(),
            user: self.user,
            purpose: self.purpose,
            bsn: self.bsn,
            method: self.method,
            path: self.path,
            decision: decision.into(),
            rule,
            status,
            upstream_status,
            client_cert: None,
            jwt: None,
            trace: None,
            custodian: self.custodian,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_poortwachter_header_and_the_gp_systems_credentials_stay_behind() {
        let mut from = HeaderMap::new();
        for (k, v) in [
            ("accept", "application/fhir+json"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-poortwachter-bsn", "999999990"),
            ("x-poortwachter-user-uzi", "900012345"),
            ("x-poortwachter-anything", "x"),
            ("authorization", "Bearer from-the-gp-system"),
            ("proxy-authorization", "Basic eA=="),
            ("connection", "keep-alive"),
            ("host", "127.0.0.1:7070"),
            ("content-length", "12"),
            ("x-request-id", "r-1"),
        ] {
            from.append(k, HeaderValue::from_static(v));
        }
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to);
        let mut names: Vec<&str> = to.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "content-type", "x-request-id"]);
    }

    #[test]
    fn the_target_is_the_fhir_base_with_the_rest_and_the_query() {
        let route = Route {
            prefix: "/noord".into(),
            fhir_base: "https://noord.example.nl/fhir".into(),
            token_endpoint: "https://noord.example.nl/t".into(),
            audience: "https://noord.example.nl/t".into(),
            custodian: "did:web:noord.example.nl".into(),
            purpose: "p".into(),
            require_user: true,
        };
        assert_eq!(
            target(&route, "/Observation", Some("patient=pat-1&_count=5")).unwrap(),
            "https://noord.example.nl/fhir/Observation?patient=pat-1&_count=5"
        );
        assert_eq!(
            target(&route, "", None).unwrap(),
            "https://noord.example.nl/fhir"
        );
        assert_eq!(printable("a\u{0}b\nc"), "abc");
        assert_eq!(printable(""), "no reason given");
    }
}
