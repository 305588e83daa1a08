//! Data: the canonical form, hashes and CIDs, and JSON.

use std::fmt::Write as _;

use sha3::{Digest, Sha3_256};

use super::{arg, expect_str};
use crate::dict::{Dict, Key};
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::printer;
use crate::reader;
use crate::value::{List, Value};

/// Multicodec `raw`.
const CODEC_RAW: u64 = 0x55;
/// Multihash code of sha3-256.
const MH_SHA3_256: u64 = 0x16;

pub(crate) fn install(i: &mut Interp) {
    i.define_native("serialize", 1, Some(1), |_, a| {
        Ok(Value::from(canonical("serialize", arg(a, 0))?))
    });
    i.define_native("read-string", 1, Some(1), |_, a| {
        let s = expect_str("read-string", arg(a, 0))?;
        reader::read_one(s, "<read-string>").map_err(|e| {
            EvalError::new(
                ErrorKind::Read,
                format!(
                    "read-string: {} at {}:{}",
                    e.kind, e.location.line, e.location.col
                ),
            )
        })
    });
    i.define_native("sha3-256", 1, Some(1), |_, a| {
        Ok(Value::from(sha3_hex(arg(a, 0))?))
    });
    i.define_native("cid", 1, Some(1), |_, a| Ok(Value::from(cid(arg(a, 0))?)));
    i.define_native("json-encode", 1, Some(1), |_, a| {
        let mut out = String::new();
        json_encode(arg(a, 0), &mut out)?;
        Ok(Value::from(out))
    });
    i.define_native("json-decode", 1, Some(1), |_, a| {
        let s = expect_str("json-decode", arg(a, 0))?;
        let j: serde_json::Value = serde_json::from_str(s)
            .map_err(|e| EvalError::new(ErrorKind::Value, format!("json-decode: {e}")))?;
        Ok(from_json(j))
    })
}

/// The canonical form, with the printer's error as a value error.
fn canonical(name: &str, v: &Value) -> Result<String> {
    printer::serialize(v).map_err(|e| EvalError::new(ErrorKind::Value, format!("{name}: {e}")))
}

/// `(sha3-256 v)`: the lowercase hex SHA3-256 digest. A string is hashed as
/// its UTF-8 bytes (so `(sha3-256 "abc")` matches any sha3 tool); any other
/// value is hashed as the UTF-8 bytes of its canonical serialization.
/// (`cid`, by contrast, always hashes the canonical form.)
fn sha3_hex(v: &Value) -> Result<String> {
    let digest = match v {
        Value::Str(s) => Sha3_256::digest(s.as_bytes()),
        other => Sha3_256::digest(canonical("sha3-256", other)?.as_bytes()),
    };
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    Ok(hex)
}

/// `(cid v)`: CIDv1, raw codec, sha3-256 multihash over the UTF-8 bytes of
/// the canonical form of `v` (always the canonical form: `(cid "a")` hashes
/// the three bytes `"a"` with their quotes), in multibase base32-lower.
pub(crate) fn cid(v: &Value) -> Result<String> {
    Ok(cid_of_text(&canonical("cid", v)?))
}

/// The CID of text already in canonical form: what `(cid v)` gives for the
/// value `text` reads as. For hosts that keep canonical text (the store).
pub fn cid_of_text(text: &str) -> String {
    let digest = Sha3_256::digest(text.as_bytes());
    // A 32-byte digest always fits a 64-byte multihash.
    match multihash::Multihash::<64>::wrap(MH_SHA3_256, &digest) {
        Ok(mh) => cid::Cid::new_v1(CODEC_RAW, mh).to_string(),
        Err(_) => String::new(),
    }
}

fn json_error(msg: String) -> EvalError {
    EvalError::new(ErrorKind::Value, format!("json-encode: {msg}"))
}

fn json_string(s: &str, out: &mut String) -> Result<()> {
    let quoted = serde_json::to_string(s).map_err(|e| json_error(e.to_string()))?;
    out.push_str(&quoted);
    Ok(())
}

/// Compact JSON: dict keys in canonical order (keyword keys without the
/// colon, number keys as their canonical text), nil as null, keywords and
/// symbols as strings.
pub fn json_encode(v: &Value, out: &mut String) -> Result<()> {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || json_encode_inner(v, out))
}

fn json_encode_inner(v: &Value, out: &mut String) -> Result<()> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => match printer::float_text(*f) {
            Some(t) => out.push_str(&t),
            None => {
                return Err(json_error(format!(
                    "{f} has no JSON form (NaN and infinities are not JSON)"
                )));
            }
        },
        Value::Str(s) => json_string(s, out)?,
        Value::Keyword(s) | Value::Symbol(s) => json_string(s.as_str(), out)?,
        Value::List(l) => {
            out.push('[');
            for (n, item) in l.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                json_encode(item, out)?;
            }
            out.push(']');
        }
        Value::Dict(d) => {
            out.push('{');
            // Two SX keys can name one JSON key (`:a` and `"a"`, `1` and
            // `"1"`); JSON with a repeated key means different things to
            // different readers, so that is an error.
            // Only keys of different kinds can collide, so only such dicts
            // pay for the check.
            let kinds = d.iter().fold(0u8, |acc, (k, _)| {
                acc | match k {
                    Value::Str(_) => 1,
                    Value::Keyword(_) => 2,
                    _ => 4,
                }
            });
            let mut seen: Option<std::collections::HashSet<String>> =
                (kinds.count_ones() > 1).then(std::collections::HashSet::new);
            for (n, (k, item)) in d.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let name: std::borrow::Cow<'_, str> = match k {
                    Value::Str(s) => std::borrow::Cow::Borrowed(&**s),
                    Value::Keyword(s) => std::borrow::Cow::Borrowed(s.as_str()),
                    other => std::borrow::Cow::Owned(printer::number_text(other)),
                };
                if let Some(seen) = seen.as_mut() {
                    if !seen.insert(name.to_string()) {
                        return Err(json_error(format!(
                            "two keys of the dict both become the JSON key {name:?}"
                        )));
                    }
                }
                json_string(&name, out)?;
                out.push(':');
                json_encode(item, out)?;
            }
            out.push('}');
        }
        Value::Cell(c) => json_encode(&c.borrow(), out)?,
        other => {
            return Err(json_error(format!(
                "cannot encode a {} as JSON",
                other.type_of().as_str()
            )));
        }
    }
    Ok(())
}

/// JSON to SX: objects become dicts with string keys, arrays lists,
/// integers that fit in i64 integers, other numbers floats, null nil.
/// (serde_json limits nesting to 128 levels, so this recursion is bounded.)
pub fn from_json(j: serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::List(items.into_iter().map(from_json).collect::<List>())
        }
        serde_json::Value::Object(map) => {
            let mut d = Dict::new();
            for (k, v) in map {
                if let Ok(key) = Key::new(Value::from(k)) {
                    d.insert(key, from_json(v));
                }
            }
            Value::Dict(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::prims::test_support::{err, ev};

    #[test]
    fn serialize_and_read() {
        assert_eq!(
            ev(r#"(serialize {:b 2 :a (list 1 2.0 "x")})"#),
            r#""{:a (1 2.0 \"x\") :b 2}""#
        );
        assert!(err("(serialize (fn (x) x))"));
        assert!(err("(serialize (/ 0.0 0.0))"));
        assert_eq!(
            ev(r#"(read-string "(a :b \"c\" 1.5)")"#),
            r#"(a :b "c" 1.5)"#
        );
        assert_eq!(
            ev(r#"(= (read-string (serialize {:a (list 1 "x")})) {:a (list 1 "x")})"#),
            "true"
        );
        let e = ev(r#"(read-string "(a b")"#);
        assert!(e.contains("read-string") && e.contains("1:"), "{e}");
        assert_eq!(
            ev(r#"(try (read-string "(a") (catch e (get e :kind)))"#),
            ":read"
        );
        assert!(err(r#"(read-string "a b")"#));
    }

    // Vectors computed independently with Python's hashlib/base64:
    //   d = hashlib.sha3_256(text).digest()
    //   'b' + base32(bytes([1, 0x55, 0x16, 0x20]) + d).lower().rstrip('=')
    #[test]
    fn cids() {
        assert_eq!(
            ev(r#"(cid "a")"#),
            r#""bafkrmig6lmjkvgwwo3uznaiq5ayfvnp6uror453l47nj2zibnd64kvmxvm""#
        );
        assert_eq!(
            ev("(cid '(1 2 3))"),
            r#""bafkrmiadarkyo7nf6mc2lzm62xejywuqfbn53prijh2kp5rlrjf7vglwzm""#
        );
        assert_eq!(
            ev(r#"(cid {:b "x" :a 1})"#),
            r#""bafkrmibbx3ztthbt2n6x3zf3rpsinwolvzecnyjasflnwfb5wvj77uqayq""#
        );
        assert_eq!(
            ev("(cid nil)"),
            r#""bafkrmifm2nstq5n3ffgqqbnjfyvky4cgcungwvw3l5rc7a4tzqsylhobve""#
        );
        assert!(err("(cid (fn (x) x))"));
    }

    #[test]
    fn sha3() {
        assert_eq!(
            ev(r#"(sha3-256 "a")"#),
            r#""80084bf2fba02475726feb2cab2d8215eab14bc6bdd8bfb2c8151257032ecd8b""#
        );
        assert_eq!(
            ev(r#"(sha3-256 "")"#),
            r#""a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a""#
        );
        assert_eq!(
            ev(r#"(sha3-256 "日本")"#),
            r#""9d98c2f85a2b83a555a9afc61cb0004db969a8b899e427acf3ac0a276b7f2998""#
        );
        // Non-strings hash their canonical form.
        assert_eq!(
            ev("(sha3-256 '(1 2 3))"),
            r#""030455877da5f305a5e59ed5c89c5a90285bddbe2849f4a7f62b8a4bfa9976cb""#
        );
    }

    #[test]
    fn json() {
        assert_eq!(
            ev(r#"(json-encode {:b (list 1 2.5 nil true) :a "x\"y\n" "c" :kw 3 'sym})"#),
            r#""{\"c\":\"kw\",\"3\":\"sym\",\"a\":\"x\\\"y\\n\",\"b\":[1,2.5,null,true]}""#
        );
        assert_eq!(ev("(json-encode 1.0)"), r#""1.0""#);
        assert_eq!(ev("(json-encode '())"), r#""[]""#);
        assert_eq!(ev("(json-encode {})"), r#""{}""#);
        assert!(err("(json-encode (/ 1.0 0.0))"));
        assert!(err("(json-encode (list (fn (x) x)))"));
        assert!(err("(json-encode (div \"x\"))"));
        assert_eq!(
            ev(
                r#"(json-decode "{\"b\": [1, 2.5, null, true, 1e2, 18446744073709551615], \"a\": {\"x\": \"y\"}}")"#
            ),
            r#"{"a" {"x" "y"} "b" (1 2.5 nil true 100.0 18446744073709552000.0)}"#
        );
        assert_eq!(ev(r#"(get (json-decode "{\"k\": 1}") "k")"#), "1");
        let e = ev(r#"(json-decode "{\"a\": ")"#);
        assert!(e.contains("json-decode") && e.contains("line 1"), "{e}");
        assert!(err(r#"(json-decode "[1,]")"#));
    }
}
