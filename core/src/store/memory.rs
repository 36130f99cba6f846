//! An in-process store: the test backend and `STORE=memory`. One mutex, never held across an await.

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
    Thread, Timestamp, UserId,
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

    /// Whether `run` holds the lease. A run that does not may still add messages if nothing was
    /// written since `seen`; otherwise they would land among another run's.
    fn may_write_for(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<bool> {
        let holds_lease = self.lease.is_some_and(|held| held.run_id == run.run_id);
        if !holds_lease && !messages.is_empty() && seen.is_some_and(|seen| seen != self.revision) {
            return Err(StoreError::LeaseLost { run_id: run.run_id });
        }
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
impl Store for MemoryStore {
    async fn put_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(existing) = inner.assistants.get(&assistant.assistant_id) {
            if existing.user_id != assistant.user_id {
                return Err(StoreError::NotFound(Entity::Assistant));
            }
        }
        inner.assistants.insert(assistant.assistant_id, assistant.clone());
        Ok(())
    }

    async fn get_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<Assistant> {
        self.lock()
            .assistants
            .get(&assistant_id)
            .filter(|assistant| &assistant.user_id == user || assistant.public)
            .cloned()
            .ok_or(StoreError::NotFound(Entity::Assistant))
    }

    async fn list_assistants(&self, user: &UserId) -> StoreResult<Vec<Assistant>> {
        let own = self.lock().assistants.values().filter(|a| &a.user_id == user).cloned().collect();
        Ok(newest_first(own, |a: &Assistant| a.updated_at))
    }

    async fn list_public_assistants(&self) -> StoreResult<Vec<Assistant>> {
        let public = self.lock().assistants.values().filter(|a| a.public).cloned().collect();
        Ok(newest_first(public, |a: &Assistant| a.updated_at))
    }

    async fn delete_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.assistants.get(&assistant_id) {
            Some(assistant) if &assistant.user_id == user => {
                inner.assistants.remove(&assistant_id);
                inner.drop_documents(user, assistant_id);
                Ok(())
            }
            _ => Err(StoreError::NotFound(Entity::Assistant)),
        }
    }

    async fn put_thread(&self, thread: &Thread) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.threads.get_mut(&thread.thread_id) {
            Some(record) if record.thread.user_id != thread.user_id => Err(StoreError::NotFound(Entity::Thread)),
            Some(record) => {
                record.thread = thread.clone();
                Ok(())
            }
            None => {
                let record = ThreadRecord {
                    thread: thread.clone(),
                    messages: Vec::new(),
                    archive: Archive::default(),
                    lease: None,
                    last_outcome: None,
                    revision: Revision::default(),
                };
                inner.threads.insert(thread.thread_id, record);
                Ok(())
            }
        }
    }

    async fn get_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Thread> {
        Ok(self.lock().own_thread(user, thread_id)?.thread.clone())
    }

    async fn list_threads(&self, user: &UserId) -> StoreResult<Vec<Thread>> {
        let own =
            self.lock().threads.values().filter(|r| &r.thread.user_id == user).map(|r| r.thread.clone()).collect();
        Ok(newest_first(own, |t: &Thread| t.updated_at))
    }

    async fn delete_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.own_thread(user, thread_id)?;
        inner.threads.remove(&thread_id);
        inner.drop_documents(user, thread_id);
        let Inner { runs, feedback, events, .. } = &mut *inner;
        runs.retain(|run_id, run| {
            let keep = run.thread_id != thread_id;
            if !keep {
                feedback.remove(run_id);
                events.remove(run_id);
            }
            keep
        });
        Ok(())
    }

    async fn messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Message>> {
        Ok(self.lock().own_thread(user, thread_id)?.messages.clone())
    }

    async fn thread_view(&self, user: &UserId, thread_id: Uuid) -> StoreResult<ThreadView> {
        let mut inner = self.lock();
        let record = inner.own_thread(user, thread_id)?;
        let now = Timestamp::now();
        Ok(ThreadView {
            thread: record.thread.clone(),
            messages: record.messages.clone(),
            running: record.lease.is_some_and(|lease| lease.expires_at > now),
            abandoned_by: record.lease.filter(|lease| lease.expires_at <= now).map(|lease| lease.run_id),
            last_outcome: record.last_outcome,
            revision: record.revision,
        })
    }

    async fn append_messages(
        &self,
        user: &UserId,
        thread_id: Uuid,
        messages: &[Message],
        _seen: Option<Revision>,
    ) -> StoreResult<Revision> {
        Ok(self.lock().own_thread(user, thread_id)?.add(messages))
    }

    async fn upsert_messages(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
        let mut inner = self.lock();
        let record = inner.own_thread(user, thread_id)?;
        for message in messages {
            let existing = message
                .id
                .as_ref()
                .and_then(|id| record.messages.iter_mut().find(|stored| stored.id.as_ref() == Some(id)));
            match existing {
                Some(stored) => {
                    *stored = message.clone();
                    record.revision.0 += 1;
                }
                None => {
                    record.add(std::slice::from_ref(message));
                }
            }
        }
        Ok(())
    }

    async fn archive(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Archive> {
        Ok(self.lock().own_thread(user, thread_id)?.archive.clone())
    }

    async fn fork_thread(&self, fork: Fork<'_>) -> StoreResult<Revision> {
        let Fork { user, thread_id, keep, tail, archive, seen } = fork;
        let mut inner = self.lock();
        let record = inner.own_thread(user, thread_id)?;
        if let Some(held) = record.lease.filter(|held| held.expires_at > Timestamp::now()) {
            return Err(StoreError::ThreadBusy { run_id: held.run_id });
        }
        if record.revision != seen {
            return Err(StoreError::ThreadChanged);
        }
        record.messages.truncate(keep);
        record.archive = archive.clone();
        record.last_outcome = None;
        record.revision.0 += 1;
        Ok(record.add(tail))
    }

    async fn start_run(&self, start: RunStart<'_>) -> StoreResult<Started> {
        let RunStart { run, lease, max_user_runs, input, seen } = start;
        let mut inner = self.lock();
        let now = Timestamp::now();
        // A thread's runs are its owner's, so the user's running runs are their leased threads.
        let running = inner
            .threads
            .values()
            .filter(|record| record.thread.user_id == run.user_id && record.lease.is_some_and(|l| l.expires_at > now))
            .count();
        let record = inner.own_thread(&run.user_id, run.thread_id)?;
        if let Some(held) = record.lease.filter(|held| held.expires_at > now) {
            return Err(StoreError::ThreadBusy { run_id: held.run_id });
        }
        if let Some(limit) = max_user_runs.filter(|limit| running >= *limit as usize) {
            return Err(StoreError::TooManyRuns { limit });
        }
        record.lease = Some(Lease { run_id: run.run_id, expires_at: now.plus(lease) });
        let unchanged = seen == Some(record.revision);
        let revision = record.add(input);
        inner.runs.insert(run.run_id, run.clone());
        Ok(Started { revision, unchanged })
    }

    async fn get_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run> {
        self.lock()
            .runs
            .get(&run_id)
            .filter(|run| &run.user_id == user)
            .cloned()
            .ok_or(StoreError::NotFound(Entity::Run))
    }

    async fn delete_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<()> {
        let mut inner = self.lock();
        if !inner.runs.get(&run_id).is_some_and(|run| &run.user_id == user) {
            return Err(StoreError::NotFound(Entity::Run));
        }
        inner.runs.remove(&run_id);
        inner.feedback.remove(&run_id);
        inner.events.remove(&run_id);
        Ok(())
    }

    async fn list_runs(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Run>> {
        let mut inner = self.lock();
        inner.own_thread(user, thread_id)?;
        let mut runs: Vec<Run> = inner.runs.values().filter(|run| run.thread_id == thread_id).cloned().collect();
        runs.sort_by_key(|run| std::cmp::Reverse((run.created_at, run.run_id)));
        Ok(runs)
    }

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

    async fn put_cron(&self, cron: &Cron) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.crons.get_mut(&cron.cron_id) {
            Some((stored, _)) if stored.user_id != cron.user_id => return Err(StoreError::NotFound(Entity::Cron)),
            Some((stored, _)) => *stored = cron.clone(),
            None => {
                inner.crons.insert(cron.cron_id, (cron.clone(), None));
            }
        }
        Ok(())
    }

    async fn get_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<Cron> {
        let inner = self.lock();
        let found = inner.crons.get(&cron_id).map(|(cron, _)| cron).filter(|cron| &cron.user_id == user);
        found.cloned().ok_or(StoreError::NotFound(Entity::Cron))
    }

    async fn list_crons(&self, user: &UserId) -> StoreResult<Vec<Cron>> {
        let mut crons = self.all_crons().await?;
        crons.retain(|cron| &cron.user_id == user);
        Ok(crons)
    }

    async fn delete_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<()> {
        self.get_cron(user, cron_id).await?;
        self.lock().crons.remove(&cron_id);
        Ok(())
    }

    async fn all_crons(&self) -> StoreResult<Vec<Cron>> {
        let mut crons: Vec<Cron> = self.lock().crons.values().map(|(cron, _)| cron.clone()).collect();
        crons.sort_by_key(|cron| (cron.created_at, cron.cron_id));
        Ok(crons)
    }

    async fn claim_cron_slot(&self, cron_id: Uuid, slot: Timestamp) -> StoreResult<bool> {
        let mut inner = self.lock();
        let (_, last) = inner.crons.get_mut(&cron_id).ok_or(StoreError::NotFound(Entity::Cron))?;
        if last.is_some_and(|last| last >= slot) {
            return Ok(false);
        }
        *last = Some(slot);
        Ok(true)
    }

    async fn put_memory(&self, owner: &UserId, item: &MemoryItem) -> StoreResult<()> {
        let sort_key = MemoryItem::sort_key(&item.namespace, &item.key);
        self.lock().memories.entry(owner.clone()).or_default().insert(sort_key, item.clone());
        Ok(())
    }

    async fn get_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<Option<MemoryItem>> {
        let inner = self.lock();
        let item = inner.memories.get(owner).and_then(|items| items.get(&MemoryItem::sort_key(namespace, key)));
        Ok(item.filter(|item| !item.expired(Timestamp::now())).cloned())
    }

    async fn delete_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<()> {
        if let Some(items) = self.lock().memories.get_mut(owner) {
            items.remove(&MemoryItem::sort_key(namespace, key));
        }
        Ok(())
    }

    async fn memories(&self, owner: &UserId, prefix: &[String]) -> StoreResult<Vec<MemoryItem>> {
        let inner = self.lock();
        let start = MemoryItem::prefix_key(prefix);
        let now = Timestamp::now();
        let items = inner.memories.get(owner).into_iter().flat_map(|items| items.range(start.clone()..));
        Ok(items
            .take_while(|(sort_key, _)| sort_key.starts_with(&start))
            .map(|(_, item)| item)
            .filter(|item| !item.expired(now))
            .cloned()
            .collect())
    }

    async fn update_run(&self, run: &Run) -> StoreResult<()> {
        let mut inner = self.lock();
        let stored = inner.runs.get_mut(&run.run_id).ok_or(StoreError::NotFound(Entity::Run))?;
        *stored = run.clone();
        Ok(())
    }

    async fn update_run_if_going(&self, run: &Run) -> StoreResult<bool> {
        let mut inner = self.lock();
        let stored = inner.runs.get_mut(&run.run_id).ok_or(StoreError::NotFound(Entity::Run))?;
        if stored.status.is_finished() {
            return Ok(false);
        }
        *stored = run.clone();
        Ok(true)
    }

    async fn claim_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<bool> {
        let mut inner = self.lock();
        let run =
            inner.runs.get(&run_id).filter(|run| &run.user_id == user).ok_or(StoreError::NotFound(Entity::Run))?;
        let pending = run.status == RunStatus::Pending;
        Ok(pending && inner.claimed.insert(run_id))
    }

    async fn renew_lease(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()> {
        let mut inner = self.lock();
        let now = Timestamp::now();
        let held = inner
            .threads
            .get_mut(&thread_id)
            .and_then(|record| record.lease.as_mut())
            .filter(|held| held.run_id == run_id)
            .ok_or(StoreError::LeaseLost { run_id })?;
        held.expires_at = now.plus(lease);
        Ok(())
    }

    async fn finish_run(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
        let mut inner = self.lock();
        let Ok(record) = inner.own_thread(&run.user_id, run.thread_id) else { return Ok(()) };
        let holds_lease = record.may_write_for(run, messages, seen)?;
        record.add(messages);
        if holds_lease {
            record.lease = None;
            record.last_outcome = Some(run.status);
        }
        if let Some(stored) = inner.runs.get_mut(&run.run_id) {
            *stored = run.clone();
        }
        Ok(())
    }

    async fn keep_run_step(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<Revision> {
        let mut inner = self.lock();
        let record = inner.own_thread(&run.user_id, run.thread_id)?;
        record.may_write_for(run, messages, seen)?;
        Ok(record.add(messages))
    }

    async fn add_feedback(&self, run: &Run, feedback: &Feedback) -> StoreResult<()> {
        self.lock().feedback.entry(run.run_id).or_default().push(feedback.clone());
        Ok(())
    }

    async fn feedback(&self, run: &Run) -> StoreResult<Vec<Feedback>> {
        Ok(self.lock().feedback.get(&run.run_id).cloned().unwrap_or_default())
    }

    async fn add_document(
        &self,
        namespace: Uuid,
        owner: &UserId,
        embedder: &EmbedderId,
        chunks: &[DocumentChunk],
        quota: DocumentQuota,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let adding = stored_bytes(chunks);
        let user_bytes = inner.stored_bytes.get(owner).copied().unwrap_or(0) + adding;
        let index = inner.documents.entry(namespace).or_default();
        // Checked in the order every store checks them: the embedder, then the quotas.
        if let Some(recorded) = index.embedder.as_ref().filter(|recorded| *recorded != embedder) {
            return Err(StoreError::IndexMismatch { recorded: recorded.clone(), offered: embedder.clone() });
        }
        let would_hold = (index.chunks.len() + chunks.len()) as u64;
        if would_hold > quota.max_chunks {
            return Err(StoreError::ChunkQuota { would_hold, limit: quota.max_chunks });
        }
        if user_bytes > quota.max_user_bytes {
            return Err(StoreError::ByteQuota { would_hold: user_bytes, limit: quota.max_user_bytes });
        }
        index.embedder = Some(embedder.clone());
        index.chunks.extend_from_slice(chunks);
        inner.stored_bytes.insert(owner.clone(), user_bytes);
        Ok(())
    }

    async fn documents(&self, namespace: Uuid) -> StoreResult<DocumentIndex> {
        Ok(self.lock().documents.get(&namespace).cloned().unwrap_or_default())
    }
}
