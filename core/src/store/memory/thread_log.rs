//! The memory store's thread event logs.

use super::*;
use crate::store::{ThreadEventBatch, ThreadLogStore};

#[async_trait]
impl ThreadLogStore for MemoryStore {
    async fn add_thread_events(&self, thread_id: Uuid, batch: &ThreadEventBatch) -> StoreResult<()> {
        let mut inner = self.lock();
        if !inner.threads.contains_key(&thread_id) {
            return Ok(());
        }
        let log = inner.thread_log.entry(thread_id).or_default();
        for event in &batch.events {
            log.insert(event.seq, ((**event).clone(), batch.expires_at));
        }
        Ok(())
    }

    async fn thread_events(&self, thread_id: Uuid, since: u64, limit: usize) -> StoreResult<Vec<ThreadEvent>> {
        let inner = self.lock();
        let now = Timestamp::now();
        let log = inner.thread_log.get(&thread_id).into_iter().flat_map(|log| log.range(since + 1..));
        Ok(log
            .filter(|(_, (_, expires_at))| *expires_at > now)
            .take(limit)
            .map(|(_, (event, _))| event.clone())
            .collect())
    }

    async fn last_thread_event(&self, thread_id: Uuid) -> StoreResult<u64> {
        let inner = self.lock();
        Ok(inner.thread_log.get(&thread_id).and_then(|log| log.keys().next_back().copied()).unwrap_or(0))
    }
}
