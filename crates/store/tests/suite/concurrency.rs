//! The async API under contention, on both databases (on PostgreSQL it
//! runs on the async clients of `pg_async.rs`), and what happens to those
//! clients when their connection or runtime goes away.

use std::time::Duration;

use store::*;

use crate::both;
use crate::common::{canon, fresh, pg_url, unique_schema};

/// Every future the async API returns can be spawned on a multi-threaded
/// runtime.
fn assert_send<T: Send>(_: &T) {}

#[test]
fn async_api_futures_are_send() {
    // Only type-checked: the futures are never polled.
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_sqlite(&dir.path().join("s.sqlite")).unwrap();
    assert_send(&s.get("a:b"));
    assert_send(&s.put("a:b", "{}", Expect::Any));
    assert_send(&s.list(ListQuery::default()));
    assert_send(&s.apply(Vec::new()));
    assert_send(&s.ref_cas("r", None, None));
    assert_send(&s.execute(sx_ops::StoreOp::Get("a:b".into())));
    assert_send(&Store::connect_postgres_in(
        "postgres://x@127.0.0.1:1/x",
        None,
    ));
}

/// Read-modify-CAS from many tasks: every successful write is counted, so
/// the final value must equal the number of wins (no lost update), and
/// every loser saw a conflict.
pub async fn read_modify_cas(s: &Store) {
    s.put("counter:c", canon("{:n 0}"), Expect::Absent)
        .await
        .unwrap();
    let (tasks, tries) = (24, 8);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let (mut wins, mut conflicts) = (0u32, 0u32);
            for _ in 0..tries {
                let cur = s.get("counter:c").await.unwrap().unwrap();
                let n: i64 = cur
                    .body
                    .trim_start_matches("{:n ")
                    .trim_end_matches('}')
                    .parse()
                    .unwrap();
                let body = format!("{{:n {}}}", n + 1);
                match s.put("counter:c", body, Expect::Cid(cur.cid)).await {
                    Ok(_) => wins += 1,
                    Err(StoreError::Conflict { .. }) => conflicts += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            (wins, conflicts)
        }));
    }
    let (mut wins, mut conflicts) = (0, 0);
    for h in handles {
        let (w, c) = h.await.unwrap();
        wins += w;
        conflicts += c;
    }
    assert_eq!(wins + conflicts, tasks * tries);
    let cur = s.get("counter:c").await.unwrap().unwrap();
    assert_eq!(cur.body, format!("{{:n {wins}}}"));
    assert_eq!(cur.rev, i64::from(wins) + 1);
    assert_eq!(s.history("counter:c").await.unwrap().len() as u32, wins + 1);
    assert!(wins >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_modify_cas_multi_thread_postgres() {
    let f = fresh(true).await;
    read_modify_cas(&f.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_modify_cas_multi_thread_sqlite() {
    let f = fresh(false).await;
    read_modify_cas(&f.store).await;
}

both!(one_winner, |pg| {
    // Many tasks race to create one object, to set one ref from absent,
    // and to apply a batch guarded by a ref: exactly one of each wins, and
    // a losing batch leaves nothing behind.
    let f = fresh(pg).await;
    let s = f.store.clone();
    let n = 32;
    let mut creates = Vec::new();
    for i in 0..n {
        let s = s.clone();
        creates.push(tokio::spawn(async move {
            s.put("thing:one", canon(&format!("{{:by {i}}}")), Expect::Absent)
                .await
        }));
    }
    let mut refs = Vec::new();
    for i in 0..n {
        let s = s.clone();
        refs.push(tokio::spawn(async move {
            s.ref_cas("head", None, Some(format!("v{i}"))).await
        }));
    }
    let mut batches = Vec::new();
    for i in 0..n {
        let s = s.clone();
        batches.push(tokio::spawn(async move {
            s.apply(vec![
                Effect::Put {
                    id: format!("claim:{i}"),
                    body: canon(&format!("{{:by {i}}}")),
                    expect: Expect::Absent,
                },
                Effect::Relate {
                    src: format!("claim:{i}"),
                    rel: "of".into(),
                    to: Target::local("thing:one"),
                },
                Effect::RefCas {
                    name: "lock".into(),
                    expected: None,
                    new: Some(format!("claim:{i}")),
                },
            ])
            .await
        }));
    }
    let outcome = |results: Vec<std::result::Result<String, String>>| {
        let wins: Vec<String> = results.iter().filter_map(|r| r.clone().ok()).collect();
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e, "conflict", "a loser must see a conflict");
            }
        }
        assert_eq!(wins.len(), 1, "exactly one winner: {results:?}");
        wins.into_iter().next().unwrap()
    };
    let mut created = Vec::new();
    for h in creates {
        created.push(
            h.await
                .unwrap()
                .map(|w| w.cid.unwrap())
                .map_err(|e| e.kind().to_owned()),
        );
    }
    let cid = outcome(created);
    assert_eq!(s.get("thing:one").await.unwrap().unwrap().cid, cid);
    let mut set = Vec::new();
    for (i, h) in refs.into_iter().enumerate() {
        set.push(
            h.await
                .unwrap()
                .map(|()| format!("v{i}"))
                .map_err(|e| e.kind().to_owned()),
        );
    }
    let head = outcome(set);
    assert_eq!(s.get_ref("head").await.unwrap(), Some(head));
    let mut applied = Vec::new();
    for (i, h) in batches.into_iter().enumerate() {
        applied.push(
            h.await
                .unwrap()
                .map(|_| format!("claim:{i}"))
                .map_err(|e| e.kind().to_owned()),
        );
    }
    let claim = outcome(applied);
    assert_eq!(s.get_ref("lock").await.unwrap(), Some(claim.clone()));
    // All or nothing: only the winner's object and relation exist.
    let page = s
        .list(ListQuery {
            type_name: "claim".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, [claim.as_str()]);
    assert_eq!(s.count("thing:one", "of", Dir::In).await.unwrap(), 1);
});

/// A store whose connections carry an application name of their own, so
/// a test can find and end them.
async fn named_store(name: &str) -> (Store, String) {
    let schema = unique_schema();
    let url = format!("{}?application_name={name}", pg_url());
    let s = Store::connect_postgres_in(&url, Some(&schema))
        .await
        .unwrap();
    (s, schema)
}

async fn drop_schema(schema: &str) {
    let (c, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .unwrap();
}

/// Ends every server connection named `name` (as an administrator or a
/// failover would).
async fn terminate(name: &str) -> i64 {
    let (c, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = c
        .query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&name],
        )
        .await
        .unwrap();
    rows[0].get(0)
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_lost_connection_is_an_error_then_replaced() {
    let name = format!("lost_{}", unique_schema());
    let (s, schema) = named_store(&name).await;
    s.put("post:a", canon("{:n 1}"), Expect::Absent)
        .await
        .unwrap();
    // Several clients open at once, so more than one dies.
    let gets: Vec<_> = (0..4).map(|_| s.get("post:a")).collect();
    for g in gets {
        g.await.unwrap().unwrap();
    }
    assert!(terminate(&name).await >= 1);
    // Each call ends promptly: the first ones may fail (a typed database
    // error, never a hang or panic), and dead clients are replaced.
    let mut failures = 0;
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_secs(10), s.get("post:a")).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => panic!("post:a vanished"),
            Ok(Err(e)) => {
                assert_eq!(e.kind(), "database", "{e}");
                failures += 1;
            }
            Err(_) => panic!("a call on a lost connection hung"),
        }
    }
    assert!(
        failures <= 4,
        "dead clients were lent out again: {failures}"
    );
    // Now everything works, writes included.
    for i in 0..8 {
        s.put(format!("post:b{i}"), canon("{:n 2}"), Expect::Absent)
            .await
            .unwrap();
        s.get("post:a").await.unwrap().unwrap();
    }
    drop(s);
    drop_schema(&schema).await;
}

#[test]
fn postgres_clients_of_a_finished_runtime_are_replaced() {
    // Clients belong to the runtime that opened them; once it is gone
    // they are dead, and a caller on another runtime gets fresh ones.
    let schema = unique_schema();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = first
        .block_on(Store::connect_postgres_in(&pg_url(), Some(&schema)))
        .unwrap();
    first
        .block_on(s.put("post:a", canon("{:n 1}"), Expect::Absent))
        .unwrap();
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        for _ in 0..20 {
            let got = tokio::time::timeout(Duration::from_secs(10), s.get("post:a"))
                .await
                .expect("no hang");
            assert_eq!(got.unwrap().unwrap().rev, 1);
        }
        drop(s);
        drop_schema(&schema).await;
    });
}

#[test]
fn postgres_runtimes_in_parallel() {
    // Several threads with a runtime each (as the host's SX workers) use
    // one store at once; each gets clients of its own runtime.
    let dir_schema = unique_schema();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt
        .block_on(Store::connect_postgres_in(&pg_url(), Some(&dir_schema)))
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for i in 0..50 {
                        let id = format!("post:t{t}-{i}");
                        s.put(id.clone(), canon("{:n 1}"), Expect::Absent)
                            .await
                            .unwrap();
                        assert_eq!(s.get(id).await.unwrap().unwrap().rev, 1);
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let page = rt
        .block_on(s.list(ListQuery {
            type_name: "post".into(),
            limit: Some(1000),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(page.items.len(), 200);
    drop(s);
    rt.block_on(drop_schema(&dir_schema));
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_async_open_checks_the_schema_version() {
    // Opening through the async client migrates, and refuses a database
    // newer than this program, like the blocking open.
    let schema = unique_schema();
    let s = Store::connect_postgres_in(&pg_url(), Some(&schema))
        .await
        .unwrap();
    s.put("post:a", canon("{:n 1}"), Expect::Absent)
        .await
        .unwrap();
    // Opening again finds the schema current and keeps the data.
    let again = Store::connect_postgres_in(&pg_url(), Some(&schema))
        .await
        .unwrap();
    assert!(again.get("post:a").await.unwrap().is_some());
    s.run(|s| {
        s.write(|tx| {
            tx.exec(
                "UPDATE store_meta SET value = '999' WHERE key = 'schema_version'",
                &[],
            )
        })
    })
    .await
    .unwrap();
    match Store::connect_postgres_in(&pg_url(), Some(&schema)).await {
        Err(e) => assert_eq!(e.kind(), "schema", "{e}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
    drop((s, again));
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_schemas_are_separate_on_async_clients() {
    // Two stores in two schemas of one database see only their own data.
    let (a, b) = (unique_schema(), unique_schema());
    let sa = Store::connect_postgres_in(&pg_url(), Some(&a))
        .await
        .unwrap();
    let sb = Store::connect_postgres_in(&pg_url(), Some(&b))
        .await
        .unwrap();
    sa.put("post:only-a", canon("{:n 1}"), Expect::Absent)
        .await
        .unwrap();
    assert!(sa.get("post:only-a").await.unwrap().is_some());
    assert!(sb.get("post:only-a").await.unwrap().is_none());
    drop((sa, sb));
    drop_schema(&a).await;
    drop_schema(&b).await;
}
