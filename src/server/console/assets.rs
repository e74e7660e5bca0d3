//! The console's stylesheet and script, compiled into the binary and served from `/ui/static/`
//! (the CSP allows scripts and styles only from the console's own origin).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /ui/static/console.css`.
pub(super) async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

/// `GET /ui/static/console.js`.
pub(super) async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console.js"),
    )
        .into_response()
}
