//! The store's one test binary: every suite runs against SQLite (a temp
//! dir) and PostgreSQL (127.0.0.1:5432, a fresh schema per test). The
//! PostgreSQL tests fail, never skip, when the server is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
#[path = "suite/concurrency.rs"]
mod concurrency_suite;
#[path = "suite/export.rs"]
mod export_suite;
#[path = "suite/sx.rs"]
mod sx_suite;

use common::{canon, fresh};
use store::*;

both!(put_get_history, |pg| {
    let f = fresh(pg).await;
    let s = &f.store;
    assert_eq!(s.get("post:a").await.unwrap(), None);
    let b1 = canon(r#"{:title "Hello" :n 1}"#);
    let w1 = s.put("post:a", b1.clone(), Expect::Absent).await.unwrap();
    assert_eq!(w1.rev, 1);
    assert_eq!(w1.cid.as_deref(), Some(cid_of_canonical(&b1).as_str()));
    // Writing the same body again is a no-op.
    let again = s.put("post:a", b1.clone(), Expect::Any).await.unwrap();
    assert_eq!(again.rev, 1);
    let b2 = canon(r#"{:title "Hello again" :n 2}"#);
    let w2 = s
        .put("post:a", b2.clone(), Expect::Cid(w1.cid.clone().unwrap()))
        .await
        .unwrap();
    assert_eq!(w2.rev, 2);
    let got = s.get("post:a").await.unwrap().unwrap();
    assert_eq!((got.rev, got.body.as_str()), (2, b2.as_str()));
    // The first revision is still there, by CID.
    let old = s
        .get_by_cid(w1.cid.clone().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (old.id.as_str(), old.rev, old.body.as_str()),
        ("post:a", 1, b1.as_str())
    );
    // Delete keeps history; the object is gone from get; re-create continues revs.
    let d = s.delete("post:a", Expect::Exists).await.unwrap().unwrap();
    assert_eq!((d.rev, d.cid), (3, None));
    assert_eq!(s.get("post:a").await.unwrap(), None);
    let w4 = s.put("post:a", b1.clone(), Expect::Absent).await.unwrap();
    assert_eq!(w4.rev, 4);
    let h = s.history("post:a").await.unwrap();
    let revs: Vec<(i64, bool)> = h.iter().map(|r| (r.rev, r.body.is_some())).collect();
    assert_eq!(revs, vec![(1, true), (2, true), (3, false), (4, true)]);
});

both!(cas_rules, |pg| {
    let f = fresh(pg).await;
    let s = &f.store;
    let b = canon("{:a 1}");
    // Table of (expect, exists?, outcome kind).
    let c1 = s
        .put("t:x", b.clone(), Expect::Any)
        .await
        .unwrap()
        .cid
        .unwrap();
    let cases: Vec<(&str, Expect, &str)> = vec![
        ("t:x", Expect::Absent, "conflict"),
        ("t:x", Expect::Cid("bafkwrong".into()), "conflict"),
        ("t:y", Expect::Cid(c1.clone()), "conflict"),
        ("t:y", Expect::Exists, "not-found"),
        ("t:x", Expect::Cid(c1.clone()), "ok"),
        ("t:x", Expect::Exists, "ok"),
    ];
    for (i, (id, expect, want)) in cases.into_iter().enumerate() {
        let body = canon(&format!("{{:a 1 :case {i}}}"));
        let got = match s.put(id, body, expect.clone()).await {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        assert_eq!(got, want, "case {i}: put {id} {expect:?}");
    }
    // After the two successful writes, c1 is stale.
    let e = s.put("t:x", b, Expect::Cid(c1)).await.unwrap_err();
    match e {
        StoreError::Conflict { current, .. } => assert!(current.is_some()),
        other => panic!("expected a conflict, got {other}"),
    }
});

both!(invalid_input, |pg| {
    let f = fresh(pg).await;
    let s = &f.store;
    let cases: Vec<(&str, &str)> = vec![
        ("noslug", "{:a 1}"),
        ("Post:x", "{:a 1}"),
        ("post:", "{:a 1}"),
        ("post:has space", "{:a 1}"),
        ("post:ok", "(1 2 3)"),
        ("post:ok", "{:b 1 :a 2}"),
        ("post:ok", "{:a 1} {:b 2}"),
        ("post:ok", "{:a"),
        ("post:ok", ""),
    ];
    for (id, body) in cases {
        let e = s.put(id, body, Expect::Any).await.unwrap_err();
        assert_eq!(e.kind(), "invalid", "{id} {body}: {e}");
    }
    assert!(s.list(ListQuery::default()).await.is_err());
    let page = s
        .list(ListQuery {
            type_name: "post".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.items.is_empty(), "nothing was written");
});

both!(list_filters_pagination, |pg| {
    let f = fresh(pg).await;
    let s = &f.store;
    for i in 0..25 {
        let status = if i % 2 == 0 { "published" } else { "draft" };
        let body = canon(&format!(r#"{{:n {i} :status "{status}" :tags (:a :b)}}"#));
        s.put(format!("post:{i:03}"), body, Expect::Absent)
            .await
            .unwrap();
    }
    s.put("page:about", canon("{:n 1}"), Expect::Absent)
        .await
        .unwrap();
    s.put("tag:rust", canon("{:name \"rust\"}"), Expect::Absent)
        .await
        .unwrap();
    // Keyset pagination over everything of one type.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list(ListQuery {
                type_name: "post".into(),
                after: after.clone(),
                limit: Some(10),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|o| o.id.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("post:{i:03}")).collect();
    assert_eq!(seen, want);
    // A field filter.
    let page = s
        .list(ListQuery {
            type_name: "post".into(),
            filters: vec![(":status".into(), "\"published\"".into())],
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 13);
    assert_eq!(page.next, None);
    // A relation join: posts tagged rust.
    for i in [3, 5, 8] {
        s.relate(format!("post:{i:03}"), "tagged", Target::local("tag:rust"))
            .await
            .unwrap();
    }
    let q = |dir, target: &str, filters: Vec<(String, String)>| ListQuery {
        type_name: "post".into(),
        filters,
        related: Some(RelatedFilter {
            rel: "tagged".into(),
            target: Target::local(target),
            dir,
        }),
        limit: Some(100),
        ..Default::default()
    };
    let ids = |p: Page<Object>| p.items.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list(q(Dir::Out, "tag:rust", vec![])).await.unwrap()),
        vec!["post:003", "post:005", "post:008"]
    );
    assert_eq!(
        ids(s
            .list(q(
                Dir::Out,
                "tag:rust",
                vec![(":status".into(), "\"published\"".into())]
            ))
            .await
            .unwrap()),
        vec!["post:008"]
    );
    // Deleted objects are not listed.
    s.delete("post:005", Expect::Any).await.unwrap();
    assert_eq!(
        ids(s.list(q(Dir::Out, "tag:rust", vec![])).await.unwrap()),
        vec!["post:003", "post:008"]
    );
});

both!(relations, |pg| {
    let f = fresh(pg).await;
    let s = &f.store;
    let fed = Target {
        peer: "https://events.example".into(),
        id: "event:gig".into(),
    };
    assert!(
        s.relate("post:a", "links", Target::local("post:b"))
            .await
            .unwrap()
    );
    assert!(
        !s.relate("post:a", "links", Target::local("post:b"))
            .await
            .unwrap()
    );
    assert!(
        s.relate("post:a", "links", Target::local("post:c"))
            .await
            .unwrap()
    );
    assert!(s.relate("post:a", "links", fed.clone()).await.unwrap());
    assert!(
        s.relate("post:z", "links", Target::local("post:b"))
            .await
            .unwrap()
    );
    let out = s
        .related(RelatedQuery {
            id: "post:a".into(),
            rel: "links".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        out.items,
        vec![
            Target::local("post:b"),
            Target::local("post:c"),
            fed.clone()
        ]
    );
    // Pagination of outgoing.
    let p1 = s
        .related(RelatedQuery {
            id: "post:a".into(),
            rel: "links".into(),
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = s
        .related(RelatedQuery {
            id: "post:a".into(),
            rel: "links".into(),
            limit: Some(2),
            after: p1.next.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p2.items, vec![fed.clone()]);
    let incoming = s
        .related(RelatedQuery {
            id: "post:b".into(),
            rel: "links".into(),
            dir: Dir::In,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        incoming.items,
        vec![Target::local("post:a"), Target::local("post:z")]
    );
    assert_eq!(s.count("post:a", "links", Dir::Out).await.unwrap(), 3);
    assert_eq!(s.count("post:b", "links", Dir::In).await.unwrap(), 2);
    assert!(s.unrelate("post:a", "links", fed).await.unwrap());
    assert_eq!(s.count("post:a", "links", Dir::Out).await.unwrap(), 2);
    let bad = s
        .relate(
            "post:a",
            "links",
            Target {
                peer: "ftp://x".into(),
                id: "a:b".into(),
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().kind(), "invalid");
});

both!(refs_cas, |pg| {
    let f = fresh(pg).await;
    let s = &f.store;
    assert_eq!(s.get_ref("main").await.unwrap(), None);
    s.ref_cas("main", None, Some("c1".into())).await.unwrap();
    assert_eq!(
        s.ref_cas("main", None, Some("c2".into()))
            .await
            .unwrap_err()
            .kind(),
        "conflict"
    );
    assert_eq!(
        s.ref_cas("main", Some("c0".into()), Some("c2".into()))
            .await
            .unwrap_err()
            .kind(),
        "conflict"
    );
    s.ref_cas("main", Some("c1".into()), Some("c2".into()))
        .await
        .unwrap();
    assert_eq!(s.get_ref("main").await.unwrap().as_deref(), Some("c2"));
    assert_eq!(
        s.ref_cas("main", Some("c1".into()), None)
            .await
            .unwrap_err()
            .kind(),
        "conflict"
    );
    s.ref_cas("main", Some("c2".into()), None).await.unwrap();
    assert_eq!(s.get_ref("main").await.unwrap(), None);
});

both!(apply_all_or_nothing, |pg| {
    let f = fresh(pg).await;
    let s = &f.store;
    let ok = vec![
        Effect::Put {
            id: "event:e".into(),
            body: canon("{:seats 10}"),
            expect: Expect::Absent,
        },
        Effect::Put {
            id: "ticket:t1".into(),
            body: canon("{:holder \"ann\"}"),
            expect: Expect::Absent,
        },
        Effect::Relate {
            src: "ticket:t1".into(),
            rel: "allocated".into(),
            to: Target::local("event:e"),
        },
        Effect::Send {
            peer: "https://shop.example".into(),
            message: canon("{:type :ticket-sold}"),
        },
    ];
    let r = s.apply(ok).await.unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(s.outbox(0, None).await.unwrap().len(), 1);
    // A batch whose last effect fails writes nothing at all.
    let bad = vec![
        Effect::Put {
            id: "ticket:t2".into(),
            body: canon("{:holder \"bob\"}"),
            expect: Expect::Absent,
        },
        Effect::Relate {
            src: "ticket:t2".into(),
            rel: "allocated".into(),
            to: Target::local("event:e"),
        },
        Effect::RefCas {
            name: "r".into(),
            expected: None,
            new: Some("x".into()),
        },
        Effect::Send {
            peer: "https://shop.example".into(),
            message: canon("{:type :ticket-sold}"),
        },
        Effect::Put {
            id: "event:e".into(),
            body: canon("{:seats 9}"),
            expect: Expect::Absent,
        },
    ];
    assert_eq!(s.apply(bad).await.unwrap_err().kind(), "conflict");
    assert_eq!(s.get("ticket:t2").await.unwrap(), None);
    assert_eq!(s.count("event:e", "allocated", Dir::In).await.unwrap(), 1);
    assert_eq!(s.get_ref("r").await.unwrap(), None);
    assert_eq!(s.outbox(0, None).await.unwrap().len(), 1);
    let seq = s.outbox(0, None).await.unwrap()[0].seq;
    assert!(s.outbox_ack(seq).await.unwrap());
    assert!(s.outbox(0, None).await.unwrap().is_empty());
});

both!(concurrent_cas_no_lost_update, |pg| {
    // Read-modify-CAS from many tasks on one thread (the multi-threaded
    // runs are in `suite/concurrency.rs`).
    let f = fresh(pg).await;
    concurrency_suite::read_modify_cas(&f.store).await;
});

#[tokio::test(flavor = "current_thread")]
async fn cid_matches_sx() {
    // The store's CID of canonical text is SX's `(cid v)`.
    let mut i = sx::Interp::new();
    for src in ["{:a 1 :b \"x\"}", "{}", "{\"k\" (1 2.5 :z)}"] {
        let v = i.eval_str(&format!("(cid '{src})"), "<t>").unwrap();
        let sx::Value::Str(c) = v else { panic!() };
        assert_eq!(&*c, cid_of_canonical(&canon(src)));
    }
}

#[test]
fn postgres_absent_fails_loudly() {
    // A wrong port must be an error, not a silent pass.
    let r = Store::open_postgres("postgres://postgres@127.0.0.1:1/test");
    assert!(r.is_err());
}

both!(records_expire_take_and_tag, |pg| {
    let f = fresh(pg).await;
    let s = f.store.clone();
    let rec = |key: &str, tag: Option<&str>, expires: Option<i64>| kv::Record {
        ns: "session".into(),
        key: key.into(),
        value: format!("v-{key}"),
        tag: tag.map(str::to_owned),
        expires,
        at: 1_000,
    };
    let out = s
        .run(move |s| {
            s.write(|tx| {
                kv::put(tx, &rec("a", Some("sid1"), None))?;
                kv::put(tx, &rec("b", Some("sid1"), Some(5_000)))?;
                kv::put(tx, &rec("c", Some("sid2"), Some(2_000)))?;
                // Create-if-absent refuses a live key, replaces an expired one.
                let dup = kv::insert(tx, &rec("a", None, None))?;
                let mut late = rec("c", None, None);
                late.at = 3_000;
                let over_expired = kv::insert(tx, &late)?;
                Ok((dup, over_expired))
            })
        })
        .await
        .unwrap();
    assert_eq!(out, (false, true));
    let (b_live, b_dead, tagged) = s
        .run(|s| {
            s.read(|tx| {
                Ok((
                    kv::get(tx, "session", "b", 4_999)?,
                    kv::get(tx, "session", "b", 5_000)?,
                    kv::tagged(tx, "session", "sid1", 4_000)?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(b_live.unwrap().value, "v-b");
    assert_eq!(b_dead, None, "an expired record reads as absent");
    assert_eq!(tagged.len(), 2);
    // Take is single use.
    let (first, second) = s
        .run(|s| {
            s.write(|tx| {
                Ok((
                    kv::take_record(tx, "session", "a", 4_000)?,
                    kv::take_record(tx, "session", "a", 4_000)?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(first.unwrap().tag.as_deref(), Some("sid1"));
    assert_eq!(second, None);
    // Deleting by tag, purging by time.
    let (gone, purged, left) = s
        .run(|s| {
            s.write(|tx| {
                Ok((
                    kv::delete_tagged(tx, "session", "sid1")?,
                    kv::purge_expired(tx, 10_000)?,
                    kv::list(tx, "session", "", 10, 10_000)?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!((gone, purged), (1, 0));
    assert_eq!(
        left.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    // Bad names are errors, not panics.
    let bad = s
        .run(|s| s.read(|tx| kv::get(tx, "", "x", 0)))
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("invalid record namespace"),
        "{bad}"
    );
});
