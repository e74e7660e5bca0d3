//! The local identity in the data dir: the signing key (`keys/signing-key.pem`, mode 0600), the
//! DID (`identity.json`) and its DID document (`did.json`, the file to publish for `did:web`).
//!
//! `init` is idempotent: an existing identity is kept unless `force` is given, and then the old
//! key is kept beside the new one (renamed), never deleted.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::did::{self, DidDocument};
use crate::keys::{self, KeyError, KeyType, PublicKey, SigningKey};

/// How the DID is formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum DidMethod {
    /// `did:key`, derived from the key.
    Key,
    /// `did:web` for a domain (with optional `:port` and `/path`).
    Web {
        /// e.g. `zorg.example.nl` or `zorg.example.nl:8443/poortwachter`.
        domain: String,
    },
}

/// Errors of identity handling.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// File system trouble.
    #[error("{path}: {reason}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Key trouble.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The data dir has no identity yet.
    #[error("no identity in {0}: run `poortwachter init` first")]
    Missing(String),
    /// `init` asked for something else than what exists.
    #[error("{dir} already holds an identity ({did}, {key_type} key); use --force to replace it")]
    Exists {
        /// The data dir.
        dir: String,
        /// Existing DID.
        did: String,
        /// Existing key type.
        key_type: KeyType,
    },
    /// A bad `--domain`.
    #[error("invalid domain for did:web: {0}")]
    BadDomain(String),
}

/// `identity.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct IdentityFile {
    did: String,
    verification_method: String,
    key_type: KeyType,
    #[serde(flatten)]
    method: DidMethod,
}

/// A loaded identity.
#[derive(Debug)]
pub struct Identity {
    /// The DID.
    pub did: String,
    /// The verification method id of the key (`<did>#…`).
    pub verification_method: String,
    /// How the DID was made.
    pub method: DidMethod,
    /// The private key.
    pub key: SigningKey,
    /// The DID document.
    pub document: DidDocument,
}

/// Result of `init`.
#[derive(Debug)]
pub enum InitOutcome {
    /// A new identity was made.
    Created(Identity),
    /// The existing identity was kept.
    Existing(Identity),
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("signing-key.pem")
}

fn io_err(path: &Path, e: &std::io::Error) -> IdentityError {
    IdentityError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// RFC 7638 JWK thumbprint (base64url SHA-256), used as the `did:web` key fragment.
#[must_use]
pub fn jwk_thumbprint(key: &PublicKey) -> String {
    let jwk = key.to_jwk();
    let s = |k: &str| {
        jwk.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let canonical = match key {
        PublicKey::Ed25519(_) => {
            format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
                s("crv"),
                s("kty"),
                s("x")
            )
        }
        PublicKey::Rsa { .. } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        _ => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            s("crv"),
            s("kty"),
            s("x"),
            s("y")
        ),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Builds the `did:web` DID for `domain` (`host[:port][/path/segments]`).
pub fn did_web_for(domain: &str) -> Result<String, IdentityError> {
    let bad = || IdentityError::BadDomain(domain.to_owned());
    let (authority, path) = domain.split_once('/').unwrap_or((domain, ""));
    let did = std::iter::once(authority.to_ascii_lowercase().replace(':', "%3A"))
        .chain(path.split('/').filter(|s| !s.is_empty()).map(str::to_owned))
        .collect::<Vec<_>>()
        .join(":");
    let did = format!("did:web:{did}");
    did::web::location(&did).map_err(|_| bad())?;
    Ok(did)
}

/// The DID and the key's fragment for a method: `did:key:z…#z…`, or `did:web:…#<thumbprint>`.
fn did_and_fragment(
    method: &DidMethod,
    public: &PublicKey,
) -> Result<(String, String), IdentityError> {
    Ok(match method {
        DidMethod::Key => {
            let did = did::key::did_for(public);
            let fragment = did.trim_start_matches("did:key:").to_owned();
            (did, fragment)
        }
        DidMethod::Web { domain } => (did_web_for(domain)?, jwk_thumbprint(public)),
    })
}

impl Identity {
    /// Loads the identity of `data_dir`.
    pub fn load(data_dir: &Path) -> Result<Self, IdentityError> {
        let id_path = data_dir.join("identity.json");
        if !id_path.exists() {
            return Err(IdentityError::Missing(data_dir.display().to_string()));
        }
        let text = std::fs::read_to_string(&id_path).map_err(|e| io_err(&id_path, &e))?;
        let file: IdentityFile = serde_json::from_str(&text).map_err(|e| IdentityError::Io {
            path: id_path.display().to_string(),
            reason: e.to_string(),
        })?;
        let key = SigningKey::load(&key_path(data_dir))?;
        Self::assemble(file, key)
    }

    fn assemble(file: IdentityFile, key: SigningKey) -> Result<Self, IdentityError> {
        let public = key.public_key();
        let (did, fragment) = did_and_fragment(&file.method, &public)?;
        if did != file.did || file.verification_method != format!("{did}#{fragment}") {
            return Err(IdentityError::Io {
                path: "identity.json".into(),
                reason: "does not match the signing key in keys/signing-key.pem".into(),
            });
        }
        let document = DidDocument::single_key(&did, &fragment, &public);
        Ok(Identity {
            did,
            verification_method: file.verification_method,
            method: file.method,
            key,
            document,
        })
    }

    /// Creates the identity if there is none (or replaces it with `force`).
    pub fn init(
        data_dir: &Path,
        key_type: KeyType,
        method: DidMethod,
        force: bool,
    ) -> Result<InitOutcome, IdentityError> {
        if let DidMethod::Web { domain } = &method {
            did_web_for(domain)?;
        }
        if data_dir.join("identity.json").exists() && !force {
            let existing = Self::load(data_dir)?;
            if existing.key.key_type() != key_type || existing.method != method {
                return Err(IdentityError::Exists {
                    dir: data_dir.display().to_string(),
                    did: existing.did,
                    key_type: existing.key.key_type(),
                });
            }
            return Ok(InitOutcome::Existing(existing));
        }
        create_private_dir(data_dir)?;
        let keys_dir = data_dir.join("keys");
        create_private_dir(&keys_dir)?;
        let path = key_path(data_dir);
        if path.exists() {
            let backup = keys_dir.join(format!(
                "signing-key.replaced-{}.pem",
                time::OffsetDateTime::now_utc().unix_timestamp()
            ));
            std::fs::rename(&path, &backup).map_err(|e| io_err(&path, &e))?;
        }
        let (key, der) = SigningKey::generate(key_type)?;
        keys::write_private_key(&path, &der)?;
        let public = key.public_key();
        let (did, fragment) = did_and_fragment(&method, &public)?;
        let file = IdentityFile {
            did: did.clone(),
            verification_method: format!("{did}#{fragment}"),
            key_type,
            method,
        };
        write_file(&data_dir.join("identity.json"), &pretty(&file))?;
        let identity = Self::assemble(file, key)?;
        write_file(&data_dir.join("did.json"), &pretty(&identity.document))?;
        Ok(InitOutcome::Created(identity))
    }
}

fn pretty<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

fn write_file(path: &Path, text: &str) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| io_err(&tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, &e))
}

/// Creates a directory (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), IdentityError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(dir, &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_web_names() {
        assert_eq!(
            did_web_for("zorg.example.nl").unwrap(),
            "did:web:zorg.example.nl"
        );
        assert_eq!(
            did_web_for("zorg.example.nl:8443/org/a").unwrap(),
            "did:web:zorg.example.nl%3A8443:org:a"
        );
        assert!(did_web_for("bad host").is_err());
        assert!(did_web_for("").is_err());
    }

    #[test]
    fn init_is_idempotent_and_force_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("data");
        let InitOutcome::Created(first) =
            Identity::init(&d, KeyType::P256, DidMethod::Key, false).unwrap()
        else {
            panic!("expected a new identity")
        };
        assert!(first.did.starts_with("did:key:zDn"));
        let InitOutcome::Existing(again) =
            Identity::init(&d, KeyType::P256, DidMethod::Key, false).unwrap()
        else {
            panic!("expected the existing identity")
        };
        assert_eq!(again.did, first.did);
        let err = Identity::init(&d, KeyType::Ed25519, DidMethod::Key, false).unwrap_err();
        assert!(matches!(err, IdentityError::Exists { .. }), "{err}");
        let InitOutcome::Created(replaced) =
            Identity::init(&d, KeyType::Ed25519, DidMethod::Key, true).unwrap()
        else {
            panic!("expected a new identity")
        };
        assert!(replaced.did.starts_with("did:key:z6Mk"));
        let backups = std::fs::read_dir(d.join("keys")).unwrap().count();
        assert_eq!(backups, 2, "old key kept beside the new one");
    }
}
