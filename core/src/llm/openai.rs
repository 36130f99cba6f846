//! OpenAI Chat Completions with `stream: true`, and everything that speaks it: Azure OpenAI,
//! Ollama, vLLM, Groq. They differ only in URL and credential header.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use super::sse_client::{events, json_data, UpstreamEvent};
use super::{send_checked, ChatModel, ChatRequest, Chunk, ChunkStream, LlmError};
use crate::model::{Message, MessageType};

/// Where the Chat Completions endpoint lives and how to authenticate to it.
#[derive(Debug, Clone)]
pub enum OpenAiEndpoint {
    /// `{base_url}/chat/completions` with `Authorization: Bearer` (OpenAI, Groq, vLLM, Ollama's `/v1`).
    Compatible { provider: &'static str, base_url: String, api_key: Option<String> },
    /// `{base_url}/openai/deployments/{deployment}/chat/completions?api-version=…` with `api-key`.
    Azure { base_url: String, deployment: String, api_version: String, api_key: String },
}

pub struct OpenAiModel {
    client: reqwest::Client,
    endpoint: OpenAiEndpoint,
    timeout: Duration,
}

impl OpenAiModel {
    pub fn new(client: reqwest::Client, endpoint: OpenAiEndpoint, timeout: Duration) -> Self {
        OpenAiModel { client, endpoint, timeout }
    }

    fn request(&self) -> reqwest::RequestBuilder {
        match &self.endpoint {
            OpenAiEndpoint::Compatible { base_url, api_key, .. } => {
                let request = self.client.post(format!("{}/chat/completions", base_url.trim_end_matches('/')));
                match api_key {
                    Some(key) => request.bearer_auth(key),
                    None => request,
                }
            }
            OpenAiEndpoint::Azure { base_url, deployment, api_version, api_key } => self
                .client
                .post(format!(
                    "{}/openai/deployments/{deployment}/chat/completions?api-version={api_version}",
                    base_url.trim_end_matches('/')
                ))
                .header("api-key", api_key),
        }
    }
}

fn role(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Human | MessageType::Chat => "user",
        MessageType::Ai => "assistant",
        MessageType::System => "system",
        MessageType::Tool => "tool",
        MessageType::Function => "function",
    }
}

fn wire_message(message: &Message) -> Value {
    let mut wire = json!({ "role": role(message.kind), "content": message.content });
    if let Some(id) = &message.tool_call_id {
        wire["tool_call_id"] = json!(id);
    }
    if let Some(name) = &message.name {
        wire["name"] = json!(name);
    }
    if message.kind == MessageType::Ai && !message.tool_calls.is_empty() {
        wire["tool_calls"] = Value::Array(message.tool_calls.iter().map(openai_tool_call).collect());
    }
    wire
}

/// LangChain keeps tool calls as `{name, args, id}`; OpenAI wants `{id, type, function}`.
fn openai_tool_call(call: &Value) -> Value {
    json!({
        "id": call.get("id"),
        "type": "function",
        "function": { "name": call.get("name"), "arguments": call.get("args").map(Value::to_string) },
    })
}

#[async_trait]
impl ChatModel for OpenAiModel {
    fn provider(&self) -> &'static str {
        match &self.endpoint {
            OpenAiEndpoint::Compatible { provider, .. } => provider,
            OpenAiEndpoint::Azure { .. } => "azure-openai",
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError> {
        let provider = self.provider();
        let mut messages: Vec<Value> = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = &request.system {
            messages.push(json!({ "role": "system", "content": system }));
        }
        messages.extend(request.messages.iter().map(wire_message));
        let body = json!({
            "model": request.model,
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        let send = self.request().json(&body).send();
        let response = send_checked(provider, self.timeout, send).await?;
        let chunks = events(provider, response, self.timeout)
            .take_while(|event| std::future::ready(!matches!(event, Ok(e) if e.data.trim() == "[DONE]")))
            .flat_map(move |event| futures::stream::iter(parse_event(provider, event)));
        Ok(chunks.boxed())
    }
}

/// One upstream event becomes zero or more chunks.
fn parse_event(provider: &'static str, event: Result<UpstreamEvent, LlmError>) -> Vec<Result<Chunk, LlmError>> {
    let value = match json_data(provider, event) {
        Ok((_, value)) => value,
        Err(error) => return vec![Err(error)],
    };
    if let Some(error) = value.get("error") {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_string();
        return vec![Err(LlmError::Upstream { provider, message })];
    }
    let mut chunks = Vec::new();
    if let Some(choice) = value.pointer("/choices/0") {
        let delta = choice.get("delta");
        if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
            if !text.is_empty() {
                chunks.push(Ok(Chunk::Text(text.to_string())));
            }
        }
        for call in delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array).into_iter().flatten() {
            chunks.push(Ok(Chunk::ToolCall {
                index: call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize,
                id: call.get("id").and_then(Value::as_str).map(str::to_string),
                name: call.pointer("/function/name").and_then(Value::as_str).map(str::to_string),
                arguments: call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("").to_string(),
            }));
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            chunks.push(Ok(Chunk::Finish { reason: reason.to_string() }));
        }
    }
    if let Some(usage) = value.get("usage").filter(|usage| usage.is_object()) {
        let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        chunks
            .push(Ok(Chunk::Usage { input_tokens: count("prompt_tokens"), output_tokens: count("completion_tokens") }));
    }
    chunks
}
