//! The SX side end to end: `lib/store/store.sx` and the SX tests in
//! `spec/store/` run on a real machine whose performs a real store answers.

use crate::common::fresh_blocking;

const FRAMEWORK: &str = include_str!("../../../../lib/core/test.sx");
const SPEC: &str = include_str!("../../../../spec/store/store.sx");

/// Answers a store perform through the async API (`Store::execute`, as
/// the host does), on `rt`.
fn answer_async(
    store: &store::Store,
    rt: &tokio::runtime::Runtime,
    req: &sx::Request,
) -> Result<sx::Value, sx::EvalError> {
    use store::sx_ops::{decode, encode, eval_error};
    let sx::Value::Keyword(op) = &req.op else {
        return Err(sx::EvalError::new(sx::ErrorKind::Perform, "not a keyword"));
    };
    let op = decode(op.as_str(), &req.args).map_err(|e| eval_error(&e))?;
    let result = rt.block_on(store.execute(op)).map_err(|e| eval_error(&e))?;
    encode(result).map_err(|e| eval_error(&e))
}

/// Runs `src` after the test framework and the store library, answering
/// store performs with `store` (through the async API, or with
/// `answer_blocking` when `blocking`); returns the last value.
fn run_sx(
    store: &store::Store,
    src: &str,
    name: &str,
    blocking: bool,
) -> Result<sx::Value, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let handle = rt.handle().clone();
    let mut interp = sx::Interp::new();
    let mut host = |_: &mut sx::Interp, req: sx::Request| {
        if store::sx_ops::is_store_op(&req.op) {
            if blocking {
                store::sx_ops::answer_blocking(store, &handle, &req)
            } else {
                answer_async(store, &rt, &req)
            }
        } else {
            Err(sx::EvalError::new(
                sx::ErrorKind::Perform,
                format!("perform {}: not a store operation", req.op),
            ))
        }
    };
    interp
        .eval_str_with(FRAMEWORK, "lib/core/test.sx", &mut host)
        .map_err(|e| e.to_string())?;
    interp
        .eval_str_with(store::sx_ops::SX_LIBRARY, "lib/store/store.sx", &mut host)
        .map_err(|e| e.to_string())?;
    interp
        .eval_str_with(src, name, &mut host)
        .map_err(|e| e.to_string())
}

fn spec(pg: bool, blocking: bool) {
    let f = fresh_blocking(pg).unwrap();
    let src = format!("{SPEC}\n(test/summary)");
    let summary = run_sx(&f.store, &src, "spec/store/store.sx", blocking).unwrap();
    let sx::Value::Dict(d) = &summary else {
        panic!("no summary: {summary}")
    };
    let get = |k: &str| d.get(&sx::Value::kw(k)).cloned().unwrap_or_default();
    let failures = sx::printer::display(&get("failures"));
    assert!(
        matches!(get("failed"), sx::Value::Int(0)),
        "SX store tests failed: {failures}"
    );
    assert!(
        matches!(get("passed"), sx::Value::Int(n) if n >= 7),
        "{summary}"
    );
}

#[test]
fn spec_sqlite() {
    spec(false, false);
}

#[test]
fn spec_postgres() {
    spec(true, false);
}

#[test]
fn spec_sqlite_blocking() {
    spec(false, true);
}

#[test]
fn spec_postgres_blocking() {
    spec(true, true);
}

#[test]
fn decode_rejects_bad_performs() {
    use store::sx_ops::decode;
    let v = |s: &str| sx::reader::read_all(s, "<t>", false).unwrap();
    let cases = [
        ("store/get", "1"),
        ("store/put", "\"a:b\" (1 2)"),
        ("store/put", "\"a:b\" {:a 1} {:expect 5}"),
        ("store/list", ":post {:where (1)}"),
        ("store/list", ":post {:limit 0}"),
        ("store/relate", "\"a:b\" :r 5"),
        ("store/related", "\"a:b\" :r {:dir :sideways}"),
        ("store/apply", "({:effect :explode})"),
        ("store/apply", "({:effect :create :id \"a:b\"})"),
        ("store/apply", "(5)"),
        ("store/nope", ""),
    ];
    for (op, args) in cases {
        let e = decode(op, &v(args)).unwrap_err();
        assert_eq!(e.kind(), "invalid", "{op} {args}: {e}");
    }
}
