//! Password hashing: argon2id with OWASP's recommended parameters
//! (19 MiB, 2 passes, 1 lane), stored as a PHC string.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::crypto::random_bytes;
use crate::error::{FedError, Result};

/// Shortest password accepted.
pub const MIN_LEN: usize = 8;
/// Longest password accepted (hashing cost must not be the attacker's
/// choice).
pub const MAX_LEN: usize = 1024;

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| FedError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks a new password's length; the message is for the member.
pub fn check_new(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(FedError::Invalid(format!(
            "The password must have at least {MIN_LEN} characters."
        )));
    }
    if password.len() > MAX_LEN {
        return Err(FedError::Invalid(format!(
            "The password must have at most {MAX_LEN} bytes."
        )));
    }
    Ok(())
}

/// The PHC string of `password` under a fresh salt.
pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes(16)?)
        .map_err(|e| FedError::Internal(format!("salt: {e}")))?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| FedError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `phc` (constant-time inside
/// argon2). A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Spends the time a real verification would, for unknown accounts, so
/// response times do not reveal which emails are registered.
pub fn verify_nothing(password: &str) {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
                         R0bmvUe0CQ5r4T5JwDT9Y6TsZ6ZHxQKoYxPZ1qWeAgE";
    let _ = verify(password, DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsE", &h));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(h, hash("correct horse").unwrap_or_default(), "salted");
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
    }
}
