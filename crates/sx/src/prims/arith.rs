//! Numbers: arithmetic (integers never wrap: overflow is an error),
//! comparison across integers and floats, and math functions.

use std::cmp::Ordering;

use super::{arg, expect_int, expect_number};
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::value::{TWO_POW_63, Value};

pub(crate) fn install(i: &mut Interp) {
    i.define_native("+", 0, None, |_, a| fold("+", a, Value::Int(0), add2));
    i.define_native("*", 0, None, |_, a| fold("*", a, Value::Int(1), mul2));
    i.define_native("-", 1, None, |_, a| match a {
        [x] => sub2(&Value::Int(0), x),
        [x, rest @ ..] => rest.iter().try_fold(x.clone(), |acc, y| sub2(&acc, y)),
        [] => Ok(Value::Int(0)),
    });
    i.define_native("/", 1, None, |_, a| match a {
        [x] => div2(&Value::Int(1), x),
        [x, rest @ ..] => rest.iter().try_fold(x.clone(), |acc, y| div2(&acc, y)),
        [] => Ok(Value::Int(1)),
    });
    i.define_native("quot", 2, Some(2), |_, a| {
        int_div("quot", arg(a, 0), arg(a, 1), false)
    });
    i.define_native("rem", 2, Some(2), |_, a| {
        int_div("rem", arg(a, 0), arg(a, 1), true)
    });
    i.define_native("mod", 2, Some(2), |_, a| modulo(arg(a, 0), arg(a, 1)));
    i.define_native("abs", 1, Some(1), |_, a| match arg(a, 0) {
        Value::Int(x) => x
            .checked_abs()
            .map(Value::Int)
            .ok_or_else(|| overflow("abs")),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        other => Err(EvalError::type_error("abs", "a number", other)),
    });
    i.define_native("min", 1, None, |_, a| extreme("min", a, Ordering::Less));
    i.define_native("max", 1, None, |_, a| extreme("max", a, Ordering::Greater));
    i.define_native("floor", 1, Some(1), |_, a| {
        to_integer("floor", arg(a, 0), f64::floor)
    });
    i.define_native("ceil", 1, Some(1), |_, a| {
        to_integer("ceil", arg(a, 0), f64::ceil)
    });
    i.define_native("round", 1, Some(1), |_, a| {
        to_integer("round", arg(a, 0), f64::round)
    });
    i.define_native("truncate", 1, Some(1), |_, a| {
        to_integer("truncate", arg(a, 0), f64::trunc)
    });
    i.define_native("int", 1, Some(1), |_, a| match arg(a, 0) {
        Value::Str(s) => s.trim().parse::<i64>().map(Value::Int).map_err(|_| {
            EvalError::new(
                ErrorKind::Value,
                format!("int: cannot parse {s:?} as an integer"),
            )
        }),
        other => to_integer("int", other, f64::trunc),
    });
    i.define_native("float", 1, Some(1), |_, a| {
        Ok(Value::Float(expect_number("float", arg(a, 0))?))
    });
    i.define_native("sqrt", 1, Some(1), |_, a| {
        let x = expect_number("sqrt", arg(a, 0))?;
        if x < 0.0 {
            return Err(EvalError::new(
                ErrorKind::Value,
                format!("sqrt: negative argument {x}"),
            ));
        }
        Ok(Value::Float(x.sqrt()))
    });
    i.define_native("pow", 2, Some(2), |_, a| pow(arg(a, 0), arg(a, 1)));
    i.define_native("exp", 1, Some(1), |_, a| float1("exp", a, f64::exp));
    i.define_native("log", 1, Some(2), |_, a| {
        let x = expect_number("log", arg(a, 0))?;
        if x <= 0.0 {
            return Err(EvalError::new(
                ErrorKind::Value,
                format!("log: argument must be positive, got {x}"),
            ));
        }
        match a.get(1) {
            Some(b) => {
                let base = expect_number("log", b)?;
                if base <= 0.0 || base == 1.0 {
                    return Err(EvalError::new(
                        ErrorKind::Value,
                        format!("log: invalid base {base}"),
                    ));
                }
                Ok(Value::Float(x.ln() / base.ln()))
            }
            None => Ok(Value::Float(x.ln())),
        }
    });
    i.define_native("sin", 1, Some(1), |_, a| float1("sin", a, f64::sin));
    i.define_native("cos", 1, Some(1), |_, a| float1("cos", a, f64::cos));
    i.define_native("tan", 1, Some(1), |_, a| float1("tan", a, f64::tan));
    i.define_native("atan", 1, Some(1), |_, a| float1("atan", a, f64::atan));
    i.define_native("atan2", 2, Some(2), |_, a| {
        let y = expect_number("atan2", arg(a, 0))?;
        let x = expect_number("atan2", arg(a, 1))?;
        Ok(Value::Float(y.atan2(x)))
    });
    i.define_native("inc", 1, Some(1), |_, a| {
        super::inline1(crate::vm::Inline::Inc, arg(a, 0).clone())
    });
    i.define_native("dec", 1, Some(1), |_, a| {
        super::inline1(crate::vm::Inline::Dec, arg(a, 0).clone())
    });
    i.define_native("even?", 1, Some(1), |_, a| {
        Ok(Value::Bool(expect_int("even?", arg(a, 0))? % 2 == 0))
    });
    i.define_native("odd?", 1, Some(1), |_, a| {
        Ok(Value::Bool(expect_int("odd?", arg(a, 0))? % 2 != 0))
    });
    i.define_native("zero?", 1, Some(1), |_, a| {
        Ok(Value::Bool(expect_number("zero?", arg(a, 0))? == 0.0))
    });
    i.define_native("pos?", 1, Some(1), |_, a| {
        Ok(Value::Bool(expect_number("pos?", arg(a, 0))? > 0.0))
    });
    i.define_native("neg?", 1, Some(1), |_, a| {
        Ok(Value::Bool(expect_number("neg?", arg(a, 0))? < 0.0))
    });
    i.define_native("<", 1, None, |_, a| chain("<", a, Ordering::is_lt));
    i.define_native(">", 1, None, |_, a| chain(">", a, Ordering::is_gt));
    i.define_native("<=", 1, None, |_, a| chain("<=", a, Ordering::is_le));
    i.define_native(">=", 1, None, |_, a| chain(">=", a, Ordering::is_ge));
    i.define_native("compare", 2, Some(2), |_, a| {
        let o = compare_op("compare", arg(a, 0), arg(a, 1))?;
        Ok(Value::Int(o as i64))
    });
}

pub(crate) fn overflow(name: &str) -> EvalError {
    EvalError::new(ErrorKind::Overflow, format!("{name}: integer overflow"))
}

fn fold(
    name: &str,
    args: &[Value],
    init: Value,
    f: fn(&Value, &Value) -> Result<Value>,
) -> Result<Value> {
    if let [Value::Int(_) | Value::Float(_)] = args {
        return Ok(args[0].clone());
    }
    let mut acc = init;
    for (i, x) in args.iter().enumerate() {
        if !matches!(x, Value::Int(_) | Value::Float(_)) {
            let _ = i;
            return Err(EvalError::type_error(name, "numbers", x));
        }
        acc = f(&acc, x)?;
    }
    Ok(acc)
}

fn float_op(name: &str, a: &Value, b: &Value, f: fn(f64, f64) -> f64) -> Result<Value> {
    let x = expect_number(name, a)?;
    let y = expect_number(name, b)?;
    Ok(Value::Float(f(x, y)))
}

pub(crate) fn add2(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x
            .checked_add(*y)
            .map(Value::Int)
            .ok_or_else(|| overflow("+")),
        _ => float_op("+", a, b, |x, y| x + y),
    }
}

pub(crate) fn sub2(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x
            .checked_sub(*y)
            .map(Value::Int)
            .ok_or_else(|| overflow("-")),
        _ => float_op("-", a, b, |x, y| x - y),
    }
}

pub(crate) fn mul2(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x
            .checked_mul(*y)
            .map(Value::Int)
            .ok_or_else(|| overflow("*")),
        _ => float_op("*", a, b, |x, y| x * y),
    }
}

fn div_zero(name: &str) -> EvalError {
    EvalError::new(ErrorKind::DivideByZero, format!("{name}: division by zero"))
}

/// `/`: exact integer division stays an integer; otherwise a float.
fn div2(a: &Value, b: &Value) -> Result<Value> {
    let y = expect_number("/", b)?;
    let x = expect_number("/", a)?;
    if y == 0.0 {
        return Err(div_zero("/"));
    }
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        // i64::MIN / -1 is the one exact quotient that does not fit.
        let Some(r) = x.checked_rem(*y) else {
            return Err(overflow("/"));
        };
        if r == 0 {
            return x
                .checked_div(*y)
                .map(Value::Int)
                .ok_or_else(|| overflow("/"));
        }
    }
    Ok(Value::Float(x / y))
}

/// `quot` truncates toward zero; `rem` has the sign of the dividend.
fn int_div(name: &str, a: &Value, b: &Value, rem: bool) -> Result<Value> {
    let x = expect_int(name, a)?;
    let y = expect_int(name, b)?;
    if y == 0 {
        return Err(div_zero(name));
    }
    let r = if rem {
        x.checked_rem(y)
    } else {
        x.checked_div(y)
    };
    r.map(Value::Int).ok_or_else(|| overflow(name))
}

/// Integer `mod` (`y` not zero): the sign of the divisor.
#[inline]
pub(crate) fn int_mod(x: i64, y: i64) -> i64 {
    let r = x.checked_rem(y).unwrap_or(0);
    if r != 0 && ((r < 0) != (y < 0)) {
        r + y
    } else {
        r
    }
}

/// `mod` has the sign of the divisor: `(mod -7 3)` is 2.
pub(crate) fn modulo(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            if *y == 0 {
                return Err(div_zero("mod"));
            }
            Ok(Value::Int(int_mod(*x, *y)))
        }
        _ => {
            let x = expect_number("mod", a)?;
            let y = expect_number("mod", b)?;
            if y == 0.0 {
                return Err(div_zero("mod"));
            }
            let r = x % y;
            Ok(Value::Float(if r != 0.0 && ((r < 0.0) != (y < 0.0)) {
                r + y
            } else {
                r
            }))
        }
    }
}

fn to_integer(name: &str, v: &Value, f: fn(f64) -> f64) -> Result<Value> {
    match v {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(x) => {
            let r = f(*x);
            if r.is_finite() && (-TWO_POW_63..TWO_POW_63).contains(&r) {
                Ok(Value::Int(r as i64))
            } else {
                Err(EvalError::new(
                    ErrorKind::Overflow,
                    format!(
                        "{name}: {} does not fit in an integer",
                        crate::printer::float_text(*x).unwrap_or_else(|| x.to_string())
                    ),
                ))
            }
        }
        other => Err(EvalError::type_error(name, "a number", other)),
    }
}

fn float1(name: &str, a: &[Value], f: fn(f64) -> f64) -> Result<Value> {
    Ok(Value::Float(f(expect_number(name, arg(a, 0))?)))
}

fn pow(a: &Value, b: &Value) -> Result<Value> {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        if *y >= 0 {
            let e = u32::try_from(*y).map_err(|_| overflow("pow"))?;
            return x
                .checked_pow(e)
                .map(Value::Int)
                .ok_or_else(|| overflow("pow"));
        }
    }
    let x = expect_number("pow", a)?;
    let y = expect_number("pow", b)?;
    Ok(Value::Float(x.powf(y)))
}

/// Orders two numbers (exactly, across integer and float), two strings, or
/// two keywords/symbols by name.
pub(crate) fn compare_op(name: &str, a: &Value, b: &Value) -> Result<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => num_cmp(a, b)
            .ok_or_else(|| EvalError::new(ErrorKind::Value, format!("{name}: cannot compare NaN"))),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Keyword(x), Value::Keyword(y)) | (Value::Symbol(x), Value::Symbol(y)) => {
            Ok(x.as_str().cmp(y.as_str()))
        }
        (x, y) => {
            let bad = if matches!(
                x,
                Value::Int(_)
                    | Value::Float(_)
                    | Value::Str(_)
                    | Value::Keyword(_)
                    | Value::Symbol(_)
            ) {
                y
            } else {
                x
            };
            Err(EvalError::type_error(
                name,
                "two numbers, two strings or two keywords",
                bad,
            ))
        }
    }
}

fn num_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => int_float_cmp(*x, *y),
        (Value::Float(x), Value::Int(y)) => int_float_cmp(*y, *x).map(Ordering::reverse),
        _ => None,
    }
}

/// Exact order of an i64 against an f64.
fn int_float_cmp(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)),
        o => Some(o),
    }
}

fn chain(name: &str, args: &[Value], ok: fn(Ordering) -> bool) -> Result<Value> {
    let mut result = true;
    for w in args.windows(2) {
        if !ok(compare_op(name, &w[0], &w[1])?) {
            result = false;
        }
    }
    if let [only] = args {
        compare_op(name, only, only)?;
    }
    Ok(Value::Bool(result))
}

fn extreme(name: &str, args: &[Value], want: Ordering) -> Result<Value> {
    let mut best = arg(args, 0).clone();
    expect_number(name, &best)?;
    for x in args.iter().skip(1) {
        expect_number(name, x)?;
        if compare_op(name, x, &best)? == want {
            best = x.clone();
        }
    }
    Ok(best)
}
