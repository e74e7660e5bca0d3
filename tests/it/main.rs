#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests: one test binary. They drive the real `poortwachter` binary and real HTTP
//! servers on 127.0.0.1 port 0, with real signatures and a real SQLite (and PostgreSQL) store.

mod admin_api;
mod attacks;
mod browser_medmij;
mod browser_oidc;
mod browser_support;
mod cli;
mod console;
mod crash;
mod demo;
mod did_web;
mod egress;
mod examples;
mod failclosed;
mod fuzz_regressions;
mod hub;
mod interop_python;
mod limits;
mod medmij;
mod nuts_fixtures;
mod oidc_support;
mod openapi;
mod packaging;
mod proxy;
mod reload;
mod replicas;
mod robustness;
mod seams;
mod store;
mod support;
mod tls;
mod token;
mod zorgdomein;
