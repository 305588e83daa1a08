//! The Rose Ash store: objects (`type:slug` ids, SX dict bodies) with every
//! revision kept under its CID, relations `a --rel--> b` (b possibly on
//! another peer), refs updated by compare-and-swap, and batches of effects
//! applied in one transaction — on SQLite (embedded) or PostgreSQL.
//!
//! [`Store`] is `Clone + Send + Sync`. Its async methods take and return
//! only `Send` data (ids as strings, bodies as SX canonical text), and their
//! futures are `Send`. [`sx_ops`] converts between SX performs and those
//! calls on the SX thread.
//!
//! Every operation is written once, as an `async fn` generic over
//! [`AsyncTx`] (`ops::get_async`, `kv::put_async`, ...), and runs on three
//! kinds of connection (see `db.rs`):
//!
//! - **SQLite** (rusqlite, blocking): the async API runs reads inline on an
//!   idle reader connection (a point read costs less than a thread
//!   hand-off) and writes on tokio's blocking pool.
//! - **PostgreSQL, async** (tokio-postgres, `pg_async.rs`): the async API
//!   awaits the operation on a pooled client whose connection task runs on
//!   the caller's runtime: no thread hand-off at all.
//! - **PostgreSQL, blocking** (the `postgres` crate): the synchronous API
//!   ([`Store::read`], [`Store::write`] and their closures over
//!   `&mut dyn Tx`, export and import) for code on plain threads.
//!
//! On a blocking connection the operation's futures are ready at once and
//! the blocking forms (`ops::get`, `kv::put`, ...) poll them once; so the
//! SQL, the checks and the conflict rules are the same code everywhere.
//!
//! The store knows SX only as data (reading and printing bodies); it never
//! evaluates code, and knows nothing of HTTP or the host.

mod db;
mod error;
pub mod export;
pub mod kv;
mod model;
pub mod ops;
mod pg_async;
mod schema;
pub mod sx_ops;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use db::{AsyncTx, Param, Tx};
pub use error::{Result, StoreError};
pub use model::*;
pub use schema::SCHEMA_VERSION;

use db::{Connector, Pool};
use pg_async::AsyncPool;

/// Blocking PostgreSQL connections per store (the synchronous API: the
/// identity provider's records, export, import).
const PG_BLOCKING: usize = 8;
/// Async PostgreSQL clients per store (the async API: every request's
/// store performs). With [`PG_BLOCKING`], 16 a store, as before the async
/// clients existed: five hosts on one server stay well under PostgreSQL's
/// default of 100 connections.
const PG_ASYNC: usize = 8;

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

/// How long opening a PostgreSQL connection may take, unless the URL sets
/// `connect_timeout`: a server that does not answer is an error, not a hang.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The connection settings of a PostgreSQL store: `url`, and with a
/// `schema`, a search path naming it (for the blocking and async clients
/// alike).
fn pg_config(url: &str, schema: Option<&str>) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Invalid(format!("invalid database URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if let Some(s) = schema {
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Invalid(format!("invalid schema name {s:?}")));
        }
        config.options(format!("-c search_path={s}"));
    }
    Ok(config)
}

/// Runs an operation on a leased async PostgreSQL client outside a
/// transaction: `pg_read!(pool, |tx| ops::get_async(&mut tx, &id))`.
macro_rules! pg_read {
    ($pool:expr, |$tx:ident| $body:expr) => {{
        let mut lease = $pool.lease().await?;
        let out: $crate::Result<_> = async {
            let mut $tx = lease.plain()?;
            $body.await
        }
        .await;
        lease.finish(&out);
        out
    }};
}

/// Runs an operation in one transaction on a leased async PostgreSQL
/// client: committed if it returns `Ok`, else rolled back, so a batch is
/// all or nothing and a conflict writes nothing. (If even the rollback
/// fails, the connection is gone, and that error is returned.)
macro_rules! pg_write {
    ($pool:expr, |$tx:ident| $body:expr) => {{
        let mut lease = $pool.lease().await?;
        let out: $crate::Result<_> = async {
            let mut $tx = lease.begin().await?;
            match $body.await {
                Ok(v) => {
                    $tx.commit().await?;
                    Ok(v)
                }
                Err(e) => {
                    $tx.rollback().await?;
                    Err(e)
                }
            }
        }
        .await;
        lease.finish(&out);
        out
    }};
}
pub(crate) use {pg_read, pg_write};

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
    /// PostgreSQL only: async clients for the async API.
    async_pool: Option<AsyncPool>,
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
        // One writer (SQLite has one at a time anyway), four readers.
        let connector = Connector::Sqlite(path.to_path_buf());
        let pool = Pool::new(connector.clone(), 1);
        pool.run(schema::migrate)?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                readers: Some(Pool::new(connector, 4)),
                async_pool: None,
                backend: Backend::Sqlite,
            }),
        })
    }

    /// Opens the PostgreSQL store at `url` (`postgres://user@host/db`).
    /// Blocking, and must not run inside async code: use [`Store::connect`].
    pub fn open_postgres(url: &str) -> Result<Store> {
        Store::open_postgres_in(url, None)
    }

    /// Opens a PostgreSQL store whose tables live in `schema` (created if
    /// absent), so several stores can share one database (tests do this).
    /// Blocking, and must not run inside async code: use
    /// [`Store::connect_postgres_in`].
    pub fn open_postgres_in(url: &str, schema: Option<&str>) -> Result<Store> {
        let config = pg_config(url, schema)?;
        if let Some(s) = schema {
            // Without the search path: the schema may not exist yet.
            let mut plain: postgres::Config = url
                .parse()
                .map_err(|e| StoreError::Invalid(format!("invalid database URL: {e}")))?;
            let mut c = plain
                .connect_timeout(CONNECT_TIMEOUT)
                .connect(postgres::NoTls)?;
            c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))?;
        }
        let store = Store::postgres(config);
        store.inner.pool.run(schema::migrate)?;
        Ok(store)
    }

    /// [`Store::open_postgres_in`] from async code: the schema is created
    /// and migrated through an async client, and no blocking connection is
    /// opened until the synchronous API is used.
    pub async fn connect_postgres_in(url: &str, schema: Option<&str>) -> Result<Store> {
        let store = Store::postgres(pg_config(url, schema)?);
        if let Some(pool) = store.async_pool() {
            if let Some(s) = schema {
                // A search path may name a schema that does not exist yet,
                // so the client is usable to create it.
                let create = format!("CREATE SCHEMA IF NOT EXISTS {s}");
                pg_read!(pool, |tx| tx.exec(&create, &[]))?;
            }
            pg_write!(pool, |tx| schema::migrate_async(&mut tx))?;
        }
        Ok(store)
    }

    /// A PostgreSQL store on `config` (connections open when first used).
    fn postgres(config: tokio_postgres::Config) -> Store {
        Store {
            inner: Arc::new(Inner {
                pool: Pool::new(
                    Connector::Pg(Box::new(postgres::Config::from(config.clone()))),
                    PG_BLOCKING,
                ),
                readers: None,
                async_pool: Some(AsyncPool::new(config, PG_ASYNC)),
                backend: Backend::Postgres,
            }),
        }
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
        match database_url {
            Some(url) if !url.is_empty() => Store::connect_postgres_in(&url, None).await,
            _ => tokio::task::spawn_blocking(move || Store::open(None, &data_dir))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?,
        }
    }

    /// The async PostgreSQL clients, if this is a PostgreSQL store.
    fn async_pool(&self) -> Option<&AsyncPool> {
        self.inner.async_pool.as_ref()
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

    /// A write for the async API, in one transaction. On SQLite, with the
    /// writer connection idle, it runs right here: no other writer in this
    /// process holds the lock, so a write costs its own ~100 µs (and, now
    /// and then, a WAL checkpoint), less than the ~30 µs hand-off to the
    /// blocking pool on top of it. Otherwise it goes to the pool. (On
    /// PostgreSQL the async methods never come here: they await an async
    /// client.)
    pub async fn write_op<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        if self.inner.readers.is_some() {
            if let Some(mut conn) = self.inner.pool.try_idle() {
                let out = conn.transaction(true, f);
                self.inner.pool.put_back(conn);
                return out;
            }
        }
        self.run(move |s| s.write(f)).await
    }

    // ---- The async API ----
    //
    // On PostgreSQL each method awaits its operation on an async client
    // (`pg_read!`/`pg_write!`); otherwise it runs the blocking form as
    // `read_op` (reads) or `run` (writes) does.

    /// The current revision of `id`, if it exists and is not deleted.
    pub async fn get(&self, id: impl Into<String>) -> Result<Option<Object>> {
        let id = id.into();
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::get_async(&mut tx, &id));
        }
        self.read_op(move |tx| ops::get(tx, &id)).await
    }

    /// The revision with this CID (any object, any time).
    pub async fn get_by_cid(&self, cid: impl Into<String>) -> Result<Option<Object>> {
        let cid = cid.into();
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::get_by_cid_async(&mut tx, &cid));
        }
        self.read_op(move |tx| ops::get_by_cid(tx, &cid)).await
    }

    /// Every revision of `id`, oldest first.
    pub async fn history(&self, id: impl Into<String>) -> Result<Vec<Revision>> {
        let id = id.into();
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::history_async(&mut tx, &id));
        }
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
        if let Some(pool) = self.async_pool() {
            // Checked before the transaction: no lock held while hashing.
            let b = ops::check_body(body)?;
            return pg_write!(pool, |tx| ops::put_async(
                &mut tx,
                &id,
                &b,
                &expect,
                now_ms()
            ));
        }
        let b = ops::check_body(body)?;
        self.write_op(move |tx| ops::put(tx, &id, &b, &expect, now_ms()))
            .await
    }

    pub async fn delete(&self, id: impl Into<String>, expect: Expect) -> Result<Option<Written>> {
        let id = id.into();
        if let Some(pool) = self.async_pool() {
            return pg_write!(pool, |tx| ops::delete_async(
                &mut tx,
                &id,
                &expect,
                now_ms()
            ));
        }
        self.write_op(move |tx| ops::delete(tx, &id, &expect, now_ms()))
            .await
    }

    pub async fn list(&self, q: ListQuery) -> Result<Page<Object>> {
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::list_async(&mut tx, &q));
        }
        self.read_op(move |tx| ops::list(tx, &q)).await
    }

    pub async fn relate(
        &self,
        src: impl Into<String>,
        rel: impl Into<String>,
        to: Target,
    ) -> Result<bool> {
        let (src, rel) = (src.into(), rel.into());
        if let Some(pool) = self.async_pool() {
            return pg_write!(pool, |tx| ops::relate_async(
                &mut tx,
                &src,
                &rel,
                &to,
                now_ms()
            ));
        }
        self.write_op(move |tx| ops::relate(tx, &src, &rel, &to, now_ms()))
            .await
    }

    pub async fn unrelate(
        &self,
        src: impl Into<String>,
        rel: impl Into<String>,
        to: Target,
    ) -> Result<bool> {
        let (src, rel) = (src.into(), rel.into());
        if let Some(pool) = self.async_pool() {
            return pg_write!(pool, |tx| ops::unrelate_async(&mut tx, &src, &rel, &to));
        }
        self.write_op(move |tx| ops::unrelate(tx, &src, &rel, &to))
            .await
    }

    pub async fn related(&self, q: RelatedQuery) -> Result<Page<Target>> {
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::related_async(&mut tx, &q));
        }
        self.read_op(move |tx| ops::related(tx, &q)).await
    }

    pub async fn count(
        &self,
        id: impl Into<String>,
        rel: impl Into<String>,
        dir: Dir,
    ) -> Result<i64> {
        let (id, rel) = (id.into(), rel.into());
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::count_async(&mut tx, &id, "", &rel, dir));
        }
        self.read_op(move |tx| ops::count(tx, &id, "", &rel, dir))
            .await
    }

    pub async fn get_ref(&self, name: impl Into<String>) -> Result<Option<String>> {
        let name = name.into();
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::get_ref_async(&mut tx, &name));
        }
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
        if let Some(pool) = self.async_pool() {
            return pg_write!(pool, |tx| ops::ref_cas_async(
                &mut tx,
                &name,
                expected.as_deref(),
                new.as_deref(),
                now_ms()
            ));
        }
        self.write_op(move |tx| {
            ops::ref_cas(tx, &name, expected.as_deref(), new.as_deref(), now_ms())
        })
        .await
    }

    /// Applies every effect in one transaction: all or nothing.
    pub async fn apply(&self, effects: Vec<Effect>) -> Result<Vec<EffectResult>> {
        if let Some(pool) = self.async_pool() {
            return pg_write!(pool, |tx| ops::apply_async(&mut tx, &effects, now_ms()));
        }
        self.write_op(move |tx| ops::apply(tx, &effects, now_ms()))
            .await
    }

    /// Queued peer messages after sequence number `after`.
    pub async fn outbox(&self, after: i64, limit: Option<usize>) -> Result<Vec<OutboxItem>> {
        if let Some(pool) = self.async_pool() {
            return pg_read!(pool, |tx| ops::outbox_async(&mut tx, after, limit));
        }
        self.run(move |s| s.read(|tx| ops::outbox(tx, after, limit)))
            .await
    }

    /// Removes a delivered message from the outbox.
    pub async fn outbox_ack(&self, seq: i64) -> Result<bool> {
        if let Some(pool) = self.async_pool() {
            return pg_write!(pool, |tx| ops::outbox_ack_async(&mut tx, seq));
        }
        self.write_op(move |tx| ops::outbox_ack(tx, seq)).await
    }
}
