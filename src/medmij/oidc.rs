//! The person's login: an OpenID Connect relying party (authorization code flow with PKCE S256,
//! `state` and `nonce`) against the provider of `[medmij.oidc]`, found through its discovery
//! document. The ID token's signature (RS256 or PS256, a key of the provider's JWKS) and its
//! claims (`iss`, `aud`, `azp`, `exp`, `iat`, `nonce`) are checked; the BSN comes from the
//! configured claim and must pass the 11-check.
//!
//! Written on the crate's own JOSE parser rather than the `openidconnect` crate: that crate
//! brings a second JOSE and RSA stack (and `chrono`, `serde_with`, `oauth2`) beside the one this
//! crate already has (`jose`, aws-lc-rs), and its ID token parsing accepts repeated JSON members,
//! which our parser refuses everywhere.
//!
//! [`verify_id_token`] is pure; [`Provider`] does the network calls (discovery and JWKS cached for
//! an hour, the JWKS fetched again once for an unknown `kid`: key rotation).

use std::sync::RwLock;
use std::time::{Duration, Instant};

use aws_lc_rs::signature;
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use super::settings::OidcSettings;
use crate::bsn::Bsn;
use crate::hub::token::{parse_jwks, RsaKey};

/// Why the login failed. The messages go to the log and the audit record; none holds a BSN or a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The provider cannot be reached, or answered something unusable.
    #[error("OpenID provider: {0}")]
    Provider(String),
    /// The provider refused the code or the login.
    #[error("OpenID provider refused: {0}")]
    Refused(String),
    /// The ID token does not verify.
    #[error("ID token: {0}")]
    IdToken(&'static str),
    /// The ID token has no valid BSN in the configured claim.
    #[error("ID token: the BSN claim is missing or not a valid BSN")]
    Bsn,
}

/// The discovery document's endpoints.
#[derive(Debug, Clone)]
struct Discovery {
    authorization_endpoint: url::Url,
    token_endpoint: url::Url,
    jwks_uri: url::Url,
}

/// Cache lifetime of the discovery document and the keys.
const CACHE: Duration = Duration::from_secs(3600);
/// Clock skew allowed on `exp` and `iat`.
const LEEWAY: i64 = 60;

/// The OpenID provider, as we use it. (No `Debug`: it holds the client secret.)
pub struct Provider {
    settings: OidcSettings,
    secret: RwLock<String>,
    http: reqwest::Client,
    discovery: RwLock<Option<(Discovery, Instant)>>,
    keys: RwLock<Option<(Vec<RsaKey>, Instant)>>,
}

impl Provider {
    /// Reads the client secret; the provider itself is asked on first use.
    pub fn new(settings: &OidcSettings) -> Result<Self, String> {
        let secret = read_secret(&settings.client_secret_file)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            settings: settings.clone(),
            secret: RwLock::new(secret),
            http,
            discovery: RwLock::new(None),
            keys: RwLock::new(None),
        })
    }

    /// Reads the client secret file again (SIGHUP); a file that cannot be read keeps the old one.
    pub fn reload_secret(&self) {
        match read_secret(&self.settings.client_secret_file) {
            Ok(s) => {
                if let Ok(mut secret) = self.secret.write() {
                    *secret = s;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "OpenID client secret not re-read; the old one stays")
            }
        }
    }

    fn endpoint_ok(&self, u: &url::Url) -> bool {
        u.scheme() == "https"
            || (u.scheme() == "http"
                && self.settings.dangerous_allow_http_loopback
                && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback()))
    }

    async fn discovery(&self) -> Result<Discovery, OidcError> {
        if let Ok(d) = self.discovery.read() {
            if let Some((d, at)) = d.as_ref() {
                if at.elapsed() < CACHE {
                    return Ok(d.clone());
                }
            }
        }
        let issuer = self.settings.issuer.as_str().trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc = self.get_json(&url).await?;
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer)
            && doc.get("issuer").and_then(Value::as_str) != Some(self.settings.issuer.as_str())
        {
            return Err(OidcError::Provider(
                "the discovery document names another issuer".into(),
            ));
        }
        let endpoint = |name: &str| -> Result<url::Url, OidcError> {
            let u = doc
                .get(name)
                .and_then(Value::as_str)
                .and_then(|s| url::Url::parse(s).ok())
                .ok_or_else(|| {
                    OidcError::Provider(format!("the discovery document has no {name}"))
                })?;
            if !self.endpoint_ok(&u) {
                return Err(OidcError::Provider(format!("{name} is not https")));
            }
            Ok(u)
        };
        let d = Discovery {
            authorization_endpoint: endpoint("authorization_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            jwks_uri: endpoint("jwks_uri")?,
        };
        if let Ok(mut slot) = self.discovery.write() {
            *slot = Some((d.clone(), Instant::now()));
        }
        Ok(d)
    }

    async fn get_json(&self, url: &str) -> Result<Value, OidcError> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            return Err(OidcError::Provider(format!("{url}: status {}", r.status())));
        }
        let bytes = r
            .bytes()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if bytes.len() > 256 * 1024 {
            return Err(OidcError::Provider(format!("{url}: answer too large")));
        }
        serde_json::from_slice(&bytes).map_err(|_| OidcError::Provider(format!("{url}: not JSON")))
    }

    async fn keys(&self, fresh: bool) -> Result<Vec<RsaKey>, OidcError> {
        if !fresh {
            if let Ok(k) = self.keys.read() {
                if let Some((k, at)) = k.as_ref() {
                    if at.elapsed() < CACHE {
                        return Ok(k.clone());
                    }
                }
            }
        }
        let d = self.discovery().await?;
        let doc = self.get_json(d.jwks_uri.as_str()).await?;
        let keys = parse_jwks(&doc.to_string()).map_err(OidcError::Provider)?;
        if let Ok(mut slot) = self.keys.write() {
            *slot = Some((keys.clone(), Instant::now()));
        }
        Ok(keys)
    }

    /// Where to send the browser: the provider's authorization endpoint with our request.
    pub async fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let mut u = d.authorization_endpoint;
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &super::s256(verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(u.to_string())
    }

    /// Exchanges the provider's code for an ID token and returns the person's BSN.
    pub async fn login(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Bsn, OidcError> {
        let d = self.discovery().await?;
        let secret = self.secret.read().map(|s| s.clone()).unwrap_or_default();
        let enc =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let r = self
            .http
            .post(d.token_endpoint.clone())
            .basic_auth(enc(&self.settings.client_id), Some(enc(&secret)))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = r.status();
        let body: Value = r
            .json()
            .await
            .map_err(|_| OidcError::Provider("token endpoint: not JSON".into()))?;
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            let shown: String = error
                .chars()
                .filter(char::is_ascii_graphic)
                .take(64)
                .collect();
            return Err(OidcError::Refused(shown));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(OidcError::IdToken("the token answer has no id_token"))?;
        let expect = Expected {
            issuer: self.settings.issuer.as_str(),
            client_id: &self.settings.client_id,
            nonce,
            bsn_claim: &self.settings.bsn_claim,
            now,
        };
        let keys = self.keys(false).await?;
        match verify_id_token(id_token, &keys, &expect) {
            Err(OidcError::IdToken("no key of the provider has the token's kid")) => {
                let keys = self.keys(true).await?;
                verify_id_token(id_token, &keys, &expect)
            }
            other => other,
        }
    }
}

fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| format!("client_secret_file {}: {e}", path.display()))?;
    let s = s.trim().to_owned();
    if s.is_empty() {
        return Err(format!("client_secret_file {}: empty", path.display()));
    }
    Ok(s)
}

/// What an ID token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `aud` (and `azp` when there are several audiences).
    pub client_id: &'a str,
    /// `nonce`, as sent.
    pub nonce: &'a str,
    /// The claim holding the BSN.
    pub bsn_claim: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// Verifies an ID token against the provider's keys and returns the BSN. Pure.
pub fn verify_id_token(
    token: &str,
    keys: &[RsaKey],
    want: &Expected<'_>,
) -> Result<Bsn, OidcError> {
    let jws = crate::jose::parse(token, &["RS256", "PS256"])
        .map_err(|_| OidcError::IdToken("not a JWS signed with RS256 or PS256"))?;
    let kid = jws.kid.as_deref();
    let candidates: Vec<&RsaKey> = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if candidates.is_empty() {
        return Err(OidcError::IdToken(
            "no key of the provider has the token's kid",
        ));
    }
    let signed = candidates.iter().any(|k| {
        signature::RsaPublicKeyComponents {
            n: &k.n[..],
            e: &k.e[..],
        }
        .verify(
            match jws.alg.as_str() {
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                _ => &signature::RSA_PKCS1_2048_8192_SHA256,
            },
            &jws.signing_input,
            &jws.signature,
        )
        .is_ok()
    });
    if !signed {
        return Err(OidcError::IdToken("the signature does not verify"));
    }
    let c = &jws.claims;
    let issuer = want.issuer.trim_end_matches('/');
    match c.get("iss").and_then(Value::as_str) {
        Some(i) if i == want.issuer || i == issuer => {}
        _ => return Err(OidcError::IdToken("iss is not the provider")),
    }
    let audiences: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&want.client_id) {
        return Err(OidcError::IdToken("aud is not our client_id"));
    }
    if audiences.len() > 1 && c.get("azp").and_then(Value::as_str) != Some(want.client_id) {
        return Err(OidcError::IdToken("azp is not our client_id"));
    }
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(OidcError::IdToken("exp is missing"))?;
    if exp + LEEWAY <= want.now {
        return Err(OidcError::IdToken("it has expired"));
    }
    let iat = c
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(OidcError::IdToken("iat is missing"))?;
    if iat > want.now + LEEWAY {
        return Err(OidcError::IdToken("iat is in the future"));
    }
    let nonce = c.get("nonce").and_then(Value::as_str).unwrap_or_default();
    if !bool::from(nonce.as_bytes().ct_eq(want.nonce.as_bytes())) || want.nonce.is_empty() {
        return Err(OidcError::IdToken("nonce is not the one sent"));
    }
    c.get(want.bsn_claim)
        .and_then(Value::as_str)
        .and_then(|b| Bsn::parse(b).ok())
        .ok_or(OidcError::Bsn)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    fn key() -> (KeyPair, RsaKey) {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = pair.public_key();
        let key = RsaKey {
            kid: Some("k1".into()),
            n: public.modulus().big_endian_without_leading_zero().to_vec(),
            e: public.exponent().big_endian_without_leading_zero().to_vec(),
        };
        (pair, key)
    }

    fn sign(pair: &KeyPair, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; pair.public_modulus_len()];
        let alg = if header["alg"] == "PS256" {
            &signature::RSA_PSS_SHA256
        } else {
            &signature::RSA_PKCS1_SHA256
        };
        pair.sign(alg, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    const WANT: Expected<'static> = Expected {
        issuer: "https://login.example.nl",
        client_id: "poortwachter",
        nonce: "n-1",
        bsn_claim: "bsn",
        now: 1_000_000,
    };

    fn claims() -> Value {
        json!({"iss": "https://login.example.nl", "aud": "poortwachter", "sub": "jan",
               "exp": 1_000_300, "iat": 1_000_000, "nonce": "n-1", "bsn": "999999990"})
    }

    #[test]
    fn id_tokens_are_checked() {
        let (pair, k) = key();
        let rs = json!({"alg": "RS256", "kid": "k1"});
        let ok = sign(&pair, &rs, &claims());
        assert_eq!(
            verify_id_token(&ok, std::slice::from_ref(&k), &WANT)
                .unwrap()
                .as_str(),
            "999999990"
        );
        let ps = sign(&pair, &json!({"alg": "PS256", "kid": "k1"}), &claims());
        assert!(verify_id_token(&ps, std::slice::from_ref(&k), &WANT).is_ok());
        let with = |change: &dyn Fn(&mut Value)| {
            let mut c = claims();
            change(&mut c);
            verify_id_token(&sign(&pair, &rs, &c), std::slice::from_ref(&k), &WANT)
        };
        assert_eq!(
            with(&|c| c["iss"] = json!("https://other")),
            Err(OidcError::IdToken("iss is not the provider"))
        );
        assert_eq!(
            with(&|c| c["aud"] = json!("someone-else")),
            Err(OidcError::IdToken("aud is not our client_id"))
        );
        assert_eq!(
            with(&|c| c["aud"] = json!(["poortwachter", "x"])),
            Err(OidcError::IdToken("azp is not our client_id"))
        );
        assert!(with(&|c| {
            c["aud"] = json!(["poortwachter", "x"]);
            c["azp"] = json!("poortwachter");
        })
        .is_ok());
        assert_eq!(
            with(&|c| c["exp"] = json!(999_900)),
            Err(OidcError::IdToken("it has expired"))
        );
        assert_eq!(
            with(&|c| c["iat"] = json!(1_000_100)),
            Err(OidcError::IdToken("iat is in the future"))
        );
        assert_eq!(
            with(&|c| c["nonce"] = json!("n-2")),
            Err(OidcError::IdToken("nonce is not the one sent"))
        );
        assert_eq!(
            with(&|c| c["bsn"] = json!("123456789")),
            Err(OidcError::Bsn)
        );
        assert_eq!(
            with(&|c| c["bsn"] = json!(999_999_990)),
            Err(OidcError::Bsn)
        );
        // Another key, another kid, a tampered payload, HS256 and none.
        let (other, _) = key();
        assert_eq!(
            verify_id_token(
                &sign(&other, &rs, &claims()),
                std::slice::from_ref(&k),
                &WANT
            ),
            Err(OidcError::IdToken("the signature does not verify"))
        );
        assert_eq!(
            verify_id_token(
                &sign(&pair, &json!({"alg": "RS256", "kid": "k9"}), &claims()),
                std::slice::from_ref(&k),
                &WANT
            ),
            Err(OidcError::IdToken(
                "no key of the provider has the token's kid"
            ))
        );
        let parts: Vec<&str> = ok.split('.').collect();
        let mut forged = claims();
        forged["bsn"] = json!("123456782");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(forged.to_string()),
            parts[2]
        );
        assert!(verify_id_token(&tampered, std::slice::from_ref(&k), &WANT).is_err());
        for alg in ["HS256", "none"] {
            let t = format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(json!({"alg": alg}).to_string()),
                parts[1]
            );
            assert!(
                verify_id_token(&t, std::slice::from_ref(&k), &WANT).is_err(),
                "{alg}"
            );
        }
    }
}
