//! What a run is asked to do, in no protocol's terms: every way in (the OpenGPTs API, the
//! LangGraph API, a cron) parses its request into a `RunSpec` and hands it to the run service.

use std::time::Duration;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{MultitaskStrategy, OnDisconnect, RunInput, StreamMode};
use crate::model::Assistant;

/// The thread a run takes.
#[derive(Debug, Clone, PartialEq)]
pub enum ThreadTarget {
    /// One of the user's threads; `create`: made first when it does not exist.
    Existing { thread_id: Uuid, create: bool },
    /// A new thread for this run alone. Unless `keep`, a run that is streamed or waited for
    /// takes it with it when it ends; a background run's is kept, its answer is read from it.
    Stateless { keep: bool },
}

/// The assistant a run runs.
#[derive(Debug, Clone, PartialEq)]
pub enum AssistantChoice {
    /// Found by the protocol already (the LangGraph API's graph ids name default assistants).
    Resolved(Box<Assistant>),
    /// The user's assistant by id, or the thread's when none is named.
    ById(Option<Uuid>),
}

/// What a run of the LangGraph API streams and records beyond what every run does.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphOptions {
    pub modes: Vec<StreamMode>,
    /// Its events are kept in the store, so a client can join its stream from any process.
    pub resumable: bool,
    /// The request's metadata, recorded with the run.
    pub metadata: Map<String, Value>,
    /// The request as the run's record repeats it.
    pub kwargs: Value,
}

#[derive(Debug, Clone, PartialEq)]
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
