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

/// Moves the elements from index `from` on down to start at index `to`
/// (`to < from`), handing each element they replace to `discard`: a tail
/// call's callee and arguments replacing the frame it ends. Each element
/// is moved once, where swapping the two ranges (`swap_with_slice`, an
/// out-of-line call of ~44 instructions for three arguments) moved both.
pub(crate) fn slide_down<T>(vec: &mut Vec<T>, to: usize, from: usize, discard: impl Fn(T)) {
    let len = vec.len();
    let from = from.min(len);
    if to >= from {
        return;
    }
    let n = len - from;
    // SAFETY: `to < from <= len`, so every index read or written below is
    // inside the initialised part of the buffer. The length is first cut
    // to `to`, so should `discard` panic, the elements not yet moved leak
    // rather than being dropped twice. Each element at `to..from` is read
    // out exactly once (then owned by `discard`); each element at
    // `from..len` is then moved to the slot `from - to` below it, going
    // upward, so a slot is written only after it was read or discarded
    // (`to + i < from + i`); the length finally covers exactly the `n`
    // moved elements.
    unsafe {
        let base = vec.as_mut_ptr();
        vec.set_len(to);
        for i in to..from {
            discard(base.add(i).read());
        }
        for i in 0..n {
            base.add(to + i).write(base.add(from + i).read());
        }
        vec.set_len(to + n);
    }
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

/// A string of at most 16 bytes in a 16-byte array, appended by
/// [`push_padded`] with one copy of a fixed size: the constant markup of a
/// render-mode loop body, written once per item.
#[derive(Clone, Debug)]
pub(crate) struct Padded {
    bytes: [u8; 16],
    len: u8,
}

impl Padded {
    /// `s` padded with zeros, if it is at most 16 bytes long.
    pub(crate) fn new(s: &str) -> Option<Padded> {
        let mut bytes = [0u8; 16];
        bytes.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(Padded {
            bytes,
            len: u8::try_from(s.len()).ok()?,
        })
    }

    /// The text (for the compiler, which joins templates).
    pub(crate) fn as_str(&self) -> &str {
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

/// Appends `text`: all 16 bytes are copied into the spare capacity, and the
/// string's length grows by the text's own.
#[inline(always)]
pub(crate) fn push_padded(out: &mut String, text: &Padded) {
    out.reserve(16);
    let len = out.len();
    // SAFETY: `reserve(16)` left room for 16 bytes after `len`, so the
    // 16-byte write is inside the allocation. The length then covers only
    // the text's `len <= 16` bytes, which are the start of a `&str` (see
    // `Padded::new`, which copies a whole `&str`), so the string stays
    // UTF-8; the padding beyond stays in the spare capacity, unread.
    // Nothing between the write and `set_len` can unwind.
    unsafe {
        let v = out.as_mut_vec();
        v.as_mut_ptr()
            .add(len)
            .cast::<[u8; 16]>()
            .write_unaligned(text.bytes);
        v.set_len(len + usize::from(text.len));
    }
}

/// Two-digit decimal pairs "00" to "99", for [`push_int`].
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends the decimal digits of `i` (what `write!(out, "{i}")` writes),
/// written straight into the string's spare capacity two at a time, last
/// first, after counting them: no formatting machinery, no stack buffer
/// to copy (a table cell's number cost ~40 instructions through `itoa`).
#[inline]
pub(crate) fn push_int(out: &mut String, i: i64) {
    let mut u = i.unsigned_abs();
    let digits = decimal_digits(u);
    let n = digits + usize::from(i < 0);
    out.reserve(n);
    let len = out.len();
    // SAFETY: `reserve(n)` left room for `n` bytes after `len`; every
    // write below is at an offset in `0..n` of `dst`: the pairs go at
    // `end - 2` while `end >= n - digits + 2` (a number of `digits` digits
    // has `digits / 2` pairs), the last digit or pair at `end - 1` or
    // `end - 2` with `end - 1 >= n - digits`, and the sign at 0. The bytes
    // are ASCII digits and `-`, so the string stays UTF-8, and all `n`
    // are written before `set_len` covers them; nothing can unwind.
    unsafe {
        let v = out.as_mut_vec();
        let dst = v.as_mut_ptr().add(len);
        let mut end = n;
        while u >= 100 {
            let pair = (u % 100) as usize * 2;
            u /= 100;
            end -= 2;
            dst.add(end)
                .cast::<[u8; 2]>()
                .write_unaligned(*DIGIT_PAIRS.as_ptr().add(pair).cast::<[u8; 2]>());
        }
        if u >= 10 {
            let pair = u as usize * 2;
            end -= 2;
            dst.add(end)
                .cast::<[u8; 2]>()
                .write_unaligned(*DIGIT_PAIRS.as_ptr().add(pair).cast::<[u8; 2]>());
        } else {
            end -= 1;
            *dst.add(end) = b'0' + u as u8;
        }
        // Every digit went at or after the sign's place.
        debug_assert_eq!(end, usize::from(i < 0));
        if i < 0 {
            *dst = b'-';
        }
        v.set_len(len + n);
    }
}

/// How many decimal digits `u` has (1 for 0): the power of ten below its
/// highest bit, from the bit count (1233 / 4096 is just above log10 2),
/// corrected by one comparison. `u64::checked_ilog10` loops, and cost half
/// a table cell's number.
#[inline(always)]
fn decimal_digits(u: u64) -> usize {
    const POW10: [u64; 20] = {
        let mut p = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            p[i] = p[i - 1] * 10;
            i += 1;
        }
        p
    };
    let v = u | 1;
    let t = (((64 - v.leading_zeros()) * 1233) >> 12) as usize;
    t + 1 - usize::from(POW10.get(t).is_some_and(|&p| v < p))
}

#[cfg(test)]
mod tests {
    use super::slide_down;
    use std::rc::Rc;

    /// `slide_down` against the plain definition, on values whose drops
    /// are counted: overlapping and disjoint ranges, nothing to move,
    /// `from` past the end.
    #[test]
    fn slide_down_moves_each_value_once_and_drops_the_replaced() {
        for len in 0..7 {
            for to in 0..=len {
                for from in to..=len + 1 {
                    let items: Vec<Rc<usize>> = (0..len).map(Rc::new).collect();
                    let mut v = items.clone();
                    let dropped = std::cell::RefCell::new(Vec::new());
                    slide_down(&mut v, to, from, |x: Rc<usize>| {
                        dropped.borrow_mut().push(*x)
                    });
                    let from = from.min(len);
                    let mut want: Vec<usize> = (0..to).collect();
                    if to < from {
                        want.extend(from..len);
                        assert_eq!(*dropped.borrow(), (to..from).collect::<Vec<_>>());
                    } else {
                        want.extend(to..len);
                        assert!(dropped.borrow().is_empty());
                    }
                    assert_eq!(v.iter().map(|x| **x).collect::<Vec<_>>(), want);
                    drop(v);
                    // Every value is owned once more by `items` alone:
                    // nothing was duplicated or leaked.
                    assert!(items.iter().all(|x| Rc::strong_count(x) == 1));
                }
            }
        }
    }
}
