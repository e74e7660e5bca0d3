//! The Hub's one resource type, `perinatologie/dossier`: its properties, their validation, and
//! search filters. Everything that comes from a client passes through [`Dossier::from_properties`]
//! or [`Filter::parse`] before it reaches the store.

use std::collections::BTreeMap;

use crate::bsn::Bsn;

use super::HubError;
pub use crate::store::hub::{Condition, Dossier, DossierRecord, Filter};

fn invalid(code: &'static str, message: String) -> HubError {
    HubError::Invalid { code, message }
}

/// The resource type attribute of every dossier.
pub const RESOURCE_TYPE: &str = "perinatologie/dossier";

/// The properties a client registers, in document order.
pub const PROPERTIES: [&str; 9] = [
    "client_bsn",
    "client_displayname",
    "client_birthdate",
    "reference",
    "gravida",
    "para",
    "edd",
    "start_at",
    "end_at",
];

/// Longest text property (display name, reference).
const MAX_TEXT: usize = 200;

/// A `YYYYMMDD` calendar date.
pub fn date(name: &str, value: &str) -> Result<String, HubError> {
    let bad = || invalid("invalid-date", format!("{name} must be a date as YYYYMMDD"));
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let format = time::macros::format_description!("[year][month][day]");
    let parsed = time::Date::parse(value, &format).map_err(|_| bad())?;
    if parsed.year() < 1900 {
        return Err(bad());
    }
    Ok(value.to_owned())
}

/// A non-negative integer of at most two digits (gravida, para).
pub fn count(name: &str, value: &str) -> Result<i64, HubError> {
    let ok = !value.is_empty()
        && value.len() <= 2
        && value.bytes().all(|b| b.is_ascii_digit())
        && !(value.len() > 1 && value.starts_with('0'));
    if !ok {
        return Err(invalid(
            "invalid-number",
            format!("{name} must be a non-negative integer (0-99)"),
        ));
    }
    value
        .parse()
        .map_err(|_| invalid("invalid-number", format!("{name} is not a number")))
}

/// A BSN that passes the 11-check.
pub fn bsn(value: &str) -> Result<Bsn, HubError> {
    Bsn::parse(value).map_err(|_| {
        invalid(
            "invalid-bsn",
            "client_bsn is not a valid BSN (9 digits, 11-check)".into(),
        )
    })
}

/// Free text: printable, trimmed, at most [`MAX_TEXT`] characters.
fn text(name: &str, value: &str) -> Result<String, HubError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(invalid(
            "invalid-text",
            format!("{name} must be 1 to {MAX_TEXT} printable characters"),
        ));
    }
    Ok(value.to_owned())
}

impl Dossier {
    /// Validates the properties of a registration. Every property except `end_at` is required;
    /// unknown or repeated ones were refused by the XML reader already.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, HubError> {
        let get = |name: &'static str| {
            props
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or(HubError::Invalid {
                    code: "missing-property",
                    message: format!("property {name} is required"),
                })
        };
        let dossier = Dossier {
            client_bsn: bsn(get("client_bsn")?)?,
            client_displayname: text("client_displayname", get("client_displayname")?)?,
            client_birthdate: date("client_birthdate", get("client_birthdate")?)?,
            reference: text("reference", get("reference")?)?,
            gravida: count("gravida", get("gravida")?)?,
            para: count("para", get("para")?)?,
            edd: date("edd", get("edd")?)?,
            start_at: date("start_at", get("start_at")?)?,
            end_at: match props.get("end_at").map(|v| v.trim()) {
                None | Some("") => None,
                Some(v) => Some(date("end_at", v)?),
            },
        };
        if dossier
            .end_at
            .as_deref()
            .is_some_and(|e| e < dossier.start_at.as_str())
        {
            return Err(invalid("invalid-date", "end_at is before start_at".into()));
        }
        Ok(dossier)
    }

    /// The properties as `(name, value)` pairs, in document order.
    #[must_use]
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("client_bsn", self.client_bsn.as_str().to_owned()),
            ("client_displayname", self.client_displayname.clone()),
            ("client_birthdate", self.client_birthdate.clone()),
            ("reference", self.reference.clone()),
            ("gravida", self.gravida.to_string()),
            ("para", self.para.to_string()),
            ("edd", self.edd.clone()),
            ("start_at", self.start_at.clone()),
        ];
        if let Some(e) = &self.end_at {
            out.push(("end_at", e.clone()));
        }
        out
    }
}

impl Filter {
    /// Parses a query string: every documented property (plus `key` and
    /// `hub_provider_account`) may be a filter; anything else is refused.
    pub fn parse(query: Option<&str>) -> Result<Self, HubError> {
        let mut seen = std::collections::HashSet::new();
        let mut conditions = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if !seen.insert(name.clone().into_owned()) {
                return Err(invalid(
                    "invalid-filter",
                    format!("filter {} is given more than once", printable(&name)),
                ));
            }
            let value = value.trim();
            let condition = match name.as_ref() {
                "client_bsn" => Condition::Bsn(bsn(value)?),
                "client_birthdate" | "edd" | "start_at" | "end_at" => {
                    let column = PROPERTIES
                        .iter()
                        .copied()
                        .find(|p| *p == name)
                        .unwrap_or("edd");
                    Condition::Text(column, date(column, value)?)
                }
                "gravida" => Condition::Number("gravida", count("gravida", value)?),
                "para" => Condition::Number("para", count("para", value)?),
                "client_displayname" => {
                    Condition::Text("client_displayname", text("client_displayname", value)?)
                }
                "reference" => Condition::Text("reference", text("reference", value)?),
                "key" => Condition::Text("resource_key", text("key", value)?),
                "hub_provider_account" => {
                    Condition::Text("account", text("hub_provider_account", value)?)
                }
                other => {
                    return Err(invalid(
                        "invalid-filter",
                        format!("unknown filter {}", printable(other)),
                    ))
                }
            };
            conditions.push(condition);
        }
        if conditions.is_empty() {
            return Err(invalid(
                "invalid-filter",
                "give at least one filter, e.g. client_bsn".into(),
            ));
        }
        Ok(Self { conditions })
    }
}

/// A client-supplied name as it may appear in an error message.
#[must_use]
pub fn printable(s: &str) -> String {
    if !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        s.to_owned()
    } else {
        "(unprintable)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const GOOD: [(&str, &str); 8] = [
        ("client_bsn", "999999990"),
        ("client_displayname", "J. Jansen"),
        ("client_birthdate", "19900215"),
        ("reference", "ZW-2026-001"),
        ("gravida", "2"),
        ("para", "1"),
        ("edd", "20270301"),
        ("start_at", "20260701"),
    ];

    #[test]
    fn validates_each_property() {
        let d = Dossier::from_properties(&props(&GOOD)).unwrap();
        assert_eq!(d.gravida, 2);
        assert_eq!(d.end_at, None);
        let with = |k: &str, v: &str| {
            let mut p = props(&GOOD);
            p.insert(k.into(), v.into());
            Dossier::from_properties(&p).map_err(|e| e.code())
        };
        assert_eq!(with("client_bsn", "162339584"), Err("invalid-bsn"));
        assert_eq!(with("client_bsn", " 99999999 0"), Err("invalid-bsn"));
        assert_eq!(with("client_birthdate", "19900230"), Err("invalid-date"));
        assert_eq!(with("client_birthdate", "1990-02-15"), Err("invalid-date"));
        assert_eq!(with("edd", "2027031"), Err("invalid-date"));
        assert_eq!(with("gravida", "-1"), Err("invalid-number"));
        assert_eq!(with("gravida", "+1"), Err("invalid-number"));
        assert_eq!(with("para", "1.0"), Err("invalid-number"));
        assert_eq!(with("para", "01"), Err("invalid-number"));
        assert_eq!(with("para", "100"), Err("invalid-number"));
        assert_eq!(with("end_at", "20260601"), Err("invalid-date"));
        assert_eq!(with("reference", "\u{7}"), Err("invalid-text"));
        assert!(with("end_at", "20270401").is_ok());
        let mut missing = props(&GOOD);
        missing.remove("reference");
        assert_eq!(
            Dossier::from_properties(&missing).map_err(|e| e.code()),
            Err("missing-property")
        );
    }

    #[test]
    fn filters() {
        let f = Filter::parse(Some("client_bsn=999999990&gravida=2")).unwrap();
        assert_eq!(
            f.conditions,
            vec![
                Condition::Bsn(Bsn::parse("999999990").unwrap()),
                Condition::Number("gravida", 2)
            ]
        );
        let code = |q: &str| Filter::parse(Some(q)).unwrap_err().code();
        assert_eq!(code(""), "invalid-filter");
        assert_eq!(
            code("client_bsn=999999990&client_bsn=999999990"),
            "invalid-filter"
        );
        assert_eq!(code("bsn=999999990"), "invalid-filter");
        assert_eq!(code("client_bsn=123"), "invalid-bsn");
        assert_eq!(code("edd=tomorrow"), "invalid-date");
    }

    #[test]
    fn a_dossier_debug_never_shows_the_bsn() {
        let d = Dossier::from_properties(&props(&GOOD)).unwrap();
        let text = format!("{d:?}");
        assert!(
            !text.contains("999999990") && text.contains("Bsn(***)"),
            "{text}"
        );
        let f = Filter::parse(Some("client_bsn=999999990")).unwrap();
        assert!(!format!("{f:?}").contains("999999990"));
    }
}
