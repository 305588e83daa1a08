//! A cycle collector for cells: the one place reference cycles can form.
//!
//! Values are immutable except [`Value::Cell`]s (variables that are both
//! captured and assigned), so every reference cycle passes through a cell:
//! `(let ((f nil)) (set! f (fn () f)) f)` makes cell → closure → cell. Every
//! cell is registered here; when enough have been made since the last
//! collection, a trial deletion (as in CPython's collector) finds the cells
//! reachable only from each other, and empties them, which breaks the cycles
//! so reference counting frees them.
//!
//! Trial deletion: for each cell, count the references to it that come from
//! inside the cells' own contents; a cell with more references than that is
//! held from outside (a frame, a global, the host) and so is live, as is
//! everything reachable from it. The walk through a cell's contents only
//! enters objects that cell holds *uniquely* (strong count 1); anything
//! shared is treated as an outside holder. That can leave a cycle through a
//! shared object uncollected, but it can never free a live cell.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use crate::value::{List, Value};

type CellRc = Rc<RefCell<Value>>;

thread_local! {
    static REGISTRY: RefCell<Registry> = const { RefCell::new(Registry { cells: Vec::new(), next_collection: MIN_THRESHOLD }) };
}

/// Cells made before the first collection is considered.
const MIN_THRESHOLD: usize = 4096;

struct Registry {
    cells: Vec<Weak<RefCell<Value>>>,
    next_collection: usize,
}

/// Records a new cell; collects cycles when many cells have been made.
pub(crate) fn register(cell: &CellRc) {
    let due = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.cells.push(Rc::downgrade(cell));
        r.cells.len() >= r.next_collection
    });
    if due {
        collect();
    }
}

/// Runs a collection now; returns how many cells were found to be garbage.
pub fn collect() -> usize {
    // Take the registry out so that nothing below can re-enter it.
    let weaks = REGISTRY.with(|r| std::mem::take(&mut r.borrow_mut().cells));
    let cells: Vec<CellRc> = weaks.iter().filter_map(Weak::upgrade).collect();
    drop(weaks);
    let index: HashMap<*const RefCell<Value>, usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| (Rc::as_ptr(c), i))
        .collect();

    // References from outside = strong count - ours (1) - internal ones.
    let mut outside: Vec<isize> = cells
        .iter()
        .map(|c| Rc::strong_count(c) as isize - 1)
        .collect();
    for c in &cells {
        let Ok(content) = c.try_borrow() else {
            // Borrowed right now (cannot happen at the safe points we run
            // at); treat as live by not discounting anything it holds.
            continue;
        };
        for_each_inner_cell(&content, &mut |p| {
            if let Some(&j) = index.get(&p) {
                outside[j] -= 1;
            }
        });
    }

    // Everything reachable from a cell held from outside is live.
    let mut live = vec![false; cells.len()];
    let mut work: Vec<usize> = (0..cells.len()).filter(|&i| outside[i] > 0).collect();
    for &i in &work {
        live[i] = true;
    }
    while let Some(i) = work.pop() {
        let Ok(content) = cells[i].try_borrow() else {
            continue;
        };
        for_each_inner_cell(&content, &mut |p| {
            if let Some(&j) = index.get(&p) {
                if !live[j] {
                    live[j] = true;
                    work.push(j);
                }
            }
        });
    }
    for (i, c) in cells.iter().enumerate() {
        if c.try_borrow().is_err() {
            live[i] = true;
        }
    }

    // Empty the garbage cells; their contents drop after every borrow ends.
    let mut garbage_values = Vec::new();
    let mut survivors = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        if live[i] {
            survivors.push(Rc::downgrade(c));
        } else if let Ok(mut slot) = c.try_borrow_mut() {
            garbage_values.push(std::mem::take(&mut *slot));
        }
    }
    let freed = garbage_values.len();
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        // Cells registered during the drops below land after the survivors.
        let mut cells = survivors;
        cells.append(&mut r.cells);
        r.next_collection = (cells.len() * 2).max(MIN_THRESHOLD);
        r.cells = cells;
    });
    drop(cells);
    drop(garbage_values);
    freed
}

/// Calls `f` with each cell that `v` holds through uniquely owned objects.
fn for_each_inner_cell(v: &Value, f: &mut dyn FnMut(*const RefCell<Value>)) {
    let mut work: Vec<&Value> = vec![v];
    while let Some(v) = work.pop() {
        match v {
            Value::Cell(c) => f(Rc::as_ptr(c)),
            Value::Closure(k) | Value::Macro(k) if Rc::strong_count(k) == 1 => {
                if Rc::strong_count(&k.captures) == 1 {
                    work.extend(k.captures.iter());
                }
                if let Some(g) = &k.group {
                    if Rc::strong_count(g) == 1 {
                        for (_, caps) in &g.members {
                            if Rc::strong_count(caps) == 1 {
                                work.extend(caps.iter());
                            }
                        }
                    }
                }
            }
            Value::Component(c)
                if Rc::strong_count(c) == 1 && Rc::strong_count(&c.closure) == 1 =>
            {
                work.extend(c.closure.captures.iter());
            }
            Value::List(List(Some(first))) if Rc::strong_count(first) == 1 => {
                let mut cur = Some(first);
                while let Some(cell) = cur {
                    work.push(&cell.head);
                    cur = cell.tail.0.as_ref().filter(|t| Rc::strong_count(t) == 1);
                }
            }
            Value::Dict(d) if d.uniquely_owned() => work.extend(d.iter().map(|(_, v)| v)),
            Value::Element(e) if Rc::strong_count(e) == 1 => {
                work.extend(e.attrs.iter().map(|(_, v)| v));
                work.extend(e.children.iter());
            }
            _ => {}
        }
    }
}
