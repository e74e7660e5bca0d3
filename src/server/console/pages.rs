//! The console's layout and the pieces every page uses: the header with the navigation, the
//! language toggle and the operator; form fields with their error beside them; status badges;
//! times.

use maud::{html, Markup, DOCTYPE};

use super::{Ctx, Errors, Nav};
use crate::console::session::Flash;
use crate::console::Operator;

/// The whole page around `body`.
pub(super) fn layout(
    ctx: &Ctx,
    title: &str,
    nav: Nav,
    flash: Option<Flash>,
    body: Markup,
) -> Markup {
    let t = ctx.t;
    let toggle = format!(
        "/ui/lang/{}?back={}",
        ctx.lang.other().code(),
        url::form_urlencoded::byte_serialize(ctx.here.as_bytes()).collect::<String>()
    );
    let item = |target: Nav, href: &str, label: &str| {
        html! {
            a href=(href) aria-current=[(nav == target).then_some("page")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · poortwachter" }
                link rel="stylesheet" href="/ui/static/console.css";
                script src="/ui/static/console.js" defer {}
            }
            body {
                header.top {
                    div.brand {
                        a href="/ui/credentials" { "poortwachter" }
                        span.sub { (t.console) }
                    }
                    nav aria-label=(t.console) {
                        (item(Nav::Credentials, "/ui/credentials", t.nav_credentials))
                        (item(Nav::Tokens, "/ui/tokens", t.nav_tokens))
                        (item(Nav::Audit, "/ui/audit", t.nav_audit))
                        (item(Nav::Policies, "/ui/policies", t.nav_policies))
                        (item(Nav::Health, "/ui/health", t.nav_health))
                    }
                    div.who {
                        a.lang href=(toggle) hreflang=(ctx.lang.other().code()) lang=(ctx.lang.other().code()) title=(t.other_language_title) { (t.other_language) }
                        @if let Some(op) = &ctx.operator {
                            span.operator { (t.logged_in_as) " " strong { (operator_name(ctx, op)) } }
                            @if matches!(op, Operator::Password { .. }) {
                                form.inline method="post" action="/ui/logout" {
                                    (csrf(ctx))
                                    button.link type="submit" { (t.logout) }
                                }
                            }
                        }
                    }
                }
                main {
                    @if let Some(f) = flash {
                        p.flash role="status" { (flash_text(ctx, f)) }
                    }
                    h1 { (title) }
                    (body)
                }
                footer {
                    span { (t.custodian) ": " code { (ctx.state.custodian.identity.did) } }
                    span { (t.version) " " (crate::console::version()) }
                }
            }
        }
    }
}

/// The operator as the header shows it.
pub(super) fn operator_name(ctx: &Ctx, op: &Operator) -> String {
    match op {
        Operator::Loopback => ctx.t.operator_loopback.to_owned(),
        Operator::Password { name } => name.clone(),
        Operator::Certificate { subject, .. } => {
            format!("{} ({})", subject, ctx.t.operator_certificate)
        }
    }
}

fn flash_text(ctx: &Ctx, f: Flash) -> &'static str {
    let t = ctx.t;
    match f {
        Flash::Issued => t.flash_issued,
        Flash::Revoked => t.flash_revoked,
        Flash::AlreadyRevoked => t.flash_already_revoked,
        Flash::TokenEnded => t.flash_token_ended,
        Flash::TokenAlreadyEnded => t.flash_token_already_ended,
        Flash::LoggedIn => t.flash_logged_in,
        Flash::LoggedOut => t.flash_logged_out,
    }
}

/// The body of an error page.
pub(super) fn error_body(ctx: &Ctx, message: &str) -> Markup {
    html! {
        p.error-box role="alert" { (message) }
        p { a href="/ui/credentials" { (ctx.t.back) } }
    }
}

/// The session's CSRF token as a hidden field.
pub(super) fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.session.csrf()); }
}

/// The kind of an input.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Text,
    Password,
    /// A text field with suggestions (`<datalist>` of this id).
    Suggest(&'a str),
}

/// A labelled input with its error (if any) right below it, tied to it for screen readers.
pub(super) fn field(
    ctx: &Ctx,
    errors: &Errors,
    name: &str,
    label: &str,
    value: &str,
    input: Input<'_>,
    hint: Option<&str>,
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.of(name, ctx.lang);
    let described = match (&error, hint) {
        (Some(_), _) => Some(format!("{id}-error")),
        (None, Some(_)) => Some(format!("{id}-hint")),
        (None, None) => None,
    };
    let (kind, list) = match input {
        Input::Text => ("text", None),
        Input::Password => ("password", None),
        Input::Suggest(l) => ("text", Some(l)),
    };
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value) list=[list]
                aria-invalid=[error.is_some().then_some("true")]
                aria-describedby=[described.as_deref()]
                autocomplete=[matches!(input, Input::Password).then_some("current-password")];
            @if let Some(e) = &error {
                p.field-error id=(format!("{id}-error")) { (e) }
            } @else if let Some(h) = hint {
                p.hint id=(format!("{id}-hint")) { (h) }
            }
        }
    }
}

/// A labelled `<select>` with its error below it.
pub(super) fn select(
    ctx: &Ctx,
    errors: &Errors,
    name: &str,
    label: &str,
    value: &str,
    options: &[(&str, &str)],
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.of(name, ctx.lang);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.is_some().then_some("true")]
                aria-describedby=[error.is_some().then(|| format!("{id}-error"))] {
                @for (v, text) in options {
                    option value=(v) selected[*v == value] { (text) }
                }
            }
            @if let Some(e) = &error {
                p.field-error id=(format!("{id}-error")) { (e) }
            }
        }
    }
}

/// A time as UTC text in a `<time>` element (the script shows it in the browser's time zone).
pub(super) fn time(t: i64) -> Markup {
    let iso = time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    html! { time datetime=(iso) { (super::utc(t)) } }
}

/// A status badge.
pub(super) fn badge(class: &str, text: &str) -> Markup {
    html! { span class=(format!("badge {class}")) { (text) } }
}

/// The badge of a decision.
pub(super) fn decision_badge(ctx: &Ctx, decision: &str) -> Markup {
    let t = ctx.t;
    match decision {
        "permit" => badge("ok", t.decision_permit),
        "deny" => badge("warn", t.decision_deny),
        "error" => badge("bad", t.decision_error),
        other => badge("", other),
    }
}

/// A value with a copy button (shown only with the script).
pub(super) fn copyable(ctx: &Ctx, value: &str) -> Markup {
    html! {
        span.copyable {
            code { (value) }
            " "
            button.copy type="button" hidden data-copy=(value) data-done=(ctx.t.copied) { (ctx.t.copy) }
        }
    }
}

/// A summary line of the form's errors, at the top.
pub(super) fn form_errors(errors: &Errors, text: &str) -> Markup {
    html! {
        @if !errors.is_empty() {
            p.error-box role="alert" { (text) }
        }
    }
}
