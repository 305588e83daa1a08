//! Strings, symbols and keywords. (`str` itself lives in `core`.)
//!
//! Strings count and index Unicode scalar values (chars), never bytes:
//! `(len "日本語😀")` is 4 and `(substring s 1 2)` is the second character.

use super::{arg, expect_index, expect_int, expect_list, expect_str, expect_symbol_name};
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::printer;
use crate::symbol::Symbol;
use crate::value::{List, Value};

/// The largest string (in bytes) `string-repeat` and `pad-left`/`pad-right`
/// will build: refusing beats an allocation failure aborting the process.
pub(crate) const MAX_BUILT_STRING_BYTES: usize = 1 << 28;

pub(crate) fn install(i: &mut Interp) {
    i.define_native("len", 1, Some(1), |_, a| len("len", arg(a, 0)));
    i.define_native("count", 1, Some(1), |_, a| len("count", arg(a, 0)));

    i.define_native("upper", 1, Some(1), |_, a| {
        Ok(Value::from(expect_str("upper", arg(a, 0))?.to_uppercase()))
    });
    i.define_native("lower", 1, Some(1), |_, a| {
        Ok(Value::from(expect_str("lower", arg(a, 0))?.to_lowercase()))
    });
    i.define_native("trim", 1, Some(1), |_, a| {
        trimmed("trim", arg(a, 0), str::trim)
    });
    i.define_native("triml", 1, Some(1), |_, a| {
        trimmed("triml", arg(a, 0), str::trim_start)
    });
    i.define_native("trimr", 1, Some(1), |_, a| {
        trimmed("trimr", arg(a, 0), str::trim_end)
    });

    i.define_native("split", 2, Some(2), |_, a| split(arg(a, 0), arg(a, 1)));
    i.define_native("join", 1, Some(2), |i, a| join(i, arg(a, 0), a.get(1)));
    i.define_native("replace", 3, Some(3), |_, a| {
        replace(arg(a, 0), arg(a, 1), arg(a, 2))
    });
    i.define_native("starts-with?", 2, Some(2), |_, a| {
        let s = expect_str("starts-with?", arg(a, 0))?;
        let p = expect_str("starts-with?", arg(a, 1))?;
        Ok(Value::Bool(s.starts_with(&**p)))
    });
    i.define_native("ends-with?", 2, Some(2), |_, a| {
        let s = expect_str("ends-with?", arg(a, 0))?;
        let p = expect_str("ends-with?", arg(a, 1))?;
        Ok(Value::Bool(s.ends_with(&**p)))
    });
    i.define_native("contains?", 2, Some(2), |_, a| {
        contains(arg(a, 0), arg(a, 1))
    });
    i.define_native("substring", 2, Some(3), |_, a| {
        substring(arg(a, 0), arg(a, 1), a.get(2))
    });
    i.define_native("char-at", 2, Some(2), |_, a| {
        char_at("char-at", arg(a, 0), arg(a, 1))
    });
    i.define_native("index-of", 2, Some(2), |_, a| {
        index_of("index-of", arg(a, 0), arg(a, 1), false)
    });
    i.define_native("last-index-of", 2, Some(2), |_, a| {
        index_of("last-index-of", arg(a, 0), arg(a, 1), true)
    });

    i.define_native("parse-int", 1, Some(2), |_, a| {
        parse_int(arg(a, 0), a.get(1))
    });
    i.define_native("parse-float", 1, Some(1), |_, a| parse_float(arg(a, 0)));

    i.define_native("chars", 1, Some(1), |_, a| {
        let s = expect_str("chars", arg(a, 0))?;
        Ok(Value::List(s.chars().map(char_value).collect()))
    });
    i.define_native("string-repeat", 2, Some(2), |interp, a| {
        let s = expect_str("string-repeat", arg(a, 0))?;
        let n = expect_index("string-repeat", arg(a, 1))?;
        check_size("string-repeat", s.len().checked_mul(n))?;
        interp.ensure_heap(s.len().saturating_mul(n))?;
        Ok(Value::from(s.repeat(n)))
    });
    i.define_native("pad-left", 2, Some(3), |_, a| pad("pad-left", a, true));
    i.define_native("pad-right", 2, Some(3), |_, a| pad("pad-right", a, false));

    i.define_native("symbol", 1, Some(1), |_, a| {
        let sym = name_of("symbol", arg(a, 0))?;
        check_readable(
            "symbol",
            sym.as_str(),
            |v| matches!(v, Value::Symbol(s) if *s == sym),
        )?;
        Ok(Value::Symbol(sym))
    });
    i.define_native("keyword", 1, Some(1), |_, a| {
        // (keyword ":a") is :a, as the reader would read it.
        let sym = match arg(a, 0) {
            Value::Str(s) if s.len() > 1 && s.starts_with(':') => Symbol::new(&s[1..]),
            other => name_of("keyword", other)?,
        };
        let text = format!(":{}", sym.as_str());
        check_readable(
            "keyword",
            &text,
            |v| matches!(v, Value::Keyword(k) if *k == sym),
        )?;
        Ok(Value::Keyword(sym))
    });
    i.define_native("name", 1, Some(1), |_, a| match arg(a, 0) {
        Value::Symbol(s) | Value::Keyword(s) => Ok(Value::str(s.as_str())),
        Value::Str(s) => Ok(Value::Str(s.clone())),
        other => Err(EvalError::type_error(
            "name",
            "a keyword, symbol or string",
            other,
        )),
    });
    i.define_native("char-code", 1, Some(1), |_, a| {
        let s = expect_str("char-code", arg(a, 0))?;
        match s.chars().next() {
            Some(c) => Ok(Value::Int(i64::from(u32::from(c)))),
            None => Err(EvalError::new(
                ErrorKind::Value,
                "char-code: expected a non-empty string, got \"\"",
            )),
        }
    });
    i.define_native("code-char", 1, Some(1), |_, a| {
        let n = expect_int("code-char", arg(a, 0))?;
        u32::try_from(n)
            .ok()
            .and_then(char::from_u32)
            .map(char_value)
            .ok_or_else(|| {
                EvalError::new(
                    ErrorKind::Value,
                    format!("code-char: {n} is not a Unicode scalar value (0..=0x10FFFF, excluding surrogates)"),
                )
            })
    });
}

/// A one-character string.
pub(crate) fn char_value(c: char) -> Value {
    let mut buf = [0u8; 4];
    Value::str(c.encode_utf8(&mut buf))
}

/// `(len x)`: characters of a string, items of a list, entries of a dict; 0 for nil.
fn len(name: &str, v: &Value) -> Result<Value> {
    let n = match v {
        Value::Str(s) => s.chars().count(),
        Value::List(l) => l.len(),
        Value::Dict(d) => d.len(),
        Value::Nil => 0,
        other => {
            return Err(EvalError::type_error(
                name,
                "a string, list, dict or nil",
                other,
            ));
        }
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn trimmed(name: &str, v: &Value, f: fn(&str) -> &str) -> Result<Value> {
    let s = expect_str(name, v)?;
    let t = f(s);
    if t.len() == s.len() {
        return Ok(Value::Str(s.clone()));
    }
    Ok(Value::str(t))
}

fn check_size(name: &str, bytes: Option<usize>) -> Result<()> {
    match bytes {
        Some(n) if n <= MAX_BUILT_STRING_BYTES => Ok(()),
        _ => Err(EvalError::new(
            ErrorKind::Value,
            format!("{name}: the result would be larger than {MAX_BUILT_STRING_BYTES} bytes"),
        )),
    }
}

/// `(split s sep)`: every occurrence of a non-empty `sep` (empty pieces
/// kept); an empty `sep` splits into characters.
fn split(s: &Value, sep: &Value) -> Result<Value> {
    let s = expect_str("split", s)?;
    let sep = expect_str("split", sep)?;
    if sep.is_empty() {
        return Ok(Value::List(s.chars().map(char_value).collect()));
    }
    // A one-byte separator (the usual space or comma) splits on a char,
    // which searches with memchr rather than the general matcher.
    // The pieces are consed from the last one back (a char cannot
    // overlap itself, so they are the same pieces), with no Vec between.
    if let [b] = sep.as_bytes() {
        if !b.is_ascii() {
            return Ok(Value::List(s.split(&**sep).map(Value::str).collect()));
        }
        let mut out = List::EMPTY;
        let mut end = s.len();
        // Every index found is an ASCII byte's, so a char boundary.
        while let Some(at) = s.get(..end).and_then(|head| last_index(head, *b)) {
            out = List::cons(Value::str(s.get(at + 1..end).unwrap_or_default()), out);
            end = at;
        }
        out = List::cons(Value::str(s.get(..end).unwrap_or_default()), out);
        return Ok(Value::List(out));
    }
    Ok(Value::List(s.split(&**sep).map(Value::str).collect()))
}

/// Where the ASCII byte `b` last occurs in `s`. The last few bytes are
/// checked one by one first: split pieces are usually words, shorter than
/// a general search takes to set up.
fn last_index(s: &str, b: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut near = bytes.len().saturating_sub(16);
    while !s.is_char_boundary(near) {
        near -= 1;
    }
    if let Some(i) = bytes
        .get(near..)
        .and_then(|t| t.iter().rposition(|&c| c == b))
    {
        return Some(near + i);
    }
    s.get(..near)?.rfind(char::from(b))
}

/// `(join xs sep)`: items converted as `str` converts them.
fn join(interp: &Interp, xs: &Value, sep: Option<&Value>) -> Result<Value> {
    let xs = expect_list("join", xs)?;
    let sep: &str = match sep {
        None | Some(Value::Nil) => "",
        Some(v) => expect_str("join", v)?,
    };
    // Size the result once when the items are strings (the usual case).
    let mut want = 0usize;
    for (n, item) in xs.iter().enumerate() {
        let piece = match item {
            Value::Str(s) => s.len(),
            // Never more than the result needs: other items grow it.
            _ => 0,
        };
        want = want
            .saturating_add(piece)
            .saturating_add(if n > 0 { sep.len() } else { 0 });
    }
    if want > super::core::BIG_RESULT_BYTES {
        interp.ensure_heap(want)?;
    }
    let mut out = String::with_capacity(want.min(MAX_BUILT_STRING_BYTES));
    for (n, item) in xs.iter().enumerate() {
        if n > 0 {
            out.push_str(sep);
        }
        printer::to_str(item, &mut out);
    }
    Ok(Value::from(out))
}

fn replace(s: &Value, old: &Value, new: &Value) -> Result<Value> {
    let s = expect_str("replace", s)?;
    let old = expect_str("replace", old)?;
    let new = expect_str("replace", new)?;
    if old.is_empty() {
        return Err(EvalError::new(
            ErrorKind::Value,
            "replace: the string to replace must not be empty",
        ));
    }
    if !s.contains(&**old) {
        return Ok(Value::Str(s.clone()));
    }
    let count = s.matches(&**old).count();
    let grown = new.len().saturating_sub(old.len()).checked_mul(count);
    check_size("replace", grown.and_then(|g| g.checked_add(s.len())))?;
    Ok(Value::from(s.replace(&**old, new)))
}

/// `(contains? s sub)` for strings, `(contains? xs v)` for lists.
fn contains(coll: &Value, x: &Value) -> Result<Value> {
    match coll {
        Value::Str(s) => {
            let sub = expect_str("contains?", x)?;
            Ok(Value::Bool(s.contains(&**sub)))
        }
        Value::List(l) => Ok(Value::Bool(l.iter().any(|v| v.equals(x)))),
        Value::Nil => Ok(Value::Bool(false)),
        Value::Dict(_) => Err(EvalError::new(
            ErrorKind::Type,
            "contains?: expected a string or list, got a dict; use (has-key? d k) to test for a key",
        )),
        other => Err(EvalError::type_error(
            "contains?",
            "a string or list",
            other,
        )),
    }
}

/// The byte offset of char index `i` in `s` (`i == chars` gives `s.len()`),
/// or `None` past the end.
fn byte_offset(s: &str, i: usize) -> Option<usize> {
    if i == 0 {
        return Some(0);
    }
    match s.char_indices().nth(i) {
        Some((b, _)) => Some(b),
        None if s.chars().count() == i => Some(s.len()),
        None => None,
    }
}

fn substring(s: &Value, start: &Value, end: Option<&Value>) -> Result<Value> {
    let text = expect_str("substring", s)?;
    let n = text.chars().count();
    let start_i = expect_int("substring", start)?;
    let end_i = match end {
        None | Some(Value::Nil) => i64::try_from(n).unwrap_or(i64::MAX),
        Some(e) => expect_int("substring", e)?,
    };
    let in_range = |i: i64| usize::try_from(i).ok().filter(|&u| u <= n);
    let (Some(a), Some(b)) = (in_range(start_i), in_range(end_i)) else {
        return Err(EvalError::new(
            ErrorKind::Value,
            format!(
                "substring: range {start_i}..{end_i} out of bounds for a string of {n} characters"
            ),
        ));
    };
    if a > b {
        return Err(EvalError::new(
            ErrorKind::Value,
            format!("substring: start {a} is after end {b}"),
        ));
    }
    let (Some(ba), Some(bb)) = (byte_offset(text, a), byte_offset(text, b)) else {
        return Err(EvalError::new(
            ErrorKind::Value,
            "substring: index out of range",
        ));
    };
    match text.get(ba..bb) {
        Some(t) if t.len() == text.len() => Ok(Value::Str(text.clone())),
        Some(t) => Ok(Value::str(t)),
        None => Err(EvalError::new(
            ErrorKind::Value,
            "substring: index out of range",
        )),
    }
}

/// `(char-at s i)`: the character at char index `i` as a one-char string.
pub(crate) fn char_at(name: &str, s: &Value, i: &Value) -> Result<Value> {
    let text = expect_str(name, s)?;
    let idx = expect_int(name, i)?;
    usize::try_from(idx)
        .ok()
        .and_then(|u| text.chars().nth(u))
        .map(char_value)
        .ok_or_else(|| {
            EvalError::new(
                ErrorKind::Value,
                format!(
                    "{name}: index {idx} out of range for a string of {} characters",
                    text.chars().count()
                ),
            )
        })
}

/// `(index-of s sub)` / `(index-of xs v)`: the char index or list position of
/// the first (or, with `last`, final) match, or -1.
fn index_of(name: &str, coll: &Value, x: &Value, last: bool) -> Result<Value> {
    let pos = match coll {
        Value::Str(s) => {
            let sub = expect_str(name, x)?;
            let found = if last {
                s.rfind(&**sub)
            } else {
                s.find(&**sub)
            };
            found.map(|b| s.get(..b).map_or(0, |p| p.chars().count()))
        }
        Value::List(l) => {
            if last {
                l.iter()
                    .enumerate()
                    .filter(|(_, v)| v.equals(x))
                    .last()
                    .map(|(i, _)| i)
            } else {
                l.iter().position(|v| v.equals(x))
            }
        }
        Value::Nil => None,
        other => return Err(EvalError::type_error(name, "a string or list", other)),
    };
    Ok(Value::Int(
        pos.and_then(|p| i64::try_from(p).ok()).unwrap_or(-1),
    ))
}

/// `(parse-int s)`, `(parse-int s radix)`: nil when `s` is not an integer
/// (or does not fit in 64 bits). Surrounding whitespace is ignored; a leading
/// `+` or `-` is accepted. An integer argument is returned as it is.
fn parse_int(v: &Value, radix: Option<&Value>) -> Result<Value> {
    let radix = match radix {
        None | Some(Value::Nil) => 10,
        Some(r) => {
            let r = expect_int("parse-int", r)?;
            match u32::try_from(r) {
                Ok(r @ 2..=36) => r,
                _ => {
                    return Err(EvalError::new(
                        ErrorKind::Value,
                        format!("parse-int: radix must be between 2 and 36, got {r}"),
                    ));
                }
            }
        }
    };
    match v {
        Value::Str(s) => {
            let t = s.trim();
            // from_str_radix takes one optional sign then digits of the radix.
            Ok(i64::from_str_radix(t, radix).map_or(Value::Nil, Value::Int))
        }
        Value::Int(i) if radix == 10 => Ok(Value::Int(*i)),
        Value::Nil => Ok(Value::Nil),
        other => Err(EvalError::type_error("parse-int", "a string", other)),
    }
}

/// `(parse-float s)`: a float from decimal integer or float text (`"3"` gives
/// 3.0); nil when unparseable or not finite. Numbers are converted.
fn parse_float(v: &Value) -> Result<Value> {
    match v {
        Value::Str(s) => {
            let t = s.trim();
            // Rust's grammar also accepts "inf", "NaN" and "infinity".
            let ok_chars = t
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            let has_digit = t.bytes().any(|b| b.is_ascii_digit());
            match t.parse::<f64>() {
                Ok(f) if ok_chars && has_digit && f.is_finite() => Ok(Value::Float(f)),
                _ => Ok(Value::Nil),
            }
        }
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::Nil => Ok(Value::Nil),
        other => Err(EvalError::type_error("parse-float", "a string", other)),
    }
}

/// `(pad-left s n pad)`: pads to `n` characters with a one-character string
/// (default a space). Numbers are converted as `str` converts them.
fn pad(name: &str, a: &[Value], left: bool) -> Result<Value> {
    let s: crate::rcstr::RcStr = match arg(a, 0) {
        Value::Str(s) => s.clone(),
        v @ (Value::Int(_) | Value::Float(_)) => {
            let mut out = String::new();
            printer::to_str(v, &mut out);
            out.into()
        }
        other => return Err(EvalError::type_error(name, "a string", other)),
    };
    let width = expect_index(name, arg(a, 1))?;
    let fill = match a.get(2) {
        None | Some(Value::Nil) => ' ',
        Some(p) => {
            let p = expect_str(name, p)?;
            let mut cs = p.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(EvalError::new(
                        ErrorKind::Value,
                        format!(
                            "{name}: the padding must be a one-character string, got {:?}",
                            &**p
                        ),
                    ));
                }
            }
        }
    };
    let have = s.chars().count();
    if have >= width {
        return Ok(Value::Str(s));
    }
    let missing = width - have;
    check_size(
        name,
        missing
            .checked_mul(fill.len_utf8())
            .and_then(|m| m.checked_add(s.len())),
    )?;
    let padding: String = std::iter::repeat_n(fill, missing).collect();
    Ok(Value::from(if left {
        padding + &s
    } else {
        let mut out = s.to_string();
        out.push_str(&padding);
        out
    }))
}

/// A symbol/keyword name from a string, symbol or keyword (never empty).
fn name_of(name: &str, v: &Value) -> Result<Symbol> {
    let sym = expect_symbol_name(name, v)?;
    if sym.as_str().is_empty() {
        return Err(EvalError::new(
            ErrorKind::Value,
            format!("{name}: the name must not be empty"),
        ));
    }
    Ok(sym)
}

/// Refuses names whose printed form would not read back as the same symbol
/// or keyword (spaces, brackets, number-like names), so `serialize` and
/// `read-string` stay inverse.
fn check_readable(name: &str, text: &str, same: impl Fn(&Value) -> bool) -> Result<()> {
    match crate::reader::read_one(text, name) {
        Ok(v) if same(&v) => Ok(()),
        _ => Err(EvalError::new(
            ErrorKind::Value,
            format!("{name}: {text:?} would not read back as a {name}"),
        )),
    }
}

/// Used by `reverse` on strings (lists.rs).
pub(crate) fn reverse_str(s: &str) -> Value {
    Value::from(s.chars().rev().collect::<String>())
}

#[cfg(test)]
mod tests {

    use crate::prims::test_support::{err, ev};

    #[test]
    fn len_counts_chars_items_entries() {
        assert_eq!(ev(r#"(len "日本語😀")"#), "4");
        assert_eq!(ev("(len '(1 2 3))"), "3");
        assert_eq!(ev("(len {:a 1 :b 2})"), "2");
        assert_eq!(ev("(len nil)"), "0");
        assert!(err("(len 5)"));
    }

    #[test]
    fn case_and_trim() {
        assert_eq!(ev(r#"(upper "straße é")"#), r#""STRASSE É""#);
        assert_eq!(ev(r#"(lower "ÀB")"#), r#""àb""#);
        assert_eq!(ev(r#"(trim "  a b \n")"#), r#""a b""#);
        assert_eq!(ev(r#"(triml "  a ")"#), r#""a ""#);
        assert_eq!(ev(r#"(trimr "  a ")"#), r#""  a""#);
    }

    #[test]
    fn split_join_replace() {
        assert_eq!(ev(r#"(split "a,,b" ",")"#), r#"("a" "" "b")"#);
        // One-byte separators are split from the end: same pieces, same order.
        assert_eq!(ev(r#"(split ",a b,,c," ",")"#), r#"("" "a b" "" "c" "")"#);
        assert_eq!(ev(r#"(split "w1 w2 w1" " ")"#), r#"("w1" "w2" "w1")"#);
        assert_eq!(ev(r#"(split "日 本" " ")"#), r#"("日" "本")"#);
        assert_eq!(ev(r#"(split "abc" " ")"#), r#"("abc")"#);
        assert_eq!(ev(r#"(split "a::b" "::")"#), r#"("a" "b")"#);
        assert_eq!(ev(r#"(split "日本" "")"#), r#"("日" "本")"#);
        assert_eq!(ev(r#"(split "" ",")"#), r#"("")"#);
        // Pieces longer than the byte-by-byte scan, with multi-byte
        // characters where that scan would start.
        assert_eq!(
            ev(r#"(split "0123456789abcdefghij,日本語日本語日本語,,x" ",")"#),
            r#"("0123456789abcdefghij" "日本語日本語日本語" "" "x")"#
        );
        assert_eq!(
            ev(r#"(split "a,bcdefghijklmnopqrstu日本語" ",")"#),
            r#"("a" "bcdefghijklmnopqrstu日本語")"#
        );
        assert_eq!(
            ev(r#"(split "日本語日本語日本語日本語" ",")"#),
            r#"("日本語日本語日本語日本語")"#
        );
        assert_eq!(ev(r#"(split "é,è" "é")"#), r#"("" ",è")"#);
        assert_eq!(
            ev(r#"(join (list "a" 1 2.5 nil :k) "-")"#),
            r#""a-1-2.5--:k""#
        );
        assert_eq!(ev(r#"(join '() ",")"#), r#""""#);
        assert_eq!(ev(r#"(join '("a" "b"))"#), r#""ab""#);
        assert_eq!(ev(r#"(replace "a.b.c" "." "::")"#), r#""a::b::c""#);
        assert!(err(r#"(replace "abc" "" "x")"#));
    }

    #[test]
    fn predicates() {
        assert_eq!(ev(r#"(starts-with? "hello" "he")"#), "true");
        assert_eq!(ev(r#"(ends-with? "hello" "lo")"#), "true");
        assert_eq!(ev(r#"(ends-with? "hello" "he")"#), "false");
        assert_eq!(ev(r#"(contains? "hello" "ell")"#), "true");
        assert_eq!(ev(r#"(contains? '(1 (2) 3) '(2))"#), "true");
        assert_eq!(ev(r#"(contains? '(1 2) 1.0)"#), "true");
        assert_eq!(ev(r#"(contains? '(1 2) 5)"#), "false");
        let e = ev(r#"(contains? {:a 1} :a)"#);
        assert!(e.contains("has-key?"), "{e}");
    }

    #[test]
    fn substring_and_char_at() {
        assert_eq!(ev(r#"(substring "日本語😀" 1 3)"#), r#""本語""#);
        assert_eq!(ev(r#"(substring "hello" 2)"#), r#""llo""#);
        assert_eq!(ev(r#"(substring "hello" 5)"#), r#""""#);
        assert_eq!(ev(r#"(substring "hello" 0 5)"#), r#""hello""#);
        assert!(err(r#"(substring "hello" 0 6)"#));
        assert!(err(r#"(substring "hello" 3 2)"#));
        assert!(err(r#"(substring "hello" -1 2)"#));
        assert_eq!(ev(r#"(char-at "a😀b" 1)"#), r#""😀""#);
        assert!(err(r#"(char-at "abc" 3)"#));
        assert!(err(r#"(char-at "abc" -1)"#));
    }

    #[test]
    fn index_of_strings_and_lists() {
        assert_eq!(ev(r#"(index-of "日本語本" "本")"#), "1");
        assert_eq!(ev(r#"(last-index-of "日本語本" "本")"#), "3");
        assert_eq!(ev(r#"(index-of "abc" "z")"#), "-1");
        assert_eq!(ev(r#"(index-of "abc" "")"#), "0");
        assert_eq!(ev(r#"(index-of '(:a :b :a) :a)"#), "0");
        assert_eq!(ev(r#"(last-index-of '(:a :b :a) :a)"#), "2");
        assert_eq!(ev(r#"(index-of '(1 2) 3)"#), "-1");
    }

    #[test]
    fn parsing_numbers() {
        assert_eq!(ev(r#"(parse-int "42")"#), "42");
        assert_eq!(ev(r#"(parse-int " -42 ")"#), "-42");
        assert_eq!(ev(r#"(parse-int "+7")"#), "7");
        assert_eq!(ev(r#"(parse-int "x")"#), "nil");
        assert_eq!(ev(r#"(parse-int "")"#), "nil");
        assert_eq!(ev(r#"(parse-int "1.5")"#), "nil");
        assert_eq!(ev(r#"(parse-int "99999999999999999999")"#), "nil");
        assert_eq!(ev(r#"(parse-int "ff" 16)"#), "255");
        assert_eq!(ev(r#"(parse-int "-101" 2)"#), "-5");
        assert!(err(r#"(parse-int "1" 37)"#));
        assert_eq!(ev(r#"(parse-float "2.5")"#), "2.5");
        assert_eq!(ev(r#"(parse-float "3")"#), "3.0");
        assert_eq!(ev(r#"(parse-float " -1e3 ")"#), "-1000.0");
        assert_eq!(ev(r#"(parse-float "inf")"#), "nil");
        assert_eq!(ev(r#"(parse-float "NaN")"#), "nil");
        assert_eq!(ev(r#"(parse-float "1e999")"#), "nil");
        assert_eq!(ev(r#"(parse-float "abc")"#), "nil");
        assert_eq!(ev(r#"(parse-float ".")"#), "nil");
    }

    #[test]
    fn building_strings() {
        assert_eq!(ev(r#"(chars "a😀")"#), r#"("a" "😀")"#);
        assert_eq!(ev(r#"(string-repeat "ab" 3)"#), r#""ababab""#);
        assert_eq!(ev(r#"(string-repeat "ab" 0)"#), r#""""#);
        assert!(err(r#"(string-repeat "ab" 9223372036854775807)"#));
        assert_eq!(ev(r#"(pad-left "7" 3 "0")"#), r#""007""#);
        assert_eq!(ev(r#"(pad-left 7 3 "0")"#), r#""007""#);
        assert_eq!(ev(r#"(pad-right "ab" 4)"#), r#""ab  ""#);
        assert_eq!(ev(r#"(pad-left "abcdef" 3)"#), r#""abcdef""#);
        assert!(err(r#"(pad-left "a" 3 "xy")"#));
    }

    #[test]
    fn names_and_codes() {
        assert_eq!(ev(r#"(symbol "a")"#), "a");
        assert_eq!(ev(r#"(keyword "a")"#), ":a");
        assert_eq!(ev(r#"(keyword 'b)"#), ":b");
        assert_eq!(ev(r#"(symbol :c)"#), "c");
        assert_eq!(ev(r#"(name :a)"#), r#""a""#);
        assert_eq!(ev(r#"(name 'x)"#), r#""x""#);
        assert_eq!(ev(r#"(name "s")"#), r#""s""#);
        assert_eq!(ev(r#"(char-code "A")"#), "65");
        assert_eq!(ev(r#"(char-code "😀")"#), "128512");
        assert!(err(r#"(char-code "")"#));
        assert_eq!(ev(r#"(code-char 65)"#), r#""A""#);
        assert!(err(r#"(code-char 55296)"#));
        assert!(err(r#"(code-char -1)"#));
        assert!(err(r#"(code-char 1114112)"#));
    }
}
