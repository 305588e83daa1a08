//! Render-mode loop bodies written without the machine (`Op::RenderEach`).
//!
//! A `map` over a list in render mode whose body writes constant markup
//! and its item and does nothing else — `(map (fn (c) (td c)) cells)`, or
//! `(map (fn (t) (li (get t :name))) teams)` — is compiled twice: as the
//! loop's ordinary code, and as a [`RenderTemplate`], the texts between
//! the places the item goes. `RenderEach` writes items through the
//! template in one tight loop, with no instruction per item, and leaves
//! to the loop's code every item it cannot write exactly as that code
//! would (anything not a string, integer or nil where it goes).

use std::rc::Rc;

use crate::dict::Key;
use crate::push::{Padded, push_padded};
use crate::value::{List, Value};

/// A loop body: `head`, then each hole's value followed by its text.
#[derive(Debug)]
pub struct RenderTemplate {
    head: Text,
    holes: Box<[(Hole, Text)]>,
    /// The steps one item counts in the loop's code: the loop's own and
    /// one for each `get`.
    steps: u32,
}

/// Constant HTML of a template: most is a tag or two, padded to be
/// written with one fixed-size copy.
#[derive(Debug)]
enum Text {
    Short(Padded),
    Long(Rc<str>),
}

impl Text {
    fn new(s: String) -> Text {
        Padded::new(&s).map_or_else(|| Text::Long(Rc::from(s)), Text::Short)
    }

    #[inline(always)]
    fn write(&self, buf: &mut String) {
        match self {
            Text::Short(t) => push_padded(buf, t),
            Text::Long(t) => buf.push_str(t),
        }
    }
}

/// Where a template writes something of the item.
#[derive(Debug, Clone)]
pub enum Hole {
    /// The item as a child node (the body's `RenderLocal` of it).
    Item,
    /// `(get item :kw)` as a child node (a `RenderLocalGetKw`).
    ItemKw(Key),
}

impl RenderTemplate {
    /// A template of the body's pieces in order: constant HTML and holes.
    /// None if it has no hole (a constant body is not worth one).
    pub fn new(pieces: Vec<Result<Rc<str>, Hole>>) -> Option<RenderTemplate> {
        let mut head = String::new();
        let mut holes: Vec<(Hole, String)> = Vec::new();
        for piece in pieces {
            match piece {
                Ok(text) => match holes.last_mut() {
                    Some((_, after)) => after.push_str(&text),
                    None => head.push_str(&text),
                },
                Err(hole) => holes.push((hole, String::new())),
            }
        }
        if holes.is_empty() {
            return None;
        }
        let steps = 1 + holes
            .iter()
            .filter(|(h, _)| matches!(h, Hole::ItemKw(_)))
            .count();
        Some(RenderTemplate {
            head: Text::new(head),
            holes: holes.into_iter().map(|(h, t)| (h, Text::new(t))).collect(),
            steps: u32::try_from(steps).unwrap_or(u32::MAX),
        })
    }

    /// Whether the template looks into dicts (so depends on `get`).
    pub fn gets(&self) -> bool {
        self.steps > 1
    }

    /// Writes the items of `list` into `buf` in turn while each can be
    /// written in place and `fuel` stays above the steps an item counts
    /// (the loop's code would not check the budgets on it), taking those
    /// steps from `fuel` and adding them to `steps`. Returns the rest of
    /// the list, from the first item not written.
    pub fn render_items<'l>(
        &self,
        list: &'l List,
        buf: &mut String,
        fuel: &mut u32,
        steps: &mut u64,
    ) -> &'l List {
        // Item `i` may be written while `fuel - i * steps > steps`: the
        // loop's code checks the budgets when its fuel runs out.
        let room = fuel.saturating_sub(1) / self.steps;
        let mut written = 0;
        let mut rest = list;
        while written < room {
            let Some(cell) = rest.0.as_deref() else {
                break;
            };
            let mark = buf.len();
            if !self.write(&cell.head, buf) {
                // The loop's code writes this item, from the start.
                buf.truncate(mark);
                break;
            }
            written += 1;
            rest = &cell.tail;
        }
        *steps += u64::from(written * self.steps);
        *fuel -= written * self.steps;
        rest
    }

    /// Writes one item, or returns false (having written part of it,
    /// perhaps) if a hole's value is not a string, integer or nil, or a
    /// `get` is not of a dict.
    #[inline]
    fn write(&self, item: &Value, buf: &mut String) -> bool {
        self.head.write(buf);
        for (hole, after) in &self.holes {
            let v = match hole {
                Hole::Item => item,
                Hole::ItemKw(k) => match item {
                    Value::Dict(d) => d.get_keyword(k).unwrap_or(&Value::Nil),
                    _ => return false,
                },
            };
            match v {
                Value::Nil => {}
                Value::Int(i) => crate::html::push_int(*i, buf),
                Value::Str(s) => crate::html::escape_text(s, buf),
                _ => return false,
            }
            after.write(buf);
        }
        true
    }
}
