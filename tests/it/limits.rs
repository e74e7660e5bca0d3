//! Connection limits of the real server: slow headers are cut off, a slow body gets 408, HTTP/2
//! works, and SIGTERM drains and exits 0.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::support::Instance;

fn read_all(mut s: TcpStream) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[test]
fn slow_clients_are_cut_off_and_sigterm_exits_cleanly() {
    let inst = Instance::with_config("client_timeout_ms = 300");
    let mut server = inst.serve();

    // Headers never finished: the connection is closed after the time limit.
    let mut s = TcpStream::connect(server.public).unwrap();
    s.write_all(b"GET /Patient/1 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (answer, took) = read_all(s);
    assert!(took < Duration::from_secs(3), "cut off after {took:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );

    // A body that never completes: 408 from the token endpoint.
    let mut s = TcpStream::connect(server.public).unwrap();
    s.write_all(b"POST /n2n/auth/v1/accesstoken HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type").unwrap();
    let (answer, took) = read_all(s);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(
            r#"{"error":"invalid_request","error_description":"request body not received in time"}"#
        ),
        "{answer}"
    );

    // SIGTERM: exits 0.
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_served() {
    let inst = Instance::new();
    let server = inst.serve();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client
        .get(server.internal_url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r = client
        .get(server.public_url("/Patient/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
}

/// Sends raw bytes, returns the status line (or "" when the server closed the connection).
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request).unwrap();
    let (answer, _) = read_all(s);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_http_is_refused_and_never_forwarded() {
    use super::support::setup;
    let backend = std::sync::Arc::new(poortwachter::demo::sample_fhir::Backend::default());
    let upstream = poortwachter::demo::sample_fhir::start(backend.clone()).await;
    let s = setup(&format!(
        "upstream = \"{upstream}\"\nclient_timeout_ms = 1000\n"
    ));
    let (_, body) = s.post_grant(&s.grant(&s.claims())).await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let addr = s.server.public;
    let auth = format!("Authorization: Bearer {token}\r\n");
    let req = |line: &str, extra: &str| {
        format!("{line}\r\nHost: x\r\n{auth}{extra}Connection: close\r\n\r\n").into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("oversized header", req("GET /Patient/pat-1 HTTP/1.1", &format!("X-Big: {}\r\n", "a".repeat(512 * 1024))), &["HTTP/1.1 431", ""]),
        ("invalid UTF-8 in the path", [b"GET /Patient/\xff\xfe HTTP/1.1\r\nHost: x\r\n".as_slice(), auth.as_bytes(), b"Connection: close\r\n\r\n"].concat(), &["HTTP/1.1 400", ""]),
        ("invalid UTF-8, percent-encoded", req("GET /Patient/%ff%fe HTTP/1.1", ""), &["HTTP/1.1 403 Forbidden"]),
        ("request smuggling", req("POST /Patient/_search HTTP/1.1", "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"), &["HTTP/1.1 400", ""]),
        ("absolute-form", req("GET http://evil.example/fhir/Patient/pat-1 HTTP/1.1", ""), &["HTTP/1.1 400 Bad Request"]),
        ("CONNECT", req("CONNECT evil.example:443 HTTP/1.1", ""), &["HTTP/1.1 400 Bad Request"]),
        ("unknown method", req("BREW /Patient/pat-1 HTTP/1.1", ""), &["HTTP/1.1 403 Forbidden"]),
        ("TRACE", req("TRACE /Patient/pat-1 HTTP/1.1", ""), &["HTTP/1.1 403 Forbidden"]),
    ];
    for (name, bytes, allowed) in cases {
        let status = tokio::task::spawn_blocking(move || raw(addr, &bytes))
            .await
            .unwrap();
        assert!(
            allowed
                .iter()
                .any(|a| status.starts_with(a) && (!a.is_empty() || status.is_empty())),
            "{name}: {status:?}"
        );
    }
    // An oversized body: 413.
    let r = reqwest::Client::new()
        .post(s.server.public_url("/Patient/_search"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["issue"][0]["code"],
        "too-costly"
    );
    assert!(
        backend.seen.lock().unwrap().is_empty(),
        "nothing reached the source system"
    );
    // Still serving.
    let r = reqwest::Client::new()
        .get(s.server.internal_url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}
