//! The Hub's HTTP API (`/v3/...`, `hub serve`): Basic auth, XML in and out. A [`HubError`]
//! becomes the documented `<error>` element in [`super::error`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::hub::dossier::{DossierRecord, RESOURCE_TYPE};
use crate::hub::xml::Writer;
use crate::hub::{Hub, HubError};
use crate::store::hub::HubAccount;

const XML: &str = "application/xml; charset=utf-8";

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, XML),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `<status key="…">OK</status>`.
fn status_ok(key: &str) -> Response {
    let mut w = Writer::new();
    w.open("status", &[("key", key)]).text("OK").close("status");
    xml_response(StatusCode::OK, w.finish())
}

fn write_resource(w: &mut Writer, r: &DossierRecord) {
    w.open("resource", &[("type", RESOURCE_TYPE)]);
    w.property("key", &r.key);
    for (name, value) in r.dossier.properties() {
        w.property(name, &value);
    }
    w.property(
        "hub_registered_at",
        &crate::audit::audit_time(
            time::OffsetDateTime::from_unix_timestamp(r.registered_at)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        ),
    );
    w.property("hub_provider_account", &r.account);
    w.close("resource");
}

/// What the Hub's handlers share: the Hub, and the time a client has to send a body.
#[derive(Clone)]
pub struct HubApi {
    hub: Arc<Hub>,
    client_timeout: std::time::Duration,
}

impl std::ops::Deref for HubApi {
    type Target = Hub;
    fn deref(&self) -> &Hub {
        &self.hub
    }
}

/// The Hub's router.
pub fn router(hub: Arc<Hub>, client_timeout: std::time::Duration) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v3/jwks", get(jwks))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v3/register", post(register))
        .route("/v3/resources", get(search))
        .route("/v3/resources/{key}", get(resource))
        .route("/v3/resources/{key}/shares", get(shares))
        .route(
            "/v3/resources/{key}/add-share/{account}/{permission}",
            get(add_share),
        )
        .route(
            "/v3/resources/{key}/remove-share/{account}",
            get(remove_share),
        )
        .route("/v3/resources/{key}/source", get(source))
        .method_not_allowed_fallback(|| async { HubError::MethodNotAllowed })
        .fallback(|| async { HubError::NotFound })
        .with_state(HubApi {
            hub,
            client_timeout,
        })
}

async fn jwks(State(hub): State<HubApi>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        hub.key.jwks().to_string(),
    )
        .into_response()
}

/// Authenticates and refuses query parameters on endpoints that take none.
async fn caller(
    hub: &Hub,
    headers: &HeaderMap,
    uri: &Uri,
    takes_query: bool,
) -> Result<Arc<HubAccount>, HubError> {
    let account = hub
        .auth
        .authenticate(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
        .await?;
    if !takes_query && uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(HubError::Invalid {
            code: "invalid-parameter",
            message: "this endpoint takes no query parameters".into(),
        });
    }
    Ok(account)
}

async fn register(
    State(hub): State<HubApi>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, HubError> {
    let account = caller(&hub, &headers, &uri, false).await?;
    if !crate::http::is_media_type(&headers, &["application/xml", "text/xml"]) {
        return Err(HubError::UnsupportedMediaType);
    }
    let body: Bytes =
        crate::http::read_body(body, crate::hub::xml::MAX_BODY, hub.client_timeout).await?;
    let key = hub.register(&account, &body).await?;
    Ok(status_ok(&key))
}

async fn search(
    State(hub): State<HubApi>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, HubError> {
    let account = caller(&hub, &headers, &uri, true).await?;
    let found = hub.search(&account, uri.query()).await?;
    let mut w = Writer::new();
    w.open("resources", &[]);
    for r in &found {
        write_resource(&mut w, r);
    }
    w.close("resources");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

async fn resource(
    State(hub): State<HubApi>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, HubError> {
    let account = caller(&hub, &headers, &uri, false).await?;
    let r = hub.resource(&account, &key).await?;
    let mut w = Writer::new();
    write_resource(&mut w, &r);
    Ok(xml_response(StatusCode::OK, w.finish()))
}

async fn shares(
    State(hub): State<HubApi>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, HubError> {
    let account = caller(&hub, &headers, &uri, false).await?;
    let shares = hub.shares(&account, &key).await?;
    let mut w = Writer::new();
    w.open("shares", &[]);
    for s in &shares {
        w.open("share", &[])
            .element("resourceKey", &key)
            .element("granteeName", &s.share.grantee)
            .element("granteeDisplayName", &s.display_name)
            .element("permission", &s.share.permission)
            .close("share");
    }
    w.close("shares");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

async fn add_share(
    State(hub): State<HubApi>,
    Path((key, target, permission)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, HubError> {
    let account = caller(&hub, &headers, &uri, false).await?;
    hub.add_share(&account, &key, &target, &permission).await?;
    Ok(status_ok(&key))
}

async fn remove_share(
    State(hub): State<HubApi>,
    Path((key, target)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, HubError> {
    let account = caller(&hub, &headers, &uri, false).await?;
    hub.remove_share(&account, &key, &target).await?;
    Ok(status_ok(&key))
}

async fn source(
    State(hub): State<HubApi>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, HubError> {
    let account = caller(&hub, &headers, &uri, false).await?;
    let s = hub.source(&account, &key).await?;
    let mut w = Writer::new();
    w.open("source", &[])
        .element("api", &s.api)
        .element("url", &s.url)
        .element("jwt", &s.jwt)
        .open("provider", &[])
        .element("account", &s.account)
        .element("displayname", &s.display_name)
        .close("provider")
        .close("source");
    Ok(xml_response(StatusCode::OK, w.finish()))
}
