//! SX worker threads. SX values are reference-counted without atomics, so
//! each worker owns an interpreter and runs a single-threaded tokio runtime
//! with a `LocalSet`: every request is a local task whose machine suspends
//! at each `perform` while the worker serves other requests. The HTTP side
//! hands requests over by channel and gets plain-data responses back.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use sx::{Machine, Outcome, Value};
use tokio::sync::{mpsc, oneshot};

use crate::HostError;
use crate::app::App;
use crate::config::{Config, RequestBudget};
use crate::exchange::{HttpRequest, HttpResponse};
use crate::library::Library;
use crate::ops::{RequestScope, Service};

// Requests are nearly every message: boxing them would cost an allocation
// per request to shrink the rare reload.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Request(HttpRequest, oneshot::Sender<HttpResponse>),
    /// Load this library; keep serving the old one if it fails.
    Reload(Arc<Library>, Arc<Vec<(String, String)>>),
    /// Run the library's start-up hooks; answer with their failures.
    Start(oneshot::Sender<Vec<String>>),
}

struct Worker {
    tx: mpsc::UnboundedSender<Msg>,
    /// Requests handed over and not yet answered.
    in_flight: Arc<AtomicUsize>,
}

/// The pool of SX workers.
pub struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

/// What every worker shares.
#[derive(Clone)]
pub struct Shared {
    pub budget: RequestBudget,
    pub dev: bool,
    pub services: Arc<Vec<Arc<dyn Service>>>,
}

impl Workers {
    /// Starts `config.workers` threads, each loading `library`. Fails (and
    /// stops them) if the library does not load.
    pub fn start(
        config: &Config,
        library: Arc<Library>,
        asset_urls: Arc<Vec<(String, String)>>,
        services: Vec<Arc<dyn Service>>,
    ) -> Result<Workers, HostError> {
        let shared = Shared {
            budget: config.budget.clone(),
            dev: config.dev,
            services: Arc::new(services),
        };
        let mut workers = Vec::new();
        for i in 0..config.workers.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let lib = library.clone();
            let urls = asset_urls.clone();
            let shared = shared.clone();
            let in_flight = Arc::new(AtomicUsize::new(0));
            let counter = in_flight.clone();
            std::thread::Builder::new()
                .name(format!("sx-worker-{i}"))
                .spawn(move || worker_main(lib, urls, shared, rx, ready_tx, counter))
                .map_err(|e| HostError::Io {
                    what: "starting an SX worker thread".to_owned(),
                    source: e,
                })?;
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(HostError::Load(
                        "an SX worker stopped while loading".to_owned(),
                    ));
                }
            }
            workers.push(Worker { tx, in_flight });
        }
        Ok(Workers {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a request on the least busy worker.
    pub async fn dispatch(&self, req: HttpRequest) -> HttpResponse {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.workers.len();
        let Some(worker) = (0..n)
            .filter_map(|k| self.workers.get((start + k) % n))
            .min_by_key(|w| w.in_flight.load(Ordering::Relaxed))
        else {
            return HttpResponse::text(503, "no SX workers are running");
        };
        worker.in_flight.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if worker.tx.send(Msg::Request(req, tx)).is_err() {
            worker.in_flight.fetch_sub(1, Ordering::Relaxed);
            return HttpResponse::text(503, "the SX worker has stopped");
        }
        match rx.await {
            Ok(resp) => resp,
            Err(_) => HttpResponse::text(500, "the SX worker dropped the request"),
        }
    }

    /// Runs the library's start-up hooks (`host/on-start`) on one worker,
    /// in order; returns the failures, one message each.
    pub async fn run_start_hooks(&self) -> Vec<String> {
        let Some(worker) = self.workers.first() else {
            return vec!["no SX workers are running".to_owned()];
        };
        let (tx, rx) = oneshot::channel();
        if worker.tx.send(Msg::Start(tx)).is_err() {
            return vec!["the SX worker has stopped".to_owned()];
        }
        rx.await
            .unwrap_or_else(|_| vec!["the SX worker dropped the start-up hooks".to_owned()])
    }

    /// Asks every worker to load a new library (dev reload).
    pub fn reload(&self, library: Arc<Library>, asset_urls: Arc<Vec<(String, String)>>) {
        for w in &self.workers {
            let _ = w.tx.send(Msg::Reload(library.clone(), asset_urls.clone()));
        }
    }
}

fn worker_main(
    library: Arc<Library>,
    asset_urls: Arc<Vec<(String, String)>>,
    shared: Shared,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    ready: std::sync::mpsc::Sender<Result<(), HostError>>,
    in_flight: Arc<AtomicUsize>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(HostError::Io {
                what: "starting an SX worker's runtime".to_owned(),
                source: e,
            }));
            return;
        }
    };
    let mut current = match App::load(&library, &asset_urls, shared.dev) {
        Ok(app) => Rc::new(RefCell::new(app)),
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    // In --dev, the error of the last failed reload, shown on every page
    // until the library loads again.
    let mut load_error: Option<Rc<str>> = None;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Request(req, reply) => {
                    let app = current.clone();
                    let shared = shared.clone();
                    let counter = in_flight.clone();
                    let load_error = load_error.clone();
                    let mut request = Box::pin(async move {
                        let resp = match load_error {
                            Some(e) => crate::reply::load_error_page(&e),
                            None => crate::handle::handle(app, req, &shared).await,
                        };
                        counter.fetch_sub(1, Ordering::Relaxed);
                        let _ = reply.send(resp);
                    });
                    // Most requests do no IO and finish at their first
                    // poll: run that here, and spawn a task only for one
                    // that waits (its task polls it again at once, which
                    // registers its wake-ups with the task's own waker).
                    let first =
                        std::future::poll_fn(|cx| Poll::Ready(request.as_mut().poll(cx))).await;
                    if first.is_pending() {
                        tokio::task::spawn_local(request);
                    }
                }
                Msg::Start(reply) => {
                    let app = current.clone();
                    let shared = shared.clone();
                    tokio::task::spawn_local(async move {
                        let _ = reply.send(start_hooks(&app, &shared).await);
                        // Only the worker that ran the start-up hooks runs
                        // the periodic jobs: once per host, not per worker.
                        start_periodic_jobs(&app, &shared);
                    });
                }
                Msg::Reload(lib, urls) => match App::load(&lib, &urls, shared.dev) {
                    Ok(app) => {
                        // Requests in flight keep the app they started with.
                        current = Rc::new(RefCell::new(app));
                        load_error = None;
                        tracing::info!("reloaded SX library ({} files)", lib.files.len());
                    }
                    Err(e) => {
                        tracing::error!("reloading the SX library failed: {e}");
                        load_error = Some(Rc::from(e.to_string()));
                    }
                },
            }
        }
    });
}

/// Runs every function in `host/start-hooks` with no request.
async fn start_hooks(app: &Rc<RefCell<App>>, shared: &Shared) -> Vec<String> {
    let hooks: Vec<Value> = match app.borrow().interp.lookup("host/start-hooks") {
        Some(Value::List(l)) => l.iter().cloned().collect(),
        _ => Vec::new(),
    };
    let scope = RequestScope {
        csrf_token: sx::RcStr::default(),
        request: Value::Nil,
        wants_wire: false,
    };
    let mut failures = Vec::new();
    for f in hooks {
        if let Err(e) = run_sx(app, shared, &scope, f.clone(), Vec::new()).await {
            failures.push(format!("start-up hook {f}: {e}"));
        }
    }
    failures
}

/// Starts one local task per `host/every` job, running it every period
/// (first one period after start) for as long as this worker lives. A
/// failing run is logged and the next runs on time; a run still going when
/// the next is due delays it (no overlap). Jobs keep the library they
/// started with across a `--dev` reload.
fn start_periodic_jobs(app: &Rc<RefCell<App>>, shared: &Shared) {
    let jobs: Vec<Value> = match app.borrow().interp.lookup("host/periodic-jobs") {
        Some(Value::List(l)) => l.iter().cloned().collect(),
        _ => Vec::new(),
    };
    for job in jobs {
        // `(seconds f first-after)`, checked by host/every when registered.
        let Value::List(parts) = &job else { continue };
        let mut parts = parts.iter();
        let (Some(period), Some(f), Some(first)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (Some(period), Some(first)) = (seconds(period), seconds(first)) else {
            continue;
        };
        if period < std::time::Duration::from_secs(1) {
            continue;
        }
        let (app, shared, f) = (app.clone(), shared.clone(), f.clone());
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let scope = RequestScope {
                    csrf_token: sx::RcStr::default(),
                    request: Value::Nil,
                    wants_wire: false,
                };
                if let Err(e) = run_sx(&app, &shared, &scope, f.clone(), Vec::new()).await {
                    tracing::warn!("periodic job {f}: {e}");
                }
            }
        });
    }
}

/// A non-negative number of seconds as a duration.
fn seconds(v: &Value) -> Option<std::time::Duration> {
    let s = match v {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(s).ok()
}

/// Runs `f` with `args` on a fresh machine to the end, carrying out each
/// `perform` asynchronously. The app is borrowed only while the machine
/// runs, never across an `.await`, so other requests interleave.
pub async fn run_sx(
    app: &Rc<RefCell<App>>,
    shared: &Shared,
    scope: &RequestScope,
    f: Value,
    args: Vec<Value>,
) -> Result<Value, sx::EvalError> {
    let started = std::time::Instant::now();
    let mut machine = Machine::new(f, args);
    let mut outcome = with_budget(app, &shared.budget, scope, |interp| machine.run(interp));
    loop {
        match outcome? {
            Outcome::Done(v) => return Ok(v),
            Outcome::Perform(req) => {
                let io = crate::ops::perform(&shared.services, scope, req);
                // The time budget covers IO waits too: an operation still
                // running when it ends is abandoned, and the run stops.
                let answer = match shared.budget.max_time {
                    Some(max) => {
                        let left = max.saturating_sub(started.elapsed());
                        match tokio::time::timeout(left, io).await {
                            Ok(answer) => answer,
                            Err(_) => {
                                return Err(sx::EvalError::new(
                                    sx::ErrorKind::Budget,
                                    format!(
                                        "time budget exhausted: ran longer than {max:?} (waiting for IO)"
                                    ),
                                ));
                            }
                        }
                    }
                    None => io.await,
                };
                outcome = with_budget(app, &shared.budget, scope, |interp| match answer {
                    Ok(v) => machine.resume(interp, v),
                    Err(e) => machine.resume_error(interp, e),
                });
            }
        }
    }
}

fn with_budget<T>(
    app: &Rc<RefCell<App>>,
    budget: &RequestBudget,
    scope: &RequestScope,
    f: impl FnOnce(&mut sx::Interp) -> T,
) -> T {
    let mut app = app.borrow_mut();
    let interp = &mut app.interp;
    interp.budget = sx::Budget {
        max_steps: budget.max_steps,
        max_time: budget.max_time,
        max_heap: budget.max_heap,
        heap_per_machine: true,
        ..sx::Budget::default()
    };
    crate::ops::in_scope(scope, || f(interp))
}
