//! `render-html`: element values to HTML text (DESIGN §3, "Markup").
//!
//! Everything is written into one `String`; no node makes a string of its
//! own. Text is escaped by construction (`& < >`, and in attribute values
//! also `"` and `'`); `(raw! s)` is the only way to emit HTML unescaped.
//! URL-valued attributes whose scheme can run script (`javascript:`,
//! `vbscript:`, non-image `data:`) are replaced by [`UNSAFE_URL`].

use sx::Value;
use sx::value::Element;

use crate::RenderError;

/// What an unsafe URL attribute value is replaced with: a URL that goes
/// nowhere, and says why when someone inspects the page.
pub const UNSAFE_URL: &str = "about:invalid#sx-unsafe-url";

/// Renders `v` as HTML, appending to `out`. On an error `out` may hold part
/// of the output; callers that need all-or-nothing render into a fresh buffer.
pub fn render_html(v: &Value, out: &mut String) -> Result<(), RenderError> {
    node(v, out, 0)
}

/// Renders `v` as an HTML string.
pub fn render_html_string(v: &Value) -> Result<String, RenderError> {
    let mut out = String::with_capacity(256);
    node(v, &mut out, 0)?;
    Ok(out)
}

/// How many element levels pass between checks that the native stack has
/// room (checking at every element costs more than rendering it).
const STACK_CHECK_EVERY: u32 = 32;

fn node(v: &Value, out: &mut String, depth: u32) -> Result<(), RenderError> {
    // The common cases inline; the rest (and the stack check, whose
    // closure would make every call's frame bigger) out of line.
    match v {
        Value::Str(s) => {
            escape_text(s, out);
            Ok(())
        }
        Value::Int(i) => {
            // No temporary string: this is the hottest case in tables.
            push_int(*i, out);
            Ok(())
        }
        Value::Element(e) if !depth.is_multiple_of(STACK_CHECK_EVERY) => element(e, out, depth + 1),
        Value::List(l) => {
            for child in l.iter() {
                node(child, out, depth + 1)?;
            }
            Ok(())
        }
        Value::Nil | Value::Bool(false) => Ok(()),
        _ => rare_node(v, out, depth),
    }
}

#[inline(never)]
fn rare_node(v: &Value, out: &mut String, depth: u32) -> Result<(), RenderError> {
    match v {
        Value::Element(e) => {
            stacker::maybe_grow(256 * 1024, 2 * 1024 * 1024, || element(e, out, depth + 1))
        }
        Value::Float(_) => {
            out.push_str(&sx::printer::number_text(v));
            Ok(())
        }
        Value::Cell(c) => node(&c.borrow(), out, depth),
        Value::Bool(true) | Value::Symbol(_) | Value::Keyword(_) => {
            let mut text = String::new();
            sx::printer::to_str(v, &mut text);
            escape_text(&text, out);
            Ok(())
        }
        other => Err(not_markup(other, "")),
    }
}

fn not_markup(v: &Value, context: &str) -> RenderError {
    let shown: String = sx::printer::display(v).chars().take(60).collect();
    RenderError::NotMarkup {
        what: format!("{} {shown}", v.type_of().as_str()),
        context: context.to_owned(),
    }
}

fn element(e: &Element, out: &mut String, depth: u32) -> Result<(), RenderError> {
    match &*e.tag {
        "<>" => {
            for child in &e.children {
                node(child, out, depth)?;
            }
            return Ok(());
        }
        "raw!" => {
            for child in &e.children {
                if let Value::Str(s) = child {
                    out.push_str(s);
                }
            }
            return Ok(());
        }
        _ => {}
    }
    out.push('<');
    out.push_str(&e.tag);
    for (name, value) in &e.attrs {
        attribute(&e.tag, name.as_str(), value, out)?;
    }
    out.push('>');
    if is_void(&e.tag) {
        return Ok(());
    }
    for child in &e.children {
        node(child, out, depth)?;
    }
    out.push_str("</");
    out.push_str(&e.tag);
    out.push('>');
    Ok(())
}

fn attribute(tag: &str, name: &str, value: &Value, out: &mut String) -> Result<(), RenderError> {
    if !valid_attribute_name(name) {
        return Err(RenderError::BadAttribute(name.to_owned()));
    }
    let text = match value {
        // Functions are event handlers (`:on-click (fn ...)`) that only the
        // browser runtime can attach when it hydrates an island.
        Value::Nil | Value::Bool(false) | Value::Closure(_) | Value::Native(_) => return Ok(()),
        Value::Bool(true) => {
            out.push(' ');
            out.push_str(name);
            return Ok(());
        }
        Value::Str(s) => {
            // The common case: no temporary string.
            let text = if is_url_attribute(name) && !safe_url(tag, name, s) {
                UNSAFE_URL
            } else {
                s
            };
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_attr(text, out);
            out.push('"');
            return Ok(());
        }
        Value::Int(i) => {
            // Digits and `-` need no escaping, and no URL has a scheme made
            // of them.
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            push_int(*i, out);
            out.push('"');
            return Ok(());
        }
        Value::List(items) => {
            // A list of classes (or any words): joined with spaces,
            // nil/false items left out.
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
                        sx::printer::to_str(item, &mut text);
                    }
                    other => return Err(not_markup(other, &format!(" in attribute {name}"))),
                }
            }
            text
        }
        Value::Float(_) | Value::Keyword(_) | Value::Symbol(_) => {
            let mut text = String::new();
            sx::printer::to_str(value, &mut text);
            text
        }
        Value::Cell(c) => return attribute(tag, name, &c.borrow(), out),
        other => {
            return Err(not_markup(
                other,
                &format!(" as the value of attribute {name}"),
            ));
        }
    };
    let text = if is_url_attribute(name) && !safe_url(tag, name, &text) {
        UNSAFE_URL
    } else {
        &text
    };
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_attr(text, out);
    out.push('"');
    Ok(())
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
    if !url.contains(':') {
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

/// Appends `s` with `& < >` escaped.
pub fn escape_text(s: &str, out: &mut String) {
    escape(s, out, false);
}

/// Appends `s` with `& < > " '` escaped.
pub fn escape_attr(s: &str, out: &mut String) {
    escape(s, out, true);
}

/// Appends the decimal digits of `i` (what `write!(out, "{i}")` writes,
/// without the formatting machinery).
pub fn push_int(i: i64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push('-');
    }
    // At most 20 ASCII digits: pushing them one by one beats validating
    // them as UTF-8 and copying.
    for &d in &buf[at..] {
        out.push(char::from(d));
    }
}

/// Whether `tag` is a void element (`sx::elements::VOID`), by a match the
/// compiler turns into a switch on the length rather than a scan of the list.
fn is_void(tag: &str) -> bool {
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
/// `word ^ b…b`: exact as a yes/no answer).
#[inline(always)]
fn has_byte(word: u64, b: u8) -> u64 {
    let v = word ^ (ONES * u64::from(b));
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// The bytes of `word` that need escaping: the high bit of the lowest
/// such byte is set (higher bits may be spurious), 0 if there is none.
#[inline(always)]
fn special_mask(word: u64, attr: bool) -> u64 {
    let mut m = has_byte(word, b'&') | has_byte(word, b'<') | has_byte(word, b'>');
    if attr {
        m |= has_byte(word, b'"') | has_byte(word, b'\'');
    }
    m
}

/// Copies runs without special bytes whole. Reads 8 bytes at a time (the
/// last few padded with zeros, which are not special) and jumps straight
/// to the first special byte of a word.
#[inline]
fn escape(s: &str, out: &mut String, attr: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let word = match bytes.get(i..i + 8) {
            Some(chunk) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                u64::from_le_bytes(w)
            }
            None => bytes[i..]
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
        };
        let m = special_mask(word, attr);
        if m == 0 {
            i += 8;
            continue;
        }
        let at = i + (m.trailing_zeros() / 8) as usize;
        // Every special byte is ASCII, so `at` and `start` are char
        // boundaries.
        out.push_str(s.get(start..at).unwrap_or_default());
        out.push_str(match bytes[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        start = at + 1;
        i = at + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
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
    fn void_elements_are_the_kernel_s() {
        for tag in sx::elements::VOID {
            assert!(is_void(tag), "{tag}");
        }
        for tag in [
            "td", "tr", "a", "p", "div", "html", "table", "script", "areas", "",
        ] {
            assert!(!is_void(tag), "{tag}");
        }
        assert_eq!(
            sx::elements::VOID.len(),
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
