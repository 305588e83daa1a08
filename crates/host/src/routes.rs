//! Path patterns (`/posts/<slug>`, `/files/<path...>`) and the route table
//! built from the `defpage` and `defhandler` declarations in SX.

use std::fmt;

/// One segment of a path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Must equal the request's segment exactly.
    Literal(String),
    /// `<name>`: any one non-empty segment, bound to `name`.
    Param(String),
    /// `<name...>`: the rest of the path (one or more segments), bound to
    /// `name` with its slashes.
    Rest(String),
}

/// A parsed path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

/// Why a path pattern is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid path pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl Pattern {
    /// Parses `/a/<b>/c` or `/files/<path...>`.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let err = |reason: &str| PatternError {
            pattern: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(err("it must start with /"));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            if let Some(inner) = part.strip_prefix('<').and_then(|p| p.strip_suffix('>')) {
                let (name, is_rest) = match inner.strip_suffix("...") {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !valid {
                    return Err(err(&format!(
                        "parameter <{inner}> needs a name of letters, digits, - or _"
                    )));
                }
                if segments.iter().any(|s| match s {
                    Segment::Param(n) | Segment::Rest(n) => n == name,
                    Segment::Literal(_) => false,
                }) {
                    return Err(err(&format!("parameter <{name}> appears twice")));
                }
                if is_rest {
                    if i + 1 != count {
                        return Err(err(&format!("<{name}...> must be the last segment")));
                    }
                    segments.push(Segment::Rest(name.to_owned()));
                } else {
                    segments.push(Segment::Param(name.to_owned()));
                }
            } else if part.contains(['<', '>']) {
                return Err(err(&format!(
                    "segment {part:?}: a parameter is a whole segment, like <name>"
                )));
            } else if part.is_empty() && i + 1 != count {
                return Err(err("empty segment (//)"));
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(Pattern {
            text: text.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Matches a request path (already split on `/` and percent-decoded
    /// per segment), returning the bound parameters.
    pub fn matches(&self, path: &[String]) -> Option<Vec<(String, String)>> {
        let mut params = Vec::new();
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => {
                    if path.get(i)? != l {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = path.get(i)?;
                    if value.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), value.clone()));
                }
                Segment::Rest(name) => {
                    let rest = path.get(i..)?;
                    if rest.is_empty() || rest.iter().all(String::is_empty) {
                        return None;
                    }
                    params.push((name.clone(), rest.join("/")));
                    return Some(params);
                }
            }
            i += 1;
        }
        (i == path.len()).then_some(params)
    }

    /// Orders routes so the most specific is tried first: more literal
    /// segments first, rest parameters last.
    pub fn specificity(&self) -> (usize, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let no_rest = usize::from(!self.segments.iter().any(|s| matches!(s, Segment::Rest(_))));
        (no_rest, self.segments.len(), literals)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits a request path into percent-decoded segments. `None` when a
/// segment does not decode to UTF-8 or contains a `/` or NUL once decoded.
pub fn split_path(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/')
        .map(|seg| {
            let decoded = percent_encoding::percent_decode_str(seg)
                .decode_utf8()
                .ok()?
                .into_owned();
            if decoded.contains(['/', '\0']) {
                None
            } else {
                Some(decoded)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        Pattern::parse(pattern).ok()?.matches(&split_path(path)?)
    }

    #[test]
    fn literal_and_params() {
        assert_eq!(m("/", "/"), Some(vec![]));
        assert_eq!(m("/posts", "/posts"), Some(vec![]));
        assert_eq!(m("/posts", "/posts/x"), None);
        assert_eq!(
            m("/posts/<slug>", "/posts/hello"),
            Some(vec![("slug".into(), "hello".into())])
        );
        assert_eq!(m("/posts/<slug>", "/posts/"), None);
        assert_eq!(m("/posts/<slug>", "/posts"), None);
        assert_eq!(
            m("/posts/<slug>", "/posts/a%20b"),
            Some(vec![("slug".into(), "a b".into())])
        );
        assert_eq!(m("/posts/<slug>", "/posts/a%2Fb"), None);
        assert_eq!(m("/posts/<slug>", "/posts/%FF"), None);
        assert_eq!(
            m("/f/<path...>", "/f/a/b/c"),
            Some(vec![("path".into(), "a/b/c".into())])
        );
        assert_eq!(m("/f/<path...>", "/f"), None);
    }

    #[test]
    fn bad_patterns() {
        assert!(Pattern::parse("posts").is_err());
        assert!(Pattern::parse("/a/<>").is_err());
        assert!(Pattern::parse("/a/<b c>").is_err());
        assert!(Pattern::parse("/a/x<b>").is_err());
        assert!(Pattern::parse("/a/<b>/<b>").is_err());
        assert!(Pattern::parse("/a/<b...>/c").is_err());
        assert!(Pattern::parse("/a//b").is_err());
    }

    #[test]
    fn specificity_prefers_literals() {
        let lit = Pattern::parse("/posts/new").map(|p| p.specificity()).ok();
        let param = Pattern::parse("/posts/<slug>")
            .map(|p| p.specificity())
            .ok();
        assert!(lit > param);
    }
}
