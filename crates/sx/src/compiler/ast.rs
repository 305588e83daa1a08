//! The compiler's intermediate tree: forms with special forms recognised,
//! macros expanded and variables resolved.

use std::rc::Rc;

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
        tag: Rc<str>,
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
}
