//! Rose Ash identity and federation: member accounts, the OAuth 2.0 /
//! OpenID Connect provider, and what an app needs to sign members in
//! through it.
//!
//! - [`accounts`]: members, passwords (argon2id), provider sessions, email
//!   verification and password reset tokens, the mail outbox, rate limits.
//! - [`oauth`]: the authorization server — code flow with PKCE S256,
//!   tokens, refresh rotation with reuse detection, revocation,
//!   introspection, metadata, ID tokens, userinfo, logout.
//! - [`rp`]: the relying-party side used by every app: login requests,
//!   ID token and logout token checks.
//! - [`jwt`], [`crypto`], [`password`]: the primitives.
//! - [`httpsig`]: signed requests between peers (HTTP Message Signatures,
//!   RFC 9421, with Ed25519 over a Content-Digest); [`peers`]: this
//!   peer's signing key and the nonces seen, kept in the store.
//!
//! Everything persists in the [`store`] as records (`store::kv`). This
//! crate speaks neither HTTP nor SX: the host turns requests into calls
//! here and results into responses.

#![allow(clippy::missing_errors_doc)]

pub mod accounts;
pub mod crypto;
pub mod error;
pub mod httpsig;
pub mod jwt;
pub mod oauth;
pub mod password;
pub mod peers;
pub mod rp;

pub use error::{FedError, OAuthError, Result};
