//! TLS and mutual TLS for the listeners: rustls with the aws-lc-rs provider, no OpenSSL.
//!
//! - [`TlsSettings`]: the `[tls]` section (certificate chain, key, client trust anchors, CRLs,
//!   the client-certificate mode).
//! - [`TlsAcceptorHandle`]: the current `rustls::ServerConfig`. [`TlsAcceptorHandle::reload`]
//!   builds a new one from the files and swaps it in only when everything loaded, so a bad set
//!   of files changes nothing. Each handshake takes the configuration current when it starts;
//!   open connections keep theirs.
//! - [`accept`]: one server handshake under a time limit; gives the stream and, when the client
//!   presented one, its verified certificate as a [`ClientCert`].
//! - [`ClientCert`]: the identity in a verified client certificate (SHA-256 fingerprint, RFC
//!   4514 subject, SAN DNS names, the UZI-register `otherName` as a [`UziName`]).
//! - [`client`]: outbound TLS (the source system, `token request`, `did:web`): trust anchors
//!   and an optional client certificate, read and checked like the listener's files.
//! - [`devca`]: a development CA for trying TLS locally (`poortwachter tls dev-ca`);
//!   [`testing`]: a certificate factory for tests.
//!
//! What the listener speaks (the NCSC's "ICT-beveiligingsrichtlijnen voor TLS", level "goed"):
//! TLS 1.3 and TLS 1.2 only; TLS 1.3 with AES-256-GCM, ChaCha20-Poly1305, AES-128-GCM; TLS 1.2
//! only ECDHE (ECDSA or RSA certificates) with AES-GCM or ChaCha20-Poly1305, never CBC, RC4,
//! 3DES, static RSA or finite-field DHE; key exchange over X25519, P-256 or P-384; our order of
//! preference wins over the client's; ALPN `h2` and `http/1.1`; no 0-RTT data. rustls never
//! renegotiates: it implements no renegotiation at all (it sends no HelloRequest and answers a
//! client's renegotiation attempt with a `no_renegotiation` alert), so the NCSC's advice to
//! switch renegotiation off holds by construction.
//!
//! **Invariant:** no handshake completes with a client certificate that does not chain to a
//! configured `client_ca`, is outside its validity period, or is revoked by a configured CRL;
//! [`accept`] only returns a [`ClientCert`] for such a verified certificate.

mod accept;
pub mod client;
mod config;
pub(crate) mod der;
pub mod devca;
mod identity;
mod load;
#[doc(hidden)]
pub mod testing;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use accept::{accept, AcceptError, TlsAcceptorHandle};
pub use client::{client_config, OutboundTls, Roots};
pub use config::{crypto_provider, server_config};
pub use identity::{
    x5t_s256, x5t_s256_of_escaped_pem, CertificateError, ClientCert, UziError, UziName,
};
pub use load::{FileLabels, SERVER_FILES};

/// The `[tls]` section of `config.toml`:
///
/// ```toml
/// [tls]
/// cert = "certs/server.pem"        # PEM chain, leaf first
/// key = "certs/server-key.pem"     # PKCS#8, SEC1 or PKCS#1 PEM, mode 0600 or stricter
/// client_ca = ["certs/network-ca.pem"]
/// client_auth = "optional"         # none (default) | optional | required
/// crl = []                         # CRL files (PEM or DER) for client chains
/// ```
///
/// Paths are used as given (the configuration loader resolves relative ones).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The server's private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// Trust anchors for client certificates: PEM files, each with one or more certificates.
    #[serde(default)]
    pub client_ca: Vec<PathBuf>,
    /// Whether a client certificate is asked for, and whether it is required.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Certificate revocation lists (PEM or DER) checked for client chains.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
}

/// Whether the server asks the client for a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client certificate is asked for; a handshake without one succeeds, a handshake with
    /// one that does not verify fails.
    Optional,
    /// A verified client certificate is required.
    Required,
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::None => "none",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        })
    }
}

impl FromStr for ClientAuth {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(ClientAuth::None),
            "optional" => Ok(ClientAuth::Optional),
            "required" => Ok(ClientAuth::Required),
            _ => Err(TlsError::BadClientAuth),
        }
    }
}

/// Why a TLS configuration could not be built. Each message names the file and the reason, on
/// one line.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{what} {path}: cannot read: {io}")]
    Read {
        /// What the file is for ("TLS certificate file", ...).
        what: &'static str,
        /// The file.
        path: String,
        /// The cause (in the message, so not a `source`: `{:#}` would repeat it).
        io: std::io::Error,
    },
    /// The file's PEM is malformed.
    #[error("{what} {path}: bad PEM: {reason}")]
    Pem {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// The parser's reason.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("{what} {path}: no CERTIFICATE PEM block in it")]
    NoCertificate {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
    },
    /// A certificate could not be parsed.
    #[error("{what} {path}: certificate {index} is not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// Its position in the file, from 1.
        index: usize,
        /// The reason.
        reason: String,
    },
    /// The (server or outbound client) certificate's validity period has ended.
    #[error("{what} {path}: the certificate expired on {not_after}")]
    Expired {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// Its notAfter, RFC 3339.
        not_after: String,
    },
    /// The (server or outbound client) certificate's validity period has not begun.
    #[error("{what} {path}: the certificate is not valid before {not_before}")]
    NotYetValid {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// Its notBefore, RFC 3339.
        not_before: String,
    },
    /// The key file is not a regular file.
    #[error("{what} {path}: not a regular file")]
    KeyNotAFile {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
    },
    /// The key file can be read or written by others than its owner.
    #[error(
        "{what} {path}: mode {mode:04o} gives its group or others access; a private key \
         must be 0600 or stricter (chmod 600 {path})"
    )]
    KeyPermissions {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file holds no private key we can read.
    #[error("{what} {path}: {reason}")]
    NoKey {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// What was found instead.
        reason: &'static str,
    },
    /// The private key is of a type or form the provider does not support.
    #[error("{what} {path}: unsupported private key: {reason}")]
    UnsupportedKey {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// The provider's reason.
        reason: String,
    },
    /// The private key is not the key of the certificate.
    #[error("{what} {key} does not belong to the certificate in {cert}")]
    KeyMismatch {
        /// What the key file is for.
        what: &'static str,
        /// The key file.
        key: String,
        /// The certificate file.
        cert: String,
    },
    /// A trust anchor was refused.
    #[error("{what} {path}: certificate {index} cannot be a trust anchor: {reason}")]
    BadCa {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: String,
        /// Its position in the file, from 1.
        index: usize,
        /// The reason.
        reason: String,
    },
    /// A CRL could not be parsed.
    #[error("CRL file {path}: {reason}")]
    BadCrl {
        /// The file.
        path: String,
        /// The reason.
        reason: String,
    },
    /// `client_auth` asks for client certificates but no `client_ca` is configured.
    #[error("[tls] client_auth = \"{0}\" needs at least one client_ca file")]
    NoClientCa(ClientAuth),
    /// `client_ca` or `crl` is configured while `client_auth = "none"` (they would be ignored).
    #[error(
        "[tls] client_ca or crl is set but client_auth = \"none\" asks for no client \
         certificate: set client_auth = \"optional\" or \"required\", or remove them"
    )]
    UnusedClientCa,
    /// An unknown `client_auth` value.
    #[error("client_auth must be none, optional or required")]
    BadClientAuth,
    /// rustls refused the configuration (should not happen with loaded files).
    #[error("TLS configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests;
