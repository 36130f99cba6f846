//! An event of a thread's event log: what the LangGraph event protocol (`/threads/{id}/stream/events`)
//! replays and streams. Every run of the thread adds to it, whichever protocol started the run.

use serde::{Deserialize, Serialize};

/// One event, numbered in its thread: `seq` counts every event of every run, from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadEvent {
    pub seq: u64,
    /// The envelope's `method`: the channel's event name (`values`, `messages`, `input.requested` ...).
    pub method: String,
    /// Where in the graph it happened: empty for the root graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace: Vec<String>,
    /// The whole envelope as clients are sent it, one line of JSON.
    pub envelope: String,
    /// Set on the event that tells how a run ended: the run, whose end a reader waits to see
    /// recorded (with its answer) before it passes the event on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_run: Option<uuid::Uuid>,
}

impl ThreadEvent {
    /// The channel a subscription names to receive it.
    pub fn channel(&self) -> &str {
        match self.method.as_str() {
            "input.requested" => "input",
            method => method,
        }
    }
}
