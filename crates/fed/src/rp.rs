//! The relying-party side: what every app does to sign members in
//! through the provider — the login request (state, nonce, PKCE), and
//! checking ID tokens and back-channel logout tokens.

use serde_json::{Value as Json, json};

use crate::crypto::{pkce_challenge, random_token};
use crate::error::Result;
use crate::jwt::PublicKeys;
use crate::oauth::{LOGOUT_EVENT, with_query};

/// Seconds of clock difference tolerated between provider and app.
const LEEWAY_S: i64 = 60;

/// A login in progress: what the app keeps (under `state`) until the
/// callback, and where it sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub url: String,
}

impl LoginRequest {
    pub fn new(
        authorization_endpoint: &str,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> Result<LoginRequest> {
        let (state, nonce, verifier) = (random_token()?, random_token()?, random_token()?);
        let challenge = pkce_challenge(&verifier);
        let url = with_query(
            authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("scope", scope),
                ("state", &state),
                ("nonce", &nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        Ok(LoginRequest {
            state,
            nonce,
            verifier,
            url,
        })
    }
}

fn now_s() -> i64 {
    crate::crypto::now_ms() / 1000
}

fn aud_has(claims: &Json, client_id: &str) -> bool {
    match &claims["aud"] {
        Json::String(s) => s == client_id,
        Json::Array(a) => a.iter().any(|x| x == &json!(client_id)),
        _ => false,
    }
}

/// Checks an ID token (OpenID Connect Core §3.1.3.7): signature, issuer,
/// audience, expiry and nonce. Returns its claims.
pub fn verify_id_token(
    token: &str,
    keys: &PublicKeys,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> std::result::Result<Json, String> {
    let claims = keys.verify(token).map_err(|e| e.to_string())?;
    if claims["iss"] != json!(issuer) {
        return Err(format!("the ID token's issuer is not {issuer}"));
    }
    if !aud_has(&claims, client_id) {
        return Err("the ID token is not for this app".into());
    }
    if claims["aud"].is_array() && claims["azp"] != json!(client_id) {
        return Err("the ID token's azp is not this app".into());
    }
    let exp = claims["exp"].as_i64().ok_or("the ID token has no exp")?;
    if exp + LEEWAY_S < now_s() {
        return Err("the ID token has expired".into());
    }
    if claims["nonce"] != json!(nonce) {
        return Err("the ID token's nonce does not match the login request".into());
    }
    if claims["sub"].as_str().is_none_or(str::is_empty) {
        return Err("the ID token has no subject".into());
    }
    Ok(claims)
}

/// Checks a back-channel logout token (OpenID Back-Channel Logout §2.6)
/// and returns its `sid` (and `sub`).
pub fn verify_logout_token(
    token: &str,
    keys: &PublicKeys,
    issuer: &str,
    client_id: &str,
) -> std::result::Result<(Option<String>, Option<String>), String> {
    let claims = keys.verify(token).map_err(|e| e.to_string())?;
    if claims["iss"] != json!(issuer) {
        return Err(format!("the logout token's issuer is not {issuer}"));
    }
    if !aud_has(&claims, client_id) {
        return Err("the logout token is not for this app".into());
    }
    let iat = claims["iat"]
        .as_i64()
        .ok_or("the logout token has no iat")?;
    if (iat - now_s()).abs() > 300 {
        return Err("the logout token is too old or from the future".into());
    }
    if claims.get("nonce").is_some() {
        return Err("a logout token must not carry a nonce".into());
    }
    if !claims["events"]
        .get(LOGOUT_EVENT)
        .is_some_and(Json::is_object)
    {
        return Err("the token is not a logout token".into());
    }
    let sid = claims["sid"].as_str().map(str::to_owned);
    let sub = claims["sub"].as_str().map(str::to_owned);
    if sid.is_none() && sub.is_none() {
        return Err("the logout token names neither a session nor a member".into());
    }
    Ok((sid, sub))
}

/// Whether `next` is a safe place to send the browser after sign-in: a
/// path on this site (not `//host`, not `/\host`, no scheme).
pub fn safe_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths() {
        assert!(safe_local_path("/posts/a?x=1"));
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "",
            "/a\nb",
        ] {
            assert!(!safe_local_path(bad), "{bad:?}");
        }
    }
}
