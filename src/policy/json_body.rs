//! A JSON request body as a policy reads it: parsed once, streaming, with a depth limit and no
//! repeated member name in any object, keeping only the few facts a rule can ask about (the
//! `resourceType`, `type`, `status` and `id` of the resource, and the `resourceType` of each
//! Bundle entry's resource). Nothing else of the body is kept, and nothing of it is ever logged.
//!
//! Why not a `serde_json::Value`: a FHIR document with attachments is megabytes; building its
//! tree only to read five strings costs memory for nothing. Why not serde_json's own depth limit
//! (128): ours is lower and gives its own error, so a deeply nested body is refused as such.
//!
//! **Invariant:** pure; [`scan`] never panics and never recurses deeper than [`MAX_DEPTH`].

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting of arrays and objects accepted (the body itself is level 1). A FHIR
/// resource nests far less; a Questionnaire's items, two levels each, fit thirty times.
pub const MAX_DEPTH: usize = 64;

/// Why a body is not JSON a rule can read. The messages are what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonBodyError {
    /// Not JSON (or not UTF-8, or something after the value).
    #[error("the request body is not valid JSON")]
    Invalid,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    #[error("the request body is nested too deeply")]
    TooDeep,
    /// An object has the same member name twice.
    #[error("the request body has a duplicate member name")]
    Duplicate,
    /// The body is JSON but not an object.
    #[error("the request body is not a JSON object")]
    NotAnObject,
}

impl JsonBodyError {
    /// The message, as the client is told it.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::Invalid => "the request body is not valid JSON",
            Self::TooDeep => "the request body is nested too deeply",
            Self::Duplicate => "the request body has a duplicate member name",
            Self::NotAnObject => "the request body is not a JSON object",
        }
    }
}

/// What a rule can ask about a JSON body. A member that is absent, or not a string, is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonFacts {
    /// `resourceType`.
    pub resource_type: Option<String>,
    /// `type` (a Bundle's type).
    pub bundle_type: Option<String>,
    /// `status` (a Task's status, and that of most resources).
    pub status: Option<String>,
    /// `id`.
    pub id: Option<String>,
    /// For each element of `entry` (when it is an array): its `resource.resourceType`.
    pub entry_types: Vec<Option<String>>,
    /// Whether `entry` is present and not an array of objects.
    pub entry_malformed: bool,
}

const TOO_DEEP: &str = "poortwachter: nested too deeply";
const DUPLICATE: &str = "poortwachter: duplicate member name";

/// Parses `bytes` as one JSON object and returns its facts.
pub fn scan(bytes: &[u8]) -> Result<JsonFacts, JsonBodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let facts = Top.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(|_| JsonBodyError::Invalid)?;
    facts.ok_or(JsonBodyError::NotAnObject)
}

fn classify(e: serde_json::Error) -> JsonBodyError {
    let text = e.to_string();
    // serde_json's own limit (128) lies beyond ours; both mean the same.
    if text.starts_with(TOO_DEEP) || text.starts_with("recursion limit exceeded") {
        JsonBodyError::TooDeep
    } else if text.starts_with(DUPLICATE) {
        JsonBodyError::Duplicate
    } else {
        JsonBodyError::Invalid
    }
}

/// Any JSON value at `depth` (1 = the body, 2 = its members, ...), checked and dropped.
#[derive(Clone, Copy)]
struct Skip {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// The visitor methods for scalars (and `null`) that all give `$answer`: a scalar where a
/// container is looked for is no fact, only a value to pass over.
macro_rules! scalars {
    ($answer:expr; $($name:ident: $t:ty),*) => {
        $(
            fn $name<E>(self, _: $t) -> Result<Self::Value, E> {
                $answer
            }
        )*
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            $answer
        }
    };
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalars!(Ok(()); visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = nested(self.depth)?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = nested(self.depth)?;
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !names.insert(name) {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// The seed for the members of a container at `depth`, or the depth error.
fn nested<E: serde::de::Error>(depth: usize) -> Result<Skip, E> {
    if depth > MAX_DEPTH {
        return Err(E::custom(TOO_DEEP));
    }
    Ok(Skip { depth: depth + 1 })
}

/// A string member, checked like any value; `None` when it is not a string.
struct MaybeString {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MaybeString {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MaybeString {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalars!(Ok(None); visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);
    fn visit_str<E>(self, v: &str) -> Result<Option<String>, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Option<String>, E> {
        Ok(Some(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<String>, A::Error> {
        Skip { depth: self.depth }.visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<String>, A::Error> {
        Skip { depth: self.depth }.visit_map(map).map(|()| None)
    }
}

/// The body: an object (its facts) or any other value (`None`).
struct Top;

impl<'de> DeserializeSeed<'de> for Top {
    type Value = Option<JsonFacts>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<JsonFacts>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top {
    type Value = Option<JsonFacts>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    scalars!(Ok(None); visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip { depth: 1 }.visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut facts = JsonFacts::default();
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "resourceType" => {
                    facts.resource_type = map.next_value_seed(MaybeString { depth: 2 })?
                }
                "type" => facts.bundle_type = map.next_value_seed(MaybeString { depth: 2 })?,
                "status" => facts.status = map.next_value_seed(MaybeString { depth: 2 })?,
                "id" => facts.id = map.next_value_seed(MaybeString { depth: 2 })?,
                "entry" => match map.next_value_seed(Entries)? {
                    Some(types) => facts.entry_types = types,
                    None => facts.entry_malformed = true,
                },
                _ => map.next_value_seed(Skip { depth: 2 })?,
            }
            if !names.insert(name) {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
        }
        Ok(Some(facts))
    }
}

/// `entry` (at depth 2): for an array of objects, each one's `resource.resourceType`; `None`
/// for anything else.
struct Entries;

impl<'de> DeserializeSeed<'de> for Entries {
    type Value = Option<Vec<Option<String>>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entries {
    type Value = Option<Vec<Option<String>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of entries")
    }
    scalars!(Ok(None); visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip { depth: 2 }.visit_map(map).map(|()| None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut types = Vec::new();
        let mut all_objects = true;
        while let Some(t) = seq.next_element_seed(Entry)? {
            match t {
                Some(t) => types.push(t),
                None => all_objects = false,
            }
        }
        Ok(all_objects.then_some(types))
    }
}

/// One entry (depth 3): `Some(resource.resourceType)` for an object, `None` for another value.
struct Entry;

impl<'de> DeserializeSeed<'de> for Entry {
    type Value = Option<Option<String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entry {
    type Value = Option<Option<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an entry")
    }
    scalars!(Ok(None); visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip { depth: 3 }.visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut names = HashSet::new();
        let mut resource_type = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == "resource" {
                resource_type = map.next_value_seed(Resource)?;
            } else {
                map.next_value_seed(Skip { depth: 4 })?;
            }
            if !names.insert(name) {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
        }
        Ok(Some(resource_type))
    }
}

/// An entry's `resource` (depth 4): its `resourceType`, when it is an object with a string one.
struct Resource;

impl<'de> DeserializeSeed<'de> for Resource {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Resource {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a resource")
    }
    scalars!(Ok(None); visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip { depth: 4 }.visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut names = HashSet::new();
        let mut resource_type = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == "resourceType" {
                resource_type = map.next_value_seed(MaybeString { depth: 5 })?;
            } else {
                map.next_value_seed(Skip { depth: 5 })?;
            }
            if !names.insert(name) {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
        }
        Ok(resource_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_document_bundle() {
        let body = br#"{"resourceType":"Bundle","id":"b1","type":"document","entry":[
            {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Composition","status":"final"}},
            {"resource":{"resourceType":"Patient","name":[{"family":"x"}]}},
            {"fullUrl":"urn:uuid:3"}]}"#;
        let f = scan(body).unwrap();
        assert_eq!(f.resource_type.as_deref(), Some("Bundle"));
        assert_eq!(f.bundle_type.as_deref(), Some("document"));
        assert_eq!(f.id.as_deref(), Some("b1"));
        assert_eq!(f.status, None, "only the top level's status");
        assert_eq!(
            f.entry_types,
            vec![Some("Composition".into()), Some("Patient".into()), None]
        );
        assert!(!f.entry_malformed);
    }

    #[test]
    fn task_and_non_string_members() {
        let f =
            scan(br#"{"resourceType":"Task","id":"t-1","status":"cancelled","entry":5}"#).unwrap();
        assert_eq!(f.status.as_deref(), Some("cancelled"));
        assert!(f.entry_malformed);
        let f =
            scan(br#"{"resourceType":1,"status":{"a":1},"id":null,"type":["document"]}"#).unwrap();
        assert_eq!(f, JsonFacts::default());
        let f = scan(br#"{"entry":[1,{"resource":"x"}]}"#).unwrap();
        assert!(f.entry_malformed);
    }

    #[test]
    fn refusals() {
        assert_eq!(scan(b""), Err(JsonBodyError::Invalid));
        assert_eq!(scan(b"{"), Err(JsonBodyError::Invalid));
        assert_eq!(scan(b"{} x"), Err(JsonBodyError::Invalid));
        assert_eq!(scan(b"\xef\xbb\xbf{}"), Err(JsonBodyError::Invalid));
        assert_eq!(scan(br#"{"a":"\ud800"}"#), Err(JsonBodyError::Invalid));
        assert_eq!(scan(b"[]"), Err(JsonBodyError::NotAnObject));
        assert_eq!(scan(b"\"Bundle\""), Err(JsonBodyError::NotAnObject));
        for dup in [
            r#"{"resourceType":"Bundle","resourceType":"Task"}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"entry":[{"resource":{"resourceType":"A","resourceType":"B"}}]}"#,
            r#"{"entry":[{"resource":{},"resource":{}}]}"#,
            r#"{"x":[[{"deep":{"b":1,"b":2}}]]}"#,
            r#"{"entry":[],"entry":[]}"#,
        ] {
            assert_eq!(scan(dup.as_bytes()), Err(JsonBodyError::Duplicate), "{dup}");
        }
    }

    #[test]
    fn the_depth_limit_holds_everywhere() {
        let nest = |depth: usize, open: &str, close: &str| {
            format!(
                "{{\"x\":{}1{}}}",
                open.repeat(depth - 1),
                close.repeat(depth - 1)
            )
        };
        assert!(scan(nest(MAX_DEPTH, "[", "]").as_bytes()).is_ok());
        assert_eq!(
            scan(nest(MAX_DEPTH + 1, "[", "]").as_bytes()),
            Err(JsonBodyError::TooDeep)
        );
        assert_eq!(
            scan(nest(10_000, "[", "]").as_bytes()),
            Err(JsonBodyError::TooDeep)
        );
        assert_eq!(
            scan(nest(10_000, "{\"a\":", "}").as_bytes()),
            Err(JsonBodyError::TooDeep)
        );
        let entry = format!(
            "{{\"entry\":[{{\"resource\":{{\"resourceType\":\"A\",\"x\":{}1{}}}}}]}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert_eq!(scan(entry.as_bytes()), Err(JsonBodyError::TooDeep));
        assert_eq!(
            scan(format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes()),
            Err(JsonBodyError::TooDeep)
        );
    }
}
