//! Forks: a run from an earlier checkpoint (agent-chat-ui's "regenerate" and "edit") takes the
//! thread to that state, and what the thread held after it is kept as a branch of its history
//! (`model::Archive`), listed by `/history` and named by its checkpoints, so a client can show
//! both branches and go back to either.

use super::threads::{checkpoint_id, checkpoint_position};
use crate::api::{ApiError, AppState};
use crate::model::{Archive, Message, UserId};
use crate::store::ThreadView;

#[cfg(feature = "runs")]
pub(super) use forks::fork_to;

/// The most messages a fork moves between the thread and its archive: they are written in one
/// transaction (DynamoDB takes 100 items), and the archive keeps only the newest branches anyway.
#[cfg(feature = "runs")]
pub const MAX_FORK_MESSAGES: usize = 40;

/// Whether `values` (a state's messages) is the state `checkpoint` names.
pub(super) fn is_checkpoint(view: &ThreadView, values: &[Message], checkpoint: &str) -> bool {
    checkpoint_id(view.thread.thread_id, values, values.len()).to_string() == checkpoint
}

/// The messages of the state `checkpoint` names: one of the thread's, or of a branch it left.
pub(super) async fn values_at(
    state: &AppState,
    user: &UserId,
    view: &ThreadView,
    checkpoint: &str,
) -> Result<Option<Vec<Message>>, ApiError> {
    if let Some(upto) = checkpoint_position(view, checkpoint) {
        return Ok(Some(view.messages[..upto].to_vec()));
    }
    let archive = state.store.archive(user, view.thread.thread_id).await?;
    Ok(archive.states(&view.messages).into_iter().find(|values| is_checkpoint(view, values, checkpoint)))
}

/// A state as the history lists it.
pub(super) struct Listed<'a> {
    pub(super) values: &'a [Message],
    pub(super) head: bool,
}

/// The thread's states and its archived ones, newest first as the reference orders checkpoints:
/// the thread's own after its oldest fork, the archived branches (the most recently left first),
/// then the states before that fork. Clients (`useStream`) show the first of sibling states as
/// the current branch.
pub(super) fn history<'a>(view: &'a ThreadView, archive: &Archive, archived: &'a [Vec<Message>]) -> Vec<Listed<'a>> {
    let length = view.messages.len();
    let split = archive.shallowest_fork(&view.messages).min(length);
    let own = |upto: usize| Listed { values: &view.messages[..upto], head: upto == length };
    (split + 1..=length)
        .rev()
        .map(own)
        .chain(archived.iter().map(|values| Listed { values, head: false }))
        .chain((1..=split).rev().map(own))
        .collect()
}

/// A run's fork: only the functions that run runs make one.
#[cfg(feature = "runs")]
mod forks {
    use axum::http::StatusCode;

    use super::super::threads::{checkpoint_position, view};
    use super::super::{detail, run_request};
    use super::{is_checkpoint, MAX_FORK_MESSAGES};
    use crate::api::{ApiError, AppState};
    use crate::model::UserId;
    use crate::runs::MultitaskStrategy;
    use crate::store::{Fork, StoreError, ThreadView};

    /// Takes the thread to the state `checkpoint` names, unless it stands there already, and returns
    /// it as it is then. A run holding the thread is waited for as a queued run would be (cancelled
    /// first under `interrupt`, refused under `reject`).
    pub(in crate::api::langgraph) async fn fork_to(
        state: &AppState,
        user: &UserId,
        mut current: ThreadView,
        checkpoint: &str,
        strategy: MultitaskStrategy,
    ) -> Result<ThreadView, ApiError> {
        let thread_id = current.thread.thread_id;
        let deadline = tokio::time::Instant::now() + state.config.run_queue_wait;
        let mut interrupted = None;
        loop {
            if checkpoint_position(&current, checkpoint) == Some(current.messages.len()) {
                return Ok(current);
            }
            let archive = state.store.archive(user, thread_id).await?;
            let target = match checkpoint_position(&current, checkpoint) {
                Some(upto) => current.messages[..upto].to_vec(),
                None => archive
                    .states(&current.messages)
                    .into_iter()
                    .find(|values| is_checkpoint(&current, values, checkpoint))
                    .ok_or_else(|| {
                        detail(StatusCode::NOT_FOUND, format!("Checkpoint {checkpoint} is not one of this thread's"))
                    })?,
            };
            let forked = archive.fork(&current.messages, &target);
            let moved = current.messages.len() - forked.keep + forked.tail.len();
            if moved > MAX_FORK_MESSAGES {
                return Err(detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "A run from this checkpoint would move {moved} messages between branches; at most \
                         {MAX_FORK_MESSAGES} may be moved: start from a later checkpoint, or copy the thread"
                    ),
                ));
            }
            let fork = Fork {
                user,
                thread_id,
                keep: forked.keep,
                tail: &forked.tail,
                archive: &forked.archive,
                seen: current.revision,
            };
            match state.store.fork_thread(fork).await {
                Ok(_) => return view(state, user, thread_id).await,
                Err(StoreError::ThreadBusy { run_id })
                    if strategy != MultitaskStrategy::Reject && tokio::time::Instant::now() < deadline =>
                {
                    if strategy == MultitaskStrategy::Interrupt && interrupted != Some(run_id) {
                        state.runs.cancel(user, run_id).await?;
                        interrupted = Some(run_id);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(StoreError::ThreadChanged) if tokio::time::Instant::now() < deadline => {}
                Err(error @ StoreError::ThreadBusy { .. }) => return Err(run_request::busy(error.into())),
                Err(error) => return Err(error.into()),
            }
            current = view(state, user, thread_id).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Branch, MessageType, Thread, Timestamp};
    use crate::store::Revision;
    use uuid::Uuid;

    fn message(id: &str) -> Message {
        let mut message = Message::new(MessageType::Human, id);
        message.id = Some(id.into());
        message
    }

    #[test]
    fn the_history_lists_the_newest_branch_first_at_a_fork() {
        let user = UserId::new("someone").unwrap();
        let thread = Thread {
            thread_id: Uuid::nil(),
            assistant_id: Uuid::nil(),
            name: String::new(),
            updated_at: Timestamp::now(),
            user_id: user,
            metadata: None,
            created_at: None,
        };
        let messages: Vec<Message> = ["h1", "a1", "h2", "a2b"].into_iter().map(message).collect();
        let view = ThreadView {
            thread,
            messages,
            running: false,
            abandoned_by: None,
            last_outcome: None,
            revision: Revision(5),
        };
        let archive = Archive(vec![Branch { after: Some("h2".into()), messages: vec![message("a2")] }]);
        let archived = archive.states(&view.messages);
        let listed: Vec<(String, bool)> = history(&view, &archive, &archived)
            .iter()
            .map(|state| (state.values.last().unwrap().id.clone().unwrap(), state.head))
            .collect();
        let expected = [("a2b", true), ("a2", false), ("h2", false), ("a1", false), ("h1", false)];
        assert_eq!(listed, expected.map(|(id, head)| (id.to_string(), head)));
    }
}
