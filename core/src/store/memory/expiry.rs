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

    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let mut inner = self.lock();
        let mut purged = 0;
        let mut count = |before: usize, after: usize| purged += (before - after) as u64;
        for items in inner.memories.values_mut() {
            let before = items.len();
            items.retain(|_, item| !item.expired(now));
            count(before, items.len());
        }
        // A run's batches go together: a reader stops at the first one missing.
        inner.events.retain(|_, batches| {
            let live = batches.values().any(|(_, expires_at)| *expires_at > now);
            if !live {
                count(batches.len(), 0);
            }
            live
        });
        for log in inner.thread_log.values_mut() {
            // The last event stays: the thread's next one is numbered from it.
            let last = log.keys().next_back().copied();
            let before = log.len();
            log.retain(|seq, (_, expires_at)| *expires_at > now || Some(*seq) == last);
            count(before, log.len());
        }
        Ok(purged)
    }
}
