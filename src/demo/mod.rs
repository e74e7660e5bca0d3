//! `poortwachter demo`: everything in one process, to see the product work.

pub mod sample_fhir;
