//! Hub account authentication: HTTP Basic with the API key as user name and the secret as
//! password. Secrets are stored only as argon2id hashes.
//!
//! Every failed attempt costs exactly one argon2 verification, whether the API key is unknown
//! (checked against a dummy hash with the same parameters) or the secret is wrong, so the answer
//! time does not tell which. A secret that verified once is remembered (as its SHA-256, compared
//! in constant time, bound to the stored hash) for a few minutes, so a busy client does not pay
//! argon2 on every request; accounts are re-read at most a second old, so disabling an account
//! takes effect within a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::HubError;
use crate::store::hub::HubAccount;
use crate::store::Store;

/// argon2id with the OWASP-recommended parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], HubError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| HubError::Internal("random"))?;
    Ok(out)
}

/// A PHC-format argon2id hash of `secret`.
pub fn hash_secret(secret: &str) -> Result<String, HubError> {
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()?).map_err(|_| HubError::Internal("salt"))?;
    argon2()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| HubError::Internal("hash"))
}

/// Whether `secret` matches the PHC-format argon2 hash `phc`. Blocking (tens of milliseconds):
/// call it on a blocking thread.
#[must_use]
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|parsed| argon2().verify_password(secret.as_bytes(), &parsed).is_ok())
}

/// A fresh API key and secret.
pub fn new_credentials() -> Result<(String, String), HubError> {
    Ok((
        format!("hk_{}", URL_SAFE_NO_PAD.encode(random_bytes::<15>()?)),
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?),
    ))
}

/// `Authorization: Basic ...` → (API key, secret).
fn basic(header: Option<&str>) -> Option<(String, String)> {
    let (scheme, value) = header?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || value.len() > 1024 {
        return None;
    }
    let decoded = STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (key, secret) = text.split_once(':')?;
    (!key.is_empty() && !secret.is_empty()).then(|| (key.to_owned(), secret.to_owned()))
}

/// Authenticates Hub requests.
pub struct Authenticator {
    store: Store,
    dummy_hash: String,
    accounts: moka::future::Cache<String, Option<Arc<HubAccount>>>,
    verified: moka::sync::Cache<String, (String, [u8; 32])>,
    hash_verifications: AtomicU64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

impl Authenticator {
    /// An authenticator over the accounts in `store`.
    pub fn new(store: Store) -> Result<Self, HubError> {
        let dummy = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        Ok(Self {
            store,
            dummy_hash: hash_secret(&dummy)?,
            accounts: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(1))
                .build(),
            verified: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            hash_verifications: AtomicU64::new(0),
        })
    }

    /// How many argon2 verifications ran (each failed attempt runs exactly one).
    #[must_use]
    pub fn hash_verifications(&self) -> u64 {
        self.hash_verifications.load(Ordering::Relaxed)
    }

    async fn argon2_verify(&self, secret: String, phc: String) -> bool {
        self.hash_verifications.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || verify_secret(&secret, &phc))
            .await
            .unwrap_or(false)
    }

    /// The account of an `Authorization` header, or [`HubError::Unauthorized`].
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Arc<HubAccount>, HubError> {
        let Some((key, secret)) = basic(header) else {
            return Err(HubError::Unauthorized);
        };
        let store = self.store.clone();
        let lookup_key = key.clone();
        let account = self
            .accounts
            .try_get_with(key.clone(), async move {
                store
                    .hub_account_by_key(&lookup_key)
                    .await
                    .map(|a| a.map(Arc::new))
            })
            .await
            .map_err(|e| HubError::Unavailable(e.to_string()))?;
        let Some(account) = account else {
            self.argon2_verify(secret, self.dummy_hash.clone()).await;
            return Err(HubError::Unauthorized);
        };
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let remembered = self
            .verified
            .get(&key)
            .is_some_and(|(phc, d)| phc == account.secret_hash && bool::from(d.ct_eq(&digest)));
        if !remembered {
            if !self
                .argon2_verify(secret, account.secret_hash.clone())
                .await
            {
                return Err(HubError::Unauthorized);
            }
            self.verified
                .insert(key, (account.secret_hash.clone(), digest));
        }
        if account.disabled {
            return Err(HubError::Unauthorized);
        }
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        let h = format!("Basic {}", STANDARD.encode("hk_abc:s3cr:et"));
        assert_eq!(basic(Some(&h)), Some(("hk_abc".into(), "s3cr:et".into())));
        assert_eq!(basic(Some("Bearer x")), None);
        assert_eq!(basic(Some("Basic !!!")), None);
        assert_eq!(
            basic(Some(&format!("Basic {}", STANDARD.encode("nocolon")))),
            None
        );
        assert_eq!(
            basic(Some(&format!("Basic {}", STANDARD.encode(":x")))),
            None
        );
        assert_eq!(basic(None), None);
    }

    #[test]
    fn hashes_verify() {
        let phc = hash_secret("geheim").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(argon2().verify_password(b"geheim", &parsed).is_ok());
        assert!(argon2().verify_password(b"geheim2", &parsed).is_err());
    }
}
