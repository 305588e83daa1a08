//! The store as a [`Service`]: `(perform :store/get id)` and the other
//! `store/` operations (see docs/store.md) carried out on the store's own
//! connection pool while the request's machine waits.

use sx::{EvalError, Value};

use crate::ops::{LocalFuture, Service};

pub struct StoreService(pub store::Store);

impl Service for StoreService {
    fn namespace(&self) -> &str {
        "store"
    }

    fn perform(
        &self,
        op: &str,
        args: Vec<Value>,
        _scope: &crate::ops::RequestScope,
    ) -> LocalFuture<Result<Value, EvalError>> {
        // Decode now: the arguments are SX values and stay on this thread;
        // what crosses to the pool is plain data.
        // decode takes the full operation name, namespace included.
        let decoded = store::sx_ops::decode(&format!("store/{op}"), &args);
        let store = self.0.clone();
        Box::pin(async move {
            let op = decoded.map_err(|e| store::sx_ops::eval_error(&e))?;
            let result = store
                .execute(op)
                .await
                .map_err(|e| store::sx_ops::eval_error(&e))?;
            store::sx_ops::encode(result).map_err(|e| store::sx_ops::eval_error(&e))
        })
    }
}

/// How often expired records are removed.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes expired records (sessions, login states, peer nonces, cached
/// peer answers) every ten minutes until the process ends. They already
/// read as absent; this keeps the table from growing.
pub fn spawn_record_purge(store: store::Store) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            let purged = store
                .run(|s| s.write(|tx| store::kv::purge_expired(tx, store::now_ms())))
                .await;
            match purged {
                Ok(n) if n > 0 => tracing::debug!("purged {n} expired records"),
                Ok(_) => {}
                Err(e) => tracing::warn!("purging expired records failed: {e}"),
            }
        }
    });
}
