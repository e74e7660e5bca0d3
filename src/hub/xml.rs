//! The Hub's XML: a strict reader for the one document a client sends (`<resource>` with
//! `<property name="...">` children) and a small writer for the answers.
//!
//! The reader accepts exactly that shape and nothing else: no DTD (so no external entities and
//! no entity expansion: XXE and "billion laughs" are refused before anything is resolved), no
//! processing instructions, no namespaces, no nested elements inside a property, no unknown or
//! repeated property, UTF-8 only, a size limit. Only the five predefined entities and character
//! references are decoded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::dossier::{printable, PROPERTIES, RESOURCE_TYPE};
use super::HubError;

/// Largest request body the Hub reads.
pub const MAX_BODY: usize = 64 * 1024;

fn malformed(message: impl Into<String>) -> HubError {
    HubError::Invalid {
        code: "invalid-xml",
        message: message.into(),
    }
}

fn name_of(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

/// The single attribute `expected` of an element; any other attribute is refused.
fn only_attribute(e: &BytesStart<'_>, expected: &str) -> Result<String, HubError> {
    let mut value = None;
    for attr in e.attributes() {
        let attr = attr.map_err(|_| malformed("malformed attribute"))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        if key != expected {
            return Err(malformed(format!(
                "unexpected attribute {} on <{}>",
                printable(&key),
                printable(&name_of(e))
            )));
        }
        let v = attr
            .unescape_value()
            .map_err(|_| malformed("attribute value has an unknown entity"))?;
        value = Some(v.into_owned());
    }
    value.ok_or_else(|| {
        malformed(format!(
            "<{}> needs the attribute {expected}",
            printable(&name_of(e))
        ))
    })
}

/// Whether the content of `<?xml ...?>` follows XML 1.0 §2.8 `XMLDecl`: `version` (`1.` and
/// digits), then optionally `encoding` and `standalone` (`yes`/`no`), in that order, each quoted,
/// and nothing else. The XML reader itself only reads the attributes it is asked for.
pub(crate) fn declaration_is_well_formed(decl: &[u8]) -> bool {
    let Some(rest) = decl.strip_prefix(b"xml") else {
        return false;
    };
    let Some((version, mut rest)) = pseudo_attribute(rest, b"version") else {
        return false;
    };
    let mut ok = version
        .strip_prefix(b"1.")
        .is_some_and(|digits| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit));
    if let Some((encoding, after)) = pseudo_attribute(rest, b"encoding") {
        ok &= encoding.first().is_some_and(u8::is_ascii_alphabetic)
            && encoding
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        rest = after;
    }
    if let Some((standalone, after)) = pseudo_attribute(rest, b"standalone") {
        ok &= standalone == b"yes" || standalone == b"no";
        rest = after;
    }
    ok && rest.trim_ascii().is_empty()
}

/// `rest` as white space, `name`, `=` and a quoted value: the value and what follows it.
fn pseudo_attribute<'a>(rest: &'a [u8], name: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let after_space = rest.trim_ascii_start();
    if after_space.len() == rest.len() {
        return None;
    }
    let value_start = after_space
        .strip_prefix(name)?
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let (&quote, value_and_rest) = value_start.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let end = value_and_rest.iter().position(|&b| b == quote)?;
    let (value, quote_and_rest) = value_and_rest.split_at(end);
    Some((value, quote_and_rest.get(1..).unwrap_or_default()))
}

/// Reads a registration document into its properties (name → text). Refuses everything that is
/// not exactly `<resource type="perinatologie/dossier"><property name="...">text</property>...`.
pub fn read_resource(body: &[u8]) -> Result<BTreeMap<String, String>, HubError> {
    if body.len() > MAX_BODY {
        return Err(HubError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed("body is not UTF-8"))?;
    // XML 1.0 §2.2: no control characters other than tab, line feed and carriage return.
    if text.chars().any(|c| {
        matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
    }) {
        return Err(malformed("a character that XML does not allow"));
    }
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = true;
    config.trim_text(true);

    #[derive(PartialEq)]
    enum At {
        Prolog,
        Resource,
        Property(String),
        Done,
    }
    let mut at = At::Prolog;
    let mut props = BTreeMap::new();
    let mut current = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("not well-formed XML ({})", short_error(&e))))?;
        match event {
            Event::Decl(decl) => {
                if at != At::Prolog {
                    return Err(malformed("XML declaration not at the start"));
                }
                if !declaration_is_well_formed(&decl) {
                    return Err(malformed("malformed XML declaration"));
                }
                if let Some(Ok(enc)) = decl.encoding() {
                    if !enc.eq_ignore_ascii_case(b"utf-8") {
                        return Err(malformed("only UTF-8 documents are accepted"));
                    }
                }
            }
            Event::DocType(_) => {
                return Err(malformed(
                    "document type declarations (DTD, entities) are not accepted",
                ))
            }
            Event::PI(_) => return Err(malformed("processing instructions are not accepted")),
            Event::Comment(_) => {}
            Event::Start(e) => match &at {
                At::Prolog => {
                    if e.name().as_ref() != b"resource" {
                        return Err(malformed(format!(
                            "root element must be <resource>, not <{}>",
                            printable(&name_of(&e))
                        )));
                    }
                    let kind = only_attribute(&e, "type")?;
                    if kind != RESOURCE_TYPE {
                        return Err(HubError::Invalid {
                            code: "invalid-resource-type",
                            message: format!("resource type must be {RESOURCE_TYPE}"),
                        });
                    }
                    at = At::Resource;
                }
                At::Resource => {
                    if e.name().as_ref() != b"property" {
                        return Err(malformed(format!(
                            "<resource> holds only <property> elements, not <{}>",
                            printable(&name_of(&e))
                        )));
                    }
                    let name = only_attribute(&e, "name")?;
                    if !PROPERTIES.contains(&name.as_str()) {
                        return Err(HubError::Invalid {
                            code: "unknown-property",
                            message: format!("unknown property {}", printable(&name)),
                        });
                    }
                    if props.contains_key(&name) {
                        return Err(HubError::Invalid {
                            code: "repeated-property",
                            message: format!("property {name} is given more than once"),
                        });
                    }
                    current.clear();
                    at = At::Property(name);
                }
                At::Property(_) => return Err(malformed("a property holds text only")),
                At::Done => return Err(malformed("content after the root element")),
            },
            Event::Text(t) => {
                let value = t
                    .unescape()
                    .map_err(|_| malformed("text has an unknown entity"))?;
                match &at {
                    At::Property(_) => current.push_str(&value),
                    _ if value.trim().is_empty() => {}
                    _ => return Err(malformed("text outside a property")),
                }
            }
            Event::CData(c) => match &at {
                At::Property(_) => current.push_str(
                    std::str::from_utf8(&c).map_err(|_| malformed("CDATA is not UTF-8"))?,
                ),
                _ => return Err(malformed("CDATA outside a property")),
            },
            Event::End(_) => match std::mem::replace(&mut at, At::Done) {
                At::Property(name) => {
                    if current.len() > 1024 {
                        return Err(malformed(format!("property {name} is too long")));
                    }
                    props.insert(name, std::mem::take(&mut current));
                    at = At::Resource;
                }
                At::Resource => at = At::Done,
                At::Prolog | At::Done => return Err(malformed("unexpected end tag")),
            },
            Event::Empty(_) => return Err(malformed("unexpected empty element")),
            Event::Eof => break,
        }
    }
    if at != At::Done {
        return Err(malformed("document has no complete <resource> element"));
    }
    Ok(props)
}

fn short_error(e: &quick_xml::Error) -> String {
    let s = e.to_string();
    let s: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    s
}

/// Escapes text for element content and attribute values.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An XML answer under construction (declaration included).
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// A document with the XML declaration.
    #[must_use]
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// `<name>text</name>`.
    pub fn element(&mut self, name: &str, text: &str) -> &mut Self {
        let _ = write!(self.out, "<{name}>{}</{name}>", escape(text));
        self
    }

    /// `<name attr="value">` (open).
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"{}\"", escape(v));
        }
        self.out.push('>');
        self
    }

    /// Escaped text content.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// `<property name="name">value</property>`.
    pub fn property(&mut self, name: &str, value: &str) -> &mut Self {
        let _ = write!(
            self.out,
            "<property name=\"{}\">{}</property>",
            escape(name),
            escape(value)
        );
        self
    }

    /// The document.
    #[must_use]
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> &'static str {
        read_resource(body.as_bytes()).unwrap_err().code()
    }

    #[test]
    fn reads_the_documented_shape() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a registration -->
<resource type="perinatologie/dossier">
  <property name="client_bsn">999999990</property>
  <property name="client_displayname">J. de Vries &amp; Zn</property>
  <property name="reference"><![CDATA[ZW<1>]]></property>
  <property name="end_at"/>
</resource>"#;
        let p = read_resource(doc.as_bytes()).unwrap();
        assert_eq!(p["client_bsn"], "999999990");
        assert_eq!(p["client_displayname"], "J. de Vries & Zn");
        assert_eq!(p["reference"], "ZW<1>");
        assert_eq!(p["end_at"], "");
    }

    #[test]
    fn refuses_everything_else() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><resource type="perinatologie/dossier"><property name="reference">&x;</property></resource>"#;
        assert_eq!(code(xxe), "invalid-xml");
        let laughs = r#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><resource type="perinatologie/dossier"><property name="reference">&lol2;</property></resource>"#;
        assert_eq!(code(laughs), "invalid-xml");
        let undeclared = r#"<resource type="perinatologie/dossier"><property name="reference">&x;</property></resource>"#;
        assert_eq!(code(undeclared), "invalid-xml");
        assert_eq!(code("<resource"), "invalid-xml");
        assert_eq!(code(""), "invalid-xml");
        assert_eq!(code("<dossier/>"), "invalid-xml");
        assert_eq!(
            code(r#"<resource type="other"></resource>"#),
            "invalid-resource-type"
        );
        assert_eq!(code(r#"<resource></resource>"#), "invalid-xml");
        assert_eq!(
            code(r#"<resource type="perinatologie/dossier" x="1"></resource>"#),
            "invalid-xml"
        );
        assert_eq!(
            code(
                r#"<resource type="perinatologie/dossier"><property name="colour">1</property></resource>"#
            ),
            "unknown-property"
        );
        assert_eq!(
            code(
                r#"<resource type="perinatologie/dossier"><property name="para">1</property><property name="para">2</property></resource>"#
            ),
            "repeated-property"
        );
        assert_eq!(
            code(
                r#"<resource type="perinatologie/dossier"><property name="para"><b>1</b></property></resource>"#
            ),
            "invalid-xml"
        );
        assert_eq!(
            code(
                r#"<resource type="perinatologie/dossier"></resource><resource type="perinatologie/dossier"></resource>"#
            ),
            "invalid-xml"
        );
        assert_eq!(
            code(
                r#"<?xml-stylesheet href="x"?><resource type="perinatologie/dossier"></resource>"#
            ),
            "invalid-xml"
        );
        assert_eq!(
            code(
                r#"<?xml version="1.0" encoding="ISO-8859-1"?><resource type="perinatologie/dossier"></resource>"#
            ),
            "invalid-xml"
        );
        assert_eq!(
            code(
                r#"<resource type="perinatologie/dossier"><property name="para">1</property></resourcex>"#
            ),
            "invalid-xml"
        );
        assert_eq!(
            code(r#"<x:resource xmlns:x="urn:x" type="perinatologie/dossier"></x:resource>"#),
            "invalid-xml"
        );
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert_eq!(
            read_resource(deep.as_bytes()).unwrap_err().code(),
            "too-large"
        );
        let deep = format!(
            "<resource type=\"perinatologie/dossier\"><property name=\"para\">{}</property></resource>",
            "<a>".repeat(1000)
        );
        assert_eq!(code(&deep), "invalid-xml");
        assert_eq!(
            read_resource(&[0xff, 0xfe]).unwrap_err().code(),
            "invalid-xml"
        );
    }

    /// The XML declaration is read to its grammar (fuzzing found `<!DOCTYPE` inside a malformed
    /// one being accepted), and characters XML does not allow are refused.
    #[test]
    fn declaration_and_characters() {
        let message = |body: &str| match read_resource(body.as_bytes()).unwrap_err() {
            HubError::Invalid { code, message } => format!("{code}: {message}"),
            other => format!("{other:?}"),
        };
        let root = r#"<resource type="perinatologie/dossier"></resource>"#;
        for accepted in [
            r#"<?xml version="1.0"?>"#,
            r#"<?xml version='1.0' encoding='utf-8' standalone='yes'?>"#,
            "<?xml version = \"1.1\"\n standalone=\"no\" ?>",
        ] {
            assert!(
                read_resource(format!("{accepted}{root}").as_bytes()).is_ok(),
                "{accepted}"
            );
        }
        for refused in [
            r#"<?xml version="1.0" <!DOCTYPE r [<!ENTITY x "y">]> ?>"#,
            r#"<?xml version=1.0?>"#,
            r#"<?xml version="2.0"?>"#,
            r#"<?xml version="1."?>"#,
            r#"<?xml encoding="UTF-8"?>"#,
            r#"<?xml version="1.0" standalone="yes" encoding="UTF-8"?>"#,
            r#"<?xml version="1.0"encoding="UTF-8"?>"#,
            r#"<?xml version="1.0" standalone="maybe"?>"#,
            r#"<?xml version="1.0" encoding="-x"?>"#,
            r#"<?xml version="1.0" extra="1"?>"#,
            r#"<?xml version="1.0?>"#,
        ] {
            assert_eq!(
                message(&format!("{refused}{root}")),
                "invalid-xml: malformed XML declaration",
                "{refused}"
            );
        }
        for c in ['\0', '\u{8}', '\u{b}', '\u{1f}', '\u{fffe}'] {
            let body = format!(
                r#"<resource type="perinatologie/dossier"><property name="reference">a{c}b</property></resource>"#
            );
            assert_eq!(
                message(&body),
                "invalid-xml: a character that XML does not allow",
                "U+{:04X}",
                u32::from(c)
            );
        }
        let tab_and_newlines = "<resource type=\"perinatologie/dossier\">\t\r\n</resource>";
        assert!(read_resource(tab_and_newlines.as_bytes()).is_ok());
    }

    #[test]
    fn writer_escapes() {
        let mut w = Writer::new();
        w.open("resource", &[("type", "a\"<")])
            .property("reference", "x&y")
            .close("resource");
        let doc = w.finish();
        assert!(doc.ends_with(
            "<resource type=\"a&quot;&lt;\"><property name=\"reference\">x&amp;y</property></resource>"
        ));
    }
}
