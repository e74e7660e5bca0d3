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
pub const OVERRIDABLE: [&str; 8] = [
    "data_dir",
    "policies_dir",
    "did_dir",
    "database_url",
    "public_addr",
    "internal_addr",
    "public_url",
    "upstream",
];

/// A configuration problem: where, which key, why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {key}: {reason}")]
pub struct ConfigError {
    /// File (with line), environment variable or flag.
    pub origin: String,
    /// The key.
    pub key: String,
    /// Why.
    pub reason: String,
}

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
    revocation_poll_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    dangerous_allow_public_internal: Option<bool>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    upstream_timeout_ms: Option<u64>,
    client_timeout_ms: Option<u64>,
    max_upstream_body_bytes: Option<usize>,
    http_workers: Option<usize>,
    sqlite_wal_max_mib: Option<u32>,
    #[serde(default)]
    did_web: DidWebFile,
    hub_source: Option<HubSourceFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSourceFile {
    jwks: String,
    issuer: String,
    audience: String,
    policy: String,
    leeway_seconds: Option<i64>,
    refresh_seconds: Option<u64>,
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
    timeout_ms: Option<u64>,
    max_document_bytes: Option<usize>,
    dangerous_allow_http_loopback: Option<bool>,
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
    /// Threads serving HTTP connections (each a single-threaded runtime).
    pub http_workers: usize,
    /// WAL size (MiB) past which a SQLite database's WAL is started over (see
    /// [`crate::store::sqlite`]): larger means rarer writer stalls and more disk.
    pub sqlite_wal_max_mib: u32,
    /// Hub source tokens as a second authenticator, if configured.
    pub hub_source: Option<HubSourceSettings>,
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
        out
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
        let (file, origin) = match config_path {
            Some(path) if explicit || path.exists() => {
                (read_file(path)?, path.display().to_string())
            }
            _ => (FileConfig::default(), "defaults".to_owned()),
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
        let (pu, po) = pick("public_url", &file.public_url)
            .unwrap_or_else(|| ("http://localhost:8080".into(), "defaults".into()));
        let public_url = http_url("public_url", &pu, &po)?;
        let upstream = match pick("upstream", &file.upstream) {
            Some((v, o)) if !v.is_empty() => Some(http_url("upstream", &v, &o)?),
            _ => None,
        };
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
        let poll = file.revocation_poll_ms.unwrap_or(250);
        if !(10..=1000).contains(&poll) {
            return Err(err(
                &origin,
                "revocation_poll_ms",
                "must be between 10 and 1000 (revocations must apply within 1 s)".into(),
            ));
        }
        let sqlite_wal_max_mib = file
            .sqlite_wal_max_mib
            .unwrap_or(crate::store::sqlite::DEFAULT_WAL_MAX_MIB);
        if !(16..=65_536).contains(&sqlite_wal_max_mib) {
            return Err(err(
                &origin,
                "sqlite_wal_max_mib",
                "must be between 16 and 65536".into(),
            ));
        }
        let max_body_bytes = file.max_body_bytes.unwrap_or(1024 * 1024);
        if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(err(
                &origin,
                "max_body_bytes",
                "must be between 1024 and 67108864".into(),
            ));
        }
        let rate_limit_per_second = file.rate_limit_per_second.unwrap_or(20);
        let rate_limit_burst = file.rate_limit_burst.unwrap_or(40);
        if rate_limit_per_second == 0 || rate_limit_burst == 0 {
            return Err(err(
                &origin,
                "rate_limit_per_second",
                "rate limits must be at least 1".into(),
            ));
        }
        let w = &file.did_web;
        let resolver = ResolverSettings {
            did_dir,
            cache_ttl: Duration::from_secs(w.cache_ttl_seconds.unwrap_or(300)),
            web: WebSettings {
                timeout: Duration::from_millis(w.timeout_ms.unwrap_or(5000).clamp(100, 60_000)),
                max_bytes: w
                    .max_document_bytes
                    .unwrap_or(64 * 1024)
                    .clamp(1024, 1024 * 1024),
                dangerous_allow_http_loopback: w.dangerous_allow_http_loopback.unwrap_or(false),
            },
        };
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
                Some(HubSourceSettings {
                    jwks,
                    issuer: h.issuer,
                    audience: h.audience,
                    policy: h.policy,
                    leeway_seconds: h.leeway_seconds.unwrap_or(5).clamp(0, 300),
                    refresh: Duration::from_secs(h.refresh_seconds.unwrap_or(300).clamp(1, 86_400)),
                })
            }
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
            revocation_poll: Duration::from_millis(poll),
            max_body_bytes,
            log_format: file.log_format.unwrap_or(LogFormat::Json),
            resolver,
            rate_limit_per_second,
            rate_limit_burst,
            client_timeout: Duration::from_millis(
                file.client_timeout_ms.unwrap_or(30_000).clamp(100, 600_000),
            ),
            upstream_timeout: Duration::from_millis(
                file.upstream_timeout_ms
                    .unwrap_or(30_000)
                    .clamp(100, 600_000),
            ),
            max_upstream_body_bytes: file
                .max_upstream_body_bytes
                .unwrap_or(16 * 1024 * 1024)
                .clamp(1024, 512 * 1024 * 1024),
            http_workers: match file.http_workers {
                Some(n) if n > 0 => n.min(256),
                _ => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            },
            sqlite_wal_max_mib,
            hub_source,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        key: "(file)".into(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| {
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
    })
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
                    "{}: sqlite_wal_max_mib: must be between 16 and 65536",
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
}
