//! Signed requests between peers: HTTP Message Signatures (RFC 9421)
//! with Ed25519, over a Content-Digest of the body (RFC 9530).
//!
//! A peer signs `"@method" "@authority" "@path" "@query"
//! "content-digest"` with the parameters `created`, `expires`, `keyid`
//! (its base URL), `nonce`, `alg="ed25519"` and `tag="rose-ash-peer"`,
//! under the label `sig1`. The receiver first [`parse`]s the request —
//! the form of the signature, its covered components and parameters, and
//! the body against its digest — which gives the [`Claimed`] key id; it
//! looks up that peer's [`PublicKey`] and then [`verify`]s the time window
//! and the signature. Replays are the caller's to refuse, with the nonce
//! (see [`crate::peers::remember_nonce`]).
//!
//! Nothing here reads a clock or a socket: the caller passes the time.

use std::fmt;

use base64ct::{Base64, Encoding};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sfv::{
    BareItem, DictSerializer, Dictionary, InnerList, Integer, KeyRef, ListEntry, Parser, StringRef,
    Version, key_ref, string_ref,
};
use sha2::{Digest, Sha256, Sha512};

/// The label this crate signs under.
pub const LABEL: &str = "sig1";
/// The `tag` parameter that marks a peer signature.
pub const TAG: &str = "rose-ash-peer";
/// The only algorithm accepted.
pub const ALG: &str = "ed25519";
/// The covered components, in the order they are signed.
pub const COMPONENTS: [&str; 5] = ["@method", "@authority", "@path", "@query", "content-digest"];

const K_LABEL: &KeyRef = key_ref("sig1");
const K_CREATED: &KeyRef = key_ref("created");
const K_EXPIRES: &KeyRef = key_ref("expires");
const K_KEYID: &KeyRef = key_ref("keyid");
const K_NONCE: &KeyRef = key_ref("nonce");
const K_ALG: &KeyRef = key_ref("alg");
const K_TAG: &KeyRef = key_ref("tag");
const K_SHA256: &KeyRef = key_ref("sha-256");
const K_SHA512: &KeyRef = key_ref("sha-512");

/// Why a signature, a key or a signed request is refused. The messages
/// are fit for the body of a 401 response: they name what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("the request is not signed (no Signature-Input header)")]
    NoSignatureInput,
    #[error("the request is not signed (no Signature header)")]
    NoSignature,
    #[error("the Signature-Input header is malformed: {0}")]
    MalformedInput(String),
    #[error("the Signature header is malformed: {0}")]
    MalformedSignature(String),
    #[error("the Signature-Input header has no signature tagged \"rose-ash-peer\"")]
    NoPeerSignature,
    #[error("the signature does not cover {0}")]
    NotCovered(&'static str),
    #[error("the signature covers {0}, which a peer signature does not cover")]
    UnexpectedComponent(String),
    #[error("the signature has no {0} parameter")]
    MissingParam(&'static str),
    #[error("the signature's {name} parameter is malformed: {why}")]
    BadParam { name: &'static str, why: String },
    #[error("the signature algorithm is {0:?}; only \"ed25519\" is accepted")]
    WrongAlg(String),
    #[error("the request has no Content-Digest header")]
    NoDigest,
    #[error("the Content-Digest header is malformed: {0}")]
    MalformedDigest(String),
    #[error("the Content-Digest header has no sha-256 or sha-512 digest")]
    UnsupportedDigest,
    #[error("the body does not match its Content-Digest")]
    DigestMismatch,
    #[error("the signature expired at {expires} (it is now {now})")]
    Expired { expires: i64, now: i64 },
    #[error("the signature was created in the future (at {created}; it is now {now})")]
    CreatedInFuture { created: i64, now: i64 },
    #[error("the signature expires ({expires}) before it was created ({created})")]
    ExpiresBeforeCreated { created: i64, expires: i64 },
    #[error("the signature lives {lifetime} seconds; at most {max} are accepted")]
    TooLong { lifetime: i64, max: i64 },
    #[error("the signature is not valid for key {0}")]
    BadSignature(String),
    #[error("the key is malformed: {0}")]
    BadKey(String),
    #[error("no OS randomness: {0}")]
    NoRandomness(String),
}

/// This peer's Ed25519 signing key. Its `Debug` shows only the public
/// half.
#[derive(Clone)]
pub struct PeerKey(SigningKey);

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PeerKey").field(&self.public_key()).finish()
    }
}

impl PeerKey {
    /// A fresh key from 32 bytes of OS randomness.
    pub fn generate() -> Result<PeerKey, SigError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| SigError::NoRandomness(e.to_string()))?;
        let key = PeerKey(SigningKey::from_bytes(&secret));
        secret.fill(0);
        Ok(key)
    }

    /// The key whose 32 secret bytes are `s` in standard base64.
    pub fn from_secret_b64(s: &str) -> Result<PeerKey, SigError> {
        let bytes = Base64::decode_vec(s.trim())
            .map_err(|_| SigError::BadKey("the secret key is not base64".into()))?;
        let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SigError::BadKey(format!("the secret key is {} bytes, not 32", bytes.len()))
        })?;
        Ok(PeerKey(SigningKey::from_bytes(&secret)))
    }

    /// The 32 secret bytes in standard base64.
    pub fn secret_b64(&self) -> String {
        Base64::encode_string(&self.0.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

/// A peer's Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key whose 32 bytes are `s` in standard base64.
    pub fn from_b64(s: &str) -> Result<PublicKey, SigError> {
        let bytes = Base64::decode_vec(s.trim())
            .map_err(|_| SigError::BadKey("the public key is not base64".into()))?;
        let raw: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SigError::BadKey(format!("the public key is {} bytes, not 32", bytes.len()))
        })?;
        VerifyingKey::from_bytes(&raw)
            .map(PublicKey)
            .map_err(|_| SigError::BadKey("the public key is not an Ed25519 point".into()))
    }

    /// The 32 bytes of the key in standard base64.
    pub fn to_b64(&self) -> String {
        Base64::encode_string(self.0.as_bytes())
    }
}

/// What the sender signs.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// `POST`; signed uppercase.
    pub method: &'a str,
    /// `host[:port]` of the target URL; signed lowercase.
    pub authority: &'a str,
    /// The path as sent, percent-encoded (`/` when empty).
    pub path: &'a str,
    /// The query without `?`; `""` when there is none.
    pub query: &'a str,
    pub body: &'a [u8],
    /// The sender's base URL, e.g. `http://127.0.0.1:8082`.
    pub key_id: &'a str,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds (typically `created + 60`).
    pub expires: i64,
    pub nonce: &'a str,
}

/// The `Content-Digest` value of `body`: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", Base64::encode_string(&Sha256::digest(body)))
}

/// The headers that sign `req`: `content-digest`, `signature-input`,
/// `signature`, in that order.
///
/// A key id or nonce an HTTP structured-field string cannot carry (a
/// character outside printable ASCII) is signed with `?` in place of each
/// such character, and times beyond 15 digits are clamped: the receiver
/// then refuses the request (unknown key, bad time) instead of this
/// function failing. [`try_sign`] refuses such input instead.
pub fn sign(key: &PeerKey, req: &Outgoing<'_>) -> Vec<(&'static str, String)> {
    let key_id = printable(req.key_id);
    let nonce = printable(req.nonce);
    let req = Outgoing {
        key_id: &key_id,
        nonce: &nonce,
        created: clamp(req.created),
        expires: clamp(req.expires),
        ..*req
    };
    // Cannot fail: the values were made acceptable above.
    try_sign(key, &req).unwrap_or_default()
}

/// [`sign`], refusing a key id or nonce that is not printable ASCII and
/// times beyond 15 digits.
pub fn try_sign(
    key: &PeerKey,
    req: &Outgoing<'_>,
) -> Result<Vec<(&'static str, String)>, SigError> {
    let digest = content_digest(req.body);
    let method = req.method.to_ascii_uppercase();
    let authority = req.authority.to_ascii_lowercase();
    let path = if req.path.is_empty() { "/" } else { req.path };
    let query = format!("?{}", req.query);
    let values = [
        method.as_str(),
        authority.as_str(),
        path,
        query.as_str(),
        digest.as_str(),
    ];

    let int = |name: &'static str, v: i64| {
        Integer::try_from(v).map_err(|e| SigError::BadParam {
            name,
            why: e.to_string(),
        })
    };
    let created = int("created", req.created)?;
    let expires = int("expires", req.expires)?;
    let key_id = StringRef::from_str(req.key_id).map_err(|e| SigError::BadParam {
        name: "keyid",
        why: e.to_string(),
    })?;
    let nonce = StringRef::from_str(req.nonce).map_err(|e| SigError::BadParam {
        name: "nonce",
        why: e.to_string(),
    })?;

    let mut ser = DictSerializer::new();
    {
        let mut list = ser.inner_list(K_LABEL);
        for c in COMPONENTS {
            list.bare_item(
                StringRef::from_str(c)
                    .map_err(|e| SigError::MalformedInput(format!("component {c}: {e}")))?,
            );
        }
        list.finish()
            .parameter(K_CREATED, created)
            .parameter(K_EXPIRES, expires)
            .parameter(K_KEYID, key_id)
            .parameter(K_NONCE, nonce)
            .parameter(K_ALG, string_ref(ALG))
            .parameter(K_TAG, string_ref(TAG));
    }
    let input = ser
        .finish()
        .map_err(|e| SigError::MalformedInput(e.to_string()))?;
    let params = input
        .strip_prefix("sig1=")
        .ok_or_else(|| SigError::MalformedInput("no sig1 member".into()))?;
    let components: Vec<(&str, &str)> = COMPONENTS.iter().copied().zip(values).collect();
    let base = signature_base(&components, params);
    let sig = sign_base(key, &base);
    let mut sig_ser = DictSerializer::new();
    sig_ser.bare_item(K_LABEL, sig.as_slice());
    let signature = sig_ser
        .finish()
        .map_err(|e| SigError::MalformedSignature(e.to_string()))?;
    Ok(vec![
        ("content-digest", digest),
        ("signature-input", input),
        ("signature", signature),
    ])
}

/// `s` with every character outside printable ASCII replaced by `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if matches!(c, ' '..='~') { c } else { '?' })
        .collect()
}

/// `v` within what a structured-field integer holds (15 digits).
fn clamp(v: i64) -> i64 {
    v.clamp(i64::from(Integer::MIN), i64::from(Integer::MAX))
}

/// The signature base of RFC 9421 §2.5: one `"name": value` line per
/// covered component, in order, then the `"@signature-params"` line with
/// `params_text` (the serialized inner list and its parameters), joined
/// by LF with no LF at the end.
pub fn signature_base(components: &[(&str, &str)], params_text: &str) -> String {
    let mut base = String::new();
    for (name, value) in components {
        base.push('"');
        base.push_str(name);
        base.push_str("\": ");
        base.push_str(value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params_text);
    base
}

/// The Ed25519 signature of a signature base.
pub fn sign_base(key: &PeerKey, base: &str) -> [u8; 64] {
    key.0.sign(base.as_bytes()).to_bytes()
}

/// Whether `signature` is `key`'s Ed25519 signature of `base` (strict
/// verification: no malleable or small-order forms).
pub fn verify_base(key: &PublicKey, base: &str, signature: &[u8]) -> bool {
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.0.verify_strict(base.as_bytes(), &sig).is_ok()
}

/// What the receiver saw.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The `Host` of the request, `host[:port]`.
    pub authority: &'a str,
    /// The path as received, percent-encoded.
    pub path: &'a str,
    /// The query without `?`; `""` when there is none.
    pub query: &'a str,
    /// Every header, names lowercase; a name may repeat.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// A signature as the request claims it: its form checked (the required
/// components and parameters present, the body matching its
/// Content-Digest) but neither its key nor its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Who claims to have signed: the peer's base URL.
    pub key_id: String,
    pub created: i64,
    pub expires: i64,
    pub nonce: String,
    /// The label it was found under.
    pub label: String,
    base: String,
    signature: Vec<u8>,
}

impl Claimed {
    /// The signature base rebuilt from the request.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// The combined value of every `name` header (RFC 9110 §5.3: joined by
/// `, `), or `None` when there is none.
fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case(name) {
            let v = v.trim_matches([' ', '\t']);
            match &mut out {
                Some(o) => {
                    o.push_str(", ");
                    o.push_str(v);
                }
                None => out = Some(v.to_owned()),
            }
        }
    }
    out
}

fn dictionary(text: &str) -> Result<Dictionary, sfv::Error> {
    Parser::new(text)
        .with_version(Version::Rfc8941)
        .parse_dictionary()
}

/// The inner list `list` as it appears after `label=` in
/// Signature-Input: the `@signature-params` value.
fn serialize_params(list: &InnerList) -> Result<String, SigError> {
    let mut ser = DictSerializer::new();
    {
        let mut l = ser.inner_list(K_LABEL);
        l.items(&list.items);
        l.finish().parameters(&list.params);
    }
    let text = ser
        .finish()
        .map_err(|e| SigError::MalformedInput(e.to_string()))?;
    text.strip_prefix("sig1=")
        .map(str::to_owned)
        .ok_or_else(|| SigError::MalformedInput("it cannot be serialized".into()))
}

fn param_string(list: &InnerList, name: &'static str) -> Result<String, SigError> {
    match list.params.get(name) {
        None => Err(SigError::MissingParam(name)),
        Some(BareItem::String(s)) => Ok(s.as_str().to_owned()),
        Some(_) => Err(SigError::BadParam {
            name,
            why: "not a string".into(),
        }),
    }
}

fn param_int(list: &InnerList, name: &'static str) -> Result<i64, SigError> {
    match list.params.get(name) {
        None => Err(SigError::MissingParam(name)),
        Some(BareItem::Integer(i)) => Ok(i64::from(*i)),
        Some(_) => Err(SigError::BadParam {
            name,
            why: "not an integer".into(),
        }),
    }
}

/// Checks the Content-Digest header against the body: it must hold a
/// sha-256 or sha-512 digest, and every one of those it holds must match.
fn check_digest(value: &str, body: &[u8]) -> Result<(), SigError> {
    let dict = dictionary(value).map_err(|e| SigError::MalformedDigest(e.to_string()))?;
    let mut checked = false;
    for (name, want) in [
        (K_SHA256, Sha256::digest(body).to_vec()),
        (K_SHA512, Sha512::digest(body).to_vec()),
    ] {
        match dict.get(name) {
            None => {}
            Some(ListEntry::Item(item)) => match item.bare_item.as_byte_sequence() {
                Some(got) if crate::crypto::ct_eq(got, &want) => checked = true,
                Some(_) => return Err(SigError::DigestMismatch),
                None => {
                    return Err(SigError::MalformedDigest(format!(
                        "{} is not a byte sequence",
                        name.as_str()
                    )));
                }
            },
            Some(ListEntry::InnerList(_)) => {
                return Err(SigError::MalformedDigest(format!(
                    "{} is a list, not a byte sequence",
                    name.as_str()
                )));
            }
        }
    }
    if checked {
        Ok(())
    } else {
        Err(SigError::UnsupportedDigest)
    }
}

/// Reads the peer signature of a request: the first Signature-Input
/// member tagged `rose-ash-peer`, its signature, its covered components
/// (exactly [`COMPONENTS`]) and parameters (`created`, `expires`, `keyid`,
/// `nonce`, `alg="ed25519"`), and the body against its Content-Digest.
/// The key and the time are [`verify`]'s.
pub fn parse(req: &Incoming<'_>) -> Result<Claimed, SigError> {
    let input_text = header(req.headers, "signature-input").ok_or(SigError::NoSignatureInput)?;
    let inputs = dictionary(&input_text).map_err(|e| SigError::MalformedInput(e.to_string()))?;
    let (label, list) = inputs
        .iter()
        .find_map(|(label, entry)| match entry {
            ListEntry::InnerList(list)
                if matches!(list.params.get(K_TAG), Some(BareItem::String(t)) if t.as_str() == TAG) =>
            {
                Some((label.as_str().to_owned(), list))
            }
            _ => None,
        })
        .ok_or(SigError::NoPeerSignature)?;

    let sig_text = header(req.headers, "signature").ok_or(SigError::NoSignature)?;
    let sigs = dictionary(&sig_text).map_err(|e| SigError::MalformedSignature(e.to_string()))?;
    let signature = match sigs.get(label.as_str()) {
        Some(ListEntry::Item(item)) => item
            .bare_item
            .as_byte_sequence()
            .ok_or_else(|| SigError::MalformedSignature(format!("{label} is not a byte sequence")))?
            .to_vec(),
        Some(ListEntry::InnerList(_)) => {
            return Err(SigError::MalformedSignature(format!(
                "{label} is a list, not a byte sequence"
            )));
        }
        None => {
            return Err(SigError::MalformedSignature(format!(
                "it has no signature labelled {label}"
            )));
        }
    };
    if signature.len() != 64 {
        return Err(SigError::MalformedSignature(format!(
            "the {label} signature is {} bytes; an Ed25519 signature is 64",
            signature.len()
        )));
    }

    let alg = param_string(list, "alg")?;
    if alg != ALG {
        return Err(SigError::WrongAlg(alg));
    }
    let created = param_int(list, "created")?;
    let expires = param_int(list, "expires")?;
    let key_id = param_string(list, "keyid")?;
    let nonce = param_string(list, "nonce")?;

    // The covered components: exactly COMPONENTS, each once, unparameterised.
    let mut covered: Vec<&str> = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let Some(name) = item.bare_item.as_string() else {
            return Err(SigError::MalformedInput(
                "a covered component is not a string".into(),
            ));
        };
        let name = name.as_str();
        if !item.params.is_empty() {
            return Err(SigError::UnexpectedComponent(format!(
                "{name} with parameters"
            )));
        }
        if covered.contains(&name) {
            return Err(SigError::MalformedInput(format!("{name} is covered twice")));
        }
        covered.push(name);
    }
    for c in COMPONENTS {
        if !covered.contains(&c) {
            return Err(SigError::NotCovered(c));
        }
    }
    if let Some(other) = covered.iter().find(|c| !COMPONENTS.contains(c)) {
        return Err(SigError::UnexpectedComponent((*other).to_owned()));
    }

    let digest = header(req.headers, "content-digest").ok_or(SigError::NoDigest)?;
    check_digest(&digest, req.body)?;

    let method = req.method.to_ascii_uppercase();
    let authority = req.authority.to_ascii_lowercase();
    let path = if req.path.is_empty() { "/" } else { req.path };
    let query = format!("?{}", req.query);
    let value = |name: &str| -> &str {
        match name {
            "@method" => &method,
            "@authority" => &authority,
            "@path" => path,
            "@query" => &query,
            _ => &digest,
        }
    };
    let components: Vec<(&str, &str)> = covered.iter().map(|c| (*c, value(c))).collect();
    let base = signature_base(&components, &serialize_params(list)?);
    Ok(Claimed {
        key_id,
        created,
        expires,
        nonce,
        label,
        base,
        signature,
    })
}

/// Checks a claimed signature's time window and its signature by `key`
/// at `now` (unix seconds): created no more than `skew` seconds ahead,
/// not expired, and living at most `max_lifetime` seconds.
pub fn verify(
    claimed: &Claimed,
    key: &PublicKey,
    now: i64,
    skew: i64,
    max_lifetime: i64,
) -> Result<(), SigError> {
    let (created, expires) = (claimed.created, claimed.expires);
    if created > now.saturating_add(skew) {
        return Err(SigError::CreatedInFuture { created, now });
    }
    if expires < created {
        return Err(SigError::ExpiresBeforeCreated { created, expires });
    }
    if expires <= now {
        return Err(SigError::Expired { expires, now });
    }
    let lifetime = expires.saturating_sub(created);
    if lifetime > max_lifetime {
        return Err(SigError::TooLong {
            lifetime,
            max: max_lifetime,
        });
    }
    if verify_base(key, &claimed.base, &claimed.signature) {
        Ok(())
    } else {
        Err(SigError::BadSignature(claimed.key_id.clone()))
    }
}
