//! The memory store's expired threads, and deleting a thread no run holds.

use super::*;
use crate::store::ExpiryStore;

#[async_trait]
impl ExpiryStore for MemoryStore {
    async fn expired_threads(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Thread>> {
        let inner = self.lock();
        let mut expired: Vec<Thread> = inner
            .threads
            .values()
            .filter(|record| record.thread.ttl.is_some_and(|ttl| ttl.expires_at <= now))
            .map(|record| record.thread.clone())
            .collect();
        expired.sort_by_key(|thread| thread.ttl.map(|ttl| ttl.expires_at));
        expired.truncate(limit);
        Ok(expired)
    }

    async fn delete_idle_thread(&self, thread: &Thread) -> StoreResult<()> {
        let mut inner = self.lock();
        let record = inner.own_thread(&thread.user_id, thread.thread_id)?;
        if let Some(held) = record.lease.filter(|held| held.expires_at > Timestamp::now()) {
            return Err(StoreError::ThreadBusy { run_id: held.run_id });
        }
        if record.thread.ttl.map(|ttl| ttl.expires_at) != thread.ttl.map(|ttl| ttl.expires_at) {
            return Err(StoreError::ThreadChanged);
        }
        inner.remove_thread(&thread.user_id, thread.thread_id);
        Ok(())
    }
}
