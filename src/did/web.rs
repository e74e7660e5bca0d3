//! `did:web` resolution over HTTPS with guards: no redirects, a size and a time limit, and no
//! request to a loopback, private, link-local or otherwise non-public address (the address is
//! checked after DNS resolution and the connection is pinned to it, so DNS rebinding cannot
//! slip through). Plain `http` is used only for loopback targets, and only when
//! `dangerous_allow_http_loopback` is set (tests and local development).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{DidDocument, DidError};

/// Limits and switches for `did:web`.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Connect + read time limit.
    pub timeout: Duration,
    /// Largest document accepted.
    pub max_bytes: usize,
    /// Allow `http://` to loopback addresses (never to anything else).
    pub dangerous_allow_http_loopback: bool,
    /// CA files trusted for `did:web` hosts besides the web PKI's roots (`[did_web] extra_ca`).
    pub extra_ca: Vec<std::path::PathBuf>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_bytes: 64 * 1024,
            dangerous_allow_http_loopback: false,
            extra_ca: Vec::new(),
        }
    }
}

/// Fetches `did:web` documents.
pub struct WebResolver {
    settings: WebSettings,
    /// The web PKI's roots (the system's) and the `extra_ca` files, read once.
    tls: rustls::ClientConfig,
}

/// Where a `did:web` document lives.
#[derive(Debug, PartialEq, Eq)]
pub struct WebLocation {
    /// Host name or IP literal.
    pub host: String,
    /// Port, if the DID names one.
    pub port: Option<u16>,
    /// Path of `did.json`.
    pub path: String,
}

/// Maps a `did:web` DID to the location of its document (did:web spec §3.2).
pub fn location(did: &str) -> Result<WebLocation, DidError> {
    let invalid = || DidError::Invalid(did.to_owned());
    let id = did.strip_prefix("did:web:").ok_or_else(invalid)?;
    let mut parts = id.split(':');
    let authority = parts.next().filter(|a| !a.is_empty()).ok_or_else(invalid)?;
    let authority = authority.replace("%3A", ":").replace("%3a", ":");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().map_err(|_| invalid())?)),
        None => (authority.clone(), None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !host_ok {
        return Err(invalid());
    }
    let segments: Vec<&str> = parts.collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || s.contains('%') || *s == "." || *s == "..")
    {
        return Err(invalid());
    }
    let path = if segments.is_empty() {
        "/.well-known/did.json".to_owned()
    } else {
        format!("/{}/did.json", segments.join("/"))
    };
    Ok(WebLocation {
        host: host.to_ascii_lowercase(),
        port,
        path,
    })
}

/// True for addresses that are fine to contact on the public internet.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[0] == 0x0064)
        }
    }
}

impl WebResolver {
    /// Creates the resolver; reads the system's roots and the `extra_ca` files (a file that
    /// does not load is an error naming it).
    pub fn new(settings: WebSettings) -> Result<Self, DidError> {
        let files = crate::tls::OutboundTls {
            ca: settings.extra_ca.clone(),
            ..Default::default()
        };
        let tls = crate::tls::client_config(
            &files,
            &crate::tls::client::DID_WEB_FILES,
            crate::tls::Roots::SystemAndConfigured,
        )
        .map_err(|e| DidError::Setup(e.to_string()))?;
        Ok(Self { settings, tls })
    }

    /// Resolves a `did:web` DID.
    pub async fn resolve(&self, did: &str) -> Result<DidDocument, DidError> {
        let unresolvable = |reason: String| DidError::Unresolvable {
            did: did.to_owned(),
            reason,
        };
        let loc = location(did)?;
        let port = loc.port.unwrap_or(443);
        let addrs: Vec<SocketAddr> = match loc.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                self.settings.timeout,
                tokio::net::lookup_host((loc.host.as_str(), port)),
            )
            .await
            .map_err(|_| unresolvable("DNS lookup timed out".into()))?
            .map_err(|e| unresolvable(format!("DNS lookup failed: {e}")))?
            .collect(),
        };
        let all_loopback = !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback());
        let plain_http = all_loopback && self.settings.dangerous_allow_http_loopback;
        let target = if plain_http {
            addrs[0]
        } else {
            *addrs.iter().find(|a| is_public(a.ip())).ok_or_else(|| {
                unresolvable(format!(
                    "{} resolves to no public address (loopback and private ranges are refused)",
                    loc.host
                ))
            })?
        };
        let scheme = if plain_http { "http" } else { "https" };
        let url = match loc.port {
            Some(p) => format!("{scheme}://{}:{p}{}", loc.host, loc.path),
            None => format!("{scheme}://{}{}", loc.host, loc.path),
        };
        let client = self
            .client(&loc.host, target, plain_http)
            .map_err(|e| unresolvable(format!("HTTP client: {e}")))?;
        let mut response = client
            .get(&url)
            .header("accept", "application/did+json, application/json")
            .send()
            .await
            .map_err(|e| unresolvable(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(unresolvable(format!(
                "GET {url}: HTTP {}",
                response.status().as_u16()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unresolvable(format!("GET {url}: {e}")))?
        {
            if body.len() + chunk.len() > self.settings.max_bytes {
                return Err(unresolvable(format!(
                    "GET {url}: document larger than {} bytes",
                    self.settings.max_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: DidDocument =
            serde_json::from_slice(&body).map_err(|e| DidError::BadDocument {
                did: did.to_owned(),
                reason: e.to_string(),
            })?;
        if doc.id != did {
            return Err(DidError::BadDocument {
                did: did.to_owned(),
                reason: format!("document id is {}", doc.id),
            });
        }
        Ok(doc)
    }
}

impl WebResolver {
    /// The HTTP client for one fetch: pinned to `target` for `host`, no redirects, no proxy,
    /// https only unless `plain_http`, trusting the web PKI and the `extra_ca` files.
    fn client(
        &self,
        host: &str,
        target: SocketAddr,
        plain_http: bool,
    ) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.timeout)
            .no_proxy()
            .https_only(!plain_http)
            .resolve(host, target)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            location("did:web:example.com").unwrap(),
            WebLocation {
                host: "example.com".into(),
                port: None,
                path: "/.well-known/did.json".into()
            }
        );
        assert_eq!(
            location("did:web:example.com%3A8443:org:zorg").unwrap(),
            WebLocation {
                host: "example.com".into(),
                port: Some(8443),
                path: "/org/zorg/did.json".into()
            }
        );
        for bad in [
            "did:web:",
            "did:web:a/b",
            "did:web:ex.com:..",
            "did:web:ex.com%3Ax",
            "did:web:ex.com::a",
        ] {
            assert!(location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "145.97.1.1", "2a00:1450::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// `[did_web] extra_ca`: a host whose certificate chains to an extra CA is fetched; without
    /// it, the same host fails its handshake (the web PKI does not know that CA).
    #[tokio::test]
    async fn extra_ca_is_trusted_besides_the_web_pki() {
        use crate::tls::testing::TestCa;
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("Zorgnetwerk test CA");
        let ca_file = ca.write(dir.path(), "extra-ca");
        let server = crate::tls::testing::settings(
            dir.path(),
            &ca.server("localhost"),
            &[],
            crate::tls::ClientAuth::None,
        );
        let handle = crate::tls::TlsAcceptorHandle::load(&server).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let handle = handle.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let Ok((mut tls, _)) =
                        crate::tls::accept(&handle, tcp, Duration::from_secs(5)).await
                    else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let body = "{\"id\":\"did:web:localhost\"}";
                    let _ = tls
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let url = format!("https://localhost:{}/.well-known/did.json", addr.port());
        let with = WebResolver::new(WebSettings {
            extra_ca: vec![ca_file],
            ..WebSettings::default()
        })
        .unwrap();
        let body = with
            .client("localhost", addr, false)
            .unwrap()
            .get(&url)
            .send()
            .await
            .expect("trusted through extra_ca")
            .text()
            .await
            .unwrap();
        assert_eq!(body, "{\"id\":\"did:web:localhost\"}");
        let without = WebResolver::new(WebSettings::default()).unwrap();
        let err = without
            .client("localhost", addr, false)
            .unwrap()
            .get(&url)
            .send()
            .await
            .expect_err("an unknown CA");
        assert!(err.is_connect(), "{err:?}");
    }

    #[test]
    fn a_bad_extra_ca_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = WebResolver::new(WebSettings {
            extra_ca: vec![missing.clone()],
            ..WebSettings::default()
        })
        .err()
        .expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "did_web.extra_ca file {}: cannot read: No such file or directory (os error 2)",
                missing.display()
            )
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "no certificate here\n").unwrap();
        let err = WebResolver::new(WebSettings {
            extra_ca: vec![junk.clone()],
            ..WebSettings::default()
        })
        .err()
        .expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "did_web.extra_ca file {}: no CERTIFICATE PEM block in it",
                junk.display()
            )
        );
    }
}
