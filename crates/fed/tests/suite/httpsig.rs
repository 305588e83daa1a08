//! Signed peer requests (`fed::httpsig`): the RFC 9421 and RFC 9530
//! vectors, the exact form of what is sent, a round trip, every kind of
//! tampering refused with its own error, and a property test that no
//! header text makes `parse` panic. No database needed.

use base64ct::{Base64, Encoding};
use fed::httpsig::{
    self, Claimed, Incoming, Outgoing, PeerKey, PublicKey, SigError, content_digest, parse, sign,
    sign_base, signature_base, verify, verify_base,
};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000;
const SKEW: i64 = 5;
const MAX_LIFE: i64 = 300;
const SENDER: &str = "http://127.0.0.1:8082";

// ---- RFC 9421 Appendix B.2.6 (Ed25519) with the key of Appendix B.1.4 ----

/// The PKCS #8 bodies of `test-key-ed25519` (RFC 9421 B.1.4); the raw keys
/// are their last 32 bytes.
const B14_PRIVATE_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF";
const B14_PUBLIC_SPKI: &str = "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";

/// The signature base of B.2.6, its RFC 8792 line wrapping undone.
const B26_BASE: &str = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
\"@method\": POST\n\
\"@path\": /foo\n\
\"@authority\": example.com\n\
\"content-type\": application/json\n\
\"content-length\": 18\n\
\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";

/// The `sig-b26` signature of B.2.6.
const B26_SIGNATURE: &str =
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==";

fn last32(b64: &str) -> String {
    let der = Base64::decode_vec(b64).unwrap();
    Base64::encode_string(&der[der.len() - 32..])
}

#[test]
fn rfc9421_b26_ed25519_vector() {
    let key = PeerKey::from_secret_b64(&last32(B14_PRIVATE_PKCS8)).unwrap();
    let public = PublicKey::from_b64(&last32(B14_PUBLIC_SPKI)).unwrap();
    assert_eq!(
        key.public_key(),
        public,
        "B.1.4: the public key is the private key's"
    );

    let base = signature_base(
        &[
            ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("@method", "POST"),
            ("@path", "/foo"),
            ("@authority", "example.com"),
            ("content-type", "application/json"),
            ("content-length", "18"),
        ],
        "(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
    );
    assert_eq!(base, B26_BASE);

    let expected = Base64::decode_vec(B26_SIGNATURE).unwrap();
    let sig = sign_base(&key, &base);
    assert_eq!(
        sig.as_slice(),
        expected.as_slice(),
        "Ed25519 is deterministic"
    );
    assert!(verify_base(&public, &base, &expected));
    let mut flipped = expected.clone();
    flipped[10] ^= 1;
    assert!(!verify_base(&public, &base, &flipped));
    assert!(!verify_base(&public, &format!("{base} "), &expected));
    assert!(!verify_base(&public, &base, &expected[..63]));
}

#[test]
fn rfc9530_content_digest_example() {
    // The example content of RFC 9530 is `{"hello": "world"}` with no
    // line end after it (with one, the digest would be RK/0qy18...).
    assert_eq!(
        content_digest(b"{\"hello\": \"world\"}"),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
    // An empty body has a digest too (SHA-256 of nothing).
    assert_eq!(
        content_digest(b""),
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    );
}

// ---- keys ----

#[test]
fn keys_round_trip_through_base64() {
    let k = PeerKey::generate().unwrap();
    let again = PeerKey::from_secret_b64(&k.secret_b64()).unwrap();
    assert_eq!(k.public_key(), again.public_key());
    assert_eq!(k.secret_b64(), again.secret_b64());
    let p = k.public_key();
    assert_eq!(PublicKey::from_b64(&p.to_b64()).unwrap(), p);
    assert_ne!(PeerKey::generate().unwrap().public_key(), p);
    // Debug shows no secret.
    assert!(!format!("{k:?}").contains(&k.secret_b64()));
}

#[test]
fn malformed_keys_are_errors() {
    for bad in [
        "",
        "not base64!",
        "AAAA",
        &Base64::encode_string(&[7u8; 33]),
    ] {
        assert!(
            matches!(PeerKey::from_secret_b64(bad), Err(SigError::BadKey(_))),
            "{bad}"
        );
        assert!(
            matches!(PublicKey::from_b64(bad), Err(SigError::BadKey(_))),
            "{bad}"
        );
    }
}

// ---- requests ----

/// A request as it travels: what the receiver will see.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    authority: String,
    path: String,
    query: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Req {
    fn incoming(&self) -> Incoming<'_> {
        Incoming {
            method: &self.method,
            authority: &self.authority,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| k != name);
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn edit(&mut self, name: &str, from: &str, to: &str) {
        let v = self.header(name);
        assert!(v.contains(from), "{v} has no {from}");
        self.set(name, &v.replacen(from, to, 1));
    }

    fn parse(&self) -> Result<Claimed, SigError> {
        parse(&self.incoming())
    }

    fn check(&self, key: &PublicKey, now: i64) -> Result<Claimed, SigError> {
        let c = self.parse()?;
        verify(&c, key, now, SKEW, MAX_LIFE)?;
        Ok(c)
    }
}

fn signed_at(key: &PeerKey, created: i64, expires: i64) -> Req {
    let body = b"{\"event\": \"concert\", \"seats\": 2}".to_vec();
    let out = Outgoing {
        method: "POST",
        authority: "127.0.0.1:8083",
        path: "/order",
        query: "event=concert%20night&x=1",
        body: &body,
        key_id: SENDER,
        created,
        expires,
        nonce: "n-0123456789",
    };
    let headers = sign(key, &out)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain([("content-type".to_owned(), "application/json".to_owned())])
        .collect();
    Req {
        method: "POST".into(),
        authority: "127.0.0.1:8083".into(),
        path: "/order".into(),
        query: "event=concert%20night&x=1".into(),
        body,
        headers,
    }
}

fn signed(key: &PeerKey) -> Req {
    signed_at(key, NOW, NOW + 60)
}

fn key() -> PeerKey {
    // A fixed key, so the expected headers below are exact.
    PeerKey::from_secret_b64(&Base64::encode_string(&[42u8; 32])).unwrap()
}

#[test]
fn sign_produces_the_exact_headers() {
    let k = key();
    let r = signed(&k);
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "content-digest",
            "signature-input",
            "signature",
            "content-type"
        ]
    );
    assert_eq!(r.header("content-digest"), content_digest(&r.body));
    let params = format!(
        "(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created={NOW};expires={};keyid=\"{SENDER}\";nonce=\"n-0123456789\";alg=\"ed25519\";tag=\"rose-ash-peer\"",
        NOW + 60
    );
    assert_eq!(r.header("signature-input"), format!("sig1={params}"));
    let c = r.parse().unwrap();
    let base = format!(
        "\"@method\": POST\n\"@authority\": 127.0.0.1:8083\n\"@path\": /order\n\"@query\": ?event=concert%20night&x=1\n\"content-digest\": {}\n\"@signature-params\": {params}",
        content_digest(&r.body)
    );
    assert_eq!(c.base(), base);
    let sig = sign_base(&k, &base);
    assert_eq!(
        r.header("signature"),
        format!("sig1=:{}:", Base64::encode_string(&sig))
    );
    assert_eq!(c.signature(), sig.as_slice());
    assert_eq!(
        (
            c.key_id.as_str(),
            c.created,
            c.expires,
            c.nonce.as_str(),
            c.label.as_str()
        ),
        (SENDER, NOW, NOW + 60, "n-0123456789", "sig1")
    );
}

#[test]
fn round_trip() {
    let k = PeerKey::generate().unwrap();
    let r = signed(&k);
    r.check(&k.public_key(), NOW).unwrap();
    r.check(&k.public_key(), NOW + 59).unwrap();
    // The clock of the receiver may be a little behind the sender's.
    r.check(&k.public_key(), NOW - SKEW).unwrap();
}

#[test]
fn empty_body_and_query_round_trip() {
    let k = key();
    let out = Outgoing {
        method: "get",
        authority: "Peer.Example:8080",
        path: "",
        query: "",
        body: b"",
        key_id: SENDER,
        created: NOW,
        expires: NOW + 60,
        nonce: "x",
    };
    let headers: Vec<(String, String)> = sign(&k, &out)
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    let inc = Incoming {
        method: "GET",
        authority: "peer.example:8080",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let c = parse(&inc).unwrap();
    assert!(c.base().contains("\"@query\": ?\n"), "{}", c.base());
    assert!(c.base().contains("\"@path\": /\n"), "{}", c.base());
    assert!(
        c.base()
            .starts_with("\"@method\": GET\n\"@authority\": peer.example:8080\n")
    );
    verify(&c, &k.public_key(), NOW, SKEW, MAX_LIFE).unwrap();
}

#[test]
fn tampered_request_line_is_refused() {
    let k = key();
    let p = k.public_key();
    let bad = |r: &Req| match r.check(&p, NOW) {
        Err(SigError::BadSignature(id)) => assert_eq!(id, SENDER),
        other => panic!("expected a bad signature, got {other:?}"),
    };
    let mut r = signed(&k);
    r.method = "PUT".into();
    bad(&r);
    let mut r = signed(&k);
    r.authority = "127.0.0.1:8084".into();
    bad(&r);
    let mut r = signed(&k);
    r.path = "/orders".into();
    bad(&r);
    let mut r = signed(&k);
    r.query = "event=concert%20night&x=2".into();
    bad(&r);
    let mut r = signed(&k);
    r.query = String::new();
    bad(&r);
}

#[test]
fn tampered_body_is_refused() {
    let k = key();
    let p = k.public_key();
    let mut r = signed(&k);
    r.body = b"{\"event\": \"concert\", \"seats\": 9}".to_vec();
    assert_eq!(r.check(&p, NOW).unwrap_err(), SigError::DigestMismatch);
    assert_eq!(
        r.check(&p, NOW).unwrap_err().to_string(),
        "the body does not match its Content-Digest"
    );
    // The digest changed along with the body: the signature covers it.
    let digest = content_digest(&r.body);
    r.set("content-digest", &digest);
    assert!(matches!(r.check(&p, NOW), Err(SigError::BadSignature(_))));
}

#[test]
fn digest_header_problems() {
    let k = key();
    let mut r = signed(&k);
    r.headers.retain(|(n, _)| n != "content-digest");
    assert_eq!(r.parse().unwrap_err(), SigError::NoDigest);
    let mut r = signed(&k);
    r.set("content-digest", "md5=:AAAA:");
    assert_eq!(r.parse().unwrap_err(), SigError::UnsupportedDigest);
    r.set("content-digest", "sha-256=\"not bytes\"");
    assert!(matches!(r.parse(), Err(SigError::MalformedDigest(_))));
    r.set("content-digest", "sha-256=:@@:");
    assert!(matches!(r.parse(), Err(SigError::MalformedDigest(_))));
    r.set("content-digest", "sha-256=(:AAAA:)");
    assert!(matches!(r.parse(), Err(SigError::MalformedDigest(_))));
    // A correct sha-256 beside a wrong sha-512: every digest given must match.
    let good = content_digest(&r.body);
    r.set("content-digest", &format!("{good}, sha-512=:AAAA:"));
    assert_eq!(r.parse().unwrap_err(), SigError::DigestMismatch);
}

#[test]
fn time_window() {
    let k = key();
    let p = k.public_key();
    let r = signed(&k);
    assert_eq!(
        r.check(&p, NOW + 60).unwrap_err(),
        SigError::Expired {
            expires: NOW + 60,
            now: NOW + 60
        }
    );
    assert!(matches!(
        r.check(&p, NOW + 1000),
        Err(SigError::Expired { .. })
    ));
    assert!(
        r.check(&p, NOW + 1000)
            .unwrap_err()
            .to_string()
            .starts_with("the signature expired at")
    );
    assert_eq!(
        r.check(&p, NOW - SKEW - 1).unwrap_err(),
        SigError::CreatedInFuture {
            created: NOW,
            now: NOW - SKEW - 1
        }
    );
    assert!(
        r.check(&p, NOW - 100)
            .unwrap_err()
            .to_string()
            .starts_with("the signature was created in the future")
    );

    let long = signed_at(&k, NOW, NOW + MAX_LIFE + 1);
    assert_eq!(
        long.check(&p, NOW).unwrap_err(),
        SigError::TooLong {
            lifetime: MAX_LIFE + 1,
            max: MAX_LIFE
        }
    );
    signed_at(&k, NOW, NOW + MAX_LIFE).check(&p, NOW).unwrap();

    let backwards = signed_at(&k, NOW, NOW - 1);
    assert!(matches!(
        backwards.check(&p, NOW - 2),
        Err(SigError::ExpiresBeforeCreated { .. })
    ));
}

#[test]
fn wrong_key_is_refused() {
    let r = signed(&key());
    let other = PeerKey::generate().unwrap().public_key();
    let e = r.check(&other, NOW).unwrap_err();
    assert_eq!(e, SigError::BadSignature(SENDER.into()));
    assert_eq!(
        e.to_string(),
        format!("the signature is not valid for key {SENDER}")
    );
}

#[test]
fn flipped_signature_bytes_are_refused() {
    let k = key();
    let r = signed(&k);
    let v = r.header("signature");
    let b64 = v.trim_start_matches("sig1=:").trim_end_matches(':');
    let sig = Base64::decode_vec(b64).unwrap();
    for i in [0, 31, 32, 63] {
        let mut s = sig.clone();
        s[i] ^= 0x80;
        let mut t = r.clone();
        t.set(
            "signature",
            &format!("sig1=:{}:", Base64::encode_string(&s)),
        );
        assert!(
            matches!(
                t.check(&k.public_key(), NOW),
                Err(SigError::BadSignature(_))
            ),
            "byte {i}"
        );
    }
    let mut t = r.clone();
    t.set(
        "signature",
        &format!("sig1=:{}:", Base64::encode_string(&sig[..63])),
    );
    assert!(matches!(t.parse(), Err(SigError::MalformedSignature(_))));
}

#[test]
fn removed_component_is_refused() {
    let k = key();
    for c in httpsig::COMPONENTS {
        let mut r = signed(&k);
        r.edit("signature-input", &format!("\"{c}\""), "");
        assert_eq!(r.parse().unwrap_err(), SigError::NotCovered(c), "{c}");
        assert_eq!(
            r.parse().unwrap_err().to_string(),
            format!("the signature does not cover {c}")
        );
    }
}

#[test]
fn different_component_set_is_refused() {
    let k = key();
    let mut r = signed(&k);
    r.edit(
        "signature-input",
        "\"content-digest\"",
        "\"content-digest\" \"content-type\"",
    );
    assert_eq!(
        r.parse().unwrap_err(),
        SigError::UnexpectedComponent("content-type".into())
    );
    let mut r = signed(&k);
    r.edit("signature-input", "\"@query\"", "\"@query\" \"@query\"");
    assert!(matches!(r.parse(), Err(SigError::MalformedInput(_))));
    let mut r = signed(&k);
    r.edit(
        "signature-input",
        "\"content-digest\"",
        "\"content-digest\";sf",
    );
    assert!(matches!(r.parse(), Err(SigError::UnexpectedComponent(_))));
    let mut r = signed(&k);
    r.edit("signature-input", "\"@path\"", "\"@path\" 12");
    assert!(matches!(r.parse(), Err(SigError::MalformedInput(_))));
    // Reordered: the base follows the order given, so it no longer
    // matches what was signed.
    let mut r = signed(&k);
    r.edit(
        "signature-input",
        "\"@method\" \"@authority\"",
        "\"@authority\" \"@method\"",
    );
    assert!(matches!(
        r.check(&k.public_key(), NOW),
        Err(SigError::BadSignature(_))
    ));
}

#[test]
fn alg_and_parameters() {
    let k = key();
    let mut r = signed(&k);
    r.edit(
        "signature-input",
        "alg=\"ed25519\"",
        "alg=\"rsa-pss-sha512\"",
    );
    assert_eq!(
        r.parse().unwrap_err(),
        SigError::WrongAlg("rsa-pss-sha512".into())
    );
    let mut r = signed(&k);
    r.edit("signature-input", ";alg=\"ed25519\"", "");
    assert_eq!(r.parse().unwrap_err(), SigError::MissingParam("alg"));
    let mut r = signed(&k);
    r.edit("signature-input", "alg=\"ed25519\"", "alg=ed25519");
    assert!(matches!(
        r.parse(),
        Err(SigError::BadParam { name: "alg", .. })
    ));
    let mut r = signed(&k);
    r.edit("signature-input", ";nonce=\"n-0123456789\"", "");
    assert_eq!(r.parse().unwrap_err(), SigError::MissingParam("nonce"));
    let mut r = signed(&k);
    r.edit("signature-input", &format!(";keyid=\"{SENDER}\""), "");
    assert_eq!(r.parse().unwrap_err(), SigError::MissingParam("keyid"));
    let mut r = signed(&k);
    r.edit("signature-input", &format!(";created={NOW}"), "");
    assert_eq!(r.parse().unwrap_err(), SigError::MissingParam("created"));
    let mut r = signed(&k);
    r.edit("signature-input", &format!(";expires={}", NOW + 60), "");
    assert_eq!(r.parse().unwrap_err(), SigError::MissingParam("expires"));
    let mut r = signed(&k);
    r.edit(
        "signature-input",
        &format!("created={NOW}"),
        &format!("created=\"{NOW}\""),
    );
    assert!(matches!(
        r.parse(),
        Err(SigError::BadParam {
            name: "created",
            ..
        })
    ));
    // A changed parameter is covered by the signature.
    let mut r = signed(&k);
    r.edit("signature-input", "n-0123456789", "n-replayed");
    assert!(matches!(
        r.check(&k.public_key(), NOW),
        Err(SigError::BadSignature(_))
    ));
    let mut r = signed(&k);
    r.edit(
        "signature-input",
        &format!("expires={}", NOW + 60),
        &format!("expires={}", NOW + 61),
    );
    assert!(matches!(
        r.check(&k.public_key(), NOW),
        Err(SigError::BadSignature(_))
    ));
}

#[test]
fn unsigned_and_malformed_headers() {
    let k = key();
    let mut r = signed(&k);
    r.headers.retain(|(n, _)| n != "signature-input");
    assert_eq!(r.parse().unwrap_err(), SigError::NoSignatureInput);
    assert_eq!(
        r.parse().unwrap_err().to_string(),
        "the request is not signed (no Signature-Input header)"
    );
    let mut r = signed(&k);
    r.headers.retain(|(n, _)| n != "signature");
    assert_eq!(r.parse().unwrap_err(), SigError::NoSignature);
    let mut r = signed(&k);
    r.set("signature-input", "sig1=(\"@method\"");
    let e = r.parse().unwrap_err();
    assert!(matches!(e, SigError::MalformedInput(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("the Signature-Input header is malformed: ")
    );
    let mut r = signed(&k);
    r.set("signature", "sig1=:not base64 at all");
    assert!(matches!(r.parse(), Err(SigError::MalformedSignature(_))));
    let mut r = signed(&k);
    r.set("signature", "other=:AAAA:");
    assert!(matches!(r.parse(), Err(SigError::MalformedSignature(_))));
    let mut r = signed(&k);
    r.set("signature", "sig1=\"text\"");
    assert!(matches!(r.parse(), Err(SigError::MalformedSignature(_))));
    let mut r = signed(&k);
    r.edit(
        "signature-input",
        "tag=\"rose-ash-peer\"",
        "tag=\"someone-else\"",
    );
    assert_eq!(r.parse().unwrap_err(), SigError::NoPeerSignature);
    let mut r = signed(&k);
    r.edit("signature-input", ";tag=\"rose-ash-peer\"", "");
    assert_eq!(r.parse().unwrap_err(), SigError::NoPeerSignature);
}

#[test]
fn other_labels_are_ignored_and_headers_may_repeat() {
    let k = key();
    let p = k.public_key();
    // Another signature first, and under another label our own.
    let mut r = signed(&k);
    let input = r.header("signature-input").replacen("sig1=", "peer=", 1);
    let sig = r.header("signature").replacen("sig1=", "peer=", 1);
    r.set(
        "signature-input",
        &format!("proxy=(\"@method\");created=1;tag=\"proxy\", {input}"),
    );
    r.set("signature", &format!("proxy=:AAAA:, {sig}"));
    let c = r.check(&p, NOW).unwrap();
    assert_eq!(c.label, "peer");

    // The same spread over repeated header lines.
    let mut r = signed(&k);
    let input = r.header("signature-input");
    let sig = r.header("signature");
    r.headers
        .retain(|(n, _)| n != "signature-input" && n != "signature");
    r.headers.push((
        "signature-input".into(),
        "proxy=(\"@method\");created=1".into(),
    ));
    r.headers.push(("signature".into(), "proxy=:AAAA:".into()));
    r.headers.push(("signature-input".into(), input));
    r.headers.push(("signature".into(), sig));
    r.check(&p, NOW).unwrap();

    // A second member tagged for peers after ours is not looked at.
    let mut r = signed(&k);
    let input = r.header("signature-input");
    r.set(
        "signature-input",
        &format!("{input}, late=(\"@method\");alg=\"hmac-sha256\";tag=\"rose-ash-peer\""),
    );
    r.check(&p, NOW).unwrap();
}

/// A request signed by hand from the RFC's rules rather than by `sign`:
/// a sha-512 digest, another component order, extra whitespace in the
/// header; `parse` must rebuild the same base and `verify` accept it.
#[test]
fn independently_built_request_verifies() {
    use sha2::Digest;
    let k = key();
    let body = b"hello".to_vec();
    let digest = format!(
        "sha-512=:{}:",
        Base64::encode_string(&sha2::Sha512::digest(&body))
    );
    let params = format!(
        "(\"content-digest\" \"@query\" \"@path\" \"@authority\" \"@method\");keyid=\"{SENDER}\";created={NOW};expires={};nonce=\"abc\";tag=\"rose-ash-peer\";alg=\"ed25519\"",
        NOW + 30
    );
    let base = format!(
        "\"content-digest\": {digest}\n\"@query\": ?a=b\n\"@path\": /inbox\n\"@authority\": shop.example\n\"@method\": PUT\n\"@signature-params\": {params}"
    );
    let sig = sign_base(&k, &base);
    let headers = vec![
        ("content-digest".to_owned(), digest),
        (
            "signature-input".to_owned(),
            format!("mine={}", params.replace(';', "; ").replace('(', "(  ")),
        ),
        (
            "signature".to_owned(),
            format!("mine=:{}:", Base64::encode_string(&sig)),
        ),
    ];
    let inc = Incoming {
        method: "PUT",
        authority: "SHOP.example",
        path: "/inbox",
        query: "a=b",
        headers: &headers,
        body: &body,
    };
    let c = parse(&inc).unwrap();
    assert_eq!(c.base(), base);
    verify(&c, &k.public_key(), NOW, SKEW, MAX_LIFE).unwrap();
}

#[test]
fn sign_never_fails_on_odd_input() {
    let k = key();
    let out = Outgoing {
        method: "POST",
        authority: "a",
        path: "/",
        query: "",
        body: b"",
        key_id: "http://bad\u{e9}\n",
        created: i64::MAX,
        expires: i64::MIN,
        nonce: "\"quoted\"",
    };
    let h = sign(&k, &out);
    assert_eq!(h.len(), 3);
    assert!(httpsig::try_sign(&k, &out).is_err());
    let headers: Vec<(String, String)> = h.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
    let inc = Incoming {
        method: "POST",
        authority: "a",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let c = parse(&inc).unwrap();
    assert_eq!(c.key_id, "http://bad??");
    assert_eq!(c.nonce, "\"quoted\"");
    assert!(verify(&c, &k.public_key(), NOW, SKEW, MAX_LIFE).is_err());
}

// ---- no header text makes parse panic ----

fn valid_headers() -> Vec<(String, String)> {
    signed(&key()).headers
}

fn mutate(s: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut b = s.as_bytes().to_vec();
    for &(pos, op, byte) in edits {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let i = pos % b.len();
        match op % 3 {
            0 => b[i] = byte,
            1 => {
                b.remove(i);
            }
            _ => b.insert(i, byte),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn check_no_panic(headers: Vec<(String, String)>, body: &[u8]) {
    let inc = Incoming {
        method: "POST",
        authority: "127.0.0.1:8083",
        path: "/order",
        query: "event=concert%20night&x=1",
        headers: &headers,
        body,
    };
    if let Ok(c) = parse(&inc) {
        let _ = verify(&c, &key().public_key(), NOW, SKEW, MAX_LIFE);
        let _ = c.to_owned();
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_headers(
        input in ".{0,200}",
        sig in ".{0,200}",
        digest in ".{0,120}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        check_no_panic(
            vec![
                ("signature-input".into(), input),
                ("signature".into(), sig),
                ("content-digest".into(), digest),
            ],
            &body,
        );
    }

    #[test]
    fn parse_never_panics_on_random_bytes(
        raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..160), 3),
    ) {
        let names = ["signature-input", "signature", "content-digest"];
        let headers = names
            .iter()
            .zip(raw)
            .map(|(n, v)| ((*n).to_owned(), String::from_utf8_lossy(&v).into_owned()))
            .collect();
        check_no_panic(headers, b"");
    }

    #[test]
    fn parse_never_panics_on_mutated_valid_headers(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0x20u8..0x7f), 1..8),
    ) {
        let mut headers = valid_headers();
        let body = signed(&key()).body;
        headers[which].1 = mutate(&headers[which].1, &edits);
        check_no_panic(headers, &body);
    }
}
