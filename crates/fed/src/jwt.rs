//! JSON Web Tokens signed with RS256 (RFC 7515/7519): the provider's
//! signing key, its JWKS (RFC 7517), and verification against a JWKS.
//!
//! RS256 because OpenID Connect requires every provider to offer it
//! (Discovery §3), so any client can check our ID tokens.

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Pkcs1v15Sign, PrivateKey, PublicKey};
use serde_json::{Value as Json, json};

use crate::crypto::{b64url, b64url_decode, sha256};
use crate::error::{FedError, Result};

/// Bits of a new signing key.
const KEY_BITS: usize = 2048;

/// The provider's signing key.
pub struct SigningKey {
    key: PrivateKey,
    /// The key id: its RFC 7638 thumbprint.
    pub kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

fn thumbprint(n: &str, e: &str) -> String {
    // RFC 7638 §3.2: the required members in lexicographic order, no spaces.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    b64url(&sha256(canonical.as_bytes()))
}

fn internal(what: &str) -> impl FnOnce(rsa::Error) -> FedError + '_ {
    move |e| FedError::Internal(format!("{what}: {e}"))
}

impl SigningKey {
    /// A fresh key (takes a moment: prime generation).
    pub fn generate() -> Result<SigningKey> {
        let mut rng = OsRng;
        let key = PrivateKey::new(&mut rng, KEY_BITS).map_err(internal("generating a key"))?;
        Ok(SigningKey::from_key(key))
    }

    fn from_key(key: PrivateKey) -> SigningKey {
        let (n, e) = (b64url(&key.n_bytes()), b64url(&key.e_bytes()));
        SigningKey {
            kid: thumbprint(&n, &e),
            key,
        }
    }

    /// The key from its PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<SigningKey> {
        let key = PrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| FedError::Internal(format!("reading the signing key: {e}")))?;
        Ok(SigningKey::from_key(key))
    }

    /// PKCS#8 PEM, for storing.
    pub fn to_pem(&self) -> Result<String> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| FedError::Internal(format!("encoding the signing key: {e}")))
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Json {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(&self.key.n_bytes()),
            "e": b64url(&self.key.e_bytes()),
        })
    }

    /// The JWK Set clients fetch from the `jwks_uri`.
    pub fn jwks(&self) -> Json {
        json!({ "keys": [self.jwk()] })
    }

    /// `claims` as a compact JWS, RS256.
    pub fn sign(&self, claims: &Json) -> Result<String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let digest = sha256(signing_input.as_bytes());
        let sig = self
            .key
            .sign(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), &digest)
            .map_err(internal("signing"))?;
        Ok(format!("{signing_input}.{}", b64url(&sig)))
    }
}

/// The OS random source, in the form the `rsa` crate takes.
struct OsRng;

impl rsa::rand_core::TryRng for OsRng {
    type Error = std::io::Error;
    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        getrandom::fill(dst).map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl rsa::rand_core::TryCryptoRng for OsRng {}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("the token's algorithm {0:?} is not RS256")]
    Algorithm(String),
    #[error("no key with the token's kid")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
}

/// Public keys from a JWK Set.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    keys: Vec<(Option<String>, PublicKey)>,
}

impl PublicKeys {
    /// The RSA signing keys of a JWKS document (others are skipped).
    pub fn from_jwks(jwks: &Json) -> PublicKeys {
        let mut keys = Vec::new();
        for k in jwks["keys"].as_array().into_iter().flatten() {
            if k["kty"] != "RSA" || k.get("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let (Some(n), Some(e)) = (
                k["n"].as_str().and_then(b64url_decode),
                k["e"].as_str().and_then(b64url_decode),
            ) else {
                continue;
            };
            let bits = u32::try_from(n.len() * 8).unwrap_or(u32::MAX);
            let (Ok(n), Ok(e)) = (
                BoxedUint::from_be_slice(&n, bits),
                BoxedUint::from_be_slice(&e, 64),
            ) else {
                continue;
            };
            if let Ok(key) = PublicKey::new(n, e) {
                keys.push((k["kid"].as_str().map(str::to_owned), key));
            }
        }
        PublicKeys { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The claims of `token` if its RS256 signature verifies under one of
    /// the keys. Claims are not checked here (see the callers).
    pub fn verify(&self, token: &str) -> std::result::Result<Json, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Json = b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Malformed)?;
        let claims: Json = b64url_decode(c)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Malformed)?;
        let sig = b64url_decode(s).ok_or(JwtError::Malformed)?;
        if header["alg"] != "RS256" {
            return Err(JwtError::Algorithm(
                header["alg"].as_str().unwrap_or("none").to_owned(),
            ));
        }
        let kid = header["kid"].as_str();
        let candidates: Vec<&PublicKey> = self
            .keys
            .iter()
            .filter(|(k, _)| kid.is_none() || k.as_deref() == kid)
            .map(|(_, key)| key)
            .collect();
        if candidates.is_empty() {
            return Err(JwtError::UnknownKey);
        }
        let digest = sha256(format!("{h}.{c}").as_bytes());
        let ok = candidates.iter().any(|key| {
            key.verify(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), &digest, &sig)
                .is_ok()
        });
        if ok && claims.is_object() {
            Ok(claims)
        } else {
            Err(JwtError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem().unwrap()).unwrap();
        assert_eq!(key.kid, again.kid);
        let keys = PublicKeys::from_jwks(&key.jwks());
        let t = key.sign(&json!({"sub": "member:a", "n": 1})).unwrap();
        assert_eq!(keys.verify(&t).unwrap()["sub"], "member:a");
        // Change one claim: the signature no longer matches.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = b64url(br#"{"sub":"member:b","n":1}"#);
        assert_eq!(keys.verify(&parts.join(".")), Err(JwtError::BadSignature));
        // alg=none is refused.
        parts[0] = b64url(br#"{"alg":"none"}"#);
        assert!(matches!(
            keys.verify(&parts.join(".")),
            Err(JwtError::Algorithm(_))
        ));
        assert_eq!(keys.verify("a.b"), Err(JwtError::Malformed));
        // Another key's signature does not verify.
        let other = SigningKey::generate().unwrap();
        let t2 = other.sign(&json!({"sub": "x"})).unwrap();
        assert_eq!(keys.verify(&t2), Err(JwtError::UnknownKey));
    }
}
