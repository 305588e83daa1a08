//! One worker's SX application: an interpreter with the library loaded,
//! and the route table its `defpage`/`defhandler` declarations built.

use sx::dict::Key;
use sx::{Interp, Value};

use crate::HostError;
use crate::library::Library;
use crate::routes::Pattern;

/// A page or handler.
pub struct Route {
    /// The SX name it was declared with.
    pub name: String,
    /// `GET`, `POST`, ... (pages are `GET`).
    pub method: String,
    pub pattern: Pattern,
    /// The SX function called with the request dict.
    pub handler: Value,
    /// Whether unsafe methods must carry the CSRF token (default true).
    pub csrf: bool,
    /// Only requests signed by a configured peer reach it (`:peer true`).
    pub peer: bool,
}

/// The outcome of looking a request up.
pub enum Lookup<'a> {
    Found(&'a Route, Vec<(String, String)>),
    /// The path exists for other methods (405 with `Allow`).
    WrongMethod(Vec<String>),
    NotFound,
}

pub struct App {
    pub interp: Interp,
    /// Most specific first.
    pub routes: Vec<Route>,
}

thread_local! {
    /// Keywords made from the host's own string literals, by the literal's
    /// address: making one costs an interner lookup (a hash of the name),
    /// and the host asks for the same few on every request.
    static KEYWORDS: std::cell::RefCell<[Option<(usize, usize, Value)>; 64]> =
        const { std::cell::RefCell::new([const { None }; 64]) };
}

/// `Value::kw(name)` for a name written in the host's code.
pub fn kw(name: &'static str) -> Value {
    let addr = name.as_ptr() as usize;
    let slot = addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - 6);
    let cached = KEYWORDS
        .try_with(|k| {
            let k = k.try_borrow().ok()?;
            match k.get(slot) {
                Some(Some((a, len, v))) if *a == addr && *len == name.len() => Some(v.clone()),
                _ => None,
            }
        })
        .ok()
        .flatten();
    if let Some(v) = cached {
        return v;
    }
    let v = Value::kw(name);
    let _ = KEYWORDS.try_with(|k| {
        if let Ok(mut k) = k.try_borrow_mut() {
            if let Some(entry) = k.get_mut(slot) {
                *entry = Some((addr, name.len(), v.clone()));
            }
        }
    });
    v
}

/// Builds a dict from string/keyword keys.
pub fn dict(entries: impl IntoIterator<Item = (Value, Value)>) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .filter_map(|(k, v)| Key::new(k).ok().map(|k| (k, v)))
            .collect(),
    )
}

impl App {
    /// A fresh interpreter with the web primitives, `host/assets` and
    /// `host/dev?`, and every file of `library` evaluated in order.
    pub fn load(
        library: &Library,
        asset_urls: &[(String, String)],
        dev: bool,
    ) -> Result<App, HostError> {
        let mut interp = Interp::new();
        sx_web::install(&mut interp).map_err(|e| HostError::Load(e.to_string()))?;
        interp.define(
            "host/assets",
            dict(
                asset_urls
                    .iter()
                    .map(|(name, url)| (Value::str(name), Value::str(url))),
            ),
        );
        interp.define("host/dev?", Value::Bool(dev));
        interp.define_native("host/csrf-token", 0, Some(0), crate::ops::csrf_token_native);
        interp.define_native(
            "host/wire-request?",
            0,
            Some(0),
            crate::ops::wire_request_native,
        );
        let mut forms = Vec::new();
        for file in &library.files {
            let file_forms = sx::reader::read_all(&file.text, &file.name, true)
                .map_err(|e| HostError::Load(e.to_string()))?;
            for form in &file_forms {
                interp
                    .eval(form)
                    .map_err(|e| HostError::Load(e.to_string()))?;
            }
            forms.extend(file_forms);
        }
        interp.define(
            "host/islands-sx",
            Value::str(&crate::islands::island_source(&forms)),
        );
        let routes = read_routes(&interp)?;
        Ok(App { interp, routes })
    }

    /// The route for `method` and the decoded path segments.
    pub fn lookup(&self, method: &str, path: &[String]) -> Lookup<'_> {
        let method = if method == "HEAD" { "GET" } else { method };
        let mut allowed = Vec::new();
        for route in &self.routes {
            if let Some(params) = route.pattern.matches(path) {
                if route.method == method {
                    return Lookup::Found(route, params);
                }
                if !allowed.contains(&route.method) {
                    allowed.push(route.method.clone());
                }
            }
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            if allowed.iter().any(|m| m == "GET") {
                allowed.push("HEAD".to_owned());
            }
            Lookup::WrongMethod(allowed)
        }
    }
}

/// Reads `host/routes` (a list of dicts, see lib/host/routes.sx).
fn read_routes(interp: &Interp) -> Result<Vec<Route>, HostError> {
    let list = match interp.lookup("host/routes") {
        Some(Value::List(l)) => l,
        Some(Value::Nil) | None => {
            return Err(HostError::Load(
                "host/routes is not defined: is lib/host loaded?".to_owned(),
            ));
        }
        Some(other) => {
            return Err(HostError::Load(format!(
                "host/routes must be a list, not {}",
                other.type_of().as_str()
            )));
        }
    };
    let mut routes: Vec<Route> = Vec::new();
    for entry in list.iter() {
        let Value::Dict(d) = entry else {
            return Err(HostError::Load(format!(
                "host/routes holds a {}, not a route dict",
                entry.type_of().as_str()
            )));
        };
        let text = |k: &str| -> Option<String> {
            match d.get(&Value::kw(k)) {
                Some(Value::Str(s)) => Some(s.to_string()),
                Some(Value::Symbol(s)) => Some(s.as_str().to_owned()),
                _ => None,
            }
        };
        let name = text("name").unwrap_or_else(|| "<anonymous>".to_owned());
        let method =
            text("method").ok_or_else(|| HostError::Load(format!("route {name}: no :method")))?;
        let path =
            text("path").ok_or_else(|| HostError::Load(format!("route {name}: no :path")))?;
        let pattern =
            Pattern::parse(&path).map_err(|e| HostError::Load(format!("route {name}: {e}")))?;
        let handler = d.get(&Value::kw("fn")).cloned().unwrap_or_default();
        if !matches!(handler, Value::Closure(_) | Value::Native(_)) {
            return Err(HostError::Load(format!(
                "route {name}: :fn is not a function"
            )));
        }
        let csrf = !matches!(d.get(&Value::kw("csrf")), Some(Value::Bool(false)));
        let peer = matches!(d.get(&Value::kw("peer")), Some(Value::Bool(true)));
        if let Some(other) = routes
            .iter()
            .find(|r| r.method == method && r.pattern == pattern)
        {
            return Err(HostError::Load(format!(
                "{method} {path} is declared twice: by {} and by {name}",
                other.name
            )));
        }
        routes.push(Route {
            name,
            method,
            pattern,
            handler,
            csrf,
            peer,
        });
    }
    // Stable: among equally specific routes, declaration order wins.
    routes.sort_by_key(|r| std::cmp::Reverse(r.pattern.specificity()));
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_keywords_are_the_keywords() {
        // Overlapping literals (one may be stored inside another) and more
        // names than the cache has slots.
        let names: Vec<&'static str> = vec!["status", "stat", "s", "title", "body", "response"]
            .into_iter()
            .chain((0..200).map(|i| &*Box::leak(format!("name-{i}").into_boxed_str())))
            .collect();
        for _ in 0..2 {
            for name in &names {
                assert_eq!(kw(name), Value::kw(name), "{name}");
            }
        }
        let whole: &'static str = "content-type";
        assert_eq!(kw(whole), Value::kw("content-type"));
        assert_eq!(kw(&whole[..7]), Value::kw("content"));
        assert_eq!(kw(whole), Value::kw("content-type"));
    }
}
