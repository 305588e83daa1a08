//! Lists: construction, access and first-order transformations.
//! (Functions taking a function argument live in the SX prelude.)

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt::Write as _;

use super::{arg, expect_index, expect_list, expect_number};
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::printer;
use crate::value::{List, Value, int_float_eq};

/// The most items `range` builds.
const MAX_RANGE_ITEMS: u64 = 100_000_000;

pub(crate) fn install(i: &mut Interp) {
    i.define_native("list", 0, None, |_, a| {
        // The arguments are ours to take: no copies, no intermediate Vec.
        let mut out = List::EMPTY;
        for v in a.iter_mut().rev() {
            out = List::cons(std::mem::take(v), out);
        }
        Ok(Value::List(out))
    });
    i.define_native("cons", 2, Some(2), |_, a| {
        cons(arg(a, 0).clone(), arg(a, 1))
    });
    i.define_native("first", 1, Some(1), |_, a| first(arg(a, 0)));
    i.define_native("rest", 1, Some(1), |_, a| rest(arg(a, 0)));
    i.define_native("append", 0, None, |_, a| append("append", a));
    i.define_native("concat", 0, None, |_, a| append("concat", a));

    i.define_native("second", 1, Some(1), |_, a| {
        nth_or_nil("second", arg(a, 0), 1)
    });
    i.define_native("third", 1, Some(1), |_, a| {
        nth_or_nil("third", arg(a, 0), 2)
    });
    i.define_native("last", 1, Some(1), |_, a| {
        Ok(expect_list("last", arg(a, 0))?
            .iter()
            .last()
            .cloned()
            .unwrap_or_default())
    });
    i.define_native("nth", 2, Some(2), |_, a| nth(arg(a, 0), arg(a, 1)));
    // The argument is taken out of the call's own slots: when the caller
    // passed a list nothing else holds (its last use, or a fresh result
    // such as `(reverse (build ...))`), its cells are relinked in place
    // instead of copied; shared cells are still copied, so no other
    // holder sees a change.
    i.define_native("reverse", 1, Some(1), |_, a| reverse_arg(a));
    i.define_native("%reverse-owned", 1, Some(1), |_, a| reverse_arg(a));
    // Called only in place of the inlined guard once a higher-order
    // function has been redefined (see `Inline::HofIntact`).
    i.define_native("%hof-intact", 1, Some(1), |_, _| Ok(Value::Bool(false)));
    i.define_native("take", 2, Some(2), |_, a| take(arg(a, 0), arg(a, 1)));
    i.define_native("drop", 2, Some(2), |_, a| drop(arg(a, 0), arg(a, 1)));
    i.define_native("range", 1, Some(3), |interp, a| range(interp, a));
    i.define_native("flatten", 1, Some(1), |_, a| flatten(arg(a, 0)));
    i.define_native("distinct", 1, Some(1), |_, a| distinct(arg(a, 0)));
    i.define_native("zip", 1, None, |_, a| zip(a));
    i.define_native("sort", 1, Some(1), |_, a| sort(arg(a, 0)));
}

pub(crate) fn reverse(v: &Value) -> Result<Value> {
    match v {
        Value::Str(s) => Ok(super::strings::reverse_str(s)),
        other => {
            let mut out = List::EMPTY;
            for v in expect_list("reverse", other)?.iter() {
                out = List::cons(v.clone(), out);
            }
            Ok(Value::List(out))
        }
    }
}

/// `reverse` of the first argument, taken out of the argument slots.
fn reverse_arg(a: &mut [Value]) -> Result<Value> {
    match a.first_mut() {
        Some(v @ Value::List(_)) => reverse_owned(std::mem::take(v)),
        _ => reverse(arg(a, 0)),
    }
}

/// `reverse` of a list the caller owns: its unshared cells are relinked.
pub(crate) fn reverse_owned(v: Value) -> Result<Value> {
    match v {
        Value::List(l) => Ok(Value::List(l.reverse_owned())),
        other => reverse(&other),
    }
}

pub(crate) fn cons(head: Value, tail: &Value) -> Result<Value> {
    let tail = match tail {
        Value::List(l) => l.clone(),
        Value::Nil => List::EMPTY,
        other => {
            return Err(EvalError::type_error(
                "cons",
                "a list as the second argument",
                other,
            ));
        }
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
    let mut items: Vec<&Value> = Vec::new();
    for a in init.iter().rev() {
        let list = match a {
            Value::List(l) => l,
            Value::Nil => continue,
            other => return Err(EvalError::type_error(name, "a list", other)),
        };
        // Borrowed, then copied once each into the new cells.
        items.clear();
        items.extend(list.iter());
        for v in items.iter().rev() {
            tail = List::cons((*v).clone(), tail);
        }
    }
    Ok(Value::List(tail))
}

fn nth_or_nil(name: &str, xs: &Value, n: usize) -> Result<Value> {
    Ok(expect_list(name, xs)?.nth(n).cloned().unwrap_or_default())
}

fn out_of_range(name: &str, i: i64, len: usize, what: &str) -> EvalError {
    EvalError::new(
        ErrorKind::Value,
        format!("{name}: index {i} out of range for a {what} of length {len}"),
    )
}

/// `(nth xs i)`: the item at `i`, an error when out of range; on a string,
/// the character at `i` as a one-character string.
fn nth(xs: &Value, i: &Value) -> Result<Value> {
    if let Value::Str(_) = xs {
        return super::strings::char_at("nth", xs, i);
    }
    let l = expect_list("nth", xs)?;
    let idx = super::expect_int("nth", i)?;
    usize::try_from(idx)
        .ok()
        .and_then(|n| l.nth(n).cloned())
        .ok_or_else(|| out_of_range("nth", idx, l.len(), "list"))
}

/// `(take xs n)`: the first `n` items (all of them when `n` is larger).
fn take(xs: &Value, n: &Value) -> Result<Value> {
    let n = expect_index("take", n)?;
    if let Value::Str(s) = xs {
        return Ok(Value::str(s.get(..char_boundary(s, n)).unwrap_or(s)));
    }
    let l = expect_list("take", xs)?;
    let items: Vec<Value> = l.iter().take(n).cloned().collect();
    if items.len() < n {
        return Ok(Value::List(l));
    }
    Ok(Value::List(List::from_vec(items)))
}

/// `(drop xs n)`: the list after its first `n` items, shared (not copied).
fn drop(xs: &Value, n: &Value) -> Result<Value> {
    let n = expect_index("drop", n)?;
    if let Value::Str(s) = xs {
        return Ok(Value::str(s.get(char_boundary(s, n)..).unwrap_or("")));
    }
    let mut l = expect_list("drop", xs)?;
    for _ in 0..n {
        if l.is_empty() {
            break;
        }
        l = l.rest();
    }
    Ok(Value::List(l))
}

/// The byte offset after the first `n` chars of `s` (its length if shorter).
fn char_boundary(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(b, _)| b)
}

/// `(range n)`, `(range a b)`, `(range a b step)`: integers, or floats when
/// any argument is a float; a negative step counts down.
/// Bytes one list cell takes (the `Rc` header and the `Cons`).
const CELL_BYTES: usize = 16 + std::mem::size_of::<crate::value::Cons>();

fn range(interp: &Interp, a: &[Value]) -> Result<Value> {
    let (start, end, step) = match a {
        [n] => (Value::Int(0), n.clone(), Value::Int(1)),
        [s, e] => (s.clone(), e.clone(), Value::Int(1)),
        [s, e, st, ..] => (s.clone(), e.clone(), st.clone()),
        [] => return Err(EvalError::arity("range", "1 to 3", 0)),
    };
    let too_many = || {
        EvalError::new(
            ErrorKind::Value,
            format!("range: refusing to build more than {MAX_RANGE_ITEMS} items"),
        )
    };
    if let (Value::Int(s), Value::Int(e), Value::Int(st)) = (&start, &end, &step) {
        let (s, e, st) = (i128::from(*s), i128::from(*e), i128::from(*st));
        if st == 0 {
            return Err(EvalError::new(
                ErrorKind::Value,
                "range: step must not be 0",
            ));
        }
        let span = if st > 0 { e - s } else { s - e };
        let count = if span <= 0 {
            0
        } else {
            (span + st.abs() - 1) / st.abs()
        };
        if count > i128::from(MAX_RANGE_ITEMS) {
            return Err(too_many());
        }
        // Built in one primitive call, so check the heap budget up front.
        interp.ensure_heap(
            usize::try_from(count)
                .unwrap_or(usize::MAX)
                .saturating_mul(CELL_BYTES),
        )?;
        let mut out = List::EMPTY;
        for k in (0..count).rev() {
            // Within [s, e) so it fits in i64.
            let v = i64::try_from(s + k * st).map_err(|_| super::arith::overflow("range"))?;
            out = List::cons(Value::Int(v), out);
        }
        return Ok(Value::List(out));
    }
    let s = expect_number("range", &start)?;
    let e = expect_number("range", &end)?;
    let st = expect_number("range", &step)?;
    if !(s.is_finite() && e.is_finite() && st.is_finite()) {
        return Err(EvalError::new(
            ErrorKind::Value,
            "range: arguments must be finite numbers",
        ));
    }
    if st == 0.0 {
        return Err(EvalError::new(
            ErrorKind::Value,
            "range: step must not be 0",
        ));
    }
    let count = ((e - s) / st).ceil();
    if count > MAX_RANGE_ITEMS as f64 {
        return Err(too_many());
    }
    // NaN (impossible here) and negatives both mean no items.
    let count = if count > 0.0 { count as u64 } else { 0 };
    let mut out = List::EMPTY;
    for k in (0..count).rev() {
        let v = s + (k as f64) * st;
        // Rounding can land exactly on the end; the end is exclusive.
        if (st > 0.0 && v >= e) || (st < 0.0 && v <= e) {
            continue;
        }
        out = List::cons(Value::Float(v), out);
    }
    Ok(Value::List(out))
}

/// `(flatten xs)`: the non-list leaves of nested lists, in order.
fn flatten(xs: &Value) -> Result<Value> {
    let l = expect_list("flatten", xs)?;
    let mut out = Vec::new();
    // An explicit stack of iterators: no nesting depth can overflow.
    let mut stack = vec![l.iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(Value::List(inner)) => stack.push(inner.iter()),
            Some(v) => out.push(v.clone()),
            None => {
                stack.pop();
            }
        }
    }
    Ok(Value::List(List::from_vec(out)))
}

/// `(distinct xs)`: the first occurrence of each structurally equal item.
fn distinct(xs: &Value) -> Result<Value> {
    let l = expect_list("distinct", xs)?;
    let mut seen: HashSet<String> = HashSet::new();
    // Items with no hash key (functions, NaN, infinities), compared linearly.
    let mut odd: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    for v in l.iter() {
        let mut key = String::new();
        let fresh = if equality_key(v, &mut key) {
            seen.insert(key)
        } else if odd.iter().any(|o| o.equals(v)) {
            false
        } else {
            odd.push(v.clone());
            true
        };
        if fresh {
            out.push(v.clone());
        }
    }
    Ok(Value::List(List::from_vec(out)))
}

/// Writes a text that is equal for two values exactly when `Value::equals`
/// says they are equal: the canonical form, except that integral floats are
/// written as integers (`(= 1 1.0)`) and elements are marked so they never
/// collide with lists. False when `v` has no such key (functions, non-finite
/// floats).
fn equality_key(v: &Value, out: &mut String) -> bool {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || equality_key_inner(v, out))
}

fn equality_key_inner(v: &Value, out: &mut String) -> bool {
    match v {
        Value::Float(f) => {
            let i = *f as i64;
            if int_float_eq(i, *f) {
                let _ = write!(out, "{i}");
                true
            } else if let Some(t) = printer::float_text(*f) {
                out.push_str(&t);
                true
            } else {
                false
            }
        }
        Value::List(l) => {
            out.push('(');
            for (n, item) in l.iter().enumerate() {
                if n > 0 {
                    out.push(' ');
                }
                if !equality_key(item, out) {
                    return false;
                }
            }
            out.push(')');
            true
        }
        Value::Dict(d) => {
            out.push('{');
            for (n, (k, item)) in d.iter().enumerate() {
                if n > 0 {
                    out.push(' ');
                }
                // Keys compare by canonical text, so use it as it is.
                match printer::serialize(k) {
                    Ok(t) => out.push_str(&t),
                    Err(_) => return false,
                }
                out.push(' ');
                if !equality_key(item, out) {
                    return false;
                }
            }
            out.push('}');
            true
        }
        Value::Element(e) => {
            // A control character never appears raw in canonical text.
            out.push('\u{1}');
            out.push_str(&e.tag);
            for (name, item) in &e.attrs {
                out.push_str(" :");
                out.push_str(name.as_str());
                out.push(' ');
                if !equality_key(item, out) {
                    return false;
                }
            }
            for child in &e.children {
                out.push(' ');
                if !equality_key(child, out) {
                    return false;
                }
            }
            out.push('\u{2}');
            true
        }
        Value::Cell(c) => equality_key(&c.borrow(), out),
        other => match printer::serialize(other) {
            Ok(t) => {
                out.push_str(&t);
                true
            }
            Err(_) => false,
        },
    }
}

/// `(zip a b ...)`: lists of corresponding items, as long as the shortest.
fn zip(a: &[Value]) -> Result<Value> {
    let lists = a
        .iter()
        .map(|v| expect_list("zip", v))
        .collect::<Result<Vec<List>>>()?;
    let mut iters: Vec<_> = lists.iter().map(List::iter).collect();
    let mut out = Vec::new();
    'outer: loop {
        let mut row = Vec::with_capacity(iters.len());
        for it in &mut iters {
            match it.next() {
                Some(v) => row.push(v.clone()),
                None => break 'outer,
            }
        }
        if row.is_empty() {
            break;
        }
        out.push(Value::List(List::from_vec(row)));
    }
    Ok(Value::List(List::from_vec(out)))
}

/// `(sort xs)`: stable, in natural order: numbers (integers and floats
/// compared exactly), strings, keywords or symbols; one kind per list.
fn sort(xs: &Value) -> Result<Value> {
    let l = expect_list("sort", xs)?;
    let mut items = l.to_vec();
    // Check first that every pair is comparable, so the comparison below is
    // a total order (sorting with an inconsistent order may panic).
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Number,
        Str,
        Keyword,
        Symbol,
    }
    let mut kind = None;
    for v in &items {
        let k = match v {
            Value::Int(_) => Kind::Number,
            Value::Float(f) if f.is_nan() => {
                return Err(EvalError::new(ErrorKind::Value, "sort: cannot order NaN"));
            }
            Value::Float(_) => Kind::Number,
            Value::Str(_) => Kind::Str,
            Value::Keyword(_) => Kind::Keyword,
            Value::Symbol(_) => Kind::Symbol,
            other => {
                return Err(EvalError::type_error(
                    "sort",
                    "a list of numbers, strings or keywords",
                    other,
                ));
            }
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(EvalError::type_error(
                    "sort",
                    "items of one kind (all numbers, all strings or all keywords)",
                    v,
                ));
            }
            Some(_) => {}
        }
    }
    items.sort_by(|x, y| super::arith::compare_op("sort", x, y).unwrap_or(Ordering::Equal));
    Ok(Value::List(List::from_vec(items)))
}

#[cfg(test)]
mod tests {

    use crate::prims::test_support::{err, ev};

    #[test]
    fn access() {
        assert_eq!(ev("(second '(1 2 3))"), "2");
        assert_eq!(ev("(second '(1))"), "nil");
        assert_eq!(ev("(third '(1 2 3))"), "3");
        assert_eq!(ev("(last '(1 2 3))"), "3");
        assert_eq!(ev("(last '())"), "nil");
        assert_eq!(ev("(last nil)"), "nil");
        assert_eq!(ev("(nth '(a b c) 2)"), "c");
        let e = ev("(nth '(a b c) 3)");
        assert!(e.contains("index 3") && e.contains("length 3"), "{e}");
        assert!(err("(nth '(a b c) -1)"));
        assert_eq!(ev(r#"(nth "日本" 1)"#), r#""本""#);
        assert!(err(r#"(nth "日本" 2)"#));
    }

    #[test]
    fn reverse_owned_relinks_only_unshared_cells() {
        assert_eq!(ev("(%reverse-owned (list 1 2 3))"), "(3 2 1)");
        assert_eq!(ev("(%reverse-owned '())"), "()");
        assert_eq!(ev(r#"(%reverse-owned "ab")"#), r#""ba""#);
        // Shared cells are copied, so other holders see no change.
        assert_eq!(
            ev("(let ((xs (list 1 2 3))) (list (%reverse-owned xs) xs))"),
            "((3 2 1) (1 2 3))"
        );
        assert_eq!(
            ev("(let ((t (list 2 3))) (list (%reverse-owned (cons 1 t)) t))"),
            "((3 2 1) (2 3))"
        );
        assert_eq!(
            ev("(let ((t (list 2 3))) (list (%reverse-owned (cons 0 (cons 1 t))) t))"),
            "((3 2 1 0) (2 3))"
        );
    }

    #[test]
    fn reverse_of_an_owned_list_leaves_other_holders_alone() {
        // A fresh list is relinked in place; a held one is copied.
        assert_eq!(ev("(reverse (list 1 2 3))"), "(3 2 1)");
        assert_eq!(
            ev("(let ((xs (list 1 2 3))) (list (reverse xs) xs))"),
            "((3 2 1) (1 2 3))"
        );
        assert_eq!(
            ev("(let ((t (list 2 3))) (list (reverse (cons 1 t)) t))"),
            "((3 2 1) (2 3))"
        );
        assert_eq!(
            ev("(define q '(1 2 3)) (define r (reverse q)) (list q r (reverse r) r)"),
            "((1 2 3) (3 2 1) (1 2 3) (3 2 1))"
        );
        assert_eq!(ev("(reverse '())"), "()");
    }

    #[test]
    fn reverse_take_drop() {
        assert_eq!(ev("(reverse '(1 2 3))"), "(3 2 1)");
        assert_eq!(ev(r#"(reverse "a日😀")"#), r#""😀日a""#);
        assert_eq!(ev("(reverse nil)"), "()");
        assert_eq!(ev("(take '(1 2 3) 2)"), "(1 2)");
        assert_eq!(ev("(take '(1 2 3) 10)"), "(1 2 3)");
        assert_eq!(ev("(take '(1 2 3) 0)"), "()");
        assert_eq!(ev("(drop '(1 2 3) 2)"), "(3)");
        assert_eq!(ev("(drop '(1 2 3) 10)"), "()");
        assert_eq!(ev(r#"(take "日本語" 2)"#), r#""日本""#);
        assert_eq!(ev(r#"(drop "日本語" 2)"#), r#""語""#);
        assert!(err("(take '(1 2) -1)"));
    }

    #[test]
    fn ranges() {
        assert_eq!(ev("(range 4)"), "(0 1 2 3)");
        assert_eq!(ev("(range 0)"), "()");
        assert_eq!(ev("(range -3)"), "()");
        assert_eq!(ev("(range 2 5)"), "(2 3 4)");
        assert_eq!(ev("(range 0 10 3)"), "(0 3 6 9)");
        assert_eq!(ev("(range 5 0 -2)"), "(5 3 1)");
        assert_eq!(ev("(range 5 0)"), "()");
        assert_eq!(ev("(range 0 1 0.25)"), "(0.0 0.25 0.5 0.75)");
        assert_eq!(ev("(range 0.5 3)"), "(0.5 1.5 2.5)");
        assert_eq!(ev("(range 1 0 -0.5)"), "(1.0 0.5)");
        assert!(err("(range 0 10 0)"));
        assert!(err("(range 0 1 0.0)"));
        let e = ev("(range 1000000000)");
        assert!(e.contains("100000000"), "{e}");
        assert!(err("(range 0 1e300 1e-300)"));
        assert_eq!(
            ev("(range 9223372036854775806 9223372036854775807)"),
            "(9223372036854775806)"
        );
        assert_eq!(
            ev("(range -9223372036854775808 9223372036854775807 9223372036854775807)"),
            "(-9223372036854775808 -1 9223372036854775806)"
        );
    }

    #[test]
    fn flatten_distinct_zip() {
        assert_eq!(ev("(flatten '(1 (2 (3 (4))) () 5))"), "(1 2 3 4 5)");
        assert_eq!(ev("(flatten nil)"), "()");
        assert_eq!(
            ev("(distinct '(1 2 1 1.0 (1) (1.0) :a \"a\" :a))"),
            r#"(1 2 (1) :a "a")"#
        );
        assert_eq!(
            ev("(distinct (list {:a 1} {:a 1.0} {:a 2}))"),
            "({:a 1} {:a 2})"
        );
        assert_eq!(
            ev("(let ((f (fn (x) x)) (g (fn (x) x))) (len (distinct (list f g f 1 1))))"),
            "3"
        );
        assert_eq!(ev("(zip '(1 2 3) '(a b))"), "((1 a) (2 b))");
        assert_eq!(ev("(zip '(1 2) '(a b) '(x y z))"), "((1 a x) (2 b y))");
        assert_eq!(ev("(zip '() '(a b))"), "()");
    }

    #[test]
    fn sorting() {
        assert_eq!(ev("(sort '(3 1.5 2 -1 1))"), "(-1 1 1.5 2 3)");
        assert_eq!(ev("(sort '(1.0 1 0))"), "(0 1.0 1)");
        assert_eq!(ev(r#"(sort '("b" "a" "c"))"#), r#"("a" "b" "c")"#);
        assert_eq!(ev("(sort '(:b :a))"), "(:a :b)");
        assert_eq!(ev("(sort '())"), "()");
        assert!(err(r#"(sort '(1 "a"))"#));
        assert!(err("(sort '((1) (2)))"));
        assert_eq!(
            ev("(sort '(9223372036854775807 9223372036854775806 9.223372036854775e18))"),
            "(9223372036854775000.0 9223372036854775806 9223372036854775807)"
        );
    }
}
