//! A small HTTP/1.1 load generator over (mutual) TLS for `bench/tls.sh`: wrk cannot present a
//! client certificate. N connections (tokio tasks) send the same GET for a fixed time, either
//! on kept-alive connections or with a new connection, and so a full handshake, per request
//! (session resumption off: every handshake is a full one, for both servers alike). Prints one
//! line: requests per second, p50 and p99 latency (ms), and how many requests failed or were
//! answered with another status than 2xx.
//!
//! Usage: `cargo run --release --example tls_load -- --addr 127.0.0.1:8443 --cacert ca.pem
//! --cert client.pem --key client-key.pem --path /Observation?... --header "Authorization:
//! Bearer ..." [--connections 32] [--duration 10] [--threads 2] [--handshake]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
struct Args {
    /// Server address
    #[arg(long)]
    addr: SocketAddr,
    /// Name the server certificate must have
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Trust anchor (PEM)
    #[arg(long)]
    cacert: PathBuf,
    /// Client certificate chain (PEM)
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Its key (PEM)
    #[arg(long)]
    key: Option<PathBuf>,
    /// Request target
    #[arg(long, default_value = "/")]
    path: String,
    /// Extra request header lines (repeatable)
    #[arg(long)]
    header: Vec<String>,
    /// Concurrent connections
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Client threads
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// A new connection (full handshake) per request
    #[arg(long)]
    handshake: bool,
}

/// What one connection task measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    failed: u64,
    non_2xx: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.cacert)? {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let mut config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(args.server_name.clone())?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n",
        args.path, args.server_name
    );
    for h in &args.header {
        request.push_str(h);
        request.push_str("\r\n");
    }
    if args.handshake {
        request.push_str("Connection: close\r\n");
    }
    request.push_str("\r\n");
    let request: Arc<[u8]> = request.into_bytes().into();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let tallies = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.connections)
            .map(|_| {
                let (connector, name, request) = (connector.clone(), name.clone(), request.clone());
                tokio::spawn(connection(
                    connector,
                    args.addr,
                    name,
                    request,
                    args.handshake,
                    deadline,
                ))
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.unwrap_or_default());
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u32> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let failed: u64 = tallies.iter().map(|t| t.failed).sum();
    let non_2xx: u64 = tallies.iter().map(|t| t.non_2xx).sum();
    let pct = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
        f64::from(latencies[i]) / 1000.0
    };
    println!(
        "rps={:.0} p50_ms={:.3} p99_ms={:.3} failed={failed} non2xx={non_2xx} requests={}",
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        latencies.len()
    );
    Ok(())
}

type Stream = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &ServerName<'static>,
) -> std::io::Result<Stream> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    connector.connect(name.clone(), tcp).await
}

/// One connection's loop until `deadline`.
async fn connection(
    connector: tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: ServerName<'static>,
    request: Arc<[u8]>,
    handshake: bool,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut stream: Option<Stream> = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    while Instant::now() < deadline {
        let t0 = Instant::now();
        if stream.is_none() || handshake {
            match connect(&connector, addr, &name).await {
                Ok(s) => stream = Some(s),
                Err(_) => {
                    tally.failed += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        match exchange(s, &request, &mut buf).await {
            Ok((status, keep)) => {
                let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
                tally.latencies_us.push(us);
                if !(200..300).contains(&status) {
                    tally.non_2xx += 1;
                }
                if !keep || handshake {
                    stream = None;
                }
            }
            Err(_) => {
                tally.failed += 1;
                stream = None;
            }
        }
    }
    tally
}

/// Sends the request and reads one response (Content-Length or chunked); the status and
/// whether the connection stays open.
async fn exchange(
    s: &mut Stream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    s.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("closed before the response head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("head not UTF-8"))?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep = true;
    for line in head.lines().skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        match k.as_str() {
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.contains("chunked"),
            "connection" => keep = !v.contains("close"),
            _ => {}
        }
    }
    let body_done = |b: &[u8]| match (length, chunked) {
        (Some(n), _) => b.len() >= head_end + n,
        (None, true) => b[head_end..].ends_with(b"0\r\n\r\n"),
        (None, false) => true,
    };
    while !body_done(buf) {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("closed before the body's end"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, keep))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
