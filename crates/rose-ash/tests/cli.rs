//! The `rose-ash` binary over its command line: `sx eval`, `sx test`, and
//! the SX conformance suite in spec/tests (so `cargo test` runs it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rose-ash"))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run rose-ash")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn conformance_suite_passes() {
    let out = run(&["sx", "test", "spec/tests"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "spec/tests failed:\n{text}\n{}",
        stderr(&out)
    );
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(" failed") && last.contains(" passed, 0 failed"),
        "{last}"
    );
}

#[test]
fn eval_expression_prints_canonical_last_value() {
    let out = run(&[
        "sx",
        "eval",
        "-e",
        "(define x 2) {:b (* x 1.5) :a (list 1 \"s\")}",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{:a (1 \"s\") :b 3.0}\n");
}

#[test]
fn eval_reads_stdin_and_files() {
    let mut child = bin()
        .args(["sx", "eval", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"(+ 1 2)\n(* 3 4)")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(stdout(&out), "12\n");

    let dir = std::env::temp_dir().join(format!("sx-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("prog.sx");
    std::fs::write(&file, "(define (sq x) (* x x))\n(sq 9)\n").expect("write");
    let out = run(&["sx", "eval", file.to_str().expect("utf8 path")]);
    assert_eq!(stdout(&out), "81\n");
}

#[test]
fn eval_error_reports_position_and_backtrace_and_exits_1() {
    let out = run(&[
        "sx",
        "eval",
        "-e",
        "(define (f x) (car x))\n(define (g) (+ 1 (f 2)))\n(g)",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("<expr>:1:15: error: unbound symbol: car"),
        "{err}"
    );
    assert!(err.contains("in f at <expr>:1:15"), "{err}");
    assert!(err.contains("in g at <expr>:2:"), "{err}");
    assert!(err.contains('^'), "{err}");
}

#[test]
fn eval_read_error_reports_line_and_column() {
    let out = run(&["sx", "eval", "-e", "(+ 1\n  (* 2 3)"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("<expr>:1:1: read error: unexpected end of input"),
        "{err}"
    );
}

#[test]
fn an_error_in_a_long_line_shows_a_window_of_it() {
    // A minified or generated one-line file: the snippet must not be the
    // whole line (it was: megabytes on stderr for a deep-nesting error).
    let src = format!("{} (+ 1 \"a\") {}", "1 ".repeat(5000), "2 ".repeat(5000));
    let out = run(&["sx", "eval", "-e", &src]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.len() < 1000, "{} bytes: {err}", err.len());
    let lines: Vec<&str> = err.lines().collect();
    let shown = lines
        .iter()
        .position(|l| l.starts_with("1 | ..."))
        .unwrap_or_else(|| panic!("no windowed source line: {err}"));
    assert!(lines[shown].ends_with("..."), "{err}");
    assert!(lines[shown].contains("(+ 1 \"a\")"), "{err}");
    // The caret is under the call's opening parenthesis.
    let caret = lines[shown + 1].find('^').expect("caret");
    assert_eq!(lines[shown].as_bytes()[caret], b'(', "{err}");
}

#[test]
fn perform_goes_to_the_cli_host() {
    let out = run(&["sx", "eval", "-e", "(print \"hi\" 42) (perform :echo 7)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi 42\n7\n");
}

#[test]
fn budgets_end_runaway_code_with_a_clear_error() {
    let spin = "(define (spin n) (spin (+ n 1))) (spin 0)";
    let grow = "(define (grow n acc) (grow (+ n 1) (cons (str \"item\" n) acc))) (grow 0 '())";
    // Named lets run as loops in their frame: budgets must stop them too.
    let spin_loop = "(let spin ((n 0)) (spin (+ n 1)))";
    let grow_loop = "(let grow ((n 0) (acc '())) (grow (+ n 1) (cons (str \"item\" n) acc)))";
    for (flag, value, program, expected) in [
        ("--max-steps", "10000", spin, "step budget exhausted"),
        ("--timeout", "0.2", spin, "time budget exhausted"),
        ("--max-heap-mb", "64", grow, "heap budget exhausted"),
        ("--max-steps", "10000", spin_loop, "step budget exhausted"),
        ("--timeout", "0.2", spin_loop, "time budget exhausted"),
        ("--max-heap-mb", "64", grow_loop, "heap budget exhausted"),
    ] {
        let out = run(&["sx", flag, value, "eval", "-e", program]);
        assert_eq!(out.status.code(), Some(1), "{program}");
        assert!(
            stderr(&out).contains(expected),
            "{program}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn runaway_code_stops_without_any_flag_and_bad_timeouts_are_refused() {
    // The default time budget ends an endless loop with an error; the
    // environment variable shortens it so the test is quick.
    let out = bin()
        .env("ROSE_ASH_SX_TIMEOUT", "0.3")
        .args(["sx", "eval", "-e", "(let loop () (loop))"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("time budget exhausted"),
        "{}",
        stderr(&out)
    );
    let help = run(&["sx", "eval", "--help"]);
    assert!(stdout(&help).contains("[default: 60]"), "{}", stdout(&help));
    // 0 turns the limit off.
    let out = run(&["sx", "--timeout", "0", "eval", "-e", "(+ 1 2)"]);
    assert_eq!(stdout(&out), "3\n");
    for bad in ["-1", "nan", "inf", "1e300", "soon"] {
        let out = run(&["sx", &format!("--timeout={bad}"), "eval", "-e", "1"]);
        assert_eq!(out.status.code(), Some(2), "--timeout {bad}");
        assert!(stderr(&out).contains("seconds"), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn sx_test_reports_failures_and_exits_nonzero() {
    let dir = std::env::temp_dir().join(format!("sx-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("failing.sx");
    std::fs::write(
        &file,
        "(deftest \"good\" (assert= 2 (+ 1 1)))\n(deftest \"bad\" (assert= 3 (+ 1 1)))\n",
    )
    .expect("write");
    let out = run(&["sx", "test", file.to_str().expect("utf8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL"), "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 1 failed"));
}

#[test]
fn closed_stdout_is_not_a_panic() {
    // `rose-ash sx eval ... | head` closes the pipe early; that must not panic.
    let mut child = bin()
        .args(["sx", "eval", "-e", "(serialize (range 300000))"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_ne!(out.status.code(), Some(101), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn client_secrets_beginning_with_a_hyphen_are_values_not_flags() {
    // A printed secret is base64url, so one in 64 begins with `-`; pasted
    // after `--client-secret` it was taken for a flag (the e2e peers test
    // failed on that now and then).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let secret = "-Ex4mple-secret-0123456789-abcdefghij";
    let o = run(&[
        "idp",
        "add-client",
        "--data-dir",
        data,
        "--id",
        "shop",
        "--redirect-uri",
        "http://127.0.0.1:8083/auth/callback",
        "--secret",
        secret,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("client_secret={secret}")),
        "{}",
        stdout(&o)
    );

    // `serve` parses it too: what stops this one is the address, after.
    let o = run(&[
        "serve",
        "--data-dir",
        data,
        "--issuer",
        "http://127.0.0.1:8084",
        "--client-secret",
        secret,
        "--addr",
        "not-an-address",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(err.contains("not-an-address"), "{err}");
}
