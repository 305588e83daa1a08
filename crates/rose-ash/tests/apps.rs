//! The apps' own SX tests: every `lib/<app>/tests/*.sx`, each run in a
//! fresh interpreter holding what a host would load for that app
//! (`lib/host`, `lib/store`, `lib/<app>`) and the test framework, with
//! store performs answered by a real store (a fresh SQLite file per test
//! file). Peers and sign-in are not there: `:peer/self` answers a fixed
//! URL and other peer or sign-in operations fail, so these tests cover
//! types, behaviours and helpers; the pages are covered over HTTP and in
//! the browser.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

use sx::{ErrorKind, EvalError, Value};

const SELF_URL: &str = "http://self.test";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the host would answer, minus the network.
fn answer(
    store: &store::Store,
    rt: &tokio::runtime::Handle,
    req: &sx::Request,
) -> Result<Value, EvalError> {
    if store::sx_ops::is_store_op(&req.op) {
        return store::sx_ops::answer_blocking(store, rt, req);
    }
    let name = match &req.op {
        Value::Keyword(k) => k.as_str().to_owned(),
        other => format!("{other}"),
    };
    match name.as_str() {
        "now" => Ok(Value::Int(store::now_ms())),
        "random-token" => Ok(Value::str(&host::security::random_token())),
        "log" => Ok(Value::Nil),
        "peer/self" => Ok(Value::str(SELF_URL)),
        "peer/name" => Ok(Value::str("self")),
        "peer/name-of" => Ok(match req.args.first() {
            Some(Value::Str(s)) if s.as_ref() == SELF_URL => Value::str("self"),
            _ => Value::Nil,
        }),
        "peer/url" => Ok(Value::Nil),
        _ => Err(EvalError::new(
            ErrorKind::Perform,
            format!("perform :{name}: not available in app tests"),
        )),
    }
}

/// Runs one test file of `app`; returns (passed, failed, failures text).
fn run_file(app: &str, file: &Path) -> (i64, i64, String) {
    let lib = root().join("lib");
    let library =
        host::library::Library::read(&lib, &["store".to_owned(), app.to_owned()]).unwrap();
    let mut app_state = host::app::App::load(&library, &[], false)
        .unwrap_or_else(|e| panic!("lib/{app} does not load: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(None, dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let mut host = |_: &mut sx::Interp, req: sx::Request| answer(&store, &handle, &req);
    let interp = &mut app_state.interp;
    let framework = std::fs::read_to_string(lib.join("core/test.sx")).unwrap();
    interp
        .eval_str_with(&framework, "lib/core/test.sx", &mut host)
        .unwrap();
    let src = std::fs::read_to_string(file).unwrap();
    let name = file
        .strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string();
    if let Err(e) = interp.eval_str_with(&src, &name, &mut host) {
        return (0, 1, format!("{name}: {e}"));
    }
    let summary = interp
        .eval_str_with("(test/summary)", "<summary>", &mut host)
        .unwrap();
    let Value::Dict(d) = &summary else {
        panic!("no summary: {summary}")
    };
    let get = |k: &str| d.get(&Value::kw(k)).cloned().unwrap_or_default();
    let n = |v: Value| match v {
        Value::Int(n) => n,
        _ => 0,
    };
    (
        n(get("passed")),
        n(get("failed")),
        sx::printer::display(&get("failures")),
    )
}

#[test]
fn every_app_test_file_passes() {
    let lib = root().join("lib");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&lib).unwrap() {
        let app_dir = entry.unwrap().path();
        let tests = app_dir.join("tests");
        if !tests.is_dir() {
            continue;
        }
        let app = app_dir.file_name().unwrap().to_string_lossy().into_owned();
        for t in std::fs::read_dir(&tests).unwrap() {
            let p = t.unwrap().path();
            if p.extension().is_some_and(|x| x == "sx") {
                files.push((app.clone(), p));
            }
        }
    }
    files.sort();
    assert!(
        files.iter().any(|(a, _)| a == "events") && files.iter().any(|(a, _)| a == "shop"),
        "expected tests of lib/events and lib/shop, found {files:?}"
    );
    let mut report = Vec::new();
    let mut total_failed = 0;
    for (app, file) in &files {
        let (passed, failed, failures) = run_file(app, file);
        report.push(format!(
            "{}: {passed} passed, {failed} failed",
            file.display()
        ));
        if failed > 0 || passed == 0 {
            total_failed += failed.max(1);
            report.push(format!("  {failures}"));
        }
    }
    assert_eq!(total_failed, 0, "app tests failed:\n{}", report.join("\n"));
}
