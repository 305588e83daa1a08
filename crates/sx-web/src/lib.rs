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

pub mod markdown;
pub mod wire;

use sx::error::EvalError;
use sx::{Interp, Value};

pub use markdown::markdown_to_html;
/// The HTML renderer lives in the kernel, whose machine also renders
/// markup straight into a buffer (`render-html`'s streaming mode).
pub use sx::html;
pub use sx::html::{RenderError, render_html, render_html_string};
pub use wire::{to_wire, to_wire_string};

/// SX definitions that belong with the web primitives: the server side of
/// the island API. On the server an island renders once, so a signal is a
/// plain mutable box, `computed` recomputes on every read, and effects do
/// not run (they belong to the browser).
const WEB_PRELUDE: &str = include_str!("web.sx");

/// Adds the web primitives and the island API to `interp`.
pub fn install(interp: &mut Interp) -> Result<(), sx::Error> {
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
