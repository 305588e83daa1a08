//! `Vec::push` for the machine's hot paths.
//!
//! `Vec::push` keeps the value alive across its (rarely taken) call to grow
//! the buffer, a call that may unwind, so in `Machine::execute` the compiler
//! builds each pushed value or frame in a temporary with narrow stores (a
//! tag byte, a payload word) and then copies it with 16-byte loads, which
//! cannot be served from the store buffer and stall the CPU: perf showed
//! about 40% of `fib`'s time on three such copies. Here the growth is a
//! cold call that cannot unwind (a panic in an `extern "C"` function
//! aborts) and does not take the value, so the value is stored straight
//! into its slot.
#![allow(unsafe_code)]

/// Appends `v` to `vec`.
#[inline(always)]
pub(crate) fn push<T>(vec: &mut Vec<T>, v: T) {
    if vec.len() == vec.capacity() {
        reserve_one(vec);
    }
    let len = vec.len();
    // SAFETY: `len < capacity`: either it was already, or `reserve_one`
    // made room, since `Vec::reserve(1)` guarantees a capacity of at least
    // `len + 1` when it returns (and when it cannot, it panics, which
    // aborts in an `extern "C"` function). So the slot at `len` is inside
    // the allocation and holds no value; it is written before the length
    // grows to cover it, and nothing in between can unwind.
    unsafe {
        vec.as_mut_ptr().add(len).write(v);
        vec.set_len(len + 1);
    }
}

/// Makes room for one more element. `extern "C"` so that it cannot unwind
/// (a panic here, allocation failure, aborts the process as `Vec` already
/// does when the allocator fails), which lets `push` keep its value in
/// registers.
#[cold]
#[inline(never)]
extern "C" fn reserve_one<T>(vec: &mut Vec<T>) {
    vec.reserve(1);
}

/// Removes the last element of `vec` without reading or dropping it: for
/// an element that holds nothing to drop (the machine's immediates).
#[inline(always)]
pub(crate) fn forget_last<T>(vec: &mut Vec<T>) {
    if let Some(len) = vec.len().checked_sub(1) {
        // SAFETY: `len < vec.len()`, so the elements below it stay
        // initialised; the last one is forgotten (never read or dropped
        // again), which at worst leaks.
        unsafe { vec.set_len(len) }
    }
}

/// Appends `s` to `out`: `String::push_str` without its call of `memcpy`
/// for a short string (the tags, words and digits of markup), which cost
/// as much as the rest of writing a table cell. A string of 4 to 16 bytes
/// is copied as two overlapping words of a fixed size, a shorter one byte
/// by byte; longer ones go to `memcpy` as before.
#[inline(always)]
pub(crate) fn push_str(out: &mut String, s: &str) {
    let n = s.len();
    if n > 16 {
        out.push_str(s);
        return;
    }
    out.reserve(n);
    let len = out.len();
    let src = s.as_ptr();
    // SAFETY: `reserve` left room for `n` more bytes after `len`, so every
    // write below is inside the allocation (offsets `0..n` of `dst`), and
    // every read is inside `s` (offsets `0..n` of `src`, `n <= 16`). The
    // bytes written are `s`'s, so the string stays UTF-8 once its length
    // covers them; nothing between the writes and `set_len` can unwind.
    unsafe {
        let v = out.as_mut_vec();
        let dst = v.as_mut_ptr().add(len);
        if n >= 8 {
            let a = src.cast::<u64>().read_unaligned();
            let b = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        } else if n >= 4 {
            let a = src.cast::<u32>().read_unaligned();
            let b = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        } else if n > 0 {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        v.set_len(len + n);
    }
}
