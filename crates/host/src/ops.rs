//! What `perform` does on a server. Every operation is asynchronous: the
//! request's machine waits suspended while its worker thread serves other
//! requests.
//!
//! Built in: `:sleep ms`, `:now`, `:log level message`, `:random-token`,
//! `:csrf-token`, `:request`. Other namespaces (`:store/get`, ...) go to
//! the [`Service`] registered for them.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sx::error::{ErrorKind, EvalError};
use sx::{Request, Value};

use crate::exchange::HttpRequest;

/// A future that stays on the worker thread (it may hold SX values).
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Answers the `perform` operations of one namespace (`:store/get` is
/// operation `get` of namespace `store`). Shared by every worker, so it is
/// `Send + Sync`; the futures it returns run on the calling worker.
pub trait Service: Send + Sync + 'static {
    /// The namespace, e.g. `"store"`.
    fn namespace(&self) -> &str;
    /// Carries out `op` (the name without namespace) with `args`, for the
    /// request in `scope`. Decode the arguments (and whatever is needed of
    /// the request) before the first `.await`: they are SX values.
    fn perform(
        &self,
        op: &str,
        args: Vec<Value>,
        scope: &RequestScope,
    ) -> LocalFuture<Result<Value, EvalError>>;

    /// Checks the signature of a request to a `:peer true` route. Only the
    /// service that knows this host's peers answers (`Some`); the request
    /// is refused when none does.
    fn authenticate_peer(
        &self,
        _req: &HttpRequest,
    ) -> Option<LocalFuture<Result<PeerIdentity, PeerRefusal>>> {
        None
    }
}

/// The peer that signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Its name in this host's peer list (`blog`, `shop`).
    pub name: String,
    /// Its base URL (the signature's key id).
    pub url: String,
}

/// Why a request to a `:peer true` route was refused.
#[derive(Debug, Clone)]
pub struct PeerRefusal {
    /// 401 for a missing, bad, expired or replayed signature; 503 when the
    /// check itself could not be made (the signer's key unreachable).
    pub status: u16,
    pub message: String,
}

/// The request a machine is running for: what request-scoped operations
/// answer.
pub struct RequestScope {
    pub csrf_token: sx::RcStr,
    pub request: Value,
    /// The request asked for SX wire (`SX-Request: true`), not HTML.
    pub wants_wire: bool,
}

thread_local! {
    /// The CSRF token of the request whose machine is running on this
    /// thread right now (machines of several requests interleave on a
    /// worker, but only between runs: each run or resume sets it).
    static RUNNING_CSRF: RefCell<Option<sx::RcStr>> = const { RefCell::new(None) };
    /// Whether that request asked for SX wire.
    static RUNNING_WIRE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a machine's run or resume) as part of `scope`'s request, so
/// that `(csrf-token)` answers that request's token.
pub fn in_scope<T>(scope: &RequestScope, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<sx::RcStr>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            let _ = RUNNING_CSRF.try_with(|c| c.replace(previous));
            let _ = RUNNING_WIRE.try_with(|c| c.set(self.1));
        }
    }
    let previous = RUNNING_CSRF
        .try_with(|c| c.replace(Some(scope.csrf_token.clone())))
        .ok()
        .flatten();
    let previous_wire = RUNNING_WIRE
        .try_with(|c| c.replace(scope.wants_wire))
        .unwrap_or(false);
    let _restore = Restore(previous, previous_wire);
    f()
}

/// `(host/wire-request?)`: whether the running request asked for SX wire
/// (false outside a request), so `page` knows whether to render its body.
pub fn wire_request_native(_: &mut sx::Interp, _: &mut [Value]) -> Result<Value, EvalError> {
    Ok(Value::Bool(
        RUNNING_WIRE.try_with(|c| c.get()).unwrap_or(false),
    ))
}

/// `(host/csrf-token)`: the running request's CSRF token, as `(perform
/// :csrf-token)` answers it but without suspending the machine (the layout
/// asks for it on every page).
pub fn csrf_token_native(_: &mut sx::Interp, _: &mut [Value]) -> Result<Value, EvalError> {
    match RUNNING_CSRF.try_with(|c| c.borrow().clone()).ok().flatten() {
        Some(token) => Ok(Value::Str(token)),
        None => Err(EvalError::new(
            ErrorKind::Perform,
            "csrf-token: no request is being served here".to_owned(),
        )),
    }
}

/// Longest `(perform :sleep ms)`.
const MAX_SLEEP: Duration = Duration::from_secs(60);

pub async fn perform(
    services: &[Arc<dyn Service>],
    scope: &RequestScope,
    req: Request,
) -> Result<Value, EvalError> {
    let name = match &req.op {
        Value::Keyword(k) | Value::Symbol(k) => k.as_str(),
        other => {
            return Err(EvalError::type_error(
                "perform",
                "a keyword operation",
                other,
            ));
        }
    };
    if let Some((ns, op)) = name.split_once('/') {
        if let Some(service) = services.iter().find(|s| s.namespace() == ns) {
            return service.perform(op, req.args.into_vec(), scope).await;
        }
    }
    let arg = |i: usize| req.args.get(i).cloned().unwrap_or_default();
    match name {
        "sleep" => {
            let ms = match arg(0) {
                Value::Int(n) if n >= 0 => n as u64,
                Value::Float(f) if f >= 0.0 && f.is_finite() => f as u64,
                other => {
                    return Err(EvalError::type_error(
                        "sleep",
                        "milliseconds (a number ≥ 0)",
                        &other,
                    ));
                }
            };
            tokio::time::sleep(Duration::from_millis(ms).min(MAX_SLEEP)).await;
            Ok(Value::Nil)
        }
        "now" => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            Ok(Value::Int(ms))
        }
        "log" => {
            let mut msg = String::new();
            for v in req.args.iter().skip(1) {
                sx::printer::to_str(v, &mut msg);
            }
            match arg(0) {
                Value::Keyword(k) if k.as_str() == "error" => {
                    tracing::error!(target: "sx", "{msg}")
                }
                Value::Keyword(k) if k.as_str() == "warn" => tracing::warn!(target: "sx", "{msg}"),
                Value::Keyword(k) if k.as_str() == "debug" => {
                    tracing::debug!(target: "sx", "{msg}")
                }
                _ => tracing::info!(target: "sx", "{msg}"),
            }
            Ok(Value::Nil)
        }
        "random-token" => Ok(Value::str(&crate::security::random_token())),
        "csrf-token" => Ok(Value::Str(scope.csrf_token.clone())),
        "request" => Ok(scope.request.clone()),
        _ => Err(EvalError::new(
            ErrorKind::Perform,
            format!("perform: this host has no operation :{name}"),
        )),
    }
}
