//! The SSO launch token: a JWT the XIS's user carries to ZorgDomein in the browser
//! (`https://www.zorgdomein.nl/jwt-login/?token=…`), signed RS256 with this instance's RSA key
//! (`[zorgdomein] sso_key`, 3072 bits, mode 0600, made by `init`); ZorgDomein verifies it with
//! the public key it was given out of band (`poortwachter zorgdomein sso-key`).
//!
//! Claims as the legacy documentation records them: `iss` (the XIS), `jti` (fresh UUID), `iat`,
//! `user-id` `{system, value}`, `org-id` `{system, value}`, `context` `{patient-id, icpc?,
//! task?}`. The names of the current version are not public: every name is configurable
//! ([`ClaimNames`]), and `exp`/`aud` are added only when configured.
//!
//! **Invariant:** [`claims`] is pure (time and `jti` are given); the token is never logged.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::keys::KeyError;
use crate::rsa_key::{RsaAlg, RsaSigningKey};

/// ZorgDomein's SSO entry point.
pub const DEFAULT_LAUNCH_URL: &str = "https://www.zorgdomein.nl/jwt-login/";

/// The claim names of the SSO token. The defaults are the legacy documentation's; the current
/// version's are not public, so each can be set in `[zorgdomein.sso_claims]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimNames {
    /// The user: `{system, value}`.
    pub user_id: String,
    /// The organisation: `{system, value}`.
    pub org_id: String,
    /// The launch context object.
    pub context: String,
    /// In the context: the patient's FHIR id.
    pub patient_id: String,
    /// In the context: the ICPC code.
    pub icpc: String,
    /// In the context: the Task ZorgDomein reads for context.
    pub task: String,
    /// In `user-id`/`org-id`: the identifier system.
    pub system: String,
    /// In `user-id`/`org-id`: the identifier.
    pub value: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            user_id: "user-id".into(),
            org_id: "org-id".into(),
            context: "context".into(),
            patient_id: "patient-id".into(),
            icpc: "icpc".into(),
            task: "task".into(),
            system: "system".into(),
            value: "value".into(),
        }
    }
}

impl ClaimNames {
    /// Names are non-empty printable ASCII without quotes, distinct where they share an object,
    /// and never one of the registered claims we set.
    pub fn validate(&self) -> Result<(), String> {
        let all = [
            &self.user_id,
            &self.org_id,
            &self.context,
            &self.patient_id,
            &self.icpc,
            &self.task,
            &self.system,
            &self.value,
        ];
        if all.iter().any(|n| {
            n.is_empty()
                || n.len() > 64
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err("claim names are 1 to 64 printable characters".into());
        }
        let top = [&self.user_id, &self.org_id, &self.context];
        if top
            .iter()
            .any(|n| ["iss", "jti", "iat", "exp", "aud"].contains(&n.as_str()))
            || top[0] == top[1]
            || top[0] == top[2]
            || top[1] == top[2]
            || self.patient_id == self.icpc
            || self.patient_id == self.task
            || self.icpc == self.task
            || self.system == self.value
        {
            return Err(
                "claim names must differ from each other and from iss, jti, iat, exp, aud".into(),
            );
        }
        Ok(())
    }
}

/// The SSO token's settings (`[zorgdomein] sso_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    /// The RSA key file.
    pub key: PathBuf,
    /// `iss`.
    pub issuer: String,
    /// Where the browser goes with `?token=`.
    pub launch_url: url::Url,
    /// When set, `exp` = `iat` + this.
    pub lifetime_seconds: Option<i64>,
    /// When set, `aud`.
    pub audience: Option<String>,
    /// The claim names.
    pub claims: ClaimNames,
}

/// What one launch is about. Made only by [`SsoRequest::new`], which checks every value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRequest {
    user_system: String,
    user: String,
    org_system: String,
    org: String,
    patient_id: String,
    task: Option<String>,
    icpc: Option<String>,
}

/// Why a launch request is refused (the message names the input, never echoes a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SsoInputError(pub String);

fn fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

impl SsoRequest {
    /// Checks the inputs: systems are printable (e.g. `agb-z` or a URI), codes plain, the patient
    /// and Task FHIR ids, the ICPC code short and plain.
    pub fn new(
        user_system: &str,
        user: &str,
        org_system: &str,
        org: &str,
        patient_id: &str,
        task: Option<&str>,
        icpc: Option<&str>,
    ) -> Result<Self, SsoInputError> {
        let system = |s: &str| {
            !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        };
        let code = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        };
        let bad = |what: &str, form: &str| Err(SsoInputError(format!("{what}: {form}")));
        if !system(user_system) {
            return bad("user-system", "a system such as agb-z or a URI");
        }
        if !code(user) {
            return bad("user", "a code of letters, digits, - . _ (at most 64)");
        }
        if !system(org_system) {
            return bad("org-system", "a system such as agb-z or a URI");
        }
        if !code(org) {
            return bad("org", "a code of letters, digits, - . _ (at most 64)");
        }
        if !fhir_id(patient_id) {
            return bad("patient-id", "a FHIR id ([A-Za-z0-9-.], at most 64)");
        }
        if task.is_some_and(|t| !fhir_id(t)) {
            return bad("task", "a FHIR id ([A-Za-z0-9-.], at most 64)");
        }
        if icpc.is_some_and(|c| {
            c.is_empty()
                || c.len() > 16
                || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        }) {
            return bad("icpc", "an ICPC code such as K86 or K86.01");
        }
        Ok(Self {
            user_system: user_system.into(),
            user: user.into(),
            org_system: org_system.into(),
            org: org.into(),
            patient_id: patient_id.into(),
            task: task.map(str::to_owned),
            icpc: icpc.map(str::to_owned),
        })
    }
}

/// The token's claims at `now` with `jti`.
#[must_use]
pub fn claims(settings: &SsoSettings, request: &SsoRequest, now: i64, jti: &str) -> Value {
    let n = &settings.claims;
    let id = |system: &str, value: &str| {
        let mut m = Map::new();
        m.insert(n.system.clone(), json!(system));
        m.insert(n.value.clone(), json!(value));
        Value::Object(m)
    };
    let mut context = Map::new();
    context.insert(n.patient_id.clone(), json!(request.patient_id));
    if let Some(icpc) = &request.icpc {
        context.insert(n.icpc.clone(), json!(icpc));
    }
    if let Some(task) = &request.task {
        context.insert(n.task.clone(), json!(task));
    }
    let mut c = Map::new();
    c.insert("iss".into(), json!(settings.issuer));
    c.insert("jti".into(), json!(jti));
    c.insert("iat".into(), json!(now));
    if let Some(lifetime) = settings.lifetime_seconds {
        c.insert("exp".into(), json!(now + lifetime));
    }
    if let Some(aud) = &settings.audience {
        c.insert("aud".into(), json!(aud));
    }
    c.insert(n.user_id.clone(), id(&request.user_system, &request.user));
    c.insert(n.org_id.clone(), id(&request.org_system, &request.org));
    c.insert(n.context.clone(), Value::Object(context));
    Value::Object(c)
}

/// The launch URL: `launch_url` with `token=` added to its query.
#[must_use]
pub fn launch_url(settings: &SsoSettings, token: &str) -> String {
    let mut url = settings.launch_url.clone();
    url.query_pairs_mut().append_pair("token", token);
    url.to_string()
}

/// The instance's SSO signing key (RSA, RS256).
#[derive(Debug)]
pub struct SsoKey(RsaSigningKey);

impl SsoKey {
    /// Loads the key at `path`, creating a 3072-bit RSA key (mode 0600, in a 0700 directory)
    /// when there is none. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        RsaSigningKey::load_or_create(path).map(|(k, created)| (Self(k), created))
    }

    /// Reads a PEM `PRIVATE KEY` (PKCS#8 RSA) file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        RsaSigningKey::load(path).map(Self)
    }

    /// The key id (JWK thumbprint), the token header's `kid`.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.0.kid()
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for ZorgDomein.
    pub fn public_pem(&self) -> Result<String, KeyError> {
        self.0.public_pem()
    }

    /// Signs `claims` as a compact RS256 JWT.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        self.0.sign_jwt(RsaAlg::Rs256, &claims.to_string())
    }
}

/// Signs launch tokens: the key and the settings, shared by the CLI and the internal endpoint.
#[derive(Debug)]
pub struct SsoSigner {
    /// The key.
    pub key: SsoKey,
    /// The settings.
    pub settings: SsoSettings,
}

/// A signed launch token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Launch {
    /// The JWT.
    pub token: String,
    /// The launch URL with the token.
    pub launch_url: String,
    /// Its `jti`.
    pub jti: String,
}

impl SsoSigner {
    /// A token for `request` at `now` (unix seconds), with a fresh `jti`.
    pub fn launch(&self, request: &SsoRequest, now: i64) -> Result<Launch, KeyError> {
        let jti = uuid::Uuid::new_v4().to_string();
        let token = self.key.sign(&claims(&self.settings, request, now, &jti))?;
        Ok(Launch {
            launch_url: launch_url(&self.settings, &token),
            token,
            jti,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SsoSettings {
        SsoSettings {
            key: PathBuf::from("k.pem"),
            issuer: "xis.example.nl".into(),
            launch_url: url::Url::parse(DEFAULT_LAUNCH_URL).unwrap(),
            lifetime_seconds: None,
            audience: None,
            claims: ClaimNames::default(),
        }
    }

    #[test]
    fn claims_as_the_reference_records_them() {
        let r = SsoRequest::new(
            "agb-z",
            "01234567",
            "agb-z",
            "07654321",
            "pat-1",
            Some("task-9"),
            Some("K86"),
        )
        .unwrap();
        assert_eq!(
            claims(&settings(), &r, 1_700_000_000, "j-1"),
            json!({
                "iss": "xis.example.nl", "jti": "j-1", "iat": 1_700_000_000,
                "user-id": {"system": "agb-z", "value": "01234567"},
                "org-id": {"system": "agb-z", "value": "07654321"},
                "context": {"patient-id": "pat-1", "icpc": "K86", "task": "task-9"}
            })
        );
        let r = SsoRequest::new("agb-z", "1", "agb-z", "2", "pat-1", None, None).unwrap();
        let mut s = settings();
        s.lifetime_seconds = Some(60);
        s.audience = Some("zorgdomein".into());
        s.claims.context = "launch".into();
        s.claims.patient_id = "patient".into();
        let c = claims(&s, &r, 100, "j");
        assert_eq!(c["exp"], 160);
        assert_eq!(c["aud"], "zorgdomein");
        assert_eq!(c["launch"], json!({"patient": "pat-1"}));
        assert_eq!(
            launch_url(&s, "a.b.c"),
            "https://www.zorgdomein.nl/jwt-login/?token=a.b.c"
        );
    }

    #[test]
    fn inputs_are_checked() {
        let ok = |u: &str, p: &str, t: Option<&str>, i: Option<&str>| {
            SsoRequest::new("agb-z", u, "agb-z", "1", p, t, i)
        };
        assert!(ok("01234567", "pat-1", None, None).is_ok());
        assert_eq!(
            ok("a b", "pat-1", None, None).unwrap_err().to_string(),
            "user: a code of letters, digits, - . _ (at most 64)"
        );
        assert!(ok("1", "pat/1", None, None).is_err());
        assert!(ok("1", "p", Some("t?1"), None).is_err());
        assert!(ok("1", "p", None, Some("K86;x")).is_err());
        assert!(SsoRequest::new("", "1", "agb-z", "1", "p", None, None).is_err());
        let mut names = ClaimNames::default();
        assert!(names.validate().is_ok());
        names.user_id = "iss".into();
        assert!(names.validate().is_err());
        let names = ClaimNames {
            icpc: "task".into(),
            ..ClaimNames::default()
        };
        assert!(names.validate().is_err());
    }

    #[test]
    fn the_key_signs_verifiable_rs256_and_exports_its_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("sso.pem");
        let (key, created) = SsoKey::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = SsoKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.kid(), key.kid());
        let pem = key.public_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let jwt = key.sign(&json!({"iss": "x"})).unwrap();
        let jws = crate::jose::parse(&jwt, &["RS256"]).unwrap();
        let spki = crate::keys::pem_decode(&pem, "PUBLIC KEY").unwrap();
        let verifier = crate::authn::zorgdomein::VerifyKey::from_spki(&spki).unwrap();
        assert!(verifier.verify("RS256", &jws.signing_input, &jws.signature));
        assert!(!verifier.verify("RS256", b"other", &jws.signature));
    }
}
