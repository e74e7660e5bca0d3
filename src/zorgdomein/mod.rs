//! ZorgDomein Integrator FE in front of the XIS: the `[zorgdomein]` settings, and the SSO launch
//! token the XIS hands its user's browser ([`sso`]). The inbound check (mutual TLS + the JWT
//! ZorgDomein signs) is the `zorgdomein` authenticator, [`crate::authn::zorgdomein`].
//!
//! ```toml
//! [zorgdomein]
//! path_prefix = "/zorgdomein"                 # ZorgDomein's FHIR base here; stripped
//! public_keys = ["zorgdomein-jwt.pem"]        # PEM SPKI public keys, RSA (RS256/PS256) or P-256 (ES256)
//! client_certificates = ["sha256:<hex>"]      # and/or "subject:<RFC 4514 DN>"
//! max_token_age_seconds = 300                 # iat window (5 s skew)
//! policy = "zorgdomein"                       # policies/zorgdomein.toml
//! # issuer = "Zorgdomein"                     # when set, the token's iss must be this
//! # sso_key = "data/keys/zorgdomein-sso-key.pem"
//! # sso_issuer = "<the public_url's host>"
//! # sso_launch_url = "https://www.zorgdomein.nl/jwt-login/"
//! # sso_lifetime_seconds = 60                 # adds exp (none by default)
//! # sso_audience = "..."                      # adds aud (none by default)
//! # [zorgdomein.sso_claims]                   # claim names (unknown for the current version)
//! # user_id = "user-id"
//! ```
//!
//! **Invariant:** a configuration that names a `[zorgdomein]` section but cannot check
//! ZorgDomein's calls (no TLS client certificates, no keys, no certificates to match) stops
//! start-up.

pub mod sso;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::lines::{ConfigError, Lines, Num};

/// `[zorgdomein]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZorgDomeinFile {
    path_prefix: Option<String>,
    #[serde(default)]
    public_keys: Vec<String>,
    #[serde(default)]
    client_certificates: Vec<String>,
    max_token_age_seconds: Num<i64>,
    policy: Option<String>,
    issuer: Option<String>,
    sso_key: Option<String>,
    sso_issuer: Option<String>,
    sso_launch_url: Option<String>,
    sso_lifetime_seconds: Num<i64>,
    sso_audience: Option<String>,
    #[serde(default)]
    sso_claims: sso::ClaimNames,
}

/// Which client certificates are ZorgDomein's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertMatch {
    /// The SHA-256 of the leaf's DER, lowercase hex.
    Sha256(String),
    /// The subject DN, RFC 4514 (as `openssl x509 -noout -subject -nameopt RFC2253` prints it).
    Subject(String),
}

impl CertMatch {
    /// Parses `sha256:<hex>` (colons allowed, any case) or `subject:<DN>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(hex) = s.strip_prefix("sha256:") {
            let hex: String = hex
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("\"{s}\": a sha256 fingerprint is 64 hex digits"));
            }
            return Ok(Self::Sha256(hex));
        }
        if let Some(dn) = s.strip_prefix("subject:") {
            if dn.trim().is_empty() || dn.chars().any(char::is_control) {
                return Err(format!("\"{s}\": the subject is an RFC 4514 DN"));
            }
            return Ok(Self::Subject(dn.to_owned()));
        }
        Err(format!(
            "\"{s}\" is neither sha256:<hex fingerprint> nor subject:<RFC 4514 DN>"
        ))
    }

    /// Whether `cert` is the one meant.
    #[must_use]
    pub fn matches(&self, cert: &crate::tls::ClientCert) -> bool {
        match self {
            Self::Sha256(hex) => cert.fingerprint_sha256() == hex,
            Self::Subject(dn) => cert.subject() == dn,
        }
    }
}

/// The validated `[zorgdomein]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZorgDomeinSettings {
    /// Where ZorgDomein's FHIR base is on the public listener (stripped before forwarding).
    pub path_prefix: String,
    /// PEM public keys ZorgDomein signs its calls with.
    pub public_keys: Vec<PathBuf>,
    /// Which client certificates are ZorgDomein's.
    pub client_certificates: Vec<CertMatch>,
    /// How old a token's `iat` may be (plus 5 s of clock skew).
    pub max_token_age_seconds: i64,
    /// The zorgdomein policy that decides the requests.
    pub policy: String,
    /// When set, the only accepted `iss`.
    pub issuer: Option<String>,
    /// The SSO launch token.
    pub sso: sso::SsoSettings,
}

/// The default SSO key file of a data dir.
#[must_use]
pub fn default_sso_key(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("zorgdomein-sso-key.pem")
}

/// What [`settings`] needs from the rest of the configuration.
pub(crate) struct Context<'a> {
    /// The file's text, for line numbers.
    pub lines: &'a Lines<'a>,
    /// The configuration file (or "defaults").
    pub origin: &'a str,
    /// The data dir (the default SSO key lives there).
    pub data_dir: &'a Path,
    /// The instance's public URL (its host is the default SSO issuer).
    pub public_url: &'a url::Url,
    /// `[tls]`, which must ask for client certificates.
    pub tls: Option<&'a crate::tls::TlsSettings>,
}

/// Validates `[zorgdomein]`.
pub(crate) fn settings(
    file: ZorgDomeinFile,
    ctx: &Context<'_>,
) -> Result<ZorgDomeinSettings, ConfigError> {
    let err = |key: &str, reason: String| ConfigError {
        origin: ctx.origin.to_owned(),
        key: format!("zorgdomein.{key}"),
        reason,
    };
    match ctx.tls.map(|t| t.client_auth) {
        Some(crate::tls::ClientAuth::Optional | crate::tls::ClientAuth::Required) => {}
        _ => {
            return Err(ConfigError {
                origin: ctx.origin.to_owned(),
                key: "zorgdomein".into(),
                reason: "ZorgDomein calls over mutual TLS: needs [tls] with client_ca and client_auth = \"optional\" or \"required\"".into(),
            })
        }
    }
    let path_prefix = file.path_prefix.unwrap_or_else(|| "/zorgdomein".into());
    if !crate::config::lines::valid_path_prefix(&path_prefix) {
        return Err(err(
            "path_prefix",
            "must be / or a path like /zorgdomein (no trailing slash)".into(),
        ));
    }
    if file.public_keys.is_empty() || file.public_keys.iter().any(String::is_empty) {
        return Err(err(
            "public_keys",
            "must name at least one PEM public key file (ZorgDomein's JWT signing key)".into(),
        ));
    }
    if file.client_certificates.is_empty() {
        return Err(err(
            "client_certificates",
            "must name ZorgDomein's client certificate (sha256:<hex> or subject:<RFC 4514 DN>)"
                .into(),
        ));
    }
    let client_certificates = file
        .client_certificates
        .iter()
        .map(|c| CertMatch::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("client_certificates", e))?;
    let policy = file.policy.unwrap_or_else(|| "zorgdomein".into());
    if !crate::policy::valid_purpose_name(&policy) {
        return Err(err(
            "policy",
            "must name a policy file (without .toml)".into(),
        ));
    }
    if file.issuer.as_deref().is_some_and(str::is_empty) {
        return Err(err("issuer", "must not be empty when given".into()));
    }
    let max_token_age_seconds = ctx.lines.ranged(
        "zorgdomein.max_token_age_seconds",
        &file.max_token_age_seconds,
        300,
        1..=3600,
        "",
    )?;
    let sso = sso::SsoSettings {
        key: file
            .sso_key
            .filter(|k| !k.is_empty())
            .map_or_else(|| default_sso_key(ctx.data_dir), PathBuf::from),
        issuer: match file.sso_issuer {
            Some(i) if i.is_empty() => {
                return Err(err("sso_issuer", "must not be empty when given".into()))
            }
            Some(i) => i,
            None => ctx
                .public_url
                .host_str()
                .unwrap_or("poortwachter")
                .to_owned(),
        },
        launch_url: {
            let raw = file
                .sso_launch_url
                .unwrap_or_else(|| sso::DEFAULT_LAUNCH_URL.into());
            let url = url::Url::parse(&raw)
                .map_err(|e| err("sso_launch_url", format!("\"{raw}\" is not a URL: {e}")))?;
            if url.scheme() != "https" || url.host().is_none() {
                return Err(err(
                    "sso_launch_url",
                    format!("\"{raw}\" must be an https URL"),
                ));
            }
            url
        },
        lifetime_seconds: match &file.sso_lifetime_seconds {
            None => None,
            some => {
                Some(
                    ctx.lines
                        .ranged("zorgdomein.sso_lifetime_seconds", some, 60, 1..=3600, "")?,
                )
            }
        },
        audience: file.sso_audience.filter(|a| !a.is_empty()),
        claims: file.sso_claims,
    };
    sso.claims.validate().map_err(|e| err("sso_claims", e))?;
    Ok(ZorgDomeinSettings {
        path_prefix,
        public_keys: file.public_keys.iter().map(PathBuf::from).collect(),
        client_certificates,
        max_token_age_seconds,
        policy,
        issuer: file.issuer,
        sso,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_matches_parse() {
        let hex = "AB:".repeat(31) + "AB";
        assert_eq!(
            CertMatch::parse(&format!("sha256:{hex}")),
            Ok(CertMatch::Sha256("ab".repeat(32)))
        );
        assert_eq!(
            CertMatch::parse("subject:CN=ZorgDomein,O=ZorgDomein B.V.,C=NL"),
            Ok(CertMatch::Subject(
                "CN=ZorgDomein,O=ZorgDomein B.V.,C=NL".into()
            ))
        );
        for bad in ["sha256:abc", "sha1:ab", "CN=x", "subject:", "subject:a\nb"] {
            assert!(CertMatch::parse(bad).is_err(), "{bad}");
        }
    }
}
