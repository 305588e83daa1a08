//! SX: the Rose Ash language kernel.
//!
//! - [`reader`]: text to values, with positions and clear errors.
//! - [`printer`]: the canonical form (`serialize`) and display.
//! - [`compiler`]: forms to compiled functions with resolved variables.
//! - [`vm`]: the suspendable machine that runs them.
//! - [`interp`]: the global environment and entry points.
//!
//! This crate does no IO: every effect is a `perform` answered by the host.

pub mod alloc;
mod compiler;
pub mod cycles;
pub mod dict;
pub mod elements;
pub mod error;
pub mod html;
pub mod interp;
mod prims;
pub mod printer;
mod push;
pub mod rcstr;
pub mod reader;
pub mod source;
pub mod symbol;
pub mod template;
pub mod value;
pub mod vm;

pub use dict::{Dict, Key};
pub use error::{Error, ErrorKind, EvalError};
pub use interp::{Budget, Interp};
pub use prims::data::cid_of_text;
pub use rcstr::RcStr;
pub use symbol::Symbol;
pub use value::{List, TypeName, Value};
pub use vm::{Args, Machine, Outcome, Request};

/// JSON conversion exactly as `json-encode` and `json-decode` do it, for
/// hosts that take JSON in or give it out.
pub mod json {
    pub use crate::prims::data::{from_json, json_encode as encode};
}
