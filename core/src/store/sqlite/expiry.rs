//! Expired threads in SQLite (a partial index of those with a `ttl`), and deleting a thread no
//! run holds, in one IMMEDIATE transaction.

use super::*;
use crate::store::ExpiryStore;

#[async_trait]
impl ExpiryStore for SqliteStore {
    async fn expired_threads(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Thread>> {
        self.call(move |connection| {
            let sql = "SELECT body FROM threads WHERE expires_ms IS NOT NULL AND expires_ms <= ?1 \
                       ORDER BY expires_ms LIMIT ?2";
            bodies(connection, sql, params![millis(now), limit as i64])
        })
        .await
    }

    async fn delete_idle_thread(&self, thread: &Thread) -> StoreResult<()> {
        let (user, thread_id, read_expiry) =
            (thread.user_id.clone(), thread.thread_id, thread.ttl.map(|ttl| ttl.expires_at));
        self.write(move |tx| {
            own_thread(tx, &user, thread_id)?;
            if let Some(run_id) = runs::lease_holder(tx, thread_id, Timestamp::now())? {
                return Err(StoreError::ThreadBusy { run_id });
            }
            let sql = "SELECT expires_ms FROM threads WHERE thread_id = ?1";
            let stored: Option<i64> = tx.query_row(sql, params![thread_id.to_string()], |row| row.get(0))?;
            if stored != read_expiry.map(millis) {
                return Err(StoreError::ThreadChanged);
            }
            threads::remove_thread(tx, thread_id)
        })
        .await
    }
}
