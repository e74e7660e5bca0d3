//! The embedded Hub (Hub API v3, seed 000): a geboortezorg dossier index. Care providers
//! (accounts) register pregnancy dossiers and share them with other accounts; other accounts
//! search by BSN and see only what was shared with them; `source` answers where the dossier
//! lives with a short-lived RS512 token the Hub signs ([`token`]), which the provider's
//! poortwachter checks in front of its dossier API (the proxy's second authenticator).
//!
//! Request path: [`api`] (HTTP, Basic auth, XML) → [`auth`] → [`Hub`] (rules, visibility) →
//! the store (`store::hub`, SQL). Errors are one enum, [`HubError`], answered as the documented
//! `<error>` XML in one place ([`api`]).

pub mod auth;
pub mod dossier;
pub mod token;
pub mod xml;

use std::sync::Arc;

use crate::clock::Clock;
use crate::store::hub::{HubAccount, HubShare, SEARCH_LIMIT};
use crate::store::{Store, StoreError};
use dossier::{Dossier, DossierRecord, Filter};
use token::{HubKey, SourceClaims};

/// Everything that can go wrong at the Hub boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// No or wrong credentials (the same for an unknown key and a wrong secret).
    #[error("invalid API key or secret")]
    Unauthorized,
    /// A bad request: the code names the rule.
    #[error("{message}")]
    Invalid {
        /// Machine-readable code.
        code: &'static str,
        /// What is wrong (never echoes a BSN).
        message: String,
    },
    /// The body is over the limit.
    #[error("request body too large (limit {} bytes)", xml::MAX_BODY)]
    TooLarge,
    /// The body was not received within the client time limit.
    #[error("request body not received in time")]
    ClientTimeout,
    /// The body is not XML.
    #[error("Content-Type must be application/xml or text/xml")]
    UnsupportedMediaType,
    /// No such resource (or not visible to the caller).
    #[error("no such resource")]
    NotFound,
    /// The resource exists but this account may not do this with it.
    #[error("only the registering account may manage the shares of a resource")]
    Forbidden,
    /// A share names no known account or AGB code.
    #[error("no account with that name or AGB code")]
    UnknownAccount,
    /// The method is not allowed for the path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database is unreachable.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    /// Something that should not fail did (randomness, signing).
    #[error("internal error")]
    Internal(&'static str),
}

impl HubError {
    /// The `code` of the `<error>` answer.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            HubError::Unauthorized => "unauthorized",
            HubError::Invalid { code, .. } => code,
            HubError::TooLarge => "too-large",
            HubError::ClientTimeout => "timeout",
            HubError::UnsupportedMediaType => "unsupported-media-type",
            HubError::NotFound => "not-found",
            HubError::Forbidden => "forbidden",
            HubError::UnknownAccount => "unknown-account",
            HubError::MethodNotAllowed => "method-not-allowed",
            HubError::Unavailable(_) => "unavailable",
            HubError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => HubError::NotFound,
            other => HubError::Unavailable(other.to_string()),
        }
    }
}

/// Where a dossier lives, as `source` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `v1` or `v3`.
    pub api: String,
    /// The provider's dossier URL.
    pub url: String,
    /// The source token.
    pub jwt: String,
    /// The provider account.
    pub account: String,
    /// Its display name.
    pub display_name: String,
}

/// A share with the grantee's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareView {
    /// The share.
    pub share: HubShare,
    /// Display name of the grantee account (or of the first account with that AGB).
    pub display_name: String,
}

/// Share permissions.
pub const PERMISSIONS: [&str; 2] = ["full", "read"];

/// An account name: lowercase letters, digits, `-`, `_`, `.`; 1 to 64 characters.
#[must_use]
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// An AGB code: 8 digits.
#[must_use]
pub fn valid_agb(agb: &str) -> bool {
    agb.len() == 8 && agb.bytes().all(|b| b.is_ascii_digit())
}

/// A registration waiting for the group commit.
struct Job {
    account: String,
    key: String,
    dossier: Dossier,
    reply: tokio::sync::oneshot::Sender<Result<String, HubError>>,
}

/// Group commit for registrations: whatever arrived while the previous transaction committed
/// goes into the next one (one sync for all), each caller answered when its batch is durable.
#[derive(Clone)]
pub struct Registrar {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

impl Registrar {
    /// Starts the writer task (needs a Tokio runtime).
    #[must_use]
    pub fn spawn(store: Store, clock: Arc<dyn Clock>) -> Self {
        let (jobs, mut rx) = tokio::sync::mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 256 {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let items: Vec<(String, String, Dossier)> = batch
                    .iter()
                    .map(|j| (j.account.clone(), j.key.clone(), j.dossier.clone()))
                    .collect();
                let now = clock.now().unix_timestamp();
                match store.hub_upsert_batch(&items, now).await {
                    Ok(keys) => {
                        for (job, key) in batch.into_iter().zip(keys) {
                            let _ = job.reply.send(Ok(key));
                        }
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        for job in batch {
                            let _ = job.reply.send(Err(HubError::Unavailable(reason.clone())));
                        }
                    }
                }
            }
        });
        Self { jobs }
    }

    async fn register(&self, account: &str, dossier: Dossier) -> Result<String, HubError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            account: account.to_owned(),
            key: uuid::Uuid::new_v4().simple().to_string(),
            dossier,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| HubError::Unavailable("registration writer stopped".into()))?;
        answer
            .await
            .map_err(|_| HubError::Unavailable("registration writer stopped".into()))?
    }
}

/// The Hub's rules over the store.
pub struct Hub {
    /// The store.
    pub store: Store,
    /// Group commit of registrations.
    pub registrar: Registrar,
    /// Account authentication.
    pub auth: auth::Authenticator,
    /// The signing key for source tokens.
    pub key: HubKey,
    /// `iss` of source tokens.
    pub issuer: String,
    /// Lifetime of source tokens (seconds; 3600 as the public Hub).
    pub token_lifetime: i64,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hub({})", self.issuer)
    }
}

impl Hub {
    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// `POST /v3/register`: validates the XML and registers (or updates) the dossier.
    pub async fn register(&self, account: &HubAccount, body: &[u8]) -> Result<String, HubError> {
        let props = xml::read_resource(body)?;
        let dossier = Dossier::from_properties(&props)?;
        self.registrar.register(&account.name, dossier).await
    }

    /// `GET /v3/resources?...`: the caller's own dossiers and those shared with it.
    pub async fn search(
        &self,
        account: &HubAccount,
        query: Option<&str>,
    ) -> Result<Vec<DossierRecord>, HubError> {
        let filter = Filter::parse(query)?;
        let found = self
            .store
            .hub_search(&account.name, account.agb.as_deref(), &filter)
            .await?;
        if found.len() > SEARCH_LIMIT {
            return Err(HubError::Invalid {
                code: "too-many-results",
                message: format!(
                    "more than {SEARCH_LIMIT} resources match; narrow the filter (client_bsn)"
                ),
            });
        }
        Ok(found)
    }

    /// `GET /v3/resources/{key}`: one visible dossier.
    pub async fn resource(
        &self,
        account: &HubAccount,
        key: &str,
    ) -> Result<DossierRecord, HubError> {
        self.store
            .hub_visible(key, &account.name, account.agb.as_deref())
            .await?
            .ok_or(HubError::NotFound)
    }

    async fn owned(&self, account: &HubAccount, key: &str) -> Result<DossierRecord, HubError> {
        let record = self.resource(account, key).await?;
        if record.account != account.name {
            return Err(HubError::Forbidden);
        }
        Ok(record)
    }

    /// `GET /v3/resources/{key}/shares` (the registrar only).
    pub async fn shares(
        &self,
        account: &HubAccount,
        key: &str,
    ) -> Result<Vec<ShareView>, HubError> {
        self.owned(account, key).await?;
        let mut out = Vec::new();
        for share in self.store.hub_shares(key).await? {
            let display_name = match self.store.hub_account(&share.grantee).await? {
                Some(a) => a.display_name,
                None => self
                    .store
                    .hub_accounts_by_agb(&share.grantee)
                    .await?
                    .into_iter()
                    .next()
                    .map_or_else(|| format!("AGB {}", share.grantee), |a| a.display_name),
            };
            out.push(ShareView {
                share,
                display_name,
            });
        }
        Ok(out)
    }

    /// Resolves a share target: an account name, else an AGB code some account has.
    async fn grantee(&self, account: &HubAccount, target: &str) -> Result<String, HubError> {
        if target == account.name || account.agb.as_deref() == Some(target) {
            return Err(HubError::Invalid {
                code: "invalid-share",
                message: "a resource cannot be shared with its own account".into(),
            });
        }
        if valid_account_name(target) && self.store.hub_account(target).await?.is_some() {
            return Ok(target.to_owned());
        }
        if valid_agb(target) && !self.store.hub_accounts_by_agb(target).await?.is_empty() {
            return Ok(target.to_owned());
        }
        Err(HubError::UnknownAccount)
    }

    /// `GET /v3/resources/{key}/add-share/{account}/{permission}` (the registrar only).
    pub async fn add_share(
        &self,
        account: &HubAccount,
        key: &str,
        target: &str,
        permission: &str,
    ) -> Result<(), HubError> {
        self.owned(account, key).await?;
        if !PERMISSIONS.contains(&permission) {
            return Err(HubError::Invalid {
                code: "invalid-permission",
                message: "permission must be full or read".into(),
            });
        }
        let grantee = self.grantee(account, target).await?;
        Ok(self.store.hub_put_share(key, &grantee, permission).await?)
    }

    /// `GET /v3/resources/{key}/remove-share/{account}` (the registrar only).
    pub async fn remove_share(
        &self,
        account: &HubAccount,
        key: &str,
        target: &str,
    ) -> Result<(), HubError> {
        self.owned(account, key).await?;
        self.store
            .hub_remove_share(key, target)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => HubError::Invalid {
                    code: "no-such-share",
                    message: "the resource is not shared with that account".into(),
                },
                other => other.into(),
            })
    }

    /// `GET /v3/resources/{key}/source`: where the dossier lives, with a source token for the
    /// asking account.
    pub async fn source(&self, account: &HubAccount, key: &str) -> Result<Source, HubError> {
        let record = self.resource(account, key).await?;
        let provider = self
            .store
            .hub_account(&record.account)
            .await?
            .ok_or(HubError::NotFound)?;
        let template = provider.source_url.as_deref().ok_or(HubError::Invalid {
            code: "no-source",
            message: "the registering provider has no dossier API configured".into(),
        })?;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let url = template
            .replace("{reference}", &enc(&record.dossier.reference))
            .replace("{key}", &enc(&record.key));
        let now = self.now();
        let claims = SourceClaims {
            iss: self.issuer.clone(),
            aud: provider.name.clone(),
            sub: record.dossier.client_bsn.as_str().to_owned(),
            iat: now,
            nbf: now,
            exp: now + self.token_lifetime,
            acc_name: account.name.clone(),
            acc_display_name: account.display_name.clone(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        let jwt = self
            .key
            .sign(&claims)
            .map_err(|_| HubError::Internal("signing"))?;
        Ok(Source {
            api: provider.source_api,
            url,
            jwt,
            account: provider.name,
            display_name: provider.display_name,
        })
    }
}

/// What `hub account add` made: the account and its secret (shown once).
#[derive(Debug)]
pub struct NewAccount {
    /// The stored account.
    pub account: HubAccount,
    /// The secret, in clear, never stored.
    pub secret: String,
}

/// Options of a new account.
#[derive(Debug, Clone, Default)]
pub struct AccountSpec {
    /// Name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// AGB code.
    pub agb: Option<String>,
    /// Dossier API URL template.
    pub source_url: Option<String>,
    /// Dossier API version.
    pub source_api: String,
}

/// Adds an account with fresh credentials.
pub async fn add_account(
    store: &Store,
    spec: AccountSpec,
    now: i64,
) -> Result<NewAccount, HubError> {
    let invalid = |code, message: &str| HubError::Invalid {
        code,
        message: message.into(),
    };
    if !valid_account_name(&spec.name) {
        return Err(invalid(
            "invalid-name",
            "account name must be 1-64 characters: lowercase letters, digits, - _ .",
        ));
    }
    let display_name = spec.display_name.trim();
    if display_name.is_empty()
        || display_name.chars().count() > 200
        || display_name.chars().any(char::is_control)
    {
        return Err(invalid(
            "invalid-name",
            "display name must be 1-200 printable characters",
        ));
    }
    if spec.agb.as_deref().is_some_and(|a| !valid_agb(a)) {
        return Err(invalid("invalid-agb", "AGB code must be 8 digits"));
    }
    if !["v1", "v3"].contains(&spec.source_api.as_str()) {
        return Err(invalid("invalid-api", "source API must be v1 or v3"));
    }
    if let Some(u) = &spec.source_url {
        let ok = url::Url::parse(&u.replace("{reference}", "r").replace("{key}", "k"))
            .is_ok_and(|p| matches!(p.scheme(), "https" | "http") && p.host().is_some());
        if !ok {
            return Err(invalid(
                "invalid-url",
                "source URL must be an absolute http(s) URL",
            ));
        }
    }
    let (api_key, secret) = auth::new_credentials()?;
    let account = HubAccount {
        name: spec.name,
        display_name: display_name.to_owned(),
        agb: spec.agb,
        api_key,
        secret_hash: auth::hash_secret(&secret)?,
        source_api: spec.source_api,
        source_url: spec.source_url,
        disabled: false,
        created_at: now,
    };
    store
        .hub_insert_account(&account)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => HubError::Invalid {
                code: "account-exists",
                message: format!("an account named {} exists", account.name),
            },
            other => other.into(),
        })?;
    Ok(NewAccount { account, secret })
}
