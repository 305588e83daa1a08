//! The database backends behind one small interface.
//!
//! Every store operation is written once, as an `async fn` generic over
//! [`AsyncTx`], with SQL that both SQLite and PostgreSQL accept.
//! Placeholders are written `?1`, `?2`, ... (SQLite's numbered form); the
//! PostgreSQL side rewrites them to `$1` when it first prepares a
//! statement, so SQL text never contains `?` otherwise. The few dialect
//! differences are chosen with [`AsyncTx::pg`].
//!
//! Three kinds of connection implement it:
//!
//! - SQLite (rusqlite) and blocking PostgreSQL (the `postgres` crate)
//!   implement the synchronous [`Tx`], and `dyn Tx` implements [`AsyncTx`]
//!   with futures that are ready at once. The blocking forms of the
//!   operations (`ops::get(&mut dyn Tx, ..)`, what `Store::read`/`write`
//!   closures call) poll them once with a no-op waker ([`ready`]).
//! - Asynchronous PostgreSQL (tokio-postgres, `pg_async.rs`) implements
//!   [`AsyncTx`] directly; the async API on a PostgreSQL store awaits the
//!   same operations on it, with no thread hand-off.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Result, StoreError};

/// A query parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
    NullText,
    NullInt,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Col {
    Null,
    Int(i64),
    Text(String),
}

impl Col {
    pub fn int(&self) -> Result<i64> {
        match self {
            Col::Int(i) => Ok(*i),
            other => Err(StoreError::Invalid(format!(
                "store: expected an integer column, found {other:?}"
            ))),
        }
    }
    pub fn text(self) -> Result<String> {
        match self {
            Col::Text(s) => Ok(s),
            other => Err(StoreError::Invalid(format!(
                "store: expected a text column, found {other:?}"
            ))),
        }
    }
    pub fn opt_text(self) -> Result<Option<String>> {
        match self {
            Col::Null => Ok(None),
            other => other.text().map(Some),
        }
    }
}

pub type Row = Vec<Col>;

/// Takes column `i` out of a row (rows come from our own queries, but a
/// short row is still an error rather than a panic).
pub fn take(row: &mut Row, i: usize) -> Result<Col> {
    row.get_mut(i)
        .map(|c| std::mem::replace(c, Col::Null))
        .ok_or_else(|| StoreError::Invalid(format!("store: result row has no column {i}")))
}

/// One open transaction (or, for reads, one connection).
pub trait Tx {
    /// True on PostgreSQL.
    fn pg(&self) -> bool;
    /// Runs a statement, returning the number of rows changed.
    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64>;
    /// Runs a query, returning every row.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>>;
    /// Runs a query, returning its first row only (not stepping further).
    fn query_first(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// One open transaction (or, for reads, one connection) whose calls may
/// suspend: what every operation is written against. See the module docs.
pub trait AsyncTx {
    /// True on PostgreSQL.
    fn pg(&self) -> bool;
    /// Runs a statement, returning the number of rows changed.
    fn exec(&mut self, sql: &str, params: &[Param<'_>])
    -> impl Future<Output = Result<u64>> + Send;
    /// Runs a query, returning every row.
    fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Vec<Row>>> + Send;
    /// Runs a query, returning its first row only.
    fn query_first(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Option<Row>>> + Send;
}

/// A blocking connection does its work when called and hands back a
/// future that is already complete.
impl AsyncTx for dyn Tx + '_ {
    fn pg(&self) -> bool {
        Tx::pg(self)
    }
    fn exec(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<u64>> + Send {
        std::future::ready(Tx::exec(self, sql, params))
    }
    fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Vec<Row>>> + Send {
        std::future::ready(Tx::query(self, sql, params))
    }
    fn query_first(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Option<Row>>> + Send {
        std::future::ready(Tx::query_first(self, sql, params))
    }
}

/// Runs an operation on a blocking connection to completion: polled once,
/// as every database call under it is ready at once. A future that is
/// still pending would be an operation awaiting something other than its
/// `dyn Tx` — a bug, reported as an error rather than a hang or panic.
pub fn ready<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => Err(StoreError::Task(
            "store: an operation on a blocking connection did not complete at once".into(),
        )),
    }
}

/// A pooled connection of either kind.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(Box<PgConn>),
}

pub struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl Conn {
    /// Runs `f` in a transaction: committed if it returns `Ok`, rolled
    /// back otherwise. On SQLite a writing transaction takes the write lock
    /// at once (`BEGIN IMMEDIATE`), so its reads see what it will update.
    pub fn transaction<T>(
        &mut self,
        write: bool,
        f: impl FnOnce(&mut dyn Tx) -> Result<T>,
    ) -> Result<T> {
        match self {
            Conn::Sqlite(c) => {
                c.execute_batch(if write { "BEGIN IMMEDIATE" } else { "BEGIN" })?;
                let mut tx = SqliteTx(c);
                match f(&mut tx) {
                    Ok(v) => {
                        if let Err(e) = tx.0.execute_batch("COMMIT") {
                            let _ = tx.0.execute_batch("ROLLBACK");
                            return Err(e.into());
                        }
                        Ok(v)
                    }
                    Err(e) => {
                        let _ = tx.0.execute_batch("ROLLBACK");
                        Err(e)
                    }
                }
            }
            Conn::Pg(p) => {
                let PgConn { client, statements } = &mut **p;
                let t = client.transaction().map_err(pg_error)?;
                let mut tx = PgTx { t, statements };
                let v = f(&mut tx)?;
                tx.t.commit().map_err(pg_error)?;
                Ok(v)
            }
        }
    }

    /// Runs `f` outside an explicit transaction (single reads).
    pub fn with<T>(&mut self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        match self {
            Conn::Sqlite(c) => f(&mut SqliteTx(c)),
            Conn::Pg(p) => {
                let PgConn { client, statements } = &mut **p;
                f(&mut PgPlain { client, statements })
            }
        }
    }

    fn broken(&self) -> bool {
        match self {
            Conn::Sqlite(_) => false,
            Conn::Pg(p) => p.client.is_closed(),
        }
    }
}

struct SqliteTx<'a>(&'a mut rusqlite::Connection);

fn sqlite_params<'a>(params: &'a [Param<'a>]) -> Vec<rusqlite::types::ToSqlOutput<'a>> {
    use rusqlite::types::{ToSqlOutput, Value, ValueRef};
    params
        .iter()
        .map(|p| match p {
            Param::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Param::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Param::NullText | Param::NullInt => ToSqlOutput::Owned(Value::Null),
        })
        .collect()
}

fn sqlite_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            return StoreError::conflict(
                "write",
                format!("a concurrent writer got there first ({e})"),
                None,
            );
        }
    }
    StoreError::Sqlite(e)
}

impl Tx for SqliteTx<'_> {
    fn pg(&self) -> bool {
        false
    }
    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut st = self.0.prepare_cached(sql)?;
        let n = st
            .execute(rusqlite::params_from_iter(sqlite_params(params)))
            .map_err(sqlite_error)?;
        Ok(n as u64)
    }
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut st = self.0.prepare_cached(sql)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(sqlite_params(params)))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(sqlite_row(r, n)?);
        }
        Ok(out)
    }
    fn query_first(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        let mut st = self.0.prepare_cached(sql)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(sqlite_params(params)))?;
        match rows.next()? {
            Some(r) => Ok(Some(sqlite_row(r, n)?)),
            None => Ok(None),
        }
    }
}

fn sqlite_row(r: &rusqlite::Row<'_>, n: usize) -> Result<Row> {
    use rusqlite::types::ValueRef;
    let mut row = Vec::with_capacity(n);
    for i in 0..n {
        row.push(match r.get_ref(i)? {
            ValueRef::Null => Col::Null,
            ValueRef::Integer(i) => Col::Int(i),
            ValueRef::Text(t) => Col::Text(String::from_utf8_lossy(t).into_owned()),
            other => {
                return Err(StoreError::Invalid(format!(
                    "store: unexpected sqlite column type {:?}",
                    other.data_type()
                )));
            }
        });
    }
    Ok(row)
}

pub(crate) fn pg_error(e: postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    match e.code() {
        Some(c)
            if *c == SqlState::UNIQUE_VIOLATION
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::conflict(
                "write",
                format!("a concurrent writer got there first ({e})"),
                None,
            )
        }
        _ => StoreError::Postgres(e),
    }
}

/// A parameter binds as the Rust type it holds (`i64` as INT8, `&str` as
/// TEXT), exactly as if that value were passed, so no boxing is needed.
impl postgres::types::ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        match self {
            Param::Int(i) => i.to_sql(ty, out),
            Param::Text(s) => s.to_sql(ty, out),
            Param::NullText | Param::NullInt => Ok(postgres::types::IsNull::Yes),
        }
    }
    fn accepts(ty: &postgres::types::Type) -> bool {
        <i64 as postgres::types::ToSql>::accepts(ty)
            || <&str as postgres::types::ToSql>::accepts(ty)
    }
    fn to_sql_checked(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        // Checked against the type of the value held, not any of them.
        match self {
            Param::Int(i) => i.to_sql_checked(ty, out),
            Param::Text(s) => s.to_sql_checked(ty, out),
            Param::NullText => None::<&str>.to_sql_checked(ty, out),
            Param::NullInt => None::<i64>.to_sql_checked(ty, out),
        }
    }
}

/// Parameters as the drivers take them.
pub(crate) fn pg_params<'a>(
    params: &'a [Param<'a>],
) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| p as _).collect()
}

pub(crate) fn pg_rows(rows: Vec<postgres::Row>) -> Result<Vec<Row>> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut row = Vec::with_capacity(r.len());
        for (i, c) in r.columns().iter().enumerate() {
            let t = c.type_();
            let col = if *t == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)
                    .map_err(pg_error)?
                    .map_or(Col::Null, Col::Int)
            } else if *t == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)
                    .map_err(pg_error)?
                    .map_or(Col::Null, |v| Col::Int(i64::from(v)))
            } else {
                r.try_get::<_, Option<String>>(i)
                    .map_err(pg_error)?
                    .map_or(Col::Null, Col::Text)
            };
            row.push(col);
        }
        out.push(row);
    }
    Ok(out)
}

/// Prepared statements kept per PostgreSQL connection before the cache is
/// emptied (the store's SQL is a few dozen texts; list filters vary).
pub(crate) const STATEMENT_CACHE: usize = 256;

/// The shared SQL numbers parameters `?1`, `?2`, ... (SQLite's spelling);
/// PostgreSQL spells them `$1`. Rewritten once per statement and
/// connection.
pub(crate) fn pg_sql(sql: &str) -> String {
    sql.replace('?', "$")
}

fn pg_statement<C: postgres::GenericClient>(
    c: &mut C,
    cache: &mut HashMap<String, postgres::Statement>,
    sql: &str,
) -> Result<postgres::Statement> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = c.prepare(&pg_sql(sql)).map_err(pg_error)?;
    if cache.len() > STATEMENT_CACHE {
        cache.clear();
    }
    cache.insert(sql.to_owned(), s.clone());
    Ok(s)
}

macro_rules! pg_tx_impl {
    ($t:ty, |$s:ident| $c:expr) => {
        impl Tx for $t {
            fn pg(&self) -> bool {
                true
            }
            fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
                let $s = self;
                let st = pg_statement($c, $s.statements, sql)?;
                $c.execute(&st, &pg_params(params)).map_err(pg_error)
            }
            fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
                let $s = self;
                let st = pg_statement($c, $s.statements, sql)?;
                pg_rows($c.query(&st, &pg_params(params)).map_err(pg_error)?)
            }
        }
    };
}

struct PgTx<'a> {
    t: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, postgres::Statement>,
}
pg_tx_impl!(PgTx<'_>, |s| &mut s.t);

struct PgPlain<'a> {
    client: &'a mut postgres::Client,
    statements: &'a mut HashMap<String, postgres::Statement>,
}
pg_tx_impl!(PgPlain<'_>, |s| &mut *s.client);

/// How to make a connection.
#[derive(Clone)]
pub enum Connector {
    Sqlite(std::path::PathBuf),
    Pg(Box<postgres::Config>),
}

impl Connector {
    pub fn connect(&self) -> Result<Conn> {
        match self {
            Connector::Sqlite(path) => {
                let c = rusqlite::Connection::open(path)?;
                c.busy_timeout(Duration::from_secs(30))?;
                c.pragma_update(None, "journal_mode", "WAL")?;
                c.pragma_update(None, "synchronous", "NORMAL")?;
                c.pragma_update(None, "foreign_keys", "ON")?;
                // 32 MiB of page cache per connection (the default is 2 MiB).
                c.pragma_update(None, "cache_size", -32768)?;
                c.set_prepared_statement_cache_capacity(64);
                Ok(Conn::Sqlite(c))
            }
            Connector::Pg(config) => {
                let client = config
                    .connect(postgres::NoTls)
                    .map_err(StoreError::Postgres)?;
                Ok(Conn::Pg(Box::new(PgConn {
                    client,
                    statements: HashMap::new(),
                })))
            }
        }
    }
}

/// A blocking pool of at most `max` connections.
pub struct Pool {
    connector: Connector,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

impl Pool {
    pub fn new(connector: Connector, max: usize) -> Pool {
        Pool {
            connector,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` with a connection, waiting for one if all are in use.
    pub fn run<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut conn = self.get()?;
        let out = f(&mut conn);
        self.put(conn);
        out
    }

    /// An idle connection, if one is free now (never waits or connects);
    /// give it back with [`Pool::put_back`].
    pub fn try_idle(&self) -> Option<Conn> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.idle.pop()
    }

    /// Returns a connection taken with [`Pool::try_idle`].
    pub fn put_back(&self, conn: Conn) {
        self.put(conn);
    }

    /// Takes every idle connection (for closing).
    pub fn drain(&mut self) -> Vec<Conn> {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut st.idle)
    }

    fn get(&self) -> Result<Conn> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = st.idle.pop() {
                return Ok(c);
            }
            if st.open < self.max {
                st.open += 1;
                drop(st);
                return self.connector.connect().inspect_err(|_| {
                    let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    st.open -= 1;
                    self.freed.notify_one();
                });
            }
            st = self.freed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn put(&self, conn: Conn) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if conn.broken() {
            st.open -= 1;
        } else {
            st.idle.push(conn);
        }
        self.freed.notify_one();
    }
}
