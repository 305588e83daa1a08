//! SX values.
//!
//! A [`Value`] is 16 bytes: immediates inline, everything else behind an `Rc`.
//! Lists are immutable singly-linked cons cells, so `cons`, `first` and `rest`
//! share structure and never copy. Every cons cell carries the source position
//! it was read from ([`Pos::NONE`] when built at run time).
//!
//! Reference counting cannot free cycles. Immutable data cannot form them; the
//! only mutable place is a [`Value::Cell`] (a variable that is both captured
//! and assigned), and the compiler avoids cells for the common recursive
//! shapes (see `compiler` and ARCHITECTURE.md, "Memory").

use std::cell::RefCell;
use std::rc::Rc;

use crate::dict::Dict;
use crate::rcstr::RcStr;
use crate::source::Pos;
use crate::symbol::Symbol;
use crate::vm::{Closure, Native};

/// An SX value.
#[derive(Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(RcStr),
    Symbol(Symbol),
    Keyword(Symbol),
    List(List),
    Dict(Dict),
    /// A lambda with its captured environment.
    Closure(Rc<Closure>),
    /// A function implemented in Rust.
    Native(Rc<Native>),
    /// A macro: a closure run at compile time on unevaluated forms.
    Macro(Rc<Closure>),
    /// A component (`defcomp`/`defisland`): a closure taking keyword args.
    Component(Rc<Component>),
    /// Markup built by evaluating an element form such as `(div ...)`.
    Element(Rc<Element>),
    /// A mutable box for a variable that is captured and assigned. Never seen
    /// by SX code: the VM unwraps it on every access.
    Cell(Rc<RefCell<Value>>),
}

// Two words: a tag and one word of payload (strings and dicts are one
// pointer each). Every push, slot read and list cell moves a `Value`.
const _: () = assert!(std::mem::size_of::<Value>() == 16);

impl Clone for Value {
    // Written out (rather than derived) so it inlines into the machine's
    // hot loop: immediates copy, everything else is one reference count.
    #[inline]
    fn clone(&self) -> Value {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Str(s) => Value::Str(s.clone()),
            Value::Symbol(s) => Value::Symbol(*s),
            Value::Keyword(k) => Value::Keyword(*k),
            Value::List(l) => Value::List(List(l.0.clone())),
            Value::Dict(d) => Value::Dict(d.clone()),
            Value::Closure(c) => Value::Closure(Rc::clone(c)),
            Value::Native(n) => Value::Native(Rc::clone(n)),
            Value::Macro(m) => Value::Macro(Rc::clone(m)),
            Value::Component(c) => Value::Component(Rc::clone(c)),
            Value::Element(e) => Value::Element(Rc::clone(e)),
            Value::Cell(c) => Value::Cell(Rc::clone(c)),
        }
    }
}

/// What [`Value::type_of`] reports, one per user-visible kind of value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeName {
    Nil,
    Boolean,
    Integer,
    Float,
    String,
    Symbol,
    Keyword,
    List,
    Dict,
    Function,
    Macro,
    Component,
    Element,
}

impl TypeName {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeName::Nil => "nil",
            TypeName::Boolean => "boolean",
            TypeName::Integer => "integer",
            TypeName::Float => "float",
            TypeName::String => "string",
            TypeName::Symbol => "symbol",
            TypeName::Keyword => "keyword",
            TypeName::List => "list",
            TypeName::Dict => "dict",
            TypeName::Function => "function",
            TypeName::Macro => "macro",
            TypeName::Component => "component",
            TypeName::Element => "element",
        }
    }
}

/// A component: a named closure called with keyword arguments and children.
pub struct Component {
    pub name: Symbol,
    pub closure: Rc<Closure>,
    /// Declared with `defisland`: hydrated in the browser.
    pub island: bool,
}

/// An element value: a tag, attributes in the order written, and children.
pub struct Element {
    pub tag: RcStr,
    pub attrs: Vec<(Symbol, Value)>,
    pub children: Vec<Value>,
}

/// An immutable list: empty, or a shared cons cell.
#[derive(Clone, Default)]
pub struct List(pub Option<Rc<Cons>>);

/// One cell of a list.
pub struct Cons {
    pub head: Value,
    pub tail: List,
    /// Where this cell was read from; [`Pos::NONE`] for cells built at run time.
    pub pos: Pos,
}

thread_local! {
    /// How many nested container drops are running on this thread.
    static DROP_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Values whose drop was deferred because nesting got too deep.
    static DROP_QUEUE: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

/// Nesting depth past which drops are queued instead of recursing.
const MAX_DROP_DEPTH: u32 = 256;

/// Drops a value held inside a container (dict entry, element attribute or
/// child, closure capture). Dropping nested containers recurses once per
/// level; past [`MAX_DROP_DEPTH`] the value is queued and the outermost
/// drop empties the queue, so no nesting depth overflows the native stack.
pub(crate) fn drop_nested(v: Value) {
    if !matches!(
        v,
        Value::List(_)
            | Value::Dict(_)
            | Value::Element(_)
            | Value::Closure(_)
            | Value::Component(_)
            | Value::Cell(_)
            | Value::Macro(_)
    ) {
        return;
    }
    // Held elsewhere too: dropping is a count decrement, nothing nests.
    let shared = match &v {
        Value::List(List(Some(c))) => Rc::strong_count(c) > 1,
        Value::Element(e) => Rc::strong_count(e) > 1,
        Value::Closure(c) => Rc::strong_count(c) > 1,
        _ => false,
    };
    if shared {
        return;
    }
    let depth = DROP_DEPTH.with(|d| d.get());
    if depth >= MAX_DROP_DEPTH {
        // Cannot fail: the queue is only borrowed for a push or a pop.
        DROP_QUEUE.with(|q| q.borrow_mut().push(v));
        return;
    }
    DROP_DEPTH.with(|d| d.set(depth + 1));
    drop(v);
    DROP_DEPTH.with(|d| d.set(depth));
    if depth == 0 {
        // The outermost drop: finish what was deferred, one value at a time.
        while let Some(next) = DROP_QUEUE.with(|q| q.borrow_mut().pop()) {
            DROP_DEPTH.with(|d| d.set(1));
            drop(next);
            DROP_DEPTH.with(|d| d.set(0));
        }
    }
}

impl Drop for Element {
    fn drop(&mut self) {
        // Popped one by one (cheaper than an iterator); the buffers are
        // freed with the fields.
        while let Some((_, v)) = self.attrs.pop() {
            drop_nested(v);
        }
        while let Some(v) = self.children.pop() {
            drop_nested(v);
        }
    }
}

impl Drop for Cons {
    // Dropping a long or deeply nested list must not recurse once per cell,
    // or a million-element list would overflow the native stack. The tail
    // chain is walked in a loop; nested lists (heads) wait on a worklist,
    // which is only allocated when there are any.
    fn drop(&mut self) {
        // Nothing to walk when the head is not a list and the tail is
        // absent (every cell this loop frees below ends up so) or held
        // elsewhere too, so that dropping it is a count decrement (a list
        // walked with `rest` on its last use drops its cells so, one at a
        // time).
        if !matches!(self.head, Value::List(List(Some(_))))
            && self.tail.0.as_ref().is_none_or(|t| Rc::strong_count(t) > 1)
        {
            return;
        }
        let mut nested: Vec<Rc<Cons>> = Vec::new();
        if let Value::List(List(Some(h))) = std::mem::take(&mut self.head) {
            nested.push(h);
        }
        let mut next = self.tail.0.take();
        loop {
            while let Some(mut rc) = next {
                // Emptied in place (no move of the cell out of its box):
                // `rc` then drops with nothing left to recurse into.
                next = match Rc::get_mut(&mut rc) {
                    Some(cell) => {
                        if let Value::List(List(Some(_))) = cell.head {
                            if let Value::List(List(Some(h))) = std::mem::take(&mut cell.head) {
                                nested.push(h);
                            }
                        }
                        cell.tail.0.take()
                    }
                    // Shared further on: someone else keeps the rest alive.
                    None => None,
                };
            }
            match nested.pop() {
                Some(h) => next = Some(h),
                None => break,
            }
        }
    }
}

impl List {
    pub const EMPTY: List = List(None);

    /// The list reversed. Cells that nothing else holds are relinked in
    /// place (no allocation); from the first shared cell on, the rest is
    /// copied as `reverse` does.
    pub fn reverse_owned(mut self) -> List {
        let mut cur = self.0.take();
        let mut out: Option<Rc<Cons>> = None;
        while let Some(mut rc) = cur {
            match Rc::get_mut(&mut rc) {
                Some(cell) => {
                    // A relinked cell is a new list's cell, as a copy's
                    // would be: it no longer stands where it was read.
                    cell.pos = Pos::NONE;
                    cur = std::mem::replace(&mut cell.tail.0, out);
                    out = Some(rc);
                }
                None => {
                    let mut l = List(out);
                    let shared = List(Some(rc));
                    for v in shared.iter() {
                        l = List::cons(v.clone(), l);
                    }
                    return l;
                }
            }
        }
        List(out)
    }

    pub fn cons(head: Value, tail: List) -> List {
        List(Some(Rc::new(Cons {
            head,
            tail,
            pos: Pos::NONE,
        })))
    }

    pub fn cons_at(head: Value, tail: List, pos: Pos) -> List {
        List(Some(Rc::new(Cons { head, tail, pos })))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn first(&self) -> Option<&Value> {
        self.0.as_ref().map(|c| &c.head)
    }

    pub fn rest(&self) -> List {
        match &self.0 {
            Some(c) => c.tail.clone(),
            None => List::EMPTY,
        }
    }

    /// The source position of the first cell, if the list was read from source.
    pub fn pos(&self) -> Pos {
        self.0.as_ref().map_or(Pos::NONE, |c| c.pos)
    }

    pub fn iter(&self) -> ListIter<'_> {
        ListIter {
            cur: self.0.as_deref(),
        }
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn nth(&self, n: usize) -> Option<&Value> {
        self.iter().nth(n)
    }

    /// Builds a list from values in order.
    pub fn from_vec(items: Vec<Value>) -> List {
        let mut list = List::EMPTY;
        for v in items.into_iter().rev() {
            list = List::cons(v, list);
        }
        list
    }

    /// Builds a list from values, giving the first cell a position.
    pub fn from_vec_at(items: Vec<Value>, pos: Pos) -> List {
        let mut list = List::EMPTY;
        let n = items.len();
        for (i, v) in items.into_iter().rev().enumerate() {
            list = if i + 1 == n {
                List::cons_at(v, list, pos)
            } else {
                List::cons(v, list)
            };
        }
        list
    }

    pub fn to_vec(&self) -> Vec<Value> {
        self.iter().cloned().collect()
    }
}

impl FromIterator<Value> for List {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        List::from_vec(iter.into_iter().collect())
    }
}

pub struct ListIter<'a> {
    cur: Option<&'a Cons>,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a Value;
    fn next(&mut self) -> Option<&'a Value> {
        let c = self.cur?;
        self.cur = c.tail.0.as_deref();
        Some(&c.head)
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(RcStr::from(s))
    }

    pub fn sym(name: &str) -> Value {
        Value::Symbol(Symbol::new(name))
    }

    pub fn kw(name: &str) -> Value {
        Value::Keyword(Symbol::new(name))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(List::from_vec(items))
    }

    /// Only `nil` and `false` are falsy.
    #[inline]
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn type_of(&self) -> TypeName {
        match self {
            Value::Nil => TypeName::Nil,
            Value::Bool(_) => TypeName::Boolean,
            Value::Int(_) => TypeName::Integer,
            Value::Float(_) => TypeName::Float,
            Value::Str(_) => TypeName::String,
            Value::Symbol(_) => TypeName::Symbol,
            Value::Keyword(_) => TypeName::Keyword,
            Value::List(_) => TypeName::List,
            Value::Dict(_) => TypeName::Dict,
            Value::Closure(_) | Value::Native(_) => TypeName::Function,
            Value::Macro(_) => TypeName::Macro,
            Value::Component(_) => TypeName::Component,
            Value::Element(_) => TypeName::Element,
            Value::Cell(c) => c.borrow().type_of(),
        }
    }

    pub fn as_symbol(&self) -> Option<Symbol> {
        match self {
            Value::Symbol(s) => Some(*s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&List> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// Structural equality: numbers compare by value across integer and
    /// float (`(= 1 1.0)`), functions by identity.
    pub fn equals(&self, other: &Value) -> bool {
        use Value::*;
        // Atoms compare without touching the stack guard; only containers
        // recurse, and they do so under `stacker`.
        match (self, other) {
            (Int(a), Int(b)) => a == b,
            (Symbol(a), Symbol(b)) | (Keyword(a), Keyword(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Nil, Nil) => true,
            (Bool(a), Bool(b)) => a == b,
            (List(_) | Dict(_) | Element(_) | Cell(_), _)
            | (_, List(_) | Dict(_) | Element(_) | Cell(_)) => {
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.equals_inner(other))
            }
            _ => self.equals_inner(other),
        }
    }

    fn equals_inner(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Nil, Nil) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Int(a), Float(b)) | (Float(b), Int(a)) => int_float_eq(*a, *b),
            (Str(a), Str(b)) => a == b,
            (Symbol(a), Symbol(b)) => a == b,
            (Keyword(a), Keyword(b)) => a == b,
            (List(a), List(b)) => {
                let (mut x, mut y) = (a.iter(), b.iter());
                loop {
                    match (x.next(), y.next()) {
                        (None, None) => return true,
                        (Some(p), Some(q)) if p.equals(q) => {}
                        _ => return false,
                    }
                }
            }
            (Dict(a), Dict(b)) => a.equals(b),
            (Closure(a), Closure(b)) | (Macro(a), Macro(b)) => Rc::ptr_eq(a, b),
            (Native(a), Native(b)) => Rc::ptr_eq(a, b),
            (Component(a), Component(b)) => Rc::ptr_eq(a, b),
            (Element(a), Element(b)) => {
                a.tag == b.tag
                    && a.attrs.len() == b.attrs.len()
                    && a.children.len() == b.children.len()
                    && a.attrs
                        .iter()
                        .zip(&b.attrs)
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.equals(v2))
                    && a.children.iter().zip(&b.children).all(|(x, y)| x.equals(y))
            }
            // An element is data whose canonical form is a list, and
            // `(read-string (serialize v))` must equal `v` (DESIGN §3): an
            // element equals the list it serializes as.
            (Element(e), List(l)) | (List(l), Element(e)) => element_equals_list(e, l),
            (Cell(a), b) => a.borrow().equals(b),
            (a, Cell(b)) => a.equals(&b.borrow()),
            _ => false,
        }
    }
}

/// Whether `l` is `(tag :attr value ... child ...)` for element `e`.
fn element_equals_list(e: &Element, l: &List) -> bool {
    let mut items = l.iter();
    match items.next() {
        Some(Value::Symbol(s)) if s.as_str() == &*e.tag => {}
        _ => return false,
    }
    for (k, v) in &e.attrs {
        match (items.next(), items.next()) {
            (Some(Value::Keyword(name)), Some(item)) if name == k && item.equals(v) => {}
            _ => return false,
        }
    }
    for child in &e.children {
        match items.next() {
            Some(item) if item.equals(child) => {}
            _ => return false,
        }
    }
    items.next().is_none()
}

/// 2^63 as a float: the first float beyond i64's range.
pub(crate) const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Exact comparison of an integer with a float (no rounding of large i64s).
pub fn int_float_eq(i: i64, f: f64) -> bool {
    if f.fract() != 0.0 || !f.is_finite() {
        return false;
    }
    // 2^63 is exactly representable; anything at or beyond it is out of range.
    if !(-TWO_POW_63..TWO_POW_63).contains(&f) {
        return false;
    }
    f as i64 == i
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.equals(other)
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::printer::display(self))
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::printer::display(self))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(RcStr::from(s))
    }
}

impl From<List> for Value {
    fn from(l: List) -> Value {
        Value::List(l)
    }
}

impl From<Dict> for Value {
    fn from(d: Dict) -> Value {
        Value::Dict(d)
    }
}
