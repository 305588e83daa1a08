//! Render-mode code written without the machine: templates.
//!
//! Much render-mode code does nothing but write constant markup and a few
//! values from its frame: the body of `(map (fn (c) (td c)) cells)`, or a
//! component like `(defcomp ~card (&key post) (article (h2 (get post
//! :title)) ...))`. The compiler reads such code back (after emitting it)
//! into a [`RenderTemplate`]: the texts between the places values go.
//! Two instructions write templates in one tight loop, with no
//! instruction dispatched per piece:
//!
//! - `Op::RenderEach`, the head of a render-mode `map` loop, writes item
//!   after item through the loop body's template;
//! - `Op::KeyCallRender` writes a component's template with the call's
//!   keyword values instead of entering the component's frame.
//!
//! The code a template was read from stays, and runs whenever the template
//! cannot write exactly what it would: a value of a kind the template does
//! not write (anything but a string, integer or nil as a child), a lookup
//! in something not a dict, a builtin redefined, a budget check falling
//! due. What was written of the template is taken back first, so output,
//! errors, steps and backtraces are the code's own.

use std::rc::Rc;

use crate::dict::Key;
use crate::push::{Padded, push_padded};
use crate::value::{List, Value};
use crate::vm::Op;

/// Constant HTML, then each hole followed by more constant HTML.
#[derive(Debug)]
pub struct RenderTemplate {
    head: Text,
    holes: Box<[(Hole, Text)]>,
    /// The steps the code counts for one writing: the loop's (or call's)
    /// own, one per `get` and one per joined attribute.
    steps: u32,
    /// Whether it looks into dicts (so depends on `get` being the builtin).
    gets: bool,
    /// Whether it joins attribute values (so depends on `str`).
    joins: bool,
}

/// Constant HTML: most is a tag or two, padded to be written with one
/// fixed-size copy.
#[derive(Debug)]
enum Text {
    Short(Padded),
    Long(Rc<str>),
}

impl Text {
    fn new(s: &str) -> Text {
        Padded::new(s).map_or_else(|| Text::Long(Rc::from(s)), Text::Short)
    }

    #[inline(always)]
    fn write(&self, buf: &mut String) {
        match self {
            Text::Short(t) => push_padded(buf, t),
            Text::Long(t) => buf.push_str(t),
        }
    }
}

/// A value the template writes: one of the values it is given (the loop's
/// item, a component's keyword arguments), or a keyword looked up in it.
#[derive(Debug, Clone)]
enum Source {
    Value(u16),
    Get(u16, Key),
}

/// Where a template writes something that is not constant.
#[derive(Debug)]
enum Hole {
    /// A child node: a string (escaped), an integer or nil.
    Child(Source),
    /// An attribute (`RenderAttrText`): ` name` is the text given; a
    /// string or integer value is written after it, `true` writes the
    /// name alone, nil and `false` nothing.
    Attr(Rc<str>, Source),
    /// An attribute whose value is `(str ...)` (`RenderStrAttr`): ` name="`,
    /// each piece escaped in turn, `"`.
    Joined(Text, Box<[Piece]>),
    /// `:name (if x a b)` with constant `a` and `b`: the attribute text
    /// for a truthy value and for a falsy one, made at compile time.
    Choice(u16, Text, Text),
}

/// A piece of a joined attribute value.
#[derive(Debug)]
enum Piece {
    /// A constant, already escaped.
    Text(Text),
    Value(Source),
}

impl RenderTemplate {
    /// Reads render-mode code (the instructions of `code` from pc `from`
    /// on) back into a template, if all it does is write constant markup
    /// and values in frame slots that `value` maps to the template's
    /// values. `consts` and `dict_keys` are the function's tables.
    pub(crate) fn read(
        code: &[Op],
        from: usize,
        consts: &[Value],
        dict_keys: &[Key],
        value: &dyn Fn(u16) -> Option<u16>,
    ) -> Option<RenderTemplate> {
        let mut reader = Reader {
            code,
            consts,
            dict_keys,
            value,
            head: String::new(),
            holes: Vec::new(),
            steps: 1,
            gets: false,
            joins: false,
        };
        let mut i = from;
        while i < code.len() {
            i = reader.piece(i)?;
        }
        if reader.holes.is_empty() {
            return None;
        }
        Some(RenderTemplate {
            head: Text::new(&reader.head),
            holes: reader
                .holes
                .into_iter()
                .map(|(h, t)| (h, Text::new(&t)))
                .collect(),
            steps: reader.steps,
            gets: reader.gets,
            joins: reader.joins,
        })
    }

    /// The steps one writing counts.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Whether it depends on `get` being the builtin.
    pub fn gets(&self) -> bool {
        self.gets
    }

    /// Whether it depends on `str` being the builtin.
    pub fn joins(&self) -> bool {
        self.joins
    }

    /// Writes the items of `list` into `buf` in turn (each the template's
    /// one value) while each can be written and `fuel` stays above the
    /// steps a writing counts (the loop's code would not check the budgets
    /// on it), taking those steps from `fuel` and adding them to `steps`.
    /// Returns the rest of the list, from the first item not written.
    pub fn render_items<'l>(
        &self,
        list: &'l List,
        buf: &mut String,
        fuel: &mut u32,
        steps: &mut u64,
    ) -> &'l List {
        // Item `i` may be written while `fuel - i * steps > steps`: the
        // loop's code checks the budgets when its fuel runs out.
        let room = fuel.saturating_sub(1) / self.steps;
        let mut written = 0;
        let mut rest = list;
        if let [(Hole::Child(Source::Value(0)), after)] = &*self.holes {
            // The usual body, `(td c)`: each item is checked before anything
            // of it is written.
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
        }
        while written < room {
            let Some(cell) = rest.0.as_deref() else {
                break;
            };
            let mark = buf.len();
            if !self.write_all(std::slice::from_ref(&cell.head), buf) {
                buf.truncate(mark);
                break;
            }
            written += 1;
            rest = &cell.tail;
        }
        *steps += u64::from(written * self.steps);
        *fuel -= written * self.steps;
        rest
    }

    /// Writes the template with `values`, or writes nothing and returns
    /// false if one of them is not something it writes.
    #[inline(never)]
    pub fn write(&self, values: &[Value], buf: &mut String) -> bool {
        let mark = buf.len();
        if self.write_all(values, buf) {
            true
        } else {
            buf.truncate(mark);
            false
        }
    }

    #[inline(always)]
    fn write_all(&self, values: &[Value], buf: &mut String) -> bool {
        self.head.write(buf);
        for (hole, after) in &self.holes {
            match hole {
                Hole::Child(src) => match source(src, values) {
                    Some(Value::Nil) => {}
                    Some(Value::Int(i)) => crate::html::push_int(*i, buf),
                    Some(Value::Str(s)) => crate::html::escape_text(s, buf),
                    _ => return false,
                },
                Hole::Attr(name, src) => match source(src, values) {
                    Some(v) if crate::html::push_simple_attr(name, v, buf) => {}
                    _ => return false,
                },
                Hole::Joined(open, pieces) => {
                    open.write(buf);
                    for piece in pieces {
                        match piece {
                            Piece::Text(t) => t.write(buf),
                            Piece::Value(src) => match source(src, values) {
                                Some(Value::Str(s)) => crate::html::escape_attr(s, buf),
                                Some(Value::Int(i)) => crate::html::push_int(*i, buf),
                                _ => return false,
                            },
                        }
                    }
                    buf.push('"');
                }
                Hole::Choice(v, yes, no) => match values.get(usize::from(*v)) {
                    Some(x) if x.truthy() => yes.write(buf),
                    Some(_) => no.write(buf),
                    None => return false,
                },
            }
            after.write(buf);
        }
        true
    }
}

/// The value `src` names, None when it looks into something not a dict.
#[inline(always)]
fn source<'v>(src: &Source, values: &'v [Value]) -> Option<&'v Value> {
    match src {
        Source::Value(i) => values.get(usize::from(*i)),
        Source::Get(i, k) => match values.get(usize::from(*i)) {
            Some(Value::Dict(d)) => Some(d.get_keyword(k).unwrap_or(&Value::Nil)),
            _ => None,
        },
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
    code: &'a [Op],
    consts: &'a [Value],
    dict_keys: &'a [Key],
    value: &'a dyn Fn(u16) -> Option<u16>,
    head: String,
    holes: Vec<(Hole, String)>,
    steps: u32,
    gets: bool,
    joins: bool,
}

impl Reader<'_> {
    fn op(&self, i: usize) -> Option<Op> {
        self.code.get(i).copied()
    }

    fn text_const(&self, k: u32) -> Option<&str> {
        match self.consts.get(k as usize) {
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

    /// `Local(s)` or `LocalMove(s)` of a slot the template has as a value.
    fn local(&self, i: usize) -> Option<u16> {
        match self.op(i)? {
            Op::Local(s) | Op::LocalMove(s) => (self.value)(s),
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
        let k = self.dict_keys.get(key as usize)?.clone();
        self.steps += 1;
        self.gets = true;
        Some(Source::Get((self.value)(slot)?, k))
    }

    /// A value pushed for an attribute at `i`: the source and the pc after.
    fn source(&mut self, i: usize) -> Option<(Source, usize)> {
        match self.op(i)? {
            Op::LocalGetKw { slot, key, .. } => Some((self.get(slot, key, i + 1)?, i + 4)),
            _ => Some((Source::Value(self.local(i)?), i + 1)),
        }
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
                let v = (self.value)(s)?;
                self.hole(Hole::Child(Source::Value(v)));
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
            _ => self.choice(i).or_else(|| self.attribute(i)),
        }
    }

    /// `Local(s) JumpIfFalse(+4) Const(a) Jump(+2) Const(b)
    /// RenderAttrText(name)`: `:name (if s a b)`.
    fn choice(&mut self, i: usize) -> Option<usize> {
        let v = self.local(i)?;
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
        let yes = constant_attr(name, self.consts.get(a as usize)?)?;
        let no = constant_attr(name, self.consts.get(b as usize)?)?;
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
                    match self.consts.get(k as usize)? {
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
                    let name = Rc::from(self.text_const(n)?);
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
                    self.joins = true;
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
