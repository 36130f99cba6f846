//! A run's progress as the LangGraph event protocol shows it on its thread's log: `lifecycle`,
//! `values`, `updates`, `messages` as content blocks, `tools`, and `input.requested` when the run
//! stops for the user. Every run renders these, whichever protocol started it, so any client can
//! watch any run of its threads.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::graph_state::review_interrupts;
use super::render::Renderer;
use super::Bot;
use std::borrow::Cow;

use crate::model::{Content, Message, MessageType};

/// One event for the thread's log; the writer numbers it and wraps it in its envelope.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LogEntry {
    pub(super) method: &'static str,
    pub(super) namespace: Vec<String>,
    /// The event's `data`, as JSON.
    pub(super) data: String,
    /// Set for the events the protocol names after the run (lifecycle, input requests).
    pub(super) event_id: Option<String>,
    /// Set on the run's last event and its request for input (see `ThreadEvent::ends_run`).
    pub(super) ends_run: Option<Uuid>,
}

fn entry(method: &'static str, data: Value) -> LogEntry {
    LogEntry { method, namespace: Vec::new(), data: data.to_string(), event_id: None, ends_run: None }
}

/// How a run ended, as its last lifecycle event tells it.
pub(super) enum RunEnd<'a> {
    Completed,
    /// Waiting for the user's answer (an `input.requested` came before).
    Interrupted,
    Failed(&'a str),
}

/// The blocks of the AI message being streamed: its id, and per block its kind and what of it
/// has been sent.
#[derive(Default)]
struct Streaming {
    id: String,
    text_block: Option<usize>,
    text_sent: usize,
    /// Per tool call, in order: its block and how much of its arguments has been sent.
    calls: Vec<(usize, usize)>,
    blocks: usize,
}

pub(super) struct ProtocolEvents {
    bot: Bot,
    run_id: Uuid,
    thread_id: Uuid,
    graph_name: String,
    node: &'static str,
    streaming: Option<Streaming>,
    /// The run stopped for the user: it ends `interrupted`, not `completed`.
    pub(super) waiting: bool,
}

impl ProtocolEvents {
    pub(super) fn new(bot: Bot, run_id: Uuid, thread_id: Uuid) -> Self {
        let graph_name = bot.id().to_string();
        ProtocolEvents { bot, run_id, thread_id, graph_name, node: "", streaming: None, waiting: false }
    }

    fn lifecycle(&self, event: &str, error: Option<&str>) -> LogEntry {
        let mut data = json!({"event": event, "graph_name": self.graph_name});
        if let Some(error) = error {
            data["error"] = json!(error);
        }
        LogEntry { event_id: Some(format!("synth:{}:lc||{event}", self.run_id)), ..entry("lifecycle", data) }
    }

    pub(super) fn started(&self) -> LogEntry {
        self.lifecycle("running", None)
    }

    pub(super) fn ended(&self, end: RunEnd<'_>) -> LogEntry {
        let entry = match end {
            RunEnd::Completed => self.lifecycle("completed", None),
            RunEnd::Interrupted => self.lifecycle("interrupted", None),
            RunEnd::Failed(error) => self.lifecycle("failed", Some(error)),
        };
        LogEntry { ends_run: Some(self.run_id), ..entry }
    }

    /// The blocks of `current` not announced yet, and what each grew by.
    fn stream(&mut self, current: &Message) -> Vec<LogEntry> {
        let id = current.id.clone().unwrap_or_default();
        let mut entries = Vec::new();
        if self.streaming.as_ref().is_none_or(|streaming| streaming.id != id) {
            self.streaming = Some(Streaming { id: id.clone(), ..Streaming::default() });
            entries.push(entry("messages", json!({"event": "message-start", "role": "ai", "id": id, "metadata": {}})));
        }
        let streaming = self.streaming.as_mut().expect("just set");
        // Borrowed where it can be: this runs once per token.
        let text = match &current.content {
            Content::Text(text) => Cow::Borrowed(text.as_str()),
            parts => Cow::Owned(parts.text()),
        };
        if text.len() > streaming.text_sent {
            let index = *streaming.text_block.get_or_insert_with(|| {
                streaming.blocks += 1;
                entries.push(block_start(streaming.blocks - 1, json!({"type": "text", "text": ""})));
                streaming.blocks - 1
            });
            let delta = text.get(streaming.text_sent..).unwrap_or_default();
            entries.push(block_delta(index, "text-delta", "text", delta));
            streaming.text_sent = text.len();
        }
        let raw_calls = current.additional_kwargs.get("tool_calls").and_then(Value::as_array);
        for (position, raw) in raw_calls.into_iter().flatten().enumerate() {
            let arguments = raw["function"]["arguments"].as_str().unwrap_or_default();
            if streaming.calls.len() <= position {
                let chunk = json!({"type": "tool_call_chunk", "id": raw["id"], "name": raw["function"]["name"], "args": "", "index": position});
                entries.push(block_start(streaming.blocks, chunk));
                streaming.calls.push((streaming.blocks, 0));
                streaming.blocks += 1;
            }
            let (index, sent) = &mut streaming.calls[position];
            if arguments.len() > *sent {
                let piece = arguments.get(*sent..).unwrap_or_default();
                entries.push(block_delta(*index, "tool-call-delta", "args", piece));
                *sent = arguments.len();
            }
        }
        entries
    }
}

fn block_start(index: usize, content: Value) -> LogEntry {
    entry("messages", json!({"event": "content-block-start", "index": index, "content": content}))
}

/// A block grown by `piece`: written straight as JSON, since it comes once per token.
fn block_delta(index: usize, kind: &str, field: &str, piece: &str) -> LogEntry {
    let piece = serde_json::to_string(piece).unwrap_or_default();
    let data =
        format!(r#"{{"event":"content-block-delta","index":{index},"delta":{{"type":"{kind}","{field}":{piece}}}}}"#);
    LogEntry { method: "messages", namespace: Vec::new(), data, event_id: None, ends_run: None }
}

fn block_finish(index: usize, content: Value) -> LogEntry {
    entry("messages", json!({"event": "content-block-finish", "index": index, "content": content}))
}

/// A message as `values` and `updates` show it: only the fields that say something.
pub(super) fn compact(message: &Message) -> Value {
    let mut value = serde_json::to_value(message.wire(crate::model::Generation::Latest)).unwrap_or_default();
    if let Value::Object(fields) = &mut value {
        fields.retain(|_, field| match field {
            Value::Null | Value::Bool(false) => false,
            Value::Object(map) => !map.is_empty(),
            Value::Array(list) => !list.is_empty(),
            Value::String(text) => !text.is_empty(),
            _ => true,
        });
    }
    value
}

fn values(before: &[Message], after: &[Message]) -> LogEntry {
    entry("values", json!({"messages": before.iter().chain(after).map(compact).collect::<Vec<_>>()}))
}

impl Renderer for ProtocolEvents {
    type Event = LogEntry;

    fn opening(&mut self, history: &[Message]) -> Vec<LogEntry> {
        vec![values(history, &[])]
    }

    /// The tools' node announces each call it is about to make.
    fn enter(&mut self, node: &'static str, state: &[Message]) -> Vec<LogEntry> {
        self.node = node;
        let Some(calls) = state.last().filter(|last| last.kind == MessageType::Ai).map(|last| &last.tool_calls) else {
            return Vec::new();
        };
        if node != self.bot.tools_node() {
            return Vec::new();
        }
        calls
            .iter()
            .map(|call| {
                let data = json!({"event": "tool-started", "tool_call_id": call["id"], "tool_name": call["name"], "input": call["args"]});
                entry("tools", data)
            })
            .collect()
    }

    fn node_done(&mut self, before: &[Message], produced: &[Message]) -> Vec<LogEntry> {
        let update = json!({ self.node: {"messages": produced.iter().map(compact).collect::<Vec<_>>()} });
        vec![entry("updates", update), values(before, produced)]
    }

    fn interrupted(&mut self, state: &[Message], _review: bool) -> Vec<LogEntry> {
        let Some(pending) = state.last() else { return Vec::new() };
        self.waiting = true;
        let interrupt = review_interrupts(self.thread_id, pending, false);
        let interrupt_id = interrupt[0]["id"].as_str().unwrap_or_default().to_string();
        let data = json!({"interrupt_id": interrupt_id, "payload": interrupt[0]["value"]});
        let event_id = Some(format!("synth:{}:input||{interrupt_id}", self.run_id));
        vec![LogEntry { event_id, ends_run: Some(self.run_id), ..entry("input.requested", data) }]
    }

    fn progress(&mut self, _history: &[Message], current: &Message) -> Vec<LogEntry> {
        self.stream(current)
    }

    fn finished(&mut self, _history: &[Message], answer: &Message) -> Vec<LogEntry> {
        let mut entries = self.stream(answer);
        let streaming = self.streaming.take().unwrap_or_default();
        if let Some(index) = streaming.text_block {
            entries.push(block_finish(index, json!({"type": "text", "text": answer.content.text()})));
        }
        for ((index, _), call) in streaming.calls.iter().zip(&answer.tool_calls) {
            entries.push(block_finish(
                *index,
                json!({"type": "tool_call", "id": call["id"], "name": call["name"], "args": call["args"]}),
            ));
        }
        let mut metadata: Map<String, Value> = answer.response_metadata.clone();
        let reason = if answer.tool_calls.is_empty() { "stop" } else { "tool_calls" };
        metadata.entry("finish_reason").or_insert(json!(reason));
        entries.push(entry("messages", json!({"event": "message-finish", "metadata": metadata})));
        entries
    }

    /// A round of tool answers: each tool's end on `tools`, and its message on its own namespace.
    fn results(&mut self, _history: &[Message], results: &[Message]) -> Vec<LogEntry> {
        let mut entries = Vec::new();
        for result in results.iter().filter(|result| result.kind == MessageType::Tool) {
            let call_id = result.tool_call_id.clone().unwrap_or_default();
            let output = serde_json::to_value(result.wire(crate::model::Generation::Latest)).unwrap_or_default();
            let (event, field) = match result.status {
                Some(crate::model::ToolStatus::Error) => ("tool-error", "message"),
                _ => ("tool-finished", "output"),
            };
            let mut data = json!({"event": event, "tool_call_id": call_id});
            data[field] = if field == "message" { json!(result.content.text()) } else { output };
            entries.push(entry("tools", data));
            let namespace = vec![format!("tools:{call_id}")];
            let text = json!({"type": "text", "text": result.content.text()});
            let start = json!({"event": "message-start", "role": "tool", "id": format!("tool-{call_id}"), "tool_call_id": call_id});
            for data in [
                start,
                json!({"event": "content-block-start", "index": 0, "content": {"type": "text", "text": ""}}),
                json!({"event": "content-block-delta", "index": 0, "content": text}),
                json!({"event": "content-block-finish", "index": 0, "content": text}),
                json!({"event": "message-finish", "metadata": {}}),
            ] {
                entries.push(LogEntry { namespace: namespace.clone(), ..entry("messages", data) });
            }
        }
        entries
    }
}
