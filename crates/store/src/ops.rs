//! The store's operations, each written once as an `async fn` generic over
//! [`AsyncTx`] (`get_async`, `put_async`, ...) for every backend, with a
//! blocking form on `&mut dyn Tx` (`get`, `put`, ...) for `Store::read` and
//! `Store::write` closures. See `db.rs`.

use crate::db::{AsyncTx, Param, Row, Tx, ready, take};
use crate::error::{Result, StoreError};
use crate::model::*;

/// Longest id, relation name or ref name accepted.
const MAX_NAME: usize = 512;
/// Most items one page may hold.
pub const MAX_LIMIT: usize = 1000;
/// Longest field value (canonical text) that is indexed for filters.
const MAX_FIELD: usize = 256;

/// Checks an object id `type:slug` and returns its type.
pub fn check_id(id: &str) -> Result<&str> {
    let bad = |why: &str| {
        Err(StoreError::Invalid(format!(
            "invalid object id {id:?}: {why} (ids are `type:slug`)"
        )))
    };
    if id.len() > MAX_NAME {
        return bad("too long");
    }
    let Some((ty, slug)) = id.split_once(':') else {
        return bad("no `:`");
    };
    if ty.is_empty() || !ty.bytes().all(name_byte) {
        return bad("the type must be lowercase letters, digits, `-`, `_`, `.` or `/`");
    }
    if slug.is_empty() || slug.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("the slug must be non-empty, without spaces or control characters");
    }
    Ok(ty)
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b'/')
}

/// Checks a relation name (the keyword's name without the colon).
pub fn check_rel(rel: &str) -> Result<()> {
    if rel.is_empty() || rel.len() > MAX_NAME || !rel.bytes().all(|b| name_byte(b) || b == b'?') {
        return Err(StoreError::Invalid(format!(
            "invalid relation name {rel:?}: lowercase letters, digits, `-`, `_`, `.`, `/`"
        )));
    }
    Ok(())
}

/// Checks a type name (as in `store/list`).
pub fn check_type(ty: &str) -> Result<()> {
    if ty.is_empty() || ty.len() > MAX_NAME || !ty.bytes().all(name_byte) {
        return Err(StoreError::Invalid(format!("invalid type name {ty:?}")));
    }
    Ok(())
}

fn check_ref_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!("invalid ref name {name:?}")));
    }
    Ok(())
}

/// Checks a target: a local id, or a peer base URL and an id there.
pub fn check_target(t: &Target) -> Result<()> {
    check_id(&t.id)?;
    let scheme_ok =
        t.peer.is_empty() || t.peer.starts_with("https://") || t.peer.starts_with("http://");
    if !scheme_ok
        || t.peer.len() > MAX_NAME
        || t.peer.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(StoreError::Invalid(format!(
            "invalid peer {:?}: a federated target names its peer by base URL (https://...)",
            t.peer
        )));
    }
    Ok(())
}

/// A parsed, checked body: canonical text, CID and indexed fields.
pub struct Body {
    pub text: String,
    pub cid: String,
    pub fields: Vec<(String, String)>,
}

/// Checks that `text` is the canonical text of an SX dict and extracts its
/// CID and the fields indexed for filters (top-level keys whose value is a
/// scalar with a short canonical text).
pub fn check_body(text: String) -> Result<Body> {
    let v = sx::reader::read_one(&text, "<body>")
        .map_err(|e| StoreError::Invalid(format!("store: a body must be one SX dict: {e}")))?;
    let sx::Value::Dict(d) = &v else {
        return Err(StoreError::Invalid(format!(
            "store: a body must be an SX dict, found {}",
            v.type_of().as_str()
        )));
    };
    let canon = sx::printer::serialize(&v)
        .map_err(|e| StoreError::Invalid(format!("store: body cannot be serialized: {e}")))?;
    if canon != text {
        return Err(StoreError::Invalid(
            "store: body text is not in canonical form (serialize it first)".into(),
        ));
    }
    let mut fields = Vec::new();
    for (k, val) in d.iter() {
        if !matches!(
            val,
            sx::Value::Nil
                | sx::Value::Bool(_)
                | sx::Value::Int(_)
                | sx::Value::Float(_)
                | sx::Value::Str(_)
                | sx::Value::Keyword(_)
        ) {
            continue;
        }
        let (Ok(kt), Ok(vt)) = (sx::printer::serialize(k), sx::printer::serialize(val)) else {
            continue;
        };
        if kt.len() <= MAX_FIELD && vt.len() <= MAX_FIELD {
            fields.push((kt, vt));
        }
    }
    let cid = crate::cid_of_canonical(&text);
    Ok(Body { text, cid, fields })
}

fn rows_to_objects(rows: Vec<Row>) -> Result<Vec<Object>> {
    rows.into_iter()
        .map(|mut r| {
            Ok(Object {
                id: take(&mut r, 0)?.text()?,
                rev: take(&mut r, 1)?.int()?,
                cid: take(&mut r, 2)?.text()?,
                body: take(&mut r, 3)?.text()?,
                at: take(&mut r, 4)?.int()?,
            })
        })
        .collect()
}

pub async fn get_async<T: AsyncTx + ?Sized>(tx: &mut T, id: &str) -> Result<Option<Object>> {
    check_id(id)?;
    let row = tx
        .query_first(
            "SELECT id, rev, cid, body, at FROM objects WHERE id = ?1 AND body IS NOT NULL",
            &[Param::Text(id)],
        )
        .await?;
    Ok(rows_to_objects(row.into_iter().collect())?
        .into_iter()
        .next())
}

/// [`get_async`] on a blocking connection.
pub fn get(tx: &mut dyn Tx, id: &str) -> Result<Option<Object>> {
    ready(get_async(tx, id))
}

pub async fn get_by_cid_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    cid: &str,
) -> Result<Option<Object>> {
    let rows = tx
        .query(
            "SELECT id, rev, cid, body, at FROM revisions WHERE cid = ?1 ORDER BY id, rev LIMIT 1",
            &[Param::Text(cid)],
        )
        .await?;
    Ok(rows_to_objects(rows)?.into_iter().next())
}

/// [`get_by_cid_async`] on a blocking connection.
pub fn get_by_cid(tx: &mut dyn Tx, cid: &str) -> Result<Option<Object>> {
    ready(get_by_cid_async(tx, cid))
}

pub async fn history_async<T: AsyncTx + ?Sized>(tx: &mut T, id: &str) -> Result<Vec<Revision>> {
    check_id(id)?;
    let rows = tx
        .query(
            "SELECT rev, cid, body, at FROM revisions WHERE id = ?1 ORDER BY rev",
            &[Param::Text(id)],
        )
        .await?;
    rows.into_iter()
        .map(|mut r| {
            Ok(Revision {
                rev: take(&mut r, 0)?.int()?,
                cid: take(&mut r, 1)?.opt_text()?,
                body: take(&mut r, 2)?.opt_text()?,
                at: take(&mut r, 3)?.int()?,
            })
        })
        .collect()
}

/// [`history_async`] on a blocking connection.
pub fn history(tx: &mut dyn Tx, id: &str) -> Result<Vec<Revision>> {
    ready(history_async(tx, id))
}

/// The current revision number and CID (None when deleted) of an object
/// row, locked for update on PostgreSQL.
async fn current<T: AsyncTx + ?Sized>(
    tx: &mut T,
    id: &str,
) -> Result<Option<(i64, Option<String>)>> {
    let sql = if tx.pg() {
        "SELECT rev, cid FROM objects WHERE id = ?1 FOR UPDATE"
    } else {
        "SELECT rev, cid FROM objects WHERE id = ?1"
    };
    match tx.query_first(sql, &[Param::Text(id)]).await? {
        None => Ok(None),
        Some(mut r) => Ok(Some((
            take(&mut r, 0)?.int()?,
            take(&mut r, 1)?.opt_text()?,
        ))),
    }
}

fn check_expect(id: &str, expect: &Expect, live: Option<&str>) -> Result<()> {
    let fail = |msg: String| Err(StoreError::conflict(id, msg, live.map(str::to_owned)));
    match (expect, live) {
        (Expect::Any, _) => Ok(()),
        (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => fail(format!("{id} already exists")),
        (Expect::Exists, Some(_)) => Ok(()),
        (Expect::Exists, None) => Err(StoreError::NotFound(id.to_owned())),
        (Expect::Cid(c), Some(l)) if c == l => Ok(()),
        (Expect::Cid(c), Some(l)) => fail(format!("expected revision {c}, but it is now {l}")),
        (Expect::Cid(c), None) => fail(format!("expected revision {c}, but it does not exist")),
    }
}

/// Writes a new revision of `id` with `body` if `expect` holds. Writing
/// the body the object already has changes nothing and returns it.
pub async fn put_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    id: &str,
    body: &Body,
    expect: &Expect,
    at: i64,
) -> Result<Written> {
    let ty = check_id(id)?;
    let cur = current(tx, id).await?;
    let live = cur.as_ref().and_then(|(_, c)| c.as_deref());
    check_expect(id, expect, live)?;
    if let (Some((rev, _)), Some(l)) = (&cur, live) {
        if l == body.cid {
            return Ok(Written {
                id: id.to_owned(),
                rev: *rev,
                cid: Some(body.cid.clone()),
            });
        }
    }
    let rev = cur.as_ref().map_or(0, |(r, _)| *r) + 1;
    let p = [
        Param::Text(id),
        Param::Text(ty),
        Param::Int(rev),
        Param::Text(&body.cid),
        Param::Text(&body.text),
        Param::Int(at),
    ];
    if cur.is_some() {
        tx.exec(
            "UPDATE objects SET type = ?2, rev = ?3, cid = ?4, body = ?5, at = ?6 WHERE id = ?1",
            &p,
        )
        .await?;
        tx.exec("DELETE FROM fields WHERE id = ?1", &[Param::Text(id)])
            .await?;
    } else {
        tx.exec(
            "INSERT INTO objects (id, type, rev, cid, body, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &p,
        )
        .await?;
    }
    tx.exec(
        "INSERT INTO revisions (id, rev, cid, body, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[p[0], p[2], p[3], p[4], p[5]],
    )
    .await?;
    for (k, v) in &body.fields {
        tx.exec(
            "INSERT INTO fields (id, type, key, value) VALUES (?1, ?2, ?3, ?4)",
            &[
                Param::Text(id),
                Param::Text(ty),
                Param::Text(k),
                Param::Text(v),
            ],
        )
        .await?;
    }
    Ok(Written {
        id: id.to_owned(),
        rev,
        cid: Some(body.cid.clone()),
    })
}

/// [`put_async`] on a blocking connection.
pub fn put(tx: &mut dyn Tx, id: &str, body: &Body, expect: &Expect, at: i64) -> Result<Written> {
    ready(put_async(tx, id, body, expect, at))
}

/// Deletes `id` (a tombstone revision; history is kept) if `expect` holds.
/// Deleting what does not exist is `NotFound` unless `expect` is `Any`.
pub async fn delete_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    id: &str,
    expect: &Expect,
    at: i64,
) -> Result<Option<Written>> {
    check_id(id)?;
    let cur = current(tx, id).await?;
    let live = cur.as_ref().and_then(|(_, c)| c.as_deref());
    check_expect(id, expect, live)?;
    let Some((rev, Some(_))) = cur else {
        return match expect {
            Expect::Any | Expect::Absent => Ok(None),
            _ => Err(StoreError::NotFound(id.to_owned())),
        };
    };
    let rev = rev + 1;
    tx.exec(
        "UPDATE objects SET rev = ?2, cid = NULL, body = NULL, at = ?3 WHERE id = ?1",
        &[Param::Text(id), Param::Int(rev), Param::Int(at)],
    )
    .await?;
    tx.exec(
        "INSERT INTO revisions (id, rev, cid, body, at) VALUES (?1, ?2, NULL, NULL, ?3)",
        &[Param::Text(id), Param::Int(rev), Param::Int(at)],
    )
    .await?;
    tx.exec("DELETE FROM fields WHERE id = ?1", &[Param::Text(id)])
        .await?;
    Ok(Some(Written {
        id: id.to_owned(),
        rev,
        cid: None,
    }))
}

/// [`delete_async`] on a blocking connection.
pub fn delete(tx: &mut dyn Tx, id: &str, expect: &Expect, at: i64) -> Result<Option<Written>> {
    ready(delete_async(tx, id, expect, at))
}

fn limit_of(limit: Option<usize>) -> Result<i64> {
    let n = limit.unwrap_or(50);
    if n == 0 || n > MAX_LIMIT {
        return Err(StoreError::Invalid(format!(
            "store: limit must be between 1 and {MAX_LIMIT}, got {n}"
        )));
    }
    Ok(n as i64)
}

/// Adds a parameter and returns its placeholder.
fn bind<'a>(params: &mut Vec<Param<'a>>, p: Param<'a>) -> String {
    params.push(p);
    format!("?{}", params.len())
}

/// Lists live objects of one type in id order, `limit` at a time after
/// the cursor `after`, keeping those whose indexed fields equal every
/// filter and, if given, that have the relation.
pub async fn list_async<T: AsyncTx + ?Sized>(tx: &mut T, q: &ListQuery) -> Result<Page<Object>> {
    check_type(&q.type_name)?;
    let limit = limit_of(q.limit)?;
    let mut params: Vec<Param<'_>> = Vec::new();
    // With a relation condition the relation's index drives the query:
    // its source (or target) column is in id order, and joins the object.
    // `CROSS JOIN` makes SQLite keep that order (PostgreSQL plans freely).
    let (mut sql, key) = match &q.related {
        None => (
            String::from("SELECT o.id, o.rev, o.cid, o.body, o.at FROM objects o"),
            "o.id",
        ),
        Some(r) => {
            check_rel(&r.rel)?;
            check_target(&r.target)?;
            match r.dir {
                Dir::Out => (
                    String::from(
                        "SELECT o.id, o.rev, o.cid, o.body, o.at FROM relations r \
                         CROSS JOIN objects o",
                    ),
                    "r.src",
                ),
                Dir::In => {
                    if !r.target.peer.is_empty() {
                        return Err(StoreError::Invalid(
                            "store: incoming relations come from local objects only".into(),
                        ));
                    }
                    (
                        String::from(
                            "SELECT o.id, o.rev, o.cid, o.body, o.at FROM relations r \
                             CROSS JOIN objects o",
                        ),
                        "r.dst",
                    )
                }
            }
        }
    };
    for (i, (k, v)) in q.filters.iter().enumerate() {
        let a = bind(&mut params, Param::Text(k));
        let b = bind(&mut params, Param::Text(v));
        sql.push_str(&format!(
            " JOIN fields f{i} ON f{i}.id = o.id AND f{i}.type = o.type \
             AND f{i}.key = {a} AND f{i}.value = {b}"
        ));
    }
    sql.push_str(" WHERE");
    if let Some(r) = &q.related {
        match r.dir {
            Dir::Out => {
                let peer = bind(&mut params, Param::Text(&r.target.peer));
                let dst = bind(&mut params, Param::Text(&r.target.id));
                let rel = bind(&mut params, Param::Text(&r.rel));
                sql.push_str(&format!(
                    " o.id = r.src AND r.peer = {peer} AND r.dst = {dst} AND r.rel = {rel} AND"
                ));
            }
            Dir::In => {
                let src = bind(&mut params, Param::Text(&r.target.id));
                let rel = bind(&mut params, Param::Text(&r.rel));
                sql.push_str(&format!(
                    " o.id = r.dst AND r.src = {src} AND r.rel = {rel} AND r.peer = '' AND"
                ));
            }
        }
    }
    let t = bind(&mut params, Param::Text(&q.type_name));
    sql.push_str(&format!(" o.type = {t} AND o.body IS NOT NULL"));
    if let Some(after) = &q.after {
        let a = bind(&mut params, Param::Text(after));
        sql.push_str(&format!(" AND {key} > {a}"));
    }
    let l = bind(&mut params, Param::Int(limit));
    sql.push_str(&format!(" ORDER BY {key} LIMIT {l}"));
    let items = rows_to_objects(tx.query(&sql, &params).await?)?;
    let next = if items.len() as i64 == limit {
        items.last().map(|o| o.id.clone())
    } else {
        None
    };
    Ok(Page { items, next })
}

/// [`list_async`] on a blocking connection.
pub fn list(tx: &mut dyn Tx, q: &ListQuery) -> Result<Page<Object>> {
    ready(list_async(tx, q))
}

pub async fn relate_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    src: &str,
    rel: &str,
    to: &Target,
    at: i64,
) -> Result<bool> {
    check_id(src)?;
    check_rel(rel)?;
    check_target(to)?;
    let n = tx
        .exec(
            "INSERT INTO relations (src, rel, peer, dst, at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT DO NOTHING",
            &[
                Param::Text(src),
                Param::Text(rel),
                Param::Text(&to.peer),
                Param::Text(&to.id),
                Param::Int(at),
            ],
        )
        .await?;
    Ok(n > 0)
}

/// [`relate_async`] on a blocking connection.
pub fn relate(tx: &mut dyn Tx, src: &str, rel: &str, to: &Target, at: i64) -> Result<bool> {
    ready(relate_async(tx, src, rel, to, at))
}

pub async fn unrelate_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    src: &str,
    rel: &str,
    to: &Target,
) -> Result<bool> {
    check_id(src)?;
    check_rel(rel)?;
    check_target(to)?;
    let n = tx
        .exec(
            "DELETE FROM relations WHERE src = ?1 AND rel = ?2 AND peer = ?3 AND dst = ?4",
            &[
                Param::Text(src),
                Param::Text(rel),
                Param::Text(&to.peer),
                Param::Text(&to.id),
            ],
        )
        .await?;
    Ok(n > 0)
}

/// [`unrelate_async`] on a blocking connection.
pub fn unrelate(tx: &mut dyn Tx, src: &str, rel: &str, to: &Target) -> Result<bool> {
    ready(unrelate_async(tx, src, rel, to))
}

/// Relations of `q.id` named `q.rel`: outgoing (targets, ordered by peer
/// then id) or incoming (sources, ordered by id), keyset paginated.
pub async fn related_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    q: &RelatedQuery,
) -> Result<Page<Target>> {
    check_rel(&q.rel)?;
    let limit = limit_of(q.limit)?;
    let rows = match q.dir {
        Dir::Out => {
            check_id(&q.id)?;
            match &q.after {
                Some(t) => {
                    tx.query(
                        "SELECT peer, dst FROM relations WHERE src = ?1 AND rel = ?2 \
                     AND (peer > ?3 OR (peer = ?3 AND dst > ?4)) ORDER BY peer, dst LIMIT ?5",
                        &[
                            Param::Text(&q.id),
                            Param::Text(&q.rel),
                            Param::Text(&t.peer),
                            Param::Text(&t.id),
                            Param::Int(limit),
                        ],
                    )
                    .await?
                }
                None => {
                    tx.query(
                        "SELECT peer, dst FROM relations WHERE src = ?1 AND rel = ?2 \
                     ORDER BY peer, dst LIMIT ?3",
                        &[Param::Text(&q.id), Param::Text(&q.rel), Param::Int(limit)],
                    )
                    .await?
                }
            }
        }
        Dir::In => {
            check_target(&Target {
                peer: q.peer.clone(),
                id: q.id.clone(),
            })?;
            let after = q.after.as_ref().map_or("", |t| t.id.as_str());
            tx.query(
                "SELECT '' AS peer, src FROM relations WHERE peer = ?1 AND dst = ?2 AND rel = ?3 \
                 AND src > ?4 ORDER BY src LIMIT ?5",
                &[
                    Param::Text(&q.peer),
                    Param::Text(&q.id),
                    Param::Text(&q.rel),
                    Param::Text(after),
                    Param::Int(limit),
                ],
            )
            .await?
        }
    };
    let items: Vec<Target> = rows
        .into_iter()
        .map(|mut r| {
            Ok(Target {
                peer: take(&mut r, 0)?.text()?,
                id: take(&mut r, 1)?.text()?,
            })
        })
        .collect::<Result<_>>()?;
    let next = if items.len() as i64 == limit {
        items.last().cloned()
    } else {
        None
    };
    Ok(Page { items, next })
}

/// [`related_async`] on a blocking connection.
pub fn related(tx: &mut dyn Tx, q: &RelatedQuery) -> Result<Page<Target>> {
    ready(related_async(tx, q))
}

/// How many relations named `rel` leave (Out) or reach (In) `id`.
pub async fn count_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    id: &str,
    peer: &str,
    rel: &str,
    dir: Dir,
) -> Result<i64> {
    check_rel(rel)?;
    let rows = match dir {
        Dir::Out => {
            check_id(id)?;
            tx.query(
                "SELECT COUNT(*) FROM relations WHERE src = ?1 AND rel = ?2",
                &[Param::Text(id), Param::Text(rel)],
            )
            .await?
        }
        Dir::In => {
            tx.query(
                "SELECT COUNT(*) FROM relations WHERE peer = ?1 AND dst = ?2 AND rel = ?3",
                &[Param::Text(peer), Param::Text(id), Param::Text(rel)],
            )
            .await?
        }
    };
    match rows.into_iter().next() {
        Some(mut r) => take(&mut r, 0)?.int(),
        None => Ok(0),
    }
}

/// [`count_async`] on a blocking connection.
pub fn count(tx: &mut dyn Tx, id: &str, peer: &str, rel: &str, dir: Dir) -> Result<i64> {
    ready(count_async(tx, id, peer, rel, dir))
}

pub async fn get_ref_async<T: AsyncTx + ?Sized>(tx: &mut T, name: &str) -> Result<Option<String>> {
    check_ref_name(name)?;
    let sql = if tx.pg() {
        "SELECT value FROM refs WHERE name = ?1 FOR UPDATE"
    } else {
        "SELECT value FROM refs WHERE name = ?1"
    };
    match tx
        .query(sql, &[Param::Text(name)])
        .await?
        .into_iter()
        .next()
    {
        Some(mut r) => Ok(Some(take(&mut r, 0)?.text()?)),
        None => Ok(None),
    }
}

/// [`get_ref_async`] on a blocking connection.
pub fn get_ref(tx: &mut dyn Tx, name: &str) -> Result<Option<String>> {
    ready(get_ref_async(tx, name))
}

/// Sets ref `name` from `expected` (None: must be absent) to `new`
/// (None: delete), or fails with a conflict carrying its current value.
pub async fn ref_cas_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    name: &str,
    expected: Option<&str>,
    new: Option<&str>,
    at: i64,
) -> Result<()> {
    let cur = get_ref_async(tx, name).await?;
    if cur.as_deref() != expected {
        return Err(StoreError::conflict(
            format!("ref {name}"),
            match (&cur, expected) {
                (None, _) => "the ref does not exist".to_owned(),
                (Some(c), None) => format!("the ref already exists (it is {c})"),
                (Some(c), Some(e)) => format!("expected {e}, but it is {c}"),
            },
            cur,
        ));
    }
    match (cur.is_some(), new) {
        (false, None) => {}
        (true, None) => {
            tx.exec("DELETE FROM refs WHERE name = ?1", &[Param::Text(name)])
                .await?;
        }
        (false, Some(v)) => {
            tx.exec(
                "INSERT INTO refs (name, value, at) VALUES (?1, ?2, ?3)",
                &[Param::Text(name), Param::Text(v), Param::Int(at)],
            )
            .await?;
        }
        (true, Some(v)) => {
            tx.exec(
                "UPDATE refs SET value = ?2, at = ?3 WHERE name = ?1",
                &[Param::Text(name), Param::Text(v), Param::Int(at)],
            )
            .await?;
        }
    }
    Ok(())
}

/// [`ref_cas_async`] on a blocking connection.
pub fn ref_cas(
    tx: &mut dyn Tx,
    name: &str,
    expected: Option<&str>,
    new: Option<&str>,
    at: i64,
) -> Result<()> {
    ready(ref_cas_async(tx, name, expected, new, at))
}

pub async fn refs_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    prefix: &str,
) -> Result<Vec<(String, String)>> {
    let rows = tx
        .query(
            "SELECT name, value FROM refs WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
            &[Param::Text(prefix)],
        )
        .await?;
    rows.into_iter()
        .map(|mut r| Ok((take(&mut r, 0)?.text()?, take(&mut r, 1)?.text()?)))
        .collect()
}

/// [`refs_async`] on a blocking connection.
pub fn refs(tx: &mut dyn Tx, prefix: &str) -> Result<Vec<(String, String)>> {
    ready(refs_async(tx, prefix))
}

pub async fn send_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    peer: &str,
    message: &str,
    at: i64,
) -> Result<()> {
    check_target(&Target {
        peer: peer.to_owned(),
        id: "peer:x".to_owned(),
    })?;
    if peer.is_empty() {
        return Err(StoreError::Invalid("store: send needs a peer URL".into()));
    }
    tx.exec(
        "INSERT INTO outbox (peer, message, at) VALUES (?1, ?2, ?3)",
        &[Param::Text(peer), Param::Text(message), Param::Int(at)],
    )
    .await?;
    Ok(())
}

/// [`send_async`] on a blocking connection.
pub fn send(tx: &mut dyn Tx, peer: &str, message: &str, at: i64) -> Result<()> {
    ready(send_async(tx, peer, message, at))
}

pub async fn outbox_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    after: i64,
    limit: Option<usize>,
) -> Result<Vec<OutboxItem>> {
    let limit = limit_of(limit)?;
    let rows = tx
        .query(
            "SELECT seq, peer, message, at FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            &[Param::Int(after), Param::Int(limit)],
        )
        .await?;
    rows.into_iter()
        .map(|mut r| {
            Ok(OutboxItem {
                seq: take(&mut r, 0)?.int()?,
                peer: take(&mut r, 1)?.text()?,
                message: take(&mut r, 2)?.text()?,
                at: take(&mut r, 3)?.int()?,
            })
        })
        .collect()
}

/// [`outbox_async`] on a blocking connection.
pub fn outbox(tx: &mut dyn Tx, after: i64, limit: Option<usize>) -> Result<Vec<OutboxItem>> {
    ready(outbox_async(tx, after, limit))
}

pub async fn outbox_ack_async<T: AsyncTx + ?Sized>(tx: &mut T, seq: i64) -> Result<bool> {
    Ok(tx
        .exec("DELETE FROM outbox WHERE seq = ?1", &[Param::Int(seq)])
        .await?
        > 0)
}

/// [`outbox_ack_async`] on a blocking connection.
pub fn outbox_ack(tx: &mut dyn Tx, seq: i64) -> Result<bool> {
    ready(outbox_ack_async(tx, seq))
}

/// Applies effects in order inside the caller's transaction.
pub async fn apply_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    effects: &[Effect],
    at: i64,
) -> Result<Vec<EffectResult>> {
    let mut out = Vec::with_capacity(effects.len());
    for e in effects {
        out.push(match e {
            Effect::Put { id, body, expect } => {
                let b = check_body(body.clone())?;
                EffectResult::Written(put_async(tx, id, &b, expect, at).await?)
            }
            Effect::Delete { id, expect } => match delete_async(tx, id, expect, at).await? {
                Some(w) => EffectResult::Written(w),
                None => EffectResult::Done(false),
            },
            Effect::Relate { src, rel, to } => {
                EffectResult::Done(relate_async(tx, src, rel, to, at).await?)
            }
            Effect::Unrelate { src, rel, to } => {
                EffectResult::Done(unrelate_async(tx, src, rel, to).await?)
            }
            Effect::RefCas {
                name,
                expected,
                new,
            } => {
                ref_cas_async(tx, name, expected.as_deref(), new.as_deref(), at).await?;
                EffectResult::Done(true)
            }
            Effect::Send { peer, message } => {
                send_async(tx, peer, message, at).await?;
                EffectResult::Done(true)
            }
        });
    }
    Ok(out)
}

/// [`apply_async`] on a blocking connection.
pub fn apply(tx: &mut dyn Tx, effects: &[Effect], at: i64) -> Result<Vec<EffectResult>> {
    ready(apply_async(tx, effects, at))
}
