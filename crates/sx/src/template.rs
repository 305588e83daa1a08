//! Render-mode code written without the machine: templates.
//!
//! Much render-mode code does nothing but write constant markup and a few
//! values from its frame: the body of `(map (fn (c) (td c)) cells)`, or a
//! component like `(defcomp ~card (&key post) (article (h2 (get post
//! :title)) ...))`. The compiler reads such code back (after emitting it)
//! into a [`RenderTemplate`]: the texts between the places values go.
//! Templates nest: a loop over a list whose body is a template is one
//! hole of the template around it, and a call from markup of a function
//! whose body is a template is that template, inlined with the call's
//! arguments, so a page component down to its rows can be one template.
//! Two instructions write templates in one tight loop, with no
//! instruction dispatched per piece:
//!
//! - `Op::RenderEach`, the head of a render-mode `map` or `map-indexed`
//!   loop, writes item after item through the loop body's template;
//! - `Op::KeyCallRender` and `Op::CallGlobalRender` write a callee's
//!   template with the call's arguments instead of entering its frame.
//!
//! The code a template was read from stays, and runs whenever the template
//! cannot write exactly what it would: a value of a kind the template does
//! not write (anything but a string, integer or nil as a child), a lookup
//! in something not a dict, a builtin, element name or inlined function
//! redefined, the step budget about to run out. What was written of the
//! template is taken back first, so output, errors, steps and backtraces
//! are the code's own.

use crate::rcstr::RcStr;
use std::rc::{Rc, Weak};

use crate::dict::Key;
use crate::interp::Interp;
use crate::push::{Padded, push_padded};
use crate::symbol::Symbol;
use crate::value::{List, Value};
use crate::vm::{Closure, Inline, Op};

/// Constant HTML, then each hole followed by more constant HTML.
#[derive(Debug)]
pub struct RenderTemplate {
    head: Text,
    holes: Box<[(Hole, Text)]>,
    /// The steps the code counts for one writing, loops' items aside: the
    /// loop's (or call's) own, one per `get`, one per joined attribute,
    /// and those of the calls inlined.
    steps: u32,
    needs: Needs,
}

/// A render-mode loop body as a template (`Proto::templates`, written by
/// `Op::RenderEach`): its values are the frame's slots, the item and (for
/// `map-indexed`) the index, kept in slot `index` between items.
#[derive(Debug)]
pub struct LoopTemplate {
    pub body: Rc<RenderTemplate>,
    pub index: Option<u16>,
}

/// What a template takes to be as it was when the template was made.
#[derive(Debug, Default)]
struct Needs {
    /// The inlined builtins it writes the results of (a mask of `Inline`s),
    /// which must not have been redefined.
    inlines: u32,
    /// The element names written by the functions inlined (each an
    /// `ElementGuard`'s constant), which must not have been bound.
    guards: Vec<Value>,
    /// The functions inlined and the globals that held them, which must
    /// hold them still. (Weak: a redefined function is not kept alive, and
    /// its allocation, kept, is never mistaken for a new one's.)
    calls: Vec<(u32, Weak<Closure>)>,
}

impl Needs {
    fn add(&mut self, other: &Needs) {
        self.inlines |= other.inlines;
        self.guards.extend(other.guards.iter().cloned());
        self.calls.extend(other.calls.iter().cloned());
    }

    fn inline(&mut self, which: &[Inline]) {
        for &w in which {
            self.inlines |= 1 << w as u32;
        }
    }
}

/// Constant HTML: most is a tag or two, padded to be written with one
/// fixed-size copy.
#[derive(Debug)]
enum Text {
    Short(Padded),
    Long(RcStr),
}

impl Text {
    fn new(s: &str) -> Text {
        Padded::new(s).map_or_else(|| Text::Long(RcStr::from(s)), Text::Short)
    }

    fn as_str(&self) -> &str {
        match self {
            Text::Short(t) => t.as_str(),
            Text::Long(t) => t,
        }
    }

    #[inline(always)]
    fn write(&self, buf: &mut String) {
        match self {
            Text::Short(t) => push_padded(buf, t),
            Text::Long(t) => buf.push_str(t),
        }
    }
}

/// Where a value comes from: one of the template's values (a component's
/// arguments, a loop's frame slots), or the item or index of the loop
/// whose body the template is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Base {
    Value(u16),
    Item,
    Index,
}

/// A value the template writes or tests.
#[derive(Debug, Clone)]
enum Source {
    Of(Base),
    /// A keyword looked up in a dict (`(get x :kw)`).
    Get(Base, Key),
    /// `(= x k)` of an integer `x`.
    IntEq(Base, i64),
    /// A constant argument of an inlined call.
    Const(Value),
}

impl Source {
    fn base(&self) -> Option<Base> {
        match self {
            Source::Of(b) | Source::Get(b, _) | Source::IntEq(b, _) => Some(*b),
            Source::Const(_) => None,
        }
    }
}

/// A value as a source gives it.
enum Val<'v> {
    Ref(&'v Value),
    Int(i64),
    Bool(bool),
}

impl Val<'_> {
    fn truthy(&self) -> bool {
        match self {
            Val::Ref(v) => v.truthy(),
            Val::Int(_) => true,
            Val::Bool(b) => *b,
        }
    }
}

/// Where a template writes something that is not constant.
#[derive(Debug)]
enum Hole {
    /// A child node: a string (escaped), an integer or nil.
    Child(Source),
    /// An attribute (`RenderAttrText`): ` name` is the text given; a
    /// string or integer value is written after it, `true` writes the
    /// name alone, nil and `false` nothing.
    Attr(RcStr, Source),
    /// An attribute whose value is `(str ...)` (`RenderStrAttr`): ` name="`,
    /// each piece escaped in turn, `"`.
    Joined(Text, Box<[Piece]>),
    /// `:name (if x a b)` with constant `a` and `b`: the attribute text
    /// for a truthy value and for a falsy one, made at compile time.
    Choice(Source, Text, Text),
    /// A `map` or `map-indexed` loop over a list, each item written with
    /// the body template (its item and index the item's).
    Each(Source, Rc<RenderTemplate>),
}

/// A piece of a joined attribute value.
#[derive(Debug)]
enum Piece {
    /// A constant, already escaped.
    Text(Text),
    Value(Source),
}

/// What a writing sees: its values, and the item and index of the loop
/// whose body is being written.
#[derive(Clone, Copy)]
struct Scope<'v> {
    values: &'v [Value],
    item: Option<&'v Value>,
    index: i64,
}

impl<'v> Scope<'v> {
    #[inline(always)]
    fn base(&self, b: Base) -> Option<Val<'v>> {
        match b {
            Base::Value(i) => self.values.get(usize::from(i)).map(Val::Ref),
            Base::Item => self.item.map(Val::Ref),
            Base::Index => Some(Val::Int(self.index)),
        }
    }

    /// The value `src` names, None when it looks into something not a
    /// dict or compares something not an integer.
    #[inline(always)]
    fn get<'s>(&self, src: &'s Source) -> Option<Val<'s>>
    where
        'v: 's,
    {
        match src {
            Source::Of(b) => self.base(*b),
            Source::Get(b, k) => match self.base(*b)? {
                Val::Ref(Value::Dict(d)) => Some(Val::Ref(d.get_keyword(k).unwrap_or(&Value::Nil))),
                _ => None,
            },
            Source::IntEq(b, k) => match self.base(*b)? {
                Val::Ref(Value::Int(x)) => Some(Val::Bool(x == k)),
                Val::Int(x) => Some(Val::Bool(x == *k)),
                _ => None,
            },
            Source::Const(v) => Some(Val::Ref(v)),
        }
    }
}

/// The most holes a template is made with, inlined calls and loop bodies
/// included: inlining copies a callee's template into each caller, so
/// this bounds what nesting can multiply.
const MAX_HOLES: usize = 512;

/// The most steps one writing is allowed before the budgets are checked
/// (see `Machine::template_room`).
pub const MAX_ROOM: u32 = 1 << 16;

impl RenderTemplate {
    /// The steps one writing counts, loops' items aside.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Whether what it was made with is as it was: no builtin it stands
    /// for redefined, no element name it writes bound, each function
    /// inlined in it still the global it was.
    pub(crate) fn intact(&self, interp: &Interp) -> bool {
        let n = &self.needs;
        interp.inlines_intact(n.inlines)
            && (n.guards.is_empty()
                || interp.no_shadowed_elements()
                || !n
                    .guards
                    .iter()
                    .any(|g| crate::vm::elements_shadowed(interp, Some(g))))
            && n.calls.iter().all(|(g, f)| {
                let held = match interp.globals.get(*g as usize) {
                    Some(Some(Value::Closure(c))) => Rc::as_ptr(c),
                    Some(Some(Value::Component(c))) => Rc::as_ptr(&c.closure),
                    _ => return false,
                };
                std::ptr::eq(held, f.as_ptr())
            })
    }

    /// Writes the template with `values`, counting its steps up to
    /// `limit`, and returns the steps it counted; or writes nothing (a
    /// value it does not write as the code would, or more steps than
    /// `limit`).
    #[inline(never)]
    pub fn write(&self, values: &[Value], buf: &mut String, limit: u32) -> Option<u32> {
        let mark = buf.len();
        let scope = Scope {
            values,
            item: None,
            index: 0,
        };
        let mut used = 0;
        match self.write_all(&scope, buf, &mut used, limit) {
            Some(()) => Some(used),
            None => {
                buf.truncate(mark);
                None
            }
        }
    }

    /// Writes the items of `list` in turn (the template being a loop body
    /// over the frame slots `values`, the first item's index `index`) while
    /// each can be written whole within `limit` steps in all. Returns the
    /// rest of the list, from the first item not written, how many were
    /// written and the steps counted.
    pub fn render_items<'l>(
        &self,
        list: &'l List,
        values: &[Value],
        index: i64,
        buf: &mut String,
        limit: u32,
    ) -> (&'l List, u32, u32) {
        let mut written = 0;
        let mut used = 0;
        let mut rest = list;
        if let Some(after) = self.item_only() {
            let (rest, written) = self.write_items(after, list, limit / self.steps, buf);
            return (rest, written, written * self.steps);
        }
        while let Some(cell) = rest.0.as_deref() {
            // The loop's code counts the next index before writing an item.
            let i = index.saturating_add(i64::from(written));
            if i.checked_add(1).is_none() {
                break;
            }
            let scope = Scope {
                values,
                item: Some(&cell.head),
                index: i,
            };
            let (mark, before) = (buf.len(), used);
            if self.write_all(&scope, buf, &mut used, limit).is_none() {
                buf.truncate(mark);
                used = before;
                break;
            }
            written += 1;
            rest = &cell.tail;
        }
        (rest, written, used)
    }

    /// The text after the one hole of the usual loop body, `(td c)`,
    /// which writes the item alone.
    #[inline(always)]
    fn item_only(&self) -> Option<&Text> {
        match &*self.holes {
            [(Hole::Child(Source::Of(Base::Item)), after)] => Some(after),
            _ => None,
        }
    }

    /// Writes at most `room` items of `list` with the usual loop body (see
    /// `item_only`), each checked before anything of it is written; the
    /// rest of the list, from the first item not written, and how many
    /// were.
    #[inline(always)]
    fn write_items<'l>(
        &self,
        after: &Text,
        list: &'l List,
        room: u32,
        buf: &mut String,
    ) -> (&'l List, u32) {
        let mut written = 0;
        let mut rest = list;
        while written < room {
            let Some(cell) = rest.0.as_deref() else {
                break;
            };
            match &cell.head {
                Value::Int(i) => {
                    self.head.write(buf);
                    crate::html::push_int(*i, buf);
                }
                Value::Str(s) => {
                    self.head.write(buf);
                    crate::html::escape_text(s, buf);
                }
                Value::Nil => self.head.write(buf),
                _ => break,
            }
            after.write(buf);
            written += 1;
            rest = &cell.tail;
        }
        (rest, written)
    }

    #[inline(always)]
    fn write_all(
        &self,
        scope: &Scope<'_>,
        buf: &mut String,
        used: &mut u32,
        limit: u32,
    ) -> Option<()> {
        *used = used.saturating_add(self.steps);
        if *used > limit {
            return None;
        }
        self.head.write(buf);
        for (hole, after) in &self.holes {
            match hole {
                Hole::Child(src) => match scope.get(src)? {
                    Val::Ref(Value::Nil) => {}
                    Val::Ref(Value::Int(i)) => crate::html::push_int(*i, buf),
                    Val::Int(i) => crate::html::push_int(i, buf),
                    Val::Ref(Value::Str(s)) => crate::html::escape_text(s, buf),
                    _ => return None,
                },
                Hole::Attr(name, src) => {
                    let ok = match scope.get(src)? {
                        Val::Ref(v) => crate::html::push_simple_attr(name, v, buf),
                        Val::Int(i) => crate::html::push_simple_attr(name, &Value::Int(i), buf),
                        Val::Bool(b) => crate::html::push_simple_attr(name, &Value::Bool(b), buf),
                    };
                    if !ok {
                        return None;
                    }
                }
                Hole::Joined(open, pieces) => {
                    open.write(buf);
                    for piece in pieces {
                        match piece {
                            Piece::Text(t) => t.write(buf),
                            Piece::Value(src) => match scope.get(src)? {
                                Val::Ref(Value::Str(s)) => crate::html::escape_attr(s, buf),
                                Val::Ref(Value::Int(i)) => crate::html::push_int(*i, buf),
                                Val::Int(i) => crate::html::push_int(i, buf),
                                _ => return None,
                            },
                        }
                    }
                    buf.push('"');
                }
                Hole::Choice(src, yes, no) => {
                    if scope.get(src)?.truthy() {
                        yes.write(buf)
                    } else {
                        no.write(buf)
                    }
                }
                Hole::Each(src, body) => {
                    let Some(Val::Ref(Value::List(list))) = scope.get(src) else {
                        return None;
                    };
                    if let Some(item_after) = body.item_only() {
                        let room = limit.saturating_sub(*used) / body.steps;
                        let (rest, written) = body.write_items(item_after, list, room, buf);
                        *used += written * body.steps;
                        if rest.0.is_some() {
                            // An item it does not write, or no room left.
                            return None;
                        }
                    } else {
                        for (i, item) in (0..).zip(list.iter()) {
                            let inner = Scope {
                                values: scope.values,
                                item: Some(item),
                                index: i,
                            };
                            body.write_all(&inner, buf, used, limit)?;
                        }
                    }
                }
            }
            after.write(buf);
        }
        Some(())
    }

    /// The template with each value `Value(j)` replaced by what `arg(j)`
    /// gives, `nested` when it is the body of a loop inside the template
    /// it joins (whose item and index are not the loop's own).
    fn rebased(&self, arg: &dyn Fn(u16) -> Option<Source>, nested: bool) -> Option<RenderTemplate> {
        let src = |s: &Source| -> Option<Source> {
            let Some(Base::Value(j)) = s.base() else {
                return Some(s.clone());
            };
            let a = arg(j)?;
            if nested && matches!(a.base(), Some(Base::Item | Base::Index)) {
                return None;
            }
            match (s, a) {
                (Source::Of(_), a) => Some(a),
                (Source::Get(_, k), Source::Of(b)) => Some(Source::Get(b, k.clone())),
                (Source::IntEq(_, k), Source::Of(b)) => Some(Source::IntEq(b, *k)),
                _ => None,
            }
        };
        let holes = self
            .holes
            .iter()
            .map(|(h, t)| {
                let h = match h {
                    Hole::Child(s) => Hole::Child(src(s)?),
                    Hole::Attr(n, s) => Hole::Attr(n.clone(), src(s)?),
                    Hole::Joined(open, pieces) => Hole::Joined(
                        Text::new(open.as_str()),
                        pieces
                            .iter()
                            .map(|p| match p {
                                Piece::Text(t) => Some(Piece::Text(Text::new(t.as_str()))),
                                Piece::Value(s) => Some(Piece::Value(src(s)?)),
                            })
                            .collect::<Option<_>>()?,
                    ),
                    Hole::Choice(s, yes, no) => {
                        Hole::Choice(src(s)?, Text::new(yes.as_str()), Text::new(no.as_str()))
                    }
                    Hole::Each(s, body) => Hole::Each(src(s)?, Rc::new(body.rebased(arg, true)?)),
                };
                Some((h, Text::new(t.as_str())))
            })
            .collect::<Option<_>>()?;
        let mut needs = Needs::default();
        needs.add(&self.needs);
        Some(RenderTemplate {
            head: Text::new(self.head.as_str()),
            holes,
            steps: self.steps,
            needs,
        })
    }

    /// How many holes it has, its loops' bodies' included.
    fn size(&self) -> usize {
        self.holes
            .iter()
            .map(|(h, _)| match h {
                Hole::Each(_, body) => 1 + body.size(),
                _ => 1,
            })
            .sum()
    }
}

/// What the compiler gives a reader: the function's code and tables, and
/// the globals (for the templates of functions called from markup).
pub(crate) struct Code<'a> {
    pub code: &'a [Op],
    pub consts: &'a [Value],
    pub dict_keys: &'a [Key],
    pub call_keys: &'a [Box<[Symbol]>],
    pub loops: &'a [LoopTemplate],
    pub globals: &'a [Option<Value>],
}

/// How a reader sees the frame's slots: as one of the template's values,
/// the loop's item or index, or not at all.
pub(crate) type Slots<'a> = &'a dyn Fn(u16) -> Option<SlotIs>;

/// What a slot holds, for a template.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum SlotIs {
    /// The template's value of that index.
    Value(u16),
    Item,
    Index,
}

impl RenderTemplate {
    /// Reads render-mode code (the instructions of `code` from pc `from`
    /// to its end) back into a template, if all it does is write constant
    /// markup and values from frame slots that `slots` maps to the
    /// template's values (see `SlotIs`), loop over such lists with
    /// templates for bodies and call functions whose bodies are templates
    /// from markup. `stands_on` are the `Inline`s the code depends on
    /// beyond what it reads (those of a loop's step, `render-html`).
    pub(crate) fn read(
        code: &Code<'_>,
        from: usize,
        slots: Slots<'_>,
        stands_on: &[Inline],
    ) -> Option<RenderTemplate> {
        let mut reader = Reader {
            code,
            slots,
            aliases: Vec::new(),
            head: String::new(),
            holes: Vec::new(),
            steps: 1,
            needs: Needs::default(),
        };
        reader.needs.inline(stands_on);
        let mut i = from;
        while i < code.code.len() {
            i = reader.piece(i)?;
            if reader.holes.len() > MAX_HOLES {
                return None;
            }
        }
        if reader.holes.is_empty() {
            return None;
        }
        let t = RenderTemplate {
            head: Text::new(&reader.head),
            holes: reader
                .holes
                .into_iter()
                .map(|(h, t)| (h, Text::new(&t)))
                .collect(),
            steps: reader.steps,
            needs: reader.needs,
        };
        (t.size() <= MAX_HOLES).then_some(t)
    }
}

/// The attribute `RenderAttrText(name)` writes for a constant value, if
/// it is one the template writes.
fn constant_attr(name: &str, v: &Value) -> Option<String> {
    let mut out = String::new();
    crate::html::push_simple_attr(name, v, &mut out).then_some(out)
}

/// Reads code into pieces (see `RenderTemplate::read`).
struct Reader<'a> {
    code: &'a Code<'a>,
    slots: Slots<'a>,
    /// Slots set by the code read so far, to what.
    aliases: Vec<(u16, Source)>,
    head: String,
    holes: Vec<(Hole, String)>,
    steps: u32,
    needs: Needs,
}

impl Reader<'_> {
    fn op(&self, i: usize) -> Option<Op> {
        self.code.code.get(i).copied()
    }

    fn text_const(&self, k: u32) -> Option<&str> {
        match self.code.consts.get(k as usize) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn text(&mut self, t: &str) {
        match self.holes.last_mut() {
            Some((_, after)) => after.push_str(t),
            None => self.head.push_str(t),
        }
    }

    fn hole(&mut self, h: Hole) {
        self.holes.push((h, String::new()));
    }

    /// What slot `s` holds: what the code read set it to, else as
    /// `slots` has it.
    fn slot(&self, s: u16) -> Option<Source> {
        if let Some((_, src)) = self.aliases.iter().rev().find(|(a, _)| *a == s) {
            return Some(src.clone());
        }
        Some(Source::Of(match (self.slots)(s)? {
            SlotIs::Value(j) => Base::Value(j),
            SlotIs::Item => Base::Item,
            SlotIs::Index => Base::Index,
        }))
    }

    /// `Local(s)` or `LocalMove(s)` at `i`: what the slot holds.
    fn local(&self, i: usize) -> Option<Source> {
        match self.op(i)? {
            Op::Local(s) | Op::LocalMove(s) => self.slot(s),
            _ => None,
        }
    }

    /// A `get` of a keyword in slot `slot` followed by the plain sequence
    /// that runs instead for anything but a dict (`Local`, `Const`,
    /// `CallGlobal(get, 2)`) at `i`.
    fn get(&mut self, slot: u16, key: u32, i: usize) -> Option<Source> {
        let (Op::Local(_) | Op::LocalMove(_), Op::Const(_), Op::CallGlobal(_, 2)) =
            (self.op(i)?, self.op(i + 1)?, self.op(i + 2)?)
        else {
            return None;
        };
        let k = self.code.dict_keys.get(key as usize)?.clone();
        let Source::Of(b) = self.slot(slot)? else {
            return None;
        };
        self.steps += 1;
        self.needs.inline(&[Inline::Get]);
        Some(Source::Get(b, k))
    }

    /// `(= s k)` fused (`LocalInt`, `JumpUnlessLocalInt`), checked to be
    /// followed at `i` by its plain sequence, `Local(s) Int(k) Inline(Eq)`.
    fn int_eq(&mut self, s: u16, k: i32, i: usize) -> Option<Source> {
        let (Op::Local(a) | Op::LocalMove(a), Op::Int(m), Op::Inline(Inline::Eq, 2)) =
            (self.op(i)?, self.op(i + 1)?, self.op(i + 2)?)
        else {
            return None;
        };
        let Source::Of(b) = self.slot(s)? else {
            return None;
        };
        if a != s || m != k {
            return None;
        }
        self.needs.inline(&[Inline::Eq]);
        Some(Source::IntEq(b, i64::from(k)))
    }

    /// A value pushed at `i`: the source and the pc after.
    fn source(&mut self, i: usize) -> Option<(Source, usize)> {
        match self.op(i)? {
            Op::LocalGetKw { slot, key, .. } => Some((self.get(slot, key, i + 1)?, i + 4)),
            Op::LocalInt(Inline::Eq, s, k) => Some((self.int_eq(s, k, i + 1)?, i + 4)),
            _ => Some((self.local(i)?, i + 1)),
        }
    }

    /// An argument pushed at `i`: a source or a constant.
    fn argument(&mut self, i: usize) -> Option<(Source, usize)> {
        let c = match self.op(i)? {
            Op::Const(k) => match self.code.consts.get(k as usize)? {
                v @ (Value::Str(_) | Value::Int(_) | Value::Keyword(_)) => v.clone(),
                _ => return None,
            },
            Op::Int(n) => Value::Int(i64::from(n)),
            Op::Nil => Value::Nil,
            Op::True => Value::Bool(true),
            Op::False => Value::Bool(false),
            _ => return self.source(i),
        };
        Some((Source::Const(c), i + 1))
    }

    /// The piece at `i`; returns the pc after it.
    fn piece(&mut self, i: usize) -> Option<usize> {
        match self.op(i)? {
            Op::RenderText(k) => {
                let t = self.text_const(k)?.to_owned();
                self.text(&t);
                Some(i + 1)
            }
            Op::RenderLocal(s) => {
                let src = self.slot(s)?;
                self.hole(Hole::Child(src));
                Some(i + 1)
            }
            Op::RenderLocalGetKw { slot, key, .. } => {
                // Followed by its plain sequence and `RenderValue`.
                let src = self.get(slot, key, i + 1)?;
                if self.op(i + 4)? != Op::RenderValue {
                    return None;
                }
                self.hole(Hole::Child(src));
                Some(i + 5)
            }
            Op::ElementGuard(names, direct) => {
                // The markup written directly follows at `direct`.
                let names = self.code.consts.get(names as usize)?.clone();
                self.needs.guards.push(names);
                (direct as usize > i).then_some(direct as usize)
            }
            Op::Nil => self
                .attempt(i, Reader::each)
                .or_else(|| self.attempt(i, Reader::call)),
            _ => self
                .attempt(i, Reader::alias)
                .or_else(|| self.attempt(i, Reader::call))
                .or_else(|| self.attempt(i, Reader::choice))
                .or_else(|| self.attempt(i, Reader::attribute)),
        }
    }

    /// Reads a piece at `i` with `read`, or leaves the reader as it was if
    /// it is not that kind of piece (a reading counts steps and needs as
    /// it goes).
    fn attempt(&mut self, i: usize, read: fn(&mut Self, usize) -> Option<usize>) -> Option<usize> {
        let mark = (
            self.steps,
            self.needs.inlines,
            self.needs.guards.len(),
            self.needs.calls.len(),
            self.aliases.len(),
        );
        let next = read(self, i);
        if next.is_none() {
            self.steps = mark.0;
            self.needs.inlines = mark.1;
            self.needs.guards.truncate(mark.2);
            self.needs.calls.truncate(mark.3);
            self.aliases.truncate(mark.4);
        }
        next
    }

    /// A value set into a slot (the list a loop is over, a `let`).
    fn alias(&mut self, i: usize) -> Option<usize> {
        let (src, next) = self.source(i)?;
        let Op::SetLocal(s) = self.op(next)? else {
            return None;
        };
        self.aliases.push((s, src));
        Some(next + 1)
    }

    /// An inlined `map` or `map-indexed` loop (see `Expander::hof`) whose
    /// head is a `RenderEach`: `Nil Inline(HofIntact) JumpIfFalse(call)`,
    /// the loop's variables set from the list, (the index) and the
    /// accumulator, the `RenderEach`, the loop; the call of the global
    /// function for when the builtin was redefined; then on.
    fn each(&mut self, i: usize) -> Option<usize> {
        let (Op::Inline(Inline::HofIntact, 1), Op::JumpIfFalse(call)) =
            (self.op(i + 1)?, self.op(i + 2)?)
        else {
            return None;
        };
        let list = self.local(i + 3)?;
        let indexed = self.op(i + 4)? == Op::Int(0);
        let at = i + 4 + usize::from(indexed);
        let Op::Const(_) = self.op(at)? else {
            return None;
        };
        let sets = if indexed { 3 } else { 2 };
        let mut slots = [0u16; 3];
        for (j, slot) in slots.iter_mut().take(sets).enumerate() {
            let Op::SetLocal(s) = self.op(at + 1 + j)? else {
                return None;
            };
            *slot = s;
        }
        let Op::RenderEach(cur, t) = self.op(at + 1 + sets)? else {
            return None;
        };
        let lt = self.code.loops.get(t as usize)?;
        let want_index = indexed.then_some(slots[1]);
        if cur != slots[sets - 1] || lt.index != want_index {
            return None;
        }
        // Past the loop: the call's block ends the `if`, and the jump out
        // of the loop before it goes past it.
        let Op::Jump(exit) = self.op((call as usize).checked_sub(1)?)? else {
            return None;
        };
        if exit <= call || call as usize <= i {
            return None;
        }
        // The body's values are the frame's slots: as this reader has them.
        let body = lt.body.rebased(
            &|s| match self.slot(s)? {
                Source::Of(Base::Value(j)) => Some(Source::Of(Base::Value(j))),
                Source::Const(c) => Some(Source::Const(c)),
                _ => None,
            },
            true,
        )?;
        self.needs.add(&body.needs);
        self.needs.inline(&[Inline::HofIntact]);
        self.hole(Hole::Each(list, Rc::new(body)));
        Some(exit as usize)
    }

    /// A call from markup of a global function whose body is a template,
    /// its arguments sources: `KeyCallRender(g, keys)` with the plain call
    /// and `RenderValue` after it, or `CallGlobalRender(g, n)
    /// RenderValue`. The callee's template, with the arguments for its
    /// values, is inlined.
    fn call(&mut self, mut i: usize) -> Option<usize> {
        let mut args = Vec::new();
        let (g, next, keyed) = loop {
            match self.op(i)? {
                Op::KeyCallRender(g, k) => {
                    let n = u16::try_from(args.len()).ok()?;
                    let keys = self.code.call_keys.get(k as usize)?;
                    if (self.op(i + 1)?, self.op(i + 2)?)
                        != (Op::CallGlobalRender(g, 2 * n), Op::RenderValue)
                        || keys.len() != args.len()
                    {
                        return None;
                    }
                    break (g, i + 3, Some(keys));
                }
                Op::CallGlobalRender(g, n) => {
                    if usize::from(n) != args.len() || self.op(i + 1)? != Op::RenderValue {
                        return None;
                    }
                    break (g, i + 2, None);
                }
                _ if args.len() < 32 => {
                    let (src, next) = self.argument(i)?;
                    args.push(src);
                    i = next;
                }
                _ => return None,
            }
        };
        let callee = match self.code.globals.get(g as usize)? {
            Some(Value::Closure(c)) => c,
            Some(Value::Component(c)) => &c.closure,
            _ => return None,
        };
        let p = &callee.proto;
        let takes = match keyed {
            Some(keys) => p.nparams == 0 && !p.rest && p.keys.as_slice() == &**keys,
            None => p.keys.is_empty() && !p.rest && usize::from(p.nparams) == args.len(),
        };
        let (template, guard) = p.body_template.as_ref()?;
        if !takes || p.render_entry == 0 {
            return None;
        }
        let inlined = template.rebased(&|j| args.get(usize::from(j)).cloned(), false)?;
        if let Some(g) = guard {
            self.needs.guards.push(p.consts.get(*g as usize)?.clone());
        }
        self.needs.calls.push((g, Rc::downgrade(callee)));
        self.needs.add(&inlined.needs);
        self.steps = self.steps.saturating_add(inlined.steps);
        self.text(inlined.head.as_str());
        for (h, t) in inlined.holes {
            self.holes.push((h, t.as_str().to_owned()));
        }
        Some(next)
    }

    /// `Local(s) JumpIfFalse(+4) Const(a) Jump(+2) Const(b)
    /// RenderAttrText(name)`: `:name (if s a b)`; or the same with the
    /// test `(= s k)`, a fused `JumpUnlessLocalInt` followed by its plain
    /// sequence (`Local(s) Int(k) Inline(Eq) JumpIfFalse`).
    fn choice(&mut self, mut i: usize) -> Option<usize> {
        let v = match self.op(i)? {
            Op::JumpUnlessLocalInt(Inline::Eq, s, k, f) => {
                let src = self.int_eq(s, k, i + 1)?;
                // Both jumps go where the plain test's would.
                if self.op(i + 4)? != Op::JumpIfFalse(f) {
                    return None;
                }
                i += 3;
                src
            }
            _ => self.local(i)?,
        };
        let base = u32::try_from(i).ok()?;
        let (Op::JumpIfFalse(f), Op::Const(a), Op::Jump(j), Op::Const(b), Op::RenderAttrText(n)) = (
            self.op(i + 1)?,
            self.op(i + 2)?,
            self.op(i + 3)?,
            self.op(i + 4)?,
            self.op(i + 5)?,
        ) else {
            return None;
        };
        if f != base + 4 || j != base + 5 {
            return None;
        }
        let name = self.text_const(n)?;
        let yes = constant_attr(name, self.code.consts.get(a as usize)?)?;
        let no = constant_attr(name, self.code.consts.get(b as usize)?)?;
        self.hole(Hole::Choice(v, Text::new(&yes), Text::new(&no)));
        Some(i + 6)
    }

    /// An attribute with a value from a slot (`RenderAttrText`), or joined
    /// with `str` from constants and slots (`RenderStrAttr`, followed by
    /// the plain `CallGlobal(str, n)` and the attribute's instruction).
    fn attribute(&mut self, mut i: usize) -> Option<usize> {
        let mut pieces = Vec::new();
        loop {
            match self.op(i)? {
                Op::Const(k) => {
                    let mut t = String::new();
                    match self.code.consts.get(k as usize)? {
                        Value::Str(s) => crate::html::escape_attr(s, &mut t),
                        Value::Int(n) => crate::html::push_int(*n, &mut t),
                        _ => return None,
                    }
                    pieces.push(Piece::Text(Text::new(&t)));
                    i += 1;
                }
                Op::RenderAttrText(n) => {
                    let [Piece::Value(src)] = <[Piece; 1]>::try_from(pieces).ok()? else {
                        return None;
                    };
                    let name = RcStr::from(self.text_const(n)?);
                    self.hole(Hole::Attr(name, src));
                    return Some(i + 1);
                }
                Op::RenderStrAttr(n) => {
                    let Op::CallGlobal(_, m) = self.op(i + 1)? else {
                        return None;
                    };
                    if m != n || usize::from(n) != pieces.len() {
                        return None;
                    }
                    let open = match self.op(i + 2)? {
                        Op::RenderAttrText(k) => format!("{}=\"", self.text_const(k)?),
                        Op::RenderUrlAttr(_, k) => format!(" {}=\"", self.text_const(k)?),
                        _ => return None,
                    };
                    self.steps += 1;
                    self.needs.inline(&[Inline::Str]);
                    self.hole(Hole::Joined(Text::new(&open), pieces.into_boxed_slice()));
                    return Some(i + 3);
                }
                _ => {
                    let (src, next) = self.source(i)?;
                    pieces.push(Piece::Value(src));
                    i = next;
                }
            }
        }
    }
}
