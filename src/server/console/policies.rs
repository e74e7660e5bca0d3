//! Policies: each purpose's token and credential rules and allowed requests, and a "try a
//! request" box that runs [`crate::policy::check::check`], the decision of `policy check`.
//! The box is a POST (its BSN stays out of URLs).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};

use super::pages::{self, field, Input};
use super::{Ctx, Errors, Form, Nav};
use crate::console::i18n::FieldError;
use crate::console::ConsoleError;
use crate::policy::check::{check, CheckError, CheckOutcome};
use crate::policy::request::{ParamRule, Rule};
use crate::policy::{ResponseFormat, ResponsePolicy};

/// The try box's fields as typed.
struct TryForm {
    purpose: String,
    request: String,
    form: String,
    bsn: String,
    patients: String,
}

/// `GET /ui/policies`.
pub(super) async fn list(ctx: Ctx) -> Response {
    let r = ctx.operator().map(|_| {
        let policies = ctx.state.policies.borrow().clone();
        let purpose = policies.purposes().next().unwrap_or_default().to_owned();
        page(
            &ctx,
            &TryForm {
                purpose,
                request: "GET /Patient/pat-1".into(),
                form: String::new(),
                bsn: "999999990".into(),
                patients: "pat-1".into(),
            },
            &Errors::default(),
            None,
        )
    });
    ctx.finish(r)
}

/// `POST /ui/policies/try`.
pub(super) async fn try_request(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        ctx.operator()?;
        let form: Form = ctx.form(&headers, body).await?;
        let f = TryForm {
            purpose: form.get("purpose"),
            request: form.get("request"),
            form: form.get("form"),
            bsn: form.get("bsn"),
            patients: form.get("patients"),
        };
        let patients: Vec<String> = f
            .patients
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let policies = ctx.state.policies.borrow().clone();
        let mut errors = Errors::default();
        let outcome = match check(
            &policies,
            &f.purpose,
            &f.request,
            Some(crate::policy::check::CheckBody::Form(&f.form)),
            &f.bsn,
            &patients,
        ) {
            Ok(o) => Some(o),
            Err(CheckError::UnknownPurpose(_)) => {
                errors.add("purpose", FieldError::UnknownPurpose);
                None
            }
            Err(CheckError::RequestLine) => {
                errors.add("request", FieldError::RequestLine);
                None
            }
            Err(CheckError::Bsn(e)) => {
                errors.add("bsn", FieldError::Bsn(e));
                None
            }
        };
        Ok::<_, ConsoleError>(page(&ctx, &f, &errors, outcome.as_ref()))
    }
    .await;
    ctx.finish(r)
}

fn page(ctx: &Ctx, f: &TryForm, errors: &Errors, outcome: Option<&CheckOutcome>) -> Response {
    let t = ctx.t;
    let policies = ctx.state.policies.borrow().clone();
    let body = html! {
        p.intro { (t.policies_intro) }
        section.card #try {
            h2 { (t.try_title) }
            p.hint { (t.try_intro) }
            (pages::form_errors(errors, t.form_has_errors))
            form.filters method="post" action="/ui/policies/try#try" novalidate {
                (pages::csrf(ctx))
                (field(ctx, errors, "purpose", t.purpose, &f.purpose, Input::Suggest("policy-names"), None))
                (field(ctx, errors, "request", t.try_request, &f.request, Input::Text, None))
                (field(ctx, errors, "form", t.try_form, &f.form, Input::Text, None))
                (field(ctx, errors, "bsn", t.try_bsn, &f.bsn, Input::Text, None))
                (field(ctx, errors, "patients", t.try_patients, &f.patients, Input::Text, None))
                div.buttons { button type="submit" { (t.try_button) } }
                datalist id="policy-names" {
                    @for p in policies.purposes() { option value=(p) {} }
                    @for p in policies.request_policies() { option value=(p.name) {} }
                }
            }
            @if let Some(o) = outcome {
                @let (class, verdict) = match o.verdict {
                    "permit" => ("ok", t.verdict_permit),
                    "deny" => ("warn", t.verdict_deny),
                    _ => ("bad", t.verdict_malformed),
                };
                p.verdict role="status" { (pages::badge(class, verdict)) " " (t.rule) ": " code { (o.rule) } }
            }
        }
        @for name in policies.purposes() {
            @if let Some(p) = policies.get(name) {
                section.card.policy {
                    h2 { code { (p.purpose) } }
                    p { (p.description) }
                    dl.facts {
                        dt { (t.authenticator) } dd { code { "nuts-token" } }
                        dt { (t.token_lifetime) } dd { (t.seconds.replace("{n}", &p.token.lifetime_seconds.to_string())) }
                        dt { (t.user_identity_required) } dd { (if p.token.require_user_identity { t.yes } else { t.no }) }
                        dt { (t.consent_types) } dd {
                            @for (i, c) in p.credential.consent_types.iter().enumerate() {
                                @if i > 0 { ", " }
                                (match c { crate::policy::ConsentType::Implied => t.consent_implied, crate::policy::ConsentType::Explicit => t.consent_explicit })
                            }
                        }
                        dt { (t.expiration) } dd {
                            (if p.credential.expiration_required { t.expiration_required } else { t.expiration_optional })
                            @if p.credential.expiration_required && !p.credential.no_expiration_allowed_for.is_empty() {
                                ", " (t.expiration_except) " "
                                @for (i, c) in p.credential.no_expiration_allowed_for.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (match c { crate::policy::ConsentType::Implied => t.consent_implied, crate::policy::ConsentType::Explicit => t.consent_explicit })
                                }
                            }
                        }
                        dt { (t.max_validity) } dd {
                            @if let Some(d) = p.credential.max_validity_days { (t.days.replace("{n}", &d.to_string())) } @else { (t.no_limit) }
                        }
                        (response_facts(ctx, &p.response))
                    }
                    (rules_table(ctx, &p.rules))
                }
            }
        }
        @for p in policies.request_policies() {
            section.card.policy {
                h2 { code { (p.name) } }
                p { (p.description) }
                dl.facts {
                    dt { (t.authenticator) } dd { code { (p.authenticator.as_str()) } }
                    (response_facts(ctx, &p.response))
                }
                (rules_table(ctx, &p.rules))
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        Ctx::invalid_status()
    };
    ctx.page(status, t.policies_title, Nav::Policies, body)
}

fn response_facts(ctx: &Ctx, r: &ResponsePolicy) -> Markup {
    let t = ctx.t;
    html! {
        dt { (t.response_format) } dd {
            (match r.format { ResponseFormat::Fhir => t.response_fhir, ResponseFormat::Passthrough => t.response_passthrough })
        }
        @if !r.non_patient_resources.is_empty() {
            dt { (t.non_patient) } dd { (r.non_patient_resources.join(", ")) }
        }
    }
}

fn param_text(ctx: &Ctx, p: &ParamRule) -> String {
    let t = ctx.t;
    let mut s = if let Some(v) = &p.equals {
        format!("{} {v}", t.param_equals)
    } else if let Some(vs) = &p.one_of {
        format!("{}: {}", t.param_one_of, vs.join(" | "))
    } else if let Some(m) = p.max {
        t.param_max.replace("{n}", &m.to_string())
    } else if p.allowed_patient {
        t.param_allowed_patient.to_owned()
    } else if p.token_bsn_identifier {
        t.param_token_bsn_identifier.to_owned()
    } else if p.token_bsn {
        t.param_token_bsn.to_owned()
    } else if p.fhir_id {
        t.param_fhir_id.to_owned()
    } else {
        String::new()
    };
    if p.optional {
        s.push(' ');
        s.push_str(t.param_optional);
    }
    s
}

fn rules_table(ctx: &Ctx, rules: &[Rule]) -> Markup {
    let t = ctx.t;
    html! {
        h3 { (t.rules) }
        table.list.rules {
            thead { tr { th { (t.rule) } th { (t.method) } th { (t.path) } th { (t.parameters) } } }
            tbody {
                @for r in rules {
                    tr {
                        td { code { (r.name) } }
                        td { code { (r.method) } }
                        td { code { (r.path) } @if r.binds_patients { br; small.muted { (t.binds_patients) } } }
                        td {
                            ul.params {
                                @for (k, p) in &r.query { li { small.muted { (t.param_query) } " " code { (k) } ": " (param_text(ctx, p)) } }
                                @for (k, p) in &r.form { li { small.muted { (t.param_form) } " " code { (k) } ": " (param_text(ctx, p)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
