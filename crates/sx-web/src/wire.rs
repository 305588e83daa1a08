//! The SX wire format (aser): markup kept as SX data and serialized
//! canonically, for the browser runtime to render (DESIGN §3).
//!
//! An element is written as the list `(tag :attr value ... child...)`,
//! normalised the way `render-html` would render it: nil/false attributes
//! and children are left out, nested child lists are spliced, symbols,
//! keywords and `true` among children become strings, and unsafe URLs are
//! replaced just as in HTML. `(<> ...)` is a fragment and `(raw! "html")`
//! raw HTML. A top-level list of nodes is written as one fragment. Any
//! other data (dicts, numbers, ...) is written in canonical form, with
//! elements inside it written as above.

use sx::Value;
use sx::printer::{float_text, write_string};
use sx::value::Element;

use crate::RenderError;
use crate::html::{UNSAFE_URL, is_url_attribute, safe_url, valid_attribute_name};

/// Appends the wire form of `v` to `out`.
pub fn to_wire(v: &Value, out: &mut String) -> Result<(), RenderError> {
    match v {
        Value::List(_) => {
            out.push_str("(<>");
            children(std::slice::from_ref(v), out)?;
            out.push(')');
            Ok(())
        }
        other => value(other, out),
    }
}

/// The wire form of `v` as a string.
pub fn to_wire_string(v: &Value) -> Result<String, RenderError> {
    let mut out = String::with_capacity(256);
    to_wire(v, &mut out)?;
    Ok(out)
}

fn value(v: &Value, out: &mut String) -> Result<(), RenderError> {
    match v {
        Value::Element(e) => stacker::maybe_grow(64 * 1024, 1024 * 1024, || element(e, out)),
        Value::List(l) => {
            out.push('(');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || value(item, out))?;
            }
            out.push(')');
            Ok(())
        }
        Value::Dict(d) => {
            out.push('{');
            for (i, (k, item)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&sx::printer::serialize(k)?);
                out.push(' ');
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || value(item, out))?;
            }
            out.push('}');
            Ok(())
        }
        Value::Cell(c) => value(&c.borrow(), out),
        other => {
            out.push_str(&sx::printer::serialize(other)?);
            Ok(())
        }
    }
}

fn element(e: &Element, out: &mut String) -> Result<(), RenderError> {
    out.push('(');
    out.push_str(&e.tag);
    if &*e.tag == "raw!" {
        for child in &e.children {
            if let Value::Str(s) = child {
                out.push(' ');
                write_string(out, s);
            }
        }
        out.push(')');
        return Ok(());
    }
    for (name, v) in &e.attrs {
        attribute(&e.tag, name.as_str(), v, out)?;
    }
    children(&e.children, out)?;
    out.push(')');
    Ok(())
}

fn attribute(tag: &str, name: &str, v: &Value, out: &mut String) -> Result<(), RenderError> {
    if !valid_attribute_name(name) {
        return Err(RenderError::BadAttribute(name.to_owned()));
    }
    let text = match v {
        // Event handlers: attached by the browser runtime when it hydrates.
        Value::Nil | Value::Bool(false) | Value::Closure(_) | Value::Native(_) => return Ok(()),
        Value::Bool(true) => {
            out.push_str(" :");
            out.push_str(name);
            out.push_str(" true");
            return Ok(());
        }
        Value::Int(_) | Value::Float(_) if !is_url_attribute(name) => {
            out.push_str(" :");
            out.push_str(name);
            out.push(' ');
            out.push_str(&sx::printer::number_text(v));
            return Ok(());
        }
        Value::Cell(c) => return attribute(tag, name, &c.borrow(), out),
        other => {
            // Render the value exactly as HTML would, then keep the text.
            let mut text = String::new();
            attribute_text(name, other, &mut text)?;
            text
        }
    };
    let text = if is_url_attribute(name) && !safe_url(tag, name, &text) {
        UNSAFE_URL
    } else {
        &text
    };
    out.push_str(" :");
    out.push_str(name);
    out.push(' ');
    write_string(out, text);
    Ok(())
}

/// The text of an attribute value: strings as they are, numbers canonical,
/// lists joined with spaces.
fn attribute_text(name: &str, v: &Value, out: &mut String) -> Result<(), RenderError> {
    match v {
        Value::Str(_) | Value::Keyword(_) | Value::Symbol(_) => {
            sx::printer::to_str(v, out);
            Ok(())
        }
        Value::Int(_) => {
            sx::printer::to_str(v, out);
            Ok(())
        }
        Value::Float(f) => {
            out.push_str(&float_text(*f).unwrap_or_default());
            Ok(())
        }
        Value::List(items) => {
            let mut first = true;
            for item in items.iter() {
                if matches!(item, Value::Nil | Value::Bool(false)) {
                    continue;
                }
                if !first {
                    out.push(' ');
                }
                first = false;
                match item {
                    Value::List(_) | Value::Dict(_) | Value::Element(_) => {
                        return Err(not_text(name, item));
                    }
                    _ => attribute_text(name, item, out)?,
                }
            }
            Ok(())
        }
        other => Err(not_text(name, other)),
    }
}

fn not_text(name: &str, v: &Value) -> RenderError {
    RenderError::NotMarkup {
        what: format!("{} {}", v.type_of().as_str(), sx::printer::display(v)),
        context: format!(" as the value of attribute {name}"),
    }
}

/// Writes children, each preceded by a space: nil/false left out, nested
/// lists spliced.
fn children(items: &[Value], out: &mut String) -> Result<(), RenderError> {
    for child in items {
        match child {
            Value::Nil | Value::Bool(false) => {}
            Value::List(l) => {
                for item in l.iter() {
                    stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                        children(std::slice::from_ref(item), out)
                    })?;
                }
            }
            Value::Str(s) => {
                out.push(' ');
                write_string(out, s);
            }
            Value::Int(_) | Value::Float(_) => {
                out.push(' ');
                out.push_str(&sx::printer::serialize(child)?);
            }
            Value::Bool(true) | Value::Keyword(_) | Value::Symbol(_) => {
                let mut text = String::new();
                sx::printer::to_str(child, &mut text);
                out.push(' ');
                write_string(out, &text);
            }
            Value::Element(e) => {
                out.push(' ');
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || element(e, out))?;
            }
            Value::Cell(c) => children(std::slice::from_ref(&c.borrow().clone()), out)?,
            other => {
                return Err(RenderError::NotMarkup {
                    what: format!(
                        "{} {}",
                        other.type_of().as_str(),
                        sx::printer::display(other)
                    ),
                    context: " as a child element".to_owned(),
                });
            }
        }
    }
    Ok(())
}
