//! Tokens: live counts per requester and purpose, the newest live tokens, and ending one (its
//! credential stays valid). An ended token stops at once here (the token service forgets it
//! and the ended set holds it) and on the other instances through the store (`LISTEN` on
//! PostgreSQL, else the next poll).

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;

use super::pages::{self, time};
use super::{Ctx, Nav};
use crate::console::session::Flash;
use crate::console::{mask_bsn, Change, ConsoleError};

/// Live tokens listed.
const LISTED: i64 = 100;

/// `GET /ui/tokens`.
pub(super) async fn list(ctx: Ctx) -> Response {
    let r = async {
        ctx.operator()?;
        let t = ctx.t;
        let now = ctx.state.clock.now().unix_timestamp();
        let counts = ctx.state.store.live_token_counts(now).await?;
        let tokens = ctx.state.store.live_tokens(now, LISTED).await?;
        let body = html! {
            p.intro { (t.tokens_intro) }
            h2 { (t.live_per_requester) }
            @if counts.is_empty() {
                p.empty { (t.no_live_tokens) }
            } @else {
                table.list.narrow {
                    thead { tr { th { (t.requester) } th { (t.purpose) } th.num { (t.count) } } }
                    tbody {
                        @for c in &counts {
                            tr { td.did { (c.requester) } td { (c.purpose) } td.num { (c.count) } }
                        }
                    }
                }
            }
            h2 { (t.live_tokens) }
            @if tokens.is_empty() {
                p.empty { (t.no_live_tokens) }
            } @else {
                table.list {
                    thead { tr {
                        th { (t.token_hash) } th { (t.requester) } th { (t.purpose) } th { (t.user) }
                        th { (t.bsn) } th { (t.col_issued) } th { (t.col_expires) } th {}
                    } }
                    tbody {
                        @for tok in &tokens {
                            @let user = tok.user_identity.as_deref()
                                .and_then(|u| serde_json::from_str::<serde_json::Value>(u).ok());
                            tr {
                                td { code title=(tok.hash) { (tok.hash.get(..12).unwrap_or(&tok.hash)) } }
                                td.did { (tok.requester) }
                                td { (tok.purpose) }
                                td {
                                    @if let Some(u) = &user {
                                        (u["name"].as_str().unwrap_or_default())
                                        @if let Some(uzi) = u["uzi"].as_str() { br; small.muted { "UZI " (uzi) } }
                                    }
                                }
                                td { code { (mask_bsn(tok.bsn.as_str())) } }
                                td { (time(tok.issued_at)) }
                                td { (time(tok.expires_at)) br; small.muted { (t.remaining.replace("{n}", &(tok.expires_at - now).max(0).to_string())) } }
                                td {
                                    form.inline method="post" action=(format!("/ui/tokens/{}/end", tok.hash)) data-confirm=(t.end_token_confirm) {
                                        (pages::csrf(&ctx))
                                        button.danger.small type="submit" { (t.end_token) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
        Ok(ctx.page(StatusCode::OK, t.tokens_title, Nav::Tokens, body))
    }
    .await;
    ctx.finish(r)
}

/// `POST /ui/tokens/{hash}/end`.
pub(super) async fn end(
    ctx: Ctx,
    Path(hash): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let r = async {
        let operator = ctx.operator()?.clone();
        ctx.form(&headers, body).await?;
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ConsoleError::NotFound);
        }
        ctx.audit_ready()?;
        let token = ctx.state.store.token(&hash).await?;
        let now = ctx.state.clock.now().unix_timestamp();
        let fresh = ctx
            .state
            .store
            .end_token(&hash, now, &operator.audit_name())
            .await?;
        // At once on this instance: the ended set first, then the token service's cache.
        ctx.state.revocations.end_token(&hash);
        ctx.state.tokens.forget(&hash);
        if fresh {
            tracing::info!(token_hash = %hash.get(..12).unwrap_or_default(), "token ended in the console");
            ctx.audit(
                operator.audit_name(),
                &Change {
                    action: "token-ended",
                    detail: Some(&hash),
                    path: "/ui/tokens/end",
                    purpose: &token.purpose,
                    bsn: Some(token.bsn.clone()),
                    decision: "permit",
                    status: 303,
                },
            )
            .await?;
        }
        ctx.session.flash(if fresh {
            Flash::TokenEnded
        } else {
            Flash::TokenAlreadyEnded
        });
        Ok(ctx.redirect("/ui/tokens"))
    }
    .await;
    ctx.finish(r)
}
