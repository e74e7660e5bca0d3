//! The acceptor: the current server configuration (swapped on reload) and one handshake under a
//! time limit.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use super::config::server_config;
use super::identity::ClientCert;
use super::{TlsError, TlsSettings};

/// The server's current TLS configuration, shared by every accepting thread (clone it freely).
///
/// [`reload`](Self::reload) builds a whole new `ServerConfig` (certificate, key, trust anchors,
/// CRLs) and swaps it in only when it built; a handshake takes the configuration current when it
/// starts, and open connections keep theirs. Each configuration has its own session cache, so a
/// session from before a reload (for example from before a CRL revoked its client) cannot be
/// resumed after it.
#[derive(Clone)]
pub struct TlsAcceptorHandle {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl TlsAcceptorHandle {
    /// Loads the files of `settings` (blocking file IO: call it at start-up or from a blocking
    /// task).
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        Ok(Self::from_config(Arc::new(server_config(settings)?)))
    }

    /// A handle around a configuration built elsewhere (tests, or a caller's own settings).
    #[must_use]
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        Self {
            current: Arc::new(RwLock::new(config)),
        }
    }

    /// Re-reads the files of `settings`; on success the next handshake uses them, on failure
    /// the current configuration stays and the error says which file failed and why.
    pub fn reload(&self, settings: &TlsSettings) -> Result<(), TlsError> {
        let config = Arc::new(server_config(settings)?);
        self.swap(config);
        Ok(())
    }

    /// Makes `config` the current configuration.
    pub fn swap(&self, config: Arc<ServerConfig>) {
        // A poisoned lock only means a panic elsewhere while it was held; the value is whole.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The configuration the next handshake will use.
    #[must_use]
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for TlsAcceptorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptorHandle").finish_non_exhaustive()
    }
}

/// Why a connection did not become a TLS stream. Each costs that connection only.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The handshake did not finish in time (a stalled or very slow client).
    #[error("TLS handshake not finished within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The handshake failed: not TLS, no common version or suite, a refused client
    /// certificate, a closed connection.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
    /// The verified client certificate could not be read as an identity.
    #[error("client certificate: {0}")]
    ClientCertificate(#[from] super::identity::CertificateError),
}

impl AcceptError {
    /// The rustls error behind a failed handshake, if it was one (IO errors are not).
    #[must_use]
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        match self {
            AcceptError::Handshake(e) => e.get_ref()?.downcast_ref::<rustls::Error>(),
            _ => None,
        }
    }

    /// A short, fixed label for logs and metrics: `timeout`, `not_tls`, `client_certificate`,
    /// `no_common_protocol`, `tls`, `io`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        use rustls::Error as E;
        match self {
            AcceptError::Timeout(_) => "timeout",
            AcceptError::ClientCertificate(_) => "client_certificate",
            AcceptError::Handshake(_) => match self.tls_error() {
                None => "io",
                Some(E::InvalidMessage(_)) => "not_tls",
                Some(
                    E::InvalidCertificate(_)
                    | E::NoCertificatesPresented
                    | E::InvalidCertRevocationList(_),
                ) => "client_certificate",
                Some(E::PeerIncompatible(_)) => "no_common_protocol",
                Some(_) => "tls",
            },
        }
    }
}

/// Runs the server side of a handshake on `io` with the handle's current configuration, within
/// `handshake_timeout`. Returns the stream and, when the client presented a certificate (which
/// the verifier then accepted), its identity.
///
/// A client that sends something other than TLS gets an alert and the connection is closed; a
/// client that stalls is dropped when the time is up. Either way only this connection is spent.
/// The negotiated ALPN protocol is `stream.get_ref().1.alpn_protocol()`.
pub async fn accept<IO>(
    handle: &TlsAcceptorHandle,
    io: IO,
    handshake_timeout: Duration,
) -> Result<(TlsStream<IO>, Option<ClientCert>), AcceptError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(handle.current());
    let stream = tokio::time::timeout(handshake_timeout, acceptor.accept(io))
        .await
        .map_err(|_| AcceptError::Timeout(handshake_timeout))?
        .map_err(AcceptError::Handshake)?;
    let client = match stream.get_ref().1.peer_certificates() {
        Some(chain) if !chain.is_empty() => Some(ClientCert::from_chain(chain.to_vec())?),
        _ => None,
    };
    Ok((stream, client))
}
