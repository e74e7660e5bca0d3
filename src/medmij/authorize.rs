//! The authorization request (`GET /medmij/authorize`): parsed and checked against the lists and
//! our configuration. Pure (a fuzz target): query in, [`Authorized`] or [`AuthzRefusal`] out.
//!
//! RFC 6749 §4.1.2.1: when the client or its `redirect_uri` is not valid, the person sees an
//! error page and is not sent anywhere ([`AuthzRefusal::NoRedirect`]); every other error goes
//! back to the client's `redirect_uri` with `error`, `error_description` and `state`
//! ([`AuthzRefusal::Redirect`]).
//!
//! The checks, in order: `client_id` (once, on the OAuth client list and the whitelist),
//! `redirect_uri` (once, `https`, host = `client_id`, no user info, no fragment), then
//! `response_type=code`, `state` (required, visible ASCII, at most 512 characters), `scope`
//! (exactly one `<aanbiedernaam>~<gegevensdienstid>`: our aanbieder, a gegevensdienst we serve
//! and the client may ask for), PKCE (`code_challenge` of 43 base64url characters with
//! `code_challenge_method=S256`; `plain` or a challenge without a method is refused). Unknown
//! parameters are ignored; a known one given twice is refused. `MedMij-Request-ID` and
//! `X-Correlation-ID` come as query parameters (or headers, which the caller passes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lists::{OAuthClientList, Whitelist};

/// The parameters this endpoint reads; any other is ignored.
const KNOWN: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "MedMij-Request-ID",
    "X-Correlation-ID",
];

/// The longest `state` accepted.
pub const MAX_STATE: usize = 512;

/// A checked authorization request: what the rest of the flow works with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorized {
    /// The DVP's host name (on the OAuth client list and the whitelist).
    pub client_id: String,
    /// The PGO's name (the OAuth client list's `OAuthclientOrganisatienaam`).
    pub client_name: String,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// The client's `state`, returned as sent.
    pub state: String,
    /// The scope as sent: `<aanbieder>~<gegevensdienst>`.
    pub scope: String,
    /// The gegevensdienst id.
    pub gegevensdienst: String,
    /// The PKCE challenge (S256), if one was sent.
    pub code_challenge: Option<String>,
    /// `MedMij-Request-ID` of this request.
    pub request_id: Option<String>,
    /// `X-Correlation-ID` of the exchange.
    pub correlation_id: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzRefusal {
    /// The client or its `redirect_uri` is not valid: an error page, no redirect.
    NoRedirect {
        /// The client, if it named one that could be shown (for the audit log).
        client_id: Option<String>,
        /// Why (for the audit log and the page).
        reason: &'static str,
    },
    /// Back to the client with an RFC 6749 error.
    Redirect {
        /// The client.
        client_id: String,
        /// The checked `redirect_uri`.
        redirect_uri: String,
        /// RFC 6749 §4.1.2.1 `error`.
        error: &'static str,
        /// `error_description`.
        description: &'static str,
        /// The client's `state`, when it sent a usable one.
        state: Option<String>,
    },
}

impl AuthzRefusal {
    /// The reason, for the audit log.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoRedirect { reason, .. } => reason,
            Self::Redirect { description, .. } => description,
        }
    }
}

/// What the request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The OAuth client list.
    pub clients: &'a OAuthClientList,
    /// The whitelist.
    pub whitelist: &'a Whitelist,
    /// Our aanbiedernaam (without `@medmij`).
    pub aanbieder: &'a str,
    /// The gegevensdiensten served.
    pub gegevensdiensten: &'a [String],
}

/// The known parameters of a query, each with every value it was given.
#[must_use]
pub fn parameters(query: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let name = KNOWN.iter().find(|n| n.eq_ignore_ascii_case(&k)).copied();
        if let Some(name) = name {
            out.entry(name).or_default().push(v.into_owned());
        }
    }
    out
}

/// Visible ASCII, 1 to `max` characters.
fn visible(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// The `redirect_uri`, if it is `https` on `host` without user info or fragment.
#[must_use]
pub fn valid_redirect_uri(uri: &str, host: &str) -> Option<url::Url> {
    if uri.len() > 2048 || uri.contains('#') {
        return None;
    }
    let u = url::Url::parse(uri).ok()?;
    let ok = u.scheme() == "https"
        && u.username().is_empty()
        && u.password().is_none()
        && u.fragment().is_none()
        && matches!(u.host(), Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case(host));
    ok.then_some(u)
}

/// 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1, the verifier; an S256 challenge is
/// 43 of them).
#[must_use]
pub fn pkce_chars(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Checks an authorization request. `headers` are the `MedMij-Request-ID` and
/// `X-Correlation-ID` request headers, used when the query does not carry them.
pub fn check(
    query: &str,
    ctx: &Context<'_>,
    header_ids: (Option<String>, Option<String>),
) -> Result<Authorized, AuthzRefusal> {
    let params = parameters(query);
    let one = |name: &str| -> Result<Option<&String>, ()> {
        match params.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v)),
            Some(_) => Err(()),
        }
    };
    let no_redirect = |client_id: Option<&String>, reason| AuthzRefusal::NoRedirect {
        client_id: client_id
            .filter(|c| {
                c.len() <= 253
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            })
            .cloned(),
        reason,
    };
    // The client and where to answer it: without both, nothing goes back.
    let client_id = match one("client_id") {
        Ok(Some(c)) => c,
        Ok(None) => return Err(no_redirect(None, "client_id is missing")),
        Err(()) => return Err(no_redirect(None, "client_id is given more than once")),
    };
    let Some(client) = ctx.clients.client(client_id) else {
        return Err(no_redirect(
            Some(client_id),
            "client_id is not on the OAuth client list",
        ));
    };
    if !ctx.whitelist.contains(client_id) {
        return Err(no_redirect(
            Some(client_id),
            "client_id is not on the whitelist",
        ));
    }
    let redirect_uri = match one("redirect_uri") {
        Ok(Some(r)) => r,
        Ok(None) => return Err(no_redirect(Some(client_id), "redirect_uri is missing")),
        Err(()) => {
            return Err(no_redirect(
                Some(client_id),
                "redirect_uri is given more than once",
            ))
        }
    };
    if valid_redirect_uri(redirect_uri, client_id).is_none() {
        return Err(no_redirect(
            Some(client_id),
            "redirect_uri must be https on the client's host name, without a fragment",
        ));
    }
    // From here on every error goes back to the client, with its state when usable.
    let state = one("state")
        .ok()
        .flatten()
        .filter(|s| visible(s, MAX_STATE))
        .cloned();
    let back = |error, description| AuthzRefusal::Redirect {
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: state.clone(),
    };
    for name in KNOWN {
        if params.get(name).is_some_and(|v| v.len() > 1) {
            return Err(back(
                "invalid_request",
                "a parameter is given more than once",
            ));
        }
    }
    match one("response_type") {
        Ok(Some(t)) if t == "code" => {}
        Ok(None) => return Err(back("invalid_request", "response_type is missing")),
        _ => {
            return Err(back(
                "unsupported_response_type",
                "response_type must be code",
            ))
        }
    }
    if state.is_none() {
        return Err(back(
            "invalid_request",
            "state is missing or not 1 to 512 visible ASCII characters",
        ));
    }
    let scope = match one("scope") {
        Ok(Some(s)) => s,
        _ => return Err(back("invalid_scope", "scope is missing")),
    };
    if scope.contains(' ') {
        return Err(back(
            "invalid_scope",
            "Delen takes exactly one scope <aanbiedernaam>~<gegevensdienstid>",
        ));
    }
    let Some((aanbieder, gegevensdienst)) = scope.split_once('~') else {
        return Err(back(
            "invalid_scope",
            "scope must be <aanbiedernaam>~<gegevensdienstid>",
        ));
    };
    if aanbieder != ctx.aanbieder {
        return Err(back("invalid_scope", "scope names another aanbieder"));
    }
    if !ctx.gegevensdiensten.iter().any(|g| g == gegevensdienst) {
        return Err(back(
            "invalid_scope",
            "scope names a gegevensdienst this aanbieder does not serve for Delen",
        ));
    }
    if !client.allows(gegevensdienst) {
        return Err(back(
            "invalid_scope",
            "the OAuth client list does not let this client ask for this gegevensdienst",
        ));
    }
    let code_challenge = match (one("code_challenge"), one("code_challenge_method")) {
        (Ok(None), Ok(None)) => None,
        (Ok(Some(c)), Ok(Some(m))) if m == "S256" => {
            if !pkce_chars(c, 43, 43) {
                return Err(back(
                    "invalid_request",
                    "code_challenge must be 43 base64url characters (S256)",
                ));
            }
            Some(c.clone())
        }
        (_, Ok(Some(m))) if m == "plain" => {
            return Err(back(
                "invalid_request",
                "code_challenge_method plain is not allowed; use S256",
            ))
        }
        _ => {
            return Err(back(
                "invalid_request",
                "PKCE needs code_challenge with code_challenge_method=S256",
            ))
        }
    };
    let (request_id, correlation_id) = ids(&params, header_ids);
    Ok(Authorized {
        client_id: client.hostname.clone(),
        client_name: client.organisatienaam.clone(),
        redirect_uri: redirect_uri.clone(),
        state: state.unwrap_or_default(),
        scope: scope.clone(),
        gegevensdienst: gegevensdienst.to_owned(),
        code_challenge,
        request_id,
        correlation_id,
    })
}

/// The request's `MedMij-Request-ID` and `X-Correlation-ID`: from the query (once, valid), else
/// from the headers.
#[must_use]
pub fn ids(
    params: &BTreeMap<&'static str, Vec<String>>,
    header_ids: (Option<String>, Option<String>),
) -> (Option<String>, Option<String>) {
    let id = |name: &str, header: Option<String>| match params.get(name).map(Vec::as_slice) {
        Some([v]) if super::valid_id(v) => Some(v.clone()),
        _ => header,
    };
    (
        id("MedMij-Request-ID", header_ids.0),
        id("X-Correlation-ID", header_ids.1),
    )
}

/// `redirect_uri` with `params` added to its query.
#[must_use]
pub fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> (OAuthClientList, Whitelist) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/medmij");
        let ocl = std::fs::read(format!("{dir}/MedMij_OAuthclientlist.xml")).unwrap();
        let wl = std::fs::read(format!("{dir}/MedMij_Whitelist.xml")).unwrap();
        (
            super::super::lists::parse_oauth_client_list(&ocl).unwrap(),
            super::super::lists::parse_whitelist(&wl).unwrap(),
        )
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn query(extra: &[(&str, &str)], without: &[&str]) -> String {
        let mut base = vec![
            ("response_type", "code"),
            ("client_id", "pgo.example.nl"),
            ("redirect_uri", "https://pgo.example.nl/cb"),
            ("scope", "umcharderwijk~48"),
            ("state", "s-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        base.retain(|(k, _)| !without.contains(k) && !extra.iter().any(|(e, _)| e == k));
        base.extend_from_slice(extra);
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(base)
            .finish()
    }

    #[test]
    fn requests_are_checked_in_order() {
        let (ocl, wl) = lists();
        let gd = vec!["48".to_owned()];
        let ctx = Context {
            clients: &ocl,
            whitelist: &wl,
            aanbieder: "umcharderwijk",
            gegevensdiensten: &gd,
        };
        let ok = check(
            &query(&[("MedMij-Request-ID", "r-1")], &[]),
            &ctx,
            (None, Some("c-1".into())),
        )
        .unwrap();
        assert_eq!(ok.client_name, "Voorbeeld PGO");
        assert_eq!(ok.gegevensdienst, "48");
        assert_eq!(ok.code_challenge.as_deref(), Some(CHALLENGE));
        assert_eq!(ok.request_id.as_deref(), Some("r-1"));
        assert_eq!(ok.correlation_id.as_deref(), Some("c-1"));
        // PKCE is optional.
        assert!(check(
            &query(&[], &["code_challenge", "code_challenge_method"]),
            &ctx,
            (None, None)
        )
        .is_ok());

        let no_redirect = |q: String| match check(&q, &ctx, (None, None)) {
            Err(AuthzRefusal::NoRedirect { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            no_redirect(query(&[("client_id", "onbekend.example.nl")], &[])),
            "client_id is not on the OAuth client list"
        );
        assert_eq!(
            no_redirect(query(
                &[
                    ("client_id", "pgo.verzamelaar.example.nl"),
                    ("redirect_uri", "https://pgo.verzamelaar.example.nl/cb")
                ],
                &[]
            )),
            "client_id is not on the whitelist"
        );
        assert_eq!(
            no_redirect(query(&[], &["client_id"])),
            "client_id is missing"
        );
        for bad in [
            "https://evil.example.nl/cb",
            "http://pgo.example.nl/cb",
            "https://pgo.example.nl/cb#x",
            "https://u@pgo.example.nl/cb",
            "https://pgo.example.nl.evil.nl/cb",
            "/cb",
        ] {
            assert_eq!(
                no_redirect(query(&[("redirect_uri", bad)], &[])),
                "redirect_uri must be https on the client's host name, without a fragment",
                "{bad}"
            );
        }
        let twice = format!("{}&client_id=pgo.example.nl", query(&[], &[]));
        assert_eq!(no_redirect(twice), "client_id is given more than once");

        let back = |q: String| match check(&q, &ctx, (None, None)) {
            Err(AuthzRefusal::Redirect {
                error,
                description,
                state,
                ..
            }) => (error, description, state),
            other => panic!("{other:?}"),
        };
        let s = Some("s-1".to_owned());
        assert_eq!(
            back(query(&[("scope", "umcharderwijk~48 umcharderwijk~1")], &[])),
            (
                "invalid_scope",
                "Delen takes exactly one scope <aanbiedernaam>~<gegevensdienstid>",
                s.clone()
            )
        );
        assert_eq!(
            back(query(&[("scope", "umcharderwijk~49")], &[])).1,
            "scope names a gegevensdienst this aanbieder does not serve for Delen"
        );
        assert_eq!(
            back(query(&[("scope", "anderen~48")], &[])).1,
            "scope names another aanbieder"
        );
        assert_eq!(
            back(query(&[("scope", "48")], &[])).1,
            "scope must be <aanbiedernaam>~<gegevensdienstid>"
        );
        assert_eq!(back(query(&[], &["scope"])).0, "invalid_scope");
        assert_eq!(
            back(query(&[("response_type", "token")], &[])).0,
            "unsupported_response_type"
        );
        assert_eq!(
            back(query(&[], &["state"])),
            (
                "invalid_request",
                "state is missing or not 1 to 512 visible ASCII characters",
                None
            )
        );
        assert_eq!(
            back(query(&[("code_challenge_method", "plain")], &[])).1,
            "code_challenge_method plain is not allowed; use S256"
        );
        assert_eq!(
            back(query(&[], &["code_challenge_method"])).1,
            "PKCE needs code_challenge with code_challenge_method=S256"
        );
        assert_eq!(
            back(query(&[("code_challenge", "kort")], &[])).1,
            "code_challenge must be 43 base64url characters (S256)"
        );
        assert_eq!(
            back(format!("{}&scope=umcharderwijk~48", query(&[], &[]))).1,
            "a parameter is given more than once"
        );
        // A client the list restricts to other gegevensdiensten.
        let gd1 = vec!["48".to_owned(), "1".to_owned()];
        let ctx1 = Context {
            gegevensdiensten: &gd1,
            ..ctx
        };
        let q = query(&[("scope", "umcharderwijk~1")], &[]);
        assert_eq!(
            check(&q, &ctx1, (None, None))
                .map(|_| ())
                .map_err(|e| e.reason()),
            Err("the OAuth client list does not let this client ask for this gegevensdienst")
        );
    }

    #[test]
    fn redirects_keep_the_query() {
        assert_eq!(
            redirect_to(
                "https://pgo.example.nl/cb?x=1",
                &[("code", "a b"), ("state", "s")]
            ),
            "https://pgo.example.nl/cb?x=1&code=a+b&state=s"
        );
    }
}
