//! A fresh provider over a fresh store of either kind, and the small
//! helpers every suite uses.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Debug;

use fed::accounts::{Accounts, Member, Session};
use fed::jwt::PublicKeys;
use fed::oauth::{Authorize, Client, Provider};
use fed::{FedError, OAuthError};
use serde_json::Value as Json;
use store::Store;
use store::kv::{self, Record};

pub const ISSUER: &str = "https://id.example.org";
pub const PASSWORD: &str = "correct horse battery";

/// The PostgreSQL URL: `ROSE_ASH_TEST_DATABASE_URL` or the local server.
/// The PostgreSQL tests fail (never skip) when it cannot be reached.
pub fn pg_url() -> String {
    std::env::var("ROSE_ASH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".to_owned())
}

/// A provider over a fresh store, and what must be cleaned up after it.
pub struct Env {
    /// Whether this is the PostgreSQL run.
    pub pg: bool,
    pub p: Provider,
    pub store: Store,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    pub fn new(pg: bool) -> Env {
        let (store, schema, dir) = if pg {
            let rnd = fed::crypto::random_bytes(8).expect("randomness");
            let schema = format!(
                "fed_{}",
                rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            let store = Store::open_postgres_in(&pg_url(), Some(&schema)).unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} is required for this suite and could not be used: {e}",
                    pg_url()
                )
            });
            (store, Some(schema), None)
        } else {
            let dir = tempfile::tempdir().expect("a temp dir");
            let store = Store::open_sqlite(&dir.path().join("s.sqlite")).expect("open sqlite");
            (store, None, Some(dir))
        };
        let p = Provider::open(store.clone(), ISSUER).expect("open the provider");
        Env {
            pg,
            p,
            store,
            schema,
            _dir: dir,
        }
    }

    pub fn accounts(&self) -> &Accounts {
        &self.p.accounts
    }

    pub fn keys(&self) -> PublicKeys {
        PublicKeys::from_jwks(&self.p.key.jwks())
    }

    /// Signs up a member with [`PASSWORD`].
    pub fn member(&self, email: &str) -> Member {
        self.accounts()
            .sign_up(email, "Ann Example", PASSWORD)
            .expect("sign up")
    }

    /// A member and a provider session of theirs.
    pub fn signed_in(&self, email: &str) -> (Member, String, Session) {
        let m = self.member(email);
        let (token, s) = self
            .accounts()
            .sign_in(email, PASSWORD, "192.0.2.1")
            .expect("sign in");
        (m, token, s)
    }

    /// Registers `c`; returns its secret when `confidential`.
    pub fn register(&self, c: Client, confidential: bool) -> Option<String> {
        self.p
            .register_client(c, confidential, None)
            .expect("register a client")
    }

    /// The live record `ns`/`key`, which must exist.
    pub fn record(&self, ns: &str, key: &str) -> Record {
        self.store
            .read(|tx| kv::get(tx, ns, key, store::now_ms()))
            .expect("read a record")
            .unwrap_or_else(|| panic!("no live record {ns}/{key}"))
    }

    /// Rewrites the live record `ns`/`key` as expired a moment ago.
    pub fn expire(&self, ns: &str, key: &str) {
        let mut r = self.record(ns, key);
        r.expires = Some(store::now_ms() - 1);
        self.store.write(|tx| kv::put(tx, &r)).expect("re-put");
    }

    /// Every live record of a namespace.
    pub fn list(&self, ns: &str) -> Vec<Record> {
        self.store
            .read(|tx| kv::list(tx, ns, "", 1000, store::now_ms()))
            .expect("list records")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.schema.take() {
            let sql = format!("DROP SCHEMA IF EXISTS {s} CASCADE");
            let _ = self.store.write(|tx| tx.exec(&sql, &[]));
        }
    }
}

/// Runs `$body` (using `$env: &Env`) once per backend, as
/// `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run(pg: bool) {
                let owned = $crate::common::Env::new(pg);
                let $env: &$crate::common::Env = &owned;
                $body
            }
            #[test]
            fn sqlite() {
                run(false)
            }
            #[test]
            fn postgres() {
                run(true)
            }
        }
    };
    ($name:ident, ignore = $why:literal, |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run(pg: bool) {
                let owned = $crate::common::Env::new(pg);
                let $env: &$crate::common::Env = &owned;
                $body
            }
            #[test]
            #[ignore = $why]
            fn sqlite() {
                run(false)
            }
            #[test]
            #[ignore = $why]
            fn postgres() {
                run(true)
            }
        }
    };
}

/// A form or query as the fed API takes it.
pub fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The query parameters of a URL (last one wins).
pub fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The query parameters of a URL as an ordered list.
pub fn query_list(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// An HTTP Basic `Authorization` value.
pub fn basic(id: &str, secret: &str) -> String {
    use base64ct::Encoding;
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{id}:{secret}").as_bytes())
    )
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The redirect an authorization outcome must be.
pub fn redirect(a: Authorize) -> String {
    match a {
        Authorize::Redirect(u) => u,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// The message of a `FedError::Invalid`, which `r` must be.
#[track_caller]
pub fn invalid<T: Debug>(r: Result<T, FedError>) -> String {
    match r {
        Err(FedError::Invalid(m)) => m,
        other => panic!("expected FedError::Invalid, got {other:?}"),
    }
}

/// The OAuth error `r` must be, with code `code`.
#[track_caller]
pub fn oauth_err<T: Debug>(r: Result<T, OAuthError>, code: &str) -> OAuthError {
    match r {
        Err(e) if e.code == code => e,
        other => panic!("expected the OAuth error {code}, got {other:?}"),
    }
}

/// A client `id` with redirect URI `https://<id>.example.org/callback`
/// and post-logout URI `https://<id>.example.org/bye`.
pub fn client(id: &str, first_party: bool, backchannel: bool) -> Client {
    Client {
        id: id.to_owned(),
        name: format!("App {id}"),
        secret_hash: None,
        redirect_uris: vec![callback(id)],
        post_logout_redirect_uris: vec![format!("https://{id}.example.org/bye")],
        first_party,
        backchannel_logout_uri: backchannel
            .then(|| format!("https://{id}.example.org/backchannel-logout")),
    }
}

pub fn callback(id: &str) -> String {
    format!("https://{id}.example.org/callback")
}

pub fn claims_str<'a>(j: &'a Json, k: &str) -> &'a str {
    j[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {j}"))
}

/// An authorization request made the way an app makes it
/// (`rp::LoginRequest`: state, nonce, PKCE S256).
pub struct Login {
    pub client: String,
    pub req: fed::rp::LoginRequest,
    pub params: Vec<(String, String)>,
}

impl Login {
    pub fn new(client_id: &str, scope: &str) -> Login {
        let req = fed::rp::LoginRequest::new(
            &format!("{ISSUER}/oauth/authorize"),
            client_id,
            &callback(client_id),
            scope,
        )
        .expect("a login request");
        let params = query_list(&req.url);
        Login {
            client: client_id.to_owned(),
            req,
            params,
        }
    }

    /// The request's parameters with `name` replaced (or removed when
    /// `value` is `None`).
    pub fn with(&self, name: &str, value: Option<&str>) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, _)| k != name)
            .cloned()
            .collect();
        if let Some(v) = value {
            p.push((name.to_owned(), v.to_owned()));
        }
        p
    }
}

impl Env {
    /// The code an authorization request gets straight away (first-party
    /// client or consent already given); checks `state` and `iss`.
    #[track_caller]
    pub fn code(&self, l: &Login, s: &Session) -> String {
        let url = redirect(
            self.p
                .authorize(&l.params, Some(s), false)
                .expect("authorize"),
        );
        assert!(url.starts_with(&callback(&l.client)), "{url}");
        let q = query(&url);
        assert_eq!(q.get("state"), Some(&l.req.state), "{url}");
        assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER), "{url}");
        assert!(!q.contains_key("error"), "{url}");
        q.get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in {url}"))
    }

    /// `POST /oauth/token` with grant_type=authorization_code, the client
    /// authenticating with `client_secret_post` when it has a secret.
    pub fn exchange(
        &self,
        client_id: &str,
        secret: Option<&str>,
        code: &str,
        verifier: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> Result<Json, OAuthError> {
        let mut f = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
        ]);
        let mut add = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                f.push((k.to_owned(), v.to_owned()));
            }
        };
        add("client_secret", secret);
        add("code_verifier", verifier);
        add("redirect_uri", redirect_uri);
        self.p.token(&f, None)
    }

    /// The whole flow for a first-party (or consented) client: code, then
    /// tokens.
    #[track_caller]
    pub fn tokens(&self, l: &Login, s: &Session, secret: Option<&str>) -> Json {
        let code = self.code(l, s);
        self.exchange(
            &l.client,
            secret,
            &code,
            Some(&l.req.verifier),
            Some(&callback(&l.client)),
        )
        .expect("the code exchange")
    }

    pub fn refresh(
        &self,
        client_id: &str,
        secret: Option<&str>,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<Json, OAuthError> {
        let mut f = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ]);
        if let Some(s) = secret {
            f.push(("client_secret".into(), s.into()));
        }
        if let Some(s) = scope {
            f.push(("scope".into(), s.into()));
        }
        self.p.token(&f, None)
    }

    pub fn userinfo(&self, access: &str) -> Result<Json, OAuthError> {
        self.p.userinfo(Some(&bearer(access)))
    }

    /// Introspection by a confidential client (HTTP Basic).
    pub fn introspect(&self, client_id: &str, secret: &str, token: &str) -> Json {
        self.p
            .introspect(&form(&[("token", token)]), Some(&basic(client_id, secret)))
            .expect("introspection")
    }
}

/// A string field of a token response.
#[track_caller]
pub fn field(j: &Json, k: &str) -> String {
    claims_str(j, k).to_owned()
}

impl Env {
    /// The token in the link `<issuer><path>?token=...` of the one queued
    /// mail that has such a link.
    #[track_caller]
    pub fn mail_token(&self, path: &str) -> String {
        let start = format!("{ISSUER}{path}?token=");
        let links: Vec<String> = self
            .accounts()
            .outbox(1000)
            .expect("the outbox")
            .iter()
            .flat_map(|m| {
                m.text
                    .split_whitespace()
                    .filter(|w| w.starts_with(&start))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(links.len(), 1, "one {start} link expected: {links:?}");
        query(&links[0])["token"].clone()
    }
}
