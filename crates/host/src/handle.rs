//! One request on a worker: route it, build the SX request dict, run the
//! page or handler, and turn what it returns into a response.

use std::cell::RefCell;
use std::rc::Rc;

use sx::Value;

use crate::app::{App, Lookup, dict};
use crate::exchange::{HttpRequest, HttpResponse};
use crate::ops::{PeerIdentity, PeerRefusal, RequestScope};
use crate::reply;
use crate::worker::{Shared, run_sx};

/// A request that cannot reach its handler, and why.
pub struct Refusal {
    pub status: u16,
    pub title: &'static str,
    pub message: String,
}

pub async fn handle(app: Rc<RefCell<App>>, req: HttpRequest, shared: &Shared) -> HttpResponse {
    if let Some(r) = &req.refused {
        let refusal = Refusal {
            status: r.status,
            title: r.title,
            message: r.message.clone(),
        };
        return reply::error_page(&app, shared, &req, refusal, None).await;
    }
    let Some(segments) = crate::routes::split_path(&req.path) else {
        let refusal = Refusal {
            status: 400,
            title: "Bad request",
            message: "The path is not valid (bad percent-encoding).".to_owned(),
        };
        return reply::error_page(&app, shared, &req, refusal, None).await;
    };
    let found = {
        let a = app.borrow();
        match a.lookup(&req.method, &segments) {
            Lookup::Found(route, params) => Ok((
                route.handler.clone(),
                route.csrf,
                route.peer,
                route.name.clone(),
                params,
            )),
            Lookup::WrongMethod(allowed) => Err(Some(allowed)),
            Lookup::NotFound => Err(None),
        }
    };
    let (handler, csrf_required, peer_only, route_name, params) = match found {
        Ok(f) => f,
        Err(Some(allowed)) => {
            let refusal = Refusal {
                status: 405,
                title: "Method not allowed",
                message: format!(
                    "{} is not allowed here; use {}.",
                    req.method,
                    allowed.join(", ")
                ),
            };
            return reply::error_page(&app, shared, &req, refusal, None)
                .await
                .with_header("allow", allowed.join(", "));
        }
        Err(None) => {
            let refusal = Refusal {
                status: 404,
                title: "Not found",
                message: format!("There is no page at {}.", req.path),
            };
            return reply::error_page(&app, shared, &req, refusal, None).await;
        }
    };
    let peer = if peer_only {
        match authenticate_peer(&req, shared).await {
            Ok(p) => Some(p),
            Err(r) => return peer_refused(&r),
        }
    } else {
        None
    };
    if csrf_required && !req.csrf_ok {
        let refusal = Refusal {
            status: 403,
            title: "Forbidden",
            message: "This form has expired or did not come from this site (CSRF check failed). \
                      Reload the page and try again."
                .to_owned(),
        };
        return reply::error_page(&app, shared, &req, refusal, None).await;
    }
    let request = match request_value(&req, &params, peer.as_ref()) {
        Ok(v) => v,
        // A peer reads SX, not an error page.
        Err(refusal) if peer.is_some() => return sx_error(refusal.status, &refusal.message),
        Err(refusal) => return reply::error_page(&app, shared, &req, refusal, None).await,
    };
    let scope = RequestScope {
        csrf_token: req.csrf_token.clone(),
        request: request.clone(),
    };
    match run_sx(&app, shared, &scope, handler, vec![request]).await {
        Ok(v) => reply::reply(&app, shared, &req, &scope, v).await,
        // `(raise (redirect ...))`, as `require-login` does: a response
        // raised from deep inside a page ends it with that response.
        Err(e) if e.kind == sx::ErrorKind::Raise && is_response(&e.value) => {
            reply::reply(&app, shared, &req, &scope, e.value.clone()).await
        }
        Err(e) => {
            tracing::error!(route = %route_name, path = %req.path, "SX error: {e}");
            let refusal = Refusal {
                status: 500,
                title: "Something went wrong",
                message: "The page failed while it was being made. The error has been logged."
                    .to_owned(),
            };
            let detail = shared.dev.then(|| e.to_string());
            reply::error_page(&app, shared, &req, refusal, detail).await
        }
    }
}

/// The signer of a request to a `:peer true` route, or why it is refused.
async fn authenticate_peer(
    req: &HttpRequest,
    shared: &Shared,
) -> Result<PeerIdentity, PeerRefusal> {
    for service in shared.services.iter() {
        if let Some(check) = service.authenticate_peer(req) {
            return check.await;
        }
    }
    Err(PeerRefusal {
        status: 401,
        message: "this host has no peers configured, so it takes no peer requests".to_owned(),
    })
}

/// A refused peer request: SX data `{:error "..."}` (peers read SX, not
/// error pages), with `Accept-Signature` saying what a signature must cover.
fn peer_refused(r: &PeerRefusal) -> HttpResponse {
    tracing::warn!(status = r.status, "peer request refused: {}", r.message);
    sx_error(r.status, &r.message).with_header("accept-signature", crate::peers::ACCEPT_SIGNATURE)
}

/// `{:error "..."}` as SX data, with `status`.
fn sx_error(status: u16, message: &str) -> HttpResponse {
    let mut body = String::new();
    sx::printer::to_str(
        &dict([(Value::kw("error"), Value::str(message))]),
        &mut body,
    );
    HttpResponse::new(status, "text/sx; charset=utf-8", body)
}

/// Whether `v` is a response dict (`{:response :redirect ...}`).
fn is_response(v: &Value) -> bool {
    matches!(v, Value::Dict(d) if matches!(d.get(&Value::kw("response")), Some(Value::Keyword(_))))
}

/// The request as SX sees it:
/// `{:method "POST" :path "/p/x" :params {:slug "x"} :query {"q" "1"}
///   :form {...} :json v :body "text" :headers {...} :cookies {...}
///   :sx-request true :url "/p/x?q=1" :remote-addr "127.0.0.1"}`.
/// Query and form fields given once are strings; repeated, lists.
fn request_value(
    req: &HttpRequest,
    params: &[(String, String)],
    peer: Option<&PeerIdentity>,
) -> Result<Value, Refusal> {
    let mut entries = vec![
        (Value::kw("method"), Value::str(&req.method)),
        (Value::kw("path"), Value::str(&req.path)),
        (
            Value::kw("url"),
            Value::str(&if req.query.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, req.query)
            }),
        ),
        (
            Value::kw("params"),
            dict(params.iter().map(|(k, v)| (Value::kw(k), Value::str(v)))),
        ),
        (Value::kw("query"), fields(req.query.as_bytes())),
        (
            Value::kw("headers"),
            dict(
                req.headers
                    .iter()
                    .map(|(k, v)| (Value::str(k), Value::str(v))),
            ),
        ),
        (
            Value::kw("cookies"),
            dict(
                crate::security::parse_cookies(
                    req.headers
                        .iter()
                        .filter(|(n, _)| n == "cookie")
                        .map(|(_, v)| v.as_str()),
                )
                .into_iter()
                .map(|(k, v)| (Value::str(&k), Value::str(&v))),
            ),
        ),
        (Value::kw("sx-request"), Value::Bool(req.wants_wire())),
        (
            Value::kw("remote-addr"),
            req.remote_addr
                .map_or(Value::Nil, |a| Value::str(&a.ip().to_string())),
        ),
    ];
    if let Some(p) = peer {
        entries.push((
            Value::kw("peer"),
            dict([
                (Value::kw("name"), Value::str(&p.name)),
                (Value::kw("url"), Value::str(&p.url)),
            ]),
        ));
    }
    if !req.body.is_empty() {
        let content_type = req
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match content_type.as_str() {
            "application/x-www-form-urlencoded" => {
                entries.push((Value::kw("form"), fields(&req.body)));
            }
            "application/json" | "application/activity+json" | "application/ld+json" => {
                let j: serde_json::Value =
                    serde_json::from_slice(&req.body).map_err(|e| Refusal {
                        status: 400,
                        title: "Bad request",
                        message: format!(
                            "The JSON body is not valid: {e} (line {}, column {}).",
                            e.line(),
                            e.column()
                        ),
                    })?;
                entries.push((Value::kw("json"), sx::json::from_json(j)));
            }
            "text/sx" => {
                let text = std::str::from_utf8(&req.body).map_err(|e| Refusal {
                    status: 400,
                    title: "Bad request",
                    message: format!("The SX body is not UTF-8 text: {e}."),
                })?;
                let data = sx::reader::read_one(text, "<request body>").map_err(|e| Refusal {
                    status: 400,
                    title: "Bad request",
                    message: format!("The SX body is not valid: {e}"),
                })?;
                entries.push((Value::kw("data"), data));
            }
            "multipart/form-data" => {
                return Err(Refusal {
                    status: 415,
                    title: "Unsupported media type",
                    message: "File uploads (multipart/form-data) are not accepted here.".to_owned(),
                });
            }
            _ => {
                let text = std::str::from_utf8(&req.body).map_err(|e| Refusal {
                    status: 400,
                    title: "Bad request",
                    message: format!("The request body is not UTF-8 text: {e}."),
                })?;
                entries.push((Value::kw("body"), Value::str(text)));
            }
        }
    }
    Ok(dict(entries))
}

/// Parses `a=1&b=2&b=3` into `{"a" "1" "b" ("2" "3")}`.
fn fields(bytes: &[u8]) -> Value {
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in form_urlencoded::parse(bytes) {
        match pairs.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v.into_owned()),
            None => pairs.push((k.into_owned(), vec![v.into_owned()])),
        }
    }
    dict(pairs.into_iter().map(|(k, mut vs)| {
        let v = if vs.len() == 1 {
            Value::str(&vs.pop().unwrap_or_default())
        } else {
            Value::list(vs.iter().map(|s| Value::str(s)).collect())
        };
        (Value::str(&k), v)
    }))
}
