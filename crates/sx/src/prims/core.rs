//! Equality, type predicates, errors, and the functions that reach the
//! evaluator itself (`apply`, `eval`, `macroexpand`, `gensym`).

use super::arg;
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::printer;
use crate::rcstr::RcStr;
use crate::symbol::Symbol;
use crate::value::{Element, TypeName, Value};
use crate::vm::Special;
use std::rc::Rc;

pub(crate) fn install(i: &mut Interp) {
    i.define_native("=", 1, None, |_, a| {
        Ok(Value::Bool(a.windows(2).all(|w| w[0].equals(&w[1]))))
    });
    i.define_native("!=", 2, None, |_, a| {
        Ok(Value::Bool(!a.windows(2).all(|w| w[0].equals(&w[1]))))
    });
    i.define_native("not=", 2, None, |_, a| {
        Ok(Value::Bool(!a.windows(2).all(|w| w[0].equals(&w[1]))))
    });
    i.define_native("not", 1, Some(1), |_, a| {
        Ok(Value::Bool(!arg(a, 0).truthy()))
    });
    i.define_native("identity", 1, Some(1), |_, a| Ok(arg(a, 0).clone()));

    i.define_native("nil?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Nil))
    });
    i.define_native("boolean?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Bool(_)))
    });
    i.define_native("number?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Int(_) | Value::Float(_)))
    });
    i.define_native("integer?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Int(_)))
    });
    i.define_native("float?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Float(_)))
    });
    i.define_native("string?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Str(_)))
    });
    i.define_native("symbol?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Symbol(_)))
    });
    i.define_native("keyword?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Keyword(_)))
    });
    i.define_native("list?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::List(_)))
    });
    i.define_native("dict?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Dict(_)))
    });
    i.define_native("fn?", 1, Some(1), |_, a| {
        is(a, |v| {
            v.type_of() == TypeName::Function || v.type_of() == TypeName::Component
        })
    });
    i.define_native("macro?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Macro(_)))
    });
    i.define_native("component?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Component(_)))
    });
    i.define_native("element?", 1, Some(1), |_, a| {
        is(a, |v| matches!(v, Value::Element(_)))
    });
    i.define_native("empty?", 1, Some(1), |_, a| is_empty(arg(a, 0)));
    i.define_native("type-of", 1, Some(1), |_, a| {
        Ok(Value::kw(arg(a, 0).type_of().as_str()))
    });

    i.define_native("str", 0, None, |i, a| {
        // A few calls can double a string to gigabytes: check the heap
        // budget before building a big one, not after.
        let strings: usize = a
            .iter()
            .map(|v| if let Value::Str(s) = v { s.len() } else { 0 })
            .fold(0, usize::saturating_add);
        if strings > BIG_RESULT_BYTES {
            i.ensure_heap(strings)?;
        }
        Ok(str_of(&mut i.str_scratch, a))
    });
    i.define_native("raise", 1, Some(1), |_, a| {
        Err(EvalError::raised(arg(a, 0).clone()))
    });
    i.define_native("error", 1, None, |_, a| {
        let mut msg = String::new();
        for (n, v) in a.iter().enumerate() {
            if n > 0 {
                msg.push(' ');
            }
            printer::to_str(v, &mut msg);
        }
        Err(
            EvalError::raised(crate::error::error_dict(ErrorKind::Raise, &msg))
                .with_kind_message(msg),
        )
    });
    i.define_native("gensym", 0, Some(1), |interp, a| {
        let prefix = match a.first() {
            Some(Value::Str(s)) => s.to_string(),
            Some(Value::Symbol(s)) => s.as_str().to_owned(),
            Some(other) => {
                return Err(EvalError::type_error(
                    "gensym",
                    "a string or symbol prefix",
                    other,
                ));
            }
            None => "g".to_owned(),
        };
        let sym = interp.gensym(&prefix);
        // The name must read back as this symbol, or serialize breaks.
        match crate::reader::read_one(sym.as_str(), "gensym") {
            Ok(Value::Symbol(s)) if s == sym => Ok(Value::Symbol(sym)),
            _ => Err(EvalError::new(
                ErrorKind::Value,
                format!("gensym: prefix {prefix:?} does not make a readable symbol"),
            )),
        }
    });
    i.define_native("element", 1, None, |_, a| {
        // (element "x-foo" :attr v ... children...): leading keyword/value
        // pairs are attributes, as in an element form.
        let tag = super::expect_str("element", arg(a, 0))?.clone();
        // A tag must read back as one symbol: a letter, then letters,
        // digits, `-`, `_`, `.` or `:` (custom elements use `-`).
        let valid = tag.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !valid {
            return Err(EvalError::new(
                ErrorKind::Value,
                format!("element: invalid tag name {tag:?}"),
            ));
        }
        let rest = a.get(1..).unwrap_or(&[]);
        let mut nattrs = 0;
        while matches!(rest.get(2 * nattrs), Some(Value::Keyword(_))) && rest.len() > 2 * nattrs + 1
        {
            nattrs += 1;
        }
        Ok(super::make_element(tag, nattrs, rest.to_vec()))
    });
    i.define_native("raw!", 0, None, |_, a| {
        // (raw! "html"...): the one way to emit HTML unescaped. Kept as an
        // element with the reserved tag `raw!`, whose children are strings.
        let mut html = String::new();
        for v in a.iter() {
            match v {
                Value::Str(s) => html.push_str(s),
                Value::Nil => {}
                other => return Err(EvalError::type_error("raw!", "strings", other)),
            }
        }
        Ok(Value::Element(Rc::new(Element {
            tag: RcStr::from("raw!"),
            attrs: Vec::new(),
            children: vec![Value::Str(RcStr::from(html))],
        })))
    });
    // Compiled calls render their argument straight into a buffer (the
    // machine's render mode); this is the function value, for `apply`,
    // `map` and other indirect calls.
    i.define_native("render-html", 1, Some(1), |_, a| {
        Ok(Value::str(&crate::html::render_html_string(arg(a, 0))?))
    });
    i.define_native("%island", 3, Some(3), |_, a| {
        // What a `defisland` body is wrapped in (see compiler::expand): the
        // island's server HTML inside a marker naming it and carrying its
        // props, which the browser runtime hydrates.
        let name = match arg(a, 0) {
            Value::Symbol(s) => s.as_str(),
            other => return Err(EvalError::type_error("%island", "a symbol", other)),
        };
        let mut props = super::expect_dict("%island", arg(a, 1))?;
        let nil_keys: Vec<Value> = props
            .iter()
            .filter(|(_, v)| v.is_nil())
            .map(|(k, _)| k.clone())
            .collect();
        for k in &nil_keys {
            props.remove(k);
        }
        let props = crate::printer::serialize(&Value::Dict(props)).map_err(|e| {
            EvalError::new(
                ErrorKind::Value,
                format!(
                    "island {name}: its props must be data (they are sent to the browser): {e}"
                ),
            )
        })?;
        let body = std::mem::take(&mut a[2]);
        Ok(Value::Element(Rc::new(Element {
            tag: RcStr::from("sx-island"),
            attrs: vec![
                (Symbol::new("data-sx-island"), Value::Str(RcStr::from(name))),
                (Symbol::new("data-sx-props"), Value::Str(RcStr::from(props))),
            ],
            children: vec![body],
        })))
    });
    i.define_native("run-scripted", 2, Some(2), run_scripted);
    i.define_special("apply", 2, None, unreachable_special, Special::Apply);
    i.define_special("eval", 1, Some(1), unreachable_special, Special::Eval);
    i.define_native("macroexpand-1", 1, Some(1), |interp, a| {
        Ok(expand_once(interp, arg(a, 0))?.unwrap_or_else(|| arg(a, 0).clone()))
    });
    i.define_native("macroexpand", 1, Some(1), |interp, a| {
        let mut form = arg(a, 0).clone();
        for _ in 0..10_000 {
            match expand_once(interp, &form)? {
                Some(next) => form = next,
                None => return Ok(form),
            }
        }
        Err(EvalError::new(
            ErrorKind::Syntax,
            "macroexpand: expansion did not terminate after 10000 steps",
        ))
    });
}

/// Natives marked special are carried out by the machine, never called.
fn unreachable_special(_: &mut Interp, _: &mut [Value]) -> Result<Value> {
    Err(EvalError::new(
        ErrorKind::Value,
        "internal error: special native called directly",
    ))
}

fn is(a: &[Value], pred: fn(&Value) -> bool) -> Result<Value> {
    Ok(Value::Bool(pred(arg(a, 0))))
}

pub(crate) fn is_empty(v: &Value) -> Result<Value> {
    Ok(Value::Bool(match v {
        Value::Nil => true,
        Value::List(l) => l.is_empty(),
        Value::Str(s) => s.is_empty(),
        Value::Dict(d) => d.is_empty(),
        other => {
            return Err(EvalError::type_error(
                "empty?",
                "a list, string, dict or nil",
                other,
            ));
        }
    }))
}

/// Expands `form` once if its head names a macro.
fn expand_once(interp: &mut Interp, form: &Value) -> Result<Option<Value>> {
    let Value::List(l) = form else {
        return Ok(None);
    };
    let Some(Value::Symbol(s)) = l.first() else {
        return Ok(None);
    };
    match interp.lookup(s.as_str()) {
        Some(Value::Macro(m)) => interp
            .call_value(&Value::Closure(m), l.rest().to_vec())
            .map(Some),
        _ => Ok(None),
    }
}

/// Results larger than this are checked against the heap budget before
/// they are built.
pub(crate) const BIG_RESULT_BYTES: usize = 1 << 20;

/// The most capacity the scratch buffer keeps between calls.
const STR_SCRATCH_KEEP: usize = 1024;

/// `(str a b ...)`: the concatenation of each value's `str` text, built in
/// the interpreter's scratch buffer (a field rather than a thread-local:
/// the thread-local's access and borrow flag were a fifth of a short call).
fn str_of(scratch: &mut String, args: &[Value]) -> Value {
    scratch.clear();
    for v in args {
        printer::to_str(v, scratch);
    }
    let v = Value::str(scratch);
    if scratch.capacity() > STR_SCRATCH_KEEP {
        *scratch = String::new();
    }
    v
}

/// `(run-scripted thunk answer)`: calls `thunk` with its IO scripted. Each
/// `(perform op args...)` inside it is answered by `(answer op args)`
/// instead of a host (DESIGN §3: the same code under scripted IO answers,
/// with a log of every request); an error raised by `answer` is raised at
/// the `perform`, as a failing host's would be. Returns `{:value v :log
/// ((op args...) ...)}`, the requests in the order made.
fn run_scripted(interp: &mut Interp, a: &mut [Value]) -> Result<Value> {
    use crate::vm::{Machine, Outcome};
    let thunk = arg(a, 0).clone();
    let answer = arg(a, 1).clone();
    let callable = |v: &Value| matches!(v.type_of(), TypeName::Function | TypeName::Component);
    if !callable(&thunk) || !callable(&answer) {
        return Err(EvalError::new(
            ErrorKind::Type,
            "run-scripted takes a function of no arguments and an answering function (fn (op args) ...)",
        ));
    }
    let mut machine = Machine::new(thunk, Vec::new());
    let mut log = Vec::new();
    let mut outcome = machine.run(interp)?;
    loop {
        match outcome {
            Outcome::Done(value) => {
                let mut d = crate::dict::Dict::new();
                for (k, v) in [
                    ("value", value),
                    ("log", Value::List(log.into_iter().collect())),
                ] {
                    if let Ok(key) = crate::dict::Key::new(Value::Keyword(Symbol::new(k))) {
                        d.insert(key, v);
                    }
                }
                return Ok(Value::Dict(d));
            }
            Outcome::Perform(req) => {
                let args: crate::value::List = req.args.iter().cloned().collect();
                log.push(Value::List(
                    std::iter::once(req.op.clone()).chain(req.args).collect(),
                ));
                outcome = match interp.call_value(&answer, vec![req.op, Value::List(args)]) {
                    Ok(v) => machine.resume(interp, v)?,
                    Err(e) if e.kind == ErrorKind::Budget => return Err(e),
                    Err(e) => machine.resume_error(interp, e)?,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::prims::test_support::ev;

    /// `str` of short and longer pieces, integers at the extremes, nil,
    /// non-ASCII text and values printed by the general printer.
    #[test]
    fn str_short_and_long() {
        assert_eq!(ev(r#"(str "w" 1234)"#), r#""w1234""#);
        assert_eq!(ev(r#"(str)"#), r#""""#);
        assert_eq!(
            ev(r#"(str nil "a" nil -9223372036854775808)"#),
            r#""a-9223372036854775808""#
        );
        assert_eq!(ev(r#"(str "日本" 1 "😀")"#), r#""日本1😀""#);
        assert_eq!(ev(r#"(str "a" :k 1.5 'sym)"#), r#""a:k1.5sym""#);
        let piece = "x".repeat(31);
        for (extra, total) in [("", 64), ("y", 65)] {
            let got = ev(&format!(r#"(len (str "{piece}" 12 "{piece}{extra}"))"#));
            assert_eq!(got, total.to_string());
        }
        assert_eq!(
            ev(&format!(r#"(str "{piece}" "é" "{piece}")"#)),
            format!(r#""{piece}é{piece}""#)
        );
    }
}
