//! MedMij "Delen": poortwachter as the care provider's side (the *DVA*: authorization server and
//! resource server) of a person sharing data from their PGO.
//!
//! - [`lists`]: strict readers for the four lists the MedMij stelselnode publishes (OAuth client
//!   list, whitelist, gegevensdienst name list, zorgaanbieder list). Pure: bytes in, typed list
//!   or [`lists::ListError`] out; fetching and refreshing them is the caller's.
//!
//! **Invariant:** nothing here does IO.

pub mod lists;
