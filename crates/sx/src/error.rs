//! Evaluation errors.
//!
//! Inside SX an error is a value: what `raise` threw, or for a failing
//! primitive a dict `{:type :error :kind :arity :message "..."}`. Outside,
//! an uncaught error becomes an [`EvalError`] with the position of the form
//! that failed and an SX backtrace.

use std::fmt;

use crate::source::Location;
use crate::value::Value;

/// The class of an error; its name is the `:kind` of the error dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong number of arguments.
    Arity,
    /// An argument of the wrong type.
    Type,
    /// A value outside what the operation accepts (index out of range, ...).
    Value,
    /// A name with no binding.
    Unbound,
    /// Integer arithmetic overflowed i64.
    Overflow,
    /// Division or modulo by zero.
    DivideByZero,
    /// A malformed special form or macro use, found while compiling.
    Syntax,
    /// Text that does not read (from `read-string` or `eval` of text).
    Read,
    /// A value thrown by `raise` (its message is derived from the value).
    Raise,
    /// A `perform` the host could not carry out.
    Perform,
    /// A step, time, heap or depth budget ran out. Never caught by `try`.
    Budget,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Arity => "arity",
            ErrorKind::Type => "type",
            ErrorKind::Value => "value",
            ErrorKind::Unbound => "unbound",
            ErrorKind::Overflow => "overflow",
            ErrorKind::DivideByZero => "divide-by-zero",
            ErrorKind::Syntax => "syntax",
            ErrorKind::Read => "read",
            ErrorKind::Raise => "raise",
            ErrorKind::Perform => "perform",
            ErrorKind::Budget => "budget",
        }
    }
}

/// One line of an SX backtrace: which function, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceFrame {
    pub function: String,
    pub location: Option<Location>,
    /// How many more times the same frame repeats below this one.
    pub repeated: usize,
}

/// An error raised while evaluating SX.
///
/// A thin handle (one pointer) so `Result<Value, EvalError>` stays small on
/// the interpreter's hot path; fields are reached through `Deref`.
#[derive(Clone)]
pub struct EvalError(Box<EvalErrorData>);

/// What an [`EvalError`] holds.
#[derive(Clone)]
pub struct EvalErrorData {
    pub kind: ErrorKind,
    pub message: String,
    /// The value SX code sees when it catches this error.
    pub value: Value,
    /// The form being evaluated when the error happened.
    pub location: Option<Location>,
    /// Innermost call first.
    pub backtrace: Vec<TraceFrame>,
}

impl EvalError {
    /// An error from a primitive or the machine; its SX value is the
    /// standard error dict.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> EvalError {
        let message = message.into();
        EvalError(Box::new(EvalErrorData {
            value: error_dict(kind, &message),
            kind,
            message,
            location: None,
            backtrace: Vec::new(),
        }))
    }

    /// The error for `(raise v)`: SX code catches `v` itself.
    pub fn raised(v: Value) -> EvalError {
        let message = match &v {
            Value::Dict(d) => match d.get(&Value::kw("message")) {
                Some(Value::Str(s)) => s.to_string(),
                _ => format!("uncaught raise: {v}"),
            },
            Value::Str(s) => s.to_string(),
            other => format!("uncaught raise: {other}"),
        };
        EvalError(Box::new(EvalErrorData {
            kind: ErrorKind::Raise,
            message,
            value: v,
            location: None,
            backtrace: Vec::new(),
        }))
    }

    pub fn arity(name: &str, expected: &str, got: usize) -> EvalError {
        EvalError::new(
            ErrorKind::Arity,
            format!(
                "{name}: expected {expected} argument{}, got {got}",
                if expected == "1" { "" } else { "s" }
            ),
        )
    }

    pub fn type_error(name: &str, expected: &str, got: &Value) -> EvalError {
        EvalError::new(
            ErrorKind::Type,
            format!(
                "{name}: expected {expected}, got {} {}",
                got.type_of().as_str(),
                crate::printer::display(got)
                    .chars()
                    .take(60)
                    .collect::<String>()
            ),
        )
    }

    pub fn with_location(mut self, location: Option<Location>) -> EvalError {
        if self.location.is_none() {
            self.location = location;
        }
        self
    }
}

impl std::ops::Deref for EvalError {
    type Target = EvalErrorData;
    fn deref(&self) -> &EvalErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for EvalError {
    fn deref_mut(&mut self) -> &mut EvalErrorData {
        &mut self.0
    }
}

/// `{:type :error :kind <kind> :message "..."}`.
pub fn error_dict(kind: ErrorKind, message: &str) -> Value {
    use crate::dict::{Dict, Key};
    let mut d = Dict::new();
    let mut put = |k: &str, v: Value| {
        if let Ok(key) = Key::new(Value::kw(k)) {
            d.insert(key, v);
        }
    };
    put("type", Value::kw("error"));
    put("kind", Value::kw(kind.as_str()));
    put("message", Value::str(message));
    Value::Dict(d)
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: error: {}", self.message)?,
            None => write!(f, "error: {}", self.message)?,
        }
        if let Some(loc) = &self.location {
            write!(f, "\n{}", loc.snippet())?;
        }
        if !self.backtrace.is_empty() {
            write!(f, "\nbacktrace (innermost first):")?;
            for frame in &self.backtrace {
                match &frame.location {
                    Some(loc) => write!(f, "\n  in {} at {loc}", frame.function)?,
                    None => write!(f, "\n  in {}", frame.function)?,
                }
                if frame.repeated > 0 {
                    write!(f, " (and {} more times)", frame.repeated)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for EvalError {}

/// Any error from reading or evaluating SX.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Read(#[from] crate::reader::ReadError),
    #[error("{0}")]
    Eval(#[from] EvalError),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

impl EvalError {
    /// Sets the message shown when this error is not caught.
    pub fn with_kind_message(mut self, message: String) -> EvalError {
        self.message = message;
        self
    }
}
