//! What egress reads from the GP system's request (pure): the user from the
//! `X-Poortwachter-User-*` headers and the patient from `X-Poortwachter-Bsn` or the BSN in a
//! `Patient/_search` form body.

use axum::http::{HeaderMap, Method};

use super::EgressError;
use crate::bsn::{Bsn, BSN_SYSTEM};
use crate::oauth::request::UserIdentity;

/// The header that names the patient.
pub const BSN_HEADER: &str = "x-poortwachter-bsn";

/// The user headers: (header, required).
const USER_HEADERS: [(&str, bool); 6] = [
    ("x-poortwachter-user-uzi", true),
    ("x-poortwachter-user-name", true),
    ("x-poortwachter-user-role", true),
    ("x-poortwachter-user-initials", false),
    ("x-poortwachter-user-family-name", false),
    ("x-poortwachter-user-email", false),
];

/// The header names as the GP system's documentation writes them.
fn display(header: &str) -> String {
    header
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// One header's value: UTF-8, 1..=256 characters, no control characters, sent once.
fn text(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, EgressError> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    let bad = || EgressError::BadHeader(display(name));
    if values.next().is_some() {
        return Err(bad());
    }
    let s = std::str::from_utf8(v.as_bytes()).map_err(|_| bad())?.trim();
    if s.is_empty() || s.chars().count() > 256 || s.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

/// The user, when the headers name one. `required`: the route's purpose needs one (400 without).
pub fn user(headers: &HeaderMap, required: bool) -> Result<Option<UserIdentity>, EgressError> {
    let mut v = Vec::with_capacity(USER_HEADERS.len());
    for (name, _) in USER_HEADERS {
        v.push(text(headers, name)?);
    }
    let [uzi, name, role, initials, family_name, email]: [Option<String>; 6] = v
        .try_into()
        .map_err(|_| EgressError::BadHeader(String::new()))?;
    if let Some(u) = &uzi {
        if u.len() > 20 || !u.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EgressError::BadHeader(display(USER_HEADERS[0].0)));
        }
    }
    match (uzi, name, role) {
        (Some(uzi), Some(name), Some(role)) => Ok(Some(UserIdentity {
            uzi,
            name,
            role,
            initials,
            family_name,
            email,
        })),
        (None, None, None) if !required => Ok(None),
        (uzi, name, role) => {
            let missing = [uzi.is_none(), name.is_none(), role.is_none()]
                .iter()
                .zip(USER_HEADERS)
                .find(|(m, _)| **m)
                .map(|(_, (h, _))| display(h))
                .unwrap_or_default();
            Err(EgressError::MissingUser(missing))
        }
    }
}

/// The patient: `X-Poortwachter-Bsn`, or the BSN of the `identifier` of a `POST
/// .../Patient/_search` form body; both present must agree.
pub fn patient(
    headers: &HeaderMap,
    method: &Method,
    rest: &str,
    body: &[u8],
) -> Result<Bsn, EgressError> {
    let from_header = match text(headers, BSN_HEADER) {
        Ok(None) => None,
        Ok(Some(v)) => Some(Bsn::parse(&v).map_err(|_| EgressError::InvalidBsn)?),
        Err(_) => return Err(EgressError::InvalidBsn),
    };
    let searched = if method == Method::POST && rest.ends_with("/Patient/_search") {
        searched_bsn(body)?
    } else {
        None
    };
    match (from_header, searched) {
        (Some(h), Some(s)) if h != s => Err(EgressError::BsnMismatch),
        (Some(b), _) | (None, Some(b)) => Ok(b),
        (None, None) => Err(EgressError::MissingBsn),
    }
}

/// The BSN of `identifier=http://fhir.nl/fhir/NamingSystem/bsn|<BSN>` in a form body.
fn searched_bsn(body: &[u8]) -> Result<Option<Bsn>, EgressError> {
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        if k != "identifier" {
            continue;
        }
        if let Some(number) = v.strip_prefix(BSN_SYSTEM).and_then(|r| r.strip_prefix('|')) {
            let bsn = Bsn::parse(number).map_err(|_| EgressError::InvalidBsn)?;
            if found.as_ref().is_some_and(|f: &Bsn| *f != bsn) {
                return Err(EgressError::BsnMismatch);
            }
            found = Some(bsn);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_user_comes_from_three_headers_or_none() {
        let full = headers(&[
            ("x-poortwachter-user-uzi", "900012345"),
            ("x-poortwachter-user-name", "Dr. A. Huisarts"),
            ("x-poortwachter-user-role", "01.015"),
            ("x-poortwachter-user-initials", "A."),
        ]);
        let u = user(&full, true).unwrap().unwrap();
        assert_eq!(
            (u.uzi.as_str(), u.initials.as_deref()),
            ("900012345", Some("A."))
        );
        assert_eq!(user(&HeaderMap::new(), false).unwrap(), None);
        assert_eq!(
            user(&HeaderMap::new(), true).unwrap_err(),
            EgressError::MissingUser("X-Poortwachter-User-Uzi".into())
        );
        let no_role = headers(&[
            ("x-poortwachter-user-uzi", "900012345"),
            ("x-poortwachter-user-name", "Dr. A. Huisarts"),
        ]);
        assert_eq!(
            user(&no_role, false).unwrap_err(),
            EgressError::MissingUser("X-Poortwachter-User-Role".into())
        );
        let bad_uzi = headers(&[("x-poortwachter-user-uzi", "9000x")]);
        assert_eq!(
            user(&bad_uzi, true).unwrap_err(),
            EgressError::BadHeader("X-Poortwachter-User-Uzi".into())
        );
    }

    #[test]
    fn the_patient_comes_from_the_header_or_the_search_body() {
        let h = headers(&[(BSN_HEADER, "999999990")]);
        assert_eq!(
            patient(&h, &Method::GET, "/Observation", b"")
                .unwrap()
                .as_str(),
            "999999990"
        );
        let body = b"identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990";
        let none = HeaderMap::new();
        assert_eq!(
            patient(&none, &Method::POST, "/Patient/_search", body)
                .unwrap()
                .as_str(),
            "999999990"
        );
        assert_eq!(
            patient(&none, &Method::GET, "/Observation", b"").unwrap_err(),
            EgressError::MissingBsn
        );
        assert_eq!(
            patient(
                &headers(&[(BSN_HEADER, "123456789")]),
                &Method::GET,
                "/x",
                b""
            )
            .unwrap_err(),
            EgressError::InvalidBsn
        );
        assert_eq!(
            patient(
                &headers(&[(BSN_HEADER, "123456782")]),
                &Method::POST,
                "/Patient/_search",
                body
            )
            .unwrap_err(),
            EgressError::BsnMismatch
        );
    }
}
