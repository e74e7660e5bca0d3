//! The MedMij lists: strict readers for the OAuth client list (OCL), the Whitelist, the
//! Gegevensdienstnamenlijst (GNL) and the Zorgaanbiederslijst (ZAL), as the MedMij stelselnode
//! publishes them (`MedMij_<List>.xml`, XML 1.0 in a default namespace, receivers must validate
//! them against the list's XSD).
//!
//! Each reader checks the document against the list's schema shape while it reads, and stops at
//! the first difference with an error naming the line and the element:
//!
//! - XML: UTF-8 only (a UTF-8 byte order mark is skipped; an `encoding` other than UTF-8 is
//!   refused), at most [`MAX_LIST_BYTES`], no DTD (so no entity can be declared: external entities
//!   and entity expansion are refused before anything is resolved), no processing instruction,
//!   only the five predefined entities and character references, no character XML 1.0 does not
//!   allow. Comments are skipped.
//! - Namespaces: every element must be in the list's namespace
//!   `xmlns://afsprakenstelsel.medmij.nl/<list>/release<N>/` (`<list>` = `oauthclientlist`,
//!   `whitelist`, `gegevensdienstnamenlijst`, `zorgaanbiederslijst`), the root's and its
//!   descendants' the same. The default namespace is what the lists use; a prefix bound to the
//!   same namespace is the same element to XML and is read alike.
//! - Attributes: only namespace declarations, and on the root `xsi:schemaLocation` /
//!   `xsi:noNamespaceSchemaLocation` (published lists carry one).
//! - Elements: each in its place in the sequence the XSD gives, as often as it allows; an unknown,
//!   repeated, missing or misplaced element is refused, and so is text between elements.
//! - Values: the XSD's simple types (host name pattern, `([a-z])+@medmij`, https URI patterns,
//!   string lengths, `xs:positiveInteger`, `xs:dateTime` of at least 20 characters) and the XSD's
//!   `xs:unique` constraints (a host name, gegevensdienst id, zorgaanbieder name or system role
//!   code once in its scope).
//!
//! The shapes (element names in document order):
//!
//! ```text
//! OAuthclientlist: Tijdstempel, Volgnummer, OAuthclients/OAuthclient*
//!     OAuthclient: Hostname, OAuthclientOrganisatienaam,
//!                  [Gegevensdiensten/Gegevensdienst*/GegevensdienstId]      (newer lists)
//! Whitelist: Tijdstempel, Volgnummer, MedMijNodes/MedMijNode*/Hostname
//! Gegevensdienstnamenlijst: Tijdstempel, Volgnummer,
//!     Gegevensdiensten/Gegevensdienst*/{GegevensdienstId, Weergavenaam}
//! Zorgaanbiederslijst: Tijdstempel, Volgnummer, Zorgaanbieders/Zorgaanbieder*
//!     Zorgaanbieder: Zorgaanbiedernaam, [Aanbiedertype],
//!                    Gegevensdiensten/Gegevensdienst+                       (release 2)
//!                  | Interfaceversies/Interfaceversie+/{InterfaceversieId,
//!                                                       Gegevensdiensten/Gegevensdienst+}
//!     Gegevensdienst: GegevensdienstId, AuthorizationEndpoint/AuthorizationEndpointuri,
//!                     TokenEndpoint/TokenEndpointuri,
//!                     Systeemrollen/Systeemrol+/{Systeemrolcode, ResourceEndpoint/ResourceEndpointuri}
//! ```
//!
//! Assumptions, where the MedMij texts we could read do not fix the facts (the 2.x XSDs are not
//! public; see `reference/medmij-delen.md` in the design notes):
//!
//! - The release-2 XSDs (GNL: release 1) are the ones read exactly. Any `release<N>` namespace of
//!   the right list is accepted with the same shapes, since the newer namespaces are not known.
//! - Newer OAuth client lists name the gegevensdiensten each client may ask for (RFC0030). We read
//!   them in the ZAL's own form, `Gegevensdiensten/Gegevensdienst/GegevensdienstId`, after
//!   `OAuthclientOrganisatienaam`; a client without it is [`OAuthClient::gegevensdiensten`] `None`
//!   (an older list: the list does not restrict the gegevensdienst).
//! - Newer zorgaanbieder lists nest the gegevensdiensten under
//!   `Interfaceversies/Interfaceversie/InterfaceversieId` (a non-negative integer) and add an
//!   `Aanbiedertype` (ZA or BAZB; read as text of 1 to 30 characters, directly after the name).
//!   There the authorization and token endpoints may be absent (a gegevensdienst without them is
//!   reached with an existing authorization); in the release-2 shape they are required. A
//!   gegevensdienst id is unique per zorgaanbieder (release 2) or per interface version.
//! - A `Tijdstempel` without a time zone (the XSD allows one with fractional seconds) is read as
//!   UTC. Its value must also be an RFC 3339 date-time (no year beyond 9999, no `24:00:00`).
//!
//! The readers are pure (no IO); [`MAX_LIST_BYTES`] bounds the input and so the memory.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The largest list read, in bytes. The zorgaanbieder list is the large one: a few kilobytes per
/// zorgaanbieder, so this leaves room for several thousand.
pub const MAX_LIST_BYTES: usize = 32 * 1024 * 1024;

/// The XML Schema instance namespace (`xsi:schemaLocation` on the root).
const XSI: &[u8] = b"http://www.w3.org/2001/XMLSchema-instance";

/// Why a list was refused. Every variant but the first two names the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The input is larger than [`MAX_LIST_BYTES`].
    #[error("the list is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// The input is not UTF-8.
    #[error("the list is not UTF-8")]
    NotUtf8,
    /// Not well-formed XML, or XML this reader does not accept (DTD, processing instruction,
    /// another encoding, content outside the root).
    #[error("line {line}: {message}")]
    Xml { line: usize, message: String },
    /// The root element is another list's or unknown.
    #[error("line {line}: the root element must be <{expected}>, not <{found}>")]
    Root {
        line: usize,
        found: String,
        expected: &'static str,
    },
    /// An element outside the list's namespace.
    #[error("line {line}: <{element}> is {found}, expected the namespace {expected}")]
    Namespace {
        line: usize,
        element: String,
        found: String,
        expected: String,
    },
    /// An attribute other than a namespace declaration or the root's `xsi:schemaLocation`.
    #[error("line {line}: the attribute {attribute} is not allowed on <{element}>")]
    Attribute {
        line: usize,
        element: String,
        attribute: String,
    },
    /// An element the schema does not allow here.
    #[error("line {line}: <{element}> is not allowed in <{parent}>")]
    Unexpected {
        line: usize,
        element: String,
        parent: &'static str,
    },
    /// An element given more often than the schema allows.
    #[error("line {line}: <{element}> appears more than once in <{parent}>")]
    Repeated {
        line: usize,
        element: &'static str,
        parent: &'static str,
    },
    /// An element before one the schema puts ahead of it.
    #[error("line {line}: <{element}> must come before <{after}> in <{parent}>")]
    Order {
        line: usize,
        element: &'static str,
        after: &'static str,
        parent: &'static str,
    },
    /// A required element is absent (`line` is where its parent ends or its place passed).
    #[error("line {line}: <{parent}> lacks <{element}>")]
    Missing {
        line: usize,
        element: &'static str,
        parent: &'static str,
    },
    /// Text where the schema has elements only.
    #[error("line {line}: <{element}> holds elements only, not text")]
    Text { line: usize, element: &'static str },
    /// A value that does not match its simple type.
    #[error("line {line}: <{element}> {reason}")]
    Value {
        line: usize,
        element: &'static str,
        reason: String,
    },
    /// A value the schema wants unique in its scope, given twice.
    #[error("line {line}: <{element}> {value} appears twice in <{scope}>")]
    Duplicate {
        line: usize,
        element: &'static str,
        /// Quoted and shortened for the message.
        value: String,
        scope: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// The typed lists.

/// The OAuth client list: the PGOs (DVPs) that may ask for an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientList {
    pub tijdstempel: OffsetDateTime,
    /// Increases by one with every publication.
    pub volgnummer: u64,
    pub clients: Vec<OAuthClient>,
}

/// One OAuth client (a PGO's MedMij node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// The client's host name: its `client_id` and the host of its `redirect_uri`.
    pub hostname: String,
    /// The PGO's name as the person sees it (on the confirmation page).
    pub organisatienaam: String,
    /// The gegevensdienst ids this client may ask for (newer lists), or `None` (older lists: the
    /// list does not restrict them).
    pub gegevensdiensten: Option<Vec<String>>,
}

impl OAuthClientList {
    /// The client with this host name.
    #[must_use]
    pub fn client(&self, hostname: &str) -> Option<&OAuthClient> {
        self.clients.iter().find(|c| c.hostname == hostname)
    }
}

impl OAuthClient {
    /// Whether the list lets this client ask for the gegevensdienst `id` (always, for a list
    /// that names no gegevensdiensten per client).
    #[must_use]
    pub fn allows(&self, id: &str) -> bool {
        self.gegevensdiensten
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|i| i == id))
    }
}

/// The whitelist: host names of the MedMij nodes that may connect to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whitelist {
    pub tijdstempel: OffsetDateTime,
    pub volgnummer: u64,
    pub hostnames: BTreeSet<String>,
}

impl Whitelist {
    /// Whether `hostname` is on the list.
    #[must_use]
    pub fn contains(&self, hostname: &str) -> bool {
        self.hostnames.contains(hostname)
    }
}

/// The gegevensdienst name list: the display name of each gegevensdienst id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GegevensdienstNames {
    pub tijdstempel: OffsetDateTime,
    pub volgnummer: u64,
    /// Gegevensdienst id → Weergavenaam.
    pub names: BTreeMap<String, String>,
}

impl GegevensdienstNames {
    /// The display name of gegevensdienst `id`.
    #[must_use]
    pub fn weergavenaam(&self, id: &str) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }
}

/// The zorgaanbieder list: each aanbieder's gegevensdiensten and their endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zorgaanbiederslijst {
    pub tijdstempel: OffsetDateTime,
    pub volgnummer: u64,
    pub zorgaanbieders: Vec<Zorgaanbieder>,
}

impl Zorgaanbiederslijst {
    /// The zorgaanbieder named `naam`, with or without the `@medmij` suffix.
    #[must_use]
    pub fn zorgaanbieder(&self, naam: &str) -> Option<&Zorgaanbieder> {
        let naam = naam.strip_suffix("@medmij").unwrap_or(naam);
        self.zorgaanbieders
            .iter()
            .find(|z| z.aanbiedernaam() == naam)
    }
}

/// One zorgaanbieder (aanbieder) on the ZAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zorgaanbieder {
    /// The full `Zorgaanbiedernaam`, `<name>@medmij`.
    pub naam: String,
    /// `ZA` or `BAZB` in newer lists.
    pub aanbiedertype: Option<String>,
    /// Every gegevensdienst, of every interface version, in document order.
    pub gegevensdiensten: Vec<ZalGegevensdienst>,
}

impl Zorgaanbieder {
    /// The name without `@medmij`: the part before `~` in an OAuth scope.
    #[must_use]
    pub fn aanbiedernaam(&self) -> &str {
        self.naam.strip_suffix("@medmij").unwrap_or(&self.naam)
    }

    /// The entries of gegevensdienst `id` (one per interface version in newer lists).
    pub fn gegevensdienst<'a>(
        &'a self,
        id: &'a str,
    ) -> impl Iterator<Item = &'a ZalGegevensdienst> + 'a {
        self.gegevensdiensten.iter().filter(move |g| g.id == id)
    }
}

/// A gegevensdienst as a zorgaanbieder offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZalGegevensdienst {
    pub id: String,
    /// The `InterfaceversieId` it is listed under (newer lists).
    pub interfaceversie: Option<u64>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub systeemrollen: Vec<Systeemrol>,
}

/// A system role of a gegevensdienst and its resource endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Systeemrol {
    pub code: String,
    pub resource_endpoint: String,
}

// ---------------------------------------------------------------------------------------------
// The readers.

/// Reads an OAuth client list.
///
/// # Errors
/// [`ListError`] naming the first line that does not fit the list's schema shape.
pub fn parse_oauth_client_list(bytes: &[u8]) -> Result<OAuthClientList, ListError> {
    let mut b = OclBuilder::default();
    read(bytes, &shape::OCL, "oauthclientlist", &mut b)?;
    let (tijdstempel, volgnummer) = b.head.finish()?;
    Ok(OAuthClientList {
        tijdstempel,
        volgnummer,
        clients: b.clients,
    })
}

/// Reads a whitelist.
///
/// # Errors
/// [`ListError`] naming the first line that does not fit the list's schema shape.
pub fn parse_whitelist(bytes: &[u8]) -> Result<Whitelist, ListError> {
    let mut b = WhitelistBuilder::default();
    read(bytes, &shape::WHITELIST, "whitelist", &mut b)?;
    let (tijdstempel, volgnummer) = b.head.finish()?;
    Ok(Whitelist {
        tijdstempel,
        volgnummer,
        hostnames: b.hostnames,
    })
}

/// Reads a gegevensdienst name list.
///
/// # Errors
/// [`ListError`] naming the first line that does not fit the list's schema shape.
pub fn parse_gegevensdienst_names(bytes: &[u8]) -> Result<GegevensdienstNames, ListError> {
    let mut b = GnlBuilder::default();
    read(bytes, &shape::GNL, "gegevensdienstnamenlijst", &mut b)?;
    let (tijdstempel, volgnummer) = b.head.finish()?;
    Ok(GegevensdienstNames {
        tijdstempel,
        volgnummer,
        names: b.names,
    })
}

/// Reads a zorgaanbieder list.
///
/// # Errors
/// [`ListError`] naming the first line that does not fit the list's schema shape.
pub fn parse_zorgaanbiederslijst(bytes: &[u8]) -> Result<Zorgaanbiederslijst, ListError> {
    let mut b = ZalBuilder::default();
    read(bytes, &shape::ZAL, "zorgaanbiederslijst", &mut b)?;
    let (tijdstempel, volgnummer) = b.head.finish()?;
    Ok(Zorgaanbiederslijst {
        tijdstempel,
        volgnummer,
        zorgaanbieders: b.zorgaanbieders,
    })
}

// ---------------------------------------------------------------------------------------------
// The schema shapes, as data.

/// An element of a list's schema.
struct Decl {
    name: &'static str,
    content: Content,
}

enum Content {
    /// A simple type: text (and character references) only.
    Text,
    /// A sequence of child elements, in this order.
    Seq(&'static [Part]),
}

/// One place in a sequence: the element and how often it may occur there.
struct Part {
    decl: &'static Decl,
    min: u32,
    many: bool,
}

const fn one(decl: &'static Decl) -> Part {
    Part {
        decl,
        min: 1,
        many: false,
    }
}
const fn optional(decl: &'static Decl) -> Part {
    Part {
        decl,
        min: 0,
        many: false,
    }
}
const fn any_number(decl: &'static Decl) -> Part {
    Part {
        decl,
        min: 0,
        many: true,
    }
}
const fn at_least_one(decl: &'static Decl) -> Part {
    Part {
        decl,
        min: 1,
        many: true,
    }
}
const fn text(name: &'static str) -> Decl {
    Decl {
        name,
        content: Content::Text,
    }
}

mod shape {
    use super::{any_number, at_least_one, one, optional, text, Content, Decl};

    pub static TIJDSTEMPEL: Decl = text("Tijdstempel");
    pub static VOLGNUMMER: Decl = text("Volgnummer");
    static HOSTNAME: Decl = text("Hostname");
    static GEGEVENSDIENST_ID: Decl = text("GegevensdienstId");

    pub static OCL: Decl = Decl {
        name: "OAuthclientlist",
        content: Content::Seq(&[one(&TIJDSTEMPEL), one(&VOLGNUMMER), one(&OCL_CLIENTS)]),
    };
    static OCL_CLIENTS: Decl = Decl {
        name: "OAuthclients",
        content: Content::Seq(&[any_number(&OCL_CLIENT)]),
    };
    static OCL_CLIENT: Decl = Decl {
        name: "OAuthclient",
        content: Content::Seq(&[
            one(&HOSTNAME),
            one(&OCL_ORGANISATIENAAM),
            optional(&OCL_GEGEVENSDIENSTEN),
        ]),
    };
    static OCL_ORGANISATIENAAM: Decl = text("OAuthclientOrganisatienaam");
    static OCL_GEGEVENSDIENSTEN: Decl = Decl {
        name: "Gegevensdiensten",
        content: Content::Seq(&[any_number(&OCL_GEGEVENSDIENST)]),
    };
    static OCL_GEGEVENSDIENST: Decl = Decl {
        name: "Gegevensdienst",
        content: Content::Seq(&[one(&GEGEVENSDIENST_ID)]),
    };

    pub static WHITELIST: Decl = Decl {
        name: "Whitelist",
        content: Content::Seq(&[one(&TIJDSTEMPEL), one(&VOLGNUMMER), one(&WL_NODES)]),
    };
    static WL_NODES: Decl = Decl {
        name: "MedMijNodes",
        content: Content::Seq(&[any_number(&WL_NODE)]),
    };
    static WL_NODE: Decl = Decl {
        name: "MedMijNode",
        content: Content::Seq(&[one(&HOSTNAME)]),
    };

    pub static GNL: Decl = Decl {
        name: "Gegevensdienstnamenlijst",
        content: Content::Seq(&[
            one(&TIJDSTEMPEL),
            one(&VOLGNUMMER),
            one(&GNL_GEGEVENSDIENSTEN),
        ]),
    };
    static GNL_GEGEVENSDIENSTEN: Decl = Decl {
        name: "Gegevensdiensten",
        content: Content::Seq(&[any_number(&GNL_GEGEVENSDIENST)]),
    };
    static GNL_GEGEVENSDIENST: Decl = Decl {
        name: "Gegevensdienst",
        content: Content::Seq(&[one(&GEGEVENSDIENST_ID), one(&WEERGAVENAAM)]),
    };
    static WEERGAVENAAM: Decl = text("Weergavenaam");

    pub static ZAL: Decl = Decl {
        name: "Zorgaanbiederslijst",
        content: Content::Seq(&[one(&TIJDSTEMPEL), one(&VOLGNUMMER), one(&ZAL_AANBIEDERS)]),
    };
    static ZAL_AANBIEDERS: Decl = Decl {
        name: "Zorgaanbieders",
        content: Content::Seq(&[any_number(&ZAL_AANBIEDER)]),
    };
    /// Release 2 has `Gegevensdiensten`, newer lists `Interfaceversies`: exactly one of the two
    /// is checked by the builder (`ZalBuilder::close`).
    pub static ZAL_AANBIEDER: Decl = Decl {
        name: "Zorgaanbieder",
        content: Content::Seq(&[
            one(&ZAL_NAAM),
            optional(&ZAL_AANBIEDERTYPE),
            optional(&ZAL_GEGEVENSDIENSTEN),
            optional(&ZAL_INTERFACEVERSIES),
        ]),
    };
    static ZAL_NAAM: Decl = text("Zorgaanbiedernaam");
    static ZAL_AANBIEDERTYPE: Decl = text("Aanbiedertype");
    pub static ZAL_GEGEVENSDIENSTEN: Decl = Decl {
        name: "Gegevensdiensten",
        content: Content::Seq(&[at_least_one(&ZAL_GEGEVENSDIENST)]),
    };
    pub static ZAL_INTERFACEVERSIES: Decl = Decl {
        name: "Interfaceversies",
        content: Content::Seq(&[at_least_one(&ZAL_INTERFACEVERSIE)]),
    };
    static ZAL_INTERFACEVERSIE: Decl = Decl {
        name: "Interfaceversie",
        content: Content::Seq(&[one(&ZAL_INTERFACEVERSIE_ID), one(&ZAL_GEGEVENSDIENSTEN)]),
    };
    static ZAL_INTERFACEVERSIE_ID: Decl = text("InterfaceversieId");
    /// The endpoints are optional here; the builder requires them in the release-2 shape.
    pub static ZAL_GEGEVENSDIENST: Decl = Decl {
        name: "Gegevensdienst",
        content: Content::Seq(&[
            one(&GEGEVENSDIENST_ID),
            optional(&AUTHORIZATION_ENDPOINT),
            optional(&TOKEN_ENDPOINT),
            one(&SYSTEEMROLLEN),
        ]),
    };
    pub static AUTHORIZATION_ENDPOINT: Decl = Decl {
        name: "AuthorizationEndpoint",
        content: Content::Seq(&[one(&AUTHORIZATION_ENDPOINT_URI)]),
    };
    static AUTHORIZATION_ENDPOINT_URI: Decl = text("AuthorizationEndpointuri");
    pub static TOKEN_ENDPOINT: Decl = Decl {
        name: "TokenEndpoint",
        content: Content::Seq(&[one(&TOKEN_ENDPOINT_URI)]),
    };
    static TOKEN_ENDPOINT_URI: Decl = text("TokenEndpointuri");
    static SYSTEEMROLLEN: Decl = Decl {
        name: "Systeemrollen",
        content: Content::Seq(&[at_least_one(&SYSTEEMROL)]),
    };
    static SYSTEEMROL: Decl = Decl {
        name: "Systeemrol",
        content: Content::Seq(&[one(&SYSTEEMROLCODE), one(&RESOURCE_ENDPOINT)]),
    };
    static SYSTEEMROLCODE: Decl = text("Systeemrolcode");
    static RESOURCE_ENDPOINT: Decl = Decl {
        name: "ResourceEndpoint",
        content: Content::Seq(&[one(&RESOURCE_ENDPOINT_URI)]),
    };
    static RESOURCE_ENDPOINT_URI: Decl = text("ResourceEndpointuri");
}

// ---------------------------------------------------------------------------------------------
// The reader: XML events → shape check → a builder's open / leaf / close.

/// What a list's builder is told, in document order, once the shape allowed it.
trait Builder {
    /// A complex element starts.
    fn open(&mut self, _element: &'static str, _line: usize) -> Result<(), ListError> {
        Ok(())
    }
    /// A simple element with its text (character references decoded).
    fn leaf(&mut self, element: &'static str, text: &str, line: usize) -> Result<(), ListError>;
    /// A complex element ends (`line` of its end tag).
    fn close(&mut self, _element: &'static str, _line: usize) -> Result<(), ListError> {
        Ok(())
    }
}

/// An open element: its declaration and where its sequence stands.
struct Frame {
    decl: &'static Decl,
    /// Index of the current part of the sequence.
    part: usize,
    /// How often each part occurred.
    counts: Vec<u32>,
    /// The line of the start tag.
    line: usize,
}

/// Byte offset → line number, counting forward (offsets only grow, except for errors).
struct Lines<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, offset: u64) -> usize {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        let newlines = self.text.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines;
        self.offset = offset;
        self.line
    }
}

/// Whether `c` is a character XML 1.0 allows (§2.2 `Char`).
fn xml_char(c: char) -> bool {
    !matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// A value as shown in a message: quoted, escaped, at most 60 characters.
fn shown(value: &str) -> String {
    let mut s: String = value.chars().take(60).collect();
    if s.len() < value.len() {
        s.push('…');
    }
    format!("{s:?}")
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// Reads `bytes` as the list whose root is `root`, in the namespace of `list`, and hands what it
/// finds to `builder`.
fn read(
    bytes: &[u8],
    root: &'static Decl,
    list: &str,
    builder: &mut impl Builder,
) -> Result<(), ListError> {
    if bytes.len() > MAX_LIST_BYTES {
        return Err(ListError::TooLarge {
            size: bytes.len(),
            limit: MAX_LIST_BYTES,
        });
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| ListError::NotUtf8)?;
    let mut lines = Lines {
        text,
        offset: 0,
        line: 1,
    };
    if let Some(at) = text.find(|c| !xml_char(c)) {
        return Err(ListError::Xml {
            line: lines.at(at as u64),
            message: "a character that XML does not allow".into(),
        });
    }
    let namespace_prefix = format!("xmlns://afsprakenstelsel.medmij.nl/{list}/release");
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = true;
    config.trim_text(false);

    let mut stack: Vec<Frame> = Vec::new();
    let mut namespace: Option<Vec<u8>> = None;
    let mut leaf_text = String::new();
    let mut root_done = false;
    loop {
        let before = reader.buffer_position();
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => {
                let line = lines.at(reader.error_position());
                return Err(ListError::Xml {
                    line,
                    message: format!("not well-formed XML ({})", short_error(&e)),
                });
            }
        };
        // The resolution borrows the reader; keep what the start tag needs.
        let resolved = match resolved {
            ResolveResult::Bound(ns) => Resolved::Bound(ns.as_ref().to_vec()),
            ResolveResult::Unbound => Resolved::Unbound,
            ResolveResult::Unknown(prefix) => Resolved::Unknown(prefix),
        };
        let end = reader.buffer_position();
        match event {
            Event::Decl(decl) => {
                let line = lines.at(end);
                if before != 0 {
                    return Err(xml(line, "the XML declaration is not at the start"));
                }
                if !crate::hub::xml::declaration_is_well_formed(&decl) {
                    return Err(xml(line, "malformed XML declaration"));
                }
                if let Some(Ok(encoding)) = decl.encoding() {
                    if !encoding.eq_ignore_ascii_case(b"utf-8") {
                        return Err(xml(line, "only UTF-8 documents are accepted"));
                    }
                }
            }
            Event::DocType(_) => {
                return Err(xml(
                    lines.at(end),
                    "document type declarations (DTD, entities) are not accepted",
                ))
            }
            Event::PI(_) => {
                return Err(xml(
                    lines.at(end),
                    "processing instructions are not accepted",
                ))
            }
            Event::Comment(_) => {}
            Event::Start(e) => {
                let start = end.saturating_sub(e.len() as u64 + 2);
                let line = lines.at(start);
                let name = local_name(&e);
                if stack.is_empty() {
                    if root_done {
                        return Err(xml(line, "content after the root element"));
                    }
                    if name != root.name {
                        return Err(ListError::Root {
                            line,
                            found: name,
                            expected: root.name,
                        });
                    }
                }
                check_namespace(&resolved, &name, line, &mut namespace, &namespace_prefix)?;
                check_attributes(&reader, &e, &name, line, stack.is_empty())?;
                let Some(parent) = stack.last_mut() else {
                    builder.open(root.name, line)?;
                    stack.push(frame(root, line));
                    continue;
                };
                let decl = enter(parent, &name, line)?;
                if let Content::Seq(_) = decl.content {
                    builder.open(decl.name, line)?;
                } else {
                    leaf_text.clear();
                }
                stack.push(frame(decl, line));
            }
            Event::End(_) => {
                let line = lines.at(end);
                let Some(frame) = stack.pop() else {
                    return Err(xml(line, "an end tag without a start tag"));
                };
                match frame.decl.content {
                    Content::Text => {
                        if leaf_text.chars().any(|c| !xml_char(c)) {
                            return Err(ListError::Value {
                                line: frame.line,
                                element: frame.decl.name,
                                reason:
                                    "has a character reference to a character XML does not allow"
                                        .into(),
                            });
                        }
                        builder.leaf(frame.decl.name, &leaf_text, frame.line)?;
                    }
                    Content::Seq(parts) => {
                        if let Some(missing) = first_missing(&frame, parts) {
                            return Err(ListError::Missing {
                                line,
                                element: missing,
                                parent: frame.decl.name,
                            });
                        }
                        builder.close(frame.decl.name, line)?;
                    }
                }
                root_done = stack.is_empty();
            }
            Event::Text(t) => {
                let value = t.unescape().map_err(|_| {
                    xml(
                        lines.at(end),
                        "an entity reference other than the five predefined ones",
                    )
                })?;
                match stack.last() {
                    Some(Frame {
                        decl:
                            Decl {
                                content: Content::Text,
                                ..
                            },
                        ..
                    }) => leaf_text.push_str(&value),
                    _ if value.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) => {}
                    Some(f) => {
                        return Err(ListError::Text {
                            line: lines.at(before + first_non_space(&t)),
                            element: f.decl.name,
                        })
                    }
                    None => {
                        return Err(xml(
                            lines.at(before + first_non_space(&t)),
                            "text outside the root element",
                        ))
                    }
                }
            }
            Event::CData(c) => match stack.last() {
                Some(Frame {
                    decl:
                        Decl {
                            content: Content::Text,
                            ..
                        },
                    ..
                }) => leaf_text.push_str(std::str::from_utf8(&c).map_err(|_| ListError::NotUtf8)?),
                Some(f) => {
                    return Err(ListError::Text {
                        line: lines.at(before),
                        element: f.decl.name,
                    })
                }
                None => return Err(xml(lines.at(before), "text outside the root element")),
            },
            Event::Empty(_) => {
                // expand_empty_elements turns `<a/>` into Start + End.
                return Err(xml(lines.at(end), "unexpected empty element"));
            }
            Event::Eof => break,
        }
    }
    if !root_done {
        return Err(xml(
            lines.at(text.len() as u64),
            &format!("the document has no complete <{}> element", root.name),
        ));
    }
    Ok(())
}

/// The offset of the first character of `text` that is not white space (0 if none).
fn first_non_space(text: &[u8]) -> u64 {
    text.iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0) as u64
}

fn xml(line: usize, message: &str) -> ListError {
    ListError::Xml {
        line,
        message: message.to_owned(),
    }
}

fn frame(decl: &'static Decl, line: usize) -> Frame {
    let parts = match decl.content {
        Content::Seq(parts) => parts.len(),
        Content::Text => 0,
    };
    Frame {
        decl,
        part: 0,
        counts: vec![0; parts],
        line,
    }
}

/// The child `name` of `parent`, if the sequence allows it here; advances the sequence.
fn enter(parent: &mut Frame, name: &str, line: usize) -> Result<&'static Decl, ListError> {
    let Content::Seq(parts) = parent.decl.content else {
        return Err(ListError::Unexpected {
            line,
            element: name.to_owned(),
            parent: parent.decl.name,
        });
    };
    let Some(index) = parts.iter().position(|p| p.decl.name == name) else {
        return Err(ListError::Unexpected {
            line,
            element: name.to_owned(),
            parent: parent.decl.name,
        });
    };
    let part = &parts[index];
    if index < parent.part {
        return Err(if parent.counts[index] > 0 {
            ListError::Repeated {
                line,
                element: part.decl.name,
                parent: parent.decl.name,
            }
        } else {
            ListError::Order {
                line,
                element: part.decl.name,
                after: parts[parent.part].decl.name,
                parent: parent.decl.name,
            }
        });
    }
    // Every part skipped on the way must allow zero occurrences.
    let mut skipped = parts
        .iter()
        .zip(&parent.counts)
        .take(index)
        .skip(parent.part);
    if let Some((missing, _)) = skipped.find(|(p, &n)| n < p.min) {
        return Err(ListError::Missing {
            line,
            element: missing.decl.name,
            parent: parent.decl.name,
        });
    }
    if parent.counts[index] > 0 && !part.many {
        return Err(ListError::Repeated {
            line,
            element: part.decl.name,
            parent: parent.decl.name,
        });
    }
    parent.part = index;
    parent.counts[index] += 1;
    Ok(part.decl)
}

/// The first required part of a finished sequence that did not occur.
fn first_missing(frame: &Frame, parts: &[Part]) -> Option<&'static str> {
    parts
        .iter()
        .zip(&frame.counts)
        .skip(frame.part)
        .find(|(p, &n)| n < p.min)
        .map(|(p, _)| p.decl.name)
}

/// An element's namespace, as the reader resolved it.
enum Resolved {
    Bound(Vec<u8>),
    Unbound,
    Unknown(Vec<u8>),
}

fn check_namespace(
    resolved: &Resolved,
    name: &str,
    line: usize,
    namespace: &mut Option<Vec<u8>>,
    prefix: &str,
) -> Result<(), ListError> {
    let expected = || format!("{prefix}<N>/");
    let found = match resolved {
        Resolved::Bound(ns) => ns.as_slice(),
        Resolved::Unbound => {
            return Err(ListError::Namespace {
                line,
                element: name.to_owned(),
                found: "in no namespace".into(),
                expected: expected(),
            })
        }
        Resolved::Unknown(p) => {
            return Err(ListError::Namespace {
                line,
                element: name.to_owned(),
                found: format!(
                    "in the undeclared prefix {}",
                    shown(&String::from_utf8_lossy(p))
                ),
                expected: expected(),
            })
        }
    };
    let wrong = |expected: String| ListError::Namespace {
        line,
        element: name.to_owned(),
        found: format!(
            "in the namespace {}",
            shown(&String::from_utf8_lossy(found))
        ),
        expected,
    };
    match namespace {
        Some(root) if root.as_slice() == found => Ok(()),
        Some(root) => Err(wrong(String::from_utf8_lossy(root).into_owned())),
        None => {
            let release = found
                .strip_prefix(prefix.as_bytes())
                .and_then(|r| r.strip_suffix(b"/"));
            if release.is_some_and(|r| !r.is_empty() && r.iter().all(u8::is_ascii_digit)) {
                *namespace = Some(found.to_vec());
                Ok(())
            } else {
                Err(wrong(expected()))
            }
        }
    }
}

fn check_attributes(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
    element: &str,
    line: usize,
    is_root: bool,
) -> Result<(), ListError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|_| xml(line, "a malformed attribute"))?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (ns, local) = reader.resolve_attribute(key);
        let xsi_location = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == XSI)
            && matches!(
                local.as_ref(),
                b"schemaLocation" | b"noNamespaceSchemaLocation"
            );
        if !(is_root && xsi_location) {
            return Err(ListError::Attribute {
                line,
                element: element.to_owned(),
                attribute: shown(&String::from_utf8_lossy(key.as_ref())),
            });
        }
        attr.unescape_value()
            .map_err(|_| xml(line, "an attribute value with an unknown entity"))?;
    }
    Ok(())
}

fn short_error(e: &quick_xml::Error) -> String {
    e.to_string()
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Values (the XSDs' simple types).

/// XML white space, which `xs:dateTime` and the integer types collapse.
fn collapse(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

fn value_error(element: &'static str, line: usize, reason: String) -> ListError {
    ListError::Value {
        line,
        element,
        reason,
    }
}

/// `xs:dateTime` restricted to at least 20 characters (the lists' `DatumTijd`).
fn datum_tijd(s: &str, element: &'static str, line: usize) -> Result<OffsetDateTime, ListError> {
    let v = collapse(s);
    let bad = || {
        value_error(
            element,
            line,
            format!("{} is not a date and time with a time zone", shown(v)),
        )
    };
    // RFC 3339 also takes a space or `t` between date and time and a `z`; xs:dateTime does not.
    if v.chars().count() < 20 || v.as_bytes().get(10) != Some(&b'T') {
        return Err(bad());
    }
    let has_zone = v.ends_with('Z')
        || v.len() > 6
            && v.is_char_boundary(v.len() - 6)
            && matches!(v.as_bytes()[v.len() - 6], b'+' | b'-')
            && v.as_bytes()[v.len() - 3] == b':';
    let parsed = if has_zone {
        OffsetDateTime::parse(v, &Rfc3339)
    } else {
        OffsetDateTime::parse(&format!("{v}Z"), &Rfc3339)
    };
    parsed.map_err(|_| bad())
}

/// `xs:positiveInteger` (`min` 1) or a non-negative integer (`min` 0).
fn integer(s: &str, min: u64, element: &'static str, line: usize) -> Result<u64, ListError> {
    let v = collapse(s);
    let digits = v.strip_prefix('+').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(value_error(
            element,
            line,
            format!("{} is not a whole number", shown(v)),
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| value_error(element, line, format!("{} is too large", shown(v))))?;
    if n < min {
        return Err(value_error(
            element,
            line,
            format!("{} is less than {min}", shown(v)),
        ));
    }
    Ok(n)
}

/// A string of `min..=max` characters.
fn string(
    s: &str,
    min: usize,
    max: usize,
    element: &'static str,
    line: usize,
) -> Result<String, ListError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(value_error(
            element,
            line,
            format!("{} has {n} characters, not {min} to {max}", shown(s)),
        ));
    }
    Ok(s.to_owned())
}

/// The lists' `Hostname` pattern: `(([a-z0-9])([a-z0-9-])*(\.))+([a-z0-9])([a-z0-9-])*([a-z0-9])`,
/// or with `short_last_label` the front-channel variant whose last label may be one character
/// (`...([a-z0-9])?`).
fn host_matches(s: &str, short_last_label: bool) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    let Some((last, rest)) = labels.split_last() else {
        return false;
    };
    let label_ok = |l: &str| {
        l.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let last_ok = label_ok(last)
        && if short_last_label {
            true
        } else {
            last.len() >= 2 && !last.ends_with('-')
        };
    !rest.is_empty() && rest.iter().all(|l| label_ok(l)) && last_ok
}

fn hostname(s: &str, element: &'static str, line: usize) -> Result<String, ListError> {
    if host_matches(s, false) {
        Ok(s.to_owned())
    } else {
        Err(value_error(
            element,
            line,
            format!("{} is not a lower-case host name", shown(s)),
        ))
    }
}

/// The ZAL's `Frontchanneluri` (`https://host(/segment)*`, no port) and `Backchanneluri` (the
/// same with an optional port of 1 to 5 digits); segments are non-empty and hold no `?`, `#`.
fn endpoint_uri(
    s: &str,
    backchannel: bool,
    element: &'static str,
    line: usize,
) -> Result<String, ListError> {
    let ok = s.strip_prefix("https://").is_some_and(|rest| {
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let host_ok = if backchannel {
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            host_matches(host, false)
                && (!authority.contains(':')
                    || (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit()))
        } else {
            host_matches(authority, true)
        };
        let path_ok = path.is_empty()
            || path[1..]
                .split('/')
                .all(|seg| !seg.is_empty() && !seg.contains(['?', '#']));
        host_ok && path_ok
    });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(value_error(
            element,
            line,
            format!(
                "{} is not an https URI of the {} form",
                shown(s),
                if backchannel {
                    "back-channel"
                } else {
                    "front-channel"
                }
            ),
        ))
    }
}

/// `([a-z])+@medmij`, 10 to 57 characters.
fn zorgaanbiedernaam(s: &str, line: usize) -> Result<String, ListError> {
    let ok = s.len() >= 10
        && s.len() <= 57
        && s.strip_suffix("@medmij")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase()));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(value_error(
            "Zorgaanbiedernaam",
            line,
            format!(
                "{} is not lower-case letters and @medmij (10 to 57 characters)",
                shown(s)
            ),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The builders.

/// `Tijdstempel` and `Volgnummer`, which every list starts with.
#[derive(Default)]
struct Head {
    tijdstempel: Option<OffsetDateTime>,
    volgnummer: Option<u64>,
}

impl Head {
    /// Takes the leaf if it is one of the two; `Ok(false)` otherwise.
    fn leaf(&mut self, element: &'static str, text: &str, line: usize) -> Result<bool, ListError> {
        match element {
            "Tijdstempel" => self.tijdstempel = Some(datum_tijd(text, element, line)?),
            "Volgnummer" => self.volgnummer = Some(integer(text, 1, element, line)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Both, which the shape requires (so the error is not reached on a read list).
    fn finish(&self) -> Result<(OffsetDateTime, u64), ListError> {
        match (self.tijdstempel, self.volgnummer) {
            (Some(t), Some(v)) => Ok((t, v)),
            (None, _) => Err(ListError::Missing {
                line: 1,
                element: shape::TIJDSTEMPEL.name,
                parent: "list",
            }),
            (_, None) => Err(ListError::Missing {
                line: 1,
                element: shape::VOLGNUMMER.name,
                parent: "list",
            }),
        }
    }
}

/// The builder's item under construction, which the shape guarantees is there.
fn current<'a, T>(
    item: &'a mut Option<T>,
    element: &'static str,
    parent: &'static str,
    line: usize,
) -> Result<&'a mut T, ListError> {
    item.as_mut().ok_or(ListError::Unexpected {
        line,
        element: element.to_owned(),
        parent,
    })
}

#[derive(Default)]
struct OclBuilder {
    head: Head,
    clients: Vec<OAuthClient>,
    client: Option<OAuthClient>,
    hostnames: HashSet<String>,
}

impl Builder for OclBuilder {
    fn open(&mut self, element: &'static str, _line: usize) -> Result<(), ListError> {
        match element {
            "OAuthclient" => {
                self.client = Some(OAuthClient {
                    hostname: String::new(),
                    organisatienaam: String::new(),
                    gegevensdiensten: None,
                });
            }
            "Gegevensdiensten" => {
                if let Some(c) = self.client.as_mut() {
                    c.gegevensdiensten = Some(Vec::new());
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn leaf(&mut self, element: &'static str, text: &str, line: usize) -> Result<(), ListError> {
        if self.head.leaf(element, text, line)? {
            return Ok(());
        }
        let client = current(&mut self.client, element, "OAuthclient", line)?;
        match element {
            "Hostname" => {
                let host = hostname(text, element, line)?;
                if !self.hostnames.insert(host.clone()) {
                    return Err(ListError::Duplicate {
                        line,
                        element,
                        value: shown(&host),
                        scope: "OAuthclients",
                    });
                }
                client.hostname = host;
            }
            "OAuthclientOrganisatienaam" => {
                client.organisatienaam = string(text, 3, 50, element, line)?
            }
            "GegevensdienstId" => {
                let id = string(text, 1, 30, element, line)?;
                let ids = client.gegevensdiensten.get_or_insert_with(Vec::new);
                if ids.contains(&id) {
                    return Err(ListError::Duplicate {
                        line,
                        element,
                        value: shown(&id),
                        scope: "OAuthclient",
                    });
                }
                ids.push(id);
            }
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self, element: &'static str, _line: usize) -> Result<(), ListError> {
        if element == "OAuthclient" {
            if let Some(c) = self.client.take() {
                self.clients.push(c);
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct WhitelistBuilder {
    head: Head,
    hostnames: BTreeSet<String>,
}

impl Builder for WhitelistBuilder {
    fn leaf(&mut self, element: &'static str, text: &str, line: usize) -> Result<(), ListError> {
        if self.head.leaf(element, text, line)? {
            return Ok(());
        }
        let host = hostname(text, element, line)?;
        if self.hostnames.contains(&host) {
            return Err(ListError::Duplicate {
                line,
                element,
                value: shown(&host),
                scope: "MedMijNodes",
            });
        }
        self.hostnames.insert(host);
        Ok(())
    }
}

#[derive(Default)]
struct GnlBuilder {
    head: Head,
    names: BTreeMap<String, String>,
    id: Option<String>,
}

impl Builder for GnlBuilder {
    fn leaf(&mut self, element: &'static str, text: &str, line: usize) -> Result<(), ListError> {
        if self.head.leaf(element, text, line)? {
            return Ok(());
        }
        match element {
            "GegevensdienstId" => {
                let id = string(text, 1, 30, element, line)?;
                if self.names.contains_key(&id) {
                    return Err(ListError::Duplicate {
                        line,
                        element,
                        value: shown(&id),
                        scope: "Gegevensdiensten",
                    });
                }
                self.id = Some(id);
            }
            "Weergavenaam" => {
                let name = string(text, 3, 50, element, line)?;
                let id = self.id.take().ok_or(ListError::Unexpected {
                    line,
                    element: element.to_owned(),
                    parent: "Gegevensdienst",
                })?;
                self.names.insert(id, name);
            }
            _ => {}
        }
        Ok(())
    }
}

#[derive(Default)]
struct ZalBuilder {
    head: Head,
    zorgaanbieders: Vec<Zorgaanbieder>,
    names: HashSet<String>,
    aanbieder: Option<Zorgaanbieder>,
    /// The aanbieder's `(interfaceversie, gegevensdienst id)` pairs, for uniqueness.
    ids: HashSet<(Option<u64>, String)>,
    versions: HashSet<u64>,
    interfaceversie: Option<u64>,
    /// Whether the aanbieder uses the release-2 `Gegevensdiensten` or `Interfaceversies`.
    release2: bool,
    newer: bool,
    dienst: Option<ZalGegevensdienst>,
    rolcode: Option<String>,
    rolcodes: HashSet<String>,
}

impl Builder for ZalBuilder {
    fn open(&mut self, element: &'static str, line: usize) -> Result<(), ListError> {
        match element {
            "Zorgaanbieder" => {
                self.aanbieder = Some(Zorgaanbieder {
                    naam: String::new(),
                    aanbiedertype: None,
                    gegevensdiensten: Vec::new(),
                });
                self.ids.clear();
                self.versions.clear();
                self.interfaceversie = None;
                self.release2 = false;
                self.newer = false;
            }
            "Interfaceversies" => self.newer = true,
            "Gegevensdiensten" if !self.newer => {
                self.release2 = true;
            }
            "Gegevensdienst" => {
                self.dienst = Some(ZalGegevensdienst {
                    id: String::new(),
                    interfaceversie: self.interfaceversie,
                    authorization_endpoint: None,
                    token_endpoint: None,
                    systeemrollen: Vec::new(),
                });
                self.rolcodes.clear();
            }
            _ => {}
        }
        // Release 2 and the newer nesting do not mix within one zorgaanbieder.
        if self.release2 && self.newer {
            return Err(ListError::Unexpected {
                line,
                element: "Interfaceversies".into(),
                parent: "Zorgaanbieder",
            });
        }
        Ok(())
    }

    fn leaf(&mut self, element: &'static str, text: &str, line: usize) -> Result<(), ListError> {
        if self.head.leaf(element, text, line)? {
            return Ok(());
        }
        match element {
            "Zorgaanbiedernaam" => {
                let naam = zorgaanbiedernaam(text, line)?;
                if !self.names.insert(naam.clone()) {
                    return Err(ListError::Duplicate {
                        line,
                        element,
                        value: shown(&naam),
                        scope: "Zorgaanbieders",
                    });
                }
                current(&mut self.aanbieder, element, "Zorgaanbieder", line)?.naam = naam;
            }
            "Aanbiedertype" => {
                let kind = string(text, 1, 30, element, line)?;
                current(&mut self.aanbieder, element, "Zorgaanbieder", line)?.aanbiedertype =
                    Some(kind);
            }
            "InterfaceversieId" => {
                let v = integer(text, 0, element, line)?;
                if !self.versions.insert(v) {
                    return Err(ListError::Duplicate {
                        line,
                        element,
                        value: shown(&v.to_string()),
                        scope: "Interfaceversies",
                    });
                }
                self.interfaceversie = Some(v);
            }
            "GegevensdienstId" => {
                let id = string(text, 1, 30, element, line)?;
                if !self.ids.insert((self.interfaceversie, id.clone())) {
                    return Err(ListError::Duplicate {
                        line,
                        element,
                        value: shown(&id),
                        scope: if self.interfaceversie.is_some() {
                            "Interfaceversie"
                        } else {
                            "Zorgaanbieder"
                        },
                    });
                }
                current(&mut self.dienst, element, "Gegevensdienst", line)?.id = id;
            }
            "AuthorizationEndpointuri" => {
                let uri = endpoint_uri(text, false, element, line)?;
                current(&mut self.dienst, element, "AuthorizationEndpoint", line)?
                    .authorization_endpoint = Some(uri);
            }
            "TokenEndpointuri" => {
                let uri = endpoint_uri(text, true, element, line)?;
                current(&mut self.dienst, element, "TokenEndpoint", line)?.token_endpoint =
                    Some(uri);
            }
            "Systeemrolcode" => {
                let code = string(text, 1, 30, element, line)?;
                if !self.rolcodes.insert(code.clone()) {
                    return Err(ListError::Duplicate {
                        line,
                        element,
                        value: shown(&code),
                        scope: "Systeemrollen",
                    });
                }
                self.rolcode = Some(code);
            }
            "ResourceEndpointuri" => {
                let uri = endpoint_uri(text, true, element, line)?;
                let code = self.rolcode.take().ok_or(ListError::Unexpected {
                    line,
                    element: element.to_owned(),
                    parent: "Systeemrol",
                })?;
                current(&mut self.dienst, element, "Systeemrol", line)?
                    .systeemrollen
                    .push(Systeemrol {
                        code,
                        resource_endpoint: uri,
                    });
            }
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self, element: &'static str, line: usize) -> Result<(), ListError> {
        match element {
            "Gegevensdienst" => {
                let dienst = self.dienst.take();
                if let Some(d) = dienst {
                    if self.release2 {
                        let missing = if d.authorization_endpoint.is_none() {
                            Some(shape::AUTHORIZATION_ENDPOINT.name)
                        } else if d.token_endpoint.is_none() {
                            Some(shape::TOKEN_ENDPOINT.name)
                        } else {
                            None
                        };
                        if let Some(element) = missing {
                            return Err(ListError::Missing {
                                line,
                                element,
                                parent: shape::ZAL_GEGEVENSDIENST.name,
                            });
                        }
                    }
                    if let Some(a) = self.aanbieder.as_mut() {
                        a.gegevensdiensten.push(d);
                    }
                }
            }
            "Interfaceversie" => self.interfaceversie = None,
            "Zorgaanbieder" => {
                if !self.release2 && !self.newer {
                    return Err(ListError::Missing {
                        line,
                        element: shape::ZAL_GEGEVENSDIENSTEN.name,
                        parent: shape::ZAL_AANBIEDER.name,
                    });
                }
                if let Some(a) = self.aanbieder.take() {
                    self.zorgaanbieders.push(a);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
