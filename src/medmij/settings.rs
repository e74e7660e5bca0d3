//! `[medmij]` and `[medmij.oidc]` as the rest of the crate sees them: validated by
//! [`crate::config`], never read from the file here.

use std::path::PathBuf;
use std::time::Duration;

/// Where a MedMij list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSource {
    /// A file (relative to the working directory).
    File(PathBuf),
    /// An `https` URL (the MedMij stelselnode), or `http` to a loopback address (tests).
    Url(url::Url),
}

impl std::fmt::Display for ListSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Url(u) => write!(f, "{u}"),
        }
    }
}

/// How the person logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// An OpenID Connect provider (`[medmij.oidc]`).
    Oidc(OidcSettings),
    /// `dangerous_dev_login = true`: a form that takes a test BSN. For demos only.
    DangerousDev,
}

/// `[medmij.oidc]`: the OpenID provider the person logs in at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer (its discovery document is `<issuer>/.well-known/openid-configuration`).
    pub issuer: url::Url,
    /// Our client id at the provider.
    pub client_id: String,
    /// The file holding our client secret (read at start and on SIGHUP).
    pub client_secret_file: PathBuf,
    /// The ID token claim that holds the BSN.
    pub bsn_claim: String,
    /// The scopes asked for (always including `openid`).
    pub scopes: Vec<String>,
    /// Allows an `http` issuer on a loopback address (tests, local development).
    pub dangerous_allow_http_loopback: bool,
}

/// `[medmij]`: poortwachter as the DVA of MedMij "Delen".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedmijSettings {
    /// Our aanbiedernaam without `@medmij` (the part of a scope before `~`).
    pub aanbieder: String,
    /// The aanbieder's name as the person sees it.
    pub aanbieder_display_name: String,
    /// The gegevensdienst ids accepted for Delen; each has a policy `medmij-<id>`.
    pub gegevensdiensten: Vec<String>,
    /// The OAuth client list.
    pub oauth_client_list: ListSource,
    /// The whitelist.
    pub whitelist: ListSource,
    /// The gegevensdienst name list.
    pub gegevensdienst_name_list: ListSource,
    /// The zorgaanbieder list (optional: only read to check our own entry).
    pub zorgaanbieder_list: Option<ListSource>,
    /// How often the lists are re-read.
    pub lists_refresh: Duration,
    /// Access token lifetime.
    pub token_lifetime: Duration,
    /// The token endpoint requires a client certificate whose host name is the `client_id`.
    pub require_client_certificate: bool,
    /// How the person logs in.
    pub login: Login,
    /// The gegevensdiensten this provider is receptive for (by configuration).
    pub receptive: Vec<String>,
    /// The source system's receptiveness check, if any (POST `{bsn, gegevensdienst}` →
    /// `{receptive: bool}`).
    pub receptiveness_url: Option<url::Url>,
    /// Time limit of that check.
    pub receptiveness_timeout: Duration,
}

impl MedmijSettings {
    /// The policy name of gegevensdienst `id`.
    #[must_use]
    pub fn policy_of(id: &str) -> String {
        format!("medmij-{id}")
    }

    /// Whether the person logs in with the development form.
    #[must_use]
    pub fn dev_login(&self) -> bool {
        self.login == Login::DangerousDev
    }
}

/// A gegevensdienst id as configured: 1 to 16 ASCII letters or digits.
#[must_use]
pub fn valid_gegevensdienst_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// An aanbiedernaam without `@medmij`: lower-case letters (the ZAL's `([a-z])+@medmij`).
#[must_use]
pub fn valid_aanbieder(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_lowercase())
}
