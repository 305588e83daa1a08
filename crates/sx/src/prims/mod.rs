//! Primitives: the functions implemented in Rust, grouped by subject.
//!
//! Each submodule has an `install` that registers its functions. Argument
//! counts are checked by the machine from the registered arity; argument
//! types are checked here with the `expect_*` helpers so every error names
//! the primitive and what it expected.

pub(crate) mod arith;
mod core;
pub(crate) mod data;
mod dicts;
mod lists;
mod strings;

use crate::rcstr::RcStr;
use std::rc::Rc;

use crate::dict::{Dict, Key};
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::symbol::Symbol;
use crate::value::{Element, List, Value};
use crate::vm::Inline;

pub(crate) fn install(interp: &mut Interp) {
    arith::install(interp);
    core::install(interp);
    strings::install(interp);
    lists::install(interp);
    dicts::install(interp);
    data::install(interp);
}

/// The argument at `i` (arity is checked before a native runs; this keeps
/// indexing panic-free regardless).
pub(crate) fn arg(args: &[Value], i: usize) -> &Value {
    const NIL: &Value = &Value::Nil;
    args.get(i).unwrap_or(NIL)
}

pub(crate) fn expect_int(name: &str, v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(EvalError::type_error(name, "an integer", other)),
    }
}

/// A non-negative integer usable as an index or count.
pub(crate) fn expect_index(name: &str, v: &Value) -> Result<usize> {
    let i = expect_int(name, v)?;
    usize::try_from(i).map_err(|_| {
        EvalError::new(
            ErrorKind::Value,
            format!("{name}: expected a non-negative integer, got {i}"),
        )
    })
}

pub(crate) fn expect_number(name: &str, v: &Value) -> Result<f64> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(EvalError::type_error(name, "a number", other)),
    }
}

pub(crate) fn expect_str<'a>(name: &str, v: &'a Value) -> Result<&'a RcStr> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(EvalError::type_error(name, "a string", other)),
    }
}

/// A list; `nil` counts as the empty list.
pub(crate) fn expect_list(name: &str, v: &Value) -> Result<List> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Nil => Ok(List::EMPTY),
        other => Err(EvalError::type_error(name, "a list", other)),
    }
}

/// A dict; `nil` counts as the empty dict.
pub(crate) fn expect_dict(name: &str, v: &Value) -> Result<Dict> {
    match v {
        Value::Dict(d) => Ok(d.clone()),
        Value::Nil => Ok(Dict::new()),
        other => Err(EvalError::type_error(name, "a dict", other)),
    }
}

pub(crate) fn expect_key(name: &str, v: &Value) -> Result<Key> {
    expect_key_owned(name, v.clone())
}

/// [`expect_key`] of a value the caller gives up (no reference count).
pub(crate) fn expect_key_owned(name: &str, v: Value) -> Result<Key> {
    Key::new(v).map_err(|bad| {
        EvalError::type_error(name, "a dict key (keyword, string or finite number)", &bad)
    })
}

pub(crate) fn expect_symbol_name(name: &str, v: &Value) -> Result<Symbol> {
    match v {
        Value::Symbol(s) | Value::Keyword(s) => Ok(*s),
        Value::Str(s) => Ok(Symbol::new(s)),
        other => Err(EvalError::type_error(
            name,
            "a symbol, keyword or string",
            other,
        )),
    }
}

/// Builds a dict from alternating keys and values.
pub(crate) fn dict_from_pairs(name: &str, items: Vec<Value>) -> Result<Value> {
    if !items.len().is_multiple_of(2) {
        return Err(EvalError::new(
            ErrorKind::Arity,
            format!(
                "{name}: expected key value pairs, got an odd number of arguments ({})",
                items.len()
            ),
        ));
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((expect_key(name, &k)?, v));
    }
    Ok(Value::Dict(pairs.into_iter().collect()))
}

/// Builds an element from `nattrs` name/value pairs then children.
/// Attributes whose value is nil are kept (the renderer omits them).
pub(crate) fn make_element(tag: RcStr, nattrs: usize, items: Vec<Value>) -> Value {
    let mut attrs = Vec::with_capacity(nattrs);
    let mut it = items.into_iter();
    for _ in 0..nattrs {
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            break;
        };
        let name = match k {
            Value::Keyword(s) | Value::Symbol(s) => s,
            Value::Str(s) => Symbol::new(&s),
            _ => continue,
        };
        attrs.push((name, v));
    }
    Value::Element(Rc::new(Element {
        tag,
        attrs,
        children: it.collect(),
    }))
}

/// One-argument inlined builtins.
pub(crate) fn inline1(op: Inline, a: Value) -> Result<Value> {
    match op {
        Inline::Not => Ok(Value::Bool(!a.truthy())),
        Inline::IsNil => Ok(Value::Bool(a.is_nil())),
        Inline::Inc => match a {
            Value::Int(i) => i
                .checked_add(1)
                .map(Value::Int)
                .ok_or_else(|| arith::overflow("inc")),
            Value::Float(f) => Ok(Value::Float(f + 1.0)),
            other => Err(EvalError::type_error("inc", "a number", &other)),
        },
        Inline::Dec => match a {
            Value::Int(i) => i
                .checked_sub(1)
                .map(Value::Int)
                .ok_or_else(|| arith::overflow("dec")),
            Value::Float(f) => Ok(Value::Float(f - 1.0)),
            other => Err(EvalError::type_error("dec", "a number", &other)),
        },
        Inline::First => lists::first(&a),
        Inline::Rest => lists::rest(&a),
        Inline::IsEmpty => core::is_empty(&a),
        Inline::IsList => Ok(Value::Bool(matches!(a, Value::List(_)))),
        Inline::HofIntact => Ok(Value::Bool(true)),
        Inline::ReverseOwned => lists::reverse_owned(a),
        Inline::RenderHtml => Ok(Value::str(&crate::html::render_html_string(&a)?)),
        _ => Err(EvalError::new(
            ErrorKind::Arity,
            format!("{}: wrong number of arguments", op.name()),
        )),
    }
}

/// Two-argument inlined builtins, with the integer cases first.
pub(crate) fn inline2(op: Inline, a: Value, b: Value) -> Result<Value> {
    // Consing onto a list (building a result in a loop): the tail moves
    // into the new cell.
    let b = match (op, b) {
        (Inline::Cons, Value::List(tail)) => return Ok(Value::List(List::cons(a, tail))),
        (_, b) => b,
    };
    if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
        let (x, y) = (*x, *y);
        return Ok(match op {
            Inline::Add => Value::Int(x.checked_add(y).ok_or_else(|| arith::overflow("+"))?),
            Inline::Sub => Value::Int(x.checked_sub(y).ok_or_else(|| arith::overflow("-"))?),
            Inline::Mul => Value::Int(x.checked_mul(y).ok_or_else(|| arith::overflow("*"))?),
            Inline::Lt => Value::Bool(x < y),
            Inline::Gt => Value::Bool(x > y),
            Inline::Le => Value::Bool(x <= y),
            Inline::Ge => Value::Bool(x >= y),
            Inline::Eq => Value::Bool(x == y),
            Inline::Cons => lists::cons(a, &b)?,
            _ => return inline2_slow(op, a, b),
        });
    }
    inline2_slow(op, a, b)
}

fn inline2_slow(op: Inline, a: Value, b: Value) -> Result<Value> {
    match op {
        Inline::Add => arith::add2(&a, &b),
        Inline::Sub => arith::sub2(&a, &b),
        Inline::Mul => arith::mul2(&a, &b),
        Inline::Lt => arith::compare_op("<", &a, &b).map(|o| Value::Bool(o.is_lt())),
        Inline::Gt => arith::compare_op(">", &a, &b).map(|o| Value::Bool(o.is_gt())),
        Inline::Le => arith::compare_op("<=", &a, &b).map(|o| Value::Bool(o.is_le())),
        Inline::Ge => arith::compare_op(">=", &a, &b).map(|o| Value::Bool(o.is_ge())),
        Inline::Eq => Ok(Value::Bool(a.equals(&b))),
        Inline::Mod => arith::modulo(&a, &b),
        // The tail moves into the new cell (no reference count traffic).
        Inline::Cons => match b {
            Value::List(tail) => Ok(Value::List(List::cons(a, tail))),
            b => lists::cons(a, &b),
        },
        _ => Err(EvalError::new(
            ErrorKind::Arity,
            format!("{}: wrong number of arguments", op.name()),
        )),
    }
}

/// Helpers for the primitives' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::interp::Interp;
    use crate::printer::serialize;

    /// Evaluates `src` in a fresh interpreter: the canonical form of the
    /// value, or `ERR <message>`.
    pub(crate) fn ev(src: &str) -> String {
        let mut i = Interp::new();
        match i.eval_str(src, "<test>") {
            Ok(v) => serialize(&v).unwrap_or_else(|e| format!("<{e}>")),
            Err(e) => format!("ERR {e}"),
        }
    }

    /// Whether evaluating `src` fails.
    pub(crate) fn err(src: &str) -> bool {
        ev(src).starts_with("ERR")
    }
}
