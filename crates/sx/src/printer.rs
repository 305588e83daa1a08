//! The canonical printer (`serialize`) and the lenient display form.
//!
//! Canonical form (DESIGN §3): single spaces, no trailing space; integers in
//! decimal; floats as ECMAScript's Number-to-String prints them with `.0`
//! added when there is neither `.` nor `e`; strings escaped only for `"` `\`
//! newline, tab, CR and other control characters (`\u{..}`); dict entries
//! sorted by the canonical bytes of their keys.

use std::fmt::Write as _;

use crate::value::Value;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerializeError {
    #[error(
        "cannot serialize a {0}: only data (nil, booleans, numbers, strings, symbols, keywords, lists, dicts, elements) has a canonical form"
    )]
    NotData(&'static str),
    #[error("cannot serialize {0}: NaN and infinities have no canonical form")]
    NonFinite(String),
}

/// The canonical serialization of `v`.
pub fn serialize(v: &Value) -> Result<String, SerializeError> {
    let mut out = String::new();
    write_value(&mut out, v, Mode::Canonical)?;
    Ok(out)
}

/// A readable rendering of any value, used by the REPL and error messages:
/// the canonical form for data, `#<function name>` and the like otherwise.
pub fn display(v: &Value) -> String {
    let mut out = String::new();
    // Display mode never fails.
    let _ = write_value(&mut out, v, Mode::Display);
    out
}

/// The text `str` gives a value: strings as they are, nil as nothing,
/// everything else as displayed.
#[inline]
pub fn to_str(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => out.push_str(s),
        Value::Nil => {}
        Value::Int(i) => push_int(out, *i),
        other => to_str_other(other, out),
    }
}

/// [`to_str`] of anything but a string, nil or an integer.
#[inline(never)]
fn to_str_other(v: &Value, out: &mut String) {
    match v {
        Value::Cell(c) => to_str(&c.borrow(), out),
        other => {
            let _ = write_value(out, other, Mode::Display);
        }
    }
}

/// Appends an integer in decimal: what `write!` prints, without the
/// formatting machinery (`str` and `join` of numbers are common); see
/// `push::push_int`.
#[inline]
pub(crate) fn push_int(out: &mut String, i: i64) {
    crate::push::push_int(out, i);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Canonical,
    Display,
}

fn write_value(out: &mut String, v: &Value, mode: Mode) -> Result<(), SerializeError> {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || write_inner(out, v, mode))
}

fn write_inner(out: &mut String, v: &Value, mode: Mode) -> Result<(), SerializeError> {
    match v {
        Value::Nil => out.push_str("nil"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => push_int(out, *i),
        Value::Float(f) => match float_text(*f) {
            Some(t) => out.push_str(&t),
            None if mode == Mode::Display => out.push_str(&nonfinite_text(*f)),
            None => return Err(SerializeError::NonFinite(nonfinite_text(*f))),
        },
        Value::Str(s) => write_string(out, s),
        Value::Symbol(s) => out.push_str(s.as_str()),
        Value::Keyword(k) => {
            out.push(':');
            out.push_str(k.as_str());
        }
        Value::List(l) => {
            out.push('(');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item, mode)?;
            }
            out.push(')');
        }
        Value::Dict(d) => {
            out.push('{');
            for (i, (k, val)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, k, mode)?;
                out.push(' ');
                write_value(out, val, mode)?;
            }
            out.push('}');
        }
        Value::Element(e) => {
            out.push('(');
            out.push_str(&e.tag);
            for (name, val) in &e.attrs {
                out.push_str(" :");
                out.push_str(name.as_str());
                out.push(' ');
                write_value(out, val, mode)?;
            }
            for child in &e.children {
                out.push(' ');
                write_value(out, child, mode)?;
            }
            out.push(')');
        }
        Value::Closure(c) => opaque(out, mode, "function", c.name())?,
        Value::Native(n) => opaque(out, mode, "function", Some(n.name))?,
        Value::Macro(c) => opaque(out, mode, "macro", c.name())?,
        Value::Component(c) => opaque(out, mode, "component", Some(c.name.as_str()))?,
        Value::Cell(c) => write_value(out, &c.borrow(), mode)?,
    }
    Ok(())
}

fn opaque(
    out: &mut String,
    mode: Mode,
    kind: &'static str,
    name: Option<&str>,
) -> Result<(), SerializeError> {
    if mode == Mode::Canonical {
        return Err(SerializeError::NotData(kind));
    }
    match name {
        Some(n) => {
            let _ = write!(out, "#<{kind} {n}>");
        }
        None => {
            let _ = write!(out, "#<{kind}>");
        }
    }
    Ok(())
}

fn nonfinite_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

/// The canonical text of a finite float, or `None` for NaN and infinities.
pub fn float_text(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let mut buf = ryu_js::Buffer::new();
    let s = buf.format_finite(f);
    let mut text = s.to_owned();
    if !text.contains(['.', 'e']) {
        text.push_str(".0");
    }
    Some(text)
}

/// The canonical text of an integer or float value (used to order dict keys).
pub fn number_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_text(*f).unwrap_or_else(|| nonfinite_text(*f)),
        _ => String::new(),
    }
}

/// Writes `s` as a canonical string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The bytes of `s`'s canonical literal without its quotes, lazily: used to
/// order string keys by canonical bytes without allocating.
pub fn escaped_bytes(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.chars().flat_map(|c| {
        let mut buf = [0u8; 12];
        let len = match c {
            '"' => put(&mut buf, b"\\\""),
            '\\' => put(&mut buf, b"\\\\"),
            '\n' => put(&mut buf, b"\\n"),
            '\t' => put(&mut buf, b"\\t"),
            '\r' => put(&mut buf, b"\\r"),
            c if c.is_control() => {
                let text = format!("\\u{{{:x}}}", c as u32);
                put(&mut buf, text.as_bytes())
            }
            c => c.encode_utf8(&mut buf).len(),
        };
        buf.into_iter().take(len)
    })
}

fn put(buf: &mut [u8; 12], bytes: &[u8]) -> usize {
    let n = bytes.len().min(buf.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_int_prints_what_fmt_prints() {
        let mut cases = vec![i64::MIN, i64::MIN + 1, i64::MAX, 0, -1, 1];
        for p in 0..19 {
            let t = 10i64.pow(p);
            cases.extend([t - 1, t, t + 1, -t + 1, -t, -t - 1]);
        }
        for i in cases {
            let mut out = String::from("x");
            super::push_int(&mut out, i);
            assert_eq!(out, format!("x{i}"));
        }
    }
}
