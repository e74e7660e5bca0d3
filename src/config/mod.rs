//! Configuration: `config.toml`, `POORTWACHTER_*` environment variables and command-line flags
//! (flag beats env beats file beats default) become one validated [`Config`]. Unknown keys and
//! bad values stop start-up with the file (or variable, or flag), the key and the reason.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::did::web::WebSettings;
use crate::did::ResolverSettings;

/// The keys that can come from flags and environment variables as well as the file.
pub const OVERRIDABLE: [&str; 12] = [
    "data_dir",
    "policies_dir",
    "did_dir",
    "database_url",
    "public_addr",
    "internal_addr",
    "public_url",
    "upstream",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "tls_client_auth",
];

pub(crate) mod lines;

pub use lines::{valid_path_prefix, ConfigError};
pub(crate) use lines::{Lines, Num};

/// `config.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<String>,
    policies_dir: Option<String>,
    did_dir: Option<String>,
    database_url: Option<String>,
    public_addr: Option<String>,
    internal_addr: Option<String>,
    public_url: Option<String>,
    upstream: Option<String>,
    upstream_ca: Option<Vec<String>>,
    upstream_client_cert: Option<String>,
    upstream_client_key: Option<String>,
    revocation_poll_ms: Num<u64>,
    max_body_bytes: Num<usize>,
    log_format: Option<LogFormat>,
    dangerous_allow_public_internal: Option<bool>,
    rate_limit_per_second: Num<u32>,
    rate_limit_burst: Num<u32>,
    upstream_timeout_ms: Num<u64>,
    client_timeout_ms: Num<u64>,
    max_upstream_body_bytes: Num<usize>,
    max_request_head_bytes: Num<usize>,
    max_request_headers: Num<usize>,
    http_workers: Num<usize>,
    sqlite_wal_max_mib: Num<u32>,
    #[serde(default)]
    did_web: DidWebFile,
    hub_source: Option<HubSourceFile>,
    tls: Option<crate::tls::TlsSettings>,
    internal_tls: Option<bool>,
    zorgdomein: Option<crate::zorgdomein::ZorgDomeinFile>,
    #[serde(default)]
    nuts: NutsFile,
    #[serde(default)]
    console: ConsoleFile,
    medmij: Option<MedmijFile>,
    egress: Option<crate::egress::settings::EgressFile>,
}

/// `[medmij]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MedmijFile {
    aanbieder: String,
    aanbieder_display_name: String,
    gegevensdiensten: Vec<String>,
    oauth_client_list: String,
    whitelist: String,
    gegevensdienst_name_list: String,
    zorgaanbieder_list: Option<String>,
    lists_refresh_seconds: Num<u64>,
    token_lifetime_seconds: Num<u64>,
    require_client_certificate: Option<bool>,
    dangerous_dev_login: Option<bool>,
    receptive: Option<Vec<String>>,
    receptiveness_url: Option<String>,
    receptiveness_timeout_ms: Num<u64>,
    oidc: Option<MedmijOidcFile>,
}

/// `[medmij.oidc]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MedmijOidcFile {
    issuer: String,
    client_id: String,
    client_secret_file: String,
    bsn_claim: Option<String>,
    scopes: Option<Vec<String>>,
    dangerous_allow_http_loopback: Option<bool>,
}

/// `[nuts]`: the token endpoint's policy for Nuts grants.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NutsFile {
    require_client_certificate: Option<bool>,
}

/// `[nuts]`: how the token endpoint treats Nuts grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NutsSettings {
    /// Refuse a grant that does not come over mutual TLS (401 `invalid_client`, "a client
    /// certificate is required"). Needs `[tls] client_auth = "optional"` or `"required"`.
    pub require_client_certificate: bool,
}

/// `[console]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleFile {
    enabled: Option<bool>,
    require_login: Option<bool>,
    session_idle_minutes: Num<u64>,
    session_max_hours: Num<u64>,
    client_certs: Option<Vec<String>>,
    chart_days: Num<u32>,
}

/// `[console]`: the admin console at `/ui/` on the internal listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Whether `/ui/` is served (default true).
    pub enabled: bool,
    /// Whether a login (password or client certificate) is required: always when the internal
    /// listener is not on a loopback address.
    pub require_login: bool,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// A session ends this long after its login, used or not.
    pub session_max: Duration,
    /// Client certificates that log in by themselves (internal listener with mutual TLS): SHA-256
    /// fingerprints (lowercase hex, colons removed) or subjects (RFC 4514, as the audit log
    /// names them).
    pub client_certs: Vec<String>,
    /// Days of history in the health page's chart.
    pub chart_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSourceFile {
    path_prefix: Option<String>,
    jwks: String,
    issuer: String,
    audience: String,
    policy: String,
    leeway_seconds: Num<i64>,
    refresh_seconds: Num<u64>,
}

/// Where the Hub's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS file.
    File(PathBuf),
    /// A JWKS URL (https, or http to a loopback address).
    Url(url::Url),
}

/// `[hub_source]`: accept Hub API v3 source tokens in front of a dossier API.
#[derive(Debug, Clone)]
pub struct HubSourceSettings {
    /// Where on the public listener the dossier API is: `/` (the default) gives the whole
    /// listener to Hub source tokens; another prefix is stripped before forwarding and leaves
    /// `/` to our access tokens.
    pub path_prefix: String,
    /// The Hub's JWKS.
    pub jwks: JwksSource,
    /// The Hub's `iss`.
    pub issuer: String,
    /// This provider's Hub account name (`aud`).
    pub audience: String,
    /// The hub-source policy that decides the requests.
    pub policy: String,
    /// Clock skew allowed on `nbf`/`exp`.
    pub leeway_seconds: i64,
    /// How often the JWKS is re-read.
    pub refresh: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DidWebFile {
    cache_ttl_seconds: Option<u64>,
    timeout_ms: Num<u64>,
    max_document_bytes: Num<usize>,
    dangerous_allow_http_loopback: Option<bool>,
    extra_ca: Option<Vec<String>>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (default).
    Json,
    /// Human-readable text.
    Text,
}

/// Where a configuration came from, so that it can be read again the same way (SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    path: Option<PathBuf>,
    explicit: bool,
    overrides: HashMap<&'static str, Override>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from.
    pub source: ConfigSource,
    /// Where the key, identity, SQLite database live.
    pub data_dir: PathBuf,
    /// One TOML file per purposeOfUse.
    pub policies_dir: PathBuf,
    /// `sqlite:` or `postgres://` URL.
    pub database_url: String,
    /// Public listener.
    pub public_addr: SocketAddr,
    /// Internal (admin) listener.
    pub internal_addr: SocketAddr,
    /// The public URL of this instance (the token endpoint's audience is derived from it).
    pub public_url: url::Url,
    /// The source system behind the proxy.
    pub upstream: Option<url::Url>,
    /// TLS towards an https source system: `upstream_ca` (else the system roots),
    /// `upstream_client_cert` and `upstream_client_key` (mutual TLS).
    pub upstream_tls: crate::tls::OutboundTls,
    /// How often the revocation set is re-read from the database.
    pub revocation_poll: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// DID resolution.
    pub resolver: ResolverSettings,
    /// Token requests per second per requester DID (sustained).
    pub rate_limit_per_second: u32,
    /// Token requests per requester DID at once.
    pub rate_limit_burst: u32,
    /// Time limit for one request to the source system (slower: 504).
    pub upstream_timeout: Duration,
    /// Time a client has to send request headers, and its body (slower: connection closed / 408).
    pub client_timeout: Duration,
    /// Largest answer accepted from the source system (larger: 502).
    pub max_upstream_body_bytes: usize,
    /// Largest request head (request line and headers; HTTP/2: header list) on every listener.
    pub max_request_head_bytes: usize,
    /// Most header lines in one request on every listener.
    pub max_request_headers: usize,
    /// Threads serving HTTP connections (each a single-threaded runtime).
    pub http_workers: usize,
    /// WAL size (MiB) past which a SQLite database's WAL is started over (see
    /// [`crate::store::sqlite`]): larger means rarer writer stalls and more disk.
    pub sqlite_wal_max_mib: u32,
    /// Hub source tokens as a second authenticator, if configured.
    pub hub_source: Option<HubSourceSettings>,
    /// TLS for the public listener (and `hub serve`'s), if configured.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Whether the internal listener speaks TLS too (with the same `[tls]`).
    pub internal_tls: bool,
    /// MedMij "Delen" (`[medmij]`), if configured.
    pub medmij: Option<crate::medmij::settings::MedmijSettings>,
    /// ZorgDomein Integrator FE in front of the XIS, if configured.
    pub zorgdomein: Option<crate::zorgdomein::ZorgDomeinSettings>,
    /// `[nuts]`: the token endpoint's policy.
    pub nuts: NutsSettings,
    /// The admin console.
    pub console: ConsoleSettings,
    /// `[egress]`: the requesting side (`poortwachter egress`).
    pub egress: crate::egress::settings::EgressSettings,
}

impl Config {
    /// Reads the configuration again from where it came from (file, environment, flags).
    pub fn reload(&self) -> Result<Self, ConfigError> {
        Self::load(
            self.source.path.as_deref(),
            self.source.explicit,
            &self.source.overrides,
        )
    }

    /// The keys whose new value only a restart applies, if they differ between `self` and
    /// `other`.
    #[must_use]
    pub fn restart_only_changes(&self, other: &Config) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |key: &'static str, same: bool| {
            if !same {
                out.push(key);
            }
        };
        check("data_dir", self.data_dir == other.data_dir);
        check("policies_dir", self.policies_dir == other.policies_dir);
        check("database_url", self.database_url == other.database_url);
        check("public_addr", self.public_addr == other.public_addr);
        check("internal_addr", self.internal_addr == other.internal_addr);
        check("public_url", self.public_url == other.public_url);
        check(
            "revocation_poll_ms",
            self.revocation_poll == other.revocation_poll,
        );
        check("log_format", self.log_format == other.log_format);
        check("http_workers", self.http_workers == other.http_workers);
        check(
            "max_request_head_bytes",
            self.max_request_head_bytes == other.max_request_head_bytes,
        );
        check(
            "max_request_headers",
            self.max_request_headers == other.max_request_headers,
        );
        check(
            "sqlite_wal_max_mib",
            self.sqlite_wal_max_mib == other.sqlite_wal_max_mib,
        );
        check(
            "did_dir / [did_web]",
            format!("{:?}", self.resolver) == format!("{:?}", other.resolver),
        );
        check(
            "[hub_source]",
            format!("{:?}", self.hub_source) == format!("{:?}", other.hub_source),
        );
        check(
            "[tls] (present or not)",
            self.tls.is_some() == other.tls.is_some(),
        );
        check("internal_tls", self.internal_tls == other.internal_tls);
        check("[medmij]", self.medmij == other.medmij);
        check("[zorgdomein]", self.zorgdomein == other.zorgdomein);
        check("[nuts]", self.nuts == other.nuts);
        check("[console]", self.console == other.console);
        out
    }

    /// Where this configuration was read from, for humans.
    #[must_use]
    pub fn source_description(&self) -> String {
        match &self.source.path {
            Some(p) if self.source.explicit || p.exists() => format!("{}", p.display()),
            _ => "defaults (no config.toml)".into(),
        }
    }

    /// The token endpoint's URL: every grant's `aud`.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}{}",
            self.public_url.as_str().trim_end_matches('/'),
            crate::oauth::TOKEN_PATH
        )
    }
}

/// A value given on the command line or in the environment, with where it came from
/// (`--data-dir` or `POORTWACHTER_DATA_DIR`).
#[derive(Debug, Clone)]
pub struct Override {
    /// The value.
    pub value: String,
    /// Where it came from.
    pub origin: String,
}

impl Config {
    /// Reads `config_path` (if given or if the default `config.toml` exists) and applies
    /// `overrides` (keys of [`OVERRIDABLE`]).
    pub fn load(
        config_path: Option<&Path>,
        explicit: bool,
        overrides: &HashMap<&'static str, Override>,
    ) -> Result<Self, ConfigError> {
        let (file, origin, text) = match config_path {
            Some(path) if explicit || path.exists() => {
                let (file, text) = read_file(path)?;
                (file, path.display().to_string(), text)
            }
            _ => (FileConfig::default(), "defaults".to_owned(), String::new()),
        };
        let lines = Lines {
            origin: &origin,
            text: &text,
        };
        let pick = |key: &'static str, from_file: &Option<String>| -> Option<(String, String)> {
            if let Some(o) = overrides.get(key) {
                return Some((o.value.clone(), o.origin.clone()));
            }
            from_file.clone().map(|v| (v, origin.clone()))
        };
        let err = |origin: &str, key: &str, reason: String| ConfigError {
            origin: origin.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let path_of = |key: &'static str,
                       f: &Option<String>,
                       default: &str|
         -> Result<PathBuf, ConfigError> {
            let (v, o) = pick(key, f).unwrap_or_else(|| (default.to_owned(), "defaults".into()));
            if v.is_empty() {
                return Err(err(&o, key, "must not be empty".into()));
            }
            Ok(PathBuf::from(v))
        };
        let data_dir = path_of("data_dir", &file.data_dir, "./data")?;
        let policies_dir = path_of("policies_dir", &file.policies_dir, "./policies")?;
        let did_dir = pick("did_dir", &file.did_dir)
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, _)| PathBuf::from(v));

        let addr = |key: &'static str,
                    f: &Option<String>,
                    default: &str|
         -> Result<SocketAddr, ConfigError> {
            let (v, o) = pick(key, f).unwrap_or_else(|| (default.to_owned(), "defaults".into()));
            v.parse().map_err(|_| {
                err(
                    &o,
                    key,
                    format!("\"{v}\" is not an address like 127.0.0.1:8081"),
                )
            })
        };
        let public_addr = addr("public_addr", &file.public_addr, "0.0.0.0:8080")?;
        let internal_addr = addr("internal_addr", &file.internal_addr, "127.0.0.1:8081")?;
        if !internal_addr.ip().is_loopback() && file.dangerous_allow_public_internal != Some(true) {
            let o = overrides
                .get("internal_addr")
                .map_or(origin.clone(), |o| o.origin.clone());
            return Err(err(
                &o,
                "internal_addr",
                format!("{internal_addr} is not a loopback address; the admin API must not be public (set dangerous_allow_public_internal = true to override)"),
            ));
        }

        let http_url = |key: &'static str, v: &str, o: &str| -> Result<url::Url, ConfigError> {
            let u = url::Url::parse(v)
                .map_err(|e| err(o, key, format!("\"{v}\" is not a URL: {e}")))?;
            if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
                return Err(err(
                    o,
                    key,
                    format!("\"{v}\" must be an http(s) URL with a host"),
                ));
            }
            Ok(u)
        };
        let tls = tls_settings(file.tls.clone(), overrides)?;
        let internal_tls = file.internal_tls.unwrap_or(false);
        if internal_tls && tls.is_none() {
            return Err(err(
                &origin,
                "internal_tls",
                "needs a [tls] section (or --tls-cert and --tls-key)".into(),
            ));
        }
        if !internal_addr.ip().is_loopback() && !internal_tls {
            let o = overrides
                .get("internal_addr")
                .map_or(origin.clone(), |o| o.origin.clone());
            return Err(err(
                &o,
                "internal_addr",
                format!("{internal_addr} is not a loopback address: the internal listener must then speak TLS (internal_tls = true with [tls])"),
            ));
        }
        let nuts = NutsSettings {
            require_client_certificate: file.nuts.require_client_certificate.unwrap_or(false),
        };
        let asks_for_certificates = tls
            .as_ref()
            .is_some_and(|t| t.client_auth != crate::tls::ClientAuth::None);
        if nuts.require_client_certificate && !asks_for_certificates {
            return Err(err(
                &origin,
                "nuts.require_client_certificate",
                "needs [tls] with client_auth = \"optional\" or \"required\" (and client_ca): without them no grant can come with a client certificate".into(),
            ));
        }
        let (pu, po) = pick("public_url", &file.public_url)
            .unwrap_or_else(|| ("http://localhost:8080".into(), "defaults".into()));
        let public_url = http_url("public_url", &pu, &po)?;
        let upstream = match pick("upstream", &file.upstream) {
            Some((v, o)) if !v.is_empty() => Some(http_url("upstream", &v, &o)?),
            _ => None,
        };
        let upstream_tls = upstream_tls(&file, &origin, upstream.as_ref())?;
        let database_url = match pick("database_url", &file.database_url) {
            Some((v, o)) => {
                if !(v.starts_with("sqlite:")
                    || v.starts_with("postgres://")
                    || v.starts_with("postgresql://"))
                {
                    return Err(err(
                        &o,
                        "database_url",
                        "must start with sqlite: or postgres://".into(),
                    ));
                }
                v
            }
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("poortwachter.db").display()
            ),
        };
        let poll = lines.ranged(
            "revocation_poll_ms",
            &file.revocation_poll_ms,
            250,
            10..=1000,
            " (revocations must apply within 1 s)",
        )?;
        let sqlite_wal_max_mib = lines.ranged(
            "sqlite_wal_max_mib",
            &file.sqlite_wal_max_mib,
            crate::store::sqlite::DEFAULT_WAL_MAX_MIB,
            16..=65_536,
            "",
        )?;
        let max_body_bytes = lines.ranged(
            "max_body_bytes",
            &file.max_body_bytes,
            1024 * 1024,
            1024..=64 * 1024 * 1024,
            "",
        )?;
        let rate_limit_per_second = lines.ranged(
            "rate_limit_per_second",
            &file.rate_limit_per_second,
            20,
            1..=1_000_000,
            "",
        )?;
        let rate_limit_burst = lines.ranged(
            "rate_limit_burst",
            &file.rate_limit_burst,
            40,
            1..=1_000_000,
            "",
        )?;
        let client_timeout_ms = lines.ranged(
            "client_timeout_ms",
            &file.client_timeout_ms,
            30_000,
            100..=600_000,
            "",
        )?;
        let upstream_timeout_ms = lines.ranged(
            "upstream_timeout_ms",
            &file.upstream_timeout_ms,
            30_000,
            100..=600_000,
            "",
        )?;
        let max_upstream_body_bytes = lines.ranged(
            "max_upstream_body_bytes",
            &file.max_upstream_body_bytes,
            16 * 1024 * 1024,
            1024..=512 * 1024 * 1024,
            "",
        )?;
        let max_request_head_bytes = lines.ranged(
            "max_request_head_bytes",
            &file.max_request_head_bytes,
            32 * 1024,
            8192..=1024 * 1024,
            "",
        )?;
        let max_request_headers = lines.ranged(
            "max_request_headers",
            &file.max_request_headers,
            100,
            10..=1000,
            "",
        )?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let http_workers = lines.ranged("http_workers", &file.http_workers, cores, 1..=256, "")?;
        let w = &file.did_web;
        let resolver = ResolverSettings {
            did_dir,
            cache_ttl: Duration::from_secs(w.cache_ttl_seconds.unwrap_or(300)),
            web: WebSettings {
                timeout: Duration::from_millis(lines.ranged(
                    "did_web.timeout_ms",
                    &w.timeout_ms,
                    5000,
                    100..=60_000,
                    "",
                )?),
                max_bytes: lines.ranged(
                    "did_web.max_document_bytes",
                    &w.max_document_bytes,
                    64 * 1024,
                    1024..=1024 * 1024,
                    "",
                )?,
                dangerous_allow_http_loopback: w.dangerous_allow_http_loopback.unwrap_or(false),
                extra_ca: paths(&origin, "did_web.extra_ca", w.extra_ca.as_deref())?,
            },
        };
        let console = console_settings(
            &file.console,
            &lines,
            &origin,
            internal_addr,
            tls.as_ref(),
            internal_tls,
        )?;
        let hub_source = match file.hub_source {
            None => None,
            Some(h) => {
                let key = |k: &str| format!("hub_source.{k}");
                let jwks = if h.jwks.starts_with("https://") || h.jwks.starts_with("http://") {
                    let u = url::Url::parse(&h.jwks)
                        .map_err(|e| err(&origin, &key("jwks"), format!("not a URL: {e}")))?;
                    let loopback =
                        matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                    if u.scheme() == "http" && !loopback {
                        return Err(err(
                            &origin,
                            &key("jwks"),
                            "must be https (http only to a loopback address)".into(),
                        ));
                    }
                    JwksSource::Url(u)
                } else if h.jwks.is_empty() {
                    return Err(err(&origin, &key("jwks"), "must not be empty".into()));
                } else {
                    JwksSource::File(PathBuf::from(&h.jwks))
                };
                if h.issuer.is_empty() {
                    return Err(err(&origin, &key("issuer"), "must not be empty".into()));
                }
                if !crate::hub::valid_account_name(&h.audience) {
                    return Err(err(
                        &origin,
                        &key("audience"),
                        "must be this provider's Hub account name".into(),
                    ));
                }
                if !crate::policy::valid_purpose_name(&h.policy) {
                    return Err(err(
                        &origin,
                        &key("policy"),
                        "must name a policy file (without .toml)".into(),
                    ));
                }
                let path_prefix = h.path_prefix.unwrap_or_else(|| "/".into());
                if !valid_path_prefix(&path_prefix) {
                    return Err(err(
                        &origin,
                        &key("path_prefix"),
                        "must be / or a path like /dossier-api (no trailing slash)".into(),
                    ));
                }
                Some(HubSourceSettings {
                    path_prefix,
                    jwks,
                    issuer: h.issuer,
                    audience: h.audience,
                    policy: h.policy,
                    leeway_seconds: lines.ranged(
                        "hub_source.leeway_seconds",
                        &h.leeway_seconds,
                        5,
                        0..=300,
                        "",
                    )?,
                    refresh: Duration::from_secs(lines.ranged(
                        "hub_source.refresh_seconds",
                        &h.refresh_seconds,
                        300,
                        1..=86_400,
                        "",
                    )?),
                })
            }
        };
        let medmij = match file.medmij {
            None => None,
            Some(m) => Some(medmij_settings(m, &lines, &origin)?),
        };
        let zorgdomein = match file.zorgdomein {
            None => None,
            Some(z) => Some(crate::zorgdomein::settings(
                z,
                &crate::zorgdomein::Context {
                    lines: &lines,
                    origin: &origin,
                    data_dir: &data_dir,
                    public_url: &public_url,
                    tls: tls.as_ref(),
                },
            )?),
        };
        let egress = match file.egress {
            None => crate::egress::settings::EgressSettings::default(),
            Some(e) => crate::egress::settings::settings(e, &lines, &origin)?,
        };
        Ok(Config {
            source: ConfigSource {
                path: config_path.map(Path::to_path_buf),
                explicit,
                overrides: overrides.clone(),
            },
            data_dir,
            policies_dir,
            database_url,
            public_addr,
            internal_addr,
            public_url,
            upstream,
            upstream_tls,
            revocation_poll: Duration::from_millis(poll),
            max_body_bytes,
            log_format: file.log_format.unwrap_or(LogFormat::Json),
            resolver,
            rate_limit_per_second,
            rate_limit_burst,
            client_timeout: Duration::from_millis(client_timeout_ms),
            upstream_timeout: Duration::from_millis(upstream_timeout_ms),
            max_upstream_body_bytes,
            max_request_head_bytes,
            max_request_headers,
            http_workers,
            sqlite_wal_max_mib,
            hub_source,
            tls,
            internal_tls,
            medmij,
            zorgdomein,
            nuts,
            console,
            egress,
        })
    }
}

/// A list's location: an `https` URL (or `http` to a loopback address), else a file.
fn list_source(
    value: &str,
    key: &str,
    origin: &str,
) -> Result<crate::medmij::settings::ListSource, ConfigError> {
    use crate::medmij::settings::ListSource;
    let err = |reason: String| ConfigError {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(err("must not be empty".into()));
    }
    if value.starts_with("https://") || value.starts_with("http://") {
        let u = url::Url::parse(value).map_err(|e| err(format!("not a URL: {e}")))?;
        if u.scheme() == "http" && !loopback_url(&u) {
            return Err(err("must be https (http only to a loopback address)".into()));
        }
        return Ok(ListSource::Url(u));
    }
    Ok(ListSource::File(PathBuf::from(value)))
}

/// Whether a URL's host is a loopback address.
fn loopback_url(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// `[medmij]` and `[medmij.oidc]`, validated.
fn medmij_settings(
    m: MedmijFile,
    lines: &Lines<'_>,
    origin: &str,
) -> Result<crate::medmij::settings::MedmijSettings, ConfigError> {
    use crate::medmij::settings::{
        valid_aanbieder, valid_gegevensdienst_id, Login, MedmijSettings, OidcSettings,
    };
    let err = |key: &str, reason: String| ConfigError {
        origin: origin.to_owned(),
        key: format!("medmij.{key}"),
        reason,
    };
    if !valid_aanbieder(&m.aanbieder) {
        return Err(err(
            "aanbieder",
            "must be the aanbiedernaam without @medmij: lower-case letters a-z".into(),
        ));
    }
    if m.aanbieder_display_name.trim().is_empty() {
        return Err(err("aanbieder_display_name", "must not be empty".into()));
    }
    if m.gegevensdiensten.is_empty() {
        return Err(err(
            "gegevensdiensten",
            "must name at least one gegevensdienst id".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in &m.gegevensdiensten {
        if !valid_gegevensdienst_id(id) || !seen.insert(id.as_str()) {
            return Err(err(
                "gegevensdiensten",
                format!(
                    "\"{}\" is not a gegevensdienst id (1 to 16 letters or digits, each once)",
                    crate::policy::display_purpose(id)
                ),
            ));
        }
    }
    let receptive = m.receptive.unwrap_or_else(|| m.gegevensdiensten.clone());
    for id in &receptive {
        if !m.gegevensdiensten.contains(id) {
            return Err(err(
                "receptive",
                format!(
                    "\"{}\" is not one of gegevensdiensten",
                    crate::policy::display_purpose(id)
                ),
            ));
        }
    }
    let receptiveness_url = match m.receptiveness_url.as_deref() {
        None | Some("") => None,
        Some(v) => {
            let u = url::Url::parse(v)
                .map_err(|e| err("receptiveness_url", format!("not a URL: {e}")))?;
            if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
                return Err(err(
                    "receptiveness_url",
                    "must be an http(s) URL with a host".into(),
                ));
            }
            Some(u)
        }
    };
    let dev = m.dangerous_dev_login.unwrap_or(false);
    let login = match (m.oidc, dev) {
        (Some(_), true) => {
            return Err(err(
                "dangerous_dev_login",
                "choose one way to log in: [medmij.oidc] or dangerous_dev_login = true, not both".into(),
            ))
        }
        (None, false) => {
            return Err(err(
                "oidc",
                "the person must log in: configure [medmij.oidc] (or, for demos only, dangerous_dev_login = true)".into(),
            ))
        }
        (None, true) => Login::DangerousDev,
        (Some(o), false) => {
            let allow_http = o.dangerous_allow_http_loopback.unwrap_or(false);
            let issuer = url::Url::parse(&o.issuer)
                .map_err(|e| err("oidc.issuer", format!("not a URL: {e}")))?;
            let https = issuer.scheme() == "https";
            if !(https || (issuer.scheme() == "http" && allow_http && loopback_url(&issuer)))
                || issuer.host().is_none()
                || issuer.query().is_some()
                || issuer.fragment().is_some()
            {
                return Err(err(
                    "oidc.issuer",
                    "must be an https URL without query or fragment (http only to a loopback address with dangerous_allow_http_loopback = true)".into(),
                ));
            }
            if o.client_id.is_empty() {
                return Err(err("oidc.client_id", "must not be empty".into()));
            }
            if o.client_secret_file.is_empty() {
                return Err(err("oidc.client_secret_file", "must not be empty".into()));
            }
            let bsn_claim = o.bsn_claim.unwrap_or_else(|| "bsn".into());
            if bsn_claim.is_empty() {
                return Err(err("oidc.bsn_claim", "must not be empty".into()));
            }
            let mut scopes = o.scopes.unwrap_or_else(|| vec!["openid".into(), "bsn".into()]);
            if scopes.iter().any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')) {
                return Err(err("oidc.scopes", "must be scope tokens".into()));
            }
            if !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".into());
            }
            Login::Oidc(OidcSettings {
                issuer,
                client_id: o.client_id,
                client_secret_file: PathBuf::from(o.client_secret_file),
                bsn_claim,
                scopes,
                dangerous_allow_http_loopback: allow_http,
            })
        }
    };
    Ok(MedmijSettings {
        aanbieder: m.aanbieder,
        aanbieder_display_name: m.aanbieder_display_name,
        gegevensdiensten: m.gegevensdiensten,
        oauth_client_list: list_source(&m.oauth_client_list, "medmij.oauth_client_list", origin)?,
        whitelist: list_source(&m.whitelist, "medmij.whitelist", origin)?,
        gegevensdienst_name_list: list_source(
            &m.gegevensdienst_name_list,
            "medmij.gegevensdienst_name_list",
            origin,
        )?,
        zorgaanbieder_list: match m.zorgaanbieder_list.as_deref() {
            None | Some("") => None,
            Some(v) => Some(list_source(v, "medmij.zorgaanbieder_list", origin)?),
        },
        lists_refresh: Duration::from_secs(lines.ranged(
            "medmij.lists_refresh_seconds",
            &m.lists_refresh_seconds,
            3600,
            10..=86_400,
            "",
        )?),
        token_lifetime: Duration::from_secs(lines.ranged(
            "medmij.token_lifetime_seconds",
            &m.token_lifetime_seconds,
            900,
            60..=86_400,
            "",
        )?),
        require_client_certificate: m.require_client_certificate.unwrap_or(false),
        login,
        receptive,
        receptiveness_url,
        receptiveness_timeout: Duration::from_millis(lines.ranged(
            "medmij.receptiveness_timeout_ms",
            &m.receptiveness_timeout_ms,
            3000,
            100..=10_000,
            "",
        )?),
    })
}

/// File paths from the configuration file: none may be empty.
fn paths(origin: &str, key: &str, values: Option<&[String]>) -> Result<Vec<PathBuf>, ConfigError> {
    values
        .unwrap_or_default()
        .iter()
        .map(|v| {
            if v.is_empty() {
                Err(ConfigError {
                    origin: origin.to_owned(),
                    key: key.to_owned(),
                    reason: "a file name must not be empty".into(),
                })
            } else {
                Ok(PathBuf::from(v))
            }
        })
        .collect()
}

/// `upstream_ca`, `upstream_client_cert` and `upstream_client_key`: only for an https
/// upstream; the certificate and its key go together. (The files are read at start-up.)
fn upstream_tls(
    file: &FileConfig,
    origin: &str,
    upstream: Option<&url::Url>,
) -> Result<crate::tls::OutboundTls, ConfigError> {
    let err = |key: &str, reason: String| ConfigError {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let one = |key: &str, v: &Option<String>| -> Result<Option<PathBuf>, ConfigError> {
        Ok(paths(origin, key, v.as_ref().map(std::slice::from_ref))?
            .into_iter()
            .next())
    };
    let tls = crate::tls::OutboundTls {
        ca: paths(origin, "upstream_ca", file.upstream_ca.as_deref())?,
        client_cert: one("upstream_client_cert", &file.upstream_client_cert)?,
        client_key: one("upstream_client_key", &file.upstream_client_key)?,
    };
    match (&tls.client_cert, &tls.client_key) {
        (Some(_), None) => {
            return Err(err(
                "upstream_client_key",
                "upstream_client_cert needs its key (upstream_client_key)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                "upstream_client_cert",
                "upstream_client_key needs its certificate (upstream_client_cert)".into(),
            ))
        }
        _ => {}
    }
    if let Some(u) = upstream.filter(|u| u.scheme() != "https") {
        if tls.is_configured() {
            let key = if tls.ca.is_empty() {
                "upstream_client_cert"
            } else {
                "upstream_ca"
            };
            return Err(err(
                key,
                format!("applies to an https upstream; upstream is {u}"),
            ));
        }
    }
    Ok(tls)
}

/// `[console]`, checked: a non-loopback internal listener always requires a login, and a
/// client-certificate allow-list needs mutual TLS on the internal listener.
fn console_settings(
    file: &ConsoleFile,
    lines: &Lines<'_>,
    origin: &str,
    internal_addr: SocketAddr,
    tls: Option<&crate::tls::TlsSettings>,
    internal_tls: bool,
) -> Result<ConsoleSettings, ConfigError> {
    let err = |key: &str, reason: &str| ConfigError {
        origin: origin.to_owned(),
        key: format!("console.{key}"),
        reason: reason.to_owned(),
    };
    let public = !internal_addr.ip().is_loopback();
    if public && file.require_login == Some(false) {
        return Err(err(
            "require_login",
            "the internal listener is not on a loopback address: the console must require a login",
        ));
    }
    let client_certs: Vec<String> = file
        .client_certs
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let hex: String = c.chars().filter(|ch| *ch != ':').collect();
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex.to_ascii_lowercase()
            } else {
                c.trim().to_owned()
            }
        })
        .collect();
    if client_certs.iter().any(String::is_empty) {
        return Err(err(
            "client_certs",
            "an entry is empty (a SHA-256 fingerprint or a subject like CN=beheer,O=Zorg)",
        ));
    }
    let mutual = internal_tls && tls.is_some_and(|t| t.client_auth != crate::tls::ClientAuth::None);
    if !client_certs.is_empty() && !mutual {
        return Err(err(
            "client_certs",
            "needs internal_tls = true and [tls] client_auth = optional or required",
        ));
    }
    Ok(ConsoleSettings {
        enabled: file.enabled.unwrap_or(true),
        require_login: file.require_login.unwrap_or(public),
        session_idle: Duration::from_secs(
            60 * lines.ranged(
                "console.session_idle_minutes",
                &file.session_idle_minutes,
                30,
                1..=480,
                "",
            )?,
        ),
        session_max: Duration::from_secs(
            3600 * lines.ranged(
                "console.session_max_hours",
                &file.session_max_hours,
                8,
                1..=24,
                "",
            )?,
        ),
        client_certs,
        chart_days: lines.ranged("console.chart_days", &file.chart_days, 3, 1..=14, "")?,
    })
}

/// `[tls]` from the file, with `--tls-cert`, `--tls-key`, `--tls-client-ca` (comma-separated)
/// and `--tls-client-auth` (or `POORTWACHTER_TLS_*`) over it; the flags alone make a section
/// when the file has none (then both the certificate and the key are needed).
fn tls_settings(
    file: Option<crate::tls::TlsSettings>,
    overrides: &HashMap<&'static str, Override>,
) -> Result<Option<crate::tls::TlsSettings>, ConfigError> {
    let get = |k: &str| overrides.get(k);
    let given = ["tls_cert", "tls_key", "tls_client_ca", "tls_client_auth"]
        .iter()
        .any(|k| get(k).is_some());
    if !given {
        return Ok(file);
    }
    let (cert, key) = match (&file, get("tls_cert"), get("tls_key")) {
        (_, Some(c), Some(k)) => (PathBuf::from(&c.value), PathBuf::from(&k.value)),
        (Some(f), c, k) => (
            c.map_or_else(|| f.cert.clone(), |c| PathBuf::from(&c.value)),
            k.map_or_else(|| f.key.clone(), |k| PathBuf::from(&k.value)),
        ),
        (None, c, k) => {
            let (missing, o) = if c.is_none() {
                ("tls_cert", k)
            } else {
                ("tls_key", c)
            };
            return Err(ConfigError {
                origin: o.map(|o| o.origin.clone()).unwrap_or_default(),
                key: missing.into(),
                reason: "TLS needs both a certificate (--tls-cert) and its key (--tls-key)".into(),
            });
        }
    };
    let mut tls = file.unwrap_or(crate::tls::TlsSettings {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: Vec::new(),
        client_auth: crate::tls::ClientAuth::default(),
        crl: Vec::new(),
    });
    tls.cert = cert;
    tls.key = key;
    if let Some(ca) = get("tls_client_ca") {
        tls.client_ca = ca
            .value
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    if let Some(mode) = get("tls_client_auth") {
        tls.client_auth = mode.value.parse().map_err(|_| ConfigError {
            origin: mode.origin.clone(),
            key: "tls_client_auth".into(),
            reason: format!("\"{}\" is not none, optional or required", mode.value),
        })?;
    }
    Ok(Some(tls))
}

/// The settings a configuration reload (SIGHUP) changes while running.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time a client has to send its body.
    pub client_timeout: Duration,
    /// Time limit for one source-system request.
    pub upstream_timeout: Duration,
    /// Largest source-system answer.
    pub max_upstream_body_bytes: usize,
    /// The source system.
    pub upstream: Option<url::Url>,
}

impl LiveSettings {
    /// The live part of `config`.
    #[must_use]
    pub fn of(config: &Config) -> Self {
        Self {
            max_body_bytes: config.max_body_bytes,
            client_timeout: config.client_timeout,
            upstream_timeout: config.upstream_timeout,
            max_upstream_body_bytes: config.max_upstream_body_bytes,
            upstream: config.upstream.clone(),
        }
    }
}

/// The current [`LiveSettings`], shared by everything that reads them; a reload replaces them as
/// a whole, and a request reads them once per use.
#[derive(Debug, Clone)]
pub struct Live(std::sync::Arc<std::sync::RwLock<std::sync::Arc<LiveSettings>>>);

impl Live {
    /// Starts with `settings`.
    #[must_use]
    pub fn new(settings: LiveSettings) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(
            std::sync::Arc::new(settings),
        )))
    }

    /// The current settings.
    #[must_use]
    pub fn get(&self) -> std::sync::Arc<LiveSettings> {
        self.0
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the settings.
    pub fn set(&self, settings: LiveSettings) {
        let settings = std::sync::Arc::new(settings);
        match self.0.write() {
            Ok(mut l) => *l = settings,
            Err(e) => *e.into_inner() = settings,
        }
    }
}

fn read_file(path: &Path) -> Result<(FileConfig, String), ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        key: "(file)".into(),
        reason: e.to_string(),
    })?;
    let file = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        let key = e
            .span()
            .and_then(|s| text.get(s.clone()))
            .map(|k| k.split('=').next().unwrap_or(k).trim().to_owned())
            .unwrap_or_default();
        ConfigError {
            origin: format!("{origin}:{line}"),
            key,
            reason: e.message().to_owned(),
        }
    })?;
    Ok((file, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let (_d, p) = write("data_dir = \"/from/file\"\npublic_addr = \"127.0.0.1:1\"\n");
        let mut o = HashMap::new();
        o.insert(
            "data_dir",
            Override {
                value: "/from/flag".into(),
                origin: "--data-dir".into(),
            },
        );
        let c = Config::load(Some(&p), true, &o).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.public_addr.to_string(), "127.0.0.1:1");
        assert_eq!(c.internal_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(
            c.database_url,
            "sqlite:///from/flag/poortwachter.db?mode=rwc"
        );
    }

    #[test]
    fn unknown_key_and_bad_values_name_origin_key_reason() {
        let (_d, p) = write("data_dir = \"x\"\nwhat = 1\n");
        let e = Config::load(Some(&p), true, &HashMap::new()).unwrap_err();
        assert_eq!(e.origin, format!("{}:2", p.display()));
        assert_eq!(e.key, "what");
        assert!(e.reason.starts_with("unknown field `what`"), "{}", e.reason);

        let (_d, p) = write("public_addr = \"nonsense\"\n");
        let e = Config::load(Some(&p), true, &HashMap::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: public_addr: \"nonsense\" is not an address like 127.0.0.1:8081",
                p.display()
            )
        );

        let mut o = HashMap::new();
        o.insert(
            "database_url",
            Override {
                value: "mysql://x".into(),
                origin: "POORTWACHTER_DATABASE_URL".into(),
            },
        );
        let e = Config::load(None, false, &o).unwrap_err().to_string();
        assert_eq!(
            e,
            "POORTWACHTER_DATABASE_URL: database_url: must start with sqlite: or postgres://"
        );

        let (_d, p) = write("internal_addr = \"0.0.0.0:8081\"\n");
        let e = Config::load(Some(&p), true, &HashMap::new()).unwrap_err();
        assert_eq!(e.key, "internal_addr");
    }

    #[test]
    fn sqlite_wal_size_is_bounded_and_defaults_to_64_mib() {
        let (_d, p) = write("");
        let c = Config::load(Some(&p), true, &HashMap::new()).unwrap();
        assert_eq!(c.sqlite_wal_max_mib, 64);
        assert_eq!(
            crate::store::sqlite::frames_of_mib(c.sqlite_wal_max_mib),
            crate::store::sqlite::WAL_RESTART_FRAMES
        );
        let (_d, p) = write("sqlite_wal_max_mib = 1024\n");
        let c = Config::load(Some(&p), true, &HashMap::new()).unwrap();
        assert_eq!(c.sqlite_wal_max_mib, 1024);
        for bad in ["8", "70000"] {
            let (_d, p) = write(&format!("sqlite_wal_max_mib = {bad}\n"));
            let e = Config::load(Some(&p), true, &HashMap::new())
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!(
                    "{}:1: sqlite_wal_max_mib: must be between 16 and 65536 (got {bad})",
                    p.display()
                )
            );
        }
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let e = Config::load(
            Some(Path::new("/nonexistent/config.toml")),
            true,
            &HashMap::new(),
        )
        .unwrap_err();
        assert_eq!(e.origin, "/nonexistent/config.toml");
    }

    /// Every bounded number stops start-up when out of range, naming file:line, key and the
    /// allowed range: none is silently clamped.
    #[test]
    fn numbers_out_of_range_are_errors_with_file_line_key_and_range() {
        let cases = [
            ("client_timeout_ms = 50", "client_timeout_ms: must be between 100 and 600000 (got 50)"),
            ("upstream_timeout_ms = 600001", "upstream_timeout_ms: must be between 100 and 600000 (got 600001)"),
            ("max_upstream_body_bytes = 10", "max_upstream_body_bytes: must be between 1024 and 536870912 (got 10)"),
            ("http_workers = 0", "http_workers: must be between 1 and 256 (got 0)"),
            ("http_workers = 1000", "http_workers: must be between 1 and 256 (got 1000)"),
            ("max_request_head_bytes = 100", "max_request_head_bytes: must be between 8192 and 1048576 (got 100)"),
            ("max_request_headers = 5", "max_request_headers: must be between 10 and 1000 (got 5)"),
            ("revocation_poll_ms = 5000", "revocation_poll_ms: must be between 10 and 1000 (revocations must apply within 1 s) (got 5000)"),
            ("max_body_bytes = 1", "max_body_bytes: must be between 1024 and 67108864 (got 1)"),
            ("rate_limit_burst = 0", "rate_limit_burst: must be between 1 and 1000000 (got 0)"),
            ("[did_web]\ntimeout_ms = 99", "did_web.timeout_ms: must be between 100 and 60000 (got 99)"),
            ("[did_web]\nmax_document_bytes = 2000000", "did_web.max_document_bytes: must be between 1024 and 1048576 (got 2000000)"),
            ("[hub_source]\njwks = \"j.json\"\nissuer = \"i\"\naudience = \"provider-a\"\npolicy = \"p\"\nleeway_seconds = 301", "hub_source.leeway_seconds: must be between 0 and 300 (got 301)"),
            ("[hub_source]\njwks = \"j.json\"\nissuer = \"i\"\naudience = \"provider-a\"\npolicy = \"p\"\nrefresh_seconds = 0", "hub_source.refresh_seconds: must be between 1 and 86400 (got 0)"),
        ];
        for (text, want) in cases {
            // The key sits on the last line of the file, after a comment line.
            let (_d, p) = write(&format!("# a comment\n{text}\n"));
            let line = text.matches('\n').count() + 2;
            let e = Config::load(Some(&p), true, &HashMap::new())
                .unwrap_err()
                .to_string();
            assert_eq!(e, format!("{}:{line}: {want}", p.display()), "{text}");
        }
        let (_d, p) =
            write("client_timeout_ms = 100\nhttp_workers = 3\nmax_request_head_bytes = 8192\n");
        let c = Config::load(Some(&p), true, &HashMap::new()).unwrap();
        assert_eq!(c.client_timeout, Duration::from_millis(100));
        assert_eq!(
            (
                c.http_workers,
                c.max_request_head_bytes,
                c.max_request_headers
            ),
            (3, 8192, 100)
        );
    }

    const MEDMIJ: &str = "[medmij]\naanbieder = \"umcharderwijk\"\naanbieder_display_name = \"UMC Harderwijk\"\ngegevensdiensten = [\"48\"]\noauth_client_list = \"medmij/MedMij_OAuthclientlist.xml\"\nwhitelist = \"https://stelselnode.medmij.nl/MedMij_Whitelist.xml\"\ngegevensdienst_name_list = \"medmij/MedMij_Gegevensdienstnamenlijst.xml\"\n";

    #[test]
    fn medmij_is_read_as_the_issue_names_it() {
        use crate::medmij::settings::{ListSource, Login};
        let (_d, p) = write(&format!("{MEDMIJ}dangerous_dev_login = true\n"));
        let m = Config::load(Some(&p), true, &HashMap::new())
            .unwrap()
            .medmij
            .unwrap();
        assert_eq!(m.aanbieder, "umcharderwijk");
        assert_eq!(
            m.receptive,
            ["48"],
            "receptive defaults to every gegevensdienst"
        );
        assert_eq!(m.token_lifetime, Duration::from_secs(900));
        assert_eq!(m.lists_refresh, Duration::from_secs(3600));
        assert!(matches!(m.whitelist, ListSource::Url(_)));
        assert!(matches!(m.oauth_client_list, ListSource::File(_)));
        assert_eq!(m.login, Login::DangerousDev);
        let (_d, p) = write(&format!(
            "{MEDMIJ}token_lifetime_seconds = 600\nreceptive = []\nreceptiveness_url = \"http://127.0.0.1:9/ontvankelijk\"\n[medmij.oidc]\nissuer = \"https://login.example.nl\"\nclient_id = \"poortwachter\"\nclient_secret_file = \"medmij/oidc-secret\"\n"
        ));
        let m = Config::load(Some(&p), true, &HashMap::new())
            .unwrap()
            .medmij
            .unwrap();
        let Login::Oidc(o) = &m.login else {
            panic!("oidc")
        };
        assert_eq!(
            (o.bsn_claim.as_str(), o.scopes.join(" ")),
            ("bsn", "openid bsn".into())
        );
        assert!(m.receptive.is_empty() && m.receptiveness_url.is_some());

        let cases = [
            ("", "medmij.oidc: the person must log in: configure [medmij.oidc] (or, for demos only, dangerous_dev_login = true)"),
            ("dangerous_dev_login = true\n[medmij.oidc]\nissuer = \"https://l.example.nl\"\nclient_id = \"c\"\nclient_secret_file = \"s\"", "medmij.dangerous_dev_login: choose one way to log in: [medmij.oidc] or dangerous_dev_login = true, not both"),
            ("[medmij.oidc]\nissuer = \"http://login.example.nl\"\nclient_id = \"c\"\nclient_secret_file = \"s\"", "medmij.oidc.issuer: must be an https URL without query or fragment (http only to a loopback address with dangerous_allow_http_loopback = true)"),
            ("dangerous_dev_login = true\nreceptive = [\"49\"]", "medmij.receptive: \"49\" is not one of gegevensdiensten"),
            ("dangerous_dev_login = true\ntoken_lifetime_seconds = 10", "medmij.token_lifetime_seconds: must be between 60 and 86400 (got 10)"),
        ];
        for (extra, want) in cases {
            let (_d, p) = write(&format!("{MEDMIJ}{extra}\n"));
            let e = Config::load(Some(&p), true, &HashMap::new())
                .unwrap_err()
                .to_string();
            assert!(e.ends_with(want), "{extra}: {e}");
        }
        let bad_list = MEDMIJ.replace("https://stelselnode", "http://stelselnode");
        let (_d, p) = write(&format!("{bad_list}dangerous_dev_login = true\n"));
        let e = Config::load(Some(&p), true, &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("medmij.whitelist: must be https (http only to a loopback address)"),
            "{e}"
        );
        let (_d, p) = write(&format!(
            "{}dangerous_dev_login = true\n",
            MEDMIJ.replace("\"umcharderwijk\"", "\"UMC\"")
        ));
        assert!(Config::load(Some(&p), true, &HashMap::new())
            .unwrap_err()
            .to_string()
            .contains("medmij.aanbieder"));
        let (_d, p) = write(&format!(
            "{MEDMIJ}dangerous_dev_login = true\nsurprise = 1\n"
        ));
        let e = Config::load(Some(&p), true, &HashMap::new()).unwrap_err();
        assert_eq!(e.origin, format!("{}:9", p.display()));
    }

    #[test]
    fn nuts_require_client_certificate_needs_client_certificates() {
        let (_d, p) = write("[nuts]\nrequire_client_certificate = true\n");
        let e = Config::load(Some(&p), true, &HashMap::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: nuts.require_client_certificate: needs [tls] with client_auth = \"optional\" or \"required\" (and client_ca): without them no grant can come with a client certificate",
                p.display()
            )
        );
        let tls = "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\n";
        let (_d, p) = write(&format!("{tls}[nuts]\nrequire_client_certificate = true\n"));
        assert!(
            Config::load(Some(&p), true, &HashMap::new()).is_err(),
            "client_auth none"
        );
        let (_d, p) = write(&format!(
            "{tls}client_ca = [\"ca.pem\"]\nclient_auth = \"optional\"\n[nuts]\nrequire_client_certificate = true\n"
        ));
        let c = Config::load(Some(&p), true, &HashMap::new()).unwrap();
        assert!(c.nuts.require_client_certificate);
        let (_d, p) = write("");
        let c = Config::load(Some(&p), true, &HashMap::new()).unwrap();
        assert!(!c.nuts.require_client_certificate, "off by default");
        let (_d, p) = write("[nuts]\nrequire_client_cert = true\n");
        let e = Config::load(Some(&p), true, &HashMap::new()).unwrap_err();
        assert!(
            e.reason.starts_with("unknown field `require_client_cert`"),
            "{e}"
        );
    }

    #[test]
    fn path_prefixes_are_plain_segments() {
        for ok in ["/", "/zorgdomein", "/medmij/fhir", "/a-b_c.d~e"] {
            assert!(valid_path_prefix(ok), "{ok}");
        }
        for bad in [
            "", "x", "/x/", "//x", "/x//y", "/./x", "/x/..", "/x%2f", "/x y", "/x?y",
        ] {
            assert!(!valid_path_prefix(bad), "{bad}");
        }
    }
}
