//! The ceiling of poortwachter's HTTP stack, for `bench/proxy.sh`: the same accept loop, worker
//! threads and pooled upstream client as `serve`, forwarding every request as it is, with no
//! token, policy, response check or audit record. What poortwachter loses against this is the
//! cost of its checks; what this loses against nginx is the cost of the stack.
//!
//! Usage: `cargo run --release --example bare_proxy -- LISTEN_ADDR UPSTREAM_BASE [WORKERS]`

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use poortwachter::proxy::client::UpstreamClient;
use poortwachter::server::listen::{serve, Workers};

struct Proxy {
    base: String,
    client: UpstreamClient,
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{}{path}", proxy.base).parse::<axum::http::Uri>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut upstream = axum::http::Request::new(http_body_util::Full::new(body));
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = uri;
    let Ok(answer) = proxy.client.get().request(upstream).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let (parts, body) = answer.into_parts();
    let body: Bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    Response::from_parts(parts, Body::from(body))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(base)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: bare_proxy LISTEN_ADDR UPSTREAM_BASE [WORKERS]");
    };
    let workers = match args.get(3) {
        Some(n) => n.parse()?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let proxy = Arc::new(Proxy {
        base: base.trim_end_matches('/').to_owned(),
        client: UpstreamClient::new(),
    });
    let router = axum::Router::new().fallback(forward).with_state(proxy);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let workers = Workers::start(workers)?;
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        serve(
            listener,
            router,
            stopped,
            poortwachter::server::listen::Limits {
                client_timeout: Duration::from_secs(30),
                max_head_bytes: 32 * 1024,
                max_headers: 100,
            },
            Some(&workers),
            None,
        )
        .await;
        Ok(())
    })
}
