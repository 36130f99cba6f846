//! Expired threads in SQLite (a partial index of those with a `ttl`), and deleting a thread no
//! run holds, in one IMMEDIATE transaction.

use super::*;
use crate::store::ExpiryStore;

/// Deletes the kept events of runs whose every batch expired: a run's batches go together, as a
/// reader stops at the first one missing.
pub(super) fn purge_run_events(tx: &Transaction<'_>, now: Timestamp) -> StoreResult<usize> {
    Ok(tx.execute(
        "DELETE FROM run_events WHERE expires_ms <= ?1 AND NOT EXISTS \
         (SELECT 1 FROM run_events AS live WHERE live.run_id = run_events.run_id AND live.expires_ms > ?1)",
        params![millis(now)],
    )?)
}

/// Deletes expired events of threads' logs but each thread's last, expired or not: the thread's
/// next event is numbered from it (`last_thread_event`).
pub(super) fn purge_thread_events(tx: &Transaction<'_>, now: Timestamp) -> StoreResult<usize> {
    Ok(tx.execute(
        "DELETE FROM thread_events WHERE expires_ms <= ?1 AND seq < \
         (SELECT MAX(seq) FROM thread_events AS later WHERE later.thread_id = thread_events.thread_id)",
        params![millis(now)],
    )?)
}

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

    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(move |tx| {
            let purged = tx.execute("DELETE FROM memory_items WHERE expires_ms <= ?1", params![millis(now)])?;
            Ok((purged + purge_run_events(tx, now)? + purge_thread_events(tx, now)?) as u64)
        })
        .await
    }
}
