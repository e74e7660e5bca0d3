//! Outbound TLS: the rustls client configurations for the connections poortwachter opens
//! itself: to the source system (`upstream = "https://..."` with `upstream_ca`,
//! `upstream_client_cert`, `upstream_client_key`), to a custodian's token endpoint (`token
//! request --cacert --cert --key`) and to `did:web` hosts (`[did_web] extra_ca`).
//!
//! The files are read and checked as the listener's are (`tls::load`): every problem stops
//! start-up (or the command) with the file and the reason; a client key must be mode 0600 or
//! stricter and be the key of its certificate, whose validity period must hold now. The
//! configurations use ring: reqwest's and hyper-rustls' provider (aws-lc-rs serves the
//! listener), named explicitly since both are compiled in. rustls' defaults otherwise: TLS 1.2
//! and 1.3, no ALPN (HTTP/1.1; hyper-rustls refuses a configuration that sets one).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::UnixTime;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::load::{self, FileLabels};
use super::TlsError;

/// The files of an outbound TLS client: whom to trust, and which certificate to present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundTls {
    /// Trust anchors for the server (PEM files, one or more certificates each).
    pub ca: Vec<PathBuf>,
    /// The client certificate chain (PEM, leaf first), for servers that require mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Its private key (PKCS#8, SEC1 or PKCS#1 PEM; mode 0600 or stricter).
    pub client_key: Option<PathBuf>,
}

impl OutboundTls {
    /// Whether anything is configured (otherwise the system roots and no client certificate).
    #[must_use]
    pub fn is_configured(&self) -> bool {
        !self.ca.is_empty() || self.client_cert.is_some() || self.client_key.is_some()
    }
}

/// Which roots the server's certificate may chain to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The configured CA files; the system's roots only when none is configured (the source
    /// system, `token request`: like curl's `--cacert`).
    ConfiguredElseSystem,
    /// The system's roots and the configured CA files (`did:web`: the web PKI stays).
    SystemAndConfigured,
}

/// The labels of the source system's files.
pub const UPSTREAM_FILES: FileLabels = FileLabels {
    cert: "upstream_client_cert file",
    key: "upstream_client_key file",
    ca: "upstream_ca file",
};

/// The labels of `token request`'s files.
pub const CLI_FILES: FileLabels = FileLabels {
    cert: "--cert file",
    key: "--key file",
    ca: "--cacert file",
};

/// The labels of `[did_web]`'s files.
pub const DID_WEB_FILES: FileLabels = FileLabels {
    cert: "did_web client certificate file",
    key: "did_web client key file",
    ca: "did_web.extra_ca file",
};

/// The ring provider with its defaults (the peer decides nothing we have not allowed: rustls
/// has no CBC, RC4, 3DES, static RSA or finite-field DHE at all).
#[must_use]
pub fn outbound_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a client configuration from `files` (blocking file IO), naming files by `labels` in
/// errors.
pub fn client_config(
    files: &OutboundTls,
    labels: &FileLabels,
    roots: Roots,
) -> Result<ClientConfig, TlsError> {
    let provider = outbound_provider();
    let mut store = RootCertStore::empty();
    if roots == Roots::SystemAndConfigured || files.ca.is_empty() {
        add_system_roots(&mut store);
    }
    for path in &files.ca {
        load::load_cas(labels.ca, path, &mut store)?;
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(store);
    match (&files.client_cert, &files.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let certified = load::certified_key(labels, cert, key, &provider, UnixTime::now())?;
            Ok(builder.with_client_cert_resolver(Arc::new(OneClientCert(Arc::new(certified)))))
        }
        (Some(_), None) => Err(TlsError::Config(format!(
            "a {} needs its key ({} missing)",
            labels.cert, labels.key
        ))),
        (None, Some(_)) => Err(TlsError::Config(format!(
            "a {} needs its certificate ({} missing)",
            labels.key, labels.cert
        ))),
    }
}

/// The system's trust anchors (what reqwest and hyper-rustls use by default); unreadable ones
/// are skipped, and none at all is logged (an https server then fails its handshake).
fn add_system_roots(store: &mut RootCertStore) {
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            "no system TLS roots: an https server can only be verified with a configured CA file"
        );
    }
}

/// The one client certificate we present, whatever the server asks.
#[derive(Debug)]
struct OneClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for OneClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
