//! This peer's side of signed requests, kept in the store: its signing
//! key (made on first use, a durable record, so restarts and every host
//! sharing the database keep one key) and the nonces already seen
//! (expiring records, so a replayed request is refused while its
//! signature could still be valid).

use store::Store;
use store::kv::{self, Record};

use crate::crypto::{b64url, now_ms, sha256};
use crate::error::{FedError, Result};
use crate::httpsig::PeerKey;

/// Namespaces of the records this module keeps.
pub mod ns {
    /// The signing key, under the key `current`: its 32 secret bytes in
    /// standard base64.
    pub const KEY: &str = "peer-signing-key";
    /// Nonces seen, under the SHA-256 of the key id and the nonce.
    pub const NONCE: &str = "peer-nonce";
}

const CURRENT: &str = "current";

fn stored_key(store: &Store) -> Result<Option<PeerKey>> {
    store
        .read(|tx| kv::get(tx, ns::KEY, CURRENT, now_ms()))?
        .map(|r| {
            PeerKey::from_secret_b64(&r.value)
                .map_err(|e| FedError::Internal(format!("the stored peer key: {e}")))
        })
        .transpose()
}

/// This peer's signing key: created on first use and kept in the store
/// (a durable record), so restarts keep it. Of hosts sharing a database
/// that make one at once, the first to store it wins and all use it.
pub fn peer_key(store: &Store) -> Result<PeerKey> {
    if let Some(k) = stored_key(store)? {
        return Ok(k);
    }
    let key = PeerKey::generate().map_err(|e| FedError::Internal(e.to_string()))?;
    let inserted = store.write(|tx| {
        kv::insert(
            tx,
            &Record {
                ns: ns::KEY.into(),
                key: CURRENT.into(),
                value: key.secret_b64(),
                tag: None,
                expires: None,
                at: now_ms(),
            },
        )
    })?;
    if inserted {
        Ok(key)
    } else {
        stored_key(store)?.ok_or_else(|| FedError::Internal("the peer key vanished".into()))
    }
}

/// The record key of a nonce from `key_id`: a hash, so any key id and
/// nonce fit the store's limits on keys, and the two cannot run together.
pub fn nonce_key(key_id: &str, nonce: &str) -> String {
    let mut text = Vec::with_capacity(key_id.len() + nonce.len() + 24);
    text.extend_from_slice(key_id.len().to_string().as_bytes());
    text.push(b':');
    text.extend_from_slice(key_id.as_bytes());
    text.extend_from_slice(nonce.as_bytes());
    b64url(&sha256(&text))
}

/// Records a nonce seen from `key_id`, kept until `until` (unix seconds).
/// `Ok(true)` the first time; `Ok(false)` when it was already seen (a
/// replay). Atomic: of concurrent calls with the same nonce exactly one
/// gets `true`. Once `until` has passed the nonce may be recorded again,
/// so `until` must be no earlier than the signature's expiry.
pub fn remember_nonce(store: &Store, key_id: &str, nonce: &str, until: i64) -> Result<bool> {
    let rec = Record {
        ns: ns::NONCE.into(),
        key: nonce_key(key_id, nonce),
        // Who sent it, for whoever reads the records; printable ASCII
        // (PostgreSQL text holds no NUL) and short.
        value: key_id
            .chars()
            .take(200)
            .map(|c| if matches!(c, ' '..='~') { c } else { '?' })
            .collect(),
        tag: None,
        expires: Some(until.saturating_mul(1000)),
        at: now_ms(),
    };
    Ok(store.write(|tx| kv::insert(tx, &rec))?)
}
