//! Records: small keyed values outside the object model, optionally
//! expiring — sessions, single-use tokens, credentials, counters, a mail
//! outbox. They have no revisions and no CIDs: what they hold is either
//! short-lived or secret, and must not linger in an object's history.
//!
//! A record lives in a namespace (`ns`) under a key, holds a text value,
//! may carry a `tag` (to find or delete a group at once: every session of
//! one login, every refresh token of one grant) and may expire. An expired
//! record reads as absent, and [`purge_expired`] removes it for good.
//! Durable records (no expiry) are part of an export.

use crate::db::{AsyncTx, Param, Tx, ready, take};
use crate::error::{Result, StoreError};

/// Longest namespace, key or tag.
const MAX_NAME: usize = 512;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ns: String,
    pub key: String,
    pub value: String,
    pub tag: Option<String>,
    /// When it expires, ms since the Unix epoch; `None` keeps it.
    pub expires: Option<i64>,
    /// When it was last written.
    pub at: i64,
}

fn check(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "invalid record {what} {:?}",
            s.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

const COLUMNS: &str = "ns, key, value, tag, expires, at";

fn row_record(mut r: crate::db::Row) -> Result<Record> {
    Ok(Record {
        ns: take(&mut r, 0)?.text()?,
        key: take(&mut r, 1)?.text()?,
        value: take(&mut r, 2)?.text()?,
        tag: take(&mut r, 3)?.opt_text()?,
        expires: match take(&mut r, 4)? {
            crate::db::Col::Null => None,
            c => Some(c.int()?),
        },
        at: take(&mut r, 5)?.int()?,
    })
}

fn opt_int(v: Option<i64>) -> Param<'static> {
    match v {
        Some(i) => Param::Int(i),
        None => Param::NullInt,
    }
}

/// A record's columns as statement parameters, in [`COLUMNS`] order.
fn params(rec: &Record) -> [Param<'_>; 6] {
    [
        Param::Text(&rec.ns),
        Param::Text(&rec.key),
        Param::Text(&rec.value),
        rec.tag.as_deref().map_or(Param::NullText, Param::Text),
        opt_int(rec.expires),
        Param::Int(rec.at),
    ]
}

/// Checks a record's names before it is written.
pub(crate) fn check_record(rec: &Record) -> Result<()> {
    check("namespace", &rec.ns)?;
    check("key", &rec.key)?;
    if let Some(t) = &rec.tag {
        check("tag", t)?;
    }
    Ok(())
}

/// The live record `ns`/`key` (locked for the transaction on PostgreSQL,
/// so a read-then-write sequence in one transaction is atomic).
pub async fn get_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    ns: &str,
    key: &str,
    now: i64,
) -> Result<Option<Record>> {
    check("namespace", ns)?;
    check("key", key)?;
    let sql = if tx.pg() {
        "SELECT ns, key, value, tag, expires, at FROM kv \
         WHERE ns = ?1 AND key = ?2 AND (expires IS NULL OR expires > ?3) FOR UPDATE"
    } else {
        "SELECT ns, key, value, tag, expires, at FROM kv \
         WHERE ns = ?1 AND key = ?2 AND (expires IS NULL OR expires > ?3)"
    };
    match tx
        .query_first(sql, &[Param::Text(ns), Param::Text(key), Param::Int(now)])
        .await?
    {
        Some(r) => row_record(r).map(Some),
        None => Ok(None),
    }
}

/// [`get_async`] on a blocking connection.
pub fn get(tx: &mut dyn Tx, ns: &str, key: &str, now: i64) -> Result<Option<Record>> {
    ready(get_async(tx, ns, key, now))
}

/// Writes a record, replacing whatever was under its key.
pub async fn put_async<T: AsyncTx + ?Sized>(tx: &mut T, rec: &Record) -> Result<()> {
    check_record(rec)?;
    tx.exec(
        "INSERT INTO kv (ns, key, value, tag, expires, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, tag = excluded.tag, \
         expires = excluded.expires, at = excluded.at",
        &params(rec),
    )
    .await?;
    Ok(())
}

/// [`put_async`] on a blocking connection.
pub fn put(tx: &mut dyn Tx, rec: &Record) -> Result<()> {
    ready(put_async(tx, rec))
}

/// Writes a record only if its key holds no live record; false if one is
/// there (an expired one is replaced). Of concurrent inserts of one key,
/// exactly one succeeds.
pub async fn insert_async<T: AsyncTx + ?Sized>(tx: &mut T, rec: &Record) -> Result<bool> {
    check_record(rec)?;
    tx.exec(
        "DELETE FROM kv WHERE ns = ?1 AND key = ?2 AND expires IS NOT NULL AND expires <= ?3",
        &[
            Param::Text(&rec.ns),
            Param::Text(&rec.key),
            Param::Int(rec.at),
        ],
    )
    .await?;
    let n = tx
        .exec(
            "INSERT INTO kv (ns, key, value, tag, expires, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (ns, key) DO NOTHING",
            &params(rec),
        )
        .await?;
    Ok(n == 1)
}

/// [`insert_async`] on a blocking connection.
pub fn insert(tx: &mut dyn Tx, rec: &Record) -> Result<bool> {
    ready(insert_async(tx, rec))
}

/// Removes and returns the live record `ns`/`key`: of two transactions
/// taking the same key, exactly one gets it (single-use tokens).
pub async fn take_record_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    ns: &str,
    key: &str,
    now: i64,
) -> Result<Option<Record>> {
    let found = get_async(tx, ns, key, now).await?;
    if found.is_some() {
        let n = tx
            .exec(
                "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
                &[Param::Text(ns), Param::Text(key)],
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
    }
    Ok(found)
}

/// [`take_record_async`] on a blocking connection.
pub fn take_record(tx: &mut dyn Tx, ns: &str, key: &str, now: i64) -> Result<Option<Record>> {
    ready(take_record_async(tx, ns, key, now))
}

/// Deletes `ns`/`key`; true if something (live or expired) was there.
pub async fn delete_async<T: AsyncTx + ?Sized>(tx: &mut T, ns: &str, key: &str) -> Result<bool> {
    check("namespace", ns)?;
    check("key", key)?;
    Ok(tx
        .exec(
            "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
            &[Param::Text(ns), Param::Text(key)],
        )
        .await?
        > 0)
}

/// [`delete_async`] on a blocking connection.
pub fn delete(tx: &mut dyn Tx, ns: &str, key: &str) -> Result<bool> {
    ready(delete_async(tx, ns, key))
}

/// The live records of `ns` carrying `tag`, in key order.
pub async fn tagged_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    ns: &str,
    tag: &str,
    now: i64,
) -> Result<Vec<Record>> {
    check("namespace", ns)?;
    check("tag", tag)?;
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM kv WHERE ns = ?1 AND tag = ?2 \
             AND (expires IS NULL OR expires > ?3) ORDER BY key"
        ),
        &[Param::Text(ns), Param::Text(tag), Param::Int(now)],
    )
    .await?
    .into_iter()
    .map(row_record)
    .collect()
}

/// [`tagged_async`] on a blocking connection.
pub fn tagged(tx: &mut dyn Tx, ns: &str, tag: &str, now: i64) -> Result<Vec<Record>> {
    ready(tagged_async(tx, ns, tag, now))
}

/// Deletes every record of `ns` carrying `tag`; how many went.
pub async fn delete_tagged_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    ns: &str,
    tag: &str,
) -> Result<u64> {
    check("namespace", ns)?;
    check("tag", tag)?;
    tx.exec(
        "DELETE FROM kv WHERE ns = ?1 AND tag = ?2",
        &[Param::Text(ns), Param::Text(tag)],
    )
    .await
}

/// [`delete_tagged_async`] on a blocking connection.
pub fn delete_tagged(tx: &mut dyn Tx, ns: &str, tag: &str) -> Result<u64> {
    ready(delete_tagged_async(tx, ns, tag))
}

/// Up to `limit` live records of `ns` with keys after `after`, in key
/// order (for draining queues and listing small namespaces).
pub async fn list_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    ns: &str,
    after: &str,
    limit: i64,
    now: i64,
) -> Result<Vec<Record>> {
    check("namespace", ns)?;
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM kv WHERE ns = ?1 AND key > ?2 \
             AND (expires IS NULL OR expires > ?3) ORDER BY key LIMIT ?4"
        ),
        &[
            Param::Text(ns),
            Param::Text(after),
            Param::Int(now),
            Param::Int(limit),
        ],
    )
    .await?
    .into_iter()
    .map(row_record)
    .collect()
}

/// [`list_async`] on a blocking connection.
pub fn list(tx: &mut dyn Tx, ns: &str, after: &str, limit: i64, now: i64) -> Result<Vec<Record>> {
    ready(list_async(tx, ns, after, limit, now))
}

/// Removes every record that expired by `now`; how many went.
pub async fn purge_expired_async<T: AsyncTx + ?Sized>(tx: &mut T, now: i64) -> Result<u64> {
    tx.exec(
        "DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?1",
        &[Param::Int(now)],
    )
    .await
}

/// [`purge_expired_async`] on a blocking connection.
pub fn purge_expired(tx: &mut dyn Tx, now: i64) -> Result<u64> {
    ready(purge_expired_async(tx, now))
}

/// Every durable record (no expiry), in (ns, key) order, for export.
pub async fn durable_async<T: AsyncTx + ?Sized>(tx: &mut T) -> Result<Vec<Record>> {
    tx.query(
        &format!("SELECT {COLUMNS} FROM kv WHERE expires IS NULL ORDER BY ns, key"),
        &[],
    )
    .await?
    .into_iter()
    .map(row_record)
    .collect()
}

/// [`durable_async`] on a blocking connection.
pub fn durable(tx: &mut dyn Tx) -> Result<Vec<Record>> {
    ready(durable_async(tx))
}

/// Adds one to the counter `ns`/`key` and returns the new count and its
/// expiry, atomically (concurrent increments are never lost). A counter
/// that does not exist, or has expired, starts again at 1 and expires at
/// `expires`. The counter's value is its decimal text.
pub async fn increment_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    ns: &str,
    key: &str,
    expires: i64,
    now: i64,
) -> Result<(i64, i64)> {
    check("namespace", ns)?;
    check("key", key)?;
    let row = tx
        .query_first(
            "INSERT INTO kv (ns, key, value, tag, expires, at) VALUES (?1, ?2, '1', NULL, ?3, ?4) \
         ON CONFLICT (ns, key) DO UPDATE SET \
           value = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?4 THEN '1' \
                   ELSE CAST(CAST(kv.value AS BIGINT) + 1 AS TEXT) END, \
           expires = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?4 THEN ?3 \
                     ELSE kv.expires END, \
           at = ?4 \
         RETURNING value, expires",
            &[
                Param::Text(ns),
                Param::Text(key),
                Param::Int(expires),
                Param::Int(now),
            ],
        )
        .await?;
    let mut row =
        row.ok_or_else(|| StoreError::Invalid("store: increment returned no row".into()))?;
    let n = take(&mut row, 0)?
        .text()?
        .parse::<i64>()
        .map_err(|_| StoreError::Invalid(format!("record {ns}/{key} is not a counter")))?;
    let exp = match take(&mut row, 1)? {
        crate::db::Col::Null => expires,
        c => c.int()?,
    };
    Ok((n, exp))
}

/// [`increment_async`] on a blocking connection.
pub fn increment(
    tx: &mut dyn Tx,
    ns: &str,
    key: &str,
    expires: i64,
    now: i64,
) -> Result<(i64, i64)> {
    ready(increment_async(tx, ns, key, expires, now))
}
