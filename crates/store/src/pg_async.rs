//! PostgreSQL without blocking: a small pool of tokio-postgres clients for
//! the async API.
//!
//! The blocking `postgres` client answers each call by parking the calling
//! thread, so the async API used to hand every call to tokio's blocking
//! pool; on PostgreSQL that hand-off cost as much as the query. Here each
//! client's connection is a task on the runtime of the caller that opened
//! it, and the caller awaits its answer like any other IO: no thread
//! changes hands.
//!
//! - **Runtime affinity.** A client's socket is registered with the
//!   runtime it was opened on, and its connection task runs there. A
//!   host has several runtimes (one per SX worker thread), so a client is
//!   only lent to callers on its own runtime (by [`tokio::runtime::Id`]):
//!   a worker busy evaluating SX never delays another worker's query.
//! - **Size.** At most `max` clients are open; a semaphore of `max`
//!   permits bounds those lent out. A caller whose runtime has no idle
//!   client opens one, or, when `max` are open, closes an idle client of
//!   another runtime first (one exists, since the caller holds a permit).
//! - **Statements** are prepared once per client and cached by SQL text.
//! - **Failure.** A dead connection is an error from the call that meets
//!   it (tokio-postgres answers "connection closed"), never a hang; a
//!   closed client is dropped when it comes back and a new one is opened
//!   on demand. A lease dropped before its operation finished (the caller
//!   was cancelled mid-query or mid-transaction) closes its client rather
//!   than lend out a connection in an unknown state; the server rolls the
//!   transaction back.
//! - **Transactions** are tokio-postgres transactions, committed when the
//!   operation succeeds and rolled back (awaited, so its locks are gone
//!   before the caller goes on) when it fails.
//! - **Runtime.** The caller's runtime must have IO and time enabled
//!   (`Builder::enable_all`, as `#[tokio::main]` and the host's do);
//!   otherwise connecting is an error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::task::Poll;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Statement, Transaction};

use crate::db::{AsyncTx, Param, Row, STATEMENT_CACHE, pg_error, pg_params, pg_rows, pg_sql};
use crate::error::{Result, StoreError};

/// The pool. Opens nothing until first asked.
pub(crate) struct AsyncPool {
    config: tokio_postgres::Config,
    max: usize,
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    idle: Vec<Pooled>,
    /// Clients open: idle plus lent out (plus those being opened).
    open: usize,
}

/// One client, the runtime its connection task runs on, its statements.
struct Pooled {
    client: Client,
    home: tokio::runtime::Id,
    statements: HashMap<String, Statement>,
}

impl AsyncPool {
    pub(crate) fn new(config: tokio_postgres::Config, max: usize) -> AsyncPool {
        let max = max.max(1);
        AsyncPool {
            config,
            max,
            permits: Semaphore::new(max),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The lock guards plain bookkeeping that every path leaves
        // consistent, so a panic elsewhere while it was held changes nothing.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client on the caller's runtime, waiting while `max` are lent out.
    pub(crate) async fn lease(&self) -> Result<Lease<'_>> {
        let home = tokio::runtime::Handle::try_current()
            .map_err(|e| {
                StoreError::Task(format!(
                    "store: the async API on PostgreSQL needs a tokio runtime: {e}"
                ))
            })?
            .id();
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Task("store: the connection pool is closed".into()))?;
        let evicted = {
            let mut st = self.state();
            let before = st.idle.len();
            st.idle.retain(|c| !c.client.is_closed());
            st.open -= before - st.idle.len();
            if let Some(i) = st.idle.iter().rposition(|c| c.home == home) {
                let c = st.idle.swap_remove(i);
                return Ok(Lease {
                    pool: self,
                    client: Some(c),
                    finished: false,
                    _permit: permit,
                });
            }
            if st.open < self.max {
                st.open += 1;
                None
            } else {
                // Every permit but ours may be lent out, so at least one
                // of the `max` open clients is idle: replace it.
                let Some(c) = st.idle.pop() else {
                    return Err(StoreError::Task(
                        "store: connection pool bookkeeping is inconsistent".into(),
                    ));
                };
                Some(c)
            }
        };
        // Closed outside the lock: dropping the client ends its connection
        // task on its own runtime.
        drop(evicted);
        let mut slot = Slot {
            pool: self,
            armed: true,
        };
        let client = self.connect(home).await?;
        slot.armed = false;
        Ok(Lease {
            pool: self,
            client: Some(client),
            finished: false,
            _permit: permit,
        })
    }

    async fn connect(&self, home: tokio::runtime::Id) -> Result<Pooled> {
        // tokio panics when a socket or timer is made on a runtime built
        // without IO or time (`Builder::enable_all` enables both); for the
        // store that is a caller's misconfiguration, reported as an error.
        let mut connecting = Box::pin(self.config.connect(tokio_postgres::NoTls));
        let connected = std::future::poll_fn(|cx| {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                connecting.as_mut().poll(cx)
            })) {
                Ok(p) => p.map(Ok),
                Err(panic) => Poll::Ready(Err(panic)),
            }
        })
        .await;
        let (client, connection) = match connected {
            Ok(c) => c.map_err(StoreError::Postgres)?,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(StoreError::Task(format!(
                    "store: cannot connect to PostgreSQL on this runtime \
                     (the async API needs tokio's IO and time drivers): {why}"
                )));
            }
        };
        // The connection task ends when the client is dropped or the
        // server goes away; its error then reaches the client's callers as
        // "connection closed", so there is nothing more to do with it here.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Pooled {
            client,
            home,
            statements: HashMap::new(),
        })
    }

    fn give_back(&self, c: Pooled, reuse: bool) {
        let mut st = self.state();
        if reuse && !c.client.is_closed() {
            st.idle.push(c);
        } else {
            st.open -= 1;
            drop(st);
            drop(c);
        }
    }
}

/// Counts a client being opened; gives the count back if opening fails
/// or is cancelled.
struct Slot<'p> {
    pool: &'p AsyncPool,
    armed: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.pool.state().open -= 1;
        }
    }
}

/// A client lent to one operation. Call [`Lease::finish`] when the
/// operation has run to its end (successfully or not); a lease dropped
/// before that (its caller was cancelled) closes its client.
pub(crate) struct Lease<'p> {
    pool: &'p AsyncPool,
    client: Option<Pooled>,
    finished: bool,
    _permit: SemaphorePermit<'p>,
}

impl Lease<'_> {
    fn pooled(&mut self) -> Result<&mut Pooled> {
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Task("store: a pool lease has no client".into()))
    }

    /// The client outside a transaction (single reads).
    pub(crate) fn plain(&mut self) -> Result<PgTx<'_>> {
        let Pooled {
            client, statements, ..
        } = self.pooled()?;
        Ok(PgTx {
            on: On::Client(client),
            statements,
        })
    }

    /// Begins a transaction; commit it with [`PgTx::commit`], or drop it
    /// to roll back.
    pub(crate) async fn begin(&mut self) -> Result<PgTx<'_>> {
        let Pooled {
            client, statements, ..
        } = self.pooled()?;
        let t = client.transaction().await.map_err(pg_error)?;
        Ok(PgTx {
            on: On::Tx(t),
            statements,
        })
    }

    /// The operation ran to its end with `out`: the client may be lent
    /// again, unless the error says its connection is gone.
    pub(crate) fn finish<T>(&mut self, out: &Result<T>) {
        self.finished = match out {
            Err(StoreError::Postgres(e)) => !connection_lost(e),
            _ => true,
        };
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            self.pool.give_back(c, self.finished);
        }
    }
}

/// Whether an error means the connection can no longer be used: closed,
/// IO, or the server's "connection exception" (08) and "operator
/// intervention" (57P: shut down, terminated) classes. A SQL error (a
/// constraint, a syntax error) leaves the connection fine.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_none_or(|c| {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P")
        })
}

enum On<'a> {
    Client(&'a Client),
    Tx(Transaction<'a>),
}

/// A leased client, in a transaction or not: what the operations run on.
pub(crate) struct PgTx<'a> {
    on: On<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_> {
    fn client(&self) -> &Client {
        match &self.on {
            On::Client(c) => c,
            On::Tx(t) => t.client(),
        }
    }

    async fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self
            .client()
            .prepare(&pg_sql(sql))
            .await
            .map_err(pg_error)?;
        if self.statements.len() > STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Commits the transaction (nothing to do outside one).
    pub(crate) async fn commit(self) -> Result<()> {
        match self.on {
            On::Tx(t) => t.commit().await.map_err(pg_error),
            On::Client(_) => Ok(()),
        }
    }

    /// Rolls the transaction back and waits until the server has: its
    /// locks are released before the caller goes on. (Dropping it would
    /// only queue the rollback for the connection task, which runs when
    /// the caller's runtime next gets to it.)
    pub(crate) async fn rollback(self) -> Result<()> {
        match self.on {
            On::Tx(t) => t.rollback().await.map_err(pg_error),
            On::Client(_) => Ok(()),
        }
    }
}

impl AsyncTx for PgTx<'_> {
    fn pg(&self) -> bool {
        true
    }
    async fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let st = self.statement(sql).await?;
        self.client()
            .execute(&st, &pg_params(params))
            .await
            .map_err(pg_error)
    }
    async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let st = self.statement(sql).await?;
        pg_rows(
            self.client()
                .query(&st, &pg_params(params))
                .await
                .map_err(pg_error)?,
        )
    }
    async fn query_first(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }
}
