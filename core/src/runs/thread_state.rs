//! A thread's states as both APIs name them. A checkpoint is the thread as it stood after one of
//! its messages: the state after `k` messages has an id derived from the thread, `k` and the
//! `k`-th message's id, and its parent is the state after `k - 1`.

use uuid::Uuid;

use serde_json::{Map, Value};

use super::{Bot, RunError};
use crate::config::{Config, Limits, RetentionSettings};
use crate::model::{Message, MessageType, RunStatus, Thread, ThreadTtl, Timestamp, UserId};
use crate::store::{Store, ThreadView};

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

/// What a thread's state waits for: the one rule both APIs show, each in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Nothing,
    /// Tool calls no run is answering: an agent stopped for confirmation, or one whose run failed
    /// among its tools. Its `action` node runs them.
    Tools,
    /// Input the assistant has not answered.
    Answer,
}

/// What the thread's state after its first `upto` messages waits for. The thread as it is now
/// waits for nothing while a run is going, nor when the user cancelled the last run.
pub fn next_after(view: &ThreadView, upto: usize) -> Next {
    let Some(last) = upto.checked_sub(1).map(|index| &view.messages[index]) else { return Next::Nothing };
    let head = upto == view.messages.len();
    if head && (view.running || view.last_outcome == Some(RunStatus::Cancelled)) {
        return Next::Nothing;
    }
    match last.kind {
        MessageType::Ai if !last.tool_calls.is_empty() => Next::Tools,
        MessageType::Ai => Next::Nothing,
        _ => Next::Answer,
    }
}

/// The LangGraph API's `next`: the node the thread waits at. A graph waits only at a node with a
/// task pending, so input with no run to answer it is no wait there.
pub fn next_nodes(view: &ThreadView) -> Vec<&'static str> {
    match next_after(view, view.messages.len()) {
        Next::Tools => vec![Bot::ACTION],
        Next::Nothing | Next::Answer => Vec::new(),
    }
}

/// A thread made by the LangGraph API: it has no assistant until its first run names one. It
/// lives as long as the configuration says threads do, unless its creator says otherwise.
pub fn new_thread(config: &Config, user: UserId, thread_id: Uuid, metadata: Map<String, Value>) -> Thread {
    let now = Timestamp::now();
    let limits = &config.limits;
    let name = metadata.get("title").and_then(Value::as_str).unwrap_or_default().to_string();
    Thread {
        thread_id,
        assistant_id: Uuid::nil(),
        name: limits.shorten_name(name),
        updated_at: now,
        user_id: user,
        metadata: Some(metadata),
        created_at: Some(now),
        ttl: default_ttl(&config.retention, now),
    }
}

/// The lifetime of a thread made without one: none unless configured (`THREAD_TTL_MINUTES`).
pub fn default_ttl(settings: &RetentionSettings, now: Timestamp) -> Option<ThreadTtl> {
    settings.thread_default.map(|(strategy, minutes)| ThreadTtl::starting(strategy, minutes, now))
}

/// A state update of both APIs: each message replaces the thread's message with its id, or
/// follows the others. The thread's room is counted as the messages will be stored, on the
/// thread as `before` read it.
pub async fn update_state(
    store: &dyn Store,
    limits: &Limits,
    before: &ThreadView,
    mut messages: Vec<Message>,
) -> Result<(), RunError> {
    messages.iter_mut().for_each(Message::ensure_id);
    let kept: Vec<Message> =
        before.messages.iter().filter(|old| !messages.iter().any(|new| new.id == old.id)).cloned().collect();
    super::check_thread_room(limits, &kept, &messages)?;
    let thread = &before.thread;
    Ok(store.upsert_messages(&thread.user_id, thread.thread_id, &messages).await?)
}
