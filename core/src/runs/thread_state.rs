//! A thread's states as both APIs name them. A checkpoint is the thread as it stood after one of
//! its messages: the state after `k` messages has an id derived from the thread, `k` and the
//! `k`-th message's id, and its parent is the state after `k - 1`.

use uuid::Uuid;

use serde_json::{Map, Value};

use crate::config::Limits;
use crate::model::{Message, MessageType, RunStatus, Thread, Timestamp, UserId};
use crate::store::ThreadView;

pub fn checkpoint_id(thread_id: Uuid, messages: &[Message], upto: usize) -> Uuid {
    let last = upto.checked_sub(1).and_then(|index| messages[index].id.as_deref()).unwrap_or_default();
    Uuid::new_v5(&thread_id, format!("checkpoint {upto} {last}").as_bytes())
}

/// How many of the thread's messages the checkpoint `id` holds, if it is one of the thread's.
pub fn checkpoint_position(view: &ThreadView, id: &str) -> Option<usize> {
    let id = Uuid::parse_str(id).ok()?;
    (0..=view.messages.len()).rev().find(|upto| checkpoint_id(view.thread.thread_id, &view.messages, *upto) == id)
}

/// Whether `values` (a state's messages) is the state `checkpoint` names.
pub fn is_checkpoint(view: &ThreadView, values: &[Message], checkpoint: &str) -> bool {
    checkpoint_id(view.thread.thread_id, values, values.len()).to_string() == checkpoint
}

/// The node the thread waits at: `action`, when it ends with tool calls no run is answering
/// (an agent stopped for confirmation, or one whose run failed among its tools).
pub fn next_nodes(view: &ThreadView) -> Vec<&'static str> {
    let waiting = !view.running && view.last_outcome != Some(RunStatus::Cancelled);
    match view.messages.last() {
        Some(last) if waiting && last.kind == MessageType::Ai && !last.tool_calls.is_empty() => vec!["action"],
        _ => Vec::new(),
    }
}

/// A thread made by the LangGraph API: it has no assistant until its first run names one.
pub fn new_thread(limits: &Limits, user: UserId, thread_id: Uuid, metadata: Map<String, Value>) -> Thread {
    let now = Timestamp::now();
    let name = metadata.get("title").and_then(Value::as_str).unwrap_or_default().to_string();
    Thread {
        thread_id,
        assistant_id: Uuid::nil(),
        name: limits.shorten_name(name),
        updated_at: now,
        user_id: user,
        metadata: Some(metadata),
        created_at: Some(now),
    }
}
