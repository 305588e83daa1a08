//! SX as a web language (DESIGN §3, "Markup").
//!
//! The `sx` crate builds element values; this crate turns them into bytes:
//!
//! - [`html`]: `render-html`, HTML written into one buffer, escaped by
//!   construction, with unsafe URLs neutralised.
//! - [`wire`]: the SX wire format (aser): markup kept as SX data,
//!   normalised and serialized canonically, for the browser runtime.
//! - [`markdown`]: `markdown->html`, CommonMark to sanitized HTML.
//!
//! [`install`] adds the web primitives (`render-html`, `aser`,
//! `markdown->html`, and `markdown` in SX) and the server side of the
//! island API (`signal`, `deref`, `computed`, ...) to an interpreter. Like
//! `sx`, this crate does no IO.

pub mod html;
pub mod markdown;
pub mod wire;

use sx::error::{ErrorKind, EvalError};
use sx::{Interp, Value};

pub use html::{render_html, render_html_string};
pub use markdown::markdown_to_html;
pub use wire::{to_wire, to_wire_string};

/// Why a value could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render {what} as markup{context}")]
    NotMarkup { what: String, context: String },
    #[error("invalid attribute name {0:?} (letters, digits and - _ : . @ only)")]
    BadAttribute(String),
    #[error("{0}")]
    Serialize(#[from] sx::printer::SerializeError),
}

impl From<RenderError> for EvalError {
    fn from(e: RenderError) -> EvalError {
        EvalError::new(ErrorKind::Value, e.to_string())
    }
}

/// SX definitions that belong with the web primitives: the server side of
/// the island API. On the server an island renders once, so a signal is a
/// plain mutable box, `computed` recomputes on every read, and effects do
/// not run (they belong to the browser).
const WEB_PRELUDE: &str = include_str!("web.sx");

/// Adds the web primitives and the island API to `interp`.
pub fn install(interp: &mut Interp) -> Result<(), sx::Error> {
    interp.define_native("render-html", 1, Some(1), |_, a| {
        let v = a.first().unwrap_or(&Value::Nil);
        Ok(Value::str(&render_html_string(v)?))
    });
    interp.define_native("aser", 1, Some(1), |_, a| {
        // DESIGN §3: aser returns markup as SX *data*, whose serialization
        // is the wire text. The wire writer is the one definition of the
        // normalisation, so the data is that text read back.
        let v = a.first().unwrap_or(&Value::Nil);
        let text = to_wire_string(v)?;
        sx::reader::read_one(&text, "<aser>").map_err(|e| {
            EvalError::new(
                sx::ErrorKind::Value,
                format!("aser: internal error reading back the wire form: {e}"),
            )
        })
    });
    interp.define_native("markdown->html", 1, Some(1), |_, a| match a.first() {
        Some(Value::Str(s)) => Ok(Value::str(&markdown_to_html(s))),
        other => Err(EvalError::type_error(
            "markdown->html",
            "a string",
            other.unwrap_or(&Value::Nil),
        )),
    });
    interp.eval_str(WEB_PRELUDE, "<sx-web>")?;
    Ok(())
}
