//! The memory store's threads, their messages and the branches forks left behind.

use super::*;
use crate::store::ThreadStore;

#[async_trait]
impl ThreadStore for MemoryStore {
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
        inner.remove_thread(user, thread_id);
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
}
