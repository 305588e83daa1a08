//! Opening a fresh store of either kind for a test.
#![allow(dead_code)]

use store::{Store, StoreError};

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL tests use: `ROSE_ASH_TEST_DATABASE_URL` or the local
/// server. Tests fail (never skip) when it cannot be reached.
pub fn pg_url() -> String {
    std::env::var("ROSE_ASH_TEST_DATABASE_URL").unwrap_or_else(|_| PG_URL.to_owned())
}

/// A store and what must be cleaned up after it.
pub struct Fresh {
    pub store: Store,
    pub dir: Option<tempfile::TempDir>,
    pub schema: Option<String>,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some(s) = self.schema.take() {
            let url = pg_url();
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
                }
            })
            .join();
        }
    }
}

pub fn unique_schema() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a fresh store (blocking; call from a plain thread or spawn_blocking).
pub fn fresh_blocking(pg: bool) -> Result<Fresh, StoreError> {
    if pg {
        let schema = unique_schema();
        let store = Store::open_postgres_in(&pg_url(), Some(&schema)).map_err(|e| {
            StoreError::Invalid(format!(
                "PostgreSQL at {} is required for this suite and could not be used: {e}",
                pg_url()
            ))
        })?;
        Ok(Fresh {
            store,
            dir: None,
            schema: Some(schema),
        })
    } else {
        let dir = tempfile::tempdir()?;
        let store = Store::open_sqlite(&dir.path().join("store.sqlite"))?;
        Ok(Fresh {
            store,
            dir: Some(dir),
            schema: None,
        })
    }
}

/// Opens a fresh store from async code: on PostgreSQL through the async
/// clients (which create the schema and run the migrations), on SQLite on
/// the blocking pool.
pub async fn fresh(pg: bool) -> Fresh {
    if pg {
        let schema = unique_schema();
        return match Store::connect_postgres_in(&pg_url(), Some(&schema)).await {
            Ok(store) => Fresh {
                store,
                dir: None,
                schema: Some(schema),
            },
            Err(e) => panic!(
                "PostgreSQL at {} is required for this suite and could not be used: {e}",
                pg_url()
            ),
        };
    }
    match tokio::task::spawn_blocking(move || fresh_blocking(pg)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => panic!("cannot open a fresh store: {e}"),
        Err(e) => panic!("cannot open a fresh store: {e}"),
    }
}

/// Canonical text of an SX value written as source.
pub fn canon(src: &str) -> String {
    let v = sx::reader::read_one(src, "<test>").unwrap_or_else(|e| panic!("bad test body: {e}"));
    sx::printer::serialize(&v).unwrap_or_else(|e| panic!("bad test body: {e}"))
}

/// Runs `$body` (an async block using `pg: bool`) once per backend.
#[macro_export]
macro_rules! both {
    ($name:ident, |$pg:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($pg: bool) $body
            #[tokio::test(flavor = "current_thread")]
            async fn sqlite() {
                run(false).await
            }
            #[tokio::test(flavor = "current_thread")]
            async fn postgres() {
                run(true).await
            }
        }
    };
}
