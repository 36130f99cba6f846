//! The memory store's runs, their leases and their feedback.

use super::*;
use crate::store::rules::check_start;
use crate::store::RunStore;

#[async_trait]
impl RunStore for MemoryStore {
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
        let holder = record.lease.filter(|held| held.expires_at > now).map(|held| held.run_id);
        check_start(holder, running, max_user_runs)?;
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
}
