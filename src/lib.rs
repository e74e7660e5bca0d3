//! poortwachter: an authorization sidecar for Dutch healthcare data exchange.
//!
//! See `ARCHITECTURE.md` for the map of modules and their invariants.
#![forbid(unsafe_code)]

pub mod bsn;
pub mod clock;
pub mod credential;
pub mod did;
pub mod keys;
pub mod policy;
