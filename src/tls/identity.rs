//! The identity in a verified client certificate: [`ClientCert`] and the UZI-register
//! `otherName`, [`UziName`].
//!
//! Parsing uses `x509-parser` (the Rusticata project's nom-based X.509 parser, maintained since
//! 2017, fuzzed in OSS-Fuzz, used by rcgen and many TLS tools): rustls-webpki verifies chains
//! but exposes no subject, SAN list or otherName, and a hand-written DER walk over attacker
//! controlled certificates is exactly what a well-kept parser is for. Every value read from the
//! certificate is bounded and escaped before it becomes a string; nothing here panics on an odd
//! certificate (malformed extensions are skipped, not trusted).

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};
use x509_parser::der_parser::asn1_rs::{Any, Class, FromDer as _, Tag};
use x509_parser::prelude::{GeneralName, X509Certificate, X509Name};

use super::der;

/// The otherName type-id of the UZI register's SAN entry: `2.5.5.5`.
pub const UZI_OTHER_NAME_OID: &str = "2.5.5.5";

/// Longest string value taken from a certificate (subject attributes, DNS names, otherName).
const MAX_VALUE: usize = 1024;

/// A verified client certificate as an identity: cheap to clone (one `Arc`), immutable.
///
/// Made by [`crate::tls::accept`] from the chain the client presented after rustls verified it
/// against the configured trust anchors (and CRLs); every authenticator and the audit log read
/// the same value.
#[derive(Clone)]
pub struct ClientCert(Arc<Inner>);

struct Inner {
    chain: Vec<CertificateDer<'static>>,
    fingerprint_sha256: String,
    x5t_s256: String,
    subject: String,
    issuer: String,
    serial: String,
    dns_names: Vec<String>,
    uzi: Option<UziName>,
}

/// A certificate that could not be read as X.509.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// No certificate at all.
    #[error("no certificate")]
    Empty,
    /// The leaf is not a parseable X.509 certificate.
    #[error("the certificate cannot be parsed: {0}")]
    Parse(String),
}

impl ClientCert {
    /// Reads the identity from a chain (leaf first) that a verifier has accepted.
    pub fn from_chain(chain: Vec<CertificateDer<'static>>) -> Result<Self, CertificateError> {
        let leaf = chain.first().ok_or(CertificateError::Empty)?;
        let (rest, cert) =
            X509Certificate::from_der(leaf).map_err(|e| CertificateError::Parse(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateError::Parse(
                "trailing bytes after the certificate".into(),
            ));
        }
        let digest = Sha256::digest(leaf.as_ref());
        let mut dns_names = Vec::new();
        let mut uzi = None;
        // A malformed or duplicated SAN extension yields no names (webpki already refused
        // duplicates; x509-parser reports them as an error).
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    // Printable ASCII only (a DNS name has nothing else); others are skipped.
                    GeneralName::DNSName(dns)
                        if dns.len() <= 253 && dns.bytes().all(|b| b.is_ascii_graphic()) =>
                    {
                        dns_names.push((*dns).to_owned());
                    }
                    GeneralName::OtherName(oid, value)
                        if uzi.is_none() && oid.to_id_string() == UZI_OTHER_NAME_OID =>
                    {
                        uzi = other_name_string(value).and_then(|s| UziName::parse(&s).ok());
                    }
                    _ => {}
                }
            }
        }
        let inner = Inner {
            fingerprint_sha256: hex::encode(digest),
            x5t_s256: URL_SAFE_NO_PAD.encode(digest),
            subject: rfc4514(cert.subject()),
            issuer: rfc4514(cert.issuer()),
            serial: hex::encode(cert.raw_serial()),
            dns_names,
            uzi,
            chain,
        };
        Ok(Self(Arc::new(inner)))
    }

    /// The leaf certificate, DER.
    #[must_use]
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.0.chain[0]
    }

    /// The chain as the client presented it, leaf first (the verifier found a path from it to
    /// a configured trust anchor).
    #[must_use]
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.0.chain
    }

    /// Lowercase hex of the SHA-256 of the leaf's DER (64 characters).
    #[must_use]
    pub fn fingerprint_sha256(&self) -> &str {
        &self.0.fingerprint_sha256
    }

    /// RFC 8705 `x5t#S256`: base64url without padding of the SHA-256 of the leaf's DER, the
    /// value of an access token's `cnf` when it is bound to this certificate.
    #[must_use]
    pub fn x5t_s256(&self) -> &str {
        &self.0.x5t_s256
    }

    /// The subject DN as an RFC 4514 string (`CN=...,O=...,C=NL`).
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The issuer DN as an RFC 4514 string.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The serial number, lowercase hex of its DER content octets.
    #[must_use]
    pub fn serial_hex(&self) -> &str {
        &self.0.serial
    }

    /// The SAN DNS names, in certificate order (those of printable ASCII, up to 253 bytes).
    #[must_use]
    pub fn dns_names(&self) -> &[String] {
        &self.0.dns_names
    }

    /// The UZI-register `otherName` (the first SAN `otherName` 2.5.5.5 that parses).
    #[must_use]
    pub fn uzi(&self) -> Option<&UziName> {
        self.0.uzi.as_ref()
    }
}

impl PartialEq for ClientCert {
    fn eq(&self, other: &Self) -> bool {
        self.der() == other.der()
    }
}

impl Eq for ClientCert {}

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert")
            .field("subject", &self.subject())
            .field("fingerprint_sha256", &self.fingerprint_sha256())
            .finish_non_exhaustive()
    }
}

/// RFC 8705 `x5t#S256` of a certificate: base64url without padding of the SHA-256 of its DER.
#[must_use]
pub fn x5t_s256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// The `x5t#S256` of the first certificate of a URL-encoded PEM text (what nginx puts in
/// `$ssl_client_escaped_cert`), or `None` when it holds no certificate. Only a hash is taken:
/// the certificate was verified by whoever sends it.
#[must_use]
pub fn x5t_s256_of_escaped_pem(escaped: &[u8]) -> Option<String> {
    use rustls::pki_types::pem::PemObject as _;
    let pem: Vec<u8> = percent_encoding::percent_decode(escaped).collect();
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    Some(x5t_s256(der.as_ref()))
}

/// The string inside an otherName value: `[0] EXPLICIT` around an IA5String (what the UZI
/// register writes), PrintableString or UTF8String (what other tools write for the same value);
/// ASCII only. `None` for anything else.
fn other_name_string(value: &[u8]) -> Option<String> {
    let (rest, explicit) = Any::from_der(value).ok()?;
    if !rest.is_empty()
        || explicit.class() != Class::ContextSpecific
        || explicit.tag() != Tag(0)
        || !explicit.header.is_constructed()
    {
        return None;
    }
    let (rest, inner) = Any::from_der(explicit.data).ok()?;
    if !rest.is_empty() || inner.class() != Class::Universal {
        return None;
    }
    if ![Tag::Ia5String, Tag::PrintableString, Tag::Utf8String].contains(&inner.tag()) {
        return None;
    }
    let bytes = inner.data;
    if bytes.len() > MAX_VALUE || !bytes.is_ascii() {
        return None;
    }
    String::from_utf8(bytes.to_vec()).ok()
}

/// RFC 4514: the RDNs last to first, joined by `,`; the attributes of a multi-valued RDN by `+`;
/// known attribute types by their registered short names, others as dotted OIDs; string values
/// escaped, other values as `#` + hex of their DER.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let ty = short_name(&oid).map_or(oid, str::to_owned);
                    format!("{ty}={}", attribute_value(atv.attr_value()))
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// Short names of RFC 4514 §3 and the other types registered for LDAP that certificates use.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "givenName",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

fn attribute_value(value: &Any<'_>) -> String {
    let text = if value.class() == Class::Universal && value.data.len() <= MAX_VALUE {
        decode_string(value.tag(), value.data)
    } else {
        None
    };
    match text {
        Some(s) => escape_value(&s),
        None => {
            let mut encoded = der::identifier(
                value.class() as u8,
                value.header.is_constructed(),
                value.tag().0,
            );
            encoded.extend(der::length(value.data.len()));
            encoded.extend_from_slice(value.data);
            format!("#{}", hex::encode(encoded))
        }
    }
}

/// The text of a DirectoryString-like value; `None` for non-string types or invalid encodings.
fn decode_string(tag: Tag, data: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String => String::from_utf8(data.to_vec()).ok(),
        Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => data
            .is_ascii()
            .then(|| String::from_utf8(data.to_vec()).ok())
            .flatten(),
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Some(data.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// RFC 4514 §2.4 escaping, and more: control and invisible formatting characters become
/// `\XX` hex pairs too, so a subject is always one printable line in a log or audit record.
fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            c if c.is_control() || is_invisible(c) => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).as_bytes() {
                    out.push_str(&format!("\\{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The UZI register's SAN `otherName` (type-id 2.5.5.5), an IA5String of seven fields joined by
/// `-`:
///
/// ```text
/// <OID CA>-<versie-nr>-<UZI-nr>-<pastype>-<Abonnee-nr>-<rol>-<AGB-code>
/// e.g. 2.16.528.1.1007.99.2110-1-1234-S-86446-00.000-5678
/// ```
///
/// Sources (public): the UZI register's certificate profiles ("CA model, pasmodel, certificaat-
/// en CRL-profielen Zorg CSP", section SubjectAltName.otherName) as quoted by the Nuts
/// specification for the `UziServerCertificateCredential`, which gives that field list and reads
/// the URA as the Abonnee-nr of a server certificate with the pattern
/// `2\.16\.528\.1\.1007.\d+\.\d+-\d+-\d+-S-(\d+)-00\.000-\d+`; nuts-foundation's
/// uzi-did-x509-issuer and the Nuts SCP node parse it with `^[0-9.]+-\d+-(\d+)-S-(\d+)-00\.000-(\d+)$`.
///
/// What this parser checks, and nothing more: seven fields; the OID dotted decimal; versie-nr,
/// UZI-nr, Abonnee-nr and AGB-code decimal digits; pastype one capital letter; rol two groups of
/// digits joined by a dot. Confirmed by those sources: `S` is the pass type of a server
/// certificate, whose rol is `00.000`. The letters of the UZI cards (e.g. `N` seen in a test
/// certificate) and the role code table are not interpreted: they are kept as written. The
/// subscriber (Abonnee-nr) is the organisation's URA number. Since November 2023 server
/// certificates also carry the URA as an `otherName` permanentIdentifier (assigner
/// 2.16.528.1.1007.3.3); that form is not read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UziName {
    /// `<OID CA>`: the issuing CA's policy OID (2.16.528.1.1007.99.x for the UZI register).
    pub ca_oid: String,
    /// `<versie-nr>`: the version of the format.
    pub version: String,
    /// `<UZI-nr>`: the UZI number of the card holder or server certificate.
    pub uzi_number: String,
    /// `<pastype>`: `S` for a server certificate.
    pub pass_type: char,
    /// `<Abonnee-nr>`: the subscriber's number, the organisation's URA.
    pub ura: String,
    /// `<rol>`: the role code (`00.000` for server certificates).
    pub role: String,
    /// `<AGB-code>`: the AGB code (zeros when none was registered).
    pub agb: String,
}

/// Why a string is not a UZI otherName.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UziError {
    /// Empty, longer than 256 characters, or not printable ASCII.
    #[error("not a short printable ASCII string")]
    NotPrintable,
    /// Not seven `-`-separated fields.
    #[error("not seven fields separated by '-'")]
    FieldCount,
    /// A field has the wrong form.
    #[error("field {0} is malformed")]
    Field(&'static str),
}

impl UziName {
    /// Parses the otherName string.
    pub fn parse(s: &str) -> Result<Self, UziError> {
        if s.is_empty() || s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UziError::NotPrintable);
        }
        let fields: Vec<&str> = s.split('-').collect();
        let [ca_oid, version, uzi_number, pass_type, ura, role, agb] = fields[..] else {
            return Err(UziError::FieldCount);
        };
        let digits = |f: &str, max: usize| {
            !f.is_empty() && f.len() <= max && f.bytes().all(|b| b.is_ascii_digit())
        };
        let arcs: Vec<&str> = ca_oid.split('.').collect();
        if arcs.len() < 2 || !arcs.iter().all(|a| digits(a, 20)) {
            return Err(UziError::Field("OID CA"));
        }
        if !digits(version, 4) {
            return Err(UziError::Field("versie-nr"));
        }
        if !digits(uzi_number, 20) {
            return Err(UziError::Field("UZI-nr"));
        }
        let pass_type = match pass_type.as_bytes() {
            [b] if b.is_ascii_uppercase() => char::from(*b),
            _ => return Err(UziError::Field("pastype")),
        };
        if !digits(ura, 20) {
            return Err(UziError::Field("Abonnee-nr"));
        }
        match role.split_once('.') {
            Some((a, b)) if digits(a, 4) && digits(b, 4) => {}
            _ => return Err(UziError::Field("rol")),
        }
        if !digits(agb, 20) {
            return Err(UziError::Field("AGB-code"));
        }
        Ok(Self {
            ca_oid: ca_oid.to_owned(),
            version: version.to_owned(),
            uzi_number: uzi_number.to_owned(),
            pass_type,
            ura: ura.to_owned(),
            role: role.to_owned(),
            agb: agb.to_owned(),
        })
    }

    /// Whether this is a UZI server certificate (pastype `S`).
    #[must_use]
    pub fn is_server_certificate(&self) -> bool {
        self.pass_type == 'S'
    }
}

impl fmt::Display for UziName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{}-{}-{}-{}",
            self.ca_oid,
            self.version,
            self.uzi_number,
            self.pass_type,
            self.ura,
            self.role,
            self.agb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uzi_server_certificate_example() {
        let s = "2.16.528.1.1007.99.2110-1-1234-S-86446-00.000-5678";
        let name = UziName::parse(s).expect("parses");
        assert_eq!(name.ca_oid, "2.16.528.1.1007.99.2110");
        assert_eq!(name.version, "1");
        assert_eq!(name.uzi_number, "1234");
        assert_eq!(name.pass_type, 'S');
        assert!(name.is_server_certificate());
        assert_eq!(name.ura, "86446");
        assert_eq!(name.role, "00.000");
        assert_eq!(name.agb, "5678");
        assert_eq!(name.to_string(), s);
        let card = UziName::parse("2.16.528.1.1007.99.218-1-900021219-N-90000382-00.000-00000000")
            .expect("card");
        assert!(!card.is_server_certificate());
        assert_eq!(card.ura, "90000382");
    }

    /// Hostile and malformed strings: each is refused with its reason, none panics.
    #[test]
    fn uzi_hostile_strings() {
        let long_digits = format!(
            "2.16.528.1.1007.99.2110-1-{}-S-86446-00.000-5678",
            "9".repeat(21)
        );
        let huge = "1-".repeat(10_000);
        let cases: &[(&str, UziError)] = &[
            ("", UziError::NotPrintable),
            (&huge, UziError::NotPrintable),
            (
                "2.16.528.1.1007.99.2110-1-1234-S-86446-00.000-5678\n",
                UziError::NotPrintable,
            ),
            (
                "2.16.528.1.1007.99.2110-1-1234-S-86446-00.000-56\u{0}78",
                UziError::NotPrintable,
            ),
            (
                "2.16.528.1.1007.99.2110-1-1234-S-86446-00.000-5678\u{202e}",
                UziError::NotPrintable,
            ),
            (
                "2.16.528.1.1007.99.2110 -1-1234-S-86446-00.000-5678",
                UziError::NotPrintable,
            ),
            (
                "２.16.528-1-1234-S-86446-00.000-5678",
                UziError::NotPrintable,
            ),
            ("-------", UziError::FieldCount),
            ("------", UziError::Field("OID CA")),
            (
                "2.16.528.1.1007.99.2110-1-1234-S-86446-00.000",
                UziError::FieldCount,
            ),
            (
                "2.16.528.1.1007.99.2110-1-1234-S-86446-00.000-5678-9",
                UziError::FieldCount,
            ),
            (
                "2.16.528.1.1007.99.2110-1-1234-S-86446-00-000-5678",
                UziError::FieldCount,
            ),
            ("2-1-1234-S-86446-00.000-5678", UziError::Field("OID CA")),
            (
                "2..16-1-1234-S-86446-00.000-5678",
                UziError::Field("OID CA"),
            ),
            (
                ".2.16-1-1234-S-86446-00.000-5678",
                UziError::Field("OID CA"),
            ),
            (
                "2.16.x-1-1234-S-86446-00.000-5678",
                UziError::Field("OID CA"),
            ),
            (
                "2.16.528-+1-1234-S-86446-00.000-5678",
                UziError::Field("versie-nr"),
            ),
            (
                "2.16.528-12345-1234-S-86446-00.000-5678",
                UziError::Field("versie-nr"),
            ),
            ("2.16.528-1--S-86446-00.000-5678", UziError::Field("UZI-nr")),
            (&long_digits, UziError::Field("UZI-nr")),
            (
                "2.16.528-1-0x12-S-86446-00.000-5678",
                UziError::Field("UZI-nr"),
            ),
            (
                "2.16.528-1-1234-s-86446-00.000-5678",
                UziError::Field("pastype"),
            ),
            (
                "2.16.528-1-1234-SS-86446-00.000-5678",
                UziError::Field("pastype"),
            ),
            (
                "2.16.528-1-1234--86446-00.000-5678",
                UziError::Field("pastype"),
            ),
            (
                "2.16.528-1-1234-S-URA1-00.000-5678",
                UziError::Field("Abonnee-nr"),
            ),
            ("2.16.528-1-1234-S-86446-00000-5678", UziError::Field("rol")),
            (
                "2.16.528-1-1234-S-86446-00.000.1-5678",
                UziError::Field("rol"),
            ),
            ("2.16.528-1-1234-S-86446-.000-5678", UziError::Field("rol")),
            ("2.16.528-1-1234-S-86446-00.-5678", UziError::Field("rol")),
            (
                "2.16.528-1-1234-S-86446-00.000-",
                UziError::Field("AGB-code"),
            ),
            (
                "2.16.528-1-1234-S-86446-00.000-56,78",
                UziError::Field("AGB-code"),
            ),
            (
                "2.16.528-1-1234-S-86446-00.000-%00",
                UziError::Field("AGB-code"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(UziName::parse(input), Err(*want), "{input:?}");
        }
    }

    #[test]
    fn rfc4514_escaping() {
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value(" lead and trail "), "\\ lead and trail\\ ");
        assert_eq!(escape_value("#x"), "\\#x");
        assert_eq!(escape_value("x#"), "x#");
        assert_eq!(escape_value("a\"<>;\\b"), "a\\\"\\<\\>\\;\\\\b");
        assert_eq!(escape_value("new\nline\u{0}"), "new\\0aline\\00");
        assert_eq!(escape_value("rtl\u{202e}x"), "rtl\\e2\\80\\aex");
        assert_eq!(escape_value("Zorg bij jou B.V. ü"), "Zorg bij jou B.V. ü");
        assert_eq!(escape_value(" "), "\\ ");
        assert_eq!(escape_value(""), "");
    }

    #[test]
    fn other_name_values() {
        let ia5 = der::tlv(0xa0, &der::tlv(der::TAG_IA5_STRING, b"1-2"));
        assert_eq!(other_name_string(&ia5).as_deref(), Some("1-2"));
        let utf8 = der::tlv(0xa0, &der::tlv(der::TAG_UTF8_STRING, b"1-2"));
        assert_eq!(other_name_string(&utf8).as_deref(), Some("1-2"));
        // Not explicit [0], an unexpected type, trailing bytes, non-ASCII, garbage.
        assert_eq!(
            other_name_string(&der::tlv(der::TAG_IA5_STRING, b"1-2")),
            None
        );
        assert_eq!(
            other_name_string(&der::tlv(0xa0, &der::tlv(der::TAG_OCTET_STRING, b"1-2"))),
            None
        );
        let mut trailing = ia5.clone();
        trailing.push(0);
        assert_eq!(other_name_string(&trailing), None);
        assert_eq!(
            other_name_string(&der::tlv(
                0xa0,
                &der::tlv(der::TAG_UTF8_STRING, "ü".as_bytes())
            )),
            None
        );
        for garbage in [
            &[][..],
            &[0xa0],
            &[0xa0, 0x80],
            &[0xa0, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert_eq!(other_name_string(garbage), None);
        }
    }

    #[test]
    fn string_decoding() {
        assert_eq!(
            decode_string(Tag::BmpString, &[0, b'h', 0, b'i']).as_deref(),
            Some("hi")
        );
        assert_eq!(decode_string(Tag::BmpString, &[0xd8, 0]), None);
        assert_eq!(decode_string(Tag::BmpString, &[0]), None);
        assert_eq!(
            decode_string(Tag::UniversalString, &[0, 0, 0, b'x']).as_deref(),
            Some("x")
        );
        assert_eq!(decode_string(Tag::UniversalString, &[0, 0x11, 0, 0]), None);
        assert_eq!(
            decode_string(Tag::TeletexString, &[0xfc]).as_deref(),
            Some("ü")
        );
        assert_eq!(decode_string(Tag::PrintableString, &[0xfc]), None);
        assert_eq!(decode_string(Tag::Integer, &[1]), None);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(ClientCert::from_chain(vec![]), Err(CertificateError::Empty));
        for bytes in [
            vec![],
            vec![0x30],
            vec![0x30, 0x03, 1, 2, 3],
            vec![0xff; 64],
        ] {
            assert!(matches!(
                ClientCert::from_chain(vec![CertificateDer::from(bytes)]),
                Err(CertificateError::Parse(_))
            ));
        }
    }
}
