//! The OAuth 2.0 authorization server and OpenID Connect provider.
//!
//! - Authorization code grant with PKCE, S256 only (RFC 7636); redirect
//!   URIs match exactly; the `iss` parameter on every authorization
//!   response (RFC 9207); consent, skipped for first-party clients.
//! - Tokens: opaque access tokens (1 hour), refresh tokens (30 days)
//!   rotated on every use; presenting a used refresh token or replaying a
//!   code revokes the whole grant (RFC 6819 §5.2.2.3, RFC 6749 §4.1.2).
//! - Revocation (RFC 7009), introspection (RFC 7662), server metadata
//!   (RFC 8414) and OpenID discovery, RS256 ID tokens and the JWKS,
//!   userinfo, RP-initiated logout with back-channel logout tokens.
//!
//! Tokens are stored only as hashes (`store::kv`). Every function blocks
//! on the database.

use std::sync::Arc;

use serde_json::{Value as Json, json};
use store::kv::{self, Record};
use store::{Store, Tx};

use crate::accounts::{Accounts, Member, SESSION_TTL, Session};
use crate::crypto::{b64url, b64url_decode, ct_eq, now_ms, pkce_verify, pkce_well_formed};
use crate::crypto::{random_token, sha256, token_key};
use crate::error::{FedError, OAuthError, Result};
use crate::jwt::{PublicKeys, SigningKey};

/// Namespaces of the records this module keeps.
pub mod ns {
    pub const CLIENT: &str = "oauth-client";
    pub const CODE: &str = "oauth-code";
    pub const USED_CODE: &str = "oauth-code-used";
    pub const ACCESS: &str = "oauth-access";
    pub const REFRESH: &str = "oauth-refresh";
    pub const CONSENT: &str = "oauth-consent";
    pub const SID_CLIENT: &str = "oauth-sid-client";
    pub const SIGNING_KEY: &str = "oauth-signing-key";
    pub const SID_GRANT: &str = "oauth-sid-grant";
}

const CODE_TTL: i64 = 120_000;
const USED_CODE_TTL: i64 = 600_000;
/// Access token lifetime, seconds.
pub const ACCESS_TTL_S: i64 = 3600;
/// Refresh token lifetime, seconds.
pub const REFRESH_TTL_S: i64 = 30 * 24 * 3600;
/// ID token lifetime, seconds.
const ID_TTL_S: i64 = 3600;

/// The scopes this provider knows.
pub const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The back-channel logout event (OpenID Back-Channel Logout §2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A registered client (one per app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The cooperative's own apps: no consent screen.
    pub first_party: bool,
    /// Where logout tokens are POSTed when a member signs out.
    pub backchannel_logout_uri: Option<String>,
}

impl Client {
    fn to_json(&self) -> Json {
        json!({
            "id": self.id, "name": self.name, "secret_hash": self.secret_hash,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "first_party": self.first_party,
            "backchannel_logout_uri": self.backchannel_logout_uri,
        })
    }

    fn from_json(j: &Json) -> Option<Client> {
        let strings = |k: &str| -> Vec<String> {
            j[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        Some(Client {
            id: j["id"].as_str()?.to_owned(),
            name: j["name"].as_str().unwrap_or_default().to_owned(),
            secret_hash: j["secret_hash"].as_str().map(str::to_owned),
            redirect_uris: strings("redirect_uris"),
            post_logout_redirect_uris: strings("post_logout_redirect_uris"),
            first_party: j["first_party"].as_bool().unwrap_or(false),
            backchannel_logout_uri: j["backchannel_logout_uri"].as_str().map(str::to_owned),
        })
    }
}

/// Checks a URI a client registers: absolute http(s), no fragment.
fn check_uri(u: &str) -> Result<()> {
    let ok = (u.starts_with("https://") || u.starts_with("http://"))
        && !u.contains('#')
        && u.len() <= 2000
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(FedError::Invalid(format!(
            "{u:?} is not an absolute http(s) URI without a fragment"
        )))
    }
}

/// A parsed authorization request (`GET /oauth/authorize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Vec<String>,
    /// Seconds since the member last entered their password beyond which
    /// they must enter it again (OpenID Connect Core §3.1.2.1).
    pub max_age: Option<i64>,
}

/// What to do with an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorize {
    /// Show this error to the person: the client or redirect URI cannot
    /// be trusted, so nothing is sent back to it.
    Refuse(String),
    /// Send the browser here (a code, or an error for the client).
    Redirect(String),
    /// The member must sign in first.
    Login,
    /// The member must approve the client's access.
    Consent(Box<AuthRequest>),
}

/// The single-use authorization code's record.
struct CodeGrant {
    client: String,
    redirect_uri: String,
    member: String,
    scope: String,
    nonce: Option<String>,
    challenge: String,
    sid: String,
    auth_time: i64,
}

/// A logout token to POST to a client's back-channel logout URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutNotice {
    pub uri: String,
    pub logout_token: String,
}

/// The provider: accounts, the signing key and the issuer URL.
#[derive(Clone)]
pub struct Provider {
    pub accounts: Accounts,
    pub issuer: String,
    pub key: Arc<SigningKey>,
}

fn opt_str(j: &Json, k: &str) -> Option<String> {
    j[k].as_str().map(str::to_owned)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A parameter sent more than once is an error (RFC 6749 §3.1).
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut it = params.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.as_str());
    if it.next().is_some() {
        return Err(OAuthError::invalid_request(format!(
            "the parameter {name} is given more than once"
        )));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// `base?k=v&...`, appending to an existing query.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", q.finish())
}

impl Provider {
    /// The provider for `issuer` (its public base URL), with the signing
    /// key kept in the store, made on first start.
    pub fn open(store: Store, issuer: &str) -> Result<Provider> {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let existing = store.read(|tx| kv::get(tx, ns::SIGNING_KEY, "current", now_ms()))?;
        let key = match existing {
            Some(r) => SigningKey::from_pem(&r.value)?,
            None => {
                let key = SigningKey::generate()?;
                let pem = key.to_pem()?;
                let inserted = store.write(|tx| {
                    kv::insert(
                        tx,
                        &Record {
                            ns: ns::SIGNING_KEY.into(),
                            key: "current".into(),
                            value: pem,
                            tag: None,
                            expires: None,
                            at: now_ms(),
                        },
                    )
                })?;
                if inserted {
                    key
                } else {
                    // Another host sharing the database made one first.
                    let r = store
                        .read(|tx| kv::get(tx, ns::SIGNING_KEY, "current", now_ms()))?
                        .ok_or_else(|| FedError::Internal("the signing key vanished".into()))?;
                    SigningKey::from_pem(&r.value)?
                }
            }
        };
        Ok(Provider {
            accounts: Accounts::new(store, issuer.clone()),
            issuer,
            key: Arc::new(key),
        })
    }

    fn store(&self) -> &Store {
        &self.accounts.store
    }

    /// Server metadata (RFC 8414) and OpenID Provider metadata.
    pub fn metadata(&self) -> Json {
        let i = &self.issuer;
        json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/oauth/authorize"),
            "token_endpoint": format!("{i}/oauth/token"),
            "revocation_endpoint": format!("{i}/oauth/revoke"),
            "introspection_endpoint": format!("{i}/oauth/introspect"),
            "userinfo_endpoint": format!("{i}/oauth/userinfo"),
            "jwks_uri": format!("{i}/oauth/jwks"),
            "end_session_endpoint": format!("{i}/oauth/logout"),
            "scopes_supported": SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
                                 "sid", "at_hash", "name", "email", "email_verified", "roles"],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
        })
    }

    // ------------------------------------------------------------ clients

    /// Registers (or replaces) a client. Returns the secret to give the
    /// app when `confidential`, made fresh unless `secret` is given.
    pub fn register_client(
        &self,
        mut client: Client,
        confidential: bool,
        secret: Option<&str>,
    ) -> Result<Option<String>> {
        if client.id.is_empty()
            || client.id.len() > 100
            || !client
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(FedError::Invalid(format!(
                "client id {:?}: use letters, digits, '-', '_' and '.'",
                client.id
            )));
        }
        if client.redirect_uris.is_empty() {
            return Err(FedError::Invalid(format!(
                "client {}: at least one redirect URI is needed",
                client.id
            )));
        }
        for u in client
            .redirect_uris
            .iter()
            .chain(&client.post_logout_redirect_uris)
            .chain(client.backchannel_logout_uri.as_ref())
        {
            check_uri(u)?;
        }
        let secret = if confidential {
            let s = match secret {
                Some(s) if s.len() >= 32 => s.to_owned(),
                Some(_) => {
                    return Err(FedError::Invalid(
                        "a client secret needs at least 32 characters".into(),
                    ));
                }
                None => random_token()?,
            };
            client.secret_hash = Some(token_key(&s));
            Some(s)
        } else {
            client.secret_hash = None;
            None
        };
        let value = client.to_json().to_string();
        self.store().write(|tx| {
            kv::put(
                tx,
                &Record {
                    ns: ns::CLIENT.into(),
                    key: client.id.clone(),
                    value,
                    tag: None,
                    expires: None,
                    at: now_ms(),
                },
            )
        })?;
        Ok(secret)
    }

    pub fn client(&self, id: &str) -> Result<Option<Client>> {
        if id.is_empty() || id.len() > 100 || id.chars().any(char::is_control) {
            return Ok(None);
        }
        let r = self
            .store()
            .read(|tx| kv::get(tx, ns::CLIENT, id, now_ms()))?;
        Ok(r.and_then(|r| serde_json::from_str(&r.value).ok())
            .and_then(|j: Json| Client::from_json(&j)))
    }

    /// Authenticates the client of a token, revocation or introspection
    /// request: HTTP Basic (`client_secret_basic`), form fields
    /// (`client_secret_post`), or a public client naming itself.
    pub fn authenticate_client(
        &self,
        form: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<Client, OAuthError> {
        let bad = || OAuthError::invalid_client("client authentication failed");
        let (id, secret) = match authorization {
            Some(h) if h.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")) => {
                let creds = h.get(6..).unwrap_or_default().trim();
                let decoded = <base64ct::Base64 as base64ct::Encoding>::decode_vec(creds)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(bad)?;
                let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
                // RFC 6749 §2.3.1: both parts are form-urlencoded.
                let dec = |s: &str| -> String {
                    form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                if single(form, "client_secret")?.is_some() {
                    return Err(OAuthError::invalid_request(
                        "use one client authentication method, not two",
                    ));
                }
                (dec(id), Some(dec(secret)))
            }
            _ => (
                single(form, "client_id")?.ok_or_else(bad)?.to_owned(),
                single(form, "client_secret")?.map(str::to_owned),
            ),
        };
        let client = self
            .client(&id)
            .map_err(|e| OAuthError::new("server_error", e.to_string()))?
            .ok_or_else(bad)?;
        match (&client.secret_hash, secret) {
            (Some(h), Some(s)) if ct_eq(token_key(&s).as_bytes(), h.as_bytes()) => Ok(client),
            (None, None) => Ok(client),
            _ => Err(bad()),
        }
    }

    // ------------------------------------------------------ authorization

    /// Validates an authorization request. Errors the person must see
    /// (unknown client, unregistered redirect URI) are `Err(message)`;
    /// the rest go back to the client as a redirect.
    pub fn parse_auth_request(
        &self,
        params: &[(String, String)],
    ) -> Result<std::result::Result<AuthRequest, Authorize>> {
        let refuse = |m: &str| Ok(Err(Authorize::Refuse(m.to_owned())));
        let client_id = match single(params, "client_id") {
            Ok(Some(c)) => c,
            Ok(None) => return refuse("The request does not say which application is asking."),
            Err(e) => return refuse(&e.description),
        };
        let Some(client) = self.client(client_id)? else {
            return refuse("The application asking to sign you in is not registered here.");
        };
        let redirect_uri = match single(params, "redirect_uri") {
            Ok(Some(r)) => r.to_owned(),
            Ok(None) => return refuse("The request has no redirect_uri."),
            Err(e) => return refuse(&e.description),
        };
        // Exact string match (no prefix or pattern matching).
        if !client.redirect_uris.contains(&redirect_uri) {
            return refuse(
                "The address the application asked to return to is not one it registered.",
            );
        }
        let state = param(params, "state").map(str::to_owned);
        let back =
            |code: &str, desc: &str| -> Result<std::result::Result<AuthRequest, Authorize>> {
                let mut pairs = vec![("error", code), ("error_description", desc)];
                if let Some(s) = &state {
                    pairs.push(("state", s));
                }
                pairs.push(("iss", &self.issuer));
                Ok(Err(Authorize::Redirect(with_query(&redirect_uri, &pairs))))
            };
        for p in [
            "response_type",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
            "prompt",
            "max_age",
        ] {
            if let Err(e) = single(params, p) {
                return back(e.code, &e.description);
            }
        }
        match param(params, "response_type") {
            Some("code") => {}
            None | Some("") => return back("invalid_request", "response_type is missing"),
            Some(_) => {
                return back(
                    "unsupported_response_type",
                    "only the authorization code flow (response_type=code) is supported",
                );
            }
        }
        if param(params, "request").is_some() || param(params, "request_uri").is_some() {
            return back("request_not_supported", "request objects are not supported");
        }
        let challenge = param(params, "code_challenge").unwrap_or_default();
        match param(params, "code_challenge_method") {
            Some("S256") => {}
            Some(m) => {
                return back(
                    "invalid_request",
                    &format!("code_challenge_method {m} is not supported: use S256"),
                );
            }
            None => {
                return back(
                    "invalid_request",
                    "PKCE is required: send code_challenge with code_challenge_method=S256",
                );
            }
        }
        if !pkce_well_formed(challenge) {
            return back("invalid_request", "code_challenge is missing or malformed");
        }
        let scope: Vec<String> = param(params, "scope")
            .unwrap_or("openid")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = scope.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return back("invalid_scope", &format!("unknown scope {bad}"));
        }
        let nonce = param(params, "nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > 512) {
            return back("invalid_request", "nonce is too long");
        }
        if state.as_ref().is_some_and(|s| s.len() > 2048) {
            return back("invalid_request", "state is too long");
        }
        let max_age = match param(params, "max_age") {
            None | Some("") => None,
            Some(m) => match m.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return back("invalid_request", "max_age must be a number of seconds"),
            },
        };
        Ok(Ok(AuthRequest {
            max_age,
            client,
            redirect_uri,
            scope,
            state,
            nonce,
            code_challenge: challenge.to_owned(),
            prompt: param(params, "prompt")
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }))
    }

    fn error_redirect(&self, req: &AuthRequest, code: &str, desc: &str) -> Authorize {
        let mut pairs = vec![("error", code), ("error_description", desc)];
        if let Some(s) = &req.state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", &self.issuer));
        Authorize::Redirect(with_query(&req.redirect_uri, &pairs))
    }

    /// `GET /oauth/authorize`: what to do, given the browser's provider
    /// session (if signed in). `fresh_login` is true right after the
    /// member entered their password for this request.
    pub fn authorize(
        &self,
        params: &[(String, String)],
        session: Option<&Session>,
        fresh_login: bool,
    ) -> Result<Authorize> {
        let req = match self.parse_auth_request(params)? {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        let has = |p: &str| req.prompt.iter().any(|x| x == p);
        if has("none") && req.prompt.len() > 1 {
            return Ok(self.error_redirect(&req, "invalid_request", "prompt=none stands alone"));
        }
        let Some(session) = session else {
            if has("none") {
                return Ok(self.error_redirect(
                    &req,
                    "login_required",
                    "the member is not signed in",
                ));
            }
            return Ok(Authorize::Login);
        };
        if has("login") && !fresh_login {
            return Ok(Authorize::Login);
        }
        if let Some(max) = req.max_age {
            let age_s = (now_ms() - session.auth_time) / 1000;
            if age_s > max {
                if has("none") {
                    return Ok(self.error_redirect(
                        &req,
                        "login_required",
                        "the member signed in too long ago for max_age",
                    ));
                }
                return Ok(Authorize::Login);
            }
        }
        if !req.client.first_party {
            let key = format!("{}|{}", session.member, req.client.id);
            let granted = self
                .store()
                .read(|tx| kv::get(tx, ns::CONSENT, &key, now_ms()))?
                .map(|r| r.value)
                .unwrap_or_default();
            let covered = req.scope.iter().all(|s| granted.split(' ').any(|g| g == s));
            if has("consent") || !covered {
                if has("none") {
                    return Ok(self.error_redirect(
                        &req,
                        "consent_required",
                        "the member has not approved this application",
                    ));
                }
                return Ok(Authorize::Consent(Box::new(req)));
            }
        }
        self.issue_code(&req, session)
    }

    /// `POST /oauth/authorize`: the member's answer on the consent screen
    /// (the request parameters come back with it and are checked again).
    pub fn consent(
        &self,
        params: &[(String, String)],
        session: &Session,
        approve: bool,
    ) -> Result<Authorize> {
        let req = match self.parse_auth_request(params)? {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        if !approve {
            return Ok(self.error_redirect(&req, "access_denied", "the member declined"));
        }
        let key = format!("{}|{}", session.member, req.client.id);
        let value = req.scope.join(" ");
        self.store().write(|tx| {
            kv::put(
                tx,
                &Record {
                    ns: ns::CONSENT.into(),
                    key,
                    value,
                    tag: Some(session.member.clone()),
                    expires: None,
                    at: now_ms(),
                },
            )
        })?;
        self.issue_code(&req, session)
    }

    fn issue_code(&self, req: &AuthRequest, session: &Session) -> Result<Authorize> {
        let code = random_token()?;
        let value = json!({
            "client": req.client.id, "redirect_uri": req.redirect_uri,
            "member": session.member, "scope": req.scope.join(" "), "nonce": req.nonce,
            "challenge": req.code_challenge, "sid": session.sid,
            "auth_time": session.auth_time,
        })
        .to_string();
        let now = now_ms();
        let sid_key = format!("{}|{}", session.sid, req.client.id);
        self.store().write(|tx| {
            kv::put(
                tx,
                &Record {
                    ns: ns::CODE.into(),
                    key: token_key(&code),
                    value,
                    tag: None,
                    expires: Some(now + CODE_TTL),
                    at: now,
                },
            )?;
            // Remember which apps this provider session signed in to, for
            // single logout.
            kv::put(
                tx,
                &Record {
                    ns: ns::SID_CLIENT.into(),
                    key: sid_key,
                    value: req.client.id.clone(),
                    tag: Some(session.sid.clone()),
                    expires: Some(now + SESSION_TTL),
                    at: now,
                },
            )
        })?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = &req.state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", &self.issuer));
        Ok(Authorize::Redirect(with_query(&req.redirect_uri, &pairs)))
    }

    // ------------------------------------------------------------- tokens

    /// `POST /oauth/token`.
    pub fn token(
        &self,
        form: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<Json, OAuthError> {
        let client = self.authenticate_client(form, authorization)?;
        match single(form, "grant_type")? {
            Some("authorization_code") => self.exchange_code(&client, form),
            Some("refresh_token") => self.refresh(&client, form),
            Some(other) => Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type {other} is not supported"),
            )),
            None => Err(OAuthError::invalid_request("grant_type is missing")),
        }
    }

    fn exchange_code(
        &self,
        client: &Client,
        form: &[(String, String)],
    ) -> Result<Json, OAuthError> {
        let code =
            single(form, "code")?.ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let redirect_uri = single(form, "redirect_uri")?;
        let verifier = single(form, "code_verifier")?;
        let key = token_key(code);
        let now = now_ms();
        // The code is spent whatever happens next, and remembered in the
        // same transaction, so a replay (even one racing this exchange)
        // finds it and revokes the grant.
        let grant_id = random_token().map_err(server_error)?;
        let taken = self
            .store()
            .write(|tx| {
                let Some(r) = kv::take_record(tx, ns::CODE, &key, now)? else {
                    // A replayed code: revoke what it granted (RFC 6749 §4.1.2).
                    if let Some(used) = kv::get(tx, ns::USED_CODE, &key, now)? {
                        revoke_grant(tx, &used.value)?;
                    }
                    return Ok(None);
                };
                kv::put(
                    tx,
                    &Record {
                        ns: ns::USED_CODE.into(),
                        key: key.clone(),
                        value: grant_id.clone(),
                        tag: None,
                        expires: Some(now + USED_CODE_TTL),
                        at: now,
                    },
                )?;
                Ok(Some(r))
            })
            .map_err(server_error)?;
        let Some(rec) = taken else {
            return Err(OAuthError::invalid_grant(
                "the authorization code is invalid, expired or already used",
            ));
        };
        let j: Json = serde_json::from_str(&rec.value).map_err(server_error)?;
        let grant = CodeGrant {
            client: opt_str(&j, "client").unwrap_or_default(),
            redirect_uri: opt_str(&j, "redirect_uri").unwrap_or_default(),
            member: opt_str(&j, "member").unwrap_or_default(),
            scope: opt_str(&j, "scope").unwrap_or_default(),
            nonce: opt_str(&j, "nonce"),
            challenge: opt_str(&j, "challenge").unwrap_or_default(),
            sid: opt_str(&j, "sid").unwrap_or_default(),
            auth_time: j["auth_time"].as_i64().unwrap_or(0),
        };
        if grant.client != client.id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if redirect_uri != Some(grant.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        let Some(verifier) = verifier else {
            return Err(OAuthError::invalid_grant("code_verifier is missing (PKCE)"));
        };
        if !pkce_verify(verifier, &grant.challenge) {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let member = self.member(&grant.member)?;
        self.issue_tokens(
            client,
            &member,
            &grant.scope,
            &grant_id,
            &grant.sid,
            grant.auth_time,
            grant.nonce.as_deref(),
        )
    }

    fn member(&self, id: &str) -> Result<Member, OAuthError> {
        self.accounts
            .member(id)
            .map_err(server_error)?
            .ok_or_else(|| OAuthError::invalid_grant("the member no longer exists"))
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_tokens(
        &self,
        client: &Client,
        member: &Member,
        scope: &str,
        grant: &str,
        sid: &str,
        auth_time: i64,
        nonce: Option<&str>,
    ) -> Result<Json, OAuthError> {
        let access = random_token().map_err(server_error)?;
        let refresh = random_token().map_err(server_error)?;
        let now = now_ms();
        let common = json!({
            "client": client.id, "member": member.id, "scope": scope, "grant": grant,
            "sid": sid, "auth_time": auth_time, "iat": now / 1000,
        });
        let mut access_rec = common.clone();
        access_rec["exp"] = json!(now / 1000 + ACCESS_TTL_S);
        let mut refresh_rec = common;
        refresh_rec["exp"] = json!(now / 1000 + REFRESH_TTL_S);
        refresh_rec["used"] = json!(false);
        self.store()
            .write(|tx| {
                kv::put(
                    tx,
                    &Record {
                        ns: ns::ACCESS.into(),
                        key: token_key(&access),
                        value: access_rec.to_string(),
                        tag: Some(grant.to_owned()),
                        expires: Some(now + ACCESS_TTL_S * 1000),
                        at: now,
                    },
                )?;
                kv::put(
                    tx,
                    &Record {
                        ns: ns::REFRESH.into(),
                        key: token_key(&refresh),
                        value: refresh_rec.to_string(),
                        tag: Some(grant.to_owned()),
                        expires: Some(now + REFRESH_TTL_S * 1000),
                        at: now,
                    },
                )?;
                // Which grants a provider session made: signing out ends them.
                if !sid.is_empty() {
                    kv::put(
                        tx,
                        &Record {
                            ns: ns::SID_GRANT.into(),
                            key: format!("{sid}|{grant}"),
                            value: grant.to_owned(),
                            tag: Some(sid.to_owned()),
                            expires: Some(now + REFRESH_TTL_S * 1000),
                            at: now,
                        },
                    )?;
                }
                Ok(())
            })
            .map_err(server_error)?;
        let mut out = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL_S,
            "refresh_token": refresh,
            "scope": scope,
        });
        if scope.split(' ').any(|s| s == "openid") {
            let mut claims = self.claims(member, scope);
            let half = &sha256(access.as_bytes())[..16];
            claims["iss"] = json!(self.issuer);
            claims["aud"] = json!(client.id);
            claims["azp"] = json!(client.id);
            claims["iat"] = json!(now / 1000);
            claims["exp"] = json!(now / 1000 + ID_TTL_S);
            claims["auth_time"] = json!(auth_time / 1000);
            claims["sid"] = json!(sid);
            claims["at_hash"] = json!(b64url(half));
            if let Some(n) = nonce {
                claims["nonce"] = json!(n);
            }
            out["id_token"] = json!(self.key.sign(&claims).map_err(server_error)?);
        }
        Ok(out)
    }

    /// The member's claims a scope allows.
    fn claims(&self, m: &Member, scope: &str) -> Json {
        let has = |s: &str| scope.split(' ').any(|x| x == s);
        let mut c = json!({"sub": m.id});
        if has("profile") {
            c["name"] = json!(m.name);
            c["roles"] = json!(m.roles);
        }
        if has("email") {
            c["email"] = json!(m.email);
            c["email_verified"] = json!(m.verified);
        }
        c
    }

    fn refresh(&self, client: &Client, form: &[(String, String)]) -> Result<Json, OAuthError> {
        let token = single(form, "refresh_token")?
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let requested = single(form, "scope")?;
        let key = token_key(token);
        let now = now_ms();
        // Read and mark used in one transaction, so two concurrent uses
        // cannot both succeed.
        let found = self
            .store()
            .write(|tx| {
                let Some(r) = kv::get(tx, ns::REFRESH, &key, now)? else {
                    return Ok(Err(OAuthError::invalid_grant(
                        "the refresh token is invalid, expired or revoked",
                    )));
                };
                let mut j: Json = serde_json::from_str(&r.value)
                    .map_err(|e| store::StoreError::Invalid(e.to_string()))?;
                let grant = opt_str(&j, "grant").unwrap_or_default();
                if j["client"] != json!(client.id) {
                    return Ok(Err(OAuthError::invalid_grant(
                        "the refresh token was issued to another client",
                    )));
                }
                if j["used"] == json!(true) {
                    // Reuse after rotation: someone holds a stolen copy.
                    // Revoke the whole grant (RFC 6819 §5.2.2.3).
                    revoke_grant(tx, &grant)?;
                    return Ok(Err(OAuthError::invalid_grant(
                        "the refresh token was already used; the grant has been revoked",
                    )));
                }
                // A refused request must not spend the token.
                let granted = opt_str(&j, "scope").unwrap_or_default();
                if let Some(r) = requested {
                    if !r.split(' ').all(|s| granted.split(' ').any(|g| g == s)) {
                        return Ok(Err(OAuthError::new(
                            "invalid_scope",
                            "a refresh cannot widen the granted scope",
                        )));
                    }
                }
                j["used"] = json!(true);
                kv::put(
                    tx,
                    &Record {
                        value: j.to_string(),
                        at: now,
                        ..r
                    },
                )?;
                Ok(Ok(j))
            })
            .map_err(server_error)?;
        let j = found?;
        let scope = match requested {
            None => opt_str(&j, "scope").unwrap_or_default(),
            Some(r) => r.to_owned(),
        };
        let member = self.member(&opt_str(&j, "member").unwrap_or_default())?;
        self.issue_tokens(
            client,
            &member,
            &scope,
            &opt_str(&j, "grant").unwrap_or_default(),
            &opt_str(&j, "sid").unwrap_or_default(),
            j["auth_time"].as_i64().unwrap_or(0),
            None,
        )
    }

    /// Looks a token up as a refresh or access token (`hint` first).
    fn lookup(&self, token: &str, hint: Option<&str>) -> Result<Option<(&'static str, Json)>> {
        let key = token_key(token);
        let order: [&'static str; 2] = if hint == Some("refresh_token") {
            [ns::REFRESH, ns::ACCESS]
        } else {
            [ns::ACCESS, ns::REFRESH]
        };
        let now = now_ms();
        for namespace in order {
            if let Some(r) = self.store().read(|tx| kv::get(tx, namespace, &key, now))? {
                let j: Json = serde_json::from_str(&r.value)
                    .map_err(|e| FedError::Internal(format!("token record: {e}")))?;
                if namespace == ns::REFRESH && j["used"] == json!(true) {
                    return Ok(None);
                }
                return Ok(Some((namespace, j)));
            }
        }
        Ok(None)
    }

    /// `POST /oauth/revoke` (RFC 7009): always 200 for a token that is
    /// unknown or already gone. Revoking a refresh token revokes its whole
    /// grant.
    pub fn revoke(
        &self,
        form: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate_client(form, authorization)?;
        let token = single(form, "token")?
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let hint = single(form, "token_type_hint")?;
        let Some((namespace, j)) = self.lookup(token, hint).map_err(server_error)? else {
            return Ok(());
        };
        if j["client"] != json!(client.id) {
            return Err(OAuthError::new(
                "unauthorized_client",
                "the token was issued to another client",
            ));
        }
        let grant = opt_str(&j, "grant").unwrap_or_default();
        let key = token_key(token);
        self.store()
            .write(|tx| {
                if namespace == ns::REFRESH {
                    revoke_grant(tx, &grant)
                } else {
                    kv::delete(tx, ns::ACCESS, &key).map(|_| ())
                }
            })
            .map_err(server_error)
    }

    /// `POST /oauth/introspect` (RFC 7662), for confidential clients.
    pub fn introspect(
        &self,
        form: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<Json, OAuthError> {
        let client = self.authenticate_client(form, authorization)?;
        if client.secret_hash.is_none() {
            return Err(OAuthError::invalid_client(
                "introspection needs a confidential client",
            ));
        }
        let token = single(form, "token")?
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let hint = single(form, "token_type_hint")?;
        let Some((namespace, j)) = self.lookup(token, hint).map_err(server_error)? else {
            return Ok(json!({"active": false}));
        };
        let member = self
            .accounts
            .member(j["member"].as_str().unwrap_or_default());
        let Ok(Some(member)) = member else {
            return Ok(json!({"active": false}));
        };
        Ok(json!({
            "active": true,
            "scope": j["scope"],
            "client_id": j["client"],
            "sub": member.id,
            "username": member.email,
            "token_type": if namespace == ns::ACCESS { "Bearer" } else { "refresh_token" },
            "exp": j["exp"],
            "iat": j["iat"],
            "iss": self.issuer,
            "aud": j["client"],
            "sid": j["sid"],
        }))
    }

    /// `GET/POST /oauth/userinfo` with a bearer access token.
    pub fn userinfo(&self, authorization: Option<&str>) -> Result<Json, OAuthError> {
        let token = authorization
            .filter(|h| {
                h.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
            })
            .and_then(|h| h.get(7..))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new("invalid_token", "a bearer access token is needed"))?;
        let key = token_key(token);
        let r = self
            .store()
            .read(|tx| kv::get(tx, ns::ACCESS, &key, now_ms()))
            .map_err(server_error)?
            .ok_or_else(|| {
                OAuthError::new("invalid_token", "the access token is invalid or expired")
            })?;
        let j: Json = serde_json::from_str(&r.value).map_err(server_error)?;
        let scope = opt_str(&j, "scope").unwrap_or_default();
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(OAuthError::new(
                "insufficient_scope",
                "userinfo needs the openid scope",
            ));
        }
        let member = self
            .accounts
            .member(j["member"].as_str().unwrap_or_default())
            .map_err(server_error)?
            .ok_or_else(|| OAuthError::new("invalid_token", "the member no longer exists"))?;
        Ok(self.claims(&member, &scope))
    }

    // ------------------------------------------------------------ logout

    /// Checks an `id_token_hint`: our signature (expiry is not checked:
    /// logging out with an old token is fine) and the client it was for.
    pub fn id_token_client(&self, id_token: &str) -> Option<(String, Json)> {
        let keys = PublicKeys::from_jwks(&self.key.jwks());
        let claims = keys.verify(id_token).ok()?;
        if claims["iss"] != json!(self.issuer) {
            return None;
        }
        let aud = claims["aud"].as_str()?.to_owned();
        Some((aud, claims))
    }

    /// Where to send the browser after RP-initiated logout: the client's
    /// registered `post_logout_redirect_uri` (with `state`), if the
    /// request names one exactly and proves the client with an ID token.
    pub fn post_logout_redirect(&self, params: &[(String, String)]) -> Result<Option<String>> {
        let Some(uri) = param(params, "post_logout_redirect_uri") else {
            return Ok(None);
        };
        // A hint that does not verify makes the request invalid: it is not
        // replaced by client_id (RP-Initiated Logout 1.0 §2).
        let hinted = match param(params, "id_token_hint") {
            Some(t) => match self.id_token_client(t) {
                Some(h) => Some(h),
                None => return Ok(None),
            },
            None => None,
        };
        let client_id = match (hinted, param(params, "client_id")) {
            (Some((aud, _)), Some(c)) if aud != c => return Ok(None),
            (Some((aud, _)), _) => aud,
            (None, Some(c)) => c.to_owned(),
            (None, None) => return Ok(None),
        };
        let Some(client) = self.client(&client_id)? else {
            return Ok(None);
        };
        if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return Ok(None);
        }
        Ok(Some(match param(params, "state") {
            Some(s) => with_query(uri, &[("state", s)]),
            None => uri.to_owned(),
        }))
    }

    /// Ends the provider session `session` everywhere: revokes every grant
    /// (access and refresh tokens) it made, and returns a logout token for
    /// each app it signed in to, to POST to their back-channel logout URIs.
    pub fn logout_everywhere(&self, session: &Session) -> Result<Vec<LogoutNotice>> {
        let now = now_ms();
        let rows = self.store().write(|tx| {
            let rows = kv::tagged(tx, ns::SID_CLIENT, &session.sid, now)?;
            kv::delete_tagged(tx, ns::SID_CLIENT, &session.sid)?;
            revoke_session_grants(tx, &session.sid, now)?;
            Ok(rows)
        })?;
        let mut out = Vec::new();
        for r in rows {
            let Some(client) = self.client(&r.value)? else {
                continue;
            };
            let Some(uri) = client.backchannel_logout_uri.clone() else {
                continue;
            };
            let claims = json!({
                "iss": self.issuer, "aud": client.id, "iat": now / 1000,
                "exp": now / 1000 + 120,
                "jti": random_token()?, "sub": session.member, "sid": session.sid,
                "events": { LOGOUT_EVENT: {} },
            });
            out.push(LogoutNotice {
                uri,
                logout_token: self.key.sign(&claims)?,
            });
        }
        Ok(out)
    }
}

/// Revokes every grant a provider session made (its sign-ins to apps).
pub fn revoke_session_grants(tx: &mut dyn Tx, sid: &str, now: i64) -> store::Result<()> {
    for g in kv::tagged(tx, ns::SID_GRANT, sid, now)? {
        revoke_grant(tx, &g.value)?;
    }
    kv::delete_tagged(tx, ns::SID_GRANT, sid)?;
    Ok(())
}

/// Deletes every access and refresh token of a grant.
fn revoke_grant(tx: &mut dyn Tx, grant: &str) -> store::Result<()> {
    if grant.is_empty() {
        return Ok(());
    }
    kv::delete_tagged(tx, ns::ACCESS, grant)?;
    kv::delete_tagged(tx, ns::REFRESH, grant)?;
    Ok(())
}

fn server_error(e: impl Into<FedError>) -> OAuthError {
    OAuthError::new("server_error", e.into().to_string())
}

impl From<serde_json::Error> for FedError {
    fn from(e: serde_json::Error) -> FedError {
        FedError::Internal(format!("JSON: {e}"))
    }
}

/// Decodes a JWT's claims without checking anything (for logging only).
pub fn peek_claims(token: &str) -> Option<Json> {
    let c = token.split('.').nth(1)?;
    serde_json::from_slice(&b64url_decode(c)?).ok()
}
