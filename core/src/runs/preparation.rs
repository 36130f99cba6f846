//! What the run service does to a thread before a run takes it: makes it when the run asks,
//! rolls back the runs going on it, forks it to an earlier checkpoint, applies the user's
//! decisions on the tool calls it waits with, and names its graph.

use std::time::Duration;

use serde_json::{json, Map};
use uuid::Uuid;

use super::review::{decide, Decided};
use super::thread_state::{checkpoint_position, is_checkpoint, new_thread, next_nodes};
use super::{Bot, MultitaskStrategy, RunEngine, RunError, RunInput};
use crate::model::{Assistant, RunSpec, ThreadTarget, UserId};
use crate::store::{Fork, StoreError, ThreadView};

/// The most messages a fork moves between the thread and its archive: they are written in one
/// transaction (DynamoDB takes 100 items), and the archive keeps only the newest branches anyway.
pub const MAX_FORK_MESSAGES: usize = 40;

impl RunEngine {
    /// The run's thread as it stands once every step the spec asks of it before the run is done.
    /// Its input may change here: a user's answer to pending tool calls becomes the input.
    pub(super) async fn prepare_thread(&self, user: &UserId, spec: &mut RunSpec) -> Result<ThreadView, RunError> {
        let mut view = self.thread_for(user, &spec.thread).await?;
        let thread_id = view.thread.thread_id;
        if spec.strategy == MultitaskStrategy::Rollback && view.running {
            self.roll_back(user, thread_id).await?;
        }
        if let Some(checkpoint) = &spec.checkpoint {
            view = self.fork_to(user, view, checkpoint, spec.strategy).await?;
        }
        if let Some(resume) = &spec.resume {
            let waiting = (!next_nodes(&view).is_empty()).then(|| view.messages.last()).flatten();
            match decide(waiting.ok_or(RunError::NothingToResume)?, resume)? {
                Decided::Run(calls) => {
                    self.inner.store.upsert_messages(user, thread_id, std::slice::from_ref(&*calls)).await?;
                    view = self.inner.store.thread_view(user, thread_id).await?;
                }
                Decided::Answered(answers) => spec.input = RunInput::Latest(answers),
            }
        }
        Ok(view)
    }

    /// The thread a run names, made first when the run asks for it (a stateless run's always).
    async fn thread_for(&self, user: &UserId, target: &ThreadTarget) -> Result<ThreadView, RunError> {
        let store = &self.inner.store;
        let (thread_id, create) = match *target {
            ThreadTarget::Existing { thread_id, create } => (thread_id, create),
            ThreadTarget::Stateless { .. } => (Uuid::now_v7(), true),
        };
        match store.thread_view(user, thread_id).await {
            Err(StoreError::NotFound(_)) if create => {
                store.put_thread(&new_thread(&self.inner.config, user.clone(), thread_id, Map::new())).await?;
                Ok(store.thread_view(user, thread_id).await?)
            }
            found => Ok(found?),
        }
    }

    /// Cancels the runs going on the thread, waits for it to be free (as long as a queued run
    /// would), and deletes them, as `multitask_strategy: "rollback"` asks. Their input stays.
    async fn roll_back(&self, user: &UserId, thread_id: Uuid) -> Result<(), RunError> {
        let store = &self.inner.store;
        let going: Vec<Uuid> = store
            .list_runs(user, thread_id)
            .await?
            .into_iter()
            .filter(|run| !run.status.is_finished())
            .map(|run| run.run_id)
            .collect();
        for run_id in &going {
            self.cancel(user, *run_id).await?;
        }
        let deadline = tokio::time::Instant::now() + self.inner.config.run_queue_wait;
        while store.thread_view(user, thread_id).await?.running && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for run_id in going {
            match store.delete_run(user, run_id).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Takes the thread to the state `checkpoint` names, unless it stands there already, and
    /// returns it as it is then. What the thread held after that state is kept as a branch of its
    /// history. A run holding the thread is waited for as a queued run would be (cancelled first
    /// under `interrupt`, refused under `reject`).
    async fn fork_to(
        &self,
        user: &UserId,
        mut current: ThreadView,
        checkpoint: &str,
        strategy: MultitaskStrategy,
    ) -> Result<ThreadView, RunError> {
        let store = &self.inner.store;
        let thread_id = current.thread.thread_id;
        let deadline = tokio::time::Instant::now() + self.inner.config.run_queue_wait;
        let mut interrupted = None;
        loop {
            if checkpoint_position(&current, checkpoint) == Some(current.messages.len()) {
                return Ok(current);
            }
            let archive = store.archive(user, thread_id).await?;
            let target = match checkpoint_position(&current, checkpoint) {
                Some(upto) => current.messages[..upto].to_vec(),
                None => archive
                    .states(&current.messages)
                    .into_iter()
                    .find(|values| is_checkpoint(&current, values, checkpoint))
                    .ok_or_else(|| RunError::CheckpointNotFound(checkpoint.to_string()))?,
            };
            let forked = archive.fork(&current.messages, &target);
            let moved = current.messages.len() - forked.keep + forked.tail.len();
            if moved > MAX_FORK_MESSAGES {
                return Err(RunError::ForkTooLarge { moved, limit: MAX_FORK_MESSAGES });
            }
            let fork = Fork {
                user,
                thread_id,
                keep: forked.keep,
                tail: &forked.tail,
                archive: &forked.archive,
                seen: current.revision,
            };
            match store.fork_thread(fork).await {
                Ok(_) => return Ok(store.thread_view(user, thread_id).await?),
                Err(StoreError::ThreadBusy { run_id })
                    if strategy != MultitaskStrategy::Reject && tokio::time::Instant::now() < deadline =>
                {
                    if strategy == MultitaskStrategy::Interrupt && interrupted != Some(run_id) {
                        self.cancel(user, run_id).await?;
                        interrupted = Some(run_id);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(StoreError::ThreadChanged) if tokio::time::Instant::now() < deadline => {}
                Err(error) => return Err(error.into()),
            }
            current = store.thread_view(user, thread_id).await?;
        }
    }

    /// The thread's first LangGraph run names its assistant and graph, in its record and its
    /// metadata, so the thread lists under them (agent-chat-ui searches threads by `graph_id`).
    pub(super) async fn stamp(&self, view: &mut ThreadView, assistant: &Assistant) -> Result<(), RunError> {
        let thread = &mut view.thread;
        let metadata = thread.metadata.get_or_insert_with(Map::new);
        let graph_id = json!(Bot::of(assistant).id());
        let assistant_id = json!(assistant.assistant_id);
        if metadata.get("graph_id") == Some(&graph_id)
            && metadata.get("assistant_id") == Some(&assistant_id)
            && thread.assistant_id == assistant.assistant_id
        {
            return Ok(());
        }
        metadata.insert("graph_id".into(), graph_id);
        metadata.insert("assistant_id".into(), assistant_id);
        if assistant.user_id == thread.user_id {
            // OpenGPTs' clients load a thread's assistant: only one they can read is named there.
            thread.assistant_id = assistant.assistant_id;
            if let Some(kind) = assistant.kind() {
                metadata.insert("assistant_type".into(), json!(kind));
            }
        }
        self.inner.store.put_thread(thread).await?;
        Ok(())
    }
}
