//! Interned symbol and keyword names.
//!
//! Names are interned once into a process-wide table and never freed: the set
//! of names a program uses is small and bounded by its source, and interning
//! makes symbol comparison and global lookup an integer compare.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// An interned name. Two symbols are equal exactly when their names are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(u32);

struct Interner {
    ids: HashMap<&'static str, u32>,
    names: Vec<&'static str>,
}

fn interner() -> &'static Mutex<Interner> {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    INTERNER.get_or_init(|| {
        Mutex::new(Interner {
            ids: HashMap::new(),
            names: Vec::new(),
        })
    })
}

impl Symbol {
    /// Interns `name`, returning its symbol.
    pub fn new(name: &str) -> Symbol {
        let mut table = interner().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = table.ids.get(name) {
            return Symbol(id);
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let id = u32::try_from(table.names.len()).unwrap_or(u32::MAX);
        table.names.push(leaked);
        table.ids.insert(leaked, id);
        Symbol(id)
    }

    /// The symbol's name.
    pub fn as_str(self) -> &'static str {
        let table = interner().lock().unwrap_or_else(|p| p.into_inner());
        table.names.get(self.0 as usize).copied().unwrap_or("")
    }

    /// The symbol's index in the intern table (stable for the process).
    pub fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
