//! Arbitrary bytes read and evaluated under a tight budget: the result must
//! be a value or an error, never a panic, a native stack overflow, a hang
//! (libFuzzer's `-timeout`) or unbounded memory (`-rss_limit_mb`).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

// Install the counting allocator so the heap budget sees every allocation,
// as a host that sets `max_heap` would.
#[global_allocator]
static ALLOC: sx::alloc::CountingAlloc = sx::alloc::CountingAlloc::SYSTEM;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Read first without registering the source (fuzzing makes millions of
    // inputs; registered sources live for the process).
    if sx::reader::read_all(&text, "<fuzz>", false).is_err() {
        return;
    }
    let mut interp = sx::Interp::new();
    interp.budget = sx::Budget {
        max_steps: Some(20_000),
        max_time: Some(Duration::from_millis(200)),
        max_heap: Some(sx::alloc::live_bytes() + 256 * 1024 * 1024),
        max_depth: 10_000,
        heap_per_machine: false,
    };
    match interp.eval_str(&text, "<fuzz>") {
        Ok(v) => {
            let _ = sx::printer::display(&v);
            // Computed numbers, strings, lists and dicts must round-trip.
            // (Elements, and symbols and keywords whose names do not read
            // back on their own, are skipped: `symbol`, `keyword`, `gensym`
            // and `element` accept such names, a known kernel issue.)
            if !plain_data(&v, 0) {
                return;
            }
            if let Ok(s) = sx::printer::serialize(&v) {
                let back = sx::reader::read_one(&s, "<fuzz>");
                assert!(
                    back.is_ok(),
                    "serialized result {s:?} does not read back: {back:?}"
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

/// Nil, booleans, numbers, strings, readable symbols and keywords, and lists
/// and dicts of them (bounded depth).
fn plain_data(v: &sx::Value, depth: usize) -> bool {
    use sx::Value;
    if depth > 200 {
        return false;
    }
    match v {
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) => true,
        Value::Symbol(s) => {
            matches!(sx::reader::read_one(s.as_str(), "<name>"), Ok(Value::Symbol(t)) if t == *s)
        }
        Value::Keyword(k) => matches!(
            sx::reader::read_one(&format!(":{}", k.as_str()), "<name>"),
            Ok(Value::Keyword(t)) if t == *k
        ),
        Value::List(l) => l.iter().all(|x| plain_data(x, depth + 1)),
        Value::Dict(d) => d
            .iter()
            .all(|(k, x)| plain_data(k, depth + 1) && plain_data(x, depth + 1)),
        _ => false,
    }
}
