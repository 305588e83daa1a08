//! Memory: closures that capture their own environment must not leak, and
//! loops and deep recursion run in the memory the design promises.
//!
//! The counting allocator is installed for this test binary, so
//! `sx::alloc::live_bytes()` is exact: after a run, everything it built
//! must have been freed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use sx::{Interp, Value};

#[global_allocator]
static ALLOC: sx::alloc::CountingAlloc = sx::alloc::CountingAlloc::SYSTEM;

/// Holds this file's tests one at a time. The allocator's count is the
/// whole process's, and `cargo test` runs a file's tests on parallel
/// threads, so one test's allocations would show in another's figure
/// (nextest runs each test in its own process, where this costs nothing).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Live bytes retained by running `src` (after the interpreter exists).
fn retained(interp: &mut Interp, src: &str) -> (Value, isize) {
    let before = sx::alloc::live_bytes() as isize;
    let v = interp.eval_str(src, "<memory-test>").expect("runs");
    let after = sx::alloc::live_bytes() as isize;
    (v, after - before)
}

#[test]
fn closures_capturing_their_own_environment_do_not_leak() {
    let _serial = one_at_a_time();
    let mut interp = Interp::new();
    interp
        .eval_str(
            r#"
            (define (make-counter) (let ((n 0)) (fn () (set! n (+ n 1)) n)))
            (define (make-rec)
              (letrec ((ev? (fn (n) (if (= n 0) true (od? (- n 1)))))
                       (od? (fn (n) (if (= n 0) false (ev? (- n 1))))))
                ev?))
            (define (make-internal k)
              (define (helper x) (if (= x 0) k (helper (- x 1))))
              (define offset (* k 2))
              (fn () (+ (helper 2) offset)))
            (define (make-self) (let loop ((i 0)) (fn () loop)))
            (define (churn i n acc)
              (if (= i n)
                  acc
                  (let ((c (make-counter)) (r (make-rec)) (h (make-internal i)) (s (make-self)))
                    (c)
                    (churn (+ i 1) n (+ acc (c) (if (r 4) 1 0) (h) (if (fn? (s)) 1 0))))))
            "#,
            "<setup>",
        )
        .expect("setup");
    // Warm up (first-call allocations such as stack growth), then measure.
    let _ = retained(&mut interp, "(churn 0 1000 0)");
    let (v, grew) = retained(&mut interp, "(churn 0 200000 0)");
    assert_eq!(v, Value::Int(200_000 * 4 + 3 * (200_000 * 199_999 / 2)));
    // 200k iterations each making 5+ closures: a leak of even one closure per
    // iteration would retain tens of megabytes.
    assert!(
        grew < 256 * 1024,
        "retained {grew} bytes after 200k iterations"
    );
}

#[test]
fn tail_loop_of_ten_million_runs_in_constant_memory() {
    let _serial = one_at_a_time();
    let mut interp = Interp::new();
    let (v, grew) = retained(
        &mut interp,
        "(define (loop i acc) (if (= i 10000000) acc (loop (+ i 1) (+ acc 1)))) (loop 0 0)",
    );
    assert_eq!(v, Value::Int(10_000_000));
    assert!(grew < 256 * 1024, "retained {grew} bytes");
}

#[test]
fn deep_non_tail_recursion_is_bounded_by_memory_not_the_native_stack() {
    let _serial = one_at_a_time();
    let mut interp = Interp::new();
    let v = interp
        .eval_str(
            "(define (count-down n) (if (= n 0) 0 (+ 1 (count-down (- n 1))))) (count-down 200000)",
            "<deep>",
        )
        .expect("runs");
    assert_eq!(v, Value::Int(200_000));
}

#[test]
fn long_lists_drop_without_recursion() {
    let _serial = one_at_a_time();
    let mut interp = Interp::new();
    let v = interp
        .eval_str("(len (range 2000000))", "<long>")
        .expect("runs");
    assert_eq!(v, Value::Int(2_000_000));
    // Deeply nested (not long) lists drop iteratively too.
    let v = interp
        .eval_str(
            "(define (nest n acc) (if (= n 0) acc (nest (- n 1) (list acc)))) (list? (nest 1000000 nil))",
            "<nested>",
        )
        .expect("runs");
    assert_eq!(v, Value::Bool(true));
}

#[test]
fn closures_assigned_into_their_own_captured_variable_are_collected() {
    let _serial = one_at_a_time();
    // The one shape that forms a reference cycle: a closure stored into a
    // variable (a cell) that the closure itself captures. The cell cycle
    // collector must reclaim it.
    let mut interp = Interp::new();
    interp
        .eval_str(
            r#"
            (define (make-self) (let ((f nil)) (set! f (fn () f)) f))
            (define (make-self-define) (define self nil) (set! self (fn (n) (if (= n 0) :done (self (- n 1))))) self)
            (define (churn i acc)
              (if (= i 0)
                  acc
                  (let ((a (make-self)) (b (make-self-define)))
                    (churn (- i 1) (+ acc (if (fn? (a)) 1 0) (if (= (b 3) :done) 1 0))))))
            "#,
            "<setup>",
        )
        .expect("setup");
    let _ = retained(&mut interp, "(churn 1000 0)");
    let (v, grew) = retained(&mut interp, "(churn 200000 0)");
    assert_eq!(v, Value::Int(400_000));
    assert!(
        grew < 2 * 1024 * 1024,
        "retained {grew} bytes after 200k cycles"
    );
}

#[test]
fn live_cells_survive_collection() {
    let _serial = one_at_a_time();
    // Counters kept in a list stay usable across many collections.
    let mut interp = Interp::new();
    let v = interp
        .eval_str(
            r#"
            (define (make-counter) (let ((n 0)) (fn () (set! n (+ n 1)) n)))
            (define keep (map (fn (_) (make-counter)) (range 100)))
            (define (churn i) (if (= i 0) nil (begin (let ((f nil)) (set! f (fn () f))) (churn (- i 1)))))
            (churn 50000)
            (for-each (fn (c) (c)) keep)
            (reduce + 0 (map (fn (c) (c)) keep))
            "#,
            "<live>",
        )
        .expect("runs");
    assert_eq!(v, Value::Int(200));
}

/// One primitive call can work for a long time or build a huge value; the
/// time and heap budgets must still stop a loop of such calls promptly,
/// although it makes few calls. (Once checked only every 1024 calls: 40
/// sorts of two million items ran 38 s past a 1 s budget, and a loop
/// doubling a string reached a 1 GiB allocation under a 100 MB budget.)
#[test]
fn budgets_stop_loops_of_heavy_primitive_calls() {
    let _serial = one_at_a_time();
    use std::time::{Duration, Instant};
    let mut interp = Interp::new();
    interp.budget.max_time = Some(Duration::from_millis(300));
    let started = Instant::now();
    let err = interp
        .eval_str(
            "(let loop ((i 0)) (if (< i 1000) (begin (len (sort (reverse (range 100000)))) (loop (+ i 1))) :finished))",
            "<heavy>",
        )
        .expect_err("stopped by the time budget");
    let err = err.to_string();
    assert!(err.contains("time budget"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped only after {:?}",
        started.elapsed()
    );

    let mut interp = Interp::new();
    interp.budget.max_heap = Some(sx::alloc::live_bytes() + 64 * 1024 * 1024);
    let err = interp
        .eval_str(
            r#"(let loop ((s "x") (i 0)) (if (< i 40) (loop (str s s) (+ i 1)) (len s)))"#,
            "<doubling>",
        )
        .expect_err("stopped by the heap budget");
    let err = err.to_string();
    assert!(err.contains("heap budget"), "{err}");
    let err = interp
        .eval_str(
            r#"(let loop ((s "x") (i 0)) (if (< i 40) (loop (join (list s s) "") (+ i 1)) (len s)))"#,
            "<doubling-join>",
        )
        .expect_err("stopped by the heap budget");
    let err = err.to_string();
    assert!(err.contains("heap budget"), "{err}");
}

#[test]
fn the_per_machine_heap_budget_counts_across_resumes() {
    let _serial = one_at_a_time();
    // A machine that keeps what it builds between performs: each run
    // (every resume is one) adds what it kept, so the budget ends it
    // although no single run allocates much. The host's own allocations
    // between runs do not count.
    let mut interp = Interp::new();
    interp.budget.max_heap = Some(8 * 1024 * 1024);
    interp.budget.heap_per_machine = true;
    // A backstop, far past where the heap budget ends it: were runs not
    // added up, this would fail on steps instead of running for ever.
    interp.budget.max_steps = Some(5_000_000);
    let mut host = |_: &mut Interp, req: sx::Request| -> Result<Value, sx::EvalError> {
        Ok(req.args.into_first())
    };
    let err = interp
        .eval_str_with(
            "(define (grow i acc) (grow (+ i 1) (cons (perform :echo (str \"item\" i)) acc))) (grow 0 '())",
            "<growing>",
            &mut host,
        )
        .expect_err("stopped by the heap budget");
    let err = err.to_string();
    assert!(err.contains("heap budget"), "{err}");
}

#[test]
fn a_per_machine_heap_budget_ignores_what_the_process_holds_elsewhere() {
    // A server counts each machine's own heap (`heap_per_machine`). The
    // primitives that check the budget before building something big
    // (`range`, `string-repeat`) compared the whole process's live bytes
    // with that per-machine budget, so a process holding more elsewhere
    // than one request may use failed every `(range 10)`.
    let _serial = one_at_a_time();
    let held = vec![1u8; 32 * 1024 * 1024];
    let mut interp = Interp::new();
    interp.budget.max_heap = Some(8 * 1024 * 1024);
    interp.budget.heap_per_machine = true;
    let small = interp.eval_str("(len (range 10))", "<small>");
    assert!(matches!(small, Ok(Value::Int(10))), "{small:?}");
    let repeated = interp.eval_str("(len (string-repeat \"ab\" 1000))", "<repeat>");
    assert!(matches!(repeated, Ok(Value::Int(2000))), "{repeated:?}");
    // The budget still binds what the machine itself would build.
    let big = interp
        .eval_str("(len (range 1000000))", "<big>")
        .expect_err("a million cells are past 8 MB");
    assert!(big.to_string().contains("heap budget"), "{big}");
    let big = interp
        .eval_str("(string-repeat \"ab\" 10000000)", "<big>")
        .expect_err("20 MB is past 8 MB");
    assert!(big.to_string().contains("heap budget"), "{big}");
    drop(held);
}
