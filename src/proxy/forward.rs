//! Forwarding: the permitted request to the source system, and its answer back, within one time
//! limit and a size limit.
//!
//! **Invariant:** what the source system receives is the permit's method, path, query and body,
//! the allow-listed client headers, and context headers from the principal only.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

use super::ProxyError;
use crate::authn::Principal;
use crate::config::LiveSettings;
use crate::policy::request::Permit;

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

/// The source system's answer, read whole.
pub(super) struct Upstream {
    pub status: u16,
    pub headers: HeaderMap,
    pub content_type: Option<HeaderValue>,
    /// `Location` (of a create), as the source system wrote it.
    pub location: Option<HeaderValue>,
    pub body: axum::body::Bytes,
}

/// The `Prefer` values a client may send on (RFC 7240 `return=`, as FHIR uses it on a create or
/// update); any other preference (`respond-async`, `handling=`) is dropped.
const PASSED_PREFER: [&str; 3] = [
    "return=minimal",
    "return=representation",
    "return=operationoutcome",
];

/// The client's `Location` for the source system's `location`: the source system's own base
/// (`upstream`) replaced by the mount's path prefix, as an absolute path (RFC 9110 allows a
/// relative reference), so no internal address reaches the client; a FHIR-relative
/// `Type/id/...` is put under the prefix too. A location elsewhere, or not printable, is
/// dropped.
pub(super) fn public_location(
    location: &HeaderValue,
    upstream: &url::Url,
    prefix: &str,
) -> Option<HeaderValue> {
    let loc = location.to_str().ok()?;
    if loc.is_empty() || !loc.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let base = upstream.as_str().trim_end_matches('/');
    let base_path = upstream.path().trim_end_matches('/');
    let rest = if let Some(r) = loc.strip_prefix(base) {
        r.to_owned()
    } else if loc.starts_with('/') && !loc.starts_with("//") {
        loc.strip_prefix(base_path)?.to_owned()
    } else if !loc.contains(':') && !loc.starts_with("//") {
        format!("/{loc}")
    } else {
        return None;
    };
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    let prefix = if prefix == "/" { "" } else { prefix };
    let out = format!("{prefix}{rest}");
    HeaderValue::from_str(if out.is_empty() { "/" } else { &out }).ok()
}

/// Sends what `permit` allows to the source system and reads its answer.
pub(super) async fn forward(
    client: &super::client::UpstreamClient,
    live: &LiveSettings,
    permit: &Permit,
    client_headers: &HeaderMap,
    principal: &Principal,
    request_id: &str,
) -> Result<Upstream, ProxyError> {
    let base = live.upstream.as_ref().ok_or(ProxyError::UpstreamDown)?;
    let base = base.as_str().trim_end_matches('/');
    let target = match permit.query() {
        Some(q) if !q.is_empty() => format!("{base}{}?{q}", permit.path()),
        _ => format!("{base}{}", permit.path()),
    };
    let uri = axum::http::Uri::try_from(target).map_err(|_| ProxyError::UpstreamDown)?;
    let method = axum::http::Method::from_bytes(permit.method().as_bytes())
        .map_err(|_| ProxyError::Malformed("method"))?;
    let mut headers = HeaderMap::new();
    for name in PASSED_REQUEST_HEADERS {
        if let Some(v) = client_headers.get(&name) {
            headers.insert(name, v.clone());
        }
    }
    if let Some(v) = client_headers.get("prefer").filter(|v| {
        v.to_str().is_ok_and(|s| {
            PASSED_PREFER.contains(&s.trim().to_ascii_lowercase().replace(' ', "").as_str())
        })
    }) {
        headers.insert(HeaderName::from_static("prefer"), v.clone());
    }
    let context = [
        ("x-poortwachter-requester", principal.requester.as_str()),
        ("x-poortwachter-purpose", principal.policy.as_str()),
        (
            "x-poortwachter-subject",
            principal
                .patient
                .as_ref()
                .map_or("", crate::bsn::Bsn::as_str),
        ),
        (
            "x-poortwachter-user",
            principal.user.as_ref().map_or("", |u| u.uzi.as_str()),
        ),
        ("x-poortwachter-request-id", request_id),
    ];
    for (name, value) in context {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let mut request = axum::http::Request::new(http_body_util::Full::new(permit.body().clone()));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    // One time limit for the whole exchange: answer head and body.
    let deadline = tokio::time::Instant::now() + live.upstream_timeout;
    let response = tokio::time::timeout_at(deadline, client.get().request(request))
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
    let location = response.headers().get(header::LOCATION).cloned();
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
        location,
        body: buf.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_put_under_the_prefix() {
        let up = url::Url::parse("http://10.0.0.7:8090/fhir").unwrap();
        let loc = |l: &str, prefix: &str| {
            public_location(&HeaderValue::from_str(l).unwrap(), &up, prefix)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let want = Some("/zorgdomein/Bundle/b-1/_history/1".to_owned());
        assert_eq!(
            loc(
                "http://10.0.0.7:8090/fhir/Bundle/b-1/_history/1",
                "/zorgdomein"
            ),
            want
        );
        assert_eq!(loc("/fhir/Bundle/b-1/_history/1", "/zorgdomein"), want);
        assert_eq!(loc("Bundle/b-1/_history/1", "/zorgdomein"), want);
        assert_eq!(loc("Bundle/b-1", "/"), Some("/Bundle/b-1".into()));
        assert_eq!(
            loc("http://10.0.0.7:8090/fhirX/Bundle/1", "/zorgdomein"),
            None
        );
        assert_eq!(
            loc("https://elsewhere.example/fhir/Bundle/1", "/zorgdomein"),
            None
        );
        assert_eq!(loc("//elsewhere.example/x", "/zorgdomein"), None);
        assert_eq!(loc("/other/Bundle/1", "/zorgdomein"), None);
        assert_eq!(loc("javascript:alert(1)", "/zorgdomein"), None);
    }
}
