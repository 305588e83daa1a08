//! Signing members in to an app through the cooperative's identity
//! provider: `(perform :sso/...)` behind the `/auth/login`,
//! `/auth/callback`, `/auth/logout` and `/auth/backchannel-logout` routes
//! every app gets from `lib/host/auth.sx`, and `(current-user)`.
//!
//! Each app keeps its own first-party session (cookie `ra_<app>_session`,
//! HttpOnly, SameSite=Lax) in its own store; the provider's back-channel
//! logout ends it when the member signs out anywhere. On the provider's
//! own host the provider session is the app session.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fed::crypto::{ct_eq, token_key};
use fed::jwt::PublicKeys;
use fed::oauth::{Provider, with_query};
use fed::rp::{LoginRequest, safe_local_path, verify_id_token, verify_logout_token};
use serde_json::{Value as Json, json};
use store::kv::{self, Record};
use sx::Value;
use sx::error::{ErrorKind, EvalError};

use crate::identity::{
    IDP_COOKIE, blocking, kw_value, provider_session, request_cookie, request_pairs,
};
use crate::ops::{LocalFuture, RequestScope, Service};

const SESSION_NS: &str = "sso-session";
const LOGIN_NS: &str = "sso-login";
/// How long an app session lasts.
const SESSION_TTL: i64 = 14 * 24 * 3600 * 1000;
/// How long a login may take between leaving for the provider and coming
/// back.
const LOGIN_TTL: i64 = 10 * 60 * 1000;
/// How long discovery and keys are cached.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// The scopes an app asks for.
const SCOPE: &str = "openid profile email";

/// How an app signs in through the provider.
#[derive(Debug, Clone)]
pub struct SsoConfig {
    /// The app's name: cookies are `ra_<app>_session` and `ra_<app>_login`.
    pub app: String,
    /// The app's public base URL (`http://127.0.0.1:8081`).
    pub base_url: String,
    /// The provider's issuer URL.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl SsoConfig {
    pub fn session_cookie(&self) -> String {
        format!("ra_{}_session", self.app)
    }
    pub fn login_cookie(&self) -> String {
        format!("ra_{}_login", self.app)
    }
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.base_url)
    }
}

#[derive(Clone)]
struct Discovery {
    metadata: Json,
    keys: PublicKeys,
    at: Instant,
}

/// The `sso/` service of one app.
pub struct SsoService {
    /// `None`: sign-in is not configured on this host.
    config: Option<SsoConfig>,
    /// Set on the provider's own host: sessions are the provider's.
    provider: Option<Provider>,
    store: store::Store,
    http: reqwest::Client,
    discovery: Arc<Mutex<Option<Discovery>>>,
}

fn err(m: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::Value, m)
}

impl SsoService {
    pub fn new(
        config: Option<SsoConfig>,
        provider: Option<Provider>,
        store: store::Store,
    ) -> SsoService {
        SsoService {
            config,
            provider,
            store,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            discovery: Arc::new(Mutex::new(None)),
        }
    }

    /// The app name (for cookie names), even on the provider's host.
    fn app(&self) -> String {
        self.config
            .as_ref()
            .map_or_else(|| "id".to_owned(), |c| c.app.clone())
    }
}

/// Fetches (or returns the cached) discovery document and keys;
/// `refresh` forces a new fetch (an unknown `kid` after key rotation).
async fn discover(
    http: &reqwest::Client,
    cache: &Mutex<Option<Discovery>>,
    issuer: &str,
    refresh: bool,
) -> Result<Discovery, EvalError> {
    if !refresh {
        if let Ok(c) = cache.lock() {
            if let Some(d) = c.as_ref().filter(|d| d.at.elapsed() < DISCOVERY_TTL) {
                return Ok(d.clone());
            }
        }
    }
    let get = |url: String| async move {
        let r = http.get(&url).send().await.map_err(|e| {
            err(format!(
                "The sign-in service at {url} cannot be reached: {e}"
            ))
        })?;
        if !r.status().is_success() {
            return Err(err(format!(
                "The sign-in service at {url} answered {}",
                r.status()
            )));
        }
        let bytes = r
            .bytes()
            .await
            .map_err(|e| err(format!("reading {url}: {e}")))?;
        serde_json::from_slice::<Json>(&bytes).map_err(|e| err(format!("{url}: not JSON: {e}")))
    };
    let metadata = get(format!("{issuer}/.well-known/openid-configuration")).await?;
    if metadata["issuer"] != json!(issuer) {
        return Err(err(format!(
            "the provider's metadata names issuer {}, not {issuer}",
            metadata["issuer"]
        )));
    }
    let jwks_uri = metadata["jwks_uri"]
        .as_str()
        .ok_or_else(|| err("the provider's metadata has no jwks_uri"))?
        .to_owned();
    let keys = PublicKeys::from_jwks(&get(jwks_uri).await?);
    let d = Discovery {
        metadata,
        keys,
        at: Instant::now(),
    };
    if let Ok(mut c) = cache.lock() {
        *c = Some(d.clone());
    }
    Ok(d)
}

fn session_value(j: &Json) -> Value {
    kw_value(&json!({
        "id": j["sub"], "email": j["email"], "name": j["name"],
        "roles": j["roles"].as_array().cloned().unwrap_or_default(),
        "sid": j["sid"],
    }))
}

impl Service for SsoService {
    fn namespace(&self) -> &str {
        "sso"
    }

    fn perform(
        &self,
        op: &str,
        args: Vec<Value>,
        scope: &RequestScope,
    ) -> LocalFuture<Result<Value, EvalError>> {
        let op = op.to_owned();
        let cfg = self.config.clone();
        let provider = self.provider.clone();
        let store = self.store.clone();
        let http = self.http.clone();
        let cache = self.discovery.clone();
        let app = self.app();
        let session_cookie = request_cookie(scope, &format!("ra_{app}_session"));
        let login_cookie = request_cookie(scope, &format!("ra_{app}_login"));
        let idp_cookie = request_cookie(scope, IDP_COOKIE);
        let query = request_pairs(scope, "query");
        let form = request_pairs(scope, "form");
        let next = match args.first() {
            Some(Value::Str(s)) if safe_local_path(s) => s.to_string(),
            _ => "/".to_owned(),
        };
        Box::pin(async move {
            let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            match op.as_str() {
                "configured?" => Ok(Value::Bool(cfg.is_some() || provider.is_some())),
                "cookie-names" => Ok(kw_value(&json!({
                    "session": format!("ra_{app}_session"),
                    "login": format!("ra_{app}_login"),
                }))),
                "login-path" => Ok(Value::str(&with_query("/auth/login", &[("next", &next)]))),
                "current-user" => {
                    if let Some(p) = provider {
                        let Some(c) = idp_cookie else {
                            return Ok(Value::Nil);
                        };
                        let found = blocking(move || provider_session(&p, &c)).await?;
                        return Ok(match found {
                            Some((s, m)) => kw_value(&json!({
                                "id": m.id, "email": m.email, "name": m.name,
                                "roles": m.roles, "sid": s.sid,
                            })),
                            None => Value::Nil,
                        });
                    }
                    let Some(token) = session_cookie.filter(|t| t.len() <= 200) else {
                        return Ok(Value::Nil);
                    };
                    let rec = blocking(move || {
                        Ok(store.read(|tx| {
                            kv::get(tx, SESSION_NS, &token_key(&token), store::now_ms())
                        })?)
                    })
                    .await?;
                    Ok(rec
                        .and_then(|r| serde_json::from_str::<Json>(&r.value).ok())
                        .map_or(Value::Nil, |j| session_value(&j)))
                }
                "login" => {
                    if provider.is_some() {
                        return Ok(kw_value(&json!({
                            "redirect": with_query("/login", &[("next", &next)]),
                        })));
                    }
                    let cfg = cfg.ok_or_else(|| err("Sign-in is not configured on this site."))?;
                    let d = discover(&http, &cache, &cfg.issuer, false).await?;
                    let endpoint = d.metadata["authorization_endpoint"]
                        .as_str()
                        .ok_or_else(|| err("the provider has no authorization_endpoint"))?
                        .to_owned();
                    let (client_id, redirect_uri) = (cfg.client_id.clone(), cfg.redirect_uri());
                    let req = blocking(move || {
                        let req = LoginRequest::new(&endpoint, &client_id, &redirect_uri, SCOPE)?;
                        let value = json!({"nonce": req.nonce, "verifier": req.verifier,
                                           "next": next})
                        .to_string();
                        let now = store::now_ms();
                        store.write(|tx| {
                            kv::put(
                                tx,
                                &Record {
                                    ns: LOGIN_NS.into(),
                                    key: token_key(&req.state),
                                    value,
                                    tag: None,
                                    expires: Some(now + LOGIN_TTL),
                                    at: now,
                                },
                            )
                        })?;
                        Ok(req)
                    })
                    .await?;
                    Ok(kw_value(&json!({"redirect": req.url, "state": req.state})))
                }
                "callback" => {
                    let cfg = cfg.ok_or_else(|| err("Sign-in is not configured on this site."))?;
                    let state = q("state").unwrap_or_default();
                    // Login CSRF: the callback must come back to the browser
                    // that started the login (its cookie holds the state).
                    let same_browser = login_cookie
                        .as_deref()
                        .is_some_and(|c| ct_eq(c.as_bytes(), state.as_bytes()));
                    if state.is_empty() || state.len() > 200 || !same_browser {
                        return Err(err(
                            "This sign-in did not start in this browser, or took too long. Try again.",
                        ));
                    }
                    let st = store.clone();
                    let key = token_key(&state);
                    let pending = blocking(move || {
                        Ok(st.write(|tx| kv::take_record(tx, LOGIN_NS, &key, store::now_ms()))?)
                    })
                    .await?
                    .and_then(|r| serde_json::from_str::<Json>(&r.value).ok())
                    .ok_or_else(|| {
                        err("This sign-in link was used already or has expired. Try again.")
                    })?;
                    // RFC 9207: the response must say it came from our provider.
                    if q("iss").as_deref() != Some(cfg.issuer.as_str()) {
                        return Err(err(
                            "The sign-in response did not come from this site's identity provider.",
                        ));
                    }
                    if let Some(e) = q("error") {
                        let desc = q("error_description").unwrap_or_default();
                        return Err(err(if e == "access_denied" {
                            "Sign-in was cancelled.".to_owned()
                        } else {
                            format!("The identity provider refused the sign-in: {e} {desc}")
                        }));
                    }
                    let code = q("code").ok_or_else(|| err("The sign-in response has no code."))?;
                    let mut d = discover(&http, &cache, &cfg.issuer, false).await?;
                    let token_endpoint = d.metadata["token_endpoint"]
                        .as_str()
                        .ok_or_else(|| err("the provider has no token_endpoint"))?
                        .to_owned();
                    let body = form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "authorization_code")
                        .append_pair("code", &code)
                        .append_pair("redirect_uri", &cfg.redirect_uri())
                        .append_pair("code_verifier", pending["verifier"].as_str().unwrap_or(""))
                        .finish();
                    let enc =
                        |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                    let basic = <base64ct::Base64 as base64ct::Encoding>::encode_string(
                        format!("{}:{}", enc(&cfg.client_id), enc(&cfg.client_secret)).as_bytes(),
                    );
                    let resp = http
                        .post(&token_endpoint)
                        .header("authorization", format!("Basic {basic}"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| {
                            err(format!("The identity provider cannot be reached: {e}"))
                        })?;
                    let status = resp.status();
                    let bytes = resp
                        .bytes()
                        .await
                        .map_err(|e| err(format!("reading the token response: {e}")))?;
                    let tokens: Json = serde_json::from_slice(&bytes)
                        .map_err(|e| err(format!("the token response is not JSON: {e}")))?;
                    if !status.is_success() {
                        return Err(err(format!(
                            "The identity provider refused the sign-in: {} {}",
                            tokens["error"].as_str().unwrap_or("error"),
                            tokens["error_description"].as_str().unwrap_or("")
                        )));
                    }
                    let id_token = tokens["id_token"]
                        .as_str()
                        .ok_or_else(|| err("the token response has no id_token"))?
                        .to_owned();
                    let nonce = pending["nonce"].as_str().unwrap_or("").to_owned();
                    let mut checked =
                        verify_id_token(&id_token, &d.keys, &cfg.issuer, &cfg.client_id, &nonce);
                    if matches!(&checked, Err(m) if m.contains("kid")) {
                        d = discover(&http, &cache, &cfg.issuer, true).await?;
                        checked = verify_id_token(
                            &id_token,
                            &d.keys,
                            &cfg.issuer,
                            &cfg.client_id,
                            &nonce,
                        );
                    }
                    let mut claims = checked.map_err(|m| err(format!("Sign-in failed: {m}.")))?;
                    claims["id_token"] = json!(id_token);
                    let sid = claims["sid"].as_str().map(str::to_owned);
                    let next = pending["next"]
                        .as_str()
                        .filter(|n| safe_local_path(n))
                        .unwrap_or("/")
                        .to_owned();
                    let token = blocking(move || {
                        let token = fed::crypto::random_token()?;
                        let now = store::now_ms();
                        store.write(|tx| {
                            kv::put(
                                tx,
                                &Record {
                                    ns: SESSION_NS.into(),
                                    key: token_key(&token),
                                    value: claims.to_string(),
                                    tag: sid,
                                    expires: Some(now + SESSION_TTL),
                                    at: now,
                                },
                            )
                        })?;
                        Ok(token)
                    })
                    .await?;
                    Ok(kw_value(&json!({"token": token, "next": next})))
                }
                "logout" => {
                    if provider.is_some() {
                        return Ok(kw_value(&json!({"redirect": "/logout"})));
                    }
                    let Some(cfg) = cfg else {
                        return Ok(kw_value(&json!({"redirect": "/"})));
                    };
                    let taken = match session_cookie.filter(|t| t.len() <= 200) {
                        Some(t) => blocking(move || {
                            Ok(store.write(|tx| {
                                kv::take_record(tx, SESSION_NS, &token_key(&t), store::now_ms())
                            })?)
                        })
                        .await?
                        .and_then(|r| serde_json::from_str::<Json>(&r.value).ok()),
                        None => None,
                    };
                    // Single logout: the provider ends its session and tells
                    // every other app.
                    let d = discover(&http, &cache, &cfg.issuer, false).await;
                    let end = d.ok().and_then(|d| {
                        d.metadata["end_session_endpoint"]
                            .as_str()
                            .map(str::to_owned)
                    });
                    let redirect = match end {
                        Some(end) => {
                            let back = format!("{}/", cfg.base_url);
                            let mut pairs = vec![
                                ("client_id", cfg.client_id.as_str()),
                                ("post_logout_redirect_uri", back.as_str()),
                            ];
                            let hint = taken
                                .as_ref()
                                .and_then(|j| j["id_token"].as_str().map(str::to_owned));
                            if let Some(h) = &hint {
                                pairs.push(("id_token_hint", h));
                            }
                            with_query(&end, &pairs)
                        }
                        None => "/".to_owned(),
                    };
                    Ok(kw_value(&json!({"redirect": redirect})))
                }
                "backchannel-logout" => {
                    let cfg = cfg.ok_or_else(|| err("Sign-in is not configured on this site."))?;
                    let token = form
                        .iter()
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| err("logout_token is missing"))?;
                    let mut d = discover(&http, &cache, &cfg.issuer, false).await?;
                    let mut checked =
                        verify_logout_token(&token, &d.keys, &cfg.issuer, &cfg.client_id);
                    if matches!(&checked, Err(m) if m.contains("kid")) {
                        d = discover(&http, &cache, &cfg.issuer, true).await?;
                        checked = verify_logout_token(&token, &d.keys, &cfg.issuer, &cfg.client_id);
                    }
                    let (sid, _sub) = checked.map_err(err)?;
                    let ended = match sid {
                        Some(sid) => {
                            blocking(move || {
                                Ok(store.write(|tx| kv::delete_tagged(tx, SESSION_NS, &sid))?)
                            })
                            .await?
                        }
                        None => 0,
                    };
                    Ok(Value::Int(i64::try_from(ended).unwrap_or(i64::MAX)))
                }
                other => Err(EvalError::new(
                    ErrorKind::Perform,
                    format!("perform: this host has no operation :sso/{other}"),
                )),
            }
        })
    }
}
