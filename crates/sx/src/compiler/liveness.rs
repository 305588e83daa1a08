//! Last-use analysis: which variable reads may *move* the value out of its
//! frame slot instead of copying it.
//!
//! Moving matters for values updated in place when nothing else holds them:
//! in `(assoc d k (+ 1 (get d k 0)))` the read of `d` inside `get` is its
//! last use, so `get` receives the slot's reference and the slot lets go;
//! by the time `assoc` runs, its argument is the only reference and the
//! dict is updated in place rather than copied along the path.
//!
//! One backward walk in reverse evaluation order finds, for every read,
//! whether the variable is read again later on some path. The only backward
//! jumps are named-let loops (`Expr::Loop`): at a loop's head everything
//! its body reads counts as live, so a value from outside the loop is never
//! moved inside it, while a loop variable read for the last time before
//! the `Recur` that replaces it is. Conservative choices: only
//! plain slots of the running function (never cells or captures), nothing
//! inside a function that has a `try` (a caught error can resume evaluation
//! in a handler that reads variables the body had already moved).

use std::collections::HashSet;

use super::ast::{Binding, BindingId, Expr, Func, FuncId};

/// The `Var` nodes (by address) that are last uses in function `fid`.
pub(crate) fn last_uses(
    funcs: &[Func],
    bindings: &[Binding],
    fid: FuncId,
    body: &Expr,
) -> HashSet<*const Expr> {
    let mut moves = HashSet::new();
    if contains_try(body) {
        return moves;
    }
    let mut w = Walk {
        funcs,
        bindings,
        fid,
        moves: &mut moves,
        loop_heads: std::collections::HashMap::new(),
    };
    let mut live = HashSet::new();
    w.walk(body, &mut live);
    moves
}

fn contains_try(e: &Expr) -> bool {
    let mut found = false;
    visit(e, &mut |x| found |= matches!(x, Expr::Try { .. }));
    found
}

/// Calls `f` on every node of this function's body (not nested lambdas').
/// Under `stacker`, as every walk of the tree: nesting is bounded by
/// memory only (a debug build overflowed 8 MB on 20 000 nested lists).
fn visit(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || visit_inner(e, f));
}

fn visit_inner(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::SetVar(_, v)
        | Expr::SetGlobal(_, v)
        | Expr::DefineGlobal(_, v)
        | Expr::Init(_, v)
        | Expr::Cells(_, v)
        | Expr::Macro(v) => visit(v, f),
        Expr::Component { func, .. } => visit(func, f),
        Expr::If(a, b, c) => {
            visit(a, f);
            visit(b, f);
            visit(c, f);
        }
        Expr::Seq(xs) | Expr::And(xs) | Expr::Or(xs) | Expr::Perform(xs, _) => {
            xs.iter().for_each(|x| visit(x, f));
        }
        Expr::Call(g, xs, _) => {
            visit(g, f);
            xs.iter().for_each(|x| visit(x, f));
        }
        Expr::Inline(_, xs, _) => xs.iter().for_each(|x| visit(x, f)),
        Expr::Try {
            body,
            catch,
            finally,
            ..
        } => {
            visit(body, f);
            if let Some((_, h)) = catch {
                visit(h, f);
            }
            if let Some((_, h)) = finally {
                visit(h, f);
            }
        }
        Expr::Dict(entries, _) => entries.iter().for_each(|(_, x)| visit(x, f)),
        Expr::Element {
            attrs, children, ..
        } => {
            attrs.iter().for_each(|(_, x)| visit(x, f));
            children.iter().for_each(|x| visit(x, f));
        }
        Expr::Loop { inits, body, .. } => {
            inits.iter().for_each(|x| visit(x, f));
            visit(body, f);
        }
        Expr::Recur(_, xs, _) => xs.iter().for_each(|x| visit(x, f)),
        Expr::Const(_) | Expr::Var(_) | Expr::Global(_) | Expr::Lambda(..) | Expr::Group(_) => {}
    }
}

struct Walk<'a> {
    funcs: &'a [Func],
    bindings: &'a [Binding],
    fid: FuncId,
    moves: &'a mut HashSet<*const Expr>,
    /// For each loop: what is live at its head (so after a `Recur`).
    loop_heads: std::collections::HashMap<usize, (HashSet<BindingId>, Vec<BindingId>)>,
}

impl Walk<'_> {
    /// A binding this analysis tracks: a plain slot of the running function.
    fn tracked(&self, b: BindingId) -> bool {
        let bd = &self.bindings[b];
        bd.func == self.fid && !bd.needs_cell() && bd.group.is_none()
    }

    /// Captures a nested function takes from this frame count as reads.
    fn captures(&self, fid: FuncId, live: &mut HashSet<BindingId>) {
        for &b in &self.funcs[fid].captures {
            if self.tracked(b) {
                live.insert(b);
            }
        }
    }

    /// Walks `e` backwards: on entry `live` holds the variables read after
    /// `e`; on exit, those read from the start of `e` on.
    fn walk(&mut self, e: &Expr, live: &mut HashSet<BindingId>) {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.walk_inner(e, live));
    }

    fn walk_inner(&mut self, e: &Expr, live: &mut HashSet<BindingId>) {
        match e {
            Expr::Const(_) | Expr::Global(_) => {}
            Expr::Var(b) => {
                if self.tracked(*b) && live.insert(*b) {
                    self.moves.insert(e as *const Expr);
                }
            }
            Expr::SetVar(b, v) | Expr::Init(b, v) => {
                live.remove(b);
                self.walk(v, live);
            }
            Expr::SetGlobal(_, v)
            | Expr::DefineGlobal(_, v)
            | Expr::Cells(_, v)
            | Expr::Macro(v) => self.walk(v, live),
            Expr::Component { func, .. } => self.walk(func, live),
            Expr::If(t, a, b) => {
                let mut la = live.clone();
                self.walk(a, &mut la);
                self.walk(b, live);
                live.extend(la);
                self.walk(t, live);
            }
            Expr::Seq(items) | Expr::Perform(items, _) | Expr::Inline(_, items, _) => {
                for item in items.iter().rev() {
                    self.walk(item, live);
                }
            }
            Expr::Call(f, args, _) => {
                for a in args.iter().rev() {
                    self.walk(a, live);
                }
                self.walk(f, live);
            }
            Expr::And(items) | Expr::Or(items) => {
                // After item i evaluation either stops (what is live after
                // the whole form) or goes on to item i+1.
                let exit = live.clone();
                for item in items.iter().rev() {
                    live.extend(exit.iter().copied());
                    self.walk(item, live);
                }
            }
            Expr::Lambda(fid, _) => self.captures(*fid, live),
            Expr::Group(members) => {
                for (_, fid, _) in members {
                    self.captures(*fid, live);
                }
            }
            Expr::Dict(entries, _) => {
                for (_, v) in entries.iter().rev() {
                    self.walk(v, live);
                }
            }
            Expr::Element {
                attrs, children, ..
            } => {
                for c in children.iter().rev() {
                    self.walk(c, live);
                }
                for (_, v) in attrs.iter().rev() {
                    self.walk(v, live);
                }
            }
            Expr::Loop {
                id,
                params,
                inits,
                body,
            } => {
                // At the head: whatever the body reads (it may run again
                // after any read, so nothing from outside the loop is moved
                // inside it), plus what is read after the loop, less what
                // the body itself binds before reading it (its `let`s and
                // nested loops' variables: set anew in every iteration).
                let mut head = live.clone();
                let mut bound = Vec::new();
                visit(body, &mut |x| match x {
                    Expr::Var(b) if self.tracked(*b) => {
                        head.insert(*b);
                    }
                    Expr::Init(b, _) if !self.bindings[*b].forward => bound.push(*b),
                    Expr::Loop { params, .. } => bound.extend(params.iter().copied()),
                    Expr::Lambda(fid, _) => {
                        for &b in &self.funcs[*fid].captures {
                            if self.tracked(b) {
                                head.insert(b);
                            }
                        }
                    }
                    Expr::Group(members) => {
                        for (_, fid, _) in members {
                            for &b in &self.funcs[*fid].captures {
                                if self.tracked(b) {
                                    head.insert(b);
                                }
                            }
                        }
                    }
                    _ => {}
                });
                for b in bound {
                    if !live.contains(&b) {
                        head.remove(&b);
                    }
                }
                self.loop_heads.insert(*id, (head, params.clone()));
                // The body's exits go on after the loop; its `Recur`s take
                // what is live at the head from `loop_heads`.
                self.walk(body, live);
                // Before the head the parameters are set from the inits.
                for p in params {
                    live.remove(p);
                }
                for init in inits.iter().rev() {
                    self.walk(init, live);
                }
            }
            Expr::Recur(id, args, _) => {
                // A Recur sets the parameters and goes to the head.
                // The old parameter values die there.
                let (mut after, params) = self.loop_heads.get(id).cloned().unwrap_or_default();
                for p in &params {
                    after.remove(p);
                }
                *live = after;
                for a in args.iter().rev() {
                    self.walk(a, live);
                }
            }
            Expr::Try { .. } => {
                // Functions with `try` are not analysed (see module docs);
                // reaching here means a bug in `last_uses`, so move nothing.
                live.extend(self.all_tracked());
            }
        }
    }

    fn all_tracked(&self) -> Vec<BindingId> {
        (0..self.bindings.len())
            .filter(|&b| self.tracked(b))
            .collect()
    }
}
