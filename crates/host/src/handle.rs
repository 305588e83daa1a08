//! One request on a worker: route it, build the SX request dict, run the
//! page or handler, and turn what it returns into a response.

use std::cell::RefCell;
use std::rc::Rc;

use sx::Value;
use sx::dict::{Dict, Key};

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
        csrf_token: sx::RcStr::from(req.csrf_token.as_str()),
        request: request.clone(),
        wants_wire: req.wants_wire(),
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
    matches!(v, Value::Dict(d) if matches!(d.get(&crate::app::kw("response")), Some(Value::Keyword(_))))
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
    KEYS.with(|keys| request_dict(keys, req, params, peer))
}

/// The request dict's keys, made once per worker thread (a keyword key
/// costs an interner lookup and its sort prefix to make).
struct RequestKeys {
    method: Key,
    path: Key,
    url: Key,
    params: Key,
    query: Key,
    headers: Key,
    cookies: Key,
    sx_request: Key,
    remote_addr: Key,
    peer: Key,
    name: Key,
    form: Key,
    json: Key,
    data: Key,
    body: Key,
    /// `"GET"` and `"POST"`, shared by every request's dict.
    get: Value,
    post: Value,
}

fn key(name: &str) -> Key {
    // A keyword is always a valid key; the fallback is never taken.
    Key::new(Value::kw(name)).unwrap_or_else(|_| unreachable_key())
}

#[cold]
fn unreachable_key() -> Key {
    Key::new(Value::Int(0)).unwrap_or_else(|_| unreachable_key())
}

thread_local! {
    static KEYS: RequestKeys = RequestKeys {
        method: key("method"),
        path: key("path"),
        url: key("url"),
        params: key("params"),
        query: key("query"),
        headers: key("headers"),
        cookies: key("cookies"),
        sx_request: key("sx-request"),
        remote_addr: key("remote-addr"),
        peer: key("peer"),
        name: key("name"),
        form: key("form"),
        json: key("json"),
        data: key("data"),
        body: key("body"),
        get: Value::str("GET"),
        post: Value::str("POST"),
    };
}

/// A string dict of `pairs`.
fn str_dict<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Dict(
        pairs
            .filter_map(|(k, v)| Key::new(Value::str(k)).ok().map(|k| (k, Value::str(v))))
            .collect(),
    )
}

/// The text of an IP address (IPv4 without the formatting machinery).
fn ip_text(ip: std::net::IpAddr) -> Value {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if octet >= 100 {
                    s.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    s.push(char::from(b'0' + octet / 10 % 10));
                }
                s.push(char::from(b'0' + octet % 10));
            }
            Value::str(&s)
        }
        other => Value::str(&other.to_string()),
    }
}

fn request_dict(
    keys: &RequestKeys,
    req: &HttpRequest,
    params: &[(String, String)],
    peer: Option<&PeerIdentity>,
) -> Result<Value, Refusal> {
    // Collected, then built in one go (`Dict: FromIterator`).
    let mut d: Vec<(Key, Value)> = Vec::with_capacity(12);
    let method = match req.method.as_str() {
        "GET" => keys.get.clone(),
        "POST" => keys.post.clone(),
        other => Value::str(other),
    };
    d.push((keys.method.clone(), method));
    let path = Value::str(&req.path);
    let url = if req.query.is_empty() {
        // The same string: nothing can change it.
        path.clone()
    } else {
        Value::str(&format!("{}?{}", req.path, req.query))
    };
    d.push((keys.path.clone(), path));
    d.push((keys.url.clone(), url));
    let ps = params
        .iter()
        .filter_map(|(k, v)| Key::new(Value::kw(k)).ok().map(|k| (k, Value::str(v))))
        .collect();
    d.push((keys.params.clone(), Value::Dict(ps)));
    d.push((keys.query.clone(), fields(req.query.as_bytes())));
    d.push((
        keys.headers.clone(),
        str_dict(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    ));
    let cookies = if req.headers.iter().any(|(n, _)| n == "cookie") {
        let parsed = crate::security::parse_cookies(
            req.headers
                .iter()
                .filter(|(n, _)| n == "cookie")
                .map(|(_, v)| v.as_str()),
        );
        str_dict(parsed.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    } else {
        Value::Dict(Dict::new())
    };
    d.push((keys.cookies.clone(), cookies));
    d.push((keys.sx_request.clone(), Value::Bool(req.wants_wire())));
    d.push((
        keys.remote_addr.clone(),
        req.remote_addr.map_or(Value::Nil, |a| ip_text(a.ip())),
    ));
    if let Some(p) = peer {
        let pd = [
            (keys.name.clone(), Value::str(&p.name)),
            (keys.url.clone(), Value::str(&p.url)),
        ];
        d.push((keys.peer.clone(), Value::Dict(pd.into_iter().collect())));
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
                d.push((keys.form.clone(), fields(&req.body)));
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
                d.push((keys.json.clone(), sx::json::from_json(j)));
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
                d.push((keys.data.clone(), data));
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
                d.push((keys.body.clone(), Value::str(text)));
            }
        }
    }
    Ok(Value::Dict(d.into_iter().collect()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_writes_addresses_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.99.100.9",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let parsed: std::net::IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert_eq!(ip_text(parsed), Value::str(&parsed.to_string()), "{ip}");
        }
    }
}
