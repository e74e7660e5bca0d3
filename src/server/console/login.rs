//! Login and logout, when the console requires a login (a non-loopback internal listener, or
//! `[console] require_login = true`): a console account's password (argon2id, one
//! verification whether or not the account exists), rate-limited per name and in total; a
//! login begins a new session. Logins, failed logins and logouts are audited.

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use maud::html;

use super::pages::{self, field, Input};
use super::{safe_back, Ctx, Errors, Nav};
use crate::console::i18n::FieldError;
use crate::console::session::Flash;
use crate::console::{auth, valid_account_name, Change, ConsoleError, Operator};

/// `GET /ui/login`.
pub(super) async fn page(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let next = super::query_param(q.as_deref(), "next");
    let next = safe_back(next.as_deref().unwrap_or("/ui/credentials")).to_owned();
    if ctx.operator.is_some() {
        return ctx.redirect(&next);
    }
    form_page(&ctx, "", &next, &Errors::default(), None)
}

fn form_page(
    ctx: &Ctx,
    name: &str,
    next: &str,
    errors: &Errors,
    status: Option<axum::http::StatusCode>,
) -> Response {
    let t = ctx.t;
    let body = html! {
        form.card.login method="post" action="/ui/login" novalidate {
            p { (t.login_intro) }
            (pages::csrf(ctx))
            input type="hidden" name="next" value=(next);
            (field(ctx, errors, "name", t.account_name, name, Input::Text, None))
            (field(ctx, errors, "password", t.password, "", Input::Password, None))
            div.buttons { button type="submit" { (t.login_button) } }
            @if !ctx.state.console.settings.client_certs.is_empty() {
                p.hint { (t.login_cert_hint) }
            }
        }
    };
    ctx.page(
        status.unwrap_or(axum::http::StatusCode::OK),
        t.login_title,
        Nav::None,
        body,
    )
}

/// `POST /ui/login`.
pub(super) async fn submit(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        let form = ctx.form(&headers, body).await?;
        let next = safe_back(&form.get("next")).to_owned();
        let name = form.get("name");
        let password = form.raw("password");
        let console = &ctx.state.console;
        let mut errors = Errors::default();
        if name.is_empty() {
            errors.add("name", FieldError::Required);
        }
        if password.is_empty() {
            errors.add("password", FieldError::Required);
        }
        if !errors.is_empty() {
            return Ok(form_page(
                &ctx,
                &name,
                &next,
                &errors,
                Some(Ctx::invalid_status()),
            ));
        }
        if !console.logins.allows(&name) {
            tracing::warn!("console login refused: too many failed attempts");
            errors.add("password", FieldError::RateLimited);
            let status = super::super::error::console_status(&ConsoleError::RateLimited);
            return Ok(form_page(&ctx, &name, &next, &errors, Some(status)));
        }
        ctx.audit_ready()?;
        let ok =
            auth::verify_password(&ctx.state.store, &name, &password, &console.dummy_hash).await?;
        let shown = if valid_account_name(&name) {
            name.clone()
        } else {
            "(invalid)".to_owned()
        };
        if !ok {
            console.logins.failed(&name);
            let status = super::super::error::console_status(&ConsoleError::LoginFailed);
            ctx.audit(
                format!("console:password:{shown}"),
                &Change {
                    action: "login-failed",
                    detail: None,
                    path: "/ui/login",
                    purpose: "",
                    bsn: None,
                    decision: "deny",
                    status: status.as_u16(),
                },
            )
            .await?;
            errors.add("password", FieldError::LoginFailed);
            return Ok(form_page(&ctx, &name, &next, &errors, Some(status)));
        }
        console.logins.succeeded(&name);
        let operator = Operator::Password { name: shown };
        ctx.audit(
            operator.audit_name(),
            &Change {
                action: "login",
                detail: None,
                path: "/ui/login",
                purpose: "",
                bsn: None,
                decision: "permit",
                status: 303,
            },
        )
        .await?;
        // A new session for the operator: the id the browser had before the login is dropped.
        let session = console.sessions.create(Some(operator))?;
        console.sessions.remove(&ctx.session.id);
        session.flash(Flash::LoggedIn);
        let mut r = ctx.redirect(&next);
        if let Ok(v) = HeaderValue::from_str(&ctx.session_cookie(&session.id)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok(r)
    }
    .await;
    ctx.finish(r)
}

/// `POST /ui/logout`.
pub(super) async fn logout(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        let operator = ctx.operator()?.clone();
        ctx.form(&headers, body).await?;
        ctx.state.console.sessions.remove(&ctx.session.id);
        ctx.audit(
            operator.audit_name(),
            &Change {
                action: "logout",
                detail: None,
                path: "/ui/logout",
                purpose: "",
                bsn: None,
                decision: "permit",
                status: 303,
            },
        )
        .await?;
        let mut r = ctx.redirect("/ui/login");
        let cleared = format!("{}; Max-Age=0", ctx.session_cookie(""));
        if let Ok(v) = HeaderValue::from_str(&cleared) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok(r)
    }
    .await;
    ctx.finish(r)
}
