//! The Rose Ash store: objects (`type:slug` ids, SX dict bodies) with every
//! revision kept under its CID, relations `a --rel--> b` (b possibly on
//! another peer), refs updated by compare-and-swap, and batches of effects
//! applied in one transaction — on SQLite (embedded) or PostgreSQL.
//!
//! [`Store`] is `Clone + Send + Sync`. Its async methods run the database
//! calls on tokio's blocking pool and take and return only `Send` data:
//! ids as strings, bodies as SX canonical text. [`sx_ops`] converts between
//! SX performs and those calls on the SX thread.
//!
//! The store knows SX only as data (reading and printing bodies); it never
//! evaluates code, and knows nothing of HTTP or the host.

mod db;
mod error;
pub mod export;
pub mod kv;
mod model;
pub mod ops;
mod schema;
pub mod sx_ops;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use db::{Param, Tx};
pub use error::{Result, StoreError};
pub use model::*;
pub use schema::SCHEMA_VERSION;

use db::{Connector, Pool};

/// The CID of canonical SX text: CIDv1, raw codec, sha3-256 multihash,
/// base32-lower — the same as SX's `(cid v)` of the value it reads as.
pub fn cid_of_canonical(text: &str) -> String {
    sx::cid_of_text(text)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store; cheap to clone, shared across threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Connections for writing (on SQLite: one, as SQLite has one writer).
    pool: Pool,
    /// Connections that only read (SQLite: their page caches stay warm,
    /// and readers never queue behind the writer). PostgreSQL: none, all
    /// use `pool`.
    readers: Option<Pool>,
    backend: Backend,
}

impl Inner {
    fn read_pool(&self) -> &Pool {
        self.readers.as_ref().unwrap_or(&self.pool)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A PostgreSQL client closes by blocking on its own runtime, which
        // tokio forbids inside async code: close the idle ones on a thread.
        let mut conns = self.pool.drain();
        if let Some(r) = &mut self.readers {
            conns.extend(r.drain());
        }
        if !conns.is_empty() {
            let _ = std::thread::spawn(move || drop(conns)).join();
        }
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`, in WAL mode,
    /// and runs the migrations. Blocking: call before the runtime starts,
    /// or use [`Store::connect`].
    pub fn open_sqlite(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        Store::open_with(Connector::Sqlite(path.to_path_buf()), Backend::Sqlite, 1, 4)
    }

    /// Opens the PostgreSQL store at `url` (`postgres://user@host/db`).
    /// Blocking, and must not run inside async code: use [`Store::connect`].
    pub fn open_postgres(url: &str) -> Result<Store> {
        Store::open_postgres_in(url, None)
    }

    /// Opens a PostgreSQL store whose tables live in `schema` (created if
    /// absent), so several stores can share one database (tests do this).
    pub fn open_postgres_in(url: &str, schema: Option<&str>) -> Result<Store> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("invalid database URL: {e}")))?;
        if let Some(s) = schema {
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(StoreError::Invalid(format!("invalid schema name {s:?}")));
            }
            let mut c = config.connect(postgres::NoTls)?;
            c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))?;
            config.options(&format!("-c search_path={s}"));
        }
        Store::open_with(Connector::Pg(Box::new(config)), Backend::Postgres, 16, 0)
    }

    /// Opens the store a host is configured for: PostgreSQL when
    /// `database_url` is given, else `<data_dir>/store.sqlite`. Blocking.
    pub fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store> {
        match database_url {
            Some(url) if !url.is_empty() => Store::open_postgres(url),
            _ => Store::open_sqlite(&data_dir.join("store.sqlite")),
        }
    }

    /// [`Store::open`] from async code.
    pub async fn connect(database_url: Option<String>, data_dir: PathBuf) -> Result<Store> {
        tokio::task::spawn_blocking(move || Store::open(database_url.as_deref(), &data_dir))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn open_with(
        connector: Connector,
        backend: Backend,
        writers: usize,
        readers: usize,
    ) -> Result<Store> {
        let pool = Pool::new(connector.clone(), writers);
        pool.run(schema::migrate)?;
        let readers = (readers > 0).then(|| Pool::new(connector, readers));
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                readers,
                backend,
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Runs `f` on one connection, outside a transaction (single reads).
    /// Blocking.
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        self.inner.read_pool().run(|c| c.with(f))
    }

    /// Runs `f` in one read transaction: a consistent snapshot. Blocking.
    pub fn read_snapshot<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        self.inner.read_pool().run(|c| c.transaction(false, f))
    }

    /// Runs `f` in one transaction: all of it is committed, or none.
    /// Blocking.
    pub fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        self.inner.pool.run(|c| c.transaction(true, f))
    }

    /// Runs a blocking closure on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let s = self.clone();
        tokio::task::spawn_blocking(move || f(&s))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// A read for the async API. On SQLite, with a reader connection idle,
    /// it runs right here: in WAL mode a read never waits for the writer,
    /// and a point read (~10 µs) costs less than the hand-off to the
    /// blocking pool (~15–40 µs) it would otherwise take. Otherwise, and
    /// always on PostgreSQL (a network round trip), it goes to the pool.
    pub async fn read_op<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        if let Some(readers) = &self.inner.readers {
            if let Some(mut conn) = readers.try_idle() {
                let out = conn.with(f);
                readers.put_back(conn);
                return out;
            }
        }
        self.run(move |s| s.read(f)).await
    }

    // ---- The async API ----

    /// The current revision of `id`, if it exists and is not deleted.
    pub async fn get(&self, id: impl Into<String>) -> Result<Option<Object>> {
        let id = id.into();
        self.read_op(move |tx| ops::get(tx, &id)).await
    }

    /// The revision with this CID (any object, any time).
    pub async fn get_by_cid(&self, cid: impl Into<String>) -> Result<Option<Object>> {
        let cid = cid.into();
        self.read_op(move |tx| ops::get_by_cid(tx, &cid)).await
    }

    /// Every revision of `id`, oldest first.
    pub async fn history(&self, id: impl Into<String>) -> Result<Vec<Revision>> {
        let id = id.into();
        self.read_op(move |tx| ops::history(tx, &id)).await
    }

    /// Writes `body` (canonical SX text of a dict) as the next revision of
    /// `id` if `expect` holds.
    pub async fn put(
        &self,
        id: impl Into<String>,
        body: impl Into<String>,
        expect: Expect,
    ) -> Result<Written> {
        let (id, body) = (id.into(), body.into());
        self.run(move |s| {
            let b = ops::check_body(body)?;
            s.write(|tx| ops::put(tx, &id, &b, &expect, now_ms()))
        })
        .await
    }

    pub async fn delete(&self, id: impl Into<String>, expect: Expect) -> Result<Option<Written>> {
        let id = id.into();
        self.run(move |s| s.write(|tx| ops::delete(tx, &id, &expect, now_ms())))
            .await
    }

    pub async fn list(&self, q: ListQuery) -> Result<Page<Object>> {
        self.read_op(move |tx| ops::list(tx, &q)).await
    }

    pub async fn relate(
        &self,
        src: impl Into<String>,
        rel: impl Into<String>,
        to: Target,
    ) -> Result<bool> {
        let (src, rel) = (src.into(), rel.into());
        self.run(move |s| s.write(|tx| ops::relate(tx, &src, &rel, &to, now_ms())))
            .await
    }

    pub async fn unrelate(
        &self,
        src: impl Into<String>,
        rel: impl Into<String>,
        to: Target,
    ) -> Result<bool> {
        let (src, rel) = (src.into(), rel.into());
        self.run(move |s| s.write(|tx| ops::unrelate(tx, &src, &rel, &to)))
            .await
    }

    pub async fn related(&self, q: RelatedQuery) -> Result<Page<Target>> {
        self.read_op(move |tx| ops::related(tx, &q)).await
    }

    pub async fn count(
        &self,
        id: impl Into<String>,
        rel: impl Into<String>,
        dir: Dir,
    ) -> Result<i64> {
        let (id, rel) = (id.into(), rel.into());
        self.read_op(move |tx| ops::count(tx, &id, "", &rel, dir))
            .await
    }

    pub async fn get_ref(&self, name: impl Into<String>) -> Result<Option<String>> {
        let name = name.into();
        self.read_op(move |tx| ops::get_ref(tx, &name)).await
    }

    /// Compare-and-swap on a ref: `expected` None means "must not exist",
    /// `new` None deletes it.
    pub async fn ref_cas(
        &self,
        name: impl Into<String>,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<()> {
        let name = name.into();
        self.run(move |s| {
            s.write(|tx| ops::ref_cas(tx, &name, expected.as_deref(), new.as_deref(), now_ms()))
        })
        .await
    }

    /// Applies every effect in one transaction: all or nothing.
    pub async fn apply(&self, effects: Vec<Effect>) -> Result<Vec<EffectResult>> {
        self.run(move |s| s.write(|tx| ops::apply(tx, &effects, now_ms())))
            .await
    }

    /// Queued peer messages after sequence number `after`.
    pub async fn outbox(&self, after: i64, limit: Option<usize>) -> Result<Vec<OutboxItem>> {
        self.run(move |s| s.read(|tx| ops::outbox(tx, after, limit)))
            .await
    }

    /// Removes a delivered message from the outbox.
    pub async fn outbox_ack(&self, seq: i64) -> Result<bool> {
        self.run(move |s| s.write(|tx| ops::outbox_ack(tx, seq)))
            .await
    }
}
