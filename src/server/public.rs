//! The public listener: the token endpoint, RFC 8414 metadata, our DID document at its `did:web`
//! location, MedMij's endpoints when configured, its OpenAPI document, and everything else
//! through the proxy (which refuses what no policy allows).

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::ResponseBuilder;
use utoipa_axum::routes;

use super::error::ApiError;
use super::openapi::{self, Api};
use crate::app::AppState;
use crate::identity::DidMethod;

/// The document's description: what the operations below do not show.
const DESCRIPTION: &str = "poortwachter's public listener. Every path not listed here is a \
request for the source system (FHIR or dossier API): the proxy authenticates it (the \
authenticator mounted at its path prefix), and forwards it only when the requester's policy \
(one per purposeOfUse, reloaded on SIGHUP) allows that method, path, query and body; \
otherwise 401 with `WWW-Authenticate: Bearer` or 403 with a FHIR `OperationOutcome`. Those \
paths are not operations of this document because they are not routes of poortwachter: the \
allow-list is the loaded policies (`poortwachter policy check`).";

/// The public router.
pub fn router(state: Arc<AppState>) -> Router {
    api(&Shape::of(&state))
        .finish(routes!(openapi::well_known))
        .router
        // Everything else is a request for the source system: the proxy decides.
        .fallback(proxy)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

/// Which of the public listener's optional routes this configuration has.
pub(super) struct Shape {
    /// Our `did:web` document: its path and JSON text.
    pub did_web: Option<(String, String)>,
    /// `[medmij]`, and whether its development login is on.
    pub medmij: Option<bool>,
}

impl Shape {
    fn of(state: &AppState) -> Shape {
        let identity = &state.custodian.identity;
        let did_web = match identity.method {
            DidMethod::Web { .. } => crate::did::web::location(&identity.did).ok().map(|loc| {
                let doc = serde_json::to_string_pretty(&identity.document).unwrap_or_default();
                (loc.path, doc)
            }),
            DidMethod::Key => None,
        };
        Shape {
            did_web,
            medmij: state.medmij.as_ref().map(|m| m.settings().dev_login()),
        }
    }
}

/// The public listener's routes and operations for this configuration.
pub(super) fn api(shape: &Shape) -> Api<Arc<AppState>> {
    let mut api = Api::new("poortwachter public API", DESCRIPTION)
        .routes(routes!(super::oauth_api::token))
        .routes(routes!(super::oauth_api::metadata));
    if let Some((path, doc)) = &shape.did_web {
        api = api.routes(did_web(path, doc.clone()));
    }
    if let Some(dev) = shape.medmij {
        api = api.include(super::medmij_api::api(dev));
    }
    api
}

/// `GET <path>` of our `did:web` DID: the path is known only at run time, so the operation is
/// made here, with the route.
fn did_web(path: &str, doc: String) -> utoipa_axum::router::UtoipaMethodRouter<Arc<AppState>> {
    let operation = OperationBuilder::new()
        .tags(Some(vec!["did".to_owned()]))
        .operation_id(Some("did_document"))
        .summary(Some("This custodian's did:web DID document"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The DID document")
                .content(
                    "application/did+json",
                    utoipa::openapi::ContentBuilder::new().build(),
                )
                .build(),
        )
        .build();
    openapi::route(
        HttpMethod::Get,
        path,
        operation,
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
    )
}

/// A request for the source system: the proxy's path, with refusals answered by
/// [`super::error::proxy_answer`].
async fn proxy(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::http::Request<axum::body::Body>,
) -> axum::response::Response {
    crate::proxy::handle(&state.proxy, request, super::error::proxy_answer).await
}
