//! poortwachter: an authorization sidecar for Dutch healthcare data exchange.
//!
//! See `ARCHITECTURE.md` for the map of modules and their invariants.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod authn;
pub mod bsn;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod credential;
pub mod demo;
pub mod did;
pub mod egress;
pub mod http;
pub mod hub;
pub mod identity;
pub mod inbox;
pub mod jose;
pub mod keys;
pub mod medmij;
pub mod metrics;
pub mod oauth;
pub mod policy;
pub mod proxy;
pub mod rsa_key;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod zorgdomein;
