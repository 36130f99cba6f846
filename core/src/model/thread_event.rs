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
    /// Set on the events after which a client reads the thread's state: the one that tells how a
    /// run ended, and a request for input (the run ends right after it, and a client answers it
    /// from the thread's state). A reader waits to see that run's end recorded (with its answer,
    /// and the thread given back) before it passes such an event on.
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
