//! The peer's own signing key and replay protection (`fed::peers`),
//! kept in the store.

use std::sync::{Arc, Barrier};

use fed::httpsig::{self, Outgoing};
use fed::peers::{self, ns, peer_key, remember_nonce};
use store::Store;

use crate::both;
use crate::common::*;

fn now_s() -> i64 {
    store::now_ms() / 1000
}

both!(peer_key_is_made_once_and_kept, |env| {
    let k = peer_key(&env.store).unwrap();
    let again = peer_key(&env.store).unwrap();
    assert_eq!(k.public_key(), again.public_key());
    assert_eq!(k.secret_b64(), again.secret_b64());
    let recs = env.list(ns::KEY);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].expires, None, "the key is a durable record");
    // It signs what the public key verifies.
    let out = Outgoing {
        method: "POST",
        authority: "127.0.0.1:8083",
        path: "/order",
        query: "",
        body: b"{}",
        key_id: "http://127.0.0.1:8082",
        created: now_s(),
        expires: now_s() + 60,
        nonce: "n1",
    };
    let headers: Vec<(String, String)> = httpsig::sign(&k, &out)
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    let c = httpsig::parse(&httpsig::Incoming {
        method: "POST",
        authority: "127.0.0.1:8083",
        path: "/order",
        query: "",
        headers: &headers,
        body: b"{}",
    })
    .unwrap();
    httpsig::verify(&c, &again.public_key(), now_s(), 5, 300).unwrap();
});

// A store of the same kind as `env`'s, opened afresh on its own
// database, twice: the key made through the first is the second's.
both!(peer_key_survives_reopening, |env| {
    if env.pg {
        let rnd = fed::crypto::random_bytes(8).unwrap();
        let schema = format!(
            "fedpeer_{}",
            rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let first = {
            let s = Store::open_postgres_in(&pg_url(), Some(&schema)).unwrap();
            peer_key(&s).unwrap()
        };
        let s = Store::open_postgres_in(&pg_url(), Some(&schema)).unwrap();
        let second = peer_key(&s).unwrap();
        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        s.write(|tx| tx.exec(&sql, &[])).unwrap();
        assert_eq!(first.secret_b64(), second.secret_b64());
        assert_eq!(first.public_key(), second.public_key());
    } else {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.sqlite");
        let first = {
            let s = Store::open_sqlite(&path).unwrap();
            peer_key(&s).unwrap()
        };
        let s = Store::open_sqlite(&path).unwrap();
        let second = peer_key(&s).unwrap();
        assert_eq!(first.secret_b64(), second.secret_b64());
        assert_eq!(first.public_key(), second.public_key());
    }
    // And a different store has a different key.
    assert_ne!(peer_key(&env.store).unwrap().public_key(), {
        let dir = tempfile::tempdir().unwrap();
        peer_key(&Store::open_sqlite(&dir.path().join("o.sqlite")).unwrap())
            .unwrap()
            .public_key()
    });
});

both!(peer_keys_made_at_once_agree, |env| {
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = env.store.clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                peer_key(&store).unwrap().secret_b64()
            })
        })
        .collect();
    let keys: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "one key for all");
    assert_eq!(keys[0], peer_key(&env.store).unwrap().secret_b64());
});

both!(nonce_first_seen_then_replay, |env| {
    let until = now_s() + 60;
    assert!(remember_nonce(&env.store, "http://a", "n1", until).unwrap());
    assert!(!remember_nonce(&env.store, "http://a", "n1", until).unwrap());
    assert!(!remember_nonce(&env.store, "http://a", "n1", until + 100).unwrap());
    // Another nonce, or the same nonce from another peer, is new.
    assert!(remember_nonce(&env.store, "http://a", "n2", until).unwrap());
    assert!(remember_nonce(&env.store, "http://b", "n1", until).unwrap());
    assert!(!remember_nonce(&env.store, "http://b", "n1", until).unwrap());
    // Key id and nonce cannot run together.
    assert!(remember_nonce(&env.store, "http://a", "bn1", until).unwrap());
    assert!(remember_nonce(&env.store, "http://ab", "n1", until).unwrap());
    // The record lives until `until`.
    let rec = env.record(ns::NONCE, &peers::nonce_key("http://a", "n1"));
    assert_eq!(rec.expires, Some(until * 1000));
});

both!(nonce_any_text_fits, |env| {
    let long = "x".repeat(5000);
    let until = now_s() + 60;
    assert!(remember_nonce(&env.store, &long, &long, until).unwrap());
    assert!(!remember_nonce(&env.store, &long, &long, until).unwrap());
    assert!(remember_nonce(&env.store, "", "", until).unwrap());
    assert!(!remember_nonce(&env.store, "", "", until).unwrap());
    assert!(remember_nonce(&env.store, "k\n\u{0}", "é\t", until).unwrap());
    assert!(!remember_nonce(&env.store, "k\n\u{0}", "é\t", until).unwrap());
});

both!(nonce_race_has_one_winner, |env| {
    let until = now_s() + 60;
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let store = env.store.clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                remember_nonce(&store, "http://racer", "the-nonce", until).unwrap()
            })
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|w| *w)
        .count();
    assert_eq!(wins, 1);
});

both!(expired_nonce_may_be_reused, |env| {
    let until = now_s() + 60;
    assert!(remember_nonce(&env.store, "http://a", "n", until).unwrap());
    assert!(!remember_nonce(&env.store, "http://a", "n", until).unwrap());
    // Its record expires (rewritten as expired a moment ago: no waiting).
    env.expire(ns::NONCE, &peers::nonce_key("http://a", "n"));
    assert!(remember_nonce(&env.store, "http://a", "n", until).unwrap());
    assert!(!remember_nonce(&env.store, "http://a", "n", until).unwrap());
    // Kept until a time already past: never counts as seen.
    let past = now_s() - 1;
    assert!(remember_nonce(&env.store, "http://a", "old", past).unwrap());
    assert!(remember_nonce(&env.store, "http://a", "old", past).unwrap());
});
