//! The pages a person sees during Delen, server-rendered in Dutch with maud (compile-time
//! checked, escaped by default): the landing page (log in), the confirmation
//! (Bevestigingsverklaring), "not receptive" (exception Delen 1) and the error page. No
//! JavaScript, no external assets: one stylesheet inline, allowed by its hash in the
//! Content-Security-Policy ([`csp`]). Every control has a label; the development login is
//! marked on every page it shows. Pure.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use maud::{html, Markup, DOCTYPE};
use sha2::Digest as _;

/// The one stylesheet, inline.
const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1b1f24;line-height:1.5}\
main{max-width:36rem;margin:2.5rem auto;background:#fff;padding:2rem 2.5rem;border-radius:.5rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.5rem;margin-top:0;color:#01689b}\
.wie{font-weight:600}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1.2rem 0}dt{color:#555}dd{margin:0;font-weight:600}\
label{display:block;font-weight:600;margin-top:1rem}\
input[type=text]{font-size:1.1rem;padding:.45rem;width:12rem;border:1px solid #767676;border-radius:.25rem}\
.knoppen{display:flex;gap:1rem;margin-top:1.5rem;flex-wrap:wrap}\
button,input,.knop{font-family:inherit}\
button,.knop{font-size:1.05rem;padding:.55rem 1.6rem;border-radius:.3rem;border:2px solid #01689b;background:#01689b;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}\
button.secundair,.knop.secundair{background:#fff;color:#01689b}\
.fout{color:#a4000f;font-weight:600}\
.dev{background:#ffe08a;color:#3d2e00;padding:.6rem 1rem;text-align:center;font-weight:600;border-bottom:2px solid #c79a00}\
.klein{font-size:.85rem;color:#555}\
footer{max-width:36rem;margin:0 auto 2rem;font-size:.8rem;color:#666;padding:0 2.5rem}";

/// The Content-Security-Policy of every page: nothing but the inline stylesheet (by hash), forms
/// posted to us, and, where a form's answer redirects to the client (Ja/Nee), the client's
/// origin too: browsers apply `form-action` to the redirects that follow a form post.
#[must_use]
pub fn csp(client_origin: Option<&str>) -> String {
    let hash = STANDARD.encode(sha2::Sha256::digest(CSS.as_bytes()));
    let form_action = match client_origin {
        Some(o) => format!("'self' {o}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// What every page shows around its content.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The aanbieder's name.
    pub aanbieder: &'a str,
    /// Whether the development login is on (marked on every page).
    pub dev_login: bool,
}

fn layout(frame: Frame<'_>, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="nl" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " – " (frame.aanbieder) }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                @if frame.dev_login {
                    div.dev role="note" {
                        "Testomgeving: inloggen met een test-BSN, zonder DigiD. Niet gebruiken met echte gegevens."
                    }
                }
                main { (content) }
                footer { "MedMij Delen · " (frame.aanbieder) }
            }
        }
    }
}

/// What the person is asked to share: from the lists and our configuration.
#[derive(Debug, Clone, Copy)]
pub struct Sharing<'a> {
    /// The PGO's name (OAuth client list).
    pub pgo: &'a str,
    /// The gegevensdienst's display name (gegevensdienst name list).
    pub gegevensdienst: &'a str,
}

/// The landing page: who asks, and the way to log in. `dev_form`: the development login form
/// (with `error` shown above it) instead of the link to the OpenID provider.
#[must_use]
pub fn landing(
    frame: Frame<'_>,
    sharing: Sharing<'_>,
    csrf: &str,
    dev_form: bool,
    error: Option<&str>,
) -> Markup {
    layout(
        frame,
        "Gegevens delen",
        html! {
            h1 { "Gegevens delen met " (frame.aanbieder) }
            p {
                span.wie { (sharing.pgo) } " wil namens u gegevens delen met "
                span.wie { (frame.aanbieder) } "."
            }
            dl {
                dt { "Gegevens" } dd { (sharing.gegevensdienst) }
                dt { "Van" } dd { (sharing.pgo) }
                dt { "Naar" } dd { (frame.aanbieder) }
            }
            p { "Log eerst in, zodat " (frame.aanbieder) " weet wie u bent." }
            @if dev_form {
                @if let Some(e) = error {
                    p.fout role="alert" id="bsn-fout" { (e) }
                }
                form method="post" action="/medmij/login/dev" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="bsn" { "BSN (testnummer)" }
                    input type="text" id="bsn" name="bsn" inputmode="numeric" autocomplete="off"
                        maxlength="9" required aria-describedby=[error.map(|_| "bsn-fout")];
                    div.knoppen {
                        button type="submit" { "Inloggen" }
                        button.secundair type="submit" form="annuleren" name="keuze" value="nee" { "Annuleren" }
                    }
                }
            } @else {
                div.knoppen {
                    a.knop href="/medmij/login" { "Inloggen" }
                    button.secundair type="submit" form="annuleren" name="keuze" value="nee" { "Annuleren" }
                }
            }
            // "Annuleren" posts this form (its button sits beside "Inloggen", by its form attribute).
            form id="annuleren" method="post" action="/medmij/confirm" {
                input type="hidden" name="csrf" value=(csrf);
            }
        },
    )
}

/// The Bevestigingsverklaring: "Ja" issues the code, "Nee" answers `access_denied`.
#[must_use]
pub fn confirmation(frame: Frame<'_>, sharing: Sharing<'_>, csrf: &str) -> Markup {
    layout(
        frame,
        "Bevestigen",
        html! {
            h1 { "Bevestigen" }
            p {
                span.wie { (sharing.pgo) } " mag uw gegevens "
                span.wie { "‘" (sharing.gegevensdienst) "’" } " delen met "
                span.wie { (frame.aanbieder) } "."
            }
            p {
                (frame.aanbieder) " beslist zelf of deze gegevens in uw dossier worden opgenomen."
            }
            form method="post" action="/medmij/confirm" {
                input type="hidden" name="csrf" value=(csrf);
                p { "Wilt u dat " (sharing.pgo) " deze gegevens deelt met " (frame.aanbieder) "?" }
                div.knoppen {
                    button type="submit" name="keuze" value="ja" { "Ja" }
                    button.secundair type="submit" name="keuze" value="nee" { "Nee" }
                }
            }
        },
    )
}

/// The flow stops here, with the way back to the PGO (`back`, carrying `error`): the aanbieder
/// does not take these gegevens from this person now (exception Delen 1, `receptive_problem`), or
/// the person stopped.
#[must_use]
pub fn stopped(
    frame: Frame<'_>,
    sharing: Sharing<'_>,
    receptive_problem: bool,
    why: &str,
    back: &str,
) -> Markup {
    let title = if receptive_problem {
        "Delen is niet mogelijk"
    } else {
        "Delen is gestopt"
    };
    layout(
        frame,
        title,
        html! {
            h1 { (title) }
            @if receptive_problem {
                p {
                    (frame.aanbieder) " kan de gegevens " span.wie { "‘" (sharing.gegevensdienst) "’" }
                    " nu niet van u ontvangen."
                }
            }
            p { (why) }
            p { "Er zijn geen gegevens gedeeld. U kunt terug naar " (sharing.pgo) "." }
            div.knoppen {
                a.knop href=(back) { "Terug naar " (sharing.pgo) }
            }
        },
    )
}

/// An error the person cannot fix here, without a way back (RFC 6749 §4.1.2.1), with the ids a
/// helpdesk asks for.
#[must_use]
pub fn error(frame: Frame<'_>, what: &str, trace_id: &str, session_id: Option<&str>) -> Markup {
    layout(
        frame,
        "Er is iets misgegaan",
        html! {
            h1 { "Er is iets misgegaan" }
            p { (what) }
            p { "Ga terug naar uw persoonlijke gezondheidsomgeving (PGO) en probeer het opnieuw. Blijft het misgaan, neem dan contact op met uw PGO en noem de gegevens hieronder." }
            dl.klein {
                dt { "Trace-ID" } dd { code { (trace_id) } }
                @if let Some(s) = session_id {
                    dt { "Sessie-ID" } dd { code { (s) } }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Frame<'static> = Frame {
        aanbieder: "UMC <Harderwijk>",
        dev_login: true,
    };
    const SHARING: Sharing<'static> = Sharing {
        pgo: "Voorbeeld PGO",
        gegevensdienst: "Documenten delen",
    };

    #[test]
    fn pages_are_dutch_escaped_labelled_and_marked() {
        let page = landing(
            FRAME,
            SHARING,
            "tok\"en",
            true,
            Some("Dit is geen geldig BSN."),
        )
        .into_string();
        assert!(
            page.starts_with("<!DOCTYPE html><html lang=\"nl\">"),
            "{page}"
        );
        assert!(page.contains("UMC &lt;Harderwijk&gt;"));
        assert!(page.contains("value=\"tok&quot;en\""));
        assert!(page.contains("<label for=\"bsn\">BSN (testnummer)</label>"));
        assert!(page.contains("Testomgeving"));
        assert!(!page.contains("<script"));
        let confirm = confirmation(
            Frame {
                dev_login: false,
                ..FRAME
            },
            SHARING,
            "t",
        )
        .into_string();
        assert!(confirm.contains(">Ja</button>") && confirm.contains(">Nee</button>"));
        assert!(!confirm.contains("Testomgeving"));
        let csp = csp(Some("https://pgo.example.nl:8443"));
        assert!(
            csp.contains("form-action 'self' https://pgo.example.nl:8443"),
            "{csp}"
        );
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
    }
}
