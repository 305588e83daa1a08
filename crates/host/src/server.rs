//! The HTTP side: axum, on the multi-threaded runtime. It reads and limits
//! request bodies, checks CSRF tokens, serves static files, adds security
//! headers, compresses and logs; everything else goes to an SX worker.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot, watch};
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::assets::Assets;
use crate::exchange::{HttpRequest, HttpResponse, Refused};
use crate::library::{Library, library_dirs, snapshot};
use crate::ops::Service;
use crate::security::{
    CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, CookieOptions, SECURITY_HEADERS, constant_time_eq,
    parse_cookies, random_token, set_cookie, well_formed_token,
};
use crate::worker::Workers;
use crate::{Config, HostError};

struct HostState {
    config: Config,
    workers: Workers,
    assets: RwLock<Arc<Assets>>,
}

/// A running host.
pub struct Running {
    /// Where it listens (the real port when configured with port 0).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), HostError>>,
}

impl Running {
    /// Stops accepting, finishes requests in flight, and returns.
    pub async fn stop(mut self) -> Result<(), HostError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Serves until the process is asked to stop (Ctrl-C or SIGTERM).
    pub async fn wait(self) -> Result<(), HostError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(HostError::Load(format!("the server task failed: {e}"))),
        }
    }
}

/// Loads the library and static files, starts the workers, binds, and
/// serves in the background. `services` answer `perform` namespaces such
/// as `store/`. With `stop_on_signal`, Ctrl-C and SIGTERM stop it.
pub async fn start(
    config: Config,
    services: Vec<Arc<dyn Service>>,
    stop_on_signal: bool,
) -> Result<Running, HostError> {
    let cfg = config.clone();
    let (workers, assets) = tokio::task::spawn_blocking(move || -> Result<_, HostError> {
        let library = Arc::new(Library::read(&cfg.lib_dir, &cfg.apps)?);
        let assets = Arc::new(Assets::load(&cfg.static_dirs)?);
        let urls = Arc::new(assets.urls().to_vec());
        let workers = Workers::start(&cfg, library, urls, services)?;
        Ok((workers, assets))
    })
    .await
    .map_err(|e| HostError::Load(format!("loading the library failed: {e}")))??;
    // Start-up hooks (demo seeds) run before the first request; a failing
    // one is logged, and the host serves what it has.
    for failure in workers.run_start_hooks().await {
        tracing::error!("{failure}");
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| HostError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| HostError::Bind {
        addr: config.addr,
        source,
    })?;
    let dev = config.dev;
    let read_timeout = config.read_timeout;
    let form_action = config.form_action.clone();
    let state = Arc::new(HostState {
        config,
        workers,
        assets: RwLock::new(assets),
    });
    if dev {
        tokio::spawn(watch(state.clone()));
    }
    let app = router(
        state,
        crate::security::content_security_policy(&form_action),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            if stop_on_signal {
                tokio::select! {
                    _ = rx => {}
                    _ = shutdown_signal() => {}
                }
            } else {
                let _ = rx.await;
            }
        };
        serve(listener, app, read_timeout, shutdown).await;
        Ok(())
    });
    tracing::info!("serving on http://{addr}");
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task,
    })
}

/// Accepts connections until `shutdown`, serving each on its own task;
/// then lets every connection finish its request in flight.
async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each connection holds a sender: `recv` ends when all are dropped.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, remote)) => {
                let (router, stop, done) = (router.clone(), stop_rx.clone(), done_tx.clone());
                tokio::spawn(async move {
                    serve_connection(stream, remote, router, read_timeout, stop).await;
                    drop(done);
                });
            }
            // Out of file descriptors and the like: connections already
            // open go on; try again shortly rather than spin.
            Err(e) if !connection_error(&e) => {
                tracing::error!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = done_rx.recv().await;
}

/// An accept error about that one connection (the next accept may work).
fn connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves HTTP/1.1 on one connection; when `stop` turns true, finishes
/// the request in flight and closes. (axum's `serve` does the same but
/// sets no header read timeout: a client that sends half a request head
/// held its connection open for ever.)
async fn serve_connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    router: Router,
    read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
        router,
        move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(remote));
            req
        },
    ));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(read_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let stopped = async move {
        // Ends when told to stop, or when the server is gone.
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("connection from {remote}: {e}");
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn router(state: Arc<HostState>, csp: String) -> Router {
    let csp = HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'self'"));
    let mut headers = vec![(header::CONTENT_SECURITY_POLICY, csp)];
    for (name, value) in SECURITY_HEADERS {
        headers.push((
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    let headers: Arc<[(header::HeaderName, HeaderValue)]> = headers.into();
    let router = Router::new()
        .route("/static/{*path}", get(static_file))
        .fallback(any(sx_route))
        // A plain function on the response (axum's `map_response` middleware
        // boxes a future per request and cost 8k instructions).
        .layer(tower::util::MapResponseLayer::new(move |resp| {
            security_headers(resp, &headers)
        }))
        .layer(CompressionLayer::new());
    // The request log is INFO events of tower_http's targets. The log filter
    // is set before the host starts and never changes, so when it leaves
    // them out the layer (3k instructions a request) is left out too.
    if tracing::enabled!(target: "tower_http::trace::on_response", Level::INFO)
        || tracing::enabled!(target: "tower_http::trace::make_span", Level::INFO)
    {
        router
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .with_state(state)
    } else {
        router.with_state(state)
    }
}

/// Adds the security headers a response does not set itself.
fn security_headers(mut resp: Response, headers: &[(header::HeaderName, HeaderValue)]) -> Response {
    let map = resp.headers_mut();
    map.reserve(headers.len());
    for (name, value) in headers {
        if let header::Entry::Vacant(slot) = map.entry(name) {
            slot.insert(value.clone());
        }
    }
    resp
}

/// Every request that is not a static file: read it, check it, and hand
/// it to an SX worker.
async fn sx_route(State(state): State<Arc<HostState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let remote_addr = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let cookies = parse_cookies(
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let cookie_token = cookies
        .iter()
        .find(|(n, _)| n == CSRF_COOKIE)
        .map(|(_, v)| v.clone())
        .filter(|t| well_formed_token(t));
    let fresh_token = cookie_token.is_none();
    let csrf_token = cookie_token.clone().unwrap_or_else(random_token);
    let secure = state.config.secure_cookies
        || parts
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));

    let max = state.config.max_body;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut refused = None;
    let body = if declared.is_some_and(|n| n > max as u64) {
        refused = Some(too_large(max));
        bytes::Bytes::new()
    } else {
        let collect = http_body_util::Limited::new(body, max).collect();
        match tokio::time::timeout(state.config.read_timeout, collect).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            // A body trickling in (or stalled) would hold the connection
            // and this task for ever.
            Err(_) => {
                refused = Some(Refused {
                    status: 408,
                    title: "Request timeout",
                    message: format!(
                        "The request body did not arrive within {} seconds.",
                        state.config.read_timeout.as_secs_f64()
                    ),
                });
                bytes::Bytes::new()
            }
            Ok(Err(e)) => {
                refused = Some(
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        too_large(max)
                    } else {
                        Refused {
                            status: 400,
                            title: "Bad request",
                            message: format!("The request body could not be read: {e}."),
                        }
                    },
                );
                bytes::Bytes::new()
            }
        }
    };

    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let csrf_ok = safe
        || cookie_token.as_deref().is_some_and(|expected| {
            let submitted = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| form_field(&parts.headers, &body, CSRF_FIELD));
            submitted.is_some_and(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
        });

    let http_req = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers,
        body,
        csrf_token: csrf_token.clone(),
        csrf_ok,
        secure,
        remote_addr,
        refused,
    };
    let mut resp = state.workers.dispatch(http_req).await;
    if fresh_token {
        let opts = CookieOptions {
            secure,
            ..CookieOptions::default()
        };
        if let Some(c) = set_cookie(CSRF_COOKIE, &csrf_token, &opts) {
            resp.headers.push(("set-cookie".to_owned(), c));
        }
    }
    into_axum(resp)
}

fn too_large(max: usize) -> Refused {
    Refused {
        status: 413,
        title: "Payload too large",
        message: format!("The request body is larger than this site accepts ({max} bytes)."),
    }
}

/// A field of a url-encoded form body.
fn form_field(headers: &HeaderMap, body: &[u8], name: &str) -> Option<String> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn into_axum(resp: HttpResponse) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    // Room for the security headers too, so the map grows once.
    headers.reserve(resp.headers.len() + SECURITY_HEADERS.len() + 1);
    for (name, value) in resp.headers {
        let parsed = match name.as_str() {
            // The names every page has, without parsing them.
            "content-type" => Ok(header::CONTENT_TYPE),
            "set-cookie" => Ok(header::SET_COOKIE),
            other => header::HeaderName::from_bytes(other.as_bytes()),
        };
        let (Ok(n), Ok(v)) = (parsed, HeaderValue::try_from(value)) else {
            // reply.rs validates SX-made headers; this guards the rest.
            tracing::error!("dropping invalid response header {name:?}");
            continue;
        };
        headers.append(n, v);
    }
    out
}

async fn static_file(
    State(state): State<Arc<HostState>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let asset = state.assets.read().ok().and_then(|a| a.get(&path).cloned());
    let Some(asset) = asset else {
        return sx_route(State(state), req).await;
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == asset.etag.as_bytes());
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(asset.body.clone()))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    resp
}

/// `--dev`: polls the library and static directories and reloads on change.
async fn watch(state: Arc<HostState>) {
    let cfg = &state.config;
    let mut dirs = library_dirs(&cfg.lib_dir, &cfg.apps);
    dirs.extend(cfg.static_dirs.iter().cloned());
    let mut last = snapshot(&dirs);
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let d = dirs.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || snapshot(&d)).await else {
            continue;
        };
        if now == last {
            continue;
        }
        last = now;
        let (lib_dir, apps, static_dirs) = (
            cfg.lib_dir.clone(),
            cfg.apps.clone(),
            cfg.static_dirs.clone(),
        );
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, HostError>((Library::read(&lib_dir, &apps)?, Assets::load(&static_dirs)?))
        })
        .await;
        match loaded {
            Ok(Ok((library, assets))) => {
                let urls = Arc::new(assets.urls().to_vec());
                if let Ok(mut a) = state.assets.write() {
                    *a = Arc::new(assets);
                }
                state.workers.reload(Arc::new(library), urls);
            }
            Ok(Err(e)) => tracing::error!("reload: {e}"),
            Err(e) => tracing::error!("reload: {e}"),
        }
    }
}
