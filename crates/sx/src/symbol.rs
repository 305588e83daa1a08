//! Interned symbol and keyword names.
//!
//! Names are interned once into a process-wide table and never freed: the set
//! of names a program uses is small and bounded by its source, and interning
//! makes symbol comparison and global lookup an integer compare.

// FxHash: names are short and not attacker-chosen at a rate that matters
// (they come from source and the host's own keys), and SipHash was a
// visible part of every `Symbol::new`.
use rustc_hash::FxHashMap as HashMap;
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
            ids: HashMap::default(),
            names: Vec::new(),
        })
    })
}

thread_local! {
    /// This thread's copy of the names and ids it has used, so that
    /// `as_str` and `new` on known names never take the process-wide lock
    /// (several SX worker threads would contend on it). Names are never
    /// freed, so a copy of the `&'static str` stays valid.
    static LOCAL: std::cell::RefCell<(Vec<&'static str>, HashMap<&'static str, u32>)> =
        std::cell::RefCell::new((Vec::new(), HashMap::default()));
}

impl Symbol {
    /// Interns `name`, returning its symbol.
    pub fn new(name: &str) -> Symbol {
        let cached = LOCAL
            .try_with(|l| l.try_borrow().ok().and_then(|l| l.1.get(name).copied()))
            .ok()
            .flatten();
        if let Some(id) = cached {
            return Symbol(id);
        }
        let sym = Symbol::intern(name);
        let _ = LOCAL.try_with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                let leaked = sym.as_str();
                l.1.insert(leaked, sym.0);
            }
        });
        sym
    }

    fn intern(name: &str) -> Symbol {
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
        let local = LOCAL
            .try_with(|l| {
                l.try_borrow()
                    .ok()
                    .and_then(|l| l.0.get(self.0 as usize).copied())
            })
            .ok()
            .flatten();
        if let Some(name) = local {
            return name;
        }
        // Not seen on this thread yet: copy every name interned so far.
        let table = interner().lock().unwrap_or_else(|p| p.into_inner());
        let name = table.names.get(self.0 as usize).copied().unwrap_or("");
        let _ = LOCAL.try_with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                let have = l.0.len();
                if let Some(more) = table.names.get(have..) {
                    l.0.extend_from_slice(more);
                }
            }
        });
        name
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
