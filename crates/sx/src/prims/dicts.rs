//! Dicts: construction, lookup and update (persistent: see `crate::dict`).
//!
//! Keys are keywords, strings and finite numbers; `keys`, `vals` and
//! `entries` list entries in canonical key order. `nil` counts as the empty
//! dict everywhere a dict is read or updated.

use super::{arg, dict_from_pairs, expect_dict, expect_key, expect_key_owned, expect_list};
use crate::dict::Dict;
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::value::{List, Value};

pub(crate) fn install(i: &mut Interp) {
    i.define_native("dict", 0, None, |_, a| dict_from_pairs("dict", a.to_vec()));
    i.define_native("get", 2, Some(3), |_, a| {
        Ok(lookup("get", arg(a, 0), arg(a, 1))?.unwrap_or_else(|| arg(a, 2).clone()))
    });
    i.define_native("assoc", 3, None, |_, a| assoc(a));
    i.define_native("dissoc", 1, None, |_, a| {
        let mut d = take_dict("dissoc", a)?;
        for k in a.iter().skip(1) {
            d.remove(k);
        }
        Ok(Value::Dict(d))
    });
    i.define_native("keys", 1, Some(1), |_, a| {
        let d = expect_dict("keys", arg(a, 0))?;
        Ok(Value::List(d.iter().map(|(k, _)| k.clone()).collect()))
    });
    i.define_native("vals", 1, Some(1), |_, a| {
        let d = expect_dict("vals", arg(a, 0))?;
        Ok(Value::List(d.iter().map(|(_, v)| v.clone()).collect()))
    });
    i.define_native("entries", 1, Some(1), |_, a| {
        let d = expect_dict("entries", arg(a, 0))?;
        Ok(Value::List(
            d.iter()
                .map(|(k, v)| Value::List(List::from_vec(vec![k.clone(), v.clone()])))
                .collect(),
        ))
    });
    i.define_native("has-key?", 2, Some(2), |_, a| {
        let d = expect_dict("has-key?", arg(a, 0))?;
        Ok(Value::Bool(d.contains(arg(a, 1))))
    });
    i.define_native("merge", 0, None, |_, a| merge(a));
    i.define_native("get-in", 2, Some(3), |_, a| {
        let path = expect_list("get-in", arg(a, 1))?;
        let mut cur = arg(a, 0).clone();
        for k in path.iter() {
            match lookup("get-in", &cur, k)? {
                Some(v) => cur = v,
                None => return Ok(arg(a, 2).clone()),
            }
        }
        Ok(cur)
    });
    i.define_native("assoc-in", 3, Some(3), |_, a| {
        assoc_in(arg(a, 0), arg(a, 1), arg(a, 2))
    });
    i.define_native("select-keys", 2, Some(2), |_, a| {
        let d = expect_dict("select-keys", arg(a, 0))?;
        let ks = expect_list("select-keys", arg(a, 1))?;
        let mut out = Dict::new();
        for k in ks.iter() {
            if let Some(v) = d.get(k) {
                out.insert(expect_key("select-keys", k)?, v.clone());
            }
        }
        Ok(Value::Dict(out))
    });
    i.define_native("zipmap", 2, Some(2), |_, a| {
        let ks = expect_list("zipmap", arg(a, 0))?;
        let vs = expect_list("zipmap", arg(a, 1))?;
        let mut out = Dict::new();
        for (k, v) in ks.iter().zip(vs.iter()) {
            out.insert(expect_key("zipmap", k)?, v.clone());
        }
        Ok(Value::Dict(out))
    });
}

/// The value under `k` in a dict, or at integer index `k` in a list; `None`
/// when missing (nil holds nothing).
fn lookup(name: &str, coll: &Value, k: &Value) -> Result<Option<Value>> {
    match coll {
        Value::Dict(d) => Ok(d.get(k).cloned()),
        Value::Nil => Ok(None),
        Value::List(l) => match k {
            Value::Int(i) => Ok(usize::try_from(*i).ok().and_then(|n| l.nth(n)).cloned()),
            _ => Ok(None),
        },
        other => Err(EvalError::type_error(name, "a dict, list or nil", other)),
    }
}

/// `(assoc d k v k2 v2 ...)`.
fn assoc(a: &mut [Value]) -> Result<Value> {
    let mut d = take_dict("assoc", a)?;
    let n = a.len();
    let pairs = a.get_mut(1..).unwrap_or(&mut []);
    if pairs.len() % 2 != 0 {
        return Err(EvalError::new(
            ErrorKind::Arity,
            format!(
                "assoc: expected a dict then key value pairs, got {} arguments",
                n
            ),
        ));
    }
    // The arguments are this call's own: keys and values move in.
    for kv in pairs.chunks_exact_mut(2) {
        if let [k, v] = kv {
            let key = expect_key_owned("assoc", std::mem::take(k))?;
            d.insert(key, std::mem::take(v));
        }
    }
    Ok(Value::Dict(d))
}

/// Takes the dict argument out of the argument list, so that when the
/// caller's variable was moved in on its last use, this is the only
/// reference and the update happens in place.
fn take_dict(name: &str, a: &mut [Value]) -> Result<Dict> {
    match a.first_mut() {
        Some(v @ Value::Dict(_)) => match std::mem::take(v) {
            Value::Dict(d) => Ok(d),
            _ => Ok(Dict::new()),
        },
        Some(other) => expect_dict(name, other),
        None => Ok(Dict::new()),
    }
}

/// `(merge d1 d2 ...)`: later entries win; nil arguments are skipped.
fn merge(a: &[Value]) -> Result<Value> {
    let mut out: Option<Dict> = None;
    for v in a {
        match v {
            Value::Nil => {}
            Value::Dict(d) => match &mut out {
                None => out = Some(d.clone()),
                Some(acc) => {
                    if acc.is_empty() {
                        *acc = d.clone();
                    } else {
                        for (k, val) in d.iter() {
                            acc.insert(expect_key("merge", k)?, val.clone());
                        }
                    }
                }
            },
            other => return Err(EvalError::type_error("merge", "dicts or nil", other)),
        }
    }
    Ok(Value::Dict(out.unwrap_or_default()))
}

/// `(assoc-in d path v)`: sets the value at a path of keys, creating dicts
/// for missing (or nil) levels. An empty path gives `v`.
fn assoc_in(d: &Value, path: &Value, v: &Value) -> Result<Value> {
    let path = expect_list("assoc-in", path)?;
    let keys: Vec<&Value> = path.iter().collect();
    let Some((last, init)) = keys.split_last() else {
        return Ok(v.clone());
    };
    // Walk down, keeping each level's dict, then rebuild upwards.
    let mut levels: Vec<Dict> = Vec::with_capacity(keys.len());
    let mut cur = d.clone();
    for k in init {
        let level = level_dict(&cur)?;
        cur = level.get(k).cloned().unwrap_or_default();
        levels.push(level);
    }
    let mut bottom = level_dict(&cur)?;
    bottom.insert(expect_key("assoc-in", last)?, v.clone());
    let mut acc = Value::Dict(bottom);
    for (mut level, k) in levels.into_iter().zip(init.iter()).rev() {
        level.insert(expect_key("assoc-in", k)?, acc);
        acc = Value::Dict(level);
    }
    Ok(acc)
}

fn level_dict(v: &Value) -> Result<Dict> {
    match v {
        Value::Dict(d) => Ok(d.clone()),
        Value::Nil => Ok(Dict::new()),
        other => Err(EvalError::type_error(
            "assoc-in",
            "a dict (or nil) at every level of the path",
            other,
        )),
    }
}

#[cfg(test)]
mod tests {

    use crate::prims::test_support::{err, ev};

    #[test]
    fn build_and_get() {
        assert_eq!(ev("(dict :b 2 :a 1)"), "{:a 1 :b 2}");
        assert_eq!(ev("(dict)"), "{}");
        assert!(err("(dict :a)"));
        assert!(err("(dict (list 1) 2)"));
        assert_eq!(ev("(get {:a 1} :a)"), "1");
        assert_eq!(ev("(get {:a 1} :b)"), "nil");
        assert_eq!(ev("(get {:a 1} :b 9)"), "9");
        assert_eq!(ev("(get {:a nil} :a 9)"), "nil");
        assert_eq!(ev("(get {:a 1} '(x) 9)"), "9");
        assert_eq!(ev("(get '(a b c) 1)"), "b");
        assert_eq!(ev("(get '(a b c) 5 :none)"), ":none");
        assert_eq!(ev("(get '(a b c) -1)"), "nil");
        assert_eq!(ev("(get nil :a)"), "nil");
        assert_eq!(ev("(get nil :a 3)"), "3");
        assert!(err("(get 5 :a)"));
    }

    #[test]
    fn update() {
        assert_eq!(ev("(assoc {:a 1} :b 2 :a 3)"), "{:a 3 :b 2}");
        assert_eq!(ev("(assoc nil \"k\" 1)"), r#"{"k" 1}"#);
        assert!(err("(assoc {} :a 1 :b)"));
        assert_eq!(ev("(let ((d {:a 1})) (assoc d :a 2) d)"), "{:a 1}");
        assert_eq!(ev("(dissoc {:a 1 :b 2 :c 3} :a :c :z)"), "{:b 2}");
        assert_eq!(ev("(keys {:b 2 :a 1 \"s\" 3 1 4})"), r#"("s" 1 :a :b)"#);
        assert_eq!(ev("(vals {:b 2 :a 1})"), "(1 2)");
        assert_eq!(ev("(entries {:b 2 :a 1})"), "((:a 1) (:b 2))");
        assert_eq!(ev("(keys nil)"), "()");
        assert_eq!(ev("(has-key? {:a nil} :a)"), "true");
        assert_eq!(ev("(has-key? {:a 1} :b)"), "false");
        assert_eq!(ev("(has-key? nil :b)"), "false");
        assert_eq!(
            ev("(merge {:a 1 :b 1} nil {:b 2} {:c 3})"),
            "{:a 1 :b 2 :c 3}"
        );
        assert_eq!(ev("(merge)"), "{}");
        assert_eq!(ev("(merge nil)"), "{}");
        assert!(err("(merge {:a 1} '(1))"));
    }

    #[test]
    fn paths() {
        assert_eq!(ev("(get-in {:a {:b {:c 1}}} '(:a :b :c))"), "1");
        assert_eq!(ev("(get-in {:a {:b 1}} '(:a :x :c) :d)"), ":d");
        assert_eq!(ev("(get-in {:a (list 10 {:z 5})} '(:a 1 :z))"), "5");
        assert_eq!(ev("(get-in {:a 1} '())"), "{:a 1}");
        assert_eq!(ev("(assoc-in {:a {:b 1}} '(:a :c) 2)"), "{:a {:b 1 :c 2}}");
        assert_eq!(ev("(assoc-in nil '(:a :b :c) 1)"), "{:a {:b {:c 1}}}");
        assert_eq!(ev("(assoc-in {:x 1} '() 5)"), "5");
        assert!(err("(assoc-in {:a 1} '(:a :b) 2)"));
        assert_eq!(
            ev("(select-keys {:a 1 :b 2 :c 3} '(:a :c :z))"),
            "{:a 1 :c 3}"
        );
        assert_eq!(ev("(zipmap '(:a :b :c) '(1 2))"), "{:a 1 :b 2}");
    }
}
