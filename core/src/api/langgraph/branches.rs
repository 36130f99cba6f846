//! Forks: a run from an earlier checkpoint (agent-chat-ui's "regenerate" and "edit") takes the
//! thread to that state, and what the thread held after it is kept as a branch of its history
//! (`model::Archive`), listed by `/history` and named by its checkpoints, so a client can show
//! both branches and go back to either.

use crate::api::{ApiError, AppState};
use crate::model::{Archive, Message, UserId};
use crate::runs::checkpoint_position;
pub(super) use crate::runs::is_checkpoint;
use crate::store::ThreadView;

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
            ttl: None,
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
