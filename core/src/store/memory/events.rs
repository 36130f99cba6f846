//! The memory store's kept stream events.

use super::*;
use crate::store::EventStore;

#[async_trait]
impl EventStore for MemoryStore {
    async fn add_run_events(&self, run: &Run, batch: &EventBatch) -> StoreResult<()> {
        let mut inner = self.lock();
        if !inner.threads.contains_key(&run.thread_id) {
            // Its thread was deleted: nothing of the run is kept.
            return Ok(());
        }
        inner.events.entry(run.run_id).or_default().insert(batch.number, (batch.events.clone(), batch.expires_at));
        Ok(())
    }

    async fn run_events(&self, run: &Run, from: u64) -> StoreResult<(Vec<KeptEvent>, u64)> {
        let inner = self.lock();
        let now = Timestamp::now();
        let mut next = from;
        let mut events = Vec::new();
        for (batch, (kept, expires_at)) in inner.events.get(&run.run_id).into_iter().flat_map(|b| b.range(from..)) {
            if *batch != next {
                break;
            }
            next += 1;
            if *expires_at > now {
                events.extend_from_slice(kept);
            }
        }
        Ok((events, next))
    }
}
