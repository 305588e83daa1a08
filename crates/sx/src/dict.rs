//! Dicts: immutable maps from keywords, strings and numbers to values.
//!
//! Entries are kept sorted by the canonical bytes of their keys, so
//! iteration order is the canonical serialization order and `keys` is
//! deterministic. A dict is shared behind an `Rc`; `assoc` copies only when
//! the map is shared (the compiler moves a variable's value on its last use,
//! so `(assoc d k v)` on a dict nothing else holds updates in place).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::printer;
use crate::value::Value;

/// A dict key: a keyword, string, integer or float (never NaN).
#[derive(Clone, Debug)]
pub struct Key(Value);

impl Key {
    /// Wraps a value as a key, or gives it back if it cannot be one.
    pub fn new(v: Value) -> Result<Key, Value> {
        match &v {
            Value::Keyword(_) | Value::Str(_) | Value::Int(_) => Ok(Key(v)),
            Value::Float(f) if !f.is_nan() && f.is_finite() => Ok(Key(v)),
            _ => Err(v),
        }
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    pub fn into_value(self) -> Value {
        self.0
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Orders keys by the bytes of their canonical serialization, without
    /// building those bytes for strings and keywords.
    fn cmp(&self, other: &Key) -> Ordering {
        match (&self.0, &other.0) {
            (Value::Keyword(a), Value::Keyword(b)) => a.as_str().cmp(b.as_str()),
            (Value::Str(a), Value::Str(b)) => {
                printer::escaped_bytes(a).cmp(printer::escaped_bytes(b))
            }
            (a, b) => {
                let (ca, cb) = (first_class(a), first_class(b));
                if ca != cb {
                    return ca.cmp(&cb);
                }
                // Both numbers: compare their canonical texts.
                let (ta, tb) = (printer::number_text(a), printer::number_text(b));
                ta.as_bytes().cmp(tb.as_bytes())
            }
        }
    }
}

/// The first byte of a key's canonical form decides order between kinds:
/// `"` (0x22) < `-`/digits (0x2D..0x39) < `:` (0x3A).
fn first_class(v: &Value) -> u8 {
    match v {
        Value::Str(_) => 0,
        Value::Int(_) | Value::Float(_) => 1,
        _ => 2,
    }
}

/// An immutable dict value.
#[derive(Clone, Default)]
pub struct Dict(Rc<BTreeMap<Key, Value>>);

impl Dict {
    pub fn new() -> Dict {
        Dict::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &Value) -> Option<&Value> {
        let k = Key::new(key.clone()).ok()?;
        self.0.get(&k)
    }

    pub fn get_key(&self, key: &Key) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn contains(&self, key: &Value) -> bool {
        self.get(key).is_some()
    }

    /// Inserts in place when this handle is the map's only owner, copying
    /// the map otherwise.
    pub fn insert(&mut self, key: Key, value: Value) {
        Rc::make_mut(&mut self.0).insert(key, value);
    }

    pub fn remove(&mut self, key: &Value) {
        if let Ok(k) = Key::new(key.clone()) {
            if self.0.contains_key(&k) {
                Rc::make_mut(&mut self.0).remove(&k);
            }
        }
    }

    /// Entries in canonical key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> + '_ {
        self.0.iter().map(|(k, v)| (k.value(), v))
    }

    pub fn equals(&self, other: &Dict) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
            || (self.len() == other.len()
                && self
                    .0
                    .iter()
                    .zip(other.0.iter())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.equals(v2)))
    }

    pub fn ptr_eq(&self, other: &Dict) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl FromIterator<(Key, Value)> for Dict {
    fn from_iter<I: IntoIterator<Item = (Key, Value)>>(iter: I) -> Self {
        Dict(Rc::new(iter.into_iter().collect()))
    }
}
