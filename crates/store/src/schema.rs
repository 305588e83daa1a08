//! Embedded migrations, run at start; the schema version is checked.

use crate::db::{AsyncTx, Conn, Param, ready, take};
use crate::error::{Result, StoreError};

/// One migration: its SQL for SQLite and for PostgreSQL.
struct Migration {
    sqlite: &'static str,
    pg: &'static str,
}

const V1_COMMON: &str = "
CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    rev BIGINT NOT NULL,
    cid TEXT,
    body TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX objects_by_type ON objects (type, id);
CREATE TABLE revisions (
    id TEXT NOT NULL,
    rev BIGINT NOT NULL,
    cid TEXT,
    body TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (id, rev)
);
CREATE INDEX revisions_by_cid ON revisions (cid);
CREATE TABLE fields (
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (id, key)
);
CREATE INDEX fields_lookup ON fields (type, key, value, id);
CREATE TABLE relations (
    src TEXT NOT NULL,
    rel TEXT NOT NULL,
    peer TEXT NOT NULL,
    dst TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (src, rel, peer, dst)
);
CREATE INDEX relations_incoming ON relations (peer, dst, rel, src);
CREATE TABLE refs (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    at BIGINT NOT NULL
);
";

/// The migrations in order; version N is `MIGRATIONS[N-1]`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sqlite: V1_COMMON,
        pg: V1_COMMON,
    },
    Migration {
        sqlite: "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
                 peer TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT NULL);",
        pg: "CREATE TABLE outbox (seq BIGSERIAL PRIMARY KEY, \
             peer TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT NULL);",
    },
    Migration {
        sqlite: V3_RECORDS,
        pg: V3_RECORDS,
    },
];

/// Records (see `kv.rs`): sessions, tokens, credentials, queues.
const V3_RECORDS: &str = "
CREATE TABLE kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    tag TEXT,
    expires BIGINT,
    at BIGINT NOT NULL,
    PRIMARY KEY (ns, key)
);
CREATE INDEX kv_by_tag ON kv (ns, tag);
CREATE INDEX kv_by_expiry ON kv (expires);
";

/// The schema version this program writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

async fn version<T: AsyncTx + ?Sized>(tx: &mut T) -> Result<i64> {
    let rows = tx
        .query(
            "SELECT value FROM store_meta WHERE key = 'schema_version'",
            &[],
        )
        .await?;
    match rows.into_iter().next() {
        None => Ok(0),
        Some(mut r) => take(&mut r, 0)?
            .text()?
            .parse()
            .map_err(|_| StoreError::Invalid("store: schema_version is not a number".into())),
    }
}

/// Brings the database up to [`SCHEMA_VERSION`] on a blocking connection,
/// in one transaction.
pub fn migrate(conn: &mut Conn) -> Result<()> {
    conn.transaction(true, |tx| ready(migrate_async(tx)))
}

/// Brings the database up to [`SCHEMA_VERSION`] inside the caller's
/// transaction. Several hosts starting together on one PostgreSQL
/// database serialize on an advisory lock.
pub async fn migrate_async<T: AsyncTx + ?Sized>(tx: &mut T) -> Result<()> {
    let pg = tx.pg();
    if pg {
        tx.exec("SELECT pg_advisory_xact_lock(7263521)", &[])
            .await?;
    }
    tx.exec(
        "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        &[],
    )
    .await?;
    let found = version(tx).await?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for m in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        let sql = if pg { m.pg } else { m.sqlite };
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            tx.exec(stmt, &[]).await?;
        }
    }
    if found < SCHEMA_VERSION {
        let v = SCHEMA_VERSION.to_string();
        tx.exec(
            "INSERT INTO store_meta (key, value) VALUES ('schema_version', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Param::Text(&v)],
        )
        .await?;
    }
    Ok(())
}
