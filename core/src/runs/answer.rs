//! One model call's AI message, as its streamed chunks build it: text, tool calls (shown parsed
//! as far as they have arrived), usage and finish reason, in the shape each generation shows.

use serde_json::{json, Value};

use crate::llm::partial_json::parse_partial;
use crate::llm::Chunk;
use crate::model::{Content, Generation, Message, MessageType};

pub struct AnswerBuilder {
    message: Message,
    generation: Generation,
    text: String,
    calls: Vec<ToolCallBuilder>,
    finish_reason: Option<String>,
}

impl AnswerBuilder {
    pub fn new(generation: Generation, id: String) -> Self {
        let mut message = Message::new(MessageType::Ai, "");
        message.id = Some(id);
        AnswerBuilder { message, generation, text: String::new(), calls: Vec::new(), finish_reason: None }
    }

    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Takes one chunk in; true when the visible message changed.
    pub fn add(&mut self, chunk: Chunk) -> bool {
        match chunk {
            Chunk::Text(delta) => {
                self.text.push_str(&delta);
                self.message.content = Content::Text(self.text.clone());
                true
            }
            Chunk::ToolCall { index, id, name, arguments } => {
                if self.calls.len() <= index {
                    self.calls.resize_with(index + 1, ToolCallBuilder::default);
                }
                self.calls[index].add(id, name, &arguments);
                self.show_calls(|call| call.parsed_so_far());
                true
            }
            Chunk::Usage { input_tokens, output_tokens } => {
                self.message.usage_metadata = Some(json!({
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                }));
                false
            }
            Chunk::Finish { reason } => {
                self.finish_reason = Some(reason);
                false
            }
        }
    }

    /// Puts the calls on the message: the readable ones in `tool_calls`, the others in
    /// `invalid_tool_calls`, and the provider's raw form in `additional_kwargs` (OpenAI's
    /// `tool_calls` for latest clients, the legacy `function_call` for the seed era's).
    fn show_calls(&mut self, parse: impl Fn(&ToolCallBuilder) -> Option<Value>) {
        let message = &mut self.message;
        message.tool_calls.clear();
        message.invalid_tool_calls.clear();
        for call in &self.calls {
            match (parse(call), &call.name) {
                (Some(args), Some(name)) => {
                    message.tool_calls.push(json!({"name": name, "args": args, "id": call.id, "type": "tool_call"}))
                }
                _ => message.invalid_tool_calls.push(json!({
                    "name": call.name, "args": call.arguments, "id": call.id, "error": null, "type": "invalid_tool_call",
                })),
            }
        }
        match self.generation {
            Generation::Latest | Generation::Graph => {
                let raw: Vec<Value> = self
                    .calls
                    .iter()
                    .enumerate()
                    .map(|(index, call)| {
                        json!({"index": index, "id": call.id,
                        "function": {"arguments": call.arguments, "name": call.name}, "type": "function"})
                    })
                    .collect();
                message.additional_kwargs.insert("tool_calls".into(), Value::Array(raw));
            }
            Generation::Seed => {
                if let Some(call) = self.calls.first() {
                    let function_call = json!({"name": call.name, "arguments": call.arguments});
                    message.additional_kwargs.insert("function_call".into(), function_call);
                }
            }
        }
    }

    /// The message as stored: its calls parsed in full, its metadata, and for seed clients the
    /// agent's step (`AgentActionMessageLog` before a tool, `AgentFinish` for the answer).
    pub fn finish(mut self, model_id: &str) -> Message {
        if !self.calls.is_empty() {
            self.show_calls(ToolCallBuilder::parsed);
        }
        let mut message = self.message;
        let finish_reason = self
            .finish_reason
            .unwrap_or_else(|| if message.tool_calls.is_empty() { "stop" } else { "tool_calls" }.into());
        message.response_metadata.insert("finish_reason".into(), json!(finish_reason));
        message.response_metadata.insert("model_name".into(), json!(model_id));
        if self.generation == Generation::Seed {
            let text = self.text;
            let agent = match message.tool_calls.first() {
                Some(call) => json!({
                    "tool": call["name"], "tool_input": call["args"],
                    "log": format!("\nInvoking: `{}` with `{}`\n\n\n", call["name"].as_str().unwrap_or_default(), call["args"]),
                    "type": "AgentActionMessageLog", "message_log": [],
                }),
                None => json!({"return_values": {"output": text}, "log": text, "type": "AgentFinish"}),
            };
            message.additional_kwargs.insert("agent".into(), agent);
        }
        message
    }
}

/// Collects a streamed tool call's fragments.
#[derive(Default)]
struct ToolCallBuilder {
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

impl ToolCallBuilder {
    fn add(&mut self, id: Option<String>, name: Option<String>, arguments: &str) {
        self.id = self.id.take().or(id);
        self.name = self.name.take().or(name);
        self.arguments.push_str(arguments);
    }

    /// The arguments as far as they have arrived (`{}` before any).
    fn parsed_so_far(&self) -> Option<Value> {
        if self.arguments.is_empty() {
            return Some(json!({}));
        }
        parse_partial(&self.arguments).filter(Value::is_object)
    }

    /// The complete arguments: a JSON object, or nothing (an invalid call).
    fn parsed(&self) -> Option<Value> {
        if self.arguments.trim().is_empty() {
            return Some(json!({}));
        }
        serde_json::from_str(&self.arguments).ok().filter(Value::is_object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(index: usize, id: Option<&str>, name: Option<&str>, arguments: &str) -> Chunk {
        Chunk::ToolCall {
            index,
            id: id.map(str::to_string),
            name: name.map(str::to_string),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn tool_calls_show_as_they_stream_and_bad_arguments_end_invalid() {
        let mut answer = AnswerBuilder::new(Generation::Latest, "run-1".into());
        assert!(answer.add(call(0, Some("call_1"), Some("wikipedia"), "{\"query")));
        assert_eq!(answer.message().tool_calls[0]["args"], json!({}));
        answer.add(call(0, None, None, "\":\"moo"));
        assert_eq!(answer.message().tool_calls[0]["args"], json!({"query": "moo"}));
        let raw = &answer.message().additional_kwargs["tool_calls"][0];
        assert_eq!(raw["function"]["arguments"], "{\"query\":\"moo");
        answer.add(call(1, Some("call_2"), Some("arxiv"), "{not json"));
        let message = answer.finish("gpt");
        assert!(message.tool_calls.is_empty(), "the first call never closed its object");
        assert_eq!(message.invalid_tool_calls.len(), 2);
        assert_eq!(message.invalid_tool_calls[1]["args"], "{not json");
        assert_eq!(message.response_metadata["finish_reason"], "stop");
    }

    #[test]
    fn seed_answers_carry_the_function_call_and_agent_step() {
        let mut answer = AnswerBuilder::new(Generation::Seed, "run-1".into());
        answer.add(call(0, Some("c"), Some("wikipedia"), "{\"query\":\"moon\"}"));
        answer.add(Chunk::Finish { reason: "tool_calls".into() });
        let message = answer.finish("gpt");
        assert_eq!(message.additional_kwargs["function_call"]["name"], "wikipedia");
        assert_eq!(message.additional_kwargs["agent"]["type"], "AgentActionMessageLog");
        assert_eq!(message.additional_kwargs["agent"]["tool_input"], json!({"query": "moon"}));
    }
}
