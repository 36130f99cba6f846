//! Anthropic Messages API with `stream: true`.

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use super::sse_client::{events, json_data, UpstreamEvent};
use super::{
    send_checked, system_and_turns, ChatModel, ChatRequest, Chunk, ChunkStream, KeyedEndpoint, LlmError, Turn,
};

const PROVIDER: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";

pub struct AnthropicModel(KeyedEndpoint);

impl AnthropicModel {
    pub fn new(endpoint: KeyedEndpoint) -> Self {
        AnthropicModel(endpoint)
    }
}

/// Anthropic takes the system prompt apart and only `user`/`assistant` turns: system messages
/// join the system prompt, tool calls are `tool_use` blocks, and tool results are `tool_result`
/// blocks of one user turn.
fn wire_body(request: &ChatRequest) -> Value {
    let (system, turns) = system_and_turns(request);
    let mut messages: Vec<Value> = Vec::with_capacity(turns.len());
    for turn in turns {
        match turn {
            Turn::User(text) => messages.push(json!({"role": "user", "content": text})),
            Turn::Ai { text, calls } if calls.is_empty() => {
                messages.push(json!({"role": "assistant", "content": text}))
            }
            Turn::Ai { text, calls } => {
                let text_block = (!text.is_empty()).then(|| json!({"type": "text", "text": text}));
                let uses = calls
                    .into_iter()
                    .map(|call| json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.args}));
                let blocks: Vec<Value> = text_block.into_iter().chain(uses).collect();
                messages.push(json!({"role": "assistant", "content": blocks}));
            }
            Turn::ToolResult { call_id, content, is_error, .. } => {
                let block =
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error});
                match messages.last_mut() {
                    Some(last) if last["role"] == "user" && last["content"][0]["type"] == "tool_result" => {
                        last["content"].as_array_mut().expect("tool results are a list").push(block)
                    }
                    _ => messages.push(json!({"role": "user", "content": [block]})),
                }
            }
        }
    }
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_output_tokens,
        "messages": messages,
        "stream": true,
    });
    if let Some(system) = system {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}))
            .collect();
    }
    body
}

#[async_trait]
impl ChatModel for AnthropicModel {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError> {
        let endpoint = &self.0;
        let send = endpoint
            .client
            .post(endpoint.url("/v1/messages"))
            .header("x-api-key", endpoint.api_key.expose())
            .header("anthropic-version", API_VERSION)
            .json(&wire_body(&request))
            .send();
        let response = send_checked(PROVIDER, endpoint.timeout, send).await?;
        let mut input_tokens = 0;
        let chunks = events(PROVIDER, response, endpoint.timeout)
            .take_while(|event| {
                std::future::ready(!matches!(event, Ok(e) if e.event.as_deref() == Some("message_stop")))
            })
            .flat_map(move |event| futures::stream::iter(parse_event(event, &mut input_tokens)));
        Ok(chunks.boxed())
    }
}

fn parse_event(event: Result<UpstreamEvent, LlmError>, input_tokens: &mut u64) -> Vec<Result<Chunk, LlmError>> {
    let (event, value): (_, Value) = match json_data(PROVIDER, event) {
        Ok(parsed) => parsed,
        Err(error) => return vec![Err(error)],
    };
    let kind = event.event.as_deref().or_else(|| value.get("type").and_then(Value::as_str)).unwrap_or("");
    match kind {
        "message_start" => {
            *input_tokens = value.pointer("/message/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
            vec![]
        }
        "content_block_start" => match value.pointer("/content_block/type").and_then(Value::as_str) {
            Some("tool_use") => vec![Ok(Chunk::ToolCall {
                index: value.get("index").and_then(Value::as_u64).unwrap_or(0) as usize,
                id: value.pointer("/content_block/id").and_then(Value::as_str).map(str::to_string),
                name: value.pointer("/content_block/name").and_then(Value::as_str).map(str::to_string),
                arguments: String::new(),
            })],
            _ => vec![],
        },
        "content_block_delta" => match value.pointer("/delta/type").and_then(Value::as_str) {
            Some("text_delta") => {
                let text = value.pointer("/delta/text").and_then(Value::as_str).unwrap_or("");
                vec![Ok(Chunk::Text(text.to_string()))]
            }
            Some("input_json_delta") => vec![Ok(Chunk::ToolCall {
                index: value.get("index").and_then(Value::as_u64).unwrap_or(0) as usize,
                id: None,
                name: None,
                arguments: value.pointer("/delta/partial_json").and_then(Value::as_str).unwrap_or("").to_string(),
            })],
            _ => vec![],
        },
        "message_delta" => {
            let mut chunks = Vec::new();
            if let Some(output) = value.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                chunks.push(Ok(Chunk::Usage { input_tokens: *input_tokens, output_tokens: output }));
            }
            if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                chunks.push(Ok(Chunk::Finish { reason: reason.to_string() }));
            }
            chunks
        }
        "error" => {
            let message = value.pointer("/error/message").and_then(Value::as_str).unwrap_or("unknown error");
            vec![Err(LlmError::Upstream { provider: PROVIDER, message: message.to_string() })]
        }
        _ => vec![],
    }
}
