//! Reading the files of a [`TlsSettings`]: the server's chain and key, the client trust anchors
//! and the CRLs. PEM goes through rustls-pki-types' `PemObject` (text around the PEM blocks is
//! ignored, RFC 7468 §5.2); certificates are checked with x509-parser, CRLs with rustls-webpki
//! (the parser rustls itself will use), so each problem is reported with its file.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use x509_parser::prelude::FromDer as _;

use super::{TlsError, TlsSettings};

const CRL_FILE: &str = "CRL file";

/// What a set of files is called in error messages: the server's own (`[tls]`), or an outbound
/// client's (`upstream_*`, `token request --cert`, `[did_web] extra_ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLabels {
    /// The certificate chain.
    pub cert: &'static str,
    /// The private key.
    pub key: &'static str,
    /// Trust anchors.
    pub ca: &'static str,
}

/// The labels of `[tls]`'s files.
pub const SERVER_FILES: FileLabels = FileLabels {
    cert: "TLS certificate file",
    key: "TLS key file",
    ca: "client CA file",
};

/// Warn when the server certificate expires within this many seconds (14 days).
const EXPIRY_WARNING_SECS: i64 = 14 * 24 * 3600;

/// Everything the files of a [`TlsSettings`] hold, checked.
pub(crate) struct Loaded {
    pub(crate) certified_key: Arc<CertifiedKey>,
    pub(crate) roots: RootCertStore,
    pub(crate) crls: Vec<CertificateRevocationListDer<'static>>,
}

/// Reads and checks every file of `settings` at time `now`.
pub(crate) fn load(
    settings: &TlsSettings,
    provider: &CryptoProvider,
    now: UnixTime,
) -> Result<Loaded, TlsError> {
    let certified_key = certified_key(&SERVER_FILES, &settings.cert, &settings.key, provider, now)?;
    let mut roots = RootCertStore::empty();
    for path in &settings.client_ca {
        load_cas(SERVER_FILES.ca, path, &mut roots)?;
    }
    let mut crls = Vec::new();
    for path in &settings.crl {
        crls.extend(load_crls(path, now)?);
    }
    Ok(Loaded {
        certified_key: Arc::new(certified_key),
        roots,
        crls,
    })
}

/// A certificate chain (leaf valid at `now`) with its private key (mode checked, loadable by
/// `provider`, the key of the leaf).
pub(crate) fn certified_key(
    labels: &FileLabels,
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
    now: UnixTime,
) -> Result<CertifiedKey, TlsError> {
    let chain = load_chain(labels.cert, cert, now)?;
    let der = load_key(labels.key, key)?;
    let signer =
        provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| TlsError::UnsupportedKey {
                what: labels.key,
                path: display(key),
                reason: e.to_string(),
            })?;
    let certified_key = CertifiedKey::new(chain, signer);
    match certified_key.keys_match() {
        // `Unknown`: the key cannot tell its public half; rustls accepts that too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified_key)
        }
        Err(_) => Err(TlsError::KeyMismatch {
            what: labels.key,
            key: display(key),
            cert: display(cert),
        }),
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|io| TlsError::Read {
        what,
        path: display(path),
        io,
    })
}

fn pem_error(what: &'static str, path: &Path, e: &rustls::pki_types::pem::Error) -> TlsError {
    use rustls::pki_types::pem::Error as E;
    // Marker lines are quoted (bounded, lossy); nothing of a block's body is.
    let line = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
        text.trim_end().to_owned()
    };
    let reason = match e {
        E::MissingSectionEnd { end_marker } => {
            format!("the {} block has no END line", line(end_marker))
        }
        E::IllegalSectionStart { line: start } => {
            format!("malformed BEGIN line {:?}", line(start))
        }
        E::Base64Decode(_) => "a block's base64 does not decode".to_owned(),
        E::SectionTooLarge => "a block is larger than 256 MB".to_owned(),
        other => other.to_string(),
    };
    TlsError::Pem {
        what,
        path: display(path),
        reason,
    }
}

/// Every CERTIFICATE block of a PEM file, in order; at least one.
fn certificates(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: display(path),
        });
    }
    for (i, der) in certs.iter().enumerate() {
        if let Err(e) = x509_parser::certificate::X509Certificate::from_der(der) {
            return Err(TlsError::BadCertificate {
                what,
                path: display(path),
                index: i + 1,
                reason: e.to_string(),
            });
        }
    }
    Ok(certs)
}

/// A certificate chain, leaf first; the leaf must be valid at `now`.
pub(crate) fn load_chain(
    what: &'static str,
    path: &Path,
    now: UnixTime,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let chain = certificates(what, path, &bytes)?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let (_, leaf) =
        x509_parser::certificate::X509Certificate::from_der(&chain[0]).map_err(|e| {
            TlsError::BadCertificate {
                what,
                path: display(path),
                index: 1,
                reason: e.to_string(),
            }
        })?;
    let validity = leaf.validity();
    if now < validity.not_before.timestamp() {
        return Err(TlsError::NotYetValid {
            what,
            path: display(path),
            not_before: rfc3339(validity.not_before),
        });
    }
    if now > validity.not_after.timestamp() {
        return Err(TlsError::Expired {
            what,
            path: display(path),
            not_after: rfc3339(validity.not_after),
        });
    }
    if validity.not_after.timestamp() - now < EXPIRY_WARNING_SECS {
        tracing::warn!(
            file = %path.display(),
            not_after = %rfc3339(validity.not_after),
            "a TLS certificate expires within 14 days"
        );
    }
    Ok(chain)
}

pub(crate) fn rfc3339(t: x509_parser::time::ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The server's private key: the file must be a regular file that only its owner may access
/// (mode 0600 or stricter, as `keys::write_private_key` creates ours), holding one PKCS#8, SEC1
/// or PKCS#1 PEM key. The mode is read from the opened file, so the file checked is the file
/// read.
pub(crate) fn load_key(
    what: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let io = |io| TlsError::Read {
        what,
        path: display(path),
        io,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(TlsError::KeyNotAFile {
            what,
            path: display(path),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(TlsError::KeyPermissions {
                what,
                path: display(path),
                mode,
            });
        }
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoKey {
            what,
            path: display(path),
            reason: if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
                "the private key is encrypted; give it unencrypted (openssl pkey -in FILE -out FILE)"
            } else {
                "no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY PEM block in it"
            },
        }),
        Err(e) => Err(pem_error(what, path, &e)),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every certificate of a PEM file (at least one, each a parseable X.509 certificate).
pub(crate) fn load_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    certificates(what, path, &bytes)
}

/// Adds every certificate of a CA file to `roots`.
pub(crate) fn load_cas(
    what: &'static str,
    path: &Path,
    roots: &mut RootCertStore,
) -> Result<(), TlsError> {
    for (i, der) in load_certificates(what, path)?.into_iter().enumerate() {
        roots.add(der).map_err(|e| TlsError::BadCa {
            what,
            path: display(path),
            index: i + 1,
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// The CRLs in a file: PEM (one or more X509 CRL blocks) or a single DER CRL. Each must parse
/// as rustls-webpki parses it (v2, with nextUpdate, no delta CRLs). A CRL past its nextUpdate is
/// still used (rustls' default), with a warning: refresh the file and reload.
pub(crate) fn load_crls(
    path: &Path,
    now: UnixTime,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read(CRL_FILE, path)?;
    let crls = if contains(&bytes, b"-----BEGIN") {
        let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(CRL_FILE, path, &e))?;
        if crls.is_empty() {
            return Err(TlsError::BadCrl {
                path: display(path),
                reason: "no X509 CRL PEM block in it".into(),
            });
        }
        crls
    } else {
        vec![CertificateRevocationListDer::from(bytes)]
    };
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    for (i, crl) in crls.iter().enumerate() {
        let which = if crls.len() > 1 {
            format!("CRL {}: ", i + 1)
        } else {
            String::new()
        };
        webpki::OwnedCertRevocationList::from_der(crl).map_err(|e| TlsError::BadCrl {
            path: display(path),
            reason: format!("{which}not a CRL rustls can use: {e:?}"),
        })?;
        if let Ok((_, parsed)) = x509_parser::parse_x509_crl(crl) {
            if let Some(next) = parsed.next_update() {
                if next.timestamp() < now {
                    tracing::warn!(
                        file = %path.display(),
                        next_update = %rfc3339(next),
                        "a CRL is past its nextUpdate; it is still used: refresh it and reload"
                    );
                }
            }
        }
    }
    Ok(crls)
}
