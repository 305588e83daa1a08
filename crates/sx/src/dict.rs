//! Dicts: immutable maps from keywords, strings and numbers to values.
//!
//! Entries are kept sorted by the canonical bytes of their keys, so
//! iteration order is the canonical serialization order and `keys` is
//! deterministic. The map is a persistent B-tree, so `assoc` and `dissoc`
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

/// An immutable dict value: a persistent B-tree ordered by [`Key`].
///
/// Updating returns a new dict sharing all but the O(log n) nodes on the
/// path to the key; a node that nothing else shares is updated in place.
/// So `assoc` costs O(log n) whether or not the old dict is still in use
/// (a copy-on-write map would copy everything when it is).
///
/// A B-tree rather than a binary tree because a lookup is a walk from the
/// root, and a binary tree of 5,000 keys is 13 nodes deep, each a likely
/// cache miss; here it is three, and each node's search reads one short
/// array of key prefixes. A dict of up to [`MAX`] entries is one node.
///
/// A `Dict` is the root pointer alone (its length is kept in the root
/// node), so that `Value` is two words.
#[derive(Clone, Default)]
pub struct Dict {
    root: Link,
}

type Link = Option<Rc<Node>>;

/// Most entries a node holds: one more splits it in two.
const MAX: usize = 15;
/// Fewest entries a node other than the root holds.
const MIN: usize = MAX / 2;
/// Room in a node's prefix array: its entries, and one more while a node
/// that overflowed waits to be split.
const SLOTS: usize = MAX + 1;
/// What fills a prefix array past the entries. No key has it (canonical
/// forms are UTF-8, which never holds the byte 0xFF), and it sorts after
/// every prefix, so a search can look at all the slots.
const PAD: u64 = u64::MAX;

struct Node {
    /// The sort prefix of each entry's key (see [`Key`]), then [`PAD`]:
    /// kept in the node, apart from the entries, so that a search reads
    /// two cache lines of numbers and touches an entry only where the
    /// prefixes tie.
    prefixes: [u64; SLOTS],
    /// In key order.
    entries: Vec<Entry>,
    /// Empty in a leaf; otherwise one more than the entries, `kids[i]`
    /// holding the keys between `entries[i - 1]` and `entries[i]`. Every
    /// leaf is at the same depth.
    kids: Vec<Rc<Node>>,
    /// In a dict's root, the dict's number of entries. Nodes below the
    /// root do not keep theirs (it is whatever it was when they last were
    /// a root, usually 0); nothing reads it there.
    len: usize,
}

#[derive(Clone)]
struct Entry {
    key: Value,
    value: Value,
}

impl Drop for Node {
    // The tree itself is shallow, but values may nest dicts in dicts.
    fn drop(&mut self) {
        for entry in self.entries.drain(..) {
            crate::value::drop_nested(entry.value);
        }
    }
}

/// The middle entry of a node that overflowed, and the node of the
/// entries above it; the node keeps those below.
struct Split {
    prefix: u64,
    entry: Entry,
    right: Rc<Node>,
}

/// What an insert into a subtree did.
enum Inserted {
    Replaced,
    Added,
    /// Added, and the subtree's root split: its parent takes the middle.
    Split(Split),
}

impl Clone for Node {
    /// A copy made to be updated (see `unshare`): with room for one more
    /// entry, so that an `assoc` of a new key into a shared dict does not
    /// grow the copy straight away.
    fn clone(&self) -> Node {
        let mut entries = Vec::with_capacity((self.entries.len() + 1).min(SLOTS));
        entries.extend(self.entries.iter().cloned());
        Node {
            prefixes: self.prefixes,
            entries,
            kids: self.kids.clone(),
            len: self.len,
        }
    }
}

impl Default for Node {
    fn default() -> Node {
        Node {
            prefixes: [PAD; SLOTS],
            entries: Vec::new(),
            kids: Vec::new(),
            len: 0,
        }
    }
}

impl Node {
    /// A node of one entry: a new root (with the two halves of the old
    /// one as `kids`) or a first leaf.
    fn with(prefix: u64, entry: Entry, kids: Vec<Rc<Node>>) -> Node {
        let mut node = Node::default();
        node.kids = kids;
        node.push(prefix, entry);
        node
    }

    /// Inserts an entry at `at` (at most the entry count, which must be
    /// below [`SLOTS`]).
    fn put(&mut self, at: usize, prefix: u64, entry: Entry) {
        let n = self.entries.len();
        debug_assert!(at <= n && n < SLOTS, "put at {at} of {n}");
        if at > n || n >= SLOTS {
            return;
        }
        self.prefixes.copy_within(at..n, at + 1);
        if let Some(slot) = self.prefixes.get_mut(at) {
            *slot = prefix;
        }
        if n == self.entries.capacity() {
            // Doubling, but never past the most a node holds: a node split
            // from a full one starts at 7 or 8 and would double to 28.
            self.entries.reserve_exact((2 * n).clamp(4, SLOTS) - n);
        }
        self.entries.insert(at, entry);
    }

    fn push(&mut self, prefix: u64, entry: Entry) {
        self.put(self.entries.len(), prefix, entry);
    }

    /// Removes and returns the entry at `at`.
    fn take(&mut self, at: usize) -> Option<(u64, Entry)> {
        let n = self.entries.len();
        if at >= n {
            return None;
        }
        let prefix = *self.prefixes.get(at)?;
        self.prefixes.copy_within(at + 1..n, at);
        if let Some(last) = self.prefixes.get_mut(n - 1) {
            *last = PAD;
        }
        Some((prefix, self.entries.remove(at)))
    }

    fn pop(&mut self) -> Option<(u64, Entry)> {
        self.take(self.entries.len().checked_sub(1)?)
    }

    /// Moves the entries (and subtrees) from `at` on into a new node.
    fn split_off(&mut self, at: usize) -> Node {
        let n = self.entries.len();
        let mut right = Node::default();
        right.entries = self.entries.split_off(at.min(n));
        if !self.is_leaf() {
            right.kids = self.kids.split_off(at.min(self.kids.len()));
        }
        if let (Some(from), Some(to)) = (
            self.prefixes.get_mut(at..n),
            right.prefixes.get_mut(..n.saturating_sub(at)),
        ) {
            to.copy_from_slice(from);
            from.fill(PAD);
        }
        right
    }

    /// Appends the entries and subtrees of `right`, emptying it.
    fn append(&mut self, right: &mut Node) {
        let (n, m) = (self.entries.len(), right.entries.len());
        debug_assert!(n + m <= SLOTS, "append {m} to {n}");
        if n + m > SLOTS {
            return;
        }
        if let (Some(to), Some(from)) =
            (self.prefixes.get_mut(n..n + m), right.prefixes.get_mut(..m))
        {
            to.copy_from_slice(from);
            from.fill(PAD);
        }
        self.entries.append(&mut right.entries);
        self.kids.append(&mut right.kids);
    }

    fn is_leaf(&self) -> bool {
        self.kids.is_empty()
    }

    /// How many of the node's prefixes are smaller than `prefix`.
    #[inline(always)]
    fn rank(&self, prefix: u64) -> usize {
        let p = &self.prefixes;
        let mut i = 0;
        if self.entries.len() <= 4 {
            // Most dicts are one small node: a scan is fewer instructions.
            // It stops at the padding if not before.
            while p.get(i).is_some_and(|&q| q < prefix) {
                i += 1;
            }
        } else {
            // A binary search without branches (a branching one
            // mispredicts about every other step): each step halves the
            // slots left. It ends at most at the last slot, which is
            // padding except in a node waiting to be split (never
            // searched).
            for half in [8, 4, 2, 1] {
                i += usize::from(p[(i + half - 1) % SLOTS] < prefix) * half;
            }
        }
        i
    }

    /// Where a key with this prefix is: `Ok(i)` at `entries[i]`, or
    /// `Err(i)` for not in this node, so in `kids[i]` (or to be inserted
    /// at `i` in a leaf). `tie` orders the key against an entry's key when
    /// their prefixes are equal.
    #[inline(always)]
    fn search(&self, prefix: u64, tie: impl Fn(&Value) -> Ordering) -> Result<usize, usize> {
        let mut i = self.rank(prefix);
        // Keys sharing a prefix sit together; most prefixes are unique.
        while let (Some(&p), Some(entry)) = (self.prefixes.get(i), self.entries.get(i)) {
            if p != prefix {
                break;
            }
            match tie(&entry.key) {
                Ordering::Equal => return Ok(i),
                Ordering::Less => break,
                Ordering::Greater => i += 1,
            }
        }
        Err(i)
    }

    /// Puts an entry at `at`, with the subtree to its right when the node
    /// is internal.
    fn insert_at(&mut self, at: usize, prefix: u64, entry: Entry, right: Option<Rc<Node>>) {
        self.put(at, prefix, entry);
        if let Some(right) = right {
            self.kids.insert(at + 1, right);
        }
    }

    /// Splits a node of `MAX + 1` entries into two of at least `MIN`.
    /// `appended`: the entry that overflowed it went at the end, as when
    /// keys come in order, which leave the lower half as it is for good:
    /// its room for more is given back.
    fn split(&mut self, appended: bool) -> Option<Split> {
        let mid = self.entries.len() / 2;
        let right = self.split_off(mid + 1);
        let (prefix, entry) = self.pop()?;
        if appended {
            self.entries.shrink_to_fit();
            self.kids.shrink_to_fit();
        }
        Some(Split {
            prefix,
            entry,
            right: Rc::new(right),
        })
    }

    /// Gives `kids[i]` at least `MIN` entries again after a removal below
    /// it: moves one across the separating entry from a sibling that can
    /// spare one, or merges it with a sibling.
    fn refill(&mut self, i: usize) {
        let short = |n: Option<&Rc<Node>>| n.is_some_and(|n| n.entries.len() < MIN);
        let spare = |n: Option<&Rc<Node>>| n.is_some_and(|n| n.entries.len() > MIN);
        if !short(self.kids.get(i)) {
            return;
        }
        if i > 0 && spare(self.kids.get(i - 1)) {
            self.rotate(i - 1, true);
        } else if spare(self.kids.get(i + 1)) {
            self.rotate(i, false);
        } else if i > 0 {
            self.merge(i - 1);
        } else {
            self.merge(i);
        }
    }

    /// Moves one entry between `kids[j]` and `kids[j + 1]` through
    /// separator `j`. Rightward: the last entry of `kids[j]` goes up into
    /// the separator, and the separator down to the front of `kids[j + 1]`,
    /// with the last subtree of `kids[j]`. Leftward: the mirror image.
    fn rotate(&mut self, j: usize, rightward: bool) {
        let (Some(sep_p), Some(sep)) = (self.prefixes.get_mut(j), self.entries.get_mut(j)) else {
            return;
        };
        let Some((left, right)) = pair_mut(&mut self.kids, j) else {
            return;
        };
        let (l, r) = (Rc::make_mut(left), Rc::make_mut(right));
        let (from, to) = if rightward { (l, r) } else { (r, l) };
        let taken = if rightward { from.pop() } else { from.take(0) };
        let Some((p, e)) = taken else {
            return;
        };
        let (p, e) = (std::mem::replace(sep_p, p), std::mem::replace(sep, e));
        if rightward {
            to.put(0, p, e);
            if let Some(kid) = from.kids.pop() {
                to.kids.insert(0, kid);
            }
        } else {
            to.push(p, e);
            if !from.kids.is_empty() {
                to.kids.push(from.kids.remove(0));
            }
        }
    }

    /// Merges `kids[j + 1]` and separator `j` into `kids[j]`.
    fn merge(&mut self, j: usize) {
        if j + 1 >= self.kids.len() || j >= self.entries.len() {
            return;
        }
        let mut right = self.kids.remove(j + 1);
        let Some((p, e)) = self.take(j) else {
            return;
        };
        let Some(left) = self.kids.get_mut(j) else {
            return;
        };
        let (l, r) = (Rc::make_mut(left), Rc::make_mut(&mut right));
        l.push(p, e);
        l.append(r);
    }
}

/// `kids[j]` and `kids[j + 1]`, both mutable.
fn pair_mut(kids: &mut [Rc<Node>], j: usize) -> Option<(&mut Rc<Node>, &mut Rc<Node>)> {
    let (left, right) = kids.get_mut(j..j + 2)?.split_at_mut(1);
    Some((left.first_mut()?, right.first_mut()?))
}

/// The order of the key being looked for against a node's key of the
/// same prefix.
#[inline(always)]
fn tie(prefix: u64, key: &Value) -> impl Fn(&Value) -> Ordering {
    move |other| cmp_prefixed(prefix, key, prefix, other)
}

/// Sets the value of `key` if the tree has it, giving `value` back if
/// not. Nodes on the path that other dicts share are copied, as an insert
/// would copy them.
fn replace(link: &mut Link, prefix: u64, key: &Value, value: Value) -> Result<(), Value> {
    let Some(mut cur) = link.as_mut() else {
        return Err(value);
    };
    loop {
        // Inline uniqueness check: `Rc::make_mut` is an out-of-line call
        // per level, and an update of a dict nothing else holds (the
        // usual `(assoc d k v)` on d's last use) finds every node unique.
        if Rc::get_mut(cur).is_none() {
            unshare(cur);
        }
        let Some(n) = Rc::get_mut(cur) else {
            return Err(value);
        };
        match n.search(prefix, tie(prefix, key)) {
            Ok(i) => {
                let Some(entry) = n.entries.get_mut(i) else {
                    return Err(value);
                };
                entry.value = value;
                return Ok(());
            }
            Err(i) => match n.kids.get_mut(i) {
                Some(kid) => cur = kid,
                None => return Err(value),
            },
        }
    }
}

/// Replaces a node that other dicts share with a copy of it (what
/// `Rc::make_mut` does; no `Weak` to a node exists).
#[cold]
#[inline(never)]
fn unshare(node: &mut Rc<Node>) {
    *node = Rc::new(Node::clone(node));
}

/// Inserts into the subtree, splitting the nodes that overflow on the way
/// back up.
fn insert(node: &mut Rc<Node>, prefix: u64, entry: Entry) -> Inserted {
    let n = Rc::make_mut(node);
    let at = match n.search(prefix, tie(prefix, &entry.key)) {
        Ok(i) => {
            if let Some(old) = n.entries.get_mut(i) {
                old.value = entry.value;
            }
            return Inserted::Replaced;
        }
        Err(i) => i,
    };
    match n.kids.get_mut(at) {
        None => n.insert_at(at, prefix, entry, None),
        Some(kid) => match insert(kid, prefix, entry) {
            Inserted::Split(s) => n.insert_at(at, s.prefix, s.entry, Some(s.right)),
            done => return done,
        },
    }
    if n.entries.len() <= MAX {
        return Inserted::Added;
    }
    let appended = at + 1 == n.entries.len();
    n.split(appended).map_or(Inserted::Added, Inserted::Split)
}

/// Removes `key` from the subtree; returns whether it was there. The
/// subtree's root may be left with fewer than `MIN` entries: its parent
/// refills it.
fn remove(node: &mut Rc<Node>, prefix: u64, key: &Value) -> bool {
    let n = Rc::make_mut(node);
    match n.search(prefix, tie(prefix, key)) {
        Ok(i) if n.is_leaf() => n.take(i).is_some(),
        // An inner entry: the largest key below it to its left takes its
        // place.
        Ok(i) => {
            let Some((p, e)) = n.kids.get_mut(i).and_then(pop_last) else {
                return false;
            };
            if let (Some(slot_p), Some(slot)) = (n.prefixes.get_mut(i), n.entries.get_mut(i)) {
                *slot_p = p;
                *slot = e;
            }
            n.refill(i);
            true
        }
        Err(i) => {
            let Some(kid) = n.kids.get_mut(i) else {
                return false;
            };
            let removed = remove(kid, prefix, key);
            if removed {
                n.refill(i);
            }
            removed
        }
    }
}

/// Removes and returns the subtree's last entry.
fn pop_last(node: &mut Rc<Node>) -> Option<(u64, Entry)> {
    let n = Rc::make_mut(node);
    let Some(last) = n.kids.len().checked_sub(1) else {
        return n.pop();
    };
    let popped = pop_last(n.kids.get_mut(last)?);
    n.refill(last);
    popped
}

impl Dict {
    pub fn new() -> Dict {
        Dict::default()
    }

    pub fn len(&self) -> usize {
        self.root.as_ref().map_or(0, |root| root.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &Value) -> Option<&Value> {
        // What `Key::new` accepts, checked without cloning the key.
        if !is_key(key) {
            return None;
        }
        let prefix = prefix_of(key);
        // A prefix ending in padding is a whole canonical form (these have
        // no zero byte, but for keywords, which name any symbol): an equal
        // prefix is an equal key.
        let whole = prefix & 0xff == 0 && prefix >> 56 != u64::from(b':');
        let same = |k: &Value| match key {
            Value::Keyword(a) => matches!(k, Value::Keyword(b) if a == b),
            _ => whole,
        };
        match self.walk(prefix, same) {
            Walk::Found(v) => Some(v),
            Walk::Absent => None,
            Walk::Tie => self.find(key, prefix),
        }
    }

    pub fn get_key(&self, key: &Key) -> Option<&Value> {
        self.find(&key.value, key.prefix)
    }

    /// `get_key` for the keyword keys the machine looks up with
    /// `LocalGetKw`: an entry with an equal prefix and the same (interned)
    /// symbol is the key.
    #[inline]
    pub fn get_keyword(&self, key: &Key) -> Option<&Value> {
        let Value::Keyword(sym) = key.value else {
            return self.get_key(key);
        };
        match self.walk(key.prefix, |k| matches!(k, Value::Keyword(s) if *s == sym)) {
            Walk::Found(v) => Some(v),
            Walk::Absent => None,
            Walk::Tie => self.get_key(key),
        }
    }

    /// The usual lookup, without a call: down to the entry of an equal
    /// prefix, which `same` may say is the key. Keys that share a prefix
    /// (long ones, alike in their first bytes) end in `Tie`, for [`find`].
    ///
    /// [`find`]: Dict::find
    #[inline(always)]
    fn walk(&self, prefix: u64, same: impl Fn(&Value) -> bool) -> Walk<'_> {
        let Some(mut node) = self.root.as_deref() else {
            return Walk::Absent;
        };
        loop {
            let i = node.rank(prefix);
            if node.prefixes.get(i) == Some(&prefix) {
                return match node.entries.get(i) {
                    Some(e) if same(&e.key) => Walk::Found(&e.value),
                    _ => Walk::Tie,
                };
            }
            match node.kids.get(i) {
                Some(kid) => node = kid,
                None => return Walk::Absent,
            }
        }
    }

    #[inline(never)]
    fn find(&self, key: &Value, prefix: u64) -> Option<&Value> {
        let mut node = self.root.as_deref()?;
        loop {
            match node.search(prefix, tie(prefix, key)) {
                Ok(i) => return node.entries.get(i).map(|e| &e.value),
                Err(i) => node = node.kids.get(i)?,
            }
        }
    }

    pub fn contains(&self, key: &Value) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`: in place along the path where nothing else
    /// shares the nodes, copying only the shared ones.
    pub fn insert(&mut self, key: Key, value: Value) {
        // Replacing an existing key's value (the common update) walks down
        // in a loop; only a new key takes the path that may split nodes.
        let Err(value) = replace(&mut self.root, key.prefix, &key.value, value) else {
            return;
        };
        let entry = Entry {
            key: key.value,
            value,
        };
        let Some(root) = self.root.as_mut() else {
            let mut leaf = Node::with(key.prefix, entry, Vec::new());
            leaf.len = 1;
            self.root = Some(Rc::new(leaf));
            return;
        };
        let len = root.len + 1;
        match insert(root, key.prefix, entry) {
            Inserted::Replaced => {}
            // `insert` made the root this dict's own.
            Inserted::Added => Rc::make_mut(root).len = len,
            // The tree grows a level at the top, so every leaf stays at
            // the same depth.
            Inserted::Split(s) => {
                let old = std::mem::take(root);
                let mut top = Node::with(s.prefix, s.entry, vec![old, s.right]);
                top.len = len;
                *root = Rc::new(top);
            }
        }
    }

    pub fn remove(&mut self, key: &Value) {
        if !self.contains(key) {
            // Nothing to copy when nothing changes.
            return;
        }
        let Some(root) = self.root.as_mut() else {
            return;
        };
        let len = root.len.saturating_sub(1);
        if !remove(root, prefix_of(key), key) {
            return;
        }
        // `remove` made the root this dict's own.
        Rc::make_mut(root).len = len;
        // A root left without entries hands over to its one subtree (or,
        // a leaf, leaves the dict empty).
        if root.entries.is_empty() {
            self.root = root.kids.first().cloned();
            if let Some(top) = self.root.as_mut() {
                Rc::make_mut(top).len = len;
            }
        }
    }

    /// Entries in canonical key order.
    pub fn iter(&self) -> DictIter<'_> {
        let mut it = DictIter { stack: Vec::new() };
        if let Some(root) = self.root.as_deref() {
            it.push_left(root);
        }
        it
    }

    pub fn equals(&self, other: &Dict) -> bool {
        self.ptr_eq(other)
            || (self.len() == other.len()
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
            work.extend(n.kids.iter());
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

/// How [`Dict::walk`] ended.
enum Walk<'a> {
    Found(&'a Value),
    Absent,
    Tie,
}

/// In-order iteration over a dict.
pub struct DictIter<'a> {
    /// The nodes from the root down to the current one, each with the
    /// index of its next entry.
    stack: Vec<(&'a Node, usize)>,
}

impl<'a> DictIter<'a> {
    fn push_left(&mut self, mut node: &'a Node) {
        loop {
            self.stack.push((node, 0));
            match node.kids.first() {
                Some(kid) => node = kid,
                None => return,
            }
        }
    }
}

impl<'a> Iterator for DictIter<'a> {
    type Item = (&'a Value, &'a Value);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (node, next) = self.stack.last_mut()?;
            let node: &'a Node = node;
            let Some(entry) = node.entries.get(*next) else {
                self.stack.pop();
                continue;
            };
            *next += 1;
            // The keys between this entry and the next come first.
            if let Some(kid) = node.kids.get(*next) {
                self.push_left(kid);
            }
            return Some((&entry.key, &entry.value));
        }
    }
}

/// A dict of the pairs, a later pair with an equal key replacing an
/// earlier one (as inserting them in order would). The pairs are sorted
/// (stably, so the last of equal keys stays last) and deduplicated first:
/// up to [`MAX`] of them (dict literals, a host's request dicts) make one
/// node, allocated at its size; more are appended in order.
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
        if kept.len() > MAX {
            let mut dict = Dict::new();
            for (k, v) in kept {
                dict.insert(k, v);
            }
            return dict;
        }
        if kept.is_empty() {
            return Dict::new();
        }
        let len = kept.len();
        let mut prefixes = [PAD; SLOTS];
        for (slot, (k, _)) in prefixes.iter_mut().zip(&kept) {
            *slot = k.prefix;
        }
        let entries = kept
            .into_iter()
            .map(|(k, value)| Entry {
                key: k.value,
                value,
            })
            .collect();
        let node = Node {
            prefixes,
            entries,
            kids: Vec::new(),
            len,
        };
        Dict {
            root: Some(Rc::new(node)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: i64) -> Key {
        Key::new(Value::Int(i)).unwrap_or_else(|_| unreachable!())
    }

    /// Checks the B-tree's shape (entry counts, every leaf at one depth),
    /// each stored prefix, strictly increasing key order and the length
    /// kept in the root; returns the depth.
    fn check(link: &Link) -> usize {
        let Some(root) = link else { return 0 };
        let depth = check_node(root, true);
        let dict = Dict { root: link.clone() };
        let keys: Vec<Key> = dict
            .iter()
            .map(|(k, _)| Key::new(k.clone()).unwrap_or_else(|_| unreachable!()))
            .collect();
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1], "keys out of order");
        }
        assert_eq!(root.len, keys.len(), "the root's count of entries");
        depth
    }

    fn check_node(n: &Node, is_root: bool) -> usize {
        let count = n.entries.len();
        assert!(count <= MAX, "overfull node");
        assert!(is_root || count >= MIN, "underfull node");
        assert!(count >= 1, "empty node");
        for (p, e) in n.prefixes.iter().zip(&n.entries) {
            assert_eq!(*p, prefix_of(&e.key), "stale prefix");
        }
        assert!(n.prefixes[count..].iter().all(|&p| p == PAD), "no padding");
        if n.is_leaf() {
            return 1;
        }
        assert_eq!(n.kids.len(), count + 1, "kids and entries differ");
        let depths: Vec<usize> = n.kids.iter().map(|k| check_node(k, false)).collect();
        assert!(
            depths.windows(2).all(|d| d[0] == d[1]),
            "leaves at different depths"
        );
        1 + depths[0]
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

    /// Keys longer than a prefix, alike in their first eight canonical
    /// bytes, so that runs of equal prefixes span nodes and levels: every
    /// lookup, update and removal must still find exactly its key.
    #[test]
    fn keys_sharing_prefixes_across_nodes() {
        let keys: Vec<Value> = (0..300i64)
            .flat_map(|i| {
                [
                    Value::str(&format!("abcdefgh-{i}")),
                    Value::Keyword(crate::symbol::Symbol::new(&format!("abcdefgh-{i}"))),
                    Value::Int(1_234_567_000 + i),
                ]
            })
            .collect();
        let n = keys.len() as i64;
        let mut d = Dict::new();
        for i in 0..n {
            let x = (i * 7919) % n;
            let key = keys[x as usize].clone();
            d.insert(
                Key::new(key).unwrap_or_else(|_| unreachable!()),
                Value::Int(x),
            );
            check(&d.root);
        }
        assert!(check(&d.root) >= 3, "deep enough to span levels");
        for (x, key) in keys.iter().enumerate() {
            assert!(
                d.get(key).is_some_and(|v| v.equals(&Value::Int(x as i64))),
                "{key:?}"
            );
            let k = Key::new(key.clone()).unwrap_or_else(|_| unreachable!());
            assert!(
                d.get_keyword(&k)
                    .is_some_and(|v| v.equals(&Value::Int(x as i64)))
            );
        }
        assert!(d.get(&Value::str("abcdefgh-300")).is_none());
        assert!(d.get(&Value::str("abcdefgh-")).is_none());
        assert!(d.get(&Value::Int(1_234_567_300)).is_none());
        // Updates in place, then every other key removed.
        for key in &keys {
            d.insert(
                Key::new(key.clone()).unwrap_or_else(|_| unreachable!()),
                Value::Nil,
            );
        }
        assert_eq!(d.len(), keys.len());
        for key in keys.iter().step_by(2) {
            d.remove(key);
            check(&d.root);
        }
        for (x, key) in keys.iter().enumerate() {
            assert_eq!(d.get(key).is_some(), x % 2 == 1, "{key:?}");
        }
        assert_eq!(d.len(), keys.len() / 2);
        for key in keys.iter().skip(1).step_by(2) {
            d.remove(key);
            check(&d.root);
        }
        assert!(d.is_empty() && d.root.is_none() && d.iter().next().is_none());
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
