//! `rose-ash sx test`: runs SX test files written with the framework in
//! `lib/core/test.sx` (deftest, assert=, assert-error, ...).
//!
//! Each file runs in a fresh interpreter, so files cannot interfere. The
//! last line is `N passed, N failed` (tests, not assertions); the exit code
//! is non-zero when any test failed or any file could not be run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use sx::Value;

use crate::sx_cmd::{cli_host, new_interp};

/// The framework, compiled into the binary so `sx test` works anywhere.
const FRAMEWORK: &str = include_str!("../../../lib/core/test.sx");

/// Totals over every file run.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub assertions: u64,
    pub broken_files: u64,
}

pub fn run(paths: Vec<PathBuf>, budget: &sx::Budget) -> Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("spec/tests")]
    } else {
        paths
    };
    let files = collect_files(&paths)?;
    if files.is_empty() {
        anyhow::bail!("no .sx test files found under {}", display_paths(&paths));
    }
    let mut totals = Totals::default();
    for file in &files {
        run_file(file, budget, &mut totals);
    }
    if totals.broken_files > 0 {
        outln!("{} file(s) could not be run", totals.broken_files);
    }
    outln!("{} assertions", totals.assertions);
    outln!("{} passed, {} failed", totals.passed, totals.failed);
    Ok(if totals.failed == 0 && totals.broken_files == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every `*.sx` file named, or found (sorted) under a named directory.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).with_context(|| format!("reading {}", p.display()))?;
            found.sort();
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "sx") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs one file, adding to `totals` and printing its failures.
pub fn run_file(file: &Path, budget: &sx::Budget, totals: &mut Totals) {
    let name = file.display().to_string();
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            outln!("FILE {name}: cannot read: {e}");
            totals.broken_files += 1;
            return;
        }
    };
    let mut interp = new_interp(budget);
    if let Err(e) = interp.eval_str(FRAMEWORK, "lib/core/test.sx") {
        outln!("FILE {name}: the test framework failed to load:\n{e}");
        totals.broken_files += 1;
        return;
    }
    let loaded = interp.eval_str_with(&src, &name, &mut cli_host);
    let summary = interp.eval_str("(test/summary)", "<test-runner>");
    let summary = match summary {
        Ok(Value::Dict(d)) => d,
        Ok(other) => {
            outln!("FILE {name}: (test/summary) returned {other}, not a dict");
            totals.broken_files += 1;
            return;
        }
        Err(e) => {
            outln!("FILE {name}: (test/summary) failed:\n{e}");
            totals.broken_files += 1;
            return;
        }
    };
    let num = |k: &str| match summary.get(&Value::kw(k)) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    let (passed, failed, assertions) = (num("passed"), num("failed"), num("assertions"));
    if let Some(Value::List(failures)) = summary.get(&Value::kw("failures")) {
        for f in failures.iter() {
            let field = |k: &str| match f {
                Value::Dict(d) => d.get(&Value::kw(k)).map(|v| {
                    let mut s = String::new();
                    sx::printer::to_str(v, &mut s);
                    s
                }),
                _ => None,
            };
            outln!(
                "FAIL {name}: {}: {}",
                field("test").unwrap_or_default(),
                field("message").unwrap_or_default()
            );
        }
    }
    let status = match &loaded {
        Ok(_) if failed == 0 => "ok",
        Ok(_) => "FAILED",
        Err(_) => "ERROR",
    };
    outln!("{status:6} {name}: {passed} passed, {failed} failed ({assertions} assertions)");
    if let Err(e) = loaded {
        // An error outside any deftest stops the file: count it as a failure.
        outln!("{e}");
        totals.failed += 1;
    }
    totals.passed += passed;
    totals.failed += failed;
    totals.assertions += assertions;
}
