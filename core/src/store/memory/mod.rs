//! An in-process store: the test backend and `STORE=memory`. One mutex, never held across an await.

mod assistants;
mod crons;
mod documents;
mod events;
mod expiry;
mod memories;
mod runs;
mod thread_log;
mod threads;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::{
    stored_bytes, DocumentQuota, Entity, EventBatch, Fork, KeptEvent, Revision, RunStart, Started, Store, StoreError,
    StoreResult, ThreadView,
};
use crate::model::{
    Archive, Assistant, Cron, DocumentChunk, DocumentIndex, EmbedderId, Feedback, MemoryItem, Message, Run, RunStatus,
    Thread, ThreadEvent, Timestamp, UserId,
};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    assistants: HashMap<Uuid, Assistant>,
    threads: HashMap<Uuid, ThreadRecord>,
    runs: HashMap<Uuid, Run>,
    /// Runs taken by the process that executes them (see `Store::claim_run`).
    claimed: std::collections::HashSet<Uuid>,
    /// Per run, oldest first.
    feedback: HashMap<Uuid, Vec<Feedback>>,
    /// Per user, their memory items by sort key.
    memories: HashMap<UserId, std::collections::BTreeMap<String, MemoryItem>>,
    /// Per run, its batches of stream events by number, with their expiry.
    events: HashMap<Uuid, std::collections::BTreeMap<u64, (Vec<KeptEvent>, Timestamp)>>,
    /// Per thread, its event log by `seq`, with each event's expiry.
    thread_log: HashMap<Uuid, std::collections::BTreeMap<u64, (ThreadEvent, Timestamp)>>,
    documents: HashMap<Uuid, DocumentIndex>,
    /// What each user's files hold, by [`stored_bytes`].
    stored_bytes: HashMap<UserId, u64>,
    /// Each cron with the last slot it fired for.
    crons: HashMap<Uuid, (Cron, Option<Timestamp>)>,
}

struct ThreadRecord {
    thread: Thread,
    messages: Vec<Message>,
    archive: Archive,
    lease: Option<Lease>,
    last_outcome: Option<RunStatus>,
    revision: Revision,
}

impl ThreadRecord {
    fn add(&mut self, messages: &[Message]) -> Revision {
        if !messages.is_empty() {
            self.messages.extend_from_slice(messages);
            self.last_outcome = None;
            self.revision.0 += messages.len() as u64;
        }
        self.revision
    }

    /// Whether `run` holds the lease, once it may write `messages` (see `rules::check_run_write`).
    fn may_write_for(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<bool> {
        let holds_lease = self.lease.is_some_and(|held| held.run_id == run.run_id);
        let moved = seen.is_some_and(|seen| seen != self.revision);
        super::rules::check_run_write(run.run_id, holds_lease, messages.len(), moved)?;
        Ok(holds_lease)
    }
}

#[derive(Clone, Copy)]
struct Lease {
    run_id: Uuid,
    expires_at: Timestamp,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still consistent per operation.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Deletes a namespace's files and gives their bytes back to `owner`.
    fn drop_documents(&mut self, owner: &UserId, namespace: Uuid) {
        if let Some(index) = self.documents.remove(&namespace) {
            if let Some(held) = self.stored_bytes.get_mut(owner) {
                *held = held.saturating_sub(stored_bytes(&index.chunks));
            }
        }
    }

    /// Removes a thread with everything that hangs off it.
    fn remove_thread(&mut self, owner: &UserId, thread_id: Uuid) {
        self.threads.remove(&thread_id);
        self.thread_log.remove(&thread_id);
        self.drop_documents(owner, thread_id);
        let Inner { runs, feedback, events, .. } = self;
        runs.retain(|run_id, run| {
            let keep = run.thread_id != thread_id;
            if !keep {
                feedback.remove(run_id);
                events.remove(run_id);
            }
            keep
        });
    }

    fn own_thread(&mut self, user: &UserId, thread_id: Uuid) -> StoreResult<&mut ThreadRecord> {
        self.threads
            .get_mut(&thread_id)
            .filter(|record| &record.thread.user_id == user)
            .ok_or(StoreError::NotFound(Entity::Thread))
    }
}

fn newest_first<T>(mut items: Vec<T>, updated_at: impl Fn(&T) -> Timestamp) -> Vec<T> {
    items.sort_by_key(|item| std::cmp::Reverse(updated_at(item)));
    items
}

#[async_trait]
impl Store for MemoryStore {}
