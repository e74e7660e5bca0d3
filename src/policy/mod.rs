//! Policies: one TOML file per purposeOfUse in the policies directory, compiled into a
//! [`PolicySet`] at start-up. The runtime only ever sees compiled policies; a file that does not
//! parse stops start-up with the file, line and reason.
//!
//! **Invariant:** this module does no IO except [`PolicySet::load_dir`].
//!
//! ```toml
//! # policies/zorginzage-thuiszorgdossier-door-huisarts.toml
//! description = "..."
//! [token]
//! lifetime_seconds = 300
//! require_user_identity = true
//! [credential]
//! consent_types = ["implied", "explicit"]
//! expiration_required = true
//! no_expiration_allowed_for = ["explicit"]
//! ```

pub mod check;
pub mod json_body;
pub mod request;
pub mod shipped;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The legal basis of an authorization (huisarts profile: `credentialSubject.legalBase.consentType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentType {
    /// Implied consent (veronderstelde toestemming).
    Implied,
    /// Explicit consent (expliciete toestemming vooraf).
    Explicit,
}

impl ConsentType {
    /// Parses `implied` / `explicit`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "implied" => Some(Self::Implied),
            "explicit" => Some(Self::Explicit),
            _ => None,
        }
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Implied => "implied",
            Self::Explicit => "explicit",
        }
    }
}

impl fmt::Display for ConsentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    authenticator: Authenticator,
    token: Option<TokenPolicy>,
    credential: Option<CredentialPolicyFile>,
    #[serde(default, rename = "rule")]
    rules: Vec<request::Rule>,
    #[serde(default)]
    response: ResponsePolicy,
}

/// Who vouches for the requests a policy allows: the authenticator that turns a request into
/// the principal this policy decides for (see [`crate::authn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authenticator {
    /// Access tokens from our token endpoint (Nuts authorization credentials); the file name is
    /// the purposeOfUse. The default; `"nuts"` is accepted as an older name.
    #[default]
    #[serde(alias = "nuts")]
    NutsToken,
    /// Source tokens signed by a Hub (Hub API v3, `[hub_source]` in the config); the file name is
    /// the policy name `[hub_source] policy` refers to. No `[token]` or `[credential]` section.
    HubSource,
    /// ZorgDomein's calls (mutual TLS + a JWT it signs, `[zorgdomein]` in the config); answers
    /// are passed through (the principal is an organisation, not one patient).
    #[serde(rename = "zorgdomein")]
    ZorgDomein,
    /// Access tokens of our MedMij authorization server (`[medmij]` in the config); the file is
    /// `medmij-<gegevensdienst id>.toml`. Answers are passed through (creates: the source
    /// system's answer is about the data sent, not a patient record to check).
    Medmij,
}

impl Authenticator {
    /// The name policy files use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NutsToken => "nuts-token",
            Self::HubSource => "hub-source",
            Self::ZorgDomein => "zorgdomein",
            Self::Medmij => "medmij",
        }
    }
}

/// The format of the source system's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseFormat {
    /// FHIR JSON: every resource must belong to the token's patient.
    #[default]
    Fhir,
    /// Passed as it is (with its Content-Type); the source system scopes the answer to the
    /// subject it receives in `X-Poortwachter-Subject`.
    Passthrough,
}

/// How answers are checked against the token's patient.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsePolicy {
    /// The answers' format.
    #[serde(default)]
    pub format: ResponseFormat,
    /// Resource types that belong to no patient (Practitioner, ...) and may be returned as they are.
    #[serde(default)]
    pub non_patient_resources: Vec<String>,
    /// The source system's error answers keep their body when it is FHIR JSON (an
    /// `OperationOutcome` saying what could not be placed: MedMij's exception "Delen 2"). Only
    /// with `format = "passthrough"`; otherwise the client learns only the status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_errors: bool,
}

/// A compiled policy for requests that another authenticator than our access tokens vouches for
/// (a Hub source token, ...): request rules only, no token or credential rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestPolicy {
    /// The policy name (the file name without `.toml`).
    pub name: String,
    /// The authenticator whose principals this policy decides for.
    pub authenticator: Authenticator,
    /// Free text.
    pub description: String,
    /// Allowed request shapes (everything else is denied).
    pub rules: Vec<request::Rule>,
    /// Response checks.
    pub response: ResponsePolicy,
}

/// A compiled policy file of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiled {
    /// A purposeOfUse policy (Nuts tokens).
    Nuts(Policy),
    /// A policy for another authenticator.
    Requests(RequestPolicy),
}

/// The request rules and response checks of one policy of either kind (shared, never copied per
/// request).
#[derive(Debug, Clone)]
pub enum PolicyRef {
    /// A purposeOfUse policy.
    Nuts(Arc<Policy>),
    /// A policy for another authenticator.
    Requests(Arc<RequestPolicy>),
}

impl PolicyRef {
    /// The allowed request shapes.
    #[must_use]
    pub fn rules(&self) -> &[request::Rule] {
        match self {
            Self::Nuts(p) => &p.rules,
            Self::Requests(p) => &p.rules,
        }
    }

    /// The response checks.
    #[must_use]
    pub fn response(&self) -> &ResponsePolicy {
        match self {
            Self::Nuts(p) => &p.response,
            Self::Requests(p) => &p.response,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialPolicyFile {
    consent_types: Vec<ConsentType>,
    expiration_required: bool,
    #[serde(default)]
    no_expiration_allowed_for: Vec<ConsentType>,
    #[serde(default)]
    max_validity_days: Option<u32>,
}

/// What a token issued under this purpose looks like.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPolicy {
    /// Access token lifetime (300 s for the huisarts profile).
    pub lifetime_seconds: u32,
    /// Whether the grant must carry a user identity (`usi`).
    pub require_user_identity: bool,
}

/// What an authorization credential for this purpose must look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialPolicy {
    /// Accepted consent types.
    pub consent_types: Vec<ConsentType>,
    /// Whether `expirationDate` is required...
    pub expiration_required: bool,
    /// ...except for these consent types (the profile: explicit consent may have no end date).
    pub no_expiration_allowed_for: Vec<ConsentType>,
    /// Longest validity an issued credential may have.
    pub max_validity_days: Option<u32>,
}

impl CredentialPolicy {
    /// Whether a credential with this consent type must have an `expirationDate`.
    #[must_use]
    pub fn expiration_required_for(&self, consent: ConsentType) -> bool {
        self.expiration_required && !self.no_expiration_allowed_for.contains(&consent)
    }
}

/// A compiled policy for one purposeOfUse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The purposeOfUse (the file name without `.toml`).
    pub purpose: String,
    /// Free text.
    pub description: String,
    /// Token rules.
    pub token: TokenPolicy,
    /// Credential rules.
    pub credential: CredentialPolicy,
    /// Allowed request shapes (everything else is denied).
    pub rules: Vec<request::Rule>,
    /// Response checks.
    pub response: ResponsePolicy,
}

/// Why the policies could not be loaded. Names the file, line and reason.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The directory could not be read.
    #[error("policies directory {dir}: {reason}")]
    Dir {
        /// The directory.
        dir: String,
        /// Why.
        reason: String,
    },
    /// A file is invalid.
    #[error("{file}:{line}: {reason}")]
    File {
        /// The file.
        file: String,
        /// 1-based line (0 when the problem is the file as a whole).
        line: usize,
        /// Why.
        reason: String,
    },
}

/// All loaded policies, keyed by purposeOfUse.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    by_purpose: BTreeMap<String, Arc<Policy>>,
    others: BTreeMap<String, Arc<RequestPolicy>>,
}

/// A purposeOfUse is a short identifier: lowercase letters, digits, `-`, `_`, `.`.
#[must_use]
pub fn valid_purpose_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// A purposeOfUse as it may appear in an error message: itself when it is a short identifier,
/// `(unprintable)` otherwise (it comes from untrusted input).
#[must_use]
pub fn display_purpose(name: &str) -> String {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        name.to_owned()
    } else {
        "(unprintable)".to_owned()
    }
}

impl PolicySet {
    /// Loads every `*.toml` in `dir`. An empty directory is allowed (every request is denied).
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let dir_err = |reason: String| PolicyError::Dir {
            dir: dir.display().to_string(),
            reason,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    dir_err(format!(
                        "{e}; write the shipped policies there with `poortwachter policy install --dir {}`, or point policies_dir (--policies-dir, POORTWACHTER_POLICIES_DIR) at your own",
                        dir.display()
                    ))
                } else {
                    dir_err(e.to_string())
                }
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        let mut set = PolicySet::default();
        for path in paths {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::File {
                file: file.clone(),
                line: 0,
                reason: e.to_string(),
            })?;
            let purpose = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            match Self::compile_any(&file, &purpose, &text)? {
                Compiled::Nuts(policy) => {
                    set.by_purpose.insert(purpose, Arc::new(policy));
                }
                Compiled::Requests(policy) => {
                    set.others.insert(purpose, Arc::new(policy));
                }
            }
        }
        Ok(set)
    }

    /// Compiles one purposeOfUse policy file's text (a Hub source policy is an error here).
    pub fn compile(file: &str, purpose: &str, text: &str) -> Result<Policy, PolicyError> {
        match Self::compile_any(file, purpose, text)? {
            Compiled::Nuts(p) => Ok(p),
            Compiled::Requests(p) => Err(PolicyError::File {
                file: file.to_owned(),
                line: 0,
                reason: format!(
                    "a {} policy is not a purposeOfUse policy",
                    p.authenticator.as_str()
                ),
            }),
        }
    }

    /// Compiles one policy file's text, of either kind.
    pub fn compile_any(file: &str, purpose: &str, text: &str) -> Result<Compiled, PolicyError> {
        let err = |line: usize, reason: String| PolicyError::File {
            file: file.to_owned(),
            line,
            reason,
        };
        if !valid_purpose_name(purpose) {
            return Err(err(
                0,
                format!("file name \"{purpose}\" is not a valid purposeOfUse (lowercase letters, digits, - _ .)"),
            ));
        }
        let parsed: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            err(line, e.message().to_owned())
        })?;
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or(0, |i| i + 1)
        };
        request::validate(&parsed.rules).map_err(|reason| err(line_of("[[rule]]"), reason))?;
        if parsed.response.pass_errors && parsed.response.format != ResponseFormat::Passthrough {
            return Err(err(
                line_of("pass_errors"),
                "pass_errors needs [response] format = \"passthrough\"".into(),
            ));
        }
        if parsed.authenticator != Authenticator::NutsToken {
            let kind = parsed.authenticator.as_str();
            if parsed.token.is_some() || parsed.credential.is_some() {
                return Err(err(
                    line_of("authenticator"),
                    format!("a {kind} policy has no [token] or [credential] section"),
                ));
            }
            if let Some(r) = parsed.rules.iter().find(|r| {
                r.binds_patients
                    || r.path.contains("{allowed_patient}")
                    || r.query
                        .values()
                        .chain(r.form.values())
                        .any(|p| p.allowed_patient)
            }) {
                return Err(err(
                    line_of("[[rule]]"),
                    format!("rule \"{}\": patient binding needs Nuts access tokens, not a {kind} principal", r.name),
                ));
            }
            if matches!(
                parsed.authenticator,
                Authenticator::ZorgDomein | Authenticator::Medmij
            ) && parsed.response.format != ResponseFormat::Passthrough
            {
                return Err(err(
                    line_of("[response]"),
                    format!("a {kind} policy passes answers through ([response] format = \"passthrough\"): its principal has no patient record to check them against"),
                ));
            }
            return Ok(Compiled::Requests(RequestPolicy {
                name: purpose.to_owned(),
                authenticator: parsed.authenticator,
                description: parsed.description,
                rules: parsed.rules,
                response: parsed.response,
            }));
        }
        let missing = |section: &str| err(0, format!("missing section [{section}]"));
        let c = parsed.credential.ok_or_else(|| missing("credential"))?;
        let token = parsed.token.ok_or_else(|| missing("token"))?;
        if c.consent_types.is_empty() {
            return Err(err(
                line_of("consent_types"),
                "consent_types must not be empty".into(),
            ));
        }
        if let Some(ct) = c
            .no_expiration_allowed_for
            .iter()
            .find(|ct| !c.consent_types.contains(ct))
        {
            return Err(err(
                line_of("no_expiration_allowed_for"),
                format!("no_expiration_allowed_for names \"{ct}\", which is not in consent_types"),
            ));
        }
        let t = &token;
        if t.lifetime_seconds == 0 || t.lifetime_seconds > 3600 {
            return Err(err(
                line_of("lifetime_seconds"),
                "lifetime_seconds must be between 1 and 3600".into(),
            ));
        }
        if c.max_validity_days == Some(0) {
            return Err(err(
                line_of("max_validity_days"),
                "max_validity_days must be at least 1".into(),
            ));
        }
        Ok(Compiled::Nuts(Policy {
            purpose: purpose.to_owned(),
            rules: parsed.rules,
            response: parsed.response,
            description: parsed.description,
            token,
            credential: CredentialPolicy {
                consent_types: c.consent_types,
                expiration_required: c.expiration_required,
                no_expiration_allowed_for: c.no_expiration_allowed_for,
                max_validity_days: c.max_validity_days,
            },
        }))
    }

    /// The policy for a purposeOfUse.
    #[must_use]
    pub fn get(&self, purpose: &str) -> Option<&Arc<Policy>> {
        self.by_purpose.get(purpose)
    }

    /// The policy named `name` for principals of `authenticator`: a purposeOfUse policy for our
    /// access tokens, else a request policy that names that authenticator.
    #[must_use]
    pub fn for_requests(&self, name: &str, authenticator: Authenticator) -> Option<PolicyRef> {
        match authenticator {
            Authenticator::NutsToken => self.by_purpose.get(name).cloned().map(PolicyRef::Nuts),
            other => self
                .others
                .get(name)
                .filter(|p| p.authenticator == other)
                .cloned()
                .map(PolicyRef::Requests),
        }
    }

    /// The request policy with this name, if it is one (not a purposeOfUse policy).
    #[must_use]
    pub fn request_policy(&self, name: &str) -> Option<&Arc<RequestPolicy>> {
        self.others.get(name)
    }

    /// The policies for other authenticators than our access tokens (Hub source tokens, ...).
    pub fn request_policies(&self) -> impl Iterator<Item = &Arc<RequestPolicy>> {
        self.others.values()
    }

    /// The loaded purposes.
    pub fn purposes(&self) -> impl Iterator<Item = &str> {
        self.by_purpose.keys().map(String::as_str)
    }

    /// Builds a set from compiled policies (tests, tools).
    #[must_use]
    pub fn from_policies(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self {
            by_purpose: policies
                .into_iter()
                .map(|p| (p.purpose.clone(), Arc::new(p)))
                .collect(),
            others: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
description = "x"
[token]
lifetime_seconds = 300
require_user_identity = true
[credential]
consent_types = ["implied", "explicit"]
expiration_required = true
no_expiration_allowed_for = ["explicit"]
"#;

    #[test]
    fn compiles_the_profile() {
        let p = PolicySet::compile("p.toml", "zorginzage-x", GOOD).unwrap();
        assert_eq!(p.token.lifetime_seconds, 300);
        assert!(p.credential.expiration_required_for(ConsentType::Implied));
        assert!(!p.credential.expiration_required_for(ConsentType::Explicit));
    }

    #[test]
    fn bad_files_name_line_and_reason() {
        let unknown = GOOD.replace(
            "expiration_required = true",
            "expiration_required = true\nfoo = 1",
        );
        let e = PolicySet::compile("p.toml", "x", &unknown)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:9: unknown field `foo`"), "{e}");
        let bad_value = GOOD.replace("lifetime_seconds = 300", "lifetime_seconds = \"300\"");
        let e = PolicySet::compile("p.toml", "x", &bad_value)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:4: invalid type"), "{e}");
        let bad_consent = GOOD.replace("[\"implied\", \"explicit\"]", "[\"implied\", \"maybe\"]");
        let e = PolicySet::compile("p.toml", "x", &bad_consent)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:7: unknown variant `maybe`"), "{e}");
        let e = PolicySet::compile("p.toml", "Bad Name", GOOD)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid purposeOfUse"), "{e}");
        let zero = GOOD.replace("lifetime_seconds = 300", "lifetime_seconds = 0");
        let e = PolicySet::compile("p.toml", "x", &zero)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "p.toml:4: lifetime_seconds must be between 1 and 3600");
    }
}
