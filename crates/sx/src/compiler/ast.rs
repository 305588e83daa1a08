//! The compiler's intermediate tree: forms with special forms recognised,
//! macros expanded and variables resolved.

use crate::rcstr::RcStr;

use crate::source::Pos;
use crate::symbol::Symbol;
use crate::value::Value;
use crate::vm::Inline;

pub(crate) type BindingId = usize;
pub(crate) type FuncId = usize;
pub(crate) type GroupId = usize;

#[derive(Debug)]
pub(crate) struct Binding {
    pub name: Symbol,
    pub func: FuncId,
    pub slot: u16,
    /// Referenced from a function other than its owner.
    pub captured: bool,
    /// Target of `set!`.
    pub mutated: bool,
    /// Bound by `letrec`/internal `define` but not a group member: inner
    /// functions may see it before it is initialised, so if captured it
    /// lives in a cell.
    pub forward: bool,
    /// Member `index` of a letrec group.
    pub group: Option<(GroupId, u16)>,
}

impl Binding {
    pub fn needs_cell(&self) -> bool {
        self.captured && (self.mutated || self.forward)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Func {
    pub name: Option<Symbol>,
    pub nparams: u16,
    pub keys: Vec<Symbol>,
    pub rest: bool,
    /// Parameters in slot order (positional, keys, rest).
    pub params: Vec<BindingId>,
    pub nslots: u16,
    /// Bindings of enclosing functions this one captures, in capture order.
    pub captures: Vec<BindingId>,
    /// `captures` as a set, for the compiler's lookups.
    pub captured: rustc_hash::FxHashSet<BindingId>,
    /// This function is member `index` of a group.
    pub member_of: Option<(GroupId, u16)>,
    pub pos: Pos,
}

#[derive(Debug)]
pub(crate) enum Expr {
    Const(Value),
    /// A variable of the running function or an enclosing one.
    Var(BindingId),
    Global(Symbol),
    SetVar(BindingId, Box<Expr>),
    SetGlobal(Symbol, Box<Expr>),
    DefineGlobal(Symbol, Box<Expr>),
    /// Initialise a binding of the running function (let, define).
    Init(BindingId, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Evaluate in order; the value is the last one's.
    Seq(Vec<Expr>),
    /// Bindings (of the running function) to turn into cells before `body`.
    Cells(Vec<BindingId>, Box<Expr>),
    Lambda(FuncId, Box<Expr>),
    /// A letrec group: member functions and the bindings they are stored in.
    Group(Vec<(BindingId, FuncId, Expr)>),
    Call(Box<Expr>, Vec<Expr>, Pos),
    Inline(Inline, Vec<Expr>, Pos),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Try {
        body: Box<Expr>,
        catch: Option<(BindingId, Box<Expr>)>,
        finally: Option<(BindingId, Box<Expr>)>,
        pos: Pos,
    },
    Perform(Vec<Expr>, Pos),
    Dict(Vec<(Value, Expr)>, Pos),
    Element {
        tag: RcStr,
        attrs: Vec<(Value, Expr)>,
        children: Vec<Expr>,
        pos: Pos,
    },
    Component {
        name: Symbol,
        island: bool,
        func: Box<Expr>,
    },
    Macro(Box<Expr>),
    /// A named let run as a loop in the running function's frame (see
    /// `Expander::named_loop`): `params` are set from `inits`, then `body`
    /// runs; each `Recur` of this `id` (only ever in a tail position of
    /// `body`) sets them anew and jumps back.
    Loop {
        id: usize,
        params: Vec<BindingId>,
        inits: Vec<Expr>,
        body: Box<Expr>,
    },
    /// The named let's name called in a tail position of its body.
    Recur(usize, Vec<Expr>, Pos),
}

impl Expr {
    /// Whether every `Recur` of loop `id` in `self` is in a tail position
    /// relative to that loop, given whether `self` itself is. (A nested
    /// loop's own `Recur`s were checked when it was made; a tail position
    /// of its body is a tail position of the nested loop.)
    pub fn recurs_in_tail(&self, id: usize, tail: bool) -> bool {
        match self {
            Expr::Recur(target, args, _) => {
                (tail || *target != id) && args.iter().all(|a| a.recurs_in_tail(id, false))
            }
            Expr::If(t, a, b) => {
                t.recurs_in_tail(id, false)
                    && a.recurs_in_tail(id, tail)
                    && b.recurs_in_tail(id, tail)
            }
            Expr::Seq(items) => {
                let n = items.len();
                items.iter().enumerate().all(|(i, x)| {
                    let last = i + 1 == n && !matches!(x, Expr::Init(..) | Expr::Group(_));
                    x.recurs_in_tail(id, tail && last)
                })
            }
            Expr::Cells(_, body) => body.recurs_in_tail(id, tail),
            Expr::Loop { inits, body, .. } => {
                inits.iter().all(|x| x.recurs_in_tail(id, false)) && body.recurs_in_tail(id, tail)
            }
            Expr::Const(_) | Expr::Var(_) | Expr::Global(_) | Expr::Lambda(..) => true,
            Expr::SetVar(_, v)
            | Expr::SetGlobal(_, v)
            | Expr::DefineGlobal(_, v)
            | Expr::Init(_, v)
            | Expr::Macro(v) => v.recurs_in_tail(id, false),
            Expr::Component { func, .. } => func.recurs_in_tail(id, false),
            Expr::Group(members) => members.iter().all(|(_, _, x)| x.recurs_in_tail(id, false)),
            Expr::Call(f, args, _) => {
                f.recurs_in_tail(id, false) && args.iter().all(|a| a.recurs_in_tail(id, false))
            }
            Expr::Inline(_, xs, _) | Expr::And(xs) | Expr::Or(xs) | Expr::Perform(xs, _) => {
                xs.iter().all(|x| x.recurs_in_tail(id, false))
            }
            Expr::Try {
                body,
                catch,
                finally,
                ..
            } => {
                body.recurs_in_tail(id, false)
                    && catch
                        .as_ref()
                        .is_none_or(|(_, h)| h.recurs_in_tail(id, false))
                    && finally
                        .as_ref()
                        .is_none_or(|(_, h)| h.recurs_in_tail(id, false))
            }
            Expr::Dict(entries, _) => entries.iter().all(|(_, x)| x.recurs_in_tail(id, false)),
            Expr::Element {
                attrs, children, ..
            } => {
                attrs.iter().all(|(_, x)| x.recurs_in_tail(id, false))
                    && children.iter().all(|x| x.recurs_in_tail(id, false))
            }
        }
    }
}
