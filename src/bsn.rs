//! The Dutch citizen service number (BSN): parsing with the 11-check ("elfproef") and the
//! `urn:oid:2.16.840.1.113883.2.4.6.3:<BSN>` form credentials carry.
//!
//! `Bsn`'s `Debug` hides the number so that it cannot end up in a log line by accident.

use std::fmt;

/// The OID of the BSN naming system.
pub const BSN_OID: &str = "2.16.840.1.113883.2.4.6.3";
/// The FHIR identifier system of the BSN.
pub const BSN_SYSTEM: &str = "http://fhir.nl/fhir/NamingSystem/bsn";

/// A BSN that passed the 11-check. Nine digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bsn(String);

/// Why a string is not a BSN. Never contains the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BsnError {
    /// Not 8 or 9 digits.
    #[error("a BSN has 9 digits")]
    Format,
    /// The 11-check failed.
    #[error("the BSN fails the 11-check")]
    Checksum,
    /// Not of the form `urn:oid:2.16.840.1.113883.2.4.6.3:<BSN>`.
    #[error("subject is not urn:oid:2.16.840.1.113883.2.4.6.3:<BSN>")]
    NotBsnUrn,
}

impl Bsn {
    /// Parses a BSN; an 8-digit number gets a leading zero.
    pub fn parse(s: &str) -> Result<Self, BsnError> {
        if !(s.len() == 8 || s.len() == 9) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BsnError::Format);
        }
        let digits = if s.len() == 8 {
            format!("0{s}")
        } else {
            s.to_owned()
        };
        let weights = [9i32, 8, 7, 6, 5, 4, 3, 2, -1];
        let sum: i32 = digits
            .bytes()
            .zip(weights)
            .map(|(b, w)| i32::from(b - b'0') * w)
            .sum();
        if sum % 11 != 0 || digits.bytes().all(|b| b == b'0') {
            return Err(BsnError::Checksum);
        }
        Ok(Bsn(digits))
    }

    /// Parses `urn:oid:2.16.840.1.113883.2.4.6.3:<BSN>`.
    pub fn from_urn(urn: &str) -> Result<Self, BsnError> {
        let rest = urn
            .strip_prefix("urn:oid:")
            .and_then(|r| r.strip_prefix(BSN_OID))
            .and_then(|r| r.strip_prefix(':'))
            .ok_or(BsnError::NotBsnUrn)?;
        Self::parse(rest)
    }

    /// The `urn:oid:` form.
    #[must_use]
    pub fn to_urn(&self) -> String {
        format!("urn:oid:{BSN_OID}:{}", self.0)
    }

    /// The nine digits. Handle with care: never log them.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bsn(***)")
    }
}

impl serde::Serialize for Bsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Bsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Bsn::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde for an `Option<Bsn>` written as a string that is empty when there is none (the audit
/// record's `bsn` field, whose JSON form the hash chain fixes).
pub mod empty_when_none {
    use super::Bsn;

    /// Writes the nine digits, or `""`.
    pub fn serialize<S: serde::Serializer>(v: &Option<Bsn>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_ref().map_or("", Bsn::as_str))
    }

    /// Reads `""` as none, anything else as a BSN (which must pass the 11-check).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Bsn>, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        if s.is_empty() {
            return Ok(None);
        }
        Bsn::parse(&s).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_check_table() {
        for ok in [
            "999999990",
            "123456782",
            "999911120",
            "077461848",
            "111222333",
            "909090907",
            "77461848",
        ] {
            assert!(Bsn::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Bsn::parse("77461848").unwrap().as_str(), "077461848");
        for (bad, err) in [
            ("123456780", BsnError::Checksum),
            ("162339584", BsnError::Checksum),
            ("000000000", BsnError::Checksum),
            ("12345678A", BsnError::Format),
            ("1234567890", BsnError::Format),
            ("", BsnError::Format),
            ("１２３４５６７８２", BsnError::Format),
        ] {
            assert_eq!(Bsn::parse(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn urn_form() {
        let b = Bsn::from_urn("urn:oid:2.16.840.1.113883.2.4.6.3:999999990").unwrap();
        assert_eq!(b.to_urn(), "urn:oid:2.16.840.1.113883.2.4.6.3:999999990");
        assert_eq!(format!("{b:?}"), "Bsn(***)");
        assert_eq!(
            Bsn::from_urn("urn:oid:2.16.840.1.113883.2.4.6.1:999999990"),
            Err(BsnError::NotBsnUrn)
        );
        assert_eq!(
            Bsn::from_urn("urn:oid:2.16.840.1.113883.2.4.6.3:123456780"),
            Err(BsnError::Checksum)
        );
    }

    #[test]
    fn serde_keeps_the_digits_and_refuses_bad_ones() {
        let b = Bsn::parse("999999990").unwrap();
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"999999990\"");
        assert_eq!(serde_json::from_str::<Bsn>("\"999999990\"").unwrap(), b);
        let err = serde_json::from_str::<Bsn>("\"123456780\"").unwrap_err();
        assert!(
            err.to_string().starts_with("the BSN fails the 11-check"),
            "{err}"
        );
        assert!(!err.to_string().contains("123456780"));
    }
}
