//! TLS and mutual TLS through the real binary, with real clients (`curl`, `openssl s_client`,
//! reqwest and tokio-rustls with a rustls identity) and certificates made here by
//! `poortwachter::tls::testing`: TLS and mutual TLS end to end (HTTP/1.1 and HTTP/2), tokens
//! bound to the client certificate (RFC 8705) and `[nuts] require_client_certificate`, refused
//! handshakes that cost one connection and never a worker, start-up errors for bad files, SIGHUP
//! with a broken and with a good certificate set, outbound mutual TLS to an https source system,
//! and `tls dev-ca` with the curl line it prints.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poortwachter::demo::sample_fhir::{start as start_backend, Backend, BSN1, BSN_SYSTEM};
use poortwachter::tls::testing::{self, LeafSpec, TestCa, TestCert};
use reqwest::StatusCode;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::support::{setup, Instance, Server, Setup, AUD, PURPOSE};

/// The certificates of one test, written into its own directory: a network CA that signs the
/// server's and the clients' certificates, and a foreign CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
    ca_file: PathBuf,
    other_ca: TestCa,
    server: TestCert,
    /// `huisarts`: the client whose tokens are bound.
    client: TestCert,
    client_files: (PathBuf, PathBuf),
    /// Another client of the same CA (same subject): another certificate all the same.
    client2: TestCert,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("Zorgnetwerk test CA");
        let ca_file = ca.write(dir.path(), "ca");
        let mut spec = LeafSpec::server("localhost");
        spec.ips.push("127.0.0.1".parse().unwrap());
        let server = ca.issue(&spec);
        let client = ca.client("huisarts");
        let client_files = client.write(dir.path(), "huisarts");
        let client2 = ca.client("huisarts");
        Pki {
            dir,
            other_ca: TestCa::new("Another CA"),
            ca,
            ca_file,
            server,
            client,
            client_files,
            client2,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `[tls]` section with the server certificate written as `server.pem`.
    fn tls_section(&self, client_auth: &str, crl: &[&Path]) -> String {
        let (cert, key) = self.server.write(self.dir.path(), "server");
        let mut section = format!(
            "[tls]\ncert = {}\nkey = {}\n",
            toml_path(&cert),
            toml_path(&key)
        );
        if client_auth != "none" {
            section.push_str(&format!(
                "client_ca = [{}]\nclient_auth = \"{client_auth}\"\n",
                toml_path(&self.ca_file)
            ));
        }
        if !crl.is_empty() {
            let list: Vec<String> = crl.iter().map(|p| toml_path(p)).collect();
            section.push_str(&format!("crl = [{}]\n", list.join(", ")));
        }
        section
    }

    /// A rustls client trusting our CA, presenting `client` if given (TLS 1.3 and 1.2).
    fn client_config(&self, client: Option<&TestCert>) -> rustls::ClientConfig {
        testing::client_config(
            &self.ca.cert_der(),
            client,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    /// reqwest over that configuration, to `localhost` at `addr`.
    fn reqwest(&self, addr: SocketAddr, client: Option<&TestCert>) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.client_config(client))
            .resolve("localhost", addr)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn base(server: &Server) -> String {
    format!("https://localhost:{}", server.public.port())
}

/// Runs curl against `localhost` pinned to 127.0.0.1 at `port`: (exit code, stdout, stderr).
fn curl(port: u16, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How the server refuses a client (tokio-rustls): the handshake's error, or, in TLS 1.3
/// where the client's side of the handshake ends before the server has checked its
/// certificate, the error of the first read after sending a request.
async fn refusal(addr: SocketAddr, config: rustls::ClientConfig) -> String {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = match connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
    {
        Ok(tls) => tls,
        Err(e) => return e.to_string(),
    };
    let _ = tls
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    match tls.read_to_end(&mut buf).await {
        Err(e) => e.to_string(),
        Ok(_) => format!("not refused: {}", String::from_utf8_lossy(&buf)),
    }
}

async fn post_grant(http: &reqwest::Client, s: &Setup, assertion: &str) -> (StatusCode, Value) {
    let r = http
        .post(format!("{}/n2n/auth/v1/accesstoken", base(&s.server)))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

fn patient_search() -> String {
    let value = format!("{BSN_SYSTEM}|{BSN1}");
    format!(
        "identifier={}",
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
    )
}

fn refused_401() -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login", "diagnostics": "a valid access token is required"}]})
}

/// nginx's `$ssl_client_escaped_cert`: the PEM, URL-encoded.
fn escaped_pem(cert: &TestCert) -> String {
    url::form_urlencoded::byte_serialize(cert.chain_pem().as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_end_to_end_binds_the_token_to_the_client_certificate() {
    let pki = Pki::new();
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend.clone()).await;
    let s = setup(&format!(
        "upstream = \"{upstream}\"\n{}",
        pki.tls_section("optional", &[])
    ));
    let port = s.server.public.port();
    let url = |p: &str| format!("{}{p}", base(&s.server));
    let ca = pki.ca_file.display().to_string();
    let (cert, key) = (
        pki.client_files.0.display().to_string(),
        pki.client_files.1.display().to_string(),
    );

    // TLS without a client certificate (curl): HTTP/1.1 and, by ALPN, HTTP/2.
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (code, out, err) = curl(
            port,
            &[
                "--cacert",
                &ca,
                flag,
                "-w",
                "\n%{http_code} %{http_version}",
                &url("/.well-known/oauth-authorization-server"),
            ],
        );
        assert_eq!(code, 0, "{err}");
        let (body, last) = out.rsplit_once('\n').unwrap();
        assert_eq!(last, format!("200 {version}"));
        let metadata: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            metadata["token_endpoint"],
            "https://zorg.example.nl/n2n/auth/v1/accesstoken"
        );
    }
    // Without our CA, curl does not trust the server.
    let (code, _, err) = curl(port, &[&url("/.well-known/oauth-authorization-server")]);
    assert_eq!(
        code, 60,
        "curl: peer certificate cannot be authenticated: {err}"
    );

    // The requester's CLI over mutual TLS: the token is bound to its certificate.
    let endpoint = url("/n2n/auth/v1/accesstoken");
    let credential = s.credential_file.display().to_string();
    let request = |extra: &[&str]| {
        let mut args = vec![
            "token",
            "request",
            "--json",
            "--endpoint",
            &endpoint,
            "--audience",
            AUD,
            "--custodian",
            &s.custodian_did,
            "--purpose",
            PURPOSE,
            "--credential",
            &credential,
            "--uzi",
            "900012345",
            "--name",
            "Dr. A. Huisarts",
            "--role",
            "01.015",
            "--cacert",
            &ca,
        ];
        args.extend_from_slice(extra);
        let out = s.requester.command().args(&args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = request(&["--cert", &cert, "--key", &key]);
    assert_eq!(code, 0, "{out}{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    let bound = answer["access_token"].as_str().unwrap().to_owned();
    let x5t = poortwachter::tls::x5t_s256(pki.client.der());
    let introspected = s.introspect(&bound).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["cnf"], json!({"x5t#S256": x5t}));

    // The bound token with its certificate: curl (HTTP/1.1 and HTTP/2) and our own client.
    let auth = format!("Authorization: Bearer {bound}");
    let (code, out, err) = curl(
        port,
        &[
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "-H",
            &auth,
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data",
            &patient_search(),
            "-w",
            "\n%{http_code}",
            &url("/Patient/_search"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("\n200"), "{out}");
    let (code, out, err) = curl(
        port,
        &[
            "--http2",
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "-H",
            &auth,
            "-w",
            "\n%{http_code} %{http_version}",
            &url("/Patient/pat-1"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("\n200 2"), "{out}");
    let mine = pki.reqwest(s.server.public, Some(&pki.client));
    let r = mine
        .get(url("/Patient/pat-1"))
        .bearer_auth(&bound)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "pat-1");
    let reached = backend.seen.lock().unwrap().len();
    assert_eq!(reached, 3, "the search and two reads");

    // The bound token with another certificate of the same CA and subject, and with none:
    // 401 invalid_token, and nothing reaches the source system.
    let other = pki.reqwest(s.server.public, Some(&pki.client2));
    let none = pki.reqwest(s.server.public, None);
    for http in [&other, &none] {
        let r = http
            .get(url("/Patient/pat-1"))
            .bearer_auth(&bound)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(r.json::<Value>().await.unwrap(), refused_401());
    }
    let (code, out, _) = curl(
        port,
        &[
            "--cacert",
            &ca,
            "-H",
            &auth,
            "-w",
            "\n%{http_code}",
            &url("/Patient/pat-1"),
        ],
    );
    assert_eq!((code, out.rsplit('\n').next()), (0, Some("401")));
    assert_eq!(
        backend.seen.lock().unwrap().len(),
        reached,
        "nothing forwarded"
    );

    // The verify endpoint (nginx auth_request) passes a bound token only with its certificate
    // in X-Client-Cert.
    let verify = |cert: Option<String>| {
        let mut r = reqwest::Client::new()
            .head(
                s.server
                    .internal_url("/internal/auth/v1/accesstoken/verify"),
            )
            .bearer_auth(&bound);
        if let Some(c) = cert {
            r = r.header("x-client-cert", c);
        }
        r.send()
    };
    assert_eq!(verify(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        verify(Some(escaped_pem(&pki.client2)))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        verify(Some(escaped_pem(&pki.client)))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // A grant over TLS without a client certificate: an unbound token, good without one.
    let (status, body) = post_grant(&none, &s, &s.grant(&s.claims())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unbound = body["access_token"].as_str().unwrap();
    assert_eq!(s.introspect(unbound).await.get("cnf"), None);
    for http in [&none, &other] {
        let r = http
            .post(url("/Patient/_search"))
            .bearer_auth(unbound)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(patient_search())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // The audit log names the client certificate (fingerprint and subject) of every request
    // that came with one, and the binding in the refusals.
    let export = s.custodian.ok(&["audit", "export"]);
    let records: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fingerprint = hex_sha256(pki.client.der());
    let named = |fp: &str| {
        records
            .iter()
            .filter(|r| r["client_cert"]["fingerprint"] == fp)
            .count()
    };
    // The grant, the search and two reads with huisarts; two with the other certificate.
    assert_eq!(named(&fingerprint), 4);
    assert_eq!(named(&hex_sha256(pki.client2.der())), 2);
    let grant = records
        .iter()
        .find(|r| r["kind"] == "token" && r["client_cert"]["fingerprint"] == fingerprint.as_str())
        .unwrap();
    assert_eq!(
        grant["client_cert"],
        json!({"fingerprint": fingerprint, "subject": "CN=huisarts"})
    );
    let reasons: Vec<&str> = records
        .iter()
        .filter(|r| r["status"] == 401)
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "invalid-token: bound to another client certificate (RFC 8705)",
            "invalid-token: bound to a client certificate (RFC 8705); the connection has none",
            "invalid-token: bound to a client certificate (RFC 8705); the connection has none",
        ]
    );
}

fn hex_sha256(der: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(der))
}

/// `[nuts] require_client_certificate = true`: a grant over TLS without a client certificate is
/// refused with 401 invalid_client (and audited); with one it is issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_client_certificate_refuses_a_grant_without_one() {
    let pki = Pki::new();
    let s = setup(&format!(
        "{}[nuts]\nrequire_client_certificate = true\n",
        pki.tls_section("optional", &[])
    ));
    let none = pki.reqwest(s.server.public, None);
    let (status, body) = post_grant(&none, &s, &s.grant(&s.claims())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "a client certificate is required"})
    );
    assert_eq!(s.token_count(), 0, "nothing stored for a refused grant");
    let mine = pki.reqwest(s.server.public, Some(&pki.client));
    let (status, body) = post_grant(&mine, &s, &s.grant(&s.claims())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let export = s.custodian.ok(&["audit", "export"]);
    let first: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(
        (&first["decision"], &first["rule"], &first["status"]),
        (
            &json!("deny"),
            &json!("a client certificate is required"),
            &json!(401)
        )
    );
}

/// Every handshake the listener refuses costs that connection only: a client chain to another
/// CA, a revoked (CRL) or expired client certificate, TLS 1.1, a CBC-only client, plain HTTP
/// and stalled handshakes, on one HTTP worker thread that keeps serving others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_handshakes_cost_one_connection_never_a_worker() {
    let pki = Pki::new();
    let revoked = pki.ca.client("revoked-huisarts");
    let crl_file = pki.path("network.crl.pem");
    std::fs::write(&crl_file, pki.ca.crl(&[&revoked]).pem).unwrap();
    let expired = pki
        .ca
        .issue(&LeafSpec::client("expired-huisarts").expired());
    let foreign = pki.other_ca.client("huisarts");
    let inst = Instance::with_config(&format!(
        "http_workers = 1\nclient_timeout_ms = 1000\n{}",
        pki.tls_section("optional", &[&crl_file])
    ));
    inst.ok(&["init"]);
    let server = inst.serve();
    let addr = server.public;
    let url = format!("{}/.well-known/oauth-authorization-server", base(&server));

    let get = |client: Option<&TestCert>| {
        let http = pki.reqwest(addr, client);
        let url = url.clone();
        async move { http.get(url).send().await }
    };
    assert_eq!(get(Some(&pki.client)).await.unwrap().status(), 200);
    assert_eq!(get(None).await.unwrap().status(), 200, "optional");
    // TLS 1.3 and TLS 1.2: the same alert for each.
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        for (client, alert) in [
            (&foreign, "UnknownCA"),
            (&revoked, "CertificateRevoked"),
            (&expired, "CertificateExpired"),
        ] {
            let config = testing::client_config(&pki.ca.cert_der(), Some(client), &[version]);
            assert_eq!(
                refusal(addr, config).await,
                format!("received fatal alert: {alert}"),
                "{version:?}"
            );
        }
    }
    // curl with the revoked certificate: the same refusal in OpenSSL's words.
    let (rc, rk) = revoked.write(pki.dir.path(), "revoked");
    let (code, _, err) = curl(
        addr.port(),
        &[
            "--cacert",
            &pki.ca_file.display().to_string(),
            "--cert",
            &rc.display().to_string(),
            "--key",
            &rk.display().to_string(),
            // TLS 1.2: the refusal comes in the handshake (in TLS 1.3 it may come while curl
            // sends, or reads, its request).
            "--tls-max",
            "1.2",
            &url,
        ],
    );
    assert_eq!(code, 35, "{err}");
    assert!(err.contains("alert certificate revoked"), "{err}");

    // TLS 1.1, and TLS 1.2 with CBC suites only: no handshake.
    let ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384";
    let target = addr.to_string();
    for (args, offered) in [
        (
            vec!["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
            "Protocol  : TLSv1.1",
        ),
        (vec!["-tls1_2", "-cipher", ciphers], "Protocol  : TLSv1.2"),
    ] {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &target, "-servername", "localhost"])
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        // The server's whole answer is one alert record (7 bytes): handshake_failure (40).
        assert!(!out.status.success(), "{args:?}: {text}");
        assert!(
            text.contains("SSL handshake has read 7 bytes"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("alert handshake failure") && text.contains("SSL alert number 40"),
            "{args:?}: {text}"
        );
        assert!(text.contains(offered), "the client offered it: {text}");
    }

    // Plain HTTP to the TLS port: a TLS alert (decode_error), then the connection is closed.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(
            b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("closed")
        .ok();
    assert_eq!(
        answer,
        [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32],
        "{answer:?}"
    );

    // Stalled handshakes (a TLS record header and no more) on the one worker: another client
    // is served meanwhile, and each stalled connection is closed after the client time limit.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
        stalled.push(s);
    }
    let started = Instant::now();
    assert_eq!(get(Some(&pki.client)).await.unwrap().status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "served while 20 handshakes stall: {:?}",
        started.elapsed()
    );
    for mut s in stalled {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the server closes a stalled handshake");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(get(None).await.unwrap().status(), 200, "still serving");
}

/// `client_auth = "required"`: a handshake without a certificate is refused (our client and
/// curl); with one it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let inst = Instance::with_config(&pki.tls_section("required", &[]));
    inst.ok(&["init"]);
    let server = inst.serve();
    let url = format!("{}/.well-known/oauth-authorization-server", base(&server));
    for (version, alert) in [
        (&rustls::version::TLS13, "CertificateRequired"),
        (&rustls::version::TLS12, "CertificateRequired"),
    ] {
        let config = testing::client_config(&pki.ca.cert_der(), None, &[version]);
        assert_eq!(
            refusal(server.public, config).await,
            format!("received fatal alert: {alert}")
        );
    }
    let (code, _, err) = curl(
        server.public.port(),
        &[
            "--tls-max",
            "1.2",
            "--cacert",
            &pki.ca_file.display().to_string(),
            &url,
        ],
    );
    // 98: "SSL client certificate required".
    assert_eq!(code, 98, "{err}");
    assert!(err.contains("alert certificate required"), "{err}");
    let r = pki
        .reqwest(server.public, Some(&pki.client))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// The line of `serve`'s stderr that says why it did not start.
fn start_error(inst: &Instance) -> String {
    let (code, _, err) = inst.run(&["serve"]);
    assert_eq!(code, 1, "{err}");
    err.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"))
        .to_owned()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Each bad file stops start-up with a message naming it: the server's certificate expired,
/// a key that is not the certificate's (both files named), a world-readable key, an unreadable
/// key; the source system's files; `[did_web] extra_ca`; and `token request --key`.
#[test]
fn bad_files_stop_start_up_naming_the_file() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let inst = Instance::new();
    inst.ok(&["init"]);
    let (good_cert, good_key) = pki.server.write(dir, "good");
    let with_tls = |cert: &Path, key: &Path| {
        Instance::with_config(&format!(
            "[tls]\ncert = {}\nkey = {}\n",
            toml_path(cert),
            toml_path(key)
        ))
    };

    // An expired server certificate.
    let mut spec = LeafSpec::server("localhost").expired();
    spec.not_before = time::macros::datetime!(2019-01-01 00:00:00 UTC);
    spec.not_after = time::macros::datetime!(2020-01-02 03:04:05 UTC);
    let (expired, expired_key) = pki.ca.issue(&spec).write(dir, "expired");
    assert_eq!(
        start_error(&with_tls(&expired, &expired_key)),
        format!(
            "error: tls: TLS certificate file {}: the certificate expired on 2020-01-02T03:04:05Z",
            expired.display()
        )
    );
    // A key that is not the certificate's: both files named.
    let (_, other_key) = pki.ca.server("localhost").write(dir, "other");
    assert_eq!(
        start_error(&with_tls(&good_cert, &other_key)),
        format!(
            "error: tls: TLS key file {} does not belong to the certificate in {}",
            other_key.display(),
            good_cert.display()
        )
    );
    // A key others may read.
    let open_key = dir.join("open-key.pem");
    std::fs::copy(&good_key, &open_key).unwrap();
    chmod(&open_key, 0o644);
    assert_eq!(
        start_error(&with_tls(&good_cert, &open_key)),
        format!(
            "error: tls: TLS key file {k}: mode 0644 gives its group or others access; a private key must be 0600 or stricter (chmod 600 {k})",
            k = open_key.display()
        )
    );
    // An unreadable key. As root (these tests' CI) a mode 000 file is readable all the same,
    // so the unreadable key is a path that is a directory, and one that does not exist.
    let locked = dir.join("locked-key.pem");
    std::fs::copy(&good_key, &locked).unwrap();
    chmod(&locked, 0o000);
    if running_as_root() {
        eprintln!("running as root: mode 000 is readable; checking a directory and a missing file");
    } else {
        assert_eq!(
            start_error(&with_tls(&good_cert, &locked)),
            format!(
                "error: tls: TLS key file {}: cannot read: Permission denied (os error 13)",
                locked.display()
            )
        );
    }
    let key_dir = dir.join("key-dir");
    std::fs::create_dir(&key_dir).unwrap();
    assert_eq!(
        start_error(&with_tls(&good_cert, &key_dir)),
        format!(
            "error: tls: TLS key file {}: not a regular file",
            key_dir.display()
        )
    );
    let missing = dir.join("missing-key.pem");
    assert_eq!(
        start_error(&with_tls(&good_cert, &missing)),
        format!(
            "error: tls: TLS key file {}: cannot read: No such file or directory (os error 2)",
            missing.display()
        )
    );

    // The source system's files.
    let upstream = |lines: &str| {
        Instance::with_config(&format!("upstream = \"https://127.0.0.1:9/fhir\"\n{lines}"))
    };
    let (client_cert, client_key) = (&pki.client_files.0, &pki.client_files.1);
    let missing_ca = dir.join("missing-ca.pem");
    assert_eq!(
        start_error(&upstream(&format!(
            "upstream_ca = [{}]\n",
            toml_path(&missing_ca)
        ))),
        format!(
            "error: upstream_ca file {}: cannot read: No such file or directory (os error 2)",
            missing_ca.display()
        )
    );
    let open_client_key = dir.join("open-client-key.pem");
    std::fs::copy(client_key, &open_client_key).unwrap();
    chmod(&open_client_key, 0o640);
    assert_eq!(
        start_error(&upstream(&format!(
            "upstream_client_cert = {}\nupstream_client_key = {}\n",
            toml_path(client_cert),
            toml_path(&open_client_key)
        ))),
        format!(
            "error: upstream_client_key file {k}: mode 0640 gives its group or others access; a private key must be 0600 or stricter (chmod 600 {k})",
            k = open_client_key.display()
        )
    );
    assert_eq!(
        start_error(&upstream(&format!(
            "upstream_client_cert = {}\nupstream_client_key = {}\n",
            toml_path(client_cert),
            toml_path(&other_key)
        ))),
        format!(
            "error: upstream_client_key file {} does not belong to the certificate in {}",
            other_key.display(),
            client_cert.display()
        )
    );
    // Not for an http upstream, and not a certificate without its key (configuration errors).
    let i = Instance::with_config(&format!(
        "upstream = \"http://127.0.0.1:9/fhir\"\nupstream_ca = [{}]\n",
        toml_path(&pki.ca_file)
    ));
    assert_eq!(
        start_error(&i),
        format!(
            "error: {}: upstream_ca: applies to an https upstream; upstream is http://127.0.0.1:9/fhir",
            i.path("config.toml").display()
        )
    );
    let i = upstream(&format!(
        "upstream_client_cert = {}\n",
        toml_path(client_cert)
    ));
    assert_eq!(
        start_error(&i),
        format!(
            "error: {}: upstream_client_key: upstream_client_cert needs its key (upstream_client_key)",
            i.path("config.toml").display()
        )
    );
    // [did_web] extra_ca.
    let i = Instance::with_config(&format!(
        "[did_web]\nextra_ca = [{}]\n",
        toml_path(&missing_ca)
    ));
    assert_eq!(
        start_error(&i),
        format!(
            "error: did_web.extra_ca file {}: cannot read: No such file or directory (os error 2)",
            missing_ca.display()
        )
    );
    // [nuts] require_client_certificate without client certificates.
    let i = Instance::with_config("[nuts]\nrequire_client_certificate = true\n");
    assert_eq!(
        start_error(&i),
        format!(
            "error: {}: nuts.require_client_certificate: needs [tls] with client_auth = \"optional\" or \"required\" (and client_ca): without them no grant can come with a client certificate",
            i.path("config.toml").display()
        )
    );
    // token request: its --key is checked like ours, before anything is sent.
    let (code, _, err) = inst.run(&[
        "token",
        "request",
        "--endpoint",
        "https://127.0.0.1:9/n2n/auth/v1/accesstoken",
        "--custodian",
        "did:web:zorg.example.nl",
        "--purpose",
        PURPOSE,
        "--credential",
        "cred.json",
        "--cacert",
        &pki.ca_file.display().to_string(),
        "--cert",
        &client_cert.display().to_string(),
        "--key",
        &open_client_key.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: --key file {k}: mode 0640 gives its group or others access; a private key must be 0600 or stricter (chmod 600 {k})",
            k = open_client_key.display()
        )
    );
}

/// A TLS client over tokio-rustls: the stream and the server's leaf certificate.
async fn tls_connect(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn leaf_of(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One HTTP/1.1 GET on a kept-alive connection: the status.
async fn get_on(stream: &mut tokio_rustls::client::TlsStream<TcpStream>, path: &str) -> u16 {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head[9..12].parse().unwrap()
}

fn sighup(server: &Server) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
}

/// SIGHUP: a broken certificate set is refused and the old certificate stays; a good new one
/// serves the next connection, while an open keep-alive connection goes on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_certificates_without_dropping_connections() {
    let pki = Pki::new();
    let inst = Instance::with_config(&pki.tls_section("optional", &[]));
    inst.ok(&["init"]);
    let server = inst.serve();
    let (cert_file, key_file) = (pki.path("server.pem"), pki.path("server-key.pem"));
    let path = "/.well-known/oauth-authorization-server";
    let first = pki.server.der().to_vec();

    let mut kept = tls_connect(server.public, pki.client_config(Some(&pki.client))).await;
    assert_eq!(leaf_of(&kept), first);
    assert_eq!(get_on(&mut kept, path).await, 200);

    // A broken set: the new certificate without its key.
    let mut spec = LeafSpec::server("localhost");
    spec.ips.push("127.0.0.1".parse().unwrap());
    let renewed = pki.ca.issue(&spec);
    std::fs::write(&cert_file, renewed.chain_pem()).unwrap();
    let mark = server.log_mark();
    sighup(&server);
    let refused = server
        .log_after(mark, "TLS reload refused", Duration::from_secs(10))
        .await
        .expect("refused");
    assert_eq!(
        refused["error"],
        format!(
            "TLS key file {} does not belong to the certificate in {}",
            key_file.display(),
            cert_file.display()
        )
    );
    let mut fresh = tls_connect(server.public, pki.client_config(Some(&pki.client))).await;
    assert_eq!(leaf_of(&fresh), first, "the old certificate stays");
    assert_eq!(get_on(&mut fresh, path).await, 200);

    // The good set: the new key too.
    testing::write_private(&key_file, &renewed.key_pem(testing::KeyFormat::Pkcs8));
    let mark = server.log_mark();
    sighup(&server);
    server
        .log_after(mark, "TLS certificates reloaded", Duration::from_secs(10))
        .await
        .expect("reloaded");
    let mut next = tls_connect(server.public, pki.client_config(Some(&pki.client))).await;
    assert_eq!(
        leaf_of(&next),
        renewed.der().to_vec(),
        "the next connection"
    );
    assert_eq!(get_on(&mut next, path).await, 200);
    // The connections opened before go on, on their handshake's certificate.
    assert_eq!(get_on(&mut kept, path).await, 200);
    assert_eq!(get_on(&mut fresh, path).await, 200);
    assert_eq!(leaf_of(&kept), first);
}

/// A TLS front for the sample source system that requires a client certificate of our CA and
/// records the fingerprint of every one it verified.
async fn mtls_front(pki: &Pki, backend: &str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let settings = testing::settings(
        &pki.path("front"),
        &pki.server,
        &[&pki.ca],
        poortwachter::tls::ClientAuth::Required,
    );
    let handle = poortwachter::tls::TlsAcceptorHandle::load(&settings).unwrap();
    let backend: SocketAddr = url::Url::parse(backend)
        .unwrap()
        .socket_addrs(|| None)
        .unwrap()[0];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (handle, seen) = (handle.clone(), kept.clone());
            tokio::spawn(async move {
                let Ok((mut tls, Some(cert))) =
                    poortwachter::tls::accept(&handle, tcp, Duration::from_secs(5)).await
                else {
                    return;
                };
                seen.lock()
                    .unwrap()
                    .push(cert.fingerprint_sha256().to_owned());
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, seen)
}

/// Outbound mutual TLS: `upstream = "https://..."` with `upstream_ca` and our client
/// certificate reaches a source system that requires one; SIGHUP re-reads the files (without
/// the client certificate the source system refuses the handshake: 502, and back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_mutual_tls_to_the_source_system() {
    let pki = Pki::new();
    std::fs::create_dir(pki.path("front")).unwrap();
    let backend = Arc::new(Backend::default());
    let plain = start_backend(backend.clone()).await;
    let (front, seen) = mtls_front(&pki, &plain).await;
    let identity = format!(
        "upstream_client_cert = {}\nupstream_client_key = {}\n",
        toml_path(&pki.client_files.0),
        toml_path(&pki.client_files.1)
    );
    let s = setup(&format!(
        "upstream = \"https://127.0.0.1:{}/fhir\"\nupstream_ca = [{}]\n{identity}",
        front.port(),
        toml_path(&pki.ca_file)
    ));
    let (status, body) = s.post_grant(&s.grant(&s.claims())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let search = || {
        reqwest::Client::new()
            .post(s.server.public_url("/Patient/_search"))
            .bearer_auth(&token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(patient_search())
            .send()
    };
    assert_eq!(search().await.unwrap().status(), StatusCode::OK);
    assert_eq!(backend.seen.lock().unwrap().len(), 1);
    assert_eq!(
        *seen.lock().unwrap(),
        [hex_sha256(pki.client.der())],
        "the source system verified our certificate"
    );

    // Without the client certificate (SIGHUP): the source system refuses the handshake.
    s.custodian.edit_config(&identity, "");
    let mark = s.server.log_mark();
    sighup(&s.server);
    s.server
        .log_after(mark, "upstream TLS files reloaded", Duration::from_secs(10))
        .await
        .expect("reloaded");
    let r = search().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(backend.seen.lock().unwrap().len(), 1, "not reached");
    // And back.
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(s.custodian.path("config.toml"))
        .unwrap();
    // Top-level keys must come before any table: the config has none after upstream_ca.
    config.write_all(identity.as_bytes()).unwrap();
    let mark = s.server.log_mark();
    sighup(&s.server);
    s.server
        .log_after(mark, "upstream TLS files reloaded", Duration::from_secs(10))
        .await
        .expect("reloaded");
    assert_eq!(search().await.unwrap().status(), StatusCode::OK);
    assert_eq!(backend.seen.lock().unwrap().len(), 2);
}

/// `tls dev-ca` and the curl lines the README shows work as printed: TLS, and mutual TLS with
/// the client certificate it made.
#[test]
fn dev_ca_and_the_printed_curl_lines_work() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let inst = Instance::new();
    inst.edit_config(
        "public_addr = \"127.0.0.1:0\"",
        &format!("public_addr = \"127.0.0.1:{port}\""),
    );
    inst.ok(&["init"]);
    let certs = inst.path("certs");
    let out = inst.ok(&[
        "tls",
        "dev-ca",
        "--out",
        &certs.display().to_string(),
        "--client",
        "huisarts",
    ]);
    // The printed [tls] section goes into config.toml as it is.
    let section = out
        .split("config.toml:\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\nThen,").next())
        .unwrap();
    assert!(section.starts_with("[tls]\n"), "{out}");
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(inst.path("config.toml"))
        .unwrap();
    config.write_all(section.as_bytes()).unwrap();
    let curl_line = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("curl "))
        .unwrap()
        .to_owned();
    assert_eq!(
        curl_line,
        format!(
            "curl --cacert {c}/ca.pem --cert {c}/huisarts.pem --key {c}/huisarts-key.pem https://localhost:{port}/.well-known/oauth-authorization-server",
            c = certs.display()
        )
    );
    let _server = inst.serve();
    // Mutual TLS, as printed; then TLS alone, the line without --cert and --key.
    let tls_only = curl_line.replace(
        &format!(
            " --cert {c}/huisarts.pem --key {c}/huisarts-key.pem",
            c = certs.display()
        ),
        "",
    );
    for line in [&curl_line, &tls_only] {
        let out = Command::new("sh")
            .args(["-c", &format!("{line} -sS")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            metadata["token_endpoint"],
            "http://localhost:8080/n2n/auth/v1/accesstoken"
        );
    }
}

/// egress towards a custodian that requires mutual TLS and binds tokens to the client
/// certificate: the GP's own certificate (`[egress] client_cert`, `client_key`, `ca`) serves the
/// token endpoint and the proxy alike; without it no token is had (502).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_over_mutual_tls_with_a_bound_token() {
    let pki = Pki::new();
    let backend = Arc::new(Backend::default());
    let upstream = start_backend(backend.clone()).await;
    let s = setup(&format!(
        "upstream = \"{upstream}\"\n[nuts]\nrequire_client_certificate = true\n{}",
        pki.tls_section("required", &[])
    ));
    let section = |with_cert: bool| {
        let mut e = format!("[egress]\nca = [{}]\n", toml_path(&pki.ca_file));
        if with_cert {
            e.push_str(&format!(
                "client_cert = {}\nclient_key = {}\n",
                toml_path(&pki.client_files.0),
                toml_path(&pki.client_files.1)
            ));
        }
        format!(
            "{e}[[egress.route]]\nprefix = \"/noord\"\nfhir_base = \"{}\"\ntoken_endpoint = \"{}/n2n/auth/v1/accesstoken\"\naudience = \"{AUD}\"\ncustodian = \"{}\"\npurpose = \"{PURPOSE}\"\n",
            base(&s.server),
            base(&s.server),
            s.custodian_did
        )
    };
    let config = s.requester.path("config.toml");
    let plain = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{plain}{}", section(true))).unwrap();
    s.requester
        .ok(&["credential", "import", s.credential_file.to_str().unwrap()]);
    let search = async |egress: &super::egress::Egress| {
        let r = reqwest::Client::new()
            .post(egress.url("/noord/Patient/_search"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-poortwachter-user-uzi", "900012345")
            .header("x-poortwachter-user-name", "Dr. A. Huisarts")
            .header("x-poortwachter-user-role", "01.015")
            .body(patient_search())
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let egress = super::egress::Egress::start(&s.requester);
    let (status, found) = search(&egress).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["entry"][0]["resource"]["id"], "pat-1");
    assert_eq!(s.token_count(), 1);
    drop(egress);

    // Without the client certificate the handshake is refused: no token, a 502.
    std::fs::write(&config, format!("{plain}{}", section(false))).unwrap();
    let egress = super::egress::Egress::start(&s.requester);
    let (status, body) = search(&egress).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(
        body["issue"][0]["diagnostics"],
        "the custodian's token endpoint cannot be reached or failed; try again later"
    );
    assert_eq!(s.token_count(), 1);
}
