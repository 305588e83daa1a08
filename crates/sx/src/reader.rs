//! The reader: SX source text to values.
//!
//! Iterative (an explicit stack of open lists), so no input nesting depth can
//! overflow the native stack; every byte sequence yields values or a
//! [`ReadError`] with the position, what was expected and the source line.

use crate::rcstr::RcStr;

use crate::dict::{Dict, Key};
use crate::source::{self, Location, Pos};
use crate::value::{List, Value};

/// What went wrong while reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadErrorKind {
    #[error("unexpected end of input: expected `{0}` to close the list opened here")]
    UnclosedList(char),
    #[error("unexpected `{found}`: {expected}")]
    UnexpectedClose { found: char, expected: String },
    #[error("unterminated string: expected a closing `\"`")]
    UnclosedString,
    #[error("invalid escape `\\{0}` in string: expected one of \\\" \\\\ \\n \\t \\r \\u{{...}}")]
    BadEscape(String),
    #[error("invalid unicode escape: {0}")]
    BadUnicode(String),
    #[error("integer literal `{0}` does not fit in 64 bits")]
    IntegerOverflow(String),
    #[error("malformed number `{0}`")]
    BadNumber(String),
    #[error("`{0}` must be followed by a form, found end of input")]
    DanglingPrefix(String),
    #[error("`{0}` must be followed by a form, found `{1}`")]
    PrefixBeforeClose(String, char),
    #[error("a dict literal needs an even number of forms: key value pairs")]
    OddDict,
    #[error("a dict key must be a keyword, string or number, found `{0}`")]
    BadDictKey(String),
    #[error("duplicate dict key `{0}`")]
    DuplicateKey(String),
    #[error("`:` must be followed by a keyword name")]
    EmptyKeyword,
    #[error("expected exactly one form, found {0}")]
    NotOneForm(usize),
}

/// A read error with its location in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub kind: ReadErrorKind,
    pub location: Location,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: read error: {}\n{}",
            self.location,
            self.kind,
            self.location.snippet()
        )
    }
}

impl std::error::Error for ReadError {}

/// Reads every form in `text`. `name` names the source in error messages;
/// when `register` is true the text is registered so positions in the
/// returned lists resolve later (for compile and runtime errors).
pub fn read_all(text: &str, name: &str, register: bool) -> Result<Vec<Value>, ReadError> {
    let source = if register {
        source::register(name, text)
    } else {
        Pos::NONE.source
    };
    read_all_in(text, name, source)
}

/// Reads every form in `text`, which is already registered as `source`
/// (see [`source::register`]): positions point into it.
pub fn read_all_in(text: &str, name: &str, source: u32) -> Result<Vec<Value>, ReadError> {
    Reader {
        text,
        bytes: text.as_bytes(),
        i: 0,
        name,
        source,
    }
    .read_all()
}

/// Reads exactly one form (as `read-string` does).
pub fn read_one(text: &str, name: &str) -> Result<Value, ReadError> {
    let mut forms = read_all(text, name, false)?;
    if forms.len() != 1 {
        return Err(ReadError {
            kind: ReadErrorKind::NotOneForm(forms.len()),
            location: source::locate_text(name, text, 0),
        });
    }
    Ok(forms.pop().unwrap_or_default())
}

enum Frame {
    /// An open `(`, `[` or `{`, with its items so far.
    Seq {
        close: u8,
        start: usize,
        items: Vec<Value>,
    },
    /// A prefix such as `'` waiting for its form.
    Prefix { sym: &'static str, start: usize },
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    name: &'a str,
    source: u32,
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';' | b'\'' | b'`' | b','
    ) || b.is_ascii_whitespace()
}

impl<'a> Reader<'a> {
    fn error(&self, kind: ReadErrorKind, at: usize) -> ReadError {
        ReadError {
            kind,
            location: source::locate_text(self.name, self.text, at as u32),
        }
    }

    fn pos(&self, at: usize) -> Pos {
        Pos {
            source: self.source,
            offset: u32::try_from(at).unwrap_or(u32::MAX),
        }
    }

    fn skip_space(&mut self) {
        while let Some(&b) = self.bytes.get(self.i) {
            if b.is_ascii_whitespace() {
                self.i += 1;
            } else if b == b';' {
                while let Some(&b) = self.bytes.get(self.i) {
                    if b == b'\n' {
                        break;
                    }
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn read_all(mut self) -> Result<Vec<Value>, ReadError> {
        let mut top = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            self.skip_space();
            let Some(&b) = self.bytes.get(self.i) else {
                return match stack.pop() {
                    None => Ok(top),
                    Some(Frame::Seq { close, start, .. }) => {
                        Err(self.error(ReadErrorKind::UnclosedList(close as char), start))
                    }
                    Some(Frame::Prefix { sym, start }) => Err(self.error(
                        ReadErrorKind::DanglingPrefix(prefix_text(sym).into()),
                        start,
                    )),
                };
            };
            let start = self.i;
            let value = match b {
                b'(' | b'[' | b'{' => {
                    self.i += 1;
                    let close = match b {
                        b'(' => b')',
                        b'[' => b']',
                        _ => b'}',
                    };
                    stack.push(Frame::Seq {
                        close,
                        start,
                        items: Vec::new(),
                    });
                    continue;
                }
                b')' | b']' | b'}' => {
                    self.i += 1;
                    match stack.pop() {
                        Some(Frame::Seq {
                            close,
                            start: open,
                            items,
                        }) if close == b => {
                            if b == b'}' {
                                self.make_dict(items, open)?
                            } else {
                                Value::List(List::from_vec_at(items, self.pos(open)))
                            }
                        }
                        Some(Frame::Seq { close, .. }) => {
                            return Err(self.error(
                                ReadErrorKind::UnexpectedClose {
                                    found: b as char,
                                    expected: format!("expected `{}`", close as char),
                                },
                                start,
                            ));
                        }
                        Some(Frame::Prefix { sym, .. }) => {
                            return Err(self.error(
                                ReadErrorKind::PrefixBeforeClose(
                                    prefix_text(sym).into(),
                                    b as char,
                                ),
                                start,
                            ));
                        }
                        None => {
                            return Err(self.error(
                                ReadErrorKind::UnexpectedClose {
                                    found: b as char,
                                    expected: "no list is open".into(),
                                },
                                start,
                            ));
                        }
                    }
                }
                b'\'' | b'`' | b',' => {
                    self.i += 1;
                    let sym = match b {
                        b'\'' => "quote",
                        b'`' => "quasiquote",
                        _ if self.bytes.get(self.i) == Some(&b'@') => {
                            self.i += 1;
                            "unquote-splicing"
                        }
                        _ => "unquote",
                    };
                    stack.push(Frame::Prefix { sym, start });
                    continue;
                }
                b'"' => self.read_string()?,
                _ => self.read_atom()?,
            };
            // Deliver the finished value to the innermost open frame,
            // completing any prefixes waiting for it.
            let mut value = value;
            loop {
                match stack.last_mut() {
                    None => {
                        top.push(value);
                        break;
                    }
                    Some(Frame::Seq { items, .. }) => {
                        items.push(value);
                        break;
                    }
                    Some(Frame::Prefix { sym, start }) => {
                        let (sym, start) = (*sym, *start);
                        stack.pop();
                        value = Value::List(List::from_vec_at(
                            vec![Value::sym(sym), value],
                            self.pos(start),
                        ));
                    }
                }
            }
        }
    }

    fn make_dict(&self, items: Vec<Value>, open: usize) -> Result<Value, ReadError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.error(ReadErrorKind::OddDict, open));
        }
        let mut dict = Dict::new();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let key = Key::new(k)
                .map_err(|bad| self.error(ReadErrorKind::BadDictKey(bad.to_string()), open))?;
            if dict.get_key(&key).is_some() {
                return Err(self.error(ReadErrorKind::DuplicateKey(key.value().to_string()), open));
            }
            dict.insert(key, v);
        }
        Ok(Value::Dict(dict))
    }

    fn read_string(&mut self) -> Result<Value, ReadError> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = self.text.get(self.i..).unwrap_or("");
            let Some(c) = rest.chars().next() else {
                return Err(self.error(ReadErrorKind::UnclosedString, start));
            };
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(Value::Str(RcStr::from(out))),
                '\\' => {
                    let esc_at = self.i - 1;
                    let rest = self.text.get(self.i..).unwrap_or("");
                    let Some(e) = rest.chars().next() else {
                        return Err(self.error(ReadErrorKind::UnclosedString, start));
                    };
                    self.i += e.len_utf8();
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'u' => out.push(self.read_unicode_escape(esc_at)?),
                        other => {
                            return Err(self.error(ReadErrorKind::BadEscape(other.into()), esc_at));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn read_unicode_escape(&mut self, esc_at: usize) -> Result<char, ReadError> {
        if self.bytes.get(self.i) != Some(&b'{') {
            return Err(self.error(
                ReadErrorKind::BadUnicode("expected `{` after \\u".into()),
                esc_at,
            ));
        }
        self.i += 1;
        let digits_start = self.i;
        while self
            .bytes
            .get(self.i)
            .is_some_and(|b| b.is_ascii_hexdigit())
        {
            self.i += 1;
        }
        let digits = self.text.get(digits_start..self.i).unwrap_or("");
        if self.bytes.get(self.i) != Some(&b'}') {
            return Err(self.error(
                ReadErrorKind::BadUnicode("expected hex digits then `}`".into()),
                esc_at,
            ));
        }
        self.i += 1;
        if digits.is_empty() || digits.len() > 6 {
            return Err(self.error(
                ReadErrorKind::BadUnicode(format!("`{digits}` is not 1 to 6 hex digits")),
                esc_at,
            ));
        }
        let code = u32::from_str_radix(digits, 16).unwrap_or(u32::MAX);
        char::from_u32(code).ok_or_else(|| {
            self.error(
                ReadErrorKind::BadUnicode(format!("U+{code:X} is not a Unicode scalar value")),
                esc_at,
            )
        })
    }

    fn read_atom(&mut self) -> Result<Value, ReadError> {
        let start = self.i;
        while self.bytes.get(self.i).is_some_and(|&b| !is_delimiter(b)) {
            self.i += 1;
        }
        // Non-delimiter bytes include all UTF-8 continuation bytes, so the
        // slice ends on a char boundary.
        let tok = self.text.get(start..self.i).unwrap_or("");
        parse_atom(tok).map_err(|kind| self.error(kind, start))
    }
}

fn prefix_text(sym: &str) -> &'static str {
    match sym {
        "quote" => "'",
        "quasiquote" => "`",
        "unquote" => ",",
        _ => ",@",
    }
}

/// Parses one token that is not a list or string.
fn parse_atom(tok: &str) -> Result<Value, ReadErrorKind> {
    match tok {
        "nil" => return Ok(Value::Nil),
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(name) = tok.strip_prefix(':') {
        if name.is_empty() {
            return Err(ReadErrorKind::EmptyKeyword);
        }
        return Ok(Value::kw(name));
    }
    let bytes = tok.as_bytes();
    let digits_from = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let looks_numeric = match bytes.get(digits_from) {
        Some(b) if b.is_ascii_digit() => true,
        Some(b'.') => bytes.get(digits_from + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    };
    if !looks_numeric {
        return Ok(Value::sym(tok));
    }
    parse_number(tok)
}

/// Parses a numeric token: an integer (i64), or a float with `.` or exponent.
pub fn parse_number(tok: &str) -> Result<Value, ReadErrorKind> {
    let is_float = tok.contains(['.', 'e', 'E']);
    if !is_float {
        let body = tok.strip_prefix(['+', '-']).unwrap_or(tok);
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReadErrorKind::BadNumber(tok.into()));
        }
        return tok
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| ReadErrorKind::IntegerOverflow(tok.into()));
    }
    // Rust's float grammar also accepts "inf", "nan" and "infinity": refuse
    // anything but digits, one dot, and an exponent.
    let ok_chars = tok
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match tok.parse::<f64>() {
        Ok(f) if ok_chars && f.is_finite() => Ok(Value::Float(f)),
        _ => Err(ReadErrorKind::BadNumber(tok.into())),
    }
}
