//! Credentials: the list with its filter (kept in the session, so a BSN never travels in a
//! URL), the issue form (the checks of [`crate::admin::IssueInput`], every field's problem next
//! to it), the details page (the full BSN, the signed credential) and revocation (a reason, then
//! a confirmation; applied at once on this instance, through the store on the others).

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};

use super::pages::{self, field, select, time, Input};
use super::{segment, Ctx, Errors, Nav};
use crate::admin::{self, AdminError, IssueInput};
use crate::bsn::Bsn;
use crate::console::i18n::FieldError;
use crate::console::session::{CredentialFilterForm, Flash};
use crate::console::{mask_bsn, Change, ConsoleError};
use crate::credential::CredentialError;
use crate::store::{CredentialRecord, RevokeOutcome, Status};

/// `GET /ui/credentials`.
pub(super) async fn list(ctx: Ctx) -> Response {
    let r = list_page(&ctx, None, Errors::default()).await;
    ctx.finish(r)
}

/// `POST /ui/credentials/filter`: a valid filter is kept in the session.
pub(super) async fn filter(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        ctx.operator()?;
        let form = ctx.form(&headers, body).await?;
        let typed = if form.has("clear") {
            CredentialFilterForm::default()
        } else {
            CredentialFilterForm {
                subject_did: form.get("subject_did"),
                purpose: form.get("purpose"),
                status: form.get("status"),
                bsn: form.get("bsn"),
            }
        };
        let errors = filter_errors(&typed);
        if !errors.is_empty() {
            return list_page(&ctx, Some(typed), errors).await;
        }
        if let Ok(mut f) = ctx.session.credential_filter.lock() {
            *f = typed;
        }
        Ok(ctx.redirect("/ui/credentials"))
    }
    .await;
    ctx.finish(r)
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The filter's problems, by the checks of [`admin::filter`].
fn filter_errors(f: &CredentialFilterForm) -> Errors {
    let mut errors = Errors::default();
    if let Err(AdminError::Invalid { field, .. }) =
        admin::filter(None, None, nonempty(&f.bsn), None)
    {
        if field == "bsn" {
            if let Err(e) = Bsn::parse(&f.bsn) {
                errors.add("bsn", FieldError::Bsn(e));
            }
        }
    }
    if admin::filter(None, None, None, nonempty(&f.status)).is_err() {
        errors.add("status", FieldError::Status);
    }
    errors
}

fn status_text(ctx: &Ctx, s: Status) -> Markup {
    let t = ctx.t;
    match s {
        Status::Active => pages::badge("ok", t.status_active),
        Status::Revoked => pages::badge("bad", t.status_revoked),
        Status::Expired => pages::badge("muted", t.status_expired),
    }
}

/// The last part of a credential id (after `#`), enough to tell them apart in a list.
fn short_id(id: &str) -> &str {
    id.rsplit_once('#').map_or(id, |(_, s)| s)
}

async fn list_page(
    ctx: &Ctx,
    typed: Option<CredentialFilterForm>,
    errors: Errors,
) -> Result<Response, ConsoleError> {
    ctx.operator()?;
    let t = ctx.t;
    let f = typed.unwrap_or_else(|| ctx.session.credential_filter());
    let records = if errors.is_empty() {
        let filter = admin::filter(
            nonempty(&f.subject_did),
            nonempty(&f.purpose),
            nonempty(&f.bsn),
            nonempty(&f.status),
        )
        .map_err(|_| ConsoleError::Invalid)?;
        Some(
            ctx.state
                .custodian
                .list(&filter)
                .await
                .map_err(admin_error)?,
        )
    } else {
        None
    };
    let now = ctx.state.clock.now().unix_timestamp();
    let policies = ctx.state.policies.borrow().clone();
    let statuses = [
        ("", t.any),
        ("active", t.status_active),
        ("revoked", t.status_revoked),
        ("expired", t.status_expired),
    ];
    let body = html! {
        p.intro { (t.credentials_intro) }
        p.actions { a.button href="/ui/credentials/new" { (t.new_credential) } }
        (pages::form_errors(&errors, t.filter_has_errors))
        form.filters method="post" action="/ui/credentials/filter" {
            (pages::csrf(ctx))
            (field(ctx, &errors, "subject_did", t.subject_did, &f.subject_did, Input::Text, None))
            (field(ctx, &errors, "purpose", t.purpose, &f.purpose, Input::Suggest("purposes"), None))
            (select(ctx, &errors, "status", t.status, &f.status, &statuses))
            (field(ctx, &errors, "bsn", t.bsn, &f.bsn, Input::Text, None))
            div.buttons {
                button type="submit" { (t.filter) }
                button.secondary type="submit" name="clear" value="1" { (t.clear_filter) }
            }
            (purpose_list(&policies))
        }
        @if let Some(records) = &records {
            @if records.is_empty() {
                p.empty { (t.none_found) }
            } @else {
                p.count { (t.shown.replace("{n}", &records.len().to_string())) }
                table.list {
                    thead { tr {
                        th { (t.col_id) } th { (t.subject_did) } th { (t.purpose) } th { (t.bsn) }
                        th { (t.consent) } th { (t.col_issued) } th { (t.col_expires) } th { (t.status) }
                    } }
                    tbody {
                        @for r in records {
                            tr {
                                td { a href=(format!("/ui/credentials/{}", segment(&r.id))) title=(r.id) { code { (short_id(&r.id)) } } }
                                td.did { (r.subject_did) }
                                td { (r.purpose) }
                                td { code { (mask_bsn(r.bsn.as_str())) } }
                                td { (consent_text(ctx, &r.consent_type)) }
                                td { (time(r.issued_at)) }
                                td { @if let Some(e) = r.expires_at { (time(e)) } @else { span.muted { (t.no_expiry) } } }
                                td { (status_text(ctx, r.status(now))) }
                            }
                        }
                    }
                }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        Ctx::invalid_status()
    };
    Ok(ctx.page(status, t.credentials_title, Nav::Credentials, body))
}

fn consent_text(ctx: &Ctx, c: &str) -> String {
    match c {
        "implied" => ctx.t.consent_implied.into(),
        "explicit" => ctx.t.consent_explicit.into(),
        other => other.into(),
    }
}

fn purpose_list(policies: &crate::policy::PolicySet) -> Markup {
    html! {
        datalist id="purposes" {
            @for p in policies.purposes() { option value=(p) {} }
        }
    }
}

/// The issue form's fields as typed.
#[derive(Default)]
struct IssueForm {
    subject_did: String,
    bsn: String,
    purpose: String,
    consent: String,
    expires: String,
    resources: String,
}

/// `GET /ui/credentials/new`.
pub(super) async fn new(ctx: Ctx) -> Response {
    let r = ctx.operator().map(|_| {
        let policies = ctx.state.policies.borrow().clone();
        let purpose = policies.purposes().next().unwrap_or_default().to_owned();
        issue_page(
            &ctx,
            &IssueForm {
                purpose,
                consent: "implied".into(),
                ..IssueForm::default()
            },
            &Errors::default(),
        )
    });
    ctx.finish(r)
}

fn issue_page(ctx: &Ctx, f: &IssueForm, errors: &Errors) -> Response {
    let t = ctx.t;
    let policies = ctx.state.policies.borrow().clone();
    let consent_error = errors.of("consent", ctx.lang);
    let resources_error = errors.of("resources", ctx.lang);
    let body = html! {
        p.intro { (t.issue_intro) }
        (pages::form_errors(errors, t.form_has_errors))
        @if let Some(e) = errors.of("_form", ctx.lang) { p.error-box role="alert" { (e) } }
        form.card method="post" action="/ui/credentials" novalidate {
            (pages::csrf(ctx))
            (field(ctx, errors, "subject_did", t.subject_did, &f.subject_did, Input::Text, None))
            (field(ctx, errors, "bsn", t.bsn, &f.bsn, Input::Text, None))
            (field(ctx, errors, "purpose", t.purpose, &f.purpose, Input::Suggest("purposes"), Some(t.purpose_hint)))
            (purpose_list(&policies))
            fieldset.field.invalid[consent_error.is_some()] aria-describedby=[consent_error.is_some().then_some("f-consent-error")] {
                legend { (t.consent) }
                label.choice { input type="radio" name="consent" value="implied" checked[f.consent == "implied"]; " " (t.consent_implied) }
                label.choice { input type="radio" name="consent" value="explicit" checked[f.consent == "explicit"]; " " (t.consent_explicit) }
                @if let Some(e) = &consent_error { p.field-error id="f-consent-error" { (e) } }
            }
            (field(ctx, errors, "expires", t.expires, &f.expires, Input::Text, Some(t.expires_hint)))
            div.field.invalid[resources_error.is_some()] {
                label for="f-resources" { (t.resources) }
                textarea id="f-resources" name="resources" rows="3"
                    aria-invalid=[resources_error.is_some().then_some("true")]
                    aria-describedby=(if resources_error.is_some() { "f-resources-error" } else { "f-resources-hint" }) { (f.resources) }
                @if let Some(e) = &resources_error { p.field-error id="f-resources-error" { (e) } }
                @else { p.hint id="f-resources-hint" { (t.resources_hint) } }
            }
            div.buttons {
                button type="submit" { (t.issue_button) }
                a.button.secondary href="/ui/credentials" { (t.cancel) }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        Ctx::invalid_status()
    };
    ctx.page(status, t.issue_title, Nav::Credentials, body)
}

/// Where an issuing problem goes, in the console's words.
fn issue_field_error(e: &AdminError, f: &IssueForm) -> (&'static str, FieldError) {
    match e {
        AdminError::Invalid { field, .. } => match *field {
            "subject_did" => ("subject_did", FieldError::Did),
            "bsn" => (
                "bsn",
                FieldError::Bsn(
                    Bsn::parse(&f.bsn)
                        .err()
                        .unwrap_or(crate::bsn::BsnError::Format),
                ),
            ),
            "consent" => ("consent", FieldError::Consent),
            "expires" => ("expires", FieldError::ExpiresFormat),
            "resource" => ("resources", FieldError::Resource),
            _ => ("_form", FieldError::IssueFailed("invalid_request")),
        },
        AdminError::Credential(c) => match c {
            CredentialError::UnknownPurpose(_) => ("purpose", FieldError::UnknownPurpose),
            CredentialError::ConsentNotAllowed { .. } => ("consent", FieldError::ConsentNotAllowed),
            CredentialError::ExpirationRequired(_) => ("expires", FieldError::ExpiresRequired),
            CredentialError::ValidityTooLong(n) => ("expires", FieldError::ValidityTooLong(*n)),
            CredentialError::Malformed(m) if m.starts_with("expiration") => {
                ("expires", FieldError::ExpiresPast)
            }
            CredentialError::Malformed(m) if m.starts_with("a resource") => {
                ("resources", FieldError::Resource)
            }
            CredentialError::Malformed(m) if m.starts_with("subject DID") => {
                ("subject_did", FieldError::Did)
            }
            other => ("_form", FieldError::IssueFailed(other.code())),
        },
        AdminError::NotFound | AdminError::Store(_) => {
            ("_form", FieldError::IssueFailed("store_unavailable"))
        }
    }
}

fn admin_error(e: AdminError) -> ConsoleError {
    match e {
        AdminError::NotFound => ConsoleError::NotFound,
        AdminError::Store(s) => ConsoleError::Store(s),
        _ => ConsoleError::Invalid,
    }
}

/// `POST /ui/credentials`: issues with the CLI's checks; any problem shows the form again with
/// each error next to its field, and nothing is stored.
pub(super) async fn issue(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        let operator = ctx.operator()?.clone();
        let form = ctx.form(&headers, body).await?;
        let f = IssueForm {
            subject_did: form.get("subject_did"),
            bsn: form.get("bsn"),
            purpose: form.get("purpose"),
            consent: form.get("consent"),
            expires: form.get("expires"),
            resources: form.raw("resources"),
        };
        let mut errors = Errors::default();
        let mut resources = Vec::new();
        for line in f.resources.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match admin::parse_resource(line) {
                Ok(r) => resources.push(r),
                Err(_) => errors.add("resources", FieldError::Resource),
            }
        }
        let input = IssueInput {
            subject_did: f.subject_did.clone(),
            bsn: f.bsn.clone(),
            purpose: f.purpose.clone(),
            consent: f.consent.clone(),
            expires: nonempty(&f.expires),
            resources,
        };
        let policies = ctx.state.policies.borrow().clone();
        for e in input.problems(&policies) {
            let (field, fe) = issue_field_error(&e, &f);
            errors.add(field, fe);
        }
        if !errors.is_empty() {
            return Ok(issue_page(&ctx, &f, &errors));
        }
        ctx.audit_ready()?;
        let (_, record) = match ctx.state.custodian.issue(&input, &policies).await {
            Ok(issued) => issued,
            Err(AdminError::Store(e)) => return Err(ConsoleError::Store(e)),
            Err(e) => {
                let (field, fe) = issue_field_error(&e, &f);
                errors.add(field, fe);
                return Ok(issue_page(&ctx, &f, &errors));
            }
        };
        tracing::info!(credential_id = %record.id, purpose = %record.purpose, subject_did = %record.subject_did, "credential issued in the console");
        let path = format!("/ui/credentials/{}", segment(&record.id));
        ctx.audit(
            operator.audit_name(),
            &Change {
                action: "credential-issued",
                detail: Some(&record.id),
                path: "/ui/credentials",
                purpose: &record.purpose,
                bsn: Some(record.bsn.clone()),
                decision: "permit",
                status: 303,
            },
        )
        .await?;
        ctx.session.flash(Flash::Issued);
        Ok(ctx.redirect(&path))
    }
    .await;
    ctx.finish(r)
}

/// `GET /ui/credentials/{id}`.
pub(super) async fn show(ctx: Ctx, Path(id): Path<String>) -> Response {
    let r = async {
        ctx.operator()?;
        let record = ctx.state.custodian.show(&id).await.map_err(admin_error)?;
        Ok(details_page(&ctx, &record, "", &Errors::default()))
    }
    .await;
    ctx.finish(r)
}

fn details_page(ctx: &Ctx, r: &CredentialRecord, reason: &str, errors: &Errors) -> Response {
    let t = ctx.t;
    let now = ctx.state.clock.now().unix_timestamp();
    let pretty = serde_json::from_str::<serde_json::Value>(&r.document)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| r.document.clone());
    let reason_error = errors.of("reason", ctx.lang);
    let body = html! {
        (pages::form_errors(errors, t.form_has_errors))
        dl.facts {
            dt { (t.col_id) } dd { (pages::copyable(ctx, &r.id)) }
            dt { (t.status) } dd { (status_text(ctx, r.status(now))) }
            dt { (t.subject_did) } dd.did { (r.subject_did) }
            dt { (t.purpose) } dd { (r.purpose) }
            dt { (t.bsn) } dd { code { (r.bsn.as_str()) } }
            dt { (t.consent) } dd { (consent_text(ctx, &r.consent_type)) }
            dt { (t.issuer) } dd.did { (r.issuer) }
            dt { (t.col_issued) } dd { (time(r.issued_at)) }
            dt { (t.col_expires) } dd { @if let Some(e) = r.expires_at { (time(e)) } @else { (t.no_expiry) } }
            @if let Some(rev) = &r.revocation {
                dt { (t.revoked_at) } dd { (time(rev.revoked_at)) }
                dt { (t.reason) } dd { (rev.reason) }
            }
        }
        @if r.revocation.is_none() {
            section.card.danger {
                h2 { (t.revoke_title) }
                p { (t.revoke_intro) }
                form method="post" action=(format!("/ui/credentials/{}/revoke", segment(&r.id))) novalidate {
                    (pages::csrf(ctx))
                    div.field.invalid[reason_error.is_some()] {
                        label for="f-reason" { (t.reason) }
                        textarea id="f-reason" name="reason" rows="2"
                            aria-invalid=[reason_error.is_some().then_some("true")]
                            aria-describedby=[reason_error.is_some().then_some("f-reason-error")] { (reason) }
                        @if let Some(e) = &reason_error { p.field-error id="f-reason-error" { (e) } }
                    }
                    div.buttons { button.danger type="submit" { (t.revoke_button) } }
                }
            }
        }
        details.json {
            summary { (t.credential_json) }
            pre { (pretty) }
        }
        p { a href="/ui/credentials" { (t.back) } }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        Ctx::invalid_status()
    };
    ctx.page(
        status,
        &format!("{} {}", t.credential_title, short_id(&r.id)),
        Nav::Credentials,
        body,
    )
}

/// `POST /ui/credentials/{id}/revoke`: a reason is required (shown next to the field, nothing
/// changed); then a confirmation page; then the revocation, applied here at once and audited.
pub(super) async fn revoke(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let r = async {
        let operator = ctx.operator()?.clone();
        let form = ctx.form(&headers, body).await?;
        let record = ctx.state.custodian.show(&id).await.map_err(admin_error)?;
        let typed = form.raw("reason");
        let reason = match admin::revocation_reason(&typed) {
            Ok(r) => r.to_owned(),
            Err(_) => {
                let mut errors = Errors::default();
                errors.add("reason", FieldError::Reason);
                return Ok(details_page(&ctx, &record, &typed, &errors));
            }
        };
        if form.get("confirm") != "yes" {
            return Ok(confirm_page(&ctx, &record, &reason));
        }
        ctx.audit_ready()?;
        let outcome = ctx
            .state
            .custodian
            .revoke(&id, &reason)
            .await
            .map_err(admin_error)?;
        // This instance applies its own revocation at once; the others read it from the store.
        ctx.state.revocations.insert(&id);
        let already = matches!(outcome, RevokeOutcome::AlreadyRevoked(_));
        if !already {
            tracing::info!(credential_id = %id, "credential revoked in the console");
            ctx.audit(
                operator.audit_name(),
                &Change {
                    action: "credential-revoked",
                    detail: Some(&format!("{id}: {reason}")),
                    path: &format!("/ui/credentials/{}/revoke", segment(&id)),
                    purpose: &record.purpose,
                    bsn: Some(record.bsn.clone()),
                    decision: "permit",
                    status: 303,
                },
            )
            .await?;
        }
        ctx.session.flash(if already {
            Flash::AlreadyRevoked
        } else {
            Flash::Revoked
        });
        Ok(ctx.redirect(&format!("/ui/credentials/{}", segment(&id))))
    }
    .await;
    ctx.finish(r)
}

fn confirm_page(ctx: &Ctx, r: &CredentialRecord, reason: &str) -> Response {
    let t = ctx.t;
    let body = html! {
        section.card.danger {
            p { strong { (t.confirm_revoke_text) } }
            dl.facts {
                dt { (t.col_id) } dd { code { (r.id) } }
                dt { (t.subject_did) } dd.did { (r.subject_did) }
                dt { (t.purpose) } dd { (r.purpose) }
                dt { (t.bsn) } dd { code { (mask_bsn(r.bsn.as_str())) } }
                dt { (t.reason) } dd { (reason) }
            }
            form method="post" action=(format!("/ui/credentials/{}/revoke", segment(&r.id))) {
                (pages::csrf(ctx))
                input type="hidden" name="reason" value=(reason);
                input type="hidden" name="confirm" value="yes";
                div.buttons {
                    button.danger type="submit" { (t.confirm_revoke_button) }
                    a.button.secondary href=(format!("/ui/credentials/{}", segment(&r.id))) { (t.cancel) }
                }
            }
        }
    };
    ctx.page(
        StatusCode::OK,
        t.confirm_revoke_title,
        Nav::Credentials,
        body,
    )
}
