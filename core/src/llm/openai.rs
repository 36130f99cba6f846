//! OpenAI Chat Completions with `stream: true`, and everything that speaks it: Azure OpenAI,
//! Ollama, vLLM, Groq. They differ only in URL and credential header.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::sse_client::{events, json_data, UpstreamEvent};
use super::{send_checked, ChatModel, ChatRequest, Chunk, ChunkStream, LlmError, ToolSpec};
use crate::config::Secret;
use crate::model::{Message, MessageType};

/// Where the Chat Completions endpoint lives and how to authenticate to it.
#[derive(Debug, Clone)]
pub enum OpenAiEndpoint {
    /// `{base_url}/chat/completions` with `Authorization: Bearer` (OpenAI, Groq, vLLM, Ollama's `/v1`).
    Compatible { provider: &'static str, base_url: String, api_key: Option<Secret> },
    /// `{base_url}/openai/deployments/{deployment}/chat/completions?api-version=…` with `api-key`.
    Azure { base_url: String, deployment: String, api_version: String, api_key: Secret },
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
                    Some(key) => request.bearer_auth(key.expose()),
                    None => request,
                }
            }
            OpenAiEndpoint::Azure { base_url, deployment, api_version, api_key } => self
                .client
                .post(format!(
                    "{}/openai/deployments/{deployment}/chat/completions?api-version={api_version}",
                    base_url.trim_end_matches('/')
                ))
                .header("api-key", api_key.expose()),
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
    let calls_tools = message.kind == MessageType::Ai && !message.tool_calls.is_empty();
    // OpenAI's assistant turn that only calls tools has `content: null`.
    let content = if calls_tools && message.content.is_empty() { Value::Null } else { json!(message.content) };
    let mut wire = json!({ "role": role(message.kind), "content": content });
    match (&message.tool_call_id, &message.name) {
        (Some(id), _) => wire["tool_call_id"] = json!(id),
        (None, Some(name)) => wire["name"] = json!(name),
        (None, None) => {}
    }
    if calls_tools {
        wire["tool_calls"] = Value::Array(message.tool_calls.iter().map(openai_tool_call).collect());
    }
    wire
}

fn wire_tool(tool: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": { "name": tool.name, "description": tool.description, "parameters": tool.parameters },
    })
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
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_output_tokens,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if !request.tools.is_empty() {
            body["tools"] = request.tools.iter().map(wire_tool).collect();
        }
        let send = self.request().json(&body).send();
        let response = send_checked(provider, self.timeout, send).await?;
        let chunks = events(provider, response, self.timeout)
            .take_while(|event| std::future::ready(!matches!(event, Ok(e) if e.data.trim() == "[DONE]")))
            .flat_map(move |event| futures::stream::iter(parse_event(provider, event)));
        Ok(chunks.boxed())
    }
}

/// A Chat Completions stream chunk: only the fields we read, so the rest is skipped unparsed.
#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<StreamChoice>,
    usage: Option<StreamUsage>,
    error: Option<StreamError>,
}

#[derive(Deserialize)]
struct StreamChoice {
    delta: Option<StreamDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct StreamDelta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct StreamUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct StreamError {
    message: Option<String>,
}

/// One upstream event becomes zero or more chunks.
fn parse_event(provider: &'static str, event: Result<UpstreamEvent, LlmError>) -> Vec<Result<Chunk, LlmError>> {
    let chunk: StreamChunk = match json_data(provider, event) {
        Ok((_, chunk)) => chunk,
        Err(error) => return vec![Err(error)],
    };
    if let Some(error) = chunk.error {
        let message = error.message.unwrap_or_else(|| "unknown error".into());
        return vec![Err(LlmError::Upstream { provider, message })];
    }
    let mut chunks = Vec::new();
    if let Some(choice) = chunk.choices.into_iter().next() {
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                chunks.push(Ok(Chunk::Text(text)));
            }
            for call in delta.tool_calls {
                let (name, arguments) = call.function.map(|f| (f.name, f.arguments)).unwrap_or_default();
                chunks.push(Ok(Chunk::ToolCall {
                    index: call.index,
                    id: call.id,
                    name,
                    arguments: arguments.unwrap_or_default(),
                }));
            }
        }
        if let Some(reason) = choice.finish_reason {
            chunks.push(Ok(Chunk::Finish { reason }));
        }
    }
    if let Some(usage) = chunk.usage {
        chunks.push(Ok(Chunk::Usage { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens }));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Vec<Result<Chunk, LlmError>> {
        parse_event("openai", Ok(UpstreamEvent { event: None, data: data.to_string() }))
    }

    #[test]
    fn tool_call_fragments_and_unknown_fields_are_read() {
        let chunks = event(
            r#"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"search","arguments":"{\"q\""}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        );
        let expected = Chunk::ToolCall {
            index: 1,
            id: Some("call_1".into()),
            name: Some("search".into()),
            arguments: "{\"q\"".into(),
        };
        assert_eq!(chunks.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![expected]);
    }

    #[test]
    fn a_chunk_that_is_not_an_object_is_malformed() {
        assert!(matches!(event("[1, 2]").as_slice(), [Err(LlmError::Malformed { .. })]));
    }
}
