//! The public listener: the token endpoint, RFC 8414 metadata, our DID document at its `did:web`
//! location, and everything else through the proxy (which refuses what no policy allows).

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use super::error::ApiError;
use crate::app::AppState;
use crate::identity::DidMethod;

/// The public router.
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route(crate::oauth::TOKEN_PATH, post(super::oauth_api::token))
        .route(
            "/.well-known/oauth-authorization-server",
            get(super::oauth_api::metadata),
        );
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
    if state.medmij.is_some() {
        router = router.merge(super::medmij_api::router());
    }
    router
        // Everything else is a request for the source system: the proxy decides.
        .fallback(proxy)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

/// A request for the source system: the proxy's path, with refusals answered by
/// [`super::error::proxy_answer`].
async fn proxy(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::http::Request<axum::body::Body>,
) -> axum::response::Response {
    crate::proxy::handle(&state.proxy, request, super::error::proxy_answer).await
}
