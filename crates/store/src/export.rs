//! Export and import: the whole store as a stream of SX forms, one a line.
//!
//! ```text
//! (rose-ash-store :version 1)
//! (object "post:a" (1 "bafk..." 1700000000000 {:title "A"}) (2 nil 1700000000500 nil))
//! (relation "post:a" "tagged" "" "tag:x" 1700000000000)
//! (ref "main" "bafk..." 1700000000000)
//! (record "password" "member:a" "$argon2id$..." nil 1700000000000)
//! (end :objects 1 :relations 1 :refs 1 :records 1)
//! ```
//!
//! An object line holds every revision `(rev cid at body)` in order; a
//! deletion has nil CID and body. Objects are in id order, relations in
//! (src, rel, peer, dst) order, refs in name order,
//! durable records in (ns, key) order (`:records` is left out of the end
//! line when there are none), so the same store gives
//! the same bytes from either backend.
//!
//! Import reads and checks the whole file first (syntax, ids, revision
//! numbering, every CID against its body, the closing counts), so bad input
//! is rejected with its position before anything is written. It then
//! writes in batches, each one transaction holding whole objects, so a
//! killed import leaves each object, relation and ref either fully there or
//! absent. Running the same import again finishes the job: records already
//! in the store are skipped, and a store holding anything that differs from
//! the file is refused.

use std::collections::HashSet;
use std::io::Write;

use sx::Value;

use crate::db::{Param, Tx, take};
use crate::error::{Result, StoreError};
use crate::{Store, ops};

/// The export format's version.
pub const FORMAT_VERSION: i64 = 1;
/// Records per import transaction (an object counts once per revision).
const BATCH: usize = 500;
/// Rows fetched per export query.
const PAGE: i64 = 1000;

/// How many records an export wrote or an import read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub objects: u64,
    pub revisions: u64,
    pub relations: u64,
    pub refs: u64,
    /// Durable records (`kv.rs`).
    pub records: u64,
}

/// One revision of an exported object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rev {
    rev: i64,
    cid: Option<String>,
    at: i64,
    body: Option<String>,
}

/// One record of the stream, `Send`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Object {
        id: String,
        revs: Vec<Rev>,
    },
    Relation {
        src: String,
        rel: String,
        peer: String,
        dst: String,
        at: i64,
    },
    Ref {
        name: String,
        value: String,
        at: i64,
    },
    /// A durable record (`kv.rs`); expiring ones are not exported.
    Kv {
        ns: String,
        key: String,
        value: String,
        tag: Option<String>,
        at: i64,
    },
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    sx::printer::write_string(&mut out, s);
    out
}

impl Record {
    /// The record's line (without newline), in canonical form.
    fn line(&self) -> String {
        match self {
            Record::Object { id, revs } => {
                let mut s = format!("(object {}", quoted(id));
                for r in revs {
                    s.push_str(&format!(
                        " ({} {} {} {})",
                        r.rev,
                        r.cid.as_deref().map_or("nil".to_owned(), quoted),
                        r.at,
                        r.body.as_deref().unwrap_or("nil")
                    ));
                }
                s.push(')');
                s
            }
            Record::Relation {
                src,
                rel,
                peer,
                dst,
                at,
            } => format!(
                "(relation {} {} {} {} {at})",
                quoted(src),
                quoted(rel),
                quoted(peer),
                quoted(dst)
            ),
            Record::Ref { name, value, at } => {
                format!("(ref {} {} {at})", quoted(name), quoted(value))
            }
            Record::Kv {
                ns,
                key,
                value,
                tag,
                at,
            } => format!(
                "(record {} {} {} {} {at})",
                quoted(ns),
                quoted(key),
                quoted(value),
                tag.as_deref().map_or("nil".to_owned(), quoted)
            ),
        }
    }

    fn weight(&self) -> usize {
        match self {
            Record::Object { revs, .. } => revs.len().max(1),
            _ => 1,
        }
    }
}

fn header() -> String {
    format!("(rose-ash-store :version {FORMAT_VERSION})")
}

fn end_line(c: &Counts) -> String {
    let mut s = format!(
        "(end :objects {} :relations {} :refs {}",
        c.objects, c.relations, c.refs
    );
    // Written only when there are records, so stores without any export
    // exactly as before records existed.
    if c.records > 0 {
        s.push_str(&format!(" :records {}", c.records));
    }
    s.push(')');
    s
}

/// Reads every record of the store, in export order, inside one snapshot.
fn each_record(tx: &mut dyn Tx, f: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
    // Objects: revisions in (id, rev) order, grouped by id.
    let (mut after_id, mut after_rev) = (String::new(), 0i64);
    let mut cur: Option<(String, Vec<Rev>)> = None;
    loop {
        let rows = tx.query(
            "SELECT id, rev, cid, body, at FROM revisions \
             WHERE id > ?1 OR (id = ?1 AND rev > ?2) ORDER BY id, rev LIMIT ?3",
            &[
                Param::Text(&after_id),
                Param::Int(after_rev),
                Param::Int(PAGE),
            ],
        )?;
        let n = rows.len();
        for mut r in rows {
            let id = take(&mut r, 0)?.text()?;
            let rev = Rev {
                rev: take(&mut r, 1)?.int()?,
                cid: take(&mut r, 2)?.opt_text()?,
                body: take(&mut r, 3)?.opt_text()?,
                at: take(&mut r, 4)?.int()?,
            };
            after_rev = rev.rev;
            match &mut cur {
                Some((cid, revs)) if *cid == id => revs.push(rev),
                _ => {
                    if let Some((id, revs)) = cur.take() {
                        f(Record::Object { id, revs })?;
                    }
                    cur = Some((id.clone(), vec![rev]));
                }
            }
            after_id = id;
        }
        if (n as i64) < PAGE {
            break;
        }
    }
    if let Some((id, revs)) = cur.take() {
        f(Record::Object { id, revs })?;
    }
    // Relations in key order.
    let mut after = (String::new(), String::new(), String::new(), String::new());
    let mut first = true;
    loop {
        let rows = if first {
            tx.query(
                "SELECT src, rel, peer, dst, at FROM relations \
                 ORDER BY src, rel, peer, dst LIMIT ?1",
                &[Param::Int(PAGE)],
            )?
        } else {
            tx.query(
                "SELECT src, rel, peer, dst, at FROM relations \
                 WHERE (src, rel, peer, dst) > (?1, ?2, ?3, ?4) \
                 ORDER BY src, rel, peer, dst LIMIT ?5",
                &[
                    Param::Text(&after.0),
                    Param::Text(&after.1),
                    Param::Text(&after.2),
                    Param::Text(&after.3),
                    Param::Int(PAGE),
                ],
            )?
        };
        first = false;
        let n = rows.len();
        for mut r in rows {
            let rec = Record::Relation {
                src: take(&mut r, 0)?.text()?,
                rel: take(&mut r, 1)?.text()?,
                peer: take(&mut r, 2)?.text()?,
                dst: take(&mut r, 3)?.text()?,
                at: take(&mut r, 4)?.int()?,
            };
            if let Record::Relation {
                src,
                rel,
                peer,
                dst,
                ..
            } = &rec
            {
                after = (src.clone(), rel.clone(), peer.clone(), dst.clone());
            }
            f(rec)?;
        }
        if (n as i64) < PAGE {
            break;
        }
    }
    // Refs (few): all at once.
    for mut r in tx.query("SELECT name, value, at FROM refs ORDER BY name", &[])? {
        f(Record::Ref {
            name: take(&mut r, 0)?.text()?,
            value: take(&mut r, 1)?.text()?,
            at: take(&mut r, 2)?.int()?,
        })?;
    }
    for r in crate::kv::durable(tx)? {
        f(Record::Kv {
            ns: r.ns,
            key: r.key,
            value: r.value,
            tag: r.tag,
            at: r.at,
        })?;
    }
    Ok(())
}

/// Runs `f` in a read-only snapshot of the whole store.
fn snapshot<T>(store: &Store, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
    store.read_snapshot(|tx| {
        if tx.pg() {
            tx.exec(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                &[],
            )?;
        }
        f(tx)
    })
}

/// Writes the whole store to `out` (blocking).
pub fn export(store: &Store, out: &mut dyn Write) -> Result<Counts> {
    snapshot(store, |tx| {
        let mut c = Counts::default();
        writeln!(out, "{}", header())?;
        each_record(tx, &mut |r| {
            match &r {
                Record::Object { revs, .. } => {
                    c.objects += 1;
                    c.revisions += revs.len() as u64;
                }
                Record::Relation { .. } => c.relations += 1,
                Record::Ref { .. } => c.refs += 1,
                Record::Kv { .. } => c.records += 1,
            }
            writeln!(out, "{}", r.line())?;
            Ok(())
        })?;
        writeln!(out, "{}", end_line(&c))?;
        out.flush()?;
        Ok(c)
    })
}

/// The lines of every record in the store now.
fn store_lines(store: &Store) -> Result<HashSet<String>> {
    snapshot(store, |tx| {
        let mut set = HashSet::new();
        each_record(tx, &mut |r| {
            set.insert(r.line());
            Ok(())
        })?;
        Ok(set)
    })
}

// ---------------------------------------------------------------- reading

struct Reader<'a> {
    name: &'a str,
    text: &'a str,
}

impl Reader<'_> {
    fn error(&self, at: &Value, message: impl Into<String>) -> StoreError {
        let offset = match at {
            Value::List(l) => l.pos().offset,
            _ => 0,
        };
        StoreError::Import {
            position: sx::source::locate_text(self.name, self.text, offset).to_string(),
            message: message.into(),
        }
    }

    fn string(&self, form: &Value, v: Option<&Value>, what: &str) -> Result<String> {
        match v {
            Some(Value::Str(s)) => Ok(s.to_string()),
            _ => Err(self.error(form, format!("{what} must be a string"))),
        }
    }

    fn int(&self, form: &Value, v: Option<&Value>, what: &str) -> Result<i64> {
        match v {
            Some(Value::Int(i)) => Ok(*i),
            _ => Err(self.error(form, format!("{what} must be an integer"))),
        }
    }

    fn record(&self, form: &Value, items: &[Value]) -> Result<Record> {
        let head = items.first().and_then(Value::as_symbol).map(|s| s.as_str());
        let wrap = |e: StoreError| match e {
            StoreError::Invalid(m) => self.error(form, m),
            other => other,
        };
        match head {
            Some("object") => {
                let id = self.string(form, items.get(1), "the object id")?;
                ops::check_id(&id).map_err(wrap)?;
                let mut revs = Vec::new();
                for (i, r) in items.iter().skip(2).enumerate() {
                    let Value::List(l) = r else {
                        return Err(self.error(form, "a revision must be a list (rev cid at body)"));
                    };
                    let parts = l.to_vec();
                    if parts.len() != 4 {
                        return Err(self.error(r, "a revision is (rev cid at body)"));
                    }
                    let rev = self.int(r, parts.first(), "the revision number")?;
                    if rev != i as i64 + 1 {
                        return Err(self.error(
                            r,
                            format!("revision {rev} out of order: expected {}", i + 1),
                        ));
                    }
                    let at = self.int(r, parts.get(2), "the time")?;
                    let (cid, body) = match (parts.get(1), parts.get(3)) {
                        (Some(Value::Nil), Some(Value::Nil)) => (None, None),
                        (Some(Value::Str(c)), Some(b @ Value::Dict(_))) => {
                            let text = sx::printer::serialize(b)
                                .map_err(|e| self.error(r, format!("body: {e}")))?;
                            let real = crate::cid_of_canonical(&text);
                            if real != **c {
                                return Err(self.error(
                                    r,
                                    format!(
                                        "CID mismatch: the file says {c}, the body hashes to {real}"
                                    ),
                                ));
                            }
                            (Some(c.to_string()), Some(text))
                        }
                        _ => {
                            return Err(self.error(
                                r,
                                "a revision has a CID string and a dict body, or nil and nil (deleted)",
                            ));
                        }
                    };
                    revs.push(Rev { rev, cid, at, body });
                }
                if revs.is_empty() {
                    return Err(self.error(form, "an object needs at least one revision"));
                }
                Ok(Record::Object { id, revs })
            }
            Some("relation") => {
                if items.len() != 6 {
                    return Err(self.error(form, "a relation is (relation src rel peer dst at)"));
                }
                let src = self.string(form, items.get(1), "the source")?;
                let rel = self.string(form, items.get(2), "the relation name")?;
                let peer = self.string(form, items.get(3), "the peer")?;
                let dst = self.string(form, items.get(4), "the target")?;
                let at = self.int(form, items.get(5), "the time")?;
                ops::check_id(&src).map_err(wrap)?;
                ops::check_rel(&rel).map_err(wrap)?;
                ops::check_target(&crate::Target {
                    peer: peer.clone(),
                    id: dst.clone(),
                })
                .map_err(wrap)?;
                Ok(Record::Relation {
                    src,
                    rel,
                    peer,
                    dst,
                    at,
                })
            }
            Some("ref") => {
                if items.len() != 4 {
                    return Err(self.error(form, "a ref is (ref name value at)"));
                }
                Ok(Record::Ref {
                    name: self.string(form, items.get(1), "the ref name")?,
                    value: self.string(form, items.get(2), "the ref value")?,
                    at: self.int(form, items.get(3), "the time")?,
                })
            }
            Some("record") => {
                if items.len() != 6 {
                    return Err(self.error(form, "a record is (record ns key value tag at)"));
                }
                let tag = match items.get(4) {
                    Some(Value::Nil) => None,
                    other => Some(self.string(form, other, "the record tag")?),
                };
                let rec = crate::kv::Record {
                    ns: self.string(form, items.get(1), "the record namespace")?,
                    key: self.string(form, items.get(2), "the record key")?,
                    value: self.string(form, items.get(3), "the record value")?,
                    tag,
                    expires: None,
                    at: self.int(form, items.get(5), "the time")?,
                };
                // Checked now, so a bad name is refused before anything is written.
                crate::kv::check_record(&rec).map_err(wrap)?;
                Ok(Record::Kv {
                    ns: rec.ns,
                    key: rec.key,
                    value: rec.value,
                    tag: rec.tag,
                    at: rec.at,
                })
            }
            _ => Err(self.error(
                form,
                "expected (object ...), (relation ...), (ref ...), (record ...) or (end ...)",
            )),
        }
    }
}

/// Reads and checks a whole export file; nothing touches the store.
fn parse(text: &str, name: &str) -> Result<(Vec<Record>, Counts)> {
    let forms = sx::reader::read_all(text, name, false).map_err(|e| StoreError::Import {
        position: e.location.to_string(),
        message: e.kind.to_string(),
    })?;
    let rd = Reader { name, text };
    let at_end = || StoreError::Import {
        position: sx::source::locate_text(
            name,
            text,
            u32::try_from(text.len()).unwrap_or(u32::MAX),
        )
        .to_string(),
        message: "the file is truncated: it does not close with (end ...)".into(),
    };
    let mut it = forms.iter();
    let first = it.next().ok_or_else(at_end)?;
    match first.as_list().map(|l| l.to_vec()).as_deref() {
        Some([Value::Symbol(h), Value::Keyword(k), Value::Int(v), ..])
            if h.as_str() == "rose-ash-store" && k.as_str() == "version" =>
        {
            if *v != FORMAT_VERSION {
                return Err(rd.error(
                    first,
                    format!(
                        "format version {v} is not supported (this program reads {FORMAT_VERSION})"
                    ),
                ));
            }
        }
        _ => {
            return Err(rd.error(
                first,
                "not a Rose Ash store export: expected (rose-ash-store :version 1)",
            ));
        }
    }
    let mut records = Vec::new();
    let mut counts = Counts::default();
    let mut seen = HashSet::new();
    let mut ended = false;
    for form in it {
        if ended {
            return Err(rd.error(form, "nothing may follow (end ...)"));
        }
        let Some(items) = form.as_list().map(|l| l.to_vec()) else {
            return Err(rd.error(form, "expected a list form"));
        };
        if items.first().and_then(Value::as_symbol).map(|s| s.as_str()) == Some("end") {
            let want = end_line(&counts);
            let got = sx::printer::serialize(form).unwrap_or_default();
            if got != want {
                return Err(rd.error(
                    form,
                    format!("the closing counts do not match the file: it holds {want}"),
                ));
            }
            ended = true;
            continue;
        }
        let rec = rd.record(form, &items)?;
        let key = match &rec {
            Record::Object { id, revs } => {
                counts.objects += 1;
                counts.revisions += revs.len() as u64;
                format!("o {id}")
            }
            Record::Relation {
                src,
                rel,
                peer,
                dst,
                ..
            } => {
                counts.relations += 1;
                format!("r {src} {rel} {peer} {dst}")
            }
            Record::Ref { name, .. } => {
                counts.refs += 1;
                format!("f {name}")
            }
            Record::Kv { ns, key, .. } => {
                counts.records += 1;
                format!("k {ns} {key}")
            }
        };
        if !seen.insert(key) {
            return Err(rd.error(form, "a duplicate of an earlier record"));
        }
        records.push(rec);
    }
    if !ended {
        return Err(at_end());
    }
    Ok((records, counts))
}

fn write_record(tx: &mut dyn Tx, r: &Record) -> Result<()> {
    match r {
        Record::Object { id, revs } => {
            let ty = ops::check_id(id)?;
            for v in revs {
                tx.exec(
                    "INSERT INTO revisions (id, rev, cid, body, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    &[
                        Param::Text(id),
                        Param::Int(v.rev),
                        v.cid.as_deref().map_or(Param::NullText, Param::Text),
                        v.body.as_deref().map_or(Param::NullText, Param::Text),
                        Param::Int(v.at),
                    ],
                )?;
            }
            let Some(last) = revs.last() else {
                return Ok(());
            };
            tx.exec(
                "INSERT INTO objects (id, type, rev, cid, body, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &[
                    Param::Text(id),
                    Param::Text(ty),
                    Param::Int(last.rev),
                    last.cid.as_deref().map_or(Param::NullText, Param::Text),
                    last.body.as_deref().map_or(Param::NullText, Param::Text),
                    Param::Int(last.at),
                ],
            )?;
            if let Some(body) = &last.body {
                for (k, v) in ops::check_body(body.clone())?.fields {
                    tx.exec(
                        "INSERT INTO fields (id, type, key, value) VALUES (?1, ?2, ?3, ?4)",
                        &[
                            Param::Text(id),
                            Param::Text(ty),
                            Param::Text(&k),
                            Param::Text(&v),
                        ],
                    )?;
                }
            }
        }
        Record::Relation {
            src,
            rel,
            peer,
            dst,
            at,
        } => {
            tx.exec(
                "INSERT INTO relations (src, rel, peer, dst, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                &[
                    Param::Text(src),
                    Param::Text(rel),
                    Param::Text(peer),
                    Param::Text(dst),
                    Param::Int(*at),
                ],
            )?;
        }
        Record::Ref { name, value, at } => {
            tx.exec(
                "INSERT INTO refs (name, value, at) VALUES (?1, ?2, ?3)",
                &[Param::Text(name), Param::Text(value), Param::Int(*at)],
            )?;
        }
        Record::Kv {
            ns,
            key,
            value,
            tag,
            at,
        } => {
            crate::kv::put(
                tx,
                &crate::kv::Record {
                    ns: ns.clone(),
                    key: key.clone(),
                    value: value.clone(),
                    tag: tag.clone(),
                    expires: None,
                    at: *at,
                },
            )?;
        }
    }
    Ok(())
}

/// Import progress: records written so far of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// Restores an export (`text`, named `name` in error positions) into
/// `store` (blocking). See the module docs for the guarantees.
pub fn import(
    store: &Store,
    text: &str,
    name: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<Counts> {
    let (records, counts) = parse(text, name)?;
    let existing = store_lines(store)?;
    let file_lines: HashSet<String> = records.iter().map(Record::line).collect();
    if let Some(extra) = existing.iter().find(|l| !file_lines.contains(*l)) {
        let mut shown: String = extra.chars().take(120).collect();
        if shown.len() < extra.len() {
            shown.push_str("...");
        }
        return Err(StoreError::Import {
            position: name.to_owned(),
            message: format!(
                "the store already holds data that is not in this file, so nothing was imported \
                 (import restores into an empty store, or finishes an interrupted import of the \
                 same file): {shown}"
            ),
        });
    }
    let todo: Vec<&Record> = records
        .iter()
        .filter(|r| !existing.contains(&r.line()))
        .collect();
    let total = todo.len() as u64;
    let mut done = 0u64;
    progress(Progress { done, total });
    let mut i = 0;
    while i < todo.len() {
        let mut weight = 0;
        let mut j = i;
        while j < todo.len() && (j == i || weight + todo.get(j).map_or(1, |r| r.weight()) <= BATCH)
        {
            weight += todo.get(j).map_or(1, |r| r.weight());
            j += 1;
        }
        let batch = todo.get(i..j).unwrap_or_default();
        store.write(|tx| {
            for r in batch {
                write_record(tx, r)?;
            }
            Ok(())
        })?;
        done += batch.len() as u64;
        i = j;
        progress(Progress { done, total });
    }
    Ok(counts)
}
