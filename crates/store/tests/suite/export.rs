//! Export and import: round trips across backends, hostile input, resuming.

use store::export::{self, Progress};
use store::*;

use crate::common::{canon, fresh_blocking};

/// Fills a store with a bit of everything, including > one export page.
fn populate(s: &Store) {
    s.write(|tx| {
        for i in 0..1100 {
            let b = ops::check_body(canon(&format!(
                r#"{{:n {i} :title "Post {i} — ünïcödé \"q\"\n" :tags (:a :b) :x 1.5}}"#
            )))?;
            ops::put(tx, &format!("post:{i:05}"), &b, &Expect::Absent, 1_000 + i)?;
        }
        for i in 0..5 {
            let b = ops::check_body(canon(&format!("{{:v {i}}}")))?;
            ops::put(tx, "page:about", &b, &Expect::Any, 2_000 + i)?;
        }
        ops::delete(tx, "post:00007", &Expect::Any, 3_000)?;
        for i in 0..1200 {
            ops::relate(
                tx,
                &format!("post:{:05}", i % 50),
                "links",
                &Target::local(format!("post:{i:05}")),
                4_000,
            )?;
        }
        ops::relate(
            tx,
            "post:00001",
            "mirrors",
            &Target {
                peer: "https://other.example".into(),
                id: "post:far".into(),
            },
            4_001,
        )?;
        ops::ref_cas(tx, "main", None, Some("bafkmain"), 5_000)?;
        ops::ref_cas(tx, "peer/cursor", None, Some("42"), 5_001)?;
        // Durable records are exported; expiring ones are not.
        let rec = |key: &str, tag: Option<&str>, expires: Option<i64>| kv::Record {
            ns: "password".into(),
            key: key.into(),
            value: format!("$argon2id$\"{key}\"\n"),
            tag: tag.map(str::to_owned),
            expires,
            at: 6_000,
        };
        kv::put(tx, &rec("member:a", None, None))?;
        kv::put(tx, &rec("member:b", Some("admin"), None))?;
        kv::put(tx, &rec("member:c", None, Some(i64::MAX)))?;
        Ok(())
    })
    .unwrap();
}

fn export_text(s: &Store) -> String {
    let mut out = Vec::new();
    export::export(s, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn import_text(s: &Store, text: &str) -> Result<export::Counts> {
    export::import(s, text, "dump.sx", &mut |_: Progress| {})
}

fn round_trip(from_pg: bool, to_pg: bool) {
    let a = fresh_blocking(from_pg).unwrap();
    populate(&a.store);
    let text = export_text(&a.store);
    assert!(text.starts_with("(rose-ash-store :version 1)\n"));
    assert!(
        text.ends_with("(end :objects 1101 :relations 1201 :refs 2 :records 2)\n"),
        "{}",
        &text[text.len() - 80..]
    );
    let b = fresh_blocking(to_pg).unwrap();
    let counts = import_text(&b.store, &text).unwrap();
    assert_eq!(counts.objects, 1101);
    assert_eq!(counts.revisions, 1100 + 1 + 5);
    let again = export_text(&b.store);
    assert!(again == text, "export after import differs");
    // Everything still works on the restored store.
    let got = b
        .store
        .read(|tx| ops::get(tx, "page:about"))
        .unwrap()
        .unwrap();
    assert_eq!(got.rev, 5);
    let page = b
        .store
        .read(|tx| {
            ops::list(
                tx,
                &ListQuery {
                    type_name: "post".into(),
                    filters: vec![(":n".into(), "3".into())],
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(page.items.len(), 1);
    // Importing the same file again is a no-op.
    import_text(&b.store, &text).unwrap();
    assert!(export_text(&b.store) == text);
}

#[test]
fn sqlite_to_file_to_postgres_to_file_identical() {
    round_trip(false, true);
}

#[test]
fn postgres_to_file_to_sqlite_to_file_identical() {
    round_trip(true, false);
}

/// Hostile or corrupt files: (text, what the error says, the line it names).
fn hostile_cases() -> Vec<(String, &'static str, u32)> {
    let h = "(rose-ash-store :version 1)\n";
    let body = canon("{:a 1}");
    let cid = cid_of_canonical(&body);
    let good_obj = format!("(object \"t:a\" (1 \"{cid}\" 5 {body}))\n");
    vec![
        (String::new(), "truncated", 1),
        (
            "(object \"t:a\")\n".into(),
            "not a Rose Ash store export",
            1,
        ),
        (
            "(rose-ash-store :version 9)\n(end :objects 0 :relations 0 :refs 0)\n".into(),
            "format version 9",
            1,
        ),
        (format!("{h}{good_obj}"), "truncated", 3),
        (
            format!("{h}{good_obj}(end :objects 2 :relations 0 :refs 0)\n"),
            "closing counts",
            3,
        ),
        (
            format!("{h}{good_obj}(end :objects 1 :relations 0 :refs 0)\n(ref \"a\" \"b\" 1)\n"),
            "nothing may follow",
            4,
        ),
        (
            format!("{h}{good_obj}{good_obj}(end :objects 2 :relations 0 :refs 0)\n"),
            "duplicate",
            3,
        ),
        (
            format!(
                "{h}(object \"t:a\" (1 \"bafkbad\" 5 {body}))\n(end :objects 1 :relations 0 :refs 0)\n"
            ),
            "CID mismatch",
            2,
        ),
        (
            format!(
                "{h}(object \"t:a\" (2 \"{cid}\" 5 {body}))\n(end :objects 1 :relations 0 :refs 0)\n"
            ),
            "out of order",
            2,
        ),
        (
            format!(
                "{h}(object \"T A\" (1 \"{cid}\" 5 {body}))\n(end :objects 1 :relations 0 :refs 0)\n"
            ),
            "invalid object id",
            2,
        ),
        (
            format!(
                "{h}(object \"t:a\" (1 \"{cid}\" 5 (1 2)))\n(end :objects 1 :relations 0 :refs 0)\n"
            ),
            "dict body",
            2,
        ),
        (
            format!("{h}(object \"t:a\")\n(end :objects 1 :relations 0 :refs 0)\n"),
            "at least one revision",
            2,
        ),
        (
            format!(
                "{h}{good_obj}(relation \"t:a\" \"r\" \"gopher://x\" \"t:b\" 1)\n(end :objects 1 :relations 1 :refs 0)\n"
            ),
            "invalid peer",
            3,
        ),
        (
            format!(
                "{h}{good_obj}(relation \"t:a\" \"r\")\n(end :objects 1 :relations 1 :refs 0)\n"
            ),
            "a relation is",
            3,
        ),
        (
            format!("{h}{good_obj}(ref \"a\" 5 1)\n(end :objects 1 :relations 0 :refs 1)\n"),
            "must be a string",
            3,
        ),
        (
            format!("{h}{good_obj}(drop-tables)\n"),
            "expected (object",
            3,
        ),
        (
            format!("{h}{good_obj}(object \"t:b\" (1 \"x\" 5 {{:a \n"),
            "unexpected end of input",
            3,
        ),
        (
            format!("{h}{good_obj}(ref \"a\" \"\\q\" 1)\n"),
            "invalid escape",
            3,
        ),
        (
            format!("{h}{good_obj}{}", "(".repeat(100_000)),
            "unexpected end of input",
            3,
        ),
        (
            // A record with an empty namespace is refused before anything
            // (the good object on line 2 included) is written.
            format!(
                "{h}{good_obj}(record \"\" \"k\" \"v\" nil 1)\n\
                 (end :objects 1 :relations 0 :refs 0 :records 1)\n"
            ),
            "invalid record namespace",
            3,
        ),
    ]
}

fn hostile(pg: bool) {
    let f = fresh_blocking(pg).unwrap();
    let empty = export_text(&f.store);
    for (i, (text, want, line)) in hostile_cases().into_iter().enumerate() {
        match import_text(&f.store, &text) {
            Err(StoreError::Import { position, message }) => {
                assert!(
                    message.contains(want),
                    "case {i}: {message:?} lacks {want:?}"
                );
                assert!(
                    position.starts_with(&format!("dump.sx:{line}:")),
                    "case {i}: position {position} is not line {line} ({message})"
                );
            }
            other => panic!("case {i}: expected an import error, got {other:?}"),
        }
        assert!(export_text(&f.store) == empty, "case {i} wrote something");
    }
}

#[test]
fn hostile_input_sqlite() {
    hostile(false);
}

#[test]
fn hostile_input_postgres() {
    hostile(true);
}

fn refuses_different_store(pg: bool) {
    let a = fresh_blocking(pg).unwrap();
    populate(&a.store);
    let text = export_text(&a.store);
    let b = fresh_blocking(pg).unwrap();
    let body = ops::check_body(canon("{:other true}")).unwrap();
    b.store
        .write(|tx| ops::put(tx, "post:zzz", &body, &Expect::Any, 1))
        .unwrap();
    let before = export_text(&b.store);
    let e = import_text(&b.store, &text).unwrap_err();
    assert!(e.to_string().contains("already holds data"), "{e}");
    assert!(export_text(&b.store) == before);
}

#[test]
fn refuses_different_store_sqlite() {
    refuses_different_store(false);
}

#[test]
fn refuses_different_store_postgres() {
    refuses_different_store(true);
}
