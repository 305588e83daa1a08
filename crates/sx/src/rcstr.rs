//! [`RcStr`]: an immutable, reference-counted string behind one pointer.
//!
//! `Rc<str>` is a fat pointer (address and length, 16 bytes), which made
//! `Value` 24 bytes: every push, slot read and list cell moved three words
//! where two would do. Here the length lives in the allocation beside the
//! count, so the handle is one word and `Value` is 16 bytes. The count is
//! not atomic (values never cross threads), as `Rc`'s is not.
#![allow(unsafe_code)]

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::borrow::Borrow;
use std::cell::Cell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// The start of every allocation; the string's bytes follow it.
#[repr(C)]
struct Header {
    count: Cell<usize>,
    len: usize,
}

/// An immutable string shared by reference counting; one pointer wide.
///
/// Dereferences to `str`. Not `Send` or `Sync` (the count is a plain
/// `Cell`), like `Rc`.
pub struct RcStr {
    ptr: NonNull<Header>,
    /// Owns a `Header` (for drop check) and, through `NonNull`, is neither
    /// `Send` nor `Sync`.
    _owns: PhantomData<Header>,
}

/// The layout of the allocation for `len` bytes of text, or `None` when
/// that size cannot be allocated at all.
fn layout_for(len: usize) -> Option<Layout> {
    let (layout, _) = Layout::new::<Header>()
        .extend(Layout::array::<u8>(len).ok()?)
        .ok()?;
    Some(layout.pad_to_align())
}

impl RcStr {
    /// A new string with a copy of `s`'s bytes.
    pub fn new(s: &str) -> RcStr {
        let len = s.len();
        // A `str` is at most `isize::MAX` bytes, so this fails only where
        // the header no longer fits: report it as the allocation failure it
        // is.
        let Some(layout) = layout_for(len) else {
            handle_alloc_error(Layout::new::<Header>())
        };
        // SAFETY: `layout` has a non-zero size (it holds a `Header`). The
        // allocation is checked for null before use; the header is written
        // at its start (aligned for `Header`, as the layout is), and the
        // `len` bytes of `s` right after it, inside the allocation, which
        // `layout_for` sized as header plus `len` bytes. The source and
        // destination cannot overlap (the destination is fresh).
        unsafe {
            let raw = alloc(layout).cast::<Header>();
            let Some(ptr) = NonNull::new(raw) else {
                handle_alloc_error(layout)
            };
            ptr.as_ptr().write(Header {
                count: Cell::new(1),
                len,
            });
            std::ptr::copy_nonoverlapping(s.as_ptr(), bytes_of(ptr), len);
            RcStr {
                ptr,
                _owns: PhantomData,
            }
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: `ptr` points to a live allocation made by `new` whose
        // header was initialised there, and it stays alive while any
        // handle (this one included) exists.
        unsafe { self.ptr.as_ref() }
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        let len = self.header().len;
        // SAFETY: `new` copied `len` bytes of a `str` (so valid UTF-8)
        // right after the header, and they are never written again; they
        // live as long as the allocation, which outlives `&self`.
        unsafe {
            let bytes = std::slice::from_raw_parts(bytes_of(self.ptr), len);
            std::str::from_utf8_unchecked(bytes)
        }
    }

    /// Whether two handles share one allocation.
    #[inline]
    pub fn ptr_eq(a: &RcStr, b: &RcStr) -> bool {
        a.ptr == b.ptr
    }

    /// How many handles share this string.
    pub fn strong_count(&self) -> usize {
        self.header().count.get()
    }
}

/// Where the text of the allocation at `ptr` starts.
///
/// # Safety
///
/// `ptr` must point to an allocation made by [`RcStr::new`].
#[inline]
unsafe fn bytes_of(ptr: NonNull<Header>) -> *mut u8 {
    // SAFETY: the allocation holds a whole `Header` first (the caller's
    // promise), so one past it is in bounds (possibly one past the end,
    // for an empty string). `Header`'s size is a multiple of its alignment
    // and `u8` needs none, so this is where `layout_for` put the bytes.
    unsafe { ptr.as_ptr().add(1).cast::<u8>() }
}

impl Clone for RcStr {
    #[inline]
    fn clone(&self) -> RcStr {
        let count = &self.header().count;
        // As `Rc` does: a count that would overflow means handles were
        // leaked on a vast scale; stop rather than risk a use after free.
        let Some(n) = count.get().checked_add(1) else {
            std::process::abort()
        };
        count.set(n);
        RcStr {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl Drop for RcStr {
    #[inline]
    fn drop(&mut self) {
        let header = self.header();
        let n = header.count.get() - 1;
        header.count.set(n);
        if n == 0 {
            let len = header.len;
            free(self.ptr, len);
        }
    }
}

/// Frees the allocation of a string of `len` bytes whose last handle went.
#[inline(never)]
fn free(ptr: NonNull<Header>, len: usize) {
    // `new` made this allocation with exactly this layout.
    if let Some(layout) = layout_for(len) {
        // SAFETY: `ptr` came from `alloc` with `layout` (the same length
        // gives the same layout), and no handle is left to use it.
        unsafe { dealloc(ptr.as_ptr().cast::<u8>(), layout) }
    }
}

impl Deref for RcStr {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for RcStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for RcStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Default for RcStr {
    fn default() -> RcStr {
        RcStr::new("")
    }
}

impl PartialEq for RcStr {
    #[inline]
    fn eq(&self, other: &RcStr) -> bool {
        RcStr::ptr_eq(self, other) || self.as_str() == other.as_str()
    }
}

impl Eq for RcStr {}

impl PartialOrd for RcStr {
    fn partial_cmp(&self, other: &RcStr) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RcStr {
    fn cmp(&self, other: &RcStr) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for RcStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for RcStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for RcStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<&str> for RcStr {
    fn from(s: &str) -> RcStr {
        RcStr::new(s)
    }
}

impl From<String> for RcStr {
    fn from(s: String) -> RcStr {
        RcStr::new(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::RcStr;

    #[test]
    fn holds_its_text_and_counts_its_handles() {
        for text in ["", "a", "hello, wörld", &"x".repeat(1000)] {
            let a = RcStr::new(text);
            assert_eq!(&*a, text);
            assert_eq!(a.len(), text.len());
            let b = a.clone();
            assert!(RcStr::ptr_eq(&a, &b));
            assert_eq!(a.strong_count(), 2);
            drop(b);
            assert_eq!(a.strong_count(), 1);
            let c = RcStr::from(text.to_string());
            assert!(!RcStr::ptr_eq(&a, &c));
            assert_eq!(a, c);
            assert_eq!(a.cmp(&c), std::cmp::Ordering::Equal);
        }
        assert!(RcStr::new("a") < RcStr::new("b"));
        assert_eq!(
            format!("{:?} {}", RcStr::new("q\""), RcStr::new("q")),
            "\"q\\\"\" q"
        );
    }

    #[test]
    fn is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<RcStr>(), 8);
        assert_eq!(std::mem::size_of::<Option<RcStr>>(), 8);
    }
}
