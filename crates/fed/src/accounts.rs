//! Member accounts on the identity provider: sign-up, sign-in with rate
//! limits and lockout, provider sessions, email verification, password
//! reset, roles, and the mail outbox.
//!
//! A member is a store object `member:<id>` (email, name, roles,
//! verified). Secrets never go into objects, whose revisions are kept
//! forever: the password hash, tokens and sessions are records
//! (`store::kv`), tokens stored only as their SHA-256.
//!
//! Every function here blocks on the database; call them off the async
//! threads.

use serde_json::{Value as Json, json};
use store::kv::{self, Record};
use store::{Expect, Store, Tx};
use sx::{Dict, Key, Value};

use crate::crypto::{now_ms, random_bytes, random_token, token_key};
use crate::error::{FedError, Result};
use crate::password;

/// Namespaces of the records this module keeps.
pub mod ns {
    pub const PASSWORD: &str = "password";
    pub const EMAIL: &str = "member-email";
    pub const SESSION: &str = "idp-session";
    pub const VERIFY: &str = "verify-email";
    pub const RESET: &str = "password-reset";
    pub const FAILURES: &str = "login-failures";
    pub const IP: &str = "login-ip";
    pub const MAIL: &str = "mail";
    pub const FIRST_ADMIN: &str = "first-admin";
    pub const SIGN_UPS: &str = "sign-ups";
    pub const RESET_REQUESTS: &str = "reset-requests";
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// How long a provider session lasts.
pub const SESSION_TTL: i64 = 14 * DAY;
const VERIFY_TTL: i64 = DAY;
const RESET_TTL: i64 = HOUR;
/// Failed sign-ins for one email within the window before it locks.
pub const MAX_FAILURES: i64 = 5;
/// The window for failures, and how long a lock lasts.
pub const LOCK_WINDOW: i64 = 15 * MINUTE;
/// Sign-in attempts from one address within the window.
pub const MAX_PER_IP: i64 = 30;
/// Accounts one address may create in an hour.
pub const MAX_SIGN_UPS_PER_IP: i64 = 10;
/// Reset mails one address may be sent in an hour (more are not sent, and
/// the form still says nothing, so it cannot be used to flood a mailbox).
pub const MAX_RESETS_PER_EMAIL: i64 = 3;

/// A member of the cooperative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `member:<id>`; also the OpenID `sub`.
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub verified: bool,
    pub created: i64,
}

impl Member {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// The body stored in the member's object.
    fn body(&self) -> Result<String> {
        let mut d = Dict::new();
        let mut put = |k: &str, v: Value| {
            if let Ok(key) = Key::new(Value::kw(k)) {
                d.insert(key, v);
            }
        };
        put("email", Value::str(&self.email));
        put("name", Value::str(&self.name));
        put(
            "roles",
            Value::list(self.roles.iter().map(|r| Value::str(r)).collect()),
        );
        put("verified", Value::Bool(self.verified));
        put("created", Value::Int(self.created));
        sx::printer::serialize(&Value::Dict(d))
            .map_err(|e| FedError::Internal(format!("member body: {e}")))
    }

    fn from_object(id: &str, body: &str) -> Result<Member> {
        let v = sx::reader::read_one(body, id)
            .map_err(|e| FedError::Internal(format!("member {id}: {e}")))?;
        let Value::Dict(d) = v else {
            return Err(FedError::Internal(format!(
                "member {id}: body is not a dict"
            )));
        };
        let text = |k: &str| match d.get(&Value::kw(k)) {
            Some(Value::Str(s)) => s.to_string(),
            _ => String::new(),
        };
        let roles = match d.get(&Value::kw("roles")) {
            Some(Value::List(l)) => l
                .iter()
                .filter_map(|r| match r {
                    Value::Str(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Member {
            id: id.to_owned(),
            email: text("email"),
            name: text("name"),
            roles,
            verified: matches!(d.get(&Value::kw("verified")), Some(Value::Bool(true))),
            created: match d.get(&Value::kw("created")) {
                Some(Value::Int(i)) => *i,
                _ => 0,
            },
        })
    }

    /// The member as JSON (what pages and claims are built from).
    pub fn to_json(&self) -> Json {
        json!({
            "id": self.id, "email": self.email, "name": self.name,
            "roles": self.roles, "verified": self.verified, "created": self.created,
        })
    }
}

/// A signed-in browser on the identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub member: String,
    /// The session id shared with apps (`sid` in ID and logout tokens).
    pub sid: String,
    /// When the member last entered their password (ms).
    pub auth_time: i64,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub key: String,
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Lower-cased, trimmed, and checked to look like an address.
pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if ok {
        Ok(e)
    } else {
        Err(FedError::Invalid(
            "Enter an email address like name@example.org.".into(),
        ))
    }
}

fn record(ns: &str, key: &str, value: String, tag: Option<&str>, ttl: Option<i64>) -> Record {
    let at = now_ms();
    Record {
        ns: ns.to_owned(),
        key: key.to_owned(),
        value,
        tag: tag.map(str::to_owned),
        expires: ttl.map(|t| at.saturating_add(t)),
        at,
    }
}

fn queue_mail(tx: &mut dyn Tx, to: &str, subject: &str, text: &str) -> Result<()> {
    let suffix = crate::crypto::b64url(&random_bytes(6)?);
    let key = format!("{:013}-{suffix}", now_ms());
    let value = json!({"to": to, "subject": subject, "text": text}).to_string();
    kv::put(tx, &record(ns::MAIL, &key, value, None, None))?;
    Ok(())
}

const VERIFY_SUBJECT: &str = "Confirm your email address";

fn verify_text(name: &str, link: &str) -> String {
    format!(
        "Hello {name},\n\nConfirm your email address for your Rose Ash account by \
         opening this link within 24 hours:\n\n{link}\n"
    )
}

/// The accounts of one identity provider.
#[derive(Clone)]
pub struct Accounts {
    pub store: Store,
    /// The provider's public base URL (links in mail point here).
    pub base_url: String,
}

/// What sign-up made: the member and the email-verification link sent.
#[derive(Debug)]
pub struct SignedUp {
    pub member: Member,
}

impl Accounts {
    pub fn new(store: Store, base_url: impl Into<String>) -> Accounts {
        Accounts {
            store,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// A member by id.
    pub fn member(&self, id: &str) -> Result<Option<Member>> {
        let found = self.store.read(|tx| store::ops::get(tx, id))?;
        found
            .map(|o| Member::from_object(&o.id, &o.body))
            .transpose()
    }

    /// A member by email (any case).
    pub fn member_by_email(&self, email: &str) -> Result<Option<Member>> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let id = self
            .store
            .read(|tx| kv::get(tx, ns::EMAIL, &email, now_ms()))?;
        match id {
            Some(r) => self.member(&r.value),
            None => Ok(None),
        }
    }

    /// Every member, in id order (the admin page).
    pub fn members(&self) -> Result<Vec<Member>> {
        let page = self.store.read(|tx| {
            store::ops::list(
                tx,
                &store::ListQuery {
                    type_name: "member".into(),
                    limit: Some(1000),
                    ..Default::default()
                },
            )
        })?;
        page.items
            .iter()
            .map(|o| Member::from_object(&o.id, &o.body))
            .collect()
    }

    /// Creates a member and queues the verification mail. The first
    /// member of a cooperative becomes its admin.
    pub fn sign_up(&self, email: &str, name: &str, pass: &str) -> Result<Member> {
        let email = normalize_email(email)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(FedError::Invalid(
                "Enter a name of 1 to 100 characters.".into(),
            ));
        }
        password::check_new(pass)?;
        let hash = password::hash(pass)?;
        let id = format!(
            "member:{}",
            crate::crypto::b64url(&random_bytes(9)?).to_lowercase()
        );
        let token = random_token()?;
        let link = format!("{}/verify?token={token}", self.base_url);
        let member = self.store.write(|tx| {
            let now = now_ms();
            if !kv::insert(tx, &record(ns::EMAIL, &email, id.clone(), None, None))? {
                return Err(store::StoreError::Invalid(
                    "An account with this email already exists.".into(),
                ));
            }
            let mut member = Member {
                id: id.clone(),
                email: email.clone(),
                name: name.to_owned(),
                roles: Vec::new(),
                verified: false,
                created: now,
            };
            // The first member is the admin: decided by an atomic
            // create-if-absent, so racing first sign-ups make one admin.
            if kv::insert(
                tx,
                &record(ns::FIRST_ADMIN, "first", id.clone(), None, None),
            )? {
                member.roles.push("admin".into());
            }
            let body = member
                .body()
                .map_err(|e| store::StoreError::Invalid(e.to_string()))?;
            let body = store::ops::check_body(body)?;
            store::ops::put(tx, &id, &body, &Expect::Absent, now)?;
            kv::put(tx, &record(ns::PASSWORD, &id, hash, None, None))?;
            kv::put(
                tx,
                &record(
                    ns::VERIFY,
                    &token_key(&token),
                    id.clone(),
                    None,
                    Some(VERIFY_TTL),
                ),
            )?;
            queue_mail(tx, &email, VERIFY_SUBJECT, &verify_text(name, &link))
                .map_err(|e| store::StoreError::Invalid(e.to_string()))?;
            Ok(member)
        });
        member.map_err(|e| match e {
            store::StoreError::Invalid(m) if m.starts_with("An account") => FedError::Invalid(m),
            other => other.into(),
        })
    }

    /// Checks the password and opens a provider session: returns the
    /// session cookie's token and the session. Wrong credentials give one
    /// message whether or not the email exists; too many failures for
    /// one email lock it for a while, and too many attempts from one
    /// address are refused.
    pub fn sign_in(&self, email: &str, pass: &str, ip: &str) -> Result<(String, Session)> {
        let wrong = || FedError::Invalid("The email or password is not right.".into());
        let ip_key = if ip.is_empty() { "unknown" } else { ip };
        // Each attempt is counted before the password is checked, in one
        // transaction with the check of the limit, so parallel guesses
        // cannot all slip under it.
        let email = normalize_email(email).unwrap_or_default();
        let mut limits = vec![(ns::IP, ip_key, MAX_PER_IP)];
        if !email.is_empty() {
            limits.push((ns::FAILURES, email.as_str(), MAX_FAILURES));
        }
        let refused = self.store.write(|tx| {
            let now = now_ms();
            let mut refused = None;
            for (namespace, key, max) in &limits {
                let (n, expires) = kv::increment(tx, namespace, key, now + LOCK_WINDOW, now)?;
                if n > *max {
                    refused = Some((expires - now).max(1000) / 1000);
                }
            }
            Ok(refused)
        })?;
        if let Some(retry_after) = refused {
            return Err(FedError::RateLimited { retry_after });
        }
        if email.is_empty() {
            return Err(wrong());
        }
        let member = self.member_by_email(&email)?;
        let hash = match &member {
            Some(m) => self
                .store
                .read(|tx| kv::get(tx, ns::PASSWORD, &m.id, now_ms()))?
                .map(|r| r.value),
            None => None,
        };
        let ok = match &hash {
            Some(h) => password::verify(pass, h),
            None => {
                password::verify_nothing(pass);
                false
            }
        };
        let Some(member) = member.filter(|_| ok) else {
            return Err(wrong());
        };
        self.store
            .write(|tx| kv::delete(tx, ns::FAILURES, &email))?;
        self.open_session(&member.id)
    }

    /// Opens a provider session for `member` (after a password check or a
    /// password reset).
    fn open_session(&self, member: &str) -> Result<(String, Session)> {
        let token = random_token()?;
        let session = Session {
            member: member.to_owned(),
            sid: random_token()?,
            auth_time: now_ms(),
        };
        let value = json!({"member": session.member, "sid": session.sid,
                           "auth_time": session.auth_time})
        .to_string();
        self.store.write(|tx| {
            kv::put(
                tx,
                &record(
                    ns::SESSION,
                    &token_key(&token),
                    value,
                    Some(member),
                    Some(SESSION_TTL),
                ),
            )
        })?;
        Ok((token, session))
    }

    /// The provider session a cookie token names, if live.
    pub fn session(&self, token: &str) -> Result<Option<Session>> {
        if token.is_empty() || token.len() > 200 {
            return Ok(None);
        }
        let r = self
            .store
            .read(|tx| kv::get(tx, ns::SESSION, &token_key(token), now_ms()))?;
        Ok(r.and_then(|r| parse_session(&r.value)))
    }

    /// Ends a provider session; returns it (for single logout) if it was
    /// live.
    pub fn sign_out(&self, token: &str) -> Result<Option<Session>> {
        if token.is_empty() || token.len() > 200 {
            return Ok(None);
        }
        let r = self
            .store
            .write(|tx| kv::take_record(tx, ns::SESSION, &token_key(token), now_ms()))?;
        Ok(r.and_then(|r| parse_session(&r.value)))
    }

    /// Marks the member's email verified (single-use token).
    pub fn verify_email(&self, token: &str) -> Result<Member> {
        let expired = || {
            FedError::Invalid(
                "This verification link is not valid: it was used already or has expired.".into(),
            )
        };
        if token.is_empty() || token.len() > 200 {
            return Err(expired());
        }
        let taken = self
            .store
            .write(|tx| kv::take_record(tx, ns::VERIFY, &token_key(token), now_ms()))?;
        let id = taken.ok_or_else(expired)?.value;
        self.update(&id, |m| m.verified = true)
    }

    /// Rewrites a member's object through `change`.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Member)) -> Result<Member> {
        let mut m = self
            .member(id)?
            .ok_or_else(|| FedError::Invalid(format!("There is no member {id}.")))?;
        change(&mut m);
        let body = store::ops::check_body(m.body()?)?;
        self.store
            .write(|tx| store::ops::put(tx, id, &body, &Expect::Exists, now_ms()))?;
        Ok(m)
    }

    /// Changes the display name.
    pub fn rename(&self, id: &str, name: &str) -> Result<Member> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(FedError::Invalid(
                "Enter a name of 1 to 100 characters.".into(),
            ));
        }
        self.update(id, |m| m.name = name)
    }

    /// Grants or withdraws a role.
    pub fn set_role(&self, id: &str, role: &str, on: bool) -> Result<Member> {
        if role.is_empty() || !role.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            return Err(FedError::Invalid(format!("{role:?} is not a role name.")));
        }
        self.update(id, |m| {
            m.roles.retain(|r| r != role);
            if on {
                m.roles.push(role.to_owned());
                m.roles.sort();
            }
        })
    }

    /// Counts a sign-up from `ip` and refuses it past the hourly limit.
    pub fn limit_sign_ups(&self, ip: &str) -> Result<()> {
        let ip = if ip.is_empty() { "unknown" } else { ip };
        let now = now_ms();
        let (n, expires) = self
            .store
            .write(|tx| kv::increment(tx, ns::SIGN_UPS, ip, now + HOUR, now))?;
        if n > MAX_SIGN_UPS_PER_IP {
            return Err(FedError::RateLimited {
                retry_after: (expires - now).max(1000) / 1000,
            });
        }
        Ok(())
    }

    /// Sends the verification mail again (a fresh link; earlier ones keep
    /// working until they expire), at most `MAX_RESETS_PER_EMAIL` an hour.
    /// Returns false when the member is verified already or over the limit.
    pub fn resend_verification(&self, id: &str) -> Result<bool> {
        let m = self
            .member(id)?
            .ok_or_else(|| FedError::Invalid(format!("There is no member {id}.")))?;
        if m.verified {
            return Ok(false);
        }
        let token = random_token()?;
        let link = format!("{}/verify?token={token}", self.base_url);
        let now = now_ms();
        let sent = self.store.write(|tx| {
            let (n, _) = kv::increment(
                tx,
                ns::RESET_REQUESTS,
                &format!("verify {}", m.email),
                now + HOUR,
                now,
            )?;
            if n > MAX_RESETS_PER_EMAIL {
                return Ok(false);
            }
            kv::put(
                tx,
                &record(
                    ns::VERIFY,
                    &token_key(&token),
                    m.id.clone(),
                    None,
                    Some(VERIFY_TTL),
                ),
            )?;
            queue_mail(tx, &m.email, VERIFY_SUBJECT, &verify_text(&m.name, &link))
                .map_err(|e| store::StoreError::Invalid(e.to_string()))?;
            Ok(true)
        })?;
        Ok(sent)
    }

    /// Queues a password-reset mail if the email has an account. Says
    /// nothing either way, so the form does not reveal who is a member.
    pub fn request_reset(&self, email: &str) -> Result<()> {
        let Some(m) = self.member_by_email(email)? else {
            return Ok(());
        };
        let now = now_ms();
        let (sent, _) = self
            .store
            .write(|tx| kv::increment(tx, ns::RESET_REQUESTS, &m.email, now + HOUR, now))?;
        if sent > MAX_RESETS_PER_EMAIL {
            return Ok(());
        }
        let token = random_token()?;
        let link = format!("{}/reset?token={token}", self.base_url);
        self.store.write(|tx| {
            kv::put(
                tx,
                &record(
                    ns::RESET,
                    &token_key(&token),
                    m.id.clone(),
                    None,
                    Some(RESET_TTL),
                ),
            )?;
            queue_mail(
                tx,
                &m.email,
                "Reset your password",
                &format!(
                    "Hello {},\n\nSomeone asked to reset the password of your Rose Ash \
                     account. If it was you, open this link within an hour:\n\n{link}\n\n\
                     If not, ignore this message; your password is unchanged.\n",
                    m.name
                ),
            )
            .map_err(|e| store::StoreError::Invalid(e.to_string()))
        })?;
        Ok(())
    }

    /// Whether a reset token is live (to show the form, or say it expired).
    pub fn reset_token_live(&self, token: &str) -> Result<bool> {
        if token.is_empty() || token.len() > 200 {
            return Ok(false);
        }
        Ok(self
            .store
            .read(|tx| kv::get(tx, ns::RESET, &token_key(token), now_ms()))?
            .is_some())
    }

    /// Sets a new password with a single-use reset token, ends every
    /// provider session of the member, and clears a lockout. Returns the
    /// member.
    pub fn reset_password(&self, token: &str, new_password: &str) -> Result<Member> {
        password::check_new(new_password)?;
        let hash = password::hash(new_password)?;
        let expired = || {
            FedError::Invalid(
                "This reset link is not valid: it was used already or has expired.".into(),
            )
        };
        if token.is_empty() || token.len() > 200 {
            return Err(expired());
        }
        let id = self.store.write(|tx| {
            let Some(r) = kv::take_record(tx, ns::RESET, &token_key(token), now_ms())? else {
                return Ok(None);
            };
            kv::put(tx, &record(ns::PASSWORD, &r.value, hash, None, None))?;
            // Whoever knew the old password loses what it gave them: every
            // provider session, and the apps' tokens those sessions made.
            for s in kv::tagged(tx, ns::SESSION, &r.value, now_ms())? {
                if let Some(sess) = parse_session(&s.value) {
                    crate::oauth::revoke_session_grants(tx, &sess.sid, now_ms())?;
                }
            }
            kv::delete_tagged(tx, ns::SESSION, &r.value)?;
            Ok(Some(r.value))
        })?;
        let id = id.ok_or_else(expired)?;
        let m = self
            .member(&id)?
            .ok_or_else(|| FedError::Internal(format!("reset for a missing member {id}")))?;
        self.store
            .write(|tx| kv::delete(tx, ns::FAILURES, &m.email))?;
        Ok(m)
    }

    /// Changes the password of a signed-in member who knows the old one.
    pub fn change_password(&self, id: &str, old: &str, new_password: &str) -> Result<()> {
        let stored = self
            .store
            .read(|tx| kv::get(tx, ns::PASSWORD, id, now_ms()))?;
        if !stored.is_some_and(|r| password::verify(old, &r.value)) {
            return Err(FedError::Invalid(
                "The current password is not right.".into(),
            ));
        }
        password::check_new(new_password)?;
        let hash = password::hash(new_password)?;
        self.store
            .write(|tx| kv::put(tx, &record(ns::PASSWORD, id, hash, None, None)))?;
        Ok(())
    }

    /// Up to `limit` queued mails, oldest first.
    pub fn outbox(&self, limit: i64) -> Result<Vec<Mail>> {
        let rows = self
            .store
            .read(|tx| kv::list(tx, ns::MAIL, "", limit, now_ms()))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let j: Json = serde_json::from_str(&r.value).ok()?;
                Some(Mail {
                    key: r.key,
                    to: j["to"].as_str()?.to_owned(),
                    subject: j["subject"].as_str()?.to_owned(),
                    text: j["text"].as_str()?.to_owned(),
                })
            })
            .collect())
    }

    /// Removes a sent mail from the outbox.
    pub fn mail_sent(&self, key: &str) -> Result<()> {
        self.store.write(|tx| kv::delete(tx, ns::MAIL, key))?;
        Ok(())
    }
}

fn parse_session(value: &str) -> Option<Session> {
    let j: Json = serde_json::from_str(value).ok()?;
    Some(Session {
        member: j["member"].as_str()?.to_owned(),
        sid: j["sid"].as_str()?.to_owned(),
        auth_time: j["auth_time"].as_i64()?,
    })
}
