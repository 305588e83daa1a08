//! `render-html`: element values to HTML text (DESIGN §3, "Markup").
//!
//! Everything is written into one `String`; no node makes a string of its
//! own. Text is escaped by construction (`& < >`, and in attribute values
//! also `"` and `'`); `(raw! s)` is the only way to emit HTML unescaped.
//! URL-valued attributes whose scheme can run script (`javascript:`,
//! `vbscript:`, non-image `data:`) are replaced by [`UNSAFE_URL`].

use crate::Value;
use crate::error::{ErrorKind, EvalError};
use crate::symbol::Symbol;
use crate::value::Element;

/// Why a value could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render {what} as markup{context}")]
    NotMarkup { what: String, context: String },
    #[error("invalid attribute name {0:?} (letters, digits and - _ : . @ only)")]
    BadAttribute(String),
    #[error("{0}")]
    Serialize(#[from] crate::printer::SerializeError),
}

impl From<RenderError> for EvalError {
    fn from(e: RenderError) -> EvalError {
        EvalError::new(ErrorKind::Value, e.to_string())
    }
}

/// What an unsafe URL attribute value is replaced with: a URL that goes
/// nowhere, and says why when someone inspects the page.
pub const UNSAFE_URL: &str = "about:invalid#sx-unsafe-url";

/// Renders `v` as HTML, appending to `out`. On an error `out` may hold part
/// of the output; callers that need all-or-nothing render into a fresh buffer.
pub fn render_html(v: &Value, out: &mut String) -> Result<(), RenderError> {
    with_renderer(out, |r| r.node(v, 0))
}

/// Appends the attribute whose ` name` (leading space included) is
/// `prefix` for a value of the kinds most attributes have — nil or `false`
/// (nothing), `true` (the name alone), a string (escaped) or an integer —
/// as [`render_attribute`] writes them for a name that needs no check;
/// returns false, having written nothing, for any other value.
#[inline]
pub fn push_simple_attr(prefix: &str, value: &Value, out: &mut String) -> bool {
    match value {
        Value::Nil | Value::Bool(false) => {}
        Value::Bool(true) => push_short(out, prefix),
        Value::Str(s) => {
            push_short(out, prefix);
            out.push_str("=\"");
            escape_attr(s, out);
            out.push('"');
        }
        Value::Int(n) => {
            push_short(out, prefix);
            out.push_str("=\"");
            push_int(*n, out);
            out.push('"');
        }
        _ => return false,
    }
    true
}

/// Appends attribute `name` of a `tag` element with `value` (` name="..."`,
/// ` name` or nothing) by the rules `render-html` uses for element values:
/// the machine's render mode writes attributes with it.
pub fn render_attribute(
    tag: &str,
    name: Symbol,
    value: &Value,
    out: &mut String,
) -> Result<(), RenderError> {
    with_renderer(out, |r| {
        let info = r.attrs.get(name);
        r.attribute(tag, info, value)
    })
}

/// Runs `f` with a renderer writing to `out`, using this thread's
/// attribute cache.
#[inline]
fn with_renderer(
    out: &mut String,
    f: impl FnOnce(&mut Renderer<'_>) -> Result<(), Stop>,
) -> Result<(), RenderError> {
    ATTRS.with(|attrs| {
        // A render inside a render (which nothing does now) would find the
        // cache taken, and go with a fresh one.
        let mut spare = None;
        let mut guard = attrs.try_borrow_mut();
        let attrs = match guard.as_deref_mut() {
            Ok(a) => a,
            Err(_) => spare.get_or_insert_with(AttrCache::default),
        };
        let mut r = Renderer {
            out,
            attrs,
            error: None,
        };
        match f(&mut r) {
            Ok(()) => Ok(()),
            Err(Stop) => Err(r
                .error
                .take()
                .unwrap_or(RenderError::BadAttribute(String::new()))),
        }
    })
}

/// Renders `v` as an HTML string.
pub fn render_html_string(v: &Value) -> Result<String, RenderError> {
    let mut out = String::with_capacity(256);
    render_html(v, &mut out)?;
    Ok(out)
}

/// How many element levels pass between checks that the native stack has
/// room (checking at every element costs more than rendering it).
const STACK_CHECK_EVERY: u32 = 32;

/// Rendering stopped; the error is in [`Renderer::error`]. A zero-sized
/// error keeps the `Result` of every node a flag in a register.
struct Stop;

/// What an attribute name is, worked out once per name and thread: its
/// text, whether it is a valid name, whether its value is a URL.
#[derive(Clone, Copy)]
struct AttrInfo {
    name: &'static str,
    valid: bool,
    url: bool,
}

/// [`AttrInfo`] by symbol index. Names are interned process-wide and few;
/// indexes past [`AttrCache::MAX`] are worked out every time.
#[derive(Default)]
struct AttrCache(Vec<Option<AttrInfo>>);

impl AttrCache {
    const MAX: usize = 1 << 14;

    #[inline]
    fn get(&mut self, name: Symbol) -> AttrInfo {
        let i = name.index() as usize;
        if let Some(Some(info)) = self.0.get(i) {
            return *info;
        }
        self.fill(name, i)
    }

    #[inline(never)]
    fn fill(&mut self, name: Symbol, i: usize) -> AttrInfo {
        let text = name.as_str();
        let info = AttrInfo {
            name: text,
            valid: valid_attribute_name(text),
            url: is_url_attribute(text),
        };
        if i < Self::MAX {
            if self.0.len() <= i {
                self.0.resize(i + 1, None);
            }
            if let Some(slot) = self.0.get_mut(i) {
                *slot = Some(info);
            }
        }
        info
    }
}

thread_local! {
    static ATTRS: std::cell::RefCell<AttrCache> = std::cell::RefCell::default();
}

struct Renderer<'a> {
    out: &'a mut String,
    attrs: &'a mut AttrCache,
    error: Option<RenderError>,
}

impl Renderer<'_> {
    fn fail(&mut self, e: RenderError) -> Result<(), Stop> {
        self.error = Some(e);
        Err(Stop)
    }

    fn node(&mut self, v: &Value, depth: u32) -> Result<(), Stop> {
        // The common cases inline; the rest (and the stack check, whose
        // closure would make every call's frame bigger) out of line.
        match v {
            Value::Str(s) => {
                escape_text(s, self.out);
                Ok(())
            }
            Value::Int(i) => {
                // No temporary string: this is the hottest case in tables.
                push_int(*i, self.out);
                Ok(())
            }
            Value::Element(e) if !depth.is_multiple_of(STACK_CHECK_EVERY) => {
                self.element(e, depth + 1)
            }
            Value::List(l) => {
                for child in l.iter() {
                    self.child(child, depth + 1)?;
                }
                Ok(())
            }
            Value::Nil | Value::Bool(false) => Ok(()),
            _ => self.rare_node(v, depth),
        }
    }

    /// An element's child: [`Renderer::node`] with its two commonest
    /// cases (text and elements) taken here, saving a call per node.
    #[inline(always)]
    fn child(&mut self, v: &Value, depth: u32) -> Result<(), Stop> {
        match v {
            Value::Str(s) => {
                escape_text(s, self.out);
                Ok(())
            }
            Value::Element(e) if !depth.is_multiple_of(STACK_CHECK_EVERY) => {
                self.element(e, depth + 1)
            }
            _ => self.node(v, depth),
        }
    }

    #[inline(never)]
    fn rare_node(&mut self, v: &Value, depth: u32) -> Result<(), Stop> {
        match v {
            Value::Element(e) => {
                stacker::maybe_grow(256 * 1024, 2 * 1024 * 1024, || self.element(e, depth + 1))
            }
            Value::Float(_) => {
                self.out.push_str(&crate::printer::number_text(v));
                Ok(())
            }
            Value::Cell(c) => self.node(&c.borrow(), depth),
            Value::Bool(true) | Value::Symbol(_) | Value::Keyword(_) => {
                let mut text = String::new();
                crate::printer::to_str(v, &mut text);
                escape_text(&text, self.out);
                Ok(())
            }
            other => self.fail(not_markup(other, "")),
        }
    }

    fn element(&mut self, e: &Element, depth: u32) -> Result<(), Stop> {
        let tag: &str = &e.tag;
        match tag {
            "<>" => {
                for child in &e.children {
                    self.child(child, depth)?;
                }
                return Ok(());
            }
            "raw!" => {
                for child in &e.children {
                    if let Value::Str(s) = child {
                        self.out.push_str(s);
                    }
                }
                return Ok(());
            }
            _ => {}
        }
        self.out.push('<');
        push_short(self.out, tag);
        for (name, value) in &e.attrs {
            let info = self.attrs.get(*name);
            self.attribute(tag, info, value)?;
        }
        self.out.push('>');
        if is_void(tag) {
            return Ok(());
        }
        for child in &e.children {
            self.child(child, depth)?;
        }
        self.out.push_str("</");
        push_short(self.out, tag);
        self.out.push('>');
        Ok(())
    }

    fn attribute(&mut self, tag: &str, info: AttrInfo, value: &Value) -> Result<(), Stop> {
        if !info.valid {
            return self.fail(RenderError::BadAttribute(info.name.to_owned()));
        }
        let name = info.name;
        let out = &mut *self.out;
        match value {
            // Functions are event handlers (`:on-click (fn ...)`) that only
            // the browser runtime can attach when it hydrates an island.
            Value::Nil | Value::Bool(false) | Value::Closure(_) | Value::Native(_) => Ok(()),
            Value::Bool(true) => {
                out.push(' ');
                push_short(out, name);
                Ok(())
            }
            Value::Str(s) => {
                // The common case: no temporary string.
                let text = if info.url && !safe_url(tag, name, s) {
                    UNSAFE_URL
                } else {
                    s
                };
                push_attr(name, text, out);
                Ok(())
            }
            Value::Int(i) => {
                // Digits and `-` need no escaping, and no URL has a scheme
                // made of them.
                out.push(' ');
                push_short(out, name);
                out.push_str("=\"");
                push_int(*i, out);
                out.push('"');
                Ok(())
            }
            Value::Cell(c) => self.attribute(tag, info, &c.borrow()),
            _ => match attribute_text(name, value) {
                Ok(text) => {
                    let text = if info.url && !safe_url(tag, name, &text) {
                        UNSAFE_URL
                    } else {
                        &text
                    };
                    push_attr(name, text, out);
                    Ok(())
                }
                Err(e) => self.fail(e),
            },
        }
    }
}

fn not_markup(v: &Value, context: &str) -> RenderError {
    let shown: String = crate::printer::display(v).chars().take(60).collect();
    RenderError::NotMarkup {
        what: format!("{} {shown}", v.type_of().as_str()),
        context: context.to_owned(),
    }
}

/// ` name="text"`, the text escaped.
#[inline]
pub(crate) fn push_attr(name: &str, text: &str, out: &mut String) {
    out.push(' ');
    push_short(out, name);
    out.push_str("=\"");
    escape_attr(text, out);
    out.push('"');
}

/// The text of an attribute value that is not a string or integer: a
/// list of words joined with spaces (nil/false items left out), or a
/// number, keyword or symbol as printed.
#[inline(never)]
fn attribute_text(name: &str, value: &Value) -> Result<String, RenderError> {
    match value {
        Value::List(items) => {
            let mut text = String::new();
            for item in items.iter() {
                match item {
                    Value::Nil | Value::Bool(false) => {}
                    Value::Str(_)
                    | Value::Int(_)
                    | Value::Float(_)
                    | Value::Keyword(_)
                    | Value::Symbol(_) => {
                        if !text.is_empty() {
                            text.push(' ');
                        }
                        crate::printer::to_str(item, &mut text);
                    }
                    other => return Err(not_markup(other, &format!(" in attribute {name}"))),
                }
            }
            Ok(text)
        }
        Value::Float(_) | Value::Keyword(_) | Value::Symbol(_) => {
            let mut text = String::new();
            crate::printer::to_str(value, &mut text);
            Ok(text)
        }
        other => Err(not_markup(
            other,
            &format!(" as the value of attribute {name}"),
        )),
    }
}

/// Attribute names that SX code can write as keywords and that HTML parses
/// as one name: no quotes, `=`, `<`, `>`, `/` or whitespace.
pub fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.' | b'@'))
}

/// Attributes whose value the browser follows as a URL.
pub fn is_url_attribute(name: &str) -> bool {
    matches!(
        name,
        "href"
            | "src"
            | "action"
            | "formaction"
            | "poster"
            | "cite"
            | "background"
            | "longdesc"
            | "usemap"
            | "xlink:href"
            | "data"
            | "codebase"
            | "manifest"
            | "ping"
            | "srcset"
            | "sx-get"
            | "sx-post"
            | "sx-put"
            | "sx-patch"
            | "sx-delete"
            | "sx-push-url"
    )
}

/// Whether a URL attribute value is safe to emit. Browsers ignore ASCII
/// whitespace and control characters inside a scheme (`java\tscript:` runs
/// script), so they are dropped before the scheme is read.
pub fn safe_url(tag: &str, name: &str, url: &str) -> bool {
    if !url.bytes().any(|b| b == b':') {
        // No scheme at all: a relative URL.
        return true;
    }
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .take(16)
        .flat_map(char::to_lowercase)
        .collect();
    if cleaned.starts_with("javascript:") || cleaned.starts_with("vbscript:") {
        return false;
    }
    if name == "srcset" {
        // A list of candidates: each must be safe on its own.
        return url
            .split(',')
            .all(|c| safe_url(tag, "src", c.trim_start()) || c.trim().is_empty());
    }
    if cleaned.starts_with("data:") {
        // Inline images are harmless where an image is loaded; data: in a
        // link, frame, object or script can carry a document or script.
        let image_sink = matches!(name, "src" | "poster")
            && matches!(
                tag,
                "img" | "video" | "audio" | "source" | "picture" | "input"
            );
        return image_sink
            && cleaned.starts_with("data:image/")
            && !cleaned.starts_with("data:image/svg");
    }
    true
}

/// Whether a URL that starts with `prefix` is relative whatever follows:
/// the first character `safe_url` reads (it skips ASCII whitespace and
/// controls) is there and is ASCII but not a letter, so it cannot begin
/// a scheme (`/posts/`, `#top`, `?q=`, `./x`).
pub fn cannot_begin_scheme(prefix: &str) -> bool {
    prefix
        .chars()
        .find(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .is_some_and(|c| c.is_ascii() && !c.is_ascii_alphabetic())
}

/// Appends `s` with `& < >` escaped.
pub fn escape_text(s: &str, out: &mut String) {
    escape(s, out, false);
}

/// Appends `s` with `& < > " '` escaped.
pub fn escape_attr(s: &str, out: &mut String) {
    escape(s, out, true);
}

/// Appends `s`, which is usually short (a tag, a number's digits, a
/// word), without calling `memcpy` for it (see `push::push_str`).
#[inline(always)]
pub fn push_short(out: &mut String, s: &str) {
    crate::push::push_str(out, s);
}

/// Appends the decimal digits of `i` (what `write!(out, "{i}")` writes,
/// without the formatting machinery; see `push::push_int`).
#[inline]
pub fn push_int(i: i64, out: &mut String) {
    crate::push::push_int(out, i);
}

/// Whether `tag` is a void element (`crate::elements::VOID`), by a match the
/// compiler turns into a switch on the length rather than a scan of the list.
pub fn is_void(tag: &str) -> bool {
    matches!(
        tag,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Nonzero if any byte of `word` equals `b` (the classic zero-byte test on
/// `word ^ b…b`: exact as a yes/no answer, and the lowest flagged byte is
/// the lowest such byte; flags above it may be spurious).
#[inline(always)]
fn has_byte(word: u64, b: u8) -> u64 {
    let v = word ^ (ONES * u64::from(b));
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// The bytes of `word` that need escaping: the high bit of the lowest
/// such byte is set (higher bits may be spurious), 0 if there is none.
/// `<` (0x3C) and `>` (0x3E) are the bytes whose `| 0x02` is 0x3E; `&`
/// (0x26) and `'` (0x27) those whose `| 0x01` is 0x27; so text needs two
/// byte tests and attribute values three.
#[inline(always)]
fn special_mask(word: u64, attr: bool) -> u64 {
    let angle = has_byte(word | (ONES * 0x02), 0x3E);
    if attr {
        angle | has_byte(word | ONES, 0x27) | has_byte(word, b'"')
    } else {
        angle | has_byte(word, b'&')
    }
}

/// Whether byte `b` needs escaping (text: `& < >`; attributes also `" '`).
#[inline(always)]
fn is_special(b: u8, attr: bool) -> bool {
    matches!(b, b'&' | b'<' | b'>') || (attr && matches!(b, b'"' | b'\''))
}

#[inline(always)]
fn word_at(bytes: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The offset of the first byte at or after `i` that needs escaping.
/// Reads 8 bytes at a time; the last partial word is read as the string's
/// last 8 bytes with those already checked shifted out, so a string of 8
/// bytes or more never goes byte by byte.
#[inline(always)]
fn next_special(bytes: &[u8], mut i: usize, attr: bool) -> Option<usize> {
    let n = bytes.len();
    while let Some(word) = word_at(bytes, i) {
        let m = special_mask(word, attr);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i >= n {
        return None;
    }
    match n.checked_sub(8).and_then(|last| word_at(bytes, last)) {
        Some(word) => {
            // The last `n - i` (1 to 7) bytes, moved to the bottom; the
            // bytes shifted in are zeros, which are not special.
            let m = special_mask(word >> (8 * (8 - (n - i))), attr);
            (m != 0).then(|| i + (m.trailing_zeros() / 8) as usize)
        }
        // Shorter than a word: first tested whole (most have nothing to
        // escape), then byte by byte.
        None => {
            let rest = bytes.get(i..)?;
            if special_mask(short_word(rest), attr) == 0 {
                return None;
            }
            rest.iter()
                .position(|&b| is_special(b, attr))
                .map(|k| i + k)
        }
    }
}

/// The bytes of `b` (fewer than eight) in one word, some of them twice
/// and the rest zeros (never special): the first and last four bytes
/// overlapping, or the first, middle and last byte.
#[inline(always)]
fn short_word(b: &[u8]) -> u64 {
    let n = b.len();
    let u32_at = |i: usize| -> u64 {
        b.get(i..i + 4)
            .and_then(|c| <[u8; 4]>::try_from(c).ok())
            .map_or(0, |c| u64::from(u32::from_le_bytes(c)))
    };
    if n >= 4 {
        u32_at(0) | u32_at(n - 4) << 32
    } else {
        let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
        at(0) | at(n / 2) << 8 | at(n.wrapping_sub(1)) << 16
    }
}

/// Copies runs without special bytes whole. Most strings have none: that
/// path is small enough to inline; the rest is out of line.
#[inline(always)]
fn escape(s: &str, out: &mut String, attr: bool) {
    match next_special(s.as_bytes(), 0, attr) {
        None => push_short(out, s),
        Some(at) => escape_from(s, at, out, attr),
    }
}

/// Escapes `s`, whose first special byte is at `at`.
#[inline(never)]
fn escape_from(s: &str, mut at: usize, out: &mut String, attr: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        // Every special byte is ASCII, so `at` and `start` are char
        // boundaries.
        push_short(out, s.get(start..at).unwrap_or_default());
        // Each arm a constant length, so no call to copy it.
        match bytes.get(at) {
            Some(b'&') => out.push_str("&amp;"),
            Some(b'<') => out.push_str("&lt;"),
            Some(b'>') => out.push_str("&gt;"),
            Some(b'"') => out.push_str("&quot;"),
            _ => out.push_str("&#39;"),
        }
        start = at + 1;
        match next_special(bytes, start, attr) {
            Some(next) => at = next,
            None => break,
        }
    }
    push_short(out, s.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &str, attr: bool) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' if attr => out.push_str("&quot;"),
                '\'' if attr => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn escaping_matches_a_char_by_char_escape_at_every_position() {
        let pieces = ["a", "&", "<", ">", "\"", "'", "é", "→", "😀", " ", "0"];
        // Every special character at every offset around the 8-byte words.
        for len in 0..20 {
            for (k, p) in pieces.iter().enumerate() {
                for at in 0..=len {
                    let mut s = "x".repeat(at);
                    s.push_str(p);
                    s.push_str(&"y".repeat(len - at));
                    s.push_str(pieces[(k + len) % pieces.len()]);
                    for attr in [false, true] {
                        let mut out = String::from("pre");
                        escape(&s, &mut out, attr);
                        assert_eq!(out, format!("pre{}", naive(&s, attr)), "{s:?}");
                    }
                }
            }
        }
        let long = "A summary with <markup> & \"quotes\" and 'apostrophes' — ünïcode. ".repeat(9);
        let mut out = String::new();
        escape_attr(&long, &mut out);
        assert_eq!(out, naive(&long, true));
        out.clear();
        escape_text(&long, &mut out);
        assert_eq!(out, naive(&long, false));
    }

    #[test]
    fn short_strings_escape_like_a_char_by_char_escape() {
        // Strings shorter than a word, with each ASCII character at each
        // position (the word made of overlapping pieces).
        for len in 1..9 {
            for at in 0..len {
                for c in 1u8..128 {
                    let mut s: String = "abcdefgh".chars().take(len).collect();
                    s.replace_range(at..at + 1, &char::from(c).to_string());
                    for attr in [false, true] {
                        let mut out = String::new();
                        escape(&s, &mut out, attr);
                        assert_eq!(out, naive(&s, attr), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn void_elements_are_the_kernel_s() {
        for tag in crate::elements::VOID {
            assert!(is_void(tag), "{tag}");
        }
        for tag in [
            "td", "tr", "a", "p", "div", "html", "table", "script", "areas", "",
        ] {
            assert!(!is_void(tag), "{tag}");
        }
        assert_eq!(
            crate::elements::VOID.len(),
            13,
            "a void element was added: add it here too"
        );
    }

    #[test]
    fn integers_are_written_as_format_writes_them() {
        for i in [0, 7, -7, 10, 99, 100, -100, 12345, i64::MAX, i64::MIN] {
            let mut out = String::from("x");
            push_int(i, &mut out);
            assert_eq!(out, format!("x{i}"));
        }
    }
}
