//! `GET /internal/zorgdomein/sso-token` on the internal listener: the ZorgDomein SSO launch token
//! for an XIS that would rather ask over HTTP than run `poortwachter zorgdomein sso-token`.
//!
//! ```text
//! GET /internal/zorgdomein/sso-token?user-system=agb-z&user=01234567&org-system=agb-z&org=07654321
//!     &patient-id=pat-1[&task=task-1][&icpc=K86]        → 200 {"token", "launch_url", "jti"}
//! ```
//!
//! A route only with `[zorgdomein]` (404 without); 400 for a missing or malformed parameter. The token itself is
//! never logged.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::ApiError;
use crate::app::AppState;
use crate::zorgdomein::sso::SsoRequest;

/// The launch token for the query's user, organisation and patient.
#[utoipa::path(get, path = "/internal/zorgdomein/sso-token", tag = "zorgdomein",
    summary = "A ZorgDomein SSO launch token (only with `[zorgdomein]`)",
    params(("user-system" = String, Query), ("user" = String, Query),
        ("org-system" = String, Query), ("org" = String, Query),
        ("patient-id" = String, Query, description = "A FHIR id, never a BSN"),
        ("task" = Option<String>, Query), ("icpc" = Option<String>, Query)),
    responses((status = 200, description = "The signed token and launch URL", body = crate::zorgdomein::sso::Launch),
        (status = 400, description = "A missing or malformed parameter", body = super::error::ErrorBody)))]
pub async fn sso_token(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let Some(signer) = &state.zorgdomein_sso else {
        return Err(ApiError::NotFound);
    };
    let q = crate::http::parse_query(
        raw.as_deref(),
        &[
            "user-system",
            "user",
            "org-system",
            "org",
            "patient-id",
            "task",
            "icpc",
        ],
    )
    .map_err(ApiError::BadRequest)?;
    let need = |k: &str| {
        q.get(k)
            .map(String::as_str)
            .ok_or_else(|| ApiError::BadRequest(format!("query parameter \"{k}\" is required")))
    };
    let request = SsoRequest::new(
        need("user-system")?,
        need("user")?,
        need("org-system")?,
        need("org")?,
        need("patient-id")?,
        q.get("task").map(String::as_str),
        q.get("icpc").map(String::as_str),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let launch = signer
        .launch(&request, state.clock.now().unix_timestamp())
        .map_err(|e| ApiError::BadRequest(format!("cannot sign: {e}")))?;
    tracing::info!(jti = %launch.jti, "zorgdomein sso token issued");
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(launch)).into_response())
}
