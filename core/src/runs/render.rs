//! The `data` payloads of a stream, in each generation's shape.

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use crate::model::{Generation, Message};

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
pub fn progress(generation: Generation, history: &[Message], current: &Message) -> String {
    let rendered = match generation {
        Generation::Seed => serde_json::to_string(&SeedSnapshot { history, current }),
        Generation::Latest | Generation::Graph => serde_json::to_string(&[current.wire(Generation::Latest)]),
    };
    rendered.unwrap_or_default()
}

/// The latest era's opening payload: the thread as the run found it, input included.
pub fn opening(history: &[Message]) -> String {
    serde_json::to_string(&crate::model::WireMessages(history, Generation::Latest)).unwrap_or_default()
}

/// The payload announcing a round of tool answers: latest clients get the tool messages (all of
/// one round in one event), seed clients the whole thread.
pub fn tool_results(generation: Generation, history: &[Message], results: &[Message]) -> String {
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
