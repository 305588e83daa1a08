//! The store's errors.

/// Everything that can go wrong in the store. `Send + Sync`, so it crosses
/// the async boundary to the host.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-swap lost: the object or ref is not in the expected
    /// state. `current` is its CID (objects) or value (refs) now, if any.
    #[error("conflict on {what}: {message}")]
    Conflict {
        what: String,
        message: String,
        current: Option<String>,
    },
    /// The object, revision or ref does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Input the store refuses: a malformed id, a body that is not a
    /// canonical SX dict, a bad argument to an operation.
    #[error("{0}")]
    Invalid(String),
    /// An import file that cannot be restored; nothing was written.
    #[error("{position}: import error: {message}")]
    Import { position: String, message: String },
    /// The database's schema is newer than this program understands.
    #[error(
        "the database has schema version {found}, but this program knows only up to {known}; upgrade rose-ash"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The blocking task running a database call panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
}

impl StoreError {
    pub(crate) fn conflict(
        what: impl Into<String>,
        message: impl Into<String>,
        current: Option<String>,
    ) -> StoreError {
        StoreError::Conflict {
            what: what.into(),
            message: message.into(),
            current,
        }
    }

    /// A short machine-readable kind: `conflict`, `not-found`, `invalid`,
    /// `import`, `schema`, `database`, `io`, `task`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Conflict { .. } => "conflict",
            StoreError::NotFound(_) => "not-found",
            StoreError::Invalid(_) => "invalid",
            StoreError::Import { .. } => "import",
            StoreError::SchemaTooNew { .. } => "schema",
            StoreError::Sqlite(_) | StoreError::Postgres(_) => "database",
            StoreError::Io(_) => "io",
            StoreError::Task(_) => "task",
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
