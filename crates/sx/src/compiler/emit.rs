//! Pass 2: [`Expr`] trees to instructions.

use crate::rcstr::RcStr;
use std::rc::Rc;

use super::ast::{Binding, BindingId, Expr, Func, FuncId};
use super::expand::Program;
use crate::error::{ErrorKind, EvalError, Result};
use crate::interp::Interp;
use crate::source::Pos;
use crate::template::{Code, LoopTemplate, RenderTemplate, SlotIs};
use crate::value::Value;
use crate::vm::{CaptureFrom, GroupDef, Inline, Op, Proto};

pub(crate) fn emit_program(interp: &mut Interp, program: Program) -> Result<Rc<Proto>> {
    let Program {
        funcs,
        bindings,
        body,
    } = program;
    let mut e = Emitter {
        interp,
        funcs: &funcs,
        bindings: &bindings,
        compiled: std::collections::HashMap::new(),
        in_render_html: 0,
    };
    e.function(0, &body, None, false)
}

struct Emitter<'a> {
    interp: &'a mut Interp,
    funcs: &'a [Func],
    bindings: &'a [Binding],
    /// Functions already compiled. Render mode compiles a body twice (its
    /// ordinary code and its render-mode code), and a function written
    /// inside it would otherwise be compiled once per copy, and so on down:
    /// twice the work per level of nesting.
    compiled: std::collections::HashMap<FuncId, Rc<Proto>>,
    /// `render-html` calls being compiled around the current expression.
    /// One inside another's argument is compiled as an ordinary call: each
    /// compiles its argument twice (render mode and the fallback), which
    /// nested would double per level.
    in_render_html: u32,
}

/// How function `f` reaches binding `b`.
enum Access {
    Slot(u16, bool),
    Capture(u16, bool),
    SelfRef,
    Member(u16),
}

/// Operands of a fused instruction.
enum Fused {
    LocalInt(u16, i32),
    LocalLocal(u16, u16),
}

/// The code being built for one function.
struct Out {
    fid: FuncId,
    code: Vec<Op>,
    positions: Vec<Pos>,
    consts: Vec<Value>,
    /// `LocalGetKw`'s keywords (`Proto::dict_keys`).
    dict_keys: Vec<crate::dict::Key>,
    /// `KeyCallRender`'s keywords (`Proto::call_keys`).
    call_keys: Vec<Box<[crate::symbol::Symbol]>>,
    /// `RenderEach`'s loop bodies (`Proto::templates`).
    templates: Vec<LoopTemplate>,
    /// `Proto::body_template`.
    body_template: Option<(RenderTemplate, Option<u32>)>,
    /// `Proto::html_template`.
    html_template: Option<RenderTemplate>,
    protos: Vec<Rc<Proto>>,
    /// Each nested function's index in `protos`.
    proto_index: std::collections::HashMap<*const Proto, usize>,
    groups: Vec<GroupDef>,
    pos: Pos,
    /// Variable reads that are last uses: they move the value out.
    moves: std::collections::HashSet<*const Expr>,
    /// Loops of this function: id to (head pc, parameter slots).
    loops: std::collections::HashMap<usize, (u32, Vec<u16>)>,
    /// Render mode: HTML made at compile time and not yet emitted, so that
    /// runs of constant markup become one `RenderText`.
    text: String,
    /// Render mode: element forms being rendered around the current one.
    render_depth: u32,
    /// Render mode, inside a guarded element form (see `render_element`):
    /// the element names written directly under its guard.
    guard_tags: Option<Vec<RcStr>>,
}

/// How deeply nested element forms render mode writes directly; below
/// this depth markup is built and rendered as a value. (Only the outermost
/// form of a render path carries its ordinary form beside it, so code is
/// linear in the source either way; the bound keeps the compiler's own
/// recursion short.)
const MAX_RENDER_DEPTH: u32 = 24;

impl Out {
    /// This function's code up to `end`, and its tables, as the template
    /// reader takes them (`globals` for the functions called from markup).
    fn template_code<'a>(&'a self, end: usize, globals: &'a [Option<Value>]) -> Code<'a> {
        Code {
            code: self.code.get(..end).unwrap_or_default(),
            consts: &self.consts,
            dict_keys: &self.dict_keys,
            call_keys: &self.call_keys,
            loops: &self.templates,
            globals,
        }
    }

    fn op(&mut self, op: Op) -> usize {
        if !self.text.is_empty() {
            self.flush_text();
        }
        self.code.push(op);
        self.positions.push(self.pos);
        self.code.len() - 1
    }

    /// Emits the pending constant HTML. (A constant that cannot be added
    /// is an error the next `constant` call reports again; the text is
    /// dropped rather than looping.)
    fn flush_text(&mut self) {
        let text = std::mem::take(&mut self.text);
        if let Ok(i) = self.constant(Value::str(&text)) {
            self.code.push(Op::RenderText(i));
            self.positions.push(self.pos);
        }
    }

    /// The next instruction's pc, as a jump target: pending text belongs
    /// to the code before it.
    fn here(&mut self) -> u32 {
        if !self.text.is_empty() {
            self.flush_text();
        }
        u32::try_from(self.code.len()).unwrap_or(u32::MAX)
    }

    fn patch(&mut self, at: usize) {
        let target = self.here();
        if let Some(op) = self.code.get_mut(at) {
            *op = match *op {
                Op::Jump(_) => Op::Jump(target),
                Op::JumpIfFalse(_) => Op::JumpIfFalse(target),
                Op::JumpIfFalseKeep(_) => Op::JumpIfFalseKeep(target),
                Op::JumpIfTrueKeep(_) => Op::JumpIfTrueKeep(target),
                Op::PushHandler(_) => Op::PushHandler(target),
                Op::JumpUnlessLocalInt(w, s, k, _) => Op::JumpUnlessLocalInt(w, s, k, target),
                Op::JumpUnlessLocalLocal {
                    which,
                    a,
                    b,
                    negate,
                    ..
                } => Op::JumpUnlessLocalLocal {
                    which,
                    a,
                    b,
                    negate,
                    target,
                },
                Op::JumpUnlessCmp(w, _) => Op::JumpUnlessCmp(w, target),
                Op::JumpUnlessLocalIsConst(s, k, _) => Op::JumpUnlessLocalIsConst(s, k, target),
                Op::JumpUnlessLocalUnary(w, s, _, negate) => {
                    Op::JumpUnlessLocalUnary(w, s, target, negate)
                }
                Op::RenderBegin(_) => Op::RenderBegin(target),
                Op::ElementGuard(tag, _) => Op::ElementGuard(tag, target),
                other => other,
            };
        }
    }

    /// The index of nested function `proto` in this one's list, added
    /// once: render mode's two copies of a body share their functions.
    fn nested<T: TryFrom<usize>>(&mut self, proto: Rc<Proto>) -> Result<T> {
        let next = self.protos.len();
        let i = *self.proto_index.entry(Rc::as_ptr(&proto)).or_insert(next);
        if i == next {
            self.protos.push(proto);
        }
        count(i, "nested functions")
    }

    fn constant(&mut self, v: Value) -> Result<u32> {
        // Reuse identical immediates; other constants are rare enough.
        if matches!(v, Value::Symbol(_) | Value::Keyword(_) | Value::Str(_)) {
            if let Some(i) = self
                .consts
                .iter()
                .position(|c| c.equals(&v) && same_kind(c, &v))
            {
                return Ok(i as u32);
            }
        }
        self.consts.push(v);
        u32::try_from(self.consts.len() - 1).map_err(|_| too_big("constants"))
    }
}

/// Jumps to a plain jump go straight to its target, and a plain jump to a
/// return returns (an `if` in the last position of an `if` branch, the
/// exit of an inlined `map` loop): one instruction fewer on those paths.
/// Only unconditional `Jump`s are looked through; the stack is the same at
/// both ends of one, so the replacement does the same thing.
fn thread_jumps(code: &mut [Op]) {
    let follow = |code: &[Op], mut t: u32| {
        // Bounded: a chain of jumps cannot loop the compiler.
        for _ in 0..16 {
            match code.get(t as usize) {
                Some(&Op::Jump(u)) if u != t => t = u,
                _ => break,
            }
        }
        t
    };
    for i in 0..code.len() {
        let new = match code.get(i) {
            Some(&Op::Jump(t)) => {
                let t = follow(code, t);
                match code.get(t as usize) {
                    Some(&Op::Return) => Op::Return,
                    Some(&Op::RenderReturn) => Op::RenderReturn,
                    Some(&Op::ReturnLocal(s)) => Op::ReturnLocal(s),
                    Some(&Op::ReturnInt(k)) => Op::ReturnInt(k),
                    _ => Op::Jump(t),
                }
            }
            Some(&Op::JumpIfFalse(t)) => Op::JumpIfFalse(follow(code, t)),
            _ => continue,
        };
        if let Some(op) = code.get_mut(i) {
            *op = new;
        }
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn too_big(what: &str) -> EvalError {
    EvalError::new(
        ErrorKind::Syntax,
        format!("function too large: too many {what}"),
    )
}

fn count<T>(n: usize, what: &str) -> Result<T>
where
    T: TryFrom<usize>,
{
    T::try_from(n).map_err(|_| too_big(what))
}

impl Emitter<'_> {
    fn access(&self, f: FuncId, b: BindingId) -> Access {
        let bd = &self.bindings[b];
        if bd.func == f {
            return Access::Slot(bd.slot, bd.needs_cell());
        }
        if let (Some((g, j)), Some((fg, fj))) = (bd.group, self.funcs[f].member_of) {
            if g == fg {
                return if j == fj {
                    Access::SelfRef
                } else {
                    Access::Member(j)
                };
            }
        }
        let idx = self.funcs[f]
            .captures
            .iter()
            .position(|&c| c == b)
            .unwrap_or(0);
        Access::Capture(idx as u16, bd.needs_cell())
    }

    /// Compiles function `fid` whose body is `body`; `parent` makes its
    /// closures (and so decides where captures come from).
    /// With `render`, the body is compiled a second time in render mode,
    /// entered at `Proto::render_entry`.
    fn function(
        &mut self,
        fid: FuncId,
        body: &Expr,
        parent: Option<FuncId>,
        render: bool,
    ) -> Result<Rc<Proto>> {
        if let Some(done) = self.compiled.get(&fid) {
            return Ok(done.clone());
        }
        let func = &self.funcs[fid];
        let mut out = Out {
            fid,
            code: Vec::new(),
            positions: Vec::new(),
            consts: Vec::new(),
            dict_keys: Vec::new(),
            call_keys: Vec::new(),
            templates: Vec::new(),
            body_template: None,
            html_template: None,
            protos: Vec::new(),
            proto_index: std::collections::HashMap::new(),
            groups: Vec::new(),
            pos: func.pos,
            moves: super::liveness::last_uses(self.funcs, self.bindings, fid, body),
            loops: std::collections::HashMap::new(),
            text: String::new(),
            render_depth: 0,
            guard_tags: None,
        };
        self.param_cells(&mut out, fid);
        self.expr(&mut out, body, true)?;
        let mut render_entry = 0;
        if render {
            // The same body, with the same slots and last uses: render mode
            // evaluates the body's expressions in the same order.
            render_entry = out.here();
            self.param_cells(&mut out, fid);
            self.render(&mut out, body)?;
            out.op(Op::RenderReturn);
            self.body_template(&mut out, fid, render_entry);
        }
        let func = &self.funcs[fid];
        let captures = match parent {
            None => Vec::new(),
            Some(parent) => func
                .captures
                .iter()
                .map(|&b| match self.access(parent, b) {
                    Access::Slot(s, _) => CaptureFrom::Slot(s),
                    Access::Capture(i, _) => CaptureFrom::Capture(i),
                    Access::SelfRef => CaptureFrom::SelfRef,
                    Access::Member(j) => CaptureFrom::GroupMember(j),
                })
                .collect(),
        };
        self.html_template(&mut out, fid);
        thread_jumps(&mut out.code);
        let proto = Rc::new(Proto {
            name: func.name,
            code: out.code.into(),
            positions: out.positions,
            consts: out.consts,
            protos: out.protos,
            groups: out.groups,
            captures,
            nparams: func.nparams,
            keys: func.keys.clone(),
            rest: func.rest,
            nslots: func.nslots,
            arity: if func.keys.is_empty() && !func.rest {
                u32::from(func.nparams)
            } else {
                u32::MAX
            },
            pos: func.pos,
            render_entry,
            dict_keys: out.dict_keys,
            call_keys: out.call_keys,
            templates: out.templates,
            body_template: out.body_template,
            html_template: out.html_template,
        });
        self.compiled.insert(fid, proto.clone());
        Ok(proto)
    }

    /// The render-mode body of a function whose parameters are all
    /// positional or all keywords (a component), from `entry` to its
    /// `RenderReturn` at the end of the code, as a template (see
    /// `crate::template`) of the values in its parameters' slots, which a
    /// call from markup writes with the call's arguments; the element guard
    /// the body starts with, if any, is kept beside it to be checked first.
    fn body_template(&self, out: &mut Out, fid: FuncId, entry: u32) {
        let func = &self.funcs[fid];
        let params = match (func.nparams, func.keys.len()) {
            _ if func.rest => return,
            (0, 0) => return,
            (n, 0) => usize::from(n),
            (0, keys) => keys,
            _ => return,
        };
        let Some((Op::RenderReturn, body)) = out.code.split_last() else {
            return;
        };
        let (from, guard) = match body.get(entry as usize) {
            Some(&Op::ElementGuard(names, t)) => (t as usize, Some(names)),
            _ => (entry as usize, None),
        };
        let param = |s: u16| (usize::from(s) < params).then_some(SlotIs::Value(s));
        let code = out.template_code(body.len(), &self.interp.globals);
        if let Some(t) = RenderTemplate::read(&code, from, &param, &[]) {
            out.body_template = Some((t, guard));
        }
    }

    /// The body of a function of positional parameters that is one
    /// `render-html` call (`RenderBegin`, the markup, `RenderEnd Return`),
    /// as a template of its parameters: a page's entry point, which the
    /// machine writes whole when it starts with a call of it.
    fn html_template(&self, out: &mut Out, fid: FuncId) {
        let func = &self.funcs[fid];
        if func.rest || !func.keys.is_empty() {
            return;
        }
        let Some(Op::RenderBegin(_)) = out.code.first() else {
            return;
        };
        let Some(end) = out.code.iter().position(|op| *op == Op::RenderEnd) else {
            return;
        };
        // The return, or (before `thread_jumps`) a jump past the fallback
        // to it.
        let ret = match out.code.get(end + 1) {
            Some(&Op::Jump(t)) => out.code.get(t as usize),
            op => op,
        };
        if ret != Some(&Op::Return) {
            return;
        }
        let params = func.nparams;
        let param = |s: u16| (s < params).then_some(SlotIs::Value(s));
        let code = out.template_code(end, &self.interp.globals);
        out.html_template = RenderTemplate::read(&code, 1, &param, &[Inline::RenderHtml]);
    }

    /// Cells for the parameters of `fid` that live in one.
    fn param_cells(&self, out: &mut Out, fid: FuncId) {
        for &p in &self.funcs[fid].params {
            if self.bindings[p].needs_cell() {
                out.op(Op::MakeCell(self.bindings[p].slot));
            }
        }
    }

    fn ret(out: &mut Out, tail: bool) {
        if tail {
            out.op(Op::Return);
        }
    }

    fn expr(&mut self, out: &mut Out, e: &Expr, tail: bool) -> Result<()> {
        stacker::maybe_grow(64 * 1024, 2 * 1024 * 1024, || self.expr_inner(out, e, tail))
    }

    fn expr_inner(&mut self, out: &mut Out, e: &Expr, tail: bool) -> Result<()> {
        match e {
            Expr::Const(v) => {
                match v {
                    Value::Nil => out.op(Op::Nil),
                    Value::Bool(true) => out.op(Op::True),
                    Value::Bool(false) => out.op(Op::False),
                    Value::Int(i) if tail && i32::try_from(*i).is_ok() => {
                        out.op(Op::ReturnInt(*i as i32));
                        return Ok(());
                    }
                    Value::Int(i) if i32::try_from(*i).is_ok() => out.op(Op::Int(*i as i32)),
                    other => {
                        let i = out.constant(other.clone())?;
                        out.op(Op::Const(i))
                    }
                };
                Self::ret(out, tail);
            }
            Expr::Var(b) => {
                if tail {
                    if let Access::Slot(s, false) = self.access(out.fid, *b) {
                        out.op(Op::ReturnLocal(s));
                        return Ok(());
                    }
                }
                let op = match self.access(out.fid, *b) {
                    Access::Slot(s, false) if out.moves.contains(&(e as *const Expr)) => {
                        Op::LocalMove(s)
                    }
                    Access::Slot(s, false) => Op::Local(s),
                    Access::Slot(s, true) => Op::CellLocal(s),
                    Access::Capture(i, false) => Op::Capture(i),
                    Access::Capture(i, true) => Op::CellCapture(i),
                    Access::SelfRef => Op::SelfRef,
                    Access::Member(j) => Op::GroupMember(j),
                };
                out.op(op);
                Self::ret(out, tail);
            }
            Expr::Global(s) => {
                let g = self.interp.global_slot(*s);
                out.op(Op::Global(g));
                Self::ret(out, tail);
            }
            Expr::SetVar(b, v) => {
                self.expr(out, v, false)?;
                let op = match self.access(out.fid, *b) {
                    Access::Slot(s, false) => Op::SetLocal(s),
                    Access::Slot(s, true) => Op::SetCellLocal(s),
                    Access::Capture(i, _) => Op::SetCellCapture(i),
                    Access::SelfRef | Access::Member(_) => {
                        return Err(EvalError::new(
                            ErrorKind::Syntax,
                            "cannot set! a function defined in this body",
                        ));
                    }
                };
                out.op(op);
                out.op(Op::Nil);
                Self::ret(out, tail);
            }
            Expr::SetGlobal(s, v) => {
                self.expr(out, v, false)?;
                let g = self.interp.global_slot(*s);
                out.op(Op::SetGlobal(g));
                Self::ret(out, tail);
            }
            Expr::DefineGlobal(s, v) => {
                self.expr(out, v, false)?;
                let g = self.interp.global_slot(*s);
                out.op(Op::DefineGlobal(g));
                Self::ret(out, tail);
            }
            Expr::Init(..) | Expr::Group(_) => {
                self.effect(out, e)?;
                out.op(Op::Nil);
                Self::ret(out, tail);
            }
            Expr::If(t, a, b) => {
                let jumps = self.branch_unless(out, t)?;
                self.expr(out, a, tail)?;
                if tail {
                    jumps.iter().for_each(|&j| out.patch(j));
                    self.expr(out, b, true)?;
                } else {
                    let j = out.op(Op::Jump(0));
                    jumps.iter().for_each(|&j| out.patch(j));
                    self.expr(out, b, false)?;
                    out.patch(j);
                }
            }
            Expr::Seq(items) => {
                let n = items.len();
                for (i, item) in items.iter().enumerate() {
                    let last = i + 1 == n;
                    if !last && matches!(item, Expr::Init(..) | Expr::Group(_)) {
                        self.effect(out, item)?;
                    } else {
                        self.expr(out, item, tail && last)?;
                        if !last {
                            out.op(Op::Pop);
                        }
                    }
                }
                if n == 0 {
                    out.op(Op::Nil);
                    Self::ret(out, tail);
                }
            }
            Expr::Cells(bs, body) => {
                for &b in bs {
                    if self.bindings[b].needs_cell() {
                        out.op(Op::MakeCell(self.bindings[b].slot));
                    }
                }
                self.expr(out, body, tail)?;
            }
            Expr::Loop {
                id,
                params,
                inits,
                body,
            } => {
                let (head, slots) = self.loop_head(out, params, inits)?;
                out.loops.insert(*id, (head, slots));
                self.expr(out, body, tail)?;
            }
            Expr::Recur(id, args, pos) => {
                let saved = out.pos;
                out.pos = *pos;
                for a in args {
                    self.expr(out, a, false)?;
                }
                let Some((head, slots)) = out.loops.get(id).cloned() else {
                    return Err(EvalError::new(
                        ErrorKind::Syntax,
                        "internal error: a loop's recursion outside the loop",
                    ));
                };
                loop_back(out, slots.iter().rev(), head, *pos);
                out.pos = saved;
            }
            Expr::Lambda(fid, body) => {
                let proto = self.function(*fid, body, Some(out.fid), renders_markup(body))?;
                let i = out.nested(proto)?;
                out.op(Op::Closure(i));
                Self::ret(out, tail);
            }
            Expr::Call(f, args, pos) if matches!(**f, Expr::Global(_)) => {
                let Expr::Global(name) = **f else {
                    return Ok(());
                };
                let saved = out.pos;
                let get = match tail {
                    false => self.local_get_kw(out, name, args, *pos, false)?,
                    true => None,
                };
                let (g, n) = self.global_call_args(out, name, args, *pos)?;
                out.op(if tail {
                    Op::TailCallGlobal(g, n)
                } else {
                    Op::CallGlobal(g, n)
                });
                if let Some(at) = get {
                    check_get_kw(out, at, 3)?;
                }
                out.pos = saved;
            }
            Expr::Call(f, args, pos) => {
                let saved = out.pos;
                out.pos = *pos;
                self.expr(out, f, false)?;
                self.args(out, args)?;
                out.pos = *pos;
                let n = count(args.len(), "arguments")?;
                out.op(if tail { Op::TailCall(n) } else { Op::Call(n) });
                out.pos = saved;
            }
            Expr::Inline(Inline::RenderHtml, args, pos)
                if args.len() == 1 && self.in_render_html == 0 =>
            {
                // Render mode for the argument, then the ordinary call (run
                // instead when `render-html` has been redefined).
                self.in_render_html += 1;
                let r = self.render_html_call(out, args, *pos);
                self.in_render_html -= 1;
                r?;
                Self::ret(out, tail);
            }
            Expr::Inline(op, args, pos) => {
                let saved = out.pos;
                out.pos = *pos;
                if let Some(s) = self.unary_slot(out.fid, *op, args) {
                    out.op(Op::LocalUnary(*op, s));
                    out.op(Op::Local(s));
                    out.op(Op::Inline(*op, 1));
                    out.pos = saved;
                    Self::ret(out, tail);
                    return Ok(());
                }
                if let Some(fused) = self.fused_operands(out.fid, *op, args) {
                    // The fused form, then the plain sequence it stands for
                    // (run instead if the builtin has been redefined).
                    let fused_op = match fused {
                        Fused::LocalInt(s, k) if *op == Inline::Add => Op::AddLocalInt(*op, s, k),
                        Fused::LocalInt(s, k) if *op == Inline::Sub && k != i32::MIN => {
                            Op::AddLocalInt(*op, s, -k)
                        }
                        Fused::LocalInt(s, k) => Op::LocalInt(*op, s, k),
                        Fused::LocalLocal(a, b) => Op::LocalLocal(*op, a, b),
                    };
                    out.op(fused_op);
                    for a in args {
                        self.expr(out, a, false)?;
                    }
                    out.op(Op::Inline(*op, 2));
                    out.pos = saved;
                    Self::ret(out, tail);
                    return Ok(());
                }
                for a in args {
                    self.expr(out, a, false)?;
                }
                out.pos = *pos;
                if tail && args.len() == 2 && op.arity() == 2 {
                    // Fused with the return, then the plain sequence.
                    out.op(Op::InlineReturn(*op));
                }
                out.op(Op::Inline(*op, count(args.len(), "arguments")?));
                out.pos = saved;
                Self::ret(out, tail);
            }
            Expr::And(items) | Expr::Or(items) => {
                let is_and = matches!(e, Expr::And(_));
                if items.is_empty() {
                    out.op(if is_and { Op::True } else { Op::Nil });
                } else {
                    let mut jumps = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let last = i + 1 == items.len();
                        // The last item is in tail position (DESIGN: proper
                        // tail calls everywhere): it returns by itself, and
                        // only the short-circuit jumps reach the return below.
                        self.expr(out, item, tail && last)?;
                        if !last {
                            jumps.push(out.op(if is_and {
                                Op::JumpIfFalseKeep(0)
                            } else {
                                Op::JumpIfTrueKeep(0)
                            }));
                        }
                    }
                    for j in jumps {
                        out.patch(j);
                    }
                }
                Self::ret(out, tail);
            }
            Expr::Try {
                body,
                catch,
                finally,
                pos,
            } => {
                let saved = out.pos;
                out.pos = *pos;
                let fin_handler = finally.as_ref().map(|_| out.op(Op::PushHandler(0)));
                let catch_handler = out.op(Op::PushHandler(0));
                self.expr(out, body, false)?;
                out.op(Op::PopHandler);
                let skip_catch = out.op(Op::Jump(0));
                out.patch(catch_handler);
                match catch {
                    Some((b, handler)) => {
                        self.store(out, *b);
                        self.expr(out, handler, false)?;
                    }
                    None => {
                        out.op(Op::Raise);
                    }
                }
                out.patch(skip_catch);
                if let (Some(fh), Some((tmp, fin))) = (fin_handler, finally) {
                    out.op(Op::PopHandler);
                    self.expr(out, fin, false)?;
                    out.op(Op::Pop);
                    let skip = out.op(Op::Jump(0));
                    out.patch(fh);
                    let slot = self.bindings[*tmp].slot;
                    out.op(Op::SetLocal(slot));
                    self.expr(out, fin, false)?;
                    out.op(Op::Pop);
                    out.op(Op::Local(slot));
                    out.op(Op::Raise);
                    out.patch(skip);
                }
                out.pos = saved;
                Self::ret(out, tail);
            }
            Expr::Perform(args, pos) => {
                let saved = out.pos;
                for a in args {
                    self.expr(out, a, false)?;
                }
                out.pos = *pos;
                out.op(Op::Perform(count(args.len(), "arguments")?));
                out.pos = saved;
                Self::ret(out, tail);
            }
            Expr::Dict(entries, pos) => {
                for (k, v) in entries {
                    let i = out.constant(k.clone())?;
                    out.op(Op::Const(i));
                    self.expr(out, v, false)?;
                }
                let saved = out.pos;
                out.pos = *pos;
                out.op(Op::MakeDict(count(entries.len(), "dict entries")?));
                out.pos = saved;
                Self::ret(out, tail);
            }
            Expr::Element {
                tag,
                attrs,
                children,
                pos,
            } => {
                for (k, v) in attrs {
                    let i = out.constant(k.clone())?;
                    out.op(Op::Const(i));
                    self.expr(out, v, false)?;
                }
                for c in children {
                    self.expr(out, c, false)?;
                }
                let t = out.constant(Value::Str(tag.clone()))?;
                let saved = out.pos;
                out.pos = *pos;
                out.op(Op::MakeElement(
                    t,
                    count(attrs.len(), "attributes")?,
                    count(children.len(), "children")?,
                ));
                out.pos = saved;
                Self::ret(out, tail);
            }
            Expr::Component { name, island, func } => {
                // A component's body always gets render-mode code.
                match &**func {
                    Expr::Lambda(fid, body) => {
                        let proto = self.function(*fid, body, Some(out.fid), true)?;
                        let i = out.nested(proto)?;
                        out.op(Op::Closure(i));
                    }
                    other => self.expr(out, other, false)?,
                }
                let n = out.constant(Value::Symbol(*name))?;
                out.op(Op::MakeComponent(n, *island));
                Self::ret(out, tail);
            }
            Expr::Macro(func) => {
                self.expr(out, func, false)?;
                out.op(Op::MakeMacro);
                Self::ret(out, tail);
            }
        }
        Ok(())
    }

    /// Render mode: code that writes the markup `e` evaluates to into the
    /// innermost render buffer, leaving the stack as it was. It evaluates
    /// the same expressions in the same order as `expr` would (so last-use
    /// moves stay right); markup it knows is written directly, anything
    /// else is evaluated as a value and rendered (`RenderValue`).
    fn render(&mut self, out: &mut Out, e: &Expr) -> Result<()> {
        stacker::maybe_grow(64 * 1024, 2 * 1024 * 1024, || self.render_inner(out, e))
    }

    fn render_inner(&mut self, out: &mut Out, e: &Expr) -> Result<()> {
        match e {
            Expr::Const(Value::Nil | Value::Bool(false)) => {}
            Expr::Const(Value::Str(s)) => crate::html::escape_text(s, &mut out.text),
            Expr::Const(Value::Int(i)) => crate::html::push_int(*i, &mut out.text),
            Expr::Element {
                tag,
                attrs,
                children,
                pos,
            } if renderable_element(tag, attrs) && out.render_depth < MAX_RENDER_DEPTH => {
                out.render_depth += 1;
                let r = self.render_element(out, e, tag, attrs, children, *pos);
                out.render_depth -= 1;
                r?;
            }
            Expr::If(t, a, b) => {
                let jumps = self.branch_unless(out, t)?;
                self.render(out, a)?;
                let j = out.op(Op::Jump(0));
                jumps.iter().for_each(|&j| out.patch(j));
                self.render(out, b)?;
                out.patch(j);
            }
            Expr::Seq(items) => {
                let n = items.len();
                for (i, item) in items.iter().enumerate() {
                    if matches!(item, Expr::Init(..) | Expr::Group(_)) {
                        // Its value (nil) renders as nothing.
                        self.effect(out, item)?;
                    } else if i + 1 == n {
                        self.render(out, item)?;
                    } else {
                        self.expr(out, item, false)?;
                        out.op(Op::Pop);
                    }
                }
            }
            Expr::Cells(bs, body) => {
                for &b in bs {
                    if self.bindings[b].needs_cell() {
                        out.op(Op::MakeCell(self.bindings[b].slot));
                    }
                }
                self.render(out, body)?;
            }
            Expr::Loop {
                params,
                inits,
                body,
                ..
            } if map_loop(params, body).is_some() => {
                self.render_map_loop(out, params, inits, body)?;
            }
            Expr::Var(_) => match self.plain_local(out, e) {
                Some((s, _)) => {
                    out.op(Op::RenderLocal(s));
                }
                None => {
                    self.expr(out, e, false)?;
                    out.op(Op::RenderValue);
                }
            },
            Expr::Call(f, args, pos) if matches!(**f, Expr::Global(_)) => {
                let Expr::Global(name) = **f else {
                    return Ok(());
                };
                let saved = out.pos;
                if self.may_render(name) {
                    if let Some(keys) = keyword_pairs(args) {
                        self.key_call_render(out, name, args, keys, *pos)?;
                        out.pos = saved;
                        return Ok(());
                    }
                }
                let get = self.local_get_kw(out, name, args, *pos, true)?;
                let (g, n) = self.global_call_args(out, name, args, *pos)?;
                out.op(if self.may_render(name) {
                    Op::CallGlobalRender(g, n)
                } else {
                    Op::CallGlobal(g, n)
                });
                out.op(Op::RenderValue);
                if let Some(at) = get {
                    check_get_kw(out, at, 4)?;
                }
                out.pos = saved;
            }
            _ => {
                self.expr(out, e, false)?;
                out.op(Op::RenderValue);
            }
        }
        Ok(())
    }

    /// `(str ...)` as the value of attribute `name` in render mode: emits
    /// its arguments, `RenderStrAttr` and the plain call, and says so;
    /// emits nothing for any other value, an attribute name the
    /// attribute instructions don't take, or a URL attribute whose first
    /// piece could begin a scheme (`javascript:` made of pieces is checked
    /// whole, by `RenderUrlAttr`).
    fn str_attr(&mut self, out: &mut Out, name: &str, v: &Expr) -> Result<bool> {
        let Expr::Call(f, args, pos) = v else {
            return Ok(false);
        };
        let Expr::Global(g) = **f else {
            return Ok(false);
        };
        if g.as_str() != "str" || !crate::html::valid_attribute_name(name) || name == "srcset" {
            return Ok(false);
        }
        let safe_start = matches!(args.first(), Some(Expr::Const(Value::Str(s)))
            if crate::html::cannot_begin_scheme(s));
        if crate::html::is_url_attribute(name) && !safe_start {
            return Ok(false);
        }
        let saved = out.pos;
        let (slot, n) = self.global_call_args(out, g, args, *pos)?;
        out.op(Op::RenderStrAttr(n));
        out.op(Op::CallGlobal(slot, n));
        out.pos = saved;
        Ok(true)
    }

    /// `(render-html arg)`: `arg` in render mode, then the ordinary call
    /// beside it for when `render-html` has been redefined.
    fn render_html_call(&mut self, out: &mut Out, args: &[Expr], pos: Pos) -> Result<()> {
        let saved = out.pos;
        out.pos = pos;
        let begin = out.op(Op::RenderBegin(0));
        for a in args {
            self.render(out, a)?;
        }
        out.pos = pos;
        out.op(Op::RenderEnd);
        let done = out.op(Op::Jump(0));
        out.patch(begin);
        for a in args {
            self.expr(out, a, false)?;
        }
        out.pos = pos;
        out.op(Op::Inline(Inline::RenderHtml, 1));
        out.patch(done);
        out.pos = saved;
        Ok(())
    }

    /// Whether a call of global `name` may have render-mode code to enter:
    /// a component, a function compiled with some, or a name not bound yet.
    fn may_render(&self, name: crate::symbol::Symbol) -> bool {
        if name.as_str().starts_with('~') {
            return true;
        }
        match self.interp.global_value(name) {
            None => true,
            Some(Value::Closure(c)) => c.proto.render_entry != 0,
            Some(Value::Component(_)) => true,
            Some(_) => false,
        }
    }

    /// An element form in render mode: its tags and constant attributes as
    /// text made now, its other attributes and its children rendered in
    /// order. A guard sends it to the ordinary element form (built, then
    /// rendered) when its name has been bound since (DESIGN §3: a bound
    /// head is always a call).
    fn render_element(
        &mut self,
        out: &mut Out,
        e: &Expr,
        tag: &RcStr,
        attrs: &[(Value, Expr)],
        children: &[Expr],
        pos: Pos,
    ) -> Result<()> {
        let saved = out.pos;
        out.pos = pos;
        let t = out.constant(Value::Str(tag.clone()))?;
        // The outermost element form of a render path is guarded: the guard
        // jumps over the ordinary element form (built, then rendered: run
        // when a name has been bound since) to the markup written directly,
        // which then ends without a jump. The element forms inside it are
        // written directly with no guard of their own (so no ordinary form
        // each, and their constant markup runs together with their
        // parent's): the outer guard checks their names too.
        let guard = match &mut out.guard_tags {
            Some(tags) => {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
                None
            }
            None => {
                let guard = out.op(Op::ElementGuard(t, 0));
                self.expr(out, e, false)?;
                out.pos = pos;
                out.op(Op::RenderValue);
                let done = out.op(Op::Jump(0));
                out.patch(guard);
                out.guard_tags = Some(vec![tag.clone()]);
                Some((guard, done))
            }
        };
        let fragment = &**tag == "<>";
        if !fragment {
            out.text.push('<');
            out.text.push_str(tag);
        }
        for (k, v) in attrs {
            let Value::Keyword(name) = k else { continue };
            if fragment {
                // Evaluated, and left out as `render-html` leaves out a
                // fragment's attributes.
                self.expr(out, v, false)?;
                out.op(Op::Pop);
                continue;
            }
            let constant = match v {
                Expr::Const(c) => {
                    let mut text = String::new();
                    crate::html::render_attribute(tag, *name, c, &mut text)
                        .ok()
                        .map(|()| text)
                }
                _ => None,
            };
            match constant {
                Some(text) => out.text.push_str(&text),
                None => {
                    if !self.str_attr(out, name.as_str(), v)? {
                        self.expr(out, v, false)?;
                    }
                    out.pos = pos;
                    let text = name.as_str();
                    if crate::html::valid_attribute_name(text)
                        && !crate::html::is_url_attribute(text)
                    {
                        let n = out.constant(Value::str(&format!(" {text}")))?;
                        out.op(Op::RenderAttrText(n));
                    } else if crate::html::valid_attribute_name(text) {
                        let n = out.constant(Value::str(text))?;
                        out.op(Op::RenderUrlAttr(t, n));
                    } else {
                        let n = out.constant(k.clone())?;
                        out.op(Op::RenderAttr(t, n));
                    }
                }
            }
        }
        if !fragment {
            out.text.push('>');
        }
        if crate::html::is_void(tag) {
            // Built and left out, as `render-html` leaves out a void
            // element's children.
            for c in children {
                self.expr(out, c, false)?;
                out.op(Op::Pop);
            }
        } else {
            for c in children {
                self.render(out, c)?;
            }
            if !fragment {
                out.text.push_str("</");
                out.text.push_str(tag);
                out.text.push('>');
            }
        }
        if let Some((guard, done)) = guard {
            // The guard checks every name written directly under it.
            let tags = out.guard_tags.take().unwrap_or_default();
            if tags.len() > 1 {
                let names =
                    out.constant(Value::list(tags.into_iter().map(Value::Str).collect()))?;
                if let Some(Op::ElementGuard(_, target)) = out.code.get(guard).copied() {
                    if let Some(op) = out.code.get_mut(guard) {
                        *op = Op::ElementGuard(names, target);
                    }
                }
            }
            out.patch(done);
        }
        out.pos = saved;
        Ok(())
    }

    /// An inlined `map` or `map-indexed` loop (see `Expander::hof`) in
    /// render mode: each item is rendered as it is made instead of being
    /// consed onto a list. The loop's other variables and their order of
    /// evaluation are as in the list-building loop.
    fn render_map_loop(
        &mut self,
        out: &mut Out,
        params: &[BindingId],
        inits: &[Expr],
        body: &Expr,
    ) -> Result<()> {
        let Some((done, recur_args, item, pos)) = map_loop(params, body) else {
            return self.render(out, body);
        };
        let (head, slots) = self.loop_head(out, params, inits)?;
        let step = self.map_step(out, done, recur_args);
        // Room for a `RenderEach` at the head, should the body turn out to
        // be a template: a jump to the next instruction until then.
        let each_at = step.map(|_| out.op(Op::Jump(head + 1)));
        let step_at = step.map(|s| out.op(Op::MapStep(s)));
        let more = self.branch_unless(out, done)?;
        let exit = out.op(Op::Jump(0));
        more.iter().for_each(|&j| out.patch(j));
        // Every variable but the accumulator (the last) is set anew.
        for (i, a) in recur_args.iter().enumerate() {
            self.expr(out, a, false)?;
            if let (0, Some(at), Some(s)) = (i, step_at, step) {
                check_map_step(out, at, s)?;
            }
        }
        self.render(out, item)?;
        if let (Some(at), Some(s)) = (step_at, step) {
            // The item bound first, from `(first xs)`: done by the head too.
            let first = match out.code.get(at + 9..at + 13) {
                Some(
                    &[
                        Op::LocalUnary(Inline::First, a),
                        Op::Local(b),
                        Op::Inline(Inline::First, 1),
                        Op::SetLocal(x),
                    ],
                ) if a == s && b == s && x != s => Some(x),
                _ => None,
            };
            if let (Some(x), Some(op)) = (first, out.code.get_mut(at)) {
                *op = Op::MapStepFirst(s, x);
            }
        }
        let set = slots.len().saturating_sub(1);
        // The loop comes back to its `RenderEach`, or past the jump left in
        // its place.
        let mut back = head;
        if let (Some(each), Some(at)) = (each_at, step_at) {
            back += 1;
            // The body's trailing markup is part of it.
            out.here();
            if let Some(shape) = loop_body_shape(out, at, set) {
                // The body's own variables are its item and index; the
                // loop's are not the body's to read; any other slot is
                // the frame's, unchanged while the loop runs.
                let slot_is = |t: u16| {
                    if t == shape.item {
                        Some(SlotIs::Item)
                    } else if shape.index.is_some_and(|(_, i)| i == t) {
                        Some(SlotIs::Index)
                    } else if slots.contains(&t) {
                        None
                    } else {
                        Some(SlotIs::Value(t))
                    }
                };
                let code = out.template_code(out.code.len(), &self.interp.globals);
                let steps: &[Inline] = match shape.index {
                    Some(_) => &[Inline::IsEmpty, Inline::Rest, Inline::First, Inline::Add],
                    None => &[Inline::IsEmpty, Inline::Rest, Inline::First],
                };
                if let Some(body) = RenderTemplate::read(&code, shape.from, &slot_is, steps) {
                    let t = count(out.templates.len(), "render loops")?;
                    out.templates.push(LoopTemplate {
                        body: Rc::new(body),
                        index: shape.index.map(|(slot, _)| slot),
                    });
                    if let Some(op) = out.code.get_mut(each) {
                        *op = Op::RenderEach(shape.list, t);
                        back = head;
                    }
                }
            }
        }
        let saved = out.pos;
        loop_back(out, slots.iter().take(set).rev(), back, pos);
        out.pos = saved;
        out.patch(exit);
        Ok(())
    }

    /// The list slot of a render-mode loop whose test is `(empty? xs)` and
    /// whose first new value is `(rest xs)`, `xs` a plain local: its head
    /// can be a `MapStep`.
    fn map_step(&self, out: &Out, done: &Expr, recur_args: &[Expr]) -> Option<u16> {
        let (Expr::Inline(Inline::IsEmpty, d, _), Some(Expr::Inline(Inline::Rest, r, _))) =
            (done, recur_args.first())
        else {
            return None;
        };
        let ([Expr::Var(a)], [Expr::Var(b)]) = (d.as_slice(), r.as_slice()) else {
            return None;
        };
        if a != b {
            return None;
        }
        let (s, _) = self.plain_local(out, d.first()?)?;
        let (t, moved) = self.plain_local(out, r.first()?)?;
        (s == t && !moved).then_some(s)
    }

    /// A loop's start: its variables set from `inits`; returns the pc of
    /// its head and the variables' slots.
    fn loop_head(
        &mut self,
        out: &mut Out,
        params: &[BindingId],
        inits: &[Expr],
    ) -> Result<(u32, Vec<u16>)> {
        for init in inits {
            self.expr(out, init, false)?;
        }
        let slots: Vec<u16> = params.iter().map(|&b| self.bindings[b].slot).collect();
        for &s in slots.iter().rev() {
            out.op(Op::SetLocal(s));
        }
        Ok((out.here(), slots))
    }

    /// A call from markup of global `name` whose arguments are all
    /// keyword-value pairs with constant keywords `keys`: the values, then
    /// `KeyCallRender`, then the plain call's `CallGlobalRender` and
    /// `RenderValue`, which run when the callee does not take exactly these
    /// keys (`KeyCallRender` puts the keywords back first).
    fn key_call_render(
        &mut self,
        out: &mut Out,
        name: crate::symbol::Symbol,
        args: &[Expr],
        keys: Vec<crate::symbol::Symbol>,
        pos: Pos,
    ) -> Result<()> {
        out.pos = pos;
        for v in args.iter().skip(1).step_by(2) {
            self.expr(out, v, false)?;
        }
        out.pos = pos;
        let g = self.interp.global_slot(name);
        let n = count(args.len(), "arguments")?;
        let k = count(out.call_keys.len(), "keyword calls")?;
        out.call_keys.push(keys.into_boxed_slice());
        out.op(Op::KeyCallRender(g, k));
        out.op(Op::CallGlobalRender(g, n));
        out.op(Op::RenderValue);
        Ok(())
    }

    /// `(get x :kw)` with `x` a plain local: emits `LocalGetKw` (in render
    /// mode, `RenderLocalGetKw`) at `pos`, which the plain call must follow
    /// (see `check_get_kw`); returns its pc.
    fn local_get_kw(
        &mut self,
        out: &mut Out,
        name: crate::symbol::Symbol,
        args: &[Expr],
        pos: Pos,
        render: bool,
    ) -> Result<Option<usize>> {
        let [x, Expr::Const(key @ Value::Keyword(_))] = args else {
            return Ok(None);
        };
        let Some((slot, moved)) = self.plain_local(out, x) else {
            return Ok(None);
        };
        if name.as_str() != "get" {
            return Ok(None);
        }
        let Ok(dict_key) = crate::dict::Key::new(key.clone()) else {
            return Ok(None);
        };
        let key = match out.dict_keys.iter().position(|k| k.value().equals(key)) {
            Some(i) => i,
            None => {
                out.dict_keys.push(dict_key);
                out.dict_keys.len() - 1
            }
        };
        let key = count(key, "keyword lookups")?;
        out.pos = pos;
        let op = if render {
            Op::RenderLocalGetKw { slot, key, moved }
        } else {
            Op::LocalGetKw { slot, key, moved }
        };
        Ok(Some(out.op(op)))
    }

    /// The arguments of a call of global `name` at `pos` (left at that
    /// position for the call instruction), and the call's operands.
    fn global_call_args(
        &mut self,
        out: &mut Out,
        name: crate::symbol::Symbol,
        args: &[Expr],
        pos: Pos,
    ) -> Result<(u32, u16)> {
        out.pos = pos;
        self.args(out, args)?;
        out.pos = pos;
        let g = self.interp.global_slot(name);
        Ok((g, count(args.len(), "arguments")?))
    }

    /// A call's arguments, left to right; two plain locals in a row become
    /// one `Local2`.
    fn args(&mut self, out: &mut Out, args: &[Expr]) -> Result<()> {
        let mut i = 0;
        while i < args.len() {
            if let (Some(a), Some(b)) = (args.get(i), args.get(i + 1)) {
                if let (Some((a, move_a)), Some((b, move_b))) =
                    (self.plain_local(out, a), self.plain_local(out, b))
                {
                    out.op(Op::Local2 {
                        a,
                        b,
                        move_a,
                        move_b,
                    });
                    i += 2;
                    continue;
                }
            }
            if let Some(a) = args.get(i) {
                self.expr(out, a, false)?;
            }
            i += 1;
        }
        Ok(())
    }

    /// The slot of a read of a plain (cell-less) local of this function,
    /// and whether the read is its last use (so it may move the value).
    fn plain_local(&self, out: &Out, e: &Expr) -> Option<(u16, bool)> {
        match e {
            Expr::Var(b) => match self.access(out.fid, *b) {
                Access::Slot(s, false) => Some((s, out.moves.contains(&(e as *const Expr)))),
                _ => None,
            },
            _ => None,
        }
    }

    /// Operands of a binary inline op that fit a fused instruction.
    fn fused_operands(&self, fid: FuncId, op: Inline, args: &[Expr]) -> Option<Fused> {
        if !matches!(
            op,
            Inline::Add
                | Inline::Sub
                | Inline::Mul
                | Inline::Lt
                | Inline::Gt
                | Inline::Le
                | Inline::Ge
                | Inline::Eq
        ) {
            return None;
        }
        let slot = |e: &Expr| match e {
            Expr::Var(b) => match self.access(fid, *b) {
                Access::Slot(s, false) => Some(s),
                _ => None,
            },
            _ => None,
        };
        match args {
            [a, Expr::Const(Value::Int(k))] if !matches!(op, Inline::Mul) => {
                Some(Fused::LocalInt(slot(a)?, i32::try_from(*k).ok()?))
            }
            [a, b] => Some(Fused::LocalLocal(slot(a)?, slot(b)?)),
            _ => None,
        }
    }

    /// The slot of the single plain-local operand of a fusable unary op.
    fn unary_slot(&self, fid: FuncId, op: Inline, args: &[Expr]) -> Option<u16> {
        if !matches!(
            op,
            Inline::First
                | Inline::Rest
                | Inline::IsEmpty
                | Inline::IsNil
                | Inline::Not
                | Inline::IsList
        ) {
            return None;
        }
        match args {
            [Expr::Var(b)] => match self.access(fid, *b) {
                Access::Slot(s, false) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Emits a test that jumps when false; returns the jumps to patch to the
    /// else branch. Comparisons fuse with the jump.
    fn branch_unless(&mut self, out: &mut Out, test: &Expr) -> Result<Vec<usize>> {
        if let Expr::Inline(op, args, pos) = test {
            if let Some(s) = self.unary_slot(out.fid, *op, args) {
                let saved = out.pos;
                out.pos = *pos;
                let first = out.op(Op::JumpUnlessLocalUnary(*op, s, 0, false));
                out.op(Op::Local(s));
                out.op(Op::Inline(*op, 1));
                let second = out.op(Op::JumpIfFalse(0));
                out.pos = saved;
                return Ok(vec![first, second]);
            }
        }
        // `(not (op s))` of a fusable unary op on a plain local.
        if let Expr::Inline(Inline::Not, outer, not_pos) = test {
            if let [Expr::Inline(op, args, pos)] = outer.as_slice() {
                if let Some(s) = self.unary_slot(out.fid, *op, args) {
                    let saved = out.pos;
                    out.pos = *pos;
                    let first = out.op(Op::JumpUnlessLocalUnary(*op, s, 0, true));
                    out.op(Op::Local(s));
                    out.op(Op::Inline(*op, 1));
                    out.pos = *not_pos;
                    out.op(Op::Inline(Inline::Not, 1));
                    let second = out.op(Op::JumpIfFalse(0));
                    out.pos = saved;
                    return Ok(vec![first, second]);
                }
            }
        }
        // `(not (cmp a b))` and `(cmp a b)` of two plain locals.
        let (negate, cmp) = match test {
            Expr::Inline(Inline::Not, args, _) if args.len() == 1 => (true, &args[0]),
            _ => (false, test),
        };
        if let Expr::Inline(op, args, pos) = cmp {
            if matches!(
                op,
                Inline::Lt | Inline::Gt | Inline::Le | Inline::Ge | Inline::Eq
            ) {
                if let Some(Fused::LocalLocal(a, b)) = self.fused_operands(out.fid, *op, args) {
                    let saved = out.pos;
                    out.pos = *pos;
                    let first = out.op(Op::JumpUnlessLocalLocal {
                        which: *op,
                        a,
                        b,
                        negate,
                        target: 0,
                    });
                    out.op(Op::Local(a));
                    out.op(Op::Local(b));
                    out.op(Op::Inline(*op, 2));
                    if negate {
                        if let Expr::Inline(_, _, not_pos) = test {
                            out.pos = *not_pos;
                        }
                        out.op(Op::Inline(Inline::Not, 1));
                    }
                    let second = out.op(Op::JumpIfFalse(0));
                    out.pos = saved;
                    return Ok(vec![first, second]);
                }
            }
        }
        if let Expr::Inline(op, args, pos) = test {
            if matches!(
                op,
                Inline::Lt | Inline::Gt | Inline::Le | Inline::Ge | Inline::Eq
            ) && args.len() == 2
            {
                let saved = out.pos;
                out.pos = *pos;
                if let Some(Fused::LocalInt(s, k)) = self.fused_operands(out.fid, *op, args) {
                    let first = out.op(Op::JumpUnlessLocalInt(*op, s, k, 0));
                    for a in args {
                        self.expr(out, a, false)?;
                    }
                    out.op(Op::Inline(*op, 2));
                    let second = out.op(Op::JumpIfFalse(0));
                    out.pos = saved;
                    return Ok(vec![first, second]);
                }
                if let (
                    Inline::Eq,
                    [
                        Expr::Var(b),
                        Expr::Const(c @ (Value::Symbol(_) | Value::Keyword(_))),
                    ],
                ) = (*op, args.as_slice())
                {
                    if let Access::Slot(s, false) = self.access(out.fid, *b) {
                        let k = out.constant(c.clone())?;
                        let first = out.op(Op::JumpUnlessLocalIsConst(s, k, 0));
                        for a in args {
                            self.expr(out, a, false)?;
                        }
                        out.pos = *pos;
                        out.op(Op::Inline(*op, 2));
                        let second = out.op(Op::JumpIfFalse(0));
                        out.pos = saved;
                        return Ok(vec![first, second]);
                    }
                }
                for a in args {
                    self.expr(out, a, false)?;
                }
                out.pos = *pos;
                let first = out.op(Op::JumpUnlessCmp(*op, 0));
                out.op(Op::Inline(*op, 2));
                let second = out.op(Op::JumpIfFalse(0));
                out.pos = saved;
                return Ok(vec![first, second]);
            }
        }
        self.expr(out, test, false)?;
        Ok(vec![out.op(Op::JumpIfFalse(0))])
    }

    /// Stores the value on top of the stack into binding `b` of this frame.
    fn store(&mut self, out: &mut Out, b: BindingId) {
        let bd = &self.bindings[b];
        if bd.forward && bd.needs_cell() {
            out.op(Op::SetCellLocal(bd.slot));
        } else {
            out.op(Op::SetLocal(bd.slot));
            if bd.needs_cell() {
                out.op(Op::MakeCell(bd.slot));
            }
        }
    }

    /// Emits an `Init` or `Group`, which leave nothing on the stack.
    fn effect(&mut self, out: &mut Out, e: &Expr) -> Result<()> {
        match e {
            Expr::Init(b, v) => {
                self.expr(out, v, false)?;
                self.store(out, *b);
            }
            Expr::Group(members) => {
                let mut def = GroupDef {
                    members: Vec::new(),
                };
                for (b, fid, body) in members {
                    let proto = self.function(*fid, body, Some(out.fid), renders_markup(body))?;
                    let pi = out.nested(proto)?;
                    def.members.push((pi, self.bindings[*b].slot));
                }
                out.groups.push(def);
                let gi = count(out.groups.len() - 1, "function groups")?;
                out.op(Op::Group(gi));
            }
            other => {
                self.expr(out, other, false)?;
                out.op(Op::Pop);
            }
        }
        Ok(())
    }
}

/// Whether render mode writes this element form itself: not `raw!` (whose
/// rule is `render-html`'s), and every attribute a keyword.
/// The keywords of a call whose arguments are all keyword-value pairs
/// with constant keywords, each keyword once; `None` for any other call.
fn keyword_pairs(args: &[Expr]) -> Option<Vec<crate::symbol::Symbol>> {
    if args.is_empty() || !args.len().is_multiple_of(2) {
        return None;
    }
    let mut keys = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks_exact(2) {
        match pair.first() {
            Some(Expr::Const(Value::Keyword(k))) if !keys.contains(k) => keys.push(*k),
            _ => return None,
        }
    }
    Some(keys)
}

/// Checks that the `LocalGetKw` or `RenderLocalGetKw` at `at` is followed
/// by the `n` instructions its fast path skips: the plain sequence it
/// stands for.
fn check_get_kw(out: &Out, at: usize, n: usize) -> Result<()> {
    let code = out.code.get(at..).unwrap_or_default();
    let (fused, plain) = code.split_first().unwrap_or((&Op::Nil, &[]));
    let (Op::LocalGetKw { slot, key, moved } | Op::RenderLocalGetKw { slot, key, moved }, true) =
        (fused, plain.len() == n)
    else {
        return Err(get_kw_error());
    };
    let render = matches!(fused, Op::RenderLocalGetKw { .. });
    let read = match plain.first() {
        Some(Op::Local(s)) => Some((*s, false)),
        Some(Op::LocalMove(s)) => Some((*s, true)),
        _ => None,
    };
    let rest_ok = match plain.get(1..) {
        Some([Op::Const(k), Op::CallGlobal(_, 2)]) => !render && same_key(out, *key, *k),
        Some([Op::Const(k), Op::CallGlobal(_, 2), Op::RenderValue]) => {
            render && same_key(out, *key, *k)
        }
        _ => false,
    };
    if read == Some((*slot, *moved)) && rest_ok {
        Ok(())
    } else {
        Err(get_kw_error())
    }
}

/// A loop's back edge: the new values on the stack popped into `slots`
/// (in that order), then back to `head`, counting a step at `pos`; the
/// last store and the jump are one `SetLocalLoopBack`.
fn loop_back<'a>(out: &mut Out, slots: impl Iterator<Item = &'a u16>, head: u32, pos: Pos) {
    let mut last = None;
    for &s in slots {
        if let Some(prev) = last.replace(s) {
            out.op(Op::SetLocal(prev));
        }
    }
    out.pos = pos;
    out.op(match last {
        Some(s) => Op::SetLocalLoopBack(s, head),
        None => Op::LoopBack(head),
    });
}

/// Checks that the `MapStep(s)` at `at` is followed by the eight
/// instructions its fast path skips (see `Op::MapStep`).
fn check_map_step(out: &Out, at: usize, s: u16) -> Result<()> {
    let ok = matches!(
        out.code.get(at..),
        Some([
            Op::MapStep(_),
            Op::JumpUnlessLocalUnary(Inline::IsEmpty, a, _, false),
            Op::Local(b),
            Op::Inline(Inline::IsEmpty, 1),
            Op::JumpIfFalse(_),
            Op::Jump(_),
            Op::LocalUnary(Inline::Rest, c),
            Op::Local(d),
            Op::Inline(Inline::Rest, 1),
        ]) if [*a, *b, *c, *d] == [s; 4]
    );
    if ok {
        Ok(())
    } else {
        Err(EvalError::new(
            ErrorKind::Syntax,
            "internal error: a loop head not followed by its plain test and rest",
        ))
    }
}

/// How a render-mode loop's body starts, for reading it as a template.
struct LoopBodyShape {
    /// The slots of the list left and of the item.
    list: u16,
    item: u16,
    /// `map-indexed`: the slots of the loop's index and of the body's.
    index: Option<(u16, u16)>,
    /// Where the body's own code starts.
    from: usize,
}

/// The shape of the render-mode loop whose `MapStep` is at `at` and which
/// sets `set` variables each time round: a `map` loop whose head binds the
/// item (`MapStepFirst`), or a `map-indexed` loop, whose head is followed
/// by the index's step and the body binding the index and the item, each
/// in the plain sequence of its expansion (see `Expander::hof`).
fn loop_body_shape(out: &Out, at: usize, set: usize) -> Option<LoopBodyShape> {
    match (set, out.code.get(at)?) {
        (1, &Op::MapStepFirst(list, item)) => Some(LoopBodyShape {
            list,
            item,
            index: None,
            from: at + 13,
        }),
        (2, &Op::MapStep(list)) => match out.code.get(at + 9..at + 19)? {
            &[
                Op::AddLocalInt(Inline::Add, n, 1),
                Op::Local(n2),
                Op::Int(1),
                Op::Inline(Inline::Add, 2),
                Op::Local(n3) | Op::LocalMove(n3),
                Op::SetLocal(i),
                Op::LocalUnary(Inline::First, l),
                Op::Local(l2),
                Op::Inline(Inline::First, 1),
                Op::SetLocal(item),
            ] if [n2, n3] == [n; 2]
                && [l, l2] == [list; 2]
                && item != i
                && ![list, n].contains(&item)
                && ![list, n].contains(&i) =>
            {
                Some(LoopBodyShape {
                    list,
                    item,
                    index: Some((n, i)),
                    from: at + 19,
                })
            }
            _ => None,
        },
        _ => None,
    }
}

fn get_kw_error() -> EvalError {
    EvalError::new(
        ErrorKind::Syntax,
        "internal error: a keyword `get` not followed by its plain call",
    )
}

/// Whether `LocalGetKw`'s key `key` is the keyword constant `k`.
fn same_key(out: &Out, key: u32, k: u32) -> bool {
    match (out.dict_keys.get(key as usize), out.consts.get(k as usize)) {
        (Some(key), Some(k @ Value::Keyword(_))) => key.value().equals(k),
        _ => false,
    }
}

fn renderable_element(tag: &str, attrs: &[(Value, Expr)]) -> bool {
    tag != "raw!" && attrs.iter().all(|(k, _)| matches!(k, Value::Keyword(_)))
}

/// Whether a function body's value is markup in some tail position (an
/// element form or a component call): such a function also gets
/// render-mode code, so calls from markup render it in place.
pub(super) fn renders_markup(e: &Expr) -> bool {
    match e {
        Expr::Element { tag, .. } => &**tag != "raw!",
        Expr::Call(f, _, _) => matches!(&**f, Expr::Global(s) if s.as_str().starts_with('~')),
        Expr::If(_, a, b) => renders_markup(a) || renders_markup(b),
        Expr::Seq(items) => items.last().is_some_and(renders_markup),
        Expr::Cells(_, body) => renders_markup(body),
        _ => false,
    }
}

/// The parts of an inlined `map`/`map-indexed` loop (`Expander::hof`):
/// its emptiness test, the new values of its variables but the
/// accumulator, the item expression, and the recursion's position. The
/// shape is the expander's own: a body
/// `(if (empty? xs) (%reverse-owned acc) (recur (rest xs) [i+1] (cons item acc)))`
/// with the accumulator the last variable.
fn map_loop<'e>(
    params: &[BindingId],
    body: &'e Expr,
) -> Option<(&'e Expr, &'e [Expr], &'e Expr, Pos)> {
    let acc = *params.last()?;
    let Expr::If(done, result, recur) = body else {
        return None;
    };
    let Expr::Inline(Inline::IsEmpty, _, _) = &**done else {
        return None;
    };
    match &**result {
        Expr::Inline(Inline::ReverseOwned, r, _) if matches!(r.as_slice(), [Expr::Var(b)] if *b == acc) =>
            {}
        _ => return None,
    }
    let Expr::Recur(_, args, pos) = &**recur else {
        return None;
    };
    let (last, others) = args.split_last()?;
    if others.len() + 1 != params.len() {
        return None;
    }
    match last {
        Expr::Inline(Inline::Cons, c, _) => match c.as_slice() {
            [item, Expr::Var(b)] if *b == acc => Some((done, others, item, *pos)),
            _ => None,
        },
        _ => None,
    }
}
