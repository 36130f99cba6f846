//! What the LangGraph API's threads and runs share with the rest of the API: a thread's state,
//! what a LangGraph run streams, and the review of pending tool calls.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::{Generation, Message, Run, RunStatus, StreamMode, WireMessage};

/// What a LangGraph run streams, and the ids its message metadata names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphStream {
    pub modes: Vec<StreamMode>,
    pub graph_id: String,
    /// The thread's metadata, which every message chunk's metadata repeats.
    pub metadata: Map<String, Value>,
    /// The events are kept, for clients that join the stream later.
    #[serde(default)]
    pub resumable: bool,
}

/// The review of an AI message's pending tool calls, as LangChain's human-in-the-loop middleware
/// asks for one (and agent-chat-ui renders): `[{value, id}]`, with `response_schema` in a stream.
pub fn review_interrupts(thread_id: Uuid, pending: &Message, streamed: bool) -> Value {
    let requests: Vec<Value> = pending
        .tool_calls
        .iter()
        .map(|call| {
            let description = format!(
                "Tool execution pending approval\n\nTool: {}\nArgs: {}",
                call["name"].as_str().unwrap_or_default(),
                call["args"]
            );
            json!({"name": call["name"], "args": call["args"], "description": description})
        })
        .collect();
    let configs: Vec<Value> = pending
        .tool_calls
        .iter()
        .map(|call| json!({"action_name": call["name"], "allowed_decisions": ["approve", "edit", "reject"]}))
        .collect();
    let id = Uuid::new_v5(&thread_id, pending.id.as_deref().unwrap_or_default().as_bytes()).simple().to_string();
    let mut interrupt = json!({"value": {"action_requests": requests, "review_configs": configs}, "id": id});
    if streamed {
        interrupt["response_schema"] = Value::Null;
    }
    json!([interrupt])
}

/// A thread's state as LangGraph shows it: `{"messages": [...]}`, of two slices one after the other.
pub struct State<'a>(pub &'a [Message], pub &'a [Message]);

impl Serialize for State<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let messages: Vec<WireMessage<'_>> =
            self.0.iter().chain(self.1).map(|message| message.wire(Generation::Graph)).collect();
        map.serialize_entry("messages", &messages)?;
        map.end()
    }
}

/// A run as the LangGraph API shows it.
pub struct GraphRun<'a>(pub &'a Run);

impl Serialize for GraphRun<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let run = self.0;
        let profile = run.profile.as_ref();
        let status = match run.status {
            RunStatus::Cancelled => "interrupted",
            other => other.as_str(),
        };
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("run_id", &run.run_id)?;
        map.serialize_entry("thread_id", &run.thread_id)?;
        map.serialize_entry("assistant_id", &run.assistant_id)?;
        map.serialize_entry("metadata", &profile.map(|p| p.metadata.clone()).unwrap_or_default())?;
        map.serialize_entry("status", status)?;
        map.serialize_entry("kwargs", &profile.map_or(json!({}), |p| p.kwargs.clone()))?;
        map.serialize_entry("multitask_strategy", &profile.map_or("enqueue", |p| &p.multitask_strategy))?;
        map.serialize_entry("created_at", &run.created_at.to_offset_rfc3339())?;
        map.serialize_entry("updated_at", &run.updated_at.to_offset_rfc3339())?;
        map.serialize_entry("langsmith_session_name", &Value::Null)?;
        map.end()
    }
}
