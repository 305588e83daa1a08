//! Dicts: immutable maps from keywords, strings and numbers to values.
//!
//! Entries are kept sorted by the canonical bytes of their keys, so
//! iteration order is the canonical serialization order and `keys` is
//! deterministic. The map is a persistent AVL tree, so `assoc` and `dissoc`
//! share all but O(log n) nodes with the dict they came from.

use std::cmp::Ordering;
use std::rc::Rc;

use crate::printer;
use crate::value::Value;

/// A dict key: a keyword, string, integer or float (never NaN).
///
/// Carries the first eight bytes of its canonical form as a big-endian
/// number, zero-padded, so most comparisons are one integer comparison.
/// Differing prefixes decide the order (padding is only ever compared
/// with a byte of a longer form, which it sorts before, or with a zero
/// byte, which does not differ); equal prefixes fall back to comparing
/// the whole forms.
#[derive(Clone, Debug)]
pub struct Key {
    value: Value,
    prefix: u64,
}

impl Key {
    /// Wraps a value as a key, or gives it back if it cannot be one.
    pub fn new(v: Value) -> Result<Key, Value> {
        if !is_key(&v) {
            return Err(v);
        }
        Ok(Key {
            prefix: prefix_of(&v),
            value: v,
        })
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn into_value(self) -> Value {
        self.value
    }
}

/// What [`Key::new`] accepts.
#[inline]
fn is_key(v: &Value) -> bool {
    match v {
        Value::Keyword(_) | Value::Str(_) | Value::Int(_) => true,
        Value::Float(f) => !f.is_nan() && f.is_finite(),
        _ => false,
    }
}

/// The first eight bytes of a key's canonical form, zero-padded, as a
/// big-endian number: ordering these orders the canonical forms, except
/// when they are equal.
#[inline(always)]
fn prefix_of(v: &Value) -> u64 {
    // The usual string key, plain text written as itself in quotes, is
    // worked out inline at the lookup or update: a call cost a quarter of it.
    if let Value::Str(s) = v {
        if let Some(prefix) = plain_str_prefix(s.as_bytes()) {
            return prefix;
        }
    }
    prefix_of_other(v)
}

#[inline(never)]
fn prefix_of_other(v: &Value) -> u64 {
    if let Value::Keyword(k) = v {
        // The commonest key: worked out once per keyword and thread.
        return keyword_prefix(*k);
    }
    prefix_from_bytes(v)
}

thread_local! {
    /// `prefix_from_bytes` of each keyword, by symbol index (0: not yet).
    static KEYWORD_PREFIX: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Symbol indexes past this have their keyword prefix worked out each time.
const KEYWORD_PREFIX_MAX: usize = 1 << 16;

fn keyword_prefix(k: crate::symbol::Symbol) -> u64 {
    let i = k.index() as usize;
    let cached = KEYWORD_PREFIX
        .try_with(|c| c.try_borrow().ok().and_then(|c| c.get(i).copied()))
        .ok()
        .flatten()
        .unwrap_or(0);
    if cached != 0 {
        return cached;
    }
    // Never 0: it starts with `:`.
    let prefix = prefix_from_bytes(&Value::Keyword(k));
    if i < KEYWORD_PREFIX_MAX {
        let _ = KEYWORD_PREFIX.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                if c.len() <= i {
                    c.resize(i + 1, 0);
                }
                if let Some(slot) = c.get_mut(i) {
                    *slot = prefix;
                }
            }
        });
    }
    prefix
}

fn prefix_from_bytes(v: &Value) -> u64 {
    let mut buf = [0u8; 8];
    let mut n = 0;
    let mut put = |b: u8| {
        if let Some(slot) = buf.get_mut(n) {
            *slot = b;
            n += 1;
        }
    };
    match v {
        Value::Str(s) => {
            // Only strings `plain_str_prefix` refused come here (from
            // `prefix_of`): written escaped.
            put(b'"');
            printer::escaped_bytes(s)
                .chain(std::iter::once(b'"'))
                .take(7)
                .for_each(put);
        }
        Value::Keyword(k) => {
            put(b':');
            k.as_str().bytes().take(7).for_each(put);
        }
        Value::Int(i) => {
            // On the stack: no heap string per integer key.
            let mut digits = itoa::Buffer::new();
            digits.format(*i).bytes().take(8).for_each(put);
        }
        other => printer::number_text(other).bytes().take(8).for_each(put),
    }
    u64::from_be_bytes(buf)
}

/// The prefix of a string whose first seven bytes (or all, if fewer) are
/// plain (see [`plain_byte`]), so its canonical form starts with them
/// after the opening quote; `None` for any other string. Works on the
/// bytes as one word: lookups and updates compute this for every string
/// key, and a byte loop with a copy was most of their cost.
#[inline]
fn plain_str_prefix(bytes: &[u8]) -> Option<u64> {
    let (x, k) = head_le(bytes);
    // Bytes past the head are checked as `a`, which is plain.
    let head_mask = (1u64 << (8 * k)) - 1;
    if !all_plain(x | (0x6161_6161_6161_6161 & !head_mask)) {
        return None;
    }
    // Little-endian: the opening quote, the head, then the closing quote
    // when it still falls within the eight bytes.
    let close = if k < 7 {
        u64::from(b'"') << (8 * (k + 1))
    } else {
        0
    };
    Some((u64::from(b'"') | (x << 8) | close).swap_bytes())
}

/// The first `min(len, 7)` bytes as a little-endian number, and how many.
#[inline]
fn head_le(bytes: &[u8]) -> (u64, usize) {
    if let Some(first) = bytes.first_chunk::<8>() {
        return (u64::from_le_bytes(*first) & 0x00ff_ffff_ffff_ffff, 7);
    }
    let n = bytes.len();
    if let (Some(lo), Some(hi)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // Two overlapping loads cover 4 to 7 bytes; the overlap ORs a
        // byte with itself.
        let (lo, hi) = (u32::from_le_bytes(*lo), u32::from_le_bytes(*hi));
        return (u64::from(lo) | (u64::from(hi) << (8 * (n - 4))), n);
    }
    let x = bytes
        .iter()
        .enumerate()
        .fold(0u64, |x, (i, &b)| x | (u64::from(b) << (8 * i)));
    (x, n)
}

/// Whether all eight bytes of `x` are plain. Each test adds within bytes
/// that are below 0x80, so no carry crosses into the next byte.
#[inline]
fn all_plain(x: u64) -> bool {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let nonzero = |y: u64| (y.wrapping_add(0x7f * LOW) & HIGH) == HIGH;
    x & HIGH == 0
        // No control character: each byte is at least 0x20.
        && (x.wrapping_add(0x60 * LOW) & HIGH) == HIGH
        // No DEL (0x7f).
        && (x.wrapping_add(LOW) & HIGH) == 0
        && nonzero(x ^ (u64::from(b'"') * LOW))
        && nonzero(x ^ (u64::from(b'\\') * LOW))
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
    #[inline]
    fn cmp(&self, other: &Key) -> Ordering {
        cmp_prefixed(self.prefix, &self.value, other.prefix, &other.value)
    }
}

/// Orders two keys given their prefixes (see [`Key`]).
#[inline]
fn cmp_prefixed(pa: u64, a: &Value, pb: u64, b: &Value) -> Ordering {
    if pa != pb {
        return pa.cmp(&pb);
    }
    // A string's canonical form has no zero byte (controls are escaped)
    // and ends at its closing quote, so a string prefix ending in padding
    // holds the whole form: an equal prefix is an equal key.
    if pa >> 56 == u64::from(b'"') && pa & 0xff == 0 {
        return Ordering::Equal;
    }
    cmp_keys(a, b)
}

/// Orders keys by the bytes of their canonical serialization, without
/// building those bytes for strings and keywords.
#[inline]
fn cmp_keys(a: &Value, b: &Value) -> Ordering {
    {
        match (a, b) {
            // Interned: the same symbol is the same name, found without
            // looking the names up (the usual end of a keyword `get`).
            (Value::Keyword(a), Value::Keyword(b)) if a == b => Ordering::Equal,
            (Value::Keyword(a), Value::Keyword(b)) => a.as_str().cmp(b.as_str()),
            (Value::Str(a), Value::Str(b)) => cmp_strings(a, b),
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

/// Orders strings by their canonical (escaped) bytes. Escaping is the
/// same for a common prefix, so only the first differing byte can make
/// escaped order differ from byte order, and only if it is escaped.
fn cmp_strings(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    // Eight bytes at a time while both have them: dict lookups compare a
    // key with every node on a path, so this is their inner loop.
    while let (Some(cx), Some(cy)) = (x.get(i..i + 8), y.get(i..i + 8)) {
        let (Ok(cx), Ok(cy)) = (<[u8; 8]>::try_from(cx), <[u8; 8]>::try_from(cy)) else {
            break;
        };
        let diff = u64::from_le_bytes(cx) ^ u64::from_le_bytes(cy);
        if diff != 0 {
            i += (diff.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    loop {
        match (x.get(i), y.get(i)) {
            (Some(&c), Some(&d)) if c == d => i += 1,
            (Some(&c), Some(&d)) if plain_byte(c) && plain_byte(d) => return c.cmp(&d),
            (Some(_), Some(_)) => {
                return printer::escaped_bytes(a).cmp(printer::escaped_bytes(b));
            }
            // One is a prefix of the other. In canonical bytes the shorter
            // one's closing quote (0x22) meets the longer one's next
            // character, whose canonical first byte is below 0x22 only for
            // space and `!`.
            (None, None) => return Ordering::Equal,
            (None, next) => return prefix_order(next),
            (next, None) => return prefix_order(next).reverse(),
        }
    }
}

/// Order of a string against a longer one it is a prefix of, given the
/// longer one's next byte.
fn prefix_order(next: Option<&u8>) -> Ordering {
    match next {
        Some(b' ' | b'!') => Ordering::Greater,
        _ => Ordering::Less,
    }
}

/// Printable ASCII other than `"` and `\`: written as itself.
fn plain_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
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

/// An immutable dict value: a persistent AVL tree ordered by [`Key`].
///
/// Updating returns a new dict sharing all but the O(log n) nodes on the
/// path to the key; a node that nothing else shares is updated in place.
/// So `assoc` costs O(log n) whether or not the old dict is still in use
/// (a copy-on-write map would copy everything when it is).
#[derive(Clone, Default)]
pub struct Dict {
    root: Link,
    len: usize,
}

type Link = Option<Rc<Node>>;

#[derive(Clone)]
struct Node {
    key: Key,
    value: Value,
    /// Left and right subtrees, as an array so that a lookup picks one
    /// by index rather than by a branch (see `Dict::find`).
    kids: [Link; 2],
    height: u8,
}

impl Drop for Node {
    // The tree itself is shallow (AVL), but values may nest dicts in dicts.
    fn drop(&mut self) {
        crate::value::drop_nested(std::mem::take(&mut self.value));
    }
}

fn height(link: &Link) -> u8 {
    link.as_ref().map_or(0, |n| n.height)
}

impl Node {
    fn fix_height(&mut self) {
        self.height = 1 + height(&self.kids[0]).max(height(&self.kids[1]));
    }

    fn balance(&self) -> i16 {
        i16::from(height(&self.kids[0])) - i16::from(height(&self.kids[1]))
    }
}

fn rotate_right(mut node: Rc<Node>) -> Rc<Node> {
    let n = Rc::make_mut(&mut node);
    let Some(mut left) = n.kids[0].take() else {
        return node;
    };
    let l = Rc::make_mut(&mut left);
    n.kids[0] = l.kids[1].take();
    n.fix_height();
    l.kids[1] = Some(node);
    l.fix_height();
    left
}

fn rotate_left(mut node: Rc<Node>) -> Rc<Node> {
    let n = Rc::make_mut(&mut node);
    let Some(mut right) = n.kids[1].take() else {
        return node;
    };
    let r = Rc::make_mut(&mut right);
    n.kids[1] = r.kids[0].take();
    n.fix_height();
    r.kids[0] = Some(node);
    r.fix_height();
    right
}

/// Restores the AVL invariant at `node` after one side changed by one.
fn rebalance(mut node: Rc<Node>) -> Rc<Node> {
    Rc::make_mut(&mut node).fix_height();
    let b = node.balance();
    if b > 1 {
        let n = Rc::make_mut(&mut node);
        if n.kids[0].as_ref().is_some_and(|l| l.balance() < 0) {
            n.kids[0] = n.kids[0].take().map(rotate_left);
        }
        return rotate_right(node);
    }
    if b < -1 {
        let n = Rc::make_mut(&mut node);
        if n.kids[1].as_ref().is_some_and(|r| r.balance() > 0) {
            n.kids[1] = n.kids[1].take().map(rotate_right);
        }
        return rotate_left(node);
    }
    node
}

/// Inserts into the subtree; returns it and whether the key was new.
fn insert(link: Link, key: Key, value: Value) -> (Rc<Node>, bool) {
    let Some(mut node) = link else {
        let leaf = Node {
            key,
            value,
            kids: [None, None],
            height: 1,
        };
        return (Rc::new(leaf), true);
    };
    let n = Rc::make_mut(&mut node);
    match key.cmp(&n.key) {
        std::cmp::Ordering::Equal => {
            n.value = value;
            (node, false)
        }
        // Replacing a value changes no height: only a new key rebalances.
        std::cmp::Ordering::Less => {
            let (child, added) = insert(n.kids[0].take(), key, value);
            n.kids[0] = Some(child);
            (if added { rebalance(node) } else { node }, added)
        }
        std::cmp::Ordering::Greater => {
            let (child, added) = insert(n.kids[1].take(), key, value);
            n.kids[1] = Some(child);
            (if added { rebalance(node) } else { node }, added)
        }
    }
}

/// Sets the value of `key` if the subtree has it, giving `value` back if
/// not. Nodes on the path that other dicts share are copied, as an insert
/// would copy them.
fn replace(link: &mut Link, key: &Key, value: Value) -> Result<(), Value> {
    let mut cur = link;
    loop {
        let Some(node) = cur else {
            return Err(value);
        };
        // Inline uniqueness check: `Rc::make_mut` is an out-of-line call
        // per level, and an update of a dict nothing else holds (the
        // usual `(assoc d k v)` on d's last use) finds every node unique.
        if Rc::get_mut(node).is_none() {
            unshare(node);
        }
        // Unique now. (Were it not, the insert the caller falls back to
        // would set the value instead.)
        let Some(n) = Rc::get_mut(node) else {
            return Err(value);
        };
        // As in `Dict::find`: a side by index while prefixes differ.
        if n.key.prefix != key.prefix {
            cur = &mut n.kids[usize::from(key.prefix > n.key.prefix)];
            continue;
        }
        cur = match key.cmp(&n.key) {
            Ordering::Equal => {
                n.value = value;
                return Ok(());
            }
            Ordering::Less => &mut n.kids[0],
            Ordering::Greater => &mut n.kids[1],
        };
    }
}

/// Replaces a node that other dicts share with a copy of it (what
/// `Rc::make_mut` does; no `Weak` to a node exists).
#[cold]
#[inline(never)]
fn unshare(node: &mut Rc<Node>) {
    *node = Rc::new(Node::clone(node));
}

/// Removes the smallest node of a subtree, returning the rest and it.
fn take_min(mut node: Rc<Node>) -> (Link, Rc<Node>) {
    let n = Rc::make_mut(&mut node);
    match n.kids[0].take() {
        None => (n.kids[1].take(), node),
        Some(left) => {
            let (rest, min) = take_min(left);
            n.kids[0] = rest;
            (Some(rebalance(node)), min)
        }
    }
}

/// Removes `key` from the subtree; returns it and whether a node went.
fn remove(link: Link, key: &Key) -> (Link, bool) {
    let Some(mut node) = link else {
        return (None, false);
    };
    let n = Rc::make_mut(&mut node);
    match key.cmp(&n.key) {
        std::cmp::Ordering::Less => {
            let (child, removed) = remove(n.kids[0].take(), key);
            n.kids[0] = child;
            (Some(rebalance(node)), removed)
        }
        std::cmp::Ordering::Greater => {
            let (child, removed) = remove(n.kids[1].take(), key);
            n.kids[1] = child;
            (Some(rebalance(node)), removed)
        }
        std::cmp::Ordering::Equal => {
            let (left, right) = (n.kids[0].take(), n.kids[1].take());
            match (left, right) {
                (None, other) | (other, None) => (other, true),
                (Some(left), Some(right)) => {
                    let (rest, mut min) = take_min(right);
                    let m = Rc::make_mut(&mut min);
                    m.kids[0] = Some(left);
                    m.kids[1] = rest;
                    (Some(rebalance(min)), true)
                }
            }
        }
    }
}

impl Dict {
    pub fn new() -> Dict {
        Dict::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, key: &Value) -> Option<&Value> {
        // What `Key::new` accepts, checked without cloning the key.
        if !is_key(key) {
            return None;
        }
        self.find(key, prefix_of(key))
    }

    pub fn get_key(&self, key: &Key) -> Option<&Value> {
        self.find(&key.value, key.prefix)
    }

    /// `get_key` for the keyword keys the machine looks up with
    /// `LocalGetKw`: a node with an equal prefix and the same (interned)
    /// symbol is the key, found without the out-of-line `cmp_keys`.
    #[inline]
    pub fn get_keyword(&self, key: &Key) -> Option<&Value> {
        let Value::Keyword(sym) = key.value else {
            return self.get_key(key);
        };
        let mut cur = self.root.as_deref();
        while let Some(n) = cur {
            // A side by index while prefixes differ, as in `find`.
            if n.key.prefix != key.prefix {
                cur = n.kids[usize::from(key.prefix > n.key.prefix)].as_deref();
                continue;
            }
            let order = match n.key.value {
                Value::Keyword(s) if s == sym => Ordering::Equal,
                _ => cmp_prefixed(key.prefix, &key.value, n.key.prefix, &n.key.value),
            };
            cur = match order {
                Ordering::Equal => return Some(&n.value),
                Ordering::Less => n.kids[0].as_deref(),
                Ordering::Greater => n.kids[1].as_deref(),
            };
        }
        None
    }

    fn find(&self, key: &Value, prefix: u64) -> Option<&Value> {
        let mut cur = self.root.as_deref();
        while let Some(n) = cur {
            // Differing prefixes (all but the last node of a path) pick a
            // side by index: a branch on them mispredicted about every
            // other level.
            if n.key.prefix != prefix {
                cur = n.kids[usize::from(prefix > n.key.prefix)].as_deref();
                continue;
            }
            cur = match cmp_prefixed(prefix, key, n.key.prefix, &n.key.value) {
                Ordering::Equal => return Some(&n.value),
                Ordering::Less => n.kids[0].as_deref(),
                Ordering::Greater => n.kids[1].as_deref(),
            };
        }
        None
    }

    pub fn contains(&self, key: &Value) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`: in place along the path where nothing else
    /// shares the nodes, copying only the shared ones.
    pub fn insert(&mut self, key: Key, value: Value) {
        // Replacing an existing key's value (the common update) walks down
        // in a loop; only a new key takes the rebalancing path.
        let Err(value) = replace(&mut self.root, &key, value) else {
            return;
        };
        let (root, added) = insert(self.root.take(), key, value);
        self.root = Some(root);
        if added {
            self.len += 1;
        }
    }

    pub fn remove(&mut self, key: &Value) {
        let Ok(k) = Key::new(key.clone()) else {
            return;
        };
        if self.get_key(&k).is_none() {
            return;
        }
        let (root, removed) = remove(self.root.take(), &k);
        self.root = root;
        if removed {
            self.len -= 1;
        }
    }

    /// Entries in canonical key order.
    pub fn iter(&self) -> DictIter<'_> {
        let mut it = DictIter { stack: Vec::new() };
        it.push_left(self.root.as_deref());
        it
    }

    pub fn equals(&self, other: &Dict) -> bool {
        self.ptr_eq(other)
            || (self.len == other.len
                && self.iter().zip(other.iter()).all(|((k1, v1), (k2, v2))| {
                    cmp_keys(k1, k2) == Ordering::Equal && v1.equals(v2)
                }))
    }

    /// Whether every node is held only by this dict (no other version
    /// shares any of it); the cycle collector walks only such dicts.
    pub(crate) fn uniquely_owned(&self) -> bool {
        let mut work: Vec<&Rc<Node>> = self.root.iter().collect();
        while let Some(n) = work.pop() {
            if Rc::strong_count(n) != 1 {
                return false;
            }
            work.extend(n.kids[0].iter());
            work.extend(n.kids[1].iter());
        }
        true
    }

    pub fn ptr_eq(&self, other: &Dict) -> bool {
        match (&self.root, &other.root) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// In-order iteration over a dict.
pub struct DictIter<'a> {
    stack: Vec<&'a Node>,
}

impl<'a> DictIter<'a> {
    fn push_left(&mut self, mut node: Option<&'a Node>) {
        while let Some(n) = node {
            self.stack.push(n);
            node = n.kids[0].as_deref();
        }
    }
}

impl<'a> Iterator for DictIter<'a> {
    type Item = (&'a Value, &'a Value);
    fn next(&mut self) -> Option<Self::Item> {
        let n = self.stack.pop()?;
        self.push_left(n.kids[1].as_deref());
        Some((n.key.value(), &n.value))
    }
}

/// A dict of the pairs, a later pair with an equal key replacing an
/// earlier one (as inserting them in order would). Built in one go: the
/// pairs sorted (stably, so the last of equal keys stays last), then a
/// balanced tree made from them in order, each node allocated once, where
/// inserting one by one would rebalance and copy paths (dict literals and
/// a host's request dicts are built this way).
impl FromIterator<(Key, Value)> for Dict {
    fn from_iter<I: IntoIterator<Item = (Key, Value)>>(iter: I) -> Self {
        let mut pairs: Vec<(Key, Value)> = iter.into_iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Key, Value)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match kept.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => kept.push((k, v)),
            }
        }
        let len = kept.len();
        let root = balanced(&mut kept.into_iter(), len);
        Dict { root, len }
    }
}

/// A balanced subtree of the next `n` pairs of `pairs`, which are in key
/// order: the middle one at the root, the halves below it, so the sides
/// differ in size, and so in height, by at most one.
fn balanced(pairs: &mut impl Iterator<Item = (Key, Value)>, n: usize) -> Link {
    if n == 0 {
        return None;
    }
    let left_n = (n - 1) / 2;
    let left = balanced(pairs, left_n);
    let (key, value) = pairs.next()?;
    let right = balanced(pairs, n - 1 - left_n);
    let height = 1 + height(&left).max(height(&right));
    Some(Rc::new(Node {
        key,
        value,
        kids: [left, right],
        height,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: i64) -> Key {
        Key::new(Value::Int(i)).unwrap_or_else(|_| unreachable!())
    }

    /// Checks ordering, balance and stored heights of every node.
    fn check(link: &Link) -> u8 {
        let Some(n) = link else { return 0 };
        let (l, r) = (check(&n.kids[0]), check(&n.kids[1]));
        assert!((i16::from(l) - i16::from(r)).abs() <= 1, "unbalanced");
        assert_eq!(n.height, 1 + l.max(r), "stale height");
        if let Some(left) = &n.kids[0] {
            assert!(left.key < n.key);
        }
        if let Some(right) = &n.kids[1] {
            assert!(right.key > n.key);
        }
        n.height
    }

    #[test]
    fn inserts_and_removes_keep_order_and_balance() {
        let mut d = Dict::new();
        let mut model = std::collections::BTreeMap::new();
        // A deterministic shuffle of 0..2000, then removal of every third.
        for i in 0..2000i64 {
            let x = (i * 7919) % 2000;
            d.insert(k(x), Value::Int(i));
            model.insert(x, i);
            check(&d.root);
        }
        for x in (0..2000i64).step_by(3) {
            d.remove(&Value::Int(x));
            model.remove(&x);
            check(&d.root);
        }
        assert_eq!(d.len(), model.len());
        let got: Vec<(Value, Value)> = d.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
        let mut want: Vec<(Key, i64)> = model.iter().map(|(a, b)| (k(*a), *b)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), want.len());
        for ((gk, gv), (wk, wv)) in got.iter().zip(&want) {
            assert!(gk.equals(wk.value()) && gv.equals(&Value::Int(*wv)));
        }
    }

    #[test]
    fn built_in_one_go_equals_inserted_one_by_one() {
        // Every size up to 70 (each shape of the balanced build), keys in a
        // shuffled order with repeats: the last value of a key wins.
        for n in 0..70i64 {
            let pairs: Vec<(Key, Value)> = (0..n + n / 3)
                .map(|i| (k((i * 37) % (n.max(1))), Value::Int(i)))
                .collect();
            let mut inserted = Dict::new();
            for (key, v) in pairs.clone() {
                inserted.insert(key, v);
            }
            let built: Dict = pairs.into_iter().collect();
            check(&built.root);
            assert_eq!(built.len(), inserted.len());
            assert!(built.equals(&inserted), "size {n}");
            // And it updates as any dict does.
            let mut more = built.clone();
            more.insert(k(-1), Value::Nil);
            check(&more.root);
            assert_eq!(more.len(), built.len() + 1);
        }
    }

    #[test]
    fn string_key_order_is_canonical_byte_order() {
        let samples = [
            "", "a", "ab", "a b", "a\"", "a\\", "a\n", "a\t", "a\u{1}", "a\u{7f}", "a\u{80}",
            "a\u{9f}", "a\u{a0}", "aé", "a😀", "b", "A", "~", " ", "\"", "\\", "z\u{1b}x",
        ];
        for a in samples {
            for b in samples {
                let canon = |s: &str| crate::printer::serialize(&Value::str(s)).unwrap_or_default();
                assert_eq!(
                    cmp_strings(a, b),
                    canon(a).into_bytes().cmp(&canon(b).into_bytes()),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn a_string_prefix_is_its_canonical_forms_first_eight_bytes() {
        for s in [
            "",
            "a",
            "w1234",
            "abcdef",
            "abcdefg",
            "abcdefgh",
            "a b~",
            "é",
            "a\"b",
            "abcdefg\\",
        ] {
            let v = Value::str(s);
            let canon = crate::printer::serialize(&v).unwrap_or_default();
            let mut buf = [0u8; 8];
            for (d, b) in buf.iter_mut().zip(canon.bytes()) {
                *d = b;
            }
            assert_eq!(prefix_of(&v), u64::from_be_bytes(buf), "{s:?}");
        }
    }

    /// The word-at-a-time prefix against the canonical bytes: every length
    /// to past eight, with each kind of byte that is not written as itself
    /// (and the plain bytes next to those ranges) at every position.
    #[test]
    fn prefixes_of_strings_with_special_bytes_at_each_position() {
        let canon_prefix = |v: &Value| {
            let canon = crate::printer::serialize(v).unwrap_or_default();
            let mut buf = [0u8; 8];
            for (d, b) in buf.iter_mut().zip(canon.bytes()) {
                *d = b;
            }
            u64::from_be_bytes(buf)
        };
        let specials = [
            "\u{0}", "\u{1}", "\t", "\n", "\u{1f}", " ", "!", "\"", "#", "[", "\\", "]", "~",
            "\u{7f}", "\u{80}", "é", "😀", "a",
        ];
        for len in 0..=10usize {
            for pos in 0..len.max(1) {
                for sp in specials {
                    let s: String = (0..len)
                        .map(|i| {
                            if i == pos {
                                sp.to_owned()
                            } else {
                                char::from(b'a' + (i % 26) as u8).to_string()
                            }
                        })
                        .collect();
                    let v = Value::str(&s);
                    assert_eq!(prefix_of(&v), canon_prefix(&v), "{s:?}");
                }
            }
        }
        for n in [0i64, 7, -7, 1234567, 12345678, -1234567, i64::MIN, i64::MAX] {
            let v = Value::Int(n);
            assert_eq!(prefix_of(&v), canon_prefix(&v), "{n}");
        }
    }

    #[test]
    fn key_order_with_prefixes_is_canonical_byte_order() {
        let strs = [
            "",
            "a",
            "ab",
            "a b",
            "a!",
            "a\"",
            "a\n",
            "abcdefg",
            "abcdefgh",
            "abcdefg ",
            "abcdefgh!",
            "abcdefghij",
            "abcdefg\"x",
            "aé",
            "w1234",
            "w12345",
            "abcde",
            "abcdef",
            "abcdefX",
            "abc\u{0}",
            "\u{1}",
        ];
        let mut keys: Vec<Value> = strs.iter().map(|s| Value::str(s)).collect();
        for name in ["a", "ab", "abcdefgh", "abcdefghi", "a\u{0}", "a\u{0}b"] {
            keys.push(Value::Keyword(crate::symbol::Symbol::new(name)));
        }
        for n in [
            0i64,
            1,
            -1,
            9,
            10,
            123_456_789,
            -123_456_789,
            i64::MAX,
            i64::MIN,
        ] {
            keys.push(Value::Int(n));
        }
        keys.extend([Value::Float(1.5), Value::Float(-0.25), Value::Float(1e21)]);
        for a in &keys {
            for b in &keys {
                let (ka, kb) = (Key::new(a.clone()).ok(), Key::new(b.clone()).ok());
                let (Some(ka), Some(kb)) = (ka, kb) else {
                    panic!("not keys: {a:?} {b:?}");
                };
                let canon = |v: &Value| crate::printer::serialize(v).unwrap_or_default();
                assert_eq!(
                    ka.cmp(&kb),
                    canon(a).into_bytes().cmp(&canon(b).into_bytes()),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn updates_leave_shared_versions_unchanged() {
        let mut a = Dict::new();
        for i in 0..100 {
            a.insert(k(i), Value::Int(i));
        }
        let before = a.clone();
        let mut b = a.clone();
        b.insert(k(50), Value::Int(-1));
        b.remove(&Value::Int(7));
        assert_eq!(before.get(&Value::Int(50)).cloned(), Some(Value::Int(50)));
        assert_eq!(a.get(&Value::Int(7)).cloned(), Some(Value::Int(7)));
        assert_eq!(b.get(&Value::Int(50)).cloned(), Some(Value::Int(-1)));
        assert_eq!(b.get(&Value::Int(7)), None);
        assert_eq!((a.len(), b.len()), (100, 99));
    }
}
