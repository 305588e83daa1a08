//! The fed crate's one integration-test binary: accounts, the OAuth 2.0 /
//! OpenID Connect provider and the relying-party checks, end to end over
//! a real store. Every test runs against SQLite (a temp dir) and
//! PostgreSQL (127.0.0.1:5432, database `test`, a fresh schema per test),
//! as `<name>::sqlite` and `<name>::postgres`. The PostgreSQL tests fail,
//! never skip, when the server is absent.
//!
//! A defect found but not fixed yet is written as a failing test marked
//! `both!(name, ignore = "BUG: ...", |env| { ... })`; run those with
//! `cargo nextest run -p fed --run-ignored only`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "suite/accounts.rs"]
mod accounts_suite;
mod common;
#[path = "suite/concurrency.rs"]
mod concurrency_suite;
#[path = "suite/errors.rs"]
mod errors_suite;
#[path = "suite/expiry.rs"]
mod expiry_suite;
#[path = "suite/httpsig.rs"]
mod httpsig_suite;
#[path = "suite/logout.rs"]
mod logout_suite;
#[path = "suite/oauth.rs"]
mod oauth_suite;
#[path = "suite/peers.rs"]
mod peers_suite;
