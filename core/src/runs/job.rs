//! What a run is handed once it holds its thread, and what it sends while it executes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::graph_state::GraphStream;
use super::OnDisconnect;
use crate::model::{Generation, Message, Run, Timestamp};
use crate::store::Revision;

/// Everything a worker needs to execute a started run; serializable so it can cross processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunJob {
    pub run: Run,
    pub generation: Generation,
    /// The assistant's `configurable` with the request's overrides merged over it.
    pub configurable: Map<String, Value>,
    /// The most steps an agent may take in this run.
    #[serde(default = "default_recursion_limit")]
    pub recursion_limit: u32,
    /// The run continues the thread (`input: null`): an agent stopped before its tools runs them.
    #[serde(default)]
    pub resume: bool,
    /// Set for a run of the LangGraph API: what it streams.
    #[serde(default)]
    pub graph: Option<GraphStream>,
    /// When the run may start; it waits for it holding its thread (`after_seconds`).
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    /// The thread's revision right after the run's start wrote its input.
    #[serde(default)]
    pub started_at: Option<Revision>,
    /// Told of the run once it ends.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The thread as the run found it, when the process that started it executes it.
    #[serde(skip)]
    pub(super) snapshot: Option<Snapshot>,
}

/// A thread's messages and their revision, as read before the run started.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    pub(super) history: Vec<Message>,
    pub(super) revision: Revision,
}

/// How a run executes once it holds its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Execution {
    /// At once, in this process, with a client listening: it is recorded running from the start.
    Streamed,
    /// Handed to the background dispatcher: pending until a worker takes it.
    Background,
}

fn default_recursion_limit() -> u32 {
    25
}

/// What a streaming client is sent while a run executes. The channel closing means the end.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// A `data` payload, already rendered for the client's generation.
    Data(String),
    /// A LangGraph API event: its name, its payload, and its id when the stream is kept.
    Frame {
        event: &'static str,
        data: String,
        id: Option<String>,
    },
    Error {
        status_code: u16,
        message: String,
    },
}

/// A streaming client: where the run's events go, and what its going away means.
pub(super) struct Listener {
    pub(super) events: mpsc::Sender<RunEvent>,
    pub(super) on_disconnect: OnDisconnect,
}
