//! Every text the console shows, in Dutch (first) and English: one [`Texts`] struct whose two
//! values are written side by side below, so a text cannot exist in one language only (the
//! build fails). The language comes from the `pw_lang` cookie (the toggle), else from
//! `Accept-Language`, else Dutch.
//!
//! Data is shown as it is stored (DIDs, purposes, rule names, paths): those are identifiers, not
//! texts. Field errors ([`FieldError`]) and errors are texts here too, never a library's English
//! message.

use crate::bsn::BsnError;

macro_rules! texts {
    ($($name:ident: $nl:literal / $en:literal,)*) => {
        /// The console's texts in one language.
        #[derive(Debug)]
        pub struct Texts {
            $(
                #[doc = $en]
                pub $name: &'static str,
            )*
        }
        /// Dutch.
        pub const NL: Texts = Texts { $($name: $nl,)* };
        /// English.
        pub const EN: Texts = Texts { $($name: $en,)* };
    };
}

texts! {
    console: "Beheerconsole" / "Admin console",
    nav_credentials: "Autorisaties" / "Credentials",
    nav_tokens: "Tokens" / "Tokens",
    nav_audit: "Audittrail" / "Audit trail",
    nav_policies: "Beleid" / "Policies",
    nav_health: "Gezondheid" / "Health",
    other_language: "English" / "Nederlands",
    other_language_title: "Switch to English" / "Schakel over naar Nederlands",
    logged_in_as: "Ingelogd als" / "Signed in as",
    operator_loopback: "lokaal (loopback, zonder login)" / "local (loopback, no login)",
    operator_certificate: "certificaat" / "certificate",
    logout: "Uitloggen" / "Sign out",
    custodian: "Bronhouder" / "Custodian",
    version: "Versie" / "Version",
    copy: "Kopiëren" / "Copy",
    copied: "Gekopieerd" / "Copied",
    yes: "ja" / "yes",
    no: "nee" / "no",
    any: "alle" / "any",
    back: "Terug" / "Back",
    cancel: "Annuleren" / "Cancel",
    filter: "Filteren" / "Filter",
    clear_filter: "Filter wissen" / "Clear filter",
    none_found: "Niets gevonden." / "Nothing found.",
    shown: "{n} getoond" / "{n} shown",
    form_has_errors: "Het formulier bevat fouten; er is niets gewijzigd." / "The form has errors; nothing was changed.",
    filter_has_errors: "Het filter bevat fouten; pas het aan." / "The filter has errors; please correct it.",

    credentials_title: "Autorisaties" / "Credentials",
    credentials_intro: "De autorisaties (NutsAuthorizationCredential) die deze bronhouder heeft uitgegeven. BSN's zijn in deze lijst gemaskeerd; het volledige BSN staat op de detailpagina." / "The authorization credentials (NutsAuthorizationCredential) this custodian issued. BSNs are masked in this list; the full BSN is on the details page.",
    new_credential: "Nieuwe autorisatie" / "New credential",
    subject_did: "DID van de aanvrager" / "Requester DID",
    purpose: "Doel (purposeOfUse)" / "Purpose (purposeOfUse)",
    status: "Status" / "Status",
    bsn: "BSN" / "BSN",
    status_active: "actief" / "active",
    status_revoked: "ingetrokken" / "revoked",
    status_expired: "verlopen" / "expired",
    col_id: "Kenmerk" / "Id",
    col_issued: "Uitgegeven" / "Issued",
    col_expires: "Geldig tot" / "Valid until",
    consent: "Toestemming" / "Consent",
    consent_implied: "veronderstelde toestemming (implied)" / "implied consent",
    consent_explicit: "expliciete toestemming vooraf (explicit)" / "explicit consent",
    no_expiry: "geen einddatum" / "no end date",

    issue_title: "Autorisatie uitgeven" / "Issue a credential",
    issue_intro: "Met dezelfde controles als poortwachter credential issue: een geldige DID, een BSN dat de elfproef doorstaat, een doel met beleid en de regels van dat beleid voor toestemming en einddatum." / "With the same checks as poortwachter credential issue: a valid DID, a BSN that passes the 11-check, a purpose with a policy and that policy's rules for consent and end date.",
    expires: "Geldig tot (einde van de dag, UTC)" / "Valid until (end of the day, UTC)",
    expires_hint: "JJJJ-MM-DD. Leeg: geen einddatum (alleen waar het beleid dat toestaat)." / "YYYY-MM-DD. Empty: no end date (only where the policy allows it).",
    purpose_hint: "Een doel waarvoor beleid geladen is." / "A purpose with a loaded policy.",
    resources: "Resources (optioneel)" / "Resources (optional)",
    resources_hint: "Eén per regel: PAD:OPERATIE,OPERATIE, bijvoorbeeld /Observation:read." / "One per line: PATH:OP,OP, e.g. /Observation:read.",
    issue_button: "Uitgeven" / "Issue",

    credential_title: "Autorisatie" / "Credential",
    issuer: "Uitgever" / "Issuer",
    revoked_at: "Ingetrokken op" / "Revoked at",
    reason: "Reden" / "Reason",
    credential_json: "De ondertekende credential (JSON)" / "The signed credential (JSON)",
    revoke_title: "Intrekken" / "Revoke",
    revoke_intro: "Intrekken is definitief: tokens op deze autorisatie werken meteen niet meer, ook op de andere instanties." / "Revoking is final: tokens on this credential stop working at once, on the other instances too.",
    revoke_button: "Intrekken…" / "Revoke…",
    confirm_revoke_title: "Intrekken bevestigen" / "Confirm the revocation",
    confirm_revoke_text: "Weet u zeker dat u deze autorisatie wilt intrekken? Dit kan niet ongedaan worden gemaakt." / "Are you sure you want to revoke this credential? This cannot be undone.",
    confirm_revoke_button: "Ja, definitief intrekken" / "Yes, revoke for good",

    tokens_title: "Tokens" / "Tokens",
    tokens_intro: "Access tokens die nog niet verlopen zijn. Een token beëindigen trekt de autorisatie niet in: de aanvrager kan een nieuw token vragen. Een beëindigd token werkt meteen niet meer, ook op de andere instanties." / "Access tokens not yet expired. Ending a token does not revoke its credential: the requester may ask for a new token. An ended token stops working at once, on the other instances too.",
    live_per_requester: "Live tokens per aanvrager en doel" / "Live tokens per requester and purpose",
    requester: "Aanvrager" / "Requester",
    count: "Aantal" / "Count",
    live_tokens: "Live tokens (nieuwste eerst)" / "Live tokens (newest first)",
    token_hash: "Token (begin van de SHA-256)" / "Token (start of its SHA-256)",
    user: "Gebruiker" / "User",
    end_token: "Beëindigen" / "End",
    end_token_confirm: "Dit token beëindigen? De autorisatie blijft geldig." / "End this token? The credential stays valid.",
    no_live_tokens: "Geen live tokens." / "No live tokens.",
    remaining: "nog {n} s" / "{n} s left",

    audit_title: "Audittrail (NEN 7513)" / "Audit trail (NEN 7513)",
    audit_intro: "Elk tokenverzoek en elk doorgestuurd verzoek, toegestaan of niet, en elke wijziging in deze console. Voor een inzageverzoek van een patiënt: filter op BSN en exporteer." / "Every token request and every proxied request, permitted or not, and every change made in this console. For a patient's request to see who accessed their data: filter by BSN and export.",
    user_uzi: "Gebruiker (UZI-nummer)" / "User (UZI number)",
    decision: "Besluit" / "Decision",
    decision_permit: "toegestaan" / "permitted",
    decision_deny: "geweigerd" / "denied",
    decision_error: "fout" / "error",
    since: "Vanaf (UTC)" / "From (UTC)",
    until: "Tot (UTC)" / "Until (UTC)",
    date_hint: "JJJJ-MM-DD of JJJJ-MM-DDTUU:MM" / "YYYY-MM-DD or YYYY-MM-DDTHH:MM",
    chain_state: "Staat van de hashketen" / "State of the hash chain",
    chain_intact: "Intact: {n} records gecontroleerd." / "Intact: {n} records checked.",
    chain_broken: "GEBROKEN bij record {seq}." / "BROKEN at record {seq}.",
    chain_checked_at: "Gecontroleerd op" / "Checked at",
    chain_never: "Nog niet gecontroleerd sinds de start van deze instantie." / "Not checked since this instance started.",
    chain_check_now: "Keten nu controleren" / "Check the chain now",
    anchor: "Huidig anker" / "Current anchor",
    anchor_hint: "Bewaar het buiten de database: poortwachter audit verify --anchor vindt dan later ook records die aan het eind verwijderd zijn." / "Keep it outside the database: poortwachter audit verify --anchor then also finds records deleted at the end.",
    export_jsonl: "Exporteren als JSON lines" / "Export as JSON lines",
    export_csv: "Exporteren als CSV" / "Export as CSV",
    export_hint: "De export bevat alle records van dit filter, met volledig BSN." / "The export holds every record of this filter, with the full BSN.",
    col_time: "Tijd (UTC)" / "Time (UTC)",
    col_kind: "Soort" / "Kind",
    col_request: "Verzoek" / "Request",
    kind_token: "tokenverzoek" / "token request",
    kind_proxy: "doorgestuurd verzoek" / "proxied request",
    kind_console: "console" / "console",
    older: "Oudere records" / "Older records",
    newest: "Nieuwste records" / "Newest records",
    record_title: "Auditrecord" / "Audit record",
    request_id: "Verzoek-id" / "Request id",
    method: "Methode" / "Method",
    path: "Pad" / "Path",
    rule: "Regel of reden" / "Rule or reason",
    status_to_client: "Status aan de client" / "Status answered",
    upstream_status: "Status van het bronsysteem" / "Source system status",
    client_cert: "Clientcertificaat" / "Client certificate",
    prev_hash: "Vorige hash" / "Previous hash",
    hash: "Hash" / "Hash",
    uzi: "UZI-nummer" / "UZI number",
    name: "Naam" / "Name",
    role: "Rol" / "Role",
    details: "Details" / "Details",

    policies_title: "Beleid" / "Policies",
    policies_intro: "Eén beleidsbestand per doel (purposeOfUse). Alles wat een beleid niet noemt, wordt geweigerd." / "One policy file per purpose (purposeOfUse). Everything a policy does not name is refused.",
    description: "Omschrijving" / "Description",
    authenticator: "Manier van binnenkomen" / "Authenticator",
    token_lifetime: "Levensduur van een token" / "Token lifetime",
    seconds: "{n} seconden" / "{n} seconds",
    user_identity_required: "Gebruikersidentiteit verplicht" / "User identity required",
    consent_types: "Toegestane toestemming" / "Allowed consent",
    expiration: "Einddatum" / "End date",
    expiration_required: "verplicht" / "required",
    expiration_optional: "niet verplicht" / "not required",
    expiration_except: "behalve bij" / "except for",
    max_validity: "Langste geldigheid" / "Longest validity",
    days: "{n} dagen" / "{n} days",
    no_limit: "geen grens" / "no limit",
    rules: "Toegestane verzoeken" / "Allowed requests",
    parameters: "Parameters" / "Parameters",
    binds_patients: "koppelt de gevonden patiënten aan het token" / "binds the patients found to the token",
    response_format: "Antwoorden" / "Answers",
    response_fhir: "FHIR: elke resource moet van de patiënt van het token zijn" / "FHIR: every resource must belong to the token's patient",
    response_passthrough: "doorgegeven zoals ze zijn" / "passed through as they are",
    non_patient: "Resources zonder patiënt" / "Resources of no patient",
    param_equals: "precies" / "exactly",
    param_one_of: "één van" / "one of",
    param_max: "een getal van 1 tot en met {n}" / "a number from 1 to {n}",
    param_allowed_patient: "een Patient-id van het token" / "a Patient id of the token",
    param_token_bsn_identifier: "de BSN-identifier van het token" / "the token's BSN identifier",
    param_token_bsn: "het BSN van het token (niet doorgestuurd)" / "the token's BSN (not forwarded)",
    param_fhir_id: "een FHIR-id" / "a FHIR id",
    param_optional: "(mag ontbreken)" / "(may be absent)",
    param_query: "query" / "query",
    param_form: "formulier" / "form",
    try_title: "Probeer een verzoek" / "Try a request",
    try_intro: "Hetzelfde besluit als poortwachter policy check, zonder dat er iets wordt doorgestuurd." / "The same decision as poortwachter policy check, without forwarding anything.",
    try_request: "Verzoek (METHODE /pad?query)" / "Request (METHOD /path?query)",
    try_form: "Formulierbody (bij een POST)" / "Form body (with a POST)",
    try_bsn: "BSN van het token" / "The token's BSN",
    try_patients: "Patient-id's van het token (met komma's)" / "The token's Patient ids (comma-separated)",
    try_button: "Beslissen" / "Decide",
    verdict_permit: "Toegestaan" / "Permitted",
    verdict_deny: "Geweigerd" / "Denied",
    verdict_malformed: "Misvormd verzoek" / "Malformed request",

    health_title: "Gezondheid" / "Health",
    this_instance: "Deze instantie" / "This instance",
    instance_id: "Id" / "Id",
    host: "Host" / "Host",
    started: "Gestart" / "Started",
    database: "Database" / "Database",
    db_ok: "bereikbaar" / "reachable",
    db_down: "onbereikbaar" / "unreachable",
    audit_writer: "Schrijver van de audittrail" / "Audit log writer",
    writer_ok: "gezond" / "healthy",
    writer_failed: "laatste commit mislukt: de proxy stuurt niets door" / "last commit failed: the proxy forwards nothing",
    replicas: "Instanties op deze database" / "Instances on this database",
    internal_addr: "Intern adres" / "Internal address",
    last_seen: "Laatst gezien" / "Last seen",
    ago: "{n} s geleden" / "{n} s ago",
    alive: "actief" / "alive",
    gone: "weg" / "gone",
    this_one: "deze" / "this one",
    revocations_held: "Intrekkingen bekend" / "Revocations held",
    ended_held: "Beëindigde tokens bekend" / "Ended tokens held",
    propagation: "Verspreiding van intrekkingen" / "Revocation propagation",
    propagation_pg: "PostgreSQL LISTEN/NOTIFY (milliseconden), en elke {ms} ms een controle in de database." / "PostgreSQL LISTEN/NOTIFY (milliseconds), and a check in the database every {ms} ms.",
    propagation_sqlite: "Elke {ms} ms gelezen uit de database." / "Read from the database every {ms} ms.",
    in_store: "In de database" / "In the database",
    up_to_date: "bij" / "up to date",
    behind: "{n} achter" / "{n} behind",
    metrics_title: "Uit /metrics (sinds de start van deze instantie)" / "From /metrics (since this instance started)",
    requests_total: "Verzoeken" / "Requests",
    tokens_issued: "Uitgegeven tokens" / "Tokens issued",
    upstream_errors: "Fouten van het bronsysteem" / "Source system errors",
    active_tokens: "Niet verlopen tokens" / "Unexpired tokens",
    revocations_count: "Intrekkingen" / "Revocations",
    proxy_latency: "Proxy-latentie p50 / p99" / "Proxy latency p50 / p99",
    token_latency: "Token-latentie p50 / p99" / "Token latency p50 / p99",
    not_measured: "nog niet gemeten" / "not measured yet",
    chart_title: "Besluiten per uur, laatste {n} dagen" / "Decisions per hour, last {n} days",
    chart_empty: "Nog geen verzoeken in deze periode." / "No requests in this period yet.",
    chart_no_purpose: "(geen doel)" / "(no purpose)",
    chart_busiest: "drukste uur: {n}" / "busiest hour: {n}",
    total: "totaal" / "total",

    login_title: "Inloggen" / "Sign in",
    login_intro: "Log in met een consoleaccount (poortwachter admin set-password)." / "Sign in with a console account (poortwachter admin set-password).",
    login_cert_hint: "Een clientcertificaat uit [console] client_certs logt vanzelf in." / "A client certificate listed in [console] client_certs signs in by itself.",
    account_name: "Naam" / "Name",
    password: "Wachtwoord" / "Password",
    login_button: "Inloggen" / "Sign in",

    flash_issued: "Autorisatie uitgegeven." / "Credential issued.",
    flash_revoked: "Autorisatie ingetrokken; tokens erop werken niet meer." / "Credential revoked; its tokens no longer work.",
    flash_already_revoked: "Deze autorisatie was al ingetrokken; de eerste intrekking blijft staan." / "This credential was revoked before; the first revocation stands.",
    flash_token_ended: "Token beëindigd." / "Token ended.",
    flash_token_already_ended: "Dit token was al beëindigd." / "This token was ended before.",
    flash_logged_in: "Ingelogd." / "Signed in.",
    flash_logged_out: "Uitgelogd." / "Signed out.",

    error_title: "Dat lukte niet" / "That did not work",
    err_csrf: "Dit formulier is verlopen of kwam niet van deze console. Er is niets gewijzigd; laad de pagina opnieuw." / "This form expired or did not come from this console. Nothing was changed; reload the page.",
    err_rate_limited: "Te veel mislukte pogingen. Probeer het over een kwartier opnieuw." / "Too many failed attempts. Try again in a quarter of an hour.",
    err_login_failed: "Naam of wachtwoord klopt niet." / "Wrong name or password.",
    err_bad_request: "Dit verzoek kan de console niet lezen." / "The console cannot read this request.",
    err_not_found: "Deze pagina of dit record bestaat niet." / "This page or record does not exist.",
    err_store: "De database is niet bereikbaar. Er is niets gewijzigd." / "The database cannot be reached. Nothing was changed.",
    err_audit: "De audittrail kan niet worden geschreven; daarom is er niets gewijzigd." / "The audit log cannot be written, so nothing was changed.",
    err_body: "Het formulier is te groot of kwam te langzaam binnen." / "The form is too large or arrived too slowly.",
    err_invalid: "Ongeldige invoer." / "Invalid input.",
    err_login_required: "Log eerst in." / "Please sign in first.",

    fe_bsn_format: "Een BSN heeft 9 cijfers." / "A BSN has 9 digits.",
    fe_bsn_checksum: "Dit BSN voldoet niet aan de elfproef." / "This BSN fails the 11-check.",
    fe_did: "Geen geldige DID (bijvoorbeeld did:web:huisarts.example.nl)." / "Not a valid DID (e.g. did:web:huisarts.example.nl).",
    fe_unknown_purpose: "Onbekend doel: hiervoor is geen beleid geladen." / "Unknown purpose: no policy is loaded for it.",
    fe_consent: "Kies veronderstelde of expliciete toestemming." / "Choose implied or explicit consent.",
    fe_consent_not_allowed: "Het beleid van dit doel staat deze toestemming niet toe." / "This purpose's policy does not allow this consent.",
    fe_expires_format: "Verwacht een datum (JJJJ-MM-DD)." / "Expected a date (YYYY-MM-DD).",
    fe_expires_required: "Het beleid vereist een einddatum bij deze toestemming." / "The policy requires an end date with this consent.",
    fe_expires_past: "De einddatum ligt niet in de toekomst." / "The end date is not in the future.",
    fe_validity_too_long: "Langer geldig dan het beleid toestaat (hoogstens {n} dagen)." / "Valid for longer than the policy allows (at most {n} days).",
    fe_resource: "Verwacht PAD:OPERATIE,OPERATIE met een pad dat met / begint." / "Expected PATH:OP,OP with a path that starts with /.",
    fe_reason: "Geef een reden (1 tot 1000 tekens)." / "Give a reason (1 to 1000 characters).",
    fe_status: "Kies actief, ingetrokken of verlopen." / "Choose active, revoked or expired.",
    fe_decision: "Kies toegestaan, geweigerd of fout." / "Choose permitted, denied or error.",
    fe_date: "Verwacht JJJJ-MM-DD of JJJJ-MM-DDTUU:MM." / "Expected YYYY-MM-DD or YYYY-MM-DDTHH:MM.",
    fe_range: "Moet later zijn dan 'Vanaf'." / "Must be later than 'From'.",
    fe_required: "Dit veld is verplicht." / "This field is required.",
    fe_request_line: "Verwacht METHODE /pad?query, bijvoorbeeld GET /Patient/1." / "Expected METHOD /path?query, e.g. GET /Patient/1.",
    fe_issue_failed: "Uitgeven mislukt ({code})." / "Issuing failed ({code}).",
}

/// The console's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Dutch (the default).
    Nl,
    /// English.
    En,
}

impl Lang {
    /// The language tag (`<html lang>`, the cookie).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    /// `nl` or `en`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other one (the toggle).
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Lang::Nl => Lang::En,
            Lang::En => Lang::Nl,
        }
    }

    /// The texts.
    #[must_use]
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Nl => &NL,
            Lang::En => &EN,
        }
    }

    /// The cookie's choice, else the best of `Accept-Language` (by quality, then order), else
    /// Dutch.
    #[must_use]
    pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Self {
        if let Some(lang) = cookie.and_then(Self::parse) {
            return lang;
        }
        let mut best: Option<(u16, Lang)> = None;
        for item in accept_language.unwrap_or_default().split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let primary = tag.split('-').next().unwrap_or_default();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, |q| {
                    q.trim()
                        .parse::<f32>()
                        .map_or(0, |f| (f.clamp(0.0, 1.0) * 1000.0) as u16)
                });
            if q == 0 {
                continue;
            }
            if let Some(lang) = Self::parse(primary) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Lang::Nl, |(_, l)| l)
    }
}

/// Why a form field is refused, shown next to the field in the page's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// A BSN that does not parse.
    Bsn(BsnError),
    /// Not a DID.
    Did,
    /// No policy for the purpose.
    UnknownPurpose,
    /// Consent is neither implied nor explicit.
    Consent,
    /// The policy does not allow this consent.
    ConsentNotAllowed,
    /// The end date does not parse.
    ExpiresFormat,
    /// The policy requires an end date.
    ExpiresRequired,
    /// The end date is not in the future.
    ExpiresPast,
    /// Longer than the policy's maximum (days).
    ValidityTooLong(u32),
    /// A resource line does not parse or is refused.
    Resource,
    /// A revocation needs a reason.
    Reason,
    /// A status filter that is not one.
    Status,
    /// A decision filter that is not one.
    Decision,
    /// A date or time that does not parse.
    DateFormat,
    /// Until is not after since.
    RangeOrder,
    /// An empty required field.
    Required,
    /// Not `METHOD /path?query`.
    RequestLine,
    /// Issuing failed for another reason (a stable code).
    IssueFailed(&'static str),
    /// Wrong name or password.
    LoginFailed,
    /// Too many failed logins.
    RateLimited,
}

impl FieldError {
    /// The text in `lang`.
    #[must_use]
    pub fn text(&self, lang: Lang) -> String {
        let t = lang.texts();
        match self {
            FieldError::Bsn(BsnError::Checksum) => t.fe_bsn_checksum.into(),
            FieldError::Bsn(_) => t.fe_bsn_format.into(),
            FieldError::Did => t.fe_did.into(),
            FieldError::UnknownPurpose => t.fe_unknown_purpose.into(),
            FieldError::Consent => t.fe_consent.into(),
            FieldError::ConsentNotAllowed => t.fe_consent_not_allowed.into(),
            FieldError::ExpiresFormat => t.fe_expires_format.into(),
            FieldError::ExpiresRequired => t.fe_expires_required.into(),
            FieldError::ExpiresPast => t.fe_expires_past.into(),
            FieldError::ValidityTooLong(n) => t.fe_validity_too_long.replace("{n}", &n.to_string()),
            FieldError::Resource => t.fe_resource.into(),
            FieldError::Reason => t.fe_reason.into(),
            FieldError::Status => t.fe_status.into(),
            FieldError::Decision => t.fe_decision.into(),
            FieldError::DateFormat => t.fe_date.into(),
            FieldError::RangeOrder => t.fe_range.into(),
            FieldError::Required => t.fe_required.into(),
            FieldError::RequestLine => t.fe_request_line.into(),
            FieldError::IssueFailed(code) => t.fe_issue_failed.replace("{code}", code),
            FieldError::LoginFailed => t.err_login_failed.into(),
            FieldError::RateLimited => t.err_rate_limited.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_the_cookie_then_accept_language_then_dutch() {
        assert_eq!(Lang::choose(None, None), Lang::Nl);
        assert_eq!(Lang::choose(Some("en"), Some("nl")), Lang::En);
        assert_eq!(Lang::choose(Some("fr"), Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::choose(None, Some("de-DE,en;q=0.5,nl;q=0.8")),
            Lang::Nl
        );
        assert_eq!(Lang::choose(None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::choose(None, Some("nl;q=0,en;q=0.1")), Lang::En);
        assert_eq!(Lang::choose(None, Some("fr")), Lang::Nl);
        assert_eq!(Lang::choose(None, Some(";;;,q=,=")), Lang::Nl);
    }

    #[test]
    fn every_text_exists_in_both_languages_and_differs_where_it_should() {
        // The macro makes both values; a text left empty would be a blank on a page.
        let nl = format!("{NL:?}");
        let en = format!("{EN:?}");
        assert!(!nl.contains(": \"\""), "an empty Dutch text");
        assert!(!en.contains(": \"\""), "an empty English text");
        assert_ne!(NL.nav_credentials, EN.nav_credentials);
        assert_eq!(
            FieldError::ValidityTooLong(30).text(Lang::Nl),
            "Langer geldig dan het beleid toestaat (hoogstens 30 dagen)."
        );
    }
}
