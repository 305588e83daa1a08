//! `rose-ash export` and `rose-ash import` as real processes: SIGKILL in
//! the middle of a large import, repeated, leaves every transaction
//! applied or absent; a corrupt file is refused with its position.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use store::{Expect, Store, Target, ops};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rose-ash"));
    c.env_remove("ROSE_ASH_DATABASE_URL")
        .env_remove("ROSE_ASH_DATA_DIR");
    c
}

fn canon(src: &str) -> String {
    sx::printer::serialize(&sx::reader::read_one(src, "<t>").unwrap()).unwrap()
}

fn export_of(s: &Store) -> String {
    let mut out = Vec::new();
    store::export::export(s, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A store of `n` objects with two revisions each and a relation each,
/// exported to `file`; returns the export text.
fn make_export(dir: &Path, n: usize, file: &Path) -> String {
    let s = Store::open_sqlite(&dir.join("store.sqlite")).unwrap();
    s.write(|tx| {
        for i in 0..n {
            let id = format!("item:{i:06}");
            for v in 0..2 {
                let b = ops::check_body(canon(&format!(
                    r#"{{:n {i} :v {v} :text "item {i} revision {v} with some padding text"}}"#
                )))?;
                ops::put(tx, &id, &b, &Expect::Any, 1_000_000 + i as i64 * 2 + v)?;
            }
            ops::relate(
                tx,
                &id,
                "next",
                &Target::local(format!("item:{:06}", i + 1)),
                5,
            )?;
        }
        ops::ref_cas(tx, "head", None, Some("item:000000"), 7)?;
        Ok(())
    })
    .unwrap();
    let text = export_of(&s);
    std::fs::write(file, &text).unwrap();
    text
}

/// Every record the store holds is a whole record of the file.
fn check_consistent(data: &Path, file_lines: &HashSet<&str>) -> usize {
    let s = Store::open_sqlite(&data.join("store.sqlite")).unwrap();
    let text = export_of(&s);
    let lines: Vec<&str> = text.lines().collect();
    let records = &lines[1..lines.len() - 1];
    for l in records {
        assert!(
            file_lines.contains(l),
            "after a kill the store holds a partial record: {}",
            &l[..l.len().min(160)]
        );
    }
    records.len()
}

fn import_cmd(file: &Path, data: &Path) -> Command {
    let mut c = bin();
    c.arg("import")
        .arg(file)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn sigkill_mid_import_leaves_whole_transactions() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dump.sx");
    let text = make_export(&tmp.path().join("src"), 20_000, &file);
    let file_lines: HashSet<&str> = text.lines().collect();
    let total = file_lines.len() - 2;

    // How long a whole import takes here.
    let full = tmp.path().join("full");
    let t0 = Instant::now();
    let out = import_cmd(&file, &full).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elapsed = t0.elapsed();
    assert_eq!(check_consistent(&full, &file_lines), total);

    // Kill fresh imports at several points, and one import repeatedly
    // (each run resuming the last), checking after every kill.
    let mut partial = 0;
    let resumed = tmp.path().join("resumed");
    for (k, frac) in [0.4, 0.55, 0.7, 0.85, 0.95].into_iter().enumerate() {
        for data in [tmp.path().join(format!("fresh{k}")), resumed.clone()] {
            let mut child = import_cmd(&file, &data).spawn().unwrap();
            std::thread::sleep(elapsed.mul_f64(frac));
            // SIGKILL: no chance to clean up.
            child.kill().unwrap();
            let _ = child.wait();
            let n = check_consistent(&data, &file_lines);
            if n > 0 && n < total {
                partial += 1;
            }
        }
    }
    assert!(
        partial > 0,
        "no kill landed in the middle of an import (import took {elapsed:?})"
    );
    // Finishing the interrupted import gives exactly the file back.
    let out = import_cmd(&file, &resumed).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Store::open_sqlite(&resumed.join("store.sqlite")).unwrap();
    assert!(
        export_of(&s) == text,
        "resumed import differs from the file"
    );
}

#[test]
fn export_import_round_trip_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dump.sx");
    let text = make_export(&tmp.path().join("src"), 50, &file);
    // export --out writes the same bytes as the library.
    let out_file = tmp.path().join("again.sx");
    let out = bin()
        .args(["export", "--out"])
        .arg(&out_file)
        .arg("--data-dir")
        .arg(tmp.path().join("src"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&out_file).unwrap() == text);
    // export to stdout, import into a fresh dir, export again.
    let out = bin()
        .args(["export", "--data-dir"])
        .arg(tmp.path().join("src"))
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap() == text);
    let out = import_cmd(&file, &tmp.path().join("dst")).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported 50 objects"));
    let s = Store::open_sqlite(&tmp.path().join("dst/store.sqlite")).unwrap();
    assert!(export_of(&s) == text);
}

#[test]
fn corrupt_import_is_refused_with_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dump.sx");
    let text = make_export(&tmp.path().join("src"), 20, &file);
    // Corrupt one byte of a body on line 5: the CID no longer matches.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = lines[4].replacen(":v 1", ":v 9", 1);
    let bad = tmp.path().join("bad.sx");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let data = tmp.path().join("dst");
    let out = import_cmd(&bad, &data).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.sx:5:"), "{err}");
    assert!(err.contains("CID mismatch"), "{err}");
    let s = Store::open_sqlite(&data.join("store.sqlite")).unwrap();
    assert_eq!(
        export_of(&s),
        "(rose-ash-store :version 1)\n(end :objects 0 :relations 0 :refs 0)\n"
    );
    // A missing file is a clear error too.
    let out = import_cmd(&tmp.path().join("nope.sx"), &data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
