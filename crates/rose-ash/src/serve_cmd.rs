//! `rose-ash serve`: flags and environment to [`host::Config`]s, logging,
//! the runtime, the stores; then the hosts do the rest.
//!
//! With no `--domain` and no `--app`, it starts the demo cooperative: the
//! identity provider (`id`, lib/federation), the blog, events and shop
//! peers and the front door (`site`), each with its own store under the
//! data directory and its own base URL, every app registered as a
//! first-party client of the provider and every host knowing the others
//! as peers. `--domain NAME` runs one of them alone, as an operator would
//! across machines, with `--peer name=URL` for the peers it talks to;
//! `--app` serves a custom list of SX apps as one host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

/// Serve the platform over HTTP.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (the front door, or the one --domain).
    #[arg(long, env = "ROSE_ASH_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Run one domain alone: `blog`, `events`, `shop`, `id` (the identity
    /// provider) or `site` (the front door). Without it (and without
    /// --app), the whole cooperative.
    #[arg(long, env = "ROSE_ASH_DOMAIN")]
    domain: Option<String>,
    /// Another peer this host talks to, as NAME=URL (repeatable), e.g.
    /// --peer shop=https://shop.example.org. Requests to it are signed;
    /// requests it signs are accepted on peer routes.
    #[arg(long = "peer", env = "ROSE_ASH_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    peers: Vec<(String, String)>,
    /// In the cooperative: where the identity provider listens.
    #[arg(long, env = "ROSE_ASH_IDP_ADDR", default_value = "127.0.0.1:8084")]
    idp_addr: SocketAddr,
    /// In the cooperative: where the blog peer listens.
    #[arg(long, env = "ROSE_ASH_BLOG_ADDR", default_value = "127.0.0.1:8081")]
    blog_addr: SocketAddr,
    /// In the cooperative: where the events peer listens.
    #[arg(long, env = "ROSE_ASH_EVENTS_ADDR", default_value = "127.0.0.1:8082")]
    events_addr: SocketAddr,
    /// In the cooperative: where the shop peer listens.
    #[arg(long, env = "ROSE_ASH_SHOP_ADDR", default_value = "127.0.0.1:8083")]
    shop_addr: SocketAddr,
    /// This host's public base URL (default: http://ADDR). For the
    /// identity provider this is its issuer URL.
    #[arg(long, env = "ROSE_ASH_PUBLIC_URL")]
    public_url: Option<String>,
    /// The identity provider's URL, for an app run alone (--domain blog, ...).
    #[arg(long, env = "ROSE_ASH_ISSUER")]
    issuer: Option<String>,
    /// The app's OAuth client id at the identity provider (default: the
    /// domain name). Register it with `rose-ash idp add-client`.
    #[arg(long, env = "ROSE_ASH_CLIENT_ID")]
    client_id: Option<String>,
    /// The identity provider's mail server, e.g.
    /// smtps://user:pass@smtp.example.org (default: mail goes to the log).
    #[arg(long, env = "ROSE_ASH_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of the identity provider's mail.
    #[arg(
        long,
        env = "ROSE_ASH_MAIL_FROM",
        default_value = "Rose Ash <noreply@localhost>"
    )]
    mail_from: String,
    /// The app's OAuth client secret (from `rose-ash idp add-client`).
    /// (A secret may begin with `-`, as one printed does one time in 64.)
    #[arg(
        long,
        env = "ROSE_ASH_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    client_secret: Option<String>,
    /// Where the stores (SQLite files) and other state live; created if
    /// missing. In the cooperative each domain has a subdirectory.
    #[arg(long, env = "ROSE_ASH_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://...) to use instead of the SQLite file,
    /// so several hosts can share one database.
    #[arg(long, env = "ROSE_ASH_DATABASE_URL")]
    database_url: Option<String>,
    /// The SX library root (lib/host is loaded first, then each --app).
    #[arg(long, env = "ROSE_ASH_LIB_DIR", default_value = "lib")]
    lib_dir: PathBuf,
    /// Serve these application directories under the library root, in
    /// load order, as one host (instead of the cooperative's domains).
    #[arg(long = "app", env = "ROSE_ASH_APPS", value_delimiter = ',')]
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
    /// Seconds a client may take to send a request's head, and again its
    /// body (408 after); idle keep-alive connections close after it too.
    #[arg(long, env = "ROSE_ASH_READ_TIMEOUT", default_value_t = 30.0)]
    read_timeout: f64,
    /// Per-request budget: most heap a request's code may keep, in MiB.
    #[arg(long, env = "ROSE_ASH_REQUEST_MAX_HEAP_MB", default_value_t = 256)]
    request_max_heap_mb: usize,
    /// Mark cookies Secure even without X-Forwarded-Proto: https (set this
    /// behind a TLS proxy).
    #[arg(long, env = "ROSE_ASH_SECURE_COOKIES")]
    secure_cookies: bool,
}

/// One host to start.
struct Site {
    name: String,
    addr: SocketAddr,
    apps: Vec<String>,
    data_dir: PathBuf,
    public_url: String,
    /// This host is the identity provider.
    provider: bool,
    /// How it signs members in (apps other than the provider).
    sso: Option<host::sso::SsoConfig>,
    /// The peers it knows: name and base URL.
    peers: Vec<(String, String)>,
}

/// `NAME=URL` of `--peer`.
fn parse_peer(s: &str) -> Result<(String, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=URL, got {s:?}"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "the peer name {name:?} must be lowercase letters, digits and dashes"
        ));
    }
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("the peer URL {url:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "the peer URL {url:?} must be a base URL like https://shop.example.org"
        ));
    }
    Ok((name.to_owned(), url.to_owned()))
}

fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

fn origin_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    let scheme = url.split_once("://").map_or("http", |(s, _)| s);
    format!("{scheme}://{host}")
}

/// The apps each domain serves.
fn domain_apps(domain: &str) -> anyhow::Result<Vec<String>> {
    Ok(match domain {
        "id" => vec!["federation".into()],
        "site" => vec!["store".into(), "site".into(), "demo".into()],
        "blog" => vec!["store".into(), "blog".into()],
        "events" => vec!["store".into(), "events".into()],
        "shop" => vec!["store".into(), "shop".into()],
        other => {
            anyhow::bail!("unknown --domain {other:?}: use blog, events, shop, id or site")
        }
    })
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
    if !(args.read_timeout.is_finite() && args.read_timeout > 0.0) {
        anyhow::bail!("--read-timeout must be a positive number of seconds");
    }
    let sites = plan(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let cooperative = sites.len() > 1;
        let mut provider: Option<fed::oauth::Provider> = None;
        let mut running = Vec::new();
        for mut site in sites {
            std::fs::create_dir_all(&site.data_dir).with_context(|| {
                format!("creating the data directory {}", site.data_dir.display())
            })?;
            // With a single database for several hosts, each domain keeps
            // its tables in its own schema.
            let store = match &args.database_url {
                Some(url) if !url.is_empty() && cooperative => {
                    let (url, schema) = (url.clone(), site.name.clone());
                    tokio::task::spawn_blocking(move || {
                        store::Store::open_postgres_in(&url, Some(&schema))
                    })
                    .await
                    .context("opening the store")??
                }
                _ => store::Store::connect(args.database_url.clone(), site.data_dir.clone())
                    .await
                    .with_context(|| format!("opening the store of {}", site.name))?,
            };
            host::store_service::spawn_record_purge(store.clone());
            let mut services: Vec<Arc<dyn host::Service>> =
                vec![Arc::new(host::StoreService(store.clone()))];
            let mut form_action = Vec::new();
            if site.provider {
                let (s, issuer) = (store.clone(), site.public_url.clone());
                let p = tokio::task::spawn_blocking(move || fed::oauth::Provider::open(s, &issuer))
                    .await
                    .context("starting the identity provider")??;
                let idp = host::identity::IdentityService::new(p.clone());
                let mailer = match &args.smtp_url {
                    Some(url) => host::identity::smtp_mailer(url, &args.mail_from)
                        .map_err(|e| anyhow::anyhow!("--smtp-url: {e}"))?,
                    None => Arc::new(host::identity::log_mail),
                };
                idp.spawn_mailer(mailer);
                services.push(Arc::new(idp));
                services.push(Arc::new(host::sso::SsoService::new(
                    None,
                    Some(p.clone()),
                    store.clone(),
                )));
                provider = Some(p);
            } else {
                if cooperative {
                    // Register this app with the provider started above,
                    // with a fresh secret each start.
                    let p = provider
                        .clone()
                        .context("the identity provider must start first")?;
                    let base = site.public_url.clone();
                    let issuer = p.issuer.clone();
                    let client = fed::oauth::Client {
                        id: site.name.clone(),
                        name: format!("Rose Ash {}", site.name),
                        secret_hash: None,
                        redirect_uris: vec![format!("{base}/auth/callback")],
                        post_logout_redirect_uris: vec![format!("{base}/")],
                        first_party: true,
                        backchannel_logout_uri: Some(format!("{base}/auth/backchannel-logout")),
                    };
                    let secret =
                        tokio::task::spawn_blocking(move || p.register_client(client, true, None))
                            .await
                            .context("registering the app")??
                            .context("no client secret was made")?;
                    site.sso = Some(host::sso::SsoConfig {
                        app: site.name.clone(),
                        base_url: base,
                        issuer,
                        client_id: site.name.clone(),
                        client_secret: secret,
                    });
                }
                if let Some(sso) = &site.sso {
                    form_action.push(origin_of(&sso.issuer));
                }
                services.push(Arc::new(host::sso::SsoService::new(
                    site.sso.clone(),
                    None,
                    store.clone(),
                )));
            }
            // Every host is a peer: it has a signing key and publishes it,
            // even with no peers of its own (others may still call it).
            let peer_config = host::peers::PeerConfig {
                name: site.name.clone(),
                base_url: site.public_url.clone(),
                peers: site.peers.clone(),
            };
            let s = store.clone();
            services.push(Arc::new(
                tokio::task::spawn_blocking(move || host::peers::PeerService::open(peer_config, s))
                    .await
                    .context("starting the peer service")??,
            ));
            let config = host::Config {
                addr: site.addr,
                lib_dir: args.lib_dir.clone(),
                apps: site.apps.clone(),
                static_dirs: args.static_dirs.clone(),
                data_dir: site.data_dir.clone(),
                dev: args.dev,
                workers: args
                    .workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                max_body: args.max_body,
                read_timeout: Duration::from_secs_f64(args.read_timeout),
                budget: host::RequestBudget {
                    max_steps: Some(args.request_max_steps),
                    max_time: Some(Duration::from_secs_f64(args.request_timeout)),
                    max_heap: Some(args.request_max_heap_mb.saturating_mul(1024 * 1024)),
                },
                secure_cookies: args.secure_cookies,
                form_action,
            };
            let r = host::start(config, services, true)
                .await
                .with_context(|| format!("starting {}", site.name))?;
            eoutln!("Rose Ash {} is serving on http://{}", site.name, r.addr);
            if !site.provider && site.sso.is_none() {
                eoutln!(
                    "  (members cannot sign in to {}: give --issuer and --client-secret)",
                    site.name
                );
            }
            running.push(r);
        }
        for r in running {
            r.wait().await?;
        }
        Ok(())
    })
}

/// Which hosts to start, from the flags.
fn plan(args: &ServeArgs) -> anyhow::Result<Vec<Site>> {
    let public = |addr: SocketAddr| {
        args.public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| url_of(addr))
    };
    if !args.apps.is_empty() {
        let name = args.domain.clone().unwrap_or_else(|| "site".to_owned());
        return Ok(vec![Site {
            provider: args.apps.iter().any(|a| a == "federation"),
            sso: sso_alone(args, &name, &public(args.addr))?,
            name,
            addr: args.addr,
            apps: args.apps.clone(),
            data_dir: args.data_dir.clone(),
            public_url: public(args.addr),
            peers: args.peers.clone(),
        }]);
    }
    if let Some(domain) = &args.domain {
        return Ok(vec![Site {
            name: domain.clone(),
            addr: args.addr,
            apps: domain_apps(domain)?,
            data_dir: args.data_dir.clone(),
            public_url: public(args.addr),
            provider: domain == "id",
            sso: if domain == "id" {
                None
            } else {
                sso_alone(args, domain, &public(args.addr))?
            },
            peers: args.peers.clone(),
        }]);
    }
    if !args.peers.is_empty() {
        anyhow::bail!("--peer is for a host run alone (--domain); the cooperative knows its peers");
    }
    // The provider starts first: the apps register with it.
    let hosts = [
        ("id", args.idp_addr),
        ("blog", args.blog_addr),
        ("events", args.events_addr),
        ("shop", args.shop_addr),
        ("site", args.addr),
    ];
    let url = |name: &str, addr: SocketAddr| {
        if name == "site" {
            public(addr)
        } else {
            url_of(addr)
        }
    };
    let mut sites = Vec::new();
    for (name, addr) in hosts {
        sites.push(Site {
            name: name.to_owned(),
            addr,
            apps: domain_apps(name)?,
            data_dir: args.data_dir.join(name),
            public_url: url(name, addr),
            provider: name == "id",
            sso: None,
            peers: hosts
                .iter()
                .filter(|(other, _)| *other != name)
                .map(|(other, a)| ((*other).to_owned(), url(other, *a)))
                .collect(),
        });
    }
    Ok(sites)
}

/// Sign-in for an app run alone: all of --issuer and --client-secret, or
/// none (members cannot sign in there).
fn sso_alone(
    args: &ServeArgs,
    name: &str,
    base_url: &str,
) -> anyhow::Result<Option<host::sso::SsoConfig>> {
    match (&args.issuer, &args.client_secret) {
        (Some(issuer), Some(secret)) => Ok(Some(host::sso::SsoConfig {
            app: name.to_owned(),
            base_url: base_url.to_owned(),
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: args.client_id.clone().unwrap_or_else(|| name.to_owned()),
            client_secret: secret.clone(),
        })),
        (None, None) => Ok(None),
        _ => anyhow::bail!("--issuer and --client-secret go together"),
    }
}
