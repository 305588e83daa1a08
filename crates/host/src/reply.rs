//! What a page or handler returned, turned into a response: a page in the
//! layout (or SX wire for the browser runtime), a redirect, JSON or text;
//! and the error pages, which are SX too (`host/error-body` in lib/host).

use std::cell::RefCell;
use std::rc::Rc;

use sx::Value;
use sx::dict::Dict;

use crate::app::{App, dict, kw};
use crate::exchange::{HttpRequest, HttpResponse};
use crate::handle::Refusal;
use crate::ops::RequestScope;
use crate::security::{CookieOptions, set_cookie};
use crate::worker::{Shared, run_sx};

const HTML: &str = "text/html; charset=utf-8";
const WIRE: &str = "text/sx; charset=utf-8";

/// A response description from SX, or why it is not one.
struct Parts {
    status: u16,
    headers: Vec<(String, String)>,
}

fn get<'a>(d: &'a Dict, k: &'static str) -> Option<&'a Value> {
    d.get(&kw(k)).filter(|v| !v.is_nil())
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Str(s)) => Some(s.to_string()),
        Some(other) => {
            let mut s = String::new();
            sx::printer::to_str(other, &mut s);
            Some(s)
        }
        None => None,
    }
}

/// The status, headers and cookies of a response dict.
fn parts(d: &Dict, default_status: u16, req: &HttpRequest) -> Result<Parts, String> {
    let status = match get(d, "status") {
        None => default_status,
        Some(Value::Int(n)) if (100..=599).contains(n) => *n as u16,
        Some(other) => {
            return Err(format!(
                "response :status must be an integer from 100 to 599, not {}",
                sx::printer::display(other)
            ));
        }
    };
    let mut headers = Vec::new();
    if let Some(h) = get(d, "headers") {
        let Value::Dict(h) = h else {
            return Err("response :headers must be a dict".to_owned());
        };
        for (k, v) in h.iter() {
            let name = text_of(Some(k))
                .unwrap_or_default()
                .trim_start_matches(':')
                .to_ascii_lowercase();
            let value = text_of(Some(v)).unwrap_or_default();
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || axum::http::HeaderValue::from_str(&value).is_err()
            {
                return Err(format!(
                    "response header {name:?}: {value:?} is not a valid header"
                ));
            }
            headers.push((name, value));
        }
    }
    if let Some(c) = get(d, "cookies") {
        let Value::Dict(c) = c else {
            return Err("response :cookies must be a dict".to_owned());
        };
        for (k, v) in c.iter() {
            let name = text_of(Some(k)).unwrap_or_default();
            let mut opts = CookieOptions {
                secure: req.secure,
                ..CookieOptions::default()
            };
            let value = match v {
                Value::Dict(o) => {
                    if let Some(Value::Int(age)) = get(o, "max-age") {
                        opts.max_age = Some(*age);
                    }
                    opts.path = text_of(get(o, "path"));
                    opts.script_readable = matches!(get(o, "http-only"), Some(Value::Bool(false)));
                    text_of(get(o, "value")).unwrap_or_default()
                }
                Value::Nil | Value::Bool(false) => {
                    opts.max_age = Some(0);
                    String::new()
                }
                other => text_of(Some(other)).unwrap_or_default(),
            };
            let cookie = set_cookie(&name, &value, &opts)
                .ok_or_else(|| format!("cookie {name:?} has characters a cookie cannot carry"))?;
            headers.push(("set-cookie".to_owned(), cookie));
        }
    }
    Ok(Parts { status, headers })
}

/// Turns a handler's value into a response.
pub async fn reply(
    app: &Rc<RefCell<App>>,
    shared: &Shared,
    req: &HttpRequest,
    scope: &RequestScope,
    v: Value,
) -> HttpResponse {
    let kind = match &v {
        Value::Dict(d) => match get(d, "response") {
            Some(Value::Keyword(k)) => Some(k.as_str()),
            _ => None,
        },
        _ => None,
    };
    let result = match (kind, &v) {
        (Some(kind), Value::Dict(d)) => respond(app, shared, req, scope, kind, d).await,
        _ => page(app, shared, req, scope, 200, None, v.clone(), Vec::new()).await,
    };
    match result {
        Ok(resp) => resp,
        Err(message) => {
            tracing::error!(path = %req.path, "bad response from SX: {message}");
            let refusal = Refusal {
                status: 500,
                title: "Something went wrong",
                message: "The page made a response that cannot be sent. The error has been logged."
                    .to_owned(),
            };
            error_page(app, shared, req, refusal, shared.dev.then_some(message)).await
        }
    }
}

async fn respond(
    app: &Rc<RefCell<App>>,
    shared: &Shared,
    req: &HttpRequest,
    scope: &RequestScope,
    kind: &str,
    d: &Dict,
) -> Result<HttpResponse, String> {
    match kind {
        "page" => {
            let p = parts(d, 200, req)?;
            let title = text_of(get(d, "title"));
            let body = get(d, "body").cloned().unwrap_or_default();
            page(app, shared, req, scope, p.status, title, body, p.headers).await
        }
        "redirect" => {
            let p = parts(d, 303, req)?;
            let location = text_of(get(d, "location")).ok_or("a redirect needs a :location")?;
            if axum::http::HeaderValue::from_str(&location).is_err() {
                return Err(format!(
                    "redirect location {location:?} is not a valid header value"
                ));
            }
            let mut resp = if req.wants_wire() {
                // The runtime follows these itself (a 3xx would be followed
                // invisibly by fetch): SX-Location keeps client navigation
                // going for a boosted request, SX-Redirect loads the page.
                // A location on another site is always a full page load:
                // the runtime only swaps responses of its own origin.
                let elsewhere = location.starts_with("//") || location.contains("://");
                let boosted = req.header("sx-boosted") == Some("true");
                let name = if boosted && !elsewhere {
                    "sx-location"
                } else {
                    "sx-redirect"
                };
                HttpResponse::new(200, WIRE, "nil").with_header(name, location)
            } else {
                if !(300..400).contains(&p.status) {
                    return Err(format!(
                        "a redirect's :status must be 3xx, not {}",
                        p.status
                    ));
                }
                let mut r = HttpResponse::text(p.status, format!("Redirecting to {location}"));
                r.headers.push(("location".to_owned(), location));
                r
            };
            resp.headers.extend(p.headers);
            Ok(resp)
        }
        "json" => {
            let p = parts(d, 200, req)?;
            let mut out = String::new();
            sx::json::encode(get(d, "body").unwrap_or(&Value::Nil), &mut out)
                .map_err(|e| e.to_string())?;
            let mut resp = HttpResponse::new(p.status, "application/json", out);
            resp.headers.extend(p.headers);
            Ok(resp)
        }
        "text" => {
            let p = parts(d, 200, req)?;
            let body = text_of(get(d, "body")).unwrap_or_default();
            let content_type = text_of(get(d, "content-type"))
                .unwrap_or_else(|| "text/plain; charset=utf-8".to_owned());
            if axum::http::HeaderValue::from_str(&content_type).is_err() {
                return Err(format!(
                    "content type {content_type:?} is not a valid header value"
                ));
            }
            let mut resp = HttpResponse::new(p.status, &content_type, body);
            resp.headers.extend(p.headers);
            Ok(resp)
        }
        "wire" => {
            // Markup as SX wire whatever the request asked for.
            let p = parts(d, 200, req)?;
            let body = sx_web::to_wire_string(get(d, "body").unwrap_or(&Value::Nil))
                .map_err(|e| e.to_string())?;
            let mut resp = HttpResponse::new(p.status, WIRE, body);
            resp.headers.extend(p.headers);
            Ok(resp)
        }
        "data" => {
            // Any SX value, canonical: what peers exchange.
            let p = parts(d, 200, req)?;
            let body = sx::printer::serialize(get(d, "body").unwrap_or(&Value::Nil))
                .map_err(|e| format!("a data response must be plain data: {e}"))?;
            let mut resp = HttpResponse::new(p.status, WIRE, body);
            resp.headers.extend(p.headers);
            Ok(resp)
        }
        other => Err(format!(
            "unknown response kind :{other} (expected :page, :redirect, :json, :text, :wire or :data)"
        )),
    }
}

/// A page: SX wire of the body for the browser runtime, else the whole
/// document from `host/document`.
#[allow(clippy::too_many_arguments)]
async fn page(
    app: &Rc<RefCell<App>>,
    shared: &Shared,
    req: &HttpRequest,
    scope: &RequestScope,
    status: u16,
    title: Option<String>,
    body: Value,
    headers: Vec<(String, String)>,
) -> Result<HttpResponse, String> {
    let mut resp = if req.wants_wire() {
        let wire = sx_web::to_wire_string(&body).map_err(|e| e.to_string())?;
        let mut r = HttpResponse::new(status, WIRE, wire);
        // The same text as the full page's <title> (host/title in SX).
        let title_fn = app.borrow().interp.lookup("host/title");
        let full_title = match title_fn {
            Some(f) => {
                let t = title.as_deref().map_or(Value::Nil, Value::str);
                match run_sx(app, shared, scope, f, vec![t]).await {
                    Ok(Value::Str(s)) => Some(s.to_string()),
                    _ => title.clone(),
                }
            }
            None => title.clone(),
        };
        if let Some(t) = full_title {
            let encoded =
                percent_encoding::utf8_percent_encode(&t, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            r.headers.push(("sx-title".to_owned(), encoded));
        }
        r
    } else {
        // `(render-html (host/document page))` in SX, so the document's
        // own markup renders straight into the output (render mode).
        let render = app
            .borrow()
            .interp
            .lookup("host/render-document")
            .unwrap_or_default();
        let page = dict([
            (kw("title"), title.map_or(Value::Nil, |t| Value::str(&t))),
            (kw("body"), body),
            (kw("status"), Value::Int(i64::from(status))),
        ]);
        let html = match run_sx(app, shared, scope, render, vec![page]).await {
            Ok(Value::Str(html)) => String::from(&*html),
            Ok(other) => {
                return Err(format!(
                    "host/render-document returned {}, not the page's HTML",
                    other.type_of().as_str()
                ));
            }
            Err(e) => return Err(format!("host/document failed: {e}")),
        };
        HttpResponse::new(status, HTML, html)
    };
    resp.headers.extend(headers);
    Ok(resp)
}

/// An error page written in SX (`host/error-body`), in the layout. If the
/// SX itself fails, a plain one.
pub async fn error_page(
    app: &Rc<RefCell<App>>,
    shared: &Shared,
    req: &HttpRequest,
    refusal: Refusal,
    detail: Option<String>,
) -> HttpResponse {
    let scope = RequestScope {
        csrf_token: sx::RcStr::from(req.csrf_token.as_str()),
        request: Value::Nil,
        wants_wire: req.wants_wire(),
    };
    let body_fn = app
        .borrow()
        .interp
        .lookup("host/error-body")
        .unwrap_or_default();
    let info = dict([
        (kw("status"), Value::Int(i64::from(refusal.status))),
        (kw("title"), Value::str(refusal.title)),
        (kw("message"), Value::str(&refusal.message)),
        (
            kw("detail"),
            detail.as_deref().map_or(Value::Nil, Value::str),
        ),
    ]);
    let made = match run_sx(app, shared, &scope, body_fn, vec![info]).await {
        Ok(body) => {
            let title = Some(format!("{} {}", refusal.status, refusal.title));
            page(
                app,
                shared,
                req,
                &scope,
                refusal.status,
                title,
                body,
                Vec::new(),
            )
            .await
        }
        Err(e) => Err(e.to_string()),
    };
    match made {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!("the SX error page failed: {e}");
            plain_error(
                refusal.status,
                refusal.title,
                &refusal.message,
                detail.as_deref(),
            )
        }
    }
}

/// An error page that needs no SX.
pub fn plain_error(status: u16, title: &str, message: &str, detail: Option<&str>) -> HttpResponse {
    let mut html = String::from("<!doctype html><meta charset=\"utf-8\"><title>");
    sx_web::html::escape_text(title, &mut html);
    html.push_str("</title><h1>");
    html.push_str(&status.to_string());
    html.push(' ');
    sx_web::html::escape_text(title, &mut html);
    html.push_str("</h1><p>");
    sx_web::html::escape_text(message, &mut html);
    html.push_str("</p>");
    if let Some(d) = detail {
        html.push_str("<pre>");
        sx_web::html::escape_text(d, &mut html);
        html.push_str("</pre>");
    }
    HttpResponse::new(status, HTML, html)
}

/// What every page shows while the library fails to load in `--dev`.
pub fn load_error_page(error: &str) -> HttpResponse {
    plain_error(
        500,
        "The SX library does not load",
        "Fix the error below and save; the page reloads the library on every change.",
        Some(error),
    )
}
