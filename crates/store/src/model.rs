//! The store's data types. All are `Send`: ids and bodies are strings
//! (bodies in SX canonical text), so they cross to and from async IO.

/// The current revision of a live object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub id: String,
    pub rev: i64,
    pub cid: String,
    /// The body: an SX dict in canonical text.
    pub body: String,
    /// When this revision was written, milliseconds since the Unix epoch.
    pub at: i64,
}

/// One revision in an object's history. A deletion is a revision with no
/// CID and no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub rev: i64,
    pub cid: Option<String>,
    pub body: Option<String>,
    pub at: i64,
}

/// What a write made: the new revision (no CID after a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub rev: i64,
    pub cid: Option<String>,
}

/// The precondition of a write (compare-and-swap on the object).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expect {
    /// Write whatever is there.
    #[default]
    Any,
    /// The object must not exist (create).
    Absent,
    /// The object must exist (update).
    Exists,
    /// The object's current revision must have this CID.
    Cid(String),
}

/// A relation's target: a local object (`peer` empty) or an object on
/// another peer named by its base URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub peer: String,
    pub id: String,
}

impl Target {
    pub fn local(id: impl Into<String>) -> Target {
        Target {
            peer: String::new(),
            id: id.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dir {
    #[default]
    Out,
    In,
}

/// A relation condition on a listing: objects `o` with `o --rel--> target`
/// (Out) or `target --rel--> o` (In).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedFilter {
    pub rel: String,
    pub target: Target,
    pub dir: Dir,
}

/// A listing of live objects of one type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub type_name: String,
    /// Field filters: canonical text of a top-level key and of the value it
    /// must equal, e.g. `(":status", "\"published\"")`.
    pub filters: Vec<(String, String)>,
    pub related: Option<RelatedFilter>,
    /// Keyset cursor: only ids after this one.
    pub after: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<usize>,
}

/// Relations of one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelatedQuery {
    pub id: String,
    /// The peer of `id` for incoming relations to a federated object.
    pub peer: String,
    pub rel: String,
    pub dir: Dir,
    pub after: Option<Target>,
    pub limit: Option<usize>,
}

/// One page of a listing; `next` is the cursor for the next page, if the
/// page was full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T: HasCursor> {
    pub items: Vec<T>,
    pub next: Option<T::Cursor>,
}

/// What a page's cursor is for each item type.
pub trait HasCursor {
    type Cursor: std::fmt::Debug + Clone + PartialEq + Eq;
}
impl HasCursor for Object {
    type Cursor = String;
}
impl HasCursor for Target {
    type Cursor = Target;
}

/// A change, as data. A batch of effects is applied in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Put {
        id: String,
        body: String,
        expect: Expect,
    },
    Delete {
        id: String,
        expect: Expect,
    },
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
    RefCas {
        name: String,
        expected: Option<String>,
        new: Option<String>,
    },
    /// Queue a message (canonical SX text) for a peer; it is delivered
    /// after the transaction commits (a transactional outbox).
    Send {
        peer: String,
        message: String,
    },
}

/// The result of one effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectResult {
    Written(Written),
    /// Whether the effect changed anything.
    Done(bool),
}

/// A queued message for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub seq: i64,
    pub peer: String,
    pub message: String,
    pub at: i64,
}
