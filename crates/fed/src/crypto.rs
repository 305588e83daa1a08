//! Small cryptographic helpers: random tokens, hashes for storing tokens,
//! base64url, constant-time comparison, PKCE.

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::FedError;

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, FedError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| FedError::Internal(format!("no OS randomness: {e}")))?;
    Ok(b)
}

/// A fresh unguessable token: 32 random bytes, base64url (43 characters).
pub fn random_token() -> Result<String, FedError> {
    Ok(b64url(&random_bytes(32)?))
}

pub fn b64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(s).ok()
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// What a token is stored under: its SHA-256, base64url. Tokens are
/// random and long, so a fast hash suffices, and a leaked database holds
/// no usable token.
pub fn token_key(token: &str) -> String {
    b64url(&sha256(token.as_bytes()))
}

/// Compares secrets in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    b64url(&sha256(verifier.as_bytes()))
}

/// Whether `s` is a well-formed PKCE verifier or challenge: 43–128
/// characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn pkce_well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` matches `challenge` under S256, compared in
/// constant time.
pub fn pkce_verify(verifier: &str, challenge: &str) -> bool {
    pkce_well_formed(verifier) && ct_eq(pkce_challenge(verifier).as_bytes(), challenge.as_bytes())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    store::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        // The example verifier and challenge from RFC 7636, Appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            pkce_challenge(v),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(pkce_verify(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_verify(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cX"
        ));
        assert!(!pkce_verify("short", &pkce_challenge("short")));
    }

    #[test]
    fn tokens_differ_and_hash() {
        let (a, b) = (
            random_token().unwrap_or_default(),
            random_token().unwrap_or_default(),
        );
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(token_key(&a), token_key(&b));
        assert!(ct_eq(b"x", b"x") && !ct_eq(b"x", b"y") && !ct_eq(b"x", b"xy"));
    }
}
