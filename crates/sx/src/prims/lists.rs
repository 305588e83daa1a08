//! Lists: construction, access and first-order transformations.
//! (Functions taking a function argument live in the SX prelude.)

use super::{arg, expect_index, expect_list};
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::value::{List, Value};

pub(crate) fn install(i: &mut Interp) {
    i.define_native("list", 0, None, |_, a| Ok(Value::List(List::from_vec(a.to_vec()))));
    i.define_native("cons", 2, Some(2), |_, a| cons(arg(a, 0).clone(), arg(a, 1)));
    i.define_native("first", 1, Some(1), |_, a| first(arg(a, 0)));
    i.define_native("rest", 1, Some(1), |_, a| rest(arg(a, 0)));
    i.define_native("append", 0, None, |_, a| append("append", a));
    i.define_native("concat", 0, None, |_, a| append("concat", a));
}

pub(crate) fn cons(head: Value, tail: &Value) -> Result<Value> {
    let tail = match tail {
        Value::List(l) => l.clone(),
        Value::Nil => List::EMPTY,
        other => return Err(EvalError::type_error("cons", "a list as the second argument", other)),
    };
    Ok(Value::List(List::cons(head, tail)))
}

/// `(first xs)`: nil for the empty list or nil.
pub(crate) fn first(v: &Value) -> Result<Value> {
    match v {
        Value::List(l) => Ok(l.first().cloned().unwrap_or_default()),
        Value::Nil => Ok(Value::Nil),
        other => Err(EvalError::type_error("first", "a list", other)),
    }
}

/// `(rest xs)`: the empty list for the empty list or nil.
pub(crate) fn rest(v: &Value) -> Result<Value> {
    match v {
        Value::List(l) => Ok(Value::List(l.rest())),
        Value::Nil => Ok(Value::List(List::EMPTY)),
        other => Err(EvalError::type_error("rest", "a list", other)),
    }
}

/// Joins lists; the last list is shared, not copied.
fn append(name: &str, args: &[Value]) -> Result<Value> {
    let Some((last, init)) = args.split_last() else {
        return Ok(Value::List(List::EMPTY));
    };
    let mut tail = expect_list(name, last)?;
    for a in init.iter().rev() {
        let items = expect_list(name, a)?.to_vec();
        for v in items.into_iter().rev() {
            tail = List::cons(v, tail);
        }
    }
    Ok(Value::List(tail))
}

#[allow(dead_code)]
fn nth(xs: &Value, i: &Value) -> Result<Value> {
    let l = expect_list("nth", xs)?;
    let n = expect_index("nth", i)?;
    l.nth(n).cloned().ok_or_else(|| {
        EvalError::new(ErrorKind::Value, format!("nth: index {n} out of range for a list of {} items", l.len()))
    })
}
