//! SX performs to store calls and back.
//!
//! The host, on the SX thread, turns a `(perform :store/... args)` into a
//! `Send` [`StoreOp`] with [`decode`], runs it with [`Store::execute`] on
//! any thread, and turns the [`OpResult`] back into an SX value with
//! [`encode`] (or a failure into a catchable error with [`error_value`]).
//! The operations and their arguments are listed in `docs/store.md`.

use sx::{Dict, Key, Value};

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::{AsyncTx, Store, now_ms, ops};

/// The SX library for the store (`lib/store/store.sx`): `deftype`, the
/// `store/...` wrappers, effect constructors and the behaviour driver.
pub const SX_LIBRARY: &str = include_str!("../../../lib/store/store.sx");

/// A store operation decoded from a perform; `Send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    Get(String),
    Object(String),
    ByCid(String),
    History(String),
    Put {
        id: String,
        body: String,
        expect: Expect,
    },
    Delete {
        id: String,
        expect: Expect,
    },
    List(ListQuery),
    Relate {
        src: String,
        rel: String,
        to: Target,
    },
    Unrelate {
        src: String,
        rel: String,
        to: Target,
    },
    Related(RelatedQuery),
    Count {
        id: String,
        peer: String,
        rel: String,
        dir: Dir,
    },
    Ref(String),
    RefCas {
        name: String,
        expected: Option<String>,
        new: Option<String>,
    },
    Apply(Vec<Effect>),
}

/// What an operation returned; `Send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Body(Option<String>),
    Object(Option<Object>),
    History(Vec<Revision>),
    Written(Option<Written>),
    Objects(Page<Object>),
    Targets(Page<Target>),
    Bool(bool),
    Int(i64),
    Ref(Option<String>),
    Applied(Vec<EffectResult>),
}

/// True when `op` is a keyword in the `store/` namespace.
pub fn is_store_op(op: &Value) -> bool {
    matches!(op, Value::Keyword(k) if k.as_str().starts_with("store/"))
}

fn invalid(op: &str, msg: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{op}: {msg}"))
}

fn arg<'a>(op: &str, args: &'a [Value], i: usize, what: &str) -> Result<&'a Value> {
    args.get(i)
        .ok_or_else(|| invalid(op, format!("missing argument {} ({what})", i + 1)))
}

fn string(op: &str, v: &Value, what: &str) -> Result<String> {
    match v {
        Value::Str(s) => Ok(s.to_string()),
        other => Err(invalid(
            op,
            format!("{what} must be a string, got {}", other.type_of().as_str()),
        )),
    }
}

/// A name given as a keyword (`:tagged`) or a string.
fn name(op: &str, v: &Value, what: &str) -> Result<String> {
    match v {
        Value::Keyword(k) => Ok(k.as_str().to_owned()),
        Value::Str(s) => Ok(s.to_string()),
        other => Err(invalid(
            op,
            format!(
                "{what} must be a keyword or string, got {}",
                other.type_of().as_str()
            ),
        )),
    }
}

fn opt_string(op: &str, v: Option<&Value>, what: &str) -> Result<Option<String>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => string(op, v, what).map(Some),
    }
}

fn opts<'a>(op: &str, args: &'a [Value], i: usize) -> Result<Option<&'a Dict>> {
    match args.get(i) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Dict(d)) => Ok(Some(d)),
        Some(other) => Err(invalid(
            op,
            format!("options must be a dict, got {}", other.type_of().as_str()),
        )),
    }
}

fn get<'a>(d: Option<&'a Dict>, k: &str) -> Option<&'a Value> {
    d.and_then(|d| d.get(&Value::kw(k)))
        .filter(|v| !matches!(v, Value::Nil))
}

fn canonical(op: &str, v: &Value, what: &str) -> Result<String> {
    sx::printer::serialize(v).map_err(|e| invalid(op, format!("{what}: {e}")))
}

fn body(op: &str, v: &Value) -> Result<String> {
    if !matches!(v, Value::Dict(_)) {
        return Err(invalid(
            op,
            format!("a body must be a dict, got {}", v.type_of().as_str()),
        ));
    }
    canonical(op, v, "body")
}

/// `:expect` in options: a CID string, `:absent`, `:exists` or nil (any).
fn expect(op: &str, v: Option<&Value>) -> Result<Expect> {
    match v {
        None | Some(Value::Nil) => Ok(Expect::Any),
        Some(Value::Str(c)) => Ok(Expect::Cid(c.to_string())),
        Some(Value::Keyword(k)) if k.as_str() == "absent" => Ok(Expect::Absent),
        Some(Value::Keyword(k)) if k.as_str() == "exists" => Ok(Expect::Exists),
        Some(Value::Keyword(k)) if k.as_str() == "any" => Ok(Expect::Any),
        Some(other) => Err(invalid(
            op,
            format!("`:expect` must be a CID string, :absent, :exists or :any, got {other}"),
        )),
    }
}

/// A target: an id string, or `{:peer "https://..." :id "type:slug"}`.
fn target(op: &str, v: &Value) -> Result<Target> {
    match v {
        Value::Str(s) => Ok(Target::local(s.to_string())),
        Value::Dict(d) => Ok(Target {
            peer: opt_string(op, get(Some(d), "peer"), ":peer")?.unwrap_or_default(),
            id: string(
                op,
                get(Some(d), "id").ok_or_else(|| invalid(op, "a target dict needs :id"))?,
                ":id",
            )?,
        }),
        other => Err(invalid(
            op,
            format!(
                "a target must be an id string or {{:peer url :id id}}, got {}",
                other.type_of().as_str()
            ),
        )),
    }
}

fn dir(op: &str, v: Option<&Value>) -> Result<Dir> {
    match v {
        None => Ok(Dir::Out),
        Some(Value::Keyword(k)) if k.as_str() == "out" => Ok(Dir::Out),
        Some(Value::Keyword(k)) if k.as_str() == "in" => Ok(Dir::In),
        Some(other) => Err(invalid(
            op,
            format!("`:dir` must be :out or :in, got {other}"),
        )),
    }
}

fn limit(op: &str, v: Option<&Value>) -> Result<Option<usize>> {
    match v {
        None => Ok(None),
        Some(Value::Int(n)) if *n > 0 => Ok(Some(usize::try_from(*n).unwrap_or(usize::MAX))),
        Some(other) => Err(invalid(
            op,
            format!("`:limit` must be a positive integer, got {other}"),
        )),
    }
}

fn effect(v: &Value) -> Result<Effect> {
    let op = "store/apply";
    let Value::Dict(d) = v else {
        return Err(invalid(
            op,
            format!("an effect must be a dict, got {}", v.type_of().as_str()),
        ));
    };
    let d = Some(d);
    let req = |k: &str| get(d, k).ok_or_else(|| invalid(op, format!("effect {v} needs :{k}")));
    let kind = name(op, req("effect")?, ":effect")?;
    Ok(match kind.as_str() {
        "create" | "update" | "put" => Effect::Put {
            id: string(op, req("id")?, ":id")?,
            body: body(op, req("body")?)?,
            expect: match (kind.as_str(), get(d, "expect")) {
                ("create", None) => Expect::Absent,
                ("update", None) => Expect::Exists,
                (_, e) => expect(op, e)?,
            },
        },
        "delete" => Effect::Delete {
            id: string(op, req("id")?, ":id")?,
            expect: match get(d, "expect") {
                None => Expect::Exists,
                e => expect(op, e)?,
            },
        },
        "relate" | "unrelate" => {
            let src = string(op, req("from")?, ":from")?;
            let rel = name(op, req("rel")?, ":rel")?;
            let to = target(op, req("to")?)?;
            if kind == "relate" {
                Effect::Relate { src, rel, to }
            } else {
                Effect::Unrelate { src, rel, to }
            }
        }
        "ref-cas" => Effect::RefCas {
            name: name(op, req("name")?, ":name")?,
            expected: opt_string(op, get(d, "expect"), ":expect")?,
            new: opt_string(op, get(d, "value"), ":value")?,
        },
        "send" => Effect::Send {
            peer: string(op, req("peer")?, ":peer")?,
            message: canonical(op, req("message")?, ":message")?,
        },
        other => {
            return Err(invalid(
                op,
                format!(
                    "unknown effect :{other} (create update put delete relate unrelate ref-cas send)"
                ),
            ));
        }
    })
}

/// Decodes a store perform. `op` is the keyword's name, with or without
/// the colon (`store/get`).
pub fn decode(op: &str, args: &[Value]) -> Result<StoreOp> {
    let op = op.strip_prefix(':').unwrap_or(op);
    let s = |i: usize, what: &str| arg(op, args, i, what).and_then(|v| string(op, v, what));
    Ok(match op {
        "store/get" => StoreOp::Get(s(0, "id")?),
        "store/object" => StoreOp::Object(s(0, "id")?),
        "store/by-cid" => StoreOp::ByCid(s(0, "cid")?),
        "store/history" => StoreOp::History(s(0, "id")?),
        "store/put" => {
            let o = opts(op, args, 2)?;
            StoreOp::Put {
                id: s(0, "id")?,
                body: body(op, arg(op, args, 1, "body")?)?,
                expect: expect(op, get(o, "expect"))?,
            }
        }
        "store/delete" => {
            let o = opts(op, args, 1)?;
            StoreOp::Delete {
                id: s(0, "id")?,
                expect: expect(op, get(o, "expect"))?,
            }
        }
        "store/list" => {
            let o = opts(op, args, 1)?;
            let mut filters = Vec::new();
            match get(o, "where") {
                None => {}
                Some(Value::Dict(w)) => {
                    for (k, v) in w.iter() {
                        filters.push((
                            canonical(op, k, ":where key")?,
                            canonical(op, v, ":where value")?,
                        ));
                    }
                }
                Some(other) => {
                    return Err(invalid(op, format!("`:where` must be a dict, got {other}")));
                }
            }
            let related = match get(o, "related") {
                None => None,
                Some(Value::Dict(r)) => {
                    let r = Some(r);
                    Some(RelatedFilter {
                        rel: name(
                            op,
                            get(r, "rel").ok_or_else(|| invalid(op, "`:related` needs :rel"))?,
                            ":rel",
                        )?,
                        target: target(
                            op,
                            get(r, "to").ok_or_else(|| invalid(op, "`:related` needs :to"))?,
                        )?,
                        dir: dir(op, get(r, "dir"))?,
                    })
                }
                Some(other) => {
                    return Err(invalid(
                        op,
                        format!("`:related` must be a dict, got {other}"),
                    ));
                }
            };
            StoreOp::List(ListQuery {
                type_name: name(op, arg(op, args, 0, "type")?, "type")?,
                filters,
                related,
                after: opt_string(op, get(o, "after"), ":after")?,
                limit: limit(op, get(o, "limit"))?,
            })
        }
        "store/relate" | "store/unrelate" => {
            let src = s(0, "from")?;
            let rel = name(op, arg(op, args, 1, "rel")?, "rel")?;
            let to = target(op, arg(op, args, 2, "to")?)?;
            if op == "store/relate" {
                StoreOp::Relate { src, rel, to }
            } else {
                StoreOp::Unrelate { src, rel, to }
            }
        }
        "store/related" => {
            let o = opts(op, args, 2)?;
            StoreOp::Related(RelatedQuery {
                id: s(0, "id")?,
                peer: opt_string(op, get(o, "peer"), ":peer")?.unwrap_or_default(),
                rel: name(op, arg(op, args, 1, "rel")?, "rel")?,
                dir: dir(op, get(o, "dir"))?,
                after: get(o, "after").map(|v| target(op, v)).transpose()?,
                limit: limit(op, get(o, "limit"))?,
            })
        }
        "store/count" => {
            let o = opts(op, args, 2)?;
            StoreOp::Count {
                id: s(0, "id")?,
                peer: opt_string(op, get(o, "peer"), ":peer")?.unwrap_or_default(),
                rel: name(op, arg(op, args, 1, "rel")?, "rel")?,
                dir: dir(op, get(o, "dir"))?,
            }
        }
        "store/ref" => StoreOp::Ref(name(op, arg(op, args, 0, "name")?, "name")?),
        "store/ref-cas" => StoreOp::RefCas {
            name: name(op, arg(op, args, 0, "name")?, "name")?,
            expected: opt_string(op, args.get(1), "expected")?,
            new: opt_string(op, args.get(2), "new")?,
        },
        "store/apply" => {
            let list = match arg(op, args, 0, "effects")? {
                Value::List(l) => l.to_vec(),
                Value::Nil => Vec::new(),
                other => {
                    return Err(invalid(
                        op,
                        format!("effects must be a list, got {}", other.type_of().as_str()),
                    ));
                }
            };
            StoreOp::Apply(list.iter().map(effect).collect::<Result<_>>()?)
        }
        other => {
            return Err(invalid(
                other,
                "unknown store operation (see docs/store.md for the list)",
            ));
        }
    })
}

impl Store {
    /// Runs a decoded operation. On PostgreSQL it is awaited on an async
    /// client (writes in one transaction). On SQLite, reads run as
    /// [`Store::read_op`] does (inline on an idle reader), writes on
    /// tokio's blocking pool.
    pub async fn execute(&self, op: StoreOp) -> Result<OpResult> {
        if op.is_read() {
            if let Some(pool) = self.async_pool() {
                return crate::pg_read!(pool, |tx| execute_read_async(&mut tx, op));
            }
            return self
                .read_op(move |tx| crate::db::ready(execute_read_async(tx, op)))
                .await;
        }
        if let Some(pool) = self.async_pool() {
            let w = Write::check(op)?;
            return crate::pg_write!(pool, |tx| execute_write_async(&mut tx, &w, now_ms()));
        }
        self.run(move |s| execute_blocking(s, op)).await
    }
}

impl StoreOp {
    /// Whether the operation only reads.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            StoreOp::Get(_)
                | StoreOp::Object(_)
                | StoreOp::ByCid(_)
                | StoreOp::History(_)
                | StoreOp::List(_)
                | StoreOp::Related(_)
                | StoreOp::Count { .. }
                | StoreOp::Ref(_)
        )
    }
}

/// Runs a reading operation in `tx` (anything else is refused).
async fn execute_read_async<T: AsyncTx + ?Sized>(tx: &mut T, op: StoreOp) -> Result<OpResult> {
    Ok(match op {
        StoreOp::Get(id) => OpResult::Body(ops::get_async(tx, &id).await?.map(|o| o.body)),
        StoreOp::Object(id) => OpResult::Object(ops::get_async(tx, &id).await?),
        StoreOp::ByCid(cid) => OpResult::Object(ops::get_by_cid_async(tx, &cid).await?),
        StoreOp::History(id) => OpResult::History(ops::history_async(tx, &id).await?),
        StoreOp::List(q) => OpResult::Objects(ops::list_async(tx, &q).await?),
        StoreOp::Related(q) => OpResult::Targets(ops::related_async(tx, &q).await?),
        StoreOp::Count { id, peer, rel, dir } => {
            OpResult::Int(ops::count_async(tx, &id, &peer, &rel, dir).await?)
        }
        StoreOp::Ref(name) => OpResult::Ref(ops::get_ref_async(tx, &name).await?),
        other => {
            return Err(StoreError::Invalid(format!(
                "store: {other:?} is not a read"
            )));
        }
    })
}

/// A writing operation, its body (if any) already parsed and checked, so
/// that work happens before the transaction takes its locks.
enum Write {
    Put {
        id: String,
        body: ops::Body,
        expect: Expect,
    },
    Other(StoreOp),
}

impl Write {
    fn check(op: StoreOp) -> Result<Write> {
        Ok(match op {
            StoreOp::Put { id, body, expect } => Write::Put {
                id,
                body: ops::check_body(body)?,
                expect,
            },
            other => Write::Other(other),
        })
    }
}

/// Runs a writing operation inside the caller's transaction (a read is
/// refused).
async fn execute_write_async<T: AsyncTx + ?Sized>(
    tx: &mut T,
    w: &Write,
    at: i64,
) -> Result<OpResult> {
    let op = match w {
        Write::Put { id, body, expect } => {
            return Ok(OpResult::Written(Some(
                ops::put_async(tx, id, body, expect, at).await?,
            )));
        }
        Write::Other(op) => op,
    };
    Ok(match op {
        StoreOp::Delete { id, expect } => {
            OpResult::Written(ops::delete_async(tx, id, expect, at).await?)
        }
        StoreOp::Relate { src, rel, to } => {
            OpResult::Bool(ops::relate_async(tx, src, rel, to, at).await?)
        }
        StoreOp::Unrelate { src, rel, to } => {
            OpResult::Bool(ops::unrelate_async(tx, src, rel, to).await?)
        }
        StoreOp::RefCas {
            name,
            expected,
            new,
        } => {
            ops::ref_cas_async(tx, name, expected.as_deref(), new.as_deref(), at).await?;
            OpResult::Bool(true)
        }
        StoreOp::Apply(effects) => OpResult::Applied(ops::apply_async(tx, effects, at).await?),
        other => {
            return Err(StoreError::Invalid(format!(
                "store: {other:?} is not a write"
            )));
        }
    })
}

/// Runs a decoded operation on the calling thread (blocking).
pub fn execute_blocking(s: &Store, op: StoreOp) -> Result<OpResult> {
    if op.is_read() {
        return s.read(|tx| crate::db::ready(execute_read_async(tx, op)));
    }
    let w = Write::check(op)?;
    s.write(|tx| crate::db::ready(execute_write_async(tx, &w, now_ms())))
}

fn dict(entries: Vec<(&str, Value)>) -> Value {
    let mut d = Dict::new();
    for (k, v) in entries {
        if let Ok(key) = Key::new(Value::kw(k)) {
            d.insert(key, v);
        }
    }
    Value::Dict(d)
}

fn read_body(text: &str) -> Result<Value> {
    sx::reader::read_one(text, "<store body>")
        .map_err(|e| StoreError::Invalid(format!("store: stored body does not read: {e}")))
}

fn opt_str(s: Option<String>) -> Value {
    s.map_or(Value::Nil, |s| Value::str(&s))
}

fn object(o: Object) -> Result<Value> {
    Ok(dict(vec![
        ("id", Value::str(&o.id)),
        ("rev", Value::Int(o.rev)),
        ("cid", Value::str(&o.cid)),
        ("body", read_body(&o.body)?),
        ("at", Value::Int(o.at)),
    ]))
}

fn written(w: Written) -> Value {
    dict(vec![
        ("id", Value::str(&w.id)),
        ("rev", Value::Int(w.rev)),
        ("cid", opt_str(w.cid)),
    ])
}

/// A target as SX: a local id string, or `{:peer url :id id}`.
pub fn target_value(t: Target) -> Value {
    if t.peer.is_empty() {
        Value::str(&t.id)
    } else {
        dict(vec![
            ("peer", Value::str(&t.peer)),
            ("id", Value::str(&t.id)),
        ])
    }
}

/// Encodes a result as the SX value the perform returns.
pub fn encode(r: OpResult) -> Result<Value> {
    Ok(match r {
        OpResult::Body(b) => match b {
            Some(t) => read_body(&t)?,
            None => Value::Nil,
        },
        OpResult::Object(o) => match o {
            Some(o) => object(o)?,
            None => Value::Nil,
        },
        OpResult::History(revs) => {
            let mut items = Vec::with_capacity(revs.len());
            for r in revs {
                items.push(dict(vec![
                    ("rev", Value::Int(r.rev)),
                    ("cid", opt_str(r.cid)),
                    (
                        "body",
                        match r.body {
                            Some(b) => read_body(&b)?,
                            None => Value::Nil,
                        },
                    ),
                    ("at", Value::Int(r.at)),
                ]));
            }
            Value::list(items)
        }
        OpResult::Written(w) => w.map_or(Value::Nil, written),
        OpResult::Objects(p) => {
            let items = p
                .items
                .into_iter()
                .map(object)
                .collect::<Result<Vec<_>>>()?;
            dict(vec![
                ("items", Value::list(items)),
                ("next", opt_str(p.next)),
            ])
        }
        OpResult::Targets(p) => dict(vec![
            (
                "items",
                Value::list(p.items.into_iter().map(target_value).collect()),
            ),
            ("next", p.next.map_or(Value::Nil, target_value)),
        ]),
        OpResult::Bool(b) => Value::Bool(b),
        OpResult::Int(i) => Value::Int(i),
        OpResult::Ref(r) => opt_str(r),
        OpResult::Applied(rs) => Value::list(
            rs.into_iter()
                .map(|r| match r {
                    EffectResult::Written(w) => written(w),
                    EffectResult::Done(b) => Value::Bool(b),
                })
                .collect(),
        ),
    })
}

/// The error dict SX code catches for a failed store operation:
/// `{:type :error :kind :conflict :message "..." :current cid}`; `:kind`
/// is [`StoreError::kind`].
pub fn error_value(e: &StoreError) -> Value {
    let mut entries = vec![
        ("type", Value::kw("error")),
        ("kind", Value::kw(e.kind())),
        ("message", Value::str(&e.to_string())),
    ];
    if let StoreError::Conflict {
        current: Some(c), ..
    } = e
    {
        entries.push(("current", Value::str(c)));
    }
    dict(entries)
}

/// The error to resume a machine with ([`sx::Machine::resume_error`]).
pub fn eval_error(e: &StoreError) -> sx::EvalError {
    sx::EvalError::raised(error_value(e))
}

/// Answers one store perform on the calling thread with the blocking API
/// (for CLIs and tests that drive a machine with [`sx::Interp::drive`] on
/// a plain thread). `_rt` is no longer used: blocking on a current-thread
/// runtime's `Handle` cannot drive the IO an async PostgreSQL client
/// needs, and the blocking path needs no runtime; it is kept so that
/// callers need no change.
pub fn answer_blocking(
    store: &Store,
    _rt: &tokio::runtime::Handle,
    req: &sx::Request,
) -> std::result::Result<Value, sx::EvalError> {
    let op = match &req.op {
        Value::Keyword(k) => k.as_str(),
        other => {
            return Err(eval_error(&StoreError::Invalid(format!(
                "perform: the operation must be a keyword, got {other}"
            ))));
        }
    };
    let decoded = decode(op, &req.args).map_err(|e| eval_error(&e))?;
    let result = execute_blocking(store, decoded).map_err(|e| eval_error(&e))?;
    encode(result).map_err(|e| eval_error(&e))
}
