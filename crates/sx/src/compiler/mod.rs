//! The compiler: SX forms to [`Proto`]s for the machine.
//!
//! Two passes per top-level form:
//! 1. [`expand`] expands macros, recognises special forms and resolves every
//!    variable to a binding (a frame slot, a capture, or a global), recording
//!    which bindings are captured by inner functions and which are assigned.
//! 2. [`emit`] turns that tree into instructions, deciding which bindings
//!    need cells (captured *and* assigned, or forward-referenced letrec
//!    values) and which loads may move a value out on its last use.
//!
//! Functions defined together in one body (`letrec`, internal `define`,
//! named `let`) form a *group*: they refer to each other through the group,
//! not through captured closures, so recursive local functions create no
//! reference cycles (see ARCHITECTURE.md, "Memory").

pub(crate) mod ast;
pub(crate) mod emit;
pub(crate) mod expand;
pub(crate) mod liveness;

use std::rc::Rc;

use crate::error::Result;
use crate::interp::Interp;
use crate::value::Value;
use crate::vm::Proto;

/// Compiles one top-level form into a zero-parameter function.
pub(crate) fn compile_toplevel(interp: &mut Interp, form: &Value) -> Result<Rc<Proto>> {
    let program = expand::expand_toplevel(interp, form)?;
    emit::emit_program(interp, program)
}
