//! sx-web beyond what spec/tests/render.sx covers: sizes no SX test file
//! should build, and the Rust API.

use sx::{Interp, Value};

fn interp() -> Interp {
    let mut i = Interp::new();
    if let Err(e) = sx_web::install(&mut i) {
        panic!("install: {e}");
    }
    i
}

#[test]
fn deep_nesting_renders_without_overflowing_the_stack() {
    let mut i = interp();
    let v = i
        .eval_str(
            "(let loop ((n 0) (acc \"x\")) (if (= n 200000) acc (loop (+ n 1) (div acc))))",
            "deep",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let html = sx_web::render_html_string(&v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(html.len(), 200_000 * "<div></div>".len() + 1);
    let wire = sx_web::to_wire_string(&v).unwrap_or_else(|e| panic!("{e}"));
    assert!(wire.starts_with("(div (div") && wire.contains("(div \"x\")"));
    assert_eq!(wire.matches(')').count(), 200_000);
}

#[test]
fn render_errors_name_what_was_wrong() {
    let mut i = interp();
    let v = i
        .eval_str("(div (p {:a 1}))", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = sx_web::render_html_string(&v)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(err, "cannot render dict {:a 1} as markup");
    let v = i
        .eval_str("(element \"x-a\" :b {:c 1})", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = sx_web::render_html_string(&v)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "cannot render dict {:c 1} as markup as the value of attribute b"
    );
}

#[test]
fn attribute_names_are_checked() {
    // Keywords can hold characters HTML would read as markup.
    let mut i = interp();
    for bad in [":a\"b", ":a=b", ":a>b"] {
        let src = format!("(div {bad} 1)");
        if let Ok(v) = i.eval_str(&src, "t") {
            if matches!(v, Value::Element(_)) {
                assert!(sx_web::render_html_string(&v).is_err(), "{src}");
            }
        }
    }
}
