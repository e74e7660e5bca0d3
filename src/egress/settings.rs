//! `[egress]` and its `[[egress.route]]`s: as written ([`EgressFile`]) and validated
//! ([`EgressSettings`]). A route that cannot work (a prefix that is not a clean path, a URL that
//! is not http(s), two routes on one prefix) stops start-up naming the route and the key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::lines::{ConfigError, Lines, Num};

/// `[egress]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressFile {
    listen: Option<String>,
    dangerous_allow_public_egress: Option<bool>,
    client_cert: Option<String>,
    client_key: Option<String>,
    #[serde(default)]
    ca: Vec<String>,
    timeout_ms: Num<u64>,
    #[serde(default)]
    route: Vec<RouteFile>,
}

/// `[[egress.route]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    prefix: String,
    fhir_base: String,
    token_endpoint: String,
    custodian: String,
    purpose: String,
    audience: Option<String>,
    require_user: Option<bool>,
}

/// One route: requests under `prefix` go to one custodian for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `/thuiszorg-noord`: what the GP system calls under egress; stripped.
    pub prefix: String,
    /// The custodian's proxy (FHIR base), without a trailing `/`.
    pub fhir_base: String,
    /// The custodian's token endpoint.
    pub token_endpoint: String,
    /// The grant's `aud` (default: `token_endpoint`).
    pub audience: String,
    /// The custodian's DID.
    pub custodian: String,
    /// purposeOfUse.
    pub purpose: String,
    /// Whether the user headers are required (default true: the huisarts profile needs them).
    pub require_user: bool,
}

/// `[egress]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressSettings {
    /// Where egress listens (default `127.0.0.1:7070`).
    pub listen: SocketAddr,
    /// Whether a non-loopback listen address is allowed.
    pub dangerous_allow_public_egress: bool,
    /// TLS towards the custodians: CA files and our client certificate.
    pub tls: crate::tls::OutboundTls,
    /// Time limit for a token request and for a forwarded request.
    pub timeout: Duration,
    /// The routes.
    pub routes: Vec<Route>,
}

impl Default for EgressSettings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            dangerous_allow_public_egress: false,
            tls: crate::tls::OutboundTls::default(),
            timeout: Duration::from_secs(30),
            routes: Vec::new(),
        }
    }
}

/// `127.0.0.1:7070`.
#[must_use]
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7070))
}

/// The files of `[egress]` (`client_cert`, `client_key`, `ca`) as error messages name them.
pub const EGRESS_FILES: crate::tls::FileLabels = crate::tls::FileLabels {
    cert: "egress.client_cert file",
    key: "egress.client_key file",
    ca: "egress.ca file",
};

/// Checks a listen address against `dangerous_allow_public_egress`: a GP system's plain
/// requests get tokens attached here, so only processes on this machine may call it.
pub fn check_listen(addr: SocketAddr, allow_public: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || allow_public {
        Ok(())
    } else {
        Err(format!("{addr} is not a loopback address; egress attaches access tokens to whatever reaches it (set dangerous_allow_public_egress = true in [egress] to override)"))
    }
}

/// Validates `[egress]`.
pub(crate) fn settings(
    file: EgressFile,
    lines: &Lines<'_>,
    origin: &str,
) -> Result<EgressSettings, ConfigError> {
    let err = |key: String, reason: String| ConfigError {
        origin: origin.to_owned(),
        key,
        reason,
    };
    let listen = match &file.listen {
        None => default_listen(),
        Some(v) => v.parse().map_err(|_| {
            err(
                "egress.listen".into(),
                format!("\"{v}\" is not an address like 127.0.0.1:7070"),
            )
        })?,
    };
    let allow_public = file.dangerous_allow_public_egress.unwrap_or(false);
    check_listen(listen, allow_public).map_err(|e| err("egress.listen".into(), e))?;
    let path = |key: &str, v: &str| -> Result<PathBuf, ConfigError> {
        if v.is_empty() {
            return Err(err(format!("egress.{key}"), "must not be empty".into()));
        }
        Ok(PathBuf::from(v))
    };
    let tls = crate::tls::OutboundTls {
        ca: file
            .ca
            .iter()
            .map(|c| path("ca", c))
            .collect::<Result<_, _>>()?,
        client_cert: file
            .client_cert
            .as_deref()
            .map(|c| path("client_cert", c))
            .transpose()?,
        client_key: file
            .client_key
            .as_deref()
            .map(|c| path("client_key", c))
            .transpose()?,
    };
    match (&tls.client_cert, &tls.client_key) {
        (Some(_), None) => {
            return Err(err(
                "egress.client_key".into(),
                "client_cert needs its key (client_key)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                "egress.client_cert".into(),
                "client_key needs its certificate (client_cert)".into(),
            ))
        }
        _ => {}
    }
    let timeout_ms = lines.ranged(
        "egress.timeout_ms",
        &file.timeout_ms,
        30_000,
        100..=300_000,
        "",
    )?;
    let mut routes: Vec<Route> = Vec::with_capacity(file.route.len());
    for (i, r) in file.route.into_iter().enumerate() {
        let key = |k: &str| format!("egress.route[{i}].{k}");
        if !crate::config::lines::valid_path_prefix(&r.prefix) || r.prefix == "/" {
            return Err(err(
                key("prefix"),
                "must be a path like /thuiszorg-noord (no trailing slash, not /)".into(),
            ));
        }
        if routes.iter().any(|o| o.prefix == r.prefix) {
            return Err(err(
                key("prefix"),
                format!("{} is the prefix of an earlier route", r.prefix),
            ));
        }
        for (k, v) in [
            ("fhir_base", &r.fhir_base),
            ("token_endpoint", &r.token_endpoint),
        ] {
            let ok = url::Url::parse(v).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
            });
            if !ok {
                return Err(err(
                    key(k),
                    format!("\"{v}\" is not an http(s) URL without query, fragment or user"),
                ));
            }
        }
        if crate::did::method_of(&r.custodian).is_err() {
            return Err(err(
                key("custodian"),
                format!("\"{}\" is not a DID", r.custodian),
            ));
        }
        if !crate::policy::valid_purpose_name(&r.purpose) {
            return Err(err(
                key("purpose"),
                format!("\"{}\" is not a purposeOfUse name", r.purpose),
            ));
        }
        if r.audience.as_deref().is_some_and(str::is_empty) {
            return Err(err(key("audience"), "must not be empty when given".into()));
        }
        routes.push(Route {
            prefix: r.prefix,
            fhir_base: r.fhir_base.trim_end_matches('/').to_owned(),
            audience: r.audience.unwrap_or_else(|| r.token_endpoint.clone()),
            token_endpoint: r.token_endpoint,
            custodian: r.custodian,
            purpose: r.purpose,
            require_user: r.require_user.unwrap_or(true),
        });
    }
    Ok(EgressSettings {
        listen,
        dangerous_allow_public_egress: allow_public,
        tls,
        timeout: Duration::from_millis(timeout_ms),
        routes,
    })
}

impl EgressSettings {
    /// The route whose prefix `path` is under (the prefix itself, or the prefix and `/`...),
    /// and the rest of the path (`""` or starting with `/`).
    #[must_use]
    pub fn route_for<'a>(&self, path: &'a str) -> Option<(usize, &'a str)> {
        self.routes.iter().enumerate().find_map(|(i, r)| {
            let rest = path.strip_prefix(r.prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((i, rest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<EgressSettings, String> {
        #[derive(Deserialize)]
        struct F {
            egress: EgressFile,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        let lines = Lines::new("c.toml", text);
        settings(f.egress, &lines, "c.toml").map_err(|e| e.to_string())
    }

    const ROUTE: &str = "[egress]\n[[egress.route]]\nprefix = \"/noord\"\nfhir_base = \"https://noord.example.nl/\"\ntoken_endpoint = \"https://noord.example.nl/n2n/auth/v1/accesstoken\"\ncustodian = \"did:web:noord.example.nl\"\npurpose = \"zorginzage-thuiszorgdossier-door-huisarts\"\n";

    #[test]
    fn a_route_is_read_and_matched_by_whole_segments() {
        let s = load(ROUTE).unwrap();
        assert_eq!(s.listen, default_listen());
        assert_eq!(s.routes[0].fhir_base, "https://noord.example.nl");
        assert_eq!(s.routes[0].audience, s.routes[0].token_endpoint);
        assert!(s.routes[0].require_user);
        assert_eq!(s.route_for("/noord/Observation"), Some((0, "/Observation")));
        assert_eq!(s.route_for("/noord"), Some((0, "")));
        assert_eq!(s.route_for("/noordoost/Observation"), None);
        assert_eq!(s.route_for("/zuid/Observation"), None);
    }

    #[test]
    fn bad_settings_stop_start_up_naming_the_key() {
        for (edit, message) in [
            (("prefix = \"/noord\"", "prefix = \"/noord/\""), "c.toml: egress.route[0].prefix: must be a path like /thuiszorg-noord (no trailing slash, not /)"),
            (("fhir_base = \"https://noord.example.nl/\"", "fhir_base = \"ftp://x\""), "c.toml: egress.route[0].fhir_base: \"ftp://x\" is not an http(s) URL without query, fragment or user"),
            (("custodian = \"did:web:noord.example.nl\"", "custodian = \"noord\""), "c.toml: egress.route[0].custodian: \"noord\" is not a DID"),
            (("[egress]\n", "[egress]\nlisten = \"0.0.0.0:7070\"\n"), "c.toml: egress.listen: 0.0.0.0:7070 is not a loopback address; egress attaches access tokens to whatever reaches it (set dangerous_allow_public_egress = true in [egress] to override)"),
            (("[egress]\n", "[egress]\nclient_cert = \"c.pem\"\n"), "c.toml: egress.client_key: client_cert needs its key (client_key)"),
        ] {
            assert_eq!(load(&ROUTE.replace(edit.0, edit.1)).unwrap_err(), message);
        }
        let twice = format!("{ROUTE}{}", ROUTE.replace("[egress]\n", ""));
        assert_eq!(
            load(&twice).unwrap_err(),
            "c.toml: egress.route[1].prefix: /noord is the prefix of an earlier route"
        );
        let public = ROUTE.replace(
            "[egress]\n",
            "[egress]\nlisten = \"0.0.0.0:7070\"\ndangerous_allow_public_egress = true\n",
        );
        assert!(load(&public).unwrap().dangerous_allow_public_egress);
    }
}
