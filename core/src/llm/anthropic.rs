//! Anthropic Messages API with `stream: true`.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use super::sse_client::{events, json_data, UpstreamEvent};
use super::{send_checked, ChatModel, ChatRequest, Chunk, ChunkStream, LlmError};
use crate::config::Secret;
use crate::model::MessageType;

const PROVIDER: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";

pub struct AnthropicModel {
    client: reqwest::Client,
    base_url: String,
    api_key: Secret,
    timeout: Duration,
}

impl AnthropicModel {
    pub fn new(client: reqwest::Client, base_url: String, api_key: Secret, timeout: Duration) -> Self {
        AnthropicModel { client, base_url, api_key, timeout }
    }
}

/// Anthropic takes the system prompt apart and only `user`/`assistant` turns, so system messages
/// join the system prompt and tool results travel as user turns.
fn wire_body(request: &ChatRequest) -> Value {
    let mut system: Vec<String> = request.system.iter().cloned().collect();
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        match message.kind {
            MessageType::System => system.push(message.content.text()),
            MessageType::Ai => messages.push(json!({ "role": "assistant", "content": message.content.text() })),
            _ => messages.push(json!({ "role": "user", "content": message.content.text() })),
        }
    }
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_output_tokens,
        "messages": messages,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    body
}

#[async_trait]
impl ChatModel for AnthropicModel {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError> {
        let send = self
            .client
            .post(format!("{}/v1/messages", self.base_url.trim_end_matches('/')))
            .header("x-api-key", self.api_key.expose())
            .header("anthropic-version", API_VERSION)
            .json(&wire_body(&request))
            .send();
        let response = send_checked(PROVIDER, self.timeout, send).await?;
        let mut input_tokens = 0;
        let chunks = events(PROVIDER, response, self.timeout)
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
