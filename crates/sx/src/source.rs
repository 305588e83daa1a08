//! Source positions and the registry of source texts they point into.
//!
//! A [`Pos`] is eight bytes (source id + byte offset) so every list cell can
//! carry one cheaply; line and column are computed only when an error is shown.

use std::sync::{Mutex, OnceLock};

/// A position in a registered source: which source, and a byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pos {
    pub source: u32,
    pub offset: u32,
}

impl Default for Pos {
    fn default() -> Pos {
        Pos::NONE
    }
}

impl Pos {
    /// The position of values not read from any source (built at run time).
    pub const NONE: Pos = Pos {
        source: u32::MAX,
        offset: 0,
    };

    pub fn is_none(self) -> bool {
        self.source == u32::MAX
    }
}

struct SourceText {
    name: String,
    text: String,
    line_starts: Vec<u32>,
}

/// Where a position lies, in human terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The source's name: a file path, `<eval>`, `<stdin>`, ...
    pub name: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
    /// The whole text of that line, without its newline.
    pub line_text: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.name, self.line, self.col)
    }
}

impl Location {
    /// The rustc-style snippet: the source line and a caret under the column.
    /// A long line (minified or generated source) is cut to a window around
    /// the column, with `...` where text was left out.
    pub fn snippet(&self) -> String {
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        let col = self.col.saturating_sub(1) as usize;
        let chars: Vec<char> = self.line_text.chars().collect();
        let (start, end) = if chars.len() <= SNIPPET_WIDTH {
            (0, chars.len())
        } else {
            let start = col.saturating_sub(SNIPPET_WIDTH / 2).min(chars.len());
            (start, (start + SNIPPET_WIDTH).min(chars.len()))
        };
        let shown = chars.get(start..end).unwrap_or_default();
        let before = if start > 0 { "..." } else { "" };
        let after = if end < chars.len() { "..." } else { "" };
        let caret_pad: String = before
            .chars()
            .chain(shown.iter().take(col.saturating_sub(start)).copied())
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let text: String = shown.iter().collect();
        format!("{pad} |\n{gutter} | {before}{text}{after}\n{pad} | {caret_pad}^")
    }
}

/// The most characters of a source line an error snippet shows.
const SNIPPET_WIDTH: usize = 120;

fn registry() -> &'static Mutex<Vec<SourceText>> {
    static SOURCES: OnceLock<Mutex<Vec<SourceText>>> = OnceLock::new();
    SOURCES.get_or_init(|| Mutex::new(Vec::new()))
}

/// Registers a source text under a name and returns its id for [`Pos`].
///
/// Sources stay registered for the life of the process: positions inside
/// compiled code and values may outlive the evaluation that read them.
/// Anonymous snippets read at run time (`read-string`) are not registered.
pub fn register(name: &str, text: &str) -> u32 {
    let mut line_starts = vec![0u32];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            line_starts.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
        }
    }
    let mut sources = registry().lock().unwrap_or_else(|p| p.into_inner());
    let id = u32::try_from(sources.len()).unwrap_or(u32::MAX - 1);
    sources.push(SourceText {
        name: name.to_owned(),
        text: text.to_owned(),
        line_starts,
    });
    id
}

/// Resolves a position to file, line, column and the line's text.
pub fn locate(pos: Pos) -> Option<Location> {
    if pos.is_none() {
        return None;
    }
    let sources = registry().lock().unwrap_or_else(|p| p.into_inner());
    let src = sources.get(pos.source as usize)?;
    Some(locate_in(
        &src.name,
        &src.text,
        &src.line_starts,
        pos.offset,
    ))
}

/// Resolves an offset within a text that is not registered.
pub fn locate_text(name: &str, text: &str, offset: u32) -> Location {
    let mut line_starts = vec![0u32];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            line_starts.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
        }
    }
    locate_in(name, text, &line_starts, offset)
}

fn locate_in(name: &str, text: &str, line_starts: &[u32], offset: u32) -> Location {
    let offset = (offset as usize).min(text.len());
    let line_idx = match line_starts.binary_search(&(offset as u32)) {
        Ok(i) => i,
        Err(i) => i.saturating_sub(1),
    };
    let start = line_starts.get(line_idx).copied().unwrap_or(0) as usize;
    let end = text
        .get(start..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |n| start + n);
    let line_text = text.get(start..end).unwrap_or("").trim_end_matches('\r');
    let col = text
        .get(start..offset)
        .map_or(offset - start, |s| s.chars().count())
        + 1;
    Location {
        name: name.to_owned(),
        line: u32::try_from(line_idx + 1).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        line_text: line_text.to_owned(),
    }
}
