//! The audit trail: filtered (the filter lives in the session: a BSN never travels in a URL),
//! newest first, a page at a time (a cursor on the sequence number); each record's fields on
//! its own page; the chain's state (the last `audit verify`, which the operator can run again,
//! and the current anchor); and the export of the filtered records as JSON lines or CSV,
//! streamed (an export is audited too: it discloses who saw a patient's data).

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::pages::{self, field, select, time, Input};
use super::{Ctx, Errors, Nav};
use crate::audit::ChainReport;
use crate::console::export::{AuditQuery, Entry, CSV_HEADER};
use crate::console::session::AuditFilterForm;
use crate::console::{mask_bsn, Change, ConsoleError};
use crate::store::AuditCursor;

/// Records per page.
const PAGE: usize = 50;
/// Rows read per query while looking for a page's matches.
const CHUNK: i64 = 500;

/// `GET /ui/audit[?before=SEQ]`.
pub(super) async fn list(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let before = super::query_param(q.as_deref(), "before").and_then(|b| b.parse().ok());
    let r = list_page(&ctx, None, Errors::default(), before).await;
    ctx.finish(r)
}

/// `POST /ui/audit/filter`.
pub(super) async fn filter(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        ctx.operator()?;
        let form = ctx.form(&headers, body).await?;
        let typed = if form.has("clear") {
            AuditFilterForm::default()
        } else {
            AuditFilterForm {
                bsn: form.get("bsn"),
                requester: form.get("requester"),
                user: form.get("user"),
                purpose: form.get("purpose"),
                decision: form.get("decision"),
                since: form.get("since"),
                until: form.get("until"),
            }
        };
        if let Err(errors) = AuditQuery::parse(&typed) {
            return list_page(&ctx, Some(typed), errors.into(), None).await;
        }
        if let Ok(mut f) = ctx.session.audit_filter.lock() {
            *f = typed;
        }
        Ok(ctx.redirect("/ui/audit"))
    }
    .await;
    ctx.finish(r)
}

/// `POST /ui/audit/verify`: checks the whole chain now.
pub(super) async fn verify(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        ctx.operator()?;
        ctx.form(&headers, body).await?;
        let now = ctx.state.clock.now().unix_timestamp();
        ctx.state
            .console
            .verify_chain(&ctx.state.store, now)
            .await?;
        Ok(ctx.redirect("/ui/audit"))
    }
    .await;
    ctx.finish(r)
}

/// One page of matches, newest first, from `before` on; and the cursor of the next page.
async fn page_of(
    ctx: &Ctx,
    q: &AuditQuery,
    before: Option<i64>,
) -> Result<(Vec<Entry>, Option<i64>), ConsoleError> {
    let mut cursor = before;
    let mut found = Vec::new();
    loop {
        let rows = ctx
            .state
            .store
            .audit_chunk(&q.store, AuditCursor::Before(cursor), CHUNK)
            .await?;
        let n = rows.len();
        for row in rows {
            cursor = Some(row.seq);
            if let Some(e) = Entry::of(row) {
                if q.matches(&e.record) {
                    if found.len() == PAGE {
                        let next = found.last().map(|e: &Entry| e.row.seq);
                        return Ok((found, next));
                    }
                    found.push(e);
                }
            }
        }
        if i64::try_from(n).unwrap_or(0) < CHUNK {
            return Ok((found, None));
        }
    }
}

pub(super) fn kind_text(ctx: &Ctx, kind: &str) -> String {
    match kind {
        "token" => ctx.t.kind_token.into(),
        "proxy" => ctx.t.kind_proxy.into(),
        "console" => ctx.t.kind_console.into(),
        other => other.into(),
    }
}

async fn list_page(
    ctx: &Ctx,
    typed: Option<AuditFilterForm>,
    errors: Errors,
    before: Option<i64>,
) -> Result<Response, ConsoleError> {
    ctx.operator()?;
    let t = ctx.t;
    let f = typed.unwrap_or_else(|| ctx.session.audit_filter());
    let query = if errors.is_empty() {
        AuditQuery::parse(&f).ok()
    } else {
        None
    };
    let page = match &query {
        Some(q) => Some(page_of(ctx, q, before).await?),
        None => None,
    };
    let (head_seq, head_hash) = ctx.state.store.audit_head().await?;
    let chain = ctx.state.console.last_chain_check();
    let decisions = [
        ("", t.any),
        ("permit", t.decision_permit),
        ("deny", t.decision_deny),
        ("error", t.decision_error),
    ];
    let policies = ctx.state.policies.borrow().clone();
    let body = html! {
        p.intro { (t.audit_intro) }
        (chain_box(ctx, chain.as_ref(), head_seq, &head_hash))
        (pages::form_errors(&errors, t.filter_has_errors))
        form.filters method="post" action="/ui/audit/filter" novalidate {
            (pages::csrf(ctx))
            (field(ctx, &errors, "bsn", t.bsn, &f.bsn, Input::Text, None))
            (field(ctx, &errors, "requester", t.requester, &f.requester, Input::Text, None))
            (field(ctx, &errors, "user", t.user_uzi, &f.user, Input::Text, None))
            (field(ctx, &errors, "purpose", t.purpose, &f.purpose, Input::Suggest("purposes"), None))
            (select(ctx, &errors, "decision", t.decision, &f.decision, &decisions))
            (field(ctx, &errors, "since", t.since, &f.since, Input::Text, Some(t.date_hint)))
            (field(ctx, &errors, "until", t.until, &f.until, Input::Text, Some(t.date_hint)))
            div.buttons {
                button type="submit" { (t.filter) }
                button.secondary type="submit" name="clear" value="1" { (t.clear_filter) }
            }
            datalist id="purposes" { @for p in policies.purposes() { option value=(p) {} } }
        }
        @if let Some((entries, next)) = &page {
            p.actions {
                a.button.secondary href="/ui/audit/export.jsonl" download { (t.export_jsonl) }
                " "
                a.button.secondary href="/ui/audit/export.csv" download { (t.export_csv) }
                " " small.muted { (t.export_hint) }
            }
            @if entries.is_empty() {
                p.empty { (t.none_found) }
            } @else {
                table.list.audit {
                    thead { tr {
                        th { "#" } th { (t.col_time) } th { (t.col_kind) } th { (t.requester) } th { (t.user) }
                        th { (t.purpose) } th { (t.bsn) } th { (t.col_request) } th { (t.decision) } th.num { (t.status) }
                    } }
                    tbody {
                        @for e in entries {
                            @let r = &e.record;
                            tr {
                                td { a href=(format!("/ui/audit/record/{}", e.row.seq)) { (e.row.seq) } }
                                td { (time(e.row.time_unix)) }
                                td { (kind_text(ctx, &r.kind)) }
                                td.did { (r.requester) }
                                td { @if let Some(u) = &r.user { (u.name) br; small.muted { "UZI " (u.uzi) } } }
                                td { (r.purpose) }
                                td { code { (mask_bsn(r.bsn.as_ref().map_or("", crate::bsn::Bsn::as_str))) } }
                                td.path { code { (r.method) " " (r.path) } }
                                td { (pages::decision_badge(ctx, &r.decision)) br; small.muted { (r.rule) } }
                                td.num { (r.status) }
                            }
                        }
                    }
                }
                nav.pager {
                    @if before.is_some() { a href="/ui/audit" { "← " (t.newest) } }
                    @if let Some(n) = next { a href=(format!("/ui/audit?before={n}")) { (t.older) " →" } }
                }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        Ctx::invalid_status()
    };
    Ok(ctx.page(status, t.audit_title, Nav::Audit, body))
}

fn chain_box(
    ctx: &Ctx,
    chain: Option<&crate::console::ChainState>,
    head_seq: i64,
    head_hash: &str,
) -> Markup {
    let t = ctx.t;
    let (class, text) = match chain.map(|c| &c.report) {
        Some(ChainReport::Intact { records, .. }) => {
            ("ok", t.chain_intact.replace("{n}", &records.to_string()))
        }
        Some(ChainReport::Broken { seq, .. }) => {
            ("bad", t.chain_broken.replace("{seq}", &seq.to_string()))
        }
        None => ("muted", t.chain_never.to_owned()),
    };
    html! {
        section.card.chain {
            h2 { (t.chain_state) }
            p { (pages::badge(class, &text))
                @if let Some(c) = chain { " " small.muted { (t.chain_checked_at) " " (time(c.checked_at)) } }
            }
            @if let Some(ChainReport::Broken { reason, .. }) = chain.map(|c| &c.report) {
                p.error-box { code { (reason) } }
            }
            @if head_seq > 0 {
                p { (t.anchor) ": " (pages::copyable(ctx, &format!("{head_seq}:{head_hash}"))) }
                p.hint { (t.anchor_hint) }
            }
            form.inline method="post" action="/ui/audit/verify" {
                (pages::csrf(ctx))
                button.secondary type="submit" { (t.chain_check_now) }
            }
        }
    }
}

/// `GET /ui/audit/record/{seq}`.
pub(super) async fn record(ctx: Ctx, Path(seq): Path<String>) -> Response {
    let r = async {
        ctx.operator()?;
        let seq: i64 = seq.parse().map_err(|_| ConsoleError::NotFound)?;
        let row = ctx.state.store.audit_row(seq).await?;
        let raw = row.record.clone();
        let (prev, hash, time_unix) = (row.prev_hash.clone(), row.hash.clone(), row.time_unix);
        let t = ctx.t;
        let entry = Entry::of(row);
        let pretty = serde_json::from_str::<serde_json::Value>(&raw)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(raw);
        let body = html! {
            @if let Some(e) = &entry {
                @let r = &e.record;
                dl.facts {
                    dt { (t.col_time) } dd { (time(time_unix)) " " small.muted { (r.time) } }
                    dt { (t.request_id) } dd { code { (r.request_id) } }
                    dt { (t.col_kind) } dd { (kind_text(&ctx, &r.kind)) }
                    dt { (t.requester) } dd.did { (r.requester) }
                    @if let Some(u) = &r.user {
                        dt { (t.user) } dd { (u.name) " · " (t.uzi) " " code { (u.uzi) } " · " (t.role) " " code { (u.role) } }
                    }
                    dt { (t.purpose) } dd { (r.purpose) }
                    dt { (t.bsn) } dd { code { (r.bsn.as_ref().map_or("", crate::bsn::Bsn::as_str)) } }
                    dt { (t.method) } dd { code { (r.method) } }
                    dt { (t.path) } dd.path { code { (r.path) } }
                    dt { (t.decision) } dd { (pages::decision_badge(&ctx, &r.decision)) }
                    dt { (t.rule) } dd { (r.rule) }
                    dt { (t.status_to_client) } dd { (r.status) }
                    dt { (t.upstream_status) } dd { @if let Some(s) = r.upstream_status { (s) } @else { "—" } }
                    @if let Some(c) = &r.client_cert {
                        dt { (t.client_cert) } dd { (c.subject) br; code { (c.fingerprint) } }
                    }
                }
            }
            dl.facts {
                dt { (t.prev_hash) } dd { code.hash { (prev) } }
                dt { (t.hash) } dd { code.hash { (hash) } }
            }
            details.json open[entry.is_none()] {
                summary { "JSON" }
                pre { (pretty) }
            }
            p { a href="/ui/audit" { (t.back) } }
        };
        Ok(ctx.page(
            StatusCode::OK,
            &format!("{} {seq}", t.record_title),
            Nav::Audit,
            body,
        ))
    }
    .await;
    ctx.finish(r)
}

/// `GET /ui/audit/export.jsonl`.
pub(super) async fn export_jsonl(ctx: Ctx) -> Response {
    let r = export(&ctx, Format::JsonLines).await;
    ctx.finish(r)
}

/// `GET /ui/audit/export.csv`.
pub(super) async fn export_csv(ctx: Ctx) -> Response {
    let r = export(&ctx, Format::Csv).await;
    ctx.finish(r)
}

#[derive(Clone, Copy)]
enum Format {
    JsonLines,
    Csv,
}

/// Streams every record of the session's filter, oldest first, read in chunks on the main
/// runtime (memory stays flat for any log).
async fn export(ctx: &Ctx, format: Format) -> Result<Response, ConsoleError> {
    let operator = ctx.operator()?.clone();
    let query =
        AuditQuery::parse(&ctx.session.audit_filter()).map_err(|_| ConsoleError::Invalid)?;
    ctx.audit_ready()?;
    let (name, content_type) = match format {
        Format::JsonLines => ("jsonl", "application/x-ndjson; charset=utf-8"),
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
    };
    let bsn = query
        .store
        .bsn
        .as_deref()
        .and_then(|b| crate::bsn::Bsn::parse(b).ok());
    ctx.audit(
        operator.audit_name(),
        &Change {
            action: "audit-export",
            detail: Some(name),
            path: &format!("/ui/audit/export.{name}"),
            purpose: query.purpose.as_deref().unwrap_or_default(),
            bsn,
            decision: "permit",
            status: 200,
        },
    )
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = ctx.state.store.clone();
    ctx.state.console.background.spawn(async move {
        if matches!(format, Format::Csv)
            && tx
                .send(Ok(Bytes::from_static(CSV_HEADER.as_bytes())))
                .await
                .is_err()
        {
            return;
        }
        let mut after = 0;
        loop {
            let rows = match store
                .audit_chunk(&query.store, AuditCursor::After(after), CHUNK)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed");
                    let _ = tx.send(Err(std::io::Error::other("store"))).await;
                    return;
                }
            };
            let n = rows.len();
            let mut out = String::new();
            for row in rows {
                after = row.seq;
                if let Some(e) = Entry::of(row) {
                    if query.matches(&e.record) {
                        out.push_str(&match format {
                            Format::JsonLines => e.json_line(),
                            Format::Csv => e.csv_line(),
                        });
                    }
                }
            }
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
            if i64::try_from(n).unwrap_or(0) < CHUNK {
                return;
            }
        }
    });
    let stamp = super::utc(ctx.state.clock.now().unix_timestamp())
        .replace([' ', ':'], "")
        .replace('-', "");
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit-{stamp}.{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}
