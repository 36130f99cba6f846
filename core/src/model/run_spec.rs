//! What a run is asked to do, in no protocol's terms: every way in (the OpenGPTs API, the
//! LangGraph API, a cron) parses its request into a `RunSpec` and hands it to the run service. A
//! cron keeps one, to start a run like it each time its schedule comes round.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Assistant, Generation, Message};

/// The thread a run takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ThreadTarget {
    /// One of the user's threads; `create`: made first when it does not exist.
    Existing { thread_id: Uuid, create: bool },
    /// A new thread for this run alone. Unless `keep`, a run that is streamed or waited for
    /// takes it with it when it ends; a background run's is kept, its answer is read from it.
    Stateless { keep: bool },
}

/// The assistant a run runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AssistantChoice {
    /// Found by the protocol already (the LangGraph API's graph ids name default assistants).
    Resolved(Box<Assistant>),
    /// The user's assistant by id, or the thread's when none is named.
    ById(Option<Uuid>),
}

/// What a run of the LangGraph API streams and records beyond what every run does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphOptions {
    pub modes: Vec<StreamMode>,
    /// Its events are kept in the store, so a client can join its stream from any process.
    pub resumable: bool,
    /// The request's metadata, recorded with the run.
    pub metadata: Map<String, Value>,
    /// The request as the run's record repeats it.
    pub kwargs: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub thread: ThreadTarget,
    pub assistant: AssistantChoice,
    pub input: RunInput,
    /// `configurable` values that override the assistant's for this run only.
    pub configurable: Map<String, Value>,
    /// The most steps this run's agent may take.
    pub recursion_limit: Option<u32>,
    /// The checkpoint to fork from: the thread is taken back to it first.
    pub checkpoint: Option<String>,
    /// The user's decisions on the tool calls the thread's agent waits with.
    pub resume: Option<Value>,
    pub strategy: MultitaskStrategy,
    pub on_disconnect: OnDisconnect,
    /// How long the run waits, holding its thread, before it starts (`after_seconds`).
    pub start_after: Option<Duration>,
    /// Called with the run once it ends.
    pub webhook: Option<String>,
    /// Set for a run of the LangGraph API.
    pub graph: Option<GraphOptions>,
}

/// What the run adds to the thread before the model is called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunInput {
    /// Seed era: `{"messages": [...]}`; the stream then carries the whole thread in every event.
    Seed(Vec<Message>),
    /// Latest: a list of messages; the stream carries only what changed.
    Latest(Vec<Message>),
    /// Latest: `null` or absent, to continue the thread as it is.
    Resume,
}

impl RunInput {
    pub fn generation(&self) -> Generation {
        match self {
            RunInput::Seed(_) => Generation::Seed,
            RunInput::Latest(_) | RunInput::Resume => Generation::Latest,
        }
    }

    pub fn messages(&self) -> &[Message] {
        match self {
            RunInput::Seed(messages) | RunInput::Latest(messages) => messages,
            RunInput::Resume => &[],
        }
    }

    pub fn into_messages(self) -> Vec<Message> {
        match self {
            RunInput::Seed(messages) | RunInput::Latest(messages) => messages,
            RunInput::Resume => Vec::new(),
        }
    }
}

/// What a run does when its thread is busy with another run (the LangGraph API's option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultitaskStrategy {
    /// Answer 409 at once.
    Reject,
    /// Wait for the thread (bounded by `RUN_QUEUE_WAIT_SECONDS`), then run.
    #[default]
    Enqueue,
    /// Cancel the running run, then run once it has let go of the thread.
    Interrupt,
    /// Cancel the running runs and delete them (their input stays), then run once the thread is
    /// free. Only the LangGraph API offers it.
    Rollback,
}

impl MultitaskStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            MultitaskStrategy::Reject => "reject",
            MultitaskStrategy::Enqueue => "enqueue",
            MultitaskStrategy::Interrupt => "interrupt",
            MultitaskStrategy::Rollback => "rollback",
        }
    }
}

/// What a streamed run does when its client goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDisconnect {
    /// Stop it; its partial answer is dropped, as by `POST /runs/{id}/cancel`.
    Cancel,
    /// Finish it and store the answer.
    Continue,
}

/// A stream mode a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    Values,
    Updates,
    MessagesTuple,
    Messages,
    /// LangChain's run lifecycle events: chains (the graph, its nodes) and the chat model.
    Events,
    /// Events a graph's nodes write themselves: ours write none, but agent-chat-ui always asks.
    Custom,
}

impl StreamMode {
    pub const NAMES: [(&'static str, StreamMode); 6] = [
        ("values", StreamMode::Values),
        ("updates", StreamMode::Updates),
        ("messages-tuple", StreamMode::MessagesTuple),
        ("messages", StreamMode::Messages),
        ("events", StreamMode::Events),
        ("custom", StreamMode::Custom),
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(known, _)| *known == name).map(|(_, mode)| *mode)
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(_, mode)| *mode == self).map(|(name, _)| *name).unwrap_or("values")
    }

    /// The SSE event names this mode writes.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            StreamMode::Values => &["values"],
            StreamMode::Updates => &["updates"],
            StreamMode::MessagesTuple => &["messages"],
            StreamMode::Messages => &["messages/metadata", "messages/partial"],
            StreamMode::Events => &["events"],
            StreamMode::Custom => &["custom"],
        }
    }
}
