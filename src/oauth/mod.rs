//! OAuth: the token endpoint (JWT-bearer grant → opaque access token), token lookup for
//! introspection and (later) the proxy, and the per-requester rate limit.
//!
//! The grant path, top-down:
//!
//! ```text
//! client certificate (if [nuts] require_client_certificate) → parse JWT (alg allow-list) → claims (kid of iss, sub = us, aud = us, iat/exp, jti, usi, vcs)
//! → signer key from iss's DID document (assertionMethod) → signature → rate limit (per iss)
//! → policy for purposeOfUse → usi if required → each credential: verify (cached) + issuer = sub,
//! subject = iss, same purpose, issued by us → one patient → mint token → (caller) one group
//! commit of jti + token hash + audit record (a replayed jti stores no token) → cache → answer
//! ```
//!
//! RFC 8705: a grant that arrives over mutual TLS gets a token bound to that client certificate
//! (its `x5t#S256` is stored with the token, introspection shows it as `cnf`); the `nuts-token`
//! authenticator accepts a bound token only over a connection with that certificate.

pub mod grant;
pub mod ratelimit;
pub mod request;

use std::sync::Arc;

use aws_lc_rs::rand::SecureRandom as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::credential::verify::{Mode, RevocationCheck, Verifier};
use crate::did::Resolver;
use crate::policy::PolicySet;
use crate::store::{Store, StoreError, TokenRecord, UsedJti};
use crate::tls::ClientCert;
use grant::{Expectations, GrantError, UserIdentity};

/// The path of the token endpoint (the same as nuts-node's).
pub const TOKEN_PATH: &str = "/n2n/auth/v1/accesstoken";
/// The grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The successful answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The opaque token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: u32,
}

/// A checked grant with its minted, not yet stored, token.
#[derive(Debug)]
pub struct Issued {
    /// The answer for the client.
    pub response: TokenResponse,
    /// The token's context (its record holds only the hash).
    pub ctx: Arc<TokenContext>,
    /// The grant's `jti`, to record with the token.
    pub jti: UsedJti,
}

/// What a live token stands for.
#[derive(Debug)]
pub struct TokenContext {
    /// The stored record.
    pub record: TokenRecord,
    /// The parsed user identity.
    pub user: Option<UserIdentity>,
    /// Patient ids learned from the token's patient search.
    pub patients: std::sync::RwLock<std::collections::HashSet<String>>,
}

impl TokenContext {
    fn new(record: TokenRecord, user: Option<UserIdentity>, patients: Vec<String>) -> Self {
        Self {
            record,
            user,
            patients: std::sync::RwLock::new(patients.into_iter().collect()),
        }
    }

    /// The allowed patient ids, read-locked (no copy per request): drop the guard before
    /// binding patients to the token on the same thread.
    pub fn allowed_patients(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, std::collections::HashSet<String>> {
        self.patients
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Hex SHA-256 of a token value: the only form in which tokens are stored.
#[must_use]
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The token service.
pub struct TokenService {
    /// This endpoint's URL: every grant's `aud`.
    pub audience: String,
    /// The DIDs this instance is custodian for.
    pub custodians: Vec<String>,
    resolver: Resolver,
    verifier: Arc<Verifier>,
    store: Store,
    revocations: Arc<dyn RevocationCheck>,
    policies: watch::Receiver<Arc<PolicySet>>,
    clock: Arc<dyn Clock>,
    /// The per-requester rate limit.
    pub limiter: ratelimit::RateLimiter,
    tokens: moka::sync::Cache<String, Arc<TokenContext>>,
    known_credentials: moka::sync::Cache<String, String>,
    require_client_certificate: bool,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("audience", &self.audience)
            .field("custodians", &self.custodians)
            .finish_non_exhaustive()
    }
}

/// Everything the token service is built from.
pub struct TokenServiceParts {
    /// This endpoint's URL.
    pub audience: String,
    /// Our DIDs.
    pub custodians: Vec<String>,
    /// DID resolver (grant signers).
    pub resolver: Resolver,
    /// Credential verifier.
    pub verifier: Arc<Verifier>,
    /// Store.
    pub store: Store,
    /// Revoked credentials.
    pub revocations: Arc<dyn RevocationCheck>,
    /// Policies.
    pub policies: watch::Receiver<Arc<PolicySet>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Rate limit.
    pub limiter: ratelimit::RateLimiter,
    /// `[nuts] require_client_certificate`: refuse a grant that came without a verified client
    /// certificate.
    pub require_client_certificate: bool,
}

impl TokenService {
    /// Builds the service.
    #[must_use]
    pub fn new(p: TokenServiceParts) -> Self {
        Self {
            audience: p.audience,
            custodians: p.custodians,
            resolver: p.resolver,
            verifier: p.verifier,
            store: p.store,
            revocations: p.revocations,
            policies: p.policies,
            clock: p.clock,
            limiter: p.limiter,
            tokens: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
            known_credentials: moka::sync::Cache::new(100_000),
            require_client_certificate: p.require_client_certificate,
        }
    }

    /// Checks a grant and mints its token. Nothing is stored yet: the caller commits the `jti`,
    /// the token and the audit record together ([`crate::store::writer::Writer::write_grant`]) and then
    /// [`TokenService::activate`]s it.
    ///
    /// `client_cert` is the verified certificate of the connection the grant came on (mutual
    /// TLS): the token is bound to it (RFC 8705).
    pub async fn issue(
        &self,
        assertion: &str,
        client_cert: Option<&ClientCert>,
    ) -> Result<Issued, GrantError> {
        if self.require_client_certificate && client_cert.is_none() {
            return Err(GrantError::ClientCertificateRequired);
        }
        let now = self.clock.now().unix_timestamp();
        let jws = crate::jose::parse(assertion, &crate::jose::GRANT_ALGS)?;
        let claims = grant::check_claims(
            &jws,
            &Expectations {
                audience: &self.audience,
                custodians: &self.custodians,
                now,
            },
        )?;
        let key = self.resolver.assertion_key(&claims.kid).await?;
        if !key.verify(&jws.alg, &jws.signing_input, &jws.signature) {
            return Err(GrantError::Client(
                "grant signature does not verify with the kid's key".into(),
            ));
        }
        self.limiter
            .check(&claims.iss)
            .map_err(GrantError::RateLimited)?;
        let policies = self.policies.borrow().clone();
        let policy = policies
            .get(&claims.purpose)
            .ok_or_else(|| {
                GrantError::UnknownPurpose(crate::policy::display_purpose(&claims.purpose))
            })?
            .clone();
        if policy.token.require_user_identity && claims.usi.is_none() {
            return Err(GrantError::Claim(
                "usi (user identity) is required for this purposeOfUse".into(),
            ));
        }
        let mut credential_ids = Vec::with_capacity(claims.vcs.len());
        let mut bsn: Option<crate::bsn::Bsn> = None;
        for (index, vc) in claims.vcs.iter().enumerate() {
            let refuse = |reason: &str| GrantError::Credential {
                index,
                reason: reason.to_owned(),
            };
            let bytes = serde_json::to_vec(vc).map_err(|_| refuse("not serialisable"))?;
            let verified = self
                .verifier
                .verify(&bytes, Mode::Authorization, &policies)
                .await
                .map_err(|e| GrantError::credential(index, &e))?;
            if verified.issuer != claims.sub {
                return Err(refuse("its issuer is not the grant's sub (custodian)"));
            }
            if verified.subject_did != claims.iss {
                return Err(refuse(
                    "credentialSubject.id is not the grant's iss (requester)",
                ));
            }
            if verified.purpose != claims.purpose {
                return Err(refuse("its purposeOfUse differs from the grant's"));
            }
            if !self.issued_by_us(&verified.id, &claims.sub).await? {
                return Err(refuse("it was not issued by this custodian"));
            }
            let this_bsn = verified
                .bsn
                .clone()
                .ok_or_else(|| refuse("it names no patient (subject)"))?;
            match &bsn {
                Some(b) if *b != this_bsn => {
                    return Err(GrantError::Claim(
                        "the credentials are for different patients".into(),
                    ))
                }
                _ => bsn = Some(this_bsn),
            }
            credential_ids.push(verified.id.clone());
        }
        let token = new_token()?;
        let record = TokenRecord {
            hash: token_hash(&token),
            requester: claims.iss.clone(),
            custodian: claims.sub.clone(),
            purpose: claims.purpose.clone(),
            credential_ids,
            bsn: bsn.ok_or_else(|| GrantError::Claim("vcs is empty".into()))?,
            user_identity: claims
                .usi
                .as_ref()
                .and_then(|u| serde_json::to_string(u).ok()),
            issued_at: now,
            expires_at: now + i64::from(policy.token.lifetime_seconds),
            cnf_x5t_s256: client_cert.map(|c| c.x5t_s256().to_owned()),
        };
        let jti = UsedJti {
            issuer: claims.iss.clone(),
            jti: claims.jti.clone(),
            expires_at: claims.exp + grant::SKEW,
        };
        Ok(Issued {
            response: TokenResponse {
                access_token: token,
                token_type: "Bearer",
                expires_in: policy.token.lifetime_seconds,
            },
            ctx: Arc::new(TokenContext::new(record, claims.usi, Vec::new())),
            jti,
        })
    }

    /// Makes a stored token usable on this instance at once (other replicas read it from the
    /// store on first use).
    pub fn activate(&self, ctx: Arc<TokenContext>) {
        self.tokens.insert(ctx.record.hash.clone(), ctx);
    }

    /// Forgets a token this instance holds (ended from the console): the next lookup reads the
    /// ended set, and the store on a miss.
    pub fn forget(&self, hash: &str) {
        self.tokens.invalidate(hash);
    }

    /// Whether the credential is in our store as issued by `custodian` (cached: credentials are
    /// never deleted).
    async fn issued_by_us(&self, id: &str, custodian: &str) -> Result<bool, GrantError> {
        if let Some(issuer) = self.known_credentials.get(id) {
            return Ok(issuer == custodian);
        }
        match self.store.credential(id).await {
            Ok(record) => {
                self.known_credentials
                    .insert(id.to_owned(), record.issuer.clone());
                Ok(record.issuer == custodian)
            }
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(GrantError::Unavailable(e.to_string())),
        }
    }

    /// The live context of a token: `None` if unknown, expired, or issued on a revoked credential.
    /// Reads the store only for tokens this instance has not seen (issued by another replica).
    pub async fn lookup(&self, token: &str) -> Result<Option<Arc<TokenContext>>, StoreError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let hash = token_hash(token);
        if self.revocations.is_token_ended(&hash) {
            self.tokens.invalidate(&hash);
            return Ok(None);
        }
        let ctx = match self.tokens.get(&hash) {
            Some(ctx) => ctx,
            None => match self.store.token(&hash).await {
                Ok(record) => {
                    let user = record
                        .user_identity
                        .as_deref()
                        .and_then(|u| serde_json::from_str(u).ok());
                    let patients = self.store.token_patients(&hash).await?;
                    let ctx = Arc::new(TokenContext::new(record, user, patients));
                    self.tokens.insert(hash, ctx.clone());
                    ctx
                }
                Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        let now = self.clock.now().unix_timestamp();
        let live = now < ctx.record.expires_at
            && !ctx
                .record
                .credential_ids
                .iter()
                .any(|id| self.revocations.is_revoked(id));
        Ok(live.then_some(ctx))
    }
}

impl TokenService {
    /// Re-reads the token's Patient ids from the store (another replica may have learned some);
    /// true if that added any.
    pub async fn refresh_patients(&self, ctx: &TokenContext) -> Result<bool, StoreError> {
        let stored = self.store.token_patients(&ctx.record.hash).await?;
        let Ok(mut p) = ctx.patients.write() else {
            return Ok(false);
        };
        let before = p.len();
        p.extend(stored);
        Ok(p.len() > before)
    }

    /// Adds Patient ids the token may access from now on (memory, then store for other replicas).
    pub async fn bind_patients(
        &self,
        ctx: &TokenContext,
        ids: &[String],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.store.add_token_patients(&ctx.record.hash, ids).await?;
        if let Ok(mut p) = ctx.patients.write() {
            p.extend(ids.iter().cloned());
        }
        Ok(())
    }
}

fn new_token() -> Result<String, GrantError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| GrantError::Unavailable("random number generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
