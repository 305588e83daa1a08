//! Store benchmark: puts, reads by id, and list-by-type with a relation
//! join, on SQLite and PostgreSQL, each beside the raw driver running the
//! same SQL. Prints ops/s and p99 latency and the store's overhead, the
//! two sides interleaved in rounds (see `measure_pair`).
//!
//!     cargo bench -p store --bench store              # N=100000
//!     STORE_BENCH_N=20000 cargo bench -p store --bench store
//!     STORE_BENCH_PG=postgres://postgres@127.0.0.1:5432/test (default)
//!
//! The raw side gets its values (canonical text, CID, indexed fields)
//! computed before the clock starts, so the overhead shown includes all
//! the store's own work: checking and hashing bodies, the pool, row
//! conversion.
//!
//! The "(async API)" rows call `Store::put`/`get`/`list` with `.await` on
//! a current-thread runtime, as a host's request does. Their raw peer on
//! PostgreSQL is a tokio-postgres client on the same runtime (the fair
//! peer for an async API); on SQLite, rusqlite called directly (there is
//! no async SQLite driver to compare with).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly

use std::time::{Duration, Instant};

use store::{Expect, ListQuery, RelatedFilter, Store, Target, ops};

struct Stats {
    ops: usize,
    total: Duration,
    p99: Duration,
}

/// Rounds each pair of measurements is split into.
const ROUNDS: usize = 20;

/// The store's and the raw driver's figures for one operation.
struct Pair {
    store: Stats,
    raw: Stats,
    /// The median over rounds of (store time / raw time) - 1.
    overhead: f64,
}

fn stats(mut lat: Vec<Duration>, total: Duration) -> Stats {
    let n = lat.len().max(1);
    lat.sort();
    let p99 = lat
        .get((n * 99 / 100).min(n - 1))
        .copied()
        .unwrap_or_default();
    Stats {
        ops: lat.len(),
        total,
        p99,
    }
}

/// Runs `n` operations of each side, interleaved: `ROUNDS` rounds, each a
/// block of the store's operations and a block of the raw driver's, the
/// order alternating between rounds. A shared machine's load drifts over
/// a run; both sides see the same drift, and the median of the per-round
/// ratios ignores the rounds a burst of load hit.
fn measure_pair(n: usize, mut store: impl FnMut(usize), mut raw: impl FnMut(usize)) -> Pair {
    let per = (n / ROUNDS).max(1);
    let (mut s_lat, mut r_lat) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut s_total, mut r_total) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let range = round * per..((round + 1) * per).min(n);
        if range.is_empty() {
            break;
        }
        let block = |f: &mut dyn FnMut(usize), lat: &mut Vec<Duration>| {
            let start = Instant::now();
            for i in range.clone() {
                let t = Instant::now();
                f(i);
                lat.push(t.elapsed());
            }
            start.elapsed()
        };
        let (ts, tr) = if round % 2 == 0 {
            let ts = block(&mut store, &mut s_lat);
            (ts, block(&mut raw, &mut r_lat))
        } else {
            let tr = block(&mut raw, &mut r_lat);
            (block(&mut store, &mut s_lat), tr)
        };
        s_total += ts;
        r_total += tr;
        ratios.push(ts.as_secs_f64() / tr.as_secs_f64().max(1e-12));
    }
    ratios.sort_by(f64::total_cmp);
    let overhead = ratios.get(ratios.len() / 2).copied().unwrap_or(1.0) - 1.0;
    Pair {
        store: stats(s_lat, s_total),
        raw: stats(r_lat, r_total),
        overhead,
    }
}

fn row(backend: &str, what: &str, p: &Pair) {
    let ops = |s: &Stats| s.ops as f64 / s.total.as_secs_f64();
    let overall = (ops(&p.raw) / ops(&p.store) - 1.0) * 100.0;
    println!(
        "| {backend} | {what} | {:.0} | {:.0} | {:.0} | {:.0} | {overall:+.1}% | {:+.1}% |",
        ops(&p.store),
        p.store.p99.as_secs_f64() * 1e6,
        ops(&p.raw),
        p.raw.p99.as_secs_f64() * 1e6,
        p.overhead * 100.0,
    );
}

fn body(i: usize) -> String {
    format!(
        r#"{{:n {i} :status "{}" :title "Post number {i}" :words ("lorem" "ipsum" "dolor")}}"#,
        if i.is_multiple_of(2) {
            "published"
        } else {
            "draft"
        }
    )
}

const TAGS: usize = 100;

/// Same SQL as the store, straight on the driver.
trait Raw {
    fn put(&mut self, id: &str, ty: &str, cid: &str, body: &str, fields: &[(String, String)]);
    fn get(&mut self, id: &str) -> Option<String>;
    fn list_tagged(&mut self, tag: &str) -> usize;
}

struct RawSqlite(rusqlite::Connection);

impl Raw for RawSqlite {
    fn put(&mut self, id: &str, ty: &str, cid: &str, body: &str, fields: &[(String, String)]) {
        let c = &mut self.0;
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        let cur: Option<(i64, Option<String>)> = c
            .prepare_cached("SELECT rev, cid FROM objects WHERE id = ?1")
            .unwrap()
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .ok();
        assert!(cur.is_none());
        c.prepare_cached(
            "INSERT INTO objects (id, type, rev, cid, body, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .unwrap()
        .execute(rusqlite::params![id, ty, 1, cid, body, 0])
        .unwrap();
        c.prepare_cached(
            "INSERT INTO revisions (id, rev, cid, body, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .unwrap()
        .execute(rusqlite::params![id, 1, cid, body, 0])
        .unwrap();
        for (k, v) in fields {
            c.prepare_cached("INSERT INTO fields (id, type, key, value) VALUES (?1, ?2, ?3, ?4)")
                .unwrap()
                .execute(rusqlite::params![id, ty, k, v])
                .unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
    }
    fn get(&mut self, id: &str) -> Option<String> {
        self.0
            .prepare_cached(
                "SELECT id, rev, cid, body, at FROM objects WHERE id = ?1 AND body IS NOT NULL",
            )
            .unwrap()
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .ok()
            .map(|t| t.3)
    }
    fn list_tagged(&mut self, tag: &str) -> usize {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT o.id, o.rev, o.cid, o.body, o.at FROM relations r \
                 CROSS JOIN objects o WHERE o.id = r.src AND r.peer = ?1 AND r.dst = ?2 \
                 AND r.rel = ?3 AND o.type = ?4 AND o.body IS NOT NULL ORDER BY r.src LIMIT ?5",
            )
            .unwrap();
        let rows = st
            .query_map(rusqlite::params!["", tag, "tagged", "post", 20], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .unwrap();
        rows.count()
    }
}

/// The store's SQL for PostgreSQL, as the raw clients prepare it.
const RAW_PG_SQL: [&str; 6] = [
    "SELECT rev, cid FROM objects WHERE id = $1 FOR UPDATE",
    "INSERT INTO objects (id, type, rev, cid, body, at) VALUES ($1, $2, $3, $4, $5, $6)",
    "INSERT INTO revisions (id, rev, cid, body, at) VALUES ($1, $2, $3, $4, $5)",
    "INSERT INTO fields (id, type, key, value) VALUES ($1, $2, $3, $4)",
    "SELECT id, rev, cid, body, at FROM objects WHERE id = $1 AND body IS NOT NULL",
    "SELECT o.id, o.rev, o.cid, o.body, o.at FROM relations r \
     CROSS JOIN objects o WHERE o.id = r.src AND r.peer = $1 AND r.dst = $2 \
     AND r.rel = $3 AND o.type = $4 AND o.body IS NOT NULL ORDER BY r.src LIMIT $5",
];

struct RawPg(postgres::Client, Vec<postgres::Statement>);

impl RawPg {
    fn new(mut c: postgres::Client) -> RawPg {
        let st = RAW_PG_SQL.iter().map(|s| c.prepare(s).unwrap()).collect();
        RawPg(c, st)
    }
}

impl Raw for RawPg {
    fn put(&mut self, id: &str, ty: &str, cid: &str, body: &str, fields: &[(String, String)]) {
        let st = &self.1;
        let mut t = self.0.transaction().unwrap();
        assert!(t.query(&st[0], &[&id]).unwrap().is_empty());
        t.execute(&st[1], &[&id, &ty, &1i64, &cid, &body, &0i64])
            .unwrap();
        t.execute(&st[2], &[&id, &1i64, &cid, &body, &0i64])
            .unwrap();
        for (k, v) in fields {
            t.execute(&st[3], &[&id, &ty, k, v]).unwrap();
        }
        t.commit().unwrap();
    }
    fn get(&mut self, id: &str) -> Option<String> {
        let rows = self.0.query(&self.1[4], &[&id]).unwrap();
        rows.first().map(|r| {
            let t: (String, i64, String, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            t.3
        })
    }
    fn list_tagged(&mut self, tag: &str) -> usize {
        let rows = self
            .0
            .query(&self.1[5], &[&"", &tag, &"tagged", &"post", &20i64])
            .unwrap();
        for r in &rows {
            let _: (String, i64, String, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        }
        rows.len()
    }
}

/// The same SQL as [`RawPg`], on an async tokio-postgres client whose
/// connection task runs on the benchmark's runtime.
struct RawAsyncPg(tokio_postgres::Client, Vec<tokio_postgres::Statement>);

impl RawAsyncPg {
    async fn new(config: &tokio_postgres::Config) -> RawAsyncPg {
        let (c, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let mut st = Vec::new();
        for sql in RAW_PG_SQL {
            st.push(c.prepare(sql).await.unwrap());
        }
        RawAsyncPg(c, st)
    }
    async fn put(
        &mut self,
        id: &str,
        ty: &str,
        cid: &str,
        body: &str,
        fields: &[(String, String)],
    ) {
        let st = &self.1;
        let t = self.0.transaction().await.unwrap();
        assert!(t.query(&st[0], &[&id]).await.unwrap().is_empty());
        t.execute(&st[1], &[&id, &ty, &1i64, &cid, &body, &0i64])
            .await
            .unwrap();
        t.execute(&st[2], &[&id, &1i64, &cid, &body, &0i64])
            .await
            .unwrap();
        for (k, v) in fields {
            t.execute(&st[3], &[&id, &ty, k, v]).await.unwrap();
        }
        t.commit().await.unwrap();
    }
    async fn get(&self, id: &str) -> Option<String> {
        let rows = self.0.query(&self.1[4], &[&id]).await.unwrap();
        rows.first().map(|r| {
            let t: (String, i64, String, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            t.3
        })
    }
    async fn list_tagged(&self, tag: &str) -> usize {
        let rows = self
            .0
            .query(&self.1[5], &[&"", &tag, &"tagged", &"post", &20i64])
            .await
            .unwrap();
        for r in &rows {
            let _: (String, i64, String, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        }
        rows.len()
    }
}

fn run(
    backend: &str,
    n: usize,
    store: &Store,
    raw: &mut dyn Raw,
    rt: &tokio::runtime::Runtime,
    mut raw_async: Option<RawAsyncPg>,
) {
    let prepared: Vec<(String, ops::Body)> = (0..n)
        .map(|i| (format!("post:{i:07}"), ops::check_body(body(i)).unwrap()))
        .collect();
    // Puts: one transaction each.
    let puts = measure_pair(
        n,
        |i| {
            let id = format!("post:{i:07}");
            let b = ops::check_body(body(i)).unwrap();
            store
                .write(|tx| ops::put(tx, &id, &b, &Expect::Absent, store::now_ms()))
                .unwrap();
        },
        |i| {
            let (id, b) = &prepared[i];
            raw.put(
                &id.replace("post:", "post:r"),
                "post",
                &b.cid,
                &b.text,
                &b.fields,
            );
        },
    );
    row(backend, "put (1 tx each)", &puts);
    // The same through the async API, beside the async raw driver.
    let aprepared: Vec<ops::Body> = (0..n / 4)
        .map(|i| ops::check_body(body(i)).unwrap())
        .collect();
    let aputs = measure_pair(
        n / 4,
        |i| {
            rt.block_on(store.put(format!("post:s{i:07}"), body(i), Expect::Absent))
                .unwrap();
        },
        |i| {
            let (id, b) = (format!("post:t{i:07}"), &aprepared[i]);
            match &mut raw_async {
                Some(a) => rt.block_on(a.put(&id, "post", &b.cid, &b.text, &b.fields)),
                None => raw.put(&id, "post", &b.cid, &b.text, &b.fields),
            }
        },
    );
    row(backend, "put (async API)", &aputs);
    // Reads by id, in a scattered order.
    let ids: Vec<String> = (0..n)
        .map(|i| format!("post:{:07}", (i * 7919) % n))
        .collect();
    for id in ids.iter().take(2000) {
        store.read(|tx| ops::get(tx, id)).unwrap();
        raw.get(id);
    }
    let gets = measure_pair(
        n,
        |i| assert!(store.read(|tx| ops::get(tx, &ids[i])).unwrap().is_some()),
        |i| assert!(raw.get(&ids[i]).is_some()),
    );
    row(backend, "get by id", &gets);
    // The async API: what a host's request does.
    let agets = measure_pair(
        n / 4,
        |i| assert!(rt.block_on(store.get(ids[i].clone())).unwrap().is_some()),
        |i| match &raw_async {
            Some(a) => assert!(rt.block_on(a.get(&ids[i])).is_some()),
            None => assert!(raw.get(&ids[i]).is_some()),
        },
    );
    row(backend, "get by id (async API)", &agets);
    // List by type with a relation join: posts tagged tag:k, 20 a page.
    store
        .write(|tx| {
            for i in 0..n {
                ops::relate(
                    tx,
                    &format!("post:{i:07}"),
                    "tagged",
                    &Target::local(format!("tag:{}", i % TAGS)),
                    0,
                )?;
            }
            Ok(())
        })
        .unwrap();
    let q = n / 10;
    let list_q = |k: usize| ListQuery {
        type_name: "post".into(),
        related: Some(RelatedFilter {
            rel: "tagged".into(),
            target: Target::local(format!("tag:{}", k % TAGS)),
            dir: store::Dir::Out,
        }),
        limit: Some(20),
        ..Default::default()
    };
    for k in 0..TAGS {
        store.read(|tx| ops::list(tx, &list_q(k))).unwrap();
        raw.list_tagged(&format!("tag:{k}"));
    }
    let lists = measure_pair(
        q,
        |i| {
            let page = store.read(|tx| ops::list(tx, &list_q(i))).unwrap();
            assert_eq!(page.items.len(), 20);
        },
        |i| assert_eq!(raw.list_tagged(&format!("tag:{}", i % TAGS)), 20),
    );
    row(backend, "list by type + relation join (20)", &lists);
    let alists = measure_pair(
        q,
        |i| {
            let page = rt.block_on(store.list(list_q(i))).unwrap();
            assert_eq!(page.items.len(), 20);
        },
        |i| {
            let tag = format!("tag:{}", i % TAGS);
            let got = match &raw_async {
                Some(a) => rt.block_on(a.list_tagged(&tag)),
                None => raw.list_tagged(&tag),
            };
            assert_eq!(got, 20);
        },
    );
    row(backend, "list (async API)", &alists);
}

fn header(n: usize) {
    println!("N = {n}");
    println!(
        "| backend | operation | store ops/s | store p99 µs | raw ops/s | raw p99 µs | overhead (totals) | overhead (median round) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` support
    }
    let n: usize = std::env::var("STORE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    header(n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store = Store::open_sqlite(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -32768).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut raw = RawSqlite(conn);
    run("SQLite", n, &store, &mut raw, &rt, None);
    drop(raw);
    drop(store);

    if std::env::var("STORE_BENCH_SKIP_PG").is_ok() {
        return;
    }
    let url = std::env::var("STORE_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("bench_{}", std::process::id());
    let store = Store::open_postgres_in(&url, Some(&schema)).unwrap();
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.options(format!("-c search_path={schema}"));
    let mut raw = RawPg::new(
        postgres::Config::from(config.clone())
            .connect(postgres::NoTls)
            .unwrap(),
    );
    let raw_async = rt.block_on(RawAsyncPg::new(&config));
    run("PostgreSQL", n, &store, &mut raw, &rt, Some(raw_async));
    drop(store);
    raw.0
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}
