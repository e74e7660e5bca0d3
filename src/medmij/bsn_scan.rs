//! Finds a BSN in a JSON request body: MedMij's resource interface identifies the person only
//! through the OAuth exchange, so a DVP's data must not name a BSN. Refused are
//!
//! - any object whose `system` is the BSN naming system (`http://fhir.nl/fhir/NamingSystem/bsn`,
//!   or its `urn:oid:2.16.840.1.113883.2.4.6.3` form), wherever it is;
//! - any identifier (the value of a member `identifier`, `masterIdentifier` or `valueIdentifier`,
//!   an object or an array of them) whose `value` is nine digits passing the 11-check.
//!
//! Streaming (serde's visitor, nothing of the body kept), depth-limited, never panics. A body
//! that is not JSON holds no BSN this scan could find; the policy refuses it anyway.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting looked at (deeper bodies are reported as holding a BSN: unreadable).
const MAX_DEPTH: usize = 64;

/// The BSN naming system in its URI and OID forms.
const BSN_SYSTEMS: [&str; 2] = [crate::bsn::BSN_SYSTEM, "urn:oid:2.16.840.1.113883.2.4.6.3"];

/// Member names whose value is an identifier (or a list of them).
const IDENTIFIER_MEMBERS: [&str; 3] = ["identifier", "masterIdentifier", "valueIdentifier"];

/// Whether `body` (JSON) names a BSN. An unreadable or too deeply nested JSON body counts as
/// naming one; an empty body names none.
#[must_use]
pub fn contains_bsn(body: &[u8]) -> bool {
    if body.is_empty() {
        return false;
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match (Node {
        depth: 0,
        identifier: false,
    })
    .deserialize(&mut de)
    {
        Ok(found) => found,
        // Not JSON: the policy reads JSON bodies only and refuses it; too deep: refuse here.
        Err(e) => e.to_string().starts_with(TOO_DEEP),
    }
}

const TOO_DEEP: &str = "poortwachter: nested too deeply";

/// One JSON value; `identifier`: it is (an element of) an identifier member's value.
#[derive(Clone, Copy)]
struct Node {
    depth: usize,
    identifier: bool,
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

/// A member's value: a string is remembered, anything else is a node.
struct Member(Node);

enum Seen {
    Str(String),
    Found(bool),
}

impl<'de> DeserializeSeed<'de> for Member {
    type Value = Seen;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member {
    type Value = Seen;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Seen, E> {
        Ok(Seen::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Seen, E> {
        Ok(Seen::Str(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Seen, E> {
        Ok(Seen::Found(false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::Found(false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Seen, E> {
        Ok(Seen::Found(false))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Seen, E> {
        Ok(Seen::Found(false))
    }
    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::Found(false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Seen, A::Error> {
        self.0.visit_seq(seq).map(Seen::Found)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Seen, A::Error> {
        self.0.visit_map(map).map(Seen::Found)
    }
}

fn deeper<E: serde::de::Error>(n: Node, identifier: bool) -> Result<Node, E> {
    if n.depth + 1 > MAX_DEPTH {
        return Err(E::custom(TOO_DEEP));
    }
    Ok(Node {
        depth: n.depth + 1,
        identifier,
    })
}

/// Nine digits passing the 11-check.
fn is_bsn(s: &str) -> bool {
    s.len() == 9 && crate::bsn::Bsn::parse(s).is_ok()
}

impl<'de> Visitor<'de> for Node {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let child = deeper(self, self.identifier)?;
        let mut found = false;
        while let Some(f) = seq.next_element_seed(child)? {
            found |= f;
        }
        Ok(found)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            let child = deeper(self, IDENTIFIER_MEMBERS.contains(&key.as_str()))?;
            match map.next_value_seed(Member(child))? {
                Seen::Found(f) => found |= f,
                Seen::Str(v) => {
                    found |= key == "system" && BSN_SYSTEMS.contains(&v.as_str());
                    found |= key == "value" && self.identifier && is_bsn(&v);
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsns_are_found_in_identifiers_and_by_system() {
        let yes = [
            r#"{"resourceType":"DocumentReference","subject":{"identifier":{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"123"}}}"#,
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"DocumentManifest","masterIdentifier":{"system":"urn:ietf:rfc:3986","value":"999999990"}}}]}"#,
            r#"{"identifier":[{"value":"x"},{"value":"111222333"}]}"#,
            r#"{"extension":[{"valueIdentifier":{"value":"999999990"}}]}"#,
            r#"{"a":{"b":[{"system":"urn:oid:2.16.840.1.113883.2.4.6.3"}]}}"#,
        ];
        for body in yes {
            assert!(contains_bsn(body.as_bytes()), "{body}");
        }
        let no = [
            r#"{"resourceType":"Binary","data":"OTk5OTk5OTkw","id":"999999990"}"#,
            r#"{"identifier":{"system":"urn:ietf:rfc:3986","value":"urn:uuid:6e1c7a0c-1f4b-4f4e-9a3e-3a7f0f7b2d11"}}"#,
            r#"{"identifier":{"value":"123456789"}}"#,
            r#"{"identifier":{"value":"99999999"}}"#,
            r#"{"identifier":{"value":"0999999990"}}"#,
            r#"{"text":"BSN 999999990 in vrije tekst"}"#,
            r#"{"identifier":{"value":999999990}}"#,
            "",
        ];
        for body in no {
            assert!(!contains_bsn(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn deep_or_broken_bodies_never_panic() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(contains_bsn(deep.as_bytes()), "too deep: refused");
        let deep_obj = "{\"a\":".repeat(70) + "1" + &"}".repeat(70);
        assert!(contains_bsn(deep_obj.as_bytes()));
        assert!(!contains_bsn(b"{not json"));
        assert!(!contains_bsn(b"\xff\xfe"));
    }
}
