//! How a host is configured: the binary fills this from flags and
//! `ROSE_ASH_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Limits on one request's SX code.
#[derive(Clone, Debug)]
pub struct RequestBudget {
    /// Most function calls.
    pub max_steps: Option<u64>,
    /// Longest run, IO waits included.
    pub max_time: Option<Duration>,
    /// Most heap bytes the request's code may keep.
    pub max_heap: Option<usize>,
}

impl Default for RequestBudget {
    fn default() -> RequestBudget {
        RequestBudget {
            max_steps: Some(50_000_000),
            max_time: Some(Duration::from_secs(30)),
            max_heap: Some(256 * 1024 * 1024),
        }
    }
}

/// A host's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The SX library root: `host/` is loaded first, then each of `apps`.
    pub lib_dir: PathBuf,
    /// Application directories under `lib_dir`, loaded in order.
    pub apps: Vec<String>,
    /// Static files served under `/static/` with content-hashed names.
    pub static_dirs: Vec<PathBuf>,
    /// Where the store and other state live.
    pub data_dir: PathBuf,
    /// Reload SX libraries and static files on change; show SX backtraces
    /// with source lines on error pages.
    pub dev: bool,
    /// SX worker threads (each runs many requests concurrently).
    pub workers: usize,
    /// Largest request body accepted (larger gets 413).
    pub max_body: usize,
    /// How long a client may take to send a request's head, and again its
    /// body (408 after); an idle keep-alive connection is closed after it
    /// too.
    pub read_timeout: Duration,
    pub budget: RequestBudget,
    /// Mark cookies `Secure` on every response (for a host behind a TLS
    /// proxy that does not send `X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
    /// Origins pages may submit forms to besides their own (the CSP's
    /// `form-action`): an app's sign-out form ends at its identity
    /// provider, and the browser checks every redirect of a submission.
    pub form_action: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            lib_dir: PathBuf::from("lib"),
            apps: ["store", "site", "demo"].map(str::to_owned).to_vec(),
            static_dirs: vec![PathBuf::from("static")],
            data_dir: PathBuf::from("data"),
            dev: false,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_body: 1024 * 1024,
            read_timeout: Duration::from_secs(30),
            budget: RequestBudget::default(),
            secure_cookies: false,
            form_action: Vec::new(),
        }
    }
}
