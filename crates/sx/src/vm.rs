//! The machine: compiled code, closures, and the suspendable interpreter loop.
//!
//! State lives in explicit stacks (`stack` of values, `frames` of calls,
//! `handlers` of active `try`s), never on Rust's stack, so:
//! - recursion depth is bounded by memory (and the depth budget), not by the
//!   native stack;
//! - `perform` suspends by returning from [`Machine::run`]; the host keeps the
//!   [`Machine`] and later calls [`Machine::resume`] with the answer;
//! - tail calls reuse the caller's frame.

use crate::rcstr::RcStr;
use std::rc::Rc;
use std::time::Instant;

use crate::error::{ErrorKind, EvalError, Result, TraceFrame};
use crate::interp::Interp;
use crate::prims;
use crate::push::push;
use crate::source::{self, Pos};
use crate::symbol::Symbol;
use crate::template::{LoopTemplate, MAX_ROOM, RenderTemplate};
use crate::value::{Component, List, Value};

/// One instruction. Operands index the current proto's tables or frame slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Const(u32),
    Nil,
    True,
    False,
    Int(i32),
    /// Push a copy of a frame slot.
    Local(u16),
    /// Push a frame slot's value, leaving nil (its last use).
    LocalMove(u16),
    /// Push two frame slots (consecutive call arguments), each copied or,
    /// when its flag is set, moved as `LocalMove` does.
    Local2 {
        a: u16,
        b: u16,
        move_a: bool,
        move_b: bool,
    },
    /// Pop into a frame slot.
    SetLocal(u16),
    /// Push a captured value.
    Capture(u16),
    /// Wrap a slot's current value in a fresh cell.
    MakeCell(u16),
    /// Push the value in the cell held by a slot.
    CellLocal(u16),
    /// Pop into the cell held by a slot.
    SetCellLocal(u16),
    CellCapture(u16),
    SetCellCapture(u16),
    Global(u32),
    /// `set!` of a global: it must already be defined.
    SetGlobal(u32),
    DefineGlobal(u32),
    /// The closure running in this frame (self-recursion without a cycle).
    SelfRef,
    /// Another member of this closure's letrec group.
    GroupMember(u16),
    Pop,
    Jump(u32),
    /// Back to a loop's head (a named let run in its function's frame):
    /// counts a step, as the call it replaces would, so budgets still stop
    /// a loop.
    LoopBack(u32),
    /// `SetLocal(s) LoopBack(t)`.
    SetLocalLoopBack(u16, u32),
    JumpIfFalse(u32),
    /// `and`: if the top is falsy jump, keeping it; else pop it.
    JumpIfFalseKeep(u32),
    /// `or`: if the top is truthy jump, keeping it; else pop it.
    JumpIfTrueKeep(u32),
    Call(u16),
    TailCall(u16),
    Return,
    /// `Local(s) Return` (or `LocalMove(s) Return`): return a slot's value.
    ReturnLocal(u16),
    /// `Int(k) Return`: return an integer constant.
    ReturnInt(i32),
    /// Fused `Inline(op, 2) Return`, followed by that fallback.
    InlineReturn(Inline),
    /// Make a closure of nested proto N.
    Closure(u32),
    /// Make letrec group N of the current proto, storing members in slots.
    Group(u32),
    /// Make a component from the closure on top (`defcomp`/`defisland`).
    MakeComponent(u32, bool),
    MakeMacro,
    PushHandler(u32),
    PopHandler,
    Perform(u16),
    /// Make a dict of N key/value pairs from the stack.
    MakeDict(u16),
    /// Make an element: tag constant, attribute count, child count.
    MakeElement(u32, u16, u16),
    Raise,
    /// A builtin inlined at its call site (falls back to the global's value
    /// if that builtin has been redefined).
    Inline(Inline, u16),
    /// Fused `Local(s) Int(k) Inline(op, 2)`, followed in the code by that
    /// unfused sequence, which runs instead when `op` has been redefined.
    LocalInt(Inline, u16, i32),
    /// Fused `Local(a) Local(b) Inline(op, 2)`, followed by the same fallback.
    LocalLocal(Inline, u16, u16),
    /// `LocalInt` for `+` and `-` (op), the constant already negated for
    /// `-`: pushes slot + k when the slot holds an integer and the sum
    /// fits; anything else runs the fallback that follows.
    AddLocalInt(Inline, u16, i32),
    /// Fused `Local(s) Int(k) Inline(cmp, 2) JumpIfFalse(t)`, followed by
    /// that unfused sequence as the fallback.
    JumpUnlessLocalInt(Inline, u16, i32, u32),
    /// Fused `Local(a) Local(b) Inline(cmp, 2) JumpIfFalse(t)`, followed by
    /// that fallback. With `negate`, the test is `(not (cmp a b))`: the
    /// fallback has `Inline(Not, 1)` before the jump, and it runs instead
    /// when either builtin has been redefined.
    JumpUnlessLocalLocal {
        which: Inline,
        a: u16,
        b: u16,
        negate: bool,
        target: u32,
    },
    /// Fused `Inline(cmp, 2) JumpIfFalse(t)`, followed by that fallback.
    JumpUnlessCmp(Inline, u32),
    /// Fused `Local(s) Const(k) Inline(Eq, 2) JumpIfFalse(t)` for a symbol
    /// or keyword constant k (`(= op '+)`), followed by that fallback.
    JumpUnlessLocalIsConst(u16, u32, u32),
    /// Fused `Local(s) Inline(op, 1)` for `first`, `rest`, `empty?`, `nil?`
    /// and `not`, reading the slot in place; followed by that fallback.
    LocalUnary(Inline, u16),
    /// Fused `Local(s) Inline(op, 1) JumpIfFalse(t)`, followed by it.
    /// With the flag set the test is `(not (op s))`: the fallback has
    /// `Inline(Not, 1)` before the jump, and runs instead when either
    /// builtin has been redefined.
    JumpUnlessLocalUnary(Inline, u16, u32, bool),
    /// Call global N with the arguments on the stack (no callee slot).
    CallGlobal(u32, u16),
    TailCallGlobal(u32, u16),
    /// Render mode (see `compiler::emit`, "Render mode"): markup is written
    /// straight into an output buffer instead of being built as values.
    /// `RenderBegin(t)` opens a buffer for `(render-html x)`, or jumps to
    /// `t` (the ordinary call) when `render-html` has been redefined.
    RenderBegin(u32),
    /// Closes the buffer `RenderBegin` opened and pushes its text.
    RenderEnd,
    /// Appends constant N (a string of HTML made at compile time).
    RenderText(u32),
    /// Pops a value and renders it as a child node.
    RenderValue,
    /// Renders the value in a frame slot as a child node, leaving it there.
    RenderLocal(u16),
    /// Pops an attribute's value and renders ` name="value"` by the rules
    /// of `render-html`: element tag constant, attribute keyword constant.
    RenderAttr(u32, u32),
    /// `RenderAttr` for a valid URL attribute name (`href`, `src`, ...),
    /// constant N the name's text: a string is checked and written in
    /// place, anything else as `RenderAttr` writes it.
    RenderUrlAttr(u32, u32),
    /// `RenderAttr` for a valid attribute name that is not a URL: constant
    /// N is ` name`, written before the value's text.
    RenderAttrText(u32),
    /// Jumps to the markup written directly at `t` unless the element name
    /// (constant N), or one of the names of the element forms written
    /// directly inside it (constant N a list of them all), has been bound
    /// since this code was compiled; the ordinary element form (built,
    /// then rendered) follows the guard.
    ElementGuard(u32, u32),
    /// Calls global N with the arguments on the stack, entering the callee's
    /// render-mode code when it has some (it then renders and returns nil);
    /// a `RenderValue` follows for callees without. A callee of as many
    /// positional parameters whose body is a template
    /// (`Proto::body_template`) that can write the arguments is written in
    /// place instead, and the `RenderValue` skipped.
    CallGlobalRender(u32, u16),
    /// `(get x :kw)`: `x` a plain local in slot `slot` (`moved`: the read is
    /// its last use), `key` the keyword's index in `Proto::dict_keys`
    /// (the constant of the sequence below, made a dict key once). Followed by the plain
    /// sequence it stands for, `Local(slot)` (or `LocalMove(slot)`)
    /// `Const(key) CallGlobal(get, 2)`. When `get` is the builtin and the
    /// slot holds a dict, pushes the value under the keyword (nil if none)
    /// and counts the step the call would, then skips the sequence;
    /// anything else (another `get`, a list, nil, an error, the step that
    /// checks the budgets) runs the sequence.
    LocalGetKw {
        slot: u16,
        key: u32,
        moved: bool,
    },
    /// A call from markup of global `g` with keyword arguments only, their
    /// keywords constant (`Proto::call_keys[keys]`, in the order written):
    /// only the values are on the stack. Followed by the
    /// `CallGlobalRender` of the plain call (keywords and values) and its
    /// `RenderValue`. When the callee has render-mode code and declares
    /// exactly these keys in this order (and nothing else), its frame is
    /// entered with the values as its key slots — or, when its body is a
    /// template (`Proto::body_template`) that can write them, the
    /// template is written with the values in place and the plain call and
    /// its `RenderValue` are skipped; otherwise the keywords are put back
    /// between the values and the `CallGlobalRender` runs.
    KeyCallRender(u32, u32),
    /// The head of an inlined `map`-style loop in render mode over the list
    /// in slot N, followed by the plain sequence it stands for: the
    /// `empty?` test (`JumpUnlessLocalUnary` and its three-instruction
    /// fallback), the `Jump` out of the loop, and the pushed `rest`
    /// (`LocalUnary` and its two-instruction fallback). When the slot holds
    /// a non-empty list and neither builtin has been redefined, pushes its
    /// rest and skips those eight; anything else runs them.
    MapStep(u16),
    /// `MapStep(list)` whose loop body starts by binding its item, the
    /// four instructions `LocalUnary(First, list) Local(list) Inline(First)
    /// SetLocal(item)` after the eight: the list's first item goes into
    /// slot `item` as well, and all twelve are skipped.
    MapStepFirst(u16, u16),
    /// The head of a `MapStepFirst(list, item)` loop whose body only writes
    /// constant markup and its item (`Proto::templates[t]`, see
    /// `RenderTemplate`): renders items from the list in slot `list` with
    /// no instruction per item while each one is written in place (a
    /// string, integer or nil, or a dict whose looked-up values are) and
    /// the step count stays clear of the next budget check, counting the
    /// steps the loop would; then leaves the rest of the list in the slot
    /// and goes on to the `MapStepFirst`, which runs the loop's code for
    /// the next item (or leaves the loop) and comes back here.
    RenderEach(u16, u32),
    /// The end of a render-mode body: `Nil Return`, except that when the
    /// caller's next instruction is the `RenderValue` of that nil (a call
    /// from markup), it is skipped instead.
    RenderReturn,
    /// `LocalGetKw` as a child in render mode: renders a string, integer or
    /// nil under the keyword in place. Followed by the same sequence and a
    /// `RenderValue`, which run instead for anything else.
    RenderLocalGetKw {
        slot: u16,
        key: u32,
        moved: bool,
    },
    /// `(str a b ...)` as an attribute's value in render mode, its N
    /// arguments on the stack. Followed by the plain sequence it stands
    /// for: `CallGlobal(str, N)` and the attribute's `RenderAttrText` or
    /// `RenderUrlAttr` (the compiler emits it for a URL attribute only
    /// when the first argument is a constant that cannot begin a scheme,
    /// so the joined URL is safe whatever follows). When `str` is the
    /// builtin and every argument is a string or integer, writes the
    /// attribute with each piece escaped in turn (escaping the pieces is
    /// escaping the joined text), pops them, counts the step the call
    /// would, and skips the sequence: the joined string is never made.
    /// Anything else runs the sequence.
    RenderStrAttr(u16),
}

/// Builtins the compiler emits as instructions.
///
/// A comparison's number is also its truth table: bit 0, 1 or 2 says
/// whether it holds when the left side is less, equal or greater (see
/// `int_cmp`). The numbers index `ALL` and the interpreter's bit set of
/// redefined builtins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Inline {
    Add = 0,
    Lt = 0b001,
    Eq = 0b010,
    Le = 0b011,
    Gt = 0b100,
    Sub = 5,
    Ge = 0b110,
    Mul = 7,
    Not = 8,
    Inc = 9,
    Dec = 10,
    First = 11,
    Rest = 12,
    Cons = 13,
    IsNil = 14,
    IsEmpty = 15,
    /// `(%hof-intact nil)`: true while none of the higher-order functions
    /// the compiler inlines (`map`, `for-each`, `filter`, `map-indexed`)
    /// nor what their inlined loops use (`reverse`, `%reverse-owned`) has
    /// been redefined; the guard of every inlined higher-order call.
    HofIntact = 16,
    /// `(%reverse-owned xs)`: `reverse`, relinking the cells in place
    /// when nothing else holds them (the accumulator of an inlined `map`).
    ReverseOwned = 17,
    /// `(render-html x)`: the compiler renders `x` straight into an output
    /// buffer (see `Op::RenderBegin`); this instruction is the fallback
    /// for a value made elsewhere.
    RenderHtml = 18,
    /// `get`: never an `Inline` instruction (`from_name` leaves it out);
    /// its bit says whether `LocalGetKw` may look into a dict itself.
    Get = 19,
    /// `(list? x)`.
    IsList = 20,
    /// `(mod a b)`.
    Mod = 21,
    /// `str`: never an `Inline` instruction (`from_name` leaves it out);
    /// its bit says whether `RenderStrAttr` may join the pieces itself.
    Str = 22,
}

impl Inline {
    /// Every inlined builtin, `ALL[i] as usize == i`.
    pub const ALL: [Inline; 23] = [
        Inline::Add,
        Inline::Lt,
        Inline::Eq,
        Inline::Le,
        Inline::Gt,
        Inline::Sub,
        Inline::Ge,
        Inline::Mul,
        Inline::Not,
        Inline::Inc,
        Inline::Dec,
        Inline::First,
        Inline::Rest,
        Inline::Cons,
        Inline::IsNil,
        Inline::IsEmpty,
        Inline::HofIntact,
        Inline::ReverseOwned,
        Inline::RenderHtml,
        Inline::Get,
        Inline::IsList,
        Inline::Mod,
        Inline::Str,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Inline::Add => "+",
            Inline::Sub => "-",
            Inline::Mul => "*",
            Inline::Lt => "<",
            Inline::Gt => ">",
            Inline::Le => "<=",
            Inline::Ge => ">=",
            Inline::Eq => "=",
            Inline::Not => "not",
            Inline::Inc => "inc",
            Inline::Dec => "dec",
            Inline::First => "first",
            Inline::Rest => "rest",
            Inline::Cons => "cons",
            Inline::IsNil => "nil?",
            Inline::IsEmpty => "empty?",
            Inline::HofIntact => "%hof-intact",
            Inline::ReverseOwned => "%reverse-owned",
            Inline::RenderHtml => "render-html",
            Inline::Get => "get",
            Inline::IsList => "list?",
            Inline::Mod => "mod",
            Inline::Str => "str",
        }
    }

    /// The argument count the instruction handles.
    pub fn arity(self) -> u16 {
        match self {
            Inline::Not
            | Inline::Inc
            | Inline::Dec
            | Inline::First
            | Inline::Rest
            | Inline::IsNil
            | Inline::IsEmpty
            | Inline::HofIntact
            | Inline::ReverseOwned
            | Inline::RenderHtml
            | Inline::IsList => 1,
            _ => 2,
        }
    }

    /// The builtin compiled as an `Inline` instruction called `name`.
    pub fn from_name(name: &str) -> Option<Inline> {
        Inline::ALL
            .into_iter()
            .find(|i| !matches!(i, Inline::Get | Inline::Str) && i.name() == name)
    }
}

/// Where a new closure's captured value comes from, in the creating frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFrom {
    Slot(u16),
    Capture(u16),
    SelfRef,
    GroupMember(u16),
}

/// A letrec group: member protos (indices into `protos`) and their slots.
#[derive(Clone, Debug)]
pub struct GroupDef {
    pub members: Vec<(u32, u16)>,
}

/// Compiled code of one function.
#[derive(Debug)]
pub struct Proto {
    pub name: Option<Symbol>,
    pub code: Rc<[Op]>,
    /// Source position of each instruction (same length as `code`).
    pub positions: Vec<Pos>,
    pub consts: Vec<Value>,
    pub protos: Vec<Rc<Proto>>,
    pub groups: Vec<GroupDef>,
    /// How to fill this function's captures when a closure of it is made.
    pub captures: Vec<CaptureFrom>,
    /// Required positional parameters.
    pub nparams: u16,
    /// `&key` parameter names, in slot order after the positionals.
    pub keys: Vec<Symbol>,
    /// Has a `&rest` parameter (slot after the keys).
    pub rest: bool,
    /// All slots: parameters and locals.
    pub nslots: u16,
    /// The argument count of a function without `&key` or `&rest`
    /// parameters (`nparams`), `u32::MAX` for the others: one comparison
    /// tells a call whether it can take the fast path.
    pub arity: u32,
    /// Where the function was defined.
    pub pos: Pos,
    /// The start of the body's render-mode code (0: it has none), entered
    /// by `CallGlobalRender`: it writes the body's markup into the output
    /// buffer and returns nil.
    pub render_entry: u32,
    /// The keywords `LocalGetKw` looks up, as dict keys made once.
    pub dict_keys: Vec<crate::dict::Key>,
    /// The keywords of each `KeyCallRender`, in the order written.
    pub call_keys: Vec<Box<[Symbol]>>,
    /// The loop bodies `RenderEach` writes itself.
    pub templates: Vec<LoopTemplate>,
    /// The render-mode body of a function whose parameters are all
    /// positional or all keywords, as a template that a call from markup
    /// (`CallGlobalRender`, `KeyCallRender`) writes instead of entering the
    /// frame, with the constant of the `ElementGuard` the body starts with
    /// (see `crate::template`).
    pub body_template: Option<(RenderTemplate, Option<u32>)>,
    /// The body of a function of positional parameters that is one
    /// `render-html` call, as a template: when a machine starts with a
    /// call of it (a page rendered for the host), the template is written
    /// and its string is the result, with no frame entered.
    pub html_template: Option<RenderTemplate>,
}

impl Proto {
    fn simple(&self) -> bool {
        self.keys.is_empty() && !self.rest
    }
}

/// A closure: code plus the values it captured.
pub struct Closure {
    pub proto: Rc<Proto>,
    pub captures: Rc<[Value]>,
    /// The letrec group it belongs to, for `GroupMember` references.
    pub group: Option<Rc<Group>>,
    /// `proto.arity` and `proto.nslots`, kept here so a call checks and
    /// enters the closure without first loading its proto.
    arity: u32,
    nslots: u16,
    /// `proto.code`, so entering a frame finds its code one load sooner.
    code: Rc<[Op]>,
}

impl Drop for Closure {
    // Captured values may hold closures capturing closures, to any depth.
    fn drop(&mut self) {
        if let Some(values) = Rc::get_mut(&mut self.captures) {
            for v in values.iter_mut() {
                crate::value::drop_nested(std::mem::take(v));
            }
        }
    }
}

impl Closure {
    pub fn new(proto: Rc<Proto>, captures: Rc<[Value]>, group: Option<Rc<Group>>) -> Closure {
        Closure {
            arity: proto.arity,
            code: proto.code.clone(),
            nslots: proto.nslots,
            proto,
            captures,
            group,
        }
    }

    pub fn name(&self) -> Option<&'static str> {
        self.proto.name.map(Symbol::as_str)
    }
}

/// The members of a letrec group: each member's code and captures. Holds no
/// closures, so members referring to each other form no reference cycle.
pub struct Group {
    pub members: Vec<(Rc<Proto>, Rc<[Value]>)>,
}

impl Drop for Group {
    fn drop(&mut self) {
        for (_, captures) in &mut self.members {
            if let Some(values) = Rc::get_mut(captures) {
                for v in values.iter_mut() {
                    crate::value::drop_nested(std::mem::take(v));
                }
            }
        }
    }
}

/// Natives may take ownership of their arguments (`std::mem::take`), so a
/// value nothing else holds can be updated in place.
pub type NativeFn = fn(&mut Interp, &mut [Value]) -> Result<Value>;

/// Natives the machine treats specially because they call back into SX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// `(apply f a b xs)`.
    Apply,
    /// `(eval form)`.
    Eval,
}

/// A function implemented in Rust.
pub struct Native {
    pub name: &'static str,
    pub min_args: u16,
    /// `None`: variadic.
    pub max_args: Option<u16>,
    pub f: NativeFn,
    pub special: Special,
}

/// A host operation requested by `(perform op args...)`.
#[derive(Debug, Clone)]
pub struct Request {
    pub op: Value,
    pub args: Args,
}

/// The arguments of a [`Request`], used as a slice (`Deref`). A single
/// argument, the usual case, is held in place: such a `perform` suspends
/// without an allocation, which (with the counting allocator's atomic
/// counters) was about a sixth of a suspend/resume cycle. Two or more are
/// one allocation, as before. Three words, so that an `Outcome` stays five
/// (40 bytes): `execute` returns one, and a bigger one changed the code
/// generated for its dispatch loop (fib +2.6% instructions).
#[derive(Debug, Clone)]
pub struct Args(ArgsRepr);

#[derive(Debug, Clone)]
enum ArgsRepr {
    Zero,
    One(Value),
    Many(Box<[Value]>),
}

impl Args {
    /// No arguments.
    pub const fn new() -> Args {
        Args(ArgsRepr::Zero)
    }

    /// The first argument (nil when there is none); the rest are dropped.
    pub fn into_first(self) -> Value {
        match self.0 {
            ArgsRepr::Zero => Value::Nil,
            ArgsRepr::One(v) => v,
            ArgsRepr::Many(b) => b.into_vec().into_iter().next().unwrap_or_default(),
        }
    }

    /// The arguments as a `Vec` (allocates when there is one).
    pub fn into_vec(self) -> Vec<Value> {
        match self.0 {
            ArgsRepr::Zero => Vec::new(),
            ArgsRepr::One(v) => vec![v],
            ArgsRepr::Many(b) => b.into_vec(),
        }
    }
}

impl Default for Args {
    fn default() -> Args {
        Args::new()
    }
}

impl std::ops::Deref for Args {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        match &self.0 {
            ArgsRepr::Zero => &[],
            ArgsRepr::One(v) => std::slice::from_ref(v),
            ArgsRepr::Many(b) => b,
        }
    }
}

impl std::ops::DerefMut for Args {
    fn deref_mut(&mut self) -> &mut [Value] {
        match &mut self.0 {
            ArgsRepr::Zero => &mut [],
            ArgsRepr::One(v) => std::slice::from_mut(v),
            ArgsRepr::Many(b) => b,
        }
    }
}

impl From<Vec<Value>> for Args {
    fn from(mut v: Vec<Value>) -> Args {
        Args(match v.len() {
            0 => ArgsRepr::Zero,
            1 => ArgsRepr::One(v.pop().unwrap_or_default()),
            _ => ArgsRepr::Many(v.into_boxed_slice()),
        })
    }
}

impl From<Args> for Vec<Value> {
    fn from(a: Args) -> Vec<Value> {
        a.into_vec()
    }
}

impl FromIterator<Value> for Args {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Args {
        Args::from(iter.into_iter().collect::<Vec<Value>>())
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        **self == **other
    }
}

/// The iterator of [`Args`] by value.
pub struct ArgsIntoIter(ArgsIterRepr);

enum ArgsIterRepr {
    One(std::option::IntoIter<Value>),
    Many(std::vec::IntoIter<Value>),
}

impl Iterator for ArgsIntoIter {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        match &mut self.0 {
            ArgsIterRepr::One(it) => it.next(),
            ArgsIterRepr::Many(it) => it.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            ArgsIterRepr::One(it) => it.size_hint(),
            ArgsIterRepr::Many(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for ArgsIntoIter {}

impl IntoIterator for Args {
    type Item = Value;
    type IntoIter = ArgsIntoIter;
    fn into_iter(self) -> ArgsIntoIter {
        ArgsIntoIter(match self.0 {
            ArgsRepr::Zero => ArgsIterRepr::One(None.into_iter()),
            ArgsRepr::One(v) => ArgsIterRepr::One(Some(v).into_iter()),
            ArgsRepr::Many(b) => ArgsIterRepr::Many(b.into_vec().into_iter()),
        })
    }
}

impl<'a> IntoIterator for &'a Args {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> std::slice::Iter<'a, Value> {
        self.iter()
    }
}

/// How a run of the machine ended.
#[derive(Debug)]
pub enum Outcome {
    /// The computation finished with a value.
    Done(Value),
    /// The computation performed `request` and waits for [`Machine::resume`].
    Perform(Request),
}

struct Frame {
    closure: Rc<Closure>,
    pc: usize,
    /// Stack index of slot 0.
    base: usize,
    /// Stack length to cut back to on return (the callee's slot, if any).
    ret_to: usize,
}

struct Handler {
    frames: usize,
    stack: usize,
    catch_pc: usize,
    /// Render buffers open when the `try` began.
    render: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Ready,
    Suspended,
    Done,
}

/// A suspendable computation.
pub struct Machine {
    stack: Vec<Value>,
    frames: Vec<Frame>,
    handlers: Vec<Handler>,
    state: State,
    /// Calls made, for the step budget.
    steps: u64,
    started: Option<Instant>,
    /// Arguments of the initial call, made when the machine first runs.
    entry_argc: Option<usize>,
    /// Calls left before the next budget check.
    fuel: u32,
    /// The step count at which a budget check next looks at the clock
    /// and the heap.
    clock_at: u64,
    /// Heap bytes this machine's finished runs kept (see `Budget::heap_per_machine`).
    heap_kept: isize,
    /// The thread's net allocation when the current run started.
    run_heap_start: isize,
    /// The thread's allocation count at the last clock and heap check
    /// forced by a primitive's allocations (see `after_native`).
    alloc_mark: u64,
    /// Output buffers of the `render-html` calls running in render mode,
    /// innermost last.
    render: Vec<String>,
}

/// The largest closed render buffer a thread keeps for its next
/// `render-html` (bigger ones are freed).
const RENDER_SPARE_MAX: usize = 1 << 20;

thread_local! {
    /// A closed render buffer, kept so that the next `render-html` on this
    /// thread (usually another machine's: one per request or call) starts
    /// with room instead of growing from nothing.
    static RENDER_SPARE: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// The largest emptied stack (in values) and frame list a thread keeps
/// for its next machine (bigger ones are freed).
const MACHINE_SPARE_MAX: usize = 1 << 10;

thread_local! {
    /// The emptied stack, frame list and render-buffer list of the last
    /// machine dropped on this thread, kept so that the next one (a call
    /// from the host, one per request or `call_value`) starts with room
    /// instead of allocating and growing each from nothing.
    static MACHINE_SPARE: std::cell::Cell<(Vec<Value>, Vec<Frame>, Vec<String>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new(), Vec::new())) };
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.stack.capacity() > MACHINE_SPARE_MAX || self.frames.capacity() > MACHINE_SPARE_MAX {
            return;
        }
        let mut stack = std::mem::take(&mut self.stack);
        let mut frames = std::mem::take(&mut self.frames);
        let mut render = std::mem::take(&mut self.render);
        stack.clear();
        frames.clear();
        render.clear();
        let _ = MACHINE_SPARE.try_with(|s| s.set((stack, frames, render)));
    }
}

/// Whether an element name an `ElementGuard` checks (its constant: a
/// name, or the list of names of the element forms written under it) has
/// been bound as a global since the code was compiled.
#[inline]
pub(crate) fn elements_shadowed(interp: &Interp, names: Option<&Value>) -> bool {
    !interp.no_shadowed_elements()
        && match names {
            Some(Value::Str(name)) => interp.element_shadow(name).is_some(),
            Some(Value::List(names)) => names
                .iter()
                .any(|n| matches!(n, Value::Str(name) if interp.element_shadow(name).is_some())),
            _ => false,
        }
}

fn take_render_buffer() -> String {
    RENDER_SPARE.try_with(|s| s.take()).unwrap_or_default()
}

fn keep_render_buffer(mut buf: String) {
    if buf.capacity() <= RENDER_SPARE_MAX {
        buf.clear();
        let _ = RENDER_SPARE.try_with(|s| s.set(buf));
    }
}

#[cold]
fn not_suspended() -> EvalError {
    EvalError::new(
        ErrorKind::Perform,
        "resume: the machine is not waiting for a perform",
    )
}

fn no_render_buffer() -> EvalError {
    EvalError::new(
        ErrorKind::Value,
        "internal error: render-mode code ran outside render-html",
    )
}

/// How many calls pass between checks of the time and heap budgets.
const CHECK_EVERY: u64 = 1024;

/// Bytes the thread may allocate inside primitive calls between two looks
/// at the clock and the heap. One call of `sort`, `str`, `range`... can take
/// seconds or gigabytes, far more than CHECK_EVERY calls of anything else.
const CHECK_ALLOCATED: u64 = 4 << 20;

/// What a call instruction did.
enum Entered {
    /// A new frame was pushed: reload the running frame.
    Frame,
    /// A native ran and its result was pushed.
    Value,
}

macro_rules! pop {
    ($self:ident) => {
        $self.stack.pop().unwrap_or_default()
    };
}

impl Machine {
    /// A machine that will call `callee` with `args` when first run.
    pub fn new(callee: Value, args: Vec<Value>) -> Machine {
        let (mut stack, frames, render) = MACHINE_SPARE.try_with(|s| s.take()).unwrap_or_default();
        if stack.capacity() == 0 {
            stack.reserve(64);
        }
        stack.push(callee);
        let argc = args.len();
        stack.extend(args);
        Machine {
            stack,
            frames,
            handlers: Vec::new(),
            state: State::Ready,
            steps: 0,
            started: None,
            entry_argc: Some(argc),
            fuel: 1,
            clock_at: 0,
            heap_kept: 0,
            run_heap_start: 0,
            alloc_mark: 0,
            render,
        }
    }

    /// Whether the machine is waiting for [`Machine::resume`].
    pub fn is_suspended(&self) -> bool {
        self.state == State::Suspended
    }

    /// Calls made so far (what the step budget counts).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Resumes a suspended machine: `value` becomes the result of `perform`.
    pub fn resume(&mut self, interp: &mut Interp, value: Value) -> Result<Outcome> {
        if self.state != State::Suspended {
            return Err(not_suspended());
        }
        // An integer answer is stored rebuilt from its payload, not copied
        // whole: the host has just written it in narrower pieces (see
        // `pop_fresh`).
        match value {
            Value::Int(n) => push(&mut self.stack, Value::Int(n)),
            other => push(&mut self.stack, other),
        }
        self.state = State::Ready;
        self.run_ready(interp)
    }

    /// Suspends at a `perform`: its op then `argc - 1` arguments, on the
    /// stack top, move into the request (one argument in place, more in
    /// one exact allocation), and the machine is marked suspended. Out of
    /// line, to keep `execute` small: even a small change to its `Perform`
    /// arm changed the code generated for the whole dispatch loop.
    #[cold]
    #[inline(never)]
    fn take_request(&mut self, argc: u16) -> Request {
        self.state = State::Suspended;
        let args = match argc {
            0 | 1 => ArgsRepr::Zero,
            2 => ArgsRepr::One(self.pop_fresh()),
            _ => {
                let at = self.stack.len().saturating_sub(argc as usize - 1);
                ArgsRepr::Many(self.stack.split_off(at).into_boxed_slice())
            }
        };
        let op = if argc == 0 { Value::Nil } else { pop!(self) };
        Request {
            op,
            args: Args(args),
        }
    }

    /// Pops the stack top. An integer is rebuilt from its payload instead
    /// of being copied whole: it was usually pushed just before (the
    /// argument of a `perform`) by stores narrower than the copy's loads,
    /// which the CPU cannot forward from its store buffer (a stall).
    #[inline(always)]
    fn pop_fresh(&mut self) -> Value {
        if let Some(&Value::Int(n)) = self.stack.last() {
            crate::push::forget_last(&mut self.stack);
            return Value::Int(n);
        }
        pop!(self)
    }

    /// Resumes a suspended machine by raising `error` at the `perform`, as
    /// when the host could not carry the operation out. SX code can catch it.
    pub fn resume_error(&mut self, interp: &mut Interp, error: EvalError) -> Result<Outcome> {
        if self.state != State::Suspended {
            return Err(not_suspended());
        }
        self.state = State::Ready;
        let error = self.locate(error);
        match self.catch(error) {
            Ok(()) => self.run(interp),
            Err(e) => {
                self.state = State::Done;
                Err(e)
            }
        }
    }

    /// Runs until the computation finishes or performs.
    pub fn run(&mut self, interp: &mut Interp) -> Result<Outcome> {
        match self.state {
            State::Ready => {}
            State::Suspended => {
                return Err(EvalError::new(
                    ErrorKind::Perform,
                    "run: the machine is waiting for a perform's answer; call resume",
                ));
            }
            State::Done => {
                return Err(EvalError::new(
                    ErrorKind::Perform,
                    "run: the machine has already finished",
                ));
            }
        }
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
        self.run_ready(interp)
    }

    /// `run` of a machine known to be ready and started (also the whole of
    /// `resume`, which is why it is short): `execute` itself marks the
    /// machine suspended at a `perform` (`take_request`); errors and the
    /// end are handled out of line.
    #[inline(always)]
    fn run_ready(&mut self, interp: &mut Interp) -> Result<Outcome> {
        let heap_start = crate::alloc::thread_net_bytes();
        self.run_heap_start = heap_start;
        let mut outcome = self.execute(interp);
        if outcome.is_err() {
            outcome = self.recover(interp, outcome);
        }
        self.heap_kept += crate::alloc::thread_net_bytes() - heap_start;
        if self.state != State::Suspended {
            self.finish();
        }
        outcome
    }

    /// After `execute` failed: unwinds to the innermost `try` and runs on
    /// from there, until the computation ends, performs, or an error
    /// nothing catches.
    #[cold]
    #[inline(never)]
    fn recover(&mut self, interp: &mut Interp, mut outcome: Result<Outcome>) -> Result<Outcome> {
        loop {
            match outcome {
                Ok(o) => return Ok(o),
                Err(err) => {
                    let err = self.locate(err);
                    self.catch(err)?;
                    outcome = self.execute(interp);
                }
            }
        }
    }

    /// The computation ended (a value or an uncaught error): frees its
    /// stacks.
    #[inline(never)]
    fn finish(&mut self) {
        self.state = State::Done;
        self.stack.clear();
        self.frames.clear();
        self.handlers.clear();
    }

    /// Adds the failing form's position and a backtrace to an error.
    fn locate(&self, mut err: EvalError) -> EvalError {
        if err.location.is_none() {
            err.location = self.frames.last().and_then(frame_location);
        }
        if err.backtrace.is_empty() && self.handlers.is_empty() {
            // Innermost first; runs of the same frame (deep recursion) are
            // shown once with a count, and at most 32 lines are kept.
            let mut trace: Vec<TraceFrame> = Vec::new();
            for f in self.frames.iter().rev() {
                let frame = TraceFrame {
                    function: f
                        .closure
                        .name()
                        .map_or_else(|| "<lambda>".to_owned(), str::to_owned),
                    location: frame_location(f),
                    repeated: 0,
                };
                let full = trace.len() >= 32;
                match trace.last_mut() {
                    Some(last)
                        if last.function == frame.function && last.location == frame.location =>
                    {
                        last.repeated += 1;
                    }
                    _ if full => break,
                    _ => trace.push(frame),
                }
            }
            err.backtrace = trace;
        }
        err
    }

    /// Unwinds to the innermost `try`, giving it the error's value; or gives
    /// the error back when nothing catches it. Budget errors are never caught.
    fn catch(&mut self, err: EvalError) -> Result<()> {
        if err.kind == ErrorKind::Budget {
            return Err(err);
        }
        let Some(h) = self.handlers.pop() else {
            return Err(err);
        };
        self.frames.truncate(h.frames);
        self.stack.truncate(h.stack);
        self.render.truncate(h.render);
        if let Some(f) = self.frames.last_mut() {
            f.pc = h.catch_pc;
        }
        let mut err = err;
        self.stack.push(std::mem::take(&mut err.value));
        Ok(())
    }

    fn check_budget(&mut self, interp: &Interp) -> Result<()> {
        let b = &interp.budget;
        if let Some(max) = b.max_steps {
            if self.steps > max {
                return Err(EvalError::new(
                    ErrorKind::Budget,
                    format!("step budget exhausted: more than {max} calls"),
                ));
            }
        }
        if self.frames.len() > b.max_depth {
            return Err(EvalError::new(
                ErrorKind::Budget,
                format!(
                    "recursion too deep: more than {} nested calls (the depth budget)",
                    b.max_depth
                ),
            ));
        }
        // The clock and the heap counters cost more than a call: look at
        // them about once per CHECK_EVERY calls.
        if self.steps >= self.clock_at {
            self.clock_at = self.steps + CHECK_EVERY;
            self.check_clock_and_heap(interp)?;
        }
        Ok(())
    }

    /// After a primitive returned: if the thread allocated a lot since the
    /// last such look, check the time and heap budgets now.
    #[inline]
    fn after_native(&mut self, interp: &Interp) -> Result<()> {
        let allocated = crate::alloc::thread_allocated_bytes();
        if allocated.wrapping_sub(self.alloc_mark) > CHECK_ALLOCATED {
            self.alloc_mark = allocated;
            return self.check_clock_and_heap(interp);
        }
        Ok(())
    }

    fn check_clock_and_heap(&self, interp: &Interp) -> Result<()> {
        let b = &interp.budget;
        if let (Some(max), Some(start)) = (b.max_time, self.started) {
            if start.elapsed() > max {
                return Err(EvalError::new(
                    ErrorKind::Budget,
                    format!("time budget exhausted: ran longer than {max:?}"),
                ));
            }
        }
        if let Some(max) = b.max_heap {
            let heap = if b.heap_per_machine {
                let now = crate::alloc::thread_net_bytes();
                usize::try_from(self.heap_kept + (now - self.run_heap_start)).unwrap_or(0)
            } else {
                interp.heap_in_use()
            };
            let used = heap
                + self.stack.capacity() * std::mem::size_of::<Value>()
                + self.frames.capacity() * std::mem::size_of::<Frame>();
            if used > max {
                return Err(EvalError::new(
                    ErrorKind::Budget,
                    format!("heap budget exhausted: using {used} bytes, more than {max}"),
                ));
            }
        }
        Ok(())
    }

    /// Calls the value below the top `argc` stack values.
    /// Counts a call and checks the budgets every so often.
    #[inline(always)]
    fn tick(&mut self, interp: &Interp) -> Result<()> {
        self.steps += 1;
        self.fuel -= 1;
        if self.fuel == 0 {
            return self.refuel(interp);
        }
        Ok(())
    }

    /// A call from markup of a function whose render-mode body is a
    /// template (`Proto::body_template`), its arguments the values from
    /// `args_at` to the top, in the order of its slots: writes the template
    /// with them in place, pops them and counts the steps the call and the
    /// body would, unless the template cannot write exactly what the body
    /// would (see `crate::template`). Whether it did.
    #[inline]
    fn write_body_template(
        &mut self,
        interp: &Interp,
        proto: &Proto,
        args_at: usize,
    ) -> Result<bool> {
        let Some((template, guard)) = &proto.body_template else {
            return Ok(false);
        };
        if !template.intact(interp)
            || elements_shadowed(interp, guard.and_then(|g| proto.consts.get(g as usize)))
        {
            return Ok(false);
        }
        let limit = self.template_room(interp);
        let (Some(buf), Some(values)) = (self.render.last_mut(), self.stack.get(args_at..)) else {
            return Ok(false);
        };
        let Some(used) = template.write(values, buf, limit) else {
            return Ok(false);
        };
        truncate_to(&mut self.stack, args_at);
        self.spend(interp, used)?;
        Ok(true)
    }

    /// The first call of a machine, of a function whose body is a
    /// `render-html` template (`Proto::html_template`) with its `argc`
    /// arguments: the string the body would return, written by the
    /// template, with the callee and its arguments popped and the steps
    /// counted; None when the template cannot write what the body would.
    fn write_html_template(&mut self, interp: &Interp, argc: usize) -> Result<Option<Value>> {
        let Some(fpos) = self.stack.len().checked_sub(argc + 1) else {
            return Ok(None);
        };
        let c = match self.stack.get(fpos) {
            Some(Value::Closure(c)) if c.proto.html_template.is_some() => c.clone(),
            _ => return Ok(None),
        };
        let Some(template) = &c.proto.html_template else {
            return Ok(None);
        };
        if c.proto.arity as usize != argc || !template.intact(interp) {
            return Ok(None);
        }
        let limit = self.template_room(interp);
        let mut buf = take_render_buffer();
        let written = match self.stack.get(fpos + 1..) {
            Some(args) => template.write(args, &mut buf, limit),
            None => None,
        };
        let html = written.map(|_| Value::Str(RcStr::from(buf.as_str())));
        keep_render_buffer(buf);
        let Some(used) = written else {
            return Ok(None);
        };
        truncate_to(&mut self.stack, fpos);
        self.spend(interp, used)?;
        Ok(html)
    }

    /// The steps a template may count now: no further than the step
    /// budget allows (a template that would pass it is left to its code,
    /// which stops exactly there), and at most `MAX_ROOM` between budget
    /// checks.
    #[inline]
    fn template_room(&self, interp: &Interp) -> u32 {
        let left = match interp.budget.max_steps {
            Some(max) => max.saturating_sub(self.steps),
            None => u64::MAX,
        };
        // At most MAX_ROOM, which is a u32.
        left.min(u64::from(MAX_ROOM)) as u32
    }

    /// Counts the `used` steps a template took, checking the budgets if
    /// the code would have on the way.
    #[inline]
    fn spend(&mut self, interp: &Interp, used: u32) -> Result<()> {
        self.steps += u64::from(used);
        if used < self.fuel {
            self.fuel -= used;
            Ok(())
        } else {
            self.refuel(interp)
        }
    }

    /// Checks the budgets and sets how many calls pass before the next check.
    #[cold]
    #[inline(never)]
    fn refuel(&mut self, interp: &Interp) -> Result<()> {
        // Check every 64 calls, or exactly where the step budget ends.
        self.fuel = match interp.budget.max_steps {
            Some(max) => max.saturating_sub(self.steps).clamp(1, 64) as u32,
            None => 64,
        };
        self.check_budget(interp)
    }

    /// Rewrites `[apply f a.. xs]` and `[eval form]` at `fpos` into the
    /// plain call each stands for, so they work (and tail-call) like any
    /// other call; returns the new argument count.
    fn unwrap_special(
        &mut self,
        interp: &mut Interp,
        fpos: usize,
        mut argc: usize,
    ) -> Result<usize> {
        loop {
            let special = match self.stack.get(fpos) {
                Some(Value::Native(n)) => n.special,
                _ => return Ok(argc),
            };
            match special {
                Special::None => return Ok(argc),
                Special::Apply => {
                    if argc < 2 {
                        return Err(EvalError::arity("apply", "at least 2", argc));
                    }
                    let items = match pop!(self) {
                        Value::List(l) => l,
                        Value::Nil => List::EMPTY,
                        other => {
                            return Err(EvalError::type_error(
                                "apply",
                                "a list as its last argument",
                                &other,
                            ));
                        }
                    };
                    self.stack.remove(fpos);
                    argc -= 2;
                    for item in items.iter() {
                        self.stack.push(item.clone());
                        argc += 1;
                    }
                }
                Special::Eval => {
                    if argc != 1 {
                        return Err(EvalError::arity("eval", "1", argc));
                    }
                    let form = pop!(self);
                    let closure = interp.compile_toplevel(&form)?;
                    self.stack.truncate(fpos);
                    self.stack.push(Value::Closure(closure));
                    argc = 0;
                }
            }
        }
    }

    fn call(&mut self, interp: &mut Interp, argc: usize) -> Result<Entered> {
        self.tick(interp)?;
        let fpos = self.stack.len() - argc - 1;
        let argc = self.unwrap_special(interp, fpos, argc)?;
        let callee = std::mem::take(&mut self.stack[fpos]);
        match callee {
            Value::Closure(c) => {
                self.enter(c, fpos + 1, argc, fpos)?;
                Ok(Entered::Frame)
            }
            Value::Native(n) => {
                self.stack[fpos] = Value::Native(n.clone());
                if (argc as u16) < n.min_args || n.max_args.is_some_and(|m| argc as u16 > m) {
                    let expected = match n.max_args {
                        Some(m) if m == n.min_args => m.to_string(),
                        Some(m) => format!("{} to {m}", n.min_args),
                        None => format!("at least {}", n.min_args),
                    };
                    return Err(EvalError::arity(n.name, &expected, argc));
                }
                match n.special {
                    Special::None => {
                        let result = (n.f)(interp, &mut self.stack[fpos + 1..])?;
                        self.stack.truncate(fpos);
                        self.stack.push(result);
                        self.after_native(interp)?;
                        Ok(Entered::Value)
                    }
                    Special::Apply | Special::Eval => Err(EvalError::new(
                        ErrorKind::Value,
                        "internal error: apply/eval reached a plain call",
                    )),
                }
            }
            Value::Component(comp) => {
                let closure = comp.closure.clone();
                self.enter(closure, fpos + 1, argc, fpos)?;
                Ok(Entered::Frame)
            }
            Value::Keyword(k) if argc == 1 || argc == 2 => {
                // (:key dict) and (:key dict default), as in Clojure.
                let default = if argc == 2 { pop!(self) } else { Value::Nil };
                let target = pop!(self);
                self.stack.truncate(fpos);
                let found = match &target {
                    Value::Dict(d) => d.get(&Value::Keyword(k)).cloned(),
                    Value::Nil => None,
                    other => return Err(EvalError::type_error(&format!(":{k}"), "a dict", other)),
                };
                self.stack.push(found.unwrap_or(default));
                Ok(Entered::Value)
            }
            Value::Cell(c) => {
                let inner = c.borrow().clone();
                self.stack[fpos] = inner;
                self.steps -= 1;
                self.call(interp, argc)
            }
            Value::Macro(m) => Err(EvalError::new(
                ErrorKind::Type,
                format!(
                    "macro {} used as a function value: macros are expanded at compile time",
                    m.name().unwrap_or("<anonymous>")
                ),
            )),
            other => Err(EvalError::new(
                ErrorKind::Type,
                format!(
                    "not a function: {} {} cannot be called",
                    other.type_of().as_str(),
                    crate::printer::display(&other)
                        .chars()
                        .take(60)
                        .collect::<String>()
                ),
            )),
        }
    }

    /// Pushes a frame for `closure` whose `argc` arguments start at `args`.
    fn enter(
        &mut self,
        closure: Rc<Closure>,
        args: usize,
        argc: usize,
        ret_to: usize,
    ) -> Result<()> {
        let p = &closure.proto;
        if p.simple() {
            if argc != p.nparams as usize {
                return Err(arity_error(p, argc));
            }
        } else {
            self.bind_complex(p, args, argc)?;
        }
        let want = args + p.nslots as usize;
        if self.stack.len() != want {
            self.stack.resize(want, Value::Nil);
        }
        self.frames.push(Frame {
            closure,
            pc: 0,
            base: args,
            ret_to,
        });
        Ok(())
    }

    /// Binds `&key` and `&rest` parameters: after the positionals, a keyword
    /// naming a declared key takes the next argument; the others go to
    /// `&rest` (an error without one).
    fn bind_complex(&mut self, p: &Proto, args: usize, argc: usize) -> Result<()> {
        let np = p.nparams as usize;
        if argc < np {
            return Err(arity_error(p, argc));
        }
        if p.rest {
            return self.bind_complex_rest(p, args + np);
        }
        // Keys only (a component's usual signature).
        let start = args + np;
        let end = self.stack.len();
        if self.bind_keys_in_order(p, start, end) {
            return Ok(());
        }
        // Any order, or some keys left out: the values move from the
        // argument pairs into key slots appended after them, then the
        // pairs are removed, with no allocation.
        self.stack.resize(end + p.keys.len(), Value::Nil);
        let mut i = start;
        while i < end {
            let key = match self.stack.get(i) {
                Some(Value::Keyword(k)) => p.keys.iter().position(|key| key == k),
                _ => None,
            };
            let Some(j) = key else {
                let v = self.stack.get(i).cloned().unwrap_or_default();
                return Err(unexpected_argument(p, &v));
            };
            if i + 1 >= end {
                return Err(missing_key_value(p, p.keys.get(j).copied()));
            }
            let v = self
                .stack
                .get_mut(i + 1)
                .map(std::mem::take)
                .unwrap_or_default();
            if let Some(dst) = self.stack.get_mut(end + j) {
                *dst = v;
            }
            i += 2;
        }
        self.stack.drain(start..end);
        Ok(())
    }

    /// The usual keyword call: every key given once, in the order declared
    /// (`(~card :title t :body b)` for `(&key title body)`). The values move
    /// down over the pairs and the stack is cut, with no other work.
    /// Returns false, having changed nothing, for any other call.
    fn bind_keys_in_order(&mut self, p: &Proto, start: usize, end: usize) -> bool {
        let n = p.keys.len();
        if end - start != 2 * n {
            return false;
        }
        let Some(pairs) = self.stack.get(start..end) else {
            return false;
        };
        let in_order = pairs
            .iter()
            .step_by(2)
            .zip(&p.keys)
            .all(|(k, key)| matches!(k, Value::Keyword(k) if k == key));
        if !in_order {
            return false;
        }
        for j in 0..n {
            let v = std::mem::take(&mut self.stack[start + 2 * j + 1]);
            overwrite(&mut self.stack[start + j], v);
        }
        truncate_to(&mut self.stack, start + n);
        true
    }

    /// `bind_complex` with a `&rest` parameter: the arguments from `from`
    /// on are sorted into keys and the rest list.
    fn bind_complex_rest(&mut self, p: &Proto, from: usize) -> Result<()> {
        let extra: Vec<Value> = self.stack.drain(from..).collect();
        let mut keyvals = vec![Value::Nil; p.keys.len()];
        let mut rest = Vec::new();
        let mut it = extra.into_iter();
        while let Some(v) = it.next() {
            if let Value::Keyword(k) = &v {
                if let Some(i) = p.keys.iter().position(|key| key == k) {
                    match it.next() {
                        Some(val) => {
                            if let Some(slot) = keyvals.get_mut(i) {
                                *slot = val;
                            }
                        }
                        None => return Err(missing_key_value(p, Some(*k))),
                    }
                    continue;
                }
            }
            rest.push(v);
        }
        self.stack.extend(keyvals);
        self.stack.push(Value::List(List::from_vec(rest)));
        Ok(())
    }

    /// The interpreter loop. Returns on finish, perform, or error (with the
    /// running frame's pc saved so the error can be located).
    fn execute(&mut self, interp: &mut Interp) -> Result<Outcome> {
        if let Some(argc) = self.entry_argc.take() {
            if let Some(html) = self.write_html_template(interp, argc)? {
                return Ok(Outcome::Done(html));
            }
            match self.call(interp, argc)? {
                Entered::Frame => {}
                Entered::Value => return Ok(Outcome::Done(pop!(self))),
            }
        }
        // While its code runs, the running frame lives in `cur` and
        // `self.frames` holds only its callers, so a call or return moves a
        // frame without touching reference counts. Everywhere else (the
        // general call paths, errors, perform) the running frame is on top
        // of `self.frames`: `spill!` puts it there and `fill!` takes it back.
        let mut cur = match self.frames.pop() {
            Some(f) => f,
            None => return Ok(Outcome::Done(pop!(self))),
        };
        // The outer loop starts running `cur` after a call or return; the
        // inner loop runs its instructions with the code borrowed once.
        'frame: loop {
            let closure: &Rc<Closure> = &cur.closure;
            let proto: &Proto = &closure.proto;
            let mut pc = cur.pc;
            let code: &[Op] = &closure.code;

            /// Puts the running frame back on `self.frames` (its pc saved).
            macro_rules! spill {
                () => {
                    cur.pc = pc;
                    self.frames.push(cur);
                };
            }
            /// Takes the frame on top of `self.frames` as the running one.
            macro_rules! fill {
                () => {{
                    cur = match self.frames.pop() {
                        Some(f) => f,
                        None => return Ok(Outcome::Done(pop!(self))),
                    };
                    continue 'frame;
                }};
            }
            /// Calls the value at stack index `fpos` with the `argc` values
            /// above it by the general path (any kind of callee), then runs
            /// on in whatever frame is current.
            macro_rules! general_call {
                ($fpos:expr, $argc:expr, $tail:expr) => {{
                    spill!();
                    if $tail {
                        if let Some(out) = self.tail_call(interp, $fpos, $argc)? {
                            return Ok(out);
                        }
                    } else {
                        self.call(interp, $argc)?;
                    }
                    fill!();
                }};
            }
            macro_rules! fail {
                ($e:expr) => {{
                    let e = $e;
                    spill!();
                    return Err(e);
                }};
            }
            /// Returns the value on top of the stack to the caller.
            macro_rules! ret {
                () => {{
                    let top = self.stack.len().wrapping_sub(1);
                    if top > cur.ret_to && top < self.stack.len() {
                        self.stack.swap(cur.ret_to, top);
                        truncate_to(&mut self.stack, cur.ret_to + 1);
                    } else if top != cur.ret_to {
                        let v = pop!(self);
                        truncate_to(&mut self.stack, cur.ret_to);
                        push(&mut self.stack, v);
                    }
                    match self.frames.pop() {
                        Some(caller) => {
                            // Move the caller in, then drop the callee's
                            // closure: with `cur = caller` the caller would
                            // wait in a temporary across that drop.
                            drop(std::mem::replace(&mut cur, caller));
                            continue 'frame;
                        }
                        None => return Ok(Outcome::Done(pop!(self))),
                    }
                }};
            }
            /// Returns the value of slot `s` to the caller.
            macro_rules! return_local {
                ($s:expr) => {{
                    let i = cur.base + $s as usize;
                    if cur.ret_to <= i && i < self.stack.len() {
                        if i != cur.ret_to {
                            self.stack.swap(cur.ret_to, i);
                        }
                        truncate_to(&mut self.stack, cur.ret_to + 1);
                        match self.frames.pop() {
                            Some(caller) => {
                                drop(std::mem::replace(&mut cur, caller));
                                continue 'frame;
                            }
                            None => return Ok(Outcome::Done(pop!(self))),
                        }
                    }
                    let v = self
                        .stack
                        .get_mut(i)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    push(&mut self.stack, v);
                    ret!();
                }};
            }
            /// Runs a closure known to be simple and to take `argc`
            /// arguments, which start at stack index `args`; `callee_slot`
            /// is where the callee sits (`args` when there is none).
            macro_rules! enter_fast {
                ($c:expr, $callee_slot:expr, $args:expr, $tail:expr) => {{
                    let c: Rc<Closure> = $c;
                    try_!(self.tick(interp));
                    let (base, ret_to) = if $tail {
                        // Replace this frame: slide the callee's slot (if
                        // any) and arguments down to where this frame began.
                        slide_down(&mut self.stack, cur.ret_to, $callee_slot);
                        (cur.ret_to + ($args - $callee_slot), cur.ret_to)
                    } else {
                        ($args, $callee_slot)
                    };
                    let want = base + c.nslots as usize;
                    if self.stack.len() != want {
                        self.stack.resize_with(want, Value::default);
                    }
                    if $tail {
                        cur.closure = c;
                    } else {
                        push(
                            &mut self.frames,
                            Frame {
                                closure: std::mem::replace(&mut cur.closure, c),
                                pc,
                                base: cur.base,
                                ret_to: cur.ret_to,
                            },
                        );
                    }
                    cur.pc = 0;
                    cur.base = base;
                    cur.ret_to = ret_to;
                    continue 'frame;
                }};
            }
            macro_rules! try_ {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(e) => fail!(e),
                    }
                };
            }

            loop {
                // Matched through a reference, so each arm loads only its
                // own operands. Copied out whole, the instruction had every
                // field loaded into registers before the jump, which pushed
                // `pc` and the code pointer out to memory: 19 instructions
                // of dispatch against 12 now.
                let Some(op) = code.get(pc) else {
                    fail!(EvalError::new(
                        ErrorKind::Value,
                        "internal error: ran past the end of compiled code"
                    ));
                };
                pc += 1;
                match *op {
                    Op::Const(i) => {
                        let v = proto.consts.get(i as usize).cloned().unwrap_or_default();
                        push(&mut self.stack, v);
                    }
                    Op::Nil => push(&mut self.stack, Value::Nil),
                    Op::True => push(&mut self.stack, Value::Bool(true)),
                    Op::False => push(&mut self.stack, Value::Bool(false)),
                    Op::Int(i) => push(&mut self.stack, Value::Int(i64::from(i))),
                    Op::Local(s) => push_slot(&mut self.stack, cur.base + s as usize, false),
                    Op::LocalMove(s) => {
                        let v = std::mem::take(&mut self.stack[cur.base + s as usize]);
                        push(&mut self.stack, v);
                    }
                    Op::Local2 {
                        a,
                        b,
                        move_a,
                        move_b,
                    } => {
                        push_slot(&mut self.stack, cur.base + a as usize, move_a);
                        push_slot(&mut self.stack, cur.base + b as usize, move_b);
                    }
                    Op::SetLocal(s) => {
                        let v = pop!(self);
                        overwrite(&mut self.stack[cur.base + s as usize], v);
                    }
                    Op::Capture(i) => {
                        let v = closure
                            .captures
                            .get(i as usize)
                            .cloned()
                            .unwrap_or_default();
                        push(&mut self.stack, v);
                    }
                    Op::MakeCell(s) => {
                        let slot = &mut self.stack[cur.base + s as usize];
                        let v = std::mem::take(slot);
                        let cell = Rc::new(std::cell::RefCell::new(v));
                        crate::cycles::register(&cell);
                        self.stack[cur.base + s as usize] = Value::Cell(cell);
                    }
                    Op::CellLocal(s) => {
                        let v = match &self.stack[cur.base + s as usize] {
                            Value::Cell(c) => c.borrow().clone(),
                            other => other.clone(),
                        };
                        self.stack.push(v);
                    }
                    Op::SetCellLocal(s) => {
                        let v = pop!(self);
                        match &self.stack[cur.base + s as usize] {
                            Value::Cell(c) => *c.borrow_mut() = v,
                            _ => self.stack[cur.base + s as usize] = v,
                        }
                    }
                    Op::CellCapture(i) => {
                        let v = match closure.captures.get(i as usize) {
                            Some(Value::Cell(c)) => c.borrow().clone(),
                            Some(other) => other.clone(),
                            None => Value::Nil,
                        };
                        self.stack.push(v);
                    }
                    Op::SetCellCapture(i) => {
                        let v = pop!(self);
                        if let Some(Value::Cell(c)) = closure.captures.get(i as usize) {
                            *c.borrow_mut() = v;
                        }
                    }
                    Op::Global(g) => match interp.globals.get(g as usize) {
                        Some(Some(v)) => {
                            let v = v.clone();
                            push(&mut self.stack, v);
                        }
                        _ => fail!(interp.unbound_error(g)),
                    },
                    Op::SetGlobal(g) => {
                        let v = pop!(self);
                        if !matches!(interp.globals.get(g as usize), Some(Some(_))) {
                            fail!(EvalError::new(
                                ErrorKind::Unbound,
                                format!("set!: {} is not defined", interp.global_name(g))
                            ));
                        }
                        interp.set_global(g, v);
                        self.stack.push(Value::Nil);
                    }
                    Op::DefineGlobal(g) => {
                        let v = pop!(self);
                        interp.set_global(g, v);
                        self.stack.push(Value::Nil);
                    }
                    Op::SelfRef => self.stack.push(Value::Closure(closure.clone())),
                    Op::GroupMember(j) => {
                        let member = closure
                            .group
                            .as_ref()
                            .and_then(|g| g.members.get(j as usize).map(|m| (g, m)));
                        let Some((group, (p, caps))) = member else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: bad group member"
                            ));
                        };
                        self.stack.push(Value::Closure(Rc::new(Closure::new(
                            p.clone(),
                            caps.clone(),
                            Some(group.clone()),
                        ))));
                    }
                    Op::Pop => {
                        if let Some(v) = self.stack.pop() {
                            discard(v);
                        }
                    }
                    Op::Jump(t) => pc = t as usize,
                    Op::LoopBack(t) => {
                        try_!(self.tick(interp));
                        pc = t as usize;
                    }
                    Op::SetLocalLoopBack(s, t) => {
                        let v = pop!(self);
                        overwrite(&mut self.stack[cur.base + s as usize], v);
                        try_!(self.tick(interp));
                        pc = t as usize;
                    }
                    Op::JumpIfFalse(t) => match self.stack.pop() {
                        Some(Value::Bool(true)) => {}
                        Some(Value::Bool(false) | Value::Nil) | None => pc = t as usize,
                        Some(v) => {
                            if !v.truthy() {
                                pc = t as usize;
                            }
                        }
                    },
                    Op::JumpIfFalseKeep(t) => {
                        if self.stack.last().is_some_and(Value::truthy) {
                            self.stack.pop();
                        } else {
                            pc = t as usize;
                        }
                    }
                    Op::JumpIfTrueKeep(t) => {
                        if self.stack.last().is_some_and(Value::truthy) {
                            pc = t as usize;
                        } else {
                            self.stack.pop();
                        }
                    }
                    Op::Call(argc) | Op::TailCall(argc) => {
                        let tail = matches!(op, Op::TailCall(_));
                        let argc = argc as usize;
                        let Some(fpos) = self.stack.len().checked_sub(argc + 1) else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: empty stack"
                            ));
                        };
                        let fast = matches!(&self.stack[fpos], Value::Closure(c)
                            if c.arity as usize == argc);
                        if fast {
                            if let Value::Closure(c) = std::mem::take(&mut self.stack[fpos]) {
                                enter_fast!(c, fpos, fpos + 1, tail);
                            }
                        }
                        general_call!(fpos, argc, tail);
                    }
                    Op::ReturnLocal(s) => return_local!(s),
                    Op::Return => ret!(),
                    Op::RenderReturn => {
                        truncate_to(&mut self.stack, cur.ret_to);
                        match self.frames.pop() {
                            Some(mut caller) => {
                                // Rendering the nil returned writes nothing.
                                if let Some(Op::RenderValue) =
                                    caller.closure.proto.code.get(caller.pc)
                                {
                                    caller.pc += 1;
                                } else {
                                    push(&mut self.stack, Value::Nil);
                                }
                                drop(std::mem::replace(&mut cur, caller));
                                continue 'frame;
                            }
                            None => return Ok(Outcome::Done(Value::Nil)),
                        }
                    }
                    Op::ReturnInt(k) => {
                        truncate_to(&mut self.stack, cur.ret_to);
                        push(&mut self.stack, Value::Int(i64::from(k)));
                        match self.frames.pop() {
                            Some(caller) => {
                                drop(std::mem::replace(&mut cur, caller));
                                continue 'frame;
                            }
                            None => return Ok(Outcome::Done(pop!(self))),
                        }
                    }
                    Op::InlineReturn(which) => {
                        if interp.inline_overridden(which) {
                            continue;
                        }
                        let n = self.stack.len();
                        let v = match self.stack.as_slice() {
                            [.., Value::Int(x), Value::Int(y)] => int2_scalar(which, *x, *y),
                            _ => None,
                        };
                        if let Some(v) = v {
                            if cur.ret_to + 2 <= n {
                                // The result goes straight to `cur.ret_to`.
                                truncate_to(&mut self.stack, cur.ret_to + 1);
                                if let Some(slot) = self.stack.get_mut(cur.ret_to) {
                                    v.store(slot);
                                }
                            } else {
                                truncate_to(&mut self.stack, n.saturating_sub(2));
                                push(&mut self.stack, v.value());
                            }
                        } else {
                            let b = pop!(self);
                            let a = pop!(self);
                            let v = try_!(prims::inline2(which, a, b));
                            self.stack.push(v);
                        }
                        ret!();
                    }
                    Op::Closure(i) => {
                        let Some(p) = proto.protos.get(i as usize).cloned() else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: bad proto"
                            ));
                        };
                        let caps = self.gather_captures(closure, cur.base, &p.captures);
                        self.stack
                            .push(Value::Closure(Rc::new(Closure::new(p, caps, None))));
                    }
                    Op::Group(gi) => {
                        let Some(def) = proto.groups.get(gi as usize) else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: bad group"
                            ));
                        };
                        let mut members = Vec::with_capacity(def.members.len());
                        for &(pi, _) in &def.members {
                            let Some(p) = proto.protos.get(pi as usize).cloned() else {
                                fail!(EvalError::new(
                                    ErrorKind::Value,
                                    "internal error: bad proto"
                                ));
                            };
                            let caps = self.gather_captures(closure, cur.base, &p.captures);
                            members.push((p, caps));
                        }
                        let group = Rc::new(Group { members });
                        for (j, &(_, slot)) in def.members.iter().enumerate() {
                            let Some((p, caps)) = group.members.get(j) else {
                                continue;
                            };
                            self.stack[cur.base + slot as usize] = Value::Closure(Rc::new(
                                Closure::new(p.clone(), caps.clone(), Some(group.clone())),
                            ));
                        }
                    }
                    Op::MakeComponent(name, island) => {
                        let v = pop!(self);
                        let Value::Closure(c) = v else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: component needs a closure"
                            ));
                        };
                        let name = match proto.consts.get(name as usize) {
                            Some(Value::Symbol(s)) => *s,
                            _ => Symbol::new("~anonymous"),
                        };
                        self.stack.push(Value::Component(Rc::new(Component {
                            name,
                            closure: c,
                            island,
                        })));
                    }
                    Op::MakeMacro => {
                        let v = pop!(self);
                        match v {
                            Value::Closure(c) => self.stack.push(Value::Macro(c)),
                            other => fail!(EvalError::type_error("defmacro", "a function", &other)),
                        }
                    }
                    Op::PushHandler(t) => self.handlers.push(Handler {
                        // The running frame counts: it is not in `frames` now.
                        frames: self.frames.len() + 1,
                        stack: self.stack.len(),
                        catch_pc: t as usize,
                        render: self.render.len(),
                    }),
                    Op::PopHandler => {
                        self.handlers.pop();
                    }
                    Op::Perform(argc) => {
                        let req = self.take_request(argc);
                        spill!();
                        return Ok(Outcome::Perform(req));
                    }
                    Op::MakeDict(n) => {
                        let at = self.stack.len() - 2 * n as usize;
                        let items: Vec<Value> = self.stack.drain(at..).collect();
                        let d = try_!(prims::dict_from_pairs("dict", items));
                        self.stack.push(d);
                    }
                    Op::MakeElement(tag, nattrs, nchildren) => {
                        let argc = 2 * nattrs as usize + nchildren as usize;
                        if let Some(Value::Str(name)) = proto.consts.get(tag as usize) {
                            if let Some(f) = interp.element_shadow(name) {
                                // The name was bound after this form was
                                // compiled: a bound head is a call.
                                let fpos = self.stack.len() - argc;
                                self.stack.insert(fpos, f);
                                let tail = matches!(code.get(pc), Some(Op::Return));
                                general_call!(fpos, argc, tail);
                            }
                        }
                        // Children straight off the stack (one exact-size
                        // allocation), then the attribute pairs.
                        let at = self.stack.len() - argc;
                        let children = self.stack.split_off(at + 2 * nattrs as usize);
                        let mut attrs = Vec::with_capacity(nattrs as usize);
                        let mut pairs = self.stack.drain(at..);
                        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
                            let name = match k {
                                Value::Keyword(s) | Value::Symbol(s) => s,
                                Value::Str(s) => Symbol::new(&s),
                                _ => continue,
                            };
                            attrs.push((name, v));
                        }
                        drop(pairs);
                        let tag = match proto.consts.get(tag as usize) {
                            Some(Value::Str(s)) => s.clone(),
                            _ => RcStr::from("div"),
                        };
                        self.stack
                            .push(Value::Element(Rc::new(crate::value::Element {
                                tag,
                                attrs,
                                children,
                            })));
                    }
                    Op::Raise => {
                        let v = pop!(self);
                        fail!(EvalError::raised(v));
                    }
                    Op::RenderBegin(t) => {
                        if interp.inline_overridden(Inline::RenderHtml) {
                            pc = t as usize;
                        } else {
                            self.render.push(take_render_buffer());
                        }
                    }
                    Op::RenderEnd => {
                        let Some(buf) = self.render.pop() else {
                            fail!(no_render_buffer());
                        };
                        self.stack.push(Value::Str(RcStr::from(buf.as_str())));
                        keep_render_buffer(buf);
                    }
                    Op::RenderText(i) => {
                        let (Some(buf), Some(Value::Str(text))) =
                            (self.render.last_mut(), proto.consts.get(i as usize))
                        else {
                            fail!(no_render_buffer());
                        };
                        crate::html::push_short(buf, text);
                    }
                    Op::RenderValue => {
                        let v = pop!(self);
                        let Some(buf) = self.render.last_mut() else {
                            fail!(no_render_buffer());
                        };
                        match &v {
                            Value::Nil => {}
                            Value::Str(s) => crate::html::escape_text(s, buf),
                            Value::Int(i) => crate::html::push_int(*i, buf),
                            _ => try_!(crate::html::render_html(&v, buf).map_err(EvalError::from)),
                        }
                    }
                    Op::RenderLocal(s) => {
                        let (Some(buf), Some(v)) = (
                            self.render.last_mut(),
                            self.stack.get(cur.base + s as usize),
                        ) else {
                            fail!(no_render_buffer());
                        };
                        match v {
                            Value::Nil => {}
                            Value::Str(s) => crate::html::escape_text(s, buf),
                            Value::Int(i) => crate::html::push_int(*i, buf),
                            _ => try_!(crate::html::render_html(v, buf).map_err(EvalError::from)),
                        }
                    }
                    Op::RenderAttrText(i) => {
                        let v = pop!(self);
                        let (Some(buf), Some(Value::Str(prefix))) =
                            (self.render.last_mut(), proto.consts.get(i as usize))
                        else {
                            fail!(no_render_buffer());
                        };
                        // Functions (event handlers) are left out; lists,
                        // keywords, floats... by the element renderer's rules.
                        if !crate::html::push_simple_attr(prefix, &v, buf)
                            && !matches!(v, Value::Closure(_) | Value::Native(_))
                        {
                            let name = Symbol::new(prefix.trim_start());
                            try_!(
                                crate::html::render_attribute("", name, &v, buf)
                                    .map_err(EvalError::from)
                            );
                        }
                    }
                    Op::RenderUrlAttr(tag, name) => {
                        let v = pop!(self);
                        let (Some(buf), Some(Value::Str(tag)), Some(Value::Str(name))) = (
                            self.render.last_mut(),
                            proto.consts.get(tag as usize),
                            proto.consts.get(name as usize),
                        ) else {
                            fail!(no_render_buffer());
                        };
                        match &v {
                            // What `render_attribute` does with a string for a
                            // valid URL attribute, without its set-up.
                            Value::Str(s) => {
                                let text = if crate::html::safe_url(tag, name, s) {
                                    s
                                } else {
                                    crate::html::UNSAFE_URL
                                };
                                crate::html::push_attr(name, text, buf);
                            }
                            _ => try_!(
                                crate::html::render_attribute(tag, Symbol::new(name), &v, buf)
                                    .map_err(EvalError::from)
                            ),
                        }
                    }
                    Op::RenderAttr(tag, name) => {
                        let v = pop!(self);
                        let (Some(buf), Some(Value::Str(tag)), Some(Value::Keyword(name))) = (
                            self.render.last_mut(),
                            proto.consts.get(tag as usize),
                            proto.consts.get(name as usize),
                        ) else {
                            fail!(no_render_buffer());
                        };
                        try_!(
                            crate::html::render_attribute(tag, *name, &v, buf)
                                .map_err(EvalError::from)
                        );
                    }
                    Op::ElementGuard(tag, t) => {
                        if !elements_shadowed(interp, proto.consts.get(tag as usize)) {
                            // The usual case: to the markup, with the
                            // `RenderText` of the opening tag there done here.
                            pc = t as usize;
                            if let (Some(Op::RenderText(i)), Some(buf)) =
                                (code.get(pc), self.render.last_mut())
                            {
                                if let Some(Value::Str(text)) = proto.consts.get(*i as usize) {
                                    crate::html::push_short(buf, text);
                                    pc += 1;
                                }
                            }
                        }
                    }
                    Op::CallGlobalRender(g, argc) => {
                        let argc = argc as usize;
                        let callee = match interp.globals.get(g as usize) {
                            Some(Some(v)) => v.clone(),
                            _ => fail!(interp.unbound_error(g)),
                        };
                        let Some(args_at) = self.stack.len().checked_sub(argc) else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: empty stack"
                            ));
                        };
                        let render = match &callee {
                            Value::Closure(c) if c.proto.render_entry != 0 => Some(c.clone()),
                            Value::Component(c) if c.closure.proto.render_entry != 0 => {
                                Some(c.closure.clone())
                            }
                            _ => None,
                        };
                        if let Some(c) = render {
                            // A function of positional parameters whose body
                            // is a template, given as many arguments: written
                            // here, with them where they are.
                            if c.arity as usize == argc
                                && try_!(self.write_body_template(interp, &c.proto, args_at))
                            {
                                // Past the `RenderValue`.
                                pc += 1;
                                continue;
                            }
                            // Straight into the callee's render-mode code,
                            // its arguments where they are (no callee slot).
                            let entry = c.proto.render_entry as usize;
                            try_!(self.tick(interp));
                            spill!();
                            self.enter(c, args_at, argc, args_at)?;
                            if let Some(f) = self.frames.last_mut() {
                                f.pc = entry;
                            }
                            fill!();
                        }
                        // Anything else: an ordinary call, whose value the
                        // `RenderValue` after this renders. (The render-mode
                        // code above returns nil, which renders as nothing.)
                        self.stack.insert(args_at, callee);
                        spill!();
                        self.call(interp, argc)?;
                        fill!();
                    }
                    Op::KeyCallRender(g, k) => {
                        let Some(keys) = proto.call_keys.get(k as usize) else {
                            continue;
                        };
                        let n = keys.len();
                        let Some(args_at) = self.stack.len().checked_sub(n) else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: empty stack"
                            ));
                        };
                        let callee = match interp.globals.get(g as usize) {
                            Some(Some(Value::Component(c))) => Some(&c.closure),
                            Some(Some(Value::Closure(c))) => Some(c),
                            _ => None,
                        };
                        let direct = callee.filter(|c| {
                            let p = &c.proto;
                            p.render_entry != 0
                                && p.nparams == 0
                                && !p.rest
                                && p.keys.as_slice() == &**keys
                        });
                        // `fuel > 1`: this step does not check the budgets
                        // (the plain call's `tick` would refuel).
                        let Some(c) = direct.filter(|_| self.fuel > 1) else {
                            // The plain call's arguments: each keyword before
                            // its value.
                            self.stack.resize(args_at + 2 * n, Value::Nil);
                            for (j, key) in keys.iter().enumerate().rev() {
                                let v = std::mem::take(&mut self.stack[args_at + j]);
                                self.stack[args_at + 2 * j + 1] = v;
                                self.stack[args_at + 2 * j] = Value::Keyword(*key);
                            }
                            continue;
                        };
                        // A component whose body is a template: written
                        // here, with the values where they are.
                        if try_!(self.write_body_template(interp, &c.proto, args_at)) {
                            // Past the plain call and its `RenderValue`.
                            pc += 2;
                            continue;
                        }
                        let c = c.clone();
                        self.steps += 1;
                        self.fuel -= 1;
                        let entry = c.proto.render_entry as usize;
                        let want = args_at + c.nslots as usize;
                        if self.stack.len() != want {
                            self.stack.resize_with(want, Value::default);
                        }
                        // Returns past the plain call, to its `RenderValue`.
                        push(
                            &mut self.frames,
                            Frame {
                                closure: std::mem::replace(&mut cur.closure, c),
                                pc: pc + 1,
                                base: cur.base,
                                ret_to: cur.ret_to,
                            },
                        );
                        cur.pc = entry;
                        cur.base = args_at;
                        cur.ret_to = args_at;
                        continue 'frame;
                    }
                    Op::MapStep(s) => {
                        if interp.inline_overridden(Inline::IsEmpty)
                            || interp.inline_overridden(Inline::Rest)
                        {
                            continue;
                        }
                        let Value::List(l) = &self.stack[cur.base + s as usize] else {
                            continue;
                        };
                        if l.is_empty() {
                            // The plain test leaves the loop.
                            continue;
                        }
                        let tail = l.rest();
                        push(&mut self.stack, Value::List(tail));
                        pc += 8;
                    }
                    Op::MapStepFirst(s, x) => {
                        if interp.inline_overridden(Inline::IsEmpty)
                            || interp.inline_overridden(Inline::Rest)
                            || interp.inline_overridden(Inline::First)
                        {
                            continue;
                        }
                        let Value::List(l) = &self.stack[cur.base + s as usize] else {
                            continue;
                        };
                        let (Some(item), tail) = (l.first().cloned(), l.rest()) else {
                            continue;
                        };
                        push(&mut self.stack, Value::List(tail));
                        overwrite(&mut self.stack[cur.base + x as usize], item);
                        pc += 12;
                    }
                    Op::RenderEach(s, t) => {
                        let Some(each) = proto.templates.get(t as usize) else {
                            continue;
                        };
                        if !each.body.intact(interp) {
                            continue;
                        }
                        let index = match each.index {
                            Some(x) => match self.stack.get(cur.base + x as usize) {
                                Some(&Value::Int(i)) => i,
                                _ => continue,
                            },
                            None => 0,
                        };
                        let limit = self.template_room(interp);
                        let at = cur.base + s as usize;
                        let (Some(buf), Some(Value::List(list)), Some(values)) = (
                            self.render.last_mut(),
                            self.stack.get(at),
                            self.stack.get(cur.base..),
                        ) else {
                            continue;
                        };
                        let (rest, written, used) =
                            each.body.render_items(list, values, index, buf, limit);
                        if written > 0 {
                            // The slots are set once, to what is left.
                            let left = Value::List(rest.clone());
                            overwrite(&mut self.stack[at], left);
                            if let Some(x) = each.index {
                                let next = Value::Int(index.saturating_add(i64::from(written)));
                                overwrite(&mut self.stack[cur.base + x as usize], next);
                            }
                            try_!(self.spend(interp, used));
                        }
                    }
                    Op::LocalGetKw { slot, key, moved } => {
                        // `fuel > 1`: this step does not check the budgets
                        // (the call's `tick` would refuel).
                        if interp.inline_overridden(Inline::Get) || self.fuel <= 1 {
                            continue;
                        }
                        let at = cur.base + slot as usize;
                        let v = match (&self.stack[at], proto.dict_keys.get(key as usize)) {
                            (Value::Dict(d), Some(k)) => {
                                d.get_keyword(k).cloned().unwrap_or_default()
                            }
                            _ => continue,
                        };
                        self.steps += 1;
                        self.fuel -= 1;
                        if moved {
                            drop(std::mem::take(&mut self.stack[at]));
                        }
                        push(&mut self.stack, v);
                        pc += 3;
                    }
                    Op::RenderLocalGetKw { slot, key, moved } => {
                        if interp.inline_overridden(Inline::Get) || self.fuel <= 1 {
                            continue;
                        }
                        let at = cur.base + slot as usize;
                        let (Value::Dict(d), Some(k), Some(buf)) = (
                            &self.stack[at],
                            proto.dict_keys.get(key as usize),
                            self.render.last_mut(),
                        ) else {
                            continue;
                        };
                        match d.get_keyword(k) {
                            None | Some(Value::Nil) => {}
                            Some(Value::Str(s)) => crate::html::escape_text(s, buf),
                            Some(Value::Int(i)) => crate::html::push_int(*i, buf),
                            // Anything else through `RenderValue`.
                            Some(_) => continue,
                        }
                        self.steps += 1;
                        self.fuel -= 1;
                        if moved {
                            drop(std::mem::take(&mut self.stack[at]));
                        }
                        pc += 4;
                    }
                    Op::RenderStrAttr(argc) => {
                        if interp.inline_overridden(Inline::Str) || self.fuel <= 1 {
                            continue;
                        }
                        // The attribute's name as its op writes it (`code[pc]`
                        // is the `CallGlobal` of `str`).
                        let (space, name) = match code.get(pc + 1) {
                            Some(Op::RenderAttrText(i)) => ("", proto.consts.get(*i as usize)),
                            Some(Op::RenderUrlAttr(_, i)) => (" ", proto.consts.get(*i as usize)),
                            _ => continue,
                        };
                        let at = self.stack.len().saturating_sub(argc as usize);
                        let (Some(Value::Str(name)), Some(pieces), Some(buf)) =
                            (name, self.stack.get(at..), self.render.last_mut())
                        else {
                            continue;
                        };
                        if !pieces
                            .iter()
                            .all(|v| matches!(v, Value::Str(_) | Value::Int(_)))
                        {
                            continue;
                        }
                        buf.push_str(space);
                        crate::html::push_short(buf, name);
                        buf.push_str("=\"");
                        for piece in pieces {
                            match piece {
                                Value::Str(s) => crate::html::escape_attr(s, buf),
                                Value::Int(i) => crate::html::push_int(*i, buf),
                                _ => {}
                            }
                        }
                        buf.push('"');
                        truncate_to(&mut self.stack, at);
                        self.steps += 1;
                        self.fuel -= 1;
                        pc += 2;
                    }
                    Op::AddLocalInt(which, s, k) => {
                        if interp.inline_overridden(which) {
                            continue;
                        }
                        if let Value::Int(x) = self.stack[cur.base + s as usize] {
                            if let Some(r) = x.checked_add(i64::from(k)) {
                                push(&mut self.stack, Value::Int(r));
                                pc += 3;
                            }
                        }
                        // Otherwise the fallback computes it (or the error).
                    }
                    Op::LocalInt(which, s, k) => {
                        if interp.inline_overridden(which) {
                            continue;
                        }
                        if let Value::Int(x) = self.stack[cur.base + s as usize] {
                            if let Some(v) = int2(which, x, i64::from(k)) {
                                push(&mut self.stack, v);
                                pc += 3;
                            }
                        }
                    }
                    Op::LocalLocal(which, a, b) => {
                        if interp.inline_overridden(which) {
                            continue;
                        }
                        let x = &self.stack[cur.base + a as usize];
                        let y = &self.stack[cur.base + b as usize];
                        if let (Value::Int(x), Value::Int(y)) = (x, y) {
                            if let Some(v) = int2(which, *x, *y) {
                                push(&mut self.stack, v);
                                pc += 3;
                            }
                        }
                    }
                    Op::JumpUnlessLocalLocal {
                        which,
                        a,
                        b,
                        negate,
                        target,
                    } => {
                        if interp.inline_overridden(which)
                            || (negate && interp.inline_overridden(Inline::Not))
                        {
                            continue;
                        }
                        let x = &self.stack[cur.base + a as usize];
                        let y = &self.stack[cur.base + b as usize];
                        if let (Value::Int(x), Value::Int(y)) = (x, y) {
                            if int_cmp(which, *x, *y) != negate {
                                pc += if negate { 5 } else { 4 };
                            } else {
                                pc = target as usize;
                            }
                        }
                    }
                    Op::JumpUnlessLocalInt(which, s, k, target) => {
                        if interp.inline_overridden(which) {
                            continue;
                        }
                        if let Value::Int(x) = self.stack[cur.base + s as usize] {
                            if int_cmp(which, x, i64::from(k)) {
                                pc += 4;
                            } else {
                                pc = target as usize;
                            }
                        }
                    }
                    Op::LocalUnary(which, s) => {
                        if interp.inline_overridden(which) {
                            continue;
                        }
                        let slot = &self.stack[cur.base + s as usize];
                        // `first` and `rest` of a list spelled out: through
                        // `unary_in_place`'s `Result` the value was stored
                        // in pieces and reloaded whole, a store-forwarding
                        // stall on every list step of a loop.
                        match (which, slot) {
                            (Inline::First, Value::List(l)) => match l.first() {
                                // An integer item written as one, not
                                // through `clone`'s returned temporary (a
                                // stall again).
                                Some(Value::Int(i)) => {
                                    let i = *i;
                                    push(&mut self.stack, Value::Int(i));
                                }
                                Some(Value::Symbol(x)) => {
                                    let x = *x;
                                    push(&mut self.stack, Value::Symbol(x));
                                }
                                Some(Value::List(x)) => {
                                    let x = x.clone();
                                    push(&mut self.stack, Value::List(x));
                                }
                                Some(Value::Str(x)) => {
                                    let x = x.clone();
                                    push(&mut self.stack, Value::Str(x));
                                }
                                Some(v) => {
                                    let v = v.clone();
                                    push(&mut self.stack, v);
                                }
                                None => push(&mut self.stack, Value::Nil),
                            },
                            (Inline::IsEmpty, Value::List(l)) => {
                                let b = l.is_empty();
                                push(&mut self.stack, Value::Bool(b));
                            }
                            (Inline::Rest, Value::List(l)) => {
                                let tail = l.rest();
                                push(&mut self.stack, Value::List(tail));
                            }
                            _ => {
                                let v = try_!(unary_in_place(which, slot));
                                push(&mut self.stack, v);
                            }
                        }
                        pc += 2;
                    }
                    Op::JumpUnlessLocalUnary(which, s, target, negate) => {
                        if interp.inline_overridden(which)
                            || (negate && interp.inline_overridden(Inline::Not))
                        {
                            continue;
                        }
                        let slot = &self.stack[cur.base + s as usize];
                        // The usual tests decided as a `bool`, with no
                        // result value built and dropped through a call.
                        let t = match (which, slot) {
                            (Inline::IsEmpty, Value::List(l)) => l.is_empty(),
                            (Inline::IsList, v) => matches!(v, Value::List(_)),
                            _ => try_!(unary_in_place(which, slot)).truthy(),
                        };
                        pc = if t != negate {
                            pc + 3 + usize::from(negate)
                        } else {
                            target as usize
                        };
                    }
                    Op::JumpUnlessLocalIsConst(s, k, target) => {
                        if interp.inline_overridden(Inline::Eq) {
                            continue;
                        }
                        let x = self.stack.get(cur.base + s as usize);
                        if let Some(t) = is_const_atom(x, proto.consts.get(k as usize)) {
                            pc = if t { pc + 4 } else { target as usize };
                        }
                    }
                    Op::JumpUnlessCmp(which, target) => {
                        if interp.inline_overridden(which) {
                            continue;
                        }
                        // Two integers, or `=` of two symbols or keywords:
                        // decided on the stack top (nothing to drop).
                        let n = self.stack.len();
                        let fast = match self.stack.get(n.wrapping_sub(2)..) {
                            Some([a, b]) => cmp_atoms(which, a, b),
                            _ => None,
                        };
                        let truth = if let Some(t) = fast {
                            // Atoms hold nothing to drop: `truncate` here
                            // called the slice's drop glue out of line,
                            // 6% of nqueens.
                            crate::push::forget_last(&mut self.stack);
                            crate::push::forget_last(&mut self.stack);
                            t
                        } else {
                            let b = pop!(self);
                            let a = pop!(self);
                            try_!(prims::inline2(which, a, b)).truthy()
                        };
                        pc = if truth { pc + 2 } else { target as usize };
                    }
                    Op::CallGlobal(g, argc) | Op::TailCallGlobal(g, argc) => {
                        let tail = matches!(op, Op::TailCallGlobal(..));
                        let argc = argc as usize;
                        let callee = match interp.globals.get(g as usize) {
                            Some(Some(v)) => v,
                            _ => fail!(interp.unbound_error(g)),
                        };
                        let Some(args_at) = self.stack.len().checked_sub(argc) else {
                            fail!(EvalError::new(
                                ErrorKind::Value,
                                "internal error: empty stack"
                            ));
                        };
                        match callee {
                            Value::Closure(c)
                                if tail
                                    && c.arity as usize == argc
                                    && Rc::ptr_eq(c, &cur.closure) =>
                            {
                                // A loop (a function calling itself in tail
                                // position): the frame starts over where
                                // `enter_fast!` would put it, with no closure
                                // to swap and no code to look up again.
                                try_!(self.tick(interp));
                                slide_down(&mut self.stack, cur.ret_to, args_at);
                                let want = cur.ret_to + closure.nslots as usize;
                                if self.stack.len() != want {
                                    self.stack.resize_with(want, Value::default);
                                }
                                cur.base = cur.ret_to;
                                pc = 0;
                            }
                            Value::Closure(c) if c.arity as usize == argc => {
                                let c = c.clone();
                                enter_fast!(c, args_at, args_at, tail);
                            }
                            Value::Native(n)
                                if n.special == Special::None
                                    && argc as u16 >= n.min_args
                                    && n.max_args.is_none_or(|m| argc as u16 <= m) =>
                            {
                                // Natives run on the arguments in place: no callee slot.
                                let f = n.f;
                                try_!(self.tick(interp));
                                let result = try_!(f(interp, &mut self.stack[args_at..]));
                                self.stack.truncate(args_at);
                                push(&mut self.stack, result);
                                if tail {
                                    ret!();
                                }
                            }
                            other => {
                                let callee = other.clone();
                                self.stack.insert(args_at, callee);
                                spill!();
                                if tail {
                                    if let Some(out) = self.tail_call(interp, args_at, argc)? {
                                        return Ok(out);
                                    }
                                } else {
                                    self.call(interp, argc)?;
                                }
                                fill!();
                            }
                        }
                    }
                    Op::Inline(which, argc) => {
                        if interp.inline_overridden(which) {
                            // Redefined by the program: call whatever it is now.
                            let callee = interp.inline_global(which);
                            let at = self.stack.len().saturating_sub(argc as usize);
                            self.stack.insert(at, callee);
                            spill!();
                            self.call(interp, argc as usize)?;
                            fill!();
                        } else if let (2, [.., Value::Int(x), Value::Int(y)]) =
                            (argc, self.stack.as_slice())
                        {
                            // Both integers: compute in place on the stack top.
                            let (x, y) = (*x, *y);
                            let v = match int2(which, x, y) {
                                Some(v) => v,
                                None => try_!(prims::inline2(which, Value::Int(x), Value::Int(y))),
                            };
                            if let Some(y) = self.stack.pop() {
                                discard(y);
                            }
                            if let Some(top) = self.stack.last_mut() {
                                overwrite(top, v);
                            }
                        } else if argc == 1
                            && matches!(
                                which,
                                Inline::Not | Inline::IsNil | Inline::IsEmpty | Inline::IsList
                            )
                        {
                            // Predicates replace the stack top in place.
                            let Some(top) = self.stack.last_mut() else {
                                fail!(EvalError::new(
                                    ErrorKind::Value,
                                    "internal error: empty stack"
                                ));
                            };
                            let v = try_!(unary_in_place(which, top));
                            *top = v;
                        } else {
                            let r = if argc == 1 {
                                let a = pop!(self);
                                prims::inline1(which, a)
                            } else {
                                let b = pop!(self);
                                let a = pop!(self);
                                prims::inline2(which, a, b)
                            };
                            let v = try_!(r);
                            self.stack.push(v);
                        }
                    }
                }
            }
        }
    }

    /// Calls the callee at `fpos` in tail position: a closure replaces the
    /// running frame; anything else is called and its value returned from
    /// this frame. `Some` when that finished the machine.
    fn tail_call(
        &mut self,
        interp: &mut Interp,
        fpos: usize,
        argc: usize,
    ) -> Result<Option<Outcome>> {
        let argc = self.unwrap_special(interp, fpos, argc)?;
        if matches!(&self.stack[fpos], Value::Closure(_) | Value::Component(_)) {
            // Slide callee and arguments down over this frame; the caller's
            // pc was saved when it called us.
            let ret_to = self.frames.last().map_or(0, |f| f.ret_to);
            slide_down(&mut self.stack, ret_to, fpos);
            self.frames.pop();
        }
        match self.call(interp, argc)? {
            Entered::Frame => Ok(None),
            Entered::Value => Ok(self.do_return()),
        }
    }

    /// Pops the running frame, leaving its result for the caller; `Some`
    /// when that was the outermost frame.
    fn do_return(&mut self) -> Option<Outcome> {
        let result = pop!(self);
        let frame = self.frames.pop()?;
        self.stack.truncate(frame.ret_to);
        if self.frames.is_empty() {
            return Some(Outcome::Done(result));
        }
        self.stack.push(result);
        None
    }

    fn gather_captures(
        &self,
        closure: &Rc<Closure>,
        base: usize,
        from: &[CaptureFrom],
    ) -> Rc<[Value]> {
        from.iter()
            .map(|c| match *c {
                CaptureFrom::Slot(s) => self
                    .stack
                    .get(base + s as usize)
                    .cloned()
                    .unwrap_or_default(),
                CaptureFrom::Capture(i) => closure
                    .captures
                    .get(i as usize)
                    .cloned()
                    .unwrap_or_default(),
                CaptureFrom::SelfRef => Value::Closure(closure.clone()),
                CaptureFrom::GroupMember(j) => match closure
                    .group
                    .as_ref()
                    .and_then(|g| g.members.get(j as usize).map(|m| (g, m)))
                {
                    Some((g, (p, caps))) => Value::Closure(Rc::new(Closure::new(
                        p.clone(),
                        caps.clone(),
                        Some(g.clone()),
                    ))),
                    None => Value::Nil,
                },
            })
            .collect()
    }
}

/// Moves `stack[from..]` down to start at `to`, dropping what was between
/// (a tail call replacing its caller's frame). Out of line, so that the
/// machine's code does not change with it.
#[inline(never)]
fn slide_down(stack: &mut Vec<Value>, to: usize, from: usize) {
    crate::push::slide_down(stack, to, from, discard);
}

/// Pushes the value of stack slot `i`: copied, or moved out when `take` is
/// set. An integer is pushed as a new `Value::Int` built at the push, so it
/// is stored directly rather than through a temporary (see `push`).
#[inline(always)]
fn push_slot(stack: &mut Vec<Value>, i: usize, take: bool) {
    match stack[i] {
        Value::Int(n) => push(stack, Value::Int(n)),
        _ => push_slot_other(stack, i, take),
    }
}

/// `push_slot` of anything but an integer (a clone is a call anyway).
#[inline(never)]
fn push_slot_other(stack: &mut Vec<Value>, i: usize, take: bool) {
    let Some(slot) = stack.get_mut(i) else {
        return push(stack, Value::Nil);
    };
    let v = if take {
        std::mem::take(slot)
    } else {
        slot.clone()
    };
    push(stack, v);
}

const _: () = {
    let mut i = 0;
    while i < Inline::ALL.len() {
        assert!(Inline::ALL[i] as usize == i);
        i += 1;
    }
};

/// Drops the values above `to`, one pop each: cheaper than `Vec::truncate`
/// (a call into the slice's drop) for the few values a frame leaves.
#[inline(always)]
fn truncate_to(stack: &mut Vec<Value>, to: usize) {
    while stack.len() > to {
        // An immediate is dropped by its tag alone: popping it whole could
        // load the value just stored in pieces (a store-forwarding stall).
        if stack.last().is_some_and(is_immediate) {
            crate::push::forget_last(stack);
        } else if let Some(v) = stack.pop() {
            drop(v);
        }
    }
}

/// A value with nothing to drop (numbers, booleans, nil, symbols).
#[inline(always)]
fn is_immediate(v: &Value) -> bool {
    matches!(
        v,
        Value::Nil
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Symbol(_)
            | Value::Keyword(_)
    )
}

/// Drops a value, skipping the call into the drop glue for immediates
/// (numbers, booleans, nil, symbols), which hold nothing.
#[inline(always)]
fn discard(v: Value) {
    match v {
        Value::Nil
        | Value::Bool(_)
        | Value::Int(_)
        | Value::Float(_)
        | Value::Symbol(_)
        | Value::Keyword(_) => std::mem::forget(v),
        _ => drop(v),
    }
}

/// Stores `v` in `slot`, dropping the old value as [`discard`] does.
#[inline(always)]
fn overwrite(slot: &mut Value, v: Value) {
    discard(std::mem::replace(slot, v));
}

/// An integer operation of the inlined builtins; `None` for a non-integer
/// result or overflow (the generic primitive then reports the error).
#[inline(always)]
fn int2(which: Inline, x: i64, y: i64) -> Option<Value> {
    match which {
        Inline::Add => x.checked_add(y).map(Value::Int),
        Inline::Sub => x.checked_sub(y).map(Value::Int),
        Inline::Mul => x.checked_mul(y).map(Value::Int),
        Inline::Lt => Some(Value::Bool(x < y)),
        Inline::Gt => Some(Value::Bool(x > y)),
        Inline::Le => Some(Value::Bool(x <= y)),
        Inline::Ge => Some(Value::Bool(x >= y)),
        Inline::Eq => Some(Value::Bool(x == y)),
        Inline::Mod if y != 0 => Some(Value::Int(crate::prims::arith::int_mod(x, y))),
        _ => None,
    }
}

/// An integer operation's result as plain scalars. A `Value` computed in
/// one place (a match over the operation) and stored in another goes
/// through a temporary that the store then reads back with wider loads
/// than wrote it, a store-forwarding stall (see `push`); `store` writes
/// each kind of result into its slot directly.
#[derive(Clone, Copy)]
enum Scalar {
    Int(i64),
    Bool(bool),
}

impl Scalar {
    #[inline(always)]
    fn value(self) -> Value {
        match self {
            Scalar::Int(i) => Value::Int(i),
            Scalar::Bool(b) => Value::Bool(b),
        }
    }

    /// Stores the result in `slot`, dropping the old value as [`overwrite`] does.
    #[inline(always)]
    fn store(self, slot: &mut Value) {
        match self {
            Scalar::Int(i) => overwrite(slot, Value::Int(i)),
            Scalar::Bool(b) => overwrite(slot, Value::Bool(b)),
        }
    }
}

/// [`int2`] as a [`Scalar`].
#[inline(always)]
fn int2_scalar(which: Inline, x: i64, y: i64) -> Option<Scalar> {
    match which {
        Inline::Add => x.checked_add(y).map(Scalar::Int),
        Inline::Sub => x.checked_sub(y).map(Scalar::Int),
        Inline::Mul => x.checked_mul(y).map(Scalar::Int),
        Inline::Lt | Inline::Gt | Inline::Le | Inline::Ge | Inline::Eq => {
            Some(Scalar::Bool(int_cmp(which, x, y)))
        }
        _ => None,
    }
}

/// An integer comparison (`which` must be one): its number is its truth
/// table, bit 0, 1 or 2 for less, equal or greater, so no branch per op.
#[inline(always)]
fn int_cmp(which: Inline, x: i64, y: i64) -> bool {
    let ord = u8::from(x > y) * 2 + u8::from(x == y);
    ((which as u8) >> ord) & 1 != 0
}

/// A comparison of two integers, or `=` of two symbols or two keywords
/// (interned: the same name is the same number); `None` for anything
/// else, which the general comparison decides.
#[inline(always)]
fn cmp_atoms(which: Inline, a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(int_cmp(which, *x, *y)),
        (Value::Symbol(x), Value::Symbol(y)) | (Value::Keyword(x), Value::Keyword(y))
            if which == Inline::Eq =>
        {
            Some(x == y)
        }
        _ => None,
    }
}

/// `(= x k)` for a symbol or keyword constant `k`, when that is decided
/// without the general `=`; `None` sends the caller to its fallback. Out
/// of line: inlined, it perturbed `execute`'s code for fib and tak.
#[inline(never)]
fn is_const_atom(x: Option<&Value>, k: Option<&Value>) -> Option<bool> {
    match (x?, k?) {
        (Value::Symbol(a), Value::Symbol(b)) | (Value::Keyword(a), Value::Keyword(b)) => {
            Some(a == b)
        }
        // Never equal to a symbol or keyword.
        (
            Value::Nil
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Str(_)
            | Value::Symbol(_)
            | Value::Keyword(_),
            Value::Symbol(_) | Value::Keyword(_),
        ) => Some(false),
        _ => None,
    }
}

/// `first`, `rest`, `empty?`, `nil?`, `not` of a value borrowed from its
/// slot: no clone of the list itself.
#[inline(always)]
fn unary_in_place(which: Inline, v: &Value) -> Result<Value> {
    match (which, v) {
        (Inline::First, Value::List(l)) => Ok(l.first().cloned().unwrap_or_default()),
        (Inline::Rest, Value::List(l)) => Ok(Value::List(l.rest())),
        (Inline::IsEmpty, Value::List(l)) => Ok(Value::Bool(l.is_empty())),
        (Inline::IsNil, v) => Ok(Value::Bool(v.is_nil())),
        (Inline::IsList, v) => Ok(Value::Bool(matches!(v, Value::List(_)))),
        (Inline::Not, v) => Ok(Value::Bool(!v.truthy())),
        (op, v) => prims::inline1(op, v.clone()),
    }
}

fn missing_key_value(p: &Proto, k: Option<Symbol>) -> EvalError {
    let k = k.map_or_else(String::new, |k| k.as_str().to_owned());
    EvalError::new(
        ErrorKind::Arity,
        format!("{}: keyword argument :{k} has no value", proto_name(p)),
    )
}

fn unexpected_argument(p: &Proto, v: &Value) -> EvalError {
    EvalError::new(
        ErrorKind::Arity,
        format!(
            "{}: unexpected argument {} (keys accepted: {})",
            proto_name(p),
            crate::printer::display(v)
                .chars()
                .take(40)
                .collect::<String>(),
            p.keys
                .iter()
                .map(|k| format!(":{k}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )
}

fn proto_name(p: &Proto) -> &'static str {
    p.name.map_or("<lambda>", Symbol::as_str)
}

fn arity_error(p: &Proto, argc: usize) -> EvalError {
    let expected = if p.simple() {
        p.nparams.to_string()
    } else {
        format!("at least {}", p.nparams)
    };
    EvalError::arity(proto_name(p), &expected, argc)
}

fn frame_location(f: &Frame) -> Option<source::Location> {
    let positions = &f.closure.proto.positions;
    let at = f.pc.saturating_sub(1);
    // Walk back to the nearest instruction that has a position.
    let pos = (0..=at)
        .rev()
        .filter_map(|i| positions.get(i))
        .find(|p| !p.is_none())
        .copied()
        .unwrap_or(f.closure.proto.pos);
    source::locate(pos)
}
