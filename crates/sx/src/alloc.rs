//! A counting global allocator, so the heap budget can see live bytes.
//!
//! The library never installs it; a binary that wants heap budgets does:
//! `#[global_allocator] static A: sx::alloc::CountingAlloc = sx::alloc::CountingAlloc::SYSTEM;`
//! or, over another allocator, `sx::alloc::CountingAlloc::new(inner)`.
//! Without it [`live_bytes`] is 0 and only the machine's stacks are counted.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// This thread's counters (one thread local, so one lookup per allocation).
struct ThreadCounts {
    /// Bytes allocated minus bytes freed by this thread. A machine runs on
    /// one thread, so the change over its runs is what it kept: the heap
    /// budget of one request among many on a server.
    net: std::cell::Cell<isize>,
    /// Bytes allocated by this thread, never decreasing (wrapping): the
    /// machine looks at the clock and the heap when a primitive call has
    /// allocated a lot, since one call can work for seconds.
    allocated: std::cell::Cell<u64>,
}

thread_local! {
    static THREAD: ThreadCounts = const {
        ThreadCounts {
            net: std::cell::Cell::new(0),
            allocated: std::cell::Cell::new(0),
        }
    };
}

#[inline]
fn thread_add(delta: isize) {
    // `try_with`: allocation also happens while thread locals are torn down.
    let _ = THREAD.try_with(|c| {
        c.net.set(c.net.get().wrapping_add(delta));
        if delta > 0 {
            c.allocated
                .set(c.allocated.get().wrapping_add(delta.unsigned_abs() as u64));
        }
    });
}

/// An allocator (the system's by default) that counts bytes in use.
pub struct CountingAlloc<A = System>(A);

impl CountingAlloc<System> {
    pub const SYSTEM: CountingAlloc<System> = CountingAlloc(System);
}

impl<A> CountingAlloc<A> {
    pub const fn new(inner: A) -> CountingAlloc<A> {
        CountingAlloc(inner)
    }
}

// SAFETY: every method forwards to the inner allocator with the same
// arguments; the counter is only arithmetic on the side.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            thread_add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { self.0.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        thread_add(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            thread_add(layout.size() as isize);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            thread_add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Bytes currently allocated through [`CountingAlloc`] (0 if not installed).
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes allocated minus bytes freed by the calling thread through
/// [`CountingAlloc`] (0 if not installed).
pub fn thread_net_bytes() -> isize {
    THREAD.try_with(|c| c.net.get()).unwrap_or(0)
}

/// Bytes the calling thread has ever allocated through [`CountingAlloc`]
/// (wrapping; 0 if not installed). Only differences mean anything.
#[inline]
pub fn thread_allocated_bytes() -> u64 {
    THREAD.try_with(|c| c.allocated.get()).unwrap_or(0)
}
