//! The internal admin API (127.0.0.1 by default): credentials issue, list, get, revoke and
//! verify, plus `/health` and `/ready`; and the admin console's pages under `/ui/`
//! ([`super::console`]).
//!
//! ```text
//! POST /internal/credentials                {subject_did, bsn, purpose, consent, expires?, resources?} → 201
//! GET  /internal/credentials[?subject_did=&purpose=&bsn=&status=]                                    → 200
//! GET  /internal/credentials/{id}                                                                    → 200 | 404
//! POST /internal/credentials/{id}/revoke    {reason}                                                 → 200
//! POST /internal/credentials/verify[?proof_only=true]  <credential>                                  → 200 | 422
//! GET  /internal/zorgdomein/sso-token?user-system=&user=&org-system=&org=&patient-id=[&task=&icpc=]   → 200 | 404
//! ```

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::openapi::{self, Api};
use crate::admin::{self, IssueInput, RecordView};
use crate::app::AppState;
use crate::credential::verify::Mode;
use crate::store::RevokeOutcome;

/// The document's description.
const DESCRIPTION: &str = "poortwachter's internal listener (127.0.0.1 by default): credential \
administration, token introspection and verification, the ZorgDomein SSO launch token (with \
`[zorgdomein]`), health and metrics. The admin console under `/ui/` (HTML pages and forms for a \
browser, with a session and CSRF tokens) is deliberately not described here.";

/// Why the console is not in the document.
pub(super) const CONSOLE_EXCLUDED: &str =
    "HTML pages and forms for a browser (session, CSRF token), not an API for programs";

/// The internal router.
pub fn router(state: Arc<AppState>) -> Router {
    api(&Shape {
        zorgdomein: state.zorgdomein_sso.is_some(),
        console: state.config.console.enabled,
    })
    .finish(routes!(openapi::internal))
    .router
    .fallback(|| async { ApiError::NotFound })
    .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
    .with_state(state)
}

/// Which of the internal listener's optional routes this configuration has.
pub(super) struct Shape {
    /// `[zorgdomein]`: the SSO launch token endpoint.
    pub zorgdomein: bool,
    /// `[console] enabled`: the admin console under `/ui`.
    pub console: bool,
}

/// The internal listener's routes and operations for this configuration.
pub(super) fn api(shape: &Shape) -> Api<Arc<AppState>> {
    let mut api = Api::new("poortwachter internal API", DESCRIPTION)
        .routes(routes!(issue, list))
        .routes(routes!(verify))
        .routes(routes!(show))
        .routes(routes!(revoke))
        .routes(routes!(super::oauth_api::introspect))
        .routes(routes!(
            super::oauth_api::verify,
            super::oauth_api::verify_head
        ))
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(ready));
    if shape.zorgdomein {
        api = api.routes(routes!(super::zorgdomein_api::sso_token));
    }
    if shape.console {
        api = api.html_only("/ui", CONSOLE_EXCLUDED, super::console::routes());
    }
    api
}

/// Reads a body up to `limit` bytes, within the client time limit.
pub(super) async fn read_body(
    state: &AppState,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    Ok(crate::http::read_body(body, limit, state.live.get().client_timeout).await?)
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if crate::http::is_media_type(
        headers,
        &[
            "application/json",
            "application/ld+json",
            "application/vc+ld+json",
        ],
    ) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType("application/json"))
    }
}

/// Parses a JSON body into `T`, with an error that names fields but never echoes values.
fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let detail = match e.classify() {
            serde_json::error::Category::Data => {
                let m = e.to_string();
                if m.starts_with("unknown field") || m.starts_with("missing field") {
                    m.split(", expected")
                        .next()
                        .unwrap_or(&m)
                        .split(" at line")
                        .next()
                        .unwrap_or(&m)
                        .to_owned()
                } else {
                    "a field has the wrong type".to_owned()
                }
            }
            _ => "not valid JSON".to_owned(),
        };
        ApiError::BadRequest(format!(
            "invalid request body: {detail} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

#[utoipa::path(post, path = "/internal/credentials", tag = "credentials",
    operation_id = "issue_credential",
    summary = "Issue an authorization credential",
    request_body(content = crate::admin::IssueInput, content_type = "application/json"),
    responses((status = 201, description = "The signed credential (NutsAuthorizationCredential, JSON-LD): a JSON object", content_type = "application/json"),
        (status = 400, description = "Invalid input (names the field)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody)))]
async fn issue(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let bytes = read_body(&state, body, state.live.get().max_body_bytes.min(64 * 1024)).await?;
    let input: IssueInput = parse_json(&bytes)?;
    let policies = state.policies.borrow().clone();
    let (credential, record) = state.custodian.issue(&input, &policies).await?;
    tracing::info!(credential_id = %record.id, purpose = %record.purpose, subject_did = %record.subject_did, "credential issued");
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(credential),
    )
        .into_response())
}

#[utoipa::path(get, path = "/internal/credentials", tag = "credentials",
    operation_id = "list_credentials",
    summary = "List credentials",
    params(("subject_did" = Option<String>, Query, description = "Requester DID"),
        ("purpose" = Option<String>, Query, description = "purposeOfUse"),
        ("bsn" = Option<String>, Query, description = "Patient BSN"),
        ("status" = Option<crate::store::Status>, Query, description = "active, revoked or expired")),
    responses((status = 200, description = "`{\"credentials\": [RecordView]}`", content_type = "application/json"),
        (status = 400, description = "Unknown or repeated parameter", body = ErrorBody)))]
async fn list(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut q =
        crate::http::parse_query(raw.as_deref(), &["subject_did", "purpose", "bsn", "status"])
            .map_err(ApiError::BadRequest)?;
    let filter = admin::filter(
        q.remove("subject_did"),
        q.remove("purpose"),
        q.remove("bsn"),
        q.remove("status"),
    )?;
    let records = state.custodian.list(&filter).await?;
    let now = state.clock.now().unix_timestamp();
    let views: Vec<RecordView> = records.iter().map(|r| RecordView::new(r, now)).collect();
    Ok(Json(json!({"credentials": views})).into_response())
}

#[utoipa::path(get, path = "/internal/credentials/{id}", tag = "credentials",
    operation_id = "show_credential",
    summary = "One credential",
    params(("id" = String, Path, description = "The credential id")),
    responses((status = 200, description = "The credential", body = crate::admin::RecordView),
        (status = 404, description = "Unknown id", body = ErrorBody)))]
async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = state.custodian.show(&id).await?;
    Ok(Json(RecordView::new(&record, state.clock.now().unix_timestamp())).into_response())
}

/// A revocation request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeInput {
    /// Why (1 to 1000 printable characters); kept with the revocation.
    reason: String,
}

#[utoipa::path(post, path = "/internal/credentials/{id}/revoke", tag = "credentials",
    operation_id = "revoke_credential",
    summary = "Revoke a credential (its tokens stop working within a second)",
    params(("id" = String, Path, description = "The credential id")),
    request_body(content = RevokeInput, content_type = "application/json"),
    responses((status = 200, description = "`{id, status: \"revoked\", already_revoked, reason}`", content_type = "application/json"),
        (status = 400, description = "Invalid reason", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody)))]
async fn revoke(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let bytes = read_body(&state, body, 16 * 1024).await?;
    let input: RevokeInput = parse_json(&bytes)?;
    let outcome = state.custodian.revoke(&id, &input.reason).await?;
    // This instance applies its own revocation at once; others pick it up from the store.
    state.revocations.insert(&id);
    let (already, r) = match outcome {
        RevokeOutcome::Revoked(r) => (false, r),
        RevokeOutcome::AlreadyRevoked(r) => (true, r),
    };
    if !already {
        tracing::info!(credential_id = %id, "credential revoked");
    }
    Ok(
        Json(
            json!({"id": id, "status": "revoked", "already_revoked": already, "reason": r.reason}),
        )
        .into_response(),
    )
}

#[utoipa::path(post, path = "/internal/credentials/verify", tag = "credentials",
    operation_id = "verify_credential",
    summary = "Verify a credential (proof, dates, profile, policy, revocation)",
    params(("proof_only" = Option<bool>, Query, description = "Only the proof and structure")),
    request_body(description = "The credential (JSON-LD): free-form JSON",
        content(("application/json"), ("application/ld+json"), ("application/vc+ld+json"))),
    responses((status = 200, description = "`{valid: true, id, issuer, subject_did, purpose}`", content_type = "application/json"),
        (status = 422, description = "Not valid, with the reason", body = ErrorBody)))]
async fn verify(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let q =
        crate::http::parse_query(raw.as_deref(), &["proof_only"]).map_err(ApiError::BadRequest)?;
    let mode = match q.get("proof_only").map(String::as_str) {
        None | Some("false") => Mode::Authorization,
        Some("true") => Mode::ProofOnly,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "proof_only must be true or false".into(),
            ))
        }
    };
    require_json(&headers)?;
    let bytes = read_body(&state, body, crate::credential::MAX_CREDENTIAL_BYTES).await?;
    let policies = state.policies.borrow().clone();
    let vc = state
        .verifier
        .verify(&bytes, mode, &policies)
        .await
        .map_err(ApiError::InvalidCredential)?;
    Ok(Json(json!({
        "valid": true,
        "id": vc.id,
        "issuer": vc.issuer,
        "subject_did": vc.subject_did,
        "purpose": vc.purpose,
    }))
    .into_response())
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let now = state.clock.now().unix_timestamp();
    let active = state.store.active_token_count(now).await.unwrap_or(-1);
    let revocations = state.store.revocation_count().await.unwrap_or(-1);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(active, revocations),
    )
        .into_response()
}

#[utoipa::path(get, path = "/health", tag = "operations",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", content_type = "application/json")))]
async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

#[utoipa::path(get, path = "/ready", tag = "operations",
    summary = "Readiness: the database answers",
    responses((status = 200, description = "`{\"status\": \"ready\"}`", content_type = "application/json"),
        (status = 503, description = "`{\"status\": \"unavailable\", \"reason\"}`", content_type = "application/json")))]
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "database unreachable"})),
            )
                .into_response()
        }
    }
}
