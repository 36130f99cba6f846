//! How a run's progress reaches its clients: one `Renderer` per protocol, chosen once per run.
//! This file holds the trait and the OpenGPTs API's renderer (`data` payloads in each
//! generation's shape); the LangGraph API's is `graph_events`.

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use super::RunEvent;
use crate::model::{Generation, Message};

/// Turns what a run does into the events of one protocol. A step its protocol does not show
/// renders nothing.
pub(super) trait Renderer: Send + Sync {
    /// What the protocol's clients receive: stream events, or entries of the thread's log.
    type Event;

    /// The thread as the run found it, input included.
    fn opening(&mut self, _history: &[Message]) -> Vec<Self::Event> {
        Vec::new()
    }

    /// A node of the bot's graph starts, from `state`.
    fn enter(&mut self, _node: &'static str, _state: &[Message]) -> Vec<Self::Event> {
        Vec::new()
    }

    /// A node of the bot's graph is done: `produced` follows `before` in the thread.
    fn node_done(&mut self, _before: &[Message], _produced: &[Message]) -> Vec<Self::Event> {
        Vec::new()
    }

    /// The run stops before its tools, for the user's go-ahead (as a review of the calls when
    /// `review`); `state` ends with the calls.
    fn interrupted(&mut self, _state: &[Message], _review: bool) -> Vec<Self::Event> {
        Vec::new()
    }

    /// The run has answered: `produced` follows `before` in the thread it leaves.
    fn closing(&mut self, _before: &[Message], _produced: &[Message]) -> Vec<Self::Event> {
        Vec::new()
    }

    /// The model's message as it grows.
    fn progress(&mut self, history: &[Message], current: &Message) -> Vec<Self::Event>;

    /// The model's message complete.
    fn finished(&mut self, history: &[Message], answer: &Message) -> Vec<Self::Event>;

    /// Messages made whole by a step, not streamed: a round of tool answers, retrieved documents.
    fn results(&mut self, history: &[Message], results: &[Message]) -> Vec<Self::Event>;
}

/// The OpenGPTs API's stream: `data` events in the shape of the client's generation.
pub(super) struct OpenGptsEvents(pub(super) Generation);

impl Renderer for OpenGptsEvents {
    type Event = RunEvent;

    fn opening(&mut self, history: &[Message]) -> Vec<Self::Event> {
        match self.0 {
            Generation::Latest => vec![RunEvent::Data(opening(history))],
            _ => Vec::new(),
        }
    }

    fn progress(&mut self, history: &[Message], current: &Message) -> Vec<Self::Event> {
        vec![RunEvent::Data(progress(self.0, history, current))]
    }

    /// OpenGPTs sends it twice, as the model's last chunk and as the stored message (which, for
    /// seed clients, carries the agent step).
    fn finished(&mut self, history: &[Message], answer: &Message) -> Vec<Self::Event> {
        let mut last_chunk = answer.clone();
        last_chunk.additional_kwargs.remove("agent");
        vec![RunEvent::Data(progress(self.0, history, &last_chunk)), RunEvent::Data(progress(self.0, history, answer))]
    }

    fn results(&mut self, history: &[Message], results: &[Message]) -> Vec<Self::Event> {
        vec![RunEvent::Data(tool_results(self.0, history, results))]
    }
}

/// The seed era's event: `{"messages": [the whole thread, the AI message as it grows]}`.
struct SeedSnapshot<'a> {
    history: &'a [Message],
    current: &'a Message,
}

impl Serialize for SeedSnapshot<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct All<'a>(&'a SeedSnapshot<'a>);
        impl Serialize for All<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.history.len() + 1))?;
                for message in self.0.history {
                    seq.serialize_element(&message.wire(Generation::Seed))?;
                }
                seq.serialize_element(&self.0.current.wire(Generation::Seed))?;
                seq.end()
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("messages", &All(self))?;
        map.end()
    }
}

/// The payload announcing the AI message's current state.
fn progress(generation: Generation, history: &[Message], current: &Message) -> String {
    let rendered = match generation {
        Generation::Seed => serde_json::to_string(&SeedSnapshot { history, current }),
        Generation::Latest | Generation::Graph => serde_json::to_string(&[current.wire(Generation::Latest)]),
    };
    rendered.unwrap_or_default()
}

/// The latest era's opening payload: the thread as the run found it, input included.
fn opening(history: &[Message]) -> String {
    serde_json::to_string(&crate::model::WireMessages(history, Generation::Latest)).unwrap_or_default()
}

/// The payload announcing a round of tool answers: latest clients get the tool messages (all of
/// one round in one event), seed clients the whole thread.
fn tool_results(generation: Generation, history: &[Message], results: &[Message]) -> String {
    let rendered = match generation {
        Generation::Seed => {
            let thread: Vec<Message> = history.iter().chain(results).cloned().collect();
            serde_json::to_string(
                &serde_json::json!({"messages": crate::model::WireMessages(&thread, Generation::Seed)}),
            )
        }
        Generation::Latest | Generation::Graph => {
            serde_json::to_string(&crate::model::WireMessages(results, Generation::Latest))
        }
    };
    rendered.unwrap_or_default()
}
