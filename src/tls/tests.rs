//! Real handshakes over 127.0.0.1: our acceptor against rustls clients, hand-made ClientHellos,
//! `openssl s_client` and `curl` (when they are on the machine).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::testing::{client_config, settings, KeyFormat, KeyKind, LeafSpec, TestCa, TestCert};
use super::*;

const TIMEOUT: Duration = Duration::from_secs(5);
const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// What the server saw of one connection.
#[derive(Debug)]
struct Accepted {
    client: Option<ClientCert>,
    version: Option<rustls::ProtocolVersion>,
    suite: Option<rustls::CipherSuite>,
    alpn: Option<Vec<u8>>,
}

/// A server on 127.0.0.1 that accepts with `accept` and echoes what each client sends.
struct TestServer {
    addr: SocketAddr,
    results: mpsc::UnboundedReceiver<Result<Accepted, AcceptError>>,
}

impl TestServer {
    async fn start(handle: TlsAcceptorHandle, handshake_timeout: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, results) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let handle = handle.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match accept(&handle, tcp, handshake_timeout).await {
                        Ok((stream, client)) => {
                            let conn = stream.get_ref().1;
                            let _ = tx.send(Ok(Accepted {
                                client,
                                version: conn.protocol_version(),
                                suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
                                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                            }));
                            let (mut r, mut w) = tokio::io::split(stream);
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            }
        });
        Self { addr, results }
    }

    async fn next(&mut self) -> Result<Accepted, AcceptError> {
        tokio::time::timeout(TIMEOUT, self.results.recv())
            .await
            .expect("the server reports within 5 s")
            .expect("server running")
    }
}

type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, config: rustls::ClientConfig) -> std::io::Result<ClientStream> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("client handshake timed out"))?
}

async fn ping(stream: &mut ClientStream) -> std::io::Result<()> {
    stream.write_all(b"ping\n").await?;
    stream.flush().await?;
    let mut buf = [0u8; 5];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("no echo"))??;
    assert_eq!(&buf, b"ping\n");
    Ok(())
}

/// Connects and exchanges a line: in TLS 1.3 a refused client certificate only shows when the
/// client reads (its handshake is over before the server has checked the certificate).
async fn connect_and_ping(addr: SocketAddr, config: rustls::ClientConfig) -> std::io::Result<()> {
    let mut stream = connect(addr, config).await?;
    ping(&mut stream).await
}

/// A server CA, a client CA, a server certificate for localhost and a temp dir.
struct Pki {
    dir: tempfile::TempDir,
    server_ca: TestCa,
    client_ca: TestCa,
    server: TestCert,
}

impl Pki {
    fn new() -> Self {
        let server_ca = TestCa::new("server CA");
        let server = server_ca.server("localhost");
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            server_ca,
            client_ca: TestCa::new("client CA"),
            server,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn settings(&self, auth: ClientAuth) -> TlsSettings {
        let cas: &[&TestCa] = if auth == ClientAuth::None {
            &[]
        } else {
            &[&self.client_ca]
        };
        settings(self.path(), &self.server, cas, auth)
    }

    fn client(
        &self,
        client: Option<&TestCert>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        client_config(&self.server_ca.cert_der(), client, versions)
    }

    async fn server(&self, auth: ClientAuth) -> TestServer {
        let handle = TlsAcceptorHandle::load(&self.settings(auth)).expect("settings load");
        TestServer::start(handle, TIMEOUT).await
    }
}

fn allowed_suites() -> Vec<rustls::CipherSuite> {
    crypto_provider()
        .cipher_suites
        .iter()
        .map(|s| s.suite())
        .collect()
}

#[tokio::test]
async fn tls13_and_tls12_both_work_with_good_suites_and_alpn() {
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::None).await;
    for (versions, want) in [
        (TLS13, rustls::ProtocolVersion::TLSv1_3),
        (TLS12, rustls::ProtocolVersion::TLSv1_2),
        (BOTH, rustls::ProtocolVersion::TLSv1_3),
    ] {
        connect_and_ping(server.addr, pki.client(None, versions))
            .await
            .expect("handshake");
        let accepted = server.next().await.expect("accepted");
        assert_eq!(accepted.version, Some(want));
        assert!(allowed_suites().contains(&accepted.suite.expect("suite")));
        assert_eq!(accepted.alpn.as_deref(), Some(&b"h2"[..]));
        assert!(accepted.client.is_none());
    }
    // Our order wins: TLS 1.3 gets AES-256-GCM even from a client that prefers AES-128-GCM.
    let mut config = pki.client(None, TLS13);
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![
        rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256,
        rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.server_ca.cert_der()).expect("root");
    config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(TLS13)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
        .clone_alpn_from(&config);
    connect_and_ping(server.addr, config)
        .await
        .expect("handshake");
    assert_eq!(
        server.next().await.expect("accepted").suite,
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384)
    );
}

trait CloneAlpn {
    fn clone_alpn_from(self, other: &rustls::ClientConfig) -> Self;
}

impl CloneAlpn for rustls::ClientConfig {
    fn clone_alpn_from(mut self, other: &rustls::ClientConfig) -> Self {
        self.alpn_protocols.clone_from(&other.alpn_protocols);
        self
    }
}

#[test]
fn the_provider_offers_only_the_ncsc_good_set() {
    use rustls::CipherSuite as S;
    assert_eq!(
        allowed_suites(),
        vec![
            S::TLS13_AES_256_GCM_SHA384,
            S::TLS13_CHACHA20_POLY1305_SHA256,
            S::TLS13_AES_128_GCM_SHA256,
            S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ]
    );
    let groups: Vec<_> = crypto_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect();
    assert_eq!(
        groups,
        vec![
            rustls::NamedGroup::X25519,
            rustls::NamedGroup::secp256r1,
            rustls::NamedGroup::secp384r1
        ]
    );
}

/// A TLS ClientHello record: `version` in the hello (the record layer says TLS 1.0, as
/// clients do), the given suites, groups X25519 and P-256, ECDSA/RSA signature algorithms.
fn client_hello(version: u16, suites: &[u16]) -> Vec<u8> {
    fn u16s(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }
    fn with_len16(body: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(body.len())
            .expect("len")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(body);
        out
    }
    let mut extensions = Vec::new();
    // supported_groups
    extensions.extend([0x00, 0x0a]);
    extensions.extend(with_len16(&with_len16(&u16s(&[0x001d, 0x0017]))));
    // ec_point_formats: uncompressed
    extensions.extend([0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms
    extensions.extend([0x00, 0x0d]);
    extensions.extend(with_len16(&with_len16(&u16s(&[
        0x0403, 0x0804, 0x0401, 0x0201,
    ]))));
    let mut hello = version.to_be_bytes().to_vec();
    hello.extend([0x42; 32]); // random
    hello.push(0); // session id
    hello.extend(with_len16(&u16s(suites)));
    hello.extend([0x01, 0x00]); // compression: null
    hello.extend(with_len16(&extensions));
    let mut handshake = vec![0x01];
    handshake.extend(&u32::try_from(hello.len()).expect("len").to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(with_len16(&handshake));
    record
}

/// Sends raw bytes and returns everything the server sends back until it closes.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    answer
}

/// The fatal alert in a server's answer: (level 2, description).
fn fatal_alert(answer: &[u8]) -> Option<u8> {
    match answer {
        [0x15, 0x03, _, 0x00, 0x02, 0x02, description, ..] => Some(*description),
        _ => None,
    }
}

const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;

#[tokio::test]
async fn a_cbc_only_tls12_client_is_refused() {
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::None).await;
    // ECDHE-ECDSA/RSA with AES-CBC (SHA-1 and SHA-256/384), RSA key exchange with AES-CBC.
    let cbc = [
        0xc009, 0xc00a, 0xc023, 0xc024, 0xc013, 0xc014, 0xc027, 0xc028, 0x002f, 0x0035, 0x003c,
    ];
    let answer = raw_exchange(server.addr, &client_hello(0x0303, &cbc)).await;
    assert_eq!(
        fatal_alert(&answer),
        Some(ALERT_HANDSHAKE_FAILURE),
        "{answer:02x?}"
    );
    let err = server.next().await.expect_err("refused");
    assert_eq!(err.kind(), "no_common_protocol");
    assert_eq!(
        err.to_string(),
        "TLS handshake failed: peer is incompatible: NoCipherSuitesInCommon"
    );
    // The same hello with one good suite added is answered with a ServerHello.
    let mut good = cbc.to_vec();
    good.push(0xc02b); // ECDHE-ECDSA-AES128-GCM-SHA256
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.write_all(&client_hello(0x0303, &good))
        .await
        .expect("write");
    let mut head = [0u8; 6];
    tcp.read_exact(&mut head).await.expect("server hello");
    assert_eq!(
        (head[0], head[5]),
        (0x16, 0x02),
        "a handshake record with a ServerHello"
    );
}

#[tokio::test]
async fn a_tls11_client_is_refused() {
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::None).await;
    // TLS 1.1 (0x0302), no supported_versions extension, ECDHE suites with AES-CBC-SHA.
    let answer = raw_exchange(
        server.addr,
        &client_hello(0x0302, &[0xc009, 0xc013, 0x002f]),
    )
    .await;
    assert_eq!(
        fatal_alert(&answer),
        Some(ALERT_PROTOCOL_VERSION),
        "{answer:02x?}"
    );
    let err = server.next().await.expect_err("refused");
    assert_eq!(err.kind(), "no_common_protocol");
    // And TLS 1.0.
    let answer = raw_exchange(server.addr, &client_hello(0x0301, &[0xc013, 0x002f])).await;
    assert_eq!(
        fatal_alert(&answer),
        Some(ALERT_PROTOCOL_VERSION),
        "{answer:02x?}"
    );
    assert!(server.next().await.is_err());
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok()
}

/// `openssl s_client` with the given protocol flag and cipher list; its exit status and output.
async fn s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        "localhost",
    ])
    .args(args)
    .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("openssl runs"))
        .await
        .expect("join");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The same refusals from a real OpenSSL client, when `openssl` is installed (OpenSSL 3 needs
/// security level 0 before it will even send a TLS 1.1 hello).
#[tokio::test]
async fn openssl_tls11_and_cbc_clients_are_refused() {
    if !have("openssl") {
        eprintln!("openssl not installed: skipped (the hand-made ClientHello tests cover this)");
        return;
    }
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::None).await;
    let (ok, text) = s_client(server.addr, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]).await;
    assert!(!ok, "{text}");
    let err = server.next().await.expect_err("TLS 1.1 refused");
    assert_eq!(err.kind(), "no_common_protocol", "{err}");
    let (ok, text) = s_client(
        server.addr,
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:AES128-SHA",
        ],
    )
    .await;
    assert!(!ok, "{text}");
    let err = server.next().await.expect_err("CBC refused");
    assert_eq!(err.kind(), "no_common_protocol", "{err}");
    // A good TLS 1.2 suite from the same client works.
    let ca = pki.path().join("server-ca.pem");
    std::fs::write(&ca, pki.server_ca.cert_pem()).expect("write");
    let ca = ca.display().to_string();
    let (ok, text) = s_client(
        server.addr,
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "-CAfile",
            &ca,
            "-verify_return_error",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert!(text.contains("ECDHE-ECDSA-AES256-GCM-SHA384"), "{text}");
    assert!(server.next().await.is_ok());
}

#[tokio::test]
async fn optional_client_certificates() {
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::Optional).await;

    // No certificate: accepted, no identity.
    connect_and_ping(server.addr, pki.client(None, BOTH))
        .await
        .expect("no certificate is fine");
    assert!(server.next().await.expect("accepted").client.is_none());

    // A good certificate, with DNS names and a UZI otherName: its identity.
    let uzi = "2.16.528.1.1007.99.2110-1-900030787-S-90000380-00.000-00000000";
    let mut spec = LeafSpec::client("huisarts.example.nl").uzi(uzi);
    spec.organization = Some("Praktijk de Linde, Utrecht".into());
    spec.dns_names = vec![
        "huisarts.example.nl".into(),
        "api.huisarts.example.nl".into(),
    ];
    let good = pki.client_ca.issue(&spec);
    for versions in [TLS13, TLS12] {
        connect_and_ping(server.addr, pki.client(Some(&good), versions))
            .await
            .expect("good certificate");
        let cert = server
            .next()
            .await
            .expect("accepted")
            .client
            .expect("identity");
        let digest = sha2::Sha256::digest(good.der().as_ref());
        assert_eq!(cert.fingerprint_sha256(), hex::encode(digest));
        assert_eq!(
            cert.x5t_s256(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
        assert_eq!(
            cert.subject(),
            "O=Praktijk de Linde\\, Utrecht,CN=huisarts.example.nl"
        );
        assert_eq!(cert.issuer(), "O=poortwachter tests,CN=client CA");
        assert_eq!(
            cert.dns_names(),
            ["huisarts.example.nl", "api.huisarts.example.nl"]
        );
        let name = cert.uzi().expect("UZI otherName");
        assert_eq!(name.ura, "90000380");
        assert_eq!(name.uzi_number, "900030787");
        assert_eq!(name.pass_type, 'S');
        assert_eq!(name.role, "00.000");
        assert_eq!(name.agb, "00000000");
        assert_eq!(name.to_string(), uzi);
        assert_eq!(cert.der(), good.der());
    }

    // A certificate from another CA, an expired one: refused in the handshake.
    let stranger = TestCa::new("client CA").client("huisarts.example.nl");
    let expired = pki
        .client_ca
        .issue(&LeafSpec::client("huisarts.example.nl").expired());
    let not_yet = pki
        .client_ca
        .issue(&LeafSpec::client("huisarts.example.nl").not_yet_valid());
    for (what, cert) in [
        ("other CA", &stranger),
        ("expired", &expired),
        ("not yet valid", &not_yet),
    ] {
        for versions in [TLS13, TLS12] {
            let client = connect_and_ping(server.addr, pki.client(Some(cert), versions)).await;
            assert!(client.is_err(), "{what}: the client sees the refusal");
            let err = server.next().await.expect_err(what);
            assert_eq!(err.kind(), "client_certificate", "{what}: {err}");
        }
    }
    // The stranger's CA has the same name as ours: the signature gives it away. A CA of
    // another name is not even found.
    let err = {
        let _ = connect_and_ping(server.addr, pki.client(Some(&stranger), TLS13)).await;
        server.next().await.expect_err("stranger")
    };
    assert_eq!(
        err.to_string(),
        "TLS handshake failed: invalid peer certificate: BadSignature"
    );
    let unknown = TestCa::new("another CA").client("huisarts.example.nl");
    let err = {
        let _ = connect_and_ping(server.addr, pki.client(Some(&unknown), TLS13)).await;
        server.next().await.expect_err("unknown issuer")
    };
    assert_eq!(
        err.to_string(),
        "TLS handshake failed: invalid peer certificate: UnknownIssuer"
    );
    let err = {
        let _ = connect_and_ping(server.addr, pki.client(Some(&expired), TLS13)).await;
        server.next().await.expect_err("expired")
    };
    assert!(
        err.to_string()
            .starts_with("TLS handshake failed: invalid peer certificate: certificate expired: "),
        "{err}"
    );
}

#[tokio::test]
async fn revoked_client_certificates_are_refused() {
    let pki = Pki::new();
    let revoked = pki.client_ca.client("revoked");
    let fine = pki.client_ca.client("fine");
    let crl = pki.client_ca.crl(&[&revoked]);
    for (auth, form) in [(ClientAuth::Optional, "pem"), (ClientAuth::Required, "der")] {
        let mut settings = pki.settings(auth);
        let path = pki.path().join(format!("client-ca.crl.{form}"));
        if form == "pem" {
            std::fs::write(&path, &crl.pem).expect("write");
        } else {
            std::fs::write(&path, crl.der.as_ref()).expect("write");
        }
        settings.crl = vec![path];
        let handle = TlsAcceptorHandle::load(&settings).expect("load with CRL");
        let mut server = TestServer::start(handle, TIMEOUT).await;
        for versions in [TLS13, TLS12] {
            connect_and_ping(server.addr, pki.client(Some(&fine), versions))
                .await
                .expect("not revoked");
            assert!(server.next().await.expect("accepted").client.is_some());
            let client = connect_and_ping(server.addr, pki.client(Some(&revoked), versions)).await;
            assert!(client.is_err());
            let err = server.next().await.expect_err("revoked");
            assert_eq!(err.kind(), "client_certificate");
            assert!(err.to_string().contains("Revoked"), "{err}");
        }
    }
}

#[tokio::test]
async fn chains_through_an_intermediate_and_crls_for_each_level() {
    let pki = Pki::new();
    let intermediate = pki.client_ca.intermediate("client issuing CA");
    let leaf = intermediate.client("via-intermediate");
    let mut server = pki.server(ClientAuth::Required).await;
    connect_and_ping(server.addr, pki.client(Some(&leaf), BOTH))
        .await
        .expect("chain through the intermediate");
    let cert = server
        .next()
        .await
        .expect("accepted")
        .client
        .expect("identity");
    assert_eq!(cert.chain().len(), 2);
    assert_eq!(cert.issuer(), "O=poortwachter tests,CN=client issuing CA");

    // CRLs for both levels: accepted; the intermediate revoked by the root: refused; only the
    // root's CRL (the leaf's status unknown): refused, as nginx's ssl_crl does.
    let root_crl = pki.path().join("root.crl");
    let issuing_crl = pki.path().join("issuing.crl");
    std::fs::write(&issuing_crl, intermediate.crl(&[]).pem).expect("write");
    let now = time::OffsetDateTime::now_utc();
    let revoking_intermediate = pki.client_ca.crl_between(
        &[intermediate.serial().clone()],
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    );
    let cases = [
        (pki.client_ca.crl(&[]), true, true),
        (revoking_intermediate, true, false),
        (pki.client_ca.crl(&[]), false, false),
    ];
    for (i, (crl, with_issuing, ok)) in cases.into_iter().enumerate() {
        std::fs::write(&root_crl, crl.pem).expect("write");
        let mut settings = pki.settings(ClientAuth::Required);
        settings.crl = vec![root_crl.clone()];
        if with_issuing {
            settings.crl.push(issuing_crl.clone());
        }
        let mut server =
            TestServer::start(TlsAcceptorHandle::load(&settings).expect("load"), TIMEOUT).await;
        let client = connect_and_ping(server.addr, pki.client(Some(&leaf), TLS13)).await;
        assert_eq!(client.is_ok(), ok, "case {i}");
        assert_eq!(server.next().await.is_ok(), ok, "case {i}");
    }
}

#[tokio::test]
async fn required_client_certificates() {
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::Required).await;
    for versions in [TLS13, TLS12] {
        let client = connect_and_ping(server.addr, pki.client(None, versions)).await;
        assert!(client.is_err());
        let err = server.next().await.expect_err("no certificate");
        assert_eq!(err.kind(), "client_certificate");
        assert!(
            err.to_string().contains("peer sent no certificates"),
            "{err}"
        );
    }
    let good = pki.client_ca.client("huisarts");
    connect_and_ping(server.addr, pki.client(Some(&good), BOTH))
        .await
        .expect("good certificate");
    let cert = server
        .next()
        .await
        .expect("accepted")
        .client
        .expect("identity");
    assert_eq!(cert.subject(), "CN=huisarts");
    assert!(cert.uzi().is_none());
    assert!(cert.dns_names().is_empty());
    let stranger = TestCa::new("other").client("huisarts");
    let expired = pki.client_ca.issue(&LeafSpec::client("huisarts").expired());
    for cert in [&stranger, &expired] {
        for versions in [TLS13, TLS12] {
            let client = connect_and_ping(server.addr, pki.client(Some(cert), versions)).await;
            assert!(client.is_err());
            let err = server.next().await.expect_err("refused");
            assert_eq!(err.kind(), "client_certificate");
        }
    }
}

#[tokio::test]
async fn no_client_auth_asks_for_no_certificate() {
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::None).await;
    // A client with a certificate is not asked for it.
    let cert = pki.client_ca.client("huisarts");
    connect_and_ping(server.addr, pki.client(Some(&cert), BOTH))
        .await
        .expect("handshake");
    assert!(server.next().await.expect("accepted").client.is_none());
}

#[tokio::test]
async fn plain_http_to_the_tls_port_costs_only_its_connection() {
    let pki = Pki::new();
    let mut server = pki.server(ClientAuth::Optional).await;
    let started = Instant::now();
    let answer = raw_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(started.elapsed() < Duration::from_secs(1), "closed at once");
    assert!(
        fatal_alert(&answer).is_some(),
        "an alert, then the close: {answer:02x?}"
    );
    let err = server.next().await.expect_err("not TLS");
    assert_eq!(err.kind(), "not_tls", "{err}");
    // The server goes on.
    connect_and_ping(server.addr, pki.client(None, BOTH))
        .await
        .expect("next client");
    assert!(server.next().await.is_ok());
}

#[tokio::test]
async fn a_stalled_handshake_times_out() {
    let pki = Pki::new();
    let handle = TlsAcceptorHandle::load(&pki.settings(ClientAuth::None)).expect("load");
    let mut server = TestServer::start(handle, Duration::from_millis(300)).await;
    // One client sends nothing, another half a ClientHello.
    let silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut half = TcpStream::connect(server.addr).await.expect("connect");
    half.write_all(&client_hello(0x0303, &[0x1301])[..20])
        .await
        .expect("write");
    let started = Instant::now();
    for _ in 0..2 {
        let err = server.next().await.expect_err("timeout");
        assert!(matches!(err, AcceptError::Timeout(_)), "{err}");
        assert_eq!(err.to_string(), "TLS handshake not finished within 300 ms");
        assert_eq!(err.kind(), "timeout");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // Meanwhile and afterwards other clients are served.
    connect_and_ping(server.addr, pki.client(None, BOTH))
        .await
        .expect("next client");
    assert!(server.next().await.is_ok());
    drop((silent, half));
}

#[tokio::test]
async fn reload_swaps_only_a_good_set_and_keeps_open_connections() {
    let pki = Pki::new();
    let settings = pki.settings(ClientAuth::Optional);
    let handle = TlsAcceptorHandle::load(&settings).expect("load");
    let mut server = TestServer::start(handle.clone(), TIMEOUT).await;
    let mut open = connect(server.addr, pki.client(None, BOTH))
        .await
        .expect("open");
    ping(&mut open).await.expect("ping");
    server.next().await.expect("accepted");

    // A set that does not load: a key of another certificate. Refused; the old stays.
    let before = handle.current();
    let dir2 = tempfile::tempdir().expect("tempdir");
    let other = pki.server_ca.server("localhost");
    let (cert2, _) = other.write(dir2.path(), "server");
    let bad = TlsSettings {
        cert: cert2,
        ..settings.clone()
    };
    let err = handle.reload(&bad).expect_err("mismatch");
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(Arc::ptr_eq(&before, &handle.current()));
    connect_and_ping(server.addr, pki.client(None, BOTH))
        .await
        .expect("old set serves");
    server.next().await.expect("accepted");

    // A good set from another server CA: the next handshake uses it.
    let new_ca = TestCa::new("new server CA");
    let new_settings = testing::settings(
        dir2.path(),
        &new_ca.server("localhost"),
        &[&pki.client_ca],
        ClientAuth::Required,
    );
    handle.reload(&new_settings).expect("reload");
    assert!(!Arc::ptr_eq(&before, &handle.current()));
    // Old trust fails, new trust works (and now a client certificate is required).
    assert!(connect_and_ping(server.addr, pki.client(None, BOTH))
        .await
        .is_err());
    let _ = server.next().await;
    let client = pki.client_ca.client("huisarts");
    connect_and_ping(
        server.addr,
        client_config(&new_ca.cert_der(), Some(&client), BOTH),
    )
    .await
    .expect("new set");
    assert!(server.next().await.expect("accepted").client.is_some());
    // The connection opened before both reloads still works.
    ping(&mut open).await.expect("open connection unaffected");
    ping(&mut open).await.expect("and again");
}

fn expect_err(settings: &TlsSettings) -> String {
    server_config(settings).expect_err("must fail").to_string()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn start_up_errors_name_the_file_and_the_reason() {
    let pki = Pki::new();
    let good = pki.settings(ClientAuth::Optional);
    let key = good.key.display().to_string();
    let cert = good.cert.display().to_string();
    server_config(&good).expect("the good set loads");

    // A key that does not match the certificate.
    let other = pki.server_ca.server("localhost");
    let (_, other_key) = other.write(pki.path(), "other");
    let mismatch = TlsSettings {
        key: other_key.clone(),
        ..good.clone()
    };
    assert_eq!(
        expect_err(&mismatch),
        format!(
            "TLS key file {} does not belong to the certificate in {cert}",
            other_key.display()
        )
    );

    // World- and group-readable keys; 0400 is fine.
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        chmod(&good.key, mode);
        assert_eq!(
            expect_err(&good),
            format!(
                "TLS key file {key}: mode {mode:04o} gives its group or others access; a private \
                 key must be 0600 or stricter (chmod 600 {key})"
            )
        );
    }
    chmod(&good.key, 0o400);
    server_config(&good).expect("0400 is fine");
    chmod(&good.key, 0o600);

    // Unreadable keys: missing, a directory, and (when not running as root) mode 0000.
    let missing = TlsSettings {
        key: pki.path().join("nope.pem"),
        ..good.clone()
    };
    assert_eq!(
        expect_err(&missing),
        format!(
            "TLS key file {}: cannot read: No such file or directory (os error 2)",
            missing.key.display()
        )
    );
    let dir = TlsSettings {
        key: pki.path().to_path_buf(),
        ..good.clone()
    };
    assert_eq!(
        expect_err(&dir),
        format!("TLS key file {}: not a regular file", pki.path().display())
    );
    chmod(&good.key, 0o000);
    if std::fs::read(&good.key).is_err() {
        assert_eq!(
            expect_err(&good),
            format!("TLS key file {key}: cannot read: Permission denied (os error 13)")
        );
    } else {
        eprintln!("running as root: a mode-0000 key is readable, that case is skipped");
    }
    chmod(&good.key, 0o600);

    // A key file without a key, an encrypted key.
    let no_key = pki.path().join("no-key.pem");
    testing::write_private(&no_key, &pki.server.chain_pem());
    assert_eq!(
        expect_err(&TlsSettings {
            key: no_key.clone(),
            ..good.clone()
        }),
        format!(
            "TLS key file {}: no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY PEM block in it",
            no_key.display()
        )
    );
    testing::write_private(
        &no_key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    assert_eq!(
        expect_err(&TlsSettings { key: no_key.clone(), ..good.clone() }),
        format!(
            "TLS key file {}: the private key is encrypted; give it unencrypted (openssl pkey -in FILE -out FILE)",
            no_key.display()
        )
    );

    // Expired and not yet valid server certificates.
    for (spec, word) in [
        (LeafSpec::server("localhost").expired(), "expired on"),
        (
            LeafSpec::server("localhost").not_yet_valid(),
            "is not valid before",
        ),
    ] {
        let leaf = pki.server_ca.issue(&spec);
        let (c, k) = leaf.write(pki.path(), "dated");
        let when = if word == "expired on" {
            spec.not_after
        } else {
            spec.not_before
        };
        let when = when
            .replace_nanosecond(0)
            .expect("ns")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        assert_eq!(
            expect_err(&TlsSettings {
                cert: c.clone(),
                key: k,
                ..good.clone()
            }),
            format!(
                "TLS certificate file {}: the certificate {word} {when}",
                c.display()
            )
        );
    }

    // A certificate file without certificates, with a broken one, missing.
    let empty = pki.path().join("empty.pem");
    std::fs::write(&empty, "just text\n").expect("write");
    assert_eq!(
        expect_err(&TlsSettings {
            cert: empty.clone(),
            ..good.clone()
        }),
        format!(
            "TLS certificate file {}: no CERTIFICATE PEM block in it",
            empty.display()
        )
    );
    std::fs::write(
        &empty,
        "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    assert!(expect_err(&TlsSettings {
        cert: empty.clone(),
        ..good.clone()
    })
    .starts_with(&format!(
        "TLS certificate file {}: certificate 1 is not a valid X.509 certificate: ",
        empty.display()
    )));

    // Broken PEM.
    std::fs::write(&empty, "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n").expect("write");
    assert_eq!(
        expect_err(&TlsSettings {
            cert: empty.clone(),
            ..good.clone()
        }),
        format!(
            "TLS certificate file {}: bad PEM: the CERTIFICATE block has no END line",
            empty.display()
        )
    );
    std::fs::write(
        &empty,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    assert_eq!(
        expect_err(&TlsSettings {
            cert: empty.clone(),
            ..good.clone()
        }),
        format!(
            "TLS certificate file {}: bad PEM: a block's base64 does not decode",
            empty.display()
        )
    );

    // Client CA and CRL problems.
    let no_ca = TlsSettings {
        client_ca: vec![],
        ..good.clone()
    };
    assert_eq!(
        expect_err(&no_ca),
        "[tls] client_auth = \"optional\" needs at least one client_ca file"
    );
    let unused = TlsSettings {
        client_auth: ClientAuth::None,
        ..good.clone()
    };
    assert!(
        expect_err(&unused).starts_with("[tls] client_ca or crl is set but client_auth = \"none\"")
    );
    let ca_missing = TlsSettings {
        client_ca: vec![pki.path().join("ca-nope.pem")],
        ..good.clone()
    };
    assert_eq!(
        expect_err(&ca_missing),
        format!(
            "client CA file {}: cannot read: No such file or directory (os error 2)",
            pki.path().join("ca-nope.pem").display()
        )
    );
    let bad_crl = pki.path().join("bad.crl");
    std::fs::write(&bad_crl, [0x30, 0x03, 0x02, 0x01, 0x01]).expect("write");
    let with_bad_crl = TlsSettings {
        crl: vec![bad_crl.clone()],
        ..good.clone()
    };
    assert!(expect_err(&with_bad_crl).starts_with(&format!(
        "CRL file {}: not a CRL rustls can use: ",
        bad_crl.display()
    )));
    std::fs::write(
        &bad_crl,
        "no pem here\n-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    assert_eq!(
        expect_err(&with_bad_crl),
        format!(
            "CRL file {}: no X509 CRL PEM block in it",
            bad_crl.display()
        )
    );
}

#[test]
fn settings_from_toml() {
    let s: TlsSettings = toml::from_str(
        "cert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = [\"a.pem\", \"b.pem\"]\nclient_auth = \"required\"\ncrl = [\"r.crl\"]\n",
    )
    .expect("parses");
    assert_eq!(s.client_auth, ClientAuth::Required);
    assert_eq!(
        s.client_ca,
        [PathBuf::from("a.pem"), PathBuf::from("b.pem")]
    );
    let s: TlsSettings = toml::from_str("cert = \"c.pem\"\nkey = \"k.pem\"\n").expect("parses");
    assert_eq!(
        (s.client_auth, s.client_ca.len(), s.crl.len()),
        (ClientAuth::None, 0, 0)
    );
    let err = toml::from_str::<TlsSettings>("cert = \"c\"\nkey = \"k\"\nclient_cert = \"x\"\n")
        .expect_err("unknown key");
    assert!(
        err.to_string().contains("unknown field `client_cert`"),
        "{err}"
    );
    let err = toml::from_str::<TlsSettings>("cert = \"c\"\nkey = \"k\"\nclient_auth = \"yes\"\n")
        .expect_err("bad mode");
    assert!(err.to_string().contains("unknown variant `yes`"), "{err}");
    assert_eq!(
        "optional".parse::<ClientAuth>().expect("parse"),
        ClientAuth::Optional
    );
    assert!("Optional".parse::<ClientAuth>().is_err());
}

#[tokio::test]
async fn every_key_form_and_type_serves() {
    let pki = Pki::new();
    let cases = [
        (KeyKind::P256, KeyFormat::Pkcs8),
        (KeyKind::P256, KeyFormat::Sec1),
        (KeyKind::P384, KeyFormat::Sec1),
        (KeyKind::Ed25519, KeyFormat::Pkcs8),
        (KeyKind::Rsa2048, KeyFormat::Pkcs8),
        (KeyKind::Rsa2048, KeyFormat::Pkcs1),
    ];
    for (kind, format) in cases {
        let leaf = pki
            .server_ca
            .issue(&LeafSpec::server("localhost").key(kind));
        let (cert, key) = leaf.write_with(pki.path(), "server-kind", format);
        let text = std::fs::read_to_string(&key).expect("read");
        let label = match format {
            KeyFormat::Pkcs8 => "-----BEGIN PRIVATE KEY-----",
            KeyFormat::Sec1 => "-----BEGIN EC PRIVATE KEY-----",
            KeyFormat::Pkcs1 => "-----BEGIN RSA PRIVATE KEY-----",
        };
        assert!(text.starts_with(label), "{kind:?} {format:?}");
        let settings = TlsSettings {
            cert,
            key,
            client_ca: vec![],
            client_auth: ClientAuth::None,
            crl: vec![],
        };
        let handle = TlsAcceptorHandle::load(&settings).expect("loads");
        let mut server = TestServer::start(handle, TIMEOUT).await;
        for versions in [TLS13, TLS12] {
            connect_and_ping(server.addr, pki.client(None, versions))
                .await
                .unwrap_or_else(|e| panic!("{kind:?} {format:?} {versions:?}: {e}"));
            server.next().await.expect("accepted");
        }
    }
}

#[test]
fn dev_ca_writes_marked_files_and_private_keys() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("certs");
    let files = devca::write(
        &out,
        "localhost",
        &["huisarts".into(), "apotheek".into()],
        false,
    )
    .expect("written");
    assert_eq!(
        std::fs::metadata(&out).expect("dir").permissions().mode() & 0o777,
        0o700
    );
    let mut all = vec![
        &files.ca_cert,
        &files.ca_key,
        &files.server_cert,
        &files.server_key,
    ];
    for c in &files.clients {
        all.push(&c.cert);
        all.push(&c.key);
    }
    for path in &all {
        let text = std::fs::read_to_string(path).expect("read");
        assert!(text.starts_with("DEVELOPMENT "), "{}", path.display());
        assert!(text.contains("NOT FOR PRODUCTION"), "{}", path.display());
    }
    for key in [&files.ca_key, &files.server_key, &files.clients[0].key] {
        assert_eq!(
            std::fs::metadata(key).expect("key").permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        files.curl_command(8443),
        format!(
            "curl --cacert {}/ca.pem --cert {}/huisarts.pem --key {}/huisarts-key.pem https://localhost:8443/.well-known/oauth-authorization-server",
            out.display(),
            out.display(),
            out.display()
        )
    );
    // Our own loader takes the files (text before the PEM blocks and all).
    let snippet: toml::Table = toml::from_str(&files.config_snippet()).expect("snippet is TOML");
    let settings: TlsSettings = snippet["tls"].clone().try_into().expect("a [tls] section");
    server_config(&settings).expect("the dev CA's files load");
    // Existing files are not replaced without --force; names are checked.
    let err = devca::write(&out, "localhost", &["huisarts".into()], false).expect_err("exists");
    assert_eq!(
        err.to_string(),
        format!(
            "{} exists; pass --force to replace the development CA and its certificates",
            files.ca_cert.display()
        )
    );
    devca::write(&out, "localhost", &["huisarts".into()], true).expect("forced");
    for bad in ["", "../x", "a/b", "ca", "server", ".hidden", "-x", "x y"] {
        assert!(
            devca::write(&out, "localhost", &[bad.into()], true).is_err(),
            "{bad:?}"
        );
    }
    assert!(devca::write(&out, "bad host", &[], true).is_err());
    assert!(devca::write(&out, "localhost", &["a".into(), "a".into()], true).is_err());
    let ip = devca::write(&dir.path().join("ip"), "::1", &[], false).expect("IP server name");
    assert!(ip.curl_command(1).contains("https://[::1]:1/"));
}

/// A tiny HTTP/1.1 server on our acceptor (one response per connection naming the client
/// certificate), called by curl with the dev CA's files.
#[tokio::test]
async fn curl_with_the_dev_ca_files() {
    if !have("curl") {
        eprintln!("curl not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let files = devca::write(dir.path(), "localhost", &["huisarts".into()], false).expect("dev CA");
    let mut settings: TlsSettings = toml::from_str::<toml::Table>(&files.config_snippet())
        .expect("toml")["tls"]
        .clone()
        .try_into()
        .expect("settings");
    settings.client_auth = ClientAuth::Required;
    let handle = TlsAcceptorHandle::load(&settings).expect("load");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let Ok((mut stream, client)) = accept(&handle, tcp, TIMEOUT).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!(
                    "subject={} fingerprint={}\n",
                    client.as_ref().map_or("-", |c| c.subject()),
                    client.as_ref().map_or("-", |c| c.fingerprint_sha256())
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["--silent", "--show-error", "--max-time", "5", "--http1.1"])
                .args(args)
                .output()
                .expect("curl runs")
        })
        .await
        .expect("join")
    };
    let line = files.curl_command(port);
    let args: Vec<String> = line.split(' ').skip(1).map(str::to_owned).collect();
    let out = run(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("subject=O=poortwachter development,CN=huisarts fingerprint="),
        "{stdout}"
    );
    // Without the client certificate: refused.
    let out = run(vec![
        "--cacert".into(),
        files.ca_cert.display().to_string(),
        format!("https://localhost:{port}/"),
    ])
    .await;
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // TLS 1.1 at most: refused.
    let out = run(vec![
        "--tls-max".into(),
        "1.1".into(),
        "--cacert".into(),
        files.ca_cert.display().to_string(),
        format!("https://localhost:{port}/"),
    ])
    .await;
    assert!(!out.status.success());
}

/// Our RFC 4514 subject against OpenSSL's (`-nameopt RFC2253`) for awkward values.
#[test]
fn subjects_match_openssl_rfc2253() {
    if !have("openssl") {
        eprintln!("openssl not installed: skipped");
        return;
    }
    let ca = TestCa::new("ca");
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (cn, o)) in [
        ("huisarts", "Praktijk de Linde"),
        ("a,b+c;d", " leading space"),
        ("#hash", "trailing space "),
        ("quote\"back\\slash<>", "Zorg Ü.V."),
    ]
    .into_iter()
    .enumerate()
    {
        let mut spec = LeafSpec::client(cn);
        spec.organization = Some(o.into());
        let leaf = ca.issue(&spec);
        let cert = ClientCert::from_chain(leaf.chain.clone()).expect("parses");
        let path = dir.path().join(format!("{i}.pem"));
        std::fs::write(&path, leaf.chain_pem()).expect("write");
        let out = std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-subject",
                "-nameopt",
                "RFC2253,-esc_msb",
                "-in",
            ])
            .arg(&path)
            .output()
            .expect("openssl");
        let theirs = String::from_utf8_lossy(&out.stdout);
        let theirs = theirs.trim().trim_start_matches("subject=");
        assert_eq!(cert.subject(), theirs, "{cn:?} {o:?}");
    }
}

/// Fuzz-style sweep: every byte of a real client certificate (with SAN DNS names and a UZI
/// otherName) replaced by 0x00, 0x80 and its complement, and every truncation, goes through
/// `ClientCert::from_chain` without a panic; what still parses yields one-line strings.
#[test]
fn mangled_certificates_never_panic() {
    let ca = TestCa::new("ca");
    let mut spec = LeafSpec::client("huisarts")
        .uzi("2.16.528.1.1007.99.2110-1-900030787-S-90000380-00.000-00000000");
    spec.dns_names = vec!["a.example".into()];
    spec.organization = Some("O, with \"odd\" + chars".into());
    let der = ca.issue(&spec).der().to_vec();
    let mut parsed = 0;
    let mut check = |bytes: Vec<u8>| {
        if let Ok(cert) = ClientCert::from_chain(vec![bytes.into()]) {
            parsed += 1;
            for s in [cert.subject(), cert.issuer()] {
                assert!(!s.chars().any(char::is_control), "{s:?}");
            }
            assert_eq!(cert.fingerprint_sha256().len(), 64);
        }
    };
    for i in 0..der.len() {
        for b in [0x00, 0x80, !der[i]] {
            let mut m = der.clone();
            m[i] = b;
            check(m);
        }
        check(der[..i].to_vec());
    }
    assert!(
        parsed > 0,
        "some mutations (e.g. in the signature) still parse"
    );
}

use base64::Engine as _;
use sha2::Digest as _;

/// An OpenSSL client that asks to renegotiate a TLS 1.2 connection never gets a ServerHello:
/// rustls implements no renegotiation (it answers with a `no_renegotiation` warning alert).
#[tokio::test]
async fn renegotiation_is_refused() {
    if !have("openssl") {
        eprintln!("openssl not installed: skipped");
        return;
    }
    let pki = Pki::new();
    let handle = TlsAcceptorHandle::load(&pki.settings(ClientAuth::None)).expect("load");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Serve one connection for 1.5 s (reading, so the renegotiation request is processed),
    // then close it, which ends s_client.
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let (mut stream, _) = accept(&handle, tcp, TIMEOUT).await.expect("handshake");
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_millis(1500), async {
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    });
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-tls1_2", "-msg"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("openssl");
        let mut stdin = child.stdin.take().expect("stdin");
        std::thread::sleep(Duration::from_millis(500));
        let _ = stdin.write_all(b"R\n");
        drop(stdin);
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join");
    server.await.expect("server");
    // The message trace: one ClientHello, then the renegotiation's ClientHello, which gets no
    // ServerHello (OpenSSL then gives up on the connection itself).
    let text = String::from_utf8_lossy(&out.stdout);
    let hellos: Vec<usize> = text
        .match_indices("], ClientHello")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hellos.len(), 2, "{text}");
    assert!(text[..hellos[1]].contains("], ServerHello"), "{text}");
    assert!(!text[hellos[1]..].contains("], ServerHello"), "{text}");
}

/// Trust anchors from several files, several per file (with text around the blocks).
#[tokio::test]
async fn several_client_cas_in_several_files() {
    let pki = Pki::new();
    let (a, b, c) = (TestCa::new("A"), TestCa::new("B"), TestCa::new("C"));
    let both = pki.path().join("a-and-b.pem");
    std::fs::write(
        &both,
        format!("Network A\n{}\nNetwork B\n{}", a.cert_pem(), b.cert_pem()),
    )
    .expect("write");
    let mut settings = pki.settings(ClientAuth::Required);
    settings.client_ca = vec![both, c.write(pki.path(), "c")];
    let handle = TlsAcceptorHandle::load(&settings).expect("load");
    let mut server = TestServer::start(handle, TIMEOUT).await;
    for ca in [&a, &b, &c] {
        let client = ca.client("member");
        connect_and_ping(server.addr, pki.client(Some(&client), BOTH))
            .await
            .expect("trusted");
        let cert = server
            .next()
            .await
            .expect("accepted")
            .client
            .expect("identity");
        assert!(cert.issuer().starts_with("O=poortwachter tests,CN="));
    }
    // The CA of Pki::settings is not among them any more.
    let outsider = pki.client_ca.client("outsider");
    assert!(
        connect_and_ping(server.addr, pki.client(Some(&outsider), BOTH))
            .await
            .is_err()
    );
    assert!(server.next().await.is_err());
}

/// Certificates made by OpenSSL (the fuzz seeds): an otherName written as IA5String and as
/// UTF8String, a multi-valued RDN, serialNumber, DC and UID attributes, escapes.
#[test]
fn openssl_made_certificates() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/client_cert");
    let read = |name: &str| {
        let der = std::fs::read(seeds.join(name)).expect("seed");
        ClientCert::from_chain(vec![der.into()]).expect("parses")
    };
    let server = read("uzi-server.der");
    assert_eq!(
        server.subject(),
        "CN=\\#server one\\ ,serialNumber=90000380,O=Zorg\\, bij \\\"jou\\\" B.V.,C=NL"
    );
    assert_eq!(
        server.dns_names(),
        ["zorg.example.nl", "api.zorg.example.nl"]
    );
    let uzi = server.uzi().expect("IA5String otherName");
    assert_eq!((uzi.pass_type, uzi.ura.as_str()), ('S', "90000380"));
    let card = read("rsa-card-utf8.der");
    // Within a multi-valued RDN RFC 4514 leaves the order free: we keep the DER order (a SET
    // OF, sorted), OpenSSL's RFC2253 printer reverses it.
    assert_eq!(
        card.subject(),
        "O=Praktijk\\+Partners,UID=42+CN=Zorgverlener Ü"
    );
    let uzi = card.uzi().expect("UTF8String otherName");
    assert_eq!(
        (uzi.pass_type, uzi.ura.as_str(), uzi.uzi_number.as_str()),
        ('N', "90000382", "900021219")
    );
    assert!(!uzi.is_server_certificate());
    let plain = read("ed25519-plain.der");
    assert_eq!(plain.subject(), "CN=plain,UID=12345,DC=example,DC=nl");
    assert_eq!(plain.issuer(), plain.subject());
    assert!(plain.uzi().is_none() && plain.dns_names().is_empty());
}

#[test]
fn x5t_s256_of_an_escaped_pem_is_the_certificates() {
    let ca = TestCa::new("network");
    let leaf = ca.client("huisarts");
    let cert = ClientCert::from_chain(leaf.chain.clone()).unwrap();
    // What nginx's $ssl_client_escaped_cert holds: the PEM, URL-encoded.
    let escaped: String = leaf
        .chain_pem()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    assert_eq!(
        crate::tls::x5t_s256_of_escaped_pem(escaped.as_bytes()).as_deref(),
        Some(cert.x5t_s256())
    );
    assert_eq!(crate::tls::x5t_s256(leaf.der()), cert.x5t_s256());
    assert_eq!(
        crate::tls::x5t_s256_of_escaped_pem(b"not a certificate"),
        None
    );
    assert_eq!(crate::tls::x5t_s256_of_escaped_pem(b""), None);
}
