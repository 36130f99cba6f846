//! A turn put to an assistant by a protocol that speaks in turns of text: MCP's tools (one
//! question, one answer, nothing kept) and A2A's messages (a conversation on a thread). Each
//! turn is a run started through the run service like any other; what it came to is read from
//! the run's record and its thread, the same way whether the turn was waited for or streamed.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::service::{Mode, Started, StreamTo};
use super::{MultitaskStrategy, OnDisconnect, RunEngine, RunError, RunEvent, RunInput};
use crate::model::{AssistantChoice, Message, MessageType, Run, RunSpec, RunStatus, ThreadTarget, UserId};

/// What a turn asks.
pub struct Turn {
    pub assistant_id: Uuid,
    /// `None`: a thread for this turn alone, gone once it is answered.
    pub thread_id: Option<Uuid>,
    pub text: String,
}

/// What a turn came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Still going.
    Working,
    Answered(String),
    /// The agent stopped before calling these tools, for the user to confirm.
    AwaitsConfirmation(Vec<Value>),
    Cancelled,
    Failed(String),
}

impl Outcome {
    /// A run's outcome from its record and its thread's messages as the run left them.
    pub fn of(run: &Run, messages: &[Message]) -> Self {
        match run.status {
            RunStatus::Pending | RunStatus::Running => Outcome::Working,
            RunStatus::Cancelled => Outcome::Cancelled,
            RunStatus::Error => Outcome::Failed(run.error.clone().unwrap_or_else(|| "the run failed".into())),
            RunStatus::Success => match messages.last() {
                Some(last) if last.kind == MessageType::Ai && !last.tool_calls.is_empty() => {
                    Outcome::AwaitsConfirmation(last.tool_calls.clone())
                }
                Some(last) if last.kind == MessageType::Ai => Outcome::Answered(last.content.text()),
                _ => Outcome::Answered(String::new()),
            },
        }
    }
}

impl Turn {
    fn spec(self) -> RunSpec {
        RunSpec {
            thread: match self.thread_id {
                Some(thread_id) => ThreadTarget::Existing { thread_id, create: true },
                None => ThreadTarget::Stateless { keep: false },
            },
            assistant: AssistantChoice::ById(Some(self.assistant_id)),
            input: RunInput::Latest(vec![Message::new(MessageType::Human, self.text)]),
            configurable: Map::new(),
            recursion_limit: None,
            checkpoint: None,
            resume: None,
            strategy: MultitaskStrategy::Enqueue,
            on_disconnect: OnDisconnect::Continue,
            start_after: None,
            webhook: None,
            graph: None,
        }
    }
}

impl RunEngine {
    /// Runs the turn to its end: its run, its thread's messages (read before a thread for this
    /// turn alone went) and what it came to.
    pub async fn take_turn(&self, user: UserId, turn: Turn) -> Result<(Run, Vec<Message>, Outcome), RunError> {
        let Started::Finished { run, messages } = self.start(user, turn.spec(), Mode::Wait).await? else {
            return Err(RunError::Task("a waited run was not run to its end".into()));
        };
        let messages = messages.unwrap_or_default();
        let outcome = Outcome::of(&run, &messages);
        Ok((run, messages, outcome))
    }

    /// Starts the turn on its thread and streams it; its events are the OpenGPTs API's latest
    /// generation's (the messages that changed). `turn_state` tells what it came to.
    pub async fn stream_turn(
        &self,
        user: UserId,
        turn: Turn,
        refusal: fn(RunError) -> RunEvent,
    ) -> Result<(Run, tokio::sync::mpsc::Receiver<RunEvent>), RunError> {
        match self.start(user, turn.spec(), Mode::Stream(StreamTo { announce: None, refusal })).await? {
            Started::Streaming { run, events } => Ok((run, events)),
            other => Err(RunError::Task(format!("a streamed run started otherwise: {:?}", other.into_run().status))),
        }
    }

    /// A turn's run as stored now, its thread's messages up to the end of that turn (later
    /// turns left out) and what it came to.
    pub async fn turn_state(&self, user: &UserId, run_id: Uuid) -> Result<(Run, Vec<Message>, Outcome), RunError> {
        let run = self.get(user, run_id).await?;
        let mut messages = self.inner.store.thread_view(user, run.thread_id).await?.messages;
        messages.truncate(end_of_turn(&messages, run_id));
        let outcome = Outcome::of(&run, &messages);
        Ok((run, messages, outcome))
    }
}

/// Where the run's turn ends among the thread's messages: at the next input after the run's
/// first answer, whose id the run names (`run-<run id>`); the whole thread when it has none.
fn end_of_turn(messages: &[Message], run_id: Uuid) -> usize {
    let first_answer = format!("run-{run_id}");
    let Some(start) = messages.iter().position(|message| message.id.as_deref() == Some(first_answer.as_str())) else {
        return messages.len();
    };
    messages[start..]
        .iter()
        .position(|message| message.kind == MessageType::Human)
        .map_or(messages.len(), |end| start + end)
}
