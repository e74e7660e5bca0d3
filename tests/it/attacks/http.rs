//! Raw HTTP/1.1 on a TCP socket against the public listener, with a valid token whose patient
//! search has bound `pat-1`: request smuggling (CL + TE, TE variants, duplicate or odd
//! Content-Length), duplicate and missing Host, absolute-, authority- and asterisk-form targets,
//! `//`, `%2e%2e`, `%2F`, `;matrix` and backslash paths, method override headers, HEAD / OPTIONS /
//! TRACE / CONNECT, a body on a GET, oversized and too many headers, malformed header lines, and
//! slow clients (headers and body) under a 500 ms client time limit.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{assert_none, outcome, World};

/// One raw exchange: what came back (status line, body) and how long until the server closed.
struct Reply {
    status: String,
    body: String,
    took: Duration,
}

async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    // The server may close before everything is written (e.g. 431): that is an answer too.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Reply {
        status,
        body,
        took: start.elapsed(),
    }
}

/// The expected answer: a status line, and either the `OperationOutcome` the proxy writes (then
/// an audit record with this reason) or nothing (hyper refused it before any handler ran).
#[derive(Clone)]
enum Answer {
    /// Refused by the proxy: status line, OperationOutcome (code, diagnostics), audit reason.
    Proxy(&'static str, &'static str, &'static str, String),
    /// Refused by hyper before routing: status line, empty body, no audit record.
    Hyper(&'static str),
}

fn denied(reason: &str) -> Answer {
    Answer::Proxy(
        "HTTP/1.1 403 Forbidden",
        "forbidden",
        "access refused",
        reason.to_owned(),
    )
}

fn malformed(reason: &str) -> Answer {
    Answer::Proxy(
        "HTTP/1.1 400 Bad Request",
        "invalid",
        "malformed request",
        format!("malformed: {reason}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_http_is_refused_and_never_forwarded() {
    let w = World::new("client_timeout_ms = 500\n").await;
    let token = w.bound_token().await;
    let addr = w.s.server.public;
    let auth = format!("Authorization: Bearer {token}\r\n");
    let req = |line: &str, extra: &str| {
        format!("{line}\r\nHost: poortwachter.test\r\n{auth}{extra}Connection: close\r\n\r\n")
            .into_bytes()
    };
    let no_host = |line: &str, extra: &str| {
        format!("{line}\r\n{auth}{extra}Connection: close\r\n\r\n").into_bytes()
    };
    let search_body = "identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990";
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let post = |headers: &str, body: &str| {
        let mut r = req(
            "POST /Patient/_search HTTP/1.1",
            &format!("{form}{headers}"),
        );
        r.extend_from_slice(body.as_bytes());
        r
    };
    let chunked = format!("{:x}\r\n{search_body}\r\n0\r\n\r\n", search_body.len());
    let smuggled = "GET /Patient/pat-2 HTTP/1.1\r\nHost: x\r\n\r\n";
    let te = || malformed("Transfer-Encoding on a request");
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();

    let cases: Vec<(&str, Vec<u8>, Answer)> = vec![
        // smuggling and framing
        ("CL + TE (CL.TE)", post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", &chunked), te()),
        ("TE + CL (TE.CL)", post(&format!("Transfer-Encoding: chunked\r\nContent-Length: {}\r\n", search_body.len()), &format!("{chunked}{smuggled}")), te()),
        ("TE chunked alone", post("Transfer-Encoding: chunked\r\n", &chunked), te()),
        ("TE chunked, identity", post("Transfer-Encoding: chunked, identity\r\n", &chunked), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("TE identity", post(&format!("Transfer-Encoding: identity\r\nContent-Length: {}\r\n", search_body.len()), search_body), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("TE xchunked", post("Transfer-Encoding: xchunked\r\n", &chunked), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("TE with a tab", post("Transfer-Encoding:\tchunked\r\n", &chunked), te()),
        ("TE in capitals", post("TRANSFER-ENCODING: CHUNKED\r\n", &chunked), te()),
        ("TE twice", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", &chunked), te()),
        ("space before the colon", post("Transfer-Encoding : chunked\r\n", &chunked), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("obsolete line folding", post(&format!("Content-Length: {}\r\nX-Folded: a\r\n b\r\n", search_body.len()), search_body), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("two different Content-Lengths", post(&format!("Content-Length: {}\r\nContent-Length: 4\r\n", search_body.len()), search_body), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("Content-Length list", post(&format!("Content-Length: {0}, {0}\r\n", search_body.len()), search_body), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("Content-Length with a plus", post(&format!("Content-Length: +{}\r\n", search_body.len()), search_body), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("Content-Length negative", post("Content-Length: -1\r\n", search_body), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("Content-Length overflowing", post("Content-Length: 18446744073709551616\r\n", search_body), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("body on a GET (CL.0 smuggling)", { let mut r = req("GET /Patient/pat-1 HTTP/1.1", &format!("{form}Content-Length: {}\r\n", search_body.len())); r.extend_from_slice(search_body.as_bytes()); r }, malformed("a request body is only accepted with POST, PUT or PATCH")),
        // Host
        ("two Host headers", req("GET /Patient/pat-1 HTTP/1.1", "Host: evil.example\r\n"), Answer::Proxy("HTTP/1.1 400 Bad Request", "invalid", "malformed request", "malformed: exactly one Host header is required".into())),
        ("no Host header", no_host("GET /Patient/pat-1 HTTP/1.1", ""), Answer::Proxy("HTTP/1.1 400 Bad Request", "invalid", "malformed request", "malformed: exactly one Host header is required".into())),
        // request targets and paths
        ("absolute-form", req("GET http://evil.example/fhir/Patient/pat-1 HTTP/1.1", ""), malformed("only origin-form request targets are accepted")),
        ("absolute-form with our own host", req("GET http://poortwachter.test/Patient/pat-1 HTTP/1.1", ""), malformed("only origin-form request targets are accepted")),
        ("authority-form CONNECT", req("CONNECT evil.example:443 HTTP/1.1", ""), malformed("only origin-form request targets are accepted")),
        ("asterisk-form OPTIONS", req("OPTIONS * HTTP/1.1", ""), denied("path-not-canonical")),
        ("double slash", req("GET //Patient/pat-1 HTTP/1.1", ""), denied("path-not-canonical")),
        ("%2e%2e to another patient", req("GET /Patient/%2e%2e/Patient/pat-2 HTTP/1.1", ""), denied("path-not-canonical")),
        ("%2E%2E in capitals", req("GET /Patient/pat-1/%2E%2E/pat-2 HTTP/1.1", ""), denied("path-not-canonical")),
        ("literal dot segments", req("GET /Patient/pat-1/../pat-2 HTTP/1.1", ""), denied("path-not-canonical")),
        ("encoded slash", req("GET /Patient%2Fpat-2 HTTP/1.1", ""), denied("path-not-canonical")),
        ("matrix parameter", req("GET /Patient/pat-1;jsessionid=x HTTP/1.1", ""), denied("path-not-canonical")),
        ("..; traversal", req("GET /Patient/pat-1/..;/pat-2 HTTP/1.1", ""), denied("path-not-canonical")),
        ("encoded backslash", req("GET /Patient/pat-1%5c..%5cpat-2 HTTP/1.1", ""), denied("path-not-canonical")),
        ("encoded NUL", req("GET /Patient/pat-1%00 HTTP/1.1", ""), denied("path-not-canonical")),
        ("raw backslash", req("GET /Patient\\pat-2 HTTP/1.1", ""), denied("path-not-canonical")),
        ("overlong UTF-8 dots", req("GET /Patient/%c0%ae%c0%ae/pat-2 HTTP/1.1", ""), denied("no-rule-for-method-and-path")),
        ("encoded hyphen in the id", req("GET /Patient/pat%2D1 HTTP/1.1", ""), denied("no-rule-for-method-and-path")),
        ("trailing slash", req("GET /Patient/pat-1/ HTTP/1.1", ""), denied("no-rule-for-method-and-path")),
        ("fragment in the target", req("GET /Patient/pat-2#/Patient/pat-1 HTTP/1.1", ""), denied("no-rule-for-method-and-path")),
        // methods and method override
        ("DELETE with X-HTTP-Method-Override: GET", req("DELETE /Patient/pat-1 HTTP/1.1", "X-HTTP-Method-Override: GET\r\n"), denied("no-rule-for-method-and-path")),
        ("PUT with X-Method-Override: GET", req("PUT /Patient/pat-1 HTTP/1.1", "X-Method-Override: GET\r\nContent-Length: 0\r\n"), denied("no-rule-for-method-and-path")),
        ("POST with X-HTTP-Method: GET", req("POST /Patient/pat-1 HTTP/1.1", "X-HTTP-Method: GET\r\nContent-Length: 0\r\n"), denied("no-rule-for-method-and-path")),
        ("POST with _method=GET", req("POST /Patient/pat-1?_method=GET HTTP/1.1", "Content-Length: 0\r\n"), denied("no-rule-for-method-and-path")),
        ("HEAD", req("HEAD /Patient/pat-1 HTTP/1.1", ""), Answer::Proxy("HTTP/1.1 403 Forbidden", "", "", "no-rule-for-method-and-path".into())),
        ("OPTIONS", req("OPTIONS /Patient/pat-1 HTTP/1.1", ""), denied("no-rule-for-method-and-path")),
        ("TRACE", req("TRACE /Patient/pat-1 HTTP/1.1", ""), denied("no-rule-for-method-and-path")),
        ("lower-case get", req("get /Patient/pat-1 HTTP/1.1", ""), denied("no-rule-for-method-and-path")),
        ("PATCH", req("PATCH /Patient/pat-1 HTTP/1.1", "Content-Length: 0\r\n"), denied("no-rule-for-method-and-path")),
        // header limits and malformed lines
        ("one header of 512 KiB", req("GET /Patient/pat-1 HTTP/1.1", &format!("X-Big: {}\r\n", "a".repeat(512 * 1024))), Answer::Hyper("HTTP/1.1 431 Request Header Fields Too Large")),
        ("120 headers", req("GET /Patient/pat-1 HTTP/1.1", &many_headers), Answer::Hyper("HTTP/1.1 431 Request Header Fields Too Large")),
        ("header name with a space", req("GET /Patient/pat-1 HTTP/1.1", "X Bad: 1\r\n"), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("NUL in a header value", req("GET /Patient/pat-1 HTTP/1.1", "X-Nul: a\0b\r\n"), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("HTTP/1.2", req("GET /Patient/pat-1 HTTP/1.2", ""), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("HTTP/0.9 request line", b"GET /Patient/pat-1\r\n\r\n".to_vec(), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("invalid UTF-8 in the target", [b"GET /Patient/\xff\xfe HTTP/1.1\r\nHost: x\r\n".as_slice(), auth.as_bytes(), b"Connection: close\r\n\r\n"].concat(), Answer::Hyper("HTTP/1.1 400 Bad Request")),
        ("h2c upgrade on a refused path", req("GET /Patient/pat-2 HTTP/1.1", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), denied("no-rule-for-method-and-path")),
        ("token in the query instead of the header", format!("GET /Patient/pat-1?access_token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(), Answer::Proxy("HTTP/1.1 401 Unauthorized", "login", "a valid access token is required", "invalid-token".into())),
    ];
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut wrong = Vec::new();
    let total = cases.len();
    for (name, bytes, answer) in cases {
        let before = w.counts().await;
        let reply = exchange(addr, &bytes).await;
        let audit: Vec<(&str, u16, &str)> = match &answer {
            Answer::Proxy(status, code, text, reason) => {
                let body_ok = if code.is_empty() {
                    reply.body.is_empty()
                } else {
                    serde_json::from_str::<Value>(&reply.body).ok() == Some(outcome(code, text))
                };
                if reply.status != *status || !body_ok {
                    wrong.push(format!(
                        "{name}: answered {:?} {:?}",
                        reply.status, reply.body
                    ));
                }
                let code: u16 = status[9..12].parse().unwrap();
                vec![("proxy", code, reason.as_str())]
            }
            Answer::Hyper(status) => {
                if (reply.status.as_str(), reply.body.as_str()) != (*status, "") {
                    wrong.push(format!(
                        "{name}: answered {:?} {:?}",
                        reply.status, reply.body
                    ));
                }
                vec![]
            }
        };
        wrong.extend(w.quiet_refusal(name, before, &audit).await);
    }
    assert_none("raw HTTP", total, &wrong);

    // A method override header on an allowed GET changes nothing and never reaches the source.
    let before = w.counts().await;
    let reply = exchange(
        addr,
        &req(
            "GET /Patient/pat-1 HTTP/1.1",
            "X-HTTP-Method-Override: DELETE\r\nX-Method-Override: DELETE\r\n",
        ),
    )
    .await;
    assert_eq!(reply.status, "HTTP/1.1 200 OK");
    {
        let seen = w.backend.seen.lock().unwrap();
        assert_eq!(seen.len(), before.upstream + 1);
        let (what, headers) = seen.last().unwrap();
        assert_eq!(what, "GET /Patient/pat-1");
        assert!(
            !headers.contains_key("x-http-method-override")
                && !headers.contains_key("x-method-override")
        );
    }

    // Slow headers: the connection is closed once the 500 ms limit has passed; nothing audited.
    let before = w.counts().await;
    let reply = exchange(
        addr,
        format!("GET /Patient/pat-1 HTTP/1.1\r\nHost: x\r\n{auth}").as_bytes(),
    )
    .await;
    assert_eq!(
        (reply.status.as_str(), reply.body.as_str()),
        ("", ""),
        "slow headers: closed without an answer"
    );
    assert!(
        reply.took >= Duration::from_millis(450) && reply.took < Duration::from_secs(3),
        "slow headers cut off after {:?}",
        reply.took
    );
    assert_none(
        "slow headers",
        1,
        &w.quiet_refusal("slow headers", before, &[]).await,
    );

    // A slow body: 408 from the proxy after the limit, audited, never forwarded.
    let before = w.counts().await;
    let partial = post(
        &format!("Content-Length: {}\r\n", search_body.len() + 10),
        search_body,
    );
    let reply = exchange(addr, &partial).await;
    assert_eq!(reply.status, "HTTP/1.1 408 Request Timeout");
    assert_eq!(
        serde_json::from_str::<Value>(&reply.body).unwrap(),
        outcome("timeout", "request not received in time")
    );
    assert!(
        reply.took >= Duration::from_millis(450),
        "408 after {:?}",
        reply.took
    );
    let wrong = w
        .quiet_refusal("slow body", before, &[("proxy", 408, "client-timeout")])
        .await;
    assert_none("slow body", 1, &wrong);

    // Still serving.
    let reply = exchange(addr, &req("GET /Patient/pat-1 HTTP/1.1", "")).await;
    assert_eq!(reply.status, "HTTP/1.1 200 OK");
}
