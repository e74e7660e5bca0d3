//! Health: this instance (database, audit writer), the instances on the same database with
//! their last heartbeat and how many revocations and ended tokens each holds (revocation
//! propagation: an instance that holds fewer than the database is behind), highlights of
//! `/metrics`, and a chart per purpose of permits, denials and errors per hour over the last
//! days: SVG rendered here, no script.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::pages::{self, time};
use super::{Ctx, Nav};
use crate::console::chart::Chart;
use crate::console::{ConsoleError, HEARTBEAT};

/// Bar width and gap of the chart (px).
const BAR: i64 = 8;
/// The chart's plot height (px).
const PLOT: i64 = 110;
/// Left margin for the scale.
const LEFT: i64 = 36;

/// Colours of permits, denials and errors (presentation attributes: the CSP allows no inline
/// style).
const COLOURS: [&str; 3] = ["#2e7d32", "#e08a00", "#c62828"];

/// `GET /ui/health`.
pub(super) async fn page(ctx: Ctx) -> Response {
    let r = async {
        ctx.operator()?;
        let t = ctx.t;
        let state = &ctx.state;
        let now = state.clock.now().unix_timestamp();
        let db_ok = state.store.ping().await.is_ok();
        let instances = state.store.instances().await.unwrap_or_default();
        let revoked_in_store = state.store.revocation_count().await.ok();
        let ended_in_store = state.store.ended_token_count().await.ok();
        let active = state.store.active_token_count(now).await.ok();
        let (revoked_here, ended_here) = state.revocations.sizes();
        let (issued, upstream_errors) = state.metrics.totals();
        let by_decision = state.metrics.requests_by_decision();
        let days = state.console.settings.chart_days;
        let store = state.store.clone();
        let console = state.console.clone();
        let chart = state
            .console
            .background
            .spawn(async move { console.chart.chart(&store, now, days).await })
            .await
            .map_err(|_| ConsoleError::Store(crate::store::StoreError::Unavailable("chart".into())))??;
        let me = &state.console.instance;
        let poll = state.config.revocation_poll.as_millis().to_string();
        let mechanism = if state.store.is_postgres() {
            t.propagation_pg
        } else {
            t.propagation_sqlite
        }
        .replace("{ms}", &poll);
        let latency = |h: &crate::metrics::Histogram| match (h.quantile(0.5), h.quantile(0.99)) {
            (Some(a), Some(b)) => format!("{} / {}", ms(a), ms(b)),
            _ => t.not_measured.to_owned(),
        };
        let lag = |held: usize, store: Option<i64>| -> Markup {
            match store {
                Some(s) if i64::try_from(held).unwrap_or(i64::MAX) >= s => pages::badge("ok", t.up_to_date),
                Some(s) => pages::badge("warn", &t.behind.replace("{n}", &(s - i64::try_from(held).unwrap_or(0)).to_string())),
                None => html! {},
            }
        };
        let body = html! {
            section.card {
                h2 { (t.this_instance) }
                dl.facts {
                    dt { (t.instance_id) } dd { code { (me.id) } }
                    dt { (t.host) } dd { (me.hostname) }
                    dt { (t.version) } dd { (me.version) }
                    dt { (t.started) } dd { (time(me.started_at)) }
                    dt { (t.database) } dd {
                        (if state.store.is_postgres() { "PostgreSQL" } else { "SQLite" }) " "
                        @if db_ok { (pages::badge("ok", t.db_ok)) } @else { (pages::badge("bad", t.db_down)) }
                    }
                    dt { (t.audit_writer) } dd {
                        @if state.writer.is_healthy() { (pages::badge("ok", t.writer_ok)) } @else { (pages::badge("bad", t.writer_failed)) }
                    }
                }
            }
            section.card {
                h2 { (t.propagation) }
                p { (mechanism) }
                table.list.narrow {
                    thead { tr { th {} th.num { (t.in_store) } th.num { (t.this_instance) } th {} } }
                    tbody {
                        tr { td { (t.revocations_held) } td.num { (revoked_in_store.map_or("—".into(), |n| n.to_string())) } td.num { (revoked_here) } td { (lag(revoked_here, revoked_in_store)) } }
                        tr { td { (t.ended_held) } td.num { (ended_in_store.map_or("—".into(), |n| n.to_string())) } td.num { (ended_here) } td { (lag(ended_here, ended_in_store)) } }
                    }
                }
                h3 { (t.replicas) }
                table.list {
                    thead { tr {
                        th { (t.instance_id) } th { (t.host) } th { (t.version) } th { (t.internal_addr) }
                        th { (t.started) } th { (t.last_seen) } th.num { (t.revocations_held) } th.num { (t.ended_held) }
                    } }
                    tbody {
                        @for i in &instances {
                            @let alive = now - i.last_seen <= 3 * i64::try_from(HEARTBEAT.as_secs()).unwrap_or(5);
                            tr {
                                td { code { (i.id) } @if i.id == me.id { " " small.muted { "(" (t.this_one) ")" } } }
                                td { (i.hostname) }
                                td { (i.version) }
                                td { code { (i.internal_addr) } }
                                td { (time(i.started_at)) }
                                td {
                                    (t.ago.replace("{n}", &(now - i.last_seen).max(0).to_string())) " "
                                    @if alive { (pages::badge("ok", t.alive)) } @else { (pages::badge("muted", t.gone)) }
                                }
                                td.num { (i.revocations) " " @if alive { (lag(usize::try_from(i.revocations).unwrap_or(0), revoked_in_store)) } }
                                td.num { (i.ended_tokens) }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { (t.metrics_title) }
                dl.facts.wide {
                    @for ((kind, decision), n) in &by_decision {
                        dt { (t.requests_total) ": " (super::audit::kind_text(&ctx, kind)) } dd { (pages::decision_badge(&ctx, decision)) " " strong { (n) } }
                    }
                    dt { (t.tokens_issued) } dd { (issued) }
                    dt { (t.active_tokens) } dd { (active.map_or("—".into(), |n| n.to_string())) }
                    dt { (t.revocations_count) } dd { (revoked_in_store.map_or("—".into(), |n| n.to_string())) }
                    dt { (t.upstream_errors) } dd { (upstream_errors) }
                    dt { (t.proxy_latency) } dd { (latency(&state.metrics.proxy_latency)) }
                    dt { (t.token_latency) } dd { (latency(&state.metrics.token_latency)) }
                }
            }
            section.card {
                h2 { (t.chart_title.replace("{n}", &days.to_string())) }
                (chart_markup(&ctx, &chart))
            }
        };
        Ok(ctx.page(StatusCode::OK, t.health_title, Nav::Health, body))
    }
    .await;
    ctx.finish(r)
}

/// Seconds as milliseconds for people (`≤ 2.5 ms`, `> 2.5 s`).
fn ms(secs: f64) -> String {
    if secs.is_infinite() {
        "> 2.5 s".into()
    } else {
        format!("≤ {} ms", secs * 1000.0)
    }
}

fn chart_markup(ctx: &Ctx, chart: &Chart) -> Markup {
    let t = ctx.t;
    if chart.series.is_empty() {
        return html! { p.empty { (t.chart_empty) } };
    }
    html! {
        p.legend {
            span.key.permit { (t.decision_permit) }
            span.key.deny { (t.decision_deny) }
            span.key.error { (t.decision_error) }
        }
        @for s in &chart.series {
            @let totals = s.totals();
            @let busiest = s.hours.iter().map(|h| h.iter().sum::<u64>()).max().unwrap_or(0);
            figure.chart {
                figcaption {
                    strong { @if s.purpose.is_empty() { (t.chart_no_purpose) } @else { code { (s.purpose) } } }
                    " · " (t.total) ": "
                    span.n.permit { (totals[0]) } " / " span.n.deny { (totals[1]) } " / " span.n.error { (totals[2]) }
                    " · " (t.chart_busiest.replace("{n}", &busiest.to_string()))
                }
                (svg(ctx, chart, &s.hours, busiest, s.purpose.as_str()))
            }
        }
    }
}

/// One purpose's stacked bars: an hour per bar, permits at the bottom, then denials, then
/// errors; a line at each midnight (UTC) with the date; each bar's numbers in its `<title>`.
fn svg(ctx: &Ctx, chart: &Chart, hours: &[[u64; 3]], busiest: u64, purpose: &str) -> Markup {
    let width = LEFT + i64::try_from(chart.hours).unwrap_or(0) * BAR + 8;
    let height = PLOT + 34;
    let scale = busiest.max(1);
    let y = |n: u64| -> i64 {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let h = ((n as f64 / scale as f64) * PLOT as f64).round() as i64;
        h
    };
    let label = format!(
        "{}: {}",
        ctx.t
            .chart_title
            .replace("{n}", &ctx.state.console.settings.chart_days.to_string()),
        purpose
    );
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height) role="img" aria-label=(label) {
            line x1=(LEFT) y1=(PLOT + 4) x2=(width - 8) y2=(PLOT + 4) stroke="#888" stroke-width="1" {}
            text x=(LEFT - 4) y="12" text-anchor="end" font-size="10" fill="#555" { (busiest) }
            text x=(LEFT - 4) y=(PLOT + 4) text-anchor="end" font-size="10" fill="#555" { "0" }
            @for (i, h) in hours.iter().enumerate() {
                @let x = LEFT + i64::try_from(i).unwrap_or(0) * BAR;
                @let hour_start = chart.start + i64::try_from(i).unwrap_or(0) * 3600;
                @if hour_start.rem_euclid(86_400) == 0 {
                    line x1=(x) y1="0" x2=(x) y2=(PLOT + 8) stroke="#ccc" stroke-width="1" {}
                    text x=(x + 2) y=(PLOT + 20) font-size="10" fill="#555" { (super::utc(hour_start).get(..10).unwrap_or_default()) }
                }
                g {
                    title { (super::utc(hour_start).get(..13).unwrap_or_default()) ":00 UTC · " (h[0]) " / " (h[1]) " / " (h[2]) }
                    @for (top, hgt, colour) in stack(h, &y) {
                        rect x=(x + 1) y=(top) width=(BAR - 2) height=(hgt) fill=(colour) {}
                    }
                    rect x=(x) y="0" width=(BAR) height=(PLOT + 4) fill="transparent" {}
                }
            }
        }
    }
}

/// The stacked segments of one hour's bar, bottom up: (top, height, colour).
fn stack(h: &[u64; 3], y: &impl Fn(u64) -> i64) -> Vec<(i64, i64, &'static str)> {
    let mut base = PLOT + 4;
    let mut out = Vec::new();
    for (k, n) in h.iter().enumerate() {
        if *n > 0 {
            let height = y(*n).max(1);
            base -= height;
            out.push((base, height, COLOURS[k]));
        }
    }
    out
}
