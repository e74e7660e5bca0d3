//! The NEN 7513 audit log: one record per token request and per proxied request, allowed or not,
//! append-only and hash-chained (each record holds the SHA-256 of the previous one).
//!
//! This module is pure: the record ([`AuditRecord`]), the chain ([`chain_hash`], [`ChainVerifier`],
//! [`Anchor`]). Records reach the database only through the group-commit writer,
//! [`crate::store::writer::Writer`].
//!
//! **Invariant:** `verify` finds a changed, inserted or deleted record. Missing last records cannot
//! be seen from the chain alone: an [`Anchor`] (a record's sequence number and hash, kept
//! elsewhere: the server logs the head every minute, `audit verify` prints it) makes
//! [`ChainVerifier`] find them, and any rewrite of the chain up to it.

mod chain;
mod record;

pub use chain::{
    chain, chain_hash, verify, verify_with_anchors, Anchor, AuditRow, ChainReport, ChainVerifier,
    GENESIS_HASH,
};
pub use record::{
    audit_time, redact_bsns, AuditCert, AuditJwt, AuditRecord, AuditTrace, AuditUser, REPLAY_RULE,
};
