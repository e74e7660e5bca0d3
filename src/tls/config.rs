//! The rustls `ServerConfig`: provider, versions, suites, groups, ALPN, client verification.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{cipher_suite, default_provider, kx_group};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::ServerConfig;

use super::load::{self, Loaded};
use super::{ClientAuth, TlsError, TlsSettings};

/// The aws-lc-rs provider cut down to the NCSC's "good" choices, in our order of preference:
///
/// - TLS 1.3: AES-256-GCM, ChaCha20-Poly1305, AES-128-GCM;
/// - TLS 1.2: ECDHE with an ECDSA or RSA certificate and AES-256-GCM, ChaCha20-Poly1305 or
///   AES-128-GCM (no CBC, no static RSA key exchange, no finite-field DHE: rustls has none of
///   them anyway, the list makes the choice explicit);
/// - key exchange: X25519, P-256, P-384. The post-quantum hybrid X25519MLKEM768 that rustls
///   offers by default is left out until the NCSC's guidance names it.
#[must_use]
pub fn crypto_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        ..default_provider()
    }
}

/// Builds the server configuration from the files of `settings` (read now, checked at the
/// current time).
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    server_config_at(settings, UnixTime::now())
}

/// [`server_config`] with the time the server certificate must be valid at.
pub(crate) fn server_config_at(
    settings: &TlsSettings,
    now: UnixTime,
) -> Result<ServerConfig, TlsError> {
    let trust_configured = !settings.client_ca.is_empty() || !settings.crl.is_empty();
    match settings.client_auth {
        ClientAuth::None if trust_configured => return Err(TlsError::UnusedClientCa),
        ClientAuth::Optional | ClientAuth::Required if settings.client_ca.is_empty() => {
            return Err(TlsError::NoClientCa(settings.client_auth))
        }
        _ => {}
    }
    let provider = Arc::new(crypto_provider());
    let Loaded {
        certified_key,
        roots,
        crls,
    } = load::load(settings, &provider, now)?;
    let verifier = match settings.client_auth {
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
        mode => {
            // rustls' defaults for revocation stay: with CRLs configured, every certificate of
            // a client chain (not only the leaf) must be covered by one of them, and an unknown
            // status is a refusal (as nginx's `ssl_crl`). A CRL past its nextUpdate still counts.
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .with_crls(crls);
            let builder = if mode == ClientAuth::Optional {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCert(certified_key)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    config.max_early_data_size = 0;
    Ok(config)
}

/// The one certificate this server has (already checked against its key).
#[derive(Debug)]
struct SingleCert(Arc<rustls::sign::CertifiedKey>);

impl ResolvesServerCert for SingleCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}
