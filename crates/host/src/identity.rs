//! The identity provider as a [`Service`]: `(perform :idp/...)` for the
//! SX pages of `lib/federation` — sign-up, sign-in, the provider session,
//! verification, password reset, profile, admin — and the OAuth 2.0 /
//! OpenID Connect endpoints, which return whole responses
//! (`{:status :json :headers}`) for `idp/oauth-response` to send.
//!
//! The protocol and the accounts live in the `fed` crate; this module
//! reads what it needs of the request, runs `fed` off the async threads,
//! delivers back-channel logout tokens and sends queued mail.

use std::sync::Arc;
use std::time::Duration;

use fed::accounts::{Member, Session};
use fed::oauth::{Authorize, Provider};
use fed::{FedError, OAuthError};
use serde_json::{Value as Json, json};
use sx::error::{ErrorKind, EvalError};
use sx::{Dict, Key, Value};

use crate::ops::{LocalFuture, RequestScope, Service};

/// The provider's own session cookie.
pub const IDP_COOKIE: &str = "rose_ash_id_session";

/// JSON to SX with keyword keys (`{"a": 1}` → `{:a 1}`), for values SX
/// code reads with `(get m :email)`.
pub fn kw_value(j: &Json) -> Value {
    match j {
        Json::Object(map) => {
            let mut d = Dict::new();
            for (k, v) in map {
                if let Ok(key) = Key::new(Value::kw(k)) {
                    d.insert(key, kw_value(v));
                }
            }
            Value::Dict(d)
        }
        Json::Array(items) => Value::list(items.iter().map(kw_value).collect()),
        other => sx::json::from_json(other.clone()),
    }
}

/// A field of the request dict (`:query`, `:form`, `:cookies`, ...).
fn request_field<'a>(scope: &'a RequestScope, name: &str) -> Option<&'a Value> {
    match &scope.request {
        Value::Dict(d) => d.get(&Value::kw(name)),
        _ => None,
    }
}

/// The query or form of the request as name/value pairs; a repeated
/// field gives one pair per value (so duplicates can be refused).
pub fn request_pairs(scope: &RequestScope, name: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(Value::Dict(d)) = request_field(scope, name) {
        for (k, v) in d.iter() {
            let Value::Str(k) = k else { continue };
            match v {
                Value::Str(s) => out.push((k.to_string(), s.to_string())),
                Value::List(l) => {
                    for item in l.iter() {
                        if let Value::Str(s) = item {
                            out.push((k.to_string(), s.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// A cookie of the request.
pub fn request_cookie(scope: &RequestScope, name: &str) -> Option<String> {
    match request_field(scope, "cookies") {
        Some(Value::Dict(d)) => match d.get(&Value::str(name)) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// A header of the request (name in lowercase).
pub fn request_header(scope: &RequestScope, name: &str) -> Option<String> {
    match request_field(scope, "headers") {
        Some(Value::Dict(d)) => match d.get(&Value::str(name)) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn remote_addr(scope: &RequestScope) -> String {
    match request_field(scope, "remote-addr") {
        Some(Value::Str(s)) => s.to_string(),
        _ => String::new(),
    }
}

/// A `fed` error as a catchable SX error whose message is for people.
pub fn fed_error(e: FedError) -> EvalError {
    match e {
        FedError::Invalid(m) => EvalError::new(ErrorKind::Value, m),
        FedError::RateLimited { retry_after } => EvalError::new(
            ErrorKind::Value,
            format!(
                "Too many attempts. Try again in {} minute{}.",
                (retry_after + 59) / 60,
                if retry_after > 60 { "s" } else { "" }
            ),
        ),
        other => {
            tracing::error!("identity: {other}");
            EvalError::new(ErrorKind::Perform, format!("identity: {other}"))
        }
    }
}

/// Runs blocking `fed` work on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> fed::Result<T> + Send + 'static,
) -> Result<T, EvalError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(fed_error),
        Err(e) => Err(EvalError::new(
            ErrorKind::Perform,
            format!("identity task failed: {e}"),
        )),
    }
}

fn string_arg(args: &[Value], i: usize, op: &str, what: &str) -> Result<String, EvalError> {
    match args.get(i) {
        Some(Value::Str(s)) => Ok(s.to_string()),
        Some(Value::Nil) | None => Ok(String::new()),
        Some(other) => Err(EvalError::type_error(
            &format!("idp/{op}"),
            &format!("{what} (a string)"),
            other,
        )),
    }
}

fn member_value(m: &Member) -> Value {
    kw_value(&m.to_json())
}

/// An OAuth response for `idp/oauth-response`: status, JSON body, headers.
fn oauth_response(status: u16, body: &Json, extra: &[(&str, String)]) -> Value {
    let mut headers = vec![
        ("cache-control".to_owned(), "no-store".to_owned()),
        ("pragma".to_owned(), "no-cache".to_owned()),
    ];
    headers.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let mut d = Dict::new();
    let mut put = |k: &str, v: Value| {
        if let Ok(key) = Key::new(Value::kw(k)) {
            d.insert(key, v);
        }
    };
    put("status", Value::Int(i64::from(status)));
    put("json", sx::json::from_json(body.clone()));
    let mut h = Dict::new();
    for (k, v) in headers {
        if let Ok(key) = Key::new(Value::str(&k)) {
            h.insert(key, Value::str(&v));
        }
    }
    put("headers", Value::Dict(h));
    Value::Dict(d)
}

fn oauth_error_response(e: &OAuthError) -> Value {
    let mut extra = Vec::new();
    if e.status == 401 {
        // RFC 6749 §5.2 / RFC 6750 §3.
        // Client authentication failures name the scheme clients use
        // (Basic); bad access tokens name Bearer.
        let scheme = if e.code == "invalid_client" {
            "Basic"
        } else {
            "Bearer"
        };
        extra.push(("www-authenticate", format!("{scheme} error=\"{}\"", e.code)));
    }
    oauth_response(
        e.status,
        &json!({"error": e.code, "error_description": e.description}),
        &extra,
    )
}

/// The provider session a cookie names, with its member (blocking).
pub fn provider_session(p: &Provider, cookie: &str) -> fed::Result<Option<(Session, Member)>> {
    let Some(s) = p.accounts.session(cookie)? else {
        return Ok(None);
    };
    Ok(p.accounts.member(&s.member)?.map(|m| (s, m)))
}

/// The identity provider's service.
pub struct IdentityService {
    provider: Provider,
    http: reqwest::Client,
}

impl IdentityService {
    pub fn new(provider: Provider) -> IdentityService {
        IdentityService {
            provider,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// Drains the mail outbox every second through `send` until the
    /// process ends. The default sender writes each mail to the log.
    pub fn spawn_mailer(&self, send: MailSender) {
        let accounts = self.provider.accounts.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(1);
            loop {
                tokio::time::sleep(wait).await;
                let a = accounts.clone();
                let send = send.clone();
                let delivered = tokio::task::spawn_blocking(move || {
                    // Expired sessions, codes and tokens go too.
                    let _ = a
                        .store
                        .write(|tx| store::kv::purge_expired(tx, store::now_ms()));
                    let Ok(mails) = a.outbox(20) else {
                        return false;
                    };
                    for m in mails {
                        if !send(&m) {
                            // The server is down: keep the rest queued.
                            return false;
                        }
                        let _ = a.mail_sent(&m.key);
                    }
                    true
                })
                .await
                .unwrap_or(false);
                // Back off while the mail server fails.
                wait = if delivered {
                    Duration::from_secs(1)
                } else {
                    (wait * 2).min(Duration::from_secs(60))
                };
            }
        });
    }
}

/// Sends one mail; false leaves it queued to retry later.
pub type MailSender = Arc<dyn Fn(&fed::accounts::Mail) -> bool + Send + Sync>;

/// The default mail sender: the whole message goes to the log.
pub fn log_mail(m: &fed::accounts::Mail) -> bool {
    tracing::info!(target: "mail", "to: {}\nsubject: {}\n\n{}", m.to, m.subject, m.text);
    true
}

/// A mail sender over SMTP, from a URL such as
/// `smtps://user:pass@smtp.example.org` (TLS), `smtp://host:587?tls=required`
/// (STARTTLS) or `smtp://127.0.0.1:2525` (plain, for a local relay). Mails
/// go out from `from`; a failed send stays in the outbox and is retried.
pub fn smtp_mailer(url: &str, from: &str) -> Result<MailSender, String> {
    use lettre::Transport as _;
    let transport = lettre::SmtpTransport::from_url(url)
        .map_err(|e| format!("invalid SMTP URL: {e}"))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    let from: lettre::message::Mailbox = from
        .parse()
        .map_err(|e| format!("invalid sender address {from:?}: {e}"))?;
    Ok(Arc::new(move |m: &fed::accounts::Mail| {
        let to = match m.to.parse::<lettre::message::Mailbox>() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(target: "mail", "dropping mail to {:?}: {e}", m.to);
                return true;
            }
        };
        let msg = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(m.subject.clone())
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(m.text.clone());
        match msg {
            Ok(msg) => match transport.send(&msg) {
                Ok(_) => {
                    tracing::info!(target: "mail", "sent {:?} to {}", m.subject, m.to);
                    true
                }
                Err(e) => {
                    tracing::warn!(target: "mail", "sending to {} failed (will retry): {e}", m.to);
                    false
                }
            },
            Err(e) => {
                tracing::error!(target: "mail", "dropping a malformed mail to {}: {e}", m.to);
                true
            }
        }
    }))
}

/// POSTs each logout token to its app's back-channel logout URI; a
/// failure is logged, not fatal (the app's session then lasts until it
/// expires).
async fn deliver_logouts(http: reqwest::Client, notices: Vec<fed::oauth::LogoutNotice>) {
    for n in notices {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", &n.logout_token)
            .finish();
        let sent = http
            .post(&n.uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!("back-channel logout to {}: status {}", n.uri, r.status()),
            Err(e) => tracing::warn!("back-channel logout to {}: {e}", n.uri),
        }
    }
}

impl Service for IdentityService {
    fn namespace(&self) -> &str {
        "idp"
    }

    fn perform(
        &self,
        op: &str,
        args: Vec<Value>,
        scope: &RequestScope,
    ) -> LocalFuture<Result<Value, EvalError>> {
        let p = self.provider.clone();
        let http = self.http.clone();
        let cookie = request_cookie(scope, IDP_COOKIE).unwrap_or_default();
        let arg = |i: usize, what: &str| string_arg(&args, i, op, what);
        let op = op.to_owned();
        // Decode everything needed from the SX side now.
        let decoded: Result<Decoded, EvalError> = (|| {
            Ok(match op.as_str() {
                "sign-up" => Decoded::Strings(vec![
                    arg(0, "email")?,
                    arg(1, "name")?,
                    arg(2, "password")?,
                    remote_addr(scope),
                ]),
                "sign-in" => Decoded::Strings(vec![
                    arg(0, "email")?,
                    arg(1, "password")?,
                    remote_addr(scope),
                ]),
                "verify-email" | "request-reset" | "reset-live?" | "rename" | "login-path" => {
                    Decoded::Strings(vec![arg(0, "the value")?])
                }
                "reset-password" | "change-password" => {
                    Decoded::Strings(vec![arg(0, "the first value")?, arg(1, "the password")?])
                }
                "set-role" => Decoded::Strings(vec![
                    arg(0, "the member id")?,
                    arg(1, "the role")?,
                    if args.get(2).is_some_and(Value::truthy) {
                        "on".into()
                    } else {
                        String::new()
                    },
                ]),
                "authorize" | "end-session" | "hint-valid?" => {
                    Decoded::Pairs(request_pairs(scope, "query"))
                }
                "consent" | "token" | "revoke" | "introspect" => {
                    Decoded::Pairs(request_pairs(scope, "form"))
                }
                _ => Decoded::None,
            })
        })();
        let authorization = request_header(scope, "authorization");
        Box::pin(async move {
            let decoded = decoded?;
            let strings = match &decoded {
                Decoded::Strings(s) => s.clone(),
                _ => Vec::new(),
            };
            let s = move |i: usize| strings.get(i).cloned().unwrap_or_default();
            let pairs = match decoded {
                Decoded::Pairs(p) => p,
                _ => Vec::new(),
            };
            let session = {
                let (p, c) = (p.clone(), cookie.clone());
                move || provider_session(&p, &c)
            };
            match op.as_str() {
                "session" => {
                    let found = blocking(session).await?;
                    Ok(match found {
                        Some((s, m)) => {
                            let mut j = m.to_json();
                            j["sid"] = json!(s.sid);
                            kw_value(&j)
                        }
                        None => Value::Nil,
                    })
                }
                "sign-up" => {
                    let m = blocking(move || {
                        p.accounts.limit_sign_ups(&s(3))?;
                        p.accounts.sign_up(&s(0), &s(1), &s(2))
                    })
                    .await?;
                    Ok(member_value(&m))
                }
                "sign-in" => {
                    let (token, sess) =
                        blocking(move || p.accounts.sign_in(&s(0), &s(1), &s(2))).await?;
                    Ok(kw_value(&json!({"token": token, "sid": sess.sid})))
                }
                "sign-out" => {
                    let notices = blocking(move || {
                        let Some(sess) = p.accounts.sign_out(&cookie)? else {
                            return Ok(Vec::new());
                        };
                        p.logout_everywhere(&sess)
                    })
                    .await?;
                    deliver_logouts(http, notices).await;
                    Ok(Value::Nil)
                }
                "verify-email" => {
                    let m = blocking(move || p.accounts.verify_email(&s(0))).await?;
                    Ok(member_value(&m))
                }
                "request-reset" => {
                    blocking(move || p.accounts.request_reset(&s(0))).await?;
                    Ok(Value::Nil)
                }
                "reset-live?" => Ok(Value::Bool(
                    blocking(move || p.accounts.reset_token_live(&s(0))).await?,
                )),
                "reset-password" => {
                    let m = blocking(move || p.accounts.reset_password(&s(0), &s(1))).await?;
                    Ok(member_value(&m))
                }
                "rename" | "change-password" | "resend-verification" => {
                    let found = blocking(session).await?;
                    let Some((_, me)) = found else {
                        return Err(EvalError::new(ErrorKind::Value, "Sign in first."));
                    };
                    if op == "resend-verification" {
                        let sent = blocking(move || p.accounts.resend_verification(&me.id)).await?;
                        Ok(Value::Bool(sent))
                    } else if op == "rename" {
                        let m = blocking(move || p.accounts.rename(&me.id, &s(0))).await?;
                        Ok(member_value(&m))
                    } else {
                        blocking(move || p.accounts.change_password(&me.id, &s(0), &s(1))).await?;
                        Ok(Value::Nil)
                    }
                }
                "members" | "set-role" => {
                    let found = blocking(session).await?;
                    if !found.as_ref().is_some_and(|(_, m)| m.is_admin()) {
                        return Err(EvalError::new(
                            ErrorKind::Value,
                            "Only an administrator can do that.",
                        ));
                    }
                    if op == "members" {
                        let all = blocking(move || p.accounts.members()).await?;
                        Ok(Value::list(all.iter().map(member_value).collect()))
                    } else {
                        let m =
                            blocking(move || p.accounts.set_role(&s(0), &s(1), !s(2).is_empty()))
                                .await?;
                        Ok(member_value(&m))
                    }
                }
                "authorize" | "consent" => {
                    let approve = pairs.iter().any(|(k, v)| k == "decision" && v == "allow");
                    let outcome = blocking(move || {
                        let sess = p.accounts.session(&cookie)?;
                        // prompt=login is satisfied by a password entered
                        // just now: the sign-in form redirects straight back.
                        let fresh = sess
                            .as_ref()
                            .is_some_and(|s| store::now_ms() - s.auth_time < 10_000);
                        if op == "consent" {
                            let Some(sess) = sess else {
                                return Ok(Authorize::Login);
                            };
                            // The request parameters come back as form
                            // fields, less the form's own.
                            let params: Vec<(String, String)> = pairs
                                .into_iter()
                                .filter(|(k, _)| k != "decision" && k != "_csrf")
                                .collect();
                            return p.consent(&params, &sess, approve);
                        }
                        p.authorize(&pairs, sess.as_ref(), fresh)
                    })
                    .await?;
                    Ok(match outcome {
                        Authorize::Refuse(m) => kw_value(&json!({"refuse": m})),
                        Authorize::Redirect(u) => kw_value(&json!({"redirect": u})),
                        Authorize::Login => kw_value(&json!({"login": true})),
                        Authorize::Consent(req) => kw_value(&json!({"consent": {
                            "client": req.client.name,
                            "client_id": req.client.id,
                            "scopes": req.scope,
                        }})),
                    })
                }
                "token" | "revoke" | "introspect" => {
                    let result = tokio::task::spawn_blocking(move || {
                        let a = authorization.as_deref();
                        match op.as_str() {
                            "token" => p.token(&pairs, a),
                            "revoke" => p.revoke(&pairs, a).map(|()| json!({})),
                            _ => p.introspect(&pairs, a),
                        }
                    })
                    .await
                    .map_err(|e| EvalError::new(ErrorKind::Perform, e.to_string()))?;
                    Ok(match result {
                        Ok(body) => oauth_response(200, &body, &[]),
                        Err(e) => oauth_error_response(&e),
                    })
                }
                "userinfo" => {
                    let result =
                        tokio::task::spawn_blocking(move || p.userinfo(authorization.as_deref()))
                            .await
                            .map_err(|e| EvalError::new(ErrorKind::Perform, e.to_string()))?;
                    Ok(match result {
                        Ok(body) => oauth_response(200, &body, &[]),
                        Err(e) => oauth_error_response(&e),
                    })
                }
                "metadata" => Ok(oauth_response(200, &p.metadata(), &[])),
                "jwks" => Ok(oauth_response(200, &p.key.jwks(), &[])),
                "end-session" => {
                    let (redirect, notices) = blocking(move || {
                        let redirect = p.post_logout_redirect(&pairs)?;
                        let notices = match p.accounts.sign_out(&cookie)? {
                            Some(sess) => p.logout_everywhere(&sess)?,
                            None => Vec::new(),
                        };
                        Ok((redirect, notices))
                    })
                    .await?;
                    deliver_logouts(http, notices).await;
                    Ok(kw_value(&json!({"redirect": redirect})))
                }
                "issuer" => Ok(Value::str(&p.issuer)),
                "login-path" => Ok(Value::str(&fed::oauth::with_query(
                    "/login",
                    &[("next", &s(0))],
                ))),
                "hint-valid?" => Ok(Value::Bool(
                    pairs
                        .iter()
                        .find(|(k, _)| k == "id_token_hint")
                        .is_some_and(|(_, t)| p.id_token_client(t).is_some()),
                )),
                other => Err(EvalError::new(
                    ErrorKind::Perform,
                    format!("perform: the identity provider has no operation :idp/{other}"),
                )),
            }
        })
    }
}

enum Decoded {
    None,
    Strings(Vec<String>),
    Pairs(Vec<(String, String)>),
}
