//! The DVA's authorization server, top-down: one method per endpoint, each step one commented
//! line; every step is an audit record (a MedMij chain-log event) in the hash chain, durable
//! before the answer leaves. What the HTTP side sends is a [`Reply`]; its status is decided in
//! [`crate::server::error`].
//!
//! The browser's session (between the authorization request and the confirmation) lives in the
//! database under the SHA-256 of a random id, which the browser holds in an `HttpOnly`,
//! `SameSite=Lax` cookie; so every replica can serve every step.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::authorize::{self, Authorized, AuthzRefusal};
use super::oidc::{OidcError, Provider};
use super::pages::{self, Frame, Sharing};
use super::settings::{Login, MedmijSettings};
use super::sources::Lists;
use super::token::{self, TokenError};
use super::{hash_secret, random_secret};
use crate::audit::{AuditCert, AuditRecord, AuditTrace};
use crate::bsn::Bsn;
use crate::clock::Clock;
use crate::store::medmij::{MedmijCode, MedmijOutcome, MedmijToken, MedmijWrite};
use crate::store::writer::Writer;
use crate::store::Store;

/// How long a browser session lasts (from the authorization request to the confirmation).
pub const SESSION_SECONDS: i64 = 900;
/// How long an authorization code lasts.
pub const CODE_SECONDS: i64 = 60;
/// The audit record's `kind` of every MedMij step.
pub const AUDIT_KIND: &str = "medmij";
/// What the page says when the person stopped at the OpenID provider.
const STOPPED: &str = "U hebt het inloggen afgebroken.";
/// Where the OpenID provider sends the person back.
pub const CALLBACK_PATH: &str = "/medmij/login/callback";

/// How a page is answered (its status is decided in [`crate::server::error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// A step of the flow.
    Shown,
    /// A request the person's browser or the PGO got wrong, or a session that is gone.
    Invalid,
    /// The store, the audit log, the OpenID provider or the source system is unavailable.
    Unavailable,
}

/// What the browser gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A page, with the client's origin when a form on it may redirect there.
    Page {
        /// How it is answered.
        kind: PageKind,
        /// The HTML.
        html: String,
        /// The client's origin, allowed in the page's `form-action`.
        client_origin: Option<String>,
    },
    /// A redirect (303 See Other).
    Redirect(String),
}

/// What happens to the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieOp {
    /// Nothing.
    Keep,
    /// Set to this session id.
    Set(String),
    /// Removed.
    Clear,
}

/// An answer to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What it sees.
    pub answer: Answer,
    /// What happens to its session cookie.
    pub cookie: CookieOp,
}

impl Reply {
    fn page(kind: PageKind, html: maud::Markup, client_origin: Option<String>) -> Self {
        Self {
            answer: Answer::Page {
                kind,
                html: html.into_string(),
                client_origin,
            },
            cookie: CookieOp::Keep,
        }
    }

    fn redirect(location: String) -> Self {
        Self {
            answer: Answer::Redirect(location),
            cookie: CookieOp::Keep,
        }
    }

    fn cookie(mut self, op: CookieOp) -> Self {
        self.cookie = op;
        self
    }
}

/// A successful token request's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenAnswer {
    /// The opaque access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: u64,
    /// The scope it was issued for.
    pub scope: String,
}

/// The HTTP request, as the audit record names it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Method.
    pub method: String,
    /// Path and query (BSN-like numbers are redacted when recorded).
    pub target: String,
    /// Our id of this request.
    pub request_id: String,
    /// The verified client certificate, if any.
    pub cert: Option<AuditCert>,
}

/// Where the flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Step {
    /// The landing page was shown; the person has not logged in.
    Landing,
    /// Sent to the OpenID provider.
    LoggingIn,
    /// Logged in and receptive: the confirmation is asked.
    Confirm,
}

/// A login at the OpenID provider under way.
#[derive(Clone, Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    nonce: String,
    verifier: String,
}

/// A browser session, stored as JSON under the hash of its id.
#[derive(Clone, Serialize, Deserialize)]
struct Session {
    request: Authorized,
    csrf: String,
    step: Step,
    login: Option<PendingLogin>,
    bsn: Option<Bsn>,
    expires_at: i64,
}

/// The outcome of the receptiveness check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Receptive {
    Yes(Option<u16>),
    No(String, Option<u16>),
    Failed(String),
}

/// One audit event.
struct Event<'a> {
    name: &'static str,
    requester: &'a str,
    gegevensdienst: Option<&'a str>,
    bsn: Option<&'a Bsn>,
    decision: &'static str,
    rule: String,
    status: u16,
    upstream_status: Option<u16>,
    ids: (Option<String>, Option<String>),
}

/// The DVA's authorization server.
pub struct Service {
    settings: MedmijSettings,
    lists: Arc<Lists>,
    oidc: Option<Provider>,
    store: Store,
    writer: Writer,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    callback_url: String,
    secure_cookies: bool,
}

/// What the service is built from.
pub struct Parts {
    /// `[medmij]`.
    pub settings: MedmijSettings,
    /// The lists, loaded.
    pub lists: Arc<Lists>,
    /// The store.
    pub store: Store,
    /// The audit writer.
    pub writer: Writer,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Our public URL (the OpenID provider's redirect back, the cookie's `Secure`).
    pub public_url: url::Url,
}

impl Service {
    /// The service; reads the OpenID client secret.
    pub fn new(p: Parts) -> Result<Self, String> {
        let oidc = match &p.settings.login {
            Login::Oidc(o) => Some(Provider::new(o)?),
            Login::DangerousDev => None,
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(p.settings.receptiveness_timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            callback_url: format!(
                "{}{CALLBACK_PATH}",
                p.public_url.as_str().trim_end_matches('/')
            ),
            secure_cookies: p.public_url.scheme() == "https",
            settings: p.settings,
            lists: p.lists,
            oidc,
            store: p.store,
            writer: p.writer,
            clock: p.clock,
            http,
        })
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &MedmijSettings {
        &self.settings
    }

    /// The lists.
    #[must_use]
    pub fn lists(&self) -> &Arc<Lists> {
        &self.lists
    }

    /// Whether the session cookie is `Secure` (our public URL is https).
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// SIGHUP: the lists and the OpenID client secret are read again.
    pub async fn reload(&self) {
        self.lists.refresh().await;
        if let Some(o) = &self.oidc {
            o.reload_secret();
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            aanbieder: &self.settings.aanbieder_display_name,
            dev_login: self.settings.dev_login(),
        }
    }

    /// The audit record of one step; written durably before the answer.
    async fn audit(&self, req: &Incoming, ev: Event<'_>) -> Result<(), ()> {
        let record = self.record(req, ev);
        self.writer.write(record).await.map_err(|e| {
            tracing::error!(error = %e, request_id = %req.request_id, "audit log unavailable: refusing to answer");
        })
    }

    fn record(&self, req: &Incoming, ev: Event<'_>) -> AuditRecord {
        AuditRecord {
            time: crate::audit::audit_time(self.clock.now()),
            request_id: req.request_id.clone(),
            kind: AUDIT_KIND.into(),
            requester: ev.requester.to_owned(),
            user: None,
            purpose: ev
                .gegevensdienst
                .map(MedmijSettings::policy_of)
                .unwrap_or_default(),
            bsn: ev.bsn.cloned(),
            method: req.method.clone(),
            path: crate::audit::redact_bsns(&redact_secrets(&req.target))
                .chars()
                .take(2048)
                .collect(),
            decision: ev.decision.into(),
            rule: ev.rule,
            status: ev.status,
            upstream_status: ev.upstream_status,
            client_cert: req.cert.clone(),
            jwt: None,
            custodian: None,
            trace: Some(AuditTrace {
                event: ev.name.into(),
                request_id: ev.ids.0,
                correlation_id: ev.ids.1,
            }),
        }
    }

    fn unavailable(&self, req: &Incoming) -> Reply {
        Reply::page(
            PageKind::Unavailable,
            pages::error(
                self.frame(),
                "De dienst is tijdelijk niet beschikbaar.",
                &req.request_id,
                None,
            ),
            None,
        )
    }

    fn sharing<'a>(&self, a: &'a Authorized, names: &'a str) -> Sharing<'a> {
        Sharing {
            pgo: &a.client_name,
            gegevensdienst: names,
        }
    }

    fn gegevensdienst_name(&self, id: &str) -> String {
        self.lists
            .current()
            .names
            .weergavenaam(id)
            .map_or_else(|| format!("gegevensdienst {id}"), str::to_owned)
    }

    /// `GET /medmij/authorize`.
    pub async fn authorize(
        &self,
        req: &Incoming,
        query: &str,
        header_ids: (Option<String>, Option<String>),
    ) -> Reply {
        let lists = self.lists.current();
        let ctx = authorize::Context {
            clients: &lists.clients,
            whitelist: &lists.whitelist,
            aanbieder: &self.settings.aanbieder,
            gegevensdiensten: &self.settings.gegevensdiensten,
        };
        // check: the client and its redirect_uri first (else no redirect), then the rest.
        let a = match authorize::check(query, &ctx, header_ids.clone()) {
            Ok(a) => a,
            Err(refusal) => {
                let ids = authorize::ids(&authorize::parameters(query), header_ids);
                return self.refuse_authorization(req, refusal, ids).await;
            }
        };
        let ids = (a.request_id.clone(), a.correlation_id.clone());
        // receive_authorization_request: the request is valid.
        let ev = |name, status| Event {
            name,
            requester: &a.client_id,
            gegevensdienst: Some(&a.gegevensdienst),
            bsn: None,
            decision: "permit",
            rule: a.scope.clone(),
            status,
            upstream_status: None,
            ids: ids.clone(),
        };
        if self
            .audit(req, ev("receive_authorization_request", 200))
            .await
            .is_err()
        {
            return self.unavailable(req);
        }
        // session: a new one, its id in the browser's cookie.
        let id = random_secret();
        let session = Session {
            request: a.clone(),
            csrf: random_secret(),
            step: Step::Landing,
            login: None,
            bsn: None,
            expires_at: self.now() + SESSION_SECONDS,
        };
        if self.save(&hash_secret(&id), &session).await.is_err() {
            return self.unavailable(req);
        }
        // show_landing_page.
        if self.audit(req, ev("show_landing_page", 200)).await.is_err() {
            return self.unavailable(req);
        }
        self.landing(&session, None, PageKind::Shown)
            .cookie(CookieOp::Set(id))
    }

    fn landing(&self, s: &Session, error: Option<&str>, kind: PageKind) -> Reply {
        let name = self.gegevensdienst_name(&s.request.gegevensdienst);
        Reply::page(
            kind,
            pages::landing(
                self.frame(),
                self.sharing(&s.request, &name),
                &s.csrf,
                self.settings.dev_login(),
                error,
            ),
            origin(&s.request.redirect_uri),
        )
    }

    async fn refuse_authorization(
        &self,
        req: &Incoming,
        refusal: AuthzRefusal,
        ids: (Option<String>, Option<String>),
    ) -> Reply {
        let (requester, status) = match &refusal {
            AuthzRefusal::NoRedirect { client_id, .. } => {
                (client_id.clone().unwrap_or_default(), 400)
            }
            AuthzRefusal::Redirect { client_id, .. } => (client_id.clone(), 303),
        };
        // authorization_request_error.
        let ev = Event {
            name: "authorization_request_error",
            requester: &requester,
            gegevensdienst: None,
            bsn: None,
            decision: "deny",
            rule: refusal.reason().to_owned(),
            status,
            upstream_status: None,
            ids: ids.clone(),
        };
        if self.audit(req, ev).await.is_err() {
            return self.unavailable(req);
        }
        match refusal {
            AuthzRefusal::NoRedirect { reason, .. } => Reply::page(
                PageKind::Invalid,
                pages::error(
                    self.frame(),
                    &format!(
                        "Uw PGO heeft een verzoek gestuurd dat wij niet kunnen aannemen ({}).",
                        dutch_reason(reason)
                    ),
                    ids.0.as_deref().unwrap_or(&req.request_id),
                    None,
                ),
                None,
            ),
            AuthzRefusal::Redirect {
                redirect_uri,
                error,
                description,
                state,
                ..
            } => {
                let mut params = vec![("error", error), ("error_description", description)];
                if let Some(s) = state.as_deref() {
                    params.push(("state", s));
                }
                Reply::redirect(authorize::redirect_to(&redirect_uri, &params))
            }
        }
    }

    async fn save(&self, hash: &str, s: &Session) -> Result<(), ()> {
        let json = serde_json::to_string(s).map_err(|_| ())?;
        self.store
            .medmij_session_put(hash, &json, s.expires_at)
            .await
            .map_err(|e| tracing::error!(error = %e, "MedMij session not stored"))
    }

    /// The browser's session, or the page that says it is gone.
    async fn session(
        &self,
        req: &Incoming,
        cookie: Option<&str>,
    ) -> Result<(String, Session), Reply> {
        let gone = || {
            Reply::page(
                PageKind::Invalid,
                pages::error(
                    self.frame(),
                    "Uw sessie is verlopen of onbekend. Start het delen opnieuw vanuit uw PGO.",
                    &req.request_id,
                    None,
                ),
                None,
            )
            .cookie(CookieOp::Clear)
        };
        let Some(id) = cookie.filter(|c| !c.is_empty() && c.len() <= 64) else {
            return Err(gone());
        };
        let hash = hash_secret(id);
        match self.store.medmij_session(&hash, self.now()).await {
            Ok(Some(json)) => match serde_json::from_str::<Session>(&json) {
                Ok(s) => Ok((hash, s)),
                Err(_) => Err(gone()),
            },
            Ok(None) => Err(gone()),
            Err(e) => {
                tracing::error!(error = %e, "MedMij session not read");
                Err(self.unavailable(req))
            }
        }
    }

    fn csrf_ok(s: &Session, form_csrf: Option<&str>) -> bool {
        form_csrf.is_some_and(|c| bool::from(c.as_bytes().ct_eq(s.csrf.as_bytes())))
    }

    fn session_id(hash: &str) -> String {
        hash.chars().take(12).collect()
    }

    fn expired_form(&self, req: &Incoming, hash: &str) -> Reply {
        Reply::page(
            PageKind::Invalid,
            pages::error(
                self.frame(),
                "Dit formulier is niet (meer) geldig. Start het delen opnieuw vanuit uw PGO.",
                &req.request_id,
                Some(&Self::session_id(hash)),
            ),
            None,
        )
    }

    /// `GET /medmij/login`: to the OpenID provider.
    pub async fn login(&self, req: &Incoming, cookie: Option<&str>) -> Reply {
        let (hash, mut s) = match self.session(req, cookie).await {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let Some(provider) = &self.oidc else {
            return self.landing(&s, None, PageKind::Shown);
        };
        if s.step == Step::Confirm {
            return Reply::redirect("/medmij/confirm".into());
        }
        // send_authentication_request: state, nonce and PKCE verifier kept in the session.
        let login = PendingLogin {
            state: random_secret(),
            nonce: random_secret(),
            verifier: random_secret(),
        };
        let url = match provider
            .authorization_url(
                &self.callback_url,
                &login.state,
                &login.nonce,
                &login.verifier,
            )
            .await
        {
            Ok(u) => u,
            Err(e) => return self.login_failed(req, &hash, &s, &e).await,
        };
        s.step = Step::LoggingIn;
        s.login = Some(login);
        if self.save(&hash, &s).await.is_err() {
            return self.unavailable(req);
        }
        let ev = self.event(
            &s,
            "send_authentication_request",
            "permit",
            "openid-connect".into(),
            303,
            None,
        );
        if self.audit(req, ev).await.is_err() {
            return self.unavailable(req);
        }
        Reply::redirect(url)
    }

    fn event<'a>(
        &self,
        s: &'a Session,
        name: &'static str,
        decision: &'static str,
        rule: String,
        status: u16,
        upstream_status: Option<u16>,
    ) -> Event<'a> {
        Event {
            name,
            requester: &s.request.client_id,
            gegevensdienst: Some(&s.request.gegevensdienst),
            bsn: s.bsn.as_ref(),
            decision,
            rule,
            status,
            upstream_status,
            ids: (
                s.request.request_id.clone(),
                s.request.correlation_id.clone(),
            ),
        }
    }

    async fn login_failed(&self, req: &Incoming, hash: &str, s: &Session, e: &OidcError) -> Reply {
        tracing::warn!(error = %e, "MedMij login failed");
        let ev = self.event(s, "authentication_error", "error", e.to_string(), 503, None);
        if self.audit(req, ev).await.is_err() {
            return self.unavailable(req);
        }
        Reply::page(
            PageKind::Unavailable,
            pages::error(
                self.frame(),
                "Inloggen is niet gelukt. Probeer het later opnieuw.",
                s.request.request_id.as_deref().unwrap_or(&req.request_id),
                Some(&Self::session_id(hash)),
            ),
            None,
        )
    }

    /// `GET /medmij/login/callback`: back from the OpenID provider.
    pub async fn callback(&self, req: &Incoming, cookie: Option<&str>, query: &str) -> Reply {
        let (hash, s) = match self.session(req, cookie).await {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let (Some(provider), Some(login), Step::LoggingIn) = (&self.oidc, s.login.clone(), s.step)
        else {
            return self.expired_form(req, &hash);
        };
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        // state: the one we sent, from this browser's session.
        let state_ok = params
            .get("state")
            .is_some_and(|st| bool::from(st.as_bytes().ct_eq(login.state.as_bytes())));
        if !state_ok {
            return self.expired_form(req, &hash);
        }
        if let Some(error) = params.get("error") {
            let shown: String = error
                .chars()
                .filter(char::is_ascii_graphic)
                .take(64)
                .collect();
            if shown == "access_denied" {
                // The person stopped at the provider: the flow ends, the PGO hears access_denied.
                let ev = self.event(
                    &s,
                    "authentication_error",
                    "deny",
                    "the person stopped logging in".into(),
                    200,
                    None,
                );
                if self.audit(req, ev).await.is_err() {
                    return self.unavailable(req);
                }
                let _ = self.store.medmij_session_delete(&hash).await;
                return self.stop_page(&s, false, STOPPED, "access_denied", PageKind::Shown);
            }
            return self
                .login_failed(req, &hash, &s, &OidcError::Refused(shown))
                .await;
        }
        let Some(code) = params.get("code") else {
            return self.expired_form(req, &hash);
        };
        // receive_authentication_response: the ID token checked, the BSN from its claim.
        match provider
            .login(
                code,
                &self.callback_url,
                &login.verifier,
                &login.nonce,
                self.now(),
            )
            .await
        {
            Ok(bsn) => self.logged_in(req, hash, s, bsn).await,
            Err(e) => self.login_failed(req, &hash, &s, &e).await,
        }
    }

    /// `POST /medmij/login/dev`: the development login (a test BSN).
    pub async fn dev_login(&self, req: &Incoming, cookie: Option<&str>, form: &[u8]) -> Reply {
        let (hash, s) = match self.session(req, cookie).await {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let form = Form::parse(form);
        if !self.settings.dev_login() || !Self::csrf_ok(&s, form.csrf.as_deref()) {
            return self.expired_form(req, &hash);
        }
        match form.bsn.as_deref().map(str::trim).map(Bsn::parse) {
            Some(Ok(bsn)) => self.logged_in(req, hash, s, bsn).await,
            _ => {
                let ev = self.event(
                    &s,
                    "authentication_error",
                    "deny",
                    "dev-login: not a valid BSN".into(),
                    400,
                    None,
                );
                if self.audit(req, ev).await.is_err() {
                    return self.unavailable(req);
                }
                self.landing(
                    &s,
                    Some("Dit is geen geldig BSN: vul 9 cijfers in die de elfproef doorstaan."),
                    PageKind::Invalid,
                )
            }
        }
    }

    /// After the login: the audit record, the receptiveness check, then the confirmation (or the
    /// page that says why not).
    async fn logged_in(&self, req: &Incoming, hash: String, mut s: Session, bsn: Bsn) -> Reply {
        s.bsn = Some(bsn.clone());
        s.login = None;
        let how = if self.oidc.is_some() {
            "openid-connect"
        } else {
            "dangerous-dev-login"
        };
        let ev = self.event(
            &s,
            "receive_authentication_response",
            "permit",
            how.into(),
            200,
            None,
        );
        if self.audit(req, ev).await.is_err() {
            return self.unavailable(req);
        }
        // receptiveness: configuration, then the source system's check.
        let outcome = self.receptive(&bsn, &s.request.gegevensdienst).await;
        let (decision, rule, status, upstream) = match &outcome {
            Receptive::Yes(u) => ("permit", "receptive".to_owned(), 303, *u),
            Receptive::No(why, u) => ("deny", format!("not receptive: {why}"), 200, *u),
            Receptive::Failed(why) => (
                "error",
                format!("receptiveness check failed: {why}"),
                503,
                None,
            ),
        };
        let ev = self.event(&s, "receptiveness_check", decision, rule, status, upstream);
        if self.audit(req, ev).await.is_err() {
            return self.unavailable(req);
        }
        match outcome {
            Receptive::Yes(_) => {
                s.step = Step::Confirm;
                if self.save(&hash, &s).await.is_err() {
                    return self.unavailable(req);
                }
                Reply::redirect("/medmij/confirm".into())
            }
            Receptive::No(why, _) => {
                let _ = self.store.medmij_session_delete(&hash).await;
                self.stop_page(&s, true, &why, "access_denied", PageKind::Shown)
            }
            Receptive::Failed(_) => {
                let _ = self.store.medmij_session_delete(&hash).await;
                self.stop_page(
                    &s,
                    true,
                    "Dit kon nu niet worden nagegaan. Probeer het later opnieuw.",
                    "temporarily_unavailable",
                    PageKind::Unavailable,
                )
            }
        }
    }

    /// Exception Delen 1: why the flow stops here, with the way back to the PGO carrying `error`.
    fn stop_page(
        &self,
        s: &Session,
        receptive_problem: bool,
        why: &str,
        error: &str,
        kind: PageKind,
    ) -> Reply {
        let back = authorize::redirect_to(
            &s.request.redirect_uri,
            &[("error", error), ("state", &s.request.state)],
        );
        let name = self.gegevensdienst_name(&s.request.gegevensdienst);
        Reply::page(
            kind,
            pages::stopped(
                self.frame(),
                self.sharing(&s.request, &name),
                receptive_problem,
                why,
                &back,
            ),
            origin(&s.request.redirect_uri),
        )
        .cookie(CookieOp::Clear)
    }

    async fn receptive(&self, bsn: &Bsn, gegevensdienst: &str) -> Receptive {
        if !self.settings.receptive.iter().any(|g| g == gegevensdienst) {
            return Receptive::No(
                format!(
                    "{} neemt deze gegevens op dit moment niet via MedMij aan.",
                    self.settings.aanbieder_display_name
                ),
                None,
            );
        }
        let Some(url) = &self.settings.receptiveness_url else {
            return Receptive::Yes(None);
        };
        let body = serde_json::json!({"bsn": bsn.as_str(), "gegevensdienst": gegevensdienst});
        let sent = tokio::time::timeout(
            self.settings.receptiveness_timeout + Duration::from_millis(100),
            self.http.post(url.clone()).json(&body).send(),
        )
        .await;
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Receptive::Failed(if e.is_timeout() {
                    "timeout".into()
                } else {
                    "unreachable".into()
                })
            }
            Err(_) => return Receptive::Failed("timeout".into()),
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Receptive::Failed(format!("status {status}"));
        }
        let Ok(answer) = response.json::<serde_json::Value>().await else {
            return Receptive::Failed("answer is not JSON".into());
        };
        match answer.get("receptive").and_then(serde_json::Value::as_bool) {
            Some(true) => Receptive::Yes(Some(status)),
            Some(false) => {
                let reason = answer
                    .get("reason")
                    .and_then(serde_json::Value::as_str)
                    .map(|r| {
                        r.chars()
                            .filter(|c| !c.is_control())
                            .take(300)
                            .collect::<String>()
                    })
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| {
                        format!(
                            "{} kan deze gegevens nu niet van u aannemen.",
                            self.settings.aanbieder_display_name
                        )
                    });
                Receptive::No(reason, Some(status))
            }
            None => Receptive::Failed("answer has no receptive: true|false".into()),
        }
    }

    /// `GET /medmij/confirm`: the confirmation page.
    pub async fn confirm_page(&self, req: &Incoming, cookie: Option<&str>) -> Reply {
        let (hash, s) = match self.session(req, cookie).await {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        if s.step != Step::Confirm || s.bsn.is_none() {
            return self.expired_form(req, &hash);
        }
        let ev = self.event(
            &s,
            "show_confirmation_page",
            "permit",
            s.request.scope.clone(),
            200,
            None,
        );
        if self.audit(req, ev).await.is_err() {
            return self.unavailable(req);
        }
        let name = self.gegevensdienst_name(&s.request.gegevensdienst);
        Reply::page(
            PageKind::Shown,
            pages::confirmation(self.frame(), self.sharing(&s.request, &name), &s.csrf),
            origin(&s.request.redirect_uri),
        )
    }

    /// `POST /medmij/confirm`: "Ja" (after login) issues the code; "Nee" (any time) answers
    /// `access_denied`.
    pub async fn confirm(&self, req: &Incoming, cookie: Option<&str>, form: &[u8]) -> Reply {
        let (hash, s) = match self.session(req, cookie).await {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let form = Form::parse(form);
        if !Self::csrf_ok(&s, form.csrf.as_deref()) {
            return self.expired_form(req, &hash);
        }
        let a = &s.request;
        match (form.keuze.as_deref(), s.step, &s.bsn) {
            (Some("ja"), Step::Confirm, Some(bsn)) => {
                // confirmation_given: a single-use code, stored with its audit record.
                let code = random_secret();
                let now = self.now();
                let write = MedmijWrite::Code(MedmijCode {
                    hash: hash_secret(&code),
                    client_id: a.client_id.clone(),
                    redirect_uri: a.redirect_uri.clone(),
                    aanbieder: self.settings.aanbieder.clone(),
                    gegevensdienst: a.gegevensdienst.clone(),
                    code_challenge: a.code_challenge.clone(),
                    bsn: bsn.clone(),
                    correlation_id: a.correlation_id.clone(),
                    issued_at: now,
                    expires_at: now + CODE_SECONDS,
                    used: false,
                });
                let record = self.record(
                    req,
                    self.event(
                        &s,
                        "confirmation_given",
                        "permit",
                        "code-issued".into(),
                        303,
                        None,
                    ),
                );
                if let Err(e) = self.writer.write_medmij(write, record).await {
                    tracing::error!(error = %e, "audit log unavailable: no code issued");
                    return self.unavailable(req);
                }
                let _ = self.store.medmij_session_delete(&hash).await;
                Reply::redirect(authorize::redirect_to(
                    &a.redirect_uri,
                    &[("code", &code), ("state", &a.state)],
                ))
                .cookie(CookieOp::Clear)
            }
            (Some("nee"), _, _) => {
                // confirmation_refused: back to the PGO with access_denied.
                let ev = self.event(
                    &s,
                    "confirmation_refused",
                    "deny",
                    "the person said no".into(),
                    303,
                    None,
                );
                if self.audit(req, ev).await.is_err() {
                    return self.unavailable(req);
                }
                let _ = self.store.medmij_session_delete(&hash).await;
                Reply::redirect(authorize::redirect_to(
                    &a.redirect_uri,
                    &[
                        ("error", "access_denied"),
                        ("error_description", "the person did not confirm"),
                        ("state", &a.state),
                    ],
                ))
                .cookie(CookieOp::Clear)
            }
            _ => self.expired_form(req, &hash),
        }
    }

    /// `POST /medmij/token`: the code for an access token.
    pub async fn token(
        &self,
        req: &Incoming,
        media_type: &str,
        body: &[u8],
        cert_names: Option<&[String]>,
        header_ids: (Option<String>, Option<String>),
    ) -> Result<TokenAnswer, TokenError> {
        let now = self.now();
        let refuse = |client: &str, code: Option<&MedmijCode>, e: TokenError| {
            let ev = Event {
                name: "token_request_error",
                requester: client,
                gegevensdienst: code.map(|c| c.gegevensdienst.as_str()),
                bsn: code.map(|c| &c.bsn),
                decision: "deny",
                rule: e.to_string(),
                status: if matches!(e, TokenError::InvalidClient(_)) {
                    401
                } else {
                    400
                },
                upstream_status: None,
                ids: (
                    header_ids.0.clone(),
                    header_ids
                        .1
                        .clone()
                        .or_else(|| code.and_then(|c| c.correlation_id.clone())),
                ),
            };
            (self.record(req, ev), e)
        };
        // parse: form-encoded, grant_type=authorization_code, each parameter once.
        let request = match token::parse(media_type, body) {
            Ok(r) => r,
            Err(e) => return self.refused(refuse("", None, e)).await,
        };
        let client = request.client_id.clone();
        let shown_client = if client.len() <= 253
            && client
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            client.as_str()
        } else {
            ""
        };
        // the client: on the lists, and (when required) its TLS certificate names it.
        let lists = self.lists.current();
        if lists.clients.client(&client).is_none() || !lists.whitelist.contains(&client) {
            return self
                .refused(refuse(
                    shown_client,
                    None,
                    TokenError::InvalidClient(
                        "client_id is not on the OAuth client list and the whitelist",
                    ),
                ))
                .await;
        }
        if self.settings.require_client_certificate
            && !cert_names
                .is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(&client)))
        {
            return self
                .refused(refuse(
                    shown_client,
                    None,
                    TokenError::InvalidClient(
                        "a client certificate for the client_id's host name is required",
                    ),
                ))
                .await;
        }
        // the code: known, unused (a second use revokes its token), then its checks.
        let code_hash = hash_secret(&request.code);
        let code = match self.store.medmij_code(&code_hash).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return self
                    .refused(refuse(
                        shown_client,
                        None,
                        TokenError::InvalidGrant("the code is unknown"),
                    ))
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "MedMij code not read");
                return Err(TokenError::Unavailable);
            }
        };
        if code.used {
            let (record, e) = refuse(
                shown_client,
                Some(&code),
                TokenError::InvalidGrant("the code has been used; the token it issued is revoked"),
            );
            return match self
                .writer
                .write_medmij(MedmijWrite::Revoke { code_hash }, record)
                .await
            {
                Ok(_) => Err(e),
                Err(_) => Err(TokenError::Unavailable),
            };
        }
        if let Err(e) = token::check_code(&code, &request, now) {
            return self.refused(refuse(shown_client, Some(&code), e)).await;
        }
        // the token: opaque, stored as its hash with the code's person and gegevensdienst.
        let access_token = random_secret();
        let lifetime = self.settings.token_lifetime.as_secs();
        let record = self.record(
            req,
            Event {
                name: "token_issued",
                requester: &code.client_id,
                gegevensdienst: Some(&code.gegevensdienst),
                bsn: Some(&code.bsn),
                decision: "permit",
                rule: "token-issued".into(),
                status: 200,
                upstream_status: None,
                ids: (
                    header_ids.0.clone(),
                    header_ids.1.clone().or_else(|| code.correlation_id.clone()),
                ),
            },
        );
        let write = MedmijWrite::Redeem {
            code_hash,
            token: MedmijToken {
                hash: hash_secret(&access_token),
                client_id: code.client_id.clone(),
                aanbieder: code.aanbieder.clone(),
                gegevensdienst: code.gegevensdienst.clone(),
                bsn: code.bsn.clone(),
                correlation_id: code.correlation_id.clone(),
                issued_at: now,
                expires_at: now + i64::try_from(lifetime).unwrap_or(i64::MAX / 2),
                revoked: false,
            },
            now,
        };
        match self.writer.write_medmij(write, record).await {
            Ok(MedmijOutcome::Done) => Ok(TokenAnswer {
                access_token,
                token_type: "Bearer",
                expires_in: lifetime,
                scope: format!("{}~{}", code.aanbieder, code.gegevensdienst),
            }),
            // Redeemed meanwhile by another request: this one revoked what that one got.
            Ok(MedmijOutcome::Spent) => Err(TokenError::InvalidGrant(
                "the code has been used; the token it issued is revoked",
            )),
            Err(e) => {
                tracing::error!(error = %e, "audit log unavailable: no token issued");
                Err(TokenError::Unavailable)
            }
        }
    }

    async fn refused(
        &self,
        (record, e): (AuditRecord, TokenError),
    ) -> Result<TokenAnswer, TokenError> {
        match self.writer.write(record).await {
            Ok(()) => Err(e),
            Err(_) => Err(TokenError::Unavailable),
        }
    }
}

/// The form fields the pages post.
#[derive(Default)]
struct Form {
    csrf: Option<String>,
    bsn: Option<String>,
    keuze: Option<String>,
}

impl Form {
    fn parse(body: &[u8]) -> Self {
        let mut f = Form::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            let slot = match k.as_ref() {
                "csrf" => &mut f.csrf,
                "bsn" => &mut f.bsn,
                "keuze" => &mut f.keuze,
                _ => continue,
            };
            if slot.is_some() {
                // A field given twice: the form was not ours.
                return Form::default();
            }
            *slot = Some(v.into_owned());
        }
        f
    }
}

/// The origin (`https://host[:port]`) of a URL.
fn origin(u: &str) -> Option<String> {
    url::Url::parse(u)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// The path and query as the audit record names it: `code`, `state` and `code_verifier` values
/// replaced (a code is a credential).
fn redact_secrets(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            if matches!(key, "code" | "code_verifier") {
                format!("{key}=***")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// The page's Dutch words for why the client or its `redirect_uri` was refused.
fn dutch_reason(reason: &str) -> &'static str {
    if reason.starts_with("client_id is not on") {
        "de PGO staat niet op de lijsten van MedMij"
    } else if reason.starts_with("client_id") {
        "de PGO is niet goed aangegeven"
    } else {
        "het terugkeeradres van de PGO is niet geldig"
    }
}
