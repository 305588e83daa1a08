//! The Rose Ash web host (DESIGN §2): SX pages and handlers served over
//! HTTP with async IO.
//!
//! - [`server`]: the axum side — routing to workers, request bodies and
//!   limits, CSRF, security headers, compression, static files, logs,
//!   `--dev` reload.
//! - [`worker`]: SX worker threads, each an interpreter on a
//!   single-threaded runtime; requests run as local tasks whose machines
//!   suspend at every `perform`.
//! - [`handle`], [`reply`]: a request through routing, the SX request dict,
//!   the handler, and back out as a page, redirect, JSON, text or SX wire.
//! - [`ops`]: what `perform` does on a server, and [`ops::Service`] for
//!   namespaces such as `store/`.
//! - [`peers`]: signed requests to the cooperative's other peers, and the
//!   signature check on `:peer true` routes.
//! - [`identity`], [`sso`]: the identity provider's and the apps' sides of
//!   single sign-on.
//! - [`app`], [`routes`], [`library`], [`assets`], [`security`]: the loaded
//!   SX application, path patterns, source files, hashed static files,
//!   CSRF and cookies.

pub mod app;
pub mod assets;
pub mod config;
pub mod exchange;
pub mod handle;
pub mod identity;
pub mod islands;
pub mod library;
pub mod ops;
pub mod peers;
pub mod reply;
pub mod routes;
pub mod security;
pub mod server;
pub mod sso;
pub mod store_service;
pub mod worker;

pub use config::{Config, RequestBudget};
pub use ops::Service;
pub use server::{Running, start};
pub use store_service::StoreService;

/// Why the host could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The SX library failed to load (message has file:line:col).
    #[error("{0}")]
    Load(String),
}
