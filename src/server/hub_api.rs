//! The Hub's HTTP API (`/v3/...`, `hub serve`): Basic auth, XML in and out. A [`HubError`]
//! becomes the documented `<error>` element in [`super::error`]. Its OpenAPI document is at
//! `/.well-known/openapi.json` ([`super::openapi`]).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa_axum::routes;

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

/// The document's description.
const DESCRIPTION: &str = "The embedded Hub API v3 (`hub serve`): dossier registration, search, \
shares and source tokens. Requests authenticate with HTTP Basic (account key and secret); \
answers and errors are XML (`<error>`).";

/// The Hub's routes and operations.
pub(super) fn api() -> super::openapi::Api<HubApi> {
    super::openapi::Api::new("poortwachter Hub API v3", DESCRIPTION)
        .routes(routes!(health))
        .routes(routes!(jwks))
        .routes(routes!(well_known_jwks))
        .routes(routes!(register))
        .routes(routes!(search))
        .routes(routes!(resource))
        .routes(routes!(shares))
        .routes(routes!(add_share))
        .routes(routes!(remove_share))
        .routes(routes!(source))
}

/// The Hub's router.
pub fn router(hub: Arc<Hub>, client_timeout: std::time::Duration) -> Router {
    api()
        .finish(routes!(super::openapi::well_known))
        .router
        .method_not_allowed_fallback(|| async { HubError::MethodNotAllowed })
        .fallback(|| async { HubError::NotFound })
        .with_state(HubApi {
            hub,
            client_timeout,
        })
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "`ok`", content_type = "text/plain")))]
async fn health() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/v3/jwks", tag = "hub",
    summary = "The Hub's public keys (source tokens are RS512)",
    responses((status = 200, description = "A JWK set", content_type = "application/jwk-set+json")))]
async fn jwks(State(hub): State<HubApi>) -> Response {
    jwks_of(&hub)
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "hub",
    summary = "The Hub's public keys (the same set as `/v3/jwks`)",
    responses((status = 200, description = "A JWK set", content_type = "application/jwk-set+json")))]
async fn well_known_jwks(State(hub): State<HubApi>) -> Response {
    jwks_of(&hub)
}

fn jwks_of(hub: &HubApi) -> Response {
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

#[utoipa::path(post, path = "/v3/register", tag = "hub",
    summary = "Register (or update) a dossier",
    request_body(description = "`<resource type=\"dossier\">` with `<property>`s", content(("application/xml"), ("text/xml"))),
    responses((status = 200, description = "`<status key=\"…\">OK</status>`", content_type = "application/xml"),
        (status = 400, description = "`<error>`", content_type = "application/xml"), (status = 401, description = "`<error>`", content_type = "application/xml"),
        (status = 415, description = "`<error>`", content_type = "application/xml")))]
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

#[utoipa::path(get, path = "/v3/resources", tag = "hub",
    summary = "Search the dossiers visible to the account (filters as query parameters)",
    responses((status = 200, description = "`<resources>`", content_type = "application/xml"),
        (status = 400, description = "`<error>`", content_type = "application/xml"), (status = 401, description = "`<error>`", content_type = "application/xml")))]
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

#[utoipa::path(get, path = "/v3/resources/{key}", tag = "hub",
    params(("key" = String, Path)),
    responses((status = 200, description = "`<resource>`", content_type = "application/xml"),
        (status = 401, description = "`<error>`", content_type = "application/xml"), (status = 404, description = "`<error>`", content_type = "application/xml")))]
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

#[utoipa::path(get, path = "/v3/resources/{key}/shares", tag = "hub",
    params(("key" = String, Path)),
    responses((status = 200, description = "`<shares>`", content_type = "application/xml"),
        (status = 401, description = "`<error>`", content_type = "application/xml"), (status = 404, description = "`<error>`", content_type = "application/xml")))]
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

#[utoipa::path(get, path = "/v3/resources/{key}/add-share/{account}/{permission}", tag = "hub",
    params(("key" = String, Path), ("account" = String, Path), ("permission" = String, Path)),
    responses((status = 200, description = "`<status>`", content_type = "application/xml"),
        (status = 400, description = "`<error>`", content_type = "application/xml"), (status = 401, description = "`<error>`", content_type = "application/xml"),
        (status = 404, description = "`<error>`", content_type = "application/xml")))]
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

#[utoipa::path(get, path = "/v3/resources/{key}/remove-share/{account}", tag = "hub",
    params(("key" = String, Path), ("account" = String, Path)),
    responses((status = 200, description = "`<status>`", content_type = "application/xml"),
        (status = 401, description = "`<error>`", content_type = "application/xml"), (status = 404, description = "`<error>`", content_type = "application/xml")))]
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

#[utoipa::path(get, path = "/v3/resources/{key}/source", tag = "hub",
    summary = "Where the dossier lives, with a fresh RS512 source token",
    params(("key" = String, Path)),
    responses((status = 200, description = "`<source>`", content_type = "application/xml"),
        (status = 401, description = "`<error>`", content_type = "application/xml"), (status = 404, description = "`<error>`", content_type = "application/xml")))]
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
