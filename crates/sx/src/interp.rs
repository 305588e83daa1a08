//! The interpreter: global environment, budgets, and the entry points the
//! host and the CLI use to evaluate SX.

use rustc_hash::FxHashMap as HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::compiler;
use crate::error::{Error, ErrorKind, EvalError, Result};
use crate::reader;
use crate::symbol::Symbol;
use crate::value::Value;
use crate::vm::{Closure, Inline, Machine, Native, NativeFn, Outcome, Request, Special};

/// Limits that end a run with a [`ErrorKind::Budget`] error.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Most function calls one run may make.
    pub max_steps: Option<u64>,
    /// Longest one run may take (checked every 1024 calls).
    pub max_time: Option<Duration>,
    /// Most heap bytes in use (process-wide, needs [`crate::alloc::CountingAlloc`]
    /// installed as the global allocator; without it only the machine's own
    /// stacks are counted).
    pub max_heap: Option<usize>,
    /// Most nested (non-tail) calls.
    pub max_depth: usize,
    /// Count [`Budget::max_heap`] against what each machine itself kept
    /// (bytes its runs allocated and did not free, on its thread) instead of
    /// the whole process: for servers running many machines at once.
    pub heap_per_machine: bool,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_steps: None,
            max_time: None,
            max_heap: None,
            max_depth: 10_000_000,
            heap_per_machine: false,
        }
    }
}

/// An SX interpreter: the global environment plus configuration.
///
/// Values are reference-counted without atomics, so an `Interp` and its
/// values stay on one thread; a multi-threaded host runs one per worker.
pub struct Interp {
    pub(crate) globals: Vec<Option<Value>>,
    global_index: HashMap<Symbol, u32>,
    global_names: Vec<Symbol>,
    inline_slots: Vec<u32>,
    /// Globals whose redefinition clears `Inline::HofIntact`.
    hof_slots: Vec<u32>,
    /// Bit `i` set: builtin `Inline::ALL[i]` has been redefined.
    inline_overridden: u32,
    /// Element names bound as globals after the prelude, with their slots.
    /// A form like `(p 1)` compiled while `p` was unbound builds an element;
    /// once `p` is bound it must be a call (DESIGN §3), so the machine
    /// checks this short list (usually empty) before building.
    shadowed_elements: Vec<(Symbol, u32)>,
    builtins_ready: bool,
    gensym_counter: u64,
    /// Where `str` builds its text before copying it into the result, so a
    /// call makes one allocation (the result) rather than two.
    pub(crate) str_scratch: String,
    pub budget: Budget,
}

impl Default for Interp {
    fn default() -> Interp {
        Interp::new()
    }
}

/// The prelude: library functions written in SX (higher-order functions run
/// on the machine, so they can suspend and recurse without native stack).
const PRELUDE: &str = include_str!("prelude.sx");

impl Interp {
    /// A fresh interpreter with every primitive and the prelude loaded.
    pub fn new() -> Interp {
        let mut interp = Interp {
            globals: Vec::new(),
            global_index: HashMap::default(),
            global_names: Vec::new(),
            inline_slots: Vec::new(),
            hof_slots: Vec::new(),
            inline_overridden: 0,
            shadowed_elements: Vec::new(),
            builtins_ready: false,
            gensym_counter: 0,
            str_scratch: String::new(),
            budget: Budget::default(),
        };
        crate::prims::install(&mut interp);
        for op in Inline::ALL {
            let slot = interp.global_slot(Symbol::new(op.name()));
            interp.inline_slots.push(slot);
        }
        for name in [
            "map",
            "for-each",
            "filter",
            "map-indexed",
            "reverse",
            "%reverse-owned",
            "%hof-intact",
        ] {
            let slot = interp.global_slot(Symbol::new(name));
            interp.hof_slots.push(slot);
        }
        if let Err(e) = interp.load_prelude() {
            // The prelude is part of the crate and tested; failing to load
            // it is a bug worth making loud in every use.
            eprintln!("sx: internal error loading the prelude: {e}");
        }
        interp.builtins_ready = true;
        interp
    }

    /// Evaluates the prelude. Its text is registered as a source once per
    /// process, however many interpreters are made.
    fn load_prelude(&mut self) -> std::result::Result<(), Error> {
        static PRELUDE_SOURCE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let source = *PRELUDE_SOURCE.get_or_init(|| crate::source::register("<prelude>", PRELUDE));
        for form in reader::read_all_in(PRELUDE, "<prelude>", source)? {
            self.eval(&form)?;
        }
        Ok(())
    }

    /// Fails with a heap budget error if `additional` more bytes would take
    /// the heap past the budget; for primitives about to build something big.
    /// Under [`Budget::heap_per_machine`] only `additional` counts: what
    /// the running machine already holds is the machine's own check (every
    /// 1024 calls), and the process's live bytes, which counted here
    /// before, include what a server holds elsewhere, so that one holding
    /// more than one request may use failed every `(range 10)`.
    pub fn ensure_heap(&self, additional: usize) -> Result<()> {
        if let Some(max) = self.budget.max_heap {
            let in_use = if self.budget.heap_per_machine {
                0
            } else {
                self.heap_in_use()
            };
            let would = in_use.saturating_add(additional);
            if would > max {
                return Err(EvalError::new(
                    ErrorKind::Budget,
                    format!(
                        "heap budget exhausted: this needs about {would} bytes, more than {max}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The slot of global `name`, creating an unbound one if needed.
    pub fn global_slot(&mut self, name: Symbol) -> u32 {
        if let Some(&g) = self.global_index.get(&name) {
            return g;
        }
        let g = u32::try_from(self.globals.len()).unwrap_or(u32::MAX);
        self.globals.push(None);
        self.global_names.push(name);
        self.global_index.insert(name, g);
        g
    }

    pub(crate) fn global_name(&self, g: u32) -> Symbol {
        self.global_names
            .get(g as usize)
            .copied()
            .unwrap_or_else(|| Symbol::new("?"))
    }

    pub(crate) fn set_global(&mut self, g: u32, v: Value) {
        if self.builtins_ready {
            if let Some(i) = self.inline_slots.iter().position(|&s| s == g) {
                self.inline_overridden |= 1 << i;
            }
            if self.hof_slots.contains(&g) {
                self.inline_overridden |= 1 << Inline::HofIntact as u32;
            }
            let name = self.global_name(g);
            if crate::elements::is_element(name.as_str())
                && !self.shadowed_elements.iter().any(|&(_, s)| s == g)
            {
                self.shadowed_elements.push((name, g));
            }
        }
        if let Some(slot) = self.globals.get_mut(g as usize) {
            *slot = Some(v);
        }
    }

    /// Binds a global.
    pub fn define(&mut self, name: &str, v: Value) {
        let g = self.global_slot(Symbol::new(name));
        self.set_global(g, v);
    }

    /// Registers a native function.
    pub fn define_native(
        &mut self,
        name: &'static str,
        min_args: u16,
        max_args: Option<u16>,
        f: NativeFn,
    ) {
        self.define_special(name, min_args, max_args, f, Special::None);
    }

    pub(crate) fn define_special(
        &mut self,
        name: &'static str,
        min_args: u16,
        max_args: Option<u16>,
        f: NativeFn,
        special: Special,
    ) {
        let native = Native {
            name,
            min_args,
            max_args,
            f,
            special,
        };
        self.define(name, Value::Native(Rc::new(native)));
    }

    /// The value of global `name`, if bound.
    pub fn lookup(&self, name: &str) -> Option<Value> {
        self.global_value(Symbol::new(name))
    }

    pub(crate) fn global_value(&self, name: Symbol) -> Option<Value> {
        let g = *self.global_index.get(&name)?;
        self.globals.get(g as usize)?.clone()
    }

    pub(crate) fn is_defined(&self, name: Symbol) -> bool {
        self.global_value(name).is_some()
    }

    /// Names of every bound global (for REPL completion).
    pub fn global_names(&self) -> Vec<&'static str> {
        self.global_names
            .iter()
            .zip(&self.globals)
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub(crate) fn unbound_error(&self, g: u32) -> EvalError {
        EvalError::new(
            ErrorKind::Unbound,
            format!("unbound symbol: {}", self.global_name(g)),
        )
    }

    /// The global now bound to element name `tag`, if a program bound one
    /// after the element form naming it was compiled.
    #[inline]
    pub(crate) fn element_shadow(&self, tag: &str) -> Option<Value> {
        if self.shadowed_elements.is_empty() {
            return None;
        }
        self.element_shadow_slow(tag)
    }

    /// No element name has been bound as a global (the usual case).
    #[inline]
    pub(crate) fn no_shadowed_elements(&self) -> bool {
        self.shadowed_elements.is_empty()
    }

    #[cold]
    fn element_shadow_slow(&self, tag: &str) -> Option<Value> {
        let &(_, g) = self
            .shadowed_elements
            .iter()
            .find(|(name, _)| name.as_str() == tag)?;
        self.globals.get(g as usize)?.clone()
    }

    /// Whether none of the `Inline`s in `mask` (bit `1 << which`) has
    /// been redefined.
    #[inline]
    pub(crate) fn inlines_intact(&self, mask: u32) -> bool {
        self.inline_overridden & mask == 0
    }

    #[inline]
    pub(crate) fn inline_overridden(&self, which: Inline) -> bool {
        self.inline_overridden & (1 << which as u32) != 0
    }

    pub(crate) fn inline_global(&self, which: Inline) -> Value {
        self.inline_slots
            .get(which as usize)
            .and_then(|&g| self.globals.get(g as usize))
            .cloned()
            .flatten()
            .unwrap_or_default()
    }

    pub(crate) fn heap_in_use(&self) -> usize {
        crate::alloc::live_bytes()
    }

    /// A fresh symbol for macros: `prefix` plus a counter, never read from source.
    pub fn gensym(&mut self, prefix: &str) -> Symbol {
        self.gensym_counter += 1;
        Symbol::new(&format!("{prefix}__{}", self.gensym_counter))
    }

    /// Compiles a top-level form into a closure of no arguments.
    pub fn compile_toplevel(&mut self, form: &Value) -> Result<Rc<Closure>> {
        let proto = compiler::compile_toplevel(self, form)?;
        Ok(Rc::new(Closure::new(proto, Rc::from(Vec::new()), None)))
    }

    /// A machine that evaluates `form` (a top-level form).
    pub fn machine(&mut self, form: &Value) -> Result<Machine> {
        let closure = self.compile_toplevel(form)?;
        Ok(Machine::new(Value::Closure(closure), Vec::new()))
    }

    /// Runs `machine` to the end, answering each `perform` with `host`.
    /// An `Err` from `host` is raised at the `perform` (SX code may catch it).
    pub fn drive(
        &mut self,
        machine: &mut Machine,
        host: &mut dyn FnMut(&mut Interp, Request) -> Result<Value>,
    ) -> Result<Value> {
        // One `Result` variable, written by each resume in place: with `?`
        // inside the loop every 80-byte outcome was copied twice more.
        let mut outcome = machine.run(self);
        loop {
            match outcome {
                Ok(Outcome::Perform(req)) => {
                    outcome = match host(self, req) {
                        Ok(answer) => machine.resume(self, answer),
                        Err(e) => machine.resume_error(self, e),
                    };
                }
                Ok(Outcome::Done(v)) => return Ok(v),
                Err(e) => return Err(e),
            }
        }
    }

    /// Evaluates one form with no host: a `perform` is an error.
    pub fn eval(&mut self, form: &Value) -> Result<Value> {
        self.eval_with(form, &mut no_host)
    }

    /// Evaluates one top-level form, answering performs with `host`. A
    /// top-level `begin` is evaluated form by form, so a macro it defines
    /// can be used by the forms after it.
    pub fn eval_with(
        &mut self,
        form: &Value,
        host: &mut dyn FnMut(&mut Interp, Request) -> Result<Value>,
    ) -> Result<Value> {
        if let Value::List(l) = form {
            if l.first()
                .and_then(Value::as_symbol)
                .is_some_and(|s| s.as_str() == "begin")
            {
                let mut last = Value::Nil;
                for f in l.rest().iter() {
                    last = self.eval_with(f, host)?;
                }
                return Ok(last);
            }
        }
        let mut m = self.machine(form)?;
        self.drive(&mut m, host)
    }

    /// Reads and evaluates every form of `src`, returning the last value.
    /// `name` names the source in error messages.
    pub fn eval_str(&mut self, src: &str, name: &str) -> std::result::Result<Value, Error> {
        self.eval_str_with(src, name, &mut no_host)
    }

    pub fn eval_str_with(
        &mut self,
        src: &str,
        name: &str,
        host: &mut dyn FnMut(&mut Interp, Request) -> Result<Value>,
    ) -> std::result::Result<Value, Error> {
        let forms = reader::read_all(src, name, true)?;
        let mut last = Value::Nil;
        for f in &forms {
            last = self.eval_with(f, host)?;
        }
        Ok(last)
    }

    /// Calls a function value to completion (used for macro expansion).
    /// A `perform` inside is an error: there is no host to answer it.
    pub fn call_value(&mut self, f: &Value, args: Vec<Value>) -> Result<Value> {
        let mut m = Machine::new(f.clone(), args);
        self.drive(&mut m, &mut no_host)
    }
}

fn no_host(_: &mut Interp, req: Request) -> Result<Value> {
    Err(EvalError::new(
        ErrorKind::Perform,
        format!(
            "perform {}: no host is running this code to carry it out",
            req.op
        ),
    ))
}
