//! A run's stream as the LangGraph Platform API writes it: per requested stream mode, the state
//! after each node (`values`), each node's output (`updates`), the model's tokens as message
//! chunks (`messages-tuple`) or as the message so far (`messages`).
//!
//! Our bots are graphs with OpenGPTs' node names: `chatbot`; `agent` and `action`;
//! `invoke_retrieval`, `retrieve` and `response`.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::graph_state::{review_interrupts, GraphStream, State};
use super::render::Renderer;
use super::RunEvent;
use crate::model::StreamMode;
use crate::model::{Generation, Message};

/// One SSE event: its name and its `data` (its id is the recorder's to give).
type Frame = RunEvent;

fn frame(event: &'static str, data: String) -> Frame {
    RunEvent::Frame { event, data, id: None }
}

/// Renders a graph run's progress into frames, remembering what each message has shown so far.
pub(super) struct GraphEvents {
    stream: GraphStream,
    run_id: Uuid,
    thread_id: Uuid,
    assistant_id: Uuid,
    step: u32,
    node: &'static str,
    /// The chunk metadata of the node running, serialized once per node.
    chunk_metadata: String,
    /// The message being streamed: its id, how much of its text and of each call's arguments
    /// has been sent.
    streaming: Option<(String, usize, Vec<usize>)>,
    /// Messages whose `messages/metadata` has been sent.
    announced: Vec<String>,
    /// For `events`: the node running and its input, and the chat model's run.
    node_run: Uuid,
    node_input: String,
    model_run: Option<Uuid>,
}

impl GraphEvents {
    pub(super) fn new(stream: GraphStream, run_id: Uuid, thread_id: Uuid, assistant_id: Uuid) -> Self {
        GraphEvents {
            stream,
            run_id,
            thread_id,
            assistant_id,
            step: 0,
            node: "__start__",
            chunk_metadata: String::new(),
            streaming: None,
            announced: Vec::new(),
            node_run: run_id,
            node_input: String::new(),
            model_run: None,
        }
    }

    /// One of LangChain's lifecycle events: `data` is already JSON.
    fn lifecycle(&self, event: &str, name: &str, run_id: Uuid, data: String, tags: &[String]) -> Frame {
        let parents: Vec<Uuid> = [self.run_id, self.node_run].into_iter().filter(|parent| *parent != run_id).collect();
        let metadata = if self.chunk_metadata.is_empty() { "{}" } else { &self.chunk_metadata };
        let body = format!(
            r#"{{"event":{},"data":{data},"name":{},"tags":{},"run_id":"{run_id}","metadata":{metadata},"parent_ids":{}}}"#,
            json!(event),
            json!(name),
            json!(tags),
            json!(parents.iter().take(if run_id == self.run_id { 0 } else { 2 }).collect::<Vec<_>>()),
        );
        frame("events", body)
    }

    fn wants(&self, mode: StreamMode) -> bool {
        self.stream.modes.contains(&mode)
    }

    /// What of the message `id` has not been sent yet: its text, the fragments of its tool
    /// calls (a first fragment names its call), and whether nothing at all has been sent.
    fn unsent(&mut self, id: &str, current: &Message) -> (String, Vec<Value>, bool) {
        let (sent_text, sent_args) = match &mut self.streaming {
            Some((streaming, text, args)) if *streaming == id => (text, args),
            _ => {
                self.streaming = Some((id.to_string(), 0, Vec::new()));
                let (_, text, args) = self.streaming.as_mut().expect("just set");
                (text, args)
            }
        };
        let text = current.content.text();
        let delta = text.get(*sent_text..).unwrap_or_default().to_string();
        *sent_text = text.len();
        let raw_calls = current.additional_kwargs.get("tool_calls").and_then(Value::as_array);
        let mut call_chunks = Vec::new();
        for (index, raw) in raw_calls.into_iter().flatten().enumerate() {
            let arguments = raw["function"]["arguments"].as_str().unwrap_or_default();
            if sent_args.len() <= index {
                sent_args.push(0);
                call_chunks.push(json!({"name": raw["function"]["name"], "args": arguments, "id": raw["id"],
                    "index": index, "type": "tool_call_chunk"}));
            } else if arguments.len() > sent_args[index] {
                call_chunks.push(json!({"name": null, "args": &arguments[sent_args[index]..], "id": null,
                    "index": index, "type": "tool_call_chunk"}));
            }
            sent_args[index] = arguments.len();
        }
        let first = *sent_text == 0 && delta.is_empty() && call_chunks.is_empty();
        (delta, call_chunks, first)
    }

    fn model_event(&self, event: &str, data: String) -> Frame {
        self.lifecycle(event, "ChatModel", self.model_run.unwrap_or(self.node_run), data, &["seq:step:1".into()])
    }

    fn announce(&mut self, id: &str) -> Option<Frame> {
        if self.announced.iter().any(|announced| announced == id) {
            return None;
        }
        self.announced.push(id.to_string());
        Some(frame("messages/metadata", format!("{{{}:{{\"metadata\":{}}}}}", json!(id), self.chunk_metadata)))
    }

    fn tuple(&self, chunk: &Chunk<'_>) -> String {
        format!("[{},{}]", json_of(chunk), self.chunk_metadata)
    }
}

impl Renderer for GraphEvents {
    type Event = Frame;

    /// The run's id, then the state it starts from, input included.
    fn opening(&mut self, state: &[Message]) -> Vec<Frame> {
        let mut frames = vec![frame("metadata", json!({"run_id": self.run_id, "attempt": 1}).to_string())];
        if self.wants(StreamMode::Events) {
            let input = format!(r#"{{"input":{}}}"#, state_json(state, &[]));
            frames.push(self.lifecycle("on_chain_start", &self.stream.graph_id, self.run_id, input, &[]));
        }
        if self.wants(StreamMode::Values) {
            frames.push(frame("values", state_json(state, &[])));
        }
        frames
    }

    /// The run's end: the graph's output, the state it leaves.
    fn closing(&mut self, before: &[Message], produced: &[Message]) -> Vec<Frame> {
        match self.wants(StreamMode::Events) {
            true => {
                let output = format!(r#"{{"output":{}}}"#, state_json(before, produced));
                vec![self.lifecycle("on_chain_end", &self.stream.graph_id.clone(), self.run_id, output, &[])]
            }
            false => Vec::new(),
        }
    }

    /// A node starts, from `state`: the chunks it streams name it.
    fn enter(&mut self, node: &'static str, state: &[Message]) -> Vec<Frame> {
        self.step += 1;
        self.node = node;
        let mut metadata = self.stream.metadata.clone();
        let checkpoint_ns = format!("{node}:{}", Uuid::new_v4());
        for (key, value) in [
            ("graph_id", json!(self.stream.graph_id)),
            ("assistant_id", json!(self.assistant_id)),
            ("run_attempt", json!(1)),
            ("run_id", json!(self.run_id)),
            ("thread_id", json!(self.thread_id)),
            ("langgraph_step", json!(self.step)),
            ("langgraph_node", json!(node)),
            ("langgraph_triggers", json!([format!("branch:to:{node}")])),
            ("langgraph_path", json!(["__pregel_pull", node])),
            ("langgraph_checkpoint_ns", json!(checkpoint_ns)),
            ("checkpoint_ns", json!(checkpoint_ns)),
        ] {
            metadata.insert(key.into(), value);
        }
        self.chunk_metadata = serde_json::to_string(&metadata).unwrap_or_default();
        self.node_run = Uuid::new_v4();
        self.model_run = None;
        if !self.wants(StreamMode::Events) {
            return Vec::new();
        }
        self.node_input = state_json(state, &[]);
        let input = format!(r#"{{"input":{}}}"#, self.node_input);
        vec![self.lifecycle("on_chain_start", node, self.node_run, input, &[format!("graph:step:{}", self.step)])]
    }

    /// The model's message as it grows: the part not yet sent, as a chunk.
    fn progress(&mut self, _history: &[Message], current: &Message) -> Vec<Frame> {
        let mut frames = Vec::new();
        let events = self.wants(StreamMode::Events);
        if events && self.model_run.is_none() {
            let run = Uuid::new_v4();
            self.model_run = Some(run);
            let input = format!(r#"{{"input":{{"messages":[{}]}}}}"#, node_messages(&self.node_input));
            frames.push(self.lifecycle("on_chat_model_start", "ChatModel", run, input, &["seq:step:1".into()]));
        }
        let id = current.id.clone().unwrap_or_default();
        if self.wants(StreamMode::Messages) {
            frames.extend(self.announce(&id));
            frames.push(frame("messages/partial", partial(current)));
        }
        if self.wants(StreamMode::MessagesTuple) || events {
            let (delta, call_chunks, first) = self.unsent(&id, current);
            if !delta.is_empty() || !call_chunks.is_empty() || first {
                let chunk = Chunk { id: &id, content: &delta, metadata: None, calls: &call_chunks, last: false };
                if self.wants(StreamMode::MessagesTuple) {
                    frames.push(frame("messages", self.tuple(&chunk)));
                }
                if events {
                    let data = format!(r#"{{"chunk":{}}}"#, json_of(&chunk));
                    frames.push(self.model_event("on_chat_model_stream", data));
                }
            }
        }
        frames
    }

    /// The model's message complete: its metadata as a chunk, then the last (empty) chunk.
    fn finished(&mut self, _history: &[Message], answer: &Message) -> Vec<Frame> {
        let mut frames = Vec::new();
        let id = answer.id.clone().unwrap_or_default();
        if self.wants(StreamMode::Messages) {
            frames.extend(self.announce(&id));
            frames.push(frame("messages/partial", partial(answer)));
        }
        if self.wants(StreamMode::MessagesTuple) {
            let metadata =
                Chunk { id: &id, content: "", metadata: Some(&answer.response_metadata), calls: &[], last: false };
            let last = Chunk { id: &id, content: "", metadata: None, calls: &[], last: true };
            frames.push(frame("messages", self.tuple(&metadata)));
            frames.push(frame("messages", self.tuple(&last)));
        }
        if self.wants(StreamMode::Events) {
            let output = json_of(&answer.wire(Generation::Graph));
            frames.push(self.model_event("on_chat_model_end", format!(r#"{{"output":{output}}}"#)));
            self.model_run = None;
        }
        self.streaming = None;
        frames
    }

    /// Messages a node made whole, not streamed (tools' answers, retrieved documents).
    fn results(&mut self, _history: &[Message], messages: &[Message]) -> Vec<Frame> {
        let mut frames = Vec::new();
        for message in messages {
            let id = message.id.clone().unwrap_or_default();
            if self.wants(StreamMode::Messages) {
                frames.extend(self.announce(&id));
                frames.push(frame("messages/partial", partial(message)));
            }
            if self.wants(StreamMode::MessagesTuple) {
                let wire = serde_json::to_string(&message.wire(Generation::Graph)).unwrap_or_default();
                frames.push(frame("messages", format!("[{wire},{}]", self.chunk_metadata)));
            }
        }
        frames
    }

    /// The node done: its output, and the state after it.
    fn node_done(&mut self, before: &[Message], produced: &[Message]) -> Vec<Frame> {
        let mut frames = Vec::new();
        if self.wants(StreamMode::Updates) {
            let update = json!({ self.node: { "messages": produced.iter().map(|m| m.wire(Generation::Graph)).collect::<Vec<_>>() } });
            frames.push(frame("updates", update.to_string()));
        }
        if self.wants(StreamMode::Events) {
            let output = state_json(&[], produced);
            let tags = [format!("graph:step:{}", self.step)];
            let (node, run) = (self.node, self.node_run);
            frames.push(self.lifecycle("on_chain_stream", node, run, format!(r#"{{"chunk":{output}}}"#), &tags));
            let data = format!(r#"{{"output":{output},"input":{}}}"#, state_json(before, &[]));
            frames.push(self.lifecycle("on_chain_end", node, run, data, &tags));
        }
        if self.wants(StreamMode::Values) {
            frames.push(frame("values", state_json(before, produced)));
        }
        frames
    }

    /// The run stops before its tools: at a breakpoint (`__interrupt__` empty), or with the
    /// calls put to the user for review, which the state then carries too.
    fn interrupted(&mut self, state: &[Message], review: bool) -> Vec<Frame> {
        let interrupts = match (review, state.last()) {
            (true, Some(pending)) => review_interrupts(self.thread_id, pending, true),
            _ => json!([]),
        };
        let mut frames = Vec::new();
        if self.wants(StreamMode::Updates) {
            frames.push(frame("updates", json!({ "__interrupt__": interrupts }).to_string()));
        }
        if review && self.wants(StreamMode::Values) {
            let mut values = serde_json::to_value(State(state, &[])).unwrap_or_default();
            values["__interrupt__"] = interrupts;
            frames.push(frame("values", values.to_string()));
        }
        frames
    }
}

fn json_of(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The messages list of a rendered state (`{"messages":[...]}` → `[...]`).
fn node_messages(state: &str) -> &str {
    state.strip_prefix(r#"{"messages":"#).and_then(|rest| rest.strip_suffix('}')).unwrap_or("[]")
}

/// The state `{"messages": [...]}` of `before` followed by `after`.
fn state_json(before: &[Message], after: &[Message]) -> String {
    serde_json::to_string(&State(before, after)).unwrap_or_default()
}

/// `messages/partial`'s payload: the message so far, as a complete AI message.
fn partial(message: &Message) -> String {
    format!("[{}]", serde_json::to_string(&message.wire(Generation::Graph)).unwrap_or_default())
}

/// An `AIMessageChunk` as LangChain serializes one.
struct Chunk<'a> {
    id: &'a str,
    content: &'a str,
    metadata: Option<&'a Map<String, Value>>,
    calls: &'a [Value],
    last: bool,
}

impl Serialize for Chunk<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let empty = Map::new();
        let mut map = serializer.serialize_map(Some(11))?;
        map.serialize_entry("content", self.content)?;
        map.serialize_entry("additional_kwargs", &empty)?;
        map.serialize_entry("response_metadata", self.metadata.unwrap_or(&empty))?;
        map.serialize_entry("type", "AIMessageChunk")?;
        map.serialize_entry("name", &Value::Null)?;
        map.serialize_entry("id", self.id)?;
        // The calls as far as parsed: a first chunk names them, later ones carry fragments.
        let calls: Vec<Value> = self
            .calls
            .iter()
            .filter(|call| !call["name"].is_null())
            .map(|call| json!({"name": call["name"], "args": {}, "id": call["id"], "type": "tool_call"}))
            .collect();
        map.serialize_entry("tool_calls", &calls)?;
        map.serialize_entry("invalid_tool_calls", &[] as &[Value])?;
        map.serialize_entry("usage_metadata", &Value::Null)?;
        map.serialize_entry("tool_call_chunks", self.calls)?;
        map.serialize_entry("chunk_position", &self.last.then_some("last"))?;
        map.end()
    }
}
