//! The public listener. For now it publishes our DID document at its `did:web` location; the
//! token endpoint and the proxy join it in later waves. Everything else is 404 (default deny).

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use super::AppState;
use crate::identity::DidMethod;

/// The public router.
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    if let DidMethod::Web { .. } = state.custodian.identity.method {
        if let Ok(loc) = crate::did::web::location(&state.custodian.identity.did) {
            let doc = serde_json::to_string_pretty(&state.custodian.identity.document)
                .unwrap_or_default();
            router = router.route(
                &loc.path,
                get(move || {
                    let doc = doc.clone();
                    async move {
                        (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, "application/did+json")],
                            doc,
                        )
                            .into_response()
                    }
                }),
            );
        }
    }
    router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
