//! Peers: the other hosts of the cooperative (blog, events, shop, ...),
//! each with its own store and base URL. This host signs every request it
//! makes to them, and checks the signature of every request they make to
//! a `:peer true` route.
//!
//! Signatures are HTTP Message Signatures (RFC 9421, Ed25519, see
//! `fed::httpsig`) over the method, authority, path, query and the body's
//! Content-Digest, with a `created`/`expires` window and a nonce. The key
//! id is the signer's base URL, which must be one of this host's
//! configured peers; its public key is fetched from
//! `<url>/.well-known/rose-ash-peer` and cached. A nonce is remembered (in
//! the store, so every host on a shared database sees it) until the
//! signature expires: a replay is refused.
//!
//! SX reaches it by `perform` (`:peer/request`, `:peer/url`, ...); the
//! functions around those are in lib/host/peers.sx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fed::httpsig::{self, Incoming, Outgoing, PeerKey, PublicKey};
use sx::Value;
use sx::error::{ErrorKind, EvalError};

use crate::app::dict;
use crate::exchange::HttpRequest;
use crate::ops::{LocalFuture, PeerIdentity, PeerRefusal, RequestScope, Service};

/// What a signature must cover, sent with every 401 (RFC 9421 §5.1).
pub const ACCEPT_SIGNATURE: &str = "sig1=(\"@method\" \"@authority\" \"@path\" \"@query\" \
                                    \"content-digest\");alg=\"ed25519\";tag=\"rose-ash-peer\"";

/// Where a peer publishes its public key.
pub const DOCUMENT_PATH: &str = "/.well-known/rose-ash-peer";

/// How long a signature we make is valid.
const SIGNATURE_LIFETIME: i64 = 60;
/// Clock difference tolerated between peers.
const CLOCK_SKEW: i64 = 30;
/// The longest validity accepted from another peer.
const MAX_LIFETIME: i64 = 300;
/// How long a fetched public key is trusted before it is fetched again.
const KEY_TTL: Duration = Duration::from_secs(3600);
/// A signature that fails with a cached key older than this fetches the
/// key again (the peer may have a new one); younger, it simply fails, so
/// forged requests cannot make us hammer the peer.
const KEY_REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Default time a request to a peer may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from a peer.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// How long a cached answer may still be served when its peer is down.
const STALE_FOR_MS: i64 = 7 * 24 * 3600 * 1000;
/// The record namespace of cached answers.
const CACHE_NS: &str = "peer-cache";

/// This host as a peer, and the peers it knows.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// This host's name (`events`).
    pub name: String,
    /// This host's public base URL, without a trailing slash.
    pub base_url: String,
    /// The other peers: name and base URL.
    pub peers: Vec<(String, String)>,
}

/// The `peer` namespace of `perform`, and the signature check.
#[derive(Clone)]
pub struct PeerService {
    inner: Arc<Inner>,
}

struct Inner {
    config: PeerConfig,
    key: PeerKey,
    store: store::Store,
    http: reqwest::Client,
    keys: Mutex<HashMap<String, CachedKey>>,
}

#[derive(Clone)]
struct CachedKey {
    key: PublicKey,
    fetched: Instant,
}

/// A peer's answer.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

fn now_secs() -> i64 {
    store::now_ms() / 1000
}

/// A catchable SX error `{:type :error :kind kind :message m ...}`.
fn raised(kind: &str, message: String, extra: Vec<(Value, Value)>) -> EvalError {
    let mut entries = vec![
        (Value::kw("type"), Value::kw("error")),
        (Value::kw("kind"), Value::kw(kind)),
        (Value::kw("message"), Value::str(&message)),
    ];
    entries.extend(extra);
    EvalError::raised(dict(entries))
}

fn unavailable(peer: &str, message: String) -> EvalError {
    raised(
        "peer-unavailable",
        message,
        vec![(Value::kw("peer"), Value::str(peer))],
    )
}

fn refused(message: impl Into<String>) -> PeerRefusal {
    PeerRefusal {
        status: 401,
        message: message.into(),
    }
}

impl PeerService {
    /// Loads (or on first start makes) this host's signing key from
    /// `store`. Blocking: call it off the async threads.
    pub fn open(config: PeerConfig, store: store::Store) -> Result<PeerService, crate::HostError> {
        let key = fed::peers::peer_key(&store)
            .map_err(|e| crate::HostError::Load(format!("loading the peer key: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::HostError::Load(format!("making the HTTP client: {e}")))?;
        let mut config = config;
        config.base_url = config.base_url.trim_end_matches('/').to_owned();
        for (_, url) in &mut config.peers {
            *url = url.trim_end_matches('/').to_owned();
        }
        Ok(PeerService {
            inner: Arc::new(Inner {
                config,
                key,
                store,
                http,
                keys: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// This host's public key, as published.
    pub fn public_key_b64(&self) -> String {
        self.inner.key.public_key().to_b64()
    }

    fn url_of(&self, name: &str) -> Option<&str> {
        self.inner
            .config
            .peers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.as_str())
    }

    fn name_of(&self, url: &str) -> Option<&str> {
        let url = url.trim_end_matches('/');
        self.inner
            .config
            .peers
            .iter()
            .find(|(_, u)| u == url)
            .map(|(n, _)| n.as_str())
    }

    /// The JSON document at [`DOCUMENT_PATH`].
    fn document(&self) -> Value {
        let c = &self.inner.config;
        dict([
            (Value::str("name"), Value::str(&c.name)),
            (Value::str("url"), Value::str(&c.base_url)),
            (Value::str("keyId"), Value::str(&c.base_url)),
            (Value::str("alg"), Value::str("ed25519")),
            (Value::str("publicKey"), Value::str(&self.public_key_b64())),
        ])
    }

    /// Sends a signed request to peer `name`.
    async fn send(
        &self,
        name: &str,
        method: &str,
        path: &str,
        body: Option<String>,
        timeout: Duration,
    ) -> Result<Answer, EvalError> {
        let Some(base) = self.url_of(name) else {
            return Err(unavailable(
                name,
                format!(
                    "no peer named {name:?} is configured (start the host with --peer {name}=URL)"
                ),
            ));
        };
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(EvalError::new(
                ErrorKind::Value,
                format!("peer/request: the path must start with a single /, got {path:?}"),
            ));
        }
        let url = reqwest::Url::parse(&format!("{base}{path}")).map_err(|e| {
            EvalError::new(
                ErrorKind::Value,
                format!("peer/request: {base}{path} is not a valid URL: {e}"),
            )
        })?;
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(unavailable(
                    name,
                    format!("the peer URL {base} has no host"),
                ));
            }
        };
        let body = body.unwrap_or_default();
        let nonce = crate::security::random_token();
        let created = now_secs();
        let headers = httpsig::sign(
            &self.inner.key,
            &Outgoing {
                method,
                authority: &authority,
                path: url.path(),
                query: url.query().unwrap_or(""),
                body: body.as_bytes(),
                key_id: &self.inner.config.base_url,
                created,
                expires: created + SIGNATURE_LIFETIME,
                nonce: &nonce,
            },
        );
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
            EvalError::new(
                ErrorKind::Value,
                format!("peer/request: {method:?} is not an HTTP method"),
            )
        })?;
        let mut rb = self
            .inner
            .http
            .request(m, url)
            .timeout(timeout)
            .header("accept", "text/sx, application/json;q=0.5");
        if !body.is_empty() {
            rb = rb.header("content-type", "text/sx; charset=utf-8");
        }
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let describe = |e: &reqwest::Error| {
            if e.is_timeout() {
                "it did not answer in time".to_owned()
            } else if e.is_connect() {
                "the connection was refused".to_owned()
            } else {
                e.to_string()
            }
        };
        let resp = rb.body(body).send().await.map_err(|e| {
            unavailable(
                name,
                format!(
                    "the {name} peer ({base}) is not reachable: {}",
                    describe(&e)
                ),
            )
        })?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Err(unavailable(
                name,
                format!("the {name} peer's answer is larger than {MAX_ANSWER} bytes"),
            ));
        }
        let bytes = resp.bytes().await.map_err(|e| {
            unavailable(
                name,
                format!("the {name} peer's answer was cut off: {}", describe(&e)),
            )
        })?;
        if bytes.len() > MAX_ANSWER {
            return Err(unavailable(
                name,
                format!("the {name} peer's answer is larger than {MAX_ANSWER} bytes"),
            ));
        }
        Ok(Answer {
            status,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// A GET through the cache: a fresh copy (younger than `max_age`) is
    /// served from the store; otherwise the peer is asked, and if it cannot
    /// answer, a stale copy is served (marked `:stale true`).
    async fn cached_get(
        &self,
        name: &str,
        path: &str,
        max_age_ms: i64,
        timeout: Duration,
    ) -> Result<Value, EvalError> {
        let key = format!("{name} {path}");
        let now = store::now_ms();
        let k = key.clone();
        let cached = self
            .inner
            .store
            .read_op(move |tx| store::kv::get(tx, CACHE_NS, &k, now))
            .await
            .map_err(|e| store::sx_ops::eval_error(&e))?;
        if let Some(rec) = &cached {
            if now - rec.at < max_age_ms {
                return answer_value(name, 200, "text/sx", &rec.value, false);
            }
        }
        match self.send(name, "GET", path, None, timeout).await {
            Ok(a) if (200..300).contains(&a.status) && a.content_type.starts_with("text/sx") => {
                let rec = store::kv::Record {
                    ns: CACHE_NS.to_owned(),
                    key,
                    value: a.body.clone(),
                    tag: None,
                    expires: Some(now + STALE_FOR_MS),
                    at: now,
                };
                let written = self
                    .inner
                    .store
                    .run(move |s| s.write(|tx| store::kv::put(tx, &rec)))
                    .await;
                if let Err(e) = written {
                    tracing::warn!("caching the {name} peer's answer failed: {e}");
                }
                answer_value(name, a.status, &a.content_type, &a.body, false)
            }
            // The peer is in trouble: the last good answer is better than
            // none.
            Ok(a) if a.status >= 500 => match cached {
                Some(rec) => answer_value(name, 200, "text/sx", &rec.value, true),
                None => answer_value(name, a.status, &a.content_type, &a.body, false),
            },
            Ok(a) => answer_value(name, a.status, &a.content_type, &a.body, false),
            Err(e) => match cached {
                Some(rec) => answer_value(name, 200, "text/sx", &rec.value, true),
                None => Err(e),
            },
        }
    }

    /// The public key of the peer at `url`: cached, or fetched.
    async fn public_key(&self, url: &str, refresh: bool) -> Result<CachedKey, PeerRefusal> {
        if let Ok(keys) = self.inner.keys.lock() {
            if let Some(k) = keys.get(url) {
                let fresh = k.fetched.elapsed() < KEY_TTL;
                let refetchable = k.fetched.elapsed() >= KEY_REFETCH_AFTER;
                if fresh && !(refresh && refetchable) {
                    return Ok(k.clone());
                }
                if refresh && !refetchable {
                    return Ok(k.clone());
                }
            }
        }
        let unavailable = |m: String| PeerRefusal {
            status: 503,
            message: format!("cannot check the signature: the public key of {url} {m}"),
        };
        let resp = self
            .inner
            .http
            .get(format!("{url}{DOCUMENT_PATH}"))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| unavailable(format!("could not be fetched: {e}")))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!(
                "could not be fetched: HTTP {}",
                resp.status().as_u16()
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| unavailable(format!("could not be read: {e}")))?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| unavailable(format!("is not valid JSON: {e}")))?;
        let claimed_url = doc.get("url").and_then(|v| v.as_str()).unwrap_or("");
        if claimed_url.trim_end_matches('/') != url {
            return Err(unavailable(format!(
                "is published for another URL ({claimed_url:?})"
            )));
        }
        let key = doc
            .get("publicKey")
            .and_then(|v| v.as_str())
            .ok_or_else(|| unavailable("is missing from its document".to_owned()))
            .and_then(|b64| {
                PublicKey::from_b64(b64).map_err(|e| unavailable(format!("is not valid: {e}")))
            })?;
        let cached = CachedKey {
            key,
            fetched: Instant::now(),
        };
        if let Ok(mut keys) = self.inner.keys.lock() {
            keys.insert(url.to_owned(), cached.clone());
        }
        Ok(cached)
    }

    /// Checks a signed request: form, signer, signature, time, nonce.
    async fn authenticate(&self, req: OwnedRequest) -> Result<PeerIdentity, PeerRefusal> {
        let incoming = Incoming {
            method: &req.method,
            authority: &req.authority,
            path: &req.path,
            query: &req.query,
            headers: &req.headers,
            body: &req.body,
        };
        let claimed = httpsig::parse(&incoming).map_err(|e| refused(e.to_string()))?;
        let Some(name) = self.name_of(&claimed.key_id).map(str::to_owned) else {
            return Err(refused(format!(
                "the signer {:?} is not one of this host's peers",
                claimed.key_id
            )));
        };
        let url = claimed.key_id.trim_end_matches('/').to_owned();
        let now = now_secs();
        let key = self.public_key(&url, false).await?;
        if let Err(first) = httpsig::verify(&claimed, &key.key, now, CLOCK_SKEW, MAX_LIFETIME) {
            // The peer may have a new key: fetch it again (not too often).
            let again = self.public_key(&url, true).await?;
            if again.fetched == key.fetched {
                return Err(refused(first.to_string()));
            }
            httpsig::verify(&claimed, &again.key, now, CLOCK_SKEW, MAX_LIFETIME)
                .map_err(|e| refused(e.to_string()))?;
        }
        // Only a valid signature gets its nonce remembered, so forged
        // requests cannot fill the table.
        let (store, nonce, key_id) = (self.inner.store.clone(), claimed.nonce.clone(), url.clone());
        let until = claimed.expires + CLOCK_SKEW;
        let first_time = tokio::task::spawn_blocking(move || {
            fed::peers::remember_nonce(&store, &key_id, &nonce, until)
        })
        .await
        .map_err(|e| PeerRefusal {
            status: 503,
            message: format!("cannot check the nonce: {e}"),
        })?
        .map_err(|e| PeerRefusal {
            status: 503,
            message: format!("cannot check the nonce: {e}"),
        })?;
        if !first_time {
            return Err(refused(
                "the request was replayed: its signature nonce has been used before",
            ));
        }
        Ok(PeerIdentity { name, url })
    }
}

/// The parts of a request the check needs, owned (the check awaits).
struct OwnedRequest {
    method: String,
    authority: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: bytes::Bytes,
}

/// `{:status n :data v :stale bool}` from a peer's answer; a non-2xx
/// answer is raised as `:peer-refused`.
fn answer_value(
    name: &str,
    status: u16,
    content_type: &str,
    body: &str,
    stale: bool,
) -> Result<Value, EvalError> {
    let data = if content_type.starts_with("text/sx") {
        sx::reader::read_one(body, &format!("<answer of the {name} peer>")).map_err(|e| {
            raised(
                "peer-refused",
                format!("the {name} peer answered with invalid SX: {e}"),
                vec![(Value::kw("status"), Value::Int(i64::from(status)))],
            )
        })?
    } else if content_type.starts_with("application/json") {
        serde_json::from_str(body)
            .map(sx::json::from_json)
            .unwrap_or_else(|_| Value::str(body))
    } else {
        Value::str(body)
    };
    if !(200..300).contains(&status) {
        let why = match &data {
            Value::Dict(d) => match d.get(&Value::kw("error")) {
                Some(Value::Str(s)) => s.to_string(),
                _ => format!("HTTP {status}"),
            },
            Value::Str(s) if !s.is_empty() => s.chars().take(200).collect(),
            _ => format!("HTTP {status}"),
        };
        return Err(raised(
            "peer-refused",
            format!("the {name} peer refused the request: {why}"),
            vec![
                (Value::kw("peer"), Value::str(name)),
                (Value::kw("status"), Value::Int(i64::from(status))),
                (Value::kw("data"), data),
            ],
        ));
    }
    Ok(dict([
        (Value::kw("status"), Value::Int(i64::from(status))),
        (Value::kw("data"), data),
        (Value::kw("stale"), Value::Bool(stale)),
    ]))
}

fn text_arg(args: &[Value], i: usize, op: &str, what: &str) -> Result<String, EvalError> {
    match args.get(i) {
        Some(Value::Str(s)) => Ok(s.to_string()),
        Some(Value::Keyword(k)) | Some(Value::Symbol(k)) => Ok(k.as_str().to_owned()),
        other => Err(EvalError::type_error(
            op,
            what,
            other.unwrap_or(&Value::Nil),
        )),
    }
}

fn opt<'a>(opts: &'a Value, key: &str) -> Option<&'a Value> {
    match opts {
        Value::Dict(d) => d.get(&Value::kw(key)).filter(|v| !matches!(v, Value::Nil)),
        _ => None,
    }
}

impl Service for PeerService {
    fn namespace(&self) -> &str {
        "peer"
    }

    fn perform(
        &self,
        op: &str,
        args: Vec<Value>,
        _scope: &RequestScope,
    ) -> LocalFuture<Result<Value, EvalError>> {
        let this = self.clone();
        let op = op.to_owned();
        Box::pin(async move {
            let c = &this.inner.config;
            match op.as_str() {
                "self" => Ok(Value::str(&c.base_url)),
                "name" => Ok(Value::str(&c.name)),
                "url" => {
                    let name = text_arg(&args, 0, "peer/url", "a peer name")?;
                    Ok(this.url_of(&name).map_or(Value::Nil, Value::str))
                }
                "name-of" => {
                    let url = text_arg(&args, 0, "peer/name-of", "a base URL")?;
                    if url.trim_end_matches('/') == c.base_url {
                        return Ok(Value::str(&c.name));
                    }
                    Ok(this.name_of(&url).map_or(Value::Nil, Value::str))
                }
                "peers" => Ok(dict(
                    c.peers.iter().map(|(n, u)| (Value::str(n), Value::str(u))),
                )),
                "document" => Ok(this.document()),
                "request" => {
                    let name = text_arg(&args, 0, "peer/request", "a peer name")?;
                    let method = text_arg(&args, 1, "peer/request", "a method")?.to_uppercase();
                    let path = text_arg(&args, 2, "peer/request", "a path")?;
                    let body = match args.get(3) {
                        None | Some(Value::Nil) => None,
                        Some(v) => Some(sx::printer::serialize(v).map_err(|e| {
                            EvalError::new(
                                ErrorKind::Value,
                                format!("peer/request: the body cannot be sent: {e}"),
                            )
                        })?),
                    };
                    let opts = args.get(4).cloned().unwrap_or_default();
                    let timeout = match opt(&opts, "timeout") {
                        Some(Value::Int(ms)) if *ms > 0 => Duration::from_millis(*ms as u64),
                        _ => REQUEST_TIMEOUT,
                    };
                    match opt(&opts, "cache") {
                        Some(Value::Int(secs)) if method == "GET" && body.is_none() => {
                            this.cached_get(&name, &path, secs.saturating_mul(1000), timeout)
                                .await
                        }
                        _ => {
                            let a = this.send(&name, &method, &path, body, timeout).await?;
                            answer_value(&name, a.status, &a.content_type, &a.body, false)
                        }
                    }
                }
                other => Err(EvalError::new(
                    ErrorKind::Perform,
                    format!("perform: the peer service has no operation :peer/{other}"),
                )),
            }
        })
    }

    fn authenticate_peer(
        &self,
        req: &HttpRequest,
    ) -> Option<LocalFuture<Result<PeerIdentity, PeerRefusal>>> {
        let owned = OwnedRequest {
            method: req.method.clone(),
            authority: req.header("host").unwrap_or("").to_ascii_lowercase(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
        };
        let this = self.clone();
        Some(Box::pin(async move { this.authenticate(owned).await }))
    }
}
