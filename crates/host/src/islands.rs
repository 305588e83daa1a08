//! The SX source the browser needs to hydrate islands: every `defisland`
//! in the library and, transitively, the top-level definitions it refers
//! to (components, functions, macros), in load order. The layout embeds it
//! in `<script type="text/sx">` (see lib/host/layout.sx).

use std::collections::{HashMap, HashSet};

use sx::Value;

/// The name a top-level definition form defines, and whether it is an island.
fn defined_name(form: &Value) -> Option<(&'static str, bool)> {
    let Value::List(l) = form else { return None };
    let head = l.first()?.as_symbol()?.as_str();
    let target = l.nth(1)?;
    let name = match (head, target) {
        ("define" | "defcomp" | "defisland" | "defmacro", Value::Symbol(s)) => s.as_str(),
        ("define", Value::List(sig)) => sig.first()?.as_symbol()?.as_str(),
        _ => return None,
    };
    Some((name, head == "defisland"))
}

/// Every symbol in `v`.
fn symbols(v: &Value, out: &mut Vec<&'static str>) {
    let mut stack = vec![v.clone()];
    while let Some(v) = stack.pop() {
        match v {
            Value::Symbol(s) => out.push(s.as_str()),
            Value::List(l) => stack.extend(l.iter().cloned()),
            Value::Dict(d) => stack.extend(d.iter().map(|(_, x)| x.clone())),
            _ => {}
        }
    }
}

/// The islands' source, or an empty string when there are none.
pub fn island_source(forms: &[Value]) -> String {
    let mut defs: HashMap<&'static str, usize> = HashMap::new();
    let mut islands = Vec::new();
    for (i, form) in forms.iter().enumerate() {
        if let Some((name, island)) = defined_name(form) {
            defs.insert(name, i);
            if island {
                islands.push(i);
            }
        }
    }
    let mut wanted: HashSet<usize> = HashSet::new();
    let mut work = islands;
    while let Some(i) = work.pop() {
        if !wanted.insert(i) {
            continue;
        }
        let mut syms = Vec::new();
        if let Some(form) = forms.get(i) {
            symbols(form, &mut syms);
        }
        work.extend(syms.iter().filter_map(|s| defs.get(s).copied()));
    }
    let mut chosen: Vec<usize> = wanted.into_iter().collect();
    chosen.sort_unstable();
    let mut out = String::new();
    for i in chosen {
        let Some(form) = forms.get(i) else { continue };
        match sx::printer::serialize(form) {
            Ok(text) => {
                out.push_str(&text);
                out.push('\n');
            }
            Err(e) => tracing::warn!("an island definition cannot be sent to the browser: {e}"),
        }
    }
    // Inside <script>, `</` could end the element early; it can only occur
    // inside SX strings, where \u{2f} is the same `/`.
    out.replace("</", "<\\u{2f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn islands_bring_what_they_use() {
        let src = r#"
            (define (unused) 1)
            (define (helper x) (* 2 x))
            (defcomp ~label (&key text) (span text "</script>"))
            (defisland ~counter (&key start) (~label :text (helper start)))
            (defpage p "/" (req) (~counter :start 1))
        "#;
        let forms = sx::reader::read_all(src, "t.sx", false).unwrap_or_default();
        let out = island_source(&forms);
        assert!(out.contains("(define (helper x)"), "{out}");
        assert!(out.contains("(defcomp ~label"), "{out}");
        assert!(out.contains("(defisland ~counter"), "{out}");
        assert!(!out.contains("unused") && !out.contains("defpage"), "{out}");
        assert!(
            !out.contains("</script>") && out.contains("<\\u{2f}script>"),
            "{out}"
        );
        let back = sx::reader::read_all(&out, "back.sx", false);
        assert!(back.is_ok_and(|f| f.len() == 3));
    }
}
