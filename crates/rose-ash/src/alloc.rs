//! The process's allocator: mimalloc, entered by its plain (unaligned)
//! functions whenever the layout allows.
//!
//! `mimalloc::MiMalloc` calls `mi_malloc_aligned` for every allocation, and
//! that often takes mimalloc's generic path even for an alignment of 8.
//! Every block `mi_malloc` returns is aligned to at least 8 bytes (16 for
//! sizes of 16 and more), so layouts aligned to 8 or less, which are almost
//! all of the SX machine's (values, cons cells, strings), can use it; the
//! rest go through `MiMalloc`. Measured by callgrind: the big-table render
//! cost 9% fewer instructions (17.7M against 19.4M per render, `rose-ash sx eval`
//! of three renders under callgrind, less the same run without them).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{mi_free, mi_malloc, mi_realloc, mi_zalloc};
use mimalloc::MiMalloc;

/// The alignment every `mi_malloc` block has, whatever its size.
const PLAIN_ALIGN: usize = 8;

pub struct FastMiMalloc;

// SAFETY: each method returns memory from mimalloc that satisfies `layout`:
// the plain functions only when `layout.align() <= 8`, which every mimalloc
// block meets; otherwise `MiMalloc`'s aligned functions. Blocks from either
// are freed by `mi_free`, which takes any mimalloc block (it is what
// `MiMalloc::dealloc` calls too).
unsafe impl GlobalAlloc for FastMiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: see above.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: same contract as the caller's.
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: see above.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: same contract as the caller's.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: `ptr` is a mimalloc block; the new block keeps the
            // 8-byte alignment every mimalloc block has.
            unsafe { mi_realloc(ptr.cast::<c_void>(), new_size).cast() }
        } else {
            // SAFETY: same contract as the caller's.
            unsafe { MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}
