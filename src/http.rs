//! What every endpoint reads from a request the same way: the body (within a size and a time
//! limit), the media type of `Content-Type`, a Bearer credential and a query string of allowed
//! keys. Written once, so that no two endpoints disagree on what `bearer` or
//! `application/json; charset=utf-8` means, and no endpoint reads a body without a time limit.
//!
//! **Invariant:** no IO but the body being read; each boundary maps [`BodyError`] into its own
//! error enum.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than the limit.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Not received within the time limit.
    #[error("request body not received in time")]
    Timeout,
}

/// Reads a whole body of at most `limit` bytes, within `timeout`.
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(BodyError::TooLarge(limit)),
        Err(_) => Err(BodyError::Timeout),
    }
}

/// The media type of `Content-Type`, lower-case, without parameters (`""` when absent or not
/// text).
#[must_use]
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media_type_of)
        .unwrap_or_default()
}

/// The media type of a `Content-Type` value, lower-case, without parameters.
#[must_use]
pub fn media_type_of(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The `charset` parameter of `Content-Type`, lower-case and unquoted, if it has one.
#[must_use]
pub fn charset(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(charset_of)
}

/// The `charset` parameter of a `Content-Type` value, lower-case and unquoted, if it has one.
#[must_use]
pub fn charset_of(value: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (name, v) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// Whether the media type of `Content-Type` is one of `types` (lower-case).
#[must_use]
pub fn is_media_type(headers: &HeaderMap, types: &[&str]) -> bool {
    let t = media_type(headers);
    types.contains(&t.as_str())
}

/// Why the `Authorization` header does not carry one usable Bearer credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization` header.
    #[error("no Authorization header")]
    Missing,
    /// Not `Bearer <credential>` (RFC 6750 §2.1), or more than one header.
    #[error("the Authorization header is not a Bearer credential")]
    Malformed,
}

/// The credential of `Authorization: Bearer <credential>`. The scheme is case-insensitive
/// (RFC 9110 §11.1); one header, one space-separated credential of RFC 6750's `b64token`
/// characters.
pub fn bearer(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, credential) = value.split_once(' ').ok_or(BearerError::Malformed)?;
    let credential = credential.trim_matches(' ');
    let b64token = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    if !scheme.eq_ignore_ascii_case("bearer")
        || credential.is_empty()
        || !credential.bytes().all(b64token)
    {
        return Err(BearerError::Malformed);
    }
    Ok(credential)
}

/// Parses a query string that may only contain `allowed` keys, each at most once; the error
/// says which key is unknown (only its first 40 letters, digits and `_`) or repeated.
pub fn parse_query(
    raw: Option<&str>,
    allowed: &[&str],
) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            let shown: String = k
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            return Err(format!("unknown query parameter \"{shown}\""));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("query parameter \"{k}\" given more than once"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn charsets() {
        assert_eq!(
            charset_of("application/fhir+json; charset=UTF-8").as_deref(),
            Some("utf-8")
        );
        assert_eq!(
            charset_of("application/fhir+json;fhirVersion=3.0;Charset=\"utf-8\"").as_deref(),
            Some("utf-8")
        );
        assert_eq!(charset_of("application/fhir+json"), None);
        assert_eq!(
            charset_of("application/json; charset=latin1").as_deref(),
            Some("latin1")
        );
    }

    #[test]
    fn bearer_is_parsed_one_way() {
        assert_eq!(
            bearer(&headers(&["Bearer abc.DEF-_~+/="])),
            Ok("abc.DEF-_~+/=")
        );
        assert_eq!(bearer(&headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer(&headers(&["BEARER  abc "])), Ok("abc"));
        assert_eq!(bearer(&headers(&[])), Err(BearerError::Missing));
        for bad in [
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearer a b",
            "Bearerabc",
            "Bearer a\"b",
        ] {
            assert_eq!(
                bearer(&headers(&[bad])),
                Err(BearerError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            bearer(&headers(&["Bearer a", "Bearer b"])),
            Err(BearerError::Malformed)
        );
    }

    #[test]
    fn media_types_ignore_case_and_parameters() {
        let mut h = HeaderMap::new();
        assert_eq!(media_type(&h), "");
        h.insert(
            header::CONTENT_TYPE,
            "Application/FHIR+json; charset=UTF-8".parse().unwrap(),
        );
        assert_eq!(media_type(&h), "application/fhir+json");
        assert!(is_media_type(
            &h,
            &["application/json", "application/fhir+json"]
        ));
        assert!(!is_media_type(&h, &["application/json"]));
    }

    #[tokio::test]
    async fn bodies_have_a_size_and_a_time_limit() {
        let ok = read_body(Body::from("hello"), 5, Duration::from_secs(1)).await;
        assert_eq!(ok.unwrap(), Bytes::from("hello"));
        let big = read_body(Body::from("hello!"), 5, Duration::from_secs(1)).await;
        assert_eq!(big, Err(BodyError::TooLarge(5)));
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let slow = Body::from_stream(tokio_stream_of(rx));
        let late = read_body(slow, 5, Duration::from_millis(50)).await;
        assert_eq!(late, Err(BodyError::Timeout));
    }

    /// A stream that yields what the channel receives (never anything here: a stalled client).
    fn tokio_stream_of(
        mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
