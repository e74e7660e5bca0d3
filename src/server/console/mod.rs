//! The admin console at `/ui/` on the internal listener: server-rendered HTML in Dutch and
//! English, no build step, no external assets (the stylesheet and a small script are served
//! from here), a strict Content-Security-Policy.
//!
//! Templates are [`maud`]: the HTML is Rust, checked by the compiler (a misspelt field or a text
//! missing in one language is a build error, not a blank on a page), escaped by default, with no
//! template files to ship. askama checks templates at compile time too, but in a second language
//! in files beside the code; here every text already lives in one Rust struct
//! ([`crate::console::i18n`]), and the pages are small functions over it.
//!
//! ```text
//! GET  /ui/                                   → /ui/credentials
//! GET  /ui/credentials          POST /ui/credentials/filter     (the filter lives in the session)
//! GET  /ui/credentials/new      POST /ui/credentials            (issue: admin::IssueInput)
//! GET  /ui/credentials/{id}     POST /ui/credentials/{id}/revoke (reason, then a confirmation)
//! GET  /ui/tokens               POST /ui/tokens/{hash}/end
//! GET  /ui/audit[?before=SEQ]   POST /ui/audit/filter   POST /ui/audit/verify
//! GET  /ui/audit/record/{seq}   GET /ui/audit/export.jsonl   GET /ui/audit/export.csv
//! GET  /ui/policies             POST /ui/policies/try
//! GET  /ui/health
//! GET  /ui/login                POST /ui/login          POST /ui/logout
//! GET  /ui/lang/{nl|en}?back=   GET /ui/static/console.css   GET /ui/static/console.js
//! ```
//!
//! Every POST carries the session's CSRF token (compared in constant time) and is refused when
//! the browser says it came from another site. Every change is audited
//! ([`crate::console::change_record`]) through the writer, and refused while the writer is
//! unhealthy. Statuses come from [`super::error::console_status`].

mod assets;
mod audit;
mod credentials;
mod health;
mod login;
mod pages;
mod policies;
mod tokens;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use crate::app::AppState;
use crate::console::i18n::{FieldError, Lang, Texts};
use crate::console::session::Session;
use crate::console::{Change, ConsoleError, Operator};

/// The session cookie.
const SESSION_COOKIE: &str = "pw_console";
/// The language cookie.
const LANG_COOKIE: &str = "pw_lang";
/// Largest form body.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What every console response carries.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (merged into the internal router, which gives them the state).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/static/console.css", get(assets::css))
        .route("/ui/static/console.js", get(assets::js))
        .route("/ui/lang/{lang}", get(language))
        .route("/ui/login", get(login::page).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route(
            "/ui/credentials",
            get(credentials::list).post(credentials::issue),
        )
        .route("/ui/credentials/filter", post(credentials::filter))
        .route("/ui/credentials/new", get(credentials::new))
        .route("/ui/credentials/{id}", get(credentials::show))
        .route("/ui/credentials/{id}/revoke", post(credentials::revoke))
        .route("/ui/tokens", get(tokens::list))
        .route("/ui/tokens/{hash}/end", post(tokens::end))
        .route("/ui/audit", get(audit::list))
        .route("/ui/audit/filter", post(audit::filter))
        .route("/ui/audit/verify", post(audit::verify))
        .route("/ui/audit/record/{seq}", get(audit::record))
        .route("/ui/audit/export.jsonl", get(audit::export_jsonl))
        .route("/ui/audit/export.csv", get(audit::export_csv))
        .route("/ui/policies", get(policies::list))
        .route("/ui/policies/try", post(policies::try_request))
        .route("/ui/health", get(health::page))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::map_response(security_headers))
}

/// The headers of every console answer: a strict CSP (scripts and styles only from here, forms
/// only to here, never in a frame), no referrer, no sniffing, no caching (pages hold BSNs).
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A cookie's value from the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Which page of the navigation is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Credentials,
    Tokens,
    Audit,
    Policies,
    Health,
    None,
}

/// What every console handler starts from: the state, the language, the session (created on
/// the first visit), the operator (if any) and the request's client certificate.
pub(super) struct Ctx {
    pub state: Arc<AppState>,
    pub lang: Lang,
    pub t: &'static Texts,
    pub session: Arc<Session>,
    new_session: bool,
    pub operator: Option<Operator>,
    pub cert: Option<crate::tls::ClientCert>,
    /// The path and query of this request (for the language toggle and the login's way back).
    pub here: String,
    cross_site: bool,
}

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let console = &state.console;
        let lang = Lang::choose(
            cookie(&parts.headers, LANG_COOKIE),
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let existing =
            cookie(&parts.headers, SESSION_COOKIE).and_then(|id| console.sessions.get(id));
        let (session, new_session) = match existing {
            Some(s) => (s, false),
            None => match console.sessions.create(None) {
                Ok(s) => (s, true),
                Err(_) => {
                    return Err(
                        (StatusCode::SERVICE_UNAVAILABLE, "console unavailable").into_response()
                    )
                }
            },
        };
        let cert = parts.extensions.get::<crate::tls::ClientCert>().cloned();
        let by_cert = cert
            .as_ref()
            .filter(|c| Operator::is_allowed(&console.settings, c))
            .map(|c| Operator::Certificate {
                subject: c.subject().to_owned(),
                fingerprint: c.fingerprint_sha256().to_owned(),
            });
        let operator = if console.settings.require_login {
            session.operator.clone().or(by_cert)
        } else {
            Some(by_cert.unwrap_or(Operator::Loopback))
        };
        let cross_site = parts
            .headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        Ok(Ctx {
            state: state.clone(),
            lang,
            t: lang.texts(),
            session,
            new_session,
            operator,
            cert,
            here: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/ui/".to_owned(), |p| p.as_str().to_owned()),
            cross_site,
        })
    }
}

/// A form's fields (each at most once).
pub(super) struct Form(HashMap<String, String>);

impl Form {
    /// A field, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> String {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// A field as sent ("" when absent).
    pub fn raw(&self, name: &str) -> String {
        self.0.get(name).cloned().unwrap_or_default()
    }

    /// Whether the field was sent.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Field errors of a form, shown next to their fields.
#[derive(Debug, Default)]
pub(super) struct Errors(Vec<(&'static str, FieldError)>);

impl Errors {
    pub fn add(&mut self, field: &'static str, e: FieldError) {
        if !self.0.iter().any(|(f, _)| *f == field) {
            self.0.push((field, e));
        }
    }

    pub fn of(&self, field: &str, lang: Lang) -> Option<String> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, e)| e.text(lang))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<(&'static str, FieldError)>> for Errors {
    fn from(v: Vec<(&'static str, FieldError)>) -> Self {
        Self(v)
    }
}

impl Ctx {
    /// The operator, or the login page.
    pub fn operator(&self) -> Result<&Operator, ConsoleError> {
        self.operator.as_ref().ok_or(ConsoleError::LoginRequired)
    }

    /// Reads a form sent from this console: not from another site, urlencoded, within the size
    /// and time limits, each field once, and carrying this session's CSRF token.
    pub async fn form(&self, headers: &HeaderMap, body: Body) -> Result<Form, ConsoleError> {
        if self.cross_site {
            return Err(ConsoleError::Csrf);
        }
        if !crate::http::is_media_type(headers, &["application/x-www-form-urlencoded"]) {
            return Err(ConsoleError::BadRequest(
                "a form (application/x-www-form-urlencoded)",
            ));
        }
        let bytes =
            crate::http::read_body(body, MAX_FORM_BYTES, self.state.live.get().client_timeout)
                .await?;
        let mut fields = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(&bytes) {
            if fields.insert(k.into_owned(), v.into_owned()).is_some() {
                return Err(ConsoleError::BadRequest("a field given twice"));
            }
        }
        let token = fields.get("csrf").map(String::as_str).unwrap_or_default();
        if self.new_session || !self.session.csrf_matches(token) {
            return Err(ConsoleError::Csrf);
        }
        Ok(Form(fields))
    }

    /// Writes the audit record of a change made by this session's operator (or, for a failed
    /// login, `requester`).
    pub async fn audit(&self, requester: String, change: &Change<'_>) -> Result<(), ConsoleError> {
        let record = crate::console::change_record(
            self.state.clock.as_ref(),
            requester,
            change,
            self.cert.as_ref(),
        );
        self.state.writer.write(record).await.map_err(|e| {
            tracing::error!(error = %e, "console change not audited");
            ConsoleError::AuditUnavailable
        })
    }

    /// Refuses a change while the audit log cannot be written.
    pub fn audit_ready(&self) -> Result<(), ConsoleError> {
        if self.state.writer.is_healthy() {
            Ok(())
        } else {
            Err(ConsoleError::AuditUnavailable)
        }
    }

    /// Adds the session cookie when this request began a session.
    fn with_cookie(&self, mut response: Response) -> Response {
        if self.new_session {
            if let Ok(v) = HeaderValue::from_str(&self.session_cookie(&self.session.id)) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// The session cookie for `id`.
    pub fn session_cookie(&self, id: &str) -> String {
        format!(
            "{SESSION_COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict{}",
            self.secure()
        )
    }

    fn secure(&self) -> &'static str {
        if self.state.console.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    }

    /// A whole page.
    pub fn page(&self, status: StatusCode, title: &str, nav: Nav, body: Markup) -> Response {
        let flash = self.session.take_flash();
        let html = pages::layout(self, title, nav, flash, body);
        self.with_cookie(
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html.into_string(),
            )
                .into_response(),
        )
    }

    /// 303 to a console path.
    pub fn redirect(&self, to: &str) -> Response {
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        self.with_cookie(r)
    }

    /// The answer of a handler: its page, or its error as a page.
    pub fn finish(&self, result: Result<Response, ConsoleError>) -> Response {
        match result {
            Ok(r) => self.with_cookie(r),
            Err(e) => self.error(&e),
        }
    }

    /// An error as a page (the login page for [`ConsoleError::LoginRequired`]).
    pub fn error(&self, e: &ConsoleError) -> Response {
        let status = super::error::console_status(e);
        if matches!(e, ConsoleError::LoginRequired) {
            let next =
                url::form_urlencoded::byte_serialize(self.here.as_bytes()).collect::<String>();
            let mut r = self.redirect(&format!("/ui/login?next={next}"));
            *r.status_mut() = status;
            return r;
        }
        match e {
            ConsoleError::Store(err) => tracing::error!(error = %err, "console: store failed"),
            other => tracing::info!(error = %other, "console: request refused"),
        }
        let t = self.t;
        let message = match e {
            ConsoleError::Csrf => t.err_csrf,
            ConsoleError::RateLimited => t.err_rate_limited,
            ConsoleError::LoginFailed => t.err_login_failed,
            ConsoleError::BadRequest(_) => t.err_bad_request,
            ConsoleError::NotFound => t.err_not_found,
            ConsoleError::Store(_) => t.err_store,
            ConsoleError::AuditUnavailable => t.err_audit,
            ConsoleError::Body(_) => t.err_body,
            ConsoleError::Invalid => t.err_invalid,
            ConsoleError::LoginRequired => t.err_login_required,
        };
        self.page(
            status,
            t.error_title,
            Nav::None,
            pages::error_body(self, message),
        )
    }

    /// The status of a form shown again with field errors.
    pub fn invalid_status() -> StatusCode {
        super::error::console_status(&ConsoleError::Invalid)
    }
}

/// `/ui/` → the credentials.
async fn home(ctx: Ctx) -> Response {
    ctx.redirect("/ui/credentials")
}

/// A console path to go back to after a redirect: only `/ui/...`, never another site.
pub(super) fn safe_back(path: &str) -> &str {
    let ok = path.starts_with("/ui/")
        && !path.starts_with("/ui//")
        && !path.contains(['\\', '\r', '\n'])
        && path.len() < 2000;
    if ok && !path.starts_with("/ui/lang/") {
        path
    } else {
        "/ui/credentials"
    }
}

/// The first value of a query parameter (the console's links carry at most one of each; a
/// malformed query is no error, just no value).
pub(super) fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The language toggle: remembers the choice for a year and goes back.
async fn language(
    ctx: Ctx,
    axum::extract::Path(lang): axum::extract::Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let Some(lang) = Lang::parse(&lang) else {
        return ctx.error(&ConsoleError::NotFound);
    };
    let back = query_param(q.as_deref(), "back");
    let mut r = ctx.redirect(safe_back(back.as_deref().unwrap_or("/ui/credentials")));
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/ui; Max-Age=31536000; HttpOnly; SameSite=Strict{}",
        lang.code(),
        ctx.secure()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn not_found(ctx: Ctx) -> Response {
    ctx.error(&ConsoleError::NotFound)
}

/// Percent-encodes one path segment (a credential id holds `#` and `:`).
pub(super) fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `2026-12-04 12:00:00` (UTC) of unix seconds.
pub(super) fn utc(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t).map_or_else(
        |_| t.to_string(),
        |d| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_gone_back_to() {
        assert_eq!(safe_back("/ui/audit?before=3"), "/ui/audit?before=3");
        for bad in [
            "//evil.example",
            "https://evil.example/ui/",
            "/ui//evil",
            "/ui/lang/en",
            "/x",
            "/ui/\r\nSet-Cookie: a",
        ] {
            assert_eq!(safe_back(bad), "/ui/credentials", "{bad}");
        }
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; pw_lang=en".parse().unwrap());
        h.append(header::COOKIE, "pw_console=xyz".parse().unwrap());
        assert_eq!(cookie(&h, "pw_lang"), Some("en"));
        assert_eq!(cookie(&h, "pw_console"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        assert_eq!(segment("did:key:z6#1"), "did%3Akey%3Az6%231");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
    }
}
