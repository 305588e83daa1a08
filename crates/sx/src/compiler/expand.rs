//! Pass 1: forms to [`Expr`] — macros expanded, special forms recognised,
//! variables resolved to bindings.

use crate::rcstr::RcStr;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::rc::Rc;

use super::ast::{Binding, BindingId, Expr, Func, FuncId, GroupId};
use crate::elements;
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::source::{self, Pos};
use crate::symbol::Symbol;
use crate::value::{List, Value};
use crate::vm::Inline;

/// The result of pass 1 for one top-level form (function 0).
pub(crate) struct Program {
    pub funcs: Vec<Func>,
    pub bindings: Vec<Binding>,
    pub body: Expr,
}

/// How deeply forms may nest before compiling refuses (the compiler recurses
/// on nesting; `stacker` grows the native stack, this bounds memory).
const MAX_NESTING: usize = 100_000;

pub(crate) fn expand_toplevel(interp: &mut Interp, form: &Value) -> Result<Program> {
    let mut x = Expander {
        interp,
        funcs: vec![Func {
            name: Some(Symbol::new("<toplevel>")),
            pos: pos_of(form),
            ..Func::default()
        }],
        bindings: Vec::new(),
        func_stack: vec![0],
        scope: Scope::default(),
        ngroups: 0,
        nesting: 0,
        loops: Vec::new(),
        loop_of: FxHashMap::default(),
        func_level: vec![0],
        nloops: 0,
        no_hof: 0,
        started: std::time::Instant::now(),
        heap_start: crate::alloc::thread_net_bytes(),
        expansions: 0,
        last_macro: None,
        work: 0,
    };
    let body = x.expr(form, pos_of(form), Ctx::Toplevel)?;
    Ok(Program {
        funcs: x.funcs,
        bindings: x.bindings,
        body,
    })
}

fn pos_of(v: &Value) -> Pos {
    match v {
        Value::List(l) => l.pos(),
        _ => Pos::NONE,
    }
}

/// Where a form stands: at top level (a `define` is global) or elsewhere.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Toplevel,
    Inner,
}

struct Expander<'a> {
    interp: &'a mut Interp,
    funcs: Vec<Func>,
    bindings: Vec<Binding>,
    /// The functions being expanded, outermost first.
    func_stack: Vec<FuncId>,
    /// Visible local names.
    scope: Scope,
    ngroups: usize,
    nesting: usize,
    /// Named lets being tried as loops, innermost last.
    loops: Vec<LoopTry>,
    /// The index in `loops` of each named let's name. This and the two
    /// below keep a reference to a variable from costing time in the
    /// nesting depth (so does `Func::captured`): hostile or runaway code
    /// nests 100,000 deep.
    loop_of: FxHashMap<BindingId, usize>,
    /// Where each function is in `func_stack` while it is there.
    func_level: Vec<usize>,
    nloops: usize,
    /// Expanding the fallback copy of an inlined higher-order call: calls
    /// in it are not inlined again (one extra copy per nesting level, not
    /// twice the code per level).
    no_hof: usize,
    /// When expanding began, and the macro expansions made since: a
    /// macro that expands into a call of itself runs until the time
    /// budget ends it (see `Expander::spend`).
    started: std::time::Instant,
    /// `alloc::thread_net_bytes` when expanding began: what compiling has
    /// kept since counts against a per-machine heap budget.
    heap_start: isize,
    expansions: u32,
    /// The macro expanded last, named when a budget runs out.
    last_macro: Option<Symbol>,
    /// Expressions compiled and macro expansions made, which the budgets
    /// are checked against every [`CHECK_EVERY`].
    work: u32,
}

/// The error of a function out of slots, the one error a named let tried
/// as a loop (in its enclosing function's slots) recovers from by
/// becoming a function of its own.
const TOO_MANY_LOCALS: &str = "too many local variables in one function (65535)";

/// How much compiling (expressions compiled, macro expansions) goes by
/// between looks at the clock and the heap: a look costs about as much as
/// compiling a small expression.
const CHECK_EVERY: u32 = 256;

/// Visible local names, innermost last, with each name's bindings stacked
/// so that a lookup does not scan them all: thousands of nested bindings
/// (a runaway macro's expansion, or hostile source) compiled in quadratic
/// time, seconds where the time budget is milliseconds.
#[derive(Default)]
struct Scope {
    names: Vec<Symbol>,
    visible: rustc_hash::FxHashMap<Symbol, Vec<BindingId>>,
}

impl Scope {
    fn push(&mut self, (name, b): (Symbol, BindingId)) {
        self.names.push(name);
        self.visible.entry(name).or_default().push(b);
    }

    /// Drops the names bound since the scope had `len` of them.
    fn truncate(&mut self, len: usize) {
        while self.names.len() > len {
            if let Some(stack) = self.names.pop().and_then(|n| self.visible.get_mut(&n)) {
                stack.pop();
            }
        }
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn lookup(&self, name: Symbol) -> Option<BindingId> {
        self.visible.get(&name)?.last().copied()
    }
}

/// A higher-order prelude function the compiler can run as a loop in the
/// calling frame (`Expander::hof`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hof {
    Map,
    ForEach,
    Filter,
    MapIndexed,
}

/// A named let being expanded as a loop: it stays one only if its name is
/// used solely as a call with the right number of arguments, from its own
/// function, in tail positions.
struct LoopTry {
    id: usize,
    binding: BindingId,
    func: FuncId,
    nparams: usize,
    ok: bool,
}

/// A parsed parameter list.
struct Params {
    positional: Vec<Symbol>,
    keys: Vec<Symbol>,
    rest: Option<Symbol>,
}

impl Expander<'_> {
    fn err(&self, pos: Pos, msg: impl Into<String>) -> EvalError {
        EvalError::new(ErrorKind::Syntax, msg).with_location(source::locate(pos))
    }

    fn cur_func(&self) -> FuncId {
        self.func_stack.last().copied().unwrap_or(0)
    }

    fn lookup(&self, name: Symbol) -> Option<BindingId> {
        self.scope.lookup(name)
    }

    fn new_binding(&mut self, name: Symbol, forward: bool, pos: Pos) -> Result<BindingId> {
        let f = self.cur_func();
        let func = &mut self.funcs[f];
        if func.nslots == u16::MAX {
            return Err(self.err(pos, TOO_MANY_LOCALS));
        }
        let slot = func.nslots;
        func.nslots += 1;
        let id = self.bindings.len();
        self.bindings.push(Binding {
            name,
            func: f,
            slot,
            captured: false,
            mutated: false,
            forward,
            group: None,
        });
        Ok(id)
    }

    /// A reference to binding `b` from the running function: records the
    /// captures needed in every function between its owner and here.
    fn var_ref(&mut self, b: BindingId) -> Expr {
        // A named let's name used as a value: it must be a real function.
        if let Some(l) = self.loop_of.get(&b).and_then(|&i| self.loops.get_mut(i)) {
            l.ok = false;
        }
        let owner = self.bindings[b].func;
        let top = self.func_stack.len() - 1;
        if self.func_stack[top] == owner {
            return Expr::Var(b);
        }
        let owner_level = self
            .func_level
            .get(owner)
            .copied()
            .filter(|&l| self.func_stack.get(l) == Some(&owner))
            .unwrap_or(0);
        let mut start = owner_level + 1;
        if let Some((g, _)) = self.bindings[b].group {
            let first = self.func_stack[start];
            if self.funcs[first].member_of.map(|m| m.0) == Some(g) {
                // Members reach each other through their group.
                start += 1;
            }
        }
        self.bindings[b].captured = true;
        // Innermost first, stopping at a function that already captures
        // `b`: the reference that made it capture `b` made every function
        // between it and the owner capture `b` too.
        for level in (start..=top).rev() {
            let func = &mut self.funcs[self.func_stack[level]];
            if !func.captured.insert(b) {
                break;
            }
            func.captures.push(b);
        }
        Expr::Var(b)
    }

    fn expr(&mut self, form: &Value, hint: Pos, ctx: Ctx) -> Result<Expr> {
        self.spend(hint)?;
        self.one_level_deeper(hint, "expression", |e| e.expr_inner(form, hint, ctx))
    }

    /// Counts a unit of compiling work (an expression compiled, a macro
    /// expanded), and every [`CHECK_EVERY`] ends compiling when it has run
    /// past the time or heap budget. Counting macro expansions alone was
    /// not enough: a macro whose expansion doubles its argument and calls
    /// itself again does exponential work between expansions.
    fn spend(&mut self, pos: Pos) -> Result<()> {
        self.work = self.work.wrapping_add(1);
        if !self.work.is_multiple_of(CHECK_EVERY) {
            return Ok(());
        }
        let out_of_time = self
            .interp
            .budget
            .max_time
            .filter(|&max| self.started.elapsed() > max);
        let budget = &self.interp.budget;
        let heap_over = budget.max_heap.and_then(|max| {
            let used = if budget.heap_per_machine {
                let kept = crate::alloc::thread_net_bytes() - self.heap_start;
                usize::try_from(kept).unwrap_or(0)
            } else {
                crate::alloc::live_bytes()
            };
            (used > max).then_some((used, max))
        });
        let message = match (out_of_time, heap_over) {
            (Some(max), _) => format!("time budget exhausted: compiling took longer than {max:?}"),
            (None, Some((used, max))) => {
                format!("heap budget exhausted: compiling is using {used} bytes, more than {max}")
            }
            (None, None) => return Ok(()),
        };
        let why = match self.last_macro {
            Some(name) => format!(
                " ({} macro expansions; does macro {name} expand into a call of itself?)",
                self.expansions
            ),
            None => " (while compiling)".to_owned(),
        };
        Err(EvalError::new(ErrorKind::Budget, message + &why).with_location(source::locate(pos)))
    }

    /// Runs `f` one level of nesting deeper: refused past [`MAX_NESTING`]
    /// (`what` nested too deeply), with native stack to spare.
    fn one_level_deeper(
        &mut self,
        pos: Pos,
        what: &str,
        f: impl FnOnce(&mut Self) -> Result<Expr>,
    ) -> Result<Expr> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            self.nesting -= 1;
            return Err(self.err(pos, format!("{what} nested too deeply to compile")));
        }
        let r = stacker::maybe_grow(64 * 1024, 2 * 1024 * 1024, || f(self));
        self.nesting -= 1;
        r
    }

    /// The expansion of a call of macro `name` (`m`) with `args`. The time
    /// budget covers expanding as it covers running (see `spend`).
    fn macro_call(
        &mut self,
        name: Symbol,
        m: Rc<crate::vm::Closure>,
        args: Vec<Value>,
        pos: Pos,
    ) -> Result<Value> {
        self.expansions = self.expansions.wrapping_add(1);
        self.last_macro = Some(name);
        self.spend(pos)?;
        self.interp
            .call_value(&Value::Closure(m), args)
            .map_err(|e| {
                let mut e = e;
                e.message = format!("in expansion of macro {name}: {}", e.message);
                e.with_location(source::locate(pos))
            })
    }

    fn expr_inner(&mut self, form: &Value, hint: Pos, ctx: Ctx) -> Result<Expr> {
        match form {
            Value::Symbol(s) => Ok(self.symbol(*s)),
            Value::List(l) if l.is_empty() => Ok(Expr::Const(Value::List(List::EMPTY))),
            Value::List(l) => {
                let pos = if l.pos().is_none() { hint } else { l.pos() };
                self.list(l, pos, ctx)
            }
            Value::Dict(d) => {
                let mut entries = Vec::with_capacity(d.len());
                let mut all_const = true;
                for (k, v) in d.iter() {
                    let e = self.expr(v, hint, Ctx::Inner)?;
                    all_const &= matches!(e, Expr::Const(_));
                    entries.push((k.clone(), e));
                }
                if all_const {
                    // Build the dict from the constants' values, not the
                    // form: `{:a '(1 2)}` holds `(1 2)`, not `(quote (1 2))`.
                    let mut dict = crate::dict::Dict::new();
                    for (k, e) in entries {
                        if let (Expr::Const(v), Ok(key)) = (e, crate::dict::Key::new(k)) {
                            dict.insert(key, v);
                        }
                    }
                    return Ok(Expr::Const(Value::Dict(dict)));
                }
                Ok(Expr::Dict(entries, hint))
            }
            other => Ok(Expr::Const(other.clone())),
        }
    }

    fn symbol(&mut self, s: Symbol) -> Expr {
        match self.lookup(s) {
            Some(b) => self.var_ref(b),
            None => Expr::Global(s),
        }
    }

    fn body_exprs(&mut self, forms: &[Value], pos: Pos) -> Result<Vec<Expr>> {
        forms
            .iter()
            .map(|f| self.expr(f, pos, Ctx::Inner))
            .collect()
    }

    fn seq(mut exprs: Vec<Expr>) -> Expr {
        match exprs.len() {
            0 => Expr::Const(Value::Nil),
            1 => exprs.pop().unwrap_or(Expr::Const(Value::Nil)),
            _ => Expr::Seq(exprs),
        }
    }

    fn list(&mut self, l: &List, pos: Pos, ctx: Ctx) -> Result<Expr> {
        let items: Vec<Value> = l.to_vec();
        let head = &items[0];
        let args = &items[1..];
        if let Value::Symbol(s) = head {
            let s = *s;
            let local = self.lookup(s);
            if local.is_none() {
                if let Some(e) = self.special(s, args, pos, ctx)? {
                    return Ok(e);
                }
                // A macro defined by an earlier top-level form.
                if let Some(Value::Macro(m)) = self.interp.global_value(s) {
                    let expansion = self.macro_call(s, m, args.to_vec(), pos)?;
                    return self.expr(&expansion, pos, ctx);
                }
                if let Some(e) = self.hof(s, args, pos)? {
                    return Ok(e);
                }
                if let Some(op) = Inline::from_name(s.as_str()) {
                    if let Some(e) = self.inline(op, args, pos)? {
                        return Ok(e);
                    }
                }
                if !self.interp.is_defined(s) && elements::is_element(s.as_str()) {
                    return self.element(RcStr::from(s.as_str()), args, pos);
                }
            }
        }
        if let Value::Symbol(s) = head {
            let cur = self.cur_func();
            let target = self.lookup(*s).and_then(|b| {
                let l = self.loops.get(*self.loop_of.get(&b)?)?;
                (l.binding == b && l.func == cur && l.nparams == args.len()).then_some(l.id)
            });
            if let Some(id) = target {
                let args = self.body_exprs(args, pos)?;
                return Ok(Expr::Recur(id, args, pos));
            }
        }
        let f = self.expr(head, pos, Ctx::Inner)?;
        let args = self.body_exprs(args, pos)?;
        Ok(Expr::Call(Box::new(f), args, pos))
    }

    fn inline(&mut self, op: Inline, args: &[Value], pos: Pos) -> Result<Option<Expr>> {
        let chainable = matches!(op, Inline::Add | Inline::Mul);
        if args.len() == op.arity() as usize {
            let a = self.body_exprs(args, pos)?;
            return Ok(Some(Expr::Inline(op, a, pos)));
        }
        if chainable && args.len() > 2 {
            let mut a = self.body_exprs(args, pos)?.into_iter();
            let (Some(x), Some(y)) = (a.next(), a.next()) else {
                return Ok(None);
            };
            let mut acc = Expr::Inline(op, vec![x, y], pos);
            for z in a {
                acc = Expr::Inline(op, vec![acc, z], pos);
            }
            return Ok(Some(acc));
        }
        Ok(None)
    }

    /// `(map f xs)`, `(for-each f xs)`, `(filter f xs)`, `(map-indexed f
    /// xs)` as a loop in the running function's frame, like a named let:
    /// with `f` a literal `(fn (x) body...)` its body runs in place (no
    /// closure, no call per item); with any other `f` the call per item
    /// stays but `map`'s own call goes. The result list is consed up and
    /// reversed in place. The loop runs only while the prelude's functions
    /// are still the globals (`Inline::HofIntact`, checked once per call);
    /// otherwise the ordinary call, compiled beside it, runs.
    ///
    /// ```text
    /// xs' = xs
    /// if (%hof-intact nil)
    ///   loop acc = (), xs = xs':            ; map
    ///     if (empty? xs) (%reverse-owned acc)
    ///     else recur (cons (let ((x (first xs))) body...) acc), (rest xs)
    /// else (map (fn (x) body...) xs')
    /// ```
    fn hof(&mut self, s: Symbol, args: &[Value], pos: Pos) -> Result<Option<Expr>> {
        let kind = match s.as_str() {
            "map" => Hof::Map,
            "for-each" => Hof::ForEach,
            "filter" => Hof::Filter,
            "map-indexed" => Hof::MapIndexed,
            _ => return Ok(None),
        };
        let [f, xs] = args else { return Ok(None) };
        if self.no_hof > 0 || self.interp.inline_overridden(Inline::HofIntact) {
            return Ok(None);
        }
        let nparams = if kind == Hof::MapIndexed { 2 } else { 1 };
        // A literal lambda with plain positional parameters only.
        let lambda = lambda_parts(f).and_then(|(params, body)| {
            let names: Vec<Symbol> = match &params {
                Value::List(l) => l
                    .iter()
                    .map(|p| p.as_symbol().filter(|s| !s.as_str().starts_with('&')))
                    .collect::<Option<Vec<_>>>()?,
                _ => return None,
            };
            (names.len() == nparams).then_some((names, body))
        });
        let scope_mark = self.scope.len();
        let r = self.hof_expand(kind, s, f, xs, lambda, pos);
        self.scope.truncate(scope_mark);
        r.map(Some)
    }

    fn hof_expand(
        &mut self,
        kind: Hof,
        name: Symbol,
        f: &Value,
        xs: &Value,
        lambda: Option<(Vec<Symbol>, Vec<Value>)>,
        pos: Pos,
    ) -> Result<Expr> {
        let hidden = |n: &str| Symbol::new(&format!(" hof-{n}"));
        let mut out = Vec::new();
        // `f` (when not a literal lambda) and `xs` in their order.
        let f_tmp = match &lambda {
            Some(_) => None,
            None => {
                let e = self.expr(f, pos, Ctx::Inner)?;
                let t = self.new_binding(hidden("f"), false, pos)?;
                out.push(Expr::Init(t, Box::new(e)));
                Some(t)
            }
        };
        let xs_e = self.expr(xs, pos, Ctx::Inner)?;
        let xs_tmp = self.new_binding(hidden("list"), false, pos)?;
        out.push(Expr::Init(xs_tmp, Box::new(xs_e)));

        // The loop. Its variables are hidden names, never in scope.
        let acc = self.new_binding(hidden("acc"), false, pos)?;
        let idx = self.new_binding(hidden("i"), false, pos)?;
        let cur = self.new_binding(hidden("xs"), false, pos)?;
        let id = self.nloops;
        self.nloops += 1;
        let var = |b| Box::new(Expr::Var(b));
        let inl = |op, args: Vec<Expr>| Expr::Inline(op, args, pos);
        let first = || inl(Inline::First, vec![Expr::Var(cur)]);
        // The value of `(f item)` (or `(f i item)`), computed in place.
        let item = match (lambda, f_tmp) {
            (Some((names, body)), _) => {
                let scope_mark = self.scope.len();
                let mut exprs = Vec::new();
                for (k, n) in names.into_iter().enumerate() {
                    let v = if kind == Hof::MapIndexed && k == 0 {
                        Expr::Var(idx)
                    } else {
                        first()
                    };
                    let b = self.new_binding(n, false, pos)?;
                    self.scope.push((n, b));
                    exprs.push(Expr::Init(b, Box::new(v)));
                }
                let body = self.body(&body, pos);
                self.scope.truncate(scope_mark);
                exprs.push(body?);
                Expr::Seq(exprs)
            }
            (None, Some(t)) => {
                let mut a = Vec::new();
                if kind == Hof::MapIndexed {
                    a.push(Expr::Var(idx));
                }
                a.push(first());
                Expr::Call(var(t), a, pos)
            }
            (None, None) => Expr::Const(Value::Nil),
        };
        let rest = inl(Inline::Rest, vec![Expr::Var(cur)]);
        let done = inl(Inline::IsEmpty, vec![Expr::Var(cur)]);
        let result = || inl(Inline::ReverseOwned, vec![Expr::Var(acc)]);
        let consed = |x| inl(Inline::Cons, vec![x, Expr::Var(acc)]);
        let (params, inits, body) = match kind {
            // In the prelude's order: `(loop (rest xs) (cons (f (first
            // xs)) acc))`, so even a non-list fails the same way.
            Hof::Map => (
                vec![cur, acc],
                vec![Expr::Var(xs_tmp), Expr::Const(Value::List(List::EMPTY))],
                Expr::If(
                    Box::new(done),
                    Box::new(result()),
                    Box::new(Expr::Recur(id, vec![rest, consed(item)], pos)),
                ),
            ),
            Hof::MapIndexed => (
                vec![cur, idx, acc],
                vec![
                    Expr::Var(xs_tmp),
                    Expr::Const(Value::Int(0)),
                    Expr::Const(Value::List(List::EMPTY)),
                ],
                Expr::If(
                    Box::new(done),
                    Box::new(result()),
                    Box::new(Expr::Recur(
                        id,
                        vec![
                            rest,
                            inl(
                                Inline::Add,
                                vec![Expr::Var(idx), Expr::Const(Value::Int(1))],
                            ),
                            consed(item),
                        ],
                        pos,
                    )),
                ),
            ),
            Hof::ForEach => (
                vec![cur],
                vec![Expr::Var(xs_tmp)],
                Expr::If(
                    Box::new(done),
                    Box::new(Expr::Const(Value::Nil)),
                    Box::new(Expr::Seq(vec![item, Expr::Recur(id, vec![rest], pos)])),
                ),
            ),
            Hof::Filter => (
                vec![cur, acc],
                vec![Expr::Var(xs_tmp), Expr::Const(Value::List(List::EMPTY))],
                Expr::If(
                    Box::new(done),
                    Box::new(result()),
                    Box::new(Expr::If(
                        Box::new(item),
                        Box::new(Expr::Recur(
                            id,
                            vec![inl(Inline::Rest, vec![Expr::Var(cur)]), consed(first())],
                            pos,
                        )),
                        Box::new(Expr::Recur(id, vec![rest, Expr::Var(acc)], pos)),
                    )),
                ),
            ),
        };
        let looped = Expr::Loop {
            id,
            params,
            inits,
            body: Box::new(body),
        };
        // The ordinary call, for when the prelude's function was redefined.
        let f_arg = match f_tmp {
            Some(t) => Expr::Var(t),
            None => {
                self.no_hof += 1;
                let e = self.expr(f, pos, Ctx::Inner);
                self.no_hof -= 1;
                e?
            }
        };
        let call = Expr::Call(
            Box::new(Expr::Global(name)),
            vec![f_arg, Expr::Var(xs_tmp)],
            pos,
        );
        let guard = inl(Inline::HofIntact, vec![Expr::Const(Value::Nil)]);
        out.push(Expr::If(Box::new(guard), Box::new(looped), Box::new(call)));
        Ok(Expr::Seq(out))
    }

    fn element(&mut self, tag: RcStr, args: &[Value], pos: Pos) -> Result<Expr> {
        let mut attrs = Vec::new();
        let mut i = 0;
        while let (Some(Value::Keyword(k)), Some(v)) = (args.get(i), args.get(i + 1)) {
            let e = self.expr(v, pos, Ctx::Inner)?;
            attrs.push((Value::Keyword(*k), e));
            i += 2;
        }
        let children = self.body_exprs(args.get(i..).unwrap_or(&[]), pos)?;
        Ok(Expr::Element {
            tag,
            attrs,
            children,
            pos,
        })
    }

    /// Recognises a special form; `None` when `s` names none.
    fn special(&mut self, s: Symbol, args: &[Value], pos: Pos, ctx: Ctx) -> Result<Option<Expr>> {
        let e = match s.as_str() {
            "quote" => {
                let [v] = args else {
                    return Err(self.err(pos, "quote takes exactly one form: (quote x)"));
                };
                Expr::Const(v.clone())
            }
            "quasiquote" => {
                let [v] = args else {
                    return Err(self.err(pos, "quasiquote takes exactly one form"));
                };
                self.quasi(v, 1, pos)?
            }
            "unquote" | "unquote-splicing" => {
                return Err(self.err(pos, format!("{s} used outside of a quasiquote")));
            }
            "if" => {
                if args.len() < 2 || args.len() > 3 {
                    return Err(self.err(
                        pos,
                        format!(
                            "if takes a test, a then form and an optional else form, got {} forms",
                            args.len()
                        ),
                    ));
                }
                let t = self.expr(&args[0], pos, Ctx::Inner)?;
                let a = self.expr(&args[1], pos, ctx)?;
                let b = match args.get(2) {
                    Some(b) => self.expr(b, pos, ctx)?,
                    None => Expr::Const(Value::Nil),
                };
                Expr::If(Box::new(t), Box::new(a), Box::new(b))
            }
            "when" | "unless" => {
                let Some((test, body)) = args.split_first() else {
                    return Err(self.err(pos, format!("{s} needs a test: ({s} test body...)")));
                };
                let t = self.expr(test, pos, Ctx::Inner)?;
                let body = self.forms(body, pos, ctx)?;
                let (a, b) = if s.as_str() == "when" {
                    (body, Expr::Const(Value::Nil))
                } else {
                    (Expr::Const(Value::Nil), body)
                };
                Expr::If(Box::new(t), Box::new(a), Box::new(b))
            }
            "cond" => self.cond(args, pos, ctx)?,
            "case" => self.case(args, pos, ctx)?,
            "and" => Expr::And(self.body_exprs(args, pos)?),
            "or" => Expr::Or(self.body_exprs(args, pos)?),
            "begin" | "do" => self.forms(args, pos, ctx)?,
            "let" | "let*" => self.let_form(args, pos)?,
            "letrec" | "letrec*" => self.letrec(args, pos)?,
            "fn" | "lambda" => {
                let Some((params, body)) = args.split_first() else {
                    return Err(self.err(
                        pos,
                        format!("{s} needs a parameter list: ({s} (x y) body...)"),
                    ));
                };
                let (fid, body) = self.lambda(None, params, body, pos, None)?;
                Expr::Lambda(fid, Box::new(body))
            }
            "define" => self.define(args, pos, ctx)?,
            "set!" => {
                let [Value::Symbol(name), v] = args else {
                    return Err(self.err(pos, "set! takes a name and a value: (set! x 1)"));
                };
                let value = self.expr(v, pos, Ctx::Inner)?;
                match self.lookup(*name) {
                    Some(b) => {
                        if self.bindings[b].group.is_some() {
                            return Err(self.err(
                                pos,
                                format!(
                                    "cannot set! {name}: it names a function defined in this body"
                                ),
                            ));
                        }
                        self.bindings[b].mutated = true;
                        let _ = self.var_ref(b);
                        Expr::SetVar(b, Box::new(value))
                    }
                    None => Expr::SetGlobal(*name, Box::new(value)),
                }
            }
            "defmacro" => {
                let [Value::Symbol(name), params, body @ ..] = args else {
                    return Err(self.err(
                        pos,
                        "defmacro takes a name, parameters and a body: (defmacro m (x) ...)",
                    ));
                };
                let (fid, body) = self.lambda(Some(*name), params, body, pos, None)?;
                Expr::DefineGlobal(
                    *name,
                    Box::new(Expr::Macro(Box::new(Expr::Lambda(fid, Box::new(body))))),
                )
            }
            "defcomp" | "defisland" => {
                let [Value::Symbol(name), params, body @ ..] = args else {
                    return Err(self.err(
                        pos,
                        format!(
                            "{s} takes a name, parameters and a body: ({s} ~name (&key a) ...)"
                        ),
                    ));
                };
                let island = s.as_str() == "defisland";
                let wrapped;
                let body = if island {
                    wrapped = [island_body(*name, params, body, pos)];
                    &wrapped[..]
                } else {
                    body
                };
                let (fid, body) = self.lambda(Some(*name), params, body, pos, None)?;
                Expr::DefineGlobal(
                    *name,
                    Box::new(Expr::Component {
                        name: *name,
                        island,
                        func: Box::new(Expr::Lambda(fid, Box::new(body))),
                    }),
                )
            }
            "try" => self.try_form(args, pos)?,
            "perform" => {
                if args.is_empty() {
                    return Err(self.err(pos, "perform needs an operation: (perform :op args...)"));
                }
                Expr::Perform(self.body_exprs(args, pos)?, pos)
            }
            _ => return Ok(None),
        };
        Ok(Some(e))
    }

    /// A sequence of forms in the given context (top-level `begin` keeps
    /// its defines global).
    fn forms(&mut self, forms: &[Value], pos: Pos, ctx: Ctx) -> Result<Expr> {
        let mut out = Vec::with_capacity(forms.len());
        for f in forms {
            out.push(self.expr(f, pos, ctx)?);
        }
        Ok(Self::seq(out))
    }

    fn define(&mut self, args: &[Value], pos: Pos, ctx: Ctx) -> Result<Expr> {
        let (name, value) = self.define_parts(args, pos)?;
        if ctx == Ctx::Toplevel && self.cur_func() == 0 && self.scope.is_empty() {
            let v = self.define_value(name, &value, pos)?;
            return Ok(Expr::DefineGlobal(name, Box::new(v)));
        }
        Err(self.err(
            pos,
            format!("define of {name} is not allowed here: use it at top level or at the start of a body"),
        ))
    }

    /// Splits `(define name value)` / `(define (name params...) body...)`
    /// into the name and a value form.
    fn define_parts(&self, args: &[Value], pos: Pos) -> Result<(Symbol, Value)> {
        match args {
            [Value::Symbol(name)] => Ok((*name, Value::Nil)),
            [Value::Symbol(name), value] => Ok((*name, value.clone())),
            [Value::List(sig), body @ ..] if !sig.is_empty() => {
                let Some(Value::Symbol(name)) = sig.first() else {
                    return Err(self.err(pos, "define: the function name must be a symbol"));
                };
                let mut lambda = vec![Value::sym("fn"), Value::List(sig.rest())];
                lambda.extend(body.iter().cloned());
                Ok((*name, Value::List(List::from_vec_at(lambda, pos))))
            }
            _ => Err(self.err(
                pos,
                "define takes a name and a value, (define x 1), or a signature and body, (define (f x) ...)",
            )),
        }
    }

    /// Expands a defined value, naming it if it is a lambda.
    fn define_value(&mut self, name: Symbol, value: &Value, pos: Pos) -> Result<Expr> {
        if let Some((params, body)) = lambda_parts(value) {
            let (fid, body) = self.lambda(Some(name), &params, &body, pos, None)?;
            return Ok(Expr::Lambda(fid, Box::new(body)));
        }
        self.expr(value, pos, Ctx::Inner)
    }

    fn parse_params(&self, params: &Value, pos: Pos) -> Result<Params> {
        let list = match params {
            Value::List(l) => l.to_vec(),
            Value::Nil => Vec::new(),
            Value::Symbol(s) => {
                // (fn args body): all arguments as one list.
                return Ok(Params {
                    positional: Vec::new(),
                    keys: Vec::new(),
                    rest: Some(*s),
                });
            }
            other => {
                return Err(self.err(
                    pos,
                    format!("parameter list must be a list of symbols, got {other}"),
                ));
            }
        };
        let mut p = Params {
            positional: Vec::new(),
            keys: Vec::new(),
            rest: None,
        };
        #[derive(PartialEq)]
        enum Mode {
            Pos,
            Key,
            Rest,
        }
        let mut mode = Mode::Pos;
        let mut seen = HashSet::new();
        for item in &list {
            let Value::Symbol(s) = item else {
                return Err(self.err(pos, format!("parameter must be a symbol, got {item}")));
            };
            match s.as_str() {
                "&key" => mode = Mode::Key,
                "&rest" | "&body" => mode = Mode::Rest,
                _ => {
                    if !seen.insert(*s) {
                        return Err(self.err(pos, format!("duplicate parameter {s}")));
                    }
                    match mode {
                        Mode::Pos => p.positional.push(*s),
                        Mode::Key => p.keys.push(*s),
                        Mode::Rest => {
                            if p.rest.is_some() {
                                return Err(self.err(pos, "only one &rest parameter is allowed"));
                            }
                            p.rest = Some(*s);
                        }
                    }
                }
            }
        }
        if mode == Mode::Rest && p.rest.is_none() {
            return Err(self.err(pos, "&rest must be followed by a parameter name"));
        }
        Ok(p)
    }

    /// Expands a function: parameters, then the body.
    fn lambda(
        &mut self,
        name: Option<Symbol>,
        params: &Value,
        body: &[Value],
        pos: Pos,
        member_of: Option<(GroupId, u16)>,
    ) -> Result<(FuncId, Expr)> {
        let p = self.parse_params(params, pos)?;
        let fid = self.funcs.len();
        self.funcs.push(Func {
            name,
            nparams: u16::try_from(p.positional.len()).unwrap_or(u16::MAX),
            keys: p.keys.clone(),
            rest: p.rest.is_some(),
            member_of,
            pos,
            ..Func::default()
        });
        if self.func_level.len() <= fid {
            self.func_level.resize(fid + 1, 0);
        }
        if let Some(level) = self.func_level.get_mut(fid) {
            *level = self.func_stack.len();
        }
        self.func_stack.push(fid);
        let scope_mark = self.scope.len();
        let mut params_ids = Vec::new();
        let all = p
            .positional
            .iter()
            .chain(p.keys.iter())
            .chain(p.rest.iter())
            .copied()
            .collect::<Vec<_>>();
        for s in all {
            let b = self.new_binding(s, false, pos)?;
            self.scope.push((s, b));
            params_ids.push(b);
        }
        self.funcs[fid].params = params_ids;
        let body = self.body(body, pos);
        self.scope.truncate(scope_mark);
        self.func_stack.pop();
        Ok((fid, body?))
    }

    /// A body: forms with internal defines (letrec* semantics). Defined
    /// functions that are never assigned become one group.
    fn body(&mut self, forms: &[Value], pos: Pos) -> Result<Expr> {
        // Expand macros at the head of body forms first, so macros that
        // produce defines work.
        let mut flat: Vec<Value> = Vec::with_capacity(forms.len());
        self.flatten_body(forms, &mut flat, pos)?;
        let defines: Vec<(usize, Symbol, Value)> = flat
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let items = f.as_list()?;
                if items.first()?.as_symbol()?.as_str() != "define" {
                    return None;
                }
                let args = items.rest().to_vec();
                self.define_parts(&args, pos_of(f))
                    .ok()
                    .map(|(n, v)| (i, n, v))
            })
            .collect();
        if defines.is_empty() {
            let exprs = self.body_exprs(&flat, pos)?;
            return Ok(Self::seq(exprs));
        }
        // Check every define parses (to report errors with position).
        for f in &flat {
            if let Some(items) = f.as_list() {
                if items
                    .first()
                    .and_then(Value::as_symbol)
                    .is_some_and(|s| s.as_str() == "define")
                {
                    self.define_parts(&items.rest().to_vec(), pos_of(f))?;
                }
            }
        }
        let assigned = assigned_names(&flat);
        self.bind_group(
            defines
                .iter()
                .map(|(i, n, v)| (*i, *n, v.clone()))
                .collect(),
            &flat,
            &assigned,
            pos,
        )
    }

    fn flatten_body(&mut self, forms: &[Value], out: &mut Vec<Value>, pos: Pos) -> Result<()> {
        for f in forms {
            let mut form = f.clone();
            // Expand head macros so a macro can expand into defines.
            for _ in 0..1000 {
                let Some(items) = form.as_list() else { break };
                let Some(Value::Symbol(s)) = items.first() else {
                    break;
                };
                if self.lookup(*s).is_some() {
                    break;
                }
                if s.as_str() == "begin" {
                    break;
                }
                let Some(Value::Macro(m)) = self.interp.global_value(*s) else {
                    break;
                };
                let fpos = if items.pos().is_none() {
                    pos
                } else {
                    items.pos()
                };
                let expanded = self.macro_call(*s, m, items.rest().to_vec(), fpos)?;
                form = match expanded {
                    Value::List(l) if l.pos().is_none() && !l.is_empty() => Value::List(
                        List::cons_at(l.first().cloned().unwrap_or_default(), l.rest(), fpos),
                    ),
                    other => other,
                };
            }
            match form.as_list() {
                Some(items)
                    if items
                        .first()
                        .and_then(Value::as_symbol)
                        .is_some_and(|s| s.as_str() == "begin")
                        && self.lookup(Symbol::new("begin")).is_none() =>
                {
                    self.flatten_body(&items.rest().to_vec(), out, pos)?;
                }
                _ => out.push(form),
            }
        }
        Ok(())
    }

    /// Binds `defines` (index in `flat`, name, value form) in the running
    /// scope and expands `flat` with them visible.
    fn bind_group(
        &mut self,
        defines: Vec<(usize, Symbol, Value)>,
        flat: &[Value],
        assigned: &HashSet<Symbol>,
        pos: Pos,
    ) -> Result<Expr> {
        let scope_mark = self.scope.len();
        let gid = self.ngroups;
        self.ngroups += 1;
        let mut member_count: u16 = 0;
        // (binding, Some(member index) or None, value form)
        let mut bound: Vec<(usize, BindingId, Option<u16>, Value)> = Vec::new();
        for (i, name, value) in &defines {
            let is_member = lambda_parts(value).is_some() && !assigned.contains(name);
            let b = self.new_binding(*name, !is_member, pos)?;
            let member = if is_member {
                self.bindings[b].group = Some((gid, member_count));
                member_count += 1;
                Some(member_count - 1)
            } else {
                None
            };
            self.scope.push((*name, b));
            bound.push((*i, b, member, value.clone()));
        }
        let forward: Vec<BindingId> = bound
            .iter()
            .filter(|(_, _, m, _)| m.is_none())
            .map(|(_, b, _, _)| *b)
            .collect();
        let mut members = Vec::new();
        for (_, b, m, value) in &bound {
            if let Some(idx) = m {
                let (params, body) = lambda_parts(value).unwrap_or((Value::Nil, Vec::new()));
                let name = self.bindings[*b].name;
                let vpos = if pos_of(value).is_none() {
                    pos
                } else {
                    pos_of(value)
                };
                let (fid, fbody) =
                    self.lambda(Some(name), &params, &body, vpos, Some((gid, *idx)))?;
                members.push((*b, fid, fbody));
            }
        }
        let mut exprs = Vec::new();
        for (i, form) in flat.iter().enumerate() {
            if let Some((_, b, m, value)) = bound.iter().find(|(j, ..)| *j == i) {
                if m.is_none() {
                    let name = self.bindings[*b].name;
                    let v = self.define_value(name, value, pos_of(form))?;
                    exprs.push(Expr::Init(*b, Box::new(v)));
                }
                continue;
            }
            exprs.push(self.expr(form, pos, Ctx::Inner)?);
        }
        if bound.iter().any(|(j, ..)| *j + 1 == flat.len()) {
            // A body ending in a define has the value nil.
            exprs.push(Expr::Const(Value::Nil));
        }
        self.scope.truncate(scope_mark);
        let mut seq = Vec::new();
        if !members.is_empty() {
            seq.push(Expr::Group(members));
        }
        seq.extend(exprs);
        Ok(Expr::Cells(forward, Box::new(Self::seq(seq))))
    }

    fn let_form(&mut self, args: &[Value], pos: Pos) -> Result<Expr> {
        let Some((first, rest)) = args.split_first() else {
            return Err(self.err(pos, "let needs bindings: (let ((x 1)) body...)"));
        };
        if let Value::Symbol(name) = first {
            return self.named_let(*name, rest, pos);
        }
        let pairs = self.binding_pairs(first, pos, "let")?;
        let scope_mark = self.scope.len();
        let mut exprs = Vec::new();
        for (name, init) in pairs {
            // Sequential: each init sees the bindings before it.
            let e = self.expr(&init, pos, Ctx::Inner)?;
            let b = self.new_binding(name, false, pos)?;
            self.scope.push((name, b));
            exprs.push(Expr::Init(b, Box::new(e)));
        }
        let body = self.body(rest, pos);
        self.scope.truncate(scope_mark);
        exprs.push(body?);
        Ok(Expr::Seq(exprs))
    }

    /// `((a 1) (b 2))`, `[a 1 b 2]` or `(a 1 b 2)` into name/init pairs.
    fn binding_pairs(
        &self,
        bindings: &Value,
        pos: Pos,
        form: &str,
    ) -> Result<Vec<(Symbol, Value)>> {
        let items = match bindings {
            Value::List(l) => l.to_vec(),
            Value::Nil => Vec::new(),
            other => {
                return Err(self.err(pos, format!("{form}: bindings must be a list, got {other}")));
            }
        };
        let flat = matches!(items.first(), Some(Value::Symbol(_)));
        let mut out = Vec::new();
        if flat {
            if items.len() % 2 != 0 {
                return Err(self.err(pos, format!("{form}: flat bindings need name value pairs")));
            }
            for pair in items.chunks(2) {
                let [Value::Symbol(n), v] = pair else {
                    return Err(self.err(pos, format!("{form}: binding name must be a symbol")));
                };
                out.push((*n, v.clone()));
            }
        } else {
            for item in &items {
                let parts = match item {
                    Value::List(l) => l.to_vec(),
                    other => {
                        return Err(self.err(
                            pos,
                            format!("{form}: each binding must be (name value), got {other}"),
                        ));
                    }
                };
                match parts.as_slice() {
                    [Value::Symbol(n)] => out.push((*n, Value::Nil)),
                    [Value::Symbol(n), v] => out.push((*n, v.clone())),
                    _ => {
                        return Err(self.err(
                            pos,
                            format!("{form}: each binding must be (name value), got {item}"),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// `(let loop ((i 0)) body)`: a local recursive function called at once.
    fn named_let(&mut self, name: Symbol, args: &[Value], pos: Pos) -> Result<Expr> {
        let Some((bindings, body)) = args.split_first() else {
            return Err(self.err(pos, "named let needs bindings: (let loop ((i 0)) body...)"));
        };
        let pairs = self.binding_pairs(bindings, pos, "let")?;
        if let Some(e) = self.named_loop(name, &pairs, body, pos)? {
            return Ok(e);
        }
        // Initial values are evaluated outside the loop's scope.
        let mut inits = Vec::new();
        for (_, v) in &pairs {
            inits.push(self.expr(v, pos, Ctx::Inner)?);
        }
        let scope_mark = self.scope.len();
        let mut temps = Vec::new();
        let mut exprs = Vec::new();
        for (i, init) in inits.into_iter().enumerate() {
            let t = self.new_binding(Symbol::new(&format!(" init{i}")), false, pos)?;
            exprs.push(Expr::Init(t, Box::new(init)));
            temps.push(t);
        }
        let gid = self.ngroups;
        self.ngroups += 1;
        let b = self.new_binding(name, false, pos)?;
        self.bindings[b].group = Some((gid, 0));
        self.scope.push((name, b));
        let params = Value::list(pairs.iter().map(|(n, _)| Value::Symbol(*n)).collect());
        let (fid, fbody) = match self.lambda(Some(name), &params, body, pos, Some((gid, 0))) {
            Ok(r) => r,
            Err(e) => {
                self.scope.truncate(scope_mark);
                return Err(e);
            }
        };
        exprs.push(Expr::Group(vec![(b, fid, fbody)]));
        let call_args = temps.iter().map(|t| Expr::Var(*t)).collect();
        exprs.push(Expr::Call(Box::new(Expr::Var(b)), call_args, pos));
        self.scope.truncate(scope_mark);
        Ok(Expr::Seq(exprs))
    }

    /// Tries a named let as a loop in the running function's frame: no
    /// closure, no call per iteration. `None` (with every trace of the try
    /// undone) when the name is used other than as a tail call from its own
    /// body, a loop variable is captured and assigned (it would need a
    /// fresh cell per iteration), or the running function ran out of
    /// slots; the caller then makes a real function. Any other error is
    /// the body's and ends compiling: compiled again as a function it would
    /// fail again, and nested named lets each trying twice took time
    /// exponential in their depth.
    fn named_loop(
        &mut self,
        name: Symbol,
        pairs: &[(Symbol, Value)],
        body: &[Value],
        pos: Pos,
    ) -> Result<Option<Expr>> {
        let cur = self.cur_func();
        let marks = (
            self.bindings.len(),
            self.funcs.len(),
            self.ngroups,
            self.scope.len(),
            self.funcs[cur].nslots,
        );
        let attempt = (|| -> Result<Option<Expr>> {
            let mut inits = Vec::new();
            for (_, v) in pairs {
                inits.push(self.expr(v, pos, Ctx::Inner)?);
            }
            let lb = self.new_binding(name, false, pos)?;
            self.scope.push((name, lb));
            let mut params = Vec::new();
            for (n, _) in pairs {
                let b = self.new_binding(*n, false, pos)?;
                self.scope.push((*n, b));
                params.push(b);
            }
            let id = self.nloops;
            self.nloops += 1;
            self.loop_of.insert(lb, self.loops.len());
            self.loops.push(LoopTry {
                id,
                binding: lb,
                func: cur,
                nparams: params.len(),
                ok: true,
            });
            let body = self.body(body, pos);
            self.loop_of.remove(&lb);
            let ok = self.loops.pop().is_some_and(|l| l.ok);
            let body = body?;
            if !ok
                || params.iter().any(|&b| self.bindings[b].needs_cell())
                || !body.recurs_in_tail(id, true)
            {
                return Ok(None);
            }
            Ok(Some(Expr::Loop {
                id,
                params,
                inits,
                body: Box::new(body),
            }))
        })();
        match attempt {
            Ok(Some(e)) => {
                self.scope.truncate(marks.3);
                Ok(Some(e))
            }
            Err(e) if e.message != TOO_MANY_LOCALS => Err(e),
            _ => {
                self.bindings.truncate(marks.0);
                self.funcs.truncate(marks.1);
                self.ngroups = marks.2;
                self.scope.truncate(marks.3);
                self.funcs[cur].nslots = marks.4;
                Ok(None)
            }
        }
    }

    fn letrec(&mut self, args: &[Value], pos: Pos) -> Result<Expr> {
        let Some((bindings, body)) = args.split_first() else {
            return Err(self.err(
                pos,
                "letrec needs bindings: (letrec ((f (fn ...))) body...)",
            ));
        };
        let pairs = self.binding_pairs(bindings, pos, "letrec")?;
        // Same as a body with a define per binding.
        let mut forms: Vec<Value> = pairs
            .into_iter()
            .map(|(n, v)| Value::list(vec![Value::sym("define"), Value::Symbol(n), v]))
            .collect();
        forms.extend(body.iter().cloned());
        self.body(&forms, pos)
    }

    fn cond(&mut self, args: &[Value], pos: Pos, ctx: Ctx) -> Result<Expr> {
        let scheme = !args.is_empty()
            && args
                .iter()
                .all(|a| matches!(a, Value::List(l) if !l.is_empty()));
        let clauses: Vec<(Value, Vec<Value>)> = if scheme {
            args.iter()
                .map(|c| {
                    let l = c.as_list().cloned().unwrap_or_default();
                    (l.first().cloned().unwrap_or_default(), l.rest().to_vec())
                })
                .collect()
        } else {
            if !args.len().is_multiple_of(2) {
                return Err(self.err(
                    pos,
                    "cond: flat clauses need test expr pairs: (cond t1 e1 t2 e2 :else e3)",
                ));
            }
            args.chunks(2)
                .map(|c| (c[0].clone(), vec![c[1].clone()]))
                .collect()
        };
        let mut result = Expr::Const(Value::Nil);
        for (test, body) in clauses.into_iter().rev() {
            let is_else = matches!(&test, Value::Symbol(s) if s.as_str() == "else")
                || matches!(&test, Value::Keyword(k) if k.as_str() == "else")
                || matches!(test, Value::Bool(true));
            if is_else {
                result = self.forms(&body, pos, ctx)?;
                continue;
            }
            let t = self.expr(&test, pos, Ctx::Inner)?;
            if body.is_empty() {
                result = Expr::Or(vec![t, result]);
            } else {
                let b = self.forms(&body, pos, ctx)?;
                result = Expr::If(Box::new(t), Box::new(b), Box::new(result));
            }
        }
        Ok(result)
    }

    fn case(&mut self, args: &[Value], pos: Pos, ctx: Ctx) -> Result<Expr> {
        let Some((key, clauses)) = args.split_first() else {
            return Err(self.err(pos, "case needs a key: (case x (1 :one) (else :other))"));
        };
        let key = self.expr(key, pos, Ctx::Inner)?;
        let scheme = !clauses.is_empty()
            && clauses
                .iter()
                .all(|a| matches!(a, Value::List(l) if !l.is_empty()));
        let pairs: Vec<(Value, Vec<Value>)> = if scheme {
            clauses
                .iter()
                .map(|c| {
                    let l = c.as_list().cloned().unwrap_or_default();
                    (l.first().cloned().unwrap_or_default(), l.rest().to_vec())
                })
                .collect()
        } else {
            if clauses.len() % 2 != 0 {
                return Err(self.err(pos, "case: flat clauses need datum expr pairs"));
            }
            clauses
                .chunks(2)
                .map(|c| (c[0].clone(), vec![c[1].clone()]))
                .collect()
        };
        let scope_mark = self.scope.len();
        let tmp = self.new_binding(Symbol::new(" case"), false, pos)?;
        let mut result = Expr::Const(Value::Nil);
        for (datum, body) in pairs.into_iter().rev() {
            let is_else = matches!(&datum, Value::Symbol(s) if s.as_str() == "else")
                || matches!(&datum, Value::Keyword(k) if k.as_str() == "else");
            let b = self.forms(&body, pos, ctx)?;
            if is_else {
                result = b;
                continue;
            }
            let datums = match (&datum, scheme) {
                (Value::List(l), true) => l.to_vec(),
                (d, _) => vec![d.clone()],
            };
            let tests = datums
                .into_iter()
                .map(|d| Expr::Inline(Inline::Eq, vec![Expr::Var(tmp), Expr::Const(d)], pos))
                .collect();
            result = Expr::If(Box::new(Expr::Or(tests)), Box::new(b), Box::new(result));
        }
        self.scope.truncate(scope_mark);
        Ok(Expr::Seq(vec![Expr::Init(tmp, Box::new(key)), result]))
    }

    fn try_form(&mut self, args: &[Value], pos: Pos) -> Result<Expr> {
        let mut body = Vec::new();
        let mut catch = None;
        let mut finally = None;
        for a in args {
            let clause = a.as_list().and_then(|l| {
                let head = l.first()?.as_symbol()?;
                match head.as_str() {
                    "catch" | "finally" => Some((head, l.rest().to_vec())),
                    _ => None,
                }
            });
            match clause {
                Some((head, parts)) if head.as_str() == "catch" => {
                    let (var, handler) = match parts.split_first() {
                        Some((Value::Symbol(v), h)) => (*v, h.to_vec()),
                        Some((Value::List(l), h))
                            if l.len() == 1 && l.first().and_then(Value::as_symbol).is_some() =>
                        {
                            (
                                l.first()
                                    .and_then(Value::as_symbol)
                                    .unwrap_or(Symbol::new("_")),
                                h.to_vec(),
                            )
                        }
                        _ => {
                            return Err(
                                self.err(pos, "catch needs a variable: (catch e handler...)")
                            );
                        }
                    };
                    let b = self.new_binding(var, false, pos)?;
                    let mark = self.scope.len();
                    self.scope.push((var, b));
                    let h = self.forms(&handler, pos, Ctx::Inner);
                    self.scope.truncate(mark);
                    catch = Some((b, Box::new(h?)));
                }
                Some((_, parts)) => {
                    let tmp = self.new_binding(Symbol::new(" finally"), false, pos)?;
                    let f = self.forms(&parts, pos, Ctx::Inner)?;
                    finally = Some((tmp, Box::new(f)));
                }
                None => {
                    if catch.is_some() || finally.is_some() {
                        return Err(self.err(pos, "try: catch and finally clauses must come last"));
                    }
                    body.push(a.clone());
                }
            }
        }
        let body = self.forms(&body, pos, Ctx::Inner)?;
        Ok(Expr::Try {
            body: Box::new(body),
            catch,
            finally,
            pos,
        })
    }

    /// The code that builds quasiquoted `v` (at quasiquote `depth`): a
    /// constant where nothing inside is unquoted. Bottom-up, so each part
    /// is looked at once however deep the form.
    fn quasi(&mut self, v: &Value, depth: usize, pos: Pos) -> Result<Expr> {
        self.one_level_deeper(pos, "quasiquoted form", |e| e.quasi_inner(v, depth, pos))
    }

    fn quasi_inner(&mut self, v: &Value, depth: usize, pos: Pos) -> Result<Expr> {
        match v {
            Value::List(l) => {
                let items = l.to_vec();
                if let [Value::Symbol(s), x] = items.as_slice() {
                    match s.as_str() {
                        "unquote" if depth == 1 => return self.expr(x, pos, Ctx::Inner),
                        "unquote" | "quasiquote" => {
                            let inner = if s.as_str() == "unquote" {
                                self.quasi(x, depth - 1, pos)?
                            } else {
                                self.quasi(x, depth + 1, pos)?
                            };
                            if matches!(inner, Expr::Const(_)) {
                                return Ok(Expr::Const(v.clone()));
                            }
                            return Ok(
                                self.list_call(vec![Expr::Const(Value::Symbol(*s)), inner], pos)
                            );
                        }
                        _ => {}
                    }
                }
                let mut segments: Vec<Expr> = Vec::new();
                let mut run: Vec<Expr> = Vec::new();
                for item in &items {
                    let splice = item.as_list().and_then(|l| {
                        let parts = l.to_vec();
                        match parts.as_slice() {
                            [Value::Symbol(s), x]
                                if s.as_str() == "unquote-splicing" && depth == 1 =>
                            {
                                Some(x.clone())
                            }
                            _ => None,
                        }
                    });
                    match splice {
                        Some(x) => {
                            if !run.is_empty() {
                                segments.push(self.list_call(std::mem::take(&mut run), pos));
                            }
                            segments.push(self.expr(&x, pos, Ctx::Inner)?);
                        }
                        None => run.push(self.quasi(item, depth, pos)?),
                    }
                }
                if segments.is_empty() {
                    if run.iter().all(|e| matches!(e, Expr::Const(_))) {
                        return Ok(Expr::Const(v.clone()));
                    }
                    return Ok(self.list_call(run, pos));
                }
                if !run.is_empty() {
                    segments.push(self.list_call(run, pos));
                }
                Ok(Expr::Call(
                    Box::new(Expr::Global(Symbol::new("append"))),
                    segments,
                    pos,
                ))
            }
            Value::Dict(d) => {
                let mut entries = Vec::new();
                for (k, val) in d.iter() {
                    entries.push((k.clone(), self.quasi(val, depth, pos)?));
                }
                if entries.iter().all(|(_, e)| matches!(e, Expr::Const(_))) {
                    return Ok(Expr::Const(v.clone()));
                }
                Ok(Expr::Dict(entries, pos))
            }
            other => Ok(Expr::Const(other.clone())),
        }
    }

    fn list_call(&self, items: Vec<Expr>, pos: Pos) -> Expr {
        Expr::Call(Box::new(Expr::Global(Symbol::new("list"))), items, pos)
    }
}

/// `(fn params body...)` / `(lambda ...)` into its parts.
fn lambda_parts(v: &Value) -> Option<(Value, Vec<Value>)> {
    let l = v.as_list()?;
    let head = l.first()?.as_symbol()?;
    if !matches!(head.as_str(), "fn" | "lambda") {
        return None;
    }
    let rest = l.rest();
    let params = rest.first()?.clone();
    Some((params, rest.rest().to_vec()))
}

/// Every name that appears as the target of `set!` anywhere in `forms`.
fn assigned_names(forms: &[Value]) -> HashSet<Symbol> {
    let mut out = HashSet::new();
    let mut work: Vec<&Value> = forms.iter().collect();
    while let Some(v) = work.pop() {
        if let Value::List(l) = v {
            let mut it = l.iter();
            if let (Some(Value::Symbol(h)), Some(Value::Symbol(target))) = (it.next(), it.next()) {
                if h.as_str() == "set!" {
                    out.insert(*target);
                }
            }
            work.extend(l.iter());
        }
    }
    out
}

/// The body of a `defisland`: the island's own body wrapped in
/// `(%island '~name {props} (let () body...))`, so that rendering it marks
/// the server HTML with the island's name and its serialized props (its
/// keyword and positional parameters, and `:children` for a rest list) for
/// the browser to hydrate.
fn island_body(name: Symbol, params: &Value, body: &[Value], pos: Pos) -> Value {
    let mut props = vec![Value::sym("dict")];
    if let Value::List(l) = params {
        let mut rest_next = false;
        for p in l.iter() {
            let Value::Symbol(s) = p else { continue };
            match s.as_str() {
                "&key" | "&optional" => {}
                "&rest" => rest_next = true,
                n => {
                    props.push(Value::kw(if rest_next { "children" } else { n }));
                    props.push(p.clone());
                    rest_next = false;
                }
            }
        }
    }
    let mut inner = vec![Value::sym("let"), Value::List(List::EMPTY)];
    inner.extend(body.iter().cloned());
    let quoted = Value::list(vec![Value::sym("quote"), Value::Symbol(name)]);
    Value::List(List::from_vec_at(
        vec![
            Value::sym("%island"),
            quoted,
            Value::list(props),
            Value::List(List::from_vec_at(inner, pos)),
        ],
        pos,
    ))
}
