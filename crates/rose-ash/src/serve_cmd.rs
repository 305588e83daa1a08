//! `rose-ash serve`: flags and environment to a [`host::Config`], logging,
//! the runtime, the store; then the host does the rest.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

/// Serve the platform over HTTP.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ROSE_ASH_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Where the store (SQLite file) and other state live; created if missing.
    #[arg(long, env = "ROSE_ASH_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://...) to use instead of the SQLite file,
    /// so several hosts can share one database.
    #[arg(long, env = "ROSE_ASH_DATABASE_URL")]
    database_url: Option<String>,
    /// The SX library root (lib/host is loaded first, then each --app).
    #[arg(long, env = "ROSE_ASH_LIB_DIR", default_value = "lib")]
    lib_dir: PathBuf,
    /// Application directories under the library root, in load order.
    #[arg(
        long = "app",
        env = "ROSE_ASH_APPS",
        value_delimiter = ',',
        default_value = "store,site,demo"
    )]
    apps: Vec<String>,
    /// Directories of static files, served under /static/ with hashed names.
    #[arg(
        long = "static-dir",
        env = "ROSE_ASH_STATIC_DIRS",
        value_delimiter = ',',
        default_value = "static,client/dist"
    )]
    static_dirs: Vec<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or per-target
    /// directives like "info,host=debug".
    #[arg(long, env = "ROSE_ASH_LOG", default_value = "info")]
    log_level: String,
    /// Development mode: reload lib/ and static files on change, show SX
    /// backtraces with source lines on error pages.
    #[arg(long, env = "ROSE_ASH_DEV")]
    dev: bool,
    /// SX worker threads (default: one per CPU).
    #[arg(long, env = "ROSE_ASH_WORKERS")]
    workers: Option<usize>,
    /// Largest request body in bytes (larger gets 413).
    #[arg(long, env = "ROSE_ASH_MAX_BODY", default_value_t = 1024 * 1024)]
    max_body: usize,
    /// Per-request budget: most SX function calls.
    #[arg(long, env = "ROSE_ASH_REQUEST_MAX_STEPS", default_value_t = 50_000_000)]
    request_max_steps: u64,
    /// Per-request budget: longest run in seconds, IO waits included.
    #[arg(long, env = "ROSE_ASH_REQUEST_TIMEOUT", default_value_t = 30.0)]
    request_timeout: f64,
    /// Per-request budget: most heap a request's code may keep, in MiB.
    #[arg(long, env = "ROSE_ASH_REQUEST_MAX_HEAP_MB", default_value_t = 256)]
    request_max_heap_mb: usize,
    /// Mark cookies Secure even without X-Forwarded-Proto: https (set this
    /// behind a TLS proxy).
    #[arg(long, env = "ROSE_ASH_SECURE_COOKIES")]
    secure_cookies: bool,
}

pub fn run(args: ServeArgs) -> std::process::ExitCode {
    match serve(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eoutln!("rose-ash serve: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("invalid --log-level {:?}", args.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();

    if !(args.request_timeout.is_finite() && args.request_timeout > 0.0) {
        anyhow::bail!("--request-timeout must be a positive number of seconds");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let config = host::Config {
        addr: args.addr,
        lib_dir: args.lib_dir,
        apps: args.apps,
        static_dirs: args.static_dirs,
        data_dir: args.data_dir.clone(),
        dev: args.dev,
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        max_body: args.max_body,
        budget: host::RequestBudget {
            max_steps: Some(args.request_max_steps),
            max_time: Some(Duration::from_secs_f64(args.request_timeout)),
            max_heap: Some(args.request_max_heap_mb.saturating_mul(1024 * 1024)),
        },
        secure_cookies: args.secure_cookies,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let store = store::Store::connect(args.database_url, args.data_dir)
            .await
            .context("opening the store")?;
        let services: Vec<Arc<dyn host::Service>> = vec![Arc::new(host::StoreService(store))];
        let running = host::start(config, services, true).await?;
        eoutln!("Rose Ash is serving on http://{}", running.addr);
        running.wait().await?;
        Ok(())
    })
}
